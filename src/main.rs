//! `switchback`, the daemon: flags over `turn.toml`, logging, listeners, signals.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM) or a good `--check-config`; 2 for a bad
//! flag or configuration (one `error:` line naming the key); 1 when the server cannot run (a port in
//! use, say).

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use switchback::config::{self, Config, ConfigError, LogFormat};
use switchback::io::{self, Running};
use switchback::io::UdpRelay;
use switchback::server::Transport;
use toml::Value;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// A STUN/TURN server (RFC 8489, RFC 8656). Flags use coturn's names and override the file.
#[derive(Debug, Parser)]
#[command(name = "switchback", version, about)]
struct Cli {
    /// Configuration file (see turn.toml); every key also has a flag of the same name.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (repeatable). Default 127.0.0.1.
    #[arg(long, value_name = "IP")]
    listening_ip: Vec<IpAddr>,
    /// UDP and TCP port; 0 lets the OS choose. Default 3478.
    #[arg(short = 'p', long, value_name = "PORT")]
    listening_port: Option<u16>,
    /// TLS port. (not supported yet)
    #[arg(long, value_name = "PORT")]
    tls_listening_port: Option<u16>,
    /// Relay address (repeatable). (not supported yet)
    #[arg(long, value_name = "IP")]
    relay_ip: Vec<IpAddr>,
    /// PUBLIC[/PRIVATE] address for 1:1 NAT. (not supported yet)
    #[arg(short = 'X', long, value_name = "PUBLIC[/PRIVATE]")]
    external_ip: Option<String>,
    /// Lowest relay port. (not supported yet)
    #[arg(long, value_name = "PORT")]
    min_port: Option<u16>,
    /// Highest relay port. (not supported yet)
    #[arg(long, value_name = "PORT")]
    max_port: Option<u16>,
    /// Realm for long-term credentials. (not supported yet)
    #[arg(short = 'r', long)]
    realm: Option<String>,
    /// REST shared secret (repeatable; shows in the process list, prefer the file). (not supported yet)
    #[arg(long, value_name = "SECRET")]
    static_auth_secret: Vec<String>,
    /// File with the REST shared secrets, one a line. (not supported yet)
    #[arg(long, value_name = "FILE")]
    static_auth_secret_file: Option<PathBuf>,
    /// Use REST (shared secret) credentials. (not supported yet)
    #[arg(long)]
    use_auth_secret: bool,
    /// Long-term credential user (repeatable; shows in the process list). (not supported yet)
    #[arg(short = 'u', long = "user", value_name = "NAME:PASSWORD")]
    user: Vec<String>,
    /// Allow loopback peers. (not supported yet)
    #[arg(long)]
    allow_loopback_peers: bool,
    /// Allowed peers: CIDR, IP or IP-IP, optionally @LO-HI (repeatable). (not supported yet)
    #[arg(long, value_name = "RULE")]
    allowed_peer_ip: Vec<String>,
    /// Denied peers, same forms (repeatable). (not supported yet)
    #[arg(long, value_name = "RULE")]
    denied_peer_ip: Vec<String>,
    /// TLS certificate chain, PEM. (not supported yet)
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// TLS private key, PEM. (not supported yet)
    #[arg(long, value_name = "FILE")]
    pkey: Option<PathBuf>,
    /// Do not listen on UDP.
    #[arg(long)]
    no_udp: bool,
    /// Do not listen on TCP.
    #[arg(long)]
    no_tcp: bool,
    /// Do not listen on TLS (a no-op: there is no TLS listener yet).
    #[arg(long)]
    no_tls: bool,
    /// Allocations per user. (not supported yet)
    #[arg(long, value_name = "N")]
    user_quota: Option<u32>,
    /// Allocations in total. (not supported yet)
    #[arg(long, value_name = "N")]
    total_quota: Option<u32>,
    /// Bytes per second per allocation. (not supported yet)
    #[arg(long, value_name = "BPS")]
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
}

