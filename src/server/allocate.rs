//! Allocate, RFC 8656 §7.2: create an allocation with a relayed transport address.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::lease::{Lease, LeaseRequest};
use super::request::Request;
use super::{BindOptions, Outcome, RelayAddress, RelayDriver, Server};
use crate::alloc::{Allocation, AllocationInfo, ExtraRelay, Millis, RequestKey};
use crate::policy::quota::quota_user;
use crate::proto::stun::{
    AdditionalAddressFamily, AddressErrorCode, AddressFamily, AttrError, Class, DontFragment, EvenPort,
    LegacyAdditionalAddressFamily, LegacyAddressErrorCode, Lifetime, MobilityTicket, RequestedAddressFamily,
    RequestedTransport, ReservationToken, XorMappedAddress, XorRelayedAddress, codes,
};

/// How long a port reserved by EVEN-PORT's R bit is held, RFC 8656 §7.2 ("about 30 seconds").
const RESERVATION_MS: Millis = 30_000;

/// A relay socket held for a later Allocate carrying its RESERVATION-TOKEN.
pub(super) struct Reservation<S> {
    token: [u8; 8],
    socket: S,
    /// The reserved port's address (it counts as in use, see `Server::relay_ports_in_use`).
    pub(super) local: SocketAddr,
    advertised: IpAddr,
    expires: Millis,
}

pub(super) fn handle<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let server = req.server;
    // A retransmission was answered from the cache already; any other Allocate on a live 5-tuple
    // is a mismatch.
    if req.allocation.is_some() {
        return req.error(out, codes::ALLOCATION_MISMATCH);
    }
    let asked = match Asked::of(req) {
        Ok(asked) => asked,
        Err(code) => return req.error(out, code),
    };
    // RFC 8656 §7.2: a user over its quota gets 486; a server out of room 508. The slot is taken
    // before a relay socket is bound and given back if the Allocate fails after all.
    let limits = server.admission.quotas();
    let auth = server.auth.load();
    let rest_separator = req.auth.rest_expiry.and(auth.as_ref().and_then(|a| a.rest()).map(|r| r.separator));
    // An RFC 7635 token holder is its token's identity, not the kid every holder shares.
    let token_user = req.auth.oauth.as_ref().map(|s| s.identity());
    let user = match &token_user {
        Some(identity) => identity.as_str(),
        None => quota_user(req.auth.username, rest_separator),
    };
    if let Err(e) = server.table.acquire(user, limits) {
        return req.error(out, e.error_code());
    }
    // Issue #16: with fleet leases on, the fleet's quotas are asked before the allocation is made
    // (the node's own slot was only checked; it is taken again when the verdict comes).
    let lease_id = match req.lease {
        Lease::Ask | Lease::Looked if server.fleet_leases() => {
            server.table.release(user);
            let request = LeaseRequest {
                id: crate::random::u64(),
                user: user.into(),
                lifetime_secs: asked.lifetime,
                limits,
                five_tuple: req.rx.five_tuple(),
            };
            return match server.pending.hold(request.id, super::lease::Hold::Lease(request), req.rx, req.now) {
                Some(outcome) => outcome,
                None => req.error(out, codes::INSUFFICIENT_CAPACITY),
            };
        }
        Lease::Decided { id, verdict } => match super::lease::refused(verdict, server.options.lease_fail_closed) {
            Some(code) => {
                server.table.release(user);
                return req.error(out, code);
            }
            None => Some(id),
        },
        Lease::Ask | Lease::Looked => None,
    };
    let (bound, extra) = match bind_relays(req, &asked, user) {
        Ok(relays) => relays,
        Err(code) => {
            server.table.release(user);
            return req.error(out, code);
        }
    };
    let (advertised, token) = (SocketAddr::new(bound.advertised, bound.local.port()), bound.token);
    let (allocation, address_error) = new_allocation(req, &asked, user, bound, extra);
    let allocation = match lease_id {
        Some(id) => Arc::new(allocation.with_id(id)),
        None => Arc::new(allocation),
    };
    if server.table.insert(Arc::clone(&allocation)).is_err() {
        server.table.release(user);
        return req.error(out, codes::ALLOCATION_MISMATCH);
    }
    // RFC 8016 §3.1: the answer to an empty MOBILITY-TICKET is the allocation's ticket.
    let ticket = if asked.mobile { server.tickets.issue(&allocation) } else { None };
    let outcome = super::response::respond(req.msg, out, Class::SuccessResponse, req.trailer, |w| {
        // IPv4 first (the allocation's own relay is IPv4 whenever it has one).
        w.add(&XorRelayedAddress(advertised))?;
        if let Some(e) = &allocation.extra {
            w.add(&XorRelayedAddress(e.advertised_addr))?;
        }
        if let Some((family, code, legacy)) = address_error {
            let e = AddressErrorCode { family, code, reason: codes::reason(code) };
            if legacy { w.add(&LegacyAddressErrorCode(e))? } else { w.add(&e)? }
        }
        w.add(&Lifetime(asked.lifetime))?;
        if let Some(t) = token {
            w.add(&ReservationToken(t))?;
        }
        if let Some(t) = &ticket {
            w.add(&MobilityTicket(t))?;
        }
        w.add(&XorMappedAddress(req.rx.source))
    });
    if let Outcome::Reply(n) = outcome
        && let Some(bytes) = out.get(..n)
    {
        allocation.cache_allocate_response(RequestKey::of(req.msg), bytes);
    }
    server.stats.allocation_created();
    server.driver.start(&allocation);
    server.emit(&allocation, |session| super::Event::Allocated { session, lifetime_secs: asked.lifetime });
    outcome
}

