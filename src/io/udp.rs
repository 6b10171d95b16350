//! The UDP listener: one task per socket (with `workers` > 1, one SO_REUSEPORT socket per worker
//! per listening address, all sharing the one `Server`). Each wake drains the socket in `recvmmsg`
//! batches (quinn-udp, GRO segments split) inside tokio's `try_io`; answers leave with a
//! non-blocking `sendto` — a full socket drops and counts, it never waits. A listener bound to a
//! wildcard address takes each datagram's destination (IP_PKTINFO) as its server address and
//! answers from it.

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tracing::debug;

use super::TurnServer;
use super::stopped;
use super::worker_stats::{WorkerStats, WorkerStatsSnapshot};
use crate::proto::stun::MAX_MESSAGE_LEN;
use crate::server::{Outcome, Received, RequestLatency, Transport};

/// The largest UDP payload (IPv6 jumbograms aside); also the largest GRO-coalesced read.
const MAX_DATAGRAM: usize = 65535;

/// Datagrams per `recvmmsg` (quinn-udp's own batch size on Linux).
pub(super) const BATCH: usize = 32;

/// How many batches one wake may take before yielding to other tasks on the worker.
const BATCHES_PER_WAKE: usize = 8;

/// One UDP listener socket's loop, the unit a worker runs: receive a batch, let the server answer
/// or relay each datagram, send the answers. [`UdpWorker::step`] is one turn of it, so an embedder
/// (or a test) can drive it on a runtime of its own.
pub struct UdpWorker {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    /// Bound to 0.0.0.0 or `::`: each datagram's server address is its destination (IP_PKTINFO),
    /// and the answer leaves from it.
    wildcard: bool,
    server: Arc<TurnServer>,
    stats: Arc<WorkerStats>,
    state: UdpSocketState,
    bufs: Buffers,
    /// The first socket of each RFC 5780 address (§6), for answers that leave from another one;
    /// empty without `rfc5780`.
    siblings: Siblings,
}

/// RFC 5780's four UDP sockets by local address.
pub(super) type Siblings = Arc<[(SocketAddr, Arc<UdpSocket>)]>;

/// The reusable buffers of one listener task: `BATCH` receive slots and the answer buffer.
struct Buffers {
    slots: Vec<u8>,
    meta: [RecvMeta; BATCH],
    out: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            slots: vec![0u8; BATCH * MAX_DATAGRAM],
            meta: [RecvMeta::default(); BATCH],
            out: vec![0u8; MAX_MESSAGE_LEN],
        }
    }
}

impl UdpWorker {
    /// A worker for `socket`, a UDP listener bound at `local` whose datagrams go to `server`.
    /// Turns on GRO and the ancillary data quinn-udp reads (the socket must be in a tokio runtime).
    pub fn new(socket: Arc<UdpSocket>, local: SocketAddr, server: Arc<TurnServer>) -> std::io::Result<Self> {
        Self::with_stats(socket, local, server, Arc::default())
    }

    pub(super) fn with_stats(
        socket: Arc<UdpSocket>,
        local: SocketAddr,
        server: Arc<TurnServer>,
        stats: Arc<WorkerStats>,
    ) -> std::io::Result<Self> {
        let state = UdpSocketState::new(UdpSockRef::from(&*socket))?;
        // quinn-udp turns on SO_TIMESTAMPNS, which nothing here reads; its 96-byte control buffer
        // cannot hold a GRO read's timestamp, GRO, PKTINFO and TOS messages together, and the
        // kernel cuts the last, TOS: the ECN field of coalesced client data would be lost
        // (RFC 8656 §14). Failing to turn it off costs only that.
        #[cfg(target_os = "linux")]
        let _ = nix::sys::socket::setsockopt(&*socket, nix::sys::socket::sockopt::ReceiveTimestampns, &false);
        let wildcard = local.ip().is_unspecified();
        Ok(UdpWorker { socket, local, wildcard, server, stats, state, bufs: Buffers::new(), siblings: Arc::new([]) })
    }

    /// Lets this worker send RFC 5780 answers from the other sockets of the grid (§6.1).
    pub(super) fn with_siblings(mut self, siblings: Siblings) -> Self {
        self.siblings = siblings;
        self
    }

    /// This worker's counters.
    pub fn stats(&self) -> WorkerStatsSnapshot {
        self.stats.snapshot()
    }

