//! The queue between an allocation's relay socket and its client's TCP/TLS connection: relayed
//! frames (ChannelData, Data indications, late answers) wait there for the connection's task to
//! write them. Bounded in bytes, per connection ([`STREAM_QUEUE_BYTES`]) and for the whole process
//! ([`STREAM_QUEUE_TOTAL_BYTES`]): a client that stops reading holds at most its share, and what
//! does not fit is dropped and counted — datagram traffic, so dropping is what UDP would do;
//! back-pressure never reaches the relay socket.
//!
//! The queue is one byte buffer per connection, not a channel of frames: the relay side appends
//! each frame to it (a copy into memory that stays allocated, nothing boxed per frame), a
//! [`StreamBurst`] appends a whole `recvmmsg` batch under one lock and wakes the connection's task
//! once, and the task takes everything queued in one swap and writes it with one `write_all`.
//! The bytes count against both budgets until they are written, not just until they are taken.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// Frames queued for one client connection at most (the count bounds the bookkeeping).
pub const STREAM_QUEUE: usize = 256;

/// Bytes queued for one client connection at most: 256 KiB, about 200 full-size datagrams, a
/// quarter second of a 8 Mbit/s video stream.
pub const STREAM_QUEUE_BYTES: usize = 256 * 1024;

/// Bytes queued for all client connections of the process at most: 256 MiB.
pub const STREAM_QUEUE_TOTAL_BYTES: usize = 256 * 1024 * 1024;

/// The capacity a connection's buffers keep between bursts; a larger one (after a big burst) is
/// given back, so an idle connection holds little.
const KEEP_CAPACITY: usize = 16 * 1024;

/// Bytes queued across the process.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// The bytes every stream queue of the process holds now.
pub fn queued_total() -> usize {
    TOTAL.load(Relaxed)
}

/// What the sinks and the source of one connection share.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Set when the queue goes from empty to not empty: one wake per burst.
    ready: Notify,
    /// Bytes of this connection against the budgets: queued, or taken and not yet written.
    held: AtomicUsize,
}

#[derive(Debug, Default)]
struct Queue {
    /// Frames back to back, in order.
    bytes: Vec<u8>,
    frames: usize,
    /// The source is gone: nothing is queued any more.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `len` bytes back to both budgets.
    fn release(&self, len: usize) {
        if len > 0 {
            self.held.fetch_sub(len, Relaxed);
            TOTAL.fetch_sub(len, Relaxed);
        }
    }
}

/// The sending side: the relay sockets and the core's late answers.
#[derive(Clone, Debug)]
pub struct StreamSink {
    shared: Arc<Shared>,
}

/// The receiving side: the connection's task.
#[derive(Debug)]
pub(super) struct StreamSource {
    shared: Arc<Shared>,
    /// The frames taken by the last [`StreamSource::ready`], until [`StreamSource::written`].
    batch: Vec<u8>,
}

/// A queue for one connection.
pub(super) fn stream_queue() -> (StreamSink, StreamSource) {
    let shared = Arc::new(Shared::default());
    (StreamSink { shared: shared.clone() }, StreamSource { shared, batch: Vec::new() })
}

/// Takes `len` bytes from `counter` if that keeps it at or under `limit`.
fn reserve(counter: &AtomicUsize, len: usize, limit: usize) -> bool {
    counter.fetch_update(Relaxed, Relaxed, |q| q.checked_add(len).filter(|n| *n <= limit)).is_ok()
}

impl StreamSink {
    /// Queues `frame`; false (nothing queued) when the connection's or the process's budget is
    /// spent, the queue is full or the connection is gone.
    pub fn try_send(&self, frame: &[u8]) -> bool {
        self.burst().push(frame)
    }

    /// Several frames under one lock, with at most one wake of the connection's task (when the
    /// burst ends). Hold it only for synchronous work.
    pub(super) fn burst(&self) -> StreamBurst<'_> {
        let queue = self.shared.lock();
        let was_empty = queue.bytes.is_empty();
        StreamBurst { shared: &self.shared, queue: Some(queue), was_empty }
    }
}

/// Frames being queued to one connection ([`StreamSink::burst`]); the connection's task is woken
/// when it is dropped, if the queue was empty before and holds frames now.
pub(super) struct StreamBurst<'a> {
    shared: &'a Shared,
    queue: Option<MutexGuard<'a, Queue>>,
    was_empty: bool,
}

impl StreamBurst<'_> {
    /// Queues `frame`; false (nothing queued) as [`StreamSink::try_send`].
    pub(super) fn push(&mut self, frame: &[u8]) -> bool {
        let Some(queue) = self.queue.as_mut() else { return false };
        let len = frame.len();
        if queue.closed || queue.frames >= STREAM_QUEUE {
            return false;
        }
        if !reserve(&self.shared.held, len, STREAM_QUEUE_BYTES) {
            return false;
        }
        if !reserve(&TOTAL, len, STREAM_QUEUE_TOTAL_BYTES) {
            self.shared.held.fetch_sub(len, Relaxed);
            return false;
        }
        queue.bytes.extend_from_slice(frame);
        queue.frames += 1;
        true
    }
}

