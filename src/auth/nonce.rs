//! Stateless nonces, RFC 8489 §9.2 and §14.10: the server remembers nothing per client.
//!
//! A nonce is the "nonce cookie" `obMatJos2` (RFC 8489 §9.2), the 24-bit STUN Security Feature set in
//! base64 (4 characters, §9.2.1), then `base64url(MAC ‖ timestamp)` without padding, 16 characters:
//! 29 in all. The MAC is HMAC-SHA256(key, label ‖ features ‖ timestamp ‖ client IP ‖ client port)
//! truncated to 64 bits, the timestamp the Unix time in seconds modulo 2^32 (4 bytes, big-endian;
//! ages are computed modulo 2^32, so the year 2106 is no cliff). Only the holder of the key can mint
//! one (forging one takes about 2^64 online tries, each a full request from the address it is bound
//! to), it is bound to the client's transport address, its age is read back from the timestamp, and
//! the feature bits cannot be changed on the way (the bid-down protection of §9.2.1).
//!
//! A nonce without the cookie, 16 characters of `base64url(MAC ‖ timestamp)` under the previous
//! label, is what switchback handed out before (another node of a cluster during an upgrade): still
//! accepted, with no security features (the client is an RFC 5389 one, MD5 only).

use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Bytes of the timestamp (big-endian seconds since the Unix epoch, modulo 2^32).
const TS_LEN: usize = 4;
/// Bytes of the truncated MAC.
const MAC_LEN: usize = 8;
/// Bytes of a nonce's MAC and timestamp before encoding.
const RAW_LEN: usize = MAC_LEN + TS_LEN;
/// Characters of the MAC and timestamp: base64url of 12 bytes, no padding.
const BODY_LEN: usize = RAW_LEN / 3 * 4;
/// The nonce cookie, RFC 8489 §9.2: a nonce that begins with it carries security feature bits.
pub const NONCE_COOKIE: &str = "obMatJos2";
/// Characters of the security feature set: base64 of 24 bits (RFC 8489 §9.2.1).
const FEATURES_LEN: usize = 4;
/// Characters of a nonce: cookie, features, MAC and timestamp. Far below the 128 characters of RFC
/// 8489 §14.10, and every character is `qdtext`.
pub const NONCE_LEN: usize = NONCE_COOKIE.len() + FEATURES_LEN + BODY_LEN;
/// How far in the future a nonce's timestamp may lie (clock skew between nodes sharing the key)
/// before it is [`NonceError::Invalid`].
pub const MAX_FUTURE_SKEW_SECS: u64 = 30;
/// Domain separation: the key signs nothing but nonces of this format.
const LABEL: &[u8] = b"switchback nonce v3";
/// The label of the nonces without cookie handed out before.
const LEGACY_LABEL: &[u8] = b"switchback nonce v2";

/// The STUN Security Feature set a nonce carries, RFC 8489 §9.2.1 and §18.1. Bit 0 is the least
/// significant bit, as RFC 8489's erratum on the bit order and other implementations have it (the
/// Appendix B.1 nonce `obMatJos2AAAC…` is bit 1, username anonymity).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SecurityFeatures(pub u32);

impl SecurityFeatures {
    /// None: an RFC 5389 exchange.
    pub const NONE: SecurityFeatures = SecurityFeatures(0);
    /// Bit 0, password algorithms: PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM (RFC 8489 §9.2.4).
    pub const PASSWORD_ALGORITHMS: SecurityFeatures = SecurityFeatures(1);
    /// Bit 1, username anonymity: USERHASH (RFC 8489 §9.2.4, §14.4).
    pub const USERNAME_ANONYMITY: SecurityFeatures = SecurityFeatures(2);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: SecurityFeatures) -> bool {
        self.0 & other.0 == other.0
    }

    /// Both sets' bits.
    pub fn union(self, other: SecurityFeatures) -> SecurityFeatures {
        SecurityFeatures(self.0 | other.0)
    }

    fn to_bytes(self) -> [u8; 3] {
        let [_, a, b, c] = self.0.to_be_bytes();
        [a, b, c]
    }
}

/// Why a NONCE was refused. Both map to 438 Stale Nonce (RFC 8489 §9.2.4), which hands the client a
/// fresh one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// Not one of ours: wrong length or characters, a MAC that does not match (forged, tampered or
    /// issued to another client address), or a timestamp too far in the future.
    #[error("invalid nonce")]
    Invalid,
    /// Ours, but older than the nonce lifetime.
    #[error("stale nonce")]
    Stale,
}

