//! When an allocation is refreshed and when it runs out (RFC 8656 §8), shared by the sans-IO
//! [`ClientAllocation`](super::ClientAllocation) and the tokio client's keeper.

use std::time::{Duration, Instant};

use super::LostReason;

/// The wait before an unanswered Refresh is tried again (each try itself retransmitted, RFC 8489
/// §6.2.1); it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of an unanswered Refresh.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How often an allocation granted `lifetime` seconds is refreshed: `every` when the application
/// chose, else 4/5 of the lifetime (of at least 60 s), well before RFC 8656 §8 lets it expire.
pub fn refresh_period(every: Option<Duration>, lifetime: u32) -> Duration {
    every.unwrap_or_else(|| Duration::from_secs(u64::from(lifetime.max(60)) * 4 / 5))
}

/// An allocation's refresh schedule: the next Refresh, and the end of the lifetime last granted
/// (RFC 8656 §8: the server deletes it then, so a client that could not refresh has lost it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshSchedule {
    every: Option<Duration>,
    granted: u32,
    expires: Instant,
    next: Instant,
    backoff: Duration,
}

impl RefreshSchedule {
    /// An allocation granted `granted` seconds at `now`, refreshed every `every` (or
    /// [`refresh_period`]).
    pub fn new(now: Instant, granted: u32, every: Option<Duration>) -> Self {
        let mut s = RefreshSchedule { every, granted, expires: now, next: now, backoff: FIRST_BACKOFF };
        s.refreshed(now, granted);
        s
    }

    /// The lifetime last granted, seconds (what the next Refresh asks for).
    pub fn granted(&self) -> u32 {
        self.granted
    }

    /// When the next Refresh is due.
    pub fn next(&self) -> Instant {
        self.next
    }

    /// When the lifetime last granted runs out.
    pub fn expires(&self) -> Instant {
        self.expires
    }

    /// Refresh at `now` (something suggests the server is gone: ask).
    pub fn refresh_now(&mut self, now: Instant) {
        self.next = self.next.min(now);
    }

    /// A Refresh at `now` was granted `granted` seconds.
    pub fn refreshed(&mut self, now: Instant, granted: u32) {
        self.granted = granted;
        self.expires = now + Duration::from_secs(u64::from(granted));
        self.next = now + refresh_period(self.every, granted);
        self.backoff = FIRST_BACKOFF;
    }

    /// A Refresh got no answer by `now`: try again after the backoff (not past the end of the
    /// lifetime), or, once the lifetime has run out, [`LostReason::Expired`].
    pub fn unanswered(&mut self, now: Instant) -> Result<(), LostReason> {
        if now >= self.expires {
            return Err(LostReason::Expired);
        }
        self.next = (now + self.backoff).min(self.expires);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_fifths_of_the_lifetime_or_the_interval_and_backoff_until_it_expires() {
        let t0 = Instant::now();
        let s = RefreshSchedule::new(t0, 600, None);
        assert_eq!((s.next(), s.expires()), (t0 + Duration::from_secs(480), t0 + Duration::from_secs(600)));
        assert_eq!(RefreshSchedule::new(t0, 600, Some(Duration::from_secs(30))).next(), t0 + Duration::from_secs(30));
        assert_eq!(refresh_period(None, 10), Duration::from_secs(48), "at least 60 s of lifetime");
        let mut s = RefreshSchedule::new(t0, 100, None);
        let mut now = s.next();
        let mut waits = Vec::new();
        while s.unanswered(now).is_ok() {
            waits.push(s.next().duration_since(now).as_secs());
            now = s.next();
        }
        // 80 s, then 1, 2, 4, 8 s and what is left of the 100 s.
        assert_eq!(waits, [1, 2, 4, 8, 5]);
        assert_eq!(now, t0 + Duration::from_secs(100));
        s.refreshed(now, 100);
        assert_eq!(s.unanswered(now), Ok(()));
        assert_eq!(s.next(), now + Duration::from_secs(1), "a success resets the backoff");
    }
}
