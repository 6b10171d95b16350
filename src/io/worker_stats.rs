//! Per-worker counters of the UDP listeners: relaxed atomics bumped by one task only, summed when
//! read. Nothing on the data path formats or logs.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The counters of one UDP listener socket (one worker's share of a listening address).
#[derive(Debug, Default)]
pub struct WorkerStats {
    received: AtomicU64,
    batches: AtomicU64,
    recv_errors: AtomicU64,
    send_dropped: AtomicU64,
}

/// A copy of [`WorkerStats`] (or their sum over workers) at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStatsSnapshot {
    /// Datagrams received from clients.
    pub received: u64,
    /// `recvmmsg` calls that returned data (`received / batches` is the mean batch).
    pub batches: u64,
    /// Receive errors (ICMP errors surfacing as ECONNREFUSED and the like).
    pub recv_errors: u64,
    /// Answers the socket could not take (full send buffer): dropped, never waited for.
    pub send_dropped: u64,
}

impl WorkerStats {
    pub(super) fn received(&self) {
        self.received.fetch_add(1, Relaxed);
    }
    pub(super) fn batch(&self) {
        self.batches.fetch_add(1, Relaxed);
    }
    pub(super) fn recv_error(&self) {
        self.recv_errors.fetch_add(1, Relaxed);
    }
    pub(super) fn send_dropped(&self) {
        self.send_dropped.fetch_add(1, Relaxed);
    }

    /// Reads the counters.
    pub fn snapshot(&self) -> WorkerStatsSnapshot {
        WorkerStatsSnapshot {
            received: self.received.load(Relaxed),
            batches: self.batches.load(Relaxed),
            recv_errors: self.recv_errors.load(Relaxed),
            send_dropped: self.send_dropped.load(Relaxed),
        }
    }
}

impl std::ops::Add for WorkerStatsSnapshot {
    type Output = WorkerStatsSnapshot;
    fn add(self, o: WorkerStatsSnapshot) -> WorkerStatsSnapshot {
        WorkerStatsSnapshot {
            received: self.received + o.received,
            batches: self.batches + o.batches,
            recv_errors: self.recv_errors + o.recv_errors,
            send_dropped: self.send_dropped + o.send_dropped,
        }
    }
}