    /// Waits until the socket has something to read.
    pub async fn readable(&self) -> std::io::Result<()> {
        self.socket.readable().await
    }

    /// Serves until `stop` fires. Errors are counted and skipped, never fatal.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                r = self.socket.readable() => if r.is_err() { break },
                () = stopped(&mut stop) => break,
            }
            let mut drained = false;
            for _ in 0..BATCHES_PER_WAKE {
                if !self.step() {
                    drained = true;
                    break;
                }
            }
            if !drained {
                // Still more waiting: let the other tasks of this worker run first.
                tokio::task::yield_now().await;
            }
        }
        debug!(local = %self.local, "udp listener stopped");
    }

    /// One `recvmmsg` (up to 32 datagrams) and the handling of each: answers go back with a
    /// non-blocking `sendto` (a full socket drops and counts), client data is relayed by the server.
    /// On a wildcard listener each datagram's server address is its destination (IP_PKTINFO) and
    /// the answer leaves from it with a `sendmsg` carrying IP_PKTINFO.
    /// Returns false when nothing was waiting (or the read failed, counted). Allocates nothing.
    pub fn step(&mut self) -> bool {
        let Buffers { slots, meta, out } = &mut self.bufs;
        let n = {
            let mut chunks = slots.chunks_exact_mut(MAX_DATAGRAM);
            let mut iovs: [IoSliceMut<'_>; BATCH] =
                std::array::from_fn(|_| IoSliceMut::new(chunks.next().unwrap_or_default()));
            let (socket, state) = (&self.socket, &self.state);
            match socket.try_io(Interest::READABLE, || state.recv(UdpSockRef::from(&**socket), &mut iovs, meta)) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
                Err(e) => {
                    // For example ECONNREFUSED from an ICMP error on some systems: not ours to fix.
                    self.stats.recv_error();
                    debug!(local = %self.local, error = %e, "udp recv failed");
                    return false;
                }
            }
        };
        self.stats.batch();
        let now = Instant::now();
        for (meta, slot) in meta.iter().zip(slots.chunks_exact(MAX_DATAGRAM)).take(n) {
            let Some(data) = slot.get(..meta.len) else { continue };
            // On a wildcard listener the 5-tuple's server address is the one the client sent to
            // (RFC 8656 §2, §7.2 without relay-ip: the relayed address is on it too), and the
            // answer must come from it or the client drops it (RFC 8489 §6.3.1, the source check).
            // RFC 8656 §14: the ECN field of client data goes on to the peer.
            let ecn = super::socket::ecn_from(meta.ecn);
            let (local, src) = match meta.dst_ip {
                Some(ip) if self.wildcard => (SocketAddr::new(ip, self.local.port()), Some(ip)),
                _ => (self.local, None),
            };
            // GRO hands several datagrams of one source and size in one read: `stride` apart. An
            // empty datagram is one datagram too (dropped and counted by the core).
            let stride = if data.is_empty() { 1 } else { meta.stride.clamp(1, data.len()) };
            for datagram in data.chunks(stride).chain(data.is_empty().then_some(data)) {
                self.stats.received();
                let rx = Received { transport: Transport::Udp, source: meta.addr, local, data: datagram };
                // The clock is read again only for STUN requests (the latency histogram), never for data.
                let request = RequestLatency::request_index(datagram);
                let start = if request.is_some() { Instant::now() } else { now };
                let outcome = self.server.handle_ecn(start, &rx, ecn, out);
                if let Some(i) = request {
                    self.server.stats().latency().observe(i, start.elapsed());
                }
                let (len, socket, to, src) = match outcome {
                    Outcome::Reply(len) => (len, &self.socket, meta.addr, src),
                    Outcome::Pending(id) => {
                        super::UdpRelay::resolve_held(&self.server, id);
                        continue;
                    }
                    Outcome::ReplyVia { len, from, to } => match self.siblings.iter().find(|(a, _)| *a == from) {
                        Some((_, socket)) => (len, socket, to, None),
                        None => {
                            self.stats.send_dropped();
                            continue;
                        }
                    },
                    _ => continue,
                };
                let Some(reply) = out.get(..len) else { continue };
                if !super::socket::send_with(Some(&self.state), socket, reply, to, src, None) {
                    self.stats.send_dropped();
                }
            }
        }
        true
    }
}
