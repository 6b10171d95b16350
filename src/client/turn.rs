//! A TURN client over UDP, TCP or TLS (RFC 8656 §7–§12 from the client's side): allocate with
//! long-term credentials (the 401/438 dance handled here), keep the allocation, its permissions and
//! channels refreshed in the background, send to peers and receive from them. Over TCP and TLS
//! (RFC 8656 §3.1) one connection carries everything and closing it deletes the allocation.
//! [`TcpAllocation`] holds a TCP relayed address instead (RFC 6062, `turn/tcp.rs`). With
//! [`ClientOptions::mobility`] an allocation held over UDP can move to a new local socket and keep
//! its relayed address (RFC 8016, [`TurnClient::move_to`], `turn/mobility.rs`).
//!
//! The client cannot hang on a lost allocation (`turn/keeper.rs`, `turn/state.rs`): a Refresh
//! answered 437 (RFC 8656 §8.3: the server restarted or deleted it) or another error, Refreshes
//! unanswered — each retransmitted as RFC 8489 §6.2.1 says, retried with backoff — until the
//! granted lifetime runs out (RFC 8656 §8), the TCP/TLS connection closing (§3.1) or, over UDP,
//! ICMP port unreachable from the server turn [`TurnClient::state`] to [`ClientState::Failed`], and
//! [`TurnClient::recv_from`], [`TurnClient::send_to`] and requests return
//! [`ClientError::AllocationLost`]. [`TurnClient::set_credentials`] swaps credentials about to
//! expire (`turn/credentials.rs`; RFC 8656 §5 bounds what a server takes).
//!
//! ```no_run
//! use switchback::client::turn::{ClientOptions, Credentials, TurnTransport, TurnClient};
//!
//! # async fn run(tls: switchback::client::TlsClient) -> Result<(), switchback::client::ClientError> {
//! let server = "127.0.0.1:3478".parse().unwrap();
//! let creds = Credentials::new("1700000000:alice", "base64-password");
//! let client = TurnClient::allocate(server, creds.clone()).await?; // over UDP
//! // Or over TLS (`turns:`), or `TurnTransport::Tcp`:
//! let options = ClientOptions::default().with(|o| o.transport = TurnTransport::Tls(tls));
//! let client = TurnClient::allocate_with("127.0.0.1:5349".parse().unwrap(), creds, options).await?;
//! println!("peers can reach us at {}", client.relayed_addr());
//! let peer = "198.51.100.7:5000".parse().unwrap();
//! client.create_permission(peer).await?;
//! client.bind_channel(peer).await?; // optional: 4-byte ChannelData headers instead of 36
//! client.send_to(b"hello", peer).await?;
//! let mut buf = [0u8; 1500];
//! let (n, from) = client.recv_from(&mut buf).await?;
//! println!("{from} says {:?}", &buf[..n]);
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! A phone going from Wi-Fi to LTE takes its allocation along (RFC 8016; UDP to UDP only):
//!
//! ```no_run
//! use switchback::client::turn::{ClientOptions, Credentials, TurnClient};
//!
//! # async fn run() -> Result<(), switchback::client::ClientError> {
//! let options = ClientOptions::default().with(|o| o.mobility = true); // RFC 8016 §3.1
//! let creds = Credentials::new("1700000000:alice", "base64-password");
//! let client = TurnClient::allocate_with("192.0.2.1:3478".parse().unwrap(), creds, options).await?;
//! let relayed = client.relayed_addr();
//! // The Wi-Fi is gone: a Refresh with the MOBILITY-TICKET from a socket on the new network
//! // (RFC 8016 §3.2); send_to, recv_from, permissions, channels and refreshes follow it.
//! client.rebind("203.0.113.5:0".parse().unwrap()).await?;
//! assert_eq!(client.relayed_addr(), relayed);
//! # Ok(()) }
//! ```
//!
//! Watching for a lost allocation, and swapping an RFC 7635 access token before it expires:
//!
//! ```no_run
//! use std::time::Duration;
//! use switchback::client::ClientError;
//! use switchback::client::turn::{ClientOptions, ClientState, Credentials, TurnClient};
//!
//! # async fn run(token: Vec<u8>, mac_key: [u8; 32], fresh: Credentials) -> Result<(), ClientError> {
//! // Refresh every 30 s instead of 4/5 of the lifetime: a lost allocation is noticed sooner.
//! let options = ClientOptions::default().with(|o| o.refresh_interval = Some(Duration::from_secs(30)));
//! let creds = Credentials::access_token("kid-1", token, mac_key);
//! let client = TurnClient::allocate_with("192.0.2.1:3478".parse().unwrap(), creds, options).await?;
//! // Later, before the token expires (a Refresh with the new ACCESS-TOKEN, RFC 7635 §6.2):
//! client.set_credentials(fresh).await?;
//! let mut buf = [0u8; 1500];
//! match client.recv_from(&mut buf).await {
//!     Ok((n, from)) => println!("{from} sent {n} bytes"),
//!     // The server restarted (437), stopped, or stopped answering: allocate anew.
//!     Err(ClientError::AllocationLost { reason }) => println!("lost: {reason}"),
//!     Err(e) => return Err(e),
//! }
//! assert!(matches!(client.state(), ClientState::Live | ClientState::Failed(_)));
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{ClientError, new_transaction_id};
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{
    AddressFamily, Class, Data, EncodeError, Lifetime, Message, MessageType, MessageWriter, Method, MobilityTicket,
    RequestedAddressFamily, RequestedTransport, TransactionId, XorMappedAddress, XorPeerAddress, XorRelayedAddress,
    codes,
};

