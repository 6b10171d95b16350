//! One allocation: its relayed address, lifetime, permissions and channels (RFC 8656 §2.2, §9, §12).
//!
//! Permissions and channel bindings live in an immutable snapshot that the control path swaps when it
//! adds one (rare) and the data path reads without a lock (`arc_swap` load). Expiry times are atomics
//! inside the snapshot, refreshed in place.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use arc_swap::{ArcSwap, ArcSwapOption};

use super::FiveTuple;
use super::bindings::{BindingLimits, Bindings, ChannelBindError, ChannelBinding, Permission, TooManyPermissions};
use crate::auth::{LongTermKey, OauthSession};
use crate::policy::bandwidth::AllocationBandwidth;
use crate::proto::stun::{IntegrityKey, Message, Method, TransactionId};

use crate::time::Millis;

mod family;

/// What makes a request a retransmission of another: the same method and the same 128 bits of
/// transaction ID (the cookie too, which RFC 3489 clients use as part of it). RFC 8656 §7.2: a
/// retransmitted Allocate must not create a second allocation, nor change what was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestKey {
    /// The method.
    pub method: Method,
    /// The 4 bytes after the length field.
    pub cookie: [u8; 4],
    /// The transaction ID.
    pub transaction_id: TransactionId,
}

impl RequestKey {
    /// The key of a request.
    pub fn of(msg: &Message<'_>) -> Self {
        RequestKey {
            method: msg.message_type().method,
            cookie: msg.cookie_bytes(),
            transaction_id: msg.transaction_id(),
        }
    }
}

/// A request answered on this allocation, kept so a retransmission gets the same answer.
#[derive(Debug, Clone)]
pub struct CachedResponse {
    /// Which request it answers.
    pub request: RequestKey,
    /// The response bytes.
    pub bytes: Box<[u8]>,
}

/// The answers kept for retransmissions: the Allocate's (RFC 8656 §7.2 singles it out) and the
/// last other request's.
#[derive(Debug, Default)]
struct Responses {
    allocate: Option<CachedResponse>,
    last: Option<CachedResponse>,
}

/// Facts of an allocation, set when it is created; only the 5-tuple changes after, when an RFC 8016
/// mobility Refresh moves the allocation (see [`Table::rekey`](super::Table::rekey)).
#[derive(Debug, Clone)]
pub struct AllocationInfo {
    /// The client's 5-tuple.
    pub five_tuple: FiveTuple,
    /// The relay socket's local address.
    pub relay_addr: SocketAddr,
    /// The relayed address advertised in XOR-RELAYED-ADDRESS (the public one behind NAT).
    pub advertised_addr: SocketAddr,
    /// The authenticated username.
    pub username: Box<str>,
    /// For REST credentials: the unix time the username expires.
    pub rest_expiry: Option<u64>,
}

/// The second relayed address of a dual allocation (RFC 8656 §7.2, ADDITIONAL-ADDRESS-FAMILY):
/// always the IPv6 one, the IPv4 one being the allocation's own.
///
/// Each relayed address has its own lifetime (RFC 8656 §8: a Refresh with REQUESTED-ADDRESS-FAMILY
/// refreshes or deletes that family's alone): this one's is [`ExtraRelay::expires`], the other's
/// the allocation's own. A family whose relay was stopped (deleted, or expired and swept) has
/// expiry 0.
#[derive(Debug)]
pub struct ExtraRelay<S> {
    /// The relay socket's local address.
    pub relay_addr: SocketAddr,
    /// The address advertised in the second XOR-RELAYED-ADDRESS.
    pub advertised_addr: SocketAddr,
    /// The relay socket.
    pub socket: S,
    /// When this relayed address expires (RFC 8656 §8); 0 once its relay was stopped.
    expires: AtomicU64,
}

impl<S> ExtraRelay<S> {
    /// The second relay of a dual allocation.
    pub fn new(relay_addr: SocketAddr, advertised_addr: SocketAddr, socket: S) -> Self {
        ExtraRelay { relay_addr, advertised_addr, socket, expires: AtomicU64::new(0) }
    }

    /// When this relayed address expires (0: deleted, its relay stopped).
    pub fn expires(&self) -> Millis {
        self.expires.load(Relaxed)
    }
}

