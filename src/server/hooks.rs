//! Embedder hooks on the control path (issue #18): a [`PeerHook`] that can refuse peers the
//! built-in peer policy allows, and a [`RelayAddressHook`] that chooses the relay IP and port
//! range of an allocation per user or tenant (pion/turn's `RelayAddressGenerator`), neither of
//! which needs a driver of its own.
//!
//! Both are synchronous and run on the worker that handles the request, only when a request is
//! answered — CreatePermission, ChannelBind and RFC 6062 Connect for the peer hook (RFC 8656 §9,
//! §12.2; RFC 6062 §5.2), Allocate for the relay hook (RFC 8656 §7.2) — never per relayed packet.
//! They must be cheap and must not block: no I/O, no lock held across anything slow. An embedder
//! whose decision needs a database keeps a cache the hook reads and fills it elsewhere.
//!
//! Set them at any time with [`Server::set_peer_hook`] and [`Server::set_relay_address_hook`]
//! (swapped whole, read with one atomic load); `None` removes them.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::{RelayDriver, Server};
use crate::alloc::{Allocation, Transport};
use crate::proto::stun::AddressFamily;

/// The request a peer is judged for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerRequest {
    /// CreatePermission (RFC 8656 §10.2). A permission is for an IP (§9): the port of the
    /// XOR-PEER-ADDRESS is what the client wrote and opens nothing by itself.
    CreatePermission,
    /// ChannelBind (RFC 8656 §12.2): a channel to this transport address, and a permission for its IP.
    ChannelBind,
    /// RFC 6062 Connect (§5.2): a TCP connection to this transport address.
    Connect,
}

/// What a [`PeerHook`] is asked: who wants to reach which peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerContext<'a> {
    /// The username the allocation was made with (RFC 8489 §14.3; the key id of an RFC 7635 token).
    pub username: &'a str,
    /// The user its quota counts against: a REST username's user part, a static user, an RFC
    /// 7635 token holder's identity.
    pub user: &'a str,
    /// The server's realm.
    pub realm: &'a str,
    /// The client: the source of the allocation's 5-tuple.
    pub client: SocketAddr,
    /// The transport between client and server.
    pub transport: Transport,
    /// The peer, as the request's XOR-PEER-ADDRESS named it.
    pub peer: SocketAddr,
    /// The request.
    pub request: PeerRequest,
}

/// A [`PeerHook`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerDecision {
    /// No objection: the built-in policy's allowance stands.
    Allow,
    /// Refused: 403 Forbidden, as the built-in policy answers.
    Deny,
}

/// The embedder's peer policy (RFC 8656 §9, §21.3): asked after the built-in peer policy allowed a
/// peer, it can only refuse more. The operator's rules (the special-purpose blocks, loopback,
/// `denied-peer-ip`, the server's own addresses) are never loosened: a peer they deny is refused
/// before the hook is asked, whatever it would say.
///
/// Runs on the worker handling a CreatePermission, ChannelBind or RFC 6062 Connect request, once
/// per XOR-PEER-ADDRESS — never per relayed packet: data follow the permission the request made
/// (§9). So keep it cheap and non-blocking. A denial is answered 403, counted in
/// [`StatsSnapshot::peer_denied`](super::StatsSnapshot::peer_denied) and reported as
/// [`Event::PeerDenied`](super::Event::PeerDenied), exactly as the built-in policy's.
///
/// Permissions carry no port (§9): a hook that refuses one port of an IP holds for ChannelBind and
/// Connect, which name a transport address, but once a CreatePermission for that IP succeeded, Send
/// indications reach every port of it. Refuse by IP to keep a peer out.
///
/// A swapped hook judges the next request; permissions and channels already made stay until they
/// expire.
pub trait PeerHook: Send + Sync + 'static {
    /// Judges `ctx.peer` for `ctx`'s allocation.
    fn check(&self, ctx: &PeerContext<'_>) -> PeerDecision;
}

