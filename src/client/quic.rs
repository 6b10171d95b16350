//! QUIC over a TURN relay (issue #18 §4; feature `quic`): quinn's [`AsyncUdpSocket`] over a
//! [`RelayedSocket`], so a quinn [`Endpoint`](quinn::Endpoint) sends and receives its datagrams
//! through an allocation. Its local address is the relayed address, the one peers see; every
//! datagram to a peer goes as ChannelData or a Send indication (RFC 8656 §11, §12), with the
//! permission installed on first use; datagrams from peers come from Data indications and
//! ChannelData. The QUIC handshake and everything above it are quinn's.
//!
//! ```no_run
//! use switchback::client::quic;
//! use switchback::client::turn::{Credentials, TurnClient};
//!
//! # async fn run(server_config: quinn::ServerConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let client = TurnClient::allocate("127.0.0.1:3478".parse()?, Credentials::new("ann", "s3cret")).await?;
//! let socket = client.into_socket();
//! // A QUIC server peers reach at the relayed address; let a client's relayed address in first.
//! socket.permit("198.51.100.7:40000".parse()?).await?;
//! let endpoint = quic::endpoint(socket, Some(server_config))?;
//! println!("QUIC listening at {}", endpoint.local_addr()?);
//! # Ok(()) }
//! ```
//!
//! Sending: [`AsyncUdpSocket::try_send`] is synchronous. Once the peer's permission is in and the
//! client's leg is UDP, a datagram is encoded on the stack and sent on the spot
//! ([`TurnClient::try_send_to`](super::turn::TurnClient::try_send_to)). Otherwise — the first
//! datagrams to a peer, which wait for its CreatePermission, a full socket buffer, a TCP or TLS
//! leg — it is copied into a bounded queue ([`SEND_QUEUE`]) to one task that sends in order
//! ([`RelayedSocket::send_to`]), and later datagrams follow it there until the queue is empty
//! again; a full queue is `WouldBlock`, and quinn's poller waits for room. A GSO transmit (`segment_size`) is split into its datagrams. A datagram the relay
//! refuses (a peer the server forbids, one past the socket's cap) is dropped, as the network would.
//! Receiving copies each datagram from the client's queue into quinn's buffer, several per poll.
//! Once the allocation is lost, receiving fails with [`std::io::ErrorKind::NotConnected`] and
//! sending with [`std::io::ErrorKind::BrokenPipe`].

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

pub use quinn;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::sync::mpsc;

use super::ClientError;
use super::turn::{ClientState, RelayedSocket};

/// How many datagrams may wait for the sending task before `try_send` says `WouldBlock`.
pub const SEND_QUEUE: usize = 256;

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;
type WaitRoom = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;
type Queue = mpsc::Sender<(SocketAddr, Vec<u8>)>;

/// A [`RelayedSocket`] as quinn's [`AsyncUdpSocket`]. Made inside a tokio runtime (it spawns its
/// sending task, which ends when the socket is dropped or the allocation is lost).
pub struct QuicSocket {
    socket: RelayedSocket,
    queue: Queue,
    sender: tokio::task::JoinHandle<()>,
    /// Wakes a waiting `poll_recv` when the allocation is lost (no datagram would).
    lost: Mutex<Wait>,
}

impl std::fmt::Debug for QuicSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicSocket").field("socket", &self.socket).finish_non_exhaustive()
    }
}

impl Drop for QuicSocket {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

/// A quinn endpoint whose UDP is `socket`'s relayed address: a server when `server_config` is
/// given, a client always ([`quinn::Endpoint::connect`] to a peer's address, typically its own
/// relayed address). On tokio (quinn's `TokioRuntime`).
pub fn endpoint(socket: RelayedSocket, server_config: Option<quinn::ServerConfig>) -> io::Result<quinn::Endpoint> {
    quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        server_config,
        Arc::new(QuicSocket::new(socket)),
        Arc::new(quinn::TokioRuntime),
    )
}