/// An allocation, RFC 8656 §2.2. `S` is the driver's relay socket.
pub struct Allocation<S> {
    /// Swapped whole when RFC 8016 §3.2 mobility moves the allocation to a new 5-tuple.
    info: ArcSwap<AllocationInfo>,
    /// Whether the own relayed address is IPv4 (fixed; read on the data path without a load).
    relay_is_v4: bool,
    /// Whether the client leg is a byte stream (fixed: a move keeps the transport; read on the
    /// data path without a load).
    stream: bool,
    /// The authenticated username (fixed; borrowed by events without a load).
    username: Box<str>,
    /// The RFC 8016 mobility ticket id the allocation answers to; 0 = none issued.
    mobility_id: AtomicU32,
    key: IntegrityKey,
    key_bytes: LongTermKey,
    /// The relay socket (owned by the driver's type); for a dual allocation the IPv4 one.
    pub socket: S,
    /// A dual allocation's IPv6 relay (RFC 8656 §7.2); `None` for a single-family one (boxed: one
    /// word for the allocations that have none).
    pub extra: Option<Box<ExtraRelay<S>>>,
    /// When the own relayed address expires (RFC 8656 §8); for a dual allocation 0 once its relay
    /// was stopped (the allocation lives on while the other family does).
    expires: AtomicU64,
    deleted: AtomicBool,
    bindings: ArcSwap<Bindings>,
    /// Serializes the control path's changes to `bindings` and the response cache.
    writer: Mutex<Responses>,
    /// Counters of relayed traffic.
    pub counters: AllocationCounters,
    /// The user its quota counts against (the username, or a REST username's user part).
    quota_user: Box<str>,
    /// Its bandwidth buckets (and its user's).
    bandwidth: AllocationBandwidth,
    /// An RFC 6062 TCP allocation: the relayed address is a listening TCP socket.
    tcp_relay: bool,
    /// Made with an RFC 7635 ACCESS-TOKEN: the latest token's kid and session key (a Refresh with
    /// a new token replaces it); `None` for long-term credentials.
    oauth: ArcSwapOption<OauthSession>,
    /// When it was made (core milliseconds), for its age in the admin API.
    created: Millis,
    /// A random id that names it in logs, events and usage records (not a protocol value).
    id: u64,
}

/// The id of an allocation in logs, events and usage records; `Display` is 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllocationId(pub u64);

impl std::fmt::Display for AllocationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Relayed traffic of one allocation.
#[derive(Debug, Default)]
pub struct AllocationCounters {
    /// Packets client → peer.
    pub to_peer_packets: AtomicU64,
    /// Bytes client → peer (application data).
    pub to_peer_bytes: AtomicU64,
    /// Packets peer → client.
    pub to_client_packets: AtomicU64,
    /// Bytes peer → client (application data).
    pub to_client_bytes: AtomicU64,
    /// Peer packets dropped for want of a permission.
    pub dropped_no_permission: AtomicU64,
    /// Packets dropped over a bandwidth limit, both directions.
    pub dropped_bandwidth: AtomicU64,
    /// The ICMP rate limit's window (RFC 8656 §11.5): its second in the high 48 bits, the ICMP
    /// errors relayed in it in the low 16.
    pub icmp_window: AtomicU64,
}