/// What an Allocate asks for, its attributes checked one by one and together (RFC 8656 §7.2,
/// RFC 6062 §5.1); an error is the code to answer.
struct Asked {
    /// REQUESTED-TRANSPORT TCP (RFC 6062).
    tcp: bool,
    dont_fragment: bool,
    even_port: Option<EvenPort>,
    token: Option<[u8; 8]>,
    family: Option<AddressFamily>,
    /// A dual allocation, and whether under the draft's code points.
    dual: Option<bool>,
    /// The lifetime granted, seconds.
    lifetime: u32,
    /// An empty MOBILITY-TICKET asked for mobility (RFC 8016 §3.1).
    mobile: bool,
}

impl Asked {
    fn of<D: RelayDriver>(req: &Request<'_, '_, D>) -> Result<Asked, u16> {
        let (server, msg) = (req.server, req.msg);
        let tcp = match msg.get::<RequestedTransport>() {
            Ok(RequestedTransport::UDP) => false,
            // RFC 6062 §5.1: a TCP allocation is made over a TCP or TLS connection only, and
            // without the attributes that only make sense for UDP.
            Ok(RequestedTransport::TCP) if server.options.no_tcp_relay => {
                return Err(codes::UNSUPPORTED_TRANSPORT_PROTOCOL);
            }
            Ok(RequestedTransport::TCP)
                if !req.rx.transport.is_stream()
                    || msg.has::<DontFragment>()
                    || msg.has::<EvenPort>()
                    || msg.has::<ReservationToken>() =>
            {
                return Err(codes::BAD_REQUEST);
            }
            Ok(RequestedTransport::TCP) => true,
            Ok(_) => return Err(codes::UNSUPPORTED_TRANSPORT_PROTOCOL),
            Err(_) => return Err(codes::BAD_REQUEST),
        };
        let even_port = optional(msg.get::<EvenPort>())?;
        let token = optional(msg.get::<ReservationToken>())?.map(|t| t.0);
        let family = match msg.get::<RequestedAddressFamily>() {
            Ok(f) => Some(f.0),
            Err(AttrError::Missing) => None,
            Err(AttrError::BadFamily) => return Err(codes::ADDRESS_FAMILY_NOT_SUPPORTED),
            Err(_) => return Err(codes::BAD_REQUEST),
        };
        let dual = dual_request(server, msg)?;
        // RFC 8656 §7.2: REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together are 400;
        // RESERVATION-TOKEN excludes EVEN-PORT and both family attributes. A dual allocation
        // relays UDP only here (RFC 6062 says nothing of it).
        if dual.is_some() && (family.is_some() || tcp) {
            return Err(codes::BAD_REQUEST);
        }
        if token.is_some() && (even_port.is_some() || family.is_some() || dual.is_some()) {
            return Err(codes::BAD_REQUEST);
        }
        // RFC 8656 §7.2: EVEN-PORT with the R bit set and ADDITIONAL-ADDRESS-FAMILY together are
        // 400 (one RESERVATION-TOKEN cannot hold a port of each family).
        if dual.is_some() && even_port.is_some_and(|e| e.reserve_next) {
            return Err(codes::BAD_REQUEST);
        }
        let lifetime = token_capped(req, granted_lifetime(server, optional(msg.get::<Lifetime>())?.map(|l| l.0)));
        let mobile = super::mobility::asked_in_allocate(server.options.mobility, msg.get::<MobilityTicket>())?;
        let dont_fragment = msg.has::<DontFragment>();
        Ok(Asked { tcp, dont_fragment, even_port, token, family, dual, lifetime, mobile })
    }
}

