//! Session logs: the core's lifecycle events as tracing lines under the target
//! `switchback::session`, so an operator can answer "who held relay port X at time T?" with grep.
//!
//! At `info`: allocation created and deleted (with its usage), authentication failures and denied
//! peers; at `debug`: refreshes, permissions, channels and RFC 6062 bindings. Every line about an
//! allocation carries its `id`. Failures and denials come from the network, so they share a budget
//! of lines per second each: beyond it they are counted, and the count is logged once the next
//! second begins — a flood cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use tracing::{debug, info, warn};

use crate::server::{Event, EventSink, Session};

/// Lines per second of each rate-limited kind (auth failures, denied peers).
pub const LINES_PER_SECOND: u64 = 10;

/// The tracing target of session lines (filter with `RUST_LOG=switchback::session=info`).
pub const TARGET: &str = "switchback::session";

/// The session-log sink (see the module documentation).
#[derive(Debug)]
pub struct SessionLog {
    node: String,
    auth_failures: LineBudget,
    denied_peers: LineBudget,
}

impl SessionLog {
    /// Session lines naming `node`.
    pub fn new(node: String) -> SessionLog {
        let start = Instant::now();
        SessionLog { node, auth_failures: LineBudget::new(start), denied_peers: LineBudget::new(start) }
    }
}

/// A per-second budget of log lines: `take` says whether a line may be written, and how many were
/// suppressed in the seconds before it.
#[derive(Debug)]
struct LineBudget {
    start: Instant,
    /// The second (since `start`) the budget counts in.
    second: AtomicU64,
    /// Lines taken in that second.
    used: AtomicU64,
    /// Lines refused since the last report.
    suppressed: AtomicU64,
}

impl LineBudget {
    fn new(start: Instant) -> LineBudget {
        LineBudget { start, second: AtomicU64::new(0), used: AtomicU64::new(0), suppressed: AtomicU64::new(0) }
    }

    /// `Some(suppressed before)` when a line may be written now, `None` when over the budget.
    fn take(&self) -> Option<u64> {
        let now = self.start.elapsed().as_secs();
        let second = self.second.load(Relaxed);
        if now != second && self.second.compare_exchange(second, now, Relaxed, Relaxed).is_ok() {
            self.used.store(0, Relaxed);
        }
        if self.used.fetch_add(1, Relaxed) < LINES_PER_SECOND {
            Some(self.suppressed.swap(0, Relaxed))
        } else {
            self.suppressed.fetch_add(1, Relaxed);
            None
        }
    }
}

/// The relayed addresses as one field: `a` or `a,b`.
fn relayed(session: &Session<'_>) -> String {
    session.relayed().map(|a| a.to_string()).collect::<Vec<_>>().join(",")
}

impl EventSink for SessionLog {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Allocated { session: s, lifetime_secs } => info!(
                target: TARGET,
                id = %s.id, node = %self.node, user = s.user, username = s.username, realm = s.realm,
                auth = s.auth.as_str(), transport = crate::io::transport_name(s.five_tuple.transport),
                client = %s.five_tuple.client, server = %s.five_tuple.server, relayed = %relayed(s),
                tcp_relay = s.tcp_relay, lifetime_secs, "allocation created"
            ),
            Event::Deleted { session: s, reason, at_ms, usage } => info!(
                target: TARGET,
                id = %s.id, node = %self.node, user = s.user, client = %s.five_tuple.client,
                relayed = %relayed(s), reason = reason.as_str(),
                duration_secs = at_ms.saturating_sub(s.started_ms) as f64 / 1000.0,
                to_peer_packets = usage.to_peer_packets, to_peer_bytes = usage.to_peer_bytes,
                to_client_packets = usage.to_client_packets, to_client_bytes = usage.to_client_bytes,
                "allocation deleted"
            ),
            Event::AuthFailed { five_tuple, username, reason } => {
                if let Some(suppressed) = self.auth_failures.take() {
                    if suppressed > 0 {
                        warn!(target: TARGET, suppressed, "authentication failure lines suppressed (over 10/s)");
                    }
                    info!(
                        target: TARGET,
                        reason = %reason, username = username.unwrap_or(""), client = %five_tuple.client,
                        transport = crate::io::transport_name(five_tuple.transport), "authentication failed"
                    );
                }
            }
            Event::PeerDenied { session: s, peer } => {
                if let Some(suppressed) = self.denied_peers.take() {
                    if suppressed > 0 {
                        warn!(target: TARGET, suppressed, "denied-peer lines suppressed (over 10/s)");
                    }
                    info!(target: TARGET, id = %s.id, user = s.user, %peer, "peer denied by policy (403)");
                }
            }
            other => log_detail(other),
        }
    }
}

/// The `debug` lines: refreshes, permissions, channels, RFC 6062 bindings.
fn log_detail(event: &Event<'_>) {
    match event {
        Event::Refreshed { session: s, lifetime_secs, .. } => {
            debug!(target: TARGET, id = %s.id, user = s.user, lifetime_secs, "allocation refreshed");
        }
        Event::Permission { session: s, peer } => {
            debug!(target: TARGET, id = %s.id, user = s.user, %peer, "permission installed");
        }
        Event::Channel { session: s, number, peer } => {
            debug!(target: TARGET, id = %s.id, user = s.user, channel = number, %peer, "channel bound");
        }
        Event::TcpConnectionBound { session: s, connection_id, peer } => {
            debug!(target: TARGET, id = %s.id, user = s.user, connection_id, %peer, "RFC 6062 connection bound");
        }
        Event::TcpConnectionClosed { session: s, connection_id, peer, to_peer_bytes, to_client_bytes, .. } => {
            debug!(
                target: TARGET,
                id = %s.id, user = s.user, connection_id, %peer, to_peer_bytes, to_client_bytes,
                "RFC 6062 connection closed"
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_the_rate_and_reports_what_it_refused() {
        let budget = LineBudget::new(Instant::now());
        for _ in 0..LINES_PER_SECOND {
            assert_eq!(budget.take(), Some(0));
        }
        assert_eq!(budget.take(), None);
        assert_eq!(budget.take(), None);
        // The next second: the two refused lines are reported with the first line let through.
        budget.second.store(u64::MAX, Relaxed);
        assert_eq!(budget.take(), Some(2));
        assert_eq!(budget.take(), Some(0));
    }
}
