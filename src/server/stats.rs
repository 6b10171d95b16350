//! Counters of the sans-IO core: relaxed atomics, summed on read, nothing formatted on the hot path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{DropReason, Outcome};
use crate::auth::AuthError;

/// Server counters.
#[derive(Debug, Default)]
pub struct Stats {
    replies: AtomicU64,
    silent: AtomicU64,
    relayed_to_peer: AtomicU64,
    relayed_to_client: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS],
    peer_no_permission: AtomicU64,
    peer_denied: AtomicU64,
    auth_failures: AtomicU64,
    stale_nonces: AtomicU64,
    errors_sent: AtomicU64,
    allocations_created: AtomicU64,
    allocations_deleted: AtomicU64,
    rate_limited_allocates: AtomicU64,
    revoked_requests: AtomicU64,
    revoked_allocations: AtomicU64,
    credential_expired_allocations: AtomicU64,
    peer_bandwidth_exceeded: AtomicU64,
    tcp_connects: AtomicU64,
    tcp_connected: AtomicU64,
    tcp_connect_failures: AtomicU64,
    tcp_connection_attempts: AtomicU64,
    tcp_connections_bound: AtomicU64,
    tcp_connections_expired: AtomicU64,
}

const DROP_REASONS: usize = 13;

fn drop_index(r: &DropReason) -> usize {
    match r {
        DropReason::NotStunOrChannelData => 0,
        DropReason::Malformed(_) => 1,
        DropReason::BadFingerprint => 2,
        DropReason::Unexpected => 3,
        DropReason::BadData => 4,
        DropReason::NoAllocation => 5,
        DropReason::NoChannel => 6,
        DropReason::NoPermission => 7,
        DropReason::PeerDenied => 8,
        DropReason::SendFailed => 9,
        DropReason::OutputTooSmall => 10,
        DropReason::RateLimited => 11,
        DropReason::BandwidthExceeded => 12,
    }
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Messages answered.
    pub replies: u64,
    /// Messages taken without an answer.
    pub silent: u64,
    /// Client data sent on to peers.
    pub relayed_to_peer: u64,
    /// Peer data sent on to clients.
    pub relayed_to_client: u64,
    /// Dropped: neither STUN nor ChannelData.
    pub dropped_not_stun: u64,
    /// Dropped: malformed STUN.
    pub dropped_malformed: u64,
    /// Dropped: bad FINGERPRINT.
    pub dropped_bad_fingerprint: u64,
    /// Dropped: responses and indications the server does not take.
    pub dropped_unexpected: u64,
    /// Dropped: malformed ChannelData or Send indication.
    pub dropped_bad_data: u64,
    /// Dropped: data for a 5-tuple without allocation.
    pub dropped_no_allocation: u64,
    /// Dropped: ChannelData on an unbound channel.
    pub dropped_no_channel: u64,
    /// Dropped: client data to a peer without permission.
    pub dropped_no_permission: u64,
    /// Dropped: client data to a peer the policy refuses.
    pub dropped_peer_denied: u64,
    /// Dropped: relay socket full or failing.
    pub dropped_send_failed: u64,
    /// Dropped: answer larger than the output buffer.
    pub dropped_output: u64,
    /// Peer datagrams dropped for want of a permission.
    pub peer_no_permission: u64,
    /// Requests refused with 403 by the peer policy.
    pub peer_denied: u64,
    /// Requests that failed authentication (400/401/438).
    pub auth_failures: u64,
    /// Of those, stale or invalid nonces (438).
    pub stale_nonces: u64,
    /// Error responses sent.
    pub errors_sent: u64,
    /// Allocations created.
    pub allocations_created: u64,
    /// Allocations deleted or expired.
    pub allocations_deleted: u64,
    /// Dropped: over the per-source rate limit of unauthenticated answers.
    pub dropped_rate_limited: u64,
    /// Allocate requests answered 486 for going over the per-user rate limit.
    pub rate_limited_allocates: u64,
    /// Requests with valid credentials of a revoked user, answered 401.
    pub revoked_requests: u64,
    /// Allocations torn down because their user was revoked.
    pub revoked_allocations: u64,
    /// Allocations torn down by strict expiry when their REST credential expired.
    pub credential_expired_allocations: u64,
    /// Dropped: client data over a bandwidth limit.
    pub dropped_bandwidth: u64,
    /// Peer datagrams dropped over a bandwidth limit.
    pub peer_bandwidth_exceeded: u64,
    /// RFC 6062 Connect requests accepted (a TCP connection to the peer was started).
    pub tcp_connects: u64,
    /// Of those, connections made (answered with CONNECTION-ID).
    pub tcp_connected: u64,
    /// Of those, failures and timeouts (answered 447).
    pub tcp_connect_failures: u64,
    /// Peer connections to TCP relayed addresses announced with ConnectionAttempt.
    pub tcp_connection_attempts: u64,
    /// Peer connections bound to a client data connection (ConnectionBind).
    pub tcp_connections_bound: u64,
    /// Peer connections closed for want of a ConnectionBind within 30 s (or of their allocation).
    pub tcp_connections_expired: u64,
}

