//! Counters of the sans-IO core: relaxed atomics, summed on read, nothing formatted on the hot path.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::{DropReason, Outcome};
use crate::alloc::AllocationCounters;
use crate::auth::{AuthError, Reason};
use crate::proto::stun::{Class, MessageType, Method};

/// Declares the plain counters once: each one's atomic in [`Stats`], its field (with its doc) in
/// [`StatsSnapshot`], its read in [`Stats::snapshot`] and, after `=>`, the method that bumps it.
/// `derived` fields are snapshot-only, filled by `Stats::derived` from the arrays below.
macro_rules! counters {
    (
        plain { $( $(#[doc = $doc:literal])* $field:ident $(=> $bump:ident)? ),* $(,)? }
        derived { $( $(#[doc = $ddoc:literal])* $dfield:ident : $dty:ty ),* $(,)? }
    ) => {
        /// Server counters.
        #[derive(Debug, Default)]
        pub struct Stats {
            $( $field: AtomicU64, )*
            dropped: [AtomicU64; DROP_REASONS],
            auth_failures_by_reason: [AtomicU64; AUTH_REASONS],
            /// Bytes and packets of allocations already deleted (the live ones are summed from the table).
            retired: [AtomicU64; 4],
            latency: RequestLatency,
            ended: EndedAllocations,
        }

        /// A copy of the counters at one moment.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct StatsSnapshot {
            $( $(#[doc = $doc])* pub $field: u64, )*
            $( $(#[doc = $ddoc])* pub $dfield: $dty, )*
        }

        impl Stats {
            $( $( pub(super) fn $bump(&self) { self.$field.fetch_add(1, Relaxed); } )? )*

            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                let mut snapshot =
                    StatsSnapshot { $( $field: self.$field.load(Relaxed), )* ..StatsSnapshot::default() };
                self.derived(&mut snapshot);
                snapshot
            }
        }
    };
}

counters! {
    plain {
        /// Messages answered.
        replies,
        /// Messages taken without an answer.
        silent,
        /// Client data sent on to peers.
        relayed_to_peer,
        /// Peer data sent on to clients.
        relayed_to_client => relayed_to_client,
        /// Peer datagrams dropped for want of a permission.
        peer_no_permission => peer_no_permission,
        /// Requests refused with 403 by the peer policy (the built-in one or the embedder's
        /// [`PeerHook`](super::PeerHook)).
        peer_denied => peer_denied,
        /// Choices of the embedder's [`RelayAddressHook`](super::RelayAddressHook) that were not
        /// valid for the Allocate (another family, an empty range, ports below 1024), so the
        /// default relay address was used.
        relay_hook_ignored => relay_hook_ignored,
        /// Requests refused for their credentials (400, 401 with credentials, revoked): real
        /// failures, by reason in `auth_failures_by_reason`. Challenges are not among them.
        auth_failures,
        /// Challenges: a request without credentials answered 401 with REALM and NONCE (the first
        /// step of every login, RFC 8489 §9.2.4) or 438 for a stale nonce.
        auth_challenges,
        /// Of the challenges, stale or invalid nonces (438).
        stale_nonces,
        /// Error responses sent.
        errors_sent,
        /// Allocations created.
        allocations_created => allocation_created,
        /// Allocations deleted or expired.
        allocations_deleted,
        /// Allocate requests answered 486 for going over the per-user rate limit.
        rate_limited_allocates => allocate_rate_limited,
        /// Requests with valid credentials of a revoked user, answered 403 (also an auth failure
        /// with reason `revoked`).
        revoked_requests => revoked_request,
        /// Allocations torn down because their user was revoked.
        revoked_allocations => allocation_revoked,
        /// Allocations torn down by strict expiry when their REST credential expired.
        credential_expired_allocations => allocation_credential_expired,
        /// Peer datagrams dropped over a bandwidth limit.
        peer_bandwidth_exceeded => peer_bandwidth_exceeded,
        /// RFC 6062 Connect requests accepted (a TCP connection to the peer was started).
        tcp_connects => tcp_connect,
        /// Of those, connections made (answered with CONNECTION-ID).
        tcp_connected => tcp_connected,
        /// Of those, failures and timeouts (answered 447).
        tcp_connect_failures => tcp_connect_failed,
        /// Peer connections to TCP relayed addresses announced with ConnectionAttempt.
        tcp_connection_attempts => tcp_connection_attempt,
        /// Peer connections bound to a client data connection (ConnectionBind).
        tcp_connections_bound => tcp_connection_bound,
        /// Peer connections closed for want of a ConnectionBind within 30 s (or of their allocation).
        tcp_connections_expired => tcp_connection_expired,
        /// Allocate requests answered 300 with ALTERNATE-SERVER (draining, or over `alternate-threshold`).
        allocations_redirected => allocation_redirected,
        /// Allocate requests answered 508 while draining (no alternate server configured).
        allocations_refused_draining => allocation_refused_draining,
        /// ICMP errors relayed to clients as Data indications with an ICMP attribute (RFC 8656 §11.5).
        icmp_relayed => icmp_relayed,
        /// ICMP errors dropped: no permission for the peer, a type RFC 8656 §11.5 does not relay,
        /// or over the per-allocation rate limit.
        icmp_dropped => icmp_dropped,
        /// Allocations an RFC 8016 mobility Refresh moved to a new 5-tuple.
        allocations_moved => allocation_moved,
    }
    derived {
        /// Dropped: neither STUN nor ChannelData.
        dropped_not_stun: u64,
        /// Dropped: malformed STUN.
        dropped_malformed: u64,
        /// Dropped: bad FINGERPRINT.
        dropped_bad_fingerprint: u64,
        /// Dropped: responses, unsupported methods or classes, TURN without the magic cookie, and
        /// indications with unknown comprehension-required attributes (RFC 8489 §6.3).
        dropped_unexpected: u64,
        /// Dropped: malformed ChannelData or Send indication.
        dropped_bad_data: u64,
        /// Dropped: data for a 5-tuple without allocation.
        dropped_no_allocation: u64,
        /// Dropped: ChannelData on an unbound channel.
        dropped_no_channel: u64,
        /// Dropped: client data to a peer without permission.
        dropped_no_permission: u64,
        /// Dropped: client data to a peer the policy refuses.
        dropped_peer_denied: u64,
        /// Dropped: relay socket full or failing.
        dropped_send_failed: u64,
        /// Dropped: answer larger than the output buffer.
        dropped_output: u64,
        /// Dropped: over the per-source rate limit of unauthenticated answers.
        dropped_rate_limited: u64,
        /// Dropped: client data over a bandwidth limit.
        dropped_bandwidth: u64,
        /// Authentication failures by reason, in the order of [`AUTH_FAILURE_REASONS`].
        auth_failures_by_reason: [u64; AUTH_REASONS],
        /// Relayed totals of allocations already deleted: packets and bytes to peers, then to clients.
        /// Add the live allocations' [`AllocationCounters`] for the server's totals.
        retired_to_peer_packets: u64,
        /// See `retired_to_peer_packets`.
        retired_to_peer_bytes: u64,
        /// See `retired_to_peer_packets`.
        retired_to_client_packets: u64,
        /// See `retired_to_peer_packets`.
        retired_to_client_bytes: u64,
    }
}

/// Authentication failures by reason (challenges are counted apart).
const AUTH_REASONS: usize = 10;

/// The labels of [`StatsSnapshot::auth_failures_by_reason`], in its order: [`Reason`]'s labels
/// without the two challenges (`no_credentials`, `stale_nonce`).
pub const AUTH_FAILURE_REASONS: [&str; AUTH_REASONS] = [
    "malformed",
    "unknown_user",
    "expired",
    "too_far_in_future",
    "wrong_realm",
    "bad_integrity",
    "revoked",
    "bad_token",
    "md5_refused",
    "refused",
];

/// Where a failure's reason is counted in `auth_failures_by_reason`; `None` for a challenge.
fn failure_index(reason: Reason) -> Option<usize> {
    Some(match reason {
        Reason::NoCredentials | Reason::StaleNonce => return None,
        Reason::Malformed => 0,
        Reason::UnknownUser => 1,
        Reason::Expired => 2,
        Reason::TooFarInFuture => 3,
        Reason::WrongRealm => 4,
        Reason::BadIntegrity => 5,
        Reason::Revoked => 6,
        Reason::BadToken => 7,
        Reason::Md5Refused => 8,
        Reason::Refused => 9,
    })
}

/// Whether an authentication refusal is a challenge (no credentials yet, or a stale nonce: the
/// client answers it with credentials) rather than a failure.
pub fn is_challenge(e: AuthError) -> bool {
    failure_index(e.reason()).is_none()
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
    /// The snapshot fields read from the arrays: drops by reason, authentication failures by
    /// reason, retired totals.
    fn derived(&self, s: &mut StatsSnapshot) {
        let d = |i: usize| self.dropped.get(i).map_or(0, |c| c.load(Relaxed));
        let r = |i: usize| self.retired.get(i).map_or(0, |c| c.load(Relaxed));
        let drops = [
            &mut s.dropped_not_stun,
            &mut s.dropped_malformed,
            &mut s.dropped_bad_fingerprint,
            &mut s.dropped_unexpected,
            &mut s.dropped_bad_data,
            &mut s.dropped_no_allocation,
            &mut s.dropped_no_channel,
            &mut s.dropped_no_permission,
            &mut s.dropped_peer_denied,
            &mut s.dropped_send_failed,
            &mut s.dropped_output,
            &mut s.dropped_rate_limited,
            &mut s.dropped_bandwidth,
        ];
        for (i, field) in drops.into_iter().enumerate() {
            *field = d(i);
        }
        s.auth_failures_by_reason =
            std::array::from_fn(|i| self.auth_failures_by_reason.get(i).map_or(0, |c| c.load(Relaxed)));
        s.retired_to_peer_packets = r(0);
        s.retired_to_peer_bytes = r(1);
        s.retired_to_client_packets = r(2);
        s.retired_to_client_bytes = r(3);
    }

    pub(super) fn record(&self, outcome: &Outcome) {
        let c = match outcome {
            Outcome::Reply(_) | Outcome::ReplyVia { .. } => &self.replies,
            // A held Allocate is answered later, through `resume_allocate`, and counted then.
            Outcome::Silent | Outcome::Pending(_) => &self.silent,
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

    /// A request refused for its credentials: a challenge or a failure by its reason.
    pub(super) fn auth_refused(&self, e: AuthError) {
        match failure_index(e.reason()) {
            None => {
                self.auth_challenges.fetch_add(1, Relaxed);
                if e.reason() == Reason::StaleNonce {
                    self.stale_nonces.fetch_add(1, Relaxed);
                }
            }
            Some(i) => {
                self.auth_failures.fetch_add(1, Relaxed);
                if let Some(c) = self.auth_failures_by_reason.get(i) {
                    c.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// An allocation was deleted after `lifetime_ms`: its relayed totals move to the retired
    /// counters, and its lifetime and bytes go into the [`EndedAllocations`] histograms.
    pub(super) fn allocation_deleted(&self, counters: &AllocationCounters, lifetime_ms: u64) {
        self.allocations_deleted.fetch_add(1, Relaxed);
        let totals = [
            counters.to_peer_packets.load(Relaxed),
            counters.to_peer_bytes.load(Relaxed),
            counters.to_client_packets.load(Relaxed),
            counters.to_client_bytes.load(Relaxed),
        ];
        for (retired, c) in self.retired.iter().zip(totals) {
            retired.fetch_add(c, Relaxed);
        }
        let [_, to_peer_bytes, _, to_client_bytes] = totals;
        self.ended.observe(lifetime_ms, to_peer_bytes, to_client_bytes);
    }

    /// The histograms of deleted allocations: how long they lived, how many bytes they relayed.
    pub fn ended(&self) -> &EndedAllocations {
        &self.ended
    }

    /// The request latency histogram (drivers record into it, see [`RequestLatency::observe`]).
    pub fn latency(&self) -> &RequestLatency {
        &self.latency
    }
}

/// The STUN request methods the latency histogram tells apart, and their metric labels.
pub const LATENCY_METHODS: [Method; 7] = [
    Method::BINDING,
    Method::ALLOCATE,
    Method::REFRESH,
    Method::CREATE_PERMISSION,
    Method::CHANNEL_BIND,
    Method::CONNECT,
    Method::CONNECTION_BIND,
];

/// Upper bounds of the latency buckets, microseconds (the last bucket, +Inf, is implicit).
pub const LATENCY_BUCKETS_US: [u64; 12] = [10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 250_000];

/// Time from receiving a STUN request to its answer being ready, per method: fixed buckets of
/// relaxed atomics, so recording costs a few additions and no lock. Only requests are measured,
/// never data packets. The core does not read the clock; a driver measures and calls
/// [`RequestLatency::observe`].
#[derive(Debug, Default)]
pub struct RequestLatency {
    /// Per method: one counter per bucket (not cumulative) plus +Inf.
    buckets: [[AtomicU64; LATENCY_BUCKETS_US.len() + 1]; LATENCY_METHODS.len()],
    /// Per method: the sum of observed times, microseconds.
    sum_us: [AtomicU64; LATENCY_METHODS.len()],
}

/// One method's histogram at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LatencySnapshot {
    /// The method's name ([`Method::name`]).
    pub method: &'static str,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS_US`] (the count of +Inf is `count`).
    pub cumulative: [u64; LATENCY_BUCKETS_US.len()],
    /// All observations.
    pub count: u64,
    /// Their sum, microseconds.
    pub sum_us: u64,
}

impl RequestLatency {
    /// The histogram index of `data` when it is a STUN request of a measured method: cheap (two
    /// bytes read), so a driver can call it for every datagram and read the clock only for these.
    #[inline]
    pub fn request_index(data: &[u8]) -> Option<usize> {
        let (&a, &b) = (data.first()?, data.get(1)?);
        if a & 0xC0 != 0 {
            return None;
        }
        let ty = MessageType::from_bits(u16::from_be_bytes([a, b]));
        if ty.class != Class::Request {
            return None;
        }
        LATENCY_METHODS.iter().position(|&m| m == ty.method)
    }

    /// Records one request of histogram index `index` (from [`RequestLatency::request_index`]).
    pub fn observe(&self, index: usize, elapsed: std::time::Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US.iter().position(|&le| us <= le).unwrap_or(LATENCY_BUCKETS_US.len());
        if let Some(c) = self.buckets.get(index).and_then(|b| b.get(bucket)) {
            c.fetch_add(1, Relaxed);
        }
        if let Some(s) = self.sum_us.get(index) {
            s.fetch_add(us, Relaxed);
        }
    }

    /// Every method's histogram.
    pub fn snapshot(&self) -> Vec<LatencySnapshot> {
        let mut out = Vec::with_capacity(LATENCY_METHODS.len());
        for ((method, buckets), sum) in LATENCY_METHODS.iter().zip(&self.buckets).zip(&self.sum_us) {
            let mut snap = LatencySnapshot { method: method.name(), sum_us: sum.load(Relaxed), ..Default::default() };
            let mut running = 0;
            for (i, c) in buckets.iter().enumerate() {
                running += c.load(Relaxed);
                if let Some(slot) = snap.cumulative.get_mut(i) {
                    *slot = running;
                }
            }
            snap.count = running;
            out.push(snap);
        }
        out
    }
}

/// Upper bounds of the allocation duration buckets, milliseconds: 1 s, 10 s, 1 min, 5 min,
/// 15 min, 30 min, 1 h, 2 h, 6 h (the last bucket, +Inf, is implicit).
pub const DURATION_BUCKETS_MS: [u64; 9] =
    [1_000, 10_000, 60_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000];

/// Upper bounds of the bytes-per-allocation buckets: 1 KiB, 10 KiB, 100 KiB, 1 MiB, 10 MiB,
/// 100 MiB, 1 GiB, 10 GiB (the last bucket, +Inf, is implicit).
pub const BYTES_BUCKETS: [u64; 8] = [1 << 10, 10 << 10, 100 << 10, 1 << 20, 10 << 20, 100 << 20, 1 << 30, 10 << 30];

/// A histogram with `N` fixed upper bounds plus +Inf: relaxed atomics, so observing costs a
/// search of `N` bounds and two additions, no lock and no allocation.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: [u64; N],
    /// One counter per bucket (not cumulative).
    buckets: [AtomicU64; N],
    /// Observations over the last bound (+Inf only).
    over: AtomicU64,
    sum: AtomicU64,
}

/// A [`Histogram`] at one moment, as OpenMetrics wants it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot<const N: usize> {
    /// The upper bounds, in the unit observed.
    pub bounds: [u64; N],
    /// Cumulative counts per bound (observations `<=` it); the count of +Inf is `count`.
    pub cumulative: [u64; N],
    /// All observations.
    pub count: u64,
    /// Their sum (saturating).
    pub sum: u64,
}

impl<const N: usize> Histogram<N> {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: [u64; N]) -> Self {
        Histogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum: AtomicU64::new(0),
        }
    }

    /// Records `value`: it counts in the first bucket whose bound is `>=` it.
    pub fn observe(&self, value: u64) {
        let counter = self.bounds.iter().position(|&le| value <= le).and_then(|i| self.buckets.get(i));
        counter.unwrap_or(&self.over).fetch_add(1, Relaxed);
        // Saturating: a sum that cannot grow further stays at the top rather than wrapping.
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| Some(s.saturating_add(value)));
    }

    /// The counts now, cumulative.
    pub fn snapshot(&self) -> HistogramSnapshot<N> {
        let mut running = 0u64;
        let cumulative = std::array::from_fn(|i| {
            running += self.buckets.get(i).map_or(0, |c| c.load(Relaxed));
            running
        });
        let count = running + self.over.load(Relaxed);
        HistogramSnapshot { bounds: self.bounds, cumulative, count, sum: self.sum.load(Relaxed) }
    }
}

/// The histograms of allocations observed when they end (`Server::end`): their lifetime and the
/// application bytes they relayed, per direction. Fed once per allocation, never per packet.
#[derive(Debug)]
pub struct EndedAllocations {
    /// Lifetime from the Allocate to the end, milliseconds ([`DURATION_BUCKETS_MS`]).
    pub duration_ms: Histogram<{ DURATION_BUCKETS_MS.len() }>,
    /// Bytes client → peer ([`BYTES_BUCKETS`]).
    pub to_peer_bytes: Histogram<{ BYTES_BUCKETS.len() }>,
    /// Bytes peer → client ([`BYTES_BUCKETS`]).
    pub to_client_bytes: Histogram<{ BYTES_BUCKETS.len() }>,
}

impl Default for EndedAllocations {
    fn default() -> Self {
        EndedAllocations {
            duration_ms: Histogram::new(DURATION_BUCKETS_MS),
            to_peer_bytes: Histogram::new(BYTES_BUCKETS),
            to_client_bytes: Histogram::new(BYTES_BUCKETS),
        }
    }
}

impl EndedAllocations {
    /// One allocation ended after `duration_ms`, having relayed these bytes.
    fn observe(&self, duration_ms: u64, to_peer_bytes: u64, to_client_bytes: u64) {
        self.duration_ms.observe(duration_ms);
        self.to_peer_bytes.observe(to_peer_bytes);
        self.to_client_bytes.observe(to_client_bytes);
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::*;

    #[test]
    fn a_value_counts_in_the_first_bucket_at_or_above_it_and_buckets_are_cumulative() {
        let h = Histogram::new([10, 100, 1000]);
        for v in [0, 10, 11, 100, 999, 1000, 1001, u64::MAX] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.bounds, [10, 100, 1000]);
        assert_eq!(s.cumulative, [2, 4, 6], "0 and 10 <= 10; 11 and 100 <= 100; 999 and 1000 <= 1000");
        assert_eq!(s.count, 8, "1001 and u64::MAX only in +Inf");
        assert_eq!(s.sum, u64::MAX, "the sum saturates");
    }

    #[test]
    fn an_empty_histogram_is_all_zero() {
        let s = Histogram::new(BYTES_BUCKETS).snapshot();
        assert_eq!((s.cumulative, s.count, s.sum), ([0; BYTES_BUCKETS.len()], 0, 0));
    }

    #[test]
    fn a_deleted_allocation_goes_into_the_duration_and_bytes_histograms() {
        let stats = Stats::default();
        let counters = AllocationCounters::default();
        counters.to_peer_bytes.store(5_000, Relaxed);
        counters.to_client_bytes.store(2 << 20, Relaxed);
        stats.allocation_deleted(&counters, 90_000);
        let e = stats.ended();
        let d = e.duration_ms.snapshot();
        assert_eq!((d.count, d.sum), (1, 90_000));
        assert_eq!(d.cumulative, [0, 0, 0, 1, 1, 1, 1, 1, 1], "90 s is under 5 min, not under 1 min");
        let to_peer = e.to_peer_bytes.snapshot();
        assert_eq!(to_peer.cumulative, [0, 1, 1, 1, 1, 1, 1, 1], "5000 bytes: under 10 KiB");
        let to_client = e.to_client_bytes.snapshot();
        assert_eq!(to_client.cumulative, [0, 0, 0, 0, 1, 1, 1, 1], "2 MiB: under 10 MiB");
        assert_eq!(to_client.sum, 2 << 20);
        assert_eq!(stats.snapshot().allocations_deleted, 1);
        assert_eq!(stats.snapshot().retired_to_client_bytes, 2 << 20);
    }
}

#[cfg(test)]
mod latency_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_requests_of_known_methods_are_measured() {
        let allocate = MessageType::new(Method::ALLOCATE, Class::Request).to_bits().to_be_bytes();
        let answer = MessageType::new(Method::ALLOCATE, Class::SuccessResponse).to_bits().to_be_bytes();
        let send = MessageType::new(Method::SEND, Class::Indication).to_bits().to_be_bytes();
        assert_eq!(RequestLatency::request_index(&allocate), Some(1));
        assert_eq!(RequestLatency::request_index(&answer), None);
        assert_eq!(RequestLatency::request_index(&send), None);
        assert_eq!(RequestLatency::request_index(&[0x40, 0x00, 0, 4]), None, "ChannelData");
        assert_eq!(RequestLatency::request_index(&[0x00]), None);
    }

    #[test]
    fn buckets_are_cumulative() {
        let l = RequestLatency::default();
        l.observe(1, Duration::from_micros(5));
        l.observe(1, Duration::from_micros(300));
        l.observe(1, Duration::from_secs(2));
        let s = l.snapshot();
        let allocate = s.iter().find(|h| h.method == "Allocate").unwrap();
        assert_eq!(allocate.count, 3);
        assert_eq!(allocate.cumulative[0], 1);
        assert_eq!(allocate.cumulative[5], 2, "300 µs is under 500 µs");
        assert_eq!(allocate.cumulative[11], 2, "2 s is only in +Inf");
        assert_eq!(allocate.sum_us, 2_000_305);
        assert!(s.iter().filter(|h| h.method != "Allocate").all(|h| h.count == 0));
    }
}