impl Cli {
    /// The flags that were given, as `turn.toml` keys, to lay over the file.
    fn overrides(&self) -> Result<toml::Table, ConfigError> {
        let mut t = toml::Table::new();
        let mut set = |key: &str, value: Value| {
            t.insert(key.to_owned(), value);
        };
        let text = |s: &str| Value::String(s.to_owned());
        let path = |p: &PathBuf| Value::String(p.to_string_lossy().into_owned());
        let list = |v: &[String]| Value::Array(v.iter().map(|s| text(s)).collect());
        let ips =
            |v: &[IpAddr]| Value::Array(v.iter().map(|ip| Value::String(ip.to_string())).collect());

        if !self.listening_ip.is_empty() {
            set("listening-ip", ips(&self.listening_ip));
        }
        if !self.relay_ip.is_empty() {
            set("relay-ip", ips(&self.relay_ip));
        }
        for (key, port) in [
            ("listening-port", self.listening_port),
            ("tls-listening-port", self.tls_listening_port),
            ("min-port", self.min_port),
            ("max-port", self.max_port),
        ] {
            if let Some(port) = port {
                set(key, Value::Integer(i64::from(port)));
            }
        }
        for (key, n) in [
            ("user-quota", self.user_quota),
            ("total-quota", self.total_quota),
        ] {
            if let Some(n) = n {
                set(key, Value::Integer(i64::from(n)));
            }
        }
        if let Some(bps) = self.max_bps {
            let bps = i64::try_from(bps).map_err(|_| invalid("max-bps", "too large"))?;
            set("max-bps", Value::Integer(bps));
        }
        for (key, s) in [
            ("external-ip", &self.external_ip),
            ("realm", &self.realm),
            ("log-level", &self.log_level),
            ("log-format", &self.log_format),
            ("software", &self.software),
        ] {
            if let Some(s) = s {
                set(key, text(s));
            }
        }
        for (key, p) in [
            ("static-auth-secret-file", &self.static_auth_secret_file),
            ("cert", &self.cert),
            ("pkey", &self.pkey),
        ] {
            if let Some(p) = p {
                set(key, path(p));
            }
        }
        for (key, v) in [
            ("static-auth-secret", &self.static_auth_secret),
            ("allowed-peer-ip", &self.allowed_peer_ip),
            ("denied-peer-ip", &self.denied_peer_ip),
        ] {
            if !v.is_empty() {
                set(key, list(v));
            }
        }
        if !self.user.is_empty() {
            let mut users = toml::Table::new();
            for entry in &self.user {
                let (name, password) = entry
                    .split_once(':')
                    .ok_or_else(|| invalid("users", "--user expects NAME:PASSWORD"))?;
                users.insert(name.to_owned(), text(password));
            }
            set("users", Value::Table(users));
        }
        for (key, on) in [
            ("use-auth-secret", self.use_auth_secret),
            ("allow-loopback-peers", self.allow_loopback_peers),
            ("no-udp", self.no_udp),
            ("no-tcp", self.no_tcp),
            ("no-tls", self.no_tls),
            ("strict-rfc8656", self.strict_rfc8656),
        ] {
            if on {
                set(key, Value::Boolean(true));
            }
        }
        if self.verbose > 0 {
            set("verbose", Value::Integer(i64::from(self.verbose)));
        }
        Ok(t)
    }

    /// Secrets given as flags are visible to every local user in the process list.
    fn secret_warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if !self.static_auth_secret.is_empty() {
            warnings.push(
                "--static-auth-secret shows the secret in the process list; \
                 use static-auth-secret-file or turn.toml instead",
            );
        }
        if !self.user.is_empty() {
            warnings.push(
                "--user shows the password in the process list; use [users] in turn.toml instead",
            );
        }
        warnings
    }
}

/// A flag value that cannot even be put into the table; an unsupported key still says so first.
fn invalid(key: &str, message: &str) -> ConfigError {
    config::unsupported(key).unwrap_or_else(|| ConfigError::InvalidValue {
        key: key.to_owned(),
        message: message.to_owned(),
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let warnings = cli.secret_warnings();
    let config = match cli
        .overrides()
        .and_then(|o| Config::from_sources(cli.config.as_deref(), o))
    {
        Ok(config) => config,
        Err(e) => {
            for w in &warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
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
    match run(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries the banner). `RUST_LOG`, when set, replaces the configured level.
fn init_tracing(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.effective_log_level().as_str()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(config: &Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: &Config) -> anyhow::Result<()> {
    // Signal handlers first, so a signal right after the banner already shuts down cleanly.
    let shutdown = ShutdownSignal::new().context("cannot install signal handlers")?;
    let server = UdpRelay::server(config.server_options(), None);
    let running = io::bind(config, server.clone()).await?;
    print_banner(&running);
    let signal = shutdown.wait().await;
    info!(signal, "shutting down");
    running.shutdown().await;
    info!(stats = ?server.stats().snapshot(), "stopped");
    Ok(())
}

/// Prints the bound addresses (the OS-chosen ports when port 0 was asked for) to stdout.
fn print_banner(running: &Running) {
    println!("switchback {} ready", env!("CARGO_PKG_VERSION"));
    for l in running.local_addrs() {
        println!("listening {} {}", l.transport_name(), l.addr);
        info!(transport = l.transport_name(), addr = %l.addr, "listening");
    }
    if let Some(addr) = running.local_addr(Transport::Udp).map(reachable) {
        println!(
            "try it: turnutils_stunclient -p {} {}",
            addr.port(),
            addr.ip()
        );
    }
    // The `stun:` URL is the banner's last line (tests read up to it).
    let stun = running
        .local_addr(Transport::Udp)
        .or_else(|| running.local_addr(Transport::Tcp));
    if let Some(addr) = stun.map(reachable) {
        println!("stun:{addr}");
    }
}

/// A wildcard listener is reachable on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
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
            Ok(ShutdownSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Waits for a signal and names it.
    async fn wait(mut self) -> &'static str {
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
