//! The tokio relay driver: one UDP socket per allocation (RFC 8656 §7.2), a task per allocation
//! that reads from peers and writes to the client through the listener socket the allocation came
//! in on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use crate::alloc::{Allocation, FiveTuple};
use crate::server::{BindOptions, HEADROOM, RelayDriver, Server};

/// Receive buffer of relay sockets. The kernel's default (208 KiB) drops bursts; this asks for
/// 4 MiB and the kernel caps it at `net.core.rmem_max`.
const RELAY_SOCKET_BUFFER: usize = 4 << 20;

/// A relay socket and the signal that stops its task.
#[derive(Debug)]
pub struct RelaySocket {
    socket: Arc<UdpSocket>,
    stop: Notify,
}

impl RelaySocket {
    /// The socket's local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Whether packets to peers carry the DF bit (IP_MTU_DISCOVER is IP_PMTUDISC_DO).
    pub fn dont_fragment(&self) -> std::io::Result<bool> {
        use rustix::net::sockopt::{Ipv4PathMtuDiscovery, Ipv6PathMtuDiscovery, ip_mtu_discover, ipv6_mtu_discover};
        if self.socket.local_addr()?.is_ipv6() {
            Ok(ipv6_mtu_discover(&*self.socket)? == Ipv6PathMtuDiscovery::DO)
        } else {
            Ok(ip_mtu_discover(&*self.socket)? == Ipv4PathMtuDiscovery::DO)
        }
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

fn bind_std(addr: SocketAddr, options: BindOptions) -> std::io::Result<std::net::UdpSocket> {
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
    let _ = socket.set_recv_buffer_size(RELAY_SOCKET_BUFFER);
    let _ = socket.set_send_buffer_size(RELAY_SOCKET_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl RelayDriver for UdpRelay {
    type Socket = RelaySocket;

    fn bind(&self, addr: SocketAddr, options: BindOptions) -> std::io::Result<RelaySocket> {
        let std_socket = bind_std(addr, options)?;
        let socket = UdpSocket::from_std(std_socket)?;
        Ok(RelaySocket { socket: Arc::new(socket), stop: Notify::new() })
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
        let allocation = Arc::clone(allocation);
        tokio::spawn(async move { peer_loop(server, allocation, client).await });
    }

    fn stop(&self, allocation: &Allocation<RelaySocket>) {
        allocation.socket.stop.notify_one();
    }

    #[inline]
    fn send_to_peer(&self, socket: &RelaySocket, peer: SocketAddr, data: &[u8]) -> bool {
        socket.socket.try_send_to(data, peer).is_ok()
    }
}

/// Frames queued for a TCP/TLS client connection; its task writes them between its own answers.
pub type StreamSink = mpsc::Sender<Box<[u8]>>;

/// How many relayed frames may wait for a slow stream client before new ones are dropped (counted):
/// back-pressure never reaches the relay socket.
pub const STREAM_QUEUE: usize = 256;

/// Where an allocation's peer data goes.
enum ClientLeg {
    /// Out of the UDP listener socket the allocation came in on.
    Udp(Arc<UdpSocket>),
    /// Into the client's TCP/TLS connection.
    Stream(StreamSink),
}

impl ClientLeg {
    fn send(&self, data: &[u8], client: SocketAddr) -> bool {
        match self {
            ClientLeg::Udp(socket) => socket.try_send_to(data, client).is_ok(),
            ClientLeg::Stream(sink) => sink.try_send(data.into()).is_ok(),
        }
    }
}

/// Peer → client for one allocation until it is deleted.
async fn peer_loop(server: Arc<TurnServer>, allocation: Arc<Allocation<RelaySocket>>, leg: ClientLeg) {
    let client = allocation.info().five_tuple.client;
    let mut buf = vec![0u8; HEADROOM + 65536 + 4];
    let relay = Arc::clone(&allocation.socket.socket);
    loop {
        if allocation.is_deleted() {
            break;
        }
        let recv = {
            let Some(space) = buf.get_mut(HEADROOM..HEADROOM + 65536) else { break };
            tokio::select! {
                r = relay.recv_from(space) => r,
                _ = allocation.socket.stop.notified() => break,
            }
        };
        let Ok((n, peer)) = recv else { continue };
        if let Some(range) = server.relay_from_peer(Instant::now(), &allocation, peer, &mut buf, n)
            && let Some(out) = buf.get(range)
            && !leg.send(out, client)
        {
            server.driver().client_send_failures.fetch_add(1, Relaxed);
        }
    }
}
