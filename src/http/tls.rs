//! HTTPS for a face (`api-tls`): the rustls configuration (ring, like the TURN listeners; the
//! certificate is theirs and follows their reloads). `serve.rs` does the handshakes, bounded like
//! every other part of an HTTP connection.

use std::sync::Arc;

// The ALPN protocol offered: HTTP/1.1 only (RFC 7301 §6; hyper is built without h2).
use crate::tls::ALPN_HTTP11;

/// The TURN listeners' rustls configuration made fit for HTTP: same certificate resolver (so a
/// SIGHUP reload shows here too), ALPN `http/1.1` instead of `stun.turn`.
pub fn http_config(turn: &rustls::ServerConfig) -> Arc<rustls::ServerConfig> {
    let mut config = turn.clone();
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Arc::new(config)
}
