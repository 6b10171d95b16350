//! The Binding method, RFC 8489 §6.3 (and §11 for RFC 3489 clients), with RFC 5780 NAT behaviour
//! discovery when on (§6.1, §7).

use std::net::SocketAddr;

use super::options::NatDiscovery;
use super::response::{self, Trailer};
use super::{Outcome, Received, Transport};
use crate::proto::stun::EncodeError;
use crate::proto::stun::{
    ChangeRequest, Class, MappedAddress, Message, MessageWriter, OtherAddress, ResponseOrigin, UnknownAttributes,
    XorMappedAddress, codes, is_known, types,
};

/// Answers a Binding request: XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for an RFC 3489 request), SOFTWARE if
/// configured, FINGERPRINT if the request carried one. A request with comprehension-required
/// attributes this server does not implement gets 420 instead (RFC 8489 §6.3.1, see
/// [`unimplemented`]); `oauth`: whether RFC 7635 is on. With RFC 5780 on (`nat`, for a request
/// that came to one of its four addresses) the answer carries OTHER-ADDRESS and RESPONSE-ORIGIN and
/// follows CHANGE-REQUEST and RESPONSE-PORT (RFC 5780 §6.1, see [`route`]).
pub(super) fn request(
    trailer: Trailer<'_>,
    rx: &Received<'_>,
    msg: &Message<'_>,
    oauth: bool,
    nat: Option<NatDiscovery>,
    out: &mut [u8],
) -> Outcome {
    // RFC 3489 clients know neither FINGERPRINT nor the 420 rules of RFC 8489.
    let trailer = Trailer { fingerprint: trailer.fingerprint && !msg.is_rfc3489(), ..trailer };
    let nat = nat.filter(|n| n.other_address(rx.local).is_some());
    // Over a stream the answer can only leave on the connection it came in on: CHANGE-REQUEST,
    // RESPONSE-PORT and PADDING are not implemented there (420); OTHER-ADDRESS lets the client
    // find its mapping behaviour by connecting to the other addresses (RFC 5780 §4.3).
    let datagram_nat = nat.filter(|_| !rx.transport.is_stream());
    let unknown = unimplemented(msg, oauth, datagram_nat.is_some());
    if !unknown.is_empty() {
        return response::error(msg, out, codes::UNKNOWN_ATTRIBUTE, trailer, |w| w.add(&unknown));
    }
    let Some(nat) = datagram_nat else {
        let other = nat.and_then(|n| n.other_address(rx.local));
        return response::respond(msg, out, Class::SuccessResponse, trailer, |w| {
            mapped(msg, rx, w)?;
            match other {
                Some(other) => {
                    w.add(&OtherAddress(other))?;
                    w.add(&ResponseOrigin(rx.local))
                }
                None => Ok(()),
            }
        });
    };
    let Some((from, to, other)) = route(&nat, rx, msg) else {
        return response::error(msg, out, codes::BAD_REQUEST, trailer, |_| Ok(()));
    };
    let outcome = response::respond(msg, out, Class::SuccessResponse, trailer, |w| {
        mapped(msg, rx, w)?;
        w.add(&OtherAddress(other))?;
        w.add(&ResponseOrigin(from))?;
        padding(msg, w)
    });
    match outcome {
        Outcome::Reply(len) if from != rx.local || to != rx.source => Outcome::ReplyVia { len, from, to },
        outcome => outcome,
    }
}

/// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS for an RFC 3489 request (RFC 8489 §11).
fn mapped(msg: &Message<'_>, rx: &Received<'_>, w: &mut MessageWriter<'_>) -> Result<(), EncodeError> {
    if msg.is_rfc3489() { w.add(&MappedAddress(rx.source)) } else { w.add(&XorMappedAddress(rx.source)) }
}

/// RFC 5780 §6.1: a request's PADDING is answered with PADDING. The RFC suggests the outgoing
/// MTU; this server mirrors the request's own PADDING, so the answer never outgrows the request by
/// more than its other attributes (no amplification beyond what a plain Binding gives).
fn padding(msg: &Message<'_>, w: &mut MessageWriter<'_>) -> Result<(), EncodeError> {
    match msg.get_raw(types::PADDING) {
        Some(p) => w.add_raw(types::PADDING, p.value),
        None => Ok(()),
    }
}

