//! Allocation quotas, RFC 8656 §7.2: a user over its quota gets 486 (Allocation Quota Reached), a
//! server out of room 508 (Insufficient Capacity).
//!
//! Counting sits behind [`QuotaCounter`] so that a fleet-wide store (Redis, say) can back it without
//! touching the protocol core; [`MemoryQuota`] counts for one server. The core calls it only on the
//! control path, after authentication: [`QuotaCounter::try_acquire`] before an Allocate binds a
//! relay socket, [`QuotaCounter::release`] when an allocation leaves the table (or the Allocate
//! fails after acquiring). Nothing is stored for a user without an allocation.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::proto::stun::codes;

/// The allocation limits of one Allocate; 0 means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Most allocations one user may hold (`user-quota`).
    pub per_user: u32,
    /// Most allocations in total (`total-quota`).
    pub total: u32,
}

/// Why an allocation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    /// The user holds `per_user` allocations already: 486.
    #[error("allocation quota of the user reached")]
    User,
    /// The server holds `total` allocations already: 508.
    #[error("allocation quota of the server reached")]
    Total,
}

impl QuotaExceeded {
    /// The error code to answer, RFC 8656 §7.2.
    pub fn error_code(self) -> u16 {
        match self {
            QuotaExceeded::User => codes::ALLOCATION_QUOTA_REACHED,
            QuotaExceeded::Total => codes::INSUFFICIENT_CAPACITY,
        }
    }
}

/// Counts allocations per user and in total.
///
/// Every successful [`try_acquire`](QuotaCounter::try_acquire) is matched by exactly one
/// [`release`](QuotaCounter::release) with the same user. Both run on the control path and must not
/// block for long (a networked store should answer from a local view and reconcile in the
/// background).
pub trait QuotaCounter: Send + Sync + std::fmt::Debug {
    /// Takes one allocation for `user` unless that would exceed `limits`; the total is checked first.
    fn try_acquire(&self, user: &str, limits: QuotaLimits) -> Result<(), QuotaExceeded>;
    /// Gives back one allocation of `user`.
    fn release(&self, user: &str);
    /// Allocations `user` holds.
    fn user_count(&self, user: &str) -> u32;
    /// Allocations held in total.
    fn total(&self) -> u32;
}

/// The in-memory [`QuotaCounter`]: a map of the users that hold allocations, under a mutex (control
/// path only). An entry is removed when its count drops to zero, so the map never outgrows the
/// allocation table.
#[derive(Debug, Default)]
pub struct MemoryQuota {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    per_user: HashMap<Box<str>, u32>,
    total: u32,
}

impl MemoryQuota {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A poisoned lock only means a panic elsewhere mid-update; the counts are still whole.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl QuotaCounter for MemoryQuota {
    fn try_acquire(&self, user: &str, limits: QuotaLimits) -> Result<(), QuotaExceeded> {
        let mut c = self.lock();
        if limits.total != 0 && c.total >= limits.total {
            return Err(QuotaExceeded::Total);
        }
        let held = c.per_user.get(user).copied().unwrap_or(0);
        if limits.per_user != 0 && held >= limits.per_user {
            return Err(QuotaExceeded::User);
        }
        c.total = c.total.saturating_add(1);
        match c.per_user.get_mut(user) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                c.per_user.insert(user.into(), 1);
            }
        }
        Ok(())
    }

    fn release(&self, user: &str) {
        let mut c = self.lock();
        let Some(n) = c.per_user.get_mut(user) else {
            return;
        };
        *n = n.saturating_sub(1);
        if *n == 0 {
            c.per_user.remove(user);
        }
        c.total = c.total.saturating_sub(1);
    }

    fn user_count(&self, user: &str) -> u32 {
        self.lock().per_user.get(user).copied().unwrap_or(0)
    }

    fn total(&self) -> u32 {
        self.lock().total
    }
}

/// The user an allocation counts against. `rest_separator` is given when the username was
/// authenticated as a REST username (`<expiry><separator><user>`): then the part after the first
/// separator, so that fresh credentials for the same user share one quota (empty when there is no
/// user part: `"<expiry>:"`, or `"<expiry>"` alone, which coturn accepts). Otherwise (static users)
/// the whole username.
pub fn quota_user(username: &str, rest_separator: Option<char>) -> &str {
    match rest_separator {
        // A REST username without a user part (`"<expiry>:"`, or `"<expiry>"` alone as coturn
        // takes it) counts as the empty user: all such clients share one quota, as one user.
        Some(sep) => username.split_once(sep).map_or("", |(_, user)| user),
        None => username,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: QuotaLimits = QuotaLimits { per_user: 2, total: 3 };

    #[test]
    fn user_then_total_limits_and_release() {
        let q = MemoryQuota::default();
        assert_eq!(q.try_acquire("a", BOTH), Ok(()));
        assert_eq!(q.try_acquire("a", BOTH), Ok(()));
        assert_eq!(q.try_acquire("a", BOTH), Err(QuotaExceeded::User));
        assert_eq!(q.try_acquire("b", BOTH), Ok(()));
        assert_eq!(q.try_acquire("c", BOTH), Err(QuotaExceeded::Total));
        assert_eq!((q.user_count("a"), q.user_count("b"), q.total()), (2, 1, 3));
        q.release("a");
        assert_eq!(q.try_acquire("c", BOTH), Ok(()));
        assert_eq!(QuotaExceeded::User.error_code(), 486);
        assert_eq!(QuotaExceeded::Total.error_code(), 508);
    }

    #[test]
    fn zero_is_unlimited_and_empty_users_are_forgotten() {
        let q = MemoryQuota::default();
        for _ in 0..1000 {
            q.try_acquire("a", QuotaLimits::default()).unwrap();
        }
        for _ in 0..1000 {
            q.release("a");
        }
        // A release without an acquire (never in the core) changes nothing.
        q.release("a");
        q.release("nobody");
        assert_eq!((q.user_count("a"), q.total()), (0, 0));
        assert!(q.lock().per_user.is_empty());
    }

    #[test]
    fn rest_usernames_count_against_their_user() {
        assert_eq!(quota_user("1800000000:bob", Some(':')), "bob");
        assert_eq!(quota_user("1800000000:bob:x", Some(':')), "bob:x");
        assert_eq!(quota_user("1800000000:", Some(':')), "");
        assert_eq!(quota_user("1800000000", Some(':')), "");
        assert_eq!(quota_user("1800000000:bob", None), "1800000000:bob");
    }
}
