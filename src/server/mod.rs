//! The sans-IO core: bytes in, bytes out, no sockets, no tasks, no clock reads.
//!
//! A driver (see `io`) hands every datagram or stream frame from a client to [`Server::handle`]
//! together with the current time and a buffer to write the answer into; the returned [`Outcome`]
//! says whether to send that buffer back, stay silent, or drop (and, on a stream, close the
//! connection). Datagrams from peers go through [`Server::relay_from_peer`]. Relay sockets are the
//! driver's business, reached through the [`RelayDriver`] trait.
//!
//! One file per method: `binding`, `allocate`, `refresh`, `create_permission`, `channel_bind`,
//! `send` (Send indications and client ChannelData) and `relay` (peer → client). How allocations
//! end — the sweep, deletions, revocation — and what the event sink hears is `lifecycle`.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod admission;
mod allocate;
mod binding;
mod channel_bind;
mod connect;
mod create_permission;
mod driver;
mod events;
mod hooks;
mod icmp;
mod lease;
mod lifecycle;
mod mobility;
mod options;
mod refresh;
mod relay;
mod replay;
mod request;
mod response;
mod send;
mod stats;
mod turn;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::alloc::{Allocation, Connections, FiveTuple, Millis, PortRange, Table};
use crate::auth::Authenticator;
use crate::policy::bandwidth::{Bandwidth, BandwidthLimits};
use crate::policy::quota::QuotaLimits;
use crate::policy::rate::{RateKey, RateLimiter};
use crate::policy::revocation::{RevocationList, Revocations};
use crate::policy::{PeerPolicy, PeerPolicyConfig};
use crate::proto::demux::{self, PacketKind};
use crate::proto::stun::{Class, DecodeError, Message, Method, is_known};

pub use crate::alloc::Transport;
pub use admission::{Admission, Refusal};
pub use connect::{CONNECTION_TIMEOUT_MS, MAX_CONNECTIONS_PER_ALLOCATION};
pub use driver::{BindOptions, Ecn, NoRelay, RelayDriver};
pub use events::{AuthKind, EndReason, Event, EventSink, Session, Usage};
pub use hooks::{
    MIN_RELAY_PORT, PeerContext, PeerDecision, PeerHook, PeerRequest, RelayAddressHook, RelayChoice, RelayContext,
};
pub use icmp::{ICMP_INDICATION_LEN, ICMP_PER_SECOND};
pub use lease::{AllocationLedger, Hold, LeaseRequest, LeaseVerdict, MAX_PENDING, PENDING_MS, Resumed};
pub use options::{NatDiscovery, RelayAddress, ServerOptions};
pub use relay::HEADROOM;
pub use stats::{
    AUTH_FAILURE_REASONS, BYTES_BUCKETS, DURATION_BUCKETS_MS, EndedAllocations, Histogram, HistogramSnapshot,
    LATENCY_BUCKETS_US, LATENCY_METHODS, LatencySnapshot, RequestLatency, Stats, StatsSnapshot,
};

/// One datagram or one complete stream frame, as a driver received it.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The transport it came on.
    pub transport: Transport,
    /// The client's address (the source of the datagram or the stream's peer).
    pub source: SocketAddr,
    /// The server's address it arrived at (the listener's local address).
    pub local: SocketAddr,
    /// The bytes: a whole datagram, or exactly one frame cut by [`demux::stream_frame`].
    pub data: &'a [u8],
}

impl Received<'_> {
    /// The 5-tuple this message belongs to.
    pub fn five_tuple(&self) -> FiveTuple {
        FiveTuple { transport: self.transport, client: self.source, server: self.local }
    }
}

/// What a driver should do after [`Server::handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out[..len]` back to the source on the same transport.
    Reply(usize),
    /// Send `out[..len]` from another of the server's UDP sockets, or to another port of the
    /// client: an RFC 5780 Binding answer after CHANGE-REQUEST or RESPONSE-PORT (§6.1). Only with
    /// [`ServerOptions::rfc5780`] on, only on UDP.
    ReplyVia {
        /// The answer's length in `out`.
        len: usize,
        /// The local address (one of the four of [`NatDiscovery`]) it must leave from.
        from: SocketAddr,
        /// Where it goes.
        to: SocketAddr,
    },
    /// Nothing to send (for example an indication that needs no answer).
    Silent,
    /// Client data was handed to the relay socket for a peer.
    Relayed,
    /// The input was dropped and counted; on a stream the connection should be closed when the
    /// reason [`DropReason::is_fatal_on_stream`].
    Dropped(DropReason),
    /// An Allocate is held for a fleet lease (issue #16, [`Server::set_fleet_leases`]): nothing to
    /// send now; the driver asks its [`AllocationLedger`] for [`Server::lease_request`]`(id)` and
    /// sends what [`Server::resume_allocate`] answers.
    Pending(u64),
}

