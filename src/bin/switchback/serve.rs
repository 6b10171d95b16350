//! The daemon command: load and check the configuration, pick the certificate, start the server
//! through [`Relay::from_config`] (the embedder's builder: one machine), then answer signals until
//! it is time to stop.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use switchback::Relay;
use switchback::config::{Config, ConfigError, Overrides, SecretText};
use switchback::daemon::{Daemon, Hooks, Setup, TlsSetup, configured_tls, random_hex};
use switchback::io::TlsIdentity;
use switchback::io::tls::DEV_CERTIFICATE_NAMES;
use tracing::{debug, info, warn};

use crate::args::DaemonArgs;
use crate::logging::LogFile;
use crate::signals::{Hangup, ShutdownSignal};
use crate::{banner, config_error, logging};

/// `switchback` without a subcommand: serve until SIGINT or SIGTERM.
pub fn daemon(args: &DaemonArgs, flags: Result<Overrides, ConfigError>) -> ExitCode {
    let warnings = args.warnings();
    let loaded = flags.and_then(|flags| args.source.load(&flags).map(|config| (config, flags)));
    let (config, flags) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return config_error(&warnings, e),
    };
    // No file and no credentials: the development default, TURN with a generated secret.
    let dev = args.source.config.is_none() && config.realm.is_none() && !config.has_credentials();
    if let Err(e) = config.validate_serving(dev) {
        return config_error(&warnings, e);
    }
    // The certificate is read now: a bad one is a configuration error (exit 2), --check-config too.
    let certificate = match configured_tls(&config) {
        Ok(certificate) => certificate,
        Err(e) => return config_error(&warnings, e),
    };
    if args.check_config {
        for w in all_warnings(&warnings, &config) {
            eprintln!("warning: {w}");
        }
        println!("config OK");
        return ExitCode::SUCCESS;
    }
    let logging = match logging::init_tracing(&config) {
        Ok(logging) => logging,
        Err(e) => {
            let path = config.log_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
            eprintln!("error: log-file {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for w in all_warnings(&warnings, &config) {
        warn!("{w}");
    }
    if dev && !config.loopback_only() {
        warn!("no configuration: development default with a generated secret on non-loopback addresses");
    }
    let result = prepare(args, flags, config, certificate, dev).and_then(|(config, setup)| {
        raise_nofile_limit(&config);
        let setup = Setup { on_reload: logging::reload_hook(logging.filter), ..setup };
        run(&config, setup, logging.file)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The flags' warnings, then the configuration's: oauth, secret files others can read, deprecated
/// keys, and addresses this host does not have.
fn all_warnings(flags: &[&str], config: &Config) -> Vec<String> {
    let mut all: Vec<String> = flags.iter().map(|w| w.to_string()).collect();
    all.extend(config.oauth_warnings());
    all.extend(config.file_warnings());
    all.extend(config.deprecation_warnings());
    all.extend(config.address_warnings());
    all
}

/// The configuration to serve (with the development secret when `dev`) and the daemon's setup.
fn prepare(
    args: &DaemonArgs,
    flags: Overrides,
    config: Config,
    certificate: Option<TlsIdentity>,
    dev: bool,
) -> anyhow::Result<(Config, Setup)> {
    let tls = match certificate {
        Some(identity) => TlsSetup::Files(identity),
        None if dev && !config.no_tls => TlsIdentity::self_signed(DEV_CERTIFICATE_NAMES)
            .map(TlsSetup::SelfSigned)
            .context("cannot generate the development certificate")?,
        None => TlsSetup::Off,
    };
    let dev_secret = if dev { Some(random_hex().context("no randomness from the OS")?) } else { None };
    let config = match &dev_secret {
        Some(secret) => config.with_dev_credentials(SecretText(secret.clone())),
        None => config,
    };
    // A reload re-reads the same flags and file.
    let source = args.source.clone();
    let source = Arc::new(move || source.load(&flags).map_err(|e| e.to_string()));
    Ok((config, Setup { tls, dev_secret, source, on_reload: None, hooks: Hooks::default() }))
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

fn run(config: &Config, setup: Setup, log_file: Option<Arc<LogFile>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_count())
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, setup, log_file))
}

async fn serve(config: &Config, setup: Setup, log_file: Option<Arc<LogFile>>) -> anyhow::Result<()> {
    // Signal handlers first, so a signal right after the banner already shuts down cleanly (and a
    // SIGHUP does not kill the process).
    let mut shutdown = ShutdownSignal::new().context("cannot install signal handlers")?;
    let mut hangup = Hangup::new().context("cannot install the SIGHUP handler")?;
    let mut user1 = Hangup::user1().context("cannot install the SIGUSR1 handler")?;
    let dev_secret = setup.dev_secret.clone();
    let relay = Relay::from_config(config.clone()).setup(setup).spawn().await?;
    let daemon = relay.daemon();
    banner::print_banner(daemon, config, dev_secret.as_deref());
    notify_systemd(&[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status("serving")]);
    let signal = loop {
        tokio::select! {
            signal = shutdown.wait() => break signal,
            () = hangup.recv() => reload(daemon, log_file.as_deref()).await,
            () = user1.recv() => reopen(daemon, log_file.as_deref()),
        }
    };
    daemon.set_unready();
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    if signal == "SIGTERM" {
        // A second SIGTERM, or SIGINT, ends the drain at once; SIGHUP still reloads.
        let drain = daemon.drain();
        tokio::pin!(drain);
        loop {
            tokio::select! {
                () = &mut drain => break,
                signal = shutdown.wait() => {
                    info!(signal, "second signal while draining: exiting at once");
                    break;
                }
                () = hangup.recv() => reload(daemon, log_file.as_deref()).await,
                () = user1.recv() => reopen(daemon, log_file.as_deref()),
            }
        }
    }
    info!(signal, "shutting down");
    relay.shutdown().await;
    Ok(())
}

/// SIGHUP: reload on a blocking thread (it reads files), and reopen the log and usage files.
async fn reload(daemon: &Daemon, log_file: Option<&LogFile>) {
    if let Some(file) = log_file {
        file.reopen();
    }
    let reloader = daemon.reloader().clone();
    let _ = tokio::task::spawn_blocking(move || reloader.reload("SIGHUP")).await;
    daemon.reopen_files();
}

/// SIGUSR1: reopen the log and usage files (logrotate moved them).
fn reopen(daemon: &Daemon, log_file: Option<&LogFile>) {
    if let Some(file) = log_file {
        file.reopen();
    }
    info!("SIGUSR1: reopening log-file and usage-file");
    daemon.reopen_files();
}

/// Tells systemd (`Type=notify`, contrib/switchback.service) about the service's state; nothing
/// without `NOTIFY_SOCKET`. A failure is logged, never fatal.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        warn!(error = %e, "cannot notify systemd (NOTIFY_SOCKET)");
    }
}