mod credentials;
mod inbound;
mod keeper;
mod mobility;
mod peer_stream;
mod reader;
mod requests;
mod socket;
mod state;
mod tcp;
mod transport;

pub use credentials::Credentials;
use credentials::{Auth, reauth};
use inbound::{Inbound, Received};
use mobility::Mobility;
pub use peer_stream::PeerStream;
pub use socket::{MAX_PEERS, RelayedSocket, SocketOptions};
use state::Health;
pub use state::{ClientState, LostReason, PeerFailure};
pub use tcp::TcpAllocation;
pub use transport::OtherDatagrams;
pub use transport::TurnTransport;
use transport::{Link, Reader};

/// Client settings.
///
/// `#[non_exhaustive]` so settings can be added without a semver break: outside the crate, start
/// from [`ClientOptions::default`] and set fields on the value, or use [`ClientOptions::with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientOptions {
    /// How to reach the server: UDP (the default), TCP or TLS.
    pub transport: TurnTransport,
    /// LIFETIME to ask for (RFC 8656 §7.1); the server may grant another.
    pub lifetime: u32,
    /// REQUESTED-ADDRESS-FAMILY of the relayed address (RFC 8656 §7.1); `None` asks for none (IPv4).
    pub family: Option<AddressFamily>,
    /// How long one request may take, retransmissions included; also bounds the TCP connect and
    /// the TLS handshake.
    pub request_timeout: Duration,
    /// The local address to bind (default: the unspecified address of the server's family).
    pub bind: Option<SocketAddr>,
    /// How many received datagrams may wait for [`TurnClient::recv_from`] before new ones are dropped.
    pub queue: usize,
    /// Ask for mobility (RFC 8016 §3.1): the Allocate carries an empty MOBILITY-TICKET and the
    /// ticket the server answers with lets [`TurnClient::move_to`] take the allocation to a new
    /// socket. A server that forbids mobility (405, §3.4) is asked again without: the allocation
    /// is made, and moves return [`ClientError::MobilityForbidden`].
    pub mobility: bool,
    /// How often the allocation is refreshed (RFC 8656 §8); `None` (the default): 4/5 of the
    /// lifetime the server granted. Shorter notices a lost allocation sooner
    /// ([`TurnClient::state`]); permissions and channels keep their own periods (4 and 8 minutes).
    pub refresh_interval: Option<Duration>,
}

impl ClientOptions {
    /// These settings after `set` has changed them: builds settings in one expression, as a struct
    /// literal would (the struct is `#[non_exhaustive]`, so code outside the crate cannot use one).
    #[must_use]
    pub fn with(mut self, set: impl FnOnce(&mut Self)) -> Self {
        set(&mut self);
        self
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transport: TurnTransport::Udp,
            lifetime: 600,
            family: None,
            request_timeout: Duration::from_secs(10),
            bind: None,
            queue: 1024,
            mobility: false,
            refresh_interval: None,
        }
    }
}

