//! RFC 8016 mobility: an allocation moves to a new 5-tuple (a client going from Wi-Fi to LTE)
//! when a Refresh from there carries the MOBILITY-TICKET the server issued.
//!
//! A ticket is 32 bytes: a 12-byte nonce, a 4-byte ticket id sealed with AES-128-GCM under a key
//! drawn when the server starts, and the 16-byte tag; no one else can make one that opens, nor
//! learn from one which allocation it names (RFC 8016 §3.1: opaque to the client, encrypted and
//! integrity-protected by the server). The nonce is drawn again until the ticket has no zero byte:
//! coturn's client keeps the ticket as a C string in a 33-byte buffer, so 32 bytes without a zero
//! are what lets it move. A move gives the allocation a new id, so earlier tickets no longer open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes128Gcm, KeyInit};

use super::RelayDriver;
use super::request::{Request, same_credentials};
use crate::alloc::Allocation;
use crate::proto::stun::{AttrError, MobilityTicket, codes};

const NONCE_LEN: usize = 12;
const ID_LEN: usize = 4;
/// The length of every ticket: nonce, sealed id, tag.
pub(super) const TICKET_LEN: usize = NONCE_LEN + ID_LEN + 16;
/// Nonces drawn at most for a ticket without a zero byte (one in 8.5 tickets needs a second).
const DRAWS: usize = 64;
/// Ticket ids drawn at most for one not in use (32 bits: a collision is rare).
const ID_DRAWS: usize = 16;

/// A MOBILITY-TICKET value, RFC 8016 §3.3.
pub(super) type Ticket = [u8; TICKET_LEN];

/// An allocation that moved, and its new ticket.
pub(super) type Moved<S> = (Arc<Allocation<S>>, Option<Ticket>);

/// Why a MOBILITY-TICKET does not name an allocation (RFC 8016 §3.2: 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum TicketError {
    /// Not a ticket of ours: wrong length.
    #[error("mobility ticket has the wrong length")]
    Length,
    /// It does not open under this server's key: forged, altered or from another server.
    #[error("mobility ticket does not open")]
    Forged,
    /// It opens, but its allocation is gone or has moved since (with a newer ticket).
    #[error("mobility ticket names no allocation")]
    Unknown,
}

/// The ticket key and the allocations the ticket ids name.
pub(super) struct Tickets<S> {
    cipher: Aes128Gcm,
    ids: Mutex<HashMap<u32, Weak<Allocation<S>>>>,
}

impl<S> Tickets<S> {
    /// A fresh random key, per process: tickets do not survive a restart (nor do allocations).
    pub(super) fn new() -> Self {
        let mut key = [0u8; 16];
        crate::random::fill(&mut key);
        Tickets { cipher: Aes128Gcm::new(GenericArray::from_slice(&key)), ids: Mutex::default() }
    }

    fn ids(&self) -> MutexGuard<'_, HashMap<u32, Weak<Allocation<S>>>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `allocation` a new ticket id (its old one no longer opens) and seals it.
    pub(super) fn issue(&self, allocation: &Arc<Allocation<S>>) -> Option<Ticket> {
        let id = {
            let mut ids = self.ids();
            ids.remove(&allocation.mobility_id());
            let id = (0..ID_DRAWS).map(|_| crate::random::u64() as u32).find(|id| *id != 0 && !ids.contains_key(id))?;
            ids.insert(id, Arc::downgrade(allocation));
            id
        };
        allocation.set_mobility_id(id);
        self.seal(id)
    }

    /// A ticket for `allocation`'s current id, under a fresh nonce (`None` if it has none).
    pub(super) fn reissue(&self, allocation: &Allocation<S>) -> Option<Ticket> {
        match allocation.mobility_id() {
            0 => None,
            id => self.seal(id),
        }
    }

    /// Seals `id`, drawing nonces until the ticket has no zero byte (bounded: the last draw is
    /// kept, which coturn's client alone would cut short).
    fn seal(&self, id: u32) -> Option<Ticket> {
        let mut last = None;
        for _ in 0..DRAWS {
            let mut ticket = [0u8; TICKET_LEN];
            let (nonce, rest) = ticket.split_at_mut(NONCE_LEN);
            crate::random::fill(nonce);
            let (body, tag_out) = rest.split_at_mut(ID_LEN);
            body.copy_from_slice(&id.to_be_bytes());
            let tag = self.cipher.encrypt_in_place_detached(GenericArray::from_slice(nonce), &[], body).ok()?;
            tag_out.copy_from_slice(&tag);
            if !ticket.contains(&0) {
                return Some(ticket);
            }
            last = Some(ticket);
        }
        last
    }

