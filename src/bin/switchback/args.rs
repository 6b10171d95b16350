//! The command line: the daemon's flags (coturn's names, each the name of a `turn.toml` key) and
//! the subcommands' arguments, and how flags become configuration overrides.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::{ArgAction, ArgMatches, Args, Parser, Subcommand};
use switchback::config::duration::parse_duration;
use switchback::config::{Config, ConfigError, Overrides, flag_error};
use toml::Value;

use crate::{admin_cli, flags};

/// A STUN/TURN server (RFC 8489, RFC 8656). Flags use coturn's names and override the file.
#[derive(Debug, Parser)]
#[command(name = "switchback", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mint REST credentials with the first configured secret (starts no listener).
    ///
    /// Prints the username, the password and an iceServers JSON for the listening addresses (or
    /// public-host).
    Credentials(CredentialsArgs),
    /// Mint an access token (JWT) offline with the first token-key (starts no listener).
    ///
    /// Prints the token; trade it at POST /v1/relay-configuration for TURN credentials.
    Token(TokenArgs),
    /// Talk to a running daemon's admin API (admin-listen, admin-key).
    Admin(admin_cli::AdminArgs),
    /// Reload a running daemon's configuration through its admin API (like SIGHUP).
    Reload(admin_cli::ConnectArgs),
    /// Convert coturn's turnserver.conf into turn.toml (starts no listener).
    ///
    /// Keeps coturn's meaning: without listening-ip it listens on every interface, and external-ip
    /// alone relays on the wildcard address advertising the public one. Maps listening, relay and
    /// external IPs, ports, realm, REST secret, users, quotas, max-bps, peer rules, cert/pkey,
    /// no-udp/no-tcp/no-tls, server-name, alternate-server, prometheus (metrics-listen),
    /// relay-threads (workers) and max-allocate-timeout, and prints a `note:` line on stderr for
    /// each option it cannot map or reads differently. The result is checked like `--check-config`.
    ImportCoturn(ImportCoturnArgs),
}

/// `switchback import-coturn`.
#[derive(Debug, Args)]
pub struct ImportCoturnArgs {
    /// coturn's configuration file (turnserver.conf).
    #[arg(value_name = "TURNSERVER_CONF")]
    pub file: PathBuf,
    /// Write turn.toml here (created with mode 0600: it holds secrets) instead of to stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The access-token keys, which `switchback token` needs too.
#[derive(Clone, Debug, Args)]
pub struct TokenKeyArgs {
    /// HS256 access-token key, [KID:]KEY, at least 32 bytes (repeatable; the first mints; shows in
    /// the process list, prefer the file).
    #[arg(long, value_name = "[KID:]KEY", help_heading = HTTP)]
    pub token_key: Vec<String>,
    /// File of HS256 access-token keys, one [KID:]KEY a line.
    #[arg(long, value_name = "FILE", help_heading = HTTP)]
    pub token_key_file: Option<PathBuf>,
    /// EdDSA (Ed25519) or ES256 (P-256) public key, PEM, [KID:]FILE: verifies tokens, cannot mint (repeatable).
    #[arg(long, value_name = "[KID:]FILE", help_heading = HTTP)]
    pub token_public_key: Vec<String>,
    /// What an access token's aud must contain (and minted tokens carry). Default switchback.
    #[arg(long, value_name = "AUD", help_heading = HTTP)]
    pub token_audience: Option<String>,
    /// Clock skew allowed on a token's exp and nbf, seconds. Default 60.
    #[arg(long, value_name = "SECS", help_heading = HTTP)]
    pub token_leeway: Option<u64>,
}

impl TokenKeyArgs {
    /// A key given as a flag (visible in the process list).
    pub fn warnings(&self) -> Option<&'static str> {
        (!self.token_key.is_empty())
            .then_some("--token-key shows the key in the process list; use token-key-file or turn.toml instead")
    }
}

/// `switchback token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Configuration file (see turn.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub keys: TokenKeyArgs,
    /// The token's subject (sub): the user part of the TURN credentials it buys.
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Lifetime: 3600, 90s, 30m, 1h or 2d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub ttl: u64,
    /// The token id (jti), which revocation can name. Default: random.
    #[arg(long, value_name = "ID")]
    pub jti: Option<String>,
}

