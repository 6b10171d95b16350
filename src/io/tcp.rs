//! The TCP listener: accept (up to a cap), then per connection cut STUN / ChannelData frames from the
//! byte stream (RFC 8656 §3.1), hand each to the server and write the answers back in order.
//! A TLS listener is the same driver with an acceptor: the handshake (`tls.rs`) comes first, then
//! the same [`Connection`] runs on the decrypted stream — unless the listener serves HTTPS too
//! (`api-on-tls`) and the client chose `http/1.1` by ALPN: that stream is handed over
//! (`tls::route`, RFC 7443).

use std::cell::RefCell;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tracing::{debug, trace, warn};

mod raw;

use raw::{ConnectionBytes, relay_raw};

use super::proxy::{self, PROXY_HEADER_TIMEOUT, ProxyProtocol};
use super::stats::AuthenticatedConnection;
use super::stream_queue::StreamSource;
use super::tls::{self, HttpConnection, HttpHandoff, ReloadableTls, Route};
use super::{BoundConnection, TurnServer};
use super::{IoStats, Limits, stopped};
use crate::alloc::FiveTuple;
use crate::policy::{SourceSlot, SourceSlots};
use crate::proto::demux::{self, Frame, MAX_FRAME_LEN};
use crate::proto::stun::MAX_MESSAGE_LEN;
use crate::server::{EndReason, Outcome, Received, RequestLatency, Transport};

/// First size of a connection's read buffer; it grows (doubling) only while a frame needs it.
const INITIAL_READ_BUF: usize = 4096;
/// Largest read buffer: one maximal frame plus room to read the start of the next.
const MAX_READ_BUF: usize = MAX_FRAME_LEN + 4096;
/// Write the pending answers once they reach this size, even in the middle of a burst.
const FLUSH_AT: usize = 16 * 1024;
/// The first two bytes of a ConnectionBind request (RFC 6062 §6.1, method 0x00B, class request).
const CONNECTION_BIND_REQUEST: [u8; 2] = [0x00, 0x0B];
/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

thread_local! {
    /// The server writes an answer here, then it is copied into the connection's (small) write
    /// buffer: one big scratch buffer per worker thread instead of one per connection.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; MAX_MESSAGE_LEN]);
}

pub(super) struct TcpDriver {
    pub(super) listener: TcpListener,
    pub(super) local: SocketAddr,
    pub(super) server: Arc<TurnServer>,
    pub(super) stats: Arc<IoStats>,
    pub(super) limits: Limits,
    pub(super) strict_rfc8656: bool,
    /// TLS listener: the handshake comes first (`Transport::Tls` in the 5-tuple).
    pub(super) tls: Option<ReloadableTls>,
    /// `proxy-protocol`: a PROXY v2 header comes before anything else (`io/proxy.rs`).
    pub(super) proxy: Arc<ProxyProtocol>,
    /// Open connections per source (the PROXY header's client behind a balancer) that have not
    /// authenticated yet, for the per-source cap.
    pub(super) clients: Arc<SourceSlots>,
}

