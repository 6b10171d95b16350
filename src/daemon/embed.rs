//! An embeddable server (issue #18 §1): [`Relay::builder`] fills a [`Config`] — the daemon's one
//! options type, so every `turn.toml` key is reachable ([`RelayBuilder::configure`]) and nothing is
//! duplicated — adds what only code can give ([`Hooks`]: a credential hook, an event sink), and
//! [`RelayBuilder::spawn`] runs it through [`Daemon::start`], the machine the `switchback` binary
//! runs too. The [`RelayHandle`] it returns drains, reloads, shuts down, counts allocations,
//! renders the metrics and hands out the metrics face's axum routes.
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let relay = switchback::Relay::builder()
//!     .listen("127.0.0.1:0".parse()?)
//!     .user("ann", "s3cret")
//!     .spawn()
//!     .await?;
//! println!("{:?}", relay.turn_urls());
//! relay.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Daemon, DaemonError, Hooks, Setup, TlsSetup};
use crate::alloc::AllocationId;
use crate::auth::hook::{CredentialHook, HookHandle};
use crate::config::{Config, ConfigError, SecretText};
use crate::io::{Listener, TlsIdentity, TurnServer};
use crate::server::{EventSink, Transport, Usage};

/// The embedded server's entry point: `Relay::builder()` or `Relay::from_config(config)`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Relay;

impl Relay {
    /// A builder over [`Config::default`] (127.0.0.1:3478 over UDP and TCP, no credentials).
    pub fn builder() -> RelayBuilder {
        RelayBuilder::from_config(Config::default())
    }

    /// A builder over a whole daemon configuration (a `turn.toml` loaded with
    /// [`Config::from_toml_str`], say); the builder's other methods change it further.
    pub fn from_config(config: Config) -> RelayBuilder {
        RelayBuilder::from_config(config)
    }
}

/// The options of an embedded server: a [`Config`] being filled, the TLS certificate and the
/// embedder's [`Hooks`]. Later calls override earlier ones; [`RelayBuilder::listen`] and the
/// list-valued options add.
#[must_use = "a builder does nothing until spawn() or run()"]
pub struct RelayBuilder {
    config: Config,
    listen: Vec<SocketAddr>,
    tls: Option<TlsSetup>,
    hooks: Hooks,
    setup: Option<Setup>,
}

impl std::fmt::Debug for RelayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayBuilder").field("listen", &self.listen).field("hooks", &self.hooks).finish_non_exhaustive()
    }
}

impl RelayBuilder {
    /// A builder over `config`.
    pub fn from_config(config: Config) -> RelayBuilder {
        RelayBuilder { config, listen: Vec::new(), tls: None, hooks: Hooks::default(), setup: None }
    }

    /// Replaces the whole configuration (the escape hatch for every key the builder has no method
    /// for); `listen` addresses given so far still apply.
    pub fn config(self, config: Config) -> RelayBuilder {
        RelayBuilder { config, ..self }
    }

