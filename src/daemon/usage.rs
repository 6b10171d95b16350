//! Usage records: one JSON line per ended allocation (and interim lines for long ones), for a
//! billing job — the format is documented in `docs/usage.md`.
//!
//! The core's deletion event is turned into a line on the worker (a lifecycle edge, not a packet),
//! and a bounded queue hands it to a writer thread, so a slow disk never stalls relaying: when the
//! queue is full the record is dropped and counted (`dropped()`), never buffered without bound.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use serde::Serialize;
use tracing::warn;

use crate::server::{Event, EventSink, Session, Usage};

/// Records waiting for the writer thread at most.
pub const QUEUE: usize = 16_384;

/// Why the usage writer could not start.
#[derive(Debug, thiserror::Error)]
#[error("usage-file {path}: {source}")]
pub struct UsageError {
    path: PathBuf,
    source: io::Error,
}

/// One usage record (a line of `usage-file`).
#[derive(Debug, Serialize)]
pub struct UsageRecord<'a> {
    /// `final` when the allocation ended, `interim` for a live one (`usage-interval`).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The allocation id (16 hex digits, as in the session log).
    pub id: String,
    /// `node-id`.
    pub node: &'a str,
    /// The user its quota counts against (REST user part, static user, token identity).
    pub user: &'a str,
    /// The username it authenticated with.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// `rest`, `static` or `token`.
    pub auth: &'static str,
    /// The client's transport: `udp`, `tcp` or `tls`.
    pub transport: &'static str,
    /// The client's address.
    pub client: SocketAddr,
    /// The server address the client talked to.
    pub server: SocketAddr,
    /// The relayed address(es), as advertised.
    pub relayed: Vec<SocketAddr>,
    /// An RFC 6062 TCP allocation.
    pub tcp_relay: bool,
    /// Start, RFC 3339 (UTC, milliseconds).
    pub start: String,
    /// End (for an interim record: when it was taken), RFC 3339.
    pub end: String,
    /// Seconds between start and end, with milliseconds.
    pub duration_secs: f64,
    /// Why it ended (`expired`, `client`, `revoked`, …); `null` in an interim record.
    pub reason: Option<&'static str>,
    /// Application data packets client → peer since the start.
    pub to_peer_packets: u64,
    /// Application data bytes client → peer (payload only, no TURN framing).
    pub to_peer_bytes: u64,
    /// Packets peer → client.
    pub to_client_packets: u64,
    /// Bytes peer → client (payload only).
    pub to_client_bytes: u64,
}

