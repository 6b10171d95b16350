//! `switchback`, the daemon: flags over `turn.toml`, logging, listeners, signals; and
//! `switchback credentials`, which mints REST credentials without starting anything.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), a good `--check-config` or printed
//! credentials; 2 for a bad flag or configuration (one `error:` line naming the key); 1 when the
//! server cannot run (a port in use, say).
//!
//! Signals: SIGHUP reloads the configuration without a restart (credentials, peer policy, quotas,
//! alternate server, revocation list, log level, TLS certificate; a configuration that does not
//! load is refused with one log line and the old one stays). SIGTERM drains: `/readyz` turns 503,
//! new allocations are refused (300 ALTERNATE-SERVER or 508), live ones relay until they end or
//! `drain-timeout` passes, then exit 0; a second SIGTERM, or SIGINT, exits at once.
//!
//! `switchback admin …` and `switchback reload` are clients of the admin API (`admin-listen`).

use std::fmt::Display;
use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{ArgAction, Args, Parser, Subcommand};
use switchback::auth::Authenticator;
use switchback::config::banner::turn_banner;
use switchback::config::credentials::{IceServers, format_duration, parse_duration};
use switchback::config::{Config, ConfigError, LogFormat, Overrides, Secret, flag_error};
use switchback::http::health::{self, Readiness};
use switchback::http::{Face, HttpRunning, admin, metrics};
use switchback::io::tls::DEV_CERTIFICATE_NAMES;
use switchback::io::{self, Limits, ReloadableTls, Running, TlsIdentity, TurnServer, UdpRelay};
use switchback::server::Transport;
use toml::Value;
use tracing::{debug, info, warn};
use tracing_subscriber::EnvFilter;

mod admin_cli;

/// A STUN/TURN server (RFC 8489, RFC 8656). Flags use coturn's names and override the file.
#[derive(Debug, Parser)]
#[command(name = "switchback", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    daemon: DaemonArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mint REST credentials with the first configured secret (starts no listener).
    ///
    /// Prints the username, the password and an iceServers JSON for the listening addresses.
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
    /// Maps the common options (listening, relay and external IPs, ports, realm, REST secret, users,
    /// quotas, max-bps, peer rules, cert/pkey, no-udp/no-tcp/no-tls) and prints a `note:` line on
    /// stderr for each option it cannot map. The result is checked like `--check-config` would.
    ImportCoturn(ImportCoturnArgs),
}

/// `switchback import-coturn`.
#[derive(Debug, Args)]
struct ImportCoturnArgs {
    /// coturn's configuration file (turnserver.conf).
    #[arg(value_name = "TURNSERVER_CONF")]
    file: PathBuf,
    /// Write turn.toml here (created with mode 0600: it holds secrets) instead of to stdout.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The access-token keys, which `switchback token` needs too.
#[derive(Clone, Debug, Args)]
struct TokenKeyArgs {
    /// HS256 access-token key, [KID:]KEY, at least 32 bytes (repeatable; the first mints; shows in
    /// the process list, prefer the file).
    #[arg(long, value_name = "[KID:]KEY")]
    token_key: Vec<String>,
    /// File of HS256 access-token keys, one [KID:]KEY a line.
    #[arg(long, value_name = "FILE")]
    token_key_file: Option<PathBuf>,
    /// EdDSA (Ed25519) or ES256 (P-256) public key, PEM, [KID:]FILE: verifies tokens, cannot mint (repeatable).
    #[arg(long, value_name = "[KID:]FILE")]
    token_public_key: Vec<String>,
    /// What an access token's aud must contain (and minted tokens carry). Default switchback.
    #[arg(long, value_name = "AUD")]
    token_audience: Option<String>,
    /// Clock skew allowed on a token's exp and nbf, seconds. Default 60.
    #[arg(long, value_name = "SECS")]
    token_leeway: Option<u64>,
}

impl TokenKeyArgs {
    fn add_to(&self, o: &mut Overrides) -> Result<(), ConfigError> {
        o.list("token-key", &self.token_key);
        o.path("token-key-file", self.token_key_file.as_deref());
        o.list("token-public-key", &self.token_public_key);
        o.text("token-audience", self.token_audience.as_ref());
        o.u64("token-leeway", self.token_leeway)
    }

    fn warnings(&self) -> Option<&'static str> {
        (!self.token_key.is_empty())
            .then_some("--token-key shows the key in the process list; use token-key-file or turn.toml instead")
    }
}

/// `switchback token`.
#[derive(Debug, Args)]
struct TokenArgs {
    /// Configuration file (see turn.toml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    keys: TokenKeyArgs,
    /// The token's subject (sub): the user part of the TURN credentials it buys.
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Lifetime: 3600, 90s, 30m, 1h or 2d.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    ttl: u64,
    /// The token id (jti), which revocation can name. Default: random.
    #[arg(long, value_name = "ID")]
    jti: Option<String>,
}

/// The configuration, and the keys that `switchback credentials` needs too.
#[derive(Clone, Debug, Args)]
struct SourceArgs {
    /// Configuration file (see turn.toml); every key also has a flag of the same name.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable). Default 127.0.0.1.
    #[arg(long, value_name = "IP")]
    listening_ip: Vec<IpAddr>,
    /// UDP and TCP port; 0 lets the OS choose. Default 3478.
    #[arg(short = 'p', long, value_name = "PORT")]
    listening_port: Option<u16>,
    /// REST shared secret (repeatable; shows in the process list, prefer the file).
    #[arg(long, value_name = "SECRET")]
    static_auth_secret: Vec<String>,
    /// File with REST shared secrets, one a line (the first mints).
    #[arg(long, value_name = "FILE")]
    static_auth_secret_file: Option<PathBuf>,
    /// Furthest ahead a REST expiry may lie, seconds; 0 = no cap. Default 172800 (48 h).
    #[arg(long, value_name = "SECS")]
    max_credential_lifetime: Option<u64>,
    /// Separator between expiry and user in REST usernames. Default ':'.
    #[arg(long, value_name = "CHAR")]
    rest_separator: Option<char>,
    /// HMAC of REST passwords. Default sha1.
    #[arg(long, value_parser = ["sha1", "sha256"])]
    rest_algorithm: Option<String>,
}

