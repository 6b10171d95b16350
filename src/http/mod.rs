//! The HTTP faces of the daemon, each on its own listener so that a public one never exposes the
//! others: the token service (`/v1/*`, `api-listen`), metrics and health (`/metrics`, `/healthz`,
//! `/readyz`, `metrics-listen`) and the admin API (`admin-listen`).
//!
//! Each face is an [`axum::Router`] with its state applied. Faces configured on the same address
//! share one listener: their routers are merged (their paths never overlap), so an operator may
//! put, say, metrics and admin on one loopback port. [`bind`] binds every listener before any
//! serves, like [`crate::io::bind`]; [`HttpRunning::shutdown`] stops them and waits.
//!
//! The token service can also share the TURN-TLS port (`api-on-tls`): the TLS listeners hand over
//! the connections whose client chose `http/1.1` by ALPN (RFC 7443; `io::tls::HttpHandoff`), and
//! [`HttpRunning::serve_handed_over`] serves them with the same limits.

pub mod admin;
pub mod api;
pub mod health;
pub mod ice_servers;
pub mod metrics;
pub(crate) mod process;
pub mod revocations;
mod serve;
pub(crate) mod status;
pub(crate) mod tls;

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the HTTP listeners could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// A listener could not be bound.
    #[error("cannot listen for HTTP ({faces}) on {addr}: {source}")]
    Bind {
        /// The faces that wanted it, comma-separated.
        faces: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// One HTTP face: a name for logs and the banner, the configured address, its routes.
#[derive(Debug)]
pub struct Face {
    /// `api`, `metrics` or `admin`: printed in the banner as `listening http-<name> ADDR`.
    pub name: &'static str,
    /// The configured address (port 0 lets the OS choose; faces with equal addresses share).
    pub addr: SocketAddr,
    /// The routes, state applied. No fallback: the listener adds one.
    pub router: Router,
    /// HTTPS with this configuration (the TURN listeners' rustls configuration with `http/1.1` ALPN); a face with TLS makes the
    /// listener it shares with others TLS too.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

impl Face {
    /// A face.
    pub fn new(name: &'static str, addr: SocketAddr, router: Router) -> Face {
        Face { name, addr, router, tls: None }
    }

    /// The face over HTTPS.
    pub fn with_tls(self, config: std::sync::Arc<rustls::ServerConfig>) -> Face {
        Face { tls: Some(config), ..self }
    }
}

/// A bound face.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpListener {
    /// The face's name.
    pub name: &'static str,
    /// The bound address (the OS-chosen port when port 0 was asked for).
    pub addr: SocketAddr,
}

/// HTTP listeners that are up and serving. Dropping it stops them (without waiting).
#[derive(Debug)]
pub struct HttpRunning {
    listeners: Vec<HttpListener>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    limits: HttpLimits,
}

impl HttpRunning {
    /// Every face with its bound address, in the order given to [`bind`].
    pub fn local_addrs(&self) -> &[HttpListener] {
        &self.listeners
    }

    /// The bound address of the face `name`.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listeners.iter().find(|l| l.name == name).map(|l| l.addr)
    }

    /// Serves `router` (with the JSON 404 of every face) on the connections the TURN-TLS listeners
    /// hand over (`api-on-tls`: the client chose `http/1.1` by ALPN, RFC 7443), under the same
    /// [`HttpLimits`] as the listeners of [`bind`]; `addrs` (the TLS listeners) are listed as the
    /// face `name`. Stops with the others.
    pub fn serve_handed_over(
        &mut self,
        name: &'static str,
        addrs: &[SocketAddr],
        connections: tokio::sync::mpsc::Receiver<crate::io::HttpConnection>,
        router: Router,
    ) {
        self.listeners.extend(addrs.iter().map(|&addr| HttpListener { name, addr }));
        let app = router.fallback(not_found);
        let task = serve::serve_handed_over(connections, app, self.limits, self.stop.subscribe());
        self.tasks.push(tokio::spawn(task));
    }

    /// Stops accepting, lets requests in flight finish and waits for the listeners to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The answer to a path no face serves: a JSON body like every other error of these faces.
async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The JSON error body every face uses: `{"error": {"code": CODE, "message": MESSAGE}}`.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({ "error": { "code": code, "message": message } });
    (status, axum::Json(body)).into_response()
}

pub use serve::{HTTP_FACES, HttpLimits, open_connections};

/// Binds one listener per distinct address of `faces` (merging the routers of faces that share
/// one), then serves them all with the default [`HttpLimits`]. Either every listener is bound or
/// none is. Must be called inside a tokio runtime.
pub async fn bind(faces: Vec<Face>) -> Result<HttpRunning, HttpError> {
    bind_with_limits(faces, HttpLimits::default()).await
}