/// An optional attribute: absent is `None`, malformed is 400.
fn optional<T>(attribute: Result<T, AttrError>) -> Result<Option<T>, u16> {
    match attribute {
        Ok(v) => Ok(Some(v)),
        Err(AttrError::Missing) => Ok(None),
        Err(_) => Err(codes::BAD_REQUEST),
    }
}

/// The first relay of an allocation, and the second family's of a dual one.
type Relays<S> = (Bound<S>, Option<Extra<S>>);

/// The relay socket(s) of a new allocation for `user` (its quota user). RFC 8656 §7.2: one
/// relayed address per family for a dual allocation; when only one family can be had the
/// allocation is made with it, and ADDRESS-ERROR-CODE says why the other failed. The embedder's
/// relay-address hook is asked once per family.
fn bind_relays<D: RelayDriver>(req: &Request<'_, '_, D>, asked: &Asked, user: &str) -> Result<Relays<D::Socket>, u16> {
    let server = req.server;
    let options = BindOptions { dont_fragment: asked.dont_fragment, tcp: asked.tcp };
    let Some(legacy) = asked.dual else {
        return relay_socket(server, req, user, asked.token, asked.family, asked.even_port, options).map(|b| (b, None));
    };
    let v4 = relay_socket(server, req, user, None, Some(AddressFamily::V4), asked.even_port, options);
    // Only the first relay may reserve the next port (one RESERVATION-TOKEN per answer).
    let even_v6 = asked.even_port.map(|_| EvenPort { reserve_next: false });
    let v6 = relay_socket(server, req, user, None, Some(AddressFamily::V6), even_v6, options);
    match (v4, v6) {
        (Ok(a), Ok(b)) => Ok((a, Some(Extra::Relay(b)))),
        (Ok(a), Err(code)) => Ok((a, Some(Extra::Failed(AddressFamily::V6, code, legacy)))),
        (Err(code), Ok(b)) => Ok((b, Some(Extra::Failed(AddressFamily::V4, code, legacy)))),
        (Err(c4), Err(c6)) => {
            let both_missing = c4 == codes::ADDRESS_FAMILY_NOT_SUPPORTED && c6 == c4;
            Err(if both_missing { c4 } else { codes::INSUFFICIENT_CAPACITY })
        }
    }
}

/// The failed family of a dual allocation: family, error code, draft code points.
type AddressError = Option<(AddressFamily, u16, bool)>;