/// The daemon's flags.
#[derive(Clone, Debug, Args)]
struct DaemonArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// TLS port; 0 lets the OS choose. Default 5349 (0 when --listening-port is 0).
    #[arg(long, value_name = "PORT")]
    tls_listening_port: Option<u16>,
    /// Address for relay sockets (repeatable; allocations spread round-robin). Default: where the request arrived.
    #[arg(long, value_name = "IP")]
    relay_ip: Vec<IpAddr>,
    /// Address told to clients for a relay behind 1:1 NAT: PUBLIC, or PUBLIC/PRIVATE (repeatable,
    /// one per private address).
    #[arg(short = 'X', long, value_name = "PUBLIC[/PRIVATE]")]
    external_ip: Vec<String>,
    /// Lowest relay port. Default 49152.
    #[arg(long, value_name = "PORT")]
    min_port: Option<u16>,
    /// Highest relay port. Default 65535.
    #[arg(long, value_name = "PORT")]
    max_port: Option<u16>,
    /// Realm for long-term credentials. Default switchback.local.
    #[arg(short = 'r', long)]
    realm: Option<String>,
    /// Insist on REST credentials (they are on whenever a secret is given).
    #[arg(long)]
    use_auth_secret: bool,
    /// Long-term credential user (repeatable; shows in the process list, prefer users-file).
    #[arg(short = 'u', long = "user", value_name = "NAME:PASSWORD")]
    user: Vec<String>,
    /// File of users, one NAME:PASSWORD or NAME:0x<key> a line.
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// Seconds a NONCE stays valid. Default 3600.
    #[arg(long, value_name = "SECS")]
    nonce_lifetime: Option<u64>,
    /// Allocation lifetime when the client asks for less or none, seconds. Default 600.
    #[arg(long, value_name = "SECS")]
    default_lifetime: Option<u32>,
    /// Longest allocation lifetime, seconds. Default 3600.
    #[arg(long, value_name = "SECS")]
    max_lifetime: Option<u32>,
    /// Allow loopback peers.
    #[arg(long)]
    allow_loopback_peers: bool,
    /// Allowed peers despite the default deny list: CIDR, IP or IP-IP, optionally @LO-HI (repeatable).
    #[arg(long, value_name = "RULE")]
    allowed_peer_ip: Vec<String>,
    /// Denied peers in addition to the default deny list, same forms (repeatable).
    #[arg(long, value_name = "RULE")]
    denied_peer_ip: Vec<String>,
    /// TLS certificate chain, PEM, leaf first (with --pkey; re-read on SIGHUP).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// TLS private key, PEM (with --cert).
    #[arg(long, value_name = "FILE")]
    pkey: Option<PathBuf>,
    /// Do not listen on UDP.
    #[arg(long)]
    no_udp: bool,
    /// Do not listen on TCP.
    #[arg(long)]
    no_tcp: bool,
    /// Do not listen on TLS.
    #[arg(long)]
    no_tls: bool,
    /// Refuse RFC 6062 TCP relaying (REQUESTED-TRANSPORT TCP gets 442).
    #[arg(long)]
    no_tcp_relay: bool,
    /// Take dual allocations only under RFC 8656's code points, not the draft's 0x8032/0x8033
    /// (coturn 4.6.1, `turnutils_uclient -Z`).
    #[arg(long)]
    no_legacy_dual_allocation: bool,
    /// Allocations per user; 0 = unlimited (the default).
    #[arg(long, value_name = "N")]
    user_quota: Option<u32>,
    /// Allocations in total; 0 = unlimited (the default).
    #[arg(long, value_name = "N")]
    total_quota: Option<u32>,
    /// Relayed bytes (not bits) per second per allocation, each direction; 0 = unlimited (the default).
    #[arg(long, value_name = "BYTES")]
    max_bps: Option<u64>,
    /// Log level; RUST_LOG overrides it. Default info.
    #[arg(long, value_parser = ["error", "warn", "info", "debug", "trace"])]
    log_level: Option<String>,
    /// Raise the log level (repeat for more).
    #[arg(short = 'v', long, action = ArgAction::Count)]
    verbose: u8,
    /// Log format.
    #[arg(long, value_parser = ["human", "json"])]
    log_format: Option<String>,
    /// SOFTWARE attribute for responses (default: none).
    #[arg(long)]
    software: Option<String>,
    /// Only channel numbers 0x4000-0x4FFF count as ChannelData.
    #[arg(long)]
    strict_rfc8656: bool,
    /// Check the configuration, print "config OK" and exit 0 (or the error and exit 2).
    #[arg(long)]
    check_config: bool,
    /// Unauthenticated answers per source IP (IPv6: per /64), N/s[:BURST]; 0 = off. Default 20/s:40.
    #[arg(long, value_name = "N/s[:BURST]")]
    rate_limit_unauth: Option<String>,
    /// Count Binding answers against --rate-limit-unauth too.
    #[arg(long)]
    rate_limit_binding: bool,
    /// Allocate requests per user, N/s[:BURST]; 0 = off; 486 beyond. Default 10/s:20.
    #[arg(long, value_name = "N/s[:BURST]")]
    rate_limit_allocate: Option<String>,
    /// Revoked user or username (repeatable): 401, and its allocations are torn down.
    #[arg(long, value_name = "USER")]
    revoked_users: Vec<String>,
    /// File of revoked users or usernames, one a line; re-read on SIGHUP.
    #[arg(long, value_name = "FILE")]
    revocation_file: Option<PathBuf>,
    /// Tear down an allocation when its REST credential expires.
    #[arg(long)]
    strict_expiry: bool,
    /// Live permissions (peer IPs) per allocation, 508 beyond; 0 = unlimited. Default 64.
    #[arg(long, value_name = "N")]
    max_permissions: Option<u32>,
    /// Live channel bindings per allocation, 508 beyond; 0 = unlimited. Default 64.
    #[arg(long, value_name = "N")]
    max_channels: Option<u32>,
    /// Relayed bytes per second per user across its allocations, each direction; 0 = unlimited.
    #[arg(long, value_name = "BYTES")]
    user_max_bps: Option<u64>,
    /// Relayed bytes per second for the whole server, each direction; 0 = unlimited.
    #[arg(long, value_name = "BYTES")]
    bps_capacity: Option<u64>,
    /// Token service (/v1/*) address; off by default.
    #[arg(long, value_name = "ADDR:PORT")]
    api_listen: Option<SocketAddr>,
    /// Metrics and health (/metrics, /healthz, /readyz) address; off by default. Keep it on loopback.
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// Admin API and status page address; off by default (needs --admin-key or --admin-key-file).
    #[arg(long, value_name = "ADDR:PORT")]
    admin_listen: Option<SocketAddr>,
    /// RFC 7635 third-party authorization: accept ACCESS-TOKEN (needs --oauth-key).
    #[arg(long)]
    oauth: bool,
    /// Server name bound into RFC 7635 tokens and sent in THIRD-PARTY-AUTHORIZATION. Default: the realm.
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// RFC 7635 key shared with the authorization server (repeatable); ALG is A256GCM or A128GCM.
    #[arg(long, value_name = "KID:BASE64KEY:ALG")]
    oauth_key: Vec<String>,
    /// TCP and TLS connections start with a PROXY protocol v2 header (behind a load balancer); the
    /// client address is the header's source. Off by default.
    #[arg(long)]
    proxy_protocol: bool,
    /// Load balancer allowed to send PROXY headers: IP, IP-IP or CIDR (repeatable). Default: any.
    #[arg(long, value_name = "RULE")]
    proxy_protocol_from: Vec<String>,
    /// Bearer key of the admin API, at least 16 characters (shows in the process list; prefer the file).
    #[arg(long, value_name = "KEY")]
    admin_key: Option<String>,
    /// File whose first line is the admin key.
    #[arg(long, value_name = "FILE")]
    admin_key_file: Option<PathBuf>,
    /// Where new allocations are redirected (300 ALTERNATE-SERVER) while draining or over the
    /// threshold; one per family (repeatable), a client gets the one of its own family.
    #[arg(long, value_name = "ADDR:PORT")]
    alternate_server: Vec<SocketAddr>,
    /// Live allocations from which new ones go to --alternate-server; 0 = only while draining (the default).
    #[arg(long, value_name = "N")]
    alternate_threshold: Option<u32>,
    /// Seconds SIGTERM waits for live allocations to end before exiting. Default 30.
    #[arg(long, value_name = "SECS")]
    drain_timeout: Option<u64>,
    #[command(flatten)]
    token_keys: TokenKeyArgs,
    /// Key of the trusted backend for POST /v1/tokens, 16+ characters (repeatable; shows in the
    /// process list, prefer the file).
    #[arg(long, value_name = "KEY")]
    api_key: Vec<String>,
    /// File of API keys, one a line.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Longest lifetime of /v1 credentials and minted tokens, seconds. Default 86400.
    #[arg(long, value_name = "SECS")]
    api_max_ttl: Option<u64>,
    /// Origin whose pages may call /v1 (CORS), or * (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    api_cors_origin: Vec<String>,
    /// /v1 requests per source address (IPv6: per /64), N/s[:BURST]; 0 = off. Default 10/s:20.
    #[arg(long, value_name = "N/s[:BURST]")]
    api_rate_limit: Option<String>,
    /// /v1 requests per token subject or minted user, N/s[:BURST]; 0 = off. Default 1/s:10.
    #[arg(long, value_name = "N/s[:BURST]")]
    api_user_rate_limit: Option<String>,
    /// Host for the iceServers urls of /v1/relay-configuration (a DNS name).
    #[arg(long, value_name = "HOST")]
    api_url_host: Option<String>,
    /// Serve /v1 over HTTPS with the certificate of --cert and --pkey.
    #[arg(long)]
    api_tls: bool,
    /// Worker threads, each with its own SO_REUSEPORT UDP socket per address; 0 = one per core. Default 0.
    #[arg(long, value_name = "N")]
    workers: Option<u16>,
    /// UDP socket receive/send buffer, bytes; the kernel caps it (warned); 0 = kernel default. Default 4194304.
    #[arg(long, value_name = "BYTES")]
    socket_buffer: Option<u32>,
}