impl StatsSnapshot {
    /// All drops of client input together.
    pub fn dropped(&self) -> u64 {
        self.dropped_not_stun
            + self.dropped_malformed
            + self.dropped_bad_fingerprint
            + self.dropped_unexpected
            + self.dropped_bad_data
            + self.dropped_no_allocation
            + self.dropped_no_channel
            + self.dropped_no_permission
            + self.dropped_peer_denied
            + self.dropped_send_failed
            + self.dropped_output
            + self.dropped_rate_limited
            + self.dropped_bandwidth
    }
}

impl Stats {
    pub(super) fn record(&self, outcome: &Outcome) {
        let c = match outcome {
            Outcome::Reply(_) => &self.replies,
            Outcome::Silent => &self.silent,
            Outcome::Relayed => &self.relayed_to_peer,
            Outcome::Dropped(r) => match self.dropped.get(drop_index(r)) {
                Some(c) => c,
                None => return,
            },
        };
        c.fetch_add(1, Relaxed);
    }

    pub(super) fn error_sent(&self, _code: u16) {
        self.errors_sent.fetch_add(1, Relaxed);
    }

    pub(super) fn auth_failure(&self, e: AuthError) {
        self.auth_failures.fetch_add(1, Relaxed);
        if e.error_code() == crate::proto::stun::codes::STALE_NONCE {
            self.stale_nonces.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn allocation_created(&self) {
        self.allocations_created.fetch_add(1, Relaxed);
    }

    pub(super) fn allocation_deleted(&self) {
        self.allocations_deleted.fetch_add(1, Relaxed);
    }

    pub(super) fn peer_denied(&self) {
        self.peer_denied.fetch_add(1, Relaxed);
    }

    pub(super) fn peer_no_permission(&self) {
        self.peer_no_permission.fetch_add(1, Relaxed);
    }

    pub(super) fn peer_bandwidth_exceeded(&self) {
        self.peer_bandwidth_exceeded.fetch_add(1, Relaxed);
    }

    pub(super) fn relayed_to_client(&self) {
        self.relayed_to_client.fetch_add(1, Relaxed);
    }

    pub(super) fn allocate_rate_limited(&self) {
        self.rate_limited_allocates.fetch_add(1, Relaxed);
    }

    pub(super) fn revoked_request(&self) {
        self.revoked_requests.fetch_add(1, Relaxed);
    }

    pub(super) fn allocation_revoked(&self) {
        self.revoked_allocations.fetch_add(1, Relaxed);
    }

    pub(super) fn allocation_credential_expired(&self) {
        self.credential_expired_allocations.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connect(&self) {
        self.tcp_connects.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connected(&self) {
        self.tcp_connected.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connect_failed(&self) {
        self.tcp_connect_failures.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connection_attempt(&self) {
        self.tcp_connection_attempts.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connection_bound(&self) {
        self.tcp_connections_bound.fetch_add(1, Relaxed);
    }

    pub(super) fn tcp_connection_expired(&self) {
        self.tcp_connections_expired.fetch_add(1, Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let d = |i: usize| self.dropped.get(i).map(|c| c.load(Relaxed)).unwrap_or(0);
        StatsSnapshot {
            replies: self.replies.load(Relaxed),
            silent: self.silent.load(Relaxed),
            relayed_to_peer: self.relayed_to_peer.load(Relaxed),
            relayed_to_client: self.relayed_to_client.load(Relaxed),
            dropped_not_stun: d(0),
            dropped_malformed: d(1),
            dropped_bad_fingerprint: d(2),
            dropped_unexpected: d(3),
            dropped_bad_data: d(4),
            dropped_no_allocation: d(5),
            dropped_no_channel: d(6),
            dropped_no_permission: d(7),
            dropped_peer_denied: d(8),
            dropped_send_failed: d(9),
            dropped_output: d(10),
            peer_no_permission: self.peer_no_permission.load(Relaxed),
            peer_denied: self.peer_denied.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            stale_nonces: self.stale_nonces.load(Relaxed),
            errors_sent: self.errors_sent.load(Relaxed),
            allocations_created: self.allocations_created.load(Relaxed),
            allocations_deleted: self.allocations_deleted.load(Relaxed),
            dropped_rate_limited: d(11),
            rate_limited_allocates: self.rate_limited_allocates.load(Relaxed),
            revoked_requests: self.revoked_requests.load(Relaxed),
            revoked_allocations: self.revoked_allocations.load(Relaxed),
            credential_expired_allocations: self.credential_expired_allocations.load(Relaxed),
            dropped_bandwidth: d(12),
            peer_bandwidth_exceeded: self.peer_bandwidth_exceeded.load(Relaxed),
            tcp_connects: self.tcp_connects.load(Relaxed),
            tcp_connected: self.tcp_connected.load(Relaxed),
            tcp_connect_failures: self.tcp_connect_failures.load(Relaxed),
            tcp_connection_attempts: self.tcp_connection_attempts.load(Relaxed),
            tcp_connections_bound: self.tcp_connections_bound.load(Relaxed),
            tcp_connections_expired: self.tcp_connections_expired.load(Relaxed),
        }
    }
}
