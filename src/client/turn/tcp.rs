//! TCP allocations (RFC 6062 §4, the client's side): a TCP relayed address held over a TCP or TLS
//! control connection. [`TcpAllocation::connect`] sends Connect and binds a new data connection to
//! the CONNECTION-ID; [`TcpAllocation::accept`] waits for a ConnectionAttempt and binds likewise.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::peer_stream::PeerStream;
use super::transport::{BoxedStream, TurnTransport, open_stream};
use super::{Attempt, Auth, ClientOptions, ClientState, Credentials, TurnClient, lock, reauth};
use crate::client::{ClientError, new_transaction_id};
use crate::proto::demux::{Frame, stream_frame};
use crate::proto::stun::{
    Class, ConnectionId, Message, MessageType, MessageWriter, Method, Nonce, Realm, RequestedTransport, Username,
    XorPeerAddress, codes,
};

/// A TCP relayed address (RFC 6062) held by this client over one TCP or TLS control connection,
/// refreshed in the background like a [`TurnClient`]'s. Dropping it or [`TcpAllocation::close`]
/// closes the control connection, which deletes the allocation and closes its peer connections.
///
/// ```no_run
/// use switchback::client::turn::{ClientOptions, Credentials, TcpAllocation, TurnTransport};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let options = ClientOptions::default().with(|o| o.transport = TurnTransport::Tcp);
/// let creds = Credentials::new("alice", "password");
/// let alloc = TcpAllocation::allocate("192.0.2.1:3478".parse()?, creds, options).await?;
/// let mut peer = alloc.connect("198.51.100.7:80".parse()?).await?;
/// peer.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
/// let mut answer = Vec::new();
/// peer.read_to_end(&mut answer).await?;
/// // Peers may connect to alloc.relayed_addr() once they have a permission:
/// alloc.create_permission("203.0.113.9:0".parse()?).await?;
/// let (from, mut incoming) = alloc.accept().await?;
/// # Ok(()) }
/// ```
pub struct TcpAllocation {
    client: TurnClient,
    transport: TurnTransport,
    bind: Option<SocketAddr>,
    attempts: tokio::sync::Mutex<mpsc::Receiver<Attempt>>,
}

impl std::fmt::Debug for TcpAllocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpAllocation").field("client", &self.client).finish_non_exhaustive()
    }
}

impl TcpAllocation {
    /// Allocates a TCP relayed address on `server` (REQUESTED-TRANSPORT 6) over
    /// `options.transport`, which must be [`TurnTransport::Tcp`] or [`TurnTransport::Tls`]
    /// ([`ClientError::NotAStream`] otherwise). Data connections go to the same server address
    /// over the same transport, from `options.bind`'s IP.
    pub async fn allocate(server: SocketAddr, creds: Credentials, options: ClientOptions) -> Result<Self, ClientError> {
        if !options.transport.is_stream() {
            return Err(ClientError::NotAStream);
        }
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let client = TurnClient::allocate_relay(server, creds, &options, RequestedTransport::TCP, Some(tx)).await?;
        Ok(TcpAllocation {
            client,
            transport: options.transport,
            bind: options.bind.map(|b| SocketAddr::new(b.ip(), 0)),
            attempts: tokio::sync::Mutex::new(rx),
        })
    }

    /// The relayed transport address peers connect to (XOR-RELAYED-ADDRESS).
    pub fn relayed_addr(&self) -> SocketAddr {
        self.client.relayed_addr()
    }

    /// Our address as the server sees it (XOR-MAPPED-ADDRESS).
    pub fn mapped_addr(&self) -> SocketAddr {
        self.client.mapped_addr()
    }

    /// The local address of the control connection.
    pub fn local_addr(&self) -> Result<SocketAddr, ClientError> {
        self.client.local_addr()
    }

    /// The lifetime the server granted, seconds.
    pub fn lifetime(&self) -> u32 {
        self.client.lifetime()
    }

    /// The allocation's state (see [`TurnClient::state`]): a closed control connection or a
    /// refused Refresh fails it.
    pub fn state(&self) -> ClientState {
        self.client.state()
    }

    /// Every change of [`TcpAllocation::state`] (see [`TurnClient::state_changes`]).
    pub fn state_changes(&self) -> tokio::sync::watch::Receiver<ClientState> {
        self.client.state_changes()
    }

    /// Installs a permission for `peer`'s IP (RFC 8656 §10.1), refreshed in the background; peers
    /// connecting to the relayed address need one (Connect installs its own).
    pub async fn create_permission(&self, peer: SocketAddr) -> Result<(), ClientError> {
        self.client.create_permission(peer).await
    }