/// `switchback credentials`.
#[derive(Debug, Args)]
struct CredentialsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The user part of the REST username (`<expiry>:<user>`).
    #[arg(long, value_name = "NAME")]
    user: String,
    /// Lifetime: 3600, 90s, 30m, 1h or 2d; capped by max-credential-lifetime.
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    ttl: u64,
    /// Host for the urls (a DNS name, say) instead of the listening addresses.
    #[arg(long, value_name = "HOST")]
    url_host: Option<String>,
}

impl SourceArgs {
    fn add_to(&self, o: &mut Overrides) -> Result<(), ConfigError> {
        o.list("listening-ip", &self.listening_ip);
        o.int("listening-port", self.listening_port);
        o.list("static-auth-secret", &self.static_auth_secret);
        o.path("static-auth-secret-file", self.static_auth_secret_file.as_deref());
        o.u64("max-credential-lifetime", self.max_credential_lifetime)?;
        o.text("rest-separator", self.rest_separator);
        o.text("rest-algorithm", self.rest_algorithm.as_ref());
        Ok(())
    }

    /// The file with `overrides` and these flags laid over it.
    fn load(&self, mut overrides: Overrides) -> Result<Config, ConfigError> {
        self.add_to(&mut overrides)?;
        Config::from_sources(self.config.as_deref(), overrides.into_table())
    }

