//! MESSAGE-INTEGRITY (RFC 8489 §14.5), MESSAGE-INTEGRITY-SHA256 (§14.6), FINGERPRINT (§14.7) and the
//! long-term credential keys (§9.2.2, §18.5.1).

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The XOR constant of FINGERPRINT, RFC 8489 §14.7.
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

/// FINGERPRINT value of `bytes` (the message up to the attribute, length field already covering it).
pub fn fingerprint(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes) ^ FINGERPRINT_XOR
}

/// Long-term credential key, RFC 8489 §9.2.2: MD5(username ":" realm ":" password). The inputs are
/// taken as already processed (OpaqueString); REST passwords are base64 and need no processing.
pub fn long_term_key_md5(username: &str, realm: &str, password: &str) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// Long-term credential key for the SHA-256 password algorithm, RFC 8489 §18.5.1.2:
/// SHA-256(username ":" realm ":" password).
pub fn long_term_key_sha256(username: &str, realm: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.update(b":");
    h.update(password.as_bytes());
    h.finalize().into()
}

/// A MESSAGE-INTEGRITY key with its HMAC-SHA1 state keyed once: checking or signing a message clones
/// the state (a copy of ~200 bytes) instead of re-keying. Cache one per allocation.
#[derive(Clone)]
pub struct IntegrityKey {
    mac: Hmac<Sha1>,
}

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

impl IntegrityKey {
    /// A key from its bytes: the long-term key (16 bytes of MD5) or a short-term password.
    pub fn new(key: &[u8]) -> Self {
        // HMAC takes keys of any length; the fallback is unreachable but keeps this panic-free.
        let mac = Hmac::<Sha1>::new_from_slice(key).unwrap_or_else(|_| Hmac::<Sha1>::new(&Default::default()));
        IntegrityKey { mac }
    }

    /// HMAC-SHA1 over the parts, in order.
    pub(crate) fn compute(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}

/// A MESSAGE-INTEGRITY-SHA256 key with its HMAC-SHA256 state keyed once.
#[derive(Clone)]
pub struct IntegrityKeySha256 {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for IntegrityKeySha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKeySha256(..)")
    }
}

impl IntegrityKeySha256 {
    /// A key from its bytes (the 32-byte SHA-256 long-term key, or a short-term password).
    pub fn new(key: &[u8]) -> Self {
        let mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()));
        IntegrityKeySha256 { mac }
    }

    pub(crate) fn compute(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = self.mac.clone();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }
}
