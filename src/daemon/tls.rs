//! The TLS listeners' certificate: from `cert` and `pkey` (re-read on reload), the development
//! default's self-signed one, or none.

use tracing::{info, warn};

use tokio::sync::mpsc;

use crate::config::{Config, ConfigError};
use crate::io::{HttpConnection, HttpHandoff, ReloadableTls, TlsIdentity};

/// Where the TLS listeners' certificate comes from.
pub enum TlsSetup {
    /// `cert` and `pkey`, re-read on reload.
    Files(TlsIdentity),
    /// The development default's, generated at start for
    /// [`DEV_CERTIFICATE_NAMES`](crate::io::tls::DEV_CERTIFICATE_NAMES).
    SelfSigned(TlsIdentity),
    /// No TLS listener: `no-tls`, or a configuration without a certificate.
    Off,
}

/// The certificate of `cert` and `pkey` (unless `no-tls`); an error names the key.
pub fn configured_tls(config: &Config) -> Result<Option<TlsIdentity>, ConfigError> {
    match (&config.cert, &config.pkey) {
        (Some(cert), Some(pkey)) if !config.no_tls => TlsIdentity::from_pem_files(cert, pkey)
            .map(Some)
            .map_err(|e| ConfigError::InvalidValue { key: e.key().to_owned(), message: e.to_string() }),
        _ => Ok(None),
    }
}

/// The listeners' reloadable certificate and, for a self-signed one, its fingerprint.
pub(super) fn listener_tls(config: &Config, setup: TlsSetup) -> (Option<ReloadableTls>, Option<String>) {
    match setup {
        TlsSetup::Files(identity) => {
            info!(fingerprint = %identity.fingerprint(), "TLS certificate loaded from cert and pkey");
            (Some(ReloadableTls::new(identity)), None)
        }
        TlsSetup::SelfSigned(identity) => {
            let fingerprint = identity.fingerprint();
            info!(%fingerprint, "TLS with a self-signed development certificate");
            (Some(ReloadableTls::new(identity)), Some(fingerprint))
        }
        TlsSetup::Off if config.no_tls => (None, None),
        TlsSetup::Off => {
            info!("no cert and pkey configured: no TLS listener");
            (None, None)
        }
    }
}

/// `api-on-tls`: the listeners' TLS offering `http/1.1` too and handing those connections over
/// (RFC 7443 ALPN decides, `io::tls::route`), with the receiving end the HTTP side serves; as given
/// otherwise. Without TLS listeners `api-on-tls` is an error (validation refuses it earlier; an
/// embedder may still pass [`TlsSetup::Off`]).
pub(super) fn with_api_on_tls(
    config: &Config,
    tls: Option<ReloadableTls>,
) -> Result<(Option<ReloadableTls>, Option<mpsc::Receiver<HttpConnection>>), ConfigError> {
    if !config.api_on_tls {
        return Ok((tls, None));
    }
    match tls.filter(|_| !config.no_tls) {
        Some(tls) => {
            let (handoff, connections) = HttpHandoff::channel();
            Ok((Some(tls.with_http(handoff)), Some(connections)))
        }
        None => Err(ConfigError::InvalidValue {
            key: "api-on-tls".to_owned(),
            message: "no TLS listener to share: needs cert and pkey".to_owned(),
        }),
    }
}

/// Reload: re-reads `cert` and `pkey`. New TLS handshakes present the new certificate; connections
/// already up, and every allocation, are untouched. A pair that does not load keeps the old one.
pub(super) fn reload_tls(config: &Config, tls: Option<&ReloadableTls>) {
    let (Some(tls), Some(cert), Some(pkey)) = (tls, &config.cert, &config.pkey) else {
        info!("SIGHUP: no TLS certificate files to reload");
        return;
    };
    match TlsIdentity::from_pem_files(cert, pkey) {
        Ok(identity) => {
            let fingerprint = identity.fingerprint();
            tls.replace(identity);
            info!(%fingerprint, cert = %cert.display(), "SIGHUP: TLS certificate reloaded");
        }
        Err(e) => warn!(
            error = %e,
            fingerprint = %tls.identity().fingerprint(),
            "SIGHUP: TLS certificate reload failed; keeping the previous certificate"
        ),
    }
}
