//! Peer → client: what a relay poller (`poller.rs`) does with a ready relay socket — read the
//! peers' datagrams in batches and write them to the client as ChannelData or Data indications
//! (GSO for a run to one client, `sendmmsg` across allocations for single datagrams), through the
//! listener socket or the client's stream.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use quinn_udp::{EcnCodepoint, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use crate::alloc::Allocation;
use crate::server::HEADROOM;

use super::{RelaySocket, RelayUdp, TurnServer, icmp};

use crate::io::stream_queue::{StreamBurst, StreamSink};

/// Where an allocation's peer data goes.
#[derive(Clone)]
pub(super) enum ClientLeg {
    /// Out of the UDP listener socket the allocation came in on.
    Udp(UdpLeg),
    /// Into the client's TCP/TLS connection.
    Stream(StreamSink),
}

/// The UDP listener socket an allocation came in on and, when that socket is bound to a wildcard,
/// the source address its datagrams must carry: the 5-tuple's server address (IP_PKTINFO), which
/// the client sent its requests to and checks answers against.
#[derive(Clone)]
pub(super) struct UdpLeg {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) src: Option<IpAddr>,
}

impl UdpLeg {
    /// One datagram to `client` with the ECN codepoint `ecn`; false when it was dropped.
    fn send(&self, data: &[u8], client: SocketAddr, ecn: Option<EcnCodepoint>) -> bool {
        crate::io::socket::send_with(recv_state(), &self.socket, data, client, self.src, ecn)
    }
}

impl ClientLeg {
    pub(super) fn send(&self, data: &[u8], client: SocketAddr) -> bool {
        match self {
            ClientLeg::Udp(leg) => leg.send(data, client, None),
            ClientLeg::Stream(sink) => sink.try_send(data),
        }
    }

    /// Counts one frame this leg could not take: a full UDP socket or a full stream queue.
    fn count_failure(&self, server: &TurnServer) {
        let driver = server.driver();
        let counter = match self {
            ClientLeg::Udp(_) => &driver.client_send_failures,
            ClientLeg::Stream(_) => &driver.client_queue_drops,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// One receive slot: [`HEADROOM`] in front for the ChannelData or Data indication header, the
/// largest datagram, and room for the padding behind.
const PEER_BUF_LEN: usize = HEADROOM + 65536 + 4;

/// Datagrams per `recvmmsg` on a relay socket (quinn-udp's batch size on Linux).
const PEER_BATCH: usize = crate::io::udp::BATCH;

/// The peer-datagram buffers of a worker thread: [`PEER_BATCH`] slots of [`PEER_BUF_LEN`] and
/// their receive metadata, one set per thread instead of per allocation. They are only borrowed
/// between two awaits, never across one.
pub(super) struct PeerBufs {
    slots: Vec<u8>,
    meta: [RecvMeta; PEER_BATCH],
    /// Equal-sized answers to one client, back to back, for one GSO `sendmsg`.
    gso: Vec<u8>,
    /// Single answers to UDP clients of several allocations, for one `sendmmsg`.
    pub(super) out: Outbox,
}

/// The most bytes one GSO send carries (under the 65,507-byte UDP payload limit of IPv4).
pub(super) const GSO_BYTES: usize = 65000;

/// The largest answer sent in a GSO run: a segment must fit the route's MTU (1500 − 40 − 8 for
/// IPv6) or the kernel refuses the whole send; bigger answers leave one `sendto` each.
pub(super) const GSO_MAX_SEGMENT: usize = 1452;

thread_local! {
    pub(super) static PEER_BUFS: std::cell::RefCell<PeerBufs> = std::cell::RefCell::new(PeerBufs {
        slots: vec![0u8; PEER_BATCH * PEER_BUF_LEN],
        meta: [RecvMeta::default(); PEER_BATCH],
        gso: vec![0u8; GSO_BYTES],
        out: Outbox::default(),
    });
}

/// The quinn-udp handle for `recvmmsg` on relay sockets. On Linux its `recv` keeps no state of the
/// socket it reads, so one handle, made on a throwaway unbound socket, serves them all: relay
/// sockets keep their own options (quinn-udp would force DF and GRO on the socket it is made
/// from; RFC 8656 §18.9 wants DF only on request). `None` (no handle): one `recvfrom` each.
pub(super) fn recv_state() -> Option<&'static UdpSocketState> {
    static STATE: OnceLock<Option<UdpSocketState>> = OnceLock::new();
    STATE
        .get_or_init(|| {
            if !cfg!(target_os = "linux") {
                return None;
            }
            let probe = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).ok()?;
            UdpSocketState::new(UdpSockRef::from(&probe)).ok()
        })
        .as_ref()
}

/// How many datagrams one wake of a relay socket may take before the poller serves the others.
const PEER_DATAGRAMS_PER_WAKE: usize = 64;

/// How many error-queue entries one wake of a relay socket may take.
const ICMP_ERRORS_PER_WAKE: usize = 16;

/// RFC 8656 §11.5: reads the ICMP errors queued on `relay` (IP_RECVERR) and sends the client a
/// Data indication with the ICMP attribute for each one the core lets through; true when the
/// queue is empty.
pub(super) fn relay_icmp(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &RelayUdp,
    leg: &ClientLeg,
    client: SocketAddr,
) -> bool {
    let now = Instant::now();
    let mut out = [0u8; crate::server::ICMP_INDICATION_LEN];
    for _ in 0..ICMP_ERRORS_PER_WAKE {
        let (peer, error) = match icmp::recv(relay) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            // WouldBlock: drained.
            Err(_) => return true,
        };
        if let Some(n) = server.icmp_from_peer(now, allocation, peer, error, &mut out)
            && let Some(message) = out.get(..n)
            && !leg.send(message, client)
        {
            leg.count_failure(server);
        }
    }
    false
}

