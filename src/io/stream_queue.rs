//! The queue between an allocation's relay socket and its client's TCP/TLS connection: relayed
//! frames (ChannelData, Data indications, late answers) wait there for the connection's task to
//! write them. Bounded in bytes, per connection ([`STREAM_QUEUE_BYTES`]) and for the whole process
//! ([`STREAM_QUEUE_TOTAL_BYTES`]): a client that stops reading holds at most its share, and what
//! does not fit is dropped and counted — datagram traffic, so dropping is what UDP would do;
//! back-pressure never reaches the relay socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::mpsc;

/// Frames queued for one client connection at most (the count bounds the bookkeeping).
pub const STREAM_QUEUE: usize = 256;

/// Bytes queued for one client connection at most: 256 KiB, about 200 full-size datagrams, a
/// quarter second of a 8 Mbit/s video stream.
pub const STREAM_QUEUE_BYTES: usize = 256 * 1024;

/// Bytes queued for all client connections of the process at most: 256 MiB.
pub const STREAM_QUEUE_TOTAL_BYTES: usize = 256 * 1024 * 1024;

/// Bytes queued across the process.
static TOTAL: AtomicUsize = AtomicUsize::new(0);

/// The bytes every stream queue of the process holds now.
pub fn queued_total() -> usize {
    TOTAL.load(Relaxed)
}

/// The sending side: the relay sockets and the core's late answers.
#[derive(Clone, Debug)]
pub struct StreamSink {
    tx: mpsc::Sender<Box<[u8]>>,
    queued: Arc<AtomicUsize>,
}

/// The receiving side: the connection's task.
#[derive(Debug)]
pub(super) struct StreamSource {
    rx: mpsc::Receiver<Box<[u8]>>,
    queued: Arc<AtomicUsize>,
}

/// A queue for one connection.
pub(super) fn stream_queue() -> (StreamSink, StreamSource) {
    let (tx, rx) = mpsc::channel(STREAM_QUEUE);
    let queued = Arc::new(AtomicUsize::new(0));
    (StreamSink { tx, queued: queued.clone() }, StreamSource { rx, queued })
}

/// Takes `len` bytes from `counter` if that keeps it at or under `limit`.
fn reserve(counter: &AtomicUsize, len: usize, limit: usize) -> bool {
    counter.fetch_update(Relaxed, Relaxed, |q| q.checked_add(len).filter(|n| *n <= limit)).is_ok()
}

impl StreamSink {
    /// Queues `frame`; false (nothing queued) when the connection's or the process's budget is
    /// spent, the queue is full or the connection is gone.
    pub fn try_send(&self, frame: &[u8]) -> bool {
        let len = frame.len();
        if !reserve(&self.queued, len, STREAM_QUEUE_BYTES) {
            return false;
        }
        if !reserve(&TOTAL, len, STREAM_QUEUE_TOTAL_BYTES) {
            self.queued.fetch_sub(len, Relaxed);
            return false;
        }
        if self.tx.try_send(frame.into()).is_err() {
            self.queued.fetch_sub(len, Relaxed);
            TOTAL.fetch_sub(len, Relaxed);
            return false;
        }
        true
    }
}

impl StreamSource {
    fn taken(&self, frame: Box<[u8]>) -> Box<[u8]> {
        self.queued.fetch_sub(frame.len(), Relaxed);
        TOTAL.fetch_sub(frame.len(), Relaxed);
        frame
    }

    /// The next frame (`None` once every sink is gone).
    pub(super) async fn recv(&mut self) -> Option<Box<[u8]>> {
        let frame = self.rx.recv().await?;
        Some(self.taken(frame))
    }

    /// The next frame if one is queued.
    pub(super) fn try_recv(&mut self) -> Option<Box<[u8]>> {
        let frame = self.rx.try_recv().ok()?;
        Some(self.taken(frame))
    }
}

impl Drop for StreamSource {
    /// Gives back the budget of the frames never written.
    fn drop(&mut self) {
        self.rx.close();
        while let Some(frame) = self.try_recv() {
            drop(frame);
        }
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
        // Written out: room again.
        assert!(source.try_recv().is_some());
        assert!(sink.try_send(&frame));
        assert_eq!(sink.queued.load(Relaxed), 4 * 60_000);
        drop(source);
        assert_eq!(sink.queued.load(Relaxed), 0, "the frames never written give their budget back");
        assert!(!sink.try_send(&frame), "the connection is gone");
        assert_eq!(sink.queued.load(Relaxed), 0);
    }
}