/// Where an RFC 5780 answer goes: (the local address it leaves from after CHANGE-REQUEST, §7.2;
/// the client's address, at the port of RESPONSE-PORT if any, §7.5; OTHER-ADDRESS, §7.4). `None`
/// for a malformed CHANGE-REQUEST or RESPONSE-PORT, or RESPONSE-PORT with PADDING (400, §6.1).
fn route(nat: &NatDiscovery, rx: &Received<'_>, msg: &Message<'_>) -> Option<(SocketAddr, SocketAddr, SocketAddr)> {
    let change = match msg.get_raw(types::CHANGE_REQUEST) {
        Some(_) => msg.get::<ChangeRequest>().ok()?,
        None => ChangeRequest { change_ip: false, change_port: false },
    };
    if msg.get_raw(types::RESPONSE_PORT).is_some() && msg.get_raw(types::PADDING).is_some() {
        return None;
    }
    let from = nat.response_origin(rx.local, change.change_ip, change.change_port)?;
    let to = match msg.get_raw(types::RESPONSE_PORT) {
        // RFC 5780 §7.5: a 16-bit port, then 2 bytes of padding.
        Some(a) => match a.value {
            &[hi, lo, _, _] => SocketAddr::new(rx.source.ip(), u16::from_be_bytes([hi, lo])),
            _ => return None,
        },
        None => rx.source,
    };
    Some((from, to, nat.other_address(rx.local)?))
}

/// The comprehension-required attributes of a request that this server does not implement, for a
/// 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1, §7.3.1: 420 means "not understood here", whatever
/// the codec can parse):
///
/// - types the codec does not know; RESPONSE-PORT and PADDING (RFC 5780 §7.5, §7.6) are known
///   only with RFC 5780 on (`nat`);
/// - CHANGE-REQUEST (RFC 5780 §7.2) with a flag set when RFC 5780 is off: a success from the
///   address the request came to would tell an RFC 3489/5780 client that its NAT does no
///   filtering. An all-zero CHANGE-REQUEST asks for nothing and is tolerated, as coturn does;
/// - ACCESS-TOKEN (RFC 7635 §6.2) when third-party authorization (`oauth`) is off.
pub(super) fn unimplemented(msg: &Message<'_>, oauth: bool, nat: bool) -> UnknownAttributes {
    let mut unknown = msg
        .unknown_comprehension_required(|t| is_known(t) || (nat && (t == types::RESPONSE_PORT || t == types::PADDING)));
    if !nat && msg.get_raw(types::CHANGE_REQUEST).is_some_and(|a| a.value.iter().any(|&b| b != 0)) {
        unknown.push(types::CHANGE_REQUEST);
    }
    if !oauth && msg.get_raw(types::ACCESS_TOKEN).is_some() {
        unknown.push(types::ACCESS_TOKEN);
    }
    unknown
}

impl<D: super::RelayDriver> super::Server<D> {
    /// The RFC 5780 address grid of `rx`'s transport, when it is on: the UDP one (§6), or the TLS
    /// one (RFC 7443 `stun.nat-discovery`); none for plain TCP.
    pub(super) fn nat_discovery(&self, rx: &Received<'_>) -> Option<NatDiscovery> {
        let grid = match rx.transport {
            Transport::Udp => self.nat.get(),
            Transport::Tls => self.nat_tls.get(),
            Transport::Tcp => None,
        };
        grid.copied().filter(|_| self.options.rfc5780)
    }

    /// Tells the server the four UDP addresses of RFC 5780 §6 once they are bound (with
    /// [`ServerOptions::rfc5780`](super::ServerOptions::rfc5780) on, Binding answers use them from then on). Returns false if they
    /// were already set (the first grid stays).
    pub fn set_nat_discovery(&self, grid: NatDiscovery) -> bool {
        self.nat.set(grid).is_ok()
    }

    /// Tells the server the four TLS addresses of the RFC 5780 grid (RFC 7443 `stun.nat-discovery`):
    /// with [`ServerOptions::rfc5780`](super::ServerOptions::rfc5780) on, Bindings over TLS to one of them are answered with
    /// OTHER-ADDRESS and RESPONSE-ORIGIN. Returns false when RFC 5780 is off or a grid was set.
    pub fn set_nat_discovery_tls(&self, grid: NatDiscovery) -> bool {
        self.options.rfc5780 && self.nat_tls.set(grid).is_ok()
    }
}
