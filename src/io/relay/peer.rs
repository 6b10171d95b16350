//! Peer → client: the task of each relay socket reads peers' datagrams in batches and writes
//! them to the client as ChannelData or Data indications (GSO where it can), through the listener
//! socket or the client's stream.

use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use quinn_udp::{EcnCodepoint, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::alloc::Allocation;
use crate::server::HEADROOM;

use super::{RelayKind, RelaySocket, TurnServer, icmp};

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
struct PeerBufs {
    slots: Vec<u8>,
    meta: [RecvMeta; PEER_BATCH],
    /// Equal-sized answers to one client, back to back, for one GSO `sendmsg`.
    gso: Vec<u8>,
}

/// The most bytes one GSO send carries (under the 65,507-byte UDP payload limit of IPv4).
pub(super) const GSO_BYTES: usize = 65000;

/// The largest answer sent in a GSO run: a segment must fit the route's MTU (1500 − 40 − 8 for
/// IPv6) or the kernel refuses the whole send; bigger answers leave one `sendto` each.
pub(super) const GSO_MAX_SEGMENT: usize = 1452;

thread_local! {
    static PEER_BUFS: std::cell::RefCell<PeerBufs> = std::cell::RefCell::new(PeerBufs {
        slots: vec![0u8; PEER_BATCH * PEER_BUF_LEN],
        meta: [RecvMeta::default(); PEER_BATCH],
        gso: vec![0u8; GSO_BYTES],
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

/// How many datagrams one wake of a relay socket's task may take before yielding.
const PEER_DATAGRAMS_PER_WAKE: usize = 64;

/// Peer → client for one relay socket of an allocation (`extra`: a dual allocation's second one)
/// until it is deleted. Each wake drains the socket (a bounded number of `recvmmsg` batches)
/// through the thread's buffers.
pub(super) async fn peer_loop(
    server: Arc<TurnServer>,
    allocation: Arc<Allocation<RelaySocket>>,
    leg: ClientLeg,
    extra: bool,
) {
    let mut five = allocation.info().five_tuple;
    let mut leg = leg;
    let socket = if extra {
        match &allocation.extra {
            Some(e) => &e.socket,
            None => return,
        }
    } else {
        &allocation.socket
    };
    let RelayKind::Udp(slot) = &socket.kind else { return };
    let Some(relay) = slot.load_full() else { return };
    loop {
        if allocation.is_deleted() {
            break;
        }
        let error = tokio::select! {
            r = relay.ready(Interest::READABLE | Interest::ERROR) => match r {
                Ok(ready) => ready.is_error(),
                Err(_) => break,
            },
            _ = socket.stop.notified() => break,
        };
        // RFC 8016: a mobility Refresh may have moved the allocation to a new 5-tuple; read it
        // once per wake (not per datagram) and follow it.
        let now = allocation.info().five_tuple;
        if now != five {
            five = now;
            match server.driver().client_leg(&five) {
                Some(new_leg) => leg = new_leg,
                None => break,
            }
        }
        let client = five.client;
        if error {
            relay_icmp(&server, &allocation, &relay, &leg, client);
        }
        let drained = PEER_BUFS
            .try_with(|cell| {
                let Ok(mut bufs) = cell.try_borrow_mut() else { return true };
                relay_burst(&server, &allocation, &relay, &leg, client, &mut bufs)
            })
            .unwrap_or(true);
        if !drained {
            tokio::task::yield_now().await;
        }
    }
}

/// How many error-queue entries one wake of a relay socket's task may take.
const ICMP_ERRORS_PER_WAKE: usize = 16;

/// RFC 8656 §11.5: reads the ICMP errors queued on `relay` (IP_RECVERR) and sends the client a
/// Data indication with the ICMP attribute for each one the core lets through.
fn relay_icmp(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &UdpSocket,
    leg: &ClientLeg,
    client: SocketAddr,
) {
    let now = Instant::now();
    let mut out = [0u8; crate::server::ICMP_INDICATION_LEN];
    for _ in 0..ICMP_ERRORS_PER_WAKE {
        let (peer, error) = match relay.try_io(Interest::ERROR, || icmp::recv(relay)) {
            Ok(Some(entry)) => entry,
            Ok(None) => continue,
            // WouldBlock: drained (tokio then waits for the next error report).
            Err(_) => return,
        };
        if let Some(n) = server.icmp_from_peer(now, allocation, peer, error, &mut out)
            && let Some(message) = out.get(..n)
            && !leg.send(message, client)
        {
            leg.count_failure(server);
        }
    }
}

/// Reads up to [`PEER_DATAGRAMS_PER_WAKE`] datagrams from `relay` (in `recvmmsg` batches) and
/// relays each to the client; true when the socket is drained. Allocates nothing.
fn relay_burst(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &UdpSocket,
    leg: &ClientLeg,
    client: SocketAddr,
    bufs: &mut PeerBufs,
) -> bool {
    let Some(state) = recv_state() else {
        return relay_burst_single(server, allocation, relay, leg, client, bufs);
    };
    let now = Instant::now();
    let PeerBufs { slots, meta, gso } = bufs;
    let mut taken = 0;
    let mut drained = false;
    while taken < PEER_DATAGRAMS_PER_WAKE && !drained {
        let n = {
            let mut chunks = slots.chunks_exact_mut(PEER_BUF_LEN);
            let mut iovs: [IoSliceMut<'_>; PEER_BATCH] = std::array::from_fn(|_| {
                IoSliceMut::new(chunks.next().and_then(|c| c.get_mut(HEADROOM..HEADROOM + 65536)).unwrap_or_default())
            });
            // A short batch means the queue is empty: `recvmmsg` without waiting stops there. Told
            // so (as WouldBlock), tokio clears the readiness now and waits for the next datagram's
            // edge, which spares the `recvmmsg` that would only return EAGAIN: a quarter of the
            // syscalls with thousands of call-like allocations, one datagram per wake each. A
            // datagram that lands after the read raises a new edge, which tokio does not lose
            // (it clears only the readiness it saw before the closure ran).
            let mut short = None;
            let read = relay.try_io(Interest::READABLE, || {
                let n = state.recv(UdpSockRef::from(relay), &mut iovs, meta)?;
                if n > 0 && n < PEER_BATCH {
                    short = Some(n);
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (read, short) {
                (_, Some(n)) => {
                    drained = true;
                    n
                }
                (Ok(n), None) => n,
                (Err(e), None) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                (Err(_), None) => {
                    taken += 1;
                    continue;
                }
            }
        };
        taken += n.max(1);
        // The batch's answers leave together: one GSO send per run to a UDP client, one lock and
        // at most one wake of the connection's task for a TCP/TLS client.
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
    drained
}

/// [`relay_burst`] with one `recvfrom` per datagram, into the first slot.
fn relay_burst_single(
    server: &TurnServer,
    allocation: &Allocation<RelaySocket>,
    relay: &UdpSocket,
    leg: &ClientLeg,
    client: SocketAddr,
    bufs: &mut PeerBufs,
) -> bool {
    let Some(buf) = bufs.slots.get_mut(..PEER_BUF_LEN) else { return true };
    let now = Instant::now();
    for _ in 0..PEER_DATAGRAMS_PER_WAKE {
        let recv = {
            let Some(space) = buf.get_mut(HEADROOM..HEADROOM + 65536) else { return true };
            relay.try_recv_from(space)
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
