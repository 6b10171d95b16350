//! `switchback`, the daemon: flags over `turn.toml`, logging, listeners, signals; and
//! `switchback credentials`, which mints REST credentials without starting anything.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), a good `--check-config` or printed
//! credentials; 2 for a bad flag or configuration (one `error:` line naming the key); 1 when the
//! server cannot run (a port in use, say). SIGHUP re-reads the TLS certificate (`cert`, `pkey`).

use std::fmt::Display;
use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgAction, Args, Parser, Subcommand};
use switchback::auth::Authenticator;
use switchback::config::banner::turn_banner;
use switchback::config::credentials::{IceServers, format_duration, parse_duration};
use switchback::config::{Config, ConfigError, LogFormat, Overrides, Secret, flag_error};
use switchback::io::tls::DEV_CERTIFICATE_NAMES;
use switchback::io::{self, Limits, ReloadableTls, Running, TlsIdentity, UdpRelay};
use switchback::server::Transport;
use toml::Value;
use tracing::{debug, info, warn};
use tracing_subscriber::EnvFilter;

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
}

/// The configuration, and the keys that `switchback credentials` needs too.
#[derive(Debug, Args)]
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
#[derive(Debug, Args)]
struct DaemonArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// TLS port; 0 lets the OS choose. Default 5349 (0 when --listening-port is 0).
    #[arg(long, value_name = "PORT")]
    tls_listening_port: Option<u16>,
    /// Address for relay sockets, at most one per family (repeatable). Default: where the request arrived.
    #[arg(long, value_name = "IP")]
    relay_ip: Vec<IpAddr>,
    /// Address told to clients for a relay behind 1:1 NAT: PUBLIC, or PUBLIC/PRIVATE.
    #[arg(short = 'X', long, value_name = "PUBLIC[/PRIVATE]")]
    external_ip: Option<String>,
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
        o.text("external-ip", self.external_ip.as_ref());
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
    let addrs = |off: bool| -> Vec<SocketAddr> {
        let ips = if off { &[][..] } else { &config.listening_ip[..] };
        ips.iter().map(|&ip| SocketAddr::new(ip, config.listening_port)).collect()
    };
    let tls: Vec<SocketAddr> = match config.has_tls_certificate() {
        true => config.listening_ip.iter().map(|&ip| SocketAddr::new(ip, config.tls_port())).collect(),
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
    if (config.has_credentials() || dev) && wildcard && config.relay_ip.is_empty() && config.external_ip.is_none() {
        return config_error(
            &warnings,
            "relay-ip: listening on an unspecified address (0.0.0.0 or ::) with TURN on needs relay-ip \
             (or external-ip): the address relay sockets bind and clients are told",
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
        println!("config OK");
        return ExitCode::SUCCESS;
    }
    init_tracing(&config);
    for w in &warnings {
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
        run(&config, dev_secret.as_deref(), tls?)
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

/// Logs go to stderr (stdout carries the banner). `RUST_LOG`, when set, replaces the configured level.
fn init_tracing(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(config.effective_log_level().as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
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

fn run(config: &Config, dev_secret: Option<&str>, tls: TlsSetup) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_count())
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, dev_secret, tls))
}

async fn serve(config: &Config, dev_secret: Option<&str>, tls: TlsSetup) -> anyhow::Result<()> {
    // Signal handlers first, so a signal right after the banner already shuts down cleanly (and a
    // SIGHUP does not kill the process).
    let mut shutdown = ShutdownSignal::new().context("cannot install signal handlers")?;
    let mut hangup = Hangup::new().context("cannot install the SIGHUP handler")?;
    let auth = match config.auth_config()? {
        Some(auth) => {
            info!(
                realm = %auth.realm,
                rest_secrets = auth.rest.as_ref().map_or(0, |r| r.secrets.len()),
                users = auth.users.len(),
                loopback_peers = config.allow_loopback_peers,
                development_default = dev_secret.is_some(),
                "TURN on (UDP)"
            );
            Some(Authenticator::new(auth, random_key()?))
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
    let server = UdpRelay::server(config.server_options(), auth);
    let revoked = config.revocation_list()?;
    if !revoked.is_empty() {
        info!(entries = revoked.len(), "revocation list loaded");
    }
    server.set_revocations(revoked);
    let running = io::bind_with_tls(config, server.clone(), Limits::default(), tls).await?;
    print_banner(&running, config, dev_secret, self_signed.as_deref());
    let signal = loop {
        tokio::select! {
            signal = shutdown.wait() => break signal,
            () = hangup.recv() => {
                reload_tls(config, running.tls());
                reload_revocations(config, &server);
            }
        }
    };
    info!(signal, "shutting down");
    running.shutdown().await;
    info!(stats = ?server.stats().snapshot(), "stopped");
    Ok(())
}

/// Prints the bound addresses (the OS-chosen ports when port 0 was asked for), then what TURN does,
/// the development default's `iceServers` JSON and commands to try it, to stdout.
fn print_banner(running: &Running, config: &Config, dev_secret: Option<&str>, self_signed: Option<&str>) {
    println!("switchback {} ready", env!("CARGO_PKG_VERSION"));
    for l in running.local_addrs() {
        println!("listening {} {}", l.transport_name(), l.addr);
        info!(transport = l.transport_name(), addr = %l.addr, "listening");
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

/// SIGHUP re-reads the revocation file and tears down the allocations of the users it revokes. A
/// file that cannot be read keeps the old list.
fn reload_revocations(config: &Config, server: &switchback::io::TurnServer) {
    match config.revocation_list() {
        Ok(list) => {
            let entries = list.len();
            server.set_revocations(list);
            let removed = server.revoke_now(std::time::Instant::now());
            info!(entries, allocations_removed = removed, "SIGHUP: revocation list reloaded");
        }
        Err(e) => warn!(error = %e, "SIGHUP: revocation list not reloaded, keeping the old one"),
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