/// The allocation for `bound` (and the second family's relay, or why it failed).
fn new_allocation<D: RelayDriver>(
    req: &Request<'_, '_, D>,
    asked: &Asked,
    user: &str,
    bound: Bound<D::Socket>,
    extra: Option<Extra<D::Socket>>,
) -> (Allocation<D::Socket>, AddressError) {
    let server = req.server;
    let info = AllocationInfo {
        five_tuple: req.rx.five_tuple(),
        relay_addr: bound.local,
        advertised_addr: SocketAddr::new(bound.advertised, bound.local.port()),
        username: req.auth.username.into(),
        rest_expiry: req.auth.rest_expiry,
    };
    let expires = req.now + u64::from(asked.lifetime) * 1000;
    let mut allocation = Allocation::with_key(info, req.auth.key_bytes, bound.socket, expires)
        .with_quota_user(user)
        .with_created(req.now)
        .with_bandwidth(server.bandwidth.for_allocation(user))
        .with_oauth(req.auth.oauth.clone());
    if asked.tcp {
        allocation = allocation.with_tcp_relay();
    }
    let mut address_error = None;
    match extra {
        Some(Extra::Relay(b)) => {
            let advertised_addr = SocketAddr::new(b.advertised, b.local.port());
            allocation = allocation.with_extra_relay(ExtraRelay::new(b.local, advertised_addr, b.socket));
        }
        Some(Extra::Failed(family, code, legacy)) => address_error = Some((family, code, legacy)),
        None => {}
    }
    (allocation, address_error)
}

/// The second family of a dual allocation: its relay, or the family that failed, the error code
/// and whether the request used the draft code points.
enum Extra<S> {
    Relay(Bound<S>),
    Failed(AddressFamily, u16, bool),
}

/// Whether the Allocate asks for a dual allocation (RFC 8656 §7.2 ADDITIONAL-ADDRESS-FAMILY, or
/// with `legacy_dual_allocation` its draft code point 0x8032): `Some(legacy)`. Only IPv6 may be
/// asked for as the additional family: anything else is 400.
fn dual_request<D: RelayDriver>(
    server: &Server<D>,
    msg: &crate::proto::stun::Message<'_>,
) -> Result<Option<bool>, u16> {
    let (family, legacy) = match msg.get::<AdditionalAddressFamily>() {
        Ok(f) => (Ok(f.0), false),
        Err(AttrError::Missing) if server.options.legacy_dual_allocation => {
            match msg.get::<LegacyAdditionalAddressFamily>() {
                Ok(f) => (Ok(f.0), true),
                Err(AttrError::Missing) => return Ok(None),
                Err(e) => (Err(e), true),
            }
        }
        Err(AttrError::Missing) => return Ok(None),
        Err(e) => (Err(e), false),
    };
    match family {
        Ok(AddressFamily::V6) => Ok(Some(legacy)),
        _ => Err(codes::BAD_REQUEST),
    }
}

