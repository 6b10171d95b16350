//! Time-limited credentials from a shared secret ("TURN REST API", draft-uberti-behave-turn-rest-00
//! §2.2, as coturn's `use-auth-secret` implements it).
//!
//! A web backend that knows the secret mints `username = "<unix-expiry>:<user>"` and
//! `password = base64(HMAC-SHA1(secret, username))`; the relay recomputes the password from the
//! username alone, so it keeps no user table. Several secrets may be configured for rotation: the
//! first mints, every one verifies.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// A shared secret. Its `Debug` prints `Secret(..)`: secrets are never logged.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// A secret from its bytes (coturn's `static-auth-secret` is the UTF-8 text as given).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret::new(s)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret::new(s)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The HMAC behind the password. SHA-1 is what the draft and coturn use; SHA-256 is opt-in and both
/// ends must agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RestAlgorithm {
    /// `base64(HMAC-SHA1(secret, username))`, 28 characters.
    #[default]
    Sha1,
    /// `base64(HMAC-SHA256(secret, username))`, 44 characters.
    Sha256,
}

/// Why a REST username is refused before any MAC is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// No separator, or the part before it is not a decimal Unix time.
    #[error("username is not <unix-expiry><separator><user>")]
    Malformed,
    /// The expiry time has passed.
    #[error("credentials expired")]
    Expired,
    /// The expiry lies further ahead than the configured maximum lifetime.
    #[error("credentials expire too far in the future")]
    TooFarInFuture,
}

/// Longest password text: base64 of a 32-byte HMAC-SHA256 with padding.
const MAX_PASSWORD_LEN: usize = 44;

/// A REST password in a fixed buffer (computing one never allocates). `Debug` redacts it.
#[derive(Clone, Copy)]
pub struct RestPassword {
    buf: [u8; MAX_PASSWORD_LEN],
    len: usize,
}

impl RestPassword {
    /// The password text (standard base64 with padding).
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or_default();
        // Always ASCII base64 by construction.
        std::str::from_utf8(bytes).unwrap_or("")
    }
}

impl std::fmt::Debug for RestPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestPassword(..)")
    }
}

/// The password for `username` under one secret: `base64(HMAC(secret, username))`.
pub fn rest_password(secret: &Secret, username: &str, algorithm: RestAlgorithm) -> RestPassword {
    let mut out = RestPassword { buf: [0u8; MAX_PASSWORD_LEN], len: 0 };
    let encoded = match algorithm {
        RestAlgorithm::Sha1 => {
            let mac = hmac_sha1(secret.as_bytes(), username.as_bytes());
            STANDARD.encode_slice(mac, &mut out.buf)
        }
        RestAlgorithm::Sha256 => {
            let mac = hmac_sha256(secret.as_bytes(), username.as_bytes());
            STANDARD.encode_slice(mac, &mut out.buf)
        }
    };
    // The buffer fits the longer of the two encodings, so this cannot fail.
    out.len = encoded.unwrap_or(0);
    out
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut m =
        <Hmac<Sha1> as Mac>::new_from_slice(key).unwrap_or_else(|_| <Hmac<Sha1> as Mac>::new(&Default::default()));
    m.update(data);
    m.finalize().into_bytes().into()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Shared-secret credentials: how usernames are read and passwords computed.
#[derive(Clone, Debug)]
pub struct RestCredentials {
    /// The secrets, newest first: the first mints, all verify (rotation).
    pub secrets: Vec<Secret>,
    /// Between the expiry and the user name; `:` by default (coturn's `rest-api-separator`).
    pub separator: char,
    /// The password HMAC.
    pub algorithm: RestAlgorithm,
    /// The furthest ahead an expiry may lie, in seconds; 0 disables the cap. A stolen credential
    /// minted for ten years is refused.
    pub max_lifetime_secs: u64,
}

impl Default for RestCredentials {
    fn default() -> Self {
        RestCredentials {
            secrets: Vec::new(),
            separator: ':',
            algorithm: RestAlgorithm::Sha1,
            max_lifetime_secs: Self::DEFAULT_MAX_LIFETIME_SECS,
        }
    }
}

impl RestCredentials {
    /// Default cap on a credential's remaining lifetime: 48 hours.
    pub const DEFAULT_MAX_LIFETIME_SECS: u64 = 48 * 3600;

    /// Credentials with these secrets and the defaults (`:`, SHA-1, 48 h cap).
    pub fn new(secrets: Vec<Secret>) -> Self {
        RestCredentials { secrets, ..Self::default() }
    }

    /// Mints a username and password valid for `ttl_secs` from `unix_now` (capped at
    /// `max_lifetime_secs`, so the relay never refuses what it minted), with the first secret.
    /// `None` if no secret is configured.
    pub fn mint(&self, user: &str, ttl_secs: u64, unix_now: u64) -> Option<(String, String)> {
        let secret = self.secrets.first()?;
        let ttl = if self.max_lifetime_secs == 0 { ttl_secs } else { ttl_secs.min(self.max_lifetime_secs) };
        let expiry = unix_now.saturating_add(ttl);
        let username = format!("{expiry}{}{user}", self.separator);
        let password = rest_password(secret, &username, self.algorithm).as_str().to_owned();
        Some((username, password))
    }

    /// The expiry a username carries: the decimal number before the first separator, or the whole
    /// username when it has no separator (`"<expiry>"` alone, as coturn takes it and
    /// `turnutils_uclient -W` without `-u` sends: the user part is empty).
    pub fn expiry(&self, username: &str) -> Result<u64, CredentialError> {
        let ts = username.split_once(self.separator).map_or(username, |(ts, _user)| ts);
        if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CredentialError::Malformed);
        }
        ts.parse::<u64>().map_err(|_| CredentialError::Malformed)
    }

    /// The expiry of `username` if it is valid at `unix_now`: not past (valid through the expiry
    /// second itself, as coturn) and not beyond `unix_now + max_lifetime_secs`.
    pub fn check_expiry(&self, username: &str, unix_now: u64) -> Result<u64, CredentialError> {
        let expiry = self.expiry(username)?;
        if expiry < unix_now {
            return Err(CredentialError::Expired);
        }
        if self.max_lifetime_secs != 0 && expiry > unix_now.saturating_add(self.max_lifetime_secs) {
            return Err(CredentialError::TooFarInFuture);
        }
        Ok(expiry)
    }

    /// The candidate passwords for `username` at `unix_now`, one per secret in order, after the
    /// expiry check ([`RestCredentials::check_expiry`]).
    pub fn passwords<'a>(&'a self, username: &'a str, unix_now: u64) -> Result<Passwords<'a>, CredentialError> {
        let expiry = self.check_expiry(username, unix_now)?;
        Ok(Passwords { secrets: self.secrets.iter(), username, algorithm: self.algorithm, expiry })
    }
}