impl TcpDriver {
    /// Accepts until `stop` fires, then waits for every connection to close.
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut connections = JoinSet::new();
        let mut refused: u64 = 0;
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => self.admit(&mut connections, &mut refused, stream, peer, &stop),
                    Err(e) => {
                        IoStats::bump(&self.stats.tcp_accept_errors);
                        debug!(local = %self.local, error = %e, "tcp accept failed");
                        tokio::select! {
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                            () = stopped(&mut stop) => break,
                        }
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                () = stopped(&mut stop) => break,
            }
        }
        // Every connection watches `stop` too and ends promptly.
        while connections.join_next().await.is_some() {}
        debug!(local = %self.local, tls = self.tls.is_some(), "tcp listener stopped");
    }

    /// The connection state of a client at `peer` on this listener.
    fn connection(&self, peer: SocketAddr) -> Connection {
        Connection {
            transport: if self.tls.is_some() { Transport::Tls } else { Transport::Tcp },
            peer,
            local: self.local,
            server: self.server.clone(),
            stats: self.stats.clone(),
            idle_timeout: self.limits.tcp_idle_timeout,
            auth_timeout: self.limits.tcp_auth_timeout,
            strict_rfc8656: self.strict_rfc8656,
        }
    }

    fn admit(
        &self,
        connections: &mut JoinSet<()>,
        refused: &mut u64,
        stream: TcpStream,
        peer: SocketAddr,
        stop: &watch::Receiver<bool>,
    ) {
        if connections.len() >= self.limits.max_tcp_connections {
            IoStats::bump(&self.stats.tcp_rejected);
            debug!(local = %self.local, %peer, "tcp connection cap reached, closing new connection");
            return;
        }
        if self.proxy.on && !self.proxy.trusts(peer) {
            IoStats::bump(&self.stats.proxy_untrusted);
            debug!(local = %self.local, %peer, "proxy-protocol: connection from an untrusted source, closing");
            return;
        }
        // Behind a load balancer every connection comes from it: the per-source cap applies to the
        // client its PROXY header names instead (below, once the header is read).
        let slot = if self.proxy.on {
            None
        } else {
            match self.clients.take(peer.ip(), self.limits.max_tcp_connections_per_source) {
                Some(slot) => Some(slot),
                None => {
                    IoStats::bump(&self.stats.tcp_rejected);
                    *refused += 1;
                    // Logged with the address, at most once per power of two refusals.
                    if refused.is_power_of_two() {
                        warn!(local = %self.local, %peer, refused = *refused,
                            "tcp-connections-per-source reached: closing new connections from this source until some authenticate or close");
                    }
                    return;
                }
            }
        };
        IoStats::bump(&self.stats.tcp_accepted);
        // STUN messages are small and answered one by one: no Nagle delay.
        let _ = stream.set_nodelay(true);
        let mut connection = self.connection(peer);
        // On a wildcard listener the 5-tuple's server address is the one the client connected to.
        if self.local.ip().is_unspecified()
            && let Ok(local) = stream.local_addr()
        {
            connection.local = local;
        }
        let acceptor = self.tls.as_ref().map(ReloadableTls::acceptor);
        let http = self.tls.as_ref().and_then(ReloadableTls::http_handoff).cloned();
        let handshake_timeout = self.limits.tls_handshake_timeout;
        let (proxy, stats, mut stop) = (self.proxy.on, self.stats.clone(), stop.clone());
        let (clients, per_client) = (self.clients.clone(), self.limits.max_tcp_connections_per_source);
        // The open-connections gauge (metrics): up now, down when the connection's task ends.
        let open = IoStats::open_gauge(&self.stats, self.tls.is_some());
        connections.spawn(async move {
            let _open = open;
            let mut stream = stream;
            // The per-source slot (of the PROXY header's client behind a balancer), held until the
            // connection authenticates or ends.
            let mut slot = slot;
            if proxy {
                match proxied_client(&mut stream, peer, &stats, &clients, per_client, &mut stop).await {
                    Some((client, proxied)) => {
                        connection.peer = client;
                        slot = Some(proxied);
                    }
                    None => return,
                }
            }
            match acceptor {
                None => connection.run(stream, stop, slot).await,
                Some(acceptor) => {
                    let peer = connection.peer;
                    if let Some(tls) =
                        tls::handshake(acceptor, stream, peer, handshake_timeout, &stats, &mut stop).await
                    {
                        connection.run_tls(tls, http.as_ref(), stop, slot).await;
                    }
                }
            }
        });
    }
}

/// `proxy-protocol`: reads the PROXY v2 header of a connection from `peer` (within
/// [`PROXY_HEADER_TIMEOUT`]) and takes a per-source slot for the client it names. `None` (counted,
/// logged) closes the connection: no valid header in time, the server stopping, or that client at
/// its cap.
async fn proxied_client(
    stream: &mut TcpStream,
    peer: SocketAddr,
    stats: &IoStats,
    clients: &Arc<SourceSlots>,
    per_client: usize,
    stop: &mut watch::Receiver<bool>,
) -> Option<(SocketAddr, SourceSlot)> {
    let read = tokio::select! {
        r = tokio::time::timeout(PROXY_HEADER_TIMEOUT, proxy::read_source(stream, peer)) => r,
        () = stopped(stop) => return None,
    };
    let client = match read {
        Ok(Ok(client)) => client,
        Ok(Err(e)) => {
            IoStats::bump(&stats.proxy_header_failures);
            debug!(%peer, error = %e, "proxy-protocol: no valid header, closing");
            return None;
        }
        Err(_elapsed) => {
            IoStats::bump(&stats.proxy_header_failures);
            debug!(%peer, timeout = ?PROXY_HEADER_TIMEOUT, "proxy-protocol: header timed out, closing");
            return None;
        }
    };
    trace!(%peer, %client, "proxy-protocol header read");
    let Some(slot) = clients.take(client.ip(), per_client) else {
        IoStats::bump(&stats.tcp_rejected);
        debug!(%peer, %client, "tcp connection cap per source reached, closing new connection");
        return None;
    };
    Some((client, slot))
}