/// The relay socket: the one a RESERVATION-TOKEN holds, or a fresh one of the requested family —
/// where the embedder's relay-address hook chose, or else on the configured addresses; the error
/// code when there is none (RFC 8656 §7.2).
fn relay_socket<D: RelayDriver>(
    server: &Server<D>,
    req: &Request<'_, '_, D>,
    user: &str,
    token: Option<[u8; 8]>,
    family: Option<AddressFamily>,
    even_port: Option<EvenPort>,
    opts: BindOptions,
) -> Result<Bound<D::Socket>, u16> {
    if let Some(t) = token {
        // An unknown or expired token means the reserved port is gone.
        let r = take_reservation(server, t, req.now).ok_or(codes::INSUFFICIENT_CAPACITY)?;
        // The reserved socket was bound without DF (RFC 8656 §18.9): this Allocate's DONT-FRAGMENT
        // decides.
        if opts.dont_fragment && server.driver.set_dont_fragment(&r.socket, true).is_err() {
            return Err(codes::INSUFFICIENT_CAPACITY);
        }
        return Ok(Bound { socket: r.socket, local: r.local, advertised: r.advertised, token: None });
    }
    let family = family.unwrap_or(AddressFamily::V4);
    let (even, reserve_next) = (even_port.is_some(), even_port.is_some_and(|e| e.reserve_next));
    let configured = &server.options.relay_addresses;
    // Issue #18: the embedder's choice, when it made a valid one, is the only one tried.
    if let Some(choice) = hook_choice(server, req, user, family, opts.tcp) {
        let (local, advertised) = configured
            .iter()
            .find(|r| (r.local == choice.ip || r.advertised == choice.ip) && !r.advertised.is_unspecified())
            .map_or((choice.ip, choice.ip), |r| (r.local, r.advertised));
        let ports = Some((*choice.ports.start(), *choice.ports.end()));
        return bind(server, (local, advertised), ports, (even, reserve_next), opts, req.now)
            .ok_or(codes::INSUFFICIENT_CAPACITY);
    }
    if configured.is_empty() {
        let (local, advertised) = relay_ip(server, req, family)?;
        return bind(server, (local, advertised), None, (even, reserve_next), opts, req.now)
            .ok_or(codes::INSUFFICIENT_CAPACITY);
    }
    // Several relay addresses of the family: spread allocations round-robin, and when one address
    // has no free port (or is gone) try the next.
    let matches = |r: &&RelayAddress| family_matches(family, &r.local);
    let count = configured.iter().filter(matches).count();
    if count == 0 {
        return Err(codes::ADDRESS_FAMILY_NOT_SUPPORTED);
    }
    let start = server.next_relay_index(family == AddressFamily::V6) % count;
    for i in 0..count {
        let Some(r) = configured.iter().filter(matches).nth((start + i) % count) else { break };
        // Never tell a client 0.0.0.0.
        if r.advertised.is_unspecified() {
            continue;
        }
        if let Some(bound) = bind(server, (r.local, r.advertised), None, (even, reserve_next), opts, req.now) {
            return Ok(bound);
        }
    }
    Err(codes::INSUFFICIENT_CAPACITY)
}

/// The relay-address hook's valid choice for this Allocate's relay of `family`, if a hook is set.
fn hook_choice<D: RelayDriver>(
    server: &Server<D>,
    req: &Request<'_, '_, D>,
    user: &str,
    family: AddressFamily,
    tcp: bool,
) -> Option<super::RelayChoice> {
    let auth = server.auth.load();
    let ctx = super::RelayContext {
        username: req.auth.username,
        user,
        realm: auth.as_deref().map_or("", |a| a.realm()),
        client: req.rx.source,
        transport: req.rx.transport,
        family,
        tcp,
    };
    server.relay_hook_choice(&ctx)
}

fn family_matches(family: AddressFamily, ip: &IpAddr) -> bool {
    match family {
        AddressFamily::V4 => ip.is_ipv4(),
        AddressFamily::V6 => ip.is_ipv6(),
    }
}

/// An allocation never outlives its token (RFC 7635 §6.2: the token's lifetime bounds the use of
/// its mac_key), as coturn does: a request authenticated by an ACCESS-TOKEN, or by the session key
/// of one, is granted at most the token's remaining lifetime (timestamp + lifetime − now), even
/// below the default of RFC 8656 §7.2; at least 1 s, so that a Refresh never turns into a delete.
/// A lifetime of 0 stays 0.
pub(super) fn token_capped<D: RelayDriver>(req: &Request<'_, '_, D>, lifetime: u32) -> u32 {
    let Some(session) = &req.auth.oauth else { return lifetime };
    let now = req.server.unix_ms(req.now) / 1000;
    let remaining = session.expires.saturating_sub(now).max(1);
    lifetime.min(u32::try_from(remaining).unwrap_or(u32::MAX))
}

/// RFC 8656 §7.2 (and §8.2 for a Refresh): min(requested, max), but never below the default.
pub(super) fn granted_lifetime<D: RelayDriver>(server: &Server<D>, requested: Option<u32>) -> u32 {
    let o = &server.options;
    match requested {
        Some(r) => r.min(o.max_lifetime).max(o.default_lifetime.min(o.max_lifetime)),
        None => o.default_lifetime.min(o.max_lifetime),
    }
}