/// The candidate passwords of one REST username, one per secret (see [`RestCredentials::passwords`]).
#[derive(Clone, Debug)]
pub struct Passwords<'a> {
    secrets: std::slice::Iter<'a, Secret>,
    username: &'a str,
    algorithm: RestAlgorithm,
    expiry: u64,
}

impl Passwords<'_> {
    /// The expiry the username carries (already checked).
    pub fn expiry(&self) -> u64 {
        self.expiry
    }
}

impl Iterator for Passwords<'_> {
    type Item = RestPassword;

    fn next(&mut self) -> Option<RestPassword> {
        let secret = self.secrets.next()?;
        Some(rest_password(secret, self.username, self.algorithm))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.secrets.size_hint()
    }
}

impl ExactSizeIterator for Passwords<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn two_secrets() -> RestCredentials {
        RestCredentials::new(vec![Secret::from("new-secret"), Secret::from("old-secret")])
    }

    fn candidates(c: &RestCredentials, username: &str, now: u64) -> Vec<String> {
        c.passwords(username, now).unwrap().map(|p| p.as_str().to_owned()).collect()
    }

    #[test]
    fn known_answer_coturn_fixture() {
        // turnutils_uclient -W fixture-secret -u uclient, checked against coturn 4.6.1.
        let c = RestCredentials::new(vec![Secret::from("fixture-secret")]);
        let p = rest_password(&c.secrets[0], "1795921235:uclient", RestAlgorithm::Sha1);
        assert_eq!(p.as_str(), "NKHMu+dGJ/ayG8gZN6CWEgob98w=");
        let p = rest_password(&c.secrets[0], "2000000000:fixture-aioice-udp", RestAlgorithm::Sha1);
        assert_eq!(p.as_str(), "trBMdfRf2CWehS+eeWUQwesH14w=");
    }

    #[test]
    fn mint_then_verify_with_rotation() {
        let c = two_secrets();
        let (user, pass) = c.mint("alice", 3600, NOW).unwrap();
        assert_eq!(user, format!("{}:alice", NOW + 3600));
        assert_eq!(pass.len(), 28);
        let cands = candidates(&c, &user, NOW);
        assert_eq!(cands.len(), 2);
        assert_eq!(cands[0], pass, "the first secret mints");
        assert_eq!(c.passwords(&user, NOW).unwrap().expiry(), NOW + 3600);

        // A credential minted before rotation (old secret first) still verifies after it.
        let before = RestCredentials::new(vec![Secret::from("old-secret")]);
        let (user, old_pass) = before.mint("bob", 600, NOW).unwrap();
        let cands = candidates(&c, &user, NOW);
        assert!(!cands.contains(&String::new()));
        assert_eq!(cands[1], old_pass, "the second secret still verifies");
        assert_ne!(cands[0], old_pass);
    }

    #[test]
    fn mint_needs_a_secret_and_caps_ttl() {
        assert!(RestCredentials::default().mint("x", 60, NOW).is_none());
        let c = two_secrets();
        let (user, _) = c.mint("x", 10 * 24 * 3600, NOW).unwrap();
        assert_eq!(c.expiry(&user), Ok(NOW + RestCredentials::DEFAULT_MAX_LIFETIME_SECS));
        assert!(c.passwords(&user, NOW).is_ok());
    }

    #[test]
    fn expiry() {
        let c = two_secrets();
        let user = format!("{NOW}:carol");
        assert!(c.passwords(&user, NOW).is_ok(), "valid through the expiry second");
        assert_eq!(c.passwords(&user, NOW + 1).err(), Some(CredentialError::Expired));
        assert_eq!(c.check_expiry("0:x", NOW), Err(CredentialError::Expired));
    }

    #[test]
    fn far_future_cap_and_cap_zero() {
        let mut c = two_secrets();
        let at_cap = format!("{}:dave", NOW + 48 * 3600);
        let beyond = format!("{}:dave", NOW + 48 * 3600 + 1);
        assert!(c.passwords(&at_cap, NOW).is_ok());
        assert_eq!(c.passwords(&beyond, NOW).err(), Some(CredentialError::TooFarInFuture));
        c.max_lifetime_secs = 0;
        assert!(c.passwords(&beyond, NOW).is_ok());
        assert!(c.passwords(&format!("{}:dave", u64::MAX), NOW).is_ok());
        let (user, _) = c.mint("eve", 10 * 365 * 24 * 3600, NOW).unwrap();
        assert_eq!(c.expiry(&user), Ok(NOW + 10 * 365 * 24 * 3600));
    }

    #[test]
    fn malformed() {
        let c = two_secrets();
        for bad in [
            "",
            "alice",
            ":alice",
            "abc:alice",
            "+123:alice",
            "-1:alice",
            " 123:alice",
            "12a:x",
            "99999999999999999999999:x",
            "1800000000;alice",
        ] {
            assert_eq!(c.passwords(bad, NOW).err(), Some(CredentialError::Malformed), "{bad:?}");
        }
        // The user part may contain the separator; the expiry is before the first one.
        assert_eq!(c.expiry(&format!("{NOW}:a:b")), Ok(NOW));
        assert_eq!(c.expiry(&format!("{NOW}:")), Ok(NOW));
        // coturn's "<expiry>" alone: the user part is empty.
        assert_eq!(c.expiry(&format!("{NOW}")), Ok(NOW));
        assert_eq!(c.expiry("alice"), Err(CredentialError::Malformed));
    }

    #[test]
    fn separator_configurable() {
        let mut c = two_secrets();
        c.separator = '-';
        let (user, pass) = c.mint("frank", 60, NOW).unwrap();
        assert_eq!(user, format!("{}-frank", NOW + 60));
        assert_eq!(candidates(&c, &user, NOW)[0], pass);
        assert_eq!(c.passwords(&format!("{}:frank", NOW + 60), NOW).err(), Some(CredentialError::Malformed));
    }

    #[test]
    fn sha256_variant() {
        let mut c = two_secrets();
        c.algorithm = RestAlgorithm::Sha256;
        let (user, pass) = c.mint("grace", 60, NOW).unwrap();
        assert_eq!(pass.len(), 44);
        assert!(pass.ends_with('='));
        assert_eq!(candidates(&c, &user, NOW)[0], pass);
        // Same secret, same username, other algorithm: another password.
        let sha1 = rest_password(&c.secrets[0], &user, RestAlgorithm::Sha1);
        assert_ne!(sha1.as_str(), pass);
        // Known answer, independently: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f4...; its base64 is below.
        let p =
            rest_password(&Secret::from("key"), "The quick brown fox jumps over the lazy dog", RestAlgorithm::Sha256);
        assert_eq!(p.as_str(), "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
    }

    #[test]
    fn debug_redacts() {
        let c = two_secrets();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("new-secret") && !dbg.contains("old-secret"), "{dbg}");
        assert!(dbg.contains("Secret(..)"));
        let p = rest_password(&c.secrets[0], "1:x", RestAlgorithm::Sha1);
        assert_eq!(format!("{p:?}"), "RestPassword(..)");
    }
}