    /// Connects to `peer` from the relayed address (RFC 6062 §4.3): Connect on the control
    /// connection (an error response is [`ClientError::ErrorResponse`]: 403 for a peer the
    /// server's policy denies, 446 while a connection to `peer` exists, 447 when the server could
    /// not connect), then a new data connection bound to the CONNECTION-ID. The server may try
    /// for up to 30 s; `options.request_timeout` bounds the wait for its answer.
    pub async fn connect(&self, peer: SocketAddr) -> Result<PeerStream, ClientError> {
        let resp = self.client.inner.transact(Method::CONNECT, &|w| w.add(&XorPeerAddress(peer))).await?;
        let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
        let id = m.get::<ConnectionId>().map_err(|_| ClientError::NoConnectionId)?.0;
        self.bind_data(id, peer).await
    }

    /// Waits for a peer to connect to the relayed address (a ConnectionAttempt indication, RFC 6062
    /// §4.4) and binds a new data connection to it; returns the peer's address and the stream.
    /// [`ClientError::Closed`] once the control connection has closed.
    pub async fn accept(&self) -> Result<(SocketAddr, PeerStream), ClientError> {
        let (id, peer) = self.attempts.lock().await.recv().await.ok_or(ClientError::Closed)?;
        Ok((peer, self.bind_data(id, peer).await?))
    }

    /// Refreshes the allocation (RFC 8656 §8.1) and returns the granted lifetime.
    pub async fn refresh(&self, lifetime: u32) -> Result<u32, ClientError> {
        self.client.refresh(lifetime).await
    }

    /// Deletes the allocation and closes the control connection (see [`TurnClient::close`]).
    pub async fn close(self) -> Result<(), ClientError> {
        self.client.close().await
    }

    /// Opens a data connection and binds it to `id`, all within the request timeout.
    async fn bind_data(&self, id: u32, peer: SocketAddr) -> Result<PeerStream, ClientError> {
        let inner = &self.client.inner;
        let timeout = inner.timeout;
        let bound = async {
            let (mut stream, local) = open_stream(&self.transport, inner.server, self.bind, timeout).await?;
            let creds = inner.creds.load_full();
            let auth = match lock(&inner.auth).clone() {
                Some(a) if !Arc::ptr_eq(&a.creds, &creds) => Some(a.rekey(&creds)?),
                auth => auth,
            };
            let early = connection_bind(&mut stream, id, &creds, auth).await?;
            Ok(PeerStream::new(stream, early, peer, id, local))
        };
        tokio::time::timeout(timeout, bound).await.map_err(|_| ClientError::Timeout(timeout))?
    }
}

/// ConnectionBind (RFC 6062 §4.3) on a fresh data connection, signed with `creds`; starts from the
/// control connection's realm and nonce, and retries once after a 401 or a 438 (the server's nonces
/// are bound to the connection, so a 438 is expected). Returns the bytes read past the answer.
async fn connection_bind(
    stream: &mut BoxedStream,
    id: u32,
    creds: &Arc<Credentials>,
    mut auth: Option<Auth>,
) -> Result<Vec<u8>, ClientError> {
    let mut buf = Vec::new();
    for _ in 0..3 {
        let tid = new_transaction_id()?;
        let mut req = vec![0u8; 512];
        let n = {
            let ty = MessageType::new(Method::CONNECTION_BIND, Class::Request);
            let mut w = MessageWriter::new(&mut req, ty, tid)?;
            w.add(&ConnectionId(id))?;
            if let Some(a) = &auth {
                w.add(&Username(&creds.username))?;
                w.add(&Realm(&a.realm))?;
                w.add(&Nonce(&a.nonce))?;
                w.add_message_integrity(&a.key)?;
            }
            w.add_fingerprint()?;
            w.finish()
        };
        stream.write_all(req.get(..n).unwrap_or_default()).await?;
        stream.flush().await?;
        let len = read_frame(stream, &mut buf).await?;
        let frame: Vec<u8> = buf.drain(..len).collect();
        let m = Message::parse(&frame).map_err(|_| ClientError::BadFrame)?;
        if m.transaction_id() != tid || m.message_type().method != Method::CONNECTION_BIND {
            return Err(ClientError::BadFrame);
        }
        if m.message_type().class == Class::SuccessResponse {
            return Ok(buf);
        }
        auth = Some(reauth(creds, auth.as_ref().map(|a| a.realm.as_str()), &m)?);
    }
    Err(ClientError::ErrorResponse { code: codes::UNAUTHENTICATED, reason: "authentication failed".into() })
}

/// Reads until `buf` starts with a whole frame and returns its length.
async fn read_frame(stream: &mut BoxedStream, buf: &mut Vec<u8>) -> Result<usize, ClientError> {
    loop {
        match stream_frame(buf, false) {
            Frame::Complete(n) if n > 0 => return Ok(n),
            Frame::Incomplete => {}
            Frame::Complete(_) | Frame::Invalid => return Err(ClientError::BadFrame),
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}