impl<F> PeerHook for F
where
    F: Fn(&PeerContext<'_>) -> PeerDecision + Send + Sync + 'static,
{
    fn check(&self, ctx: &PeerContext<'_>) -> PeerDecision {
        self(ctx)
    }
}

/// What a [`RelayAddressHook`] is asked: whose relayed address of which family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayContext<'a> {
    /// The USERNAME of the Allocate (RFC 8489 §14.3; the key id of an RFC 7635 token).
    pub username: &'a str,
    /// The user its quota counts against: a REST username's user part, a static user, an RFC
    /// 7635 token holder's identity.
    pub user: &'a str,
    /// The server's realm.
    pub realm: &'a str,
    /// The client: the source of the Allocate's 5-tuple.
    pub client: SocketAddr,
    /// The transport between client and server.
    pub transport: Transport,
    /// The family of the relayed address (REQUESTED-ADDRESS-FAMILY, IPv4 without it; a dual
    /// allocation asks once per family, RFC 8656 §7.2).
    pub family: AddressFamily,
    /// An RFC 6062 TCP relay (REQUESTED-TRANSPORT TCP) rather than UDP.
    pub tcp: bool,
}

/// Where a [`RelayAddressHook`] wants the relay socket: an IP and a range of ports to take one from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayChoice {
    /// The IP the relay socket binds to. When it is a configured relay address (its local or its
    /// advertised IP), the socket binds to the local one and clients are told the advertised one;
    /// otherwise it is bound and told as it is.
    pub ip: IpAddr,
    /// The ports to pick from, inclusive: within 1024..=65535, not empty.
    pub ports: RangeInclusive<u16>,
}

impl RelayChoice {
    /// A choice of `ip` and a port from `ports`.
    pub fn new(ip: IpAddr, ports: RangeInclusive<u16>) -> RelayChoice {
        RelayChoice { ip, ports }
    }

    /// Whether the core can use this choice for a relayed address of `family`: an IP of that
    /// family that is neither unspecified nor multicast, and a non-empty port range within
    /// 1024..=65535.
    pub fn is_valid_for(&self, family: AddressFamily) -> bool {
        let family_ok = match family {
            AddressFamily::V4 => self.ip.is_ipv4(),
            AddressFamily::V6 => self.ip.is_ipv6(),
        };
        family_ok
            && !self.ip.is_unspecified()
            && !self.ip.is_multicast()
            && !self.ports.is_empty()
            && *self.ports.start() >= MIN_RELAY_PORT
    }
}

/// The lowest port a [`RelayChoice`] may name: the well-known ports are not relay ports.
pub const MIN_RELAY_PORT: u16 = 1024;

/// The embedder's choice of relayed address (RFC 8656 §7.2: the server picks the relayed transport
/// address), per user or tenant: pion/turn's `RelayAddressGenerator` without a driver of its own.
///
/// Asked on the worker handling an Allocate, once per relayed address to bind (twice for a dual
/// allocation, one [`RelayContext::family`] each), after credentials, quotas and the fleet lease:
/// keep it cheap and non-blocking. Not asked for an Allocate with RESERVATION-TOKEN (the reserved
/// socket was bound under the choice of the Allocate that reserved it) nor for a retransmission.
///
/// - `None`: the configured relay addresses and port range, as without a hook.
/// - `Some(choice)`: a port of `choice.ports` on `choice.ip`, tried in an unpredictable order and
///   at most `port_tries` times, like the default range; EVEN-PORT takes an even port of the range
///   (and reserves the next one, inside the range too). No free port, or an IP that cannot be
///   bound, is 508 Insufficient Capacity: the default addresses are not tried instead.
/// - A choice that is not [valid](RelayChoice::is_valid_for) for the family (another family, an
///   unspecified or multicast IP, an empty range, ports below 1024) is ignored: the allocation gets
///   the default address, and [`StatsSnapshot::relay_hook_ignored`](super::StatsSnapshot::relay_hook_ignored)
///   counts it.
///
/// The peer policy is built from the configuration: an IP the hook chooses that is not a configured
/// relay address is not among the server's own addresses, and a port outside `min-port`..`max-port`
/// on an own address is refused as a peer (so allocations there cannot reach each other). List such
/// addresses in `own_addresses` and keep ranges inside the relay range to keep both rules.
///
/// Closures are hooks, of both kinds:
///
/// ```
/// use std::net::IpAddr;
/// use std::sync::Arc;
/// use switchback::proto::stun::AddressFamily;
/// use switchback::server::{PeerContext, PeerDecision, RelayChoice, RelayContext, Server, ServerOptions};
///
/// let server = Server::new(ServerOptions::default());
/// // Tenant "acme" relays IPv4 from 198.51.100.7, ports 50000-50999; everyone else as configured.
/// server.set_relay_address_hook(Some(Arc::new(|ctx: &RelayContext<'_>| {
///     let acme = ctx.user == "acme" && ctx.family == AddressFamily::V4;
///     acme.then(|| RelayChoice::new(IpAddr::from([198, 51, 100, 7]), 50000..=50999))
/// })));
/// // On top of the operator's rules, nobody of "acme" reaches 192.0.2.10.
/// server.set_peer_hook(Some(Arc::new(|ctx: &PeerContext<'_>| {
///     let blocked = ctx.user == "acme" && ctx.peer.ip() == IpAddr::from([192, 0, 2, 10]);
///     if blocked { PeerDecision::Deny } else { PeerDecision::Allow }
/// })));
/// ```
pub trait RelayAddressHook: Send + Sync + 'static {
    /// The relay IP and port range for `ctx`, or `None` for the default.
    fn choose(&self, ctx: &RelayContext<'_>) -> Option<RelayChoice>;
}

