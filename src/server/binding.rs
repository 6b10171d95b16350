//! The Binding method, RFC 8489 §6.3 (and §11 for RFC 3489 clients).

use super::response::{self, Trailer};
use super::{Outcome, Received};
use crate::proto::stun::{Class, MappedAddress, Message, XorMappedAddress, codes, is_known};

/// Answers a Binding request: XOR-MAPPED-ADDRESS (MAPPED-ADDRESS for an RFC 3489 request), SOFTWARE if
/// configured, FINGERPRINT if the request carried one. A request with unknown comprehension-required
/// attributes gets 420 instead (RFC 8489 §6.3.1).
pub(super) fn request(trailer: Trailer<'_>, rx: &Received<'_>, msg: &Message<'_>, out: &mut [u8]) -> Outcome {
    // RFC 3489 clients know neither FINGERPRINT nor the 420 rules of RFC 8489.
    let trailer = Trailer { fingerprint: trailer.fingerprint && !msg.is_rfc3489(), ..trailer };
    let unknown = msg.unknown_comprehension_required(is_known);
    if !unknown.is_empty() {
        return response::error(msg, out, codes::UNKNOWN_ATTRIBUTE, trailer, |w| w.add(&unknown));
    }
    response::respond(msg, out, Class::SuccessResponse, trailer, |w| {
        if msg.is_rfc3489() { w.add(&MappedAddress(rx.source)) } else { w.add(&XorMappedAddress(rx.source)) }
    })
}