/// The secret that signs nonces. Nodes that share it accept each other's nonces.
#[derive(Clone)]
pub struct NonceKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

/// A nonce as text in a fixed buffer: minting one never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceBuf([u8; NONCE_LEN]);

impl NonceBuf {
    /// The nonce text, for the NONCE attribute.
    pub fn as_str(&self) -> &str {
        // Always ASCII base64 by construction.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl AsRef<str> for NonceBuf {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for NonceBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A nonce is public: it travels in the clear.
        write!(f, "NonceBuf({})", self.as_str())
    }
}

impl std::fmt::Display for NonceBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl NonceKey {
    /// A key from a 32-byte secret (random, from the operator or generated at start).
    pub fn new(secret: [u8; 32]) -> Self {
        // HMAC accepts keys of any length; the fallback is unreachable but keeps this panic-free.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        NonceKey { mac }
    }

    /// The truncated MAC; `features` is `None` for the format without cookie.
    fn tag(&self, features: Option<SecurityFeatures>, ts: u32, client: SocketAddr) -> [u8; MAC_LEN] {
        let mut m = self.mac.clone();
        match features {
            Some(f) => {
                m.update(LABEL);
                m.update(&f.to_bytes());
            }
            None => m.update(LEGACY_LABEL),
        }
        m.update(&ts.to_be_bytes());
        // A v4-mapped IPv6 address (dual-stack socket) and the IPv4 address are one client.
        match client.ip().to_canonical() {
            IpAddr::V4(ip) => {
                m.update(&[4]);
                m.update(&ip.octets());
            }
            IpAddr::V6(ip) => {
                m.update(&[6]);
                m.update(&ip.octets());
            }
        }
        m.update(&client.port().to_be_bytes());
        let full: [u8; 32] = m.finalize().into_bytes().into();
        let mut tag = [0u8; MAC_LEN];
        if let Some(head) = full.get(..MAC_LEN) {
            tag.copy_from_slice(head);
        }
        tag
    }

    /// A fresh nonce for `client` at `unix_now` announcing `features`, RFC 8489 §9.2.4 (sent in 401
    /// and 438 answers).
    pub fn nonce(&self, unix_now: u64, client: SocketAddr, features: SecurityFeatures) -> NonceBuf {
        // The low 32 bits: ages are taken modulo 2^32.
        let ts = unix_now as u32;
        let mut raw = [0u8; RAW_LEN];
        let (mac, stamp) = raw.split_at_mut(MAC_LEN);
        mac.copy_from_slice(&self.tag(Some(features), ts, client));
        stamp.copy_from_slice(&ts.to_be_bytes());
        let mut buf = [0u8; NONCE_LEN];
        let (cookie, rest) = buf.split_at_mut(NONCE_COOKIE.len());
        cookie.copy_from_slice(NONCE_COOKIE.as_bytes());
        let (bits, body) = rest.split_at_mut(FEATURES_LEN);
        // 3 bytes are exactly 4 characters, 12 bytes exactly 16: neither can fail.
        let _ = STANDARD.encode_slice(features.to_bytes(), bits);
        let _ = URL_SAFE_NO_PAD.encode_slice(raw, body);
        NonceBuf(buf)
    }

    /// Checks a NONCE a request carried, RFC 8489 §9.2.4: minted by this key for this client address,
    /// not from the future beyond [`MAX_FUTURE_SKEW_SECS`], and at most `ttl_secs` old. The MAC is
    /// compared in constant time and before the timestamp is trusted. Returns the security features
    /// it announced ([`SecurityFeatures::NONE`] for a nonce without cookie).
    pub fn check(
        &self,
        nonce: &str,
        unix_now: u64,
        client: SocketAddr,
        ttl_secs: u64,
    ) -> Result<SecurityFeatures, NonceError> {
        let (features, body) = match nonce.strip_prefix(NONCE_COOKIE) {
            Some(rest) => {
                let (bits, body) = rest.split_at_checked(FEATURES_LEN).ok_or(NonceError::Invalid)?;
                (Some(decode_features(bits)?), body)
            }
            None => (None, nonce),
        };
        self.check_body(features, body.as_bytes(), unix_now, client, ttl_secs)?;
        Ok(features.unwrap_or(SecurityFeatures::NONE))
    }