impl Drop for StreamBurst<'_> {
    fn drop(&mut self) {
        let wake = self.was_empty && self.queue.as_ref().is_some_and(|q| !q.bytes.is_empty());
        drop(self.queue.take());
        if wake {
            // A stored permit if the task is not waiting yet: the wake is never lost.
            self.shared.ready.notify_one();
        }
    }
}

impl StreamSource {
    /// Takes every queued frame into the batch (false: none queued). The batch must be empty.
    fn take(&mut self) -> bool {
        let mut queue = self.shared.lock();
        if queue.bytes.is_empty() {
            return false;
        }
        std::mem::swap(&mut queue.bytes, &mut self.batch);
        queue.frames = 0;
        true
    }

    /// Waits until frames are queued, then takes them all: [`StreamSource::batch`]. Cancel-safe
    /// (nothing is taken before the wait ends). Call [`StreamSource::written`] before the next.
    pub(super) async fn ready(&mut self) {
        self.written();
        while !self.take() {
            self.shared.ready.notified().await;
        }
    }

    /// The frames taken, back to back, to be written in one go.
    pub(super) fn batch(&self) -> &[u8] {
        &self.batch
    }

    /// The batch is written: its bytes leave the budgets.
    pub(super) fn written(&mut self) {
        self.shared.release(self.batch.len());
        self.batch.clear();
        if self.batch.capacity() > KEEP_CAPACITY {
            self.batch.shrink_to(KEEP_CAPACITY);
        }
    }
}

impl Drop for StreamSource {
    /// Closes the queue and gives back the budget of the frames never written.
    fn drop(&mut self) {
        let queued = {
            let mut queue = self.shared.lock();
            queue.closed = true;
            queue.frames = 0;
            std::mem::take(&mut queue.bytes).len()
        };
        self.shared.release(queued + self.batch.len());
        self.batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_holds_at_most_its_byte_budget() {
        let (sink, mut source) = stream_queue();
        let frame = vec![0u8; 60_000];
        let sent = (0..100).filter(|_| sink.try_send(&frame)).count();
        assert_eq!(sent, STREAM_QUEUE_BYTES / 60_000, "256 KiB of 60 KB frames");
        assert!(!sink.try_send(&frame));
        // Taken but not yet written: still held.
        assert!(source.take());
        assert_eq!(source.batch().len(), 4 * 60_000, "all queued frames in one batch");
        assert!(!sink.try_send(&frame));
        // Written out: room again.
        source.written();
        assert!(sink.try_send(&frame));
        assert!(sink.try_send(&frame));
        assert!(source.take());
        assert!(sink.try_send(&frame));
        assert_eq!(sink.shared.held.load(Relaxed), 3 * 60_000);
        drop(source);
        assert_eq!(sink.shared.held.load(Relaxed), 0, "the frames never written give their budget back");
        assert!(!sink.try_send(&frame), "the connection is gone");
        assert_eq!(sink.shared.held.load(Relaxed), 0);
    }

    #[test]
    fn a_connection_holds_at_most_its_frame_count() {
        let (sink, mut source) = stream_queue();
        let sent = (0..STREAM_QUEUE + 10).filter(|_| sink.try_send(&[1, 2, 3, 4])).count();
        assert_eq!(sent, STREAM_QUEUE);
        assert!(source.take());
        assert!(sink.try_send(&[5, 6, 7, 8]), "the count restarts once the frames are taken");
        assert_eq!(source.batch().len(), 4 * STREAM_QUEUE);
    }

    #[tokio::test]
    async fn a_burst_is_taken_whole_in_order_with_one_wake() {
        let (sink, mut source) = stream_queue();
        {
            let mut burst = sink.burst();
            for i in 0..10u8 {
                assert!(burst.push(&[i; 3]));
            }
        }
        // One stored permit for the burst, and the whole burst in one batch.
        tokio::time::timeout(std::time::Duration::from_secs(5), source.ready()).await.unwrap();
        let want: Vec<u8> = (0..10u8).flat_map(|i| [i; 3]).collect();
        assert_eq!(source.batch(), &want[..]);
        source.written();
        assert!(!source.take(), "nothing left");
        // A frame queued while the task waits wakes it.
        let waiter = tokio::spawn(async move {
            source.ready().await;
            source.batch().to_vec()
        });
        tokio::task::yield_now().await;
        assert!(sink.try_send(b"late"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
        assert_eq!(got, b"late");
        assert_eq!(sink.shared.held.load(Relaxed), 0, "the source is gone with its batch");
    }
}