/// Why a connection ended.
enum Close {
    Stopped,
    PeerClosed,
    Idle,
    Invalid,
    Io(std::io::Error),
    /// RFC 6062 §5.4: a ConnectionBind made this a client data connection of `bound`;
    /// `leftover` are bytes the client sent after it (already for the peer).
    Bound {
        bound: BoundConnection,
        leftover: Vec<u8>,
    },
    /// No allocation (nor ConnectionBind) within the authentication deadline.
    Unauthenticated,
    /// The TCP allocation of a client data connection was deleted (RFC 6062 §5: its connections
    /// close with it).
    AllocationDeleted,
}

/// Where [`Connection::answer_frames`] stopped.
enum Step {
    /// No complete frame left: read more.
    More,
    /// The answers should be written before going on.
    Flush,
    /// The connection ends.
    Close(Close),
}

/// What woke a waiting connection.
enum Woke {
    /// Bytes from the client (0: the idle timer fired on a connection that stays open).
    Read(usize),
    /// Relayed frames were taken from the stream queue, to be written.
    Relayed,
}

/// One client connection, over TCP or (already handshaken) TLS.
pub(super) struct Connection {
    transport: Transport,
    peer: SocketAddr,
    local: SocketAddr,
    server: Arc<TurnServer>,
    stats: Arc<IoStats>,
    idle_timeout: Duration,
    /// Without an allocation (or ConnectionBind) by then, the connection is closed.
    auth_timeout: Duration,
    strict_rfc8656: bool,
}

impl Connection {
    fn five_tuple(&self) -> FiveTuple {
        FiveTuple { transport: self.transport, client: self.peer, server: self.local }
    }

    /// Counts this connection as authenticated (metrics) until the guard is dropped.
    fn authenticated(&self) -> AuthenticatedConnection {
        IoStats::authenticated_gauge(&self.stats, self.transport == Transport::Tls)
    }

    /// A TLS connection after its handshake: TURN, or (`api-on-tls`, the client chose `http/1.1`)
    /// handed to the HTTP side through `http` — then its TURN per-source `slot` goes with this task
    /// and the HTTP limits apply instead.
    async fn run_tls(
        self,
        tls: TlsStream<TcpStream>,
        http: Option<&HttpHandoff>,
        stop: watch::Receiver<bool>,
        slot: Option<SourceSlot>,
    ) {
        let alpn = tls.get_ref().1.alpn_protocol();
        match (tls::route(alpn, http.is_some()), http) {
            (Route::Http, Some(http)) => {
                if http.hand_over(HttpConnection { stream: tls, peer: self.peer }) {
                    trace!(peer = %self.peer, local = %self.local, "tls connection chose http/1.1: handed to the api");
                }
            }
            _ => self.run(tls, stop, slot).await,
        }
    }