/// [`bind`] with explicit [`HttpLimits`].
pub async fn bind_with_limits(faces: Vec<Face>, limits: HttpLimits) -> Result<HttpRunning, HttpError> {
    // Group by configured address, keeping the order of first appearance.
    type Tls = Option<std::sync::Arc<rustls::ServerConfig>>;
    let mut groups: Vec<(SocketAddr, Vec<&'static str>, Router, Tls)> = Vec::new();
    for face in faces {
        match groups.iter_mut().find(|(addr, _, _, _)| *addr == face.addr) {
            Some((_, names, router, tls)) => {
                names.push(face.name);
                *router = std::mem::take(router).merge(face.router);
                if tls.is_none() {
                    *tls = face.tls;
                }
            }
            None => groups.push((face.addr, vec![face.name], face.router, face.tls)),
        }
    }
    let mut bound = Vec::new();
    for (addr, names, router, tls) in groups {
        let listener =
            TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { faces: names.join(","), addr, source })?;
        let local = listener.local_addr().map_err(|source| HttpError::Bind { faces: names.join(","), addr, source })?;
        bound.push((listener, local, names, router, tls));
    }
    let (stop, _) = watch::channel(false);
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();
    for (listener, local, names, router, tls) in bound {
        listeners.extend(names.iter().map(|&name| HttpListener { name, addr: local }));
        let app = router.fallback(not_found);
        tasks.push(tokio::spawn(serve::serve(listener, (app, names.clone()), tls, limits, stop.subscribe())));
    }
    Ok(HttpRunning { listeners, tasks, stop, limits })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get_path(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn faces_on_one_address_share_a_listener_and_unknown_paths_get_json_404() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = Face::new("a", loopback, Router::new().route("/a", get(|| async { "from a" })));
        let b = Face::new("b", loopback, Router::new().route("/b", get(|| async { "from b" })));
        let c = Face::new("c", "127.0.0.2:0".parse().unwrap(), Router::new().route("/c", get(|| async { "c" })));
        let running = bind(vec![a, b, c]).await.unwrap();
        let (addr_a, addr_b, addr_c) =
            (running.local_addr("a").unwrap(), running.local_addr("b").unwrap(), running.local_addr("c").unwrap());
        assert_eq!(addr_a, addr_b);
        assert_ne!(addr_a, addr_c);
        assert!(get_path(addr_a, "/a").await.ends_with("from a"));
        assert!(get_path(addr_a, "/b").await.ends_with("from b"));
        // A face on its own listener does not expose the others' paths.
        let other = get_path(addr_c, "/a").await;
        assert!(other.starts_with("HTTP/1.1 404"), "{other}");
        assert!(other.contains(r#""code":"not_found""#), "{other}");
        running.shutdown().await;
        assert!(tokio::net::TcpStream::connect(addr_a).await.is_err());
    }

    /// Slowloris: hundreds of connections that send half a request head and stall. Those over the
    /// per-source cap are closed at once, the others at the header timeout; a complete request is
    /// served meanwhile (from another source) and afterwards.
    #[tokio::test]
    async fn half_open_requests_are_closed_and_the_face_keeps_serving() {
        let limits = HttpLimits { header_timeout: Duration::from_millis(400), ..HttpLimits::default() };
        let face = Face::new("m", "127.0.0.1:0".parse().unwrap(), Router::new().route("/m", get(|| async { "up" })));
        let running = bind_with_limits(vec![face], limits).await.unwrap();
        let addr = running.local_addr("m").unwrap();
        let mut stalled = Vec::new();
        for _ in 0..300 {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(b"GET /m HTTP/1.1\r\nHost: x\r\n").await;
            stalled.push(s);
        }
        // Another source is served while they stall.
        let fresh = tokio::time::timeout(Duration::from_secs(5), async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut stream = socket.connect(addr).await.unwrap();
            stream.write_all(b"GET /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        })
        .await;
        assert!(fresh.as_ref().is_ok_and(|r| r.ends_with("up")), "served beside the stalled connections: {fresh:?}");
        let started = std::time::Instant::now();
        for s in &mut stalled {
            let mut buf = [0u8; 256];
            let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await;
            // Closed: end of stream, a reset, or (for the timed-out head) a 408 and then the end.
            match closed {
                Ok(Ok(0) | Err(_)) => {}
                Ok(Ok(n)) => assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{n} bytes"),
                Err(_) => panic!("a stalled connection outlived the header timeout"),
            }
        }
        assert!(started.elapsed() < Duration::from_secs(3), "closed within the header timeout");
        assert!(get_path(addr, "/m").await.ends_with("up"));
        running.shutdown().await;
    }

    #[tokio::test]
    async fn a_taken_address_fails_and_binds_nothing() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let face = Face::new("metrics", addr, Router::new());
        let err = bind(vec![face]).await.unwrap_err();
        assert!(err.to_string().contains("metrics"), "{err}");
    }
}
