//! The tokio relay driver: one UDP socket per allocation (RFC 8656 §7.2; two for a dual
//! allocation, one per family, each with its task), a task per socket that reads from peers and
//! writes to the client through the listener socket the allocation came in on. An RFC 6062 TCP allocation has a listening TCP socket instead, a task accepting peers on
//! it, and the TCP connections to peers (Connect), held here until a client data connection
//! binds one (`io/tcp.rs` then relays the raw bytes).

use std::collections::{HashMap, HashSet};
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc, watch};

use crate::alloc::{Allocation, FiveTuple};
use crate::server::{BindOptions, CONNECTION_TIMEOUT_MS, HEADROOM, RelayDriver, Server};

/// Receive buffer of relay sockets. The kernel's default (208 KiB) drops bursts; this asks for
/// 4 MiB and the kernel caps it at `net.core.rmem_max`.
const RELAY_SOCKET_BUFFER: usize = 4 << 20;

/// A relay socket and the signal that stops its task.
#[derive(Debug)]
pub struct RelaySocket {
    kind: RelayKind,
    stop: Notify,
}

/// UDP relays (RFC 8656) and TCP relays (RFC 6062).
#[derive(Debug)]
enum RelayKind {
    Udp(Arc<UdpSocket>),
    /// The listening socket on the relayed address; `_claim` frees the address for other TCP
    /// allocations when the socket goes; `deleted` ends the relays of its bound connections.
    Tcp {
        listener: Arc<TcpListener>,
        _claim: TcpClaim,
        deleted: watch::Sender<bool>,
    },
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
            RelayKind::Udp(socket) => socket.local_addr(),
            RelayKind::Tcp { listener, .. } => listener.local_addr(),
        }
    }

    /// Whether packets to peers carry the DF bit (IP_MTU_DISCOVER is IP_PMTUDISC_DO); never for a
    /// TCP relay.
    pub fn dont_fragment(&self) -> std::io::Result<bool> {
        use rustix::net::sockopt::{Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, ip_mtu_discover, ipv6_mtu_discover};
        let RelayKind::Udp(socket) = &self.kind else { return Ok(false) };
        if socket.local_addr()?.is_ipv6() {
            Ok(ipv6_mtu_discover(&**socket)? == Ipv6PathMtuDiscovery::DO)
        } else {
            Ok(ip_mtu_discover(&**socket)? == Ipv4PathMtuDiscovery::DO)
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
    /// Datagrams to clients the listener socket could not take.
    pub client_send_failures: AtomicU64,
    /// TCP relayed addresses in use (RFC 6062).
    tcp_claims: Arc<Mutex<HashSet<SocketAddr>>>,
    /// RFC 6062 peer connections waiting for their ConnectionBind, by CONNECTION-ID.
    peer_connections: Mutex<HashMap<u32, TcpStream>>,
    /// Peer connections just bound, for the client data connection (its 5-tuple) to take.
    bound_connections: Mutex<HashMap<FiveTuple, BoundConnection>>,
    /// `socket-buffer` for relay sockets; 0 until set: [`RELAY_SOCKET_BUFFER`].
    socket_buffer: std::sync::atomic::AtomicUsize,
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
    /// the connection task writes out.
    pub fn add_stream(&self, five_tuple: FiveTuple, sink: StreamSink) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).insert(five_tuple, sink);
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

    /// Queues a message the core wrote for a client's control connection.
    fn send_on_stream(&self, five_tuple: &FiveTuple, message: &[u8]) -> bool {
        self.stream(five_tuple).is_some_and(|sink| sink.try_send(message.into()).is_ok())
    }

    fn stream(&self, five_tuple: &FiveTuple) -> Option<StreamSink> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(five_tuple).cloned()
    }

    fn listener(&self, local: &SocketAddr) -> Option<Arc<UdpSocket>> {
        let map = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        map.get(local).cloned().or_else(|| {
            // A listener bound to the unspecified address answers from any local IP.
            map.iter().find(|(a, _)| a.port() == local.port() && a.ip().is_unspecified()).map(|(_, s)| Arc::clone(s))
        })
    }
}

