//! The TLS vocabulary that the listeners (`io::tls`), the HTTP faces (`http::tls`) and the client
//! (`client::tls`) share: the ALPN protocol IDs of RFC 7443 (and HTTP/1.1's of RFC 7301) and the one
//! rustls crypto provider.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// ALPN protocol ID for TURN (RFC 7443 §6).
pub const ALPN_STUN_TURN: &[u8] = b"stun.turn";
/// ALPN protocol ID for STUN NAT discovery (RFC 7443 §6). The listeners do not offer it: it stands
/// for RFC 5780 over TLS, and `rfc5780` runs on UDP only.
pub const ALPN_STUN_NAT_DISCOVERY: &[u8] = b"stun.nat-discovery";
/// ALPN protocol ID for HTTP/1.1 (RFC 7301 §6): the HTTPS faces, and the TURN-TLS listeners with
/// `api-on-tls` (the one ID that sends a connection to the token service instead of TURN).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The one crypto provider of the crate (ring): every rustls configuration is built with it, so
/// nothing depends on a process-wide default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