/// The `--help` headings of the daemon's flags, which the man page's OPTIONS subsections follow.
/// `-c`, `--check-config`, `--help` and `--version` stay under clap's own "Options".
pub mod heading {
    /// Where and how clients reach the server.
    pub const LISTENING: &str = "Listening";
    /// Relay sockets, allocations and peers.
    pub const RELAY: &str = "Relay";
    /// Credentials, revocation, third-party authorization.
    pub const AUTH: &str = "Auth";
    /// Quotas, bandwidth and rate limits.
    pub const LIMITS: &str = "Limits";
    /// The TLS listeners' certificate.
    pub const TLS: &str = "TLS";
    /// The token service, metrics and admin faces.
    pub const HTTP: &str = "HTTP faces";
    /// Logs and usage records.
    pub const LOGGING: &str = "Logging";
    /// Threads, buffers, draining.
    pub const OPERATIONS: &str = "Operations";
    /// Every heading, in the order `--help` shows them.
    #[cfg(test)]
    pub const ALL: [&str; 8] = [LISTENING, RELAY, AUTH, LIMITS, TLS, HTTP, LOGGING, OPERATIONS];
}

use heading::{AUTH, HTTP, LIMITS, LISTENING, LOGGING, OPERATIONS, RELAY, TLS};

/// The configuration and where clients reach the server: what `switchback credentials` needs too.
#[derive(Clone, Debug, Args)]
pub struct SourceArgs {
    /// Configuration file (see turn.toml); every key also has a flag of the same name.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (repeatable). Default 127.0.0.1.
    #[arg(long, value_name = "IP", help_heading = LISTENING)]
    pub listening_ip: Vec<IpAddr>,
    /// UDP and TCP port; 0 lets the OS choose. Default 3478.
    #[arg(short = 'p', long, value_name = "PORT", help_heading = LISTENING)]
    pub listening_port: Option<u16>,
    /// RFC 5780 NAT behaviour discovery on UDP: the first two --listening-ip (one family) at
    /// --listening-port and --alt-listening-port; Binding answers follow CHANGE-REQUEST. Its answers
    /// amplify: all count against --rate-limit-unauth. Over TLS (ALPN stun.nat-discovery) the first two
    /// addresses listen at the TLS port and that port + 1 too. Off by default.
    #[arg(long, help_heading = LISTENING)]
    pub rfc5780: bool,
    /// RFC 5780's alternate UDP port (with --rfc5780). Default: listening-port + 1.
    #[arg(long, value_name = "PORT", help_heading = LISTENING)]
    pub alt_listening_port: Option<u16>,
    /// Host (a DNS name or an address) in every generated URL: the iceServers of
    /// /v1/relay-configuration, of `switchback credentials` and of the banner. Default: the
    /// listening addresses, mapped through --external-ip.
    #[arg(long, value_name = "HOST", help_heading = LISTENING)]
    pub public_host: Option<String>,
}

/// The REST shared secrets, which `switchback credentials` needs too.
#[derive(Clone, Debug, Args)]
pub struct RestArgs {
    /// REST shared secret (repeatable; shows in the process list, prefer the file).
    #[arg(long, value_name = "SECRET", help_heading = AUTH)]
    pub static_auth_secret: Vec<String>,
    /// File with REST shared secrets, one a line (the first mints).
    #[arg(long, value_name = "FILE", help_heading = AUTH)]
    pub static_auth_secret_file: Option<PathBuf>,
    /// Furthest ahead a REST expiry may lie, seconds; 0 = no cap. Default 172800 (48 h).
    #[arg(long, value_name = "SECS", help_heading = AUTH)]
    pub max_credential_lifetime: Option<u64>,
    /// Separator between expiry and user in REST usernames. Default ':'.
    #[arg(long, value_name = "CHAR", help_heading = AUTH)]
    pub rest_separator: Option<char>,
    /// HMAC of REST passwords. Default sha1.
    #[arg(long, value_parser = ["sha1", "sha256"], help_heading = AUTH)]
    pub rest_algorithm: Option<String>,
}

