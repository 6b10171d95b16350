//! Relay bandwidth limits: token buckets per allocation (`max-bps`), per user (`user-max-bps`) and
//! for the whole server (`bps-capacity`). Units follow coturn: bytes per second, each direction
//! (client → peer, peer → client) metered on its own. Bytes are application data (the DATA of a
//! Send indication or ChannelData message, the payload of a peer datagram), TURN headers excluded.
//!
//! A [`TokenBucket`] is one `AtomicU64` updated with a compare-and-swap: the data path neither
//! locks nor allocates. It is the GCRA form of a token bucket: the atomic holds the virtual time,
//! counted in bytes at the bucket's rate, at which everything admitted so far will have drained.
//! A datagram of `n` bytes passes when that time, advanced by `n`, stays within one burst of now.
//! The burst is one second of the rate (at least [`MIN_BURST`] bytes), so a limit holds as an
//! average over about a second and a sender that stays under it never loses a datagram.
//!
//! A rate of 0 is no limit and costs one branch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use crate::time::Millis;

/// The smallest burst: one full-size Ethernet datagram, so that even a tiny rate lets a datagram of
/// that size through now and then. (A datagram larger than the burst never passes.)
pub const MIN_BURST: u64 = 1500;

/// The direction of relayed data, each metered on its own (as coturn does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → peer (Send indications and ChannelData from the client).
    ToPeer,
    /// Peer → client (datagrams received on the relay socket).
    ToClient,
}

/// A lock-free token bucket of `rate` bytes per second.
#[derive(Debug)]
pub struct TokenBucket {
    /// Bytes per second; 0 = unlimited.
    rate: u64,
    /// Bytes that may pass at once after a quiet period.
    burst: u64,
    /// The virtual time (in bytes at `rate` since the core's epoch) up to which the bucket is spent.
    spent_until: AtomicU64,
}

impl Default for TokenBucket {
    fn default() -> Self {
        TokenBucket::unlimited()
    }
}

impl TokenBucket {
    /// A bucket that admits everything.
    pub const fn unlimited() -> Self {
        TokenBucket { rate: 0, burst: 0, spent_until: AtomicU64::new(0) }
    }

    /// A bucket of `rate` bytes per second (0 = unlimited), full at first, with a burst of one
    /// second of the rate but at least [`MIN_BURST`].
    pub fn new(rate: u64) -> Self {
        TokenBucket { rate, burst: rate.max(MIN_BURST), spent_until: AtomicU64::new(0) }
    }

    /// The rate, bytes per second (0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether the bucket admits everything.
    #[inline]
    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// `now` on the bucket's virtual clock: bytes the rate lets through from the epoch to `now`.
    #[inline]
    fn virtual_now(&self, now: Millis) -> u64 {
        let (secs, ms) = (now / 1000, now % 1000);
        secs.saturating_mul(self.rate).saturating_add(ms.saturating_mul(self.rate) / 1000)
    }

    /// Takes `n` bytes at `now` if the bucket holds them; otherwise takes nothing and says no.
    #[inline]
    pub fn try_take(&self, now: Millis, n: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        let v = self.virtual_now(now);
        let limit = v.saturating_add(self.burst);
        let mut cur = self.spent_until.load(Relaxed);
        loop {
            let next = cur.max(v).saturating_add(n);
            if next > limit {
                return false;
            }
            match self.spent_until.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Returns `n` bytes taken by [`try_take`](Self::try_take) for a datagram that was dropped
    /// further on (by another bucket).
    pub fn give_back(&self, n: u64) {
        if self.rate == 0 {
            return;
        }
        let _ = self.spent_until.fetch_update(Relaxed, Relaxed, |cur| Some(cur.saturating_sub(n)));
    }

    /// Bytes that may pass at `now` (for tests and admin views).
    pub fn available(&self, now: Millis) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        let v = self.virtual_now(now);
        v.saturating_add(self.burst).saturating_sub(self.spent_until.load(Relaxed).max(v))
    }
}

/// A bucket per direction.
#[derive(Debug, Default)]
pub struct Meter {
    buckets: [TokenBucket; 2],
}

impl Meter {
    /// Both directions at `rate` bytes per second (0 = unlimited).
    pub fn new(rate: u64) -> Self {
        Meter { buckets: [TokenBucket::new(rate), TokenBucket::new(rate)] }
    }