/// Reads up to [`PEER_DATAGRAMS_PER_WAKE`] datagrams from `relay` (in `recvmmsg` batches) and
/// relays each to the client; true when the socket is drained. Allocates nothing. A batch of one
/// datagram to a UDP client joins the thread's [`Outbox`] (sent when the poller's pass ends); a
/// longer one leaves at once in GSO runs.
pub(super) fn relay_burst(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &RelayUdp,
    leg: &ClientLeg,
    client: SocketAddr,
    bufs: &mut PeerBufs,
) -> bool {
    let Some(state) = recv_state() else {
        return relay_burst_single(server, allocation, relay, leg, client, bufs);
    };
    let now = Instant::now();
    let PeerBufs { slots, meta, gso, out } = bufs;
    let mut taken = 0;
    while taken < PEER_DATAGRAMS_PER_WAKE {
        let n = {
            let mut chunks = slots.chunks_exact_mut(PEER_BUF_LEN);
            let mut iovs: [IoSliceMut<'_>; PEER_BATCH] = std::array::from_fn(|_| {
                IoSliceMut::new(chunks.next().and_then(|c| c.get_mut(HEADROOM..HEADROOM + 65536)).unwrap_or_default())
            });
            match state.recv(UdpSockRef::from(relay), &mut iovs, meta) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                // A pending error (IP_RECVERR reports an ICMP error on the next call once; the
                // error queue keeps the ICMP itself): read on.
                Err(_) => {
                    taken += 1;
                    continue;
                }
            }
        };
        // A short batch means the queue is empty: `recvmmsg` without waiting stops there, and
        // the level-triggered set reports the socket again when a datagram comes.
        let drained = n < PEER_BATCH;
        taken += n.max(1);
        match leg {
            // One datagram to a UDP client: with the other allocations' single answers.
            ClientLeg::Udp(udp) if n == 1 && udp.src.is_none() => {
                if let (Some(m), Some(slot)) = (meta.first(), slots.get_mut(..PEER_BUF_LEN))
                    && m.ecn.is_none()
                {
                    if let Some(range) = server.relay_from_peer(now, allocation, m.addr, slot, m.len)
                        && let Some(answer) = slot.get(range)
                    {
                        out.push(server, &udp.socket, client, answer);
                    }
                    return true;
                }
                send_batch(server, allocation, leg, client, state, now, n, meta, slots, gso);
            }
            _ => send_batch(server, allocation, leg, client, state, now, n, meta, slots, gso),
        }
        if drained {
            return true;
        }
    }
    false
}

