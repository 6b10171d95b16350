//! TURN over TLS (RFC 8656 §3.1, `turns:` of RFC 7065): the certificate the TLS listeners present,
//! replaceable while they run, and the handshake in front of the TCP connection logic (`tcp.rs`
//! serves the decrypted stream exactly as a plain TCP one, with [`Transport::Tls`](crate::server::Transport::Tls) in the 5-tuple).
//!
//! rustls with the `ring` provider, TLS 1.2 and 1.3. ALPN (RFC 7443): `stun.turn` is accepted; a
//! client that offers no ALPN is served too. `stun.nat-discovery` is not offered: RFC 7443 ties
//! it to the NAT behavior discovery of RFC 5780, which this server runs on UDP only (a client
//! offering only it gets the `no_application_protocol` alert of RFC 7301 §3.2).
//!
//! One port for TURN and HTTPS (`api-on-tls`): with an [`HttpHandoff`] the listeners also offer
//! `http/1.1` (after the RFC 7443 IDs, so a client offering both gets TURN) and, once the handshake
//! is done, hand a connection whose client chose `http/1.1` to the HTTP side as an
//! [`HttpConnection`]; every other connection — `stun.turn` or no ALPN at all — is TURN ([`route`]). The io layer knows nothing of HTTP: the handoff is a bounded channel whose
//! receiving end the HTTP faces serve (`http::HttpRunning::serve_handed_over`).
//!
//! ```no_run
//! use switchback::io::tls::{ReloadableTls, TlsIdentity};
//!
//! # fn run() -> Result<(), switchback::io::tls::TlsError> {
//! let identity = TlsIdentity::from_pem_files("fullchain.pem".as_ref(), "privkey.pem".as_ref())?;
//! let tls = ReloadableTls::new(identity);
//! // Later (SIGHUP): new handshakes present the new certificate, live connections keep theirs.
//! tls.replace(TlsIdentity::from_pem_files("fullchain.pem".as_ref(), "privkey.pem".as_ref())?);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::debug;

use super::{IoStats, stopped};
pub use crate::tls::{ALPN_HTTP11, ALPN_STUN_NAT_DISCOVERY, ALPN_STUN_TURN, crypto_provider};

/// The names of the development default's self-signed certificate.
pub const DEV_CERTIFICATE_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Why a certificate or key could not be used. [`TlsError::key`] names the configuration key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// `cert` or `pkey`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid PEM.
    #[error("{}: invalid PEM: {message}", path.display())]
    Pem {
        /// `cert` or `pkey`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's message (never key material).
        message: String,
    },
    /// No `CERTIFICATE` section in the certificate file.
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key section (PKCS#8, PKCS#1 or SEC1) in the key file.
    #[error("{}: no PEM private key in it (PKCS#8, RSA or EC)", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the pair: a key it cannot use, or one that does not match the certificate.
    #[error("the private key cannot be used with the certificate: {0}")]
    Rejected(rustls::Error),
    /// The self-signed development certificate could not be made.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
}

impl TlsError {
    /// The configuration key the error is about: `cert` or `pkey`.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } | TlsError::Pem { key, .. } => key,
            TlsError::NoCertificate { .. } | TlsError::Generate(_) => "cert",
            TlsError::NoPrivateKey { .. } | TlsError::Rejected(_) => "pkey",
        }
    }
}

/// A certificate chain and the private key of its first certificate, checked to belong together.
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    certified: Arc<CertifiedKey>,
    end_entity: CertificateDer<'static>,
    fingerprint: [u8; 32],
}