    /// The bucket of one direction.
    #[inline]
    pub fn bucket(&self, direction: Direction) -> &TokenBucket {
        let [to_peer, to_client] = &self.buckets;
        match direction {
            Direction::ToPeer => to_peer,
            Direction::ToClient => to_client,
        }
    }
}

/// The buckets one allocation draws from besides the server's: its own and its user's.
#[derive(Debug, Default)]
pub struct AllocationBandwidth {
    own: Meter,
    user: Option<Arc<Meter>>,
}

impl AllocationBandwidth {
    /// The allocation's own meter (`max-bps`).
    pub fn own(&self) -> &Meter {
        &self.own
    }

    /// The meter shared by the user's allocations (`user-max-bps`), if that limit is set.
    pub fn user(&self) -> Option<&Meter> {
        self.user.as_deref()
    }
}

/// Bandwidth limits, bytes per second in each direction; 0 = unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BandwidthLimits {
    /// Per allocation (`max-bps`).
    pub per_allocation: u64,
    /// Per user, across its allocations (`user-max-bps`).
    pub per_user: u64,
    /// The whole server (`bps-capacity`).
    pub total: u64,
}

/// The server's bandwidth state: its limits, the total meter, and the meters of users that hold
/// allocations (created at Allocate, shared by the user's allocations, forgotten once none is left).
#[derive(Debug, Default)]
pub struct Bandwidth {
    limits: BandwidthLimits,
    total: Meter,
    users: Mutex<HashMap<Box<str>, Weak<Meter>>>,
}

impl Bandwidth {
    /// The state for `limits`.
    pub fn new(limits: BandwidthLimits) -> Self {
        Bandwidth { limits, total: Meter::new(limits.total), users: Mutex::new(HashMap::new()) }
    }

    /// The limits.
    pub fn limits(&self) -> BandwidthLimits {
        self.limits
    }

    /// The server-wide meter (`bps-capacity`).
    pub fn total(&self) -> &Meter {
        &self.total
    }

    /// The meters of a new allocation of `user` (control path, at Allocate).
    pub fn for_allocation(&self, user: &str) -> AllocationBandwidth {
        let own = Meter::new(self.limits.per_allocation);
        if self.limits.per_user == 0 {
            return AllocationBandwidth { own, user: None };
        }
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        let shared = match users.get(user).and_then(Weak::upgrade) {
            Some(m) => m,
            None => {
                let m = Arc::new(Meter::new(self.limits.per_user));
                users.insert(user.into(), Arc::downgrade(&m));
                m
            }
        };
        AllocationBandwidth { own, user: Some(shared) }
    }

