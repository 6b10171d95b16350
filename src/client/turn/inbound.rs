//! The inbound queue: datagrams from peers (Data indications, ChannelData; RFC 8656 §11.4, §12.6)
//! waiting for [`TurnClient::recv_from`](super::TurnClient::recv_from). One byte buffer behind a
//! mutex, not a channel of `Vec`s: the reader copies a datagram's payload in once, into memory that
//! stays allocated (a ring, grown to the high-water mark and kept), and `recv_from` copies it out
//! once into the caller's buffer. Nothing is allocated per datagram. Bounded by datagrams
//! ([`ClientOptions::queue`](super::ClientOptions::queue)) and by bytes ([`MAX_BYTES`]); a
//! datagram that does not fit is dropped, as a full socket buffer would.
//!
//! The queue closes when its last writer (the reader task, and the one an RFC 8016 move tries)
//! goes: `recv_from` then drains what is queued and reports the closed stream.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

/// The most payload bytes that wait at once.
pub(super) const MAX_BYTES: usize = 4 << 20;

struct Queue {
    bytes: VecDeque<u8>,
    /// Each datagram's source and length, in order.
    datagrams: VecDeque<(SocketAddr, usize)>,
    max_datagrams: usize,
    /// Live writers; 0 after the first one went means closed.
    writers: usize,
    closed: bool,
    /// The one reader waiting (`recv_from` holds a lock, so there is one at a time).
    waker: Option<Waker>,
    dropped: u64,
}

/// The queue, shared by its writers and the client.
pub(super) struct Inbound {
    queue: Mutex<Queue>,
}

/// A writer: the reader task's handle. The queue closes when the last one is dropped.
pub(super) struct InboundTx {
    inbound: Arc<Inbound>,
}

/// What a poll of the queue gives.
pub(super) enum Received {
    /// A datagram of `len` bytes (the part that fit was copied) from `from`.
    Datagram { len: usize, from: SocketAddr },
    /// Empty and no writer left.
    Closed,
}

impl Inbound {
    /// A queue of at most `max_datagrams` datagrams, and its first writer.
    pub(super) fn new(max_datagrams: usize) -> (Arc<Inbound>, InboundTx) {
        let inbound = Arc::new(Inbound {
            queue: Mutex::new(Queue {
                bytes: VecDeque::new(),
                datagrams: VecDeque::new(),
                max_datagrams: max_datagrams.max(1),
                writers: 1,
                closed: false,
                waker: None,
                dropped: 0,
            }),
        });
        let tx = InboundTx { inbound: Arc::clone(&inbound) };
        (inbound, tx)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Another writer, unless the queue has closed already.
    pub(super) fn writer(self: &Arc<Self>) -> Option<InboundTx> {
        let mut queue = self.lock();
        if queue.closed {
            return None;
        }
        queue.writers += 1;
        Some(InboundTx { inbound: Arc::clone(self) })
    }

    /// The next datagram, copied into `buf` (truncated to its length), or `Pending` with `cx`
    /// registered to be woken by the next one (or by the close).
    pub(super) fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<Received> {
        let mut queue = self.lock();
        let Some((from, len)) = queue.datagrams.pop_front() else {
            if queue.closed {
                return Poll::Ready(Received::Closed);
            }
            match &mut queue.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        };
        let n = len.min(buf.len());
        let (front, back) = queue.bytes.as_slices();
        let from_front = n.min(front.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..from_front), front.get(..from_front)) {
            dst.copy_from_slice(src);
        }
        let rest = n - from_front;
        if let (Some(dst), Some(src)) = (buf.get_mut(from_front..n), back.get(..rest)) {
            dst.copy_from_slice(src);
        }
        let taken = len.min(queue.bytes.len());
        queue.bytes.drain(..taken);
        Poll::Ready(Received::Datagram { len: n, from })
    }

    /// Datagrams dropped because the queue was full.
    pub(super) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

impl InboundTx {
    /// Queues `data` from `from`, or drops it when the queue is full; wakes the reader.
    pub(super) fn push(&self, from: SocketAddr, data: &[u8]) {
        let waker = {
            let mut queue = self.inbound.lock();
            if queue.datagrams.len() >= queue.max_datagrams || queue.bytes.len() + data.len() > MAX_BYTES {
                queue.dropped += 1;
                return;
            }
            queue.bytes.extend(data);
            queue.datagrams.push_back((from, data.len()));
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for InboundTx {
    fn drop(&mut self) {
        let waker = {
            let mut queue = self.inbound.lock();
            queue.writers = queue.writers.saturating_sub(1);
            if queue.writers > 0 {
                return;
            }
            queue.closed = true;
            queue.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(inbound: &Inbound, buf: &mut [u8]) -> Poll<Received> {
        inbound.poll_recv(&mut Context::from_waker(Waker::noop()), buf)
    }

    #[test]
    fn datagrams_keep_their_bounds_and_order_across_the_ring() {
        let (inbound, tx) = Inbound::new(4);
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let b: SocketAddr = "192.0.2.2:2".parse().unwrap();
        let mut buf = [0u8; 16];
        // Many rounds, so the ring wraps.
        for round in 0..100u8 {
            tx.push(a, &[round; 5]);
            tx.push(b, &[round, round + 1]);
            let Poll::Ready(Received::Datagram { len, from }) = poll(&inbound, &mut buf) else { panic!() };
            assert_eq!((&buf[..len], from), (&[round; 5][..], a));
            let Poll::Ready(Received::Datagram { len, from }) = poll(&inbound, &mut buf) else { panic!() };
            assert_eq!((&buf[..len], from), (&[round, round + 1][..], b));
        }
        assert!(poll(&inbound, &mut buf).is_pending());
    }

    #[test]
    fn a_full_queue_drops_a_short_buffer_truncates_the_last_writer_closes() {
        let (inbound, tx) = Inbound::new(2);
        let a: SocketAddr = "192.0.2.1:1".parse().unwrap();
        tx.push(a, b"one");
        tx.push(a, b"two");
        tx.push(a, b"three");
        assert_eq!(inbound.dropped(), 1);
        let second = inbound.writer().unwrap();
        drop(tx);
        let mut short = [0u8; 2];
        let Poll::Ready(Received::Datagram { len, .. }) = poll(&inbound, &mut short) else { panic!() };
        assert_eq!(&short[..len], b"on");
        drop(second);
        assert!(inbound.writer().is_none(), "closed: no new writer");
        let mut buf = [0u8; 8];
        let Poll::Ready(Received::Datagram { len, .. }) = poll(&inbound, &mut buf) else { panic!() };
        assert_eq!(&buf[..len], b"two", "the rest of a truncated datagram is skipped");
        assert!(matches!(poll(&inbound, &mut buf), Poll::Ready(Received::Closed)));
    }
}