/// The daemon's flags, by heading.
#[derive(Clone, Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Check the configuration, print "config OK" and exit 0 (or the error and exit 2); warns about
    /// listening-ip and relay-ip addresses this host does not have.
    #[arg(long)]
    pub check_config: bool,
    /// Do not listen on UDP.
    #[arg(long, help_heading = LISTENING)]
    pub no_udp: bool,
    /// Do not listen on TCP.
    #[arg(long, help_heading = LISTENING)]
    pub no_tcp: bool,
    /// TCP and TLS connections start with a PROXY protocol v2 header (behind a load balancer); the
    /// client address is the header's source. Off by default.
    #[arg(long, help_heading = LISTENING)]
    pub proxy_protocol: bool,
    /// Load balancer allowed to send PROXY headers: IP, IP-IP or CIDR (repeatable); needed with --proxy-protocol.
    #[arg(long, value_name = "RULE", help_heading = LISTENING)]
    pub proxy_protocol_from: Vec<String>,

    /// Address for relay sockets (repeatable; allocations spread round-robin). Default: where the request arrived.
    #[arg(long, value_name = "IP", help_heading = RELAY)]
    pub relay_ip: Vec<IpAddr>,
    /// Address told to clients for a relay behind 1:1 NAT: PUBLIC, or PUBLIC/PRIVATE (repeatable,
    /// one per private address).
    #[arg(short = 'X', long, value_name = "PUBLIC[/PRIVATE]", help_heading = RELAY)]
    pub external_ip: Vec<String>,
    /// Lowest relay port. Default 49152.
    #[arg(long, value_name = "PORT", help_heading = RELAY)]
    pub min_port: Option<u16>,
    /// Highest relay port. Default 65535.
    #[arg(long, value_name = "PORT", help_heading = RELAY)]
    pub max_port: Option<u16>,
    /// Allocation lifetime when the client asks for less or none, seconds. Default 600.
    #[arg(long, value_name = "SECS", help_heading = RELAY)]
    pub default_lifetime: Option<u32>,
    /// Longest allocation lifetime, seconds. Default 3600.
    #[arg(long, value_name = "SECS", help_heading = RELAY)]
    pub max_lifetime: Option<u32>,
    /// Refuse RFC 6062 TCP relaying (REQUESTED-TRANSPORT TCP gets 442).
    #[arg(long, help_heading = RELAY)]
    pub no_tcp_relay: bool,
    /// Take dual allocations only under RFC 8656's code points, not the draft's 0x8032/0x8033
    /// (coturn 4.6.1, `turnutils_uclient -Z`).
    #[arg(long, help_heading = RELAY)]
    pub no_legacy_dual_allocation: bool,
    /// RFC 8016 mobility: hand out MOBILITY-TICKETs and let a Refresh carrying one move its
    /// allocation to the client's new address. Off by default.
    #[arg(long, help_heading = RELAY)]
    pub mobility: bool,
    /// Kernel fast path for bound channels: off (default) or xdp (needs the xdp build feature and
    /// --xdp-interface).
    #[arg(long, value_name = "MODE", value_parser = ["off", "xdp"], help_heading = RELAY)]
    pub fast_path: Option<String>,
    /// The interface the XDP fast path attaches to (the one the listening and relay addresses are on).
    #[arg(long, value_name = "NAME", help_heading = RELAY)]
    pub xdp_interface: Option<String>,
    /// Allow loopback peers.
    #[arg(long, help_heading = RELAY)]
    pub allow_loopback_peers: bool,
    /// Allowed peers despite the default deny list: CIDR, IP or IP-IP, optionally @LO-HI (repeatable).
    #[arg(long, value_name = "RULE", help_heading = RELAY)]
    pub allowed_peer_ip: Vec<String>,
    /// Denied peers in addition to the default deny list, same forms (repeatable).
    #[arg(long, value_name = "RULE", help_heading = RELAY)]
    pub denied_peer_ip: Vec<String>,
    /// Where new allocations are redirected (300 ALTERNATE-SERVER) while draining or over the
    /// threshold; one per family (repeatable), a client gets the one of its own family.
    #[arg(long, value_name = "ADDR:PORT", help_heading = RELAY)]
    pub alternate_server: Vec<SocketAddr>,
    /// Live allocations from which new ones go to --alternate-server; 0 = only while draining (the default).
    #[arg(long, value_name = "N", help_heading = RELAY)]
    pub alternate_threshold: Option<u32>,
    /// Domain a TLS client checks the alternate server's certificate against (ALTERNATE-DOMAIN in a 300 over TLS).
    #[arg(long, value_name = "NAME", help_heading = RELAY)]
    pub alternate_domain: Option<String>,
    /// SOFTWARE attribute for responses (default: none).
    #[arg(long, help_heading = RELAY)]
    pub software: Option<String>,
    /// Only channel numbers 0x4000-0x4FFF count as ChannelData.
    #[arg(long, help_heading = RELAY)]
    strict_rfc8656: bool,

    /// Realm for long-term credentials. Default switchback.local.
    #[arg(short = 'r', long, help_heading = AUTH)]
    pub realm: Option<String>,
    /// Insist on REST credentials (they are on whenever a secret is given).
    #[arg(long, help_heading = AUTH)]
    pub use_auth_secret: bool,
    #[command(flatten)]
    pub rest: RestArgs,
    /// Long-term credential user (repeatable; shows in the process list, prefer users-file).
    #[arg(short = 'u', long = "user", value_name = "NAME:PASSWORD", help_heading = AUTH)]
    pub user: Vec<String>,
    /// File of users, one NAME:PASSWORD or NAME:0x<key> a line.
    #[arg(long, value_name = "FILE", help_heading = AUTH)]
    pub users_file: Option<PathBuf>,
    /// Seconds a NONCE stays valid. Default 3600.
    #[arg(long, value_name = "SECS", help_heading = AUTH)]
    pub nonce_lifetime: Option<u64>,
    /// Secret the nonce key comes from, 16+ characters (shows in the process list; prefer the file).
    #[arg(long, value_name = "SECRET", help_heading = AUTH)]
    pub nonce_secret: Option<String>,
    /// File whose first line is the secret the nonce key comes from: nodes sharing it accept each
    /// other's nonces (a fleet behind a balancer). Default: a random key per process.
    #[arg(long, value_name = "FILE", help_heading = AUTH)]
    pub nonce_secret_file: Option<PathBuf>,
    /// Refuse the MD5 password algorithm (RFC 8489 SHA-256 only): browsers and coturn's tools, which
    /// know only MD5, get 401. Off by default.
    #[arg(long, help_heading = AUTH)]
    pub require_sha256: bool,
    /// Revoked user or username (repeatable): 403, and its allocations are torn down.
    #[arg(long, value_name = "USER", help_heading = AUTH)]
    pub revoked_users: Vec<String>,
    /// File of revoked users or usernames, one a line; re-read on SIGHUP.
    #[arg(long, value_name = "FILE", help_heading = AUTH)]
    pub revocation_file: Option<PathBuf>,
    /// Tear down an allocation when its REST credential expires.
    #[arg(long, help_heading = AUTH)]
    pub strict_expiry: bool,
    /// RFC 7635 third-party authorization: accept ACCESS-TOKEN (needs --oauth-key).
    #[arg(long, help_heading = AUTH)]
    pub oauth: bool,
    /// Server name bound into RFC 7635 tokens and sent in THIRD-PARTY-AUTHORIZATION. Default: the realm.
    #[arg(long, value_name = "NAME", help_heading = AUTH)]
    pub server_name: Option<String>,
    /// RFC 7635 key shared with the authorization server (repeatable); ALG is A256GCM or A128GCM.
    #[arg(long, value_name = "KID:BASE64KEY:ALG", help_heading = AUTH)]
    pub oauth_key: Vec<String>,

    /// Allocations per user; 0 = unlimited. Default 32.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub user_quota: Option<u32>,
    /// Allocations in total; 0 = unlimited. Default 10000.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub total_quota: Option<u32>,
    /// Relayed bytes (not bits) per second per allocation, each direction; 0 = unlimited (the default).
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub max_bps: Option<u64>,
    /// Relayed bytes per second per user across its allocations, each direction; 0 = unlimited.
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub user_max_bps: Option<u64>,
    /// Relayed bytes per second for the whole server, each direction; 0 = unlimited.
    #[arg(long, value_name = "BYTES", help_heading = LIMITS)]
    pub bps_capacity: Option<u64>,
    /// Live permissions (peer IPs) per allocation, 508 beyond; 0 = unlimited. Default 64.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub max_permissions: Option<u32>,
    /// Live channel bindings per allocation, 508 beyond; 0 = unlimited. Default 64.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub max_channels: Option<u32>,
    /// Unauthenticated answers per source IP (IPv6: per /64), N/s[:BURST]; 0 = off. Default 20/s:300.
    #[arg(long, value_name = "N/s[:BURST]", help_heading = LIMITS)]
    pub rate_limit_unauth: Option<String>,
    /// Count Binding answers against --rate-limit-unauth too.
    #[arg(long, help_heading = LIMITS)]
    pub rate_limit_binding: bool,
    /// Allocate requests per user, N/s[:BURST]; 0 = off; 486 beyond. Default 10/s:20.
    #[arg(long, value_name = "N/s[:BURST]", help_heading = LIMITS)]
    pub rate_limit_allocate: Option<String>,
    /// Seconds a TCP/TLS client has to make an allocation (or bind an RFC 6062 connection) before it is closed. Default 60.
    #[arg(long, value_name = "SECS", help_heading = LIMITS)]
    pub tcp_auth_timeout: Option<u64>,
    /// Seconds a TCP/TLS client connection without an allocation may stay silent before it is closed; one with a live allocation is never closed for idleness. Default 300.
    #[arg(long, value_name = "SECS", help_heading = LIMITS)]
    pub tcp_idle_timeout: Option<u64>,
    /// TCP/TLS connections a source may hold before they authenticate (then the user's quota counts them). Default 64.
    #[arg(long, value_name = "N", help_heading = LIMITS)]
    pub tcp_connections_per_source: Option<u32>,

    /// TLS port; 0 lets the OS choose. Default 5349 (0 when --listening-port is 0).
    #[arg(long, value_name = "PORT", help_heading = TLS)]
    pub tls_listening_port: Option<u16>,
    /// TLS certificate chain, PEM, leaf first (with --pkey; re-read on SIGHUP).
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub cert: Option<PathBuf>,
    /// TLS private key, PEM (with --cert).
    #[arg(long, value_name = "FILE", help_heading = TLS)]
    pub pkey: Option<PathBuf>,
    /// Do not listen on TLS.
    #[arg(long, help_heading = TLS)]
    pub no_tls: bool,

    /// Token service (/v1/*) address; off by default.
    #[arg(long, value_name = "ADDR:PORT", help_heading = HTTP)]
    pub api_listen: Option<SocketAddr>,
    /// Metrics and health (/metrics, /healthz, /readyz) address; off by default. Keep it on loopback.
    #[arg(long, value_name = "ADDR:PORT", help_heading = HTTP)]
    pub metrics_listen: Option<SocketAddr>,
    /// Admin API and status page address; off by default (needs --admin-key or --admin-key-file).
    #[arg(long, value_name = "ADDR:PORT", help_heading = HTTP)]
    pub admin_listen: Option<SocketAddr>,
    /// Bearer key of the admin API, at least 16 characters (shows in the process list; prefer the file).
    #[arg(long, value_name = "KEY", help_heading = HTTP)]
    pub admin_key: Option<String>,
    /// File whose first line is the admin key.
    #[arg(long, value_name = "FILE", help_heading = HTTP)]
    pub admin_key_file: Option<PathBuf>,
    #[command(flatten)]
    pub token_keys: TokenKeyArgs,
    /// Key of the trusted backend for POST /v1/tokens, 16+ characters (repeatable; shows in the
    /// process list, prefer the file).
    #[arg(long, value_name = "KEY", help_heading = HTTP)]
    pub api_key: Vec<String>,
    /// File of API keys, one a line.
    #[arg(long, value_name = "FILE", help_heading = HTTP)]
    pub api_key_file: Option<PathBuf>,
    /// Longest lifetime of /v1 credentials and minted tokens, seconds. Default 86400.
    #[arg(long, value_name = "SECS", help_heading = HTTP)]
    pub api_max_ttl: Option<u64>,
    /// Origin whose pages may call /v1 (CORS), or * (repeatable).
    #[arg(long, value_name = "ORIGIN", help_heading = HTTP)]
    pub api_cors_origin: Vec<String>,
    /// /v1 requests per source address (IPv6: per /64), N/s[:BURST]; 0 = off. Default 10/s:20.
    #[arg(long, value_name = "N/s[:BURST]", help_heading = HTTP)]
    pub api_rate_limit: Option<String>,
    /// /v1 requests per token subject or minted user, N/s[:BURST]; 0 = off. Default 1/s:10.
    #[arg(long, value_name = "N/s[:BURST]", help_heading = HTTP)]
    pub api_user_rate_limit: Option<String>,
    /// Serve /v1 over HTTPS with the certificate of --cert and --pkey.
    #[arg(long, help_heading = HTTP)]
    pub api_tls: bool,
    /// Deprecated: the old name of --public-host (warns; --public-host wins when both are set).
    #[arg(long, value_name = "HOST", help_heading = HTTP)]
    pub api_url_host: Option<String>,

    /// Serve /v1 on the TURN-TLS listeners too (one port 443): ALPN http/1.1 gets the API, stun.turn
    /// or no ALPN gets TURN. Off by default.
    #[arg(long, help_heading = HTTP)]
    pub api_on_tls: bool,

    /// Log level; RUST_LOG overrides it. Default info.
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"], help_heading = LOGGING)]
    pub log_level: Option<String>,
    /// Raise the log level (repeat for more).
    #[arg(short = 'v', long, action = ArgAction::Count, help_heading = LOGGING)]
    pub verbose: u8,
    /// Log format.
    #[arg(long, value_parser = ["human", "json"], help_heading = LOGGING)]
    pub log_format: Option<String>,
    /// Write the log to FILE (appended; reopened on SIGHUP and SIGUSR1) instead of stderr.
    #[arg(long, value_name = "FILE", help_heading = LOGGING)]
    pub log_file: Option<PathBuf>,
    /// Append a JSON usage record per ended allocation to FILE ("-": stdout); reopened on SIGHUP and SIGUSR1.
    #[arg(long, value_name = "FILE", help_heading = LOGGING)]
    pub usage_file: Option<PathBuf>,
    /// Seconds between interim usage records of live allocations (0: final records only). Default 0.
    #[arg(long, value_name = "SECS", help_heading = LOGGING)]
    pub usage_interval: Option<u64>,
    /// This node's name in usage records and session logs. Default: host name and first listening address.
    #[arg(long, value_name = "NAME", help_heading = LOGGING)]
    pub node_id: Option<String>,
    /// When the fleet's Redis cannot be reached: open (admit under this node's own quotas) or
    /// closed (new allocations get 508). Default open.
    #[arg(long, value_parser = ["open", "closed"], help_heading = OPERATIONS)]
    pub redis_failure: Option<String>,
    /// Front node of a fleet (RFC 8155 §6): every Allocate is redirected (300) to the least-loaded
    /// live sibling; allocations are made here only when none is known.
    #[arg(long, help_heading = OPERATIONS)]
    pub fleet_front: bool,

    /// Worker threads, each with its own SO_REUSEPORT UDP socket per address; 0 = one per core. Default 0.
    #[arg(long, value_name = "N", help_heading = OPERATIONS)]
    pub workers: Option<u16>,
    /// UDP socket receive/send buffer, bytes; the kernel caps it (warned); 0 = kernel default. Default 4194304.
    #[arg(long, value_name = "BYTES", help_heading = OPERATIONS)]
    pub socket_buffer: Option<u32>,
    /// Seconds SIGTERM waits for live allocations to end before exiting. Default 30.
    #[arg(long, value_name = "SECS", help_heading = OPERATIONS)]
    pub drain_timeout: Option<u64>,
    /// Fleet mode: share revocations, usage and load (placement) with the nodes on this Redis/Valkey, redis://HOST:PORT or rediss:// (TLS). Off by default.
    #[arg(long, value_name = "URL", help_heading = OPERATIONS)]
    pub redis_url: Option<String>,
    /// A file holding redis-url (for a URL with a password: not in the process list).
    #[arg(long, value_name = "FILE", help_heading = OPERATIONS)]
    pub redis_url_file: Option<PathBuf>,
    /// Prefix of every Redis key fleet mode uses. Default switchback:
    #[arg(long, value_name = "PREFIX", help_heading = OPERATIONS)]
    pub redis_prefix: Option<String>,
    /// coturn's Redis user database: this realm's users, REST secrets and quotas join the file's (read at start and on reload), redis://HOST:PORT/DB or coturn's "ip=... dbname=... password=... port=...". Off by default.
    #[arg(long, value_name = "URL", help_heading = OPERATIONS)]
    pub redis_userdb: Option<String>,
    /// A file holding redis-userdb (for one with a password: not in the process list).
    #[arg(long, value_name = "FILE", help_heading = OPERATIONS)]
    pub redis_userdb_file: Option<PathBuf>,
    /// Seconds between reads of redis-userdb while running; a change reloads the configuration as SIGHUP would; 0 = only at start and on reload. Default 60.
    #[arg(long, value_name = "SECS", help_heading = OPERATIONS)]
    pub redis_userdb_interval: Option<u64>,
}