    /// Secrets given as flags are visible to every local user in the process list.
    fn warnings(&self) -> Vec<&'static str> {
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

impl DaemonArgs {
    fn overrides(&self) -> Result<Overrides, ConfigError> {
        let mut o = Overrides::default();
        o.list("relay-ip", &self.relay_ip);
        o.int("tls-listening-port", self.tls_listening_port);
        o.int("min-port", self.min_port);
        o.int("max-port", self.max_port);
        o.int("default-lifetime", self.default_lifetime);
        o.int("max-lifetime", self.max_lifetime);
        o.int("user-quota", self.user_quota);
        o.int("total-quota", self.total_quota);
        o.u64("nonce-lifetime", self.nonce_lifetime)?;
        o.u64("max-bps", self.max_bps)?;
        o.int("max-permissions", self.max_permissions);
        o.int("max-channels", self.max_channels);
        o.u64("user-max-bps", self.user_max_bps)?;
        o.u64("bps-capacity", self.bps_capacity)?;
        o.int("workers", self.workers);
        o.int("socket-buffer", self.socket_buffer);
        o.list("external-ip", &self.external_ip);
        o.text("realm", self.realm.as_ref());
        o.text("log-level", self.log_level.as_ref());
        o.text("log-format", self.log_format.as_ref());
        o.text("software", self.software.as_ref());
        o.path("users-file", self.users_file.as_deref());
        o.path("cert", self.cert.as_deref());
        o.path("pkey", self.pkey.as_deref());
        o.list("allowed-peer-ip", &self.allowed_peer_ip);
        o.list("denied-peer-ip", &self.denied_peer_ip);
        if !self.user.is_empty() {
            let mut users = toml::Table::new();
            for entry in &self.user {
                let (name, password) =
                    entry.split_once(':').ok_or_else(|| flag_error("users", "--user expects NAME:PASSWORD"))?;
                users.insert(name.to_owned(), Value::String(password.to_owned()));
            }
            o.set("users", Value::Table(users));
        }
        o.flag("use-auth-secret", self.use_auth_secret);
        o.flag("allow-loopback-peers", self.allow_loopback_peers);
        o.flag("no-udp", self.no_udp);
        o.flag("no-tcp", self.no_tcp);
        o.flag("no-tls", self.no_tls);
        o.flag("no-tcp-relay", self.no_tcp_relay);
        o.flag("no-legacy-dual-allocation", self.no_legacy_dual_allocation);
        o.flag("strict-rfc8656", self.strict_rfc8656);
        o.text("rate-limit-unauth", self.rate_limit_unauth.as_ref());
        o.text("rate-limit-allocate", self.rate_limit_allocate.as_ref());
        o.flag("rate-limit-binding", self.rate_limit_binding);
        o.list("revoked-users", &self.revoked_users);
        o.path("revocation-file", self.revocation_file.as_deref());
        o.flag("strict-expiry", self.strict_expiry);
        o.text("api-listen", self.api_listen);
        o.text("metrics-listen", self.metrics_listen);
        o.text("admin-listen", self.admin_listen);
        o.flag("oauth", self.oauth);
        o.text("server-name", self.server_name.as_ref());
        o.list("oauth-key", &self.oauth_key);
        o.flag("proxy-protocol", self.proxy_protocol);
        o.list("proxy-protocol-from", &self.proxy_protocol_from);
        o.text("admin-key", self.admin_key.as_ref());
        o.path("admin-key-file", self.admin_key_file.as_deref());
        o.list("alternate-server", &self.alternate_server);
        o.int("alternate-threshold", self.alternate_threshold);
        o.u64("drain-timeout", self.drain_timeout)?;
        self.token_keys.add_to(&mut o)?;
        o.list("api-key", &self.api_key);
        o.path("api-key-file", self.api_key_file.as_deref());
        o.u64("api-max-ttl", self.api_max_ttl)?;
        o.list("api-cors-origin", &self.api_cors_origin);
        o.text("api-rate-limit", self.api_rate_limit.as_ref());
        o.text("api-user-rate-limit", self.api_user_rate_limit.as_ref());
        o.text("api-url-host", self.api_url_host.as_ref());
        o.flag("api-tls", self.api_tls);
        if self.verbose > 0 {
            o.int("verbose", Some(self.verbose));
        }
        Ok(o)
    }

    fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = self.source.warnings();
        if !self.user.is_empty() {
            warnings.push("--user shows the password in the process list; use users-file or turn.toml instead");
        }
        if !self.oauth_key.is_empty() {
            warnings.push("--oauth-key shows the key in the process list; use turn.toml instead");
        }
        if self.admin_key.is_some() {
            warnings.push("--admin-key shows the key in the process list; use admin-key-file or turn.toml instead");
        }
        warnings.extend(self.token_keys.warnings());
        if !self.api_key.is_empty() {
            warnings.push("--api-key shows the key in the process list; use api-key-file or turn.toml instead");
        }
        warnings
    }
}

/// Exit code 2 after the warnings and one `error:` line.
fn config_error(warnings: &[&str], e: impl Display) -> ExitCode {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::Credentials(args)) => credentials(args),
        Some(Command::ImportCoturn(args)) => import_coturn(args),
        Some(Command::Admin(args)) => admin_cli::run(&args.connect, &args.action),
        Some(Command::Reload(connect)) => admin_cli::run(connect, &admin_cli::Action::Reload),
        Some(Command::Token(args)) => token(args),
        None => daemon(&cli.daemon),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `switchback credentials`: mint with the first secret, print, exit.