/// Relays the `n` datagrams of one `recvmmsg` batch: one GSO send per run to a UDP client, one
/// lock and at most one wake of the connection's task for a TCP/TLS client.
#[allow(clippy::too_many_arguments)]
fn send_batch(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    leg: &ClientLeg,
    client: SocketAddr,
    state: &UdpSocketState,
    now: Instant,
    n: usize,
    meta: &[RecvMeta],
    slots: &mut [u8],
    gso: &mut [u8],
) {
    let mut batch = match leg {
        ClientLeg::Udp(udp) => Batch::Gso(GsoRun::new(state, udp, client, server)),
        ClientLeg::Stream(sink) => Batch::Stream(sink.burst()),
    };
    for (meta, slot) in meta.iter().zip(slots.chunks_exact_mut(PEER_BUF_LEN)).take(n) {
        let Some(range) = server.relay_from_peer(now, allocation, meta.addr, slot, meta.len) else { continue };
        let Some(out) = slot.get(range) else { continue };
        match &mut batch {
            // RFC 8656 §14: the peer's ECN codepoint goes on to the client (not over TCP/TLS).
            Batch::Gso(run) => run.push(gso, out, meta.ecn),
            Batch::Stream(burst) => {
                if !burst.push(out) {
                    leg.count_failure(server);
                }
            }
        }
    }
    if let Batch::Gso(run) = &mut batch {
        run.flush(gso);
    }
}

/// [`relay_burst`] with one `recvfrom` per datagram, into the first slot.
fn relay_burst_single(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &RelayUdp,
    leg: &ClientLeg,
    client: SocketAddr,
    bufs: &mut PeerBufs,
) -> bool {
    let Some(buf) = bufs.slots.get_mut(..PEER_BUF_LEN) else { return true };
    let now = Instant::now();
    for _ in 0..PEER_DATAGRAMS_PER_WAKE {
        let recv = {
            let Some(space) = buf.get_mut(HEADROOM..HEADROOM + 65536) else { return true };
            relay.recv_from(space)
        };
        let (n, peer) = match recv {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => continue,
        };
        if let Some(range) = server.relay_from_peer(now, allocation, peer, buf, n)
            && let Some(out) = buf.get(range)
            && !leg.send(out, client)
        {
            leg.count_failure(server);
        }
    }
    false
}

/// Datagrams in one `sendmmsg`.
const OUTBOX: usize = 32;

/// Single answers to UDP clients from several relay sockets, waiting for one `sendmmsg` on their
/// listener socket (sent when full, when the next one is for another listener, and at the end of
/// the poller's pass). Each slot holds up to [`GSO_MAX_SEGMENT`] bytes; a bigger answer leaves at
/// once. Allocated once per thread.
#[derive(Default)]
pub(super) struct Outbox {
    socket: Option<Arc<UdpSocket>>,
    to: [Option<SocketAddr>; OUTBOX],
    len: [usize; OUTBOX],
    buf: Vec<u8>,
    count: usize,
}

impl Outbox {
    /// Queues `data` for `client` through `socket` (sending what waits first when it is for
    /// another socket or the box is full).
    fn push(&mut self, server: &TurnServer, socket: &Arc<UdpSocket>, client: SocketAddr, data: &[u8]) {
        if data.len() > GSO_MAX_SEGMENT {
            if !crate::io::socket::send_now(&**socket, data, client) {
                server.driver().client_send_failures.fetch_add(1, Relaxed);
            }
            return;
        }
        let same = self.socket.as_ref().is_some_and(|s| Arc::ptr_eq(s, socket));
        if self.count > 0 && (!same || self.count >= OUTBOX) {
            self.flush(server);
        }
        if self.buf.len() < OUTBOX * GSO_MAX_SEGMENT {
            self.buf.resize(OUTBOX * GSO_MAX_SEGMENT, 0);
        }
        let at = self.count * GSO_MAX_SEGMENT;
        let (Some(space), Some(to), Some(len)) =
            (self.buf.get_mut(at..at + data.len()), self.to.get_mut(self.count), self.len.get_mut(self.count))
        else {
            return;
        };
        space.copy_from_slice(data);
        *to = Some(client);
        *len = data.len();
        if self.socket.is_none() || !same {
            self.socket = Some(Arc::clone(socket));
        }
        self.count += 1;
    }

