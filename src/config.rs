//! The one configuration schema: `turn.toml` and the daemon's flags both map onto [`Config`].
//!
//! Loading goes through a [`toml::Table`] so that every error can name the key it is about:
//! 1. the text is parsed as TOML ([`ConfigError::Syntax`]);
//! 2. every key must be known ([`ConfigError::UnknownKey`]);
//! 3. every value must have the right type and form ([`ConfigError::InvalidValue`]);
//! 4. the credential files (`static-auth-secret-file`, `users-file`) are read
//!    ([`Config::read_secret_files`]);
//! 5. [`Config::validate`] checks what no single key can (for example `--no-udp` with `--no-tcp`).
//!
//! [`Config::server_options`] and [`Config::auth_config`] are the one place where the keys become
//! the options of the sans-IO server and of the long-term credential mechanism.
//!
//! The daemon turns its flags into a second table of the same keys, laid over the `SWITCHBACK_*`
//! environment variables ([`env_overrides`]), and lays it over the file's ([`Config::from_sources`]):
//! a flag replaces the environment's value for that key, which replaces the file's.
//!
//! ```
//! use switchback::config::Config;
//!
//! let config = Config::from_toml_str("listening-port = 3479\nno-tcp = true\n")?;
//! assert_eq!(config.listening_port, 3479);
//! assert!(Config::from_toml_str("cert = \"c.pem\"").is_err()); // pkey is missing
//! # Ok::<(), switchback::config::ConfigError>(())
//! ```

pub mod api;
pub mod coturn;
pub mod duration;
mod env;
mod error;
mod external_ip;
mod fleet;
mod host_addrs;
mod kinds;
mod limits;
mod listen;
mod load;
mod oauth;
mod overrides;
mod public_host;
mod relay;
mod secret_files;
mod suggest;
mod tls;
mod turn;
mod userdb;
mod validate;
mod values;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use crate::auth::{AuthConfig, RestAlgorithm, RestCredentials};
use crate::policy::rate::RateLimit;
use crate::server::ServerOptions;

pub use crate::policy::{AddrRuleError, PeerAddrs, PeerRule};
pub use env::{ENV_NOT_KEYS, ENV_PREFIX, env_overrides, env_var};
pub use error::ConfigError;
pub use external_ip::ExternalIp;
pub use fleet::redacted_url;
pub use kinds::{FastPath, LogFormat, LogLevel, RedisFailure, SecretText};
pub use load::{check_table, keys, parse_table};
pub use overrides::{Overrides, flag_error};
pub use relay::{advertised_addr, relay_addresses};
pub use secret_files::{parse_secrets, parse_users};
pub use tls::DEFAULT_TLS_PORT;
pub use userdb::{Userdb, userdb_url};
pub use values::value_from_str;

pub use crate::auth::DEFAULT_REALM;

/// The `rest-algorithm` spellings: `sha1` (the default, coturn's) and `sha256`.
#[derive(Deserialize)]
#[serde(remote = "RestAlgorithm", rename_all = "lowercase")]
enum RestAlgorithmName {
    Sha1,
    Sha256,
}