    /// Forgets users without allocations (with [`Server::sweep`](crate::server::Server::sweep)).
    pub fn sweep(&self) {
        if self.limits.per_user == 0 {
            return;
        }
        self.users.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, m| m.strong_count() > 0);
    }

    /// Users with a meter (live or not yet swept).
    pub fn users(&self) -> usize {
        self.users.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Admits `n` bytes in `direction` for an allocation at `now` if its own, its user's and the
    /// server's buckets all hold them; otherwise takes nothing from any (the data path: no lock, no
    /// allocation).
    #[inline]
    pub fn admit(&self, allocation: &AllocationBandwidth, direction: Direction, now: Millis, n: usize) -> bool {
        let n = n as u64;
        let own = allocation.own.bucket(direction);
        if !own.try_take(now, n) {
            return false;
        }
        let user = allocation.user.as_deref().map(|m| m.bucket(direction));
        if let Some(u) = user
            && !u.try_take(now, n)
        {
            own.give_back(n);
            return false;
        }
        if !self.total.bucket(direction).try_take(now, n) {
            own.give_back(n);
            if let Some(u) = user {
                u.give_back(n);
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let b = TokenBucket::new(10_000);
        assert_eq!(b.available(5_000), 10_000, "full at first");
        // One second of burst at once, then nothing more at the same instant.
        assert!((0..10).all(|_| b.try_take(5_000, 1_000)));
        assert!(!b.try_take(5_000, 1));
        // 100 ms later 1000 bytes are back, not 1001.
        assert!(!b.try_take(5_100, 1_001));
        assert!(b.try_take(5_100, 1_000));
        // A long pause refills to the burst, no more.
        assert_eq!(b.available(60_000), 10_000);
        assert!(!b.try_take(60_000, 10_001));
    }

    #[test]
    fn steady_sender_under_the_rate_never_loses() {
        let b = TokenBucket::new(100_000);
        // 1000 bytes every 11 ms is about 91 kB/s.
        let mut now = 0;
        for _ in 0..10_000 {
            assert!(b.try_take(now, 1_000), "at {now} ms");
            now += 11;
        }
        // Over 10 s at twice the rate, half passes (plus one burst).
        let b = TokenBucket::new(100_000);
        let passed: u64 = (0..2_000u64).filter(|i| b.try_take(i * 5, 1_000)).map(|_| 1_000).sum();
        assert!((1_000_000..=1_100_000).contains(&passed), "{passed}");
    }

    #[test]
    fn small_rates_still_pass_one_datagram_and_zero_is_unlimited() {
        let b = TokenBucket::new(100);
        assert!(b.try_take(0, 1_500));
        assert!(!b.try_take(0, 1));
        assert!(!b.try_take(14_000, 1_500));
        assert!(b.try_take(15_000, 1_500));
        assert!(!b.try_take(u64::MAX, 1_501), "never more than the burst");
        let u = TokenBucket::unlimited();
        assert!(u.try_take(0, u64::MAX) && u.try_take(0, u64::MAX));
        assert!(TokenBucket::new(u64::MAX).try_take(u64::MAX, 1 << 40), "no overflow");
    }

    #[test]
    fn give_back_restores() {
        let b = TokenBucket::new(2_000);
        assert!(b.try_take(0, 2_000));
        b.give_back(500);
        assert_eq!(b.available(0), 500);
        assert!(b.try_take(0, 500));
    }

    #[test]
    fn admit_takes_from_all_or_none() {
        let bw = Bandwidth::new(BandwidthLimits { per_allocation: 5_000, per_user: 8_000, total: 10_000 });
        let a = bw.for_allocation("bob");
        let b = bw.for_allocation("bob");
        let c = bw.for_allocation("carol");
        assert_eq!(bw.users(), 2);
        assert!(bw.admit(&a, Direction::ToPeer, 0, 5_000));
        assert!(!bw.admit(&a, Direction::ToPeer, 0, 1), "own bucket empty");
        // bob's user bucket has 3000 left: b may send 3000 of its 5000.
        assert!(!bw.admit(&b, Direction::ToPeer, 0, 3_001));
        assert_eq!(b.own().bucket(Direction::ToPeer).available(0), 5_000, "refunded");
        assert!(bw.admit(&b, Direction::ToPeer, 0, 3_000));
        // The server has 2000 left for carol.
        assert!(!bw.admit(&c, Direction::ToPeer, 0, 2_001));
        assert!(bw.admit(&c, Direction::ToPeer, 0, 2_000));
        // The other direction is untouched.
        assert!(bw.admit(&c, Direction::ToClient, 0, 5_000));
        drop((a, b));
        bw.sweep();
        assert_eq!(bw.users(), 1);
    }

    #[test]
    fn concurrent_takers_never_exceed_the_bucket() {
        let b = Arc::new(TokenBucket::new(1_000_000));
        let taken: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    let b = Arc::clone(&b);
                    s.spawn(move || (0..10_000).filter(|_| b.try_take(0, 100)).count() as u64 * 100)
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 1_000_000);
    }
}
