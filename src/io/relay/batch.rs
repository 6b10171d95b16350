//! Client → peer in batches for stream clients: the datagrams that the frames of one read of a
//! TCP/TLS connection send to the same peer through the same relay socket, equal-sized, leave in
//! one UDP GSO `sendmsg` (the kernel splits them again) instead of one `sendto` each.
//!
//! The connection's task opens a [`PeerBatch`] around the frames of one read (synchronous work,
//! no await: the batch lives in a thread-local buffer); [`super::UdpRelay::send_to_peer`] then
//! appends instead of sending, and the batch goes out when the next datagram cannot join it (another
//! socket, peer or size, or the batch is full) and when the scope ends. The core has counted a
//! deferred datagram as relayed; one the kernel refuses at the flush is counted in
//! `UdpRelay::peer_batch_failures` (metrics: `socket_full`).

use std::cell::RefCell;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::RelayUdp as UdpSocket;
use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};

use super::UdpRelay;
use super::peer::{GSO_BYTES, GSO_MAX_SEGMENT, recv_state};

/// The datagrams waiting on this thread.
struct Pending {
    /// A [`PeerBatch`] is open on this thread.
    open: bool,
    socket: Option<Arc<UdpSocket>>,
    peer: SocketAddr,
    size: usize,
    count: usize,
    /// `count` datagrams of `size` bytes back to back (allocated at the first batch of the thread).
    buf: Vec<u8>,
}

thread_local! {
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending {
        open: false,
        socket: None,
        peer: SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)),
        size: 0,
        count: 0,
        buf: Vec::new(),
    }) };
}

/// Sends to peers are batched on this thread while it lives; dropping it sends what waits. Not
/// `Send`: it must end on the thread (and before the await) where it began.
pub(crate) struct PeerBatch<'a> {
    relay: &'a UdpRelay,
    _thread: PhantomData<*const ()>,
}

impl<'a> PeerBatch<'a> {
    pub(super) fn open(relay: &'a UdpRelay) -> Self {
        let _ = PENDING.try_with(|cell| {
            if let Ok(mut p) = cell.try_borrow_mut() {
                p.open = recv_state().is_some();
            }
        });
        PeerBatch { relay, _thread: PhantomData }
    }
}

impl Drop for PeerBatch<'_> {
    fn drop(&mut self) {
        let _ = PENDING.try_with(|cell| {
            if let Ok(mut p) = cell.try_borrow_mut() {
                p.flush(self.relay);
                p.open = false;
            }
        });
    }
}

/// Appends `data` for `peer` on `socket` to the open batch of this thread: true when it did (it
/// will be sent), false when no batch is open or `data` cannot be batched — then whatever waits
/// has been sent first, and the caller sends `data` itself, in order.
pub(super) fn defer(relay: &UdpRelay, socket: &Arc<UdpSocket>, peer: SocketAddr, data: &[u8]) -> bool {
    PENDING
        .try_with(|cell| {
            let Ok(mut p) = cell.try_borrow_mut() else { return false };
            if !p.open {
                return false;
            }
            let Some(state) = recv_state() else { return false };
            if data.is_empty() || data.len() > GSO_MAX_SEGMENT {
                p.flush(relay);
                return false;
            }
            if p.buf.len() < GSO_BYTES {
                p.buf.resize(GSO_BYTES, 0);
            }
            let joins = p.size == data.len()
                && p.peer == peer
                && p.socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, socket))
                && p.count < state.max_gso_segments()
                && (p.count + 1) * data.len() <= p.buf.len();
            if p.count > 0 && !joins {
                p.flush(relay);
            }
            if p.count == 0 {
                p.socket = Some(Arc::clone(socket));
                p.peer = peer;
                p.size = data.len();
            }
            let at = p.count * data.len();
            let Some(space) = p.buf.get_mut(at..at + data.len()) else { return false };
            space.copy_from_slice(data);
            p.count += 1;
            true
        })
        .unwrap_or(false)
}

/// Sends what waits on this thread now (before a datagram that is never batched).
pub(super) fn flush(relay: &UdpRelay) {
    let _ = PENDING.try_with(|cell| {
        if let Ok(mut p) = cell.try_borrow_mut()
            && p.count > 0
        {
            p.flush(relay);
        }
    });
}

impl Pending {
    /// Sends the waiting datagrams: one `sendto` for one, one GSO `sendmsg` for more.
    fn flush(&mut self, relay: &UdpRelay) {
        let count = std::mem::take(&mut self.count);
        let Some(socket) = self.socket.take() else { return };
        let (size, peer) = (self.size, self.peer);
        let Some(contents) = self.buf.get(..size * count) else { return };
        let failed = match (count, recv_state()) {
            (0, _) => 0,
            (1, _) | (_, None) => send_each(&socket, contents, size, peer),
            (_, Some(state)) => send_gso(state, &socket, contents, size, peer),
        };
        if failed > 0 {
            relay.peer_batch_failures.fetch_add(failed, Relaxed);
        }
    }
}

/// One GSO `sendmsg`; the datagrams that did not leave.
fn send_gso(state: &UdpSocketState, socket: &UdpSocket, contents: &[u8], size: usize, peer: SocketAddr) -> u64 {
    let transmit = Transmit { destination: peer, ecn: None, contents, segment_size: Some(size), src_ip: None };
    match state.try_send(UdpSockRef::from(socket), &transmit) {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => (contents.len() / size.max(1)) as u64,
        // GSO refused (no offload, a pending ICMP error, a segment over the route's MTU): the
        // same datagrams one `sendto` each.
        Err(_) => send_each(socket, contents, size, peer),
    }
}

/// One `sendto` per datagram (again once after an error other than a full buffer, like
/// [`super::UdpRelay::send_to_peer`]); the datagrams that did not leave.
fn send_each(socket: &UdpSocket, contents: &[u8], size: usize, peer: SocketAddr) -> u64 {
    contents
        .chunks(size.max(1))
        .filter(|d| match crate::io::socket::try_send_now(socket, d, peer) {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            Err(_) => !crate::io::socket::send_now(socket, d, peer),
        })
        .count() as u64
}
