//! CreatePermission, RFC 8656 §10.2: install or refresh permissions for one or more peer IPs.

use std::net::IpAddr;

use super::request::Request;
use super::{Outcome, PeerRequest, RelayDriver};
use crate::alloc::BindingLimits;
use crate::proto::stun::{Class, XorPeerAddress, codes};

/// Most XOR-PEER-ADDRESS attributes taken in one request (the codec caps a message at 64
/// attributes anyway).
const MAX_PEERS: usize = 32;

pub(super) fn handle<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let Some(allocation) = &req.allocation else {
        return req.error(out, codes::ALLOCATION_MISMATCH);
    };
    let mut ips = [IpAddr::from([0u8; 4]); MAX_PEERS];
    let mut n = 0usize;
    for peer in req.msg.get_all::<XorPeerAddress>() {
        let Ok(XorPeerAddress(peer)) = peer else {
            return req.error(out, codes::BAD_REQUEST);
        };
        // RFC 8656 §10.2: a peer of a family the allocation has no relayed address of gets 443.
        if !allocation.has_family_of(peer.ip(), req.now) {
            return req.error(out, codes::PEER_ADDRESS_FAMILY_MISMATCH);
        }
        // RFC 8656 §9: a permission has no port, so port rules wait for ChannelBind and each send;
        // then the embedder's peer hook, which can only refuse more.
        if !req.server.peer_allowed(allocation, peer, PeerRequest::CreatePermission) {
            return req.peer_denied(allocation, peer.ip(), out);
        }
        let Some(slot) = ips.get_mut(n) else {
            return req.error(out, codes::BAD_REQUEST);
        };
        *slot = peer.ip();
        n += 1;
    }
    let Some(ips) = ips.get(..n).filter(|s| !s.is_empty()) else {
        return req.error(out, codes::BAD_REQUEST);
    };
    let o = &req.server.options;
    let expires = req.now + u64::from(o.permission_lifetime) * 1000;
    let limits = BindingLimits { permissions: o.max_permissions, channels: o.max_channels };
    // RFC 8656 §10.2: the server may refuse for lack of resources (508); refreshes always fit.
    if allocation.add_permissions(ips, expires, req.now, limits).is_err() {
        return req.error(out, codes::INSUFFICIENT_CAPACITY);
    }
    for &peer in ips {
        req.server.emit(allocation, |session| super::Event::Permission { session, peer });
    }
    super::response::respond(req.msg, out, Class::SuccessResponse, req.trailer, |_| Ok(()))
}
