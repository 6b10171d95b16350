//! Serving a face's listener, plain or TLS, with every connection bounded: `axum::serve` has no
//! timer, and a client that sends half a request head kept its connection (and ~400 KB of buffer)
//! forever. Here each listener has a connection budget of its own ([`HttpLimits::max_connections`],
//! so the faces together can never take the descriptors relaying needs) and a per-source one
//! (IPv4 address, IPv6 /64); beyond either, a connection is closed at once. A request head must
//! arrive within [`HttpLimits::header_timeout`], a TLS handshake too; buffers are capped; and a
//! connection lives at most [`HttpLimits::max_lifetime`] (then it is shut down gracefully: a
//! scraper reconnects). Connections handed over by the TURN-TLS listeners (`api-on-tls`) are served
//! under the same bounds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use crate::io::HttpConnection;
use crate::policy::{SourceSlot, SourceSlots};

/// The bounds of an HTTP face's connections.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// A request head (and a TLS handshake) must arrive within this.
    pub header_timeout: Duration,
    /// Open connections per listener.
    pub max_connections: usize,
    /// Open connections per source (IPv4 address, IPv6 /64) per listener.
    pub max_per_source: usize,
    /// The longest a connection is kept (keep-alive included).
    pub max_lifetime: Duration,
}

impl Default for HttpLimits {
    /// 10 s for a head, 256 connections a listener and 16 a source, 2 minutes a connection.
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_per_source: 16,
            max_lifetime: Duration::from_secs(120),
        }
    }
}

/// The largest read buffer of a connection (hyper's minimum; its default is ~400 KB).
const MAX_BUF: usize = 8192;

/// The connection budgets of one listener: [`HttpLimits::max_connections`] in all and
/// [`HttpLimits::max_per_source`] per source.
struct Budget {
    all: Arc<Semaphore>,
    per_source: Arc<SourceSlots>,
    max_per_source: usize,
    refused: u64,
}

/// What a connection holds while it is served: its share of both budgets.
type Held = (OwnedSemaphorePermit, SourceSlot);

impl Budget {
    fn new(limits: HttpLimits) -> Budget {
        Budget {
            all: Arc::new(Semaphore::new(limits.max_connections)),
            per_source: Arc::new(SourceSlots::default()),
            max_per_source: limits.max_per_source,
            refused: 0,
        }
    }

    /// Both shares for a connection from `peer`, or `None` (logged now and then: the connection is
    /// to be closed) when the listener or the source is at its cap.
    fn admit(&mut self, peer: SocketAddr) -> Option<Held> {
        let permit = self.all.clone().try_acquire_owned().ok();
        let slot = permit.as_ref().and_then(|_| self.per_source.take(peer.ip(), self.max_per_source));
        match (permit, slot) {
            (Some(permit), Some(slot)) => Some((permit, slot)),
            (permit, _) => {
                self.refused += 1;
                if self.refused.is_power_of_two() {
                    let cap = if permit.is_none() { "http face" } else { "http source" };
                    warn!(%peer, refused = self.refused, "{cap} at its connection cap: connection closed");
                }
                None
            }
        }
    }
}

/// The faces whose open connections are counted (`switchback_http_connections{face}`).
pub const HTTP_FACES: [&str; 3] = ["api", "metrics", "admin"];

/// Open connections per face of [`HTTP_FACES`], process-wide (like the stream queues' total).
static OPEN: [AtomicU64; HTTP_FACES.len()] = [const { AtomicU64::new(0) }; HTTP_FACES.len()];

/// The connections open now on the listener of each face of [`HTTP_FACES`], in its order. Faces
/// that share a listener each count its connections (a connection may ask any of them).
pub fn open_connections() -> [u64; HTTP_FACES.len()] {
    std::array::from_fn(|i| OPEN.get(i).map_or(0, |c| c.load(Relaxed)))
}

/// One open connection, counted under each face of its listener until dropped.
struct OpenConnection {
    faces: Arc<[usize]>,
}

impl OpenConnection {
    fn new(faces: Arc<[usize]>) -> Self {
        for c in faces.iter().filter_map(|&i| OPEN.get(i)) {
            c.fetch_add(1, Relaxed);
        }
        OpenConnection { faces }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        for c in self.faces.iter().filter_map(|&i| OPEN.get(i)) {
            c.fetch_sub(1, Relaxed);
        }
    }
}

/// The face's service for one connection from `peer` (the address reaches handlers as
/// `ConnectInfo`).
fn service(app: &Router, peer: SocketAddr) -> TowerToHyperService<Router> {
    TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))))
}

/// Accepts connections on `listener` (TLS ones with `tls`) and serves `app` on each until `stop`;
/// the open connections count under the listener's `faces` (see [`open_connections`]).
pub(super) async fn serve(
    listener: TcpListener,
    (app, faces): (Router, Vec<&'static str>),
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let faces: Arc<[usize]> = faces.iter().filter_map(|f| HTTP_FACES.iter().position(|k| k == f)).collect();
    let acceptor = tls.map(TlsAcceptor::from);
    let mut budget = Budget::new(limits);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|&s| s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "http accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(held) = budget.admit(peer) else { continue };
        let open = OpenConnection::new(faces.clone());
        let (acceptor, service, stop) = (acceptor.clone(), service(&app, peer), stop.clone());
        tokio::spawn(async move {
            let _held = (held, open);
            match acceptor {
                None => connection(TokioIo::new(stream), service, peer, limits, stop).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => connection(TokioIo::new(tls), service, peer, limits, stop).await,
                    Ok(Err(e)) => debug!(%peer, error = %e, "https handshake failed"),
                    Err(_) => debug!(%peer, "https handshake timed out"),
                },
            }
        });
    }
}

/// Serves `app` on the TLS connections the TURN-TLS listeners hand over (`api-on-tls`: the client
/// chose `http/1.1` by ALPN, RFC 7443), until `stop` or until no listener hands over any more. The
/// handshake is done (bounded by the listeners); from here on the connection is bounded exactly like
/// one accepted by [`serve`]: a budget of its own, the per-source cap, the head timeout, the buffer
/// cap, the lifetime.
pub(super) async fn serve_handed_over(
    mut connections: mpsc::Receiver<HttpConnection>,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut budget = Budget::new(limits);
    // Handed over by `api-on-tls`: API connections.
    let faces: Arc<[usize]> = HTTP_FACES.iter().position(|k| *k == "api").into_iter().collect();
    loop {
        let handed = tokio::select! {
            handed = connections.recv() => handed,
            _ = stop.wait_for(|&s| s) => return,
        };
        let Some(HttpConnection { stream, peer }) = handed else { return };
        let Some(held) = budget.admit(peer) else { continue };
        let open = OpenConnection::new(faces.clone());
        let (service, stop) = (service(&app, peer), stop.clone());
        tokio::spawn(async move {
            let _held = (held, open);
            connection(TokioIo::new(stream), service, peer, limits, stop).await;
        });
    }
}

/// One connection with hyper's HTTP/1.1 builder, bounded by the header timeout, the buffer cap and
/// the lifetime; shut down gracefully at the end of its lifetime or when the server stops.
async fn connection<I, S>(
    io: TokioIo<I>,
    service: S,
    peer: SocketAddr,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(MAX_BUF);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        () = tokio::time::sleep(limits.max_lifetime) => None,
        _ = stop.wait_for(|&s| s) => None,
    };
    let result = match ended {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(limits.header_timeout, conn).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "http connection ended");
    }
}