    /// Sends what waits: one `sendto` for one datagram, one `sendmmsg` (retried from where the
    /// kernel stopped) for more; what the socket refuses is counted in `client_send_failures`.
    pub(super) fn flush(&mut self, server: &TurnServer) {
        let count = std::mem::take(&mut self.count);
        // Not kept past the pass: a thread-local must not hold a listener socket open.
        let Some(socket) = self.socket.take() else { return };
        let socket = &*socket;
        let failed = match count {
            0 => return,
            1 => {
                let len = self.len.first().copied().unwrap_or(0);
                match (self.to.first().copied().flatten(), self.buf.get(..len)) {
                    (Some(to), Some(data)) => u64::from(!crate::io::socket::send_now(socket, data, to)),
                    _ => 1,
                }
            }
            // The message headers are built on the stack for a fixed count: 8 when that covers it
            // (a light load's typical pass), the whole box otherwise.
            2..=8 => self.send_many::<8>(socket, count),
            _ => self.send_many::<OUTBOX>(socket, count),
        };
        if failed > 0 {
            server.driver().client_send_failures.fetch_add(failed, Relaxed);
        }
    }

    /// `sendmmsg` of the first `count` (at most `N`) datagrams; how many were dropped.
    fn send_many<const N: usize>(&self, socket: &UdpSocket, count: usize) -> u64 {
        let count = count.min(N);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut parts: [(SocketAddrAny, [std::io::IoSlice<'_>; 1], SendAncillaryBuffer<'_, '_, '_>); N] =
            std::array::from_fn(|i| {
                let to = self.to.get(i).copied().flatten().unwrap_or(unspecified);
                let len = self.len.get(i).copied().unwrap_or(0);
                let data = self.buf.get(i * GSO_MAX_SEGMENT..i * GSO_MAX_SEGMENT + len).unwrap_or_default();
                (SocketAddrAny::from(to), [std::io::IoSlice::new(data)], SendAncillaryBuffer::default())
            });
        let mut msgs = parts.each_mut().map(|(to, iov, control)| MMsgHdr::new_with_addr(to, iov, control));
        let mut done = 0;
        let mut failed = 0;
        while done < count {
            let Some(rest) = msgs.get_mut(done..count) else { break };
            match rustix::net::sendmmsg(socket, rest, SendFlags::DONTWAIT) {
                Ok(0) => break,
                Ok(k) => done += k,
                // A full socket buffer drops what is left, as a `sendto` would.
                Err(rustix::io::Errno::AGAIN) => break,
                // The first datagram failed for itself (an error the kernel reports once, a
                // destination it refuses): drop that one, send on.
                Err(_) => {
                    done += 1;
                    failed += 1;
                }
            }
        }
        (failed + count.saturating_sub(done)) as u64
    }
}

/// Where the answers of one `recvmmsg` batch go.
enum Batch<'a> {
    Gso(GsoRun<'a>),
    Stream(StreamBurst<'a>),
}

/// Answers of one `recvmmsg` batch waiting in [`PeerBufs::gso`]: `count` datagrams of `size`
/// bytes with one ECN codepoint to the one client, sent with one UDP GSO `sendmsg` (the kernel
/// splits them again).
struct GsoRun<'a> {
    state: &'a UdpSocketState,
    leg: &'a UdpLeg,
    client: SocketAddr,
    server: &'a TurnServer,
    size: usize,
    count: usize,
    ecn: Option<EcnCodepoint>,
}

impl<'a> GsoRun<'a> {
    fn new(state: &'a UdpSocketState, leg: &'a UdpLeg, client: SocketAddr, server: &'a TurnServer) -> Self {
        GsoRun { state, leg, client, server, size: 0, count: 0, ecn: None }
    }