impl QuicSocket {
    /// Wraps `socket`; must be called inside a tokio runtime.
    pub fn new(socket: RelayedSocket) -> Self {
        let (queue, mut datagrams) = mpsc::channel::<(SocketAddr, Vec<u8>)>(SEND_QUEUE);
        let sending = socket.clone();
        let sender = tokio::spawn(async move {
            while let Some((peer, datagram)) = datagrams.recv().await {
                match sending.send_to(&datagram, peer).await {
                    Ok(_) => {}
                    // Nothing more can go: closing the queue makes try_send fail.
                    Err(ClientError::AllocationLost { .. }) => return,
                    // Refused for this peer only: dropped, like a datagram the network loses.
                    Err(_) => {}
                }
            }
        });
        let mut changes = socket.client().state_changes();
        let lost: Wait = Box::pin(async move {
            let _ = changes.changed().await;
        });
        QuicSocket { socket, queue, sender, lost: Mutex::new(lost) }
    }

    /// The relayed socket underneath.
    pub fn relayed(&self) -> &RelayedSocket {
        &self.socket
    }
}

fn io_error(e: ClientError) -> io::Error {
    match e {
        ClientError::Io(e) => e,
        e @ ClientError::AllocationLost { .. } => io::Error::new(io::ErrorKind::NotConnected, e),
        e => io::Error::other(e),
    }
}

impl AsyncUdpSocket for QuicSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable { queue: self.queue.clone(), wait: Mutex::new(None) })
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        let size = transmit.segment_size.filter(|&s| s > 0).unwrap_or(transmit.contents.len()).max(1);
        // Room for every segment first, so that a transmit is queued whole or not at all.
        let segments = transmit.contents.len().div_ceil(size);
        if self.queue.is_closed() || matches!(self.socket.state(), ClientState::Failed(_)) {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the allocation is lost"));
        }
        if self.queue.capacity() < segments {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // Straight to the socket while nothing waits in the queue (which keeps the order) and the
        // peer's permission is in; from the first datagram that cannot go now, through the queue.
        let mut direct = self.queue.capacity() == self.queue.max_capacity();
        for segment in transmit.contents.chunks(size) {
            if direct {
                match self.socket.try_send_now(segment, transmit.destination) {
                    Ok(true) => continue,
                    Ok(false) => direct = false,
                    Err(e) => return Err(io::Error::new(io::ErrorKind::BrokenPipe, e)),
                }
            }
            match self.queue.try_send((transmit.destination, segment.to_vec())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the allocation is lost"));
                }
            }
        }
        Ok(())
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut n = 0;
        let mut noop = Context::from_waker(Waker::noop());
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
            // The first poll registers cx; the rest only take what is already queued.
            let polled =
                if n == 0 { self.socket.poll_recv_from(cx, buf) } else { self.socket.poll_recv_from(&mut noop, buf) };
            match polled {
                Poll::Ready(Ok((len, addr))) => {
                    *meta = RecvMeta { addr, len, stride: len, ecn: None, dst_ip: None };
                    n += 1;
                }
                Poll::Ready(Err(e)) if n == 0 => return Poll::Ready(Err(io_error(e))),
                Poll::Ready(Err(_)) | Poll::Pending => break,
            }
        }
        if n > 0 {
            return Poll::Ready(Ok(n));
        }
        let mut lost = self.lost.lock().unwrap_or_else(|e| e.into_inner());
        if lost.as_mut().poll(cx).is_ready() {
            // The state changed (it only ever fails): the queue's poll now says so.
            *lost = Box::pin(std::future::pending());
            drop(lost);
            return self.poll_recv(cx, bufs, meta);
        }
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.socket.relayed_addr())
    }
}

/// Waits for room in the sending queue (quinn's poller after a `WouldBlock`).
struct Writable {
    queue: Queue,
    /// The pending wait; a `Mutex` only to be `Sync` (it is reached through `&mut`).
    wait: Mutex<Option<WaitRoom>>,
}

impl std::fmt::Debug for Writable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writable").finish_non_exhaustive()
    }
}

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let wait = this.wait.get_mut().unwrap_or_else(|e| e.into_inner());
        let fut = wait.get_or_insert_with(|| {
            let queue = this.queue.clone();
            Box::pin(async move {
                // A permit taken and dropped: there is room now.
                queue
                    .reserve_owned()
                    .await
                    .map(drop)
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the allocation is lost"))
            })
        });
        let polled = fut.as_mut().poll(cx);
        if polled.is_ready() {
            *wait = None;
        }
        polled
    }
}
