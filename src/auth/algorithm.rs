//! Password algorithms and user name anonymity of the long-term credential mechanism: the key per
//! algorithm (RFC 8489 §9.2.2, §18.5.1), USERHASH (§14.4) and the OpaqueString preparation they
//! call for (RFC 8265 §4.2), in its ASCII subset.

use sha2::{Digest, Sha256};

use crate::proto::stun::{PasswordAlgorithms, long_term_key_md5, long_term_key_sha256, password_algorithm};

/// A password algorithm, RFC 8489 §18.5.1: which hash makes the long-term key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// MD5 (0x0001): the RFC 5389 key, 16 bytes.
    Md5,
    /// SHA-256 (0x0002): 32 bytes.
    Sha256,
}

impl KeyAlgorithm {
    /// The algorithm of a PASSWORD-ALGORITHM number (RFC 8489 §14.11), if we implement it; MD5 and
    /// SHA-256 take no parameters (§18.5.1.1, §18.5.1.2).
    pub fn from_attribute(number: u16, params: &[u8]) -> Option<Self> {
        match (number, params.is_empty()) {
            (password_algorithm::MD5, true) => Some(KeyAlgorithm::Md5),
            (password_algorithm::SHA256, true) => Some(KeyAlgorithm::Sha256),
            _ => None,
        }
    }
}

/// The PASSWORD-ALGORITHMS a server offers (RFC 8489 §14.12): SHA-256 first (preferred), then MD5;
/// SHA-256 alone when MD5 is refused.
pub fn offered_algorithms(require_sha256: bool) -> PasswordAlgorithms<'static> {
    if require_sha256 { PasswordAlgorithms::SHA256 } else { PasswordAlgorithms::SHA256_AND_MD5 }
}

/// A long-term key, RFC 8489 §9.2.2: what MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 are keyed
/// with. `Debug` redacts it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LongTermKey {
    /// MD5(username ":" realm ":" password).
    Md5([u8; 16]),
    /// SHA-256(username ":" realm ":" OpaqueString(password)).
    Sha256([u8; 32]),
}

impl LongTermKey {
    /// The key of `username` in `realm` with `password` for `algorithm`. MD5 takes the strings as
    /// they are (as switchback always has: RFC 5389 clients prepare nothing); SHA-256 prepares the
    /// password with OpaqueString (RFC 8489 §9.2.2), and has no key for one it refuses.
    pub fn derive(algorithm: KeyAlgorithm, username: &str, realm: &str, password: &str) -> Option<Self> {
        match algorithm {
            KeyAlgorithm::Md5 => Some(LongTermKey::Md5(long_term_key_md5(username, realm, password))),
            KeyAlgorithm::Sha256 => {
                let password = opaque_string(password).ok()?;
                Some(LongTermKey::Sha256(long_term_key_sha256(username, realm, password)))
            }
        }
    }

    /// The algorithm that made it.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            LongTermKey::Md5(_) => KeyAlgorithm::Md5,
            LongTermKey::Sha256(_) => KeyAlgorithm::Sha256,
        }
    }

    /// The key bytes (16 or 32).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            LongTermKey::Md5(k) => k,
            LongTermKey::Sha256(k) => k,
        }
    }
}

impl std::fmt::Debug for LongTermKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LongTermKey::{:?}(..)", self.algorithm())
    }
}

/// Why a string is not an OpaqueString (RFC 8265 §4.2) in the subset implemented here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpaqueStringError {
    /// Empty: RFC 8265 §4.2.2 refuses a string that is empty after enforcement.
    #[error("an OpaqueString must not be empty")]
    Empty,
    /// A control character (U+0000–U+001F, U+007F): disallowed in the FreeformClass (RFC 8264 §9.12).
    #[error("an OpaqueString must not contain control characters")]
    Control,
    /// Outside ASCII: full PRECIS preparation (width mapping, NFC) is not implemented, so such a
    /// string is refused rather than prepared wrongly.
    #[error("only ASCII OpaqueStrings are supported")]
    NotAscii,
}

/// OpaqueString, RFC 8265 §4.2, for ASCII input: the identity (no mapping changes an ASCII string,
/// NFC leaves it as it is), except that it must be non-empty and free of control characters.
/// Anything beyond ASCII is refused ([`OpaqueStringError::NotAscii`]).
pub fn opaque_string(s: &str) -> Result<&str, OpaqueStringError> {
    if s.is_empty() {
        return Err(OpaqueStringError::Empty);
    }
    match s.bytes().find(|b| !(0x20..0x7f).contains(b)) {
        None => Ok(s),
        Some(b) if b.is_ascii() => Err(OpaqueStringError::Control),
        Some(_) => Err(OpaqueStringError::NotAscii),
    }
}