fn credentials(args: &CredentialsArgs) -> ExitCode {
    let warnings = args.source.warnings();
    let config = match args.source.load(Overrides::default()) {
        Ok(config) => config,
        Err(e) => return config_error(&warnings, e),
    };
    let Some(rest) = config.rest_credentials() else {
        let e =
            "no REST secret: give static-auth-secret (in -c FILE), --static-auth-secret-file or --static-auth-secret";
        return config_error(&warnings, e);
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if rest.max_lifetime_secs != 0 && args.ttl > rest.max_lifetime_secs {
        eprintln!(
            "warning: --ttl {} capped at max-credential-lifetime ({})",
            format_duration(args.ttl),
            format_duration(rest.max_lifetime_secs)
        );
    }
    let now = unix_now();
    let Some((username, password)) = rest.mint(&args.user, args.ttl, now) else {
        return config_error(&warnings, "no REST secret");
    };
    let expiry = rest.expiry(&username).unwrap_or(now);
    println!("username: {username}");
    println!("password: {password}");
    println!("expires: {expiry} (unix time, in {})", format_duration(expiry.saturating_sub(now)));
    // The addresses clients are told (external-ip maps them), as in XOR-RELAYED-ADDRESS.
    let told = |ip, port| switchback::config::advertised_addr(SocketAddr::new(ip, port), &config.external_ip);
    let addrs = |off: bool| -> Vec<SocketAddr> {
        let ips = if off { &[][..] } else { &config.listening_ip[..] };
        ips.iter().map(|&ip| told(ip, config.listening_port)).collect()
    };
    let tls: Vec<SocketAddr> = match config.has_tls_certificate() {
        true => config.listening_ip.iter().map(|&ip| told(ip, config.tls_port())).collect(),
        false => Vec::new(),
    };
    let servers = IceServers::with_tls(
        &addrs(config.no_udp),
        &addrs(config.no_tcp),
        &tls,
        args.url_host.as_deref(),
        Some((&username, &password)),
    );
    println!("{servers}");
    ExitCode::SUCCESS
}

/// `switchback import-coturn`: convert, print the notes, check, write.
fn import_coturn(args: &ImportCoturnArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) => return config_error(&[], format!("cannot read {}: {e}", args.file.display())),
    };
    let import = switchback::config::coturn::import_coturn(&text);
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    let toml = import.to_toml();
    if let Err(e) = Config::from_toml_str(&toml) {
        return config_error(&[], format_args!("the imported configuration is not valid: {e}"));
    }
    let Some(path) = &args.output else {
        print!("{toml}");
        return ExitCode::SUCCESS;
    };
    match write_private(path, &toml) {
        Ok(()) => {
            eprintln!("wrote {} ({} notes)", path.display(), import.notes.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to a file only its owner can read (mode 0600 on Unix, an existing file too),
/// restricted before anything is written.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.set_len(0)?;
    file.write_all(text.as_bytes())
}

/// `switchback token`: mint an access token with the first token-key, print it, exit.
fn token(args: &TokenArgs) -> ExitCode {
    let warnings: Vec<&str> = args.keys.warnings().into_iter().collect();
    let mut overrides = Overrides::default();
    let keys = args
        .keys
        .add_to(&mut overrides)
        .and_then(|()| Config::from_sources(args.config.as_deref(), overrides.into_table()))
        .and_then(|config| config.token_keys());
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => return config_error(&warnings, e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let jti = match args.jti.clone().or_else(switchback::http::api::random_id) {
        Some(jti) => jti,
        None => return config_error(&[], "no randomness from the OS for the token id"),
    };
    match keys.mint(&args.user, args.ttl, unix_now(), &jti) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e @ switchback::auth::token::TokenError::BadSubject) => config_error(&[], format!("--user: {e}")),
        Err(e) => config_error(&[], format!("token-key: {e}")),
    }
}

fn daemon(args: &DaemonArgs) -> ExitCode {
    let warnings = args.warnings();
    let config = match args.overrides().and_then(|o| args.source.load(o)) {
        Ok(config) => config,
        Err(e) => return config_error(&warnings, e),
    };
    // Without IP_PKTINFO the UDP driver knows only the listener's bound address; on a wildcard
    // listener that is 0.0.0.0, which is neither a bind address for relay sockets nor something to
    // tell clients. Refuse rather than hand out unusable relayed addresses.
    let wildcard = config.listening_ip.iter().any(IpAddr::is_unspecified);
    // No file and no credentials: the development default, TURN with a generated secret.
    let dev = args.source.config.is_none() && config.realm.is_none() && !config.has_credentials();
    if (config.has_credentials() || dev) && wildcard && config.relay_ip.is_empty() && config.external_ip.is_empty() {
        return config_error(
            &warnings,
            "relay-ip: listening on an unspecified address (0.0.0.0 or ::) with TURN on needs relay-ip \
             (or external-ip): the address relay sockets bind and clients are told",
        );
    }
    if config.api_listen.is_some() && !dev && config.rest_credentials().is_none() {
        return config_error(
            &warnings,
            "api-listen: the token service hands out REST credentials: it needs static-auth-secret",
        );
    }
    // The certificate is read now: a bad one is a configuration error (exit 2), --check-config too.
    let certificate = match configured_tls(&config) {
        Ok(certificate) => certificate,
        Err(e) => return config_error(&warnings, e),
    };
    if args.check_config {
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        for w in config.oauth_warnings() {
            eprintln!("warning: {w}");
        }
        println!("config OK");
        return ExitCode::SUCCESS;
    }
    let log_filter = init_tracing(&config);
    for w in &warnings {
        warn!("{w}");
    }
    for w in config.oauth_warnings() {
        warn!("{w}");
    }
    if dev && !config.loopback_only() {
        warn!("no configuration: development default with a generated secret on non-loopback addresses");
    }
    let tls = match certificate {
        Some(identity) => Ok(TlsSetup::Files(identity)),
        None if dev && !config.no_tls => TlsIdentity::self_signed(DEV_CERTIFICATE_NAMES)
            .map(TlsSetup::SelfSigned)
            .context("cannot generate the development certificate"),
        None => Ok(TlsSetup::Off),
    };
    let prepared = if dev {
        random_hex().map(|secret| (config.with_dev_credentials(Secret(secret.clone())), Some(secret)))
    } else {
        Ok((config, None))
    };
    let result = prepared.and_then(|(config, dev_secret)| {
        raise_nofile_limit(&config);
        let reload = ReloadSource { args: args.clone(), dev_secret: dev_secret.clone(), log_filter };
        run(&config, reload, tls?)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// 32 random bytes: a nonce key, or the development secret (as hex).
fn random_key() -> anyhow::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).context("no randomness from the OS")?;
    Ok(key)
}

fn random_hex() -> anyhow::Result<String> {
    Ok(random_key()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the TLS listeners' certificate comes from.
enum TlsSetup {
    /// `cert` and `pkey`, re-read on SIGHUP.
    Files(TlsIdentity),
    /// The development default's, generated at start for [`DEV_CERTIFICATE_NAMES`].
    SelfSigned(TlsIdentity),
    /// No TLS listener: `no-tls`, or a configuration without a certificate.
    Off,
}

/// The certificate of `cert` and `pkey` (unless `no-tls`); an error names the key.
fn configured_tls(config: &Config) -> Result<Option<TlsIdentity>, ConfigError> {
    match (&config.cert, &config.pkey) {
        (Some(cert), Some(pkey)) if !config.no_tls => TlsIdentity::from_pem_files(cert, pkey)
            .map(Some)
            .map_err(|e| ConfigError::InvalidValue { key: e.key().to_owned(), message: e.to_string() }),
        _ => Ok(None),
    }
}

/// SIGHUP: re-reads `cert` and `pkey`. New TLS handshakes present the new certificate; connections
/// already up, and every allocation, are untouched. A pair that does not load keeps the old one.
fn reload_tls(config: &Config, tls: Option<&ReloadableTls>) {
    let (Some(tls), Some(cert), Some(pkey)) = (tls, &config.cert, &config.pkey) else {
        info!("SIGHUP: no TLS certificate files to reload");
        return;
    };
    match TlsIdentity::from_pem_files(cert, pkey) {
        Ok(identity) => {
            let fingerprint = identity.fingerprint();
            tls.replace(identity);
            info!(%fingerprint, cert = %cert.display(), "SIGHUP: TLS certificate reloaded");
        }
        Err(e) => warn!(
            error = %e,
            fingerprint = %tls.identity().fingerprint(),
            "SIGHUP: TLS certificate reload failed; keeping the previous certificate"
        ),
    }
}

/// The log filter, swappable on reload (`log-level`, `verbose`); `None` while `RUST_LOG` rules.
type LogFilter = Option<tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>>;

/// Logs go to stderr (stdout carries the banner). `RUST_LOG`, when set, replaces the configured level
/// (and then reload leaves the level alone).
fn init_tracing(config: &Config) -> LogFilter {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let from_env = EnvFilter::try_from_default_env().ok();
    let env_set = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(config.effective_log_level().as_str()));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let ansi = std::io::stderr().is_terminal();
    match config.log_format {
        LogFormat::Human => {
            registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).init()
        }
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_ansi(ansi).with_writer(std::io::stderr)).init()
        }
    }
    if env_set { None } else { Some(handle) }
}