    /// Changes the configuration in place: `configure(|c| c.mobility = true)`.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> RelayBuilder {
        change(&mut self.config);
        self
    }

    /// Listens on `addr` over UDP and TCP (and TLS with [`RelayBuilder::tls`]); repeatable. Port 0
    /// lets the OS choose ([`RelayHandle::local_addrs`] says what it chose). The addresses share
    /// one port (`listening-port`): different non-zero ports are refused at spawn.
    pub fn listen(mut self, addr: SocketAddr) -> RelayBuilder {
        self.listen.push(addr);
        self
    }

    /// TURN over TLS with `identity`'s certificate (RFC 8656 §3.1), on `tls-listening-port`
    /// (5349, or an OS-chosen port when the listening port is 0).
    pub fn tls(self, identity: TlsIdentity) -> RelayBuilder {
        RelayBuilder { tls: Some(TlsSetup::Files(identity)), ..self }
    }

    /// An address relay sockets open on (`relay-ip`); repeatable. Default: the address each
    /// Allocate arrived on.
    pub fn relay_ip(mut self, ip: IpAddr) -> RelayBuilder {
        self.config.relay_ip.push(ip);
        self
    }

    /// The long-term credential realm (RFC 8489 §9.2; `realm`).
    pub fn realm(mut self, realm: &str) -> RelayBuilder {
        self.config.realm = Some(realm.to_owned());
        self
    }

    /// A REST API secret (`static-auth-secret`; `expiry:user` usernames); repeatable, the first
    /// signs.
    pub fn static_auth_secret(mut self, secret: &str) -> RelayBuilder {
        self.config.static_auth_secret.push(SecretText(secret.to_owned()));
        self
    }

    /// A static user of the long-term credential mechanism (RFC 8489 §9.2.2; `users`): a password,
    /// or coturn's `0x` key.
    pub fn user(mut self, name: &str, password: &str) -> RelayBuilder {
        self.config.users.insert(name.to_owned(), SecretText(password.to_owned()));
        self
    }

    /// Whether clients may relay to loopback peers (`allow-loopback-peers`; off by default, on
    /// for tests and same-host peers).
    pub fn allow_loopback_peers(mut self, allow: bool) -> RelayBuilder {
        self.config.allow_loopback_peers = allow;
        self
    }

    /// Allocations per user at once (`user-quota`, RFC 8656 §7.2 486; 0: no limit).
    pub fn user_quota(mut self, quota: u32) -> RelayBuilder {
        self.config.user_quota = quota;
        self
    }

    /// Allocations in total at once (`total-quota`, 486; 0: no limit).
    pub fn total_quota(mut self, quota: u32) -> RelayBuilder {
        self.config.total_quota = quota;
        self
    }

    /// The longest lifetime an allocation is granted (RFC 8656 §7.2, `max-lifetime`; whole
    /// seconds). The default lifetime is lowered to it when above.
    pub fn max_lifetime(mut self, lifetime: Duration) -> RelayBuilder {
        let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
        self.config.max_lifetime = secs;
        self.config.default_lifetime = self.config.default_lifetime.min(secs);
        self
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `addr` (`metrics-listen`). Without it the
    /// same routes are still there to mount: [`RelayHandle::router`].
    pub fn metrics_listen(mut self, addr: SocketAddr) -> RelayBuilder {
        self.config.metrics_listen = Some(addr);
        self
    }

    /// Credentials for names that are not static users or REST usernames (see
    /// [`auth::hook`](crate::auth::hook); [`CachedCredentials`](crate::auth::hook::CachedCredentials)
    /// wraps an async lookup). TURN is on with a hook even without users or a secret.
    pub fn credential_hook(self, hook: impl CredentialHook) -> RelayBuilder {
        self.credential_hook_handle(HookHandle(Arc::new(hook)))
    }

    /// [`RelayBuilder::credential_hook`] with a hook already in a [`HookHandle`].
    pub fn credential_hook_handle(mut self, hook: HookHandle) -> RelayBuilder {
        self.hooks.credentials = Some(hook);
        self
    }

    /// Receives every lifecycle event (allocation created, refreshed, deleted with its usage;
    /// permissions, channels, auth failures, refused peers), after the daemon's own consumers.
    /// Called on the worker that caused the event: keep it short and non-blocking.
    pub fn events(mut self, sink: Arc<dyn EventSink>) -> RelayBuilder {
        self.hooks.events = Some(sink);
        self
    }

    /// Asked after the built-in peer policy (which it can never loosen) for each peer a user
    /// permits, binds a channel to or connects to; a deny is a 403 like the policy's. Called on the
    /// worker at request time, never per packet: keep it cheap (see [`crate::server::PeerHook`]).
    pub fn peer_hook(mut self, hook: Arc<dyn crate::server::PeerHook>) -> RelayBuilder {
        self.hooks.peers = Some(hook);
        self
    }

    /// Chooses the relay IP and port range of each new allocation (per user or tenant: pion's
    /// `RelayAddressGenerator`); `None` from the hook means the configured default (see
    /// [`crate::server::RelayAddressHook`]).
    pub fn relay_address_hook(mut self, hook: Arc<dyn crate::server::RelayAddressHook>) -> RelayBuilder {
        self.hooks.relay_addresses = Some(hook);
        self
    }

    /// The daemon's own setup (the binary's: its certificate, configuration source, development
    /// secret, reload hook). The builder's hooks and certificate are put into it.
    pub fn setup(self, setup: Setup) -> RelayBuilder {
        RelayBuilder { setup: Some(setup), ..self }
    }

    /// The configuration as it will run (the `listen` addresses applied), or why not.
    fn finish(self) -> Result<(Config, Option<TlsSetup>, Hooks, Option<Setup>), ConfigError> {
        let RelayBuilder { mut config, listen, tls, hooks, setup } = self;
        if let Some(first) = listen.first() {
            if let Some(other) = listen.iter().find(|a| a.port() != first.port()) {
                let message = format!("{first} and {other}: the listen addresses share one port");
                return Err(ConfigError::InvalidValue { key: "listening-port".to_owned(), message });
            }
            config.listening_port = first.port();
            config.listening_ip = Vec::new();
            for addr in &listen {
                if !config.listening_ip.contains(&addr.ip()) {
                    config.listening_ip.push(addr.ip());
                }
            }
        }
        if tls.is_some() {
            config.no_tls = false;
        }
        config.validate()?;
        config.validate_serving(setup.as_ref().is_some_and(|s| s.dev_secret.is_some()))?;
        Ok((config, tls, hooks, setup))
    }

    /// Binds every listener and face and starts serving; must be called inside a tokio runtime
    /// (the server's tasks are spawned on it).
    pub async fn spawn(self) -> Result<RelayHandle, DaemonError> {
        let (config, tls, hooks, setup) = self.finish()?;
        let current = Arc::new(Mutex::new(config.clone()));
        let mut setup = match setup {
            Some(setup) => setup,
            None => {
                // A reload from another trigger (the admin API) reads the last applied config.
                let cell = current.clone();
                let source = Arc::new(move || Ok(cell.lock().unwrap_or_else(|e| e.into_inner()).clone()));
                Setup::new(TlsSetup::Off, source)
            }
        };
        if let Some(tls) = tls {
            setup.tls = tls;
        }
        if hooks.credentials.is_some() {
            setup.hooks.credentials = hooks.credentials;
        }
        if hooks.events.is_some() {
            setup.hooks.events = hooks.events;
        }
        if hooks.peers.is_some() {
            setup.hooks.peers = hooks.peers;
        }
        if hooks.relay_addresses.is_some() {
            setup.hooks.relay_addresses = hooks.relay_addresses;
        }
        let daemon = Daemon::start(&config, setup).await?;
        Ok(RelayHandle { daemon, current })
    }

    /// [`RelayBuilder::spawn`], then serves until ctrl-c (SIGINT), drains (up to `drain-timeout`)
    /// and shuts down.
    pub async fn run(self) -> Result<(), DaemonError> {
        let relay = self.spawn().await?;
        let stopped = tokio::signal::ctrl_c().await;
        if let Err(e) = stopped {
            tracing::warn!(error = %e, "cannot wait for ctrl-c: shutting down");
        }
        relay.drain().await;
        relay.shutdown().await;
        Ok(())
    }
}