impl TlsIdentity {
    /// The chain (leaf first) and its key, in DER.
    pub fn from_der(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, TlsError> {
        let Some(end_entity) = chain.first().cloned() else {
            return Err(TlsError::Rejected(rustls::Error::NoCertificatesPresented));
        };
        let fingerprint = Sha256::digest(end_entity.as_ref()).into();
        let certified = CertifiedKey::from_der(chain, key, &crypto_provider()).map_err(TlsError::Rejected)?;
        Ok(TlsIdentity { certified: Arc::new(certified), end_entity, fingerprint })
    }

    /// A chain and key in PEM text (a Let's Encrypt `fullchain.pem` and `privkey.pem`, say). `cert`
    /// and `pkey` name the sources in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], cert: &Path, pkey: &Path) -> Result<Self, TlsError> {
        let pem = |key: &'static str, path: &Path, e: rustls_pki_types::pem::Error| TlsError::Pem {
            key,
            path: path.to_owned(),
            message: e.to_string(),
        };
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem("cert", cert, e))?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: cert.to_owned() });
        }
        let key = match PrivateKeyDer::from_pem_slice(key_pem) {
            Ok(key) => key,
            Err(rustls_pki_types::pem::Error::NoItemsFound) => {
                return Err(TlsError::NoPrivateKey { path: pkey.to_owned() });
            }
            Err(e) => return Err(pem("pkey", pkey, e)),
        };
        TlsIdentity::from_der(chain, key)
    }

    /// Reads the PEM files of `cert` (the chain, leaf first) and `pkey`.
    pub fn from_pem_files(cert: &Path, pkey: &Path) -> Result<Self, TlsError> {
        let read = |key: &'static str, path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { key, path: path.to_owned(), source })
        };
        TlsIdentity::from_pem(&read("cert", cert)?, &read("pkey", pkey)?, cert, pkey)
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names`: DNS names or IP addresses.
    pub fn self_signed(names: &[&str]) -> Result<Self, TlsError> {
        let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate().map_err(generate)?;
        let mut params = rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .map_err(generate)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::CommonName, "switchback development certificate");
        let cert = params.self_signed(&key).map_err(generate)?;
        let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
        TlsIdentity::from_der(vec![cert.der().clone()], key)
    }

    /// The first certificate of the chain (the server's own).
    pub fn end_entity(&self) -> &CertificateDer<'static> {
        &self.end_entity
    }

    /// SHA-256 of the server's certificate as `AB:CD:…` (what `openssl x509 -fingerprint -sha256`
    /// prints and browsers show).
    pub fn fingerprint(&self) -> String {
        let hex: Vec<String> = self.fingerprint.iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }
}

/// Hands every handshake the identity current at that moment.
#[derive(Debug)]
struct Resolver {
    current: ArcSwap<TlsIdentity>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.current.load().certified))
    }
}

/// The TLS configuration of the listeners, whose certificate can be replaced while they run
/// (SIGHUP): new handshakes present the new one, connections already up (and so their
/// allocations) are untouched. Clones share the certificate.
#[derive(Clone, Debug)]
pub struct ReloadableTls {
    resolver: Arc<Resolver>,
    config: Arc<ServerConfig>,
    /// `api-on-tls`: where connections that chose `http/1.1` go.
    http: Option<HttpHandoff>,
}

impl ReloadableTls {
    /// TLS 1.2 and 1.3, no client certificates, ALPN `stun.turn` (RFC 7443 §6);
    /// `stun.nat-discovery` only with [`ReloadableTls::with_nat_discovery`] (RFC 5780 on).
    pub fn new(identity: TlsIdentity) -> Self {
        let resolver = Arc::new(Resolver { current: ArcSwap::from_pointee(identity) });
        let builder = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12]);
        // Both versions are built into rustls with the `tls12` feature; ring supports their suites.
        let builder = builder.unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"));
        let mut config = builder.with_no_client_auth().with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![ALPN_STUN_TURN.to_vec()];
        ReloadableTls { resolver, config: Arc::new(config), http: None }
    }

    /// The same listeners serving HTTPS too (`api-on-tls`): ALPN `http/1.1` is offered after the
    /// RFC 7443 IDs (rustls picks by the server's order, so a client offering both gets TURN), and
    /// connections that chose it go to `handoff`. Clones made before keep the TURN-only
    /// configuration; the certificate stays shared.
    pub fn with_http(self, handoff: HttpHandoff) -> Self {
        let mut config = ServerConfig::clone(&self.config);
        config.alpn_protocols.push(ALPN_HTTP11.to_vec());
        ReloadableTls { resolver: self.resolver, config: Arc::new(config), http: Some(handoff) }
    }

    /// The same listeners offering `stun.nat-discovery` too (RFC 7443 §6), after `stun.turn`:
    /// for RFC 5780 over TLS, when the server has the TLS address grid.
    pub fn with_nat_discovery(self) -> Self {
        let mut config = ServerConfig::clone(&self.config);
        let at = config.alpn_protocols.iter().position(|p| p == ALPN_STUN_TURN).map_or(0, |i| i + 1);
        config.alpn_protocols.insert(at, ALPN_STUN_NAT_DISCOVERY.to_vec());
        ReloadableTls { resolver: self.resolver, config: Arc::new(config), http: self.http }
    }

    /// Where connections that chose `http/1.1` go, when the listeners serve HTTPS too.
    pub fn http_handoff(&self) -> Option<&HttpHandoff> {
        self.http.as_ref()
    }

    /// Presents `identity` from the next handshake on.
    pub fn replace(&self, identity: TlsIdentity) {
        self.resolver.current.store(Arc::new(identity));
    }

    /// The identity presented now.
    pub fn identity(&self) -> Arc<TlsIdentity> {
        self.resolver.current.load_full()
    }

    /// The rustls server configuration (shared by every TLS listener).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config)
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.server_config())
    }
}

/// How many handed-over connections may wait for the HTTP side before more are closed.
pub const HTTP_HANDOFF_QUEUE: usize = 64;

/// A TLS connection on a TURN-TLS listener whose client chose `http/1.1` by ALPN, handshake done.
#[derive(Debug)]
pub struct HttpConnection {
    /// The decrypted stream, nothing read from it yet.
    pub stream: TlsStream<TcpStream>,
    /// The client (the PROXY header's source behind a load balancer).
    pub peer: SocketAddr,
}

/// The seam between the TURN-TLS listeners and the HTTP faces (`api-on-tls`): the sending end of a
/// bounded queue of [`HttpConnection`]s. The listeners never wait on it: a full queue, or one
/// nobody serves any more, closes the connection (logged at `debug`).
#[derive(Clone, Debug)]
pub struct HttpHandoff {
    sender: mpsc::Sender<HttpConnection>,
}

impl HttpHandoff {
    /// A handoff and the receiving end the HTTP side serves, [`HTTP_HANDOFF_QUEUE`] deep.
    pub fn channel() -> (HttpHandoff, mpsc::Receiver<HttpConnection>) {
        let (sender, receiver) = mpsc::channel(HTTP_HANDOFF_QUEUE);
        (HttpHandoff { sender }, receiver)
    }

    /// Queues `connection` for the HTTP side; `false` (the connection dropped, so closed) when the
    /// queue is full or closed.
    pub(super) fn hand_over(&self, connection: HttpConnection) -> bool {
        match self.sender.try_send(connection) {
            Ok(()) => true,
            Err(e) => {
                let peer = match &e {
                    mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c) => c.peer,
                };
                debug!(%peer, error = %e, "https connection not handed over: closing");
                false
            }
        }
    }
}

/// Who serves a TLS connection after its handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// TURN over TLS (RFC 8656 §3.1): `stun.turn` (RFC 7443) or no ALPN.
    Turn,
    /// HTTPS (`api-on-tls`): the client chose `http/1.1`.
    Http,
}

/// The route of a connection that negotiated `alpn` (RFC 7443 §4: ALPN is what tells TURN from
/// another protocol on a shared port). Only `http/1.1` leaves TURN, and only when the listeners
/// serve HTTPS (`http`): a client that sends no ALPN — coturn's `turnutils_uclient`, many TURN
/// clients — is always TURN.
pub fn route(alpn: Option<&[u8]>, http: bool) -> Route {
    match alpn {
        Some(ALPN_HTTP11) if http => Route::Http,
        _ => Route::Turn,
    }
}

/// The server side of a TLS connection's handshake, bounded by `timeout` and by `stop`; the
/// decrypted stream, or `None` (counted, logged) when there is none to serve.
pub(super) async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    stats: &IoStats,
    stop: &mut watch::Receiver<bool>,
) -> Option<TlsStream<TcpStream>> {
    let handshake = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
        () = stopped(stop) => return None,
    };
    match handshake {
        Ok(Ok(tls)) => {
            IoStats::bump(&stats.tls_handshakes);
            let (_, session) = tls.get_ref();
            debug!(
                %peer,
                version = ?session.protocol_version(),
                alpn = ?session.alpn_protocol().map(String::from_utf8_lossy),
                "tls handshake done"
            );
            Some(tls)
        }
        // Not TLS at all, no common version or cipher, an unknown ALPN protocol, a reset…
        Ok(Err(e)) => {
            IoStats::bump(&stats.tls_handshake_failures);
            debug!(%peer, error = %e, "tls handshake failed");
            None
        }
        Err(_elapsed) => {
            IoStats::bump(&stats.tls_handshake_failures);
            debug!(%peer, ?timeout, "tls handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http11_leaves_turn_and_only_when_https_is_served() {
        assert_eq!(route(Some(ALPN_HTTP11), true), Route::Http);
        assert_eq!(route(Some(ALPN_HTTP11), false), Route::Turn);
        for alpn in [None, Some(ALPN_STUN_TURN), Some(ALPN_STUN_NAT_DISCOVERY), Some(&b"h2"[..])] {
            assert_eq!(route(alpn, true), Route::Turn, "{alpn:?}");
        }
    }

    #[test]
    fn http11_is_offered_after_the_rfc_7443_ids_only_with_a_handoff() {
        let identity = TlsIdentity::self_signed(DEV_CERTIFICATE_NAMES).unwrap();
        let turn = ReloadableTls::new(identity);
        // RFC 7443: `stun.nat-discovery` means RFC 5780: offered only with it.
        let stun_ids = vec![ALPN_STUN_TURN.to_vec()];
        assert_eq!(turn.server_config().alpn_protocols, stun_ids);
        assert!(turn.http_handoff().is_none());
        let (handoff, _connections) = HttpHandoff::channel();
        let both = turn.clone().with_http(handoff);
        let mut with_http = stun_ids.clone();
        with_http.push(ALPN_HTTP11.to_vec());
        assert_eq!(both.server_config().alpn_protocols, with_http);
        assert!(both.http_handoff().is_some());
        // One certificate: a reload shows on both.
        turn.replace(TlsIdentity::self_signed(DEV_CERTIFICATE_NAMES).unwrap());
        assert_eq!(both.identity().fingerprint(), turn.identity().fingerprint());
        assert_eq!(turn.server_config().alpn_protocols, stun_ids, "the TURN-only clone is unchanged");
        let nat = both.with_nat_discovery();
        let all = [ALPN_STUN_TURN, ALPN_STUN_NAT_DISCOVERY, ALPN_HTTP11].map(<[u8]>::to_vec).to_vec();
        assert_eq!(nat.server_config().alpn_protocols, all, "after stun.turn, before http/1.1");
        assert!(nat.http_handoff().is_some());
    }
}
