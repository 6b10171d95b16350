//! The allocation table: client 5-tuple → allocation, read without locks.
//!
//! Backed by `papaya` (a lock-free concurrent map whose reads never block) with a seeded
//! `foldhash` hasher, since clients choose the keys. Nothing outside this file names the map crate,
//! so the winner of `benches/table.rs` can be swapped in here alone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Allocation, FiveTuple, Millis};

type Map<S> = papaya::HashMap<FiveTuple, Arc<Allocation<S>>, foldhash::quality::RandomState>;

/// Why an allocation could not be inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The 5-tuple already has an allocation (RFC 8656 §7.2: 437).
    #[error("5-tuple already has an allocation")]
    Exists,
}

/// Every allocation of a server.
pub struct Table<S> {
    map: Map<S>,
    /// Allocations per username, for the per-user quota (control path only).
    per_user: Mutex<HashMap<Box<str>, u32>>,
}

impl<S> std::fmt::Debug for Table<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").finish_non_exhaustive()
    }
}

impl<S> Default for Table<S> {
    fn default() -> Self {
        Table {
            // papaya frees removed entries in batches (32 per thread by default); a removed
            // allocation would keep its relay socket and port until then. Batches of one free it as
            // soon as no reader holds a guard. Removal is control-path only, so this costs nothing
            // on the data path.
            map: papaya::HashMap::builder()
                .collector(seize::Collector::new().batch_size(1))
                .hasher(foldhash::quality::RandomState::default())
                .build(),
            per_user: Mutex::new(HashMap::new()),
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

    /// Allocations held by `username`.
    pub fn user_count(&self, username: &str) -> u32 {
        self.users().get(username).copied().unwrap_or(0)
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Box<str>, u32>> {
        self.per_user.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts a new allocation unless its 5-tuple has one.
    pub fn insert(&self, alloc: Arc<Allocation<S>>) -> Result<(), InsertError> {
        let key = alloc.info().five_tuple;
        let user: Box<str> = alloc.info().username.clone();
        let guard = self.map.guard();
        match self.map.try_insert(key, alloc, &guard) {
            Ok(_) => {
                *self.users().entry(user).or_insert(0) += 1;
                Ok(())
            }
            Err(_) => Err(InsertError::Exists),
        }
    }

    /// Removes an allocation (Refresh 0 or expiry), marks it deleted and returns it.
    pub fn remove(&self, key: &FiveTuple) -> Option<Arc<Allocation<S>>> {
        let guard = self.map.guard();
        let removed = self.map.remove(key, &guard).cloned();
        if let Some(a) = &removed {
            a.mark_deleted();
            let mut users = self.users();
            if let Some(n) = users.get_mut(&a.info().username) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    users.remove(&a.info().username);
                }
            }
        }
        removed
    }

    /// Removes every allocation expired at `now` and sweeps the others' permissions and channels.
    /// Returns the removed ones so the driver can stop their relay sockets.
    pub fn sweep(&self, now: Millis) -> Vec<Arc<Allocation<S>>> {
        let expired: Vec<FiveTuple> = {
            let guard = self.map.guard();
            self.map
                .iter(&guard)
                .filter_map(|(k, a)| {
                    if a.is_live(now) {
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
