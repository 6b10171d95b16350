//! Fleet-wide admission of allocations (issue #16): with fleet leases on, an Allocate that passed
//! every local check (credentials, attributes, drain, the node's own quota) is held here while
//! the driver asks the fleet's ledger for a lease, then run again with the verdict
//! ([`Server::resume_allocate`]). The core stays sans-IO: it never waits; the driver does the
//! asking (an async call to Redis, say) and comes back.
//!
//! A held Allocate answers nothing: a retransmission of it while the verdict is out is dropped
//! (the first one's answer will come), one arriving after the allocation exists is answered from
//! its cache (RFC 8656 §7.2). Held requests are bounded ([`MAX_PENDING`]: beyond, 508) and expire
//! after [`PENDING_MS`] (the driver never came back).
//!
//! Leases are renewed and released by whoever consumes the lifecycle events (`Refreshed` and
//! `Deleted` carry the allocation id, which is the lease id, and the quota user).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Outcome, Received, RelayDriver, Server};
use crate::alloc::{FiveTuple, Millis, Transport};
use crate::policy::quota::QuotaLimits;
use crate::proto::stun::codes;

/// How many Allocates may wait for the ledger at once; beyond, 508 (RFC 8656 §7.2).
pub const MAX_PENDING: usize = 4096;

/// How long an Allocate waits for its verdict before it is forgotten (the client retransmits).
pub const PENDING_MS: Millis = 10_000;

/// What the driver asks the ledger for one held Allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRequest {
    /// The lease id: the id the allocation will have ([`crate::alloc::AllocationId`]).
    pub id: u64,
    /// The user the quota counts: a REST username's user part, a static user, a token identity.
    pub user: Arc<str>,
    /// The lifetime the Allocate will be granted, seconds (the lease expires with it unless renewed).
    pub lifetime_secs: u32,
    /// `user-quota` and `total-quota` in force (0: no limit), fleet-wide.
    pub limits: QuotaLimits,
    /// The client's 5-tuple (for logs).
    pub five_tuple: FiveTuple,
}

/// The ledger's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseVerdict {
    /// A lease was taken: make the allocation.
    Granted,
    /// The user has `user-quota` leases across the fleet: 486.
    UserQuota,
    /// The fleet has `total-quota` leases: 486 (RFC 8656 §7.2 gives 486 for a quota, 508 for room).
    TotalQuota,
    /// The ledger could not be asked (unreachable, timed out): the node decides alone, under its
    /// own quota, so that a ledger outage degrades to per-node quotas instead of refusing service
    /// — unless it fails closed ([`ServerOptions::lease_fail_closed`](super::ServerOptions): 508).
    Unavailable,
}

/// A fleet's allocation ledger, implemented over the fleet's state backend. `admit` must take the
/// lease atomically (check the limits and add in one step); `release` gives back a lease whose
/// allocation was not made after all.
pub trait AllocationLedger: Send + Sync + 'static {
    /// Takes a lease for `request` if the fleet-wide limits allow it.
    fn admit(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = LeaseVerdict> + Send + 'static>>;
    /// Gives back the lease of `request` (its Allocate failed after the lease was granted).
    fn release(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// What a held request waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// An Allocate waiting for its fleet lease: ask the ledger, then [`Server::resume_allocate`].
    Lease(LeaseRequest),
    /// A request whose user the embedder's credential hook is looking up
    /// ([`crate::auth::hook`]): run the hook's `fetch`, then [`Server::resume`].
    Credentials {
        /// The USERNAME to look up.
        username: String,
        /// The client.
        client: std::net::SocketAddr,
        /// The server's Unix time when it was held.
        unix_now: u64,
    },
}

/// One held request: what it waits for, its bytes and where it came from, to run it again.
#[derive(Debug)]
struct Held {
    hold: Hold,
    five_tuple: FiveTuple,
    transport: Transport,
    source: std::net::SocketAddr,
    local: std::net::SocketAddr,
    data: Vec<u8>,
    since: Millis,
}

/// The Allocates waiting for a verdict, by lease id.
#[derive(Debug, Default)]
pub(super) struct Pending {
    held: Mutex<HashMap<u64, Held>>,
}

/// How a request is being run: fresh, or again with the ledger's verdict for its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lease {
    /// A fresh request: with leases on, an Allocate is held.
    Ask,
    /// Run again after its user was looked up by the credential hook: as [`Lease::Ask`], but a
    /// hook still without an answer means an unknown user (401), not another hold.
    Looked,
    /// Run again with the verdict for lease `id`.
    Decided { id: u64, verdict: LeaseVerdict },
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a request under `id`: `Outcome::Pending(id)`, `Silent` when the same 5-tuple is
    /// already waiting (a retransmission), or `None` when too many wait (the caller answers 508).
    pub(super) fn hold(&self, id: u64, hold: Hold, rx: &Received<'_>, now: Millis) -> Option<Outcome> {
        let mut held = self.lock();
        let five_tuple = rx.five_tuple();
        if held.values().any(|h| h.five_tuple == five_tuple) {
            return Some(Outcome::Silent);
        }
        if held.len() >= MAX_PENDING {
            return None;
        }
        let entry = Held {
            hold,
            five_tuple,
            transport: rx.transport,
            source: rx.source,
            local: rx.local,
            data: rx.data.to_vec(),
            since: now,
        };
        held.insert(id, entry);
        Some(Outcome::Pending(id))
    }

    /// What held request `id` waits for.
    pub(super) fn hold_of(&self, id: u64) -> Option<Hold> {
        self.lock().get(&id).map(|h| h.hold.clone())
    }

    fn take(&self, id: u64) -> Option<Held> {
        self.lock().remove(&id)
    }

    /// Forgets the Allocates held longer than [`PENDING_MS`].
    pub(super) fn sweep(&self, now: Millis) {
        self.lock().retain(|_, h| now.saturating_sub(h.since) < PENDING_MS);
    }

    /// How many wait.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }
}