/// Why a message was dropped without an answer. Each reason has a counter in [`Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The first byte is neither STUN nor ChannelData (RFC 7983).
    NotStunOrChannelData,
    /// The STUN header or attribute layout is broken.
    Malformed(DecodeError),
    /// FINGERPRINT present but wrong (RFC 8489 §7.3: not a STUN message).
    BadFingerprint,
    /// What RFC 8489 §6.3 discards: a response, a method we do not support or a class its method
    /// does not allow, a TURN message without the magic cookie (RFC 8656 §5), or an indication
    /// with unknown comprehension-required attributes (RFC 8489 §6.3.2).
    Unexpected,
    /// ChannelData or a Send indication that is malformed (RFC 8656 §11.2, §12.5: discard).
    BadData,
    /// Data for a 5-tuple that has no allocation.
    NoAllocation,
    /// ChannelData on a channel that is not bound.
    NoChannel,
    /// Data to or from a peer without a permission (RFC 8656 §9).
    NoPermission,
    /// Data to a peer the policy refuses.
    PeerDenied,
    /// The relay socket could not take the datagram (full buffer or error).
    SendFailed,
    /// The answer did not fit the output buffer (a bug or a tiny buffer).
    OutputTooSmall,
    /// Over the per-source rate limit of unauthenticated answers (`rate_limit_unauth`).
    RateLimited,
    /// Client data over a bandwidth limit (`max-bps`, `user-max-bps`, `bps-capacity`).
    BandwidthExceeded,
}

impl DropReason {
    /// On TCP/TLS a malformed frame leaves the stream in an unknown state: close it
    /// (RFC 8656 §3.1; the foundation issue: "a malformed stream closes that connection").
    pub fn is_fatal_on_stream(self) -> bool {
        matches!(self, DropReason::NotStunOrChannelData | DropReason::Malformed(_) | DropReason::BadFingerprint)
    }
}

/// The sans-IO STUN/TURN server, shared by all drivers (`&self`, internally synchronized).
///
/// `D` is the driver's relay side; a STUN-only server uses [`NoRelay`].
pub struct Server<D: RelayDriver = NoRelay> {
    options: ServerOptions,
    /// Swapped whole on reload (new secrets or users); `None`: STUN only.
    auth: arc_swap::ArcSwapOption<Authenticator>,
    /// Swapped whole on reload; read once per relayed packet (one atomic load).
    policy: arc_swap::ArcSwap<PeerPolicy>,
    admission: Admission,
    driver: D,
    table: Table<D::Socket>,
    ports: PortRange,
    reservations: Mutex<Vec<allocate::Reservation<D::Socket>>>,
    stats: Stats,
    epoch: Instant,
    epoch_unix: u64,
    unauth_limit: Option<RateLimiter>,
    allocate_limit: Option<RateLimiter>,
    /// Allocates that succeeded, so a replay within the nonce lifetime is not acted on again.
    replays: replay::ReplayGuard,
    revocations: arc_swap::ArcSwap<Box<dyn Revocations>>,
    bandwidth: Bandwidth,
    /// RFC 6062 TCP connections of TCP allocations, by CONNECTION-ID.
    connections: Connections,
    /// Round-robin cursors over the configured relay addresses, IPv4 and IPv6.
    relay_cursor: [std::sync::atomic::AtomicUsize; 2],
    /// Where lifecycle events go (see [`EventSink`]); unset: nowhere, and nothing is built.
    events: std::sync::OnceLock<std::sync::Arc<dyn EventSink>>,
    /// RFC 8016 mobility tickets: their key and the allocations they name.
    tickets: mobility::Tickets<D::Socket>,
    /// RFC 5780's four UDP addresses, set once by the driver after binding (`rfc5780`).
    nat: std::sync::OnceLock<NatDiscovery>,
    /// RFC 5780's four TLS addresses (RFC 7443 `stun.nat-discovery`), set once like `nat`.
    nat_tls: std::sync::OnceLock<NatDiscovery>,
    /// Allocates held for a fleet lease, and whether leases are on (issue #16).
    pending: lease::Pending,
    leases_on: std::sync::atomic::AtomicBool,
    /// The embedder's peer-policy and relay-address hooks (issue #18), unset by default.
    hooks: hooks::Hooks,
}