/// The relay IP of `family` when none is configured: the address the request arrived on (or
/// another own address of that family).
/// 440 when there is none of that family; 508 when it would be the unspecified address.
fn relay_ip<D: RelayDriver>(
    server: &Server<D>,
    req: &Request<'_, '_, D>,
    family: AddressFamily,
) -> Result<(IpAddr, IpAddr), u16> {
    let matches = |ip: &IpAddr| family_matches(family, ip);
    // The address the request arrived on; for the other family (RFC 8656 §7.2: IPv4 unless
    // REQUESTED-ADDRESS-FAMILY says otherwise, whatever the client's own family), another of the
    // server's own addresses, so a dual-stack listener serves both.
    let arrival = req.rx.local.ip();
    let local = if matches(&arrival) {
        arrival
    } else {
        let own = server.options.own_addresses.iter().copied();
        own.filter(|ip| !ip.is_unspecified()).find(|ip| matches(ip)).ok_or(codes::ADDRESS_FAMILY_NOT_SUPPORTED)?
    };
    let advertised = local;
    if !matches(&local) {
        return Err(codes::ADDRESS_FAMILY_NOT_SUPPORTED);
    }
    // Never tell a client 0.0.0.0 (a wildcard listener without relay-ip).
    if advertised.is_unspecified() {
        return Err(codes::INSUFFICIENT_CAPACITY);
    }
    Ok((local, advertised))
}

struct Bound<S> {
    socket: S,
    local: SocketAddr,
    advertised: IpAddr,
    token: Option<[u8; 8]>,
}

/// Binds a relay socket on `(local, advertised)` at a free port of the range — the configured
/// one, or `ports` (inclusive) when the relay-address hook chose them — skipping ports in use (the
/// machine's ephemeral range may overlap ours), at most `port_tries` of them. `(even,
/// reserve_next)` is EVEN-PORT: an even port, and with its R bit port + 1 bound too and kept
/// under a fresh RESERVATION-TOKEN.
fn bind<D: RelayDriver>(
    server: &Server<D>,
    (local, advertised): (IpAddr, IpAddr),
    ports: Option<(u16, u16)>,
    (even, reserve_next): (bool, bool),
    opts: BindOptions,
    now: Millis,
) -> Option<Bound<D::Socket>> {
    let tries = server.options.port_tries;
    let (min, max) = ports.unwrap_or((server.ports.min(), server.ports.max()));
    for port in server.ports.candidates_in(min, max, tries, even, reserve_next) {
        let addr = SocketAddr::new(local, port);
        let socket = match server.driver.bind(addr, opts) {
            Ok(s) => s,
            Err(e) if retryable(e.kind()) => continue,
            Err(_) => return None,
        };
        if !reserve_next {
            return Some(Bound { socket, local: addr, advertised, token: None });
        }
        let next = SocketAddr::new(local, port.saturating_add(1));
        match server.driver.bind(next, BindOptions::default()) {
            Ok(reserved) => {
                let token = server.random_token();
                server.lock_reservations().push(Reservation {
                    token,
                    socket: reserved,
                    local: next,
                    advertised,
                    expires: now + RESERVATION_MS,
                });
                return Some(Bound { socket, local: addr, advertised, token: Some(token) });
            }
            Err(e) if retryable(e.kind()) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn retryable(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::AddrInUse | ErrorKind::PermissionDenied | ErrorKind::AddrNotAvailable)
}

fn take_reservation<D: RelayDriver>(server: &Server<D>, token: [u8; 8], now: Millis) -> Option<Reservation<D::Socket>> {
    let mut list = server.lock_reservations();
    let i = list.iter().position(|r| r.token == token && r.expires > now)?;
    Some(list.swap_remove(i))
}

/// Drops reservations older than 30 s, closing their sockets.
pub(super) fn sweep_reservations<D: RelayDriver>(server: &Server<D>, now: Millis) {
    server.lock_reservations().retain(|r| r.expires > now);
}