/// Raises the RLIMIT_NOFILE soft limit to the hard limit (with the `rlimit` crate: `libc` would
/// need `unsafe`, which this crate forbids) and warns when it cannot hold a socket per relay port
/// plus the listeners.
fn raise_nofile_limit(config: &Config) {
    let transports = usize::from(!config.no_udp) + usize::from(!config.no_tcp) + usize::from(!config.no_tls);
    let listeners = u64::try_from(config.listening_ip.len() * transports).unwrap_or(u64::MAX);
    let needed = u64::from(config.max_port.saturating_sub(config.min_port)) + 1 + listeners;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < needed && config.has_credentials() => warn!(
            limit,
            needed,
            "RLIMIT_NOFILE is below one socket per relay port plus the listeners: allocations may fail \
             early; raise the hard limit (ulimit -Hn, LimitNOFILE=) or narrow min-port/max-port"
        ),
        Ok(limit) => debug!(limit, needed, "RLIMIT_NOFILE"),
        Err(e) => warn!(error = %e, "cannot raise RLIMIT_NOFILE"),
    }
}

fn run(config: &Config, reload: ReloadSource, tls: TlsSetup) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_count())
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, reload, tls))
}

async fn serve(config: &Config, reload: ReloadSource, tls: TlsSetup) -> anyhow::Result<()> {
    let dev_secret = reload.dev_secret.clone();
    let dev_secret = dev_secret.as_deref();
    // Signal handlers first, so a signal right after the banner already shuts down cleanly (and a
    // SIGHUP does not kill the process).
    let mut shutdown = ShutdownSignal::new().context("cannot install signal handlers")?;
    let mut hangup = Hangup::new().context("cannot install the SIGHUP handler")?;
    let nonce_key = random_key()?;
    let auth = match config.auth_config()? {
        Some(auth) => {
            info!(
                realm = %auth.realm,
                rest_secrets = auth.rest.as_ref().map_or(0, |r| r.secrets.len()),
                users = auth.users.len(),
                oauth_keys = auth.oauth.as_ref().map_or(0, |o| o.keys.len()),
                loopback_peers = config.allow_loopback_peers,
                development_default = dev_secret.is_some(),
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
    };
    let (tls, self_signed) = match tls {
        TlsSetup::Files(identity) => {
            info!(fingerprint = %identity.fingerprint(), "TLS certificate loaded from cert and pkey");
            (Some(ReloadableTls::new(identity)), None)
        }
        TlsSetup::SelfSigned(identity) => {
            let fingerprint = identity.fingerprint();
            info!(%fingerprint, "TLS with a self-signed development certificate");
            (Some(ReloadableTls::new(identity)), Some(fingerprint))
        }
        TlsSetup::Off if config.no_tls => (None, None),
        TlsSetup::Off => {
            info!("no cert and pkey configured: no TLS listener");
            (None, None)
        }
    };
    if config.proxy_protocol {
        info!(
            balancers = config.proxy_protocol_from.len(),
            "proxy-protocol: TCP and TLS connections need a PROXY v2 header"
        );
        if config.proxy_protocol_from.is_empty() {
            warn!(
                "proxy-protocol without proxy-protocol-from: any source that reaches the TCP/TLS ports can claim any address"
            );
        }
    }
    let server = UdpRelay::server(config.server_options(), auth);
    let revoked = config.revocation_list()?;
    if !revoked.is_empty() {
        info!(entries = revoked.len(), "revocation list loaded");
    }
    server.set_revocations(revoked);
    let running = io::bind_with_tls(config, server.clone(), Limits::default(), tls).await?;
    let readiness = Readiness::new();
    let reloader = Arc::new(Reloader {
        source: reload,
        server: server.clone(),
        tls: running.tls().cloned(),
        nonce_key,
        drain_timeout: std::sync::atomic::AtomicU64::new(config.drain_timeout),
        lock: std::sync::Mutex::new(()),
    });
    let mut faces = http_faces(config, &readiness, &server, &running, &reloader);
    if let Some(addr) = config.api_listen {
        let face = Face::new("api", addr, api_router(config, &running, &server)?);
        faces.push(match running.tls().filter(|_| config.api_tls) {
            Some(tls) => face.with_tls(switchback::http::tls::http_config(&tls.server_config())),
            None => face,
        });
    }
    let http = switchback::http::bind(faces).await?;
    readiness.set(true);
    print_banner(&running, &http, config, dev_secret, self_signed.as_deref());
    notify_systemd(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("serving")]);
    let signal = loop {
        tokio::select! {
            signal = shutdown.wait() => break signal,
            () = hangup.recv() => {
                let r = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload("SIGHUP")).await;
            }
        }
    };
    readiness.set(false);
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    if signal == "SIGTERM" {
        drain(&server, &reloader, &mut shutdown, &mut hangup).await;
    }
    info!(signal, "shutting down");
    running.shutdown().await;
    http.shutdown().await;
    info!(stats = ?server.stats().snapshot(), "stopped");
    Ok(())
}