/// The daemon's configuration. Field docs give the `turn.toml` key; see `turn.toml` at the repository
/// root for a commented example. Options marked *(not supported yet)* are rejected when set.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// `listening-ip`: addresses to listen on (default `[127.0.0.1]`).
    pub listening_ip: Vec<IpAddr>,
    /// `listening-port`: UDP and TCP port (default 3478; 0 lets the OS choose).
    pub listening_port: u16,
    /// `tls-listening-port`: TLS port (default 5349, or 0 when `listening-port` is 0; see
    /// [`Config::tls_port`]).
    pub tls_listening_port: Option<u16>,
    /// `rfc5780`: RFC 5780 NAT behaviour discovery on UDP (coturn's spelling): the first two
    /// `listening-ip` addresses (one family) × `listening-port` and `alt-listening-port`, four
    /// sockets; Binding answers carry OTHER-ADDRESS and RESPONSE-ORIGIN and follow CHANGE-REQUEST
    /// and RESPONSE-PORT (RFC 5780 §6, §7). Off by default: its answers amplify (all of them count
    /// against `rate-limit-unauth`).
    pub rfc5780: bool,
    /// `alt-listening-port`: RFC 5780's alternate port (§6; default `listening-port` + 1, or 0
    /// when `listening-port` is 0; see [`Config::alt_port`]).
    pub alt_listening_port: Option<u16>,
    /// `relay-ip`: addresses for relay sockets; allocations are spread round-robin over those of a
    /// family (default: the address each Allocate arrived on). See [`relay_addresses`].
    pub relay_ip: Vec<IpAddr>,
    /// `external-ip`: `PUBLIC[/PRIVATE]` for 1:1 NAT, the address told to clients in
    /// XOR-RELAYED-ADDRESS; a list for several private addresses (one entry each). See
    /// [`relay_addresses`].
    #[serde(deserialize_with = "external_ip::one_or_many")]
    pub external_ip: Vec<ExternalIp>,
    /// `public-host`: the host (a DNS name or an address) in every generated URL — the `iceServers`
    /// of `/v1/relay-configuration`, of `switchback credentials` and of the banner — instead of the
    /// listening addresses (mapped through `external-ip`). See [`Config::public_host`].
    pub public_host: Option<String>,
    /// `min-port`: lowest relay port (default 49152).
    pub min_port: u16,
    /// `max-port`: highest relay port (default 65535).
    pub max_port: u16,
    /// `realm`: the long-term credential realm (default [`DEFAULT_REALM`] when credentials exist).
    pub realm: Option<String>,
    /// `static-auth-secret`: REST shared secrets; the first mints, all verify. After loading it also
    /// holds the secrets of `static-auth-secret-file` (after these).
    pub static_auth_secret: Vec<SecretText>,
    /// `static-auth-secret-file`: a file holding the secrets, one a line.
    pub static_auth_secret_file: Option<PathBuf>,
    /// `use-auth-secret`: REST (shared secret) credentials; on whenever a secret is given, so this
    /// only insists that one is.
    pub use_auth_secret: bool,
    /// `users`: long-term credentials, name → password or `0x<32 hex digits>` (the MD5 key). After
    /// loading it also holds the users of `users-file`.
    pub users: BTreeMap<String, SecretText>,
    /// `users-file`: a file of `name:password` or `name:0x<key>` lines.
    pub users_file: Option<PathBuf>,
    /// `max-credential-lifetime`: the furthest ahead a REST username's expiry may lie, seconds
    /// (default 172800 = 48 h; 0 = no cap).
    pub max_credential_lifetime: u64,
    /// `rest-separator`: between the expiry and the user in a REST username (default `:`).
    pub rest_separator: char,
    /// `rest-algorithm`: the REST password HMAC, `sha1` (default) or `sha256`.
    #[serde(with = "RestAlgorithmName")]
    pub rest_algorithm: RestAlgorithm,
    /// `nonce-lifetime`: seconds a NONCE stays valid before 438 Stale Nonce (default 3600).
    pub nonce_lifetime: u64,
    /// `require-sha256`: refuse the MD5 password algorithm (RFC 8489 §9.2.4, §18.5.1.1): 401 and 438
    /// offer SHA-256 alone, and RFC 5389 clients (MD5 only: browsers, coturn's tools) get 401
    /// (default false).
    pub require_sha256: bool,
    /// `default-lifetime`: allocation lifetime when the client asks for less or none, seconds
    /// (default 600, RFC 8656 §7.2).
    pub default_lifetime: u32,
    /// `max-lifetime`: longest allocation lifetime granted, seconds (default 3600).
    pub max_lifetime: u32,
    /// `allow-loopback-peers`: let peers be loopback addresses.
    pub allow_loopback_peers: bool,
    /// `allowed-peer-ip`: peers allowed despite the default deny list (they win over every deny).
    pub allowed_peer_ip: Vec<PeerRule>,
    /// `denied-peer-ip`: peers denied in addition to the special-purpose blocks.
    pub denied_peer_ip: Vec<PeerRule>,
    /// `cert`: TLS certificate chain, PEM, leaf first (with `pkey`; TLS listeners run with them).
    pub cert: Option<PathBuf>,
    /// `pkey`: TLS private key of `cert`, PEM (PKCS#8, RSA or EC).
    pub pkey: Option<PathBuf>,
    /// `no-udp`: do not listen on UDP.
    pub no_udp: bool,
    /// `no-tcp`: do not listen on TCP.
    pub no_tcp: bool,
    /// `no-tls`: do not listen on TLS (also not with the development default's certificate).
    pub no_tls: bool,
    /// `no-tcp-relay`: refuse RFC 6062 TCP allocations (REQUESTED-TRANSPORT TCP gets 442).
    pub no_tcp_relay: bool,
    /// `no-legacy-dual-allocation`: take ADDITIONAL-ADDRESS-FAMILY only under RFC 8656's code point
    /// 0x8000, not under the draft's 0x8032 that coturn 4.6.1 and `turnutils_uclient -Z` send.
    pub no_legacy_dual_allocation: bool,
    /// `mobility`: RFC 8016 mobility (coturn's spelling): an allocation asked with an empty
    /// MOBILITY-TICKET gets a ticket, and a Refresh carrying it from a new 5-tuple (a client moving
    /// from Wi-Fi to LTE) moves the allocation there. Off by default (MOBILITY-TICKET gets 405).
    pub mobility: bool,
    /// `fast-path`: `off` (the default) or `xdp`: bound IPv4 channels of UDP allocations without a
    /// bandwidth limit relayed by an XDP program on `xdp-interface` (issue #19; build feature `xdp`).
    pub fast_path: FastPath,
    /// `xdp-interface`: the network interface the XDP program attaches to (with `fast-path = "xdp"`):
    /// the one the server's listening and relay addresses are on.
    pub xdp_interface: Option<String>,
    /// `user-quota`: allocations per user (0 = unlimited, the default).
    pub user_quota: u32,
    /// `total-quota`: allocations in total (0 = unlimited, the default).
    pub total_quota: u32,
    /// `max-bps`: relayed bytes per second per allocation, each direction (coturn's unit; 0 =
    /// unlimited, the default).
    pub max_bps: u64,
    /// `software`: SOFTWARE attribute in responses (default: none), at most 127 characters.
    pub software: Option<String>,
    /// `strict-rfc8656`: only channel numbers 0x4000–0x4FFF count as ChannelData.
    pub strict_rfc8656: bool,
    /// `log-level`: `error`, `warn`, `info` (default), `debug` or `trace`. `RUST_LOG` overrides it.
    pub log_level: LogLevel,
    /// `verbose`: raise `log-level` by this many steps (each `-v` adds one).
    pub verbose: u8,
    /// `log-format`: `human` (default) or `json`.
    pub log_format: LogFormat,
    /// `log-file`: write the log to this file (appended, reopened on SIGHUP and SIGUSR1 for
    /// logrotate) instead of stderr; for hosts without journald. Default: stderr.
    pub log_file: Option<PathBuf>,
    /// `usage-file`: one JSON usage record per ended allocation (and interim ones with
    /// `usage-interval`) appended to this file, reopened on SIGHUP and SIGUSR1 (logrotate); `-`
    /// writes them to stdout. Off when unset. See `docs/usage.md`.
    pub usage_file: Option<PathBuf>,
    /// `usage-interval`: seconds between interim usage records of live allocations (0, the
    /// default: only the final record).
    pub usage_interval: u64,
    /// `node-id`: this node's name in usage records and session logs (default: the host name and
    /// the first listening address, `host/127.0.0.1:3478`).
    pub node_id: Option<String>,
    /// `redis-url`: fleet mode — this node shares revocations, usage and its load (placement) with
    /// every node on the same Redis or Valkey (`redis://[user:password@]host:port[/db]`, `rediss://`
    /// for TLS). Off when unset. Its `Debug` hides it (it may carry a password). See `docs/architecture.md`,
    /// "Fleet mode". After loading it also holds the URL of `redis-url-file`.
    pub redis_url: Option<SecretText>,
    /// `redis-url-file`: a file holding `redis-url` (one carrying a password); not with `redis-url`.
    pub redis_url_file: Option<PathBuf>,
    /// `redis-userdb`: coturn's Redis user database (coturn's spelling; issue #16): the users
    /// (`turn/realm/<realm>/user/<user>/key`), REST secrets (`turn/realm/<realm>/secret`) and
    /// quotas (`user-quota`, `total-quota`, `max-bps`) of this realm join the file's, read at start
    /// and on every reload. A `redis://` URL or coturn's `"ip=… dbname=… password=… port=…"`
    /// (turned into a URL when loaded). Off when unset; its `Debug` hides it.
    pub redis_userdb: Option<SecretText>,
    /// `redis-userdb-file`: a file holding `redis-userdb` (one carrying a password); not with
    /// `redis-userdb`.
    pub redis_userdb_file: Option<PathBuf>,
    /// `redis-userdb-interval`: seconds between reads of `redis-userdb` while running; a read that
    /// finds the realm's users, secrets or quotas changed reloads the configuration, as SIGHUP
    /// would (default 60; 0: read only at start and on reload).
    pub redis_userdb_interval: u64,
    /// `redis-prefix`: the prefix of every key fleet mode uses (default `switchback:`), so fleets
    /// can share one Redis.
    pub redis_prefix: String,
    /// `rate-limit-unauth`: unauthenticated answers (400/401/438) per source IPv4 address or IPv6
    /// /64, `N/s[:burst]` (default `20/s:300`; `0` = no limit). Beyond it requests are dropped.
    #[serde(deserialize_with = "limits::rate_limit")]
    pub rate_limit_unauth: RateLimit,
    /// `rate-limit-binding`: Binding answers count against `rate-limit-unauth` too (default false).
    pub rate_limit_binding: bool,
    /// `rate-limit-allocate`: authenticated Allocate requests per user, `N/s[:burst]` (default
    /// `10/s:20`; `0` = no limit). Beyond it the answer is 486.
    #[serde(deserialize_with = "limits::rate_limit")]
    pub rate_limit_allocate: RateLimit,
    /// `revoked-users`: users (REST user part or static name) or full usernames refused with 403,
    /// their allocations torn down.
    pub revoked_users: Vec<String>,
    /// `revocation-file`: more of them, one a line; re-read on SIGHUP.
    pub revocation_file: Option<PathBuf>,
    /// `strict-expiry`: tear down an allocation when its REST credential expires (default false).
    pub strict_expiry: bool,
    /// `max-permissions`: live permissions (peer IPs) per allocation, 508 beyond (default 64; 0 =
    /// unlimited).
    pub max_permissions: u32,
    /// `max-channels`: live channel bindings per allocation, 508 beyond (default 64; 0 = unlimited).
    pub max_channels: u32,
    /// `user-max-bps`: relayed bytes per second per user across its allocations, each direction
    /// (0 = unlimited, the default).
    pub user_max_bps: u64,
    /// `bps-capacity`: relayed bytes per second for the whole server, each direction (coturn's
    /// name; 0 = unlimited, the default).
    pub bps_capacity: u64,
    /// `api-listen`: `ADDR:PORT` of the token service (`/v1/*`); off when unset.
    pub api_listen: Option<SocketAddr>,
    /// `metrics-listen`: `ADDR:PORT` of `/metrics`, `/healthz` and `/readyz`; off when unset
    /// (loopback recommended).
    pub metrics_listen: Option<SocketAddr>,
    /// `admin-listen`: `ADDR:PORT` of the admin API and status page; off when unset.
    pub admin_listen: Option<SocketAddr>,
    /// `oauth`: RFC 7635 third-party authorization: ACCESS-TOKEN accepted, THIRD-PARTY-AUTHORIZATION
    /// in 401 answers (needs `oauth-key`; long-term credentials keep working beside it).
    pub oauth: bool,
    /// `server-name`: the server name bound into tokens and sent in THIRD-PARTY-AUTHORIZATION
    /// (default: the realm, as in coturn).
    pub server_name: Option<String>,
    /// `oauth-key`: keys shared with the authorization server, `KID:BASE64KEY:ALG` with ALG
    /// `A256GCM` or `A128GCM`; the first 32 or 16 decoded bytes are the key.
    pub oauth_key: Vec<SecretText>,
    /// `proxy-protocol`: every TCP and TLS connection starts with a PROXY protocol v2 header (from
    /// a load balancer) whose source address is the client's (default false; UDP is unchanged).
    pub proxy_protocol: bool,
    /// `proxy-protocol-from`: the load balancers' addresses (IP, IP-IP or CIDR); connections from
    /// elsewhere are closed. Default: any source (then only load balancers must reach the ports).
    pub proxy_protocol_from: Vec<PeerRule>,
    /// `admin-key`: the Bearer key of the admin API (required with `admin-listen`). After loading it
    /// also holds the key read from `admin-key-file`.
    pub admin_key: Option<SecretText>,
    /// `admin-key-file`: a file whose first line is the admin key.
    pub admin_key_file: Option<PathBuf>,
    /// `nonce-secret`: the secret the nonce key is derived from, so that every node of a fleet
    /// sharing it accepts the others' nonces (issue #16; coturn's `stateless-nonce-secret`).
    /// Without it each process draws a random key at start.
    pub nonce_secret: Option<SecretText>,
    /// `nonce-secret-file`: a file whose first line is the nonce secret.
    pub nonce_secret_file: Option<PathBuf>,
    /// `redis-failure`: `open` (the default: a node that cannot reach the fleet's backend admits
    /// under its own quotas) or `closed` (508 until it can).
    pub redis_failure: RedisFailure,
    /// `fleet-front`: this node takes no allocations while a sibling can: every Allocate gets 300
    /// with the least-loaded live sibling (RFC 8155 §6 anycast discovery); it is left out of the
    /// siblings others redirect to. Needs `redis-url` (or `alternate-server`).
    pub fleet_front: bool,
    /// `alternate-server`: `ADDR:PORT`s (at most one per family: a client is sent to the one of its
    /// own family, RFC 8489 §14.15) new allocations are sent to (300 with ALTERNATE-SERVER, RFC
    /// 8489 §10) while draining, or from `alternate-threshold` allocations on.
    pub alternate_server: Vec<SocketAddr>,
    /// `alternate-threshold`: allocation count from which new Allocates are redirected to
    /// `alternate-server` (0, the default: only while draining).
    pub alternate_threshold: u32,
    /// `alternate-domain`: the domain name a TLS client checks the alternate server's certificate
    /// against, sent as ALTERNATE-DOMAIN in a 300 answered over TLS (RFC 8489 §10, §14.16).
    pub alternate_domain: Option<String>,
    /// `drain-timeout`: seconds a drain (SIGTERM) waits for live allocations to end before exiting
    /// (default 30; 0 exits at once).
    pub drain_timeout: u64,
    /// `tcp-auth-timeout`: seconds a TCP/TLS client connection has to make an allocation (or bind
    /// an RFC 6062 connection) before it is closed (default 60, coturn's `max-allocate-timeout`).
    pub tcp_auth_timeout: u64,
    /// `tcp-idle-timeout`: seconds a TCP/TLS client connection without an allocation may stay
    /// silent before it is closed (default 300). One that owns a live allocation is never closed
    /// for idleness: the allocation's lifetime governs it (RFC 8489 §6.2.2).
    pub tcp_idle_timeout: u64,
    /// `tcp-connections-per-source`: TCP/TLS connections one source (IPv4 address, IPv6 /64; the
    /// PROXY header's client behind a balancer) may hold open before they authenticate (default
    /// 64). Authenticated ones count against the user's quota instead.
    pub tcp_connections_per_source: u32,
    /// `api-key`: keys of the trusted backend for `POST /v1/tokens` (Bearer); none turns that
    /// endpoint off. After loading it also holds the keys of `api-key-file`.
    pub api_key: Vec<SecretText>,
    /// `api-key-file`: a file of API keys, one a line.
    pub api_key_file: Option<PathBuf>,
    /// `token-key`: HS256 access-token keys, `[KID:]KEY` (at least 32 bytes); the first mints, all
    /// verify. After loading it also holds the keys of `token-key-file`.
    pub token_key: Vec<SecretText>,
    /// `token-key-file`: a file of `[KID:]KEY` lines.
    pub token_key_file: Option<PathBuf>,
    /// `token-public-key`: `[KID:]FILE`, an Ed25519 (EdDSA) or P-256 (ES256) public key in PEM that
    /// verifies access tokens (the relay cannot mint with it).
    pub token_public_key: Vec<String>,
    /// `token-audience`: what an access token's `aud` must contain (default `switchback`).
    pub token_audience: String,
    /// `token-leeway`: seconds of clock skew allowed on `exp` and `nbf` (default 60).
    pub token_leeway: u64,
    /// `api-max-ttl`: longest lifetime of credentials from `/v1/relay-configuration` and of tokens
    /// from `/v1/tokens`, seconds (default 86400).
    pub api_max_ttl: u64,
    /// `api-cors-origin`: origins (`https://app.example`, or `*`) whose pages may call `/v1`.
    pub api_cors_origin: Vec<String>,
    /// `api-rate-limit`: `/v1` requests per source IPv4 address or IPv6 /64 (default `10/s:20`;
    /// `0` = none); 429 beyond.
    #[serde(deserialize_with = "limits::rate_limit")]
    pub api_rate_limit: RateLimit,
    /// `api-user-rate-limit`: `/v1` requests per token subject or minted user (default `1/s:10`;
    /// `0` = none); 429 beyond.
    #[serde(deserialize_with = "limits::rate_limit")]
    pub api_user_rate_limit: RateLimit,
    /// `api-url-host`: the old name of `public-host`, still accepted with a warning
    /// ([`Config::deprecation_warnings`]); `public-host` wins when both are set.
    pub api_url_host: Option<String>,
    /// `api-tls`: serve `/v1` over HTTPS with the TURN listeners' certificate (`cert`, `pkey`;
    /// reloaded with them on SIGHUP).
    pub api_tls: bool,
    /// `api-on-tls`: the TURN-TLS listeners serve `/v1` too, on the same port and certificate: a
    /// client that chooses ALPN `http/1.1` gets the token service, one choosing `stun.turn` or no
    /// ALPN gets TURN (RFC 7443). Needs `cert` and `pkey`, not `api-listen` (default false).
    pub api_on_tls: bool,
    /// `workers`: threads serving the listeners and relay sockets, each with its own SO_REUSEPORT
    /// UDP socket per listening address (default 0 = one per CPU core).
    pub workers: u16,
    /// `socket-buffer`: receive and send buffer asked for on UDP listener and relay sockets, bytes
    /// (default 4 MiB; the kernel caps it at `net.core.rmem_max` / `wmem_max`, and the daemon warns
    /// when it does; 0 keeps the kernel's default).
    pub socket_buffer: u32,
    /// The keys as the file, the environment and the flags set them (not a key itself): what a
    /// reload compares to name the options that changed (see [`Config::changed_keys`]).
    #[serde(skip)]
    pub source: SourceTable,
}

