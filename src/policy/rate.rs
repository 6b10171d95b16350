//! Rate limits with memory fixed at construction, however many sources send: a table of token
//! buckets indexed by a seeded hash of the key (the "fixed-size seeded-hash bucket table").
//!
//! Each bucket is one `AtomicU64` holding its GCRA "theoretical arrival time" (the generic cell rate
//! algorithm is the token bucket written as a single timestamp): a request at `now` is allowed when
//! the bucket's time lies at most `(burst - 1) × interval` ahead of `now`, and then moves it one
//! `interval` further. An idle bucket is a full one, so nothing ever needs resetting or sweeping,
//! and a check is one load and one compare-and-swap: lock-free, no allocation.
//!
//! **Collisions.** Keys that hash to the same bucket share its budget. With 65,536 buckets and a
//! random seed per table (`foldhash`, seeded at construction), an attacker cannot pick sources that
//! land on a given victim's bucket; a flood from many sources spreads over every bucket and can
//! starve a legitimate source that shares one, but filling them all takes more than
//! `buckets × rate` packets a second (1.3 million at the defaults), and what is limited is only the
//! answer to unauthenticated requests. That is the price of memory that does not grow with the
//! number of sources (governor's keyed store grows until it is pruned on a timer).
//!
//! Keys: a source IPv4 address (/32), a source IPv6 /64 (one /64 must not mint 2^64 keys; an
//! IPv4-mapped IPv6 source is its IPv4 address), or a user name. Time comes in as the core's
//! [`Millis`]; nothing here reads a clock.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::time::Millis;

/// A rate: `per_second` requests a second on average, up to `burst` at once. `per_second == 0` is
/// no limit. Written `N/s[:burst]` (`20/s:40`; the burst defaults to twice the rate) or `0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Sustained requests per second; 0 turns the limit off.
    pub per_second: u32,
    /// Requests allowed at once from an idle key (at least 1 when the limit is on).
    pub burst: u32,
}

impl RateLimit {
    /// No limit.
    pub const OFF: RateLimit = RateLimit { per_second: 0, burst: 0 };

    /// `per_second` a second with bursts of `burst` (raised to 1).
    pub const fn new(per_second: u32, burst: u32) -> Self {
        RateLimit { per_second, burst: if burst == 0 { 1 } else { burst } }
    }

    /// Whether this limits anything.
    pub fn is_on(&self) -> bool {
        self.per_second != 0
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::OFF
    }
}

/// Why a rate did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected N/s or N/s:BURST (for example 20/s:40), or 0 for no limit")]
pub struct RateParseError;

impl std::str::FromStr for RateLimit {
    type Err = RateParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "0" || s.eq_ignore_ascii_case("off") {
            return Ok(RateLimit::OFF);
        }
        let (rate, burst) = match s.split_once(':') {
            Some((rate, burst)) => (rate, Some(burst)),
            None => (s, None),
        };
        let rate = rate.trim().strip_suffix("/s").ok_or(RateParseError)?;
        let number = |t: &str| t.trim().parse::<u32>().map_err(|_| RateParseError);
        let per_second = number(rate)?;
        if per_second == 0 {
            return Ok(RateLimit::OFF);
        }
        let burst = match burst {
            Some(b) => number(b)?,
            None => per_second.saturating_mul(2),
        };
        if burst == 0 {
            return Err(RateParseError);
        }
        Ok(RateLimit::new(per_second, burst))
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_on() { write!(f, "{}/s:{}", self.per_second, self.burst) } else { f.write_str("0") }
    }
}

/// What a bucket is keyed by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateKey<'a> {
    /// A source address: IPv4 /32, IPv6 /64.
    Source(IpAddr),
    /// A user (the REST user part or the static user name).
    User(&'a str),
}

/// The fixed-size bucket table.
pub struct RateLimiter {
    buckets: Box<[AtomicU64]>,
    mask: usize,
    hasher: foldhash::quality::RandomState,
    /// Microseconds between two requests at the sustained rate.
    interval_us: u64,
    /// How far ahead of now a bucket's time may lie and still allow a request, microseconds.
    tolerance_us: u64,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("buckets", &self.buckets.len())
            .field("interval_us", &self.interval_us)
            .field("tolerance_us", &self.tolerance_us)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// Buckets of the per-source table: 65,536 × 8 bytes = 512 KiB.
    pub const SOURCE_BUCKETS: usize = 1 << 16;
    /// Buckets of the per-user table: 16,384 × 8 bytes = 128 KiB.
    pub const USER_BUCKETS: usize = 1 << 14;

    /// A table of `buckets` (rounded up to a power of two, at least 1) for `limit`; `None` when the
    /// limit is off. All memory is allocated here, once.
    pub fn new(limit: RateLimit, buckets: usize) -> Option<Self> {
        if !limit.is_on() {
            return None;
        }
        let n = buckets.max(1).checked_next_power_of_two().unwrap_or(1 << 20);
        let interval_us = (1_000_000 / u64::from(limit.per_second)).max(1);
        let tolerance_us = interval_us.saturating_mul(u64::from(limit.burst.max(1) - 1));
        Some(RateLimiter {
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
            hasher: foldhash::quality::RandomState::default(),
            interval_us,
            tolerance_us,
        })
    }

    /// The number of buckets (fixed for the table's life).
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes the bucket array takes.
    pub fn memory(&self) -> usize {
        std::mem::size_of_val(&*self.buckets)
    }

