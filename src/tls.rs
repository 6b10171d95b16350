//! The TLS vocabulary that the listeners (`io::tls`) and the client (`client::tls`) share: the
//! ALPN protocol IDs of RFC 7443 and the one rustls crypto provider.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// ALPN protocol ID for TURN (RFC 7443 §6).
pub const ALPN_STUN_TURN: &[u8] = b"stun.turn";
/// ALPN protocol ID for STUN NAT discovery (RFC 7443 §6).
pub const ALPN_STUN_NAT_DISCOVERY: &[u8] = b"stun.nat-discovery";

/// The one crypto provider of the crate (ring): every rustls configuration is built with it, so
/// nothing depends on a process-wide default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
