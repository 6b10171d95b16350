//! The tokio relay driver: one UDP socket per allocation (RFC 8656 §7.2; two for a dual
//! allocation, one per family), served by a few relay pollers (`poller.rs`, one per worker
//! thread) that read from peers and write to the client through the listener socket the
//! allocation came in on. An RFC 6062 TCP allocation has a listening TCP socket instead, a task accepting peers on
//! it, and the TCP connections to peers (Connect), held here until a client data connection
//! binds one (`io/tcp.rs` then relays the raw bytes).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, watch};

use crate::alloc::{Allocation, FiveTuple};
use crate::server::{BindOptions, CONNECTION_TIMEOUT_MS, Ecn, RelayDriver, Server};

mod batch;
mod icmp;
pub mod lease;
mod peer;
mod poller;
mod tcp;

pub use crate::io::stream_queue::{STREAM_QUEUE, StreamSink};
pub(crate) use batch::PeerBatch;
use peer::{ClientLeg, UdpLeg};
use tcp::{TCP_RELAY_BACKLOG, accept_loop, connect_from};
/// Receive buffer of relay sockets. The kernel's default (208 KiB) drops bursts; this asks for
/// 4 MiB and the kernel caps it at `net.core.rmem_max`.
const RELAY_SOCKET_BUFFER: usize = 4 << 20;

/// A UDP relay socket: a plain non-blocking socket, not registered with tokio (a relay poller
/// watches it, `poller.rs`).
type RelayUdp = std::net::UdpSocket;

/// A relay socket, where its relay poller has it (UDP), and the signal that stops its task (TCP).
pub struct RelaySocket {
    kind: RelayKind,
    stop: Notify,
    poll: OnceLock<poller::Registration>,
}

impl std::fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelaySocket").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// UDP relays (RFC 8656) and TCP relays (RFC 6062).
#[derive(Debug)]
enum RelayKind {
    /// Closed (`None`) when its family of a dual allocation is deleted alone (RFC 8656 §8): the
    /// port is free at once, not when the allocation ends.
    Udp(arc_swap::ArcSwapOption<RelayUdp>),
    /// The listening socket on the relayed address; `_claim` frees the address for other TCP
    /// allocations when the socket goes; `deleted` ends the relays of its bound connections.
    Tcp { listener: Arc<TcpListener>, _claim: TcpClaim, deleted: watch::Sender<bool> },
}

/// The error of a relay socket closed before its allocation ended.
fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "relay socket closed (its family was deleted)")
}

/// A peer connection bound to a client data connection (RFC 6062 §5.4), handed to that
/// connection's task.
#[derive(Debug)]
pub struct BoundConnection {
    /// Its CONNECTION-ID (to report the end with [`Server::connection_closed`]).
    pub id: u32,
    /// The peer connection.
    pub peer: TcpStream,
    /// Turns `true` when the allocation is deleted: the relay ends then.
    pub deleted: watch::Receiver<bool>,
    /// The allocation (its counters take the relayed bytes when the relay ends).
    pub allocation: Arc<Allocation<RelaySocket>>,
}

impl RelaySocket {
    /// The socket's local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match &self.kind {
            RelayKind::Udp(slot) => match slot.load().as_deref() {
                Some(socket) => socket.local_addr(),
                None => Err(closed()),
            },
            RelayKind::Tcp { listener, .. } => listener.local_addr(),
        }
    }

    /// Whether packets to peers carry the DF bit (IP_MTU_DISCOVER is IP_PMTUDISC_DO); never for a
    /// TCP relay.
    pub fn dont_fragment(&self) -> std::io::Result<bool> {
        use rustix::net::sockopt::{Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, ip_mtu_discover, ipv6_mtu_discover};
        let RelayKind::Udp(slot) = &self.kind else { return Ok(false) };
        let guard = slot.load();
        let Some(socket) = guard.as_deref() else { return Ok(false) };
        if socket.local_addr()?.is_ipv6() {
            Ok(ipv6_mtu_discover(socket)? == Ipv6PathMtuDiscovery::DO)
        } else {
            Ok(ip_mtu_discover(socket)? == Ipv4PathMtuDiscovery::DO)
        }
    }
}

/// A TCP relayed address taken by one allocation of this process. The TCP relay sockets share
/// their address with SO_REUSEPORT (the connections to peers are bound to it too), so the kernel
/// would let a second listener bind it: this set is what says "in use".
#[derive(Debug)]
struct TcpClaim {
    claimed: Arc<Mutex<HashSet<SocketAddr>>>,
    addr: SocketAddr,
}