    fn index(&self, key: RateKey<'_>) -> usize {
        let h = match key {
            RateKey::Source(ip) => match super::source_key(ip) {
                IpAddr::V4(v4) => self.hasher.hash_one((4u8, u32::from(v4))),
                IpAddr::V6(v6) => self.hasher.hash_one((6u8, (u128::from(v6) >> 64) as u64)),
            },
            RateKey::User(user) => self.hasher.hash_one((b'u', user)),
        };
        (h as usize) & self.mask
    }

    /// Takes one request from `key`'s bucket at `now`: `true` if it is within the limit.
    pub fn allow(&self, key: RateKey<'_>, now: Millis) -> bool {
        let Some(bucket) = self.buckets.get(self.index(key)) else { return true };
        let now = now.saturating_mul(1000);
        let mut tat = bucket.load(Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > self.tolerance_us {
                return false;
            }
            match bucket.compare_exchange_weak(tat, start.saturating_add(self.interval_us), Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(current) => tat = current,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!("20/s:40".parse(), Ok(RateLimit::new(20, 40)));
        assert_eq!("10/s".parse(), Ok(RateLimit::new(10, 20)));
        assert_eq!(" 5/s : 7 ".parse(), Ok(RateLimit::new(5, 7)));
        assert_eq!("0".parse(), Ok(RateLimit::OFF));
        assert_eq!("off".parse(), Ok(RateLimit::OFF));
        assert_eq!("0/s:10".parse(), Ok(RateLimit::OFF));
        for bad in ["", "20", "20/m", "x/s", "20/s:", "20/s:0", "-1/s", "20/s:40:1", "99999999999/s"] {
            assert_eq!(bad.parse::<RateLimit>(), Err(RateParseError), "{bad:?}");
        }
        assert_eq!(RateLimit::new(20, 40).to_string(), "20/s:40");
        assert_eq!(RateLimit::OFF.to_string(), "0");
        assert!(RateLimiter::new(RateLimit::OFF, 16).is_none());
    }

    #[test]
    fn burst_then_the_sustained_rate() {
        let l = RateLimiter::new(RateLimit::new(20, 40), 1024).unwrap();
        let k = RateKey::Source(ip("192.0.2.1"));
        // An idle key starts with a full bucket, even at time 0.
        assert_eq!((0..100).filter(|_| l.allow(k, 0)).count(), 40);
        assert!(!l.allow(k, 49));
        assert!(l.allow(k, 50));
        assert!(!l.allow(k, 50));
        // 1,000 requests spread over one second: burst + rate at most.
        let l = RateLimiter::new(RateLimit::new(20, 40), 1024).unwrap();
        let allowed = (0..1000u64).filter(|i| l.allow(k, 5_000 + i)).count();
        assert!((40..=60).contains(&allowed), "{allowed}");
        // After a quiet second the bucket is full again (up to the burst, not beyond).
        let allowed = (0..100).filter(|_| l.allow(k, 60_000)).count();
        assert_eq!(allowed, 40);
    }

    #[test]
    fn slow_rates_and_burst_one() {
        let l = RateLimiter::new(RateLimit::new(1, 1), 16).unwrap();
        let k = RateKey::User("alice");
        assert!(l.allow(k, 1_000));
        assert!(!l.allow(k, 1_999));
        assert!(l.allow(k, 2_000));
    }

    #[test]
    fn keys_ipv4_32_and_ipv6_64() {
        let l = RateLimiter::new(RateLimit::new(1, 1), 1 << 16).unwrap();
        let same = |a: &str, b: &str| l.index(RateKey::Source(ip(a))) == l.index(RateKey::Source(ip(b)));
        // One /64 is one key whatever its interface identifiers.
        assert!(same("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
        assert!(same("192.0.2.1", "::ffff:192.0.2.1"));
        // Exhausting one /64 leaves its neighbour alone (unless they collide: 1 in 65,536).
        let a = RateKey::Source(ip("2001:db8:1:2::1"));
        assert!(l.allow(a, 0));
        assert!(!l.allow(RateKey::Source(ip("2001:db8:1:2::99")), 0));
        let neighbours = (3..20u16)
            .map(|n| format!("2001:db8:1:{n:x}::1"))
            .filter(|s| !same(s, "2001:db8:1:2::1"))
            .filter(|s| l.allow(RateKey::Source(ip(s)), 0))
            .count();
        assert!(neighbours >= 16, "{neighbours}");
    }

    #[test]
    fn memory_is_fixed_at_construction() {
        let l = RateLimiter::new(RateLimit::new(20, 40), RateLimiter::SOURCE_BUCKETS).unwrap();
        assert_eq!(l.buckets(), 65_536);
        assert_eq!(l.memory(), 512 * 1024);
        for i in 0..200_000u32 {
            l.allow(RateKey::Source(IpAddr::from(i.to_be_bytes())), u64::from(i));
        }
        assert_eq!(l.buckets(), 65_536);
        // Not a power of two: rounded up.
        assert_eq!(RateLimiter::new(RateLimit::new(1, 1), 1000).unwrap().buckets(), 1024);
    }

    #[test]
    fn concurrent_takes_never_exceed_the_burst() {
        let l = std::sync::Arc::new(RateLimiter::new(RateLimit::new(1, 100), 16).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = std::sync::Arc::clone(&l);
                std::thread::spawn(move || (0..1000).filter(|_| l.allow(RateKey::User("u"), 0)).count())
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 100);
    }
}