/// One live allocation, as [`RelayHandle::allocation_list`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AllocationSummary {
    /// Its id.
    pub id: AllocationId,
    /// The username the client authenticated with.
    pub username: String,
    /// The user its quota counts against.
    pub user: String,
    /// The client's transport.
    pub transport: Transport,
    /// The client's address.
    pub client: SocketAddr,
    /// The relayed address, as advertised in XOR-RELAYED-ADDRESS (RFC 8656 §7.3).
    pub relayed: SocketAddr,
    /// What it relayed so far.
    pub usage: Usage,
    /// Seconds since it was made.
    pub age_secs: u64,
    /// Seconds until it expires without a Refresh (RFC 8656 §8).
    pub expires_in_secs: u64,
}

/// A running embedded server: what [`RelayBuilder::spawn`] returns.
pub struct RelayHandle {
    daemon: Daemon,
    /// The configuration last applied (at spawn, or by [`RelayHandle::reload`]).
    current: Arc<Mutex<Config>>,
}

impl std::fmt::Debug for RelayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayHandle").field("local_addrs", &self.local_addrs()).finish_non_exhaustive()
    }
}

impl RelayHandle {
    /// What the TURN listeners bound: each address with its transport (port 0 resolved).
    pub fn local_addrs(&self) -> &[Listener] {
        self.daemon.running().local_addrs()
    }

    /// RFC 7065 URIs of the listeners: `turn:…?transport=udp`, `turn:…?transport=tcp`,
    /// `turns:…?transport=tcp` (IP literals; an IPv6 one in brackets).
    pub fn turn_urls(&self) -> Vec<String> {
        self.local_addrs()
            .iter()
            .map(|l| match l.transport {
                Transport::Udp => format!("turn:{}?transport=udp", l.addr),
                Transport::Tcp => format!("turn:{}?transport=tcp", l.addr),
                Transport::Tls => format!("turns:{}?transport=tcp", l.addr),
            })
            .collect()
    }