impl Drop for TcpClaim {
    fn drop(&mut self) {
        self.claimed.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.addr);
    }
}

/// The server type the daemon runs: the sans-IO core with this driver.
pub type TurnServer = Server<UdpRelay>;

/// Relay driver on tokio. Register the UDP listener sockets with [`UdpRelay::add_listener`] and the
/// server with [`UdpRelay::attach`] before traffic flows.
#[derive(Debug, Default)]
pub struct UdpRelay {
    server: OnceLock<Weak<TurnServer>>,
    listeners: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
    /// Writers of TCP/TLS client connections, by 5-tuple (RFC 8656 §3.1: the allocation lives and
    /// dies with its connection).
    streams: Mutex<HashMap<FiveTuple, StreamSink>>,
    /// Datagrams to UDP clients the listener socket could not take (full send buffer or error).
    pub client_send_failures: AtomicU64,
    /// Frames to TCP/TLS clients their stream queue could not take (the client reads too slowly,
    /// see `stream_queue.rs`, or its connection is gone): dropped like a datagram.
    pub client_queue_drops: AtomicU64,
    /// Datagrams to peers of a peer batch (`relay/batch.rs`) the relay socket refused when the batch was sent
    /// (the core had counted them relayed; metrics add them to `socket_full`).
    pub peer_batch_failures: AtomicU64,
    /// TCP relayed addresses in use (RFC 6062).
    tcp_claims: Arc<Mutex<HashSet<SocketAddr>>>,
    /// RFC 6062 peer connections waiting for their ConnectionBind, by CONNECTION-ID.
    peer_connections: Mutex<HashMap<u32, TcpStream>>,
    /// Peer connections just bound, for the client data connection (its 5-tuple) to take.
    bound_connections: Mutex<HashMap<FiveTuple, BoundConnection>>,
    /// A kernel fast path (`fast-path = "xdp"`): told when an allocation ends or moves.
    offload: OnceLock<Arc<dyn super::offload::Offload<RelaySocket>>>,
    /// `socket-buffer` for relay sockets; 0 until set: [`RELAY_SOCKET_BUFFER`].
    socket_buffer: std::sync::atomic::AtomicUsize,
    /// The fleet's allocation ledger, when leases are on (issue #16, `lease.rs`).
    pub(crate) ledger: lease::LedgerSlot,
    /// The relay pollers serving the UDP relay sockets (made on the first allocation).
    pollers: poller::Pollers,
}

impl UdpRelay {
    /// A server driven by a fresh `UdpRelay`, its clock anchored at the system time now. Without
    /// `auth` it is a STUN-only server (TURN requests get 400).
    pub fn server(options: crate::server::ServerOptions, auth: Option<crate::auth::Authenticator>) -> Arc<TurnServer> {
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let server = Arc::new(Server::with_relay(options, auth, UdpRelay::default(), Instant::now(), unix));
        UdpRelay::attach(&server);
        server
    }

    /// Registers a kernel fast path (once): it hears of every allocation's end and move.
    pub fn set_offload(&self, offload: Arc<dyn super::offload::Offload<RelaySocket>>) {
        let _ = self.offload.set(offload);
    }

    /// The kernel fast path, when one was started.
    pub fn offload(&self) -> Option<&Arc<dyn super::offload::Offload<RelaySocket>>> {
        self.offload.get()
    }

    /// Tells the fast path an allocation ended, moved or lost a family: its kernel entries go
    /// and what the kernel relayed for it lands in its counters.
    fn forget_fast_path(&self, allocation: &Allocation<RelaySocket>) {
        if let Some(offload) = self.offload.get() {
            offload.forget(allocation);
        }
    }

    /// Gives the driver a handle on its server (the driver lives inside it, hence `Weak`).
    pub fn attach(server: &Arc<TurnServer>) {
        let _ = server.driver().server.set(Arc::downgrade(server));
    }

    /// The receive and send buffer of relay sockets bound from now on (`socket-buffer`; 0 = the
    /// kernel's default).
    pub fn set_socket_buffer(&self, bytes: usize) {
        // Stored +1 so that 0 ("kernel default") differs from "never set".
        self.socket_buffer.store(bytes.saturating_add(1), Relaxed);
    }

    fn relay_buffer(&self) -> usize {
        match self.socket_buffer.load(Relaxed) {
            0 => RELAY_SOCKET_BUFFER,
            n => n - 1,
        }
    }

