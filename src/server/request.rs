//! The request a method handler answers (`allocate.rs`, `refresh.rs`, `create_permission.rs`,
//! `channel_bind.rs`, `connect.rs`): built by `turn.rs` once the request is authenticated.

use std::sync::Arc;

use super::response::{self, Trailer};
use super::{Outcome, Received, RelayDriver, Server};
use crate::alloc::{Allocation, Millis};
use crate::auth::Authenticated;
use crate::proto::stun::Message;

/// Everything a method handler needs about the request it answers.
pub(super) struct Request<'s, 'm, D: RelayDriver> {
    pub server: &'s Server<D>,
    pub now: Millis,
    pub rx: &'s Received<'m>,
    pub msg: &'s Message<'m>,
    /// Signs with the request's key.
    pub trailer: Trailer<'s>,
    pub auth: &'s Authenticated<'m>,
    /// The allocation of this 5-tuple, if any.
    pub allocation: Option<Arc<Allocation<D::Socket>>>,
    /// A fresh request, or an Allocate run again with its fleet lease's verdict.
    pub lease: super::lease::Lease,
}

impl<D: RelayDriver> Request<'_, '_, D> {
    /// An error response signed with the request's key.
    pub(super) fn error(&self, out: &mut [u8], code: u16) -> Outcome {
        self.server.stats.error_sent(code);
        response::error(self.msg, out, code, self.trailer, |_| Ok(()))
    }

    /// 403 for a peer the policy refuses (RFC 8656 §9.1, §21.4), counted and reported.
    pub(super) fn peer_denied(
        &self,
        allocation: &Allocation<D::Socket>,
        peer: std::net::IpAddr,
        out: &mut [u8],
    ) -> Outcome {
        self.server.stats.peer_denied();
        self.server.emit(allocation, |session| super::Event::PeerDenied { session, peer });
        self.error(out, crate::proto::stun::codes::FORBIDDEN)
    }
}

/// RFC 8656 §6 (and §7.2 for Allocate): requests on an allocation must use its credentials. On an
/// allocation made with a token, that is a valid token or the session key of its latest one (RFC
/// 7635 §6.2); a long-term credential there, or a token on a long-term one, is 441.
pub(super) fn same_credentials<S>(allocation: &Allocation<S>, auth: &Authenticated<'_>) -> bool {
    match (allocation.is_oauth(), auth.oauth.is_some()) {
        (true, true) => true,
        (false, false) => *allocation.info().username == *auth.username && allocation.key_bytes() == &auth.key_bytes,
        _ => false,
    }
}
