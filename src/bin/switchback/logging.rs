//! Logging: tracing to stderr (stdout carries the banner) or to `log-file`, human or JSON, the
//! level swappable on reload, the file reopened on SIGHUP and SIGUSR1.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal as _, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use switchback::config::{Config, LogFormat};
use tracing::warn;
use tracing_subscriber::EnvFilter;

/// The log filter, swappable on reload (`log-level`, `verbose`); `None` while `RUST_LOG` rules.
pub type LogFilter = Option<tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>>;

/// `log-file`: appended to, one write per event, reopened when logrotate moved it.
pub struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        Ok(LogFile { path: path.to_owned(), file: Mutex::new(append(path)?) })
    }

    /// Opens the file again under its name (SIGHUP, SIGUSR1); on failure the old one stays.
    pub fn reopen(&self) {
        match append(&self.path) {
            Ok(file) => *self.file.lock().unwrap_or_else(|e| e.into_inner()) = file,
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "log-file: cannot reopen; writing on to the old file")
            }
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Where events go: stderr, or the log file.
#[derive(Clone)]
enum Output {
    Stderr,
    File(Arc<LogFile>),
}

/// One event's writer: the formatter writes the whole line at once.
enum EventWriter<'a> {
    Stderr(io::Stderr),
    File(std::sync::MutexGuard<'a, File>),
}

impl Write for EventWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            EventWriter::Stderr(e) => e.write(buf),
            EventWriter::File(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            EventWriter::Stderr(e) => e.flush(),
            EventWriter::File(f) => f.flush(),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Output {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            Output::Stderr => EventWriter::Stderr(io::stderr()),
            Output::File(f) => EventWriter::File(f.file.lock().unwrap_or_else(|e| e.into_inner())),
        }
    }
}

/// The installed logging: the swappable filter and the log file, if any.
pub struct Logging {
    pub filter: LogFilter,
    pub file: Option<Arc<LogFile>>,
}

/// Logs go to stderr (stdout carries the banner), or to `log-file`. `RUST_LOG`, when set, replaces
/// the configured level (and then reload leaves the level alone). Fails when `log-file` cannot be
/// opened.
pub fn init_tracing(config: &Config) -> io::Result<Logging> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let file = config.log_file.as_deref().map(LogFile::open).transpose()?.map(Arc::new);
    let output = file.clone().map_or(Output::Stderr, Output::File);
    let from_env = EnvFilter::try_from_default_env().ok();
    let env_set = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(config.effective_log_level().as_str()));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let ansi = file.is_none() && io::stderr().is_terminal();
    match config.log_format {
        LogFormat::Human => registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(output)).init(),
        LogFormat::Json => {
            registry.with(tracing_subscriber::fmt::layer().json().with_ansi(ansi).with_writer(output)).init()
        }
    }
    Ok(Logging { filter: if env_set { None } else { Some(handle) }, file })
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