fn bind_std(addr: SocketAddr, options: BindOptions, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use rustix::net::sockopt::{
        Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, set_ip_mtu_discover, set_ipv6_mtu_discover,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // RFC 8656 §18.9: set DF on packets to peers only when the client sent DONT-FRAGMENT; without it
    // the relay lets the kernel fragment (Linux's default for UDP would set DF).
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
        let mode = if options.dont_fragment { Ipv6PathMtuDiscovery::DO } else { Ipv6PathMtuDiscovery::DONT };
        set_ipv6_mtu_discover(&socket, mode)?;
    } else {
        let mode = if options.dont_fragment { Ipv4PathMtuDiscovery::DO } else { Ipv4PathMtuDiscovery::DONT };
        set_ip_mtu_discover(&socket, mode)?;
    }
    // No SO_REUSEADDR: on Linux it would let two relay sockets share a port.
    super::socket::set_buffers(&socket, buffer);
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
        let std_socket = bind_std(addr, options, self.relay_buffer())?;
        let socket = UdpSocket::from_std(std_socket)?;
        Ok(RelaySocket { kind: RelayKind::Udp(Arc::new(socket)), stop: Notify::new() })
    }

    fn start(&self, allocation: &Arc<Allocation<RelaySocket>>) {
        let Some(server) = self.server.get().and_then(Weak::upgrade) else { return };
        let five = allocation.info().five_tuple;
        let client = if five.transport.is_stream() {
            self.stream(&five).map(ClientLeg::Stream)
        } else {
            self.listener(&five.server).map(ClientLeg::Udp)
        };
        let Some(client) = client else {
            tracing::warn!(client = %five.client, server = %five.server, "no client leg for an allocation");
            return;
        };
        // A dual allocation (RFC 8656 §7.2) has a second, IPv6, relay socket: a loop of its own.
        if allocation.extra.is_some() {
            let (server, allocation, client) = (Arc::clone(&server), Arc::clone(allocation), client.clone());
            tokio::spawn(async move { peer_loop(server, allocation, client, true).await });
        }
        let allocation = Arc::clone(allocation);
        match &allocation.socket.kind {
            RelayKind::Udp(_) => tokio::spawn(async move { peer_loop(server, allocation, client, false).await }),
            RelayKind::Tcp { .. } => tokio::spawn(async move { accept_loop(server, allocation).await }),
        };
    }

    fn stop(&self, allocation: &Allocation<RelaySocket>) {
        for socket in allocation.sockets() {
            socket.stop.notify_one();
            if let RelayKind::Tcp { deleted, .. } = &socket.kind {
                deleted.send_replace(true);
            }
        }
    }

    fn stop_relay(&self, _allocation: &Allocation<RelaySocket>, socket: &RelaySocket) {
        socket.stop.notify_one();
    }

    #[inline]
    fn send_to_peer(&self, socket: &RelaySocket, peer: SocketAddr, data: &[u8]) -> bool {
        match &socket.kind {
            RelayKind::Udp(socket) => super::socket::send_now(socket, data, peer),
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
                        driver.client_send_failures.fetch_add(1, Relaxed);
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
        Ok(RelaySocket { kind, stop: Notify::new() })
    }
}

/// Backlog of a TCP relayed address (peers connecting to it).
const TCP_RELAY_BACKLOG: i32 = 64;