/// What [`Server::resume_allocate`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The answer to send to `five_tuple`'s client, like [`Server::handle`]'s.
    pub outcome: Outcome,
    /// Where the answer goes.
    pub five_tuple: FiveTuple,
    /// Whether the allocation was made under the lease; false after a granted lease means the
    /// lease must be given back ([`AllocationLedger::release`]).
    pub allocated: bool,
}

impl<D: RelayDriver> Server<D> {
    /// Turns fleet leases on: from now on each new Allocate is held for the driver to ask its
    /// ledger ([`Outcome::Pending`]) before it is made.
    pub fn set_fleet_leases(&self, on: bool) {
        self.leases_on.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether fleet leases are on.
    pub fn fleet_leases(&self) -> bool {
        self.leases_on.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The lease the driver should ask for after [`Outcome::Pending`]`(id)`; `None` when it is no
    /// longer held, or waits for something else.
    pub fn lease_request(&self, id: u64) -> Option<LeaseRequest> {
        match self.pending.hold_of(id)? {
            Hold::Lease(request) => Some(request),
            Hold::Credentials { .. } => None,
        }
    }

    /// What the request held under [`Outcome::Pending`]`(id)` waits for; `None` when it is no
    /// longer held.
    pub fn held(&self, id: u64) -> Option<Hold> {
        self.pending.hold_of(id)
    }

    /// Runs held request `id` again (its credentials looked up meanwhile) and writes its answer
    /// to `out`, like [`Server::handle`]: it may be held again ([`Outcome::Pending`], an Allocate
    /// waiting for its lease). `None` when `id` is not held.
    pub fn resume(&self, now: Instant, id: u64, out: &mut [u8]) -> Option<Resumed> {
        let held = self.pending.take(id)?;
        let rx = Received { transport: held.transport, source: held.source, local: held.local, data: &held.data };
        let outcome = self.dispatch_with(now, &rx, super::Ecn::NotEct, out, Lease::Looked);
        self.stats.record(&outcome);
        let five_tuple = rx.five_tuple();
        let allocated = self.table.get(&five_tuple).is_some();
        Some(Resumed { outcome, five_tuple, allocated })
    }

    /// Holds a request whose user the credential hook is looking up (see [`Hold::Credentials`]).
    pub(super) fn hold_for_credentials(
        &self,
        rx: &Received<'_>,
        username: &str,
        now: Millis,
        unix_now: u64,
    ) -> Outcome {
        let hold = Hold::Credentials { username: username.to_owned(), client: rx.source, unix_now };
        self.pending
            .hold(crate::random::u64(), hold, rx, now)
            .unwrap_or(Outcome::Dropped(super::DropReason::RateLimited))
    }

    /// How many Allocates wait for a verdict.
    pub fn leases_pending(&self) -> usize {
        self.pending.len()
    }

    /// Runs held Allocate `id` again with the ledger's `verdict` and writes its answer to `out`:
    /// the allocation (lease id = allocation id) when granted or when the ledger was unavailable,
    /// 486 when a fleet-wide quota is reached. `None` when `id` is not held (expired, or resumed
    /// already).
    pub fn resume_allocate(&self, now: Instant, id: u64, verdict: LeaseVerdict, out: &mut [u8]) -> Option<Resumed> {
        if !matches!(self.pending.hold_of(id)?, Hold::Lease(_)) {
            return self.resume(now, id, out);
        }
        let held = self.pending.take(id)?;
        let rx = Received { transport: held.transport, source: held.source, local: held.local, data: &held.data };
        let outcome = self.dispatch_with(now, &rx, super::Ecn::NotEct, out, Lease::Decided { id, verdict });
        self.stats.record(&outcome);
        let five_tuple = rx.five_tuple();
        let allocated = self.table.get(&five_tuple).is_some_and(|a| a.id().0 == id);
        Some(Resumed { outcome, five_tuple, allocated })
    }
}

/// The 486 of a fleet-wide quota (RFC 8656 §7.2), the 508 of an unreachable ledger when the node
/// fails closed, or `None` to go on.
pub(super) fn refused(verdict: LeaseVerdict, fail_closed: bool) -> Option<u16> {
    match verdict {
        LeaseVerdict::UserQuota | LeaseVerdict::TotalQuota => Some(codes::ALLOCATION_QUOTA_REACHED),
        LeaseVerdict::Unavailable if fail_closed => Some(codes::INSUFFICIENT_CAPACITY),
        LeaseVerdict::Granted | LeaseVerdict::Unavailable => None,
    }
}
