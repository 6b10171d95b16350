//! Refresh, RFC 8656 §8.2: extend an allocation's lifetime, or delete it with LIFETIME 0 (with
//! REQUESTED-ADDRESS-FAMILY, one relayed address of a dual allocation alone).

use std::sync::Arc;

use super::mobility::Ticket;
use super::request::Request;
use super::{Outcome, RelayDriver};
use crate::alloc::Allocation;
use crate::proto::stun::{AddressFamily, AttrError, Class, Lifetime, MobilityTicket, RequestedAddressFamily, codes};

pub(super) fn handle<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let Some(allocation) = &req.allocation else {
        // RFC 8016 §3.2: a MOBILITY-TICKET from a new 5-tuple moves an allocation here.
        if req.msg.has::<MobilityTicket>() {
            return match super::mobility::relocate(req) {
                Ok((allocation, ticket)) => moved(req, &allocation, ticket, out),
                Err(code) => req.error(out, code),
            };
        }
        // Also the answer to a retransmitted Refresh(0): RFC 8656 §8.3 has the client take 437
        // as success then.
        return req.error(out, codes::ALLOCATION_MISMATCH);
    };
    match super::mobility::on_own_refresh(req, allocation) {
        Ok(ticket) => refresh(req, allocation, ticket, out),
        Err(code) => req.error(out, code),
    }
}

/// The Refresh that moved `allocation` here (RFC 8016 §3.2), answered with its new ticket and
/// remembered: a retransmission now arrives on the allocation's 5-tuple and gets the same answer.
fn moved<D: RelayDriver>(
    req: &Request<'_, '_, D>,
    allocation: &Arc<Allocation<D::Socket>>,
    ticket: Option<Ticket>,
    out: &mut [u8],
) -> Outcome {
    let outcome = refresh(req, allocation, ticket, out);
    if let Outcome::Reply(n) = outcome
        && let Some(bytes) = out.get(..n)
    {
        allocation.cache_response(crate::alloc::RequestKey::of(req.msg), bytes);
    }
    outcome
}

/// Refreshes (or deletes) `allocation`, answering with `ticket` too when there is one (RFC 8016
/// §3.2).
fn refresh<D: RelayDriver>(
    req: &Request<'_, '_, D>,
    allocation: &Arc<Allocation<D::Socket>>,
    ticket: Option<Ticket>,
    out: &mut [u8],
) -> Outcome {
    // RFC 8656 §8.2: REQUESTED-ADDRESS-FAMILY naming a family the allocation has no relayed
    // address of is 443. With LIFETIME 0 it deletes that family's relayed address of a dual
    // allocation alone; otherwise a Refresh covers both. A malformed one is 400, not ignored: a
    // LIFETIME 0 meant for one family must not delete the whole allocation.
    let family = match req.msg.get::<RequestedAddressFamily>() {
        Ok(RequestedAddressFamily(f)) => {
            let probe = match f {
                AddressFamily::V4 => std::net::IpAddr::from([0u8; 4]),
                AddressFamily::V6 => std::net::IpAddr::from([0u16; 8]),
            };
            if !allocation.has_family_of(probe, req.now) {
                return req.error(out, codes::PEER_ADDRESS_FAMILY_MISMATCH);
            }
            Some(probe)
        }
        Err(AttrError::Missing) => None,
        Err(_) => return req.error(out, codes::BAD_REQUEST),
    };
    // RFC 8656 §8.2: a non-zero lifetime is computed as an Allocate's (§7.2): between the default
    // and the maximum, and never past the token's expiry (RFC 7635 §6.2). Zero deletes.
    let lifetime = match req.msg.get::<Lifetime>() {
        Ok(Lifetime(0)) => 0,
        Ok(Lifetime(l)) => super::allocate::granted_lifetime(req.server, Some(l)),
        Err(AttrError::Missing) => super::allocate::granted_lifetime(req.server, None),
        Err(_) => return req.error(out, codes::BAD_REQUEST),
    };
    let lifetime = super::allocate::token_capped(req, lifetime);
    if lifetime == 0
        && let Some(socket) = family.and_then(|f| allocation.delete_relay_of_family(f, req.now))
    {
        req.server.driver.stop_relay(allocation, socket);
    } else if lifetime == 0 {
        if let Some(a) = req.server.table.remove(&allocation.info().five_tuple) {
            req.server.end(&a, super::EndReason::Client, req.now);
        }
    } else {
        // RFC 8656 §8.2: with REQUESTED-ADDRESS-FAMILY, that family's relayed address alone.
        let at = req.now + u64::from(lifetime) * 1000;
        match family {
            Some(f) => allocation.set_family_expires(f, at, req.now),
            None => allocation.set_expires(at, req.now),
        }
        // RFC 7635 §6.2: a Refresh with a new ACCESS-TOKEN switches the kid and mac_key.
        if let Some(session) = &req.auth.oauth {
            allocation.set_oauth(std::sync::Arc::clone(session));
        }
        req.server.emit(allocation, |session| super::Event::Refreshed {
            session,
            lifetime_secs: lifetime,
            at_ms: req.server.unix_ms(req.now),
        });
    }
    super::response::respond(req.msg, out, Class::SuccessResponse, req.trailer, |w| {
        w.add(&Lifetime(lifetime))?;
        match &ticket {
            Some(t) => w.add(&MobilityTicket(t)),
            None => Ok(()),
        }
    })
}