    /// The configuration in force: the one spawned, or the last [`RelayHandle::reload`] applied
    /// (change it and reload it).
    pub fn config(&self) -> Config {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The number of live allocations.
    pub fn allocations(&self) -> usize {
        self.daemon.server().allocations().len()
    }

    /// The live allocations.
    pub fn allocation_list(&self) -> Vec<AllocationSummary> {
        let server = self.daemon.server();
        let millis = server.millis(Instant::now());
        server
            .allocations()
            .all()
            .iter()
            .map(|a| {
                let info = a.info();
                AllocationSummary {
                    id: a.id(),
                    username: a.username().to_owned(),
                    user: a.quota_user().to_owned(),
                    transport: info.five_tuple.transport,
                    client: info.five_tuple.client,
                    relayed: info.advertised_addr,
                    usage: Usage::of(&a.counters),
                    age_secs: a.age_secs(millis),
                    expires_in_secs: a.expires().saturating_sub(millis) / 1000,
                }
            })
            .collect()
    }

    /// The Prometheus text exposition `/metrics` serves, rendered now.
    pub fn metrics(&self) -> String {
        self.daemon.metrics_text()
    }

    /// The metrics face's routes (`GET /metrics`, `/healthz`, `/readyz`) to mount into your own
    /// axum app: `Router::new().nest("/turn", relay.router())`.
    pub fn router(&self) -> axum::Router {
        self.daemon.metrics_router()
    }

    /// The token service (`/v1/...`) to mount into your own axum app, when `api-key` is
    /// configured (through [`RelayBuilder::configure`] or the config): see
    /// [`Daemon::api_router`]. Serve the app with
    /// `into_make_service_with_connect_info::<SocketAddr>()`: the service limits each source.
    pub fn api_router(&self) -> Option<axum::Router> {
        self.daemon.api_router()
    }

    /// The admin API (`/admin/...`) to mount into your own axum app, when `admin-key` is
    /// configured: see [`Daemon::admin_router`].
    pub fn admin_router(&self) -> Option<axum::Router> {
        self.daemon.admin_router()
    }

    /// The sans-IO core (its stats, its allocation table, its admission).
    pub fn server(&self) -> &Arc<TurnServer> {
        self.daemon.server()
    }

    /// The daemon underneath (the `switchback` binary's signals, banner and SIGHUP reloads).
    pub fn daemon(&self) -> &Daemon {
        &self.daemon
    }

    /// Applies `config` as a SIGHUP applies a re-read `turn.toml`: credentials, peer policy,
    /// quotas, revocations, keys and drain timeout change (the keys of
    /// [`RELOADABLE`](super::RELOADABLE)), live allocations keep theirs; the credential
    /// hook and the event sink stay. Refused as a whole when it does not hold together. Returns a
    /// one-line summary of what is in force. Listeners and other keys outside `RELOADABLE` keep
    /// their start values (a configuration built in code cannot tell which of those changed, so
    /// none is named).
    pub async fn reload(&self, config: Config) -> Result<String, DaemonError> {
        let reloader = self.daemon.reloader().clone();
        let applied = config.clone();
        let summary = tokio::task::spawn_blocking(move || reloader.reload_with(config, "embedder"))
            .await
            .map_err(|e| DaemonError::Reload(format!("the reload task failed: {e}")))?
            .map_err(DaemonError::Reload)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = applied;
        Ok(summary)
    }

    /// Refuses new allocations (508, or 300 to an `alternate-server`) and marks `/readyz` not
    /// ready, while the live allocations carry on; returns once none is left or `drain-timeout`
    /// has passed.
    pub async fn drain(&self) {
        self.daemon.set_unready();
        self.daemon.drain().await;
    }

    /// Stops every listener and face (live allocations end: their Deleted events are emitted) and
    /// waits for their tasks.
    pub async fn shutdown(self) {
        self.daemon.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_become_listening_ip_and_one_port() {
        let (config, ..) = Relay::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .listen("127.0.0.2:0".parse().unwrap())
            .listen("127.0.0.1:0".parse().unwrap())
            .finish()
            .unwrap();
        assert_eq!(config.listening_ip, ["127.0.0.1".parse::<IpAddr>().unwrap(), "127.0.0.2".parse().unwrap()]);
        assert_eq!(config.listening_port, 0);
        let two_ports = Relay::builder()
            .listen("127.0.0.1:3478".parse().unwrap())
            .listen("127.0.0.2:3479".parse().unwrap())
            .finish();
        assert!(matches!(two_ports, Err(ConfigError::InvalidValue { key, .. }) if key == "listening-port"));
        let (untouched, ..) = Relay::builder().finish().unwrap();
        assert_eq!(untouched.listening_ip, Config::default().listening_ip, "no listen: the configuration's");
    }

    #[test]
    fn setters_fill_the_config_and_an_invalid_one_is_refused_naming_the_key() {
        let (config, ..) = Relay::builder()
            .realm("r.example")
            .user("ann", "pw")
            .static_auth_secret("s")
            .user_quota(3)
            .total_quota(7)
            .allow_loopback_peers(true)
            .max_lifetime(Duration::from_secs(60))
            .configure(|c| c.mobility = true)
            .finish()
            .unwrap();
        assert_eq!(config.realm.as_deref(), Some("r.example"));
        assert_eq!(config.users.get("ann").map(|p| p.0.as_str()), Some("pw"));
        assert_eq!(config.static_auth_secret.len(), 1);
        assert_eq!((config.user_quota, config.total_quota, config.allow_loopback_peers), (3, 7, true));
        assert_eq!((config.max_lifetime, config.default_lifetime), (60, 60), "the default lowered to the max");
        assert!(config.mobility);
        let refused = Relay::builder().configure(|c| c.min_port = 0).finish();
        assert!(matches!(refused, Err(ConfigError::InvalidValue { key, .. }) if key == "min-port"));
    }
}
