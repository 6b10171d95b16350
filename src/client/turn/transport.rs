//! The TURN client's leg to the server (RFC 8656 §3.1): UDP datagrams, or STUN messages and
//! ChannelData framed on a TCP or TLS stream. This file moves bytes; what they mean is `turn.rs`'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::client::{ClientError, TlsClient};
use crate::proto::demux::{self, Frame, MAX_FRAME_LEN};

/// How the client reaches the server.
#[derive(Clone, Debug, Default)]
pub enum TurnTransport {
    /// UDP (`turn:…?transport=udp`); requests are retransmitted (RFC 8489 §6.2.1).
    #[default]
    Udp,
    /// One TCP connection (`turn:…?transport=tcp`) carrying every request and all data; closing
    /// it deletes the allocation.
    Tcp,
    /// One TLS connection (`turns:`), with the server name and roots of a [`TlsClient`].
    Tls(TlsClient),
}

impl TurnTransport {
    /// Whether the transport is a reliable stream: one transmission per request (RFC 8489 §6.2.2),
    /// ChannelData padded to 4 bytes (RFC 8656 §12.5).
    pub fn is_stream(&self) -> bool {
        !matches!(self, TurnTransport::Udp)
    }
}

/// A stream to the server, TCP or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

pub(super) type BoxedStream = Box<dyn Stream>;

/// What receives the datagrams of a shared UDP socket that do not come from the TURN server
/// ([`TurnClient::allocate_on`](super::TurnClient::allocate_on)): called on the client's reader
/// task with the datagram, borrowed from the reader's buffer, and its source. It must not block.
pub type OtherDatagrams = Arc<dyn Fn(&[u8], SocketAddr) + Send + Sync>;

/// The sending side of the leg, shared by requests and data.
pub(super) enum Link {
    /// A UDP socket; datagrams go to `server`. An RFC 8016 move swaps the socket
    /// ([`Link::switch`]). On a socket shared with the application, datagrams from elsewhere go to
    /// `others`.
    Udp { socket: ArcSwap<UdpSocket>, server: SocketAddr, others: Option<OtherDatagrams> },
    /// The write half of a stream; one writer at a time so that frames never interleave.
    Stream { writer: tokio::sync::Mutex<WriteHalf<BoxedStream>>, local: SocketAddr },
}

/// The receiving side of the leg, owned by the reader task.
pub(super) enum Reader {
    /// Reads a UDP socket: the [`Link::Udp`] one, or the one an RFC 8016 move is trying.
    Udp(Arc<UdpSocket>),
    /// The read half of the stream.
    Stream(ReadHalf<BoxedStream>),
}