/// Prints the bound addresses (the OS-chosen ports when port 0 was asked for), then what TURN does,
/// the development default's `iceServers` JSON and commands to try it, to stdout.
fn print_banner(
    running: &Running,
    http: &HttpRunning,
    config: &Config,
    dev_secret: Option<&str>,
    self_signed: Option<&str>,
) {
    println!("switchback {} ready", env!("CARGO_PKG_VERSION"));
    for l in running.local_addrs() {
        println!("listening {} {}", l.transport_name(), l.addr);
        info!(transport = l.transport_name(), addr = %l.addr, "listening");
    }
    for l in http.local_addrs() {
        println!("listening http-{} {}", l.name, l.addr);
        info!(face = l.name, addr = %l.addr, "listening for HTTP");
    }
    if let Some(fingerprint) = self_signed.filter(|_| running.tls().is_some()) {
        let names = DEV_CERTIFICATE_NAMES.join(", ");
        println!("tls: self-signed development certificate for {names}, SHA-256 fingerprint {fingerprint}");
    }
    let of = |t: Transport| -> Vec<SocketAddr> {
        running.local_addrs().iter().filter(|l| l.transport == t).map(|l| l.addr).collect()
    };
    let (udp, tcp, tls) = (of(Transport::Udp), of(Transport::Tcp), of(Transport::Tls));
    for line in turn_banner(config, &udp, &tcp, &tls, dev_secret, unix_now()) {
        println!("{line}");
    }
}

/// The HTTP faces that `config` turns on, each on its configured address.
fn http_faces(
    config: &Config,
    readiness: &Readiness,
    server: &Arc<TurnServer>,
    running: &Running,
    reloader: &Arc<Reloader>,
) -> Vec<Face> {
    let mut faces = Vec::new();
    if let Some(addr) = config.metrics_listen {
        let collector = metrics::TurnCollector::new(server.clone(), running.io_stats_handle());
        let router = health::router(readiness.clone()).merge(metrics::router(collector));
        faces.push(Face::new("metrics", addr, router));
    }
    // Config::validate refuses admin-listen without a key.
    if let (Some(addr), Some(key)) = (config.admin_listen, &config.admin_key) {
        let r = reloader.clone();
        let reload: admin::ReloadFn = Arc::new(move || r.reload("admin API"));
        faces.push(Face::new("admin", addr, admin::router(admin::Admin::new(server.clone(), &key.0, reload))));
    }
    faces
}