/// USERHASH, RFC 8489 §14.4: SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
pub fn userhash(username: &str, realm: &str) -> Result<[u8; 32], OpaqueStringError> {
    Ok(userhash_raw(opaque_string(username)?, opaque_string(realm)?))
}

/// SHA-256(username ":" realm) of strings already prepared.
pub(crate) fn userhash_raw(username: &str, realm: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(username.as_bytes());
    h.update(b":");
    h.update(realm.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_string_ascii_subset() {
        assert_eq!(opaque_string("TheMatrIX"), Ok("TheMatrIX"));
        assert_eq!(opaque_string("with space ~!"), Ok("with space ~!"));
        assert_eq!(opaque_string(""), Err(OpaqueStringError::Empty));
        assert_eq!(opaque_string("a\tb"), Err(OpaqueStringError::Control));
        assert_eq!(opaque_string("a\u{7f}"), Err(OpaqueStringError::Control));
        assert_eq!(opaque_string("The\u{00AD}M\u{00AA}tr\u{2168}"), Err(OpaqueStringError::NotAscii));
        assert_eq!(userhash("\u{30DE}", "example.org"), Err(OpaqueStringError::NotAscii));
    }

    #[test]
    fn keys_per_algorithm() {
        let md5 = LongTermKey::derive(KeyAlgorithm::Md5, "user", "realm", "pass").unwrap();
        assert_eq!(md5, LongTermKey::Md5(long_term_key_md5("user", "realm", "pass")));
        let sha = LongTermKey::derive(KeyAlgorithm::Sha256, "user", "realm", "pass").unwrap();
        assert_eq!(sha.as_bytes().len(), 32);
        assert_eq!(sha.algorithm(), KeyAlgorithm::Sha256);
        assert_eq!(LongTermKey::derive(KeyAlgorithm::Sha256, "user", "realm", "p\u{0}"), None);
        assert_eq!(format!("{sha:?}"), "LongTermKey::Sha256(..)");
        assert_eq!(KeyAlgorithm::from_attribute(2, &[]), Some(KeyAlgorithm::Sha256));
        assert_eq!(KeyAlgorithm::from_attribute(1, &[]), Some(KeyAlgorithm::Md5));
        assert_eq!(KeyAlgorithm::from_attribute(2, &[0, 0, 0, 0]), None);
        assert_eq!(KeyAlgorithm::from_attribute(3, &[]), None);
    }

    /// RFC 8489 Appendix B.1 as corrected by erratum 6268 (verified): the request carries
    /// PASSWORD-ALGORITHM (SHA-256), message length 0x90, and MESSAGE-INTEGRITY-SHA256 is keyed
    /// with SHA-256("マトリックス:example.org:TheMatrIX") (the password after OpaqueString; the
    /// user name is one OpaqueString leaves as it is). The strings are not ASCII, so the key and
    /// USERHASH are computed from them as prepared (our OpaqueString refuses non-ASCII).
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc8489_b1_test_vector_with_erratum_6268() {
        use crate::proto::stun::{
            Class, IntegrityKeySha256, Message, MessageType, MessageWriter, Method, Nonce, PasswordAlgorithm, Realm,
            TransactionId, Userhash,
        };
        // RFC 8489 Appendix B.1 with erratum 6268: header, USERHASH, NONCE (3 bytes padding), REALM,
        // PASSWORD-ALGORITHM, MESSAGE-INTEGRITY-SHA256.
        const VECTOR: &str = concat!(
            "00010090",
            "2112a442",
            "78ad3433c6ad72c029da412e",
            "001e0020",
            "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704",
            "00150029",
            "6f624d61744a6f733241414143662f2f3439396b39353464364f4c33346f4c39465354767936347341000000",
            "0014000b",
            "6578616d706c652e6f726700",
            "001d0004",
            "00020000",
            "001c0020",
            "b5c7bf005b6c52a21c51c5e892f81924136296cb927c43149309278cc6518e65",
        );
        let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
        let uh = userhash_raw(username, "example.org");
        assert_eq!(hex(&uh), "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704");
        let key = long_term_key_sha256(username, "example.org", "TheMatrIX");

        let mut buf = [0u8; 256];
        let tid = TransactionId([0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e]);
        let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::BINDING, Class::Request), tid).unwrap();
        w.add(&Userhash(uh)).unwrap();
        w.add(&Nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA")).unwrap();
        w.add(&Realm("example.org")).unwrap();
        w.add(&PasswordAlgorithm { algorithm: password_algorithm::SHA256, params: &[] }).unwrap();
        w.add_message_integrity_sha256(&IntegrityKeySha256::new(&key)).unwrap();
        let n = w.finish();
        assert_eq!(n, 164);
        assert_eq!(hex(&buf[..n]), VECTOR);
        let msg = Message::parse(&buf[..n]).unwrap();
        assert!(msg.verify_integrity_sha256(&IntegrityKeySha256::new(&key)).is_ok());
    }
}
