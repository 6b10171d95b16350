//! A whole server from a [`Config`]: the TURN listeners, the HTTP faces, reload and drain — what
//! the `switchback` binary runs, as a library so an embedder can run the same.
//!
//! An embedder starts it with [`Relay::builder`] ([`embed`], docs/embedding.md): the builder fills
//! a [`Config`], adds the embedder's [`Hooks`] and calls [`Daemon::start`]. The command line
//! (flags, subcommands, signals, logging, the banner) stays in the binary: it builds a [`Config`]
//! and a [`Setup`] saying where a reload reads the configuration from, starts through the same
//! builder ([`Relay::from_config`], [`RelayBuilder::setup`]), and decides when to
//! [`Daemon::reload`], [`Daemon::drain`] and [`Daemon::shutdown`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchback::config::Config;
//! use switchback::daemon::{Daemon, Setup, TlsSetup};
//!
//! # async fn run() -> Result<(), switchback::daemon::DaemonError> {
//! let config = Config { listening_port: 0, ..Config::default() };
//! let again = config.clone();
//! let setup = Setup::new(TlsSetup::Off, Arc::new(move || Ok(again.clone())));
//! let daemon = Daemon::start(&config, setup).await?;
//! for listener in daemon.running().local_addrs() {
//!     println!("listening {} {}", listener.transport_name(), listener.addr);
//! }
//! daemon.drain().await;
//! daemon.shutdown().await;
//! # Ok(()) }
//! ```

pub mod banner;
pub mod embed;
pub mod events;
mod faces;
pub mod fleet;
pub mod fleet_leases;
mod reload;
mod revoke;
pub(crate) mod session_log;
mod tls;
pub mod usage;
pub(crate) mod userdb;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tracing::{info, warn};

use crate::auth::hook::HookHandle;
use crate::auth::{AuthConfig, Authenticator};
use crate::config::{Config, ConfigError};
use crate::http::health::Readiness;
use crate::http::{Face, HttpError, HttpRunning};
use crate::io::{self, IoError, Limits, ReloadableTls, Running, TurnServer, UdpRelay};
use crate::server::{EventSink, Transport};

