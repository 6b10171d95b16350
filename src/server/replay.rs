//! Replays of a signed Allocate. A nonce stays valid for `nonce-lifetime` (an hour by default), so
//! the bytes of an Allocate someone saw — or sent earlier themselves — authenticate again until
//! then: once the allocation they made is gone (its response cache with it), they would make a new
//! one. RFC 8489 §6.3.1 wants a retransmission answered, not acted on again; while the allocation
//! lives its response cache does that, and after it, this table: a fixed number of slots keyed by
//! a hash of the transaction ID, username, nonce and source of every Allocate that succeeded, each
//! until that request's nonce expires. A replay is answered 438 with a fresh nonce (the client retries as a
//! new transaction). Nothing is kept before authentication; memory is fixed ([`SLOTS`] × 12 bytes);
//! a slot overwritten by a colliding Allocate forgets its entry early (the cost of the bound).

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use std::net::SocketAddr;

use crate::proto::stun::{Message, Nonce, Username};

/// Slots of the table: 65,536 Allocates within a nonce lifetime are remembered (768 KiB).
pub const SLOTS: usize = 1 << 16;

/// Allocates that succeeded, until their nonce expires.
pub(super) struct ReplayGuard {
    hasher: foldhash::quality::RandomState,
    /// Per slot: the request's hash (never 0), and until when (Unix seconds) it counts.
    tags: Box<[AtomicU64]>,
    until: Box<[AtomicU32]>,
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard").field("slots", &self.tags.len()).finish()
    }
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard {
            hasher: foldhash::quality::RandomState::default(),
            tags: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            until: (0..SLOTS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl ReplayGuard {
    /// The request's transaction ID, USERNAME and NONCE and its source: a replay repeats them all
    /// (the nonce only verifies from the address it was given to), other clients' requests do not.
    fn key(&self, msg: &Message<'_>, source: SocketAddr) -> (usize, u64) {
        let user = msg.get::<Username>().map_or("", |u| u.0);
        let nonce = msg.get::<Nonce>().map_or("", |n| n.0);
        let h = self.hasher.hash_one((msg.transaction_id().0, user, nonce, source)) | 1;
        ((h >> 32) as usize % SLOTS, h)
    }

    /// Whether `msg` from `source` repeats an Allocate that succeeded and whose nonce is still
    /// valid at `unix`.
    pub(super) fn is_replay(&self, msg: &Message<'_>, source: SocketAddr, unix: u64) -> bool {
        let (i, tag) = self.key(msg, source);
        match (self.tags.get(i), self.until.get(i)) {
            (Some(t), Some(u)) => t.load(Relaxed) == tag && u64::from(u.load(Relaxed)) > unix,
            _ => false,
        }
    }

    /// Remembers a successful Allocate until `until` (Unix seconds: when its nonce expires).
    pub(super) fn record(&self, msg: &Message<'_>, source: SocketAddr, until: u64) {
        let (i, tag) = self.key(msg, source);
        if let (Some(t), Some(u)) = (self.tags.get(i), self.until.get(i)) {
            u.store(u32::try_from(until).unwrap_or(u32::MAX), Relaxed);
            t.store(tag, Relaxed);
        }
    }
}