/// The merged `turn.toml` table a [`Config`] was built from. It never makes two configurations
/// unequal: it records how a value was written, the fields say what it is.
#[derive(Clone, Default)]
pub struct SourceTable(pub Option<toml::Table>);

impl PartialEq for SourceTable {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for SourceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Like equality, Debug does not tell configurations apart by how they were written.
        f.write_str("SourceTable(..)")
    }
}

impl Default for Config {
    /// The defaults: STUN on 127.0.0.1:3478 over UDP and TCP, no credentials (so no TURN; the
    /// daemon adds generated credentials when it runs without any configuration, see
    /// [`Config::with_dev_credentials`]).
    fn default() -> Self {
        let server = ServerOptions::default();
        Config {
            listening_ip: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            listening_port: 3478,
            tls_listening_port: None,
            rfc5780: false,
            alt_listening_port: None,
            relay_ip: Vec::new(),
            external_ip: Vec::new(),
            public_host: None,
            min_port: server.min_port,
            max_port: server.max_port,
            realm: None,
            static_auth_secret: Vec::new(),
            static_auth_secret_file: None,
            use_auth_secret: false,
            users: BTreeMap::new(),
            users_file: None,
            max_credential_lifetime: RestCredentials::DEFAULT_MAX_LIFETIME_SECS,
            rest_separator: ':',
            rest_algorithm: RestAlgorithm::Sha1,
            nonce_lifetime: AuthConfig::DEFAULT_NONCE_TTL_SECS,
            require_sha256: false,
            default_lifetime: server.default_lifetime,
            max_lifetime: server.max_lifetime,
            allow_loopback_peers: false,
            allowed_peer_ip: Vec::new(),
            denied_peer_ip: Vec::new(),
            cert: None,
            pkey: None,
            no_udp: false,
            no_tcp: false,
            no_tls: false,
            no_tcp_relay: false,
            no_legacy_dual_allocation: false,
            mobility: false,
            fast_path: FastPath::Off,
            xdp_interface: None,
            user_quota: DEFAULT_USER_QUOTA,
            total_quota: DEFAULT_TOTAL_QUOTA,
            max_bps: server.max_bps,
            software: None,
            strict_rfc8656: false,
            log_level: LogLevel::Info,
            verbose: 0,
            log_format: LogFormat::Human,
            log_file: None,
            usage_file: None,
            usage_interval: 0,
            node_id: None,
            redis_url: None,
            redis_url_file: None,
            redis_userdb: None,
            redis_userdb_file: None,
            redis_userdb_interval: DEFAULT_USERDB_INTERVAL_SECS,
            redis_prefix: "switchback:".to_owned(),
            rate_limit_unauth: server.rate_limit_unauth,
            rate_limit_binding: server.rate_limit_binding,
            rate_limit_allocate: server.rate_limit_allocate,
            revoked_users: Vec::new(),
            revocation_file: None,
            strict_expiry: server.strict_expiry,
            max_permissions: server.max_permissions,
            max_channels: server.max_channels,
            user_max_bps: server.user_max_bps,
            bps_capacity: server.bps_capacity,
            api_listen: None,
            metrics_listen: None,
            admin_listen: None,
            oauth: false,
            server_name: None,
            oauth_key: Vec::new(),
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            admin_key: None,
            admin_key_file: None,
            nonce_secret: None,
            nonce_secret_file: None,
            redis_failure: RedisFailure::Open,
            fleet_front: false,
            alternate_server: Vec::new(),
            alternate_threshold: 0,
            alternate_domain: None,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT_SECS,
            tcp_auth_timeout: 60,
            tcp_idle_timeout: 300,
            tcp_connections_per_source: 64,
            api_key: Vec::new(),
            api_key_file: None,
            token_key: Vec::new(),
            token_key_file: None,
            token_public_key: Vec::new(),
            token_audience: "switchback".to_owned(),
            token_leeway: 60,
            api_max_ttl: api::DEFAULT_API_MAX_TTL_SECS,
            api_cors_origin: Vec::new(),
            api_rate_limit: RateLimit::new(10, 20),
            api_user_rate_limit: RateLimit::new(1, 10),
            api_url_host: None,
            api_tls: false,
            api_on_tls: false,
            workers: 0,
            socket_buffer: DEFAULT_SOCKET_BUFFER,
            source: SourceTable::default(),
        }
    }
}