    /// Registers a UDP listener: data for allocations made through `local` leaves through it.
    pub fn add_listener(&self, local: SocketAddr, socket: Arc<UdpSocket>) {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner()).insert(local, socket);
    }

    /// Registers a client stream: data for an allocation made over it is queued to `sink`, which
    /// the connection task writes out. False (nothing registered) when another open connection has
    /// the 5-tuple already: behind a balancer a PROXY header can claim a client address that a
    /// live connection holds, and that connection's allocation and data must stay its own.
    pub fn add_stream(&self, five_tuple: FiveTuple, sink: StreamSink) -> bool {
        match self.streams.lock().unwrap_or_else(|e| e.into_inner()).entry(five_tuple) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(sink);
                true
            }
        }
    }

    /// Batches the sends to peers on this thread until the returned scope ends (`batch.rs`): a
    /// stream connection opens one around the frames of one read. No await while it lives.
    pub(crate) fn peer_batch(&self) -> PeerBatch<'_> {
        PeerBatch::open(self)
    }

    /// Forgets a client stream (its connection closed).
    pub fn remove_stream(&self, five_tuple: &FiveTuple) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(five_tuple);
    }

    /// The peer connection bound to the client data connection `data` by the ConnectionBind just
    /// answered on it (RFC 6062 §5.4), with its CONNECTION-ID.
    pub fn take_bound_connection(&self, data: &FiveTuple) -> Option<BoundConnection> {
        self.bound_connections.lock().unwrap_or_else(|e| e.into_inner()).remove(data)
    }

    /// The way to the client of `five`: the UDP listener it came in on, or its TCP/TLS stream. A
    /// wildcard listener's datagrams leave from the 5-tuple's server address (IP_PKTINFO).
    fn client_leg(&self, five: &FiveTuple) -> Option<ClientLeg> {
        if five.transport.is_stream() {
            self.stream(five).map(ClientLeg::Stream)
        } else {
            self.listener(&five.server)
                .map(|(socket, wildcard)| ClientLeg::Udp(UdpLeg { socket, src: wildcard.then_some(five.server.ip()) }))
        }
    }

    /// Sends a message the core wrote to the client of `five` (through the UDP listener it came
    /// in on, or its stream); false when there is no way or it is full.
    pub(crate) fn send_to_client(&self, five: &FiveTuple, message: &[u8]) -> bool {
        self.client_leg(five).is_some_and(|leg| leg.send(message, five.client))
    }

    /// Queues a message the core wrote for a client's control connection.
    fn send_on_stream(&self, five_tuple: &FiveTuple, message: &[u8]) -> bool {
        self.stream(five_tuple).is_some_and(|sink| sink.try_send(message))
    }

    fn stream(&self, five_tuple: &FiveTuple) -> Option<StreamSink> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(five_tuple).cloned()
    }

    /// The UDP listener of the server address `local`, and whether it is bound to a wildcard.
    fn listener(&self, local: &SocketAddr) -> Option<(Arc<UdpSocket>, bool)> {
        let map = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(local) {
            Some(socket) => Some((Arc::clone(socket), local.ip().is_unspecified())),
            // A listener bound to the unspecified address of `local`'s family took it.
            None => map
                .iter()
                .find(|(a, _)| a.port() == local.port() && a.ip().is_unspecified() && a.is_ipv4() == local.is_ipv4())
                .map(|(_, s)| (Arc::clone(s), true)),
        }
    }
}

/// RFC 8656 §18.9: DF on packets to peers only when the client sent DONT-FRAGMENT; without it the
/// relay lets the kernel fragment (Linux's default for UDP would set DF). IP_MTU_DISCOVER is a
/// socket option: Linux has no per-datagram DF for IPv4, so DF is the allocation's, not a Send
/// indication's (see `server/send.rs`).
fn set_dont_fragment(socket: &impl std::os::fd::AsFd, ipv6: bool, on: bool) -> std::io::Result<()> {
    use rustix::net::sockopt::{
        Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, set_ip_mtu_discover, set_ipv6_mtu_discover,
    };
    if ipv6 {
        let mode = if on { Ipv6PathMtuDiscovery::DO } else { Ipv6PathMtuDiscovery::DONT };
        set_ipv6_mtu_discover(socket, mode)?;
    } else {
        let mode = if on { Ipv4PathMtuDiscovery::DO } else { Ipv4PathMtuDiscovery::DONT };
        set_ip_mtu_discover(socket, mode)?;
    }
    Ok(())
}