#[derive(Default)]
struct Peers {
    permissions: Vec<IpAddr>,
    channels: HashMap<SocketAddr, u16>,
    by_channel: HashMap<u16, SocketAddr>,
    next_channel: u16,
}

/// Requests waiting for their response; `None` once the stream to the server has closed. A waiter
/// dropped while the map is still there means ICMP port unreachable ([`Inner::refused`]).
type Pending = Option<HashMap<TransactionId, oneshot::Sender<Vec<u8>>>>;

/// A ConnectionAttempt indication (RFC 6062 §4.4): the CONNECTION-ID and the peer's address.
type Attempt = (u32, SocketAddr);

struct Inner {
    link: Link,
    server: SocketAddr,
    /// The credentials requests use; [`TurnClient::set_credentials`] swaps them.
    creds: ArcSwap<Credentials>,
    timeout: Duration,
    /// What requests are signed with (the latest challenge's realm and nonce, and a key).
    auth: Mutex<Option<Auth>>,
    pending: Mutex<Pending>,
    peers: Mutex<Peers>,
    /// Where ConnectionAttempt indications go, for a TCP allocation; `None` once the stream to
    /// the server has closed.
    attempts: Mutex<Option<mpsc::Sender<Attempt>>>,
    /// The latest MOBILITY-TICKET, or why there is none (RFC 8016).
    mobility: Mutex<Mobility>,
    /// Live or failed, and the peers whose refresh failed.
    health: Health,
    /// Wakes the keeper for a Refresh now: the reader saw ICMP port unreachable.
    wake: Notify,
}

/// A TURN allocation held by this client. Dropping it stops the background tasks (over UDP the
/// allocation then expires on the server; over TCP or TLS the connection closes, which deletes it);
/// [`TurnClient::close`] deletes it at once.
pub struct TurnClient {
    inner: Arc<Inner>,
    relayed: SocketAddr,
    mapped: SocketAddr,
    lifetime: u32,
    /// Datagrams from peers (`turn/inbound.rs`); the reader of a socket an RFC 8016 move tries
    /// becomes a writer too, and the queue closes when the last reader ends.
    inbound: Arc<Inbound>,
    /// One `recv_from` at a time (the queue wakes one waiting reader).
    receiving: tokio::sync::Mutex<()>,
    /// The task reading the leg; held across an RFC 8016 move, which replaces it, so that moves
    /// run one at a time.
    reader: tokio::sync::Mutex<JoinHandle<()>>,
    /// The task refreshing the allocation, permissions and channels.
    keeper: JoinHandle<()>,
}

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient").field("server", &self.inner.server).field("relayed", &self.relayed).finish()
    }
}