fn unspecified(server: SocketAddr) -> SocketAddr {
    match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

/// Connects TCP to `server` from `bind` (any port of the server's family when `None`).
async fn connect_tcp(server: SocketAddr, bind: Option<SocketAddr>) -> std::io::Result<TcpStream> {
    let Some(bind) = bind else { return TcpStream::connect(server).await };
    let socket = if bind.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.bind(bind)?;
    socket.connect(server).await
}

/// Opens a TCP connection to `server`, with the TLS handshake for [`TurnTransport::Tls`], within
/// `timeout`; returns it and its local address. UDP is no stream: [`ClientError::NotAStream`].
pub(super) async fn open_stream(
    transport: &TurnTransport,
    server: SocketAddr,
    bind: Option<SocketAddr>,
    timeout: Duration,
) -> Result<(BoxedStream, SocketAddr), ClientError> {
    if let TurnTransport::Udp = transport {
        return Err(ClientError::NotAStream);
    }
    let deadline = Instant::now() + timeout;
    let tcp = tokio::time::timeout_at(deadline, connect_tcp(server, bind))
        .await
        .map_err(|_| ClientError::Timeout(timeout))??;
    tcp.set_nodelay(true)?;
    let local = tcp.local_addr()?;
    let stream: BoxedStream = match transport {
        TurnTransport::Tls(tls) => {
            Box::new(tls.handshake(tcp, deadline.saturating_duration_since(Instant::now())).await?)
        }
        _ => Box::new(tcp),
    };
    Ok((stream, local))
}

impl Link {
    /// Opens the leg to `server` (the TCP connection and TLS handshake within `timeout`).
    pub(super) async fn connect(
        transport: &TurnTransport,
        server: SocketAddr,
        bind: Option<SocketAddr>,
        timeout: Duration,
    ) -> Result<(Link, Reader), ClientError> {
        if let TurnTransport::Udp = transport {
            let socket = UdpSocket::bind(bind.unwrap_or_else(|| unspecified(server))).await?;
            // Connected, so that the kernel reports ICMP port unreachable from the server as
            // ECONNREFUSED (and delivers datagrams from the server only).
            socket.connect(server).await?;
            let socket = Arc::new(socket);
            let reader = Reader::Udp(Arc::clone(&socket));
            return Ok((Link::Udp { socket: ArcSwap::new(socket), server, others: None }, reader));
        }
        let (stream, local) = open_stream(transport, server, bind, timeout).await?;
        let (read, write) = tokio::io::split(stream);
        Ok((Link::Stream { writer: tokio::sync::Mutex::new(write), local }, Reader::Stream(read)))
    }

    /// The leg over `socket`, a UDP socket the application shares (not connected: it may talk to
    /// others too); datagrams from elsewhere than `server` go to `others`, or are dropped.
    pub(super) fn shared(socket: Arc<UdpSocket>, server: SocketAddr, others: Option<OtherDatagrams>) -> (Link, Reader) {
        let reader = Reader::Udp(Arc::clone(&socket));
        (Link::Udp { socket: ArcSwap::new(socket), server, others }, reader)
    }

    /// Whether this is a stream (see [`TurnTransport::is_stream`]).
    pub(super) fn is_stream(&self) -> bool {
        matches!(self, Link::Stream { .. })
    }

    /// Our local address.
    pub(super) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        match self {
            Link::Udp { socket, .. } => socket.load().local_addr(),
            Link::Stream { local, .. } => Ok(*local),
        }
    }

    /// Sends one datagram, or writes one frame whole.
    pub(super) async fn send(&self, frame: &[u8]) -> Result<(), ClientError> {
        match self {
            Link::Udp { socket, server, .. } => {
                let socket = socket.load_full();
                socket.send_to(frame, *server).await?;
            }
            Link::Stream { writer, .. } => {
                let mut writer = writer.lock().await;
                writer.write_all(frame).await?;
                writer.flush().await?;
            }
        }
        Ok(())
    }

    /// RFC 8016 §3.2: from now on datagrams leave from `socket`; returns the socket they left from
    /// until now, or gives `socket` back for a stream (which does not move).
    pub(super) fn switch(&self, socket: Arc<UdpSocket>) -> Arc<UdpSocket> {
        match self {
            Link::Udp { socket: current, .. } => current.swap(socket),
            Link::Stream { .. } => socket,
        }
    }

    /// Closes the stream (TLS: with close_notify); nothing to do for UDP.
    pub(super) async fn shutdown(&self) {
        if let Link::Stream { writer, .. } = self {
            let _ = writer.lock().await.shutdown().await;
        }
    }

    /// Hands every datagram from the server, or every frame of the stream, to `deliver`, until the
    /// stream closes or cannot be framed (a UDP socket never ends: its task is aborted when an RFC
    /// 8016 move leaves it). On UDP, `refused` hears of ICMP port unreachable from the server
    /// (ECONNREFUSED on the connected socket).
    pub(super) async fn receive(&self, reader: Reader, mut deliver: impl FnMut(&[u8]), mut refused: impl FnMut()) {
        match (self, reader) {
            (Link::Udp { server, others, .. }, Reader::Udp(socket)) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, from) = match socket.recv_from(&mut buf).await {
                        Ok(received) => received,
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                            refused();
                            continue;
                        }
                        Err(_) => continue,
                    };
                    let Some(datagram) = buf.get(..n) else { continue };
                    if from == *server {
                        deliver(datagram);
                    } else if let Some(others) = others {
                        others(datagram, from);
                    }
                }
            }
            (Link::Stream { .. }, Reader::Stream(mut read)) => {
                let mut buf = vec![0u8; MAX_FRAME_LEN];
                let mut filled = 0;
                loop {
                    let mut start = 0;
                    while let Some(rest) = buf.get(start..filled) {
                        match demux::stream_frame(rest, false) {
                            Frame::Complete(n) if n > 0 => {
                                if let Some(frame) = rest.get(..n) {
                                    deliver(frame);
                                }
                                start += n;
                            }
                            Frame::Incomplete => break,
                            // RFC 8656 §3.1: a stream that lost its framing is closed.
                            Frame::Complete(_) | Frame::Invalid => return,
                        }
                    }
                    buf.copy_within(start.min(filled)..filled, 0);
                    filled -= start.min(filled);
                    let Some(space) = buf.get_mut(filled..).filter(|s| !s.is_empty()) else { return };
                    match read.read(space).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => filled += n,
                    }
                }
            }
            (Link::Stream { .. }, Reader::Udp(_)) | (Link::Udp { .. }, Reader::Stream(_)) => {}
        }
    }
}