impl<F> RelayAddressHook for F
where
    F: Fn(&RelayContext<'_>) -> Option<RelayChoice> + Send + Sync + 'static,
{
    fn choose(&self, ctx: &RelayContext<'_>) -> Option<RelayChoice> {
        self(ctx)
    }
}

/// The two hooks a [`Server`] holds; each swapped whole.
#[derive(Default)]
pub(super) struct Hooks {
    peer: arc_swap::ArcSwapOption<Arc<dyn PeerHook>>,
    relay: arc_swap::ArcSwapOption<Arc<dyn RelayAddressHook>>,
}

impl<D: RelayDriver> Server<D> {
    /// Sets (or with `None` removes) the embedder's [`PeerHook`], consulted from the next request on.
    pub fn set_peer_hook(&self, hook: Option<Arc<dyn PeerHook>>) {
        self.hooks.peer.store(hook.map(Arc::new));
    }

    /// Sets (or with `None` removes) the embedder's [`RelayAddressHook`], consulted from the next
    /// Allocate on.
    pub fn set_relay_address_hook(&self, hook: Option<Arc<dyn RelayAddressHook>>) {
        self.hooks.relay.store(hook.map(Arc::new));
    }

    /// Whether `allocation`'s client may reach `peer` (RFC 8656 §9, §21.3): the built-in peer
    /// policy first — by IP alone for a CreatePermission (a permission has no port, so port rules
    /// wait for ChannelBind and each send), by transport address otherwise — then the embedder's
    /// [`PeerHook`], which is only asked when the policy allowed and can only refuse more.
    pub(super) fn peer_allowed<S>(&self, allocation: &Allocation<S>, peer: SocketAddr, request: PeerRequest) -> bool {
        let policy = self.policy.load();
        let builtin = match request {
            PeerRequest::CreatePermission => policy.check_ip(peer.ip()),
            PeerRequest::ChannelBind | PeerRequest::Connect => policy.check_addr(peer),
        };
        if builtin.is_err() {
            return false;
        }
        let hook = self.hooks.peer.load();
        let Some(hook) = hook.as_deref() else { return true };
        let auth = self.auth.load();
        let five_tuple = allocation.info().five_tuple;
        let ctx = PeerContext {
            username: allocation.username(),
            user: allocation.quota_user(),
            realm: auth.as_deref().map_or("", |a| a.realm()),
            client: five_tuple.client,
            transport: five_tuple.transport,
            peer,
            request,
        };
        hook.check(&ctx) == PeerDecision::Allow
    }

    /// The relay hook's valid choice for `ctx`, if a hook is set and chose; an invalid choice is
    /// counted and ignored (see [`RelayAddressHook`]).
    pub(super) fn relay_hook_choice(&self, ctx: &RelayContext<'_>) -> Option<RelayChoice> {
        let choice = self.hooks.relay.load().as_deref()?.choose(ctx)?;
        if choice.is_valid_for(ctx.family) {
            Some(choice)
        } else {
            self.stats.relay_hook_ignored();
            None
        }
    }
}