    fn check_body(
        &self,
        features: Option<SecurityFeatures>,
        bytes: &[u8],
        unix_now: u64,
        client: SocketAddr,
        ttl_secs: u64,
    ) -> Result<(), NonceError> {
        if bytes.len() != BODY_LEN {
            return Err(NonceError::Invalid);
        }
        let mut raw = [0u8; RAW_LEN];
        match URL_SAFE_NO_PAD.decode_slice(bytes, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(NonceError::Invalid),
        }
        let (tag, stamp) = raw.split_at(MAC_LEN);
        let mut ts = [0u8; TS_LEN];
        ts.copy_from_slice(stamp);
        let ts = u32::from_be_bytes(ts);
        if !bool::from(self.tag(features, ts, client).ct_eq(tag)) {
            return Err(NonceError::Invalid);
        }
        // Age modulo 2^32: "negative" ages (the upper half) are timestamps from the future.
        let age = (unix_now as u32).wrapping_sub(ts);
        if age > u32::MAX / 2 {
            let ahead = u64::from(age.wrapping_neg());
            return if ahead > MAX_FUTURE_SKEW_SECS { Err(NonceError::Invalid) } else { Ok(()) };
        }
        if u64::from(age) > ttl_secs {
            return Err(NonceError::Stale);
        }
        Ok(())
    }
}

/// The security features a nonce announces, read without checking it: what a client goes by (RFC
/// 8489 §9.2.5). `None` without the nonce cookie, or with feature characters that are not base64.
pub fn nonce_features(nonce: &str) -> Option<SecurityFeatures> {
    let bits = nonce.strip_prefix(NONCE_COOKIE)?.get(..FEATURES_LEN)?;
    decode_features(bits).ok()
}

