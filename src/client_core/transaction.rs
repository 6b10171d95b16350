//! One STUN request's retransmission schedule (RFC 8489 §6.2.1 over UDP, §6.2.2 over a reliable
//! transport), as a plain state machine: the caller passes `now` and moves the bytes.

use std::time::{Duration, Instant};

use crate::proto::stun::TransactionId;

/// The parameters of RFC 8489 §6.2.1 (and Ti of §6.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetransmitConfig {
    /// The first retransmission timeout, RTO (RFC 8489 §6.2.1: 500 ms by default); it doubles after
    /// every send.
    pub rto: Duration,
    /// Rc, how many times the request is sent at most (RFC 8489 §6.2.1: 7).
    pub rc: u32,
    /// Rm: after the last send the client waits Rm × RTO before giving up (RFC 8489 §6.2.1: 16).
    pub rm: u32,
    /// Ti, the timeout over a reliable transport, where the request is sent once (RFC 8489 §6.2.2:
    /// 39.5 s).
    pub ti: Duration,
}

impl Default for RetransmitConfig {
    fn default() -> Self {
        RetransmitConfig { rto: Duration::from_millis(500), rc: 7, rm: 16, ti: Duration::from_millis(39_500) }
    }
}

/// What became of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response came ([`Transaction::on_response`]).
    Answered,
    /// No response before the last wait ran out (RFC 8489 §6.2.1: Rm × RTO after the Rc-th send;
    /// §6.2.2: Ti), or before the caller's deadline.
    Timeout,
}

/// One request in flight: when to send it (again) and when to give up.
///
/// Over UDP (RFC 8489 §6.2.1) it is sent at 0, RTO, 3 RTO, 7 RTO, … (the wait doubling after each
/// send), Rc times, and times out Rm × RTO after the last send: with the defaults sends at 0, 0.5,
/// 1.5, 3.5, 7.5, 15.5 and 31.5 s and a timeout at 39.5 s. Over a reliable transport (§6.2.2) it is
/// sent once and times out after Ti. A deadline ([`Transaction::with_deadline`]) ends it sooner.
#[derive(Clone, Debug)]
pub struct Transaction {
    tid: TransactionId,
    bytes: Vec<u8>,
    config: RetransmitConfig,
    reliable: bool,
    /// How many times it was sent.
    sent: u32,
    /// When the next send is due (`None`: no more sends).
    next_send: Option<Instant>,
    /// The wait after the next send.
    wait: Duration,
    /// When it times out, once the last send went.
    gives_up: Option<Instant>,
    /// The caller's bound on the whole transaction.
    deadline: Option<Instant>,
    outcome: Option<Outcome>,
}

impl Transaction {
    /// A transaction for the request `bytes` (transaction ID `tid`), first sent at `now`;
    /// `reliable`: over TCP or TLS (RFC 8489 §6.2.2).
    pub fn new(now: Instant, tid: TransactionId, bytes: Vec<u8>, reliable: bool, config: RetransmitConfig) -> Self {
        Transaction {
            tid,
            bytes,
            config,
            reliable,
            sent: 0,
            next_send: Some(now),
            wait: if reliable { config.ti } else { config.rto },
            gives_up: None,
            deadline: None,
            outcome: None,
        }
    }

    /// Gives up at `deadline` at the latest (an application's request timeout).
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The request's transaction ID, which its response carries.
    pub fn transaction_id(&self) -> TransactionId {
        self.tid
    }

    /// The request's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many times the request was sent.
    pub fn sends(&self) -> u32 {
        self.sent
    }

