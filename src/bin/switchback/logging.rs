//! Logging: tracing to stderr (stdout carries the banner), human or JSON, the level swappable on
//! reload.

use std::io::IsTerminal as _;

use switchback::config::{Config, LogFormat};
use tracing::warn;
use tracing_subscriber::EnvFilter;

/// The log filter, swappable on reload (`log-level`, `verbose`); `None` while `RUST_LOG` rules.
pub type LogFilter = Option<tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>>;

/// Logs go to stderr (stdout carries the banner). `RUST_LOG`, when set, replaces the configured level
/// (and then reload leaves the level alone).
pub fn init_tracing(config: &Config) -> LogFilter {
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

/// The reload hook that applies `log-level` and `verbose` (nothing while `RUST_LOG` rules).
pub fn reload_hook(filter: LogFilter) -> Option<switchback::daemon::ReloadHook> {
    let handle = filter?;
    Some(Box::new(move |config: &Config| {
        if let Err(e) = handle.reload(EnvFilter::new(config.effective_log_level().as_str())) {
            warn!(error = %e, "reload: log level not changed");
        }
    }))
}
