//! The relay port range and the order in which ports are tried (RFC 8656 §7.2; RFC 6056 advises
//! unpredictable relay ports).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The configured relay port range, inclusive (default 49152–65535, IANA's dynamic range).
#[derive(Debug)]
pub struct PortRange {
    min: u16,
    max: u16,
    counter: AtomicU64,
    seed: foldhash::quality::RandomState,
}

impl PortRange {
    /// A range `min..=max`; an inverted range is swapped.
    pub fn new(min: u16, max: u16) -> Self {
        let (min, max) = if min <= max { (min, max) } else { (max, min) };
        PortRange { min, max, counter: AtomicU64::new(0), seed: foldhash::quality::RandomState::default() }
    }

    /// Lowest port.
    pub fn min(&self) -> u16 {
        self.min
    }

    /// Highest port.
    pub fn max(&self) -> u16 {
        self.max
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.min..=self.max).contains(&port)
    }

    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.max - self.min) + 1
    }

    /// Whether the range is empty (never: it holds at least one port).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Up to `tries` candidate ports, starting at an unpredictable place and walking the range;
    /// only even ports when `even` (EVEN-PORT, RFC 8656 §7.2), leaving room for port + 1 when
    /// `reserve_next`.
    pub fn candidates(&self, tries: usize, even: bool, reserve_next: bool) -> impl Iterator<Item = u16> + use<> {
        let mut h = self.seed.build_hasher();
        h.write_u64(self.counter.fetch_add(1, Relaxed));
        let len = self.len();
        let start = (h.finish() % u64::from(len)) as u32;
        let (min, max) = (self.min, self.max);
        (0..len)
            .map(move |i| min as u32 + (start + i) % len)
            .filter_map(|p| u16::try_from(p).ok())
            .filter(move |p| !even || p % 2 == 0)
            .filter(move |p| !reserve_next || *p < max)
            .take(tries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_stay_in_range_and_respect_parity() {
        let r = PortRange::new(50000, 50009);
        let all: Vec<u16> = r.candidates(100, false, false).collect();
        assert_eq!(all.len(), 10);
        assert!(all.iter().all(|p| r.contains(*p)));
        let even: Vec<u16> = r.candidates(100, true, true).collect();
        assert!(even.iter().all(|p| p % 2 == 0 && *p < 50009));
        assert_eq!(even.len(), 5);
        assert_eq!(r.candidates(3, false, false).count(), 3);
    }
}