/// The token service (`/v1`) for `api-listen`: its urls are the bound TURN listeners.
fn api_router(
    config: &Config,
    running: &Running,
    server: &std::sync::Arc<switchback::io::TurnServer>,
) -> anyhow::Result<axum::Router> {
    use switchback::http::api::{ApiOptions, IceUrls, router};
    let of = |t: Transport| -> Vec<SocketAddr> {
        running.local_addrs().iter().filter(|l| l.transport == t).map(|l| l.addr).collect()
    };
    config.rest_credentials().context("api-listen needs static-auth-secret")?;
    // Read per request: a reload that rotates the secrets is followed at once.
    let auth = server.clone();
    let rest: switchback::http::api::RestSource =
        std::sync::Arc::new(move || auth.authenticator().and_then(|a| a.rest().cloned()));
    let server = server.clone();
    let options = ApiOptions {
        tokens: config.token_keys()?,
        api_keys: config.api_key.iter().map(|s| s.0.clone()).collect(),
        rest,
        urls: IceUrls {
            udp: of(Transport::Udp),
            tcp: of(Transport::Tcp),
            tls: of(Transport::Tls),
            host: config.api_url_host.clone(),
        },
        max_ttl_secs: config.api_max_ttl,
        cors_origins: config.api_cors_origin.clone(),
        rate_per_source: config.api_rate_limit,
        rate_per_user: config.api_user_rate_limit,
        revoked: std::sync::Arc::new(move |entry: &str| server.is_revoked_entry(entry)),
        unix_now,
    };
    info!(
        keys = options.tokens.keys().len(),
        minting = !options.api_keys.is_empty(),
        cors_origins = options.cors_origins.len(),
        "token service on"
    );
    Ok(router(options))
}

/// Tells systemd (`Type=notify`, contrib/switchback.service) about the service's state; nothing
/// without `NOTIFY_SOCKET`. A failure is logged, never fatal.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}

/// SIGTERM: refuse new allocations (the core answers 300 or 508) while the live ones carry on,
/// until none is left or `drain-timeout` passes. A second SIGTERM, or SIGINT, ends it at once;
/// SIGHUP still reloads.
async fn drain(server: &Arc<TurnServer>, reloader: &Arc<Reloader>, shutdown: &mut ShutdownSignal, hangup: &mut Hangup) {
    let timeout = std::time::Duration::from_secs(reloader.current_drain_timeout());
    server.admission().set_draining(true);
    let live = server.allocations().len();
    info!(allocations = live, timeout_secs = timeout.as_secs(), alternates = ?server.admission().alternates(), "SIGTERM: draining");
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        if server.allocations().is_empty() {
            info!("drained: no allocation left");
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            info!(allocations = server.allocations().len(), "drain-timeout reached");
            return;
        }
        tokio::select! {
            signal = shutdown.wait() => {
                info!(signal, "second signal while draining: exiting at once");
                return;
            }
            () = hangup.recv() => {
                let r = reloader.clone();
                let _ = tokio::task::spawn_blocking(move || r.reload("SIGHUP")).await;
            }
            _ = tick.tick() => {}
        }
    }
}

/// What a reload re-reads: the same flags and file as at start.
struct ReloadSource {
    args: DaemonArgs,
    /// The development default's generated secret, kept across reloads.
    dev_secret: Option<String>,
    log_filter: LogFilter,
}

/// Reloads the configuration into the running server (SIGHUP, `POST /admin/reload`).
struct Reloader {
    source: ReloadSource,
    server: Arc<TurnServer>,
    tls: Option<ReloadableTls>,
    /// Kept so nonces handed out before a reload stay valid.
    nonce_key: [u8; 32],
    /// `drain-timeout` of the configuration in force, seconds.
    drain_timeout: std::sync::atomic::AtomicU64,
    /// One reload at a time.
    lock: std::sync::Mutex<()>,
}

impl Reloader {
    /// The configuration as the flags and the file say now.
    fn load(&self) -> Result<Config, String> {
        let args = &self.source.args;
        let config = args.overrides().and_then(|o| args.source.load(o)).map_err(|e| e.to_string())?;
        Ok(match &self.source.dev_secret {
            Some(secret) => config.with_dev_credentials(Secret(secret.clone())),
            None => config,
        })
    }

    fn current_drain_timeout(&self) -> u64 {
        self.drain_timeout.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Re-reads everything and swaps in what can change while running; a configuration that does
    /// not load is refused as a whole (one warning naming the problem) and the old one stays.
    fn reload(&self, trigger: &str) -> Result<String, String> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = match self.load() {
            Ok(c) => c,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: the configuration does not load; keeping the old one");
                return Err(e);
            }
        };
        let auth = match config.auth_config() {
            Ok(a) => a,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: keeping the old configuration");
                return Err(e.to_string());
            }
        };
        let revoked = match config.revocation_list() {
            Ok(r) => r,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: revocation list; keeping the old configuration");
                return Err(e.to_string());
            }
        };
        let (secrets, users) =
            auth.as_ref().map_or((0, 0), |a| (a.rest.as_ref().map_or(0, |r| r.secrets.len()), a.users.len()));
        let auth = auth.map(|a| Authenticator::new(a, self.nonce_key));
        self.server.reload(auth, &config.server_options());
        let revocations = revoked.len();
        self.server.set_revocations(revoked);
        let revoked_now = self.server.revoke_now(std::time::Instant::now());
        if let Some(handle) = &self.source.log_filter {
            let level = config.effective_log_level().as_str();
            if let Err(e) = handle.reload(EnvFilter::new(level)) {
                warn!(error = %e, "reload: log level not changed");
            }
        }
        reload_tls(&config, self.tls.as_ref());
        self.drain_timeout.store(config.drain_timeout, std::sync::atomic::Ordering::Relaxed);
        let summary = format!(
            "rest_secrets={secrets} users={users} revocations={revocations} allocations_revoked={revoked_now} \
             log_level={}",
            config.effective_log_level().as_str()
        );
        info!(
            trigger,
            rest_secrets = secrets,
            users,
            revocations,
            allocations_revoked = revoked_now,
            log_level = config.effective_log_level().as_str(),
            "configuration reloaded (live allocations untouched)"
        );
        Ok(summary)
    }
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Waits for a signal and names it.
    async fn wait(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// SIGHUP: reload (never fires where there is no SIGHUP).
struct Hangup {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Hangup {
    fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Hangup { hup: signal(SignalKind::hangup())? })
        }
        #[cfg(not(unix))]
        Ok(Hangup {})
    }

    /// Waits for the next SIGHUP.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            if self.hup.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