/// `switchback credentials`.
#[derive(Debug, Args)]
pub struct CredentialsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub rest: RestArgs,
    /// The user part of the REST username (`<expiry>:<user>`).
    #[arg(long, value_name = "NAME")]
    pub user: String,
    /// Lifetime: 3600, 90s, 30m, 1h or 2d; capped by max-credential-lifetime.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub ttl: u64,
    /// Deprecated: the old name of --public-host (warns).
    #[arg(long, value_name = "HOST", conflicts_with = "public_host")]
    pub url_host: Option<String>,
}

impl SourceArgs {
    /// The file with `overrides` (the flags given) laid over it.
    pub fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::from_sources(self.config.as_deref(), overrides.clone().into_table())
    }
}

impl RestArgs {
    /// Secrets given as flags are visible to every local user in the process list.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if !self.static_auth_secret.is_empty() {
            warnings.push(
                "--static-auth-secret shows the secret in the process list; \
                 use static-auth-secret-file or turn.toml instead",
            );
        }
        warnings
    }
}

impl CredentialsArgs {
    /// `overrides` with `public-host` from the deprecated `--url-host` when it is given.
    pub fn overrides(&self, mut overrides: Overrides) -> Overrides {
        if let Some(host) = &self.url_host {
            overrides.set("public-host", Value::String(host.clone()));
        }
        overrides
    }

