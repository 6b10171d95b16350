//! TURN over TLS for the load tool (RFC 8656 §3.1: TLS over TCP to the server). The client either
//! trusts the certificate file it is given or, for a server's self-signed development certificate,
//! any certificate (`--tls` alone): the load stays on loopback, so nothing is exposed by not
//! checking. rustls with ring, the provider the server uses.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};

/// A client configuration: trusting the certificates in `ca` (PEM), or any certificate without one.
pub fn client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?;
    let config = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).with_context(|| format!("--tls-cert {}", path.display()))? {
                roots.add(cert.with_context(|| format!("--tls-cert {}", path.display()))?)?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider.signature_verification_algorithms)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Accepts whatever certificate the server shows; the handshake signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// A stream leg to the server: plain TCP or TLS over it. Blocking during the setup, nonblocking in
/// the data loop (rustls's `Stream` then answers `WouldBlock` like the socket).
pub enum StreamIo {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl StreamIo {
    /// TLS over `tcp` to a server named by its address (the handshake runs on the first write).
    pub fn tls(tcp: TcpStream, config: Arc<ClientConfig>, server: IpAddr) -> Result<StreamIo> {
        let conn = ClientConnection::new(config, ServerName::IpAddress(server.into())).context("TLS client")?;
        Ok(StreamIo::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    pub fn tcp(&self) -> &TcpStream {
        match self {
            StreamIo::Plain(s) => s,
            StreamIo::Tls(t) => &t.sock,
        }
    }
}

impl Read for StreamIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            StreamIo::Plain(s) => s.read(buf),
            StreamIo::Tls(t) => t.read(buf),
        }
    }
}

impl Write for StreamIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            StreamIo::Plain(s) => s.write(buf),
            StreamIo::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            StreamIo::Plain(s) => s.flush(),
            StreamIo::Tls(t) => t.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_certificate_file_is_named() {
        let err = format!("{:#}", client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err());
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        assert!(client_config(None).is_ok());
    }
}
