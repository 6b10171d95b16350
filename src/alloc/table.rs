//! The allocation table: client 5-tuple → allocation, read without locks.
//!
//! Backed by `papaya` (a lock-free concurrent map whose reads never block) with a seeded
//! `foldhash` hasher, since clients choose the keys. Nothing outside this file names the map crate,
//! so the winner of `benches/table.rs` can be swapped in here alone.
//!
//! The table also owns the allocation quota's [`QuotaCounter`]: an Allocate acquires a slot with
//! [`Table::acquire`] before it binds a relay socket, and [`Table::remove`] gives it back, so that
//! every way an allocation leaves the table (Refresh 0, expiry, shutdown, revocation) releases it.

use std::sync::Arc;

use super::{Allocation, FiveTuple, Millis};
use crate::policy::quota::{MemoryQuota, QuotaCounter, QuotaExceeded, QuotaLimits};

type Map<S> = papaya::HashMap<FiveTuple, Arc<Allocation<S>>, foldhash::quality::RandomState>;

/// Why an allocation could not be inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InsertError {
    /// The 5-tuple already has an allocation (RFC 8656 §7.2: 437).
    #[error("5-tuple already has an allocation")]
    Exists,
}

/// Every allocation of a server.
pub struct Table<S> {
    map: Map<S>,
    /// Allocations per user and in total, for the quotas (control path only).
    quota: Arc<dyn QuotaCounter>,
    /// Serializes [`Table::rekey`] (RFC 8016 moves are rare and control-path only).
    moves: std::sync::Mutex<()>,
}

impl<S> std::fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

impl<S> Default for Table<S> {
    fn default() -> Self {
        Table::with_quota(Arc::new(MemoryQuota::default()))
    }
}

impl<S> Table<S> {
    /// An empty table counting quotas with `quota` (the default is a [`MemoryQuota`]).
    pub fn with_quota(quota: Arc<dyn QuotaCounter>) -> Self {
        Table {
            // papaya frees removed entries in batches (32 per thread by default); a removed
            // allocation would keep its relay socket and port until then. Batches of one free it as
            // soon as no reader holds a guard. Removal is control-path only, so this costs nothing
            // on the data path.
            map: papaya::HashMap::builder()
                .collector(seize::Collector::new().batch_size(1))
                .hasher(foldhash::quality::RandomState::default())
                .build(),
            quota,
            moves: std::sync::Mutex::new(()),
        }
    }
}

impl<S: Send + Sync + 'static> Table<S> {
    /// Looks up an allocation and runs `f` on it without cloning the `Arc` (the data path).
    #[inline]
    pub fn with<R>(&self, key: &FiveTuple, f: impl FnOnce(&Arc<Allocation<S>>) -> R) -> Option<R> {
        let guard = self.map.guard();
        self.map.get(key, &guard).map(f)
    }

    /// Looks up an allocation and clones its `Arc` (the control path).
    pub fn get(&self, key: &FiveTuple) -> Option<Arc<Allocation<S>>> {
        self.with(key, Arc::clone)
    }

    /// Number of allocations.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Allocations held by `user` (see [`Allocation::quota_user`]).
    pub fn user_count(&self, user: &str) -> u32 {
        self.quota.user_count(user)
    }

    /// The quota counter.
    pub fn quota(&self) -> &dyn QuotaCounter {
        &*self.quota
    }

    /// Takes a quota slot for a new allocation of `user` (RFC 8656 §7.2: 486 or 508 when full). The
    /// slot belongs to the allocation [`insert`](Self::insert)ed next and is given back when it is
    /// removed; if no allocation is inserted, give it back with [`release`](Self::release).
    pub fn acquire(&self, user: &str, limits: QuotaLimits) -> Result<(), QuotaExceeded> {
        self.quota.try_acquire(user, limits)
    }

    /// Gives back a slot that [`acquire`](Self::acquire) took for an allocation never inserted.
    pub fn release(&self, user: &str) {
        self.quota.release(user);
    }

    /// Inserts a new allocation unless its 5-tuple has one. Its quota slot was taken with
    /// [`acquire`](Self::acquire); on error the caller still holds it.
    pub fn insert(&self, alloc: Arc<Allocation<S>>) -> Result<(), InsertError> {
        let key = alloc.info().five_tuple;
        let guard = self.map.guard();
        match self.map.try_insert(key, alloc, &guard) {
            Ok(_) => Ok(()),
            Err(_) => Err(InsertError::Exists),
        }
    }

    /// Moves `alloc` to the 5-tuple `to` (RFC 8016 §3.2 mobility): inserted under `to` first, so it
    /// is never missing from the table, then its 5-tuple changed, then its old key removed (only if
    /// it still names `alloc`). Its quota slot, relayed address, permissions and channels stay.
    /// The transport stays (the caller refuses a move across transports). Returns the old 5-tuple;
    /// [`InsertError::Exists`] when `to` has an allocation (437).
    pub fn rekey(&self, alloc: &Arc<Allocation<S>>, to: FiveTuple) -> Result<FiveTuple, InsertError> {
        let _one_move_at_a_time = self.moves.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let from = alloc.info().five_tuple;
        let guard = self.map.guard();
        if self.map.try_insert(to, Arc::clone(alloc), &guard).is_err() {
            return Err(InsertError::Exists);
        }
        alloc.set_five_tuple(to);
        let _ = self.map.remove_if(&from, |_, a| Arc::ptr_eq(a, alloc), &guard);
        Ok(from)
    }

    /// Removes an allocation (Refresh 0 or expiry), marks it deleted and returns it.
    pub fn remove(&self, key: &FiveTuple) -> Option<Arc<Allocation<S>>> {
        let guard = self.map.guard();
        let removed = self.map.remove(key, &guard).cloned();
        if let Some(a) = &removed {
            a.mark_deleted();
            self.quota.release(a.quota_user());
        }
        removed
    }

    /// Removes every allocation expired at `now` and sweeps the others' permissions and channels.
    /// Returns the removed ones so the driver can stop their relay sockets. A dual allocation one
    /// of whose relayed addresses expired alone (RFC 8656 §8) stays; `family_ended` gets that
    /// relay's socket, once, to stop it.
    pub fn sweep(&self, now: Millis, mut family_ended: impl FnMut(&Allocation<S>, &S)) -> Vec<Arc<Allocation<S>>> {
        let expired: Vec<FiveTuple> = {
            let guard = self.map.guard();
            self.map
                .iter(&guard)
                .filter_map(|(k, a)| {
                    if a.is_live(now) {
                        if let Some(socket) = a.expire_family(now) {
                            family_ended(a, socket);
                        }
                        a.sweep(now);
                        None
                    } else {
                        Some(*k)
                    }
                })
                .collect()
        };
        expired.iter().filter_map(|k| self.remove(k)).collect()
    }

    /// Every allocation (for admin views and shutdown).
    pub fn all(&self) -> Vec<Arc<Allocation<S>>> {
        let guard = self.map.guard();
        self.map.iter(&guard).map(|(_, a)| Arc::clone(a)).collect()
    }
}
