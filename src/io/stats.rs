//! Counters of the I/O drivers (the protocol's own counters are in `server::Stats`).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Driver counters: relaxed atomics, shared by every listener of one [`super::Running`].
#[derive(Debug, Default)]
pub struct IoStats {
    pub(super) udp_recv_errors: AtomicU64,
    pub(super) udp_send_errors: AtomicU64,
    pub(super) tcp_accepted: AtomicU64,
    pub(super) tcp_rejected: AtomicU64,
    pub(super) tcp_accept_errors: AtomicU64,
    pub(super) tcp_closed_invalid: AtomicU64,
    pub(super) tcp_closed_idle: AtomicU64,
    pub(super) tcp_closed_unauthenticated: AtomicU64,
    pub(super) tcp_closed_duplicate: AtomicU64,
    pub(super) tcp_io_errors: AtomicU64,
    pub(super) tls_handshakes: AtomicU64,
    pub(super) tls_handshake_failures: AtomicU64,
    pub(super) proxy_header_failures: AtomicU64,
    pub(super) proxy_untrusted: AtomicU64,
    tcp_open: AtomicU64,
    tls_open: AtomicU64,
    tcp_authenticated: AtomicU64,
    tls_authenticated: AtomicU64,
}

/// One open TCP or TLS connection that has authenticated (made an allocation, or bound an RFC 6062
/// peer connection), in the authenticated gauge of [`IoStats`] until dropped.
#[derive(Debug)]
pub(super) struct AuthenticatedConnection {
    stats: std::sync::Arc<IoStats>,
    tls: bool,
}

impl Drop for AuthenticatedConnection {
    fn drop(&mut self) {
        let gauge = if self.tls { &self.stats.tls_authenticated } else { &self.stats.tcp_authenticated };
        gauge.fetch_sub(1, Relaxed);
    }
}

/// One open TCP or TLS connection in the gauge of [`IoStats`]; dropping it counts it closed.
#[derive(Debug)]
pub(super) struct OpenConnection {
    stats: std::sync::Arc<IoStats>,
    tls: bool,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let gauge = if self.tls { &self.stats.tls_open } else { &self.stats.tcp_open };
        gauge.fetch_sub(1, Relaxed);
    }
}

/// A copy of the driver counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoStatsSnapshot {
    /// `recv_from` failures on UDP listeners.
    pub udp_recv_errors: u64,
    /// `send_to` failures on UDP listeners (the reply is lost).
    pub udp_send_errors: u64,
    /// TCP connections accepted and served (TLS ones included).
    pub tcp_accepted: u64,
    /// TCP connections closed at once because the listener was at its connection cap.
    pub tcp_rejected: u64,
    /// `accept` failures (for example out of file descriptors).
    pub tcp_accept_errors: u64,
    /// TCP connections closed because the stream could not be framed or a frame was malformed.
    pub tcp_closed_invalid: u64,
    /// TCP connections closed after the idle timeout.
    pub tcp_closed_idle: u64,
    /// TCP/TLS connections closed because they made no allocation (nor bound an RFC 6062
    /// connection) within [`Limits::tcp_auth_timeout`](super::Limits::tcp_auth_timeout).
    pub tcp_closed_unauthenticated: u64,
    /// Connections closed at once because an open connection had their 5-tuple (a PROXY header
    /// claiming the address of a client that is connected).
    pub tcp_closed_duplicate: u64,
    /// TCP read or write failures (reset by the peer and the like).
    pub tcp_io_errors: u64,
    /// TLS handshakes completed (their connections are also counted as `tcp_*`).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed (not TLS, no common version or ALPN protocol) or timed out.
    pub tls_handshake_failures: u64,
    /// `proxy-protocol` connections closed for a missing, malformed or late PROXY v2 header.
    pub proxy_header_failures: u64,
    /// `proxy-protocol` connections closed at once because they came from outside
    /// `proxy-protocol-from`.
    pub proxy_untrusted: u64,
    /// TCP connections open now (plain TCP listeners).
    pub tcp_open: u64,
    /// TLS connections open now (handshaking or established).
    pub tls_open: u64,
    /// Of `tcp_open`, those that authenticated (made an allocation or bound an RFC 6062 peer
    /// connection); the others are still within their `tcp-auth-timeout`.
    pub tcp_authenticated: u64,
    /// Of `tls_open`, those that authenticated.
    pub tls_authenticated: u64,
}

impl IoStats {
    /// Counts a connection open until the returned guard is dropped.
    pub(super) fn open_gauge(stats: &std::sync::Arc<IoStats>, tls: bool) -> OpenConnection {
        let gauge = if tls { &stats.tls_open } else { &stats.tcp_open };
        gauge.fetch_add(1, Relaxed);
        OpenConnection { stats: stats.clone(), tls }
    }

    /// Counts an open connection as authenticated until the returned guard is dropped.
    pub(super) fn authenticated_gauge(stats: &std::sync::Arc<IoStats>, tls: bool) -> AuthenticatedConnection {
        let gauge = if tls { &stats.tls_authenticated } else { &stats.tcp_authenticated };
        gauge.fetch_add(1, Relaxed);
        AuthenticatedConnection { stats: stats.clone(), tls }
    }

    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> IoStatsSnapshot {
        IoStatsSnapshot {
            udp_recv_errors: self.udp_recv_errors.load(Relaxed),
            udp_send_errors: self.udp_send_errors.load(Relaxed),
            tcp_accepted: self.tcp_accepted.load(Relaxed),
            tcp_rejected: self.tcp_rejected.load(Relaxed),
            tcp_accept_errors: self.tcp_accept_errors.load(Relaxed),
            tcp_closed_invalid: self.tcp_closed_invalid.load(Relaxed),
            tcp_closed_idle: self.tcp_closed_idle.load(Relaxed),
            tcp_closed_unauthenticated: self.tcp_closed_unauthenticated.load(Relaxed),
            tcp_closed_duplicate: self.tcp_closed_duplicate.load(Relaxed),
            tcp_io_errors: self.tcp_io_errors.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            proxy_header_failures: self.proxy_header_failures.load(Relaxed),
            proxy_untrusted: self.proxy_untrusted.load(Relaxed),
            tcp_open: self.tcp_open.load(Relaxed),
            tls_open: self.tls_open.load(Relaxed),
            tcp_authenticated: self.tcp_authenticated.load(Relaxed),
            tls_authenticated: self.tls_authenticated.load(Relaxed),
        }
    }
}