/// A TCP connection from the relayed address `local` to `peer` (RFC 6062 §5.2).
async fn connect_from(local: SocketAddr, peer: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if local.is_ipv6() { TcpSocket::new_v6()? } else { TcpSocket::new_v4()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(local)?;
    socket.connect(peer).await
}

/// Accepts peer connections on a TCP relayed address until the allocation is deleted (RFC 6062
/// §5.3): each with a permission is announced to the client with a ConnectionAttempt and waits
/// for its ConnectionBind; the others are closed at once.
async fn accept_loop(server: Arc<TurnServer>, allocation: Arc<Allocation<RelaySocket>>) {
    let RelayKind::Tcp { listener, .. } = &allocation.socket.kind else { return };
    let listener = Arc::clone(listener);
    let control = allocation.info().five_tuple;
    loop {
        if allocation.is_deleted() {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = allocation.socket.stop.notified() => break,
        };
        let Ok((stream, peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let mut out = [0u8; 128];
        let Some((id, n)) = server.peer_connected(Instant::now(), &allocation, peer, &mut out) else {
            continue;
        };
        let driver = server.driver();
        let _ = stream.set_nodelay(true);
        driver.lock_peer_connections().insert(id, stream);
        if !out.get(..n).is_some_and(|m| driver.send_on_stream(&control, m)) {
            driver.client_send_failures.fetch_add(1, Relaxed);
        }
    }
}

/// Frames queued for a TCP/TLS client connection; its task writes them between its own answers.
pub type StreamSink = mpsc::Sender<Box<[u8]>>;

/// How many relayed frames may wait for a slow stream client before new ones are dropped (counted):
/// back-pressure never reaches the relay socket.
pub const STREAM_QUEUE: usize = 256;

/// Where an allocation's peer data goes.
#[derive(Clone)]
enum ClientLeg {
    /// Out of the UDP listener socket the allocation came in on.
    Udp(Arc<UdpSocket>),
    /// Into the client's TCP/TLS connection.
    Stream(StreamSink),
}

impl ClientLeg {
    fn send(&self, data: &[u8], client: SocketAddr) -> bool {
        match self {
            ClientLeg::Udp(socket) => super::socket::send_now(socket, data, client),
            ClientLeg::Stream(sink) => sink.try_send(data.into()).is_ok(),
        }
    }
}

/// One receive slot: [`HEADROOM`] in front for the ChannelData or Data indication header, the
/// largest datagram, and room for the padding behind.
const PEER_BUF_LEN: usize = HEADROOM + 65536 + 4;

/// Datagrams per `recvmmsg` on a relay socket (quinn-udp's batch size on Linux).
const PEER_BATCH: usize = super::udp::BATCH;

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
const GSO_BYTES: usize = 65000;

/// The largest answer sent in a GSO run: a segment must fit the route's MTU (1500 − 40 − 8 for
/// IPv6) or the kernel refuses the whole send; bigger answers leave one `sendto` each.
const GSO_MAX_SEGMENT: usize = 1452;

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
fn recv_state() -> Option<&'static UdpSocketState> {
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
async fn peer_loop(server: Arc<TurnServer>, allocation: Arc<Allocation<RelaySocket>>, leg: ClientLeg, extra: bool) {
    let client = allocation.info().five_tuple.client;
    let socket = if extra {
        match &allocation.extra {
            Some(e) => &e.socket,
            None => return,
        }
    } else {
        &allocation.socket
    };
    let RelayKind::Udp(relay) = &socket.kind else { return };
    let relay = Arc::clone(relay);
    loop {
        if allocation.is_deleted() {
            break;
        }
        tokio::select! {
            r = relay.readable() => if r.is_err() { break },
            _ = socket.stop.notified() => break,
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
    while taken < PEER_DATAGRAMS_PER_WAKE {
        let n = {
            let mut chunks = slots.chunks_exact_mut(PEER_BUF_LEN);
            let mut iovs: [IoSliceMut<'_>; PEER_BATCH] = std::array::from_fn(|_| {
                IoSliceMut::new(chunks.next().and_then(|c| c.get_mut(HEADROOM..HEADROOM + 65536)).unwrap_or_default())
            });
            match relay.try_io(Interest::READABLE, || state.recv(UdpSockRef::from(relay), &mut iovs, meta)) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(_) => {
                    taken += 1;
                    continue;
                }
            }
        };
        taken += n.max(1);
        let mut run = GsoRun::default();
        for (meta, slot) in meta.iter().zip(slots.chunks_exact_mut(PEER_BUF_LEN)).take(n) {
            let Some(range) = server.relay_from_peer(now, allocation, meta.addr, slot, meta.len) else { continue };
            let Some(out) = slot.get(range) else { continue };
            match leg {
                ClientLeg::Udp(socket) => run.push(state, socket, gso, out, client, server),
                ClientLeg::Stream(_) => {
                    if !leg.send(out, client) {
                        server.driver().client_send_failures.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        if let ClientLeg::Udp(socket) = leg {
            run.flush(state, socket, gso, client, server);
        }
    }
    false
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
            server.driver().client_send_failures.fetch_add(1, Relaxed);
        }
    }
    false
}

/// Answers of one `recvmmsg` batch waiting in [`PeerBufs::gso`]: `count` datagrams of `size`
/// bytes to the one client, sent with one UDP GSO `sendmsg` (the kernel splits them again).
#[derive(Default)]
struct GsoRun {
    size: usize,
    count: usize,
}

impl GsoRun {
    /// Adds `out` to the run, sending the run first when `out` cannot join it (another size, or
    /// the run is full).
    fn push(
        &mut self,
        state: &UdpSocketState,
        socket: &UdpSocket,
        gso: &mut [u8],
        out: &[u8],
        client: SocketAddr,
        server: &TurnServer,
    ) {
        let full = self.count >= state.max_gso_segments() || (self.count + 1) * out.len() > gso.len();
        if self.count > 0 && (out.len() != self.size || full) {
            self.flush(state, socket, gso, client, server);
        }
        let at = self.count * out.len();
        match gso.get_mut(at..at + out.len()) {
            Some(space) if !out.is_empty() && out.len() <= GSO_MAX_SEGMENT => {
                space.copy_from_slice(out);
                self.size = out.len();
                self.count += 1;
            }
            _ => {
                if !super::socket::send_now(socket, out, client) {
                    server.driver().client_send_failures.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Sends the run: one `sendto` for one datagram, one GSO `sendmsg` for more.
    fn flush(
        &mut self,
        state: &UdpSocketState,
        socket: &UdpSocket,
        gso: &[u8],
        client: SocketAddr,
        server: &TurnServer,
    ) {
        let (size, count) = (self.size, std::mem::take(&mut self.count));
        let Some(contents) = gso.get(..size * count) else { return };
        let failed = match count {
            0 => return,
            1 => u64::from(!super::socket::send_now(socket, contents, client)),
            _ => {
                let transmit =
                    Transmit { destination: client, ecn: None, contents, segment_size: Some(size), src_ip: None };
                match state.try_send(UdpSockRef::from(socket), &transmit) {
                    Ok(()) => 0,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => count as u64,
                    // GSO refused (no offload, or a segment over the MTU; quinn-udp then stops
                    // using it): the same datagrams one `sendto` each.
                    Err(_) => {
                        contents.chunks(size.max(1)).filter(|d| !super::socket::send_now(socket, d, client)).count()
                            as u64
                    }
                }
            }
        };
        if failed > 0 {
            server.driver().client_send_failures.fetch_add(failed, Relaxed);
        }
    }
}