    /// The live allocation `ticket` names.
    pub(super) fn open(&self, ticket: &[u8]) -> Result<Arc<Allocation<S>>, TicketError> {
        let ticket: &Ticket = ticket.try_into().map_err(|_| TicketError::Length)?;
        let (nonce, rest) = ticket.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(ID_LEN);
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(body);
        self.cipher
            .decrypt_in_place_detached(GenericArray::from_slice(nonce), &[], &mut id, GenericArray::from_slice(tag))
            .map_err(|_| TicketError::Forged)?;
        let id = u32::from_be_bytes(id);
        let found = self.ids().get(&id).and_then(Weak::upgrade).ok_or(TicketError::Unknown)?;
        if found.mobility_id() != id || found.is_deleted() {
            return Err(TicketError::Unknown);
        }
        Ok(found)
    }

    /// Forgets the ids of allocations that are gone.
    pub(super) fn sweep(&self) {
        self.ids().retain(|_, a| a.strong_count() > 0);
    }
}

/// RFC 8016 §3.1: an Allocate asking for mobility carries an empty MOBILITY-TICKET: whether it
/// does, 405 Mobility Forbidden (§3.4) when mobility is off, 400 for a non-empty one.
pub(super) fn asked_in_allocate(mobility: bool, ticket: Result<MobilityTicket<'_>, AttrError>) -> Result<bool, u16> {
    match ticket {
        Err(AttrError::Missing) => Ok(false),
        Ok(_) if !mobility => Err(codes::MOBILITY_FORBIDDEN),
        Ok(MobilityTicket([])) => Ok(true),
        _ => Err(codes::BAD_REQUEST),
    }
}

/// A Refresh carrying a MOBILITY-TICKET on the allocation's own 5-tuple (RFC 8016 §3.2): 405 when
/// mobility is off; 400 for a forged ticket, 437 for another allocation's; else a fresh ticket to
/// answer with (a ticket an earlier move retired is taken: the client may not have seen the new).
pub(super) fn on_own_refresh<D: RelayDriver>(
    req: &Request<'_, '_, D>,
    allocation: &Arc<Allocation<D::Socket>>,
) -> Result<Option<Ticket>, u16> {
    let ticket = match req.msg.get::<MobilityTicket>() {
        Err(AttrError::Missing) => return Ok(None),
        Ok(t) => t.0,
        Err(_) => return Err(codes::BAD_REQUEST),
    };
    if !req.server.options.mobility {
        return Err(codes::MOBILITY_FORBIDDEN);
    }
    match req.server.tickets.open(ticket) {
        Ok(a) if !Arc::ptr_eq(&a, allocation) => Err(codes::ALLOCATION_MISMATCH),
        Ok(_) | Err(TicketError::Unknown) => Ok(req.server.tickets.reissue(allocation)),
        Err(_) => Err(codes::BAD_REQUEST),
    }
}

/// RFC 8016 §3.2: a Refresh from a 5-tuple without an allocation, carrying a MOBILITY-TICKET. The
/// ticket must open to a live allocation made with the same credentials (441 otherwise) over the
/// same transport; the allocation then moves here (its old 5-tuple gets 437 from now on; relayed
/// address, permissions and channels stay). Returns it and its new ticket, for the Refresh to
/// answer with; an error is the code to answer.
pub(super) fn relocate<D: RelayDriver>(req: &Request<'_, '_, D>) -> Result<Moved<D::Socket>, u16> {
    let server = req.server;
    if !server.options.mobility {
        return Err(codes::MOBILITY_FORBIDDEN);
    }
    let allocation = match req.msg.get::<MobilityTicket>().map(|t| server.tickets.open(t.0)) {
        Ok(Ok(a)) => a,
        _ => return Err(codes::BAD_REQUEST),
    };
    if !allocation.is_live(req.now) {
        return Err(codes::ALLOCATION_MISMATCH);
    }
    if !same_credentials(&allocation, req.auth) {
        return Err(codes::WRONG_CREDENTIALS);
    }
    if allocation.info().five_tuple.transport != req.rx.transport {
        return Err(codes::BAD_REQUEST);
    }
    if server.table.rekey(&allocation, req.rx.five_tuple()).is_err() {
        return Err(codes::ALLOCATION_MISMATCH);
    }
    server.driver.moved(&allocation);
    server.stats.allocation_moved();
    let ticket = server.tickets.issue(&allocation);
    Ok((allocation, ticket))
}