    /// The secrets shown in the process list, and the deprecated `--url-host`.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = self.rest.warnings();
        if self.url_host.is_some() {
            warnings.push("--url-host is deprecated: use --public-host (the public-host key)");
        }
        warnings
    }
}

impl DaemonArgs {
    /// The keys the flags set ([`flags::overrides`]), and `users` from `--user NAME:PASSWORD`.
    pub fn overrides(&self, command: &clap::Command, matches: &ArgMatches) -> Result<Overrides, ConfigError> {
        let mut o = flags::overrides(command, matches)?;
        if !self.user.is_empty() {
            let mut users = toml::Table::new();
            for entry in &self.user {
                let (name, password) =
                    entry.split_once(':').ok_or_else(|| flag_error("users", "--user expects NAME:PASSWORD"))?;
                users.insert(name.to_owned(), Value::String(password.to_owned()));
            }
            o.set("users", Value::Table(users));
        }
        Ok(o)
    }

    /// Secrets given as flags (visible in the process list).
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = self.rest.warnings();
        if !self.user.is_empty() {
            warnings.push("--user shows the password in the process list; use users-file or turn.toml instead");
        }
        if !self.oauth_key.is_empty() {
            warnings.push("--oauth-key shows the key in the process list; use turn.toml instead");
        }
        if self.admin_key.is_some() {
            warnings.push("--admin-key shows the key in the process list; use admin-key-file or turn.toml instead");
        }
        if self.nonce_secret.is_some() {
            warnings.push(
                "--nonce-secret shows the secret in the process list; use nonce-secret-file or turn.toml instead",
            );
        }
        warnings.extend(self.token_keys.warnings());
        if !self.api_key.is_empty() {
            warnings.push("--api-key shows the key in the process list; use api-key-file or turn.toml instead");
        }
        if self.redis_url.as_deref().is_some_and(|u| u.contains('@')) {
            warnings
                .push("--redis-url shows the password in the process list; use redis-url-file or turn.toml instead");
        }
        let secret_parts = ["@", "password=", "pwd=", "passwd=", "secret="];
        if self.redis_userdb.as_deref().is_some_and(|u| secret_parts.iter().any(|p| u.contains(p))) {
            warnings.push(
                "--redis-userdb shows the password in the process list; use redis-userdb-file or turn.toml instead",
            );
        }
        warnings
    }
}
