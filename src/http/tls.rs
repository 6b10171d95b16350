//! HTTPS for a face (`api-tls`): `axum::serve` speaks plain HTTP only, so a TLS listener accepts
//! here, does the handshake with rustls (ring, like the TURN listeners; the certificate is theirs
//! and follows their SIGHUP reloads) and serves each connection with hyper's HTTP/1.1 builder.
//! Handshakes and request heads are bounded in time; stopping ends the accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// How long a client may take for the TLS handshake, and for a request's head.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocol offered: HTTP/1.1 only (RFC 7301 §6).
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The TURN listeners' rustls configuration made fit for HTTP: same certificate resolver (so a
/// SIGHUP reload shows here too), ALPN `http/1.1` instead of `stun.turn`.
pub fn http_config(turn: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = turn.clone();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}

/// Accepts TLS connections on `listener` and serves `app` on each until `stop` turns true.
pub(super) async fn serve(
    listener: TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|&s| s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                debug!(error = %e, "https accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return debug!(%peer, error = %e, "https handshake failed"),
                Err(_) => return debug!(%peer, "https handshake timed out"),
            };
            let service = TowerToHyperService::new(app.layer(axum::Extension(ConnectInfo::<SocketAddr>(peer))));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(HANDSHAKE_TIMEOUT);
            if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
                debug!(%peer, error = %e, "https connection ended");
            }
        });
    }
}