pub use embed::{AllocationSummary, Relay, RelayBuilder, RelayHandle};
pub use reload::{ConfigSource, RELOADABLE, ReloadHook, Reloader};
pub use revoke::Revoker;
pub use tls::{TlsSetup, configured_tls};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration does not hold together (names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A TURN listener could not be bound.
    #[error(transparent)]
    Io(#[from] IoError),
    /// An HTTP face could not be bound.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The OS gave no randomness for the nonce key.
    #[error("no randomness from the OS: {0}")]
    Random(#[from] getrandom::Error),
    /// `usage-file` cannot be opened.
    #[error(transparent)]
    Usage(#[from] usage::UsageError),
    /// `redis-url` cannot be used (never shows the URL).
    #[error(transparent)]
    Fleet(#[from] crate::fleet::FleetError),
    /// A reload was refused as a whole (names the problem); the old configuration stays.
    #[error("reload refused: {0}")]
    Reload(String),
}

/// What an embedder adds to a daemon that a configuration file cannot say (issue #18): kept for
/// the daemon's whole life, across reloads.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Hooks {
    /// Credentials for names that are neither static users nor REST usernames (a database of
    /// users): in the authenticator at start and in every one a reload builds. With a hook TURN is
    /// on even when the configuration has no secret and no user.
    pub credentials: Option<HookHandle>,
    /// Receives every lifecycle event after the daemon's own consumers (session log, usage file,
    /// fleet), synchronously on the worker that caused it: keep it short and non-blocking.
    pub events: Option<Arc<dyn EventSink>>,
    /// Asked after the built-in peer policy for each CreatePermission, ChannelBind and Connect
    /// peer; can only deny more (see [`crate::server::PeerHook`]).
    pub peers: Option<Arc<dyn crate::server::PeerHook>>,
    /// Chooses the relay address and port range per user or tenant (see
    /// [`crate::server::RelayAddressHook`]).
    pub relay_addresses: Option<Arc<dyn crate::server::RelayAddressHook>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("credentials", &self.credentials.is_some())
            .field("events", &self.events.is_some())
            .field("peers", &self.peers.is_some())
            .field("relay_addresses", &self.relay_addresses.is_some())
            .finish()
    }
}

/// What [`Daemon::start`] needs besides the configuration.
pub struct Setup {
    /// The TLS listeners' certificate.
    pub tls: TlsSetup,
    /// The development default's generated REST secret, kept across reloads (`None` otherwise).
    pub dev_secret: Option<String>,
    /// Where a reload reads the configuration (the same flags and file as at start).
    pub source: ConfigSource,
    /// Called with each configuration a reload applies (the binary sets its log level here).
    pub on_reload: Option<ReloadHook>,
    /// The embedder's credential hook and event sink.
    pub hooks: Hooks,
}

impl Setup {
    /// A setup without development secret and reload hook.
    pub fn new(tls: TlsSetup, source: ConfigSource) -> Setup {
        Setup { tls, dev_secret: None, source, on_reload: None, hooks: Hooks::default() }
    }
}

/// A running server: TURN listeners, HTTP faces, the reloader.
pub struct Daemon {
    server: Arc<TurnServer>,
    running: Running,
    http: HttpRunning,
    readiness: Readiness,
    reloader: Arc<Reloader>,
    self_signed: Option<String>,
    events: Arc<events::DaemonEvents>,
    /// What `/metrics` renders, read at each render.
    metrics: Arc<prometheus_client::registry::Registry>,
    /// `/metrics`, `/healthz`, `/readyz` (served on `metrics-listen` when set).
    metrics_routes: axum::Router,
    /// The token service's and the admin API's routes, when their keys are configured.
    api_routes: Option<axum::Router>,
    admin_routes: Option<axum::Router>,
    interim: Option<tokio::task::JoinHandle<()>>,
    fleet: Option<Arc<fleet::Fleet>>,
    /// Re-reads coturn's user database every `redis-userdb-interval` seconds.
    userdb_watch: Option<tokio::task::JoinHandle<()>>,
}

/// How often a drain logs how many allocations are left.
const DRAIN_REPORT: Duration = Duration::from_secs(5);

/// 32 random bytes: a nonce key, or the development secret (as hex).
pub fn random_key() -> Result<[u8; 32], getrandom::Error> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(key)
}

/// 32 random bytes as 64 hex digits (the development default's REST secret).
pub fn random_hex() -> Result<String, getrandom::Error> {
    Ok(random_key()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Daemon {
    /// Binds every listener and HTTP face `config` asks for and starts serving; `/readyz` is 200
    /// once this returns.
    pub async fn start(config: &Config, setup: Setup) -> Result<Daemon, DaemonError> {
        // coturn's user database (redis-userdb): its users, secrets and quotas join the file's.
        let last_userdb = userdb::LastRead::default();
        let merged = userdb::with_userdb(config.clone(), &last_userdb).await;
        let config = &merged;
        // One key for a fleet when `nonce-secret` is set: each node accepts the others' nonces.
        let nonce_key = match config.nonce_key() {
            Some(key) => key,
            None => random_key()?,
        };
        let auth = authenticator(config, setup.hooks.credentials.as_ref(), nonce_key, setup.dev_secret.is_some())?;
        let (tls, self_signed) = tls::listener_tls(config, setup.tls);
        let (tls, handed_over) = tls::with_api_on_tls(config, tls)?;
        if config.proxy_protocol {
            info!(
                balancers = config.proxy_protocol_from.len(),
                "proxy-protocol: TCP and TLS connections need a PROXY v2 header"
            );
        }
        let server = UdpRelay::server(config.server_options(), auth);
        // The core keeps these across reloads (a reload swaps options, never the hooks).
        server.set_peer_hook(setup.hooks.peers.clone());
        server.set_relay_address_hook(setup.hooks.relay_addresses.clone());
        let revoked = config.revocation_list()?;
        if !revoked.is_empty() {
            info!(entries = revoked.len(), "revocation list loaded");
        }
        let revoker = Arc::new(Revoker::new(server.clone(), revoked, config.revocation_file.clone()));
        let limits = Limits {
            tcp_auth_timeout: Duration::from_secs(config.tcp_auth_timeout),
            tcp_idle_timeout: Duration::from_secs(config.tcp_idle_timeout),
            max_tcp_connections_per_source: config.tcp_connections_per_source as usize,
            ..Limits::default()
        };
        let running = io::bind_with_tls(config, server.clone(), limits, tls).await?;
        let node = events::node_id(config, running.local_addrs().first().map(|l| l.addr));
        let fleet = fleet::Fleet::of(config, &node)?;
        // Fleet-wide quotas (issue #16 §2): each new Allocate takes a lease in Redis first.
        let leases = match &fleet {
            Some(f) if config.user_quota != 0 || config.total_quota != 0 => {
                let ledger = fleet_leases::FleetLedger::new(f.backend().clone(), f.node(), f.stats().clone());
                crate::io::lease::use_ledger(&server, Arc::new(ledger));
                Some(fleet_leases::lease_keeper(f.backend().clone(), f.node(), server.clone(), f.stats().clone()))
            }
            _ => None,
        };
        let events = events::DaemonEvents::new(config, node)?
            .with_fleet(fleet.as_ref().and_then(|f| f.sink()))
            .with_leases(leases)
            .with_fast_path(config, &server)
            .with_forward(setup.hooks.events.clone());
        let events = Arc::new(events);
        server.set_events(events.clone());
        let interim = (config.usage_file.is_some() && config.usage_interval > 0).then(|| {
            let interval = Duration::from_secs(config.usage_interval);
            tokio::spawn(events::interim_records(server.clone(), events.clone(), interval))
        });
        let readiness = Readiness::new();
        let reloader = Arc::new(Reloader {
            source: setup.source,
            dev_secret: setup.dev_secret,
            on_reload: setup.on_reload,
            server: server.clone(),
            tls: running.tls().cloned(),
            nonce_key,
            drain_timeout: AtomicU64::new(config.drain_timeout),
            lock: std::sync::Mutex::new(()),
            keys: faces::FaceKeys::of(config)?,
            revoker: revoker.clone(),
            started: config.clone(),
            fleet: fleet.as_ref().map(|f| f.placement().clone()),
            userdb: last_userdb,
            credentials: setup.hooks.credentials.clone(),
        });
        let userdb_watch = userdb::watch(config, reloader.clone());
        let fleet_stats = fleet.as_ref().map(|f| f.stats().clone());
        let metrics = faces::metrics_registry(&server, &running, fleet_stats);
        let metrics_routes = faces::metrics_router(&readiness, &metrics);
        let mut faces = faces::http_faces(config, &readiness, &server, &metrics_routes, &reloader);
        let api = match reloader.keys.api.clone() {
            Some(keys) => Some(faces::api_router(config, &running, &server, keys, &revoker, fleet.as_ref())?),
            None => None,
        };
        let api_routes = api.clone();
        let admin_routes = faces::admin_routes(&readiness, &server, &reloader);
        if let (Some(addr), Some(router)) = (config.api_listen, api.clone()) {
            let face = Face::new("api", addr, router);
            faces.push(match running.tls().filter(|_| config.api_tls) {
                Some(tls) => face.with_tls(crate::http::tls::http_config(&tls.server_config())),
                None => face,
            });
        }
        for (key, addr) in [("metrics-listen", config.metrics_listen), ("admin-listen", config.admin_listen)] {
            if let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) {
                warn!(key, %addr, "plain HTTP off loopback: keep this face on a private network or behind TLS");
            }
        }
        let mut http = crate::http::bind(faces).await?;
        if let (Some(connections), Some(router)) = (handed_over, api) {
            let tls_addrs: Vec<_> =
                running.local_addrs().iter().filter(|l| l.transport == Transport::Tls).map(|l| l.addr).collect();
            info!(listeners = tls_addrs.len(), "api-on-tls: /v1 on the TURN-TLS port for ALPN http/1.1");
            http.serve_handed_over("api-on-tls", &tls_addrs, connections, router);
        }
        if let Some(fleet) = &fleet {
            revoker.set_fleet(fleet.clone());
            fleet.start(config, &server, &running, &revoker);
        }
        readiness.set(true);
        Ok(Daemon {
            server,
            running,
            http,
            readiness,
            reloader,
            self_signed,
            events,
            metrics,
            metrics_routes,
            api_routes,
            admin_routes,
            interim,
            fleet,
            userdb_watch,
        })
    }

    /// The TURN core.
    pub fn server(&self) -> &Arc<TurnServer> {
        &self.server
    }

    /// The TURN listeners (their bound addresses, their counters).
    pub fn running(&self) -> &Running {
        &self.running
    }

    /// The HTTP faces' listeners.
    pub fn http(&self) -> &HttpRunning {
        &self.http
    }

    /// The Prometheus text exposition `/metrics` serves, rendered now (whether or not
    /// `metrics-listen` is set).
    pub fn metrics_text(&self) -> String {
        crate::http::metrics::render(&self.metrics)
    }

    /// The routes of the metrics face — `GET /metrics`, `/healthz`, `/readyz` — to mount into an
    /// embedder's own axum app (the same ones `metrics-listen` serves, when set).
    pub fn metrics_router(&self) -> axum::Router {
        self.metrics_routes.clone()
    }

    /// The token service's routes (`/v1/...`: access tokens, relay configuration, revocations),
    /// when API keys are configured (`api-key`), to mount into an embedder's own axum app: the
    /// same ones `api-listen` serves, when set. It rate-limits per source address, so serve the
    /// app with `into_make_service_with_connect_info::<SocketAddr>()` (a 500 without it).
    pub fn api_router(&self) -> Option<axum::Router> {
        self.api_routes.clone()
    }

    /// The admin API's routes (`/admin/...`: reload, drain, revocations, allocations), when an
    /// admin key is configured, to mount into an embedder's own app (the same ones `admin-listen`
    /// serves, when set). Keep them off the public side of your app: they need the admin key, but
    /// they are operator tools.
    pub fn admin_router(&self) -> Option<axum::Router> {
        self.admin_routes.clone()
    }

    /// The development certificate's SHA-256 fingerprint, when TLS runs on one.
    pub fn self_signed_fingerprint(&self) -> Option<&str> {
        self.self_signed.as_deref()
    }

    /// The TLS listeners' certificate, when there are any.
    pub fn tls(&self) -> Option<&ReloadableTls> {
        self.running.tls()
    }

    /// Re-reads the configuration and applies what can change while running (blocking: call it
    /// from `spawn_blocking` inside a runtime). `trigger` names the cause in the log.
    pub fn reload(&self, trigger: &str) -> Result<String, String> {
        self.reloader.reload(trigger)
    }

    /// Reopens the files the daemon appends to (`usage-file`), after logrotate moved them: SIGHUP
    /// and SIGUSR1.
    pub fn reopen_files(&self) {
        self.events.reopen();
    }

    /// The writer of the revocation list (what `POST /v1/revocations` and `POST /admin/revocations`
    /// call).
    pub fn revoker(&self) -> &Arc<Revoker> {
        &self.reloader.revoker
    }

    /// Fleet mode (`redis-url`): the shared backend, the node id, the counters.
    pub fn fleet(&self) -> Option<&Arc<fleet::Fleet>> {
        self.fleet.as_ref()
    }

    /// The reloader, to run a reload from another task.
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// `/readyz` answers 503 from now on (a load balancer stops sending new clients).
    pub fn set_unready(&self) {
        self.readiness.set(false);
    }

    /// Refuses new allocations (the core answers 300 ALTERNATE-SERVER or 508) while the live ones
    /// carry on; returns once none is left or `drain-timeout` (as of the last reload) has passed.
    pub async fn drain(&self) {
        let timeout = Duration::from_secs(self.reloader.current_drain_timeout());
        let server = &self.server;
        server.admission().set_draining(true);
        let live = server.allocations().len();
        info!(allocations = live, timeout_secs = timeout.as_secs(), alternates = ?server.admission().alternates(), "SIGTERM: draining");
        let start = tokio::time::Instant::now();
        let deadline = start + timeout;
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut next_report = start + DRAIN_REPORT;
        loop {
            if server.allocations().is_empty() {
                info!("drained: no allocation left");
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                info!(allocations = server.allocations().len(), "drain-timeout reached");
                return;
            }
            if now >= next_report {
                next_report = now + DRAIN_REPORT;
                let left_secs = deadline.saturating_duration_since(now).as_secs();
                info!(allocations = server.allocations().len(), left_secs, "draining");
            }
            tick.tick().await;
        }
    }

    /// Stops every listener and face and waits for their tasks.
    pub async fn shutdown(self) {
        if let Some(interim) = &self.interim {
            interim.abort();
        }
        if let Some(watch) = &self.userdb_watch {
            watch.abort();
        }
        self.running.shutdown().await;
        self.http.shutdown().await;
        // The allocations closed at shutdown have their records queued: write them out.
        let events = self.events.clone();
        let _ = tokio::task::spawn_blocking(move || events.flush()).await;
        if let Some(fleet) = &self.fleet {
            fleet.stop().await;
        }
        let s = self.server.stats().snapshot();
        // Every allocation is closed by now: the retired totals are all there is.
        info!(
            allocations_created = s.allocations_created,
            allocations_deleted = s.allocations_deleted,
            to_peer_packets = s.retired_to_peer_packets,
            to_peer_bytes = s.retired_to_peer_bytes,
            to_client_packets = s.retired_to_client_packets,
            to_client_bytes = s.retired_to_client_bytes,
            auth_challenges = s.auth_challenges,
            auth_failures = s.auth_failures,
            errors_sent = s.errors_sent,
            dropped = s.dropped(),
            "stopped"
        );
    }
}

/// The long-term credential configuration of `config` with the embedder's credential `hook`;
/// `None` (STUN only) without secret, user and hook. A hook alone turns TURN on with the
/// configured realm (default [`DEFAULT_REALM`](crate::auth::DEFAULT_REALM)).
pub(crate) fn auth_config(config: &Config, hook: Option<&HookHandle>) -> Result<Option<AuthConfig>, ConfigError> {
    let auth = match (config.auth_config()?, hook) {
        (Some(auth), _) => Some(auth),
        (None, Some(_)) => {
            let mut auth = AuthConfig::new(config.realm.as_deref().unwrap_or(crate::auth::DEFAULT_REALM));
            auth.nonce_ttl_secs = config.nonce_lifetime;
            auth.require_sha256 = config.require_sha256;
            Some(auth)
        }
        (None, None) => None,
    };
    Ok(auth.map(|mut auth| {
        auth.hook = hook.cloned();
        auth
    }))
}

/// The long-term credential authenticator `config` (and the embedder's `hook`) asks for, `None`
/// for STUN only.
fn authenticator(
    config: &Config,
    hook: Option<&HookHandle>,
    nonce_key: [u8; 32],
    dev: bool,
) -> Result<Option<Authenticator>, ConfigError> {
    Ok(match auth_config(config, hook)? {
        Some(auth) => {
            info!(
                realm = %auth.realm,
                rest_secrets = auth.rest.as_ref().map_or(0, |r| r.secrets.len()),
                users = auth.users.len(),
                credential_hook = auth.hook.is_some(),
                oauth_keys = auth.oauth.as_ref().map_or(0, |o| o.keys.len()),
                loopback_peers = config.allow_loopback_peers,
                development_default = dev,
                "TURN on (UDP)"
            );
            Some(Authenticator::new(auth, nonce_key))
        }
        None if config.realm.is_some() => {
            warn!("realm is set but there is no static-auth-secret and no user: STUN only");
            None
        }
        None => {
            info!("no static-auth-secret and no users configured: STUN only (TURN requests get 400)");
            None
        }
    })
}