/// The 4 base64 characters of the security feature set (RFC 8489 §9.2.1).
fn decode_features(bits: &str) -> Result<SecurityFeatures, NonceError> {
    let mut raw = [0u8; 3];
    match STANDARD.decode_slice(bits.as_bytes(), &mut raw) {
        Ok(3) => {
            let [a, b, c] = raw;
            Ok(SecurityFeatures(u32::from_be_bytes([0, a, b, c])))
        }
        _ => Err(NonceError::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> NonceKey {
        NonceKey::new([7u8; 32])
    }

    fn client() -> SocketAddr {
        "192.0.2.10:40000".parse().unwrap()
    }

    const NOW: u64 = 1_800_000_000;
    const F: SecurityFeatures = SecurityFeatures::PASSWORD_ALGORITHMS;

    #[test]
    fn round_trip() {
        let n = key().nonce(NOW, client(), F);
        assert_eq!(n.as_str().len(), NONCE_LEN);
        assert_eq!(NONCE_LEN, 29);
        assert!(n.as_str().starts_with("obMatJos2AAAB"), "{n}");
        assert!(n.as_str().bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{n}");
        assert_eq!(key().check(n.as_str(), NOW, client(), 3600), Ok(F));
        assert_eq!(key().check(n.as_str(), NOW + 3600, client(), 3600), Ok(F));
        // Deterministic: same inputs, same nonce; another second, another nonce.
        assert_eq!(n, key().nonce(NOW, client(), F));
        assert_ne!(n, key().nonce(NOW + 1, client(), F));
    }

    #[test]
    fn the_timestamp_wraps_without_a_cliff() {
        // Around 2^32 seconds (the year 2106) ages still come out right.
        let wrap = 1u64 << 32;
        let n = key().nonce(wrap - 10, client(), F);
        assert_eq!(key().check(n.as_str(), wrap + 10, client(), 3600), Ok(F));
        assert_eq!(key().check(n.as_str(), wrap + 3591, client(), 3600), Err(NonceError::Stale));
        let n = key().nonce(wrap + 10, client(), F);
        assert_eq!(key().check(n.as_str(), wrap - 10, client(), 3600), Ok(F));
        assert_eq!(key().check(n.as_str(), wrap - 30, client(), 3600), Err(NonceError::Invalid));
    }

    #[test]
    fn stale_after_ttl() {
        let n = key().nonce(NOW, client(), F);
        assert_eq!(key().check(n.as_str(), NOW + 3601, client(), 3600), Err(NonceError::Stale));
        assert_eq!(key().check(n.as_str(), NOW + 1, client(), 0), Err(NonceError::Stale));
    }

    #[test]
    fn future_beyond_skew_is_invalid() {
        let n = key().nonce(NOW + MAX_FUTURE_SKEW_SECS, client(), F);
        assert_eq!(key().check(n.as_str(), NOW, client(), 3600), Ok(F));
        let n = key().nonce(NOW + MAX_FUTURE_SKEW_SECS + 1, client(), F);
        assert_eq!(key().check(n.as_str(), NOW, client(), 3600), Err(NonceError::Invalid));
    }

    #[test]
    fn other_client_address_is_invalid() {
        let n = key().nonce(NOW, client(), F);
        let other_port: SocketAddr = "192.0.2.10:40001".parse().unwrap();
        let other_ip: SocketAddr = "192.0.2.11:40000".parse().unwrap();
        assert_eq!(key().check(n.as_str(), NOW, other_port, 3600), Err(NonceError::Invalid));
        assert_eq!(key().check(n.as_str(), NOW, other_ip, 3600), Err(NonceError::Invalid));
        // The v4-mapped form of the same address is the same client.
        let mapped: SocketAddr = "[::ffff:192.0.2.10]:40000".parse().unwrap();
        assert_eq!(key().check(n.as_str(), NOW, mapped, 3600), Ok(F));
        let v6: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let n6 = key().nonce(NOW, v6, F);
        assert_eq!(key().check(n6.as_str(), NOW, v6, 3600), Ok(F));
        assert_eq!(key().check(n6.as_str(), NOW, client(), 3600), Err(NonceError::Invalid));
    }

    #[test]
    fn other_key_is_invalid() {
        let n = NonceKey::new([8u8; 32]).nonce(NOW, client(), F);
        assert_eq!(key().check(n.as_str(), NOW, client(), 3600), Err(NonceError::Invalid));
    }

    #[test]
    fn tampered_is_invalid() {
        let n = key().nonce(NOW, client(), F);
        let s = n.as_str();
        // Every single-character change, in the MAC or in the timestamp, is caught.
        for i in 0..s.len() {
            let mut b = s.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let t = String::from_utf8(b).unwrap();
            assert_eq!(key().check(&t, NOW, client(), 3600), Err(NonceError::Invalid), "at {i}");
        }
        // Pushing the timestamp forward (to dodge staleness) breaks the MAC.
        let mut raw = [0u8; RAW_LEN];
        URL_SAFE_NO_PAD.decode_slice(&s[13..], &mut raw).unwrap();
        raw[MAC_LEN..].copy_from_slice(&((NOW + 3000) as u32).to_be_bytes());
        let spliced = format!("{}{}", &s[..13], URL_SAFE_NO_PAD.encode(raw));
        assert_eq!(key().check(&spliced, NOW + 4000, client(), 3600), Err(NonceError::Invalid));
        // Coturn's 16 hex digits are base64url characters too: not ours.
        let padded = format!("{}=", &s[..15]);
        let upper = s.to_uppercase();
        for bad in ["", "abc", &s[1..], &format!("{s}A"), &format!("+{}", &s[1..]), &padded, "7acbb4af1b5e0932"] {
            assert_eq!(key().check(bad, NOW, client(), 3600), Err(NonceError::Invalid), "{bad:?}");
        }
        // base64url is case-sensitive: another case is other bytes.
        if upper != s {
            assert_eq!(key().check(&upper, NOW, client(), 3600), Err(NonceError::Invalid));
        }
    }

    #[test]
    fn feature_bits_are_bound_to_the_mac() {
        let both = F.union(SecurityFeatures::USERNAME_ANONYMITY);
        let n = key().nonce(NOW, client(), both);
        assert!(n.as_str().starts_with("obMatJos2AAAD"), "{n}");
        assert_eq!(key().check(n.as_str(), NOW, client(), 3600), Ok(both));
        // Stripping a bit (a bid-down on the way, RFC 8489 §9.2.1) breaks the MAC.
        let stripped = n.as_str().replacen("AAAD", "AAAB", 1);
        assert_eq!(key().check(&stripped, NOW, client(), 3600), Err(NonceError::Invalid));
        // Stripping the cookie altogether leaves no nonce of the old format either.
        assert_eq!(key().check(&n.as_str()[13..], NOW, client(), 3600), Err(NonceError::Invalid));
    }

    #[test]
    fn nonces_without_cookie_of_the_previous_format_still_verify() {
        let (ts, k) = (NOW as u32, key());
        let mut raw = [0u8; RAW_LEN];
        raw[..MAC_LEN].copy_from_slice(&k.tag(None, ts, client()));
        raw[MAC_LEN..].copy_from_slice(&ts.to_be_bytes());
        let legacy = URL_SAFE_NO_PAD.encode(raw);
        assert_eq!(legacy.len(), 16);
        assert_eq!(k.check(&legacy, NOW + 10, client(), 3600), Ok(SecurityFeatures::NONE));
        assert_eq!(k.check(&legacy, NOW + 3601, client(), 3600), Err(NonceError::Stale));
    }

    #[test]
    fn debug_hides_key() {
        assert_eq!(format!("{:?}", key()), "NonceKey(..)");
    }
}