impl Drop for TurnClient {
    fn drop(&mut self) {
        self.reader.get_mut().abort();
        self.keeper.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TurnClient {
    /// Allocates a UDP relayed address on `server`, talking to it over UDP, with default options.
    pub async fn allocate(server: SocketAddr, creds: Credentials) -> Result<Self, ClientError> {
        Self::allocate_with(server, creds, ClientOptions::default()).await
    }

    /// Allocates a UDP relayed address on `server` (RFC 8656 §7.1), talking to it over
    /// `options.transport`.
    pub async fn allocate_with(
        server: SocketAddr,
        creds: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::allocate_relay(server, creds, &options, RequestedTransport::UDP, None).await
    }

    /// Allocates a relayed address of transport `relay`; ConnectionAttempt indications go to
    /// `attempts` (RFC 6062).
    async fn allocate_relay(
        server: SocketAddr,
        creds: Credentials,
        options: &ClientOptions,
        relay: RequestedTransport,
        attempts: Option<mpsc::Sender<Attempt>>,
    ) -> Result<Self, ClientError> {
        let (link, reader) = Link::connect(&options.transport, server, options.bind, options.request_timeout).await?;
        Self::allocate_over(link, reader, server, creds, options, relay, attempts).await
    }

    /// Allocates a UDP relayed address on `server` over `socket`, a UDP socket the application
    /// keeps using (issue #18 §5, as pion's client takes a `PacketConn`): STUN to other servers,
    /// its own peers. The client's reader task reads the socket from now on (the application must
    /// not read it too); what comes from `server` is the client's, every other datagram goes to
    /// `others` (a callback on the reader task, given the datagram borrowed from the reader's
    /// buffer: no copy, no queue) or is dropped. The socket is not connected (it talks to others),
    /// so ICMP port unreachable from the server is not seen: a stopped server shows as unanswered
    /// refreshes ([`LostReason::Expired`]). `options.transport` must be UDP ([`ClientError::NotUdp`])
    /// and `options.bind` is not used.
    pub async fn allocate_on(
        socket: Arc<tokio::net::UdpSocket>,
        server: SocketAddr,
        creds: Credentials,
        options: ClientOptions,
        others: Option<OtherDatagrams>,
    ) -> Result<Self, ClientError> {
        if options.transport.is_stream() {
            return Err(ClientError::NotUdp);
        }
        let (link, reader) = Link::shared(socket, server, others);
        Self::allocate_over(link, reader, server, creds, &options, RequestedTransport::UDP, None).await
    }

    /// Allocates over a leg already open.
    async fn allocate_over(
        link: Link,
        reader: Reader,
        server: SocketAddr,
        creds: Credentials,
        options: &ClientOptions,
        relay: RequestedTransport,
        attempts: Option<mpsc::Sender<Attempt>>,
    ) -> Result<Self, ClientError> {
        let inner = Arc::new(Inner {
            link,
            server,
            creds: ArcSwap::from_pointee(creds),
            timeout: options.request_timeout,
            auth: Mutex::new(None),
            pending: Mutex::new(Some(HashMap::new())),
            peers: Mutex::new(Peers { next_channel: 0x4000, ..Peers::default() }),
            attempts: Mutex::new(attempts),
            mobility: Mutex::new(Mobility::default()),
            health: Health::new(),
            wake: Notify::new(),
        });
        let (inbound, tx) = Inbound::new(options.queue);
        let reader = tokio::spawn(reader::read_loop(Arc::clone(&inner), reader, tx));
        let (lifetime, family) = (options.lifetime, options.family);
        // RFC 8016 §3.4: mobility forbidden (405), the allocation is asked for again without.
        let mut mobile = options.mobility;
        let resp = loop {
            let resp = inner
                .transact(Method::ALLOCATE, &|w| {
                    w.add(&relay)?;
                    if let Some(family) = family {
                        w.add(&RequestedAddressFamily(family))?;
                    }
                    if mobile {
                        // RFC 8016 §3.1: an empty MOBILITY-TICKET asks for mobility.
                        w.add(&MobilityTicket(&[]))?;
                    }
                    w.add(&Lifetime(lifetime))
                })
                .await;
            match resp {
                Err(ClientError::ErrorResponse { code: codes::MOBILITY_FORBIDDEN, .. }) if mobile => {
                    lock(&inner.mobility).forbid();
                    mobile = false;
                }
                resp => break resp,
            }
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                reader.abort();
                return Err(e);
            }
        };
        let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
        let relayed = m.get::<XorRelayedAddress>().map_err(|_| ClientError::NoMappedAddress)?.0;
        let mapped = m.get::<XorMappedAddress>().map(|a| a.0).unwrap_or(relayed);
        let granted = m.get::<Lifetime>().map(|l| l.0).unwrap_or(lifetime);
        lock(&inner.mobility).keep(&m);
        let keeper = tokio::spawn(keeper::keep_alive(Arc::clone(&inner), granted, options.refresh_interval));
        Ok(TurnClient {
            inner,
            relayed,
            mapped,
            lifetime: granted,
            inbound,
            receiving: tokio::sync::Mutex::new(()),
            reader: tokio::sync::Mutex::new(reader),
            keeper,
        })
    }

    /// The relayed transport address peers send to (XOR-RELAYED-ADDRESS).
    pub fn relayed_addr(&self) -> SocketAddr {
        self.relayed
    }

    /// Our address as the server sees it (XOR-MAPPED-ADDRESS).
    pub fn mapped_addr(&self) -> SocketAddr {
        self.mapped
    }

    /// Our local socket address (of the UDP socket, or of the TCP connection).
    pub fn local_addr(&self) -> Result<SocketAddr, ClientError> {
        Ok(self.inner.link.local_addr()?)
    }

    /// The lifetime the server granted, seconds.
    pub fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// Installs a permission for `peer`'s IP (RFC 8656 §10.1); refreshed in the background.
    pub async fn create_permission(&self, peer: SocketAddr) -> Result<(), ClientError> {
        self.inner.health.check()?;
        self.inner.create_permission(peer).await?;
        let mut peers = lock(&self.inner.peers);
        if !peers.permissions.contains(&peer.ip()) {
            peers.permissions.push(peer.ip());
        }
        Ok(())
    }

    /// Binds a channel to `peer` (RFC 8656 §12.1) and returns its number; data to that peer then
    /// goes as ChannelData. Rebound in the background.
    pub async fn bind_channel(&self, peer: SocketAddr) -> Result<u16, ClientError> {
        self.inner.health.check()?;
        let number = {
            let mut peers = lock(&self.inner.peers);
            match peers.channels.get(&peer) {
                Some(n) => *n,
                None => {
                    let n = peers.next_channel;
                    peers.next_channel = if n >= 0x4FFF { 0x4000 } else { n + 1 };
                    n
                }
            }
        };
        // Known to the reader before the request goes: the server may relay ChannelData on it
        // right after its answer, before this task runs again (RFC 8656 §12.1).
        let before = lock(&self.inner.peers).by_channel.insert(number, peer);
        if let Err(e) = self.inner.channel_bind(number, peer).await {
            let mut peers = lock(&self.inner.peers);
            match before {
                Some(earlier) => peers.by_channel.insert(number, earlier),
                None => peers.by_channel.remove(&number),
            };
            return Err(e);
        }
        let mut peers = lock(&self.inner.peers);
        peers.channels.insert(peer, number);
        peers.by_channel.insert(number, peer);
        if !peers.permissions.contains(&peer.ip()) {
            peers.permissions.push(peer.ip());
        }
        Ok(number)
    }

    /// Sends `data` to `peer` through the relay: ChannelData when a channel is bound (padded to 4
    /// bytes on a stream, RFC 8656 §12.5), else a Send indication (RFC 8656 §11.1). The peer needs a
    /// permission. [`ClientError::AllocationLost`] once the client has failed ([`TurnClient::state`]).
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> Result<(), ClientError> {
        self.inner.health.check()?;
        let mut buf = vec![0u8; data.len() + 64];
        let n = self.encode(data, peer, &mut buf)?;
        self.inner.link.send(buf.get(..n).unwrap_or_default()).await
    }

    /// [`TurnClient::send_to`] without waiting, for poll-based drivers (`client::quic`): over UDP
    /// the datagram goes out now or the socket's `WouldBlock` comes back
    /// ([`ClientError::Io`]); over TCP or TLS, whose writer is behind an async lock, it is
    /// `Unsupported` (use `send_to`).
    pub fn try_send_to(&self, data: &[u8], peer: SocketAddr) -> Result<(), ClientError> {
        self.inner.health.check()?;
        let Link::Udp { socket, server, .. } = &self.inner.link else {
            return Err(std::io::Error::from(std::io::ErrorKind::Unsupported).into());
        };
        // A datagram that fits a path MTU is encoded on the stack.
        let mut stack = [0u8; 2048];
        let mut heap = Vec::new();
        let buf = if data.len() + 64 <= stack.len() {
            &mut stack[..]
        } else {
            heap.resize(data.len() + 64, 0);
            &mut heap[..]
        };
        let n = self.encode(data, peer, buf)?;
        socket.load().try_send_to(buf.get(..n).unwrap_or_default(), *server)?;
        Ok(())
    }

    /// Writes `data` for `peer` into `buf` (at least `data.len() + 64` bytes): ChannelData when a
    /// channel is bound (RFC 8656 §12.4), else a Send indication (§11.1); returns the length.
    fn encode(&self, data: &[u8], peer: SocketAddr, buf: &mut [u8]) -> Result<usize, ClientError> {
        let channel = lock(&self.inner.peers).channels.get(&peer).copied();
        let stream = self.inner.link.is_stream();
        Ok(match channel {
            Some(c) => ChannelData { channel: c, data }.encode(stream, buf).ok_or(EncodeError::TooLong)?,
            None => {
                let ty = MessageType::new(Method::SEND, Class::Indication);
                let mut w = MessageWriter::new(buf, ty, new_transaction_id()?)?;
                w.add(&XorPeerAddress(peer))?;
                w.add(&Data(data))?;
                w.finish()
            }
        })
    }

    /// Receives the next datagram a peer sent to our relayed address. Never waits forever: once
    /// the client has failed ([`TurnClient::state`]: a Refresh answered 437, refreshes unanswered
    /// until the lifetime ran out, the stream closed, the server unreachable) and the datagrams
    /// already received are read, it returns [`ClientError::AllocationLost`].
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), ClientError> {
        let _receiving = self.receiving.lock().await;
        let mut changes = self.inner.health.subscribe();
        loop {
            // Queued datagrams first, then the state.
            let queued = self.inbound.poll_recv(&mut std::task::Context::from_waker(std::task::Waker::noop()), buf);
            if let std::task::Poll::Ready(received) = queued {
                return self.received(received);
            }
            self.inner.health.check()?;
            tokio::select! {
                received = std::future::poll_fn(|cx| self.inbound.poll_recv(cx, buf)) => {
                    return self.received(received);
                }
                _ = changes.changed() => {}
            }
        }
    }