impl<'a> UsageRecord<'a> {
    /// The record of `session` at `end_ms` (Unix milliseconds) with its totals; `reason` `None`
    /// for an interim record.
    pub fn new(node: &'a str, session: &Session<'a>, end_ms: u64, reason: Option<&'static str>, usage: Usage) -> Self {
        UsageRecord {
            kind: if reason.is_some() { "final" } else { "interim" },
            id: session.id.to_string(),
            node,
            user: session.user,
            username: session.username,
            realm: session.realm,
            auth: session.auth.as_str(),
            transport: crate::io::transport_name(session.five_tuple.transport),
            client: session.five_tuple.client,
            server: session.five_tuple.server,
            relayed: session.relayed().collect(),
            tcp_relay: session.tcp_relay,
            start: rfc3339_ms(session.started_ms),
            end: rfc3339_ms(end_ms),
            duration_secs: end_ms.saturating_sub(session.started_ms) as f64 / 1000.0,
            reason,
            to_peer_packets: usage.to_peer_packets,
            to_peer_bytes: usage.to_peer_bytes,
            to_client_packets: usage.to_client_packets,
            to_client_bytes: usage.to_client_bytes,
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds: `2026-12-07T14:00:00.250Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let seconds = crate::http::api::rfc3339(ms / 1000);
    let base = seconds.strip_suffix('Z').unwrap_or(&seconds);
    format!("{base}.{:03}Z", ms % 1000)
}

/// What the writer thread is told.
enum Command {
    Line(String),
    Reopen,
    /// Flush, then answer (shutdown waits for it).
    Flush(SyncSender<()>),
}

/// The usage-record sink: formats records and queues them for its writer thread.
#[derive(Debug)]
pub struct UsageWriter {
    node: String,
    queue: SyncSender<Command>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Line(_) => "Line",
            Command::Reopen => "Reopen",
            Command::Flush(_) => "Flush",
        })
    }
}

/// Where records go: a file (appended, reopened on demand) or stdout.
enum Output {
    File { path: PathBuf, out: BufWriter<File> },
    Stdout,
}

impl Output {
    fn open(path: &Path) -> Result<Output, UsageError> {
        if path == Path::new("-") {
            return Ok(Output::Stdout);
        }
        let out = append(path).map_err(|source| UsageError { path: path.to_owned(), source })?;
        Ok(Output::File { path: path.to_owned(), out })
    }

    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Output::File { out, .. } => writeln!(out, "{line}"),
            Output::Stdout => writeln!(io::stdout().lock(), "{line}"),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::File { out, .. } => out.flush(),
            Output::Stdout => io::stdout().lock().flush(),
        }
    }

    /// logrotate moved the file away: write to a new one under the same name.
    fn reopen(&mut self) -> io::Result<()> {
        if let Output::File { path, out } = self {
            out.flush()?;
            *out = append(path)?;
        }
        Ok(())
    }
}

fn append(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(OpenOptions::new().create(true).append(true).open(path)?))
}

impl UsageWriter {
    /// Opens `path` (`-`: stdout) and starts the writer thread; records name `node`.
    pub fn start(path: &Path, node: String) -> Result<UsageWriter, UsageError> {
        let output = Output::open(path)?;
        let (queue, commands) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("usage-writer".into())
            .spawn(move || write_loop(output, commands))
            .map_err(|source| UsageError { path: path.to_owned(), source })?;
        Ok(UsageWriter { node, queue, dropped: Arc::new(AtomicU64::new(0)) })
    }

    /// Queues one record; a full queue drops it (counted).
    pub fn record(&self, record: &UsageRecord<'_>) {
        let line = match serde_json::to_string(record) {
            Ok(line) => line,
            Err(e) => return warn!(error = %e, "usage record not serialized"),
        };
        match self.queue.try_send(Command::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Relaxed) == 0 {
                    warn!(
                        queue = QUEUE,
                        "usage-file cannot keep up: records dropped (their count is logged at shutdown)"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// An interim record of a live allocation (`usage-interval`).
    pub fn interim(&self, session: &Session<'_>, now_ms: u64, usage: Usage) {
        self.record(&UsageRecord::new(&self.node, session, now_ms, None, usage));
    }

    /// Reopens the file (logrotate: SIGHUP, SIGUSR1).
    pub fn reopen(&self) {
        let _ = self.queue.try_send(Command::Reopen);
    }

    /// Writes out what is queued; waits at most `timeout` (shutdown).
    pub fn flush(&self, timeout: Duration) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.queue.send(Command::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(timeout);
        }
    }

    /// Records dropped because the writer could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

impl EventSink for UsageWriter {
    fn event(&self, event: &Event<'_>) {
        if let Event::Deleted { session, reason, at_ms, usage } = event {
            self.record(&UsageRecord::new(&self.node, session, *at_ms, Some(reason.as_str()), *usage));
        }
    }
}

/// The writer thread: lines as they come, a flush whenever the queue runs empty.
fn write_loop(mut output: Output, commands: Receiver<Command>) {
    let mut failing = false;
    while let Ok(command) = commands.recv() {
        let mut next = Some(command);
        while let Some(command) = next {
            let result = match command {
                Command::Line(line) => output.write_line(&line),
                Command::Reopen => output.reopen(),
                Command::Flush(done) => {
                    let result = output.flush();
                    let _ = done.try_send(());
                    result
                }
            };
            match result {
                Err(e) if !failing => {
                    failing = true;
                    warn!(error = %e, "usage-file: write failed (records are lost until it works again)");
                }
                Err(_) => {}
                Ok(()) => failing = false,
            }
            next = commands.try_recv().ok();
        }
        if let Err(e) = output.flush() {
            warn!(error = %e, "usage-file: flush failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_carry_milliseconds() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_652_000_250), "2026-12-07T14:00:00.250Z");
    }

    #[test]
    fn records_are_written_and_the_file_is_reopened_after_a_move() {
        let dir = std::env::temp_dir().join(format!("switchback-usage-{}", crate::random::u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("usage.jsonl");
        let writer = UsageWriter::start(&path, "node-a".into()).unwrap();
        writer.queue.send(Command::Line("{\"n\":1}".into())).unwrap();
        writer.flush(Duration::from_secs(5));
        std::fs::rename(&path, dir.join("usage.jsonl.1")).unwrap();
        writer.reopen();
        writer.queue.send(Command::Line("{\"n\":2}".into())).unwrap();
        writer.flush(Duration::from_secs(5));
        assert_eq!(std::fs::read_to_string(dir.join("usage.jsonl.1")).unwrap(), "{\"n\":1}\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"n\":2}\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