fn bind_std(addr: SocketAddr, options: BindOptions, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    set_dont_fragment(&socket, addr.is_ipv6(), options.dont_fragment)?;
    // RFC 8656 §11.5: ICMP errors for relayed datagrams go back to the client. Without the error
    // queue the relay still works; it only cannot tell the client.
    if let Err(e) = icmp::enable(&socket, addr.is_ipv6()) {
        tracing::debug!(%addr, error = %e, "no IP_RECVERR on a relay socket: ICMP errors not relayed");
    }
    // RFC 8656 §14: the ECN field of peer datagrams goes on to the client. Without it the relay
    // still works; it sends Not-ECT (§14's alternate behaviour).
    if let Err(e) = crate::io::socket::enable_recv_ecn(&socket, addr.is_ipv6()) {
        tracing::debug!(%addr, error = %e, "no IP_RECVTOS on a relay socket: ECN not copied to clients");
    }
    // No SO_REUSEADDR: on Linux it would let two relay sockets share a port.
    crate::io::socket::set_buffers(&socket, buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl RelayDriver for UdpRelay {
    type Socket = RelaySocket;

    fn bind(&self, addr: SocketAddr, options: BindOptions) -> std::io::Result<RelaySocket> {
        if options.tcp {
            return self.bind_tcp(addr);
        }
        let socket = bind_std(addr, options, self.relay_buffer())?;
        let kind = RelayKind::Udp(arc_swap::ArcSwapOption::from_pointee(socket));
        Ok(RelaySocket { kind, stop: Notify::new(), poll: OnceLock::new() })
    }

    fn start(&self, allocation: &Arc<Allocation<RelaySocket>>) {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else { return };
        let five = allocation.info().five_tuple;
        let Some(client) = self.client_leg(&five) else {
            tracing::warn!(client = %five.client, server = %five.server, "no client leg for an allocation");
            return;
        };
        // A dual allocation (RFC 8656 §7.2) has a second, IPv6, relay socket: registered too.
        for socket in allocation.sockets() {
            match &socket.kind {
                RelayKind::Udp(slot) => {
                    let Some(udp) = slot.load_full() else { continue };
                    if !self.pollers.register(&server, allocation, socket, udp, client.clone()) {
                        tracing::warn!(client = %five.client, "a relay socket without a poller: peer data will not reach the client");
                    }
                }
                RelayKind::Tcp { .. } => {
                    let (server, allocation) = (Arc::clone(&server), Arc::clone(allocation));
                    tokio::spawn(async move { accept_loop(server, allocation).await });
                }
            }
        }
    }

    fn stop(&self, allocation: &Allocation<RelaySocket>) {
        self.forget_fast_path(allocation);
        for socket in allocation.sockets() {
            socket.stop.notify_one();
            poller::unregister(socket);
            if let RelayKind::Tcp { deleted, .. } = &socket.kind {
                deleted.send_replace(true);
            }
        }
    }

    /// Ends one relay socket of a live allocation (a dual allocation's family deleted or expired
    /// alone, RFC 8656 §8): its poller lets go of it and, a UDP one, the socket closes, so the
    /// port is free for other allocations at once.
    fn stop_relay(&self, allocation: &Allocation<RelaySocket>, socket: &RelaySocket) {
        self.forget_fast_path(allocation);
        socket.stop.notify_one();
        poller::unregister(socket);
        if let RelayKind::Udp(slot) = &socket.kind {
            slot.store(None);
        }
    }

    /// RFC 8016: the relay pollers need nothing — they read the allocation's 5-tuple on every wake
    /// of its socket and follow a move themselves. A fast path's kernel entries name the old 5-tuple: they are
    /// rewritten.
    fn moved(&self, allocation: &Arc<Allocation<RelaySocket>>) {
        if let Some(offload) = self.offload.get() {
            offload.forget(allocation);
            offload.sync(allocation);
        }
    }

    fn set_dont_fragment(&self, socket: &RelaySocket, on: bool) -> std::io::Result<()> {
        match &socket.kind {
            RelayKind::Udp(slot) => match slot.load().as_deref() {
                Some(udp) => set_dont_fragment(udp, udp.local_addr()?.is_ipv6(), on),
                None => Err(closed()),
            },
            RelayKind::Tcp { .. } => Ok(()),
        }
    }

    /// RFC 8656 §14: the client's ECN codepoint on the datagram to the peer (IP_TOS / IPV6_TCLASS
    /// control message); the same retry-once as [`RelayDriver::send_to_peer`].
    fn send_to_peer_ecn(&self, socket: &RelaySocket, peer: SocketAddr, data: &[u8], ecn: Ecn) -> bool {
        use crate::io::socket::{ecn_to, try_send_with};
        let RelayKind::Udp(slot) = &socket.kind else { return false };
        let guard = slot.load();
        let Some(socket) = guard.as_deref() else { return false };
        // Never batched; what waits goes first.
        batch::flush(self);
        let (state, ecn) = (peer::recv_state(), ecn_to(ecn));
        match try_send_with(state, socket, data, peer, None, ecn) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(_) => try_send_with(state, socket, data, peer, None, ecn).is_ok(),
        }
    }

    #[inline]
    fn send_to_peer(&self, socket: &RelaySocket, peer: SocketAddr, data: &[u8]) -> bool {
        match &socket.kind {
            // A failure other than a full buffer may be the pending error of an ICMP message
            // (IP_RECVERR reports it on the next call; the error queue keeps the ICMP itself):
            // the datagram is sent again once.
            RelayKind::Udp(slot) => {
                let guard = slot.load();
                let Some(socket) = guard.as_ref() else { return false };
                // A stream connection's read in progress: sent with its neighbours (`batch.rs`).
                if batch::defer(self, socket, peer, data) {
                    return true;
                }
                match crate::io::socket::try_send_now(socket, data, peer) {
                    Ok(()) => true,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
                    Err(_) => crate::io::socket::send_now(socket, data, peer),
                }
            }
            RelayKind::Tcp { .. } => false,
        }
    }

    fn connect(&self, allocation: &Arc<Allocation<RelaySocket>>, connection_id: u32, peer: SocketAddr) {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else { return };
        let local = allocation.info().relay_addr;
        tokio::spawn(async move {
            let timeout = std::time::Duration::from_millis(CONNECTION_TIMEOUT_MS);
            let stream = match tokio::time::timeout(timeout, connect_from(local, peer)).await {
                Ok(Ok(stream)) => Some(stream),
                Ok(Err(e)) => {
                    tracing::debug!(%local, %peer, error = %e, "rfc 6062 connect failed");
                    None
                }
                Err(_elapsed) => None,
            };
            let driver = server.driver();
            let connected = stream.is_some();
            if let Some(stream) = stream {
                let _ = stream.set_nodelay(true);
                driver.lock_peer_connections().insert(connection_id, stream);
            }
            let mut out = [0u8; 256];
            match server.connect_completed(Instant::now(), connection_id, connected, &mut out) {
                Some((control, n)) => {
                    if !out.get(..n).is_some_and(|m| driver.send_on_stream(&control, m)) {
                        driver.client_queue_drops.fetch_add(1, Relaxed);
                    }
                }
                None => {
                    driver.lock_peer_connections().remove(&connection_id);
                }
            }
        });
    }

    fn connection_bound(&self, allocation: &Arc<Allocation<RelaySocket>>, connection_id: u32, data: FiveTuple) {
        let RelayKind::Tcp { deleted, .. } = &allocation.socket.kind else { return };
        if let Some(peer) = self.lock_peer_connections().remove(&connection_id) {
            let bound = BoundConnection {
                id: connection_id,
                peer,
                deleted: deleted.subscribe(),
                allocation: Arc::clone(allocation),
            };
            self.bound_connections.lock().unwrap_or_else(|e| e.into_inner()).insert(data, bound);
        }
    }

    fn close_connection(&self, connection_id: u32) {
        self.lock_peer_connections().remove(&connection_id);
    }
}

impl UdpRelay {
    fn lock_peer_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u32, TcpStream>> {
        self.peer_connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// RFC 6062: a listening socket on the relayed address, sharing it (SO_REUSEADDR and
    /// SO_REUSEPORT) with the connections to peers that are bound to it.
    fn bind_tcp(&self, addr: SocketAddr) -> std::io::Result<RelaySocket> {
        if !self.tcp_claims.lock().unwrap_or_else(|e| e.into_inner()).insert(addr) {
            return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        let claim = TcpClaim { claimed: Arc::clone(&self.tcp_claims), addr };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(TCP_RELAY_BACKLOG)?;
        let listener = TcpListener::from_std(socket.into())?;
        let kind = RelayKind::Tcp { listener: Arc::new(listener), _claim: claim, deleted: watch::Sender::new(false) };
        Ok(RelaySocket { kind, stop: Notify::new(), poll: OnceLock::new() })
    }
}
