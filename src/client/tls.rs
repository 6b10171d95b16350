//! The client's leg over TLS (RFC 8656 §3.1, `turns:` of RFC 7065): rustls with the crate's one
//! crypto provider, trusting only the roots the caller gives (a test's self-signed certificate, a
//! private CA; the system's store is not read), offering ALPN `stun.turn` (RFC 7443).
//!
//! ```no_run
//! use std::time::Duration;
//! use switchback::client::{self, tls::TlsClient};
//!
//! # async fn run(ca: rustls_pki_types::CertificateDer<'static>) -> Result<(), client::ClientError> {
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(ca).map_err(|e| client::ClientError::Tls(e.to_string()))?;
//! let tls = TlsClient::new("turn.example.org", roots)?;
//! let mapped = client::binding_tls("192.0.2.1:5349".parse().unwrap(), &tls, Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{ClientError, binding_stream};
use crate::tls::{ALPN_STUN_TURN, crypto_provider};

/// What a TLS connection to the server needs: the rustls configuration and the name the server's
/// certificate must carry.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl TlsClient {
    /// TLS 1.2 or 1.3, trusting `roots`; the server's certificate must be valid for `server_name`
    /// (a DNS name or an IP address).
    pub fn new(server_name: &str, roots: RootCertStore) -> Result<Self, ClientError> {
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let mut config = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&versions)
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_STUN_TURN.to_vec()];
        TlsClient::with_config(server_name, Arc::new(config))
    }

    /// A client with a rustls configuration of the caller's (one protocol version only, say).
    pub fn with_config(server_name: &str, config: Arc<ClientConfig>) -> Result<Self, ClientError> {
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| ClientError::ServerName(server_name.to_owned()))?;
        Ok(TlsClient { config, server_name })
    }

    /// Connects to `server` and completes the handshake, within `timeout`.
    pub async fn connect(&self, server: SocketAddr, timeout: Duration) -> Result<TlsStream<TcpStream>, ClientError> {
        let deadline = Instant::now() + timeout;
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| ClientError::Timeout(timeout))??;
        self.handshake(tcp, deadline.saturating_duration_since(Instant::now())).await
    }

    /// Completes the handshake over a connected `tcp` stream, within `timeout`.
    pub async fn handshake(&self, tcp: TcpStream, timeout: Duration) -> Result<TlsStream<TcpStream>, ClientError> {
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(Arc::clone(&self.config));
        let handshake = connector.connect(self.server_name.clone(), tcp);
        Ok(tokio::time::timeout(timeout, handshake).await.map_err(|_| ClientError::Timeout(timeout))??)
    }
}

/// A Binding transaction over a new TLS connection to `server`, bounded by `timeout` as a whole.
pub async fn binding_tls(server: SocketAddr, tls: &TlsClient, timeout: Duration) -> Result<SocketAddr, ClientError> {
    let deadline = Instant::now() + timeout;
    let mut stream = tls.connect(server, timeout).await?;
    binding_stream(&mut stream, deadline.saturating_duration_since(Instant::now())).await
}