    /// What a datagram or the closed queue means for `recv_from`.
    fn received(&self, received: Received) -> Result<(usize, SocketAddr), ClientError> {
        match received {
            Received::Datagram { len, from } => Ok((len, from)),
            // The reader ended: the stream closed (it reported that first).
            Received::Closed => {
                self.inner.health.fail(LostReason::ConnectionClosed);
                self.inner.health.check().map(|()| (0, self.relayed))
            }
        }
    }

    /// [`TurnClient::recv_from`] for poll-based drivers (quinn's `AsyncUdpSocket`,
    /// `client::quic`): the next datagram a peer sent, copied into `buf` (truncated to its length),
    /// or [`ClientError::AllocationLost`] once the client has failed and the queue is empty.
    /// `Pending` registers `cx` for the next datagram only, not for a change of state: a driver that
    /// must hear of a loss without data also waits on [`TurnClient::state_changes`]. The queue has
    /// one reader at a time: while an async `recv_from` holds it, this is `Pending` (and wakes `cx`
    /// at once, to be polled again).
    pub fn poll_recv_from(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<Result<(usize, SocketAddr), ClientError>> {
        use std::task::Poll;
        let Ok(_receiving) = self.receiving.try_lock() else {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        match self.inbound.poll_recv(cx, buf) {
            Poll::Ready(received) => Poll::Ready(self.received(received)),
            Poll::Pending => match self.inner.health.check() {
                Err(e) => Poll::Ready(Err(e)),
                Ok(()) => Poll::Pending,
            },
        }
    }

    /// Datagrams from peers dropped because [`ClientOptions::queue`] of them (or 4 MiB) were
    /// waiting for `recv_from` already.
    pub fn dropped_datagrams(&self) -> u64 {
        self.inbound.dropped()
    }

    /// Refreshes the allocation (RFC 8656 §8.1) and returns the granted lifetime. A 437 answer
    /// fails the client ([`LostReason::Gone`]).
    pub async fn refresh(&self, lifetime: u32) -> Result<u32, ClientError> {
        self.inner.health.check()?;
        self.inner.refresh(lifetime).await
    }

    /// Deletes the allocation (Refresh with LIFETIME 0), closes the stream to the server if there
    /// is one, and stops the background tasks.
    pub async fn close(self) -> Result<(), ClientError> {
        if self.inner.health.check().is_err() {
            // Gone already.
            self.inner.link.shutdown().await;
            return Ok(());
        }
        let deleted = match self.inner.refresh(0).await {
            // RFC 8656 §8.3: 437 to a deleting Refresh means it is gone already; RFC 8656 §3.1:
            // so it is when the server closed the stream.
            Ok(_)
            | Err(ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. })
            | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        };
        self.inner.link.shutdown().await;
        deleted
    }
}