    /// Adds `out` (to leave with the ECN codepoint `ecn`) to the run, sending the run first when
    /// `out` cannot join it (another size or codepoint, or the run is full).
    fn push(&mut self, gso: &mut [u8], out: &[u8], ecn: Option<EcnCodepoint>) {
        let full = self.count >= self.state.max_gso_segments() || (self.count + 1) * out.len() > gso.len();
        if self.count > 0 && (out.len() != self.size || ecn != self.ecn || full) {
            self.flush(gso);
        }
        let at = self.count * out.len();
        match gso.get_mut(at..at + out.len()) {
            Some(space) if !out.is_empty() && out.len() <= GSO_MAX_SEGMENT => {
                space.copy_from_slice(out);
                self.size = out.len();
                self.ecn = ecn;
                self.count += 1;
            }
            _ => {
                if !self.leg.send(out, self.client, ecn) {
                    self.server.driver().client_send_failures.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Sends the run: one `sendto` for one datagram (a `sendmsg` when it needs a source address or
    /// an ECN codepoint), one GSO `sendmsg` for more.
    fn flush(&mut self, gso: &[u8]) {
        let (size, count, ecn, leg, client) =
            (self.size, std::mem::take(&mut self.count), self.ecn, self.leg, self.client);
        let Some(contents) = gso.get(..size * count) else { return };
        let failed = match count {
            0 => return,
            1 => u64::from(!leg.send(contents, client, ecn)),
            _ => {
                let transmit =
                    Transmit { destination: client, ecn, contents, segment_size: Some(size), src_ip: leg.src };
                match self.state.try_send(UdpSockRef::from(&*leg.socket), &transmit) {
                    Ok(()) => 0,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => count as u64,
                    // GSO refused (no offload, or a segment over the MTU; quinn-udp then stops
                    // using it): the same datagrams one `sendto` each.
                    Err(_) => contents.chunks(size.max(1)).filter(|d| !leg.send(d, client, ecn)).count() as u64,
                }
            }
        };
        if failed > 0 {
            self.server.driver().client_send_failures.fetch_add(failed, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The outbox sends each queued answer to its own client from the listener socket it was
    /// queued for: across a change of listener (a flush), past a full box (32), and an answer
    /// too big for a slot at once; nothing counted as failed.
    #[tokio::test]
    async fn the_outbox_delivers_each_answer_from_its_listener() {
        let server = super::super::UdpRelay::server(crate::server::ServerOptions::default(), None);
        let a = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let b = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let mut clients = Vec::new();
        for _ in 0..70 {
            clients.push(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        }
        let mut out = Outbox::default();
        for (i, client) in clients.iter().enumerate() {
            // 0..40 through `a` (a full box in between), 40..70 through `b`, the last one big.
            let listener = if i < 40 { &a } else { &b };
            let data = if i == 69 { vec![7u8; GSO_MAX_SEGMENT + 1] } else { format!("answer {i}").into_bytes() };
            out.push(&server, listener, client.local_addr().unwrap(), &data);
        }
        out.flush(&server);
        assert!(out.socket.is_none(), "the outbox keeps no listener after a flush");
        for (i, client) in clients.iter().enumerate() {
            client.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 2048];
            let (n, from) = client.recv_from(&mut buf).unwrap_or_else(|e| panic!("answer {i}: {e}"));
            let listener = if i < 40 { &a } else { &b };
            assert_eq!(from, listener.local_addr().unwrap(), "answer {i} from its listener");
            if i == 69 {
                assert_eq!(n, GSO_MAX_SEGMENT + 1);
            } else {
                assert_eq!(&buf[..n], format!("answer {i}").as_bytes());
            }
        }
        assert_eq!(server.driver().client_send_failures.load(Relaxed), 0);
    }
}