impl<D: RelayDriver> std::fmt::Debug for Server<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("options", &self.options).field("table", &self.table).finish_non_exhaustive()
    }
}

impl Server<NoRelay> {
    /// A STUN-only server (Binding): TURN requests are answered 400.
    pub fn new(options: ServerOptions) -> Self {
        Server::with_relay(options, None, NoRelay, Instant::now(), 0)
    }
}

impl<D: RelayDriver> Server<D> {
    /// A TURN server. `auth` enables the TURN methods (RFC 8656 requires the long-term credential
    /// mechanism); `epoch` and `epoch_unix` anchor the clock: `epoch` is the `Instant` that
    /// corresponds to the unix time `epoch_unix` (seconds), so the core can judge REST expiry and
    /// nonce age from the `now: Instant` its caller passes, and tests can run on a fake clock.
    pub fn with_relay(
        options: ServerOptions,
        auth: Option<Authenticator>,
        driver: D,
        epoch: Instant,
        epoch_unix: u64,
    ) -> Self {
        let policy = peer_policy(&options);
        let ports = PortRange::new(options.min_port, options.max_port);
        let unauth_limit = RateLimiter::new(options.rate_limit_unauth, RateLimiter::SOURCE_BUCKETS);
        let allocate_limit = RateLimiter::new(options.rate_limit_allocate, RateLimiter::USER_BUCKETS);
        let bandwidth = Bandwidth::new(BandwidthLimits {
            per_allocation: options.max_bps,
            per_user: options.user_max_bps,
            total: options.bps_capacity,
        });
        let admission = Admission::default();
        admission.set_quotas(QuotaLimits { per_user: options.user_quota, total: options.total_quota });
        admission.set_alternate(&options.alternate_servers, options.alternate_threshold);
        admission.set_alternate_domain(options.alternate_domain.clone());
        admission.set_redirect_all(options.redirect_all);
        Server {
            options,
            auth: arc_swap::ArcSwapOption::from(auth.map(std::sync::Arc::new)),
            policy: arc_swap::ArcSwap::from_pointee(policy),
            admission,
            driver,
            table: Table::default(),
            ports,
            reservations: Mutex::new(Vec::new()),
            stats: Stats::default(),
            epoch,
            epoch_unix,
            unauth_limit,
            allocate_limit,
            replays: replay::ReplayGuard::default(),
            revocations: arc_swap::ArcSwap::from_pointee(Box::new(RevocationList::default())),
            bandwidth,
            connections: Connections::default(),
            relay_cursor: Default::default(),
            events: std::sync::OnceLock::new(),
            tickets: mobility::Tickets::new(),
            nat: std::sync::OnceLock::new(),
            nat_tls: std::sync::OnceLock::new(),
            pending: lease::Pending::default(),
            leases_on: std::sync::atomic::AtomicBool::new(false),
            hooks: hooks::Hooks::default(),
        }
    }

