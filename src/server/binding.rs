//! The Binding method, RFC 8489 §6.3 (and §11 for RFC 3489 clients).

use super::response::{self, Trailer};
use super::{Outcome, Received};
use crate::proto::stun::{Class, MappedAddress, Message, UnknownAttributes, XorMappedAddress, codes, is_known, types};

/// Answers a Binding request: XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for an RFC 3489 request), SOFTWARE if
/// configured, FINGERPRINT if the request carried one. A request with comprehension-required
/// attributes this server does not implement gets 420 instead (RFC 8489 §6.3.1, see
/// [`unimplemented`]); `oauth`: whether RFC 7635 is on.
pub(super) fn request(
    trailer: Trailer<'_>,
    rx: &Received<'_>,
    msg: &Message<'_>,
    oauth: bool,
    out: &mut [u8],
) -> Outcome {
    // RFC 3489 clients know neither FINGERPRINT nor the 420 rules of RFC 8489.
    let trailer = Trailer { fingerprint: trailer.fingerprint && !msg.is_rfc3489(), ..trailer };
    let unknown = unimplemented(msg, oauth);
    if !unknown.is_empty() {
        return response::error(msg, out, codes::UNKNOWN_ATTRIBUTE, trailer, |w| w.add(&unknown));
    }
    response::respond(msg, out, Class::SuccessResponse, trailer, |w| {
        if msg.is_rfc3489() { w.add(&MappedAddress(rx.source)) } else { w.add(&XorMappedAddress(rx.source)) }
    })
}

/// The comprehension-required attributes of a request that this server does not implement, for a
/// 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1, §7.3.1: 420 means "not understood here", whatever
/// the codec can parse):
///
/// - types the codec does not know;
/// - CHANGE-REQUEST (RFC 5780 §7.2) with a flag set: RFC 5780 is not implemented, and a success
///   from the address the request came to would tell an RFC 3489/5780 client that its NAT does no
///   filtering. An all-zero CHANGE-REQUEST asks for nothing and is tolerated, as coturn does;
/// - ACCESS-TOKEN (RFC 7635 §6.2) when third-party authorization (`oauth`) is off.
pub(super) fn unimplemented(msg: &Message<'_>, oauth: bool) -> UnknownAttributes {
    let mut unknown = msg.unknown_comprehension_required(is_known);
    if msg.get_raw(types::CHANGE_REQUEST).is_some_and(|a| a.value.iter().any(|&b| b != 0)) {
        unknown.push(types::CHANGE_REQUEST);
    }
    if !oauth && msg.get_raw(types::ACCESS_TOKEN).is_some() {
        unknown.push(types::ACCESS_TOKEN);
    }
    unknown
}