/// The default `user-quota`: allocations per user. A browser makes one allocation per ICE server
/// URL (UDP, TCP, TLS) for each peer connection, so 32 covers ten peer connections at once over
/// all three; coturn deployments commonly run 10–20. One credential can no longer take every relay
/// port. 0 means unlimited.
pub const DEFAULT_USER_QUOTA: u32 = 32;

/// The default `total-quota`: allocations on the server. Each holds at least one descriptor (two
/// for a dual allocation, one more per RFC 6062 peer connection); 10,000 stays inside the default
/// relay port range (16,384) and the service file's `LimitNOFILE=65536` with room for the
/// listeners and TCP clients. 0 means unlimited.
pub const DEFAULT_TOTAL_QUOTA: u32 = 10_000;

/// The default `socket-buffer`: 4 MiB, enough for bursts at line rate on loopback (the kernel's
/// 208 KiB default makes other relays lose 1–5 % under load).
pub const DEFAULT_SOCKET_BUFFER: u32 = 4 << 20;

impl Config {
    /// The keys whose value differs between the sources of `self` and `other` (set in one and not
    /// the other, or set to other values), in [`keys()`] order; `None` when either configuration
    /// was not loaded from sources (built in code).
    pub fn changed_keys(&self, other: &Config) -> Option<Vec<&'static str>> {
        let (ours, theirs) = (self.source.0.as_ref()?, other.source.0.as_ref()?);
        Some(keys().iter().copied().filter(|k| ours.get(*k) != theirs.get(*k)).collect())
    }

    /// The number of worker threads and UDP sockets per listening address: `workers`, or the number
    /// of CPU cores when it is 0.
    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => usize::from(n),
        }
    }
}

/// Default of `redis-userdb-interval`, seconds.
pub const DEFAULT_USERDB_INTERVAL_SECS: u64 = 60;

/// Default of `drain-timeout`, seconds.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 30;

#[cfg(test)]
mod tests;
