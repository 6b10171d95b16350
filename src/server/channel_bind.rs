//! ChannelBind, RFC 8656 §12.2: bind a channel number to a peer (and refresh its permission).

use super::request::Request;
use super::{Outcome, PeerRequest, RelayDriver};
use crate::alloc::{BindingLimits, ChannelBindError};
use crate::proto::channel_data::is_channel_number;
use crate::proto::stun::{ChannelNumber, Class, XorPeerAddress, codes};

pub(super) fn handle<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let Some(allocation) = &req.allocation else {
        return req.error(out, codes::ALLOCATION_MISMATCH);
    };
    // RFC 6062: a TCP allocation has no channels (peer data flows on its own connections).
    if allocation.is_tcp_relay() {
        return req.error(out, codes::BAD_REQUEST);
    }
    let (Ok(ChannelNumber(number)), Ok(XorPeerAddress(peer))) =
        (req.msg.get::<ChannelNumber>(), req.msg.get::<XorPeerAddress>())
    else {
        return req.error(out, codes::BAD_REQUEST);
    };
    // RFC 8656 §12: 0x4000–0x4FFF; RFC 5766 allowed up to 0x7FFF and old clients use it.
    if !is_channel_number(number, req.server.options.strict_rfc8656) {
        return req.error(out, codes::BAD_REQUEST);
    }
    // RFC 8656 §12.2: a peer of a family the allocation has no relayed address of gets 443.
    if !allocation.has_family_of(peer.ip(), req.now) {
        return req.error(out, codes::PEER_ADDRESS_FAMILY_MISMATCH);
    }
    if !req.server.peer_allowed(allocation, peer, PeerRequest::ChannelBind) {
        return req.peer_denied(allocation, peer.ip(), out);
    }
    let o = &req.server.options;
    let channel_expires = req.now + u64::from(o.channel_lifetime) * 1000;
    let permission_expires = req.now + u64::from(o.permission_lifetime) * 1000;
    let limits = BindingLimits { permissions: o.max_permissions, channels: o.max_channels };
    // RFC 8656 §12.2: a channel bound to another peer, or a peer bound to another channel: 400; no
    // room for a new channel or its permission: 508 (the server may refuse for lack of resources).
    match allocation.bind_channel(number, peer, channel_expires, permission_expires, req.now, limits) {
        Ok(()) => {}
        Err(ChannelBindError::Capacity) => return req.error(out, codes::INSUFFICIENT_CAPACITY),
        Err(_) => return req.error(out, codes::BAD_REQUEST),
    }
    req.server.emit(allocation, |session| super::Event::Channel { session, number, peer });
    super::response::respond(req.msg, out, Class::SuccessResponse, req.trailer, |_| Ok(()))
}