impl<S> std::fmt::Debug for Allocation<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Allocation")
            .field("info", &*self.info.load())
            .field("expires", &self.expires.load(Relaxed))
            .field("deleted", &self.deleted.load(Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S> Allocation<S> {
    /// A new allocation expiring at `expires`, made with an MD5 long-term key (RFC 8489 §9.2.2).
    pub fn new(info: AllocationInfo, key_bytes: [u8; 16], socket: S, expires: Millis) -> Self {
        Self::with_key(info, LongTermKey::Md5(key_bytes), socket, expires)
    }

    /// A new allocation expiring at `expires`, made with `key` (of either password algorithm, RFC
    /// 8489 §9.2.2); its HMAC-SHA1 state is keyed once here.
    pub fn with_key(info: AllocationInfo, key_bytes: LongTermKey, socket: S, expires: Millis) -> Self {
        let quota_user = info.username.clone();
        Allocation {
            relay_is_v4: info.relay_addr.is_ipv4(),
            username: info.username.clone(),
            stream: info.five_tuple.transport.is_stream(),
            info: ArcSwap::from_pointee(info),
            mobility_id: AtomicU32::new(0),
            key: IntegrityKey::new(key_bytes.as_bytes()),
            key_bytes,
            socket,
            extra: None,
            expires: AtomicU64::new(expires),
            deleted: AtomicBool::new(false),
            bindings: ArcSwap::from_pointee(Bindings::default()),
            writer: Mutex::new(Responses::default()),
            counters: AllocationCounters::default(),
            quota_user,
            bandwidth: AllocationBandwidth::default(),
            tcp_relay: false,
            oauth: ArcSwapOption::empty(),
            created: 0,
            id: crate::random::u64(),
        }
    }

    /// The id that names it in logs, events and usage records: random, so that ids from restarts
    /// and from several nodes do not collide (printed as 16 hex digits, see [`AllocationId`]).
    pub fn id(&self) -> AllocationId {
        AllocationId(self.id)
    }

    /// The same allocation under id `id` (a fleet lease's id, so that the lease and the allocation
    /// are one name across the fleet).
    pub fn with_id(mut self, id: u64) -> Self {
        self.id = id;
        self
    }

    /// When it was made (core milliseconds since the server's epoch).
    pub fn created(&self) -> Millis {
        self.created
    }

    /// Records when the allocation was made.
    pub fn with_created(mut self, at: Millis) -> Self {
        self.created = at;
        self
    }

    /// Seconds since it was made.
    pub fn age_secs(&self, now: Millis) -> u64 {
        now.saturating_sub(self.created) / 1000
    }

    /// Makes it an allocation of RFC 7635 third-party authorization, with the token's session.
    pub fn with_oauth(self, session: Option<Arc<OauthSession>>) -> Self {
        self.oauth.store(session);
        self
    }

    /// Whether it was made with an RFC 7635 ACCESS-TOKEN.
    pub fn is_oauth(&self) -> bool {
        self.oauth.load().is_some()
    }

    /// The current token session of an RFC 7635 allocation.
    pub fn oauth(&self) -> Option<Arc<OauthSession>> {
        self.oauth.load_full()
    }

    /// RFC 7635 §6.2: a Refresh with a new ACCESS-TOKEN switches the allocation's kid and mac_key.
    pub fn set_oauth(&self, session: Arc<OauthSession>) {
        self.oauth.store(Some(session));
    }

    /// Makes it an RFC 6062 TCP allocation (REQUESTED-TRANSPORT TCP).
    pub fn with_tcp_relay(mut self) -> Self {
        self.tcp_relay = true;
        self
    }

    /// Whether it relays TCP (RFC 6062) rather than UDP.
    pub fn is_tcp_relay(&self) -> bool {
        self.tcp_relay
    }

    /// Counts it against `user`'s quota instead of its username's.
    pub fn with_quota_user(mut self, user: &str) -> Self {
        self.quota_user = user.into();
        self
    }

    /// Meters its relayed data with `bandwidth` (unlimited by default).
    pub fn with_bandwidth(mut self, bandwidth: AllocationBandwidth) -> Self {
        self.bandwidth = bandwidth;
        self
    }

    /// The user its quota counts against.
    pub fn quota_user(&self) -> &str {
        &self.quota_user
    }

    /// Its bandwidth buckets.
    #[inline]
    pub fn bandwidth(&self) -> &AllocationBandwidth {
        &self.bandwidth
    }

    /// Its facts: fixed but for the 5-tuple, which RFC 8016 mobility may change (a snapshot).
    pub fn info(&self) -> arc_swap::Guard<Arc<AllocationInfo>> {
        self.info.load()
    }

    /// Moves it to `five_tuple` (RFC 8016 §3.2); only [`Table::rekey`](super::Table::rekey) calls
    /// this, with the table re-keyed around it.
    pub(super) fn set_five_tuple(&self, five_tuple: super::FiveTuple) {
        let moved = AllocationInfo { five_tuple, ..AllocationInfo::clone(&self.info.load()) };
        self.info.store(Arc::new(moved));
    }

    /// Whether its client leg is a byte stream (TCP or TLS: ChannelData is padded, RFC 8656 §12.5).
    #[inline]
    pub fn is_stream(&self) -> bool {
        self.stream
    }

    /// The authenticated username (as in [`AllocationInfo::username`]).
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The RFC 8016 mobility ticket id it answers to (0: none issued).
    pub fn mobility_id(&self) -> u32 {
        self.mobility_id.load(Relaxed)
    }

    /// Sets the RFC 8016 mobility ticket id it answers to (a new ticket after a move, §3.2).
    pub fn set_mobility_id(&self, id: u32) {
        self.mobility_id.store(id, Relaxed);
    }

    /// The cached MESSAGE-INTEGRITY key of the allocation's credentials.
    pub fn key(&self) -> &IntegrityKey {
        &self.key
    }

    /// The raw long-term key and its algorithm (to compare with a request's credentials).
    pub fn key_bytes(&self) -> &LongTermKey {
        &self.key_bytes
    }

    /// When the allocation expires: for a dual allocation, when the last of its relayed addresses
    /// does (RFC 8656 §8).
    pub fn expires(&self) -> Millis {
        let own = self.expires.load(Relaxed);
        self.extra.as_ref().map_or(own, |e| own.max(e.expires()))
    }

    /// A Refresh without REQUESTED-ADDRESS-FAMILY (RFC 8656 §8.2): every relayed address live at
    /// `now` expires at `at` (one deleted or expired alone stays so).
    pub fn set_expires(&self, at: Millis, now: Millis) {
        refresh_expiry(&self.expires, at, now);
        if let Some(e) = &self.extra {
            refresh_expiry(&e.expires, at, now);
        }
    }

    /// Whether it is still usable at `now`: not deleted, and one of its relayed addresses has not
    /// expired (RFC 8656 §8: a dual allocation's families expire apart).
    #[inline]
    pub fn is_live(&self, now: Millis) -> bool {
        !self.deleted.load(Relaxed)
            && (self.expires.load(Relaxed) > now || self.extra.as_ref().is_some_and(|e| e.expires() > now))
    }

    /// Marks it deleted; its driver task should stop and free the relay port.
    pub fn mark_deleted(&self) {
        self.deleted.store(true, Relaxed);
    }

    /// Whether it was deleted (Refresh to 0, expiry, or shutdown).
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Relaxed)
    }

    /// The current permission/channel snapshot, lock-free.
    #[inline]
    pub fn bindings(&self) -> arc_swap::Guard<Arc<Bindings>> {
        self.bindings.load()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Responses> {
        // A poisoned lock only means another thread panicked mid-update; the data is still valid.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Installs or refreshes permissions for `ips` until `expires` (RFC 8656 §10.2): all of them, or
    /// none when the new ones would exceed `limits` (expired permissions do not count).
    pub fn add_permissions(
        &self,
        ips: &[IpAddr],
        expires: Millis,
        now: Millis,
        limits: BindingLimits,
    ) -> Result<(), TooManyPermissions> {
        let _guard = self.lock();
        let cur = self.bindings.load();
        let new = ips
            .iter()
            .enumerate()
            .filter(|&(i, ip)| !cur.permits(*ip, now) && !ips.iter().take(i).any(|x| x == ip))
            .count();
        if !BindingLimits::room(limits.permissions, cur.live_permissions(now), new) {
            return Err(TooManyPermissions);
        }
        let mut missing = false;
        for ip in ips {
            match cur.permissions.iter().find(|p| p.ip == *ip) {
                Some(p) => p.expires.store(expires, Relaxed),
                None => missing = true,
            }
        }
        if !missing {
            return Ok(());
        }
        let mut next = copy_live(&cur, now);
        for ip in ips {
            if !next.permissions.iter().any(|p| p.ip == *ip) {
                next.permissions.push(Permission { ip: *ip, expires: AtomicU64::new(expires) });
            }
        }
        self.bindings.store(Arc::new(next));
        Ok(())
    }

    /// Binds or refreshes a channel and refreshes the peer's permission (RFC 8656 §12.2). A new
    /// channel, and the permission it installs, must fit `limits`; a live one is always refreshed.
    pub fn bind_channel(
        &self,
        number: u16,
        peer: SocketAddr,
        channel_expires: Millis,
        permission_expires: Millis,
        now: Millis,
        limits: BindingLimits,
    ) -> Result<(), ChannelBindError> {
        let _guard = self.lock();
        let cur = self.bindings.load();
        for c in cur.channels.iter().filter(|c| c.expires() > now) {
            if c.number == number && c.peer != peer {
                return Err(ChannelBindError::ChannelTaken);
            }
            if c.peer == peer && c.number != number {
                return Err(ChannelBindError::PeerTaken);
            }
        }
        let existing = cur.channels.iter().find(|c| c.number == number && c.peer == peer && c.expires() > now);
        if existing.is_none() {
            let live_channels = cur.channels.iter().filter(|c| c.expires() > now).count();
            let new_permission = usize::from(!cur.permits(peer.ip(), now));
            if !BindingLimits::room(limits.channels, live_channels, 1)
                || !BindingLimits::room(limits.permissions, cur.live_permissions(now), new_permission)
            {
                return Err(ChannelBindError::Capacity);
            }
        }
        let perm = cur.permissions.iter().find(|p| p.ip == peer.ip());
        if let (Some(c), Some(p)) = (existing, perm) {
            c.expires.store(channel_expires, Relaxed);
            p.expires.store(p.expires().max(permission_expires), Relaxed);
            return Ok(());
        }
        let mut next = copy_live(&cur, now);
        match next.channels.iter().find(|c| c.number == number) {
            Some(c) => c.expires.store(channel_expires, Relaxed),
            None => next.channels.push(ChannelBinding { number, peer, expires: AtomicU64::new(channel_expires) }),
        }
        match next.permissions.iter().find(|p| p.ip == peer.ip()) {
            Some(p) => p.expires.store(p.expires().max(permission_expires), Relaxed),
            None => next.permissions.push(Permission { ip: peer.ip(), expires: AtomicU64::new(permission_expires) }),
        }
        self.bindings.store(Arc::new(next));
        Ok(())
    }

    /// Drops expired permissions and channels from the snapshot (periodic sweep).
    pub fn sweep(&self, now: Millis) {
        let _guard = self.lock();
        let cur = self.bindings.load();
        let stale =
            cur.permissions.iter().any(|p| p.expires() <= now) || cur.channels.iter().any(|c| c.expires() <= now);
        if stale {
            self.bindings.store(Arc::new(copy_live(&cur, now)));
        }
    }

    /// The cached answer to `tid`, if this is a retransmission of the Allocate or of the last
    /// request.
    pub fn cached_response(&self, request: &RequestKey) -> Option<Box<[u8]>> {
        let r = self.lock();
        [&r.allocate, &r.last].into_iter().flatten().find(|c| c.request == *request).map(|c| c.bytes.clone())
    }

    /// Remembers the answer to the Allocate that created the allocation.
    pub fn cache_allocate_response(&self, request: RequestKey, bytes: &[u8]) {
        self.lock().allocate = Some(CachedResponse { request, bytes: bytes.into() });
    }

    /// Remembers the answer to the last request.
    pub fn cache_response(&self, request: RequestKey, bytes: &[u8]) {
        self.lock().last = Some(CachedResponse { request, bytes: bytes.into() });
    }
}

/// Sets `expires` to `at` unless it ran out at `now` (a relayed address does not come back).
fn refresh_expiry(expires: &AtomicU64, at: Millis, now: Millis) {
    let _ = expires.fetch_update(Relaxed, Relaxed, |cur| (cur > now).then_some(at));
}

fn copy_live(cur: &Bindings, now: Millis) -> Bindings {
    Bindings {
        permissions: cur
            .permissions
            .iter()
            .filter(|p| p.expires() > now)
            .map(|p| Permission { ip: p.ip, expires: AtomicU64::new(p.expires()) })
            .collect(),
        channels: cur
            .channels
            .iter()
            .filter(|c| c.expires() > now)
            .map(|c| ChannelBinding { number: c.number, peer: c.peer, expires: AtomicU64::new(c.expires()) })
            .collect(),
    }
}
