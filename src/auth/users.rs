//! Static long-term credentials (RFC 8489 §9.2): a configured name with a password, or with the key
//! already computed, as coturn's `user=name:0x<hex>` lines carry it.

use crate::proto::stun::long_term_key_md5;

use super::hex;
use super::{KeyAlgorithm, LongTermKey};

/// One static user's credential. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub enum StaticCredential {
    /// A plain password; the key is MD5(username ":" realm ":" password), RFC 8489 §9.2.2, the
    /// password used as given (as RFC 5389 clients do), or SHA-256(username ":" realm ":"
    /// OpaqueString(password)) (RFC 8265 §4.2).
    Password(String),
    /// The pre-computed 16-byte long-term key for the configured realm (coturn's `0x<32 hex>`),
    /// so the password itself need not be stored.
    Key([u8; 16]),
}

/// A credential that starts with `0x` but is not 32 hex digits after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a key must be 0x followed by 32 hex digits (the 16-byte MD5 long-term key)")]
pub struct UserKeyError;

impl StaticCredential {
    /// Reads a credential as coturn does: `0x` followed by 32 hex digits is a key, anything else a
    /// password. A `0x` prefix with anything but 32 hex digits is an error, not silently a password.
    pub fn parse(s: &str) -> Result<Self, UserKeyError> {
        let Some(hex_digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) else {
            return Ok(StaticCredential::Password(s.to_owned()));
        };
        let mut key = [0u8; 16];
        hex::decode(hex_digits.as_bytes(), &mut key).ok_or(UserKeyError)?;
        Ok(StaticCredential::Key(key))
    }

    /// The long-term key for `username` in `realm` with `algorithm`, RFC 8489 §9.2.2: a pre-computed
    /// key is an MD5 one, so it has none for SHA-256.
    pub fn key_for(&self, algorithm: KeyAlgorithm, username: &str, realm: &str) -> Option<LongTermKey> {
        match (self, algorithm) {
            (StaticCredential::Password(p), _) => LongTermKey::derive(algorithm, username, realm, p),
            (StaticCredential::Key(k), KeyAlgorithm::Md5) => Some(LongTermKey::Md5(*k)),
            (StaticCredential::Key(_), KeyAlgorithm::Sha256) => None,
        }
    }

    /// The long-term key for `username` in `realm`, RFC 8489 §9.2.2 (MD5).
    pub fn key(&self, username: &str, realm: &str) -> [u8; 16] {
        match self {
            StaticCredential::Password(p) => long_term_key_md5(username, realm, p),
            StaticCredential::Key(k) => *k,
        }
    }
}

impl std::fmt::Debug for StaticCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StaticCredential::Password(_) => f.write_str("Password(..)"),
            StaticCredential::Key(_) => f.write_str("Key(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_key_and_password() {
        let k = StaticCredential::parse("0x97b37d1e83e546d3c2ac44283b33af08").unwrap();
        let expected = long_term_key_md5("1795921235:uclient", "fixture.test", "NKHMu+dGJ/ayG8gZN6CWEgob98w=");
        assert_eq!(k, StaticCredential::Key(expected));
        assert_eq!(k.key("anyone", "any.realm"), expected);
        assert_eq!(
            StaticCredential::parse("0X97B37D1E83E546D3C2AC44283B33AF08").unwrap(),
            StaticCredential::Key(expected)
        );

        let p = StaticCredential::parse("hunter2").unwrap();
        assert_eq!(p, StaticCredential::Password("hunter2".into()));
        assert_eq!(p.key("alice", "example.org"), long_term_key_md5("alice", "example.org", "hunter2"));

        for bad in ["0x", "0x1234", "0x97b37d1e83e546d3c2ac44283b33af0g", "0x97b37d1e83e546d3c2ac44283b33af0800"] {
            assert_eq!(StaticCredential::parse(bad), Err(UserKeyError), "{bad}");
        }
    }

    #[test]
    fn debug_redacts() {
        assert_eq!(format!("{:?}", StaticCredential::Password("hunter2".into())), "Password(..)");
        assert_eq!(format!("{:?}", StaticCredential::Key([0xab; 16])), "Key(..)");
    }
}
