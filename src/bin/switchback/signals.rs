//! The signals the daemon answers: SIGINT and SIGTERM stop (SIGTERM drains first), SIGHUP reloads
//! (and reopens the usage file), SIGUSR1 reopens the usage file only (logrotate's `postrotate`).

/// SIGINT and SIGTERM (Ctrl-C elsewhere).
pub struct ShutdownSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub fn new() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignal { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignal {})
    }

    /// Waits for a signal and names it.
    pub async fn wait(&mut self) -> &'static str {
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

/// SIGHUP (reload) or SIGUSR1 (reopen files); never fires where there are no such signals.
pub struct Hangup {
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Hangup {
    /// SIGHUP.
    pub fn new() -> std::io::Result<Self> {
        Self::of(
            #[cfg(unix)]
            tokio::signal::unix::SignalKind::hangup(),
        )
    }

    /// SIGUSR1.
    pub fn user1() -> std::io::Result<Self> {
        Self::of(
            #[cfg(unix)]
            tokio::signal::unix::SignalKind::user_defined1(),
        )
    }

    fn of(#[cfg(unix)] kind: tokio::signal::unix::SignalKind) -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            Ok(Hangup { hup: tokio::signal::unix::signal(kind)? })
        }
        #[cfg(not(unix))]
        Ok(Hangup {})
    }

    /// Waits for the next SIGHUP.
    pub async fn recv(&mut self) {
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