    /// The request to send now, if a send is due (the first one, or a retransmission, RFC 8489
    /// §6.2.1); `None` otherwise, and always once the transaction is over.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<&[u8]> {
        if self.outcome.is_some() {
            return None;
        }
        let due = self.next_send.filter(|at| *at <= now)?;
        self.sent += 1;
        let wait = self.wait;
        // Sends are scheduled from when they were due, not from when they were polled: the
        // schedule does not drift with a late driver.
        let last = self.reliable || self.sent >= self.config.rc.max(1);
        if last {
            self.next_send = None;
            let final_wait = if self.reliable { self.config.ti } else { self.config.rto * self.config.rm };
            self.gives_up = Some(due + final_wait);
        } else {
            self.next_send = Some(due + wait);
            self.wait = wait.saturating_mul(2);
        }
        Some(&self.bytes)
    }

    /// When [`Transaction::handle_timeout`] or [`Transaction::poll_transmit`] has something to do:
    /// the next send or the time to give up; `None` once it is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        let at = match (self.next_send, self.gives_up) {
            (Some(send), _) => send,
            (None, Some(give_up)) => give_up,
            (None, None) => return self.deadline,
        };
        Some(self.deadline.map_or(at, |d| d.min(at)))
    }

    /// Times the transaction out when its last wait or its deadline has passed at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        let expired = self.gives_up.is_some_and(|at| now >= at) || self.deadline.is_some_and(|at| now >= at);
        if expired {
            self.outcome = Some(Outcome::Timeout);
        }
    }

    /// The response came: no more sends.
    pub fn on_response(&mut self) {
        if self.outcome.is_none() {
            self.outcome = Some(Outcome::Answered);
        }
    }

    /// `None` while waiting for the response.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Drives `t` on a fake clock from `t0`, returning the times of the sends (ms) and of the
    /// timeout.
    fn run(mut t: Transaction, t0: Instant) -> (Vec<u64>, Option<u64>) {
        let mut sends = Vec::new();
        let mut now = t0;
        for _ in 0..100 {
            while t.poll_transmit(now).is_some() {
                sends.push(now.duration_since(t0).as_millis() as u64);
            }
            let Some(next) = t.poll_timeout() else { break };
            now = now.max(next);
            t.handle_timeout(now);
            if t.outcome() == Some(Outcome::Timeout) {
                return (sends, Some(now.duration_since(t0).as_millis() as u64));
            }
        }
        (sends, None)
    }

    #[test]
    fn udp_sends_seven_times_doubling_and_times_out_after_16_rto() {
        let t0 = Instant::now();
        let t = Transaction::new(t0, TransactionId([1; 12]), vec![1, 2], false, RetransmitConfig::default());
        let (sends, timeout) = run(t, t0);
        assert_eq!(sends, [0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timeout, Some(39_500));
    }

    #[test]
    fn the_rto_is_configurable() {
        let t0 = Instant::now();
        let config = RetransmitConfig { rto: ms(100), rc: 3, ..RetransmitConfig::default() };
        let (sends, timeout) = run(Transaction::new(t0, TransactionId([1; 12]), vec![], false, config), t0);
        assert_eq!(sends, [0, 100, 300]);
        assert_eq!(timeout, Some(300 + 1600));
    }

    #[test]
    fn reliable_sends_once_and_waits_ti() {
        let t0 = Instant::now();
        let t = Transaction::new(t0, TransactionId([1; 12]), vec![1], true, RetransmitConfig::default());
        assert_eq!(run(t, t0), (vec![0], Some(39_500)));
    }

    #[test]
    fn a_deadline_ends_it_sooner() {
        let t0 = Instant::now();
        let t = Transaction::new(t0, TransactionId([1; 12]), vec![1], false, RetransmitConfig::default())
            .with_deadline(t0 + ms(2000));
        assert_eq!(run(t, t0), (vec![0, 500, 1500], Some(2000)));
    }

    #[test]
    fn nothing_is_sent_before_it_is_due_or_after_a_response() {
        let t0 = Instant::now();
        let mut t = Transaction::new(t0, TransactionId([1; 12]), vec![9], false, RetransmitConfig::default());
        assert_eq!(t.poll_transmit(t0), Some(&[9u8][..]));
        assert_eq!(t.poll_transmit(t0 + ms(499)), None);
        assert_eq!(t.poll_timeout(), Some(t0 + ms(500)));
        // A late driver: the retransmission goes now, the next one stays on schedule.
        assert!(t.poll_transmit(t0 + ms(700)).is_some());
        assert_eq!(t.poll_timeout(), Some(t0 + ms(1500)));
        t.on_response();
        assert_eq!(t.poll_transmit(t0 + ms(5000)), None);
        assert_eq!(t.poll_timeout(), None);
        t.handle_timeout(t0 + ms(60_000));
        assert_eq!(t.outcome(), Some(Outcome::Answered));
        assert_eq!(t.sends(), 2);
    }
}