    /// Serves the stream until it closes, then frees the allocation made over it.
    pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        self,
        mut stream: S,
        mut stop: watch::Receiver<bool>,
        mut slot: Option<SourceSlot>,
    ) {
        // Peer data for an allocation made over this connection arrives here (io/relay.rs).
        let (sink, mut relayed) = super::stream_queue::stream_queue();
        if !self.server.driver().add_stream(self.five_tuple(), sink) {
            // Another open connection is this client (a PROXY header claiming its address): this
            // one touches neither its allocation nor its data.
            IoStats::bump(&self.stats.tcp_closed_duplicate);
            debug!(peer = %self.peer, local = %self.local, "a connection with this 5-tuple is open already: closing");
            return;
        }
        let mut authenticated = None;
        let close = self.serve(&mut stream, &mut stop, &mut relayed, &mut slot, &mut authenticated).await;
        // RFC 8656 §3.1: closing the connection frees its allocation.
        self.server.driver().remove_stream(&self.five_tuple());
        self.server.close_allocation(Instant::now(), &self.five_tuple(), EndReason::ConnectionClosed);
        drop(relayed);
        let close = match close {
            Close::Bound { bound, leftover } => {
                // A ConnectionBind needs credentials: a client data connection has authenticated.
                authenticated.get_or_insert_with(|| self.authenticated());
                let id = bound.id;
                let bytes = ConnectionBytes::default();
                let close = relay_raw(&self.server, &mut stream, bound, &leftover, &mut stop, &bytes).await;
                self.server.connection_closed(Instant::now(), id, bytes.read());
                close
            }
            close => close,
        };
        let why = match close {
            Close::Stopped => "server stopping",
            Close::PeerClosed => "closed by peer",
            Close::Idle => {
                IoStats::bump(&self.stats.tcp_closed_idle);
                "idle timeout"
            }
            Close::Unauthenticated => {
                IoStats::bump(&self.stats.tcp_closed_unauthenticated);
                "no allocation within the authentication deadline"
            }
            Close::Invalid => {
                IoStats::bump(&self.stats.tcp_closed_invalid);
                "invalid frame"
            }
            Close::Bound { .. } => "rfc 6062 data connection done",
            Close::AllocationDeleted => "its tcp allocation was deleted",
            Close::Io(e) => {
                IoStats::bump(&self.stats.tcp_io_errors);
                debug!(peer = %self.peer, error = %e, transport = ?self.transport, "stream i/o error");
                "i/o error"
            }
        };
        debug!(peer = %self.peer, local = %self.local, transport = ?self.transport, why, "stream connection closed");
    }

    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        stop: &mut watch::Receiver<bool>,
        relayed: &mut StreamSource,
        slot: &mut Option<SourceSlot>,
        authenticated: &mut Option<AuthenticatedConnection>,
    ) -> Close {
        let mut buf = vec![0u8; INITIAL_READ_BUF];
        let mut filled = 0;
        let mut pending = Vec::new();
        let auth_deadline = tokio::time::Instant::now() + self.auth_timeout;
        loop {
            // Answer every complete frame at the front of the buffer.
            let mut start = 0;
            let verdict = loop {
                match self.answer_frames(&buf, filled, &mut start, &mut pending) {
                    Step::More => break None,
                    Step::Flush => {
                        if let Err(close) = self.flush(stream, &mut pending, stop).await {
                            return close;
                        }
                    }
                    Step::Close(close) => break Some(close),
                }
            };
            if authenticated.is_none() && self.server.allocations().get(&self.five_tuple()).is_some() {
                // Authenticated: the user's quota counts it from now on, not its source's cap (a
                // company NAT puts hundreds of users behind one address).
                *authenticated = Some(self.authenticated());
                *slot = None;
            }
            // Answers to the frames before a bad one still go out.
            if let Err(close) = self.flush(stream, &mut pending, stop).await {
                return close;
            }
            if let Some(close) = verdict {
                return close;
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            // Back to the small buffer once a large frame has gone through.
            if buf.len() > INITIAL_READ_BUF && filled <= INITIAL_READ_BUF {
                buf.truncate(INITIAL_READ_BUF);
                buf.shrink_to_fit();
            }
            if filled == buf.len() {
                if buf.len() >= MAX_READ_BUF {
                    return Close::Invalid;
                }
                buf.resize((buf.len() * 2).min(MAX_READ_BUF), 0);
            }

            let Some(space) = buf.get_mut(filled..) else {
                return Close::Invalid;
            };
            let deadline = authenticated.is_none().then_some(auth_deadline);
            match self.wait(stream, space, relayed, stop, deadline).await {
                Ok(Woke::Read(n)) => filled += n,
                Ok(Woke::Relayed) => {
                    // Every frame queued since the last wake, in one write.
                    let written = self.write_out(stream, relayed.batch(), stop).await;
                    relayed.written();
                    if let Err(close) = written {
                        return close;
                    }
                }
                Err(close) => return close,
            }
        }
    }

    /// Waits for the next thing to do: bytes from the client (read into `space`: how many), or
    /// relayed frames for it (taken into the source's batch); or the end — idle, closed, stopped,
    /// or no allocation by `auth_deadline`.
    async fn wait<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        space: &mut [u8],
        relayed: &mut StreamSource,
        stop: &mut watch::Receiver<bool>,
        auth_deadline: Option<tokio::time::Instant>,
    ) -> Result<Woke, Close> {
        let deadline = auth_deadline.unwrap_or_else(tokio::time::Instant::now);
        let read = tokio::select! {
            r = tokio::time::timeout(self.idle_timeout, stream.read(space)) => r,
            // Relayed peer data: already framed (and padded) by the core; written in order.
            () = relayed.ready() => return Ok(Woke::Relayed),
            () = stopped(stop) => return Err(Close::Stopped),
            () = tokio::time::sleep_until(deadline), if auth_deadline.is_some() => return Err(Close::Unauthenticated),
        };
        match read {
            // RFC 8489 §6.2.2: the server keeps a connection open until the client closes it; a
            // connection that owns a live allocation is governed by the allocation's lifetime
            // (RFC 8656 §3.1: closing it would delete the allocation), never by idleness.
            Err(_elapsed) if self.owns_live_allocation() => Ok(Woke::Read(0)),
            Err(_elapsed) => Err(Close::Idle),
            Ok(Err(e)) => Err(Close::Io(e)),
            Ok(Ok(0)) => Err(Close::PeerClosed),
            Ok(Ok(n)) => Ok(Woke::Read(n)),
        }
    }

    /// Hands the complete frames of `buf[*start..filled]` to the server, answers into `pending`,
    /// moving `start` past them; stops early when `pending` should be written (the caller writes
    /// it and calls again). The sends to peers of these frames go out in batches (`PeerBatch`): the
    /// scope ends with this synchronous call, before any await.
    fn answer_frames(&self, buf: &[u8], filled: usize, start: &mut usize, pending: &mut Vec<u8>) -> Step {
        let _batch = self.server.driver().peer_batch();
        loop {
            let Some(rest) = buf.get(*start..filled) else {
                return Step::Close(Close::Invalid);
            };
            match demux::stream_frame(rest, self.strict_rfc8656) {
                Frame::Incomplete => return Step::More,
                Frame::Invalid => return Step::Close(Close::Invalid),
                Frame::Complete(n) => {
                    let Some(frame) = rest.get(..n).filter(|f| !f.is_empty()) else {
                        return Step::Close(Close::Invalid);
                    };
                    *start += n;
                    let outcome = self.handle(frame, pending);
                    if let Outcome::Dropped(reason) = outcome {
                        trace!(peer = %self.peer, ?reason, "tcp frame dropped");
                        if reason.is_fatal_on_stream() {
                            return Step::Close(Close::Invalid);
                        }
                    }
                    // A ConnectionBind request answered with success: raw bytes from here on.
                    if matches!(outcome, Outcome::Reply(_))
                        && frame.get(..2) == Some(&CONNECTION_BIND_REQUEST)
                        && let Some(bound) = self.server.driver().take_bound_connection(&self.five_tuple())
                    {
                        let leftover = buf.get(*start..filled).unwrap_or_default().to_vec();
                        return Step::Close(Close::Bound { bound, leftover });
                    }
                    if pending.len() >= FLUSH_AT {
                        return Step::Flush;
                    }
                }
            }
        }
    }

    /// Whether this connection's 5-tuple has an allocation that has not expired.
    fn owns_live_allocation(&self) -> bool {
        let now = self.server.millis(Instant::now());
        self.server.allocations().get(&self.five_tuple()).is_some_and(|a| a.is_live(now))
    }

    /// Lets the server handle one frame; a reply is appended to `pending`.
    fn handle(&self, data: &[u8], pending: &mut Vec<u8>) -> Outcome {
        let rx = Received { transport: self.transport, source: self.peer, local: self.local, data };
        SCRATCH.with_borrow_mut(|out| {
            let (start, request) = (Instant::now(), RequestLatency::request_index(data));
            let outcome = self.server.handle(start, &rx, out);
            if let Some(i) = request {
                self.server.stats().latency().observe(i, start.elapsed());
            }
            match outcome {
                Outcome::Reply(n) => {
                    if let Some(reply) = out.get(..n) {
                        pending.extend_from_slice(reply);
                    }
                }
                // Issue #16: the fleet's ledger is asked off this task; the answer is queued to
                // this connection's sink when it comes.
                Outcome::Pending(id) => super::UdpRelay::resolve_held(&self.server, id),
                _ => {}
            }
            outcome
        })
    }

    /// Writes the answers in `pending` out ([`Connection::write_out`]) and empties it.
    async fn flush<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        pending: &mut Vec<u8>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Close> {
        let written = self.write_out(stream, pending, stop).await;
        pending.clear();
        written
    }

    /// Writes `bytes` out and flushes (TLS may hold back the last record otherwise): one
    /// `write_all`, so many frames leave in few syscalls (TLS: few records). A client that stops
    /// reading for [`TCP_WRITE_TIMEOUT`](super::TCP_WRITE_TIMEOUT) (or the idle timeout, if
    /// shorter) is dropped.
    async fn write_out<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        bytes: &[u8],
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), Close> {
        if bytes.is_empty() {
            return Ok(());
        }
        let write = async {
            stream.write_all(bytes).await?;
            stream.flush().await
        };
        let written = tokio::select! {
            r = tokio::time::timeout(self.idle_timeout.min(super::TCP_WRITE_TIMEOUT), write) => r,
            () = stopped(stop) => return Err(Close::Stopped),
        };
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Close::Io(e)),
            Err(_elapsed) => Err(Close::Idle),
        }
    }
}