    /// The next turn of the round-robin over the relay addresses of one family.
    fn next_relay_index(&self, ipv6: bool) -> usize {
        let [v4, v6] = &self.relay_cursor;
        let cursor = if ipv6 { v6 } else { v4 };
        cursor.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The bandwidth limits and meters.
    pub fn bandwidth(&self) -> &Bandwidth {
        &self.bandwidth
    }

    /// The server's counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The options this server runs with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The peer policy in force (reload may replace it).
    pub fn policy(&self) -> std::sync::Arc<PeerPolicy> {
        self.policy.load_full()
    }

    /// Drain and load-shedding state (see [`Admission`]).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Reload without restart: new credentials (`auth`, which should keep the nonce key, see
    /// [`Authenticator::with_config`]), peer policy, quotas and alternate server from `options`.
    /// Live allocations are untouched: they keep the key they were made with, so their Refresh,
    /// permissions and relaying go on. Ports, relay addresses and lifetimes are not reloaded.
    pub fn reload(&self, auth: Option<Authenticator>, options: &ServerOptions) {
        self.auth.store(auth.map(std::sync::Arc::new));
        self.policy.store(std::sync::Arc::new(peer_policy(options)));
        self.admission.set_quotas(QuotaLimits { per_user: options.user_quota, total: options.total_quota });
        self.admission.set_alternate(&options.alternate_servers, options.alternate_threshold);
        self.admission.set_alternate_domain(options.alternate_domain.clone());
    }

    /// The relay driver.
    pub fn driver(&self) -> &D {
        &self.driver
    }

    /// The allocation table.
    pub fn allocations(&self) -> &Table<D::Socket> {
        &self.table
    }

    /// Relay ports in use per relay IP, read by walking the allocation table and the EVEN-PORT
    /// reservations (for metrics; costs a walk of the table, so not for the data path). Every
    /// configured relay address is listed, with 0 when it has no allocation; without configured
    /// ones, the addresses of live relays. Each relay socket counts, a dual allocation's second
    /// one included; a UDP and an RFC 6062 TCP relay each count once. Ports taken by other
    /// processes are not known here.
    pub fn relay_ports_in_use(&self) -> Vec<(std::net::IpAddr, u32)> {
        let mut in_use: Vec<(std::net::IpAddr, u32)> = Vec::new();
        for r in &self.options.relay_addresses {
            if !in_use.iter().any(|(ip, _)| *ip == r.local) {
                in_use.push((r.local, 0));
            }
        }
        let mut count = |ip: std::net::IpAddr| match in_use.iter_mut().find(|(i, _)| *i == ip) {
            Some((_, n)) => *n += 1,
            None => in_use.push((ip, 1)),
        };
        for a in self.table.all() {
            count(a.info().relay_addr.ip());
            if let Some(extra) = &a.extra {
                count(extra.relay_addr.ip());
            }
        }
        for r in self.lock_reservations().iter() {
            count(r.local.ip());
        }
        in_use
    }

    /// The relay port range.
    pub fn port_range(&self) -> &PortRange {
        &self.ports
    }

    /// The RFC 6062 TCP connections (being made, waiting for ConnectionBind, or bound).
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The authenticator, when TURN is enabled.
    pub fn authenticator(&self) -> Option<std::sync::Arc<Authenticator>> {
        self.auth.load_full()
    }

    /// `now` as the core's milliseconds since its epoch.
    #[inline]
    pub fn millis(&self, now: Instant) -> Millis {
        now.saturating_duration_since(self.epoch).as_millis() as Millis
    }

    /// `now` as unix seconds.
    pub fn unix(&self, now: Instant) -> u64 {
        self.epoch_unix.saturating_add(now.saturating_duration_since(self.epoch).as_secs())
    }

    /// Handles one datagram or stream frame from a client and writes the answer, if any, into `out`.
    ///
    /// `out` should hold at least 1500 bytes (answers are small). Never panics, whatever
    /// `rx.data` holds.
    pub fn handle(&self, now: Instant, rx: &Received<'_>, out: &mut [u8]) -> Outcome {
        self.handle_ecn(now, rx, Ecn::NotEct, out)
    }

    /// [`Server::handle`] for a UDP datagram that arrived with the ECN codepoint `ecn`: client data
    /// relayed to a peer carries it (RFC 8656 §14, preferred behaviour).
    #[inline]
    pub fn handle_ecn(&self, now: Instant, rx: &Received<'_>, ecn: Ecn, out: &mut [u8]) -> Outcome {
        let outcome = self.dispatch_with(now, rx, ecn, out, lease::Lease::Ask);
        self.stats.record(&outcome);
        outcome
    }

    /// [`Server::handle_ecn`] without the counting; `lease`: a fresh request, or one run again
    /// with its fleet lease's verdict.
    fn dispatch_with(&self, now: Instant, rx: &Received<'_>, ecn: Ecn, out: &mut [u8], lease: lease::Lease) -> Outcome {
        let Some(&first) = rx.data.first() else {
            return Outcome::Dropped(DropReason::NotStunOrChannelData);
        };
        match demux::classify(first, self.options.strict_rfc8656) {
            PacketKind::Stun => {}
            PacketKind::ChannelData => return send::channel_data(self, now, rx, ecn),
            PacketKind::Other => return Outcome::Dropped(DropReason::NotStunOrChannelData),
        }
        let msg = match Message::parse(rx.data) {
            Ok(m) => m,
            Err(e) => return Outcome::Dropped(DropReason::Malformed(e)),
        };
        // RFC 8489 §7.3: a FINGERPRINT that does not match means "not STUN": drop silently.
        if msg.has_fingerprint() && msg.verify_fingerprint().is_err() {
            return Outcome::Dropped(DropReason::BadFingerprint);
        }
        let trailer = response::Trailer {
            software: self.options.software.as_deref(),
            key: None,
            key_sha256: None,
            fingerprint: msg.has_fingerprint(),
        };
        let ty = msg.message_type();
        // RFC 8656 §5: TURN messages carry the magic cookie. Without it only a Binding is STUN as
        // RFC 3489 wrote it (RFC 8489 §12): anything else is silently discarded (RFC 8489 §6.3).
        if msg.is_rfc3489() && ty.method != Method::BINDING {
            return Outcome::Dropped(DropReason::Unexpected);
        }
        match (ty.method, ty.class) {
            // RFC 8489 §6.3.2: an indication with unknown comprehension-required attributes is
            // discarded (no 420: indications get no answer).
            (_, Class::Indication) if !msg.unknown_comprehension_required(is_known).is_empty() => {
                Outcome::Dropped(DropReason::Unexpected)
            }
            (Method::BINDING, Class::Request)
                if self.options.rate_limit_binding && !self.unauth_allowed(self.millis(now), rx.source) =>
            {
                Outcome::Dropped(DropReason::RateLimited)
            }
            // Its error answers (420, 400) are unauthenticated answers like any other: limited.
            // With RFC 5780 on, every answer counts: they amplify (RFC 5780 §9, RESPONSE-PORT).
            (Method::BINDING, Class::Request) => match self.binding(rx, &msg, trailer, out) {
                Outcome::Reply(_) | Outcome::ReplyVia { .. }
                    if (self.nat_discovery(rx).is_some() || is_error_response(out))
                        && !self.unauth_allowed(self.millis(now), rx.source) =>
                {
                    Outcome::Dropped(DropReason::RateLimited)
                }
                outcome => outcome,
            },
            // RFC 8489 §6.3.2: a Binding indication needs no answer.
            (Method::BINDING, Class::Indication) => Outcome::Silent,
            (Method::SEND, Class::Indication) => send::indication(self, now, rx, &msg, ecn),
            (m, Class::Request) if is_turn_request(m) && self.auth.load().is_some() => {
                turn::request(self, now, rx, &msg, trailer, lease, out)
            }
            // A TURN request to a STUN-only server: 400, an unauthenticated answer, so rate-limited.
            (m, Class::Request) if is_turn_request(m) && !self.unauth_allowed(self.millis(now), rx.source) => {
                Outcome::Dropped(DropReason::RateLimited)
            }
            (m, Class::Request) if is_turn_request(m) => {
                response::error(&msg, out, crate::proto::stun::codes::BAD_REQUEST, trailer, |_| Ok(()))
            }
            // RFC 8489 §6.3: a method the server does not support, or a class the method does not
            // allow (a response, an Allocate indication, a Send request), is silently discarded.
            _ => Outcome::Dropped(DropReason::Unexpected),
        }
    }

    /// Answers a Binding request (RFC 8489 §6.3, RFC 5780 §6.1 when on).
    fn binding(&self, rx: &Received<'_>, msg: &Message<'_>, trailer: response::Trailer<'_>, out: &mut [u8]) -> Outcome {
        binding::request(trailer, rx, msg, self.oauth_on(), self.nat_discovery(rx), out)
    }

    /// Relays a datagram a peer sent to `allocation`'s relay socket, RFC 8656 §11.3 and §12.6.
    ///
    /// The driver reads the datagram into `buf` at offset [`HEADROOM`]; `len` is its length. On
    /// success the returned range of `buf` is the ChannelData message or Data indication to send to
    /// the allocation's client (headers were written in place in front of the data; nothing is
    /// copied for ChannelData). `None`: dropped and counted (no permission, over a bandwidth limit,
    /// or expired).
    pub fn relay_from_peer(
        &self,
        now: Instant,
        allocation: &Allocation<D::Socket>,
        peer: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Option<std::ops::Range<usize>> {
        relay::from_peer(self, self.millis(now), allocation, peer, buf, len)
    }

    /// An ICMP error for a datagram `allocation` relayed to `peer` (RFC 8656 §11.5): writes into
    /// `out` the Data indication for the client (XOR-PEER-ADDRESS of `peer` and the ICMP attribute,
    /// no DATA) and returns its length. `error_data` is the kernel's value (the next-hop MTU for a
    /// "fragmentation needed" or "packet too big"). `None`: dropped and counted (no permission for
    /// `peer`, a type §11.5 does not relay, over [`ICMP_PER_SECOND`], or expired). `out` needs
    /// [`ICMP_INDICATION_LEN`] bytes.
    pub fn icmp_from_peer(
        &self,
        now: Instant,
        allocation: &Allocation<D::Socket>,
        peer: SocketAddr,
        icmp: crate::proto::stun::Icmp,
        out: &mut [u8],
    ) -> Option<usize> {
        icmp::from_peer(self, self.millis(now), allocation, peer, icmp, out)
    }

    /// Whether RFC 7635 third-party authorization is on (ACCESS-TOKEN is understood).
    fn oauth_on(&self) -> bool {
        self.auth.load().as_deref().is_some_and(|a| a.oauth().is_some())
    }

    /// Takes one unauthenticated answer from `source`'s bucket: `false` when over the limit.
    fn unauth_allowed(&self, now: Millis, source: SocketAddr) -> bool {
        self.unauth_limit.as_ref().is_none_or(|l| l.allow(RateKey::Source(source.ip()), now))
    }

    /// Takes one Allocate from the user's bucket: `false` when over the limit.
    fn allocate_allowed(&self, now: Millis, username: &str) -> bool {
        let Some(limit) = &self.allocate_limit else { return true };
        let auth = self.auth.load();
        let user = auth.as_ref().map_or(username, |a| a.user_of(username));
        limit.allow(RateKey::User(user), now)
    }

    fn lock_reservations(&self) -> std::sync::MutexGuard<'_, Vec<allocate::Reservation<D::Socket>>> {
        self.reservations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A transaction ID for the server's own indications (RFC 8489 §5: cryptographically random).
    pub(crate) fn random_tid(&self) -> crate::proto::stun::TransactionId {
        let mut t = [0u8; 12];
        crate::random::fill(&mut t);
        crate::proto::stun::TransactionId(t)
    }

    /// A RESERVATION-TOKEN (RFC 8656 §7.2): unpredictable, it is the key to a reserved port.
    pub(crate) fn random_token(&self) -> [u8; 8] {
        crate::random::u64().to_be_bytes()
    }

    /// A CONNECTION-ID (RFC 6062 §5): unpredictable, it is the key to a peer connection.
    pub(crate) fn random_connection_id(&self) -> u32 {
        crate::random::u64() as u32
    }
}

/// The TURN methods with requests (RFC 8656 §7–§12, RFC 6062 §4).
fn is_turn_request(method: Method) -> bool {
    matches!(
        method,
        Method::ALLOCATE
            | Method::REFRESH
            | Method::CREATE_PERMISSION
            | Method::CHANNEL_BIND
            | Method::CONNECT
            | Method::CONNECTION_BIND
    )
}

/// Whether the message written at the start of `out` is an error response (RFC 8489 §5: class bits).
fn is_error_response(out: &[u8]) -> bool {
    match (out.first(), out.get(1)) {
        (Some(&a), Some(&b)) => {
            crate::proto::stun::MessageType::from_bits(u16::from_be_bytes([a, b])).class == Class::ErrorResponse
        }
        _ => false,
    }
}

/// The peer policy of `options`: its rules, and as own addresses `own_addresses` plus every relay
/// address (local and advertised), open on the relay port range only.
pub fn peer_policy(options: &ServerOptions) -> PeerPolicy {
    let relays = options.relay_addresses.iter().flat_map(|r| [r.local, r.advertised]);
    PeerPolicy::new(PeerPolicyConfig {
        allow_loopback: options.allow_loopback_peers,
        allowed: options.allowed_peers.clone(),
        denied: options.denied_peers.clone(),
        own_addresses: options.own_addresses.iter().copied().chain(relays).collect(),
        relay_ports: (options.min_port, options.max_port),
    })
}

#[cfg(test)]
mod tests;
