//! The long-term credential mechanism, RFC 8489 §9.2, with stateless nonces and shared-secret
//! ("REST") credentials; sans-IO: time comes in as `unix_now` seconds, keys come in as bytes, and
//! nothing is stored per client before a request proves its credentials.
//!
//! * [`nonce`](NonceKey) — nonces that carry their own timestamp and a MAC over the client address;
//! * [`RestCredentials`] — `username = <expiry>:<user>`, `password = base64(HMAC(secret, username))`;
//! * [`StaticCredential`] — configured users, by password or pre-computed key;
//! * [`oauth`] — RFC 7635 self-contained ACCESS-TOKENs (AES-GCM) and their session keys;
//! * [`Authenticator`] — the server side of RFC 8489 §9.2.4 over a parsed [`Message`] (and of
//!   RFC 7635 §6.2 for requests with a token).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod error;
mod hex;
mod nonce;
pub mod oauth;
mod rest;
#[cfg(feature = "tokens")]
pub mod token;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::proto::stun::{AccessToken, IntegrityKey, Message, Nonce, Realm, Username, long_term_key_md5};

pub use error::{AuthError, Reason};
pub use nonce::{MAX_FUTURE_SKEW_SECS, NONCE_LEN, NonceBuf, NonceError, NonceKey};
pub use oauth::{AccessTokenError, AccessTokenKey, MacKey, OauthConfig, OauthSession, TokenAlgorithm};
pub use rest::{CredentialError, Passwords, RestAlgorithm, RestCredentials, RestPassword, Secret, rest_password};
pub use users::{StaticCredential, UserKeyError};

/// What the long-term credential mechanism needs to know. `Debug` redacts every secret.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// Our REALM, RFC 8489 §14.9: compared byte for byte with the request's, and part of every key.
    pub realm: String,
    /// How long a nonce stays valid, in seconds; after that the client gets 438 and a new one.
    pub nonce_ttl_secs: u64,
    /// Shared-secret credentials, if enabled.
    pub rest: Option<RestCredentials>,
    /// Static users by exact name. Looked up before REST parsing.
    pub users: HashMap<String, StaticCredential>,
    /// RFC 7635 third-party authorization (ACCESS-TOKEN), if enabled.
    pub oauth: Option<OauthConfig>,
}

impl AuthConfig {
    /// Default nonce lifetime: one hour.
    pub const DEFAULT_NONCE_TTL_SECS: u64 = 3600;

    /// A configuration for `realm` with no users, no REST secret and the default nonce lifetime.
    pub fn new(realm: impl Into<String>) -> Self {
        AuthConfig {
            realm: realm.into(),
            nonce_ttl_secs: Self::DEFAULT_NONCE_TTL_SECS,
            rest: None,
            users: HashMap::new(),
            oauth: None,
        }
    }
}

/// The realm when none is configured (and of the daemon's development default).
pub const DEFAULT_REALM: &str = "switchback.local";

impl Default for AuthConfig {
    /// Realm [`DEFAULT_REALM`], no users, no REST secret, one-hour nonces.
    fn default() -> Self {
        AuthConfig::new(DEFAULT_REALM)
    }
}

/// A request that proved its credentials.
#[derive(Clone)]
pub struct Authenticated<'m> {
    /// The USERNAME, borrowed from the request.
    pub username: &'m str,
    /// The keyed HMAC state, to sign the response's MESSAGE-INTEGRITY (RFC 8489 §9.2.4) and to
    /// cache for later requests ([`Authenticator::verify_with_key`]).
    pub key: IntegrityKey,
    /// The 16-byte long-term key, MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
    pub key_bytes: [u8; 16],
    /// For a REST username, its expiry (Unix seconds): the allocation may be torn down then.
    pub rest_expiry: Option<u64>,
    /// For RFC 7635 third-party authorization: the token's kid and session key, which sign the
    /// response instead of `key` (`key_bytes` is zero then).
    pub oauth: Option<Arc<OauthSession>>,
}

impl std::fmt::Debug for Authenticated<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticated")
            .field("username", &self.username)
            .field("key", &"..")
            .field("rest_expiry", &self.rest_expiry)
            .field("oauth", &self.oauth.as_ref().map(|o| &o.kid))
            .finish()
    }
}

/// The long-term keys a username may have: one for a static user, one per secret for a REST
/// username. Computed lazily; `Debug` shows no key.
#[derive(Clone)]
pub struct KeyCandidates<'a> {
    source: CandidateSource<'a>,
    username: &'a str,
    realm: &'a str,
    rest_expiry: Option<u64>,
}

#[derive(Clone)]
enum CandidateSource<'a> {
    Static(Option<[u8; 16]>),
    Rest(Passwords<'a>),
}

impl KeyCandidates<'_> {
    /// For a REST username, its (already checked) expiry.
    pub fn rest_expiry(&self) -> Option<u64> {
        self.rest_expiry
    }
}

impl Iterator for KeyCandidates<'_> {
    type Item = [u8; 16];

    fn next(&mut self) -> Option<[u8; 16]> {
        match &mut self.source {
            CandidateSource::Static(key) => key.take(),
            CandidateSource::Rest(passwords) => {
                let p = passwords.next()?;
                Some(long_term_key_md5(self.username, self.realm, p.as_str()))
            }
        }
    }
}

impl std::fmt::Debug for KeyCandidates<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCandidates")
            .field("username", &self.username)
            .field("rest_expiry", &self.rest_expiry)
            .finish_non_exhaustive()
    }
}

/// USERNAME, REALM and NONCE of a request that carries MESSAGE-INTEGRITY.
#[derive(Clone, Copy, Debug)]
struct Presented<'m> {
    username: &'m str,
    realm: &'m str,
    nonce: &'m str,
}

/// The server side of the long-term credential mechanism, RFC 8489 §9.2.4. Holds configuration
/// only: no per-client state. `Debug` redacts every secret.
#[derive(Clone, Debug)]
pub struct Authenticator {
    config: AuthConfig,
    nonce_key: NonceKey,
}

impl Authenticator {
    /// An authenticator with its configuration and the 32-byte secret that signs nonces (shared by
    /// every node that should accept the others' nonces).
    pub fn new(config: AuthConfig, nonce_key: [u8; 32]) -> Self {
        Authenticator { config, nonce_key: NonceKey::new(nonce_key) }
    }

    /// The same nonce key with a new configuration (reload: nonces handed out before stay valid).
    pub fn with_config(&self, config: AuthConfig) -> Self {
        Authenticator { config, nonce_key: self.nonce_key.clone() }
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Our REALM, for 401 and 438 answers (RFC 8489 §9.2.4).
    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// The third-party authorization settings, if enabled (RFC 7635).
    pub fn oauth(&self) -> Option<&OauthConfig> {
        self.config.oauth.as_ref()
    }

    /// The shared-secret credentials, if enabled (to mint them for an HTTP API).
    pub fn rest(&self) -> Option<&RestCredentials> {
        self.config.rest.as_ref()
    }

    /// The user a USERNAME stands for: a static user's name as it is, the part after the separator
    /// of a REST username (`<expiry>:<user>` → `user`). Revocation and per-user limits go by it.
    pub fn user_of<'a>(&self, username: &'a str) -> &'a str {
        if self.config.users.contains_key(username) {
            return username;
        }
        match &self.config.rest {
            Some(rest) if rest.expiry(username).is_ok() => {
                username.split_once(rest.separator).map_or(username, |s| s.1)
            }
            _ => username,
        }
    }

    /// A fresh NONCE for `client`, for 401 and 438 answers (RFC 8489 §9.2.4).
    pub fn nonce(&self, unix_now: u64, client: SocketAddr) -> NonceBuf {
        self.nonce_key.nonce(unix_now, client)
    }

    /// Checks a NONCE against our key, the client's address and the nonce lifetime.
    pub fn check_nonce(&self, nonce: &str, unix_now: u64, client: SocketAddr) -> Result<(), NonceError> {
        self.nonce_key.check(nonce, unix_now, client, self.config.nonce_ttl_secs)
    }

    /// The candidate long-term keys of `username` (RFC 8489 §9.2.2) in our realm: a static user's
    /// key if the exact name is configured, else, with REST enabled, one key per secret after the
    /// expiry check. Errors are those [`Authenticator::authenticate`] returns for the username.
    pub fn key_candidates<'a>(&'a self, username: &'a str, unix_now: u64) -> Result<KeyCandidates<'a>, AuthError> {
        let realm = self.config.realm.as_str();
        if let Some(cred) = self.config.users.get(username) {
            let key = cred.key(username, realm);
            return Ok(KeyCandidates {
                source: CandidateSource::Static(Some(key)),
                username,
                realm,
                rest_expiry: None,
            });
        }
        let rest = self.config.rest.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
        if rest.secrets.is_empty() {
            return Err(AuthError::Unauthenticated(Reason::UnknownUser));
        }
        let passwords = rest.passwords(username, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
        let rest_expiry = Some(passwords.expiry());
        Ok(KeyCandidates { source: CandidateSource::Rest(passwords), username, realm, rest_expiry })
    }

    /// Authenticates a request, RFC 8489 §9.2.4 (MESSAGE-INTEGRITY, HMAC-SHA1 with the MD5 long-term
    /// key). Checks, in order: MESSAGE-INTEGRITY present (else 401, no credentials); USERNAME, REALM
    /// and NONCE present (else 400); the nonce ours, for this client, fresh (else 438); the realm
    /// ours (else 401); the user known and, for REST, not expired (else 401); the MAC, with every
    /// candidate key, compared in constant time (else 401).
    pub fn authenticate<'m>(
        &self,
        msg: &Message<'m>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        if self.config.oauth.is_some() && msg.get::<AccessToken<'m>>().is_ok() {
            return self.authenticate_token(msg, unix_now, client);
        }
        let creds = self.check_request(msg, unix_now, client)?;
        self.verify_user(msg, creds.username, unix_now)
    }

    /// Authenticates a request carrying ACCESS-TOKEN, RFC 7635 §6.2: MESSAGE-INTEGRITY, USERNAME,
    /// REALM and NONCE present, the nonce and realm ours (as for long-term credentials), then the
    /// token opened under the key named by USERNAME (the kid) with our server name, its lifetime
    /// checked, and MESSAGE-INTEGRITY (20-byte mac_key) or MESSAGE-INTEGRITY-SHA256 (32-byte) keyed
    /// with its mac_key. Every token failure is 401.
    pub fn authenticate_token<'m>(
        &self,
        msg: &Message<'m>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        let oauth = self.config.oauth.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
        let creds = self.check_request_with(msg, unix_now, client, true)?;
        let token = msg.get::<AccessToken<'m>>().map_err(|_| AuthError::BadRequest)?;
        let token =
            oauth.open(creds.username, token.0, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
        let expires = token.expires();
        // The RFC's key first, then coturn's cut one; the session keeps the one that verified.
        let key = match verify_session_mac(msg, &token.mac_key) {
            Ok(()) => token.mac_key,
            Err(e) => match token.coturn_mac_key {
                Some(k) if verify_session_mac(msg, &k).is_ok() => k,
                _ => return Err(e),
            },
        };
        let session = OauthSession { kid: creds.username.into(), key, id: token.id, expires };
        Ok(Self::oauth_authenticated(creds.username, Arc::new(session)))
    }

    /// Authenticates a request without ACCESS-TOKEN on an allocation a token made, with the session
    /// key that token gave (RFC 7635 §6.2: later requests use the mac_key). Checks presence, nonce
    /// and realm, that USERNAME is the session's kid, that the token has not expired, and the MAC.
    pub fn verify_with_session<'m>(
        &self,
        msg: &Message<'m>,
        session: &Arc<OauthSession>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        let creds = self.check_request_with(msg, unix_now, client, true)?;
        if *creds.username != *session.kid {
            return Err(AuthError::Unauthenticated(Reason::UnknownUser));
        }
        if session.expires.saturating_add(oauth::TOKEN_CLOCK_SKEW_SECS) <= unix_now {
            return Err(AuthError::Unauthenticated(Reason::Expired));
        }
        verify_session_mac(msg, &session.key)?;
        Ok(Self::oauth_authenticated(creds.username, Arc::clone(session)))
    }

    fn oauth_authenticated(username: &str, session: Arc<OauthSession>) -> Authenticated<'_> {
        // `key` is not used to sign (the session's key is); a placeholder keeps the type simple.
        Authenticated {
            username,
            key: IntegrityKey::new(&[]),
            key_bytes: [0; 16],
            rest_expiry: None,
            oauth: Some(session),
        }
    }

    /// Authenticates a request with a key the caller cached from an earlier [`Authenticated`] (one
    /// HMAC, no key derivation). Still checks presence, nonce and realm, and a REST username's
    /// expiry. Returns the request's USERNAME: the caller must check that it is the one the key
    /// belongs to (RFC 8656 §5: same credentials for the life of an allocation).
    pub fn verify_with_key<'m>(
        &self,
        msg: &Message<'m>,
        key: &IntegrityKey,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<&'m str, AuthError> {
        let creds = self.check_request(msg, unix_now, client)?;
        if !self.config.users.contains_key(creds.username) {
            let rest = self.config.rest.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
            rest.check_expiry(creds.username, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
        }
        msg.verify_integrity(key).map_err(|_| AuthError::Unauthenticated(Reason::BadIntegrity))?;
        Ok(creds.username)
    }

    /// Presence of MESSAGE-INTEGRITY, then of USERNAME, REALM and NONCE (RFC 8489 §9.2.4).
    #[cfg(test)]
    fn credentials<'m>(msg: &Message<'m>) -> Result<Presented<'m>, AuthError> {
        Self::credentials_with(msg, false)
    }

    /// [`Self::credentials`]; MESSAGE-INTEGRITY-SHA256 counts where a token's session key may call
    /// for it (`sha256`).
    fn credentials_with<'m>(msg: &Message<'m>, sha256: bool) -> Result<Presented<'m>, AuthError> {
        let signed = msg.has_integrity() || (sha256 && msg.has_integrity_sha256());
        if !signed {
            return Err(AuthError::Unauthenticated(Reason::NoCredentials));
        }
        let username = msg.get::<Username<'m>>().map_err(|_| AuthError::BadRequest)?.0;
        let realm = msg.get::<Realm<'m>>().map_err(|_| AuthError::BadRequest)?.0;
        let nonce = msg.get::<Nonce<'m>>().map_err(|_| AuthError::BadRequest)?.0;
        Ok(Presented { username, realm, nonce })
    }

    /// [`Self::credentials`], then the nonce, then the realm.
    fn check_request<'m>(
        &self,
        msg: &Message<'m>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Presented<'m>, AuthError> {
        self.check_request_with(msg, unix_now, client, false)
    }

    /// [`Self::check_request`], MESSAGE-INTEGRITY-SHA256 counting as integrity if `sha256`.
    fn check_request_with<'m>(
        &self,
        msg: &Message<'m>,
        unix_now: u64,
        client: SocketAddr,
        sha256: bool,
    ) -> Result<Presented<'m>, AuthError> {
        let creds = Self::credentials_with(msg, sha256)?;
        self.check_nonce(creds.nonce, unix_now, client).map_err(|_| AuthError::StaleNonce)?;
        if creds.realm != self.config.realm {
            return Err(AuthError::Unauthenticated(Reason::WrongRealm));
        }
        Ok(creds)
    }

    /// The user's candidate keys, then the MAC with each.
    fn verify_user<'m>(
        &self,
        msg: &Message<'m>,
        username: &'m str,
        unix_now: u64,
    ) -> Result<Authenticated<'m>, AuthError> {
        let candidates = self.key_candidates(username, unix_now)?;
        let rest_expiry = candidates.rest_expiry();
        for key_bytes in candidates {
            let key = IntegrityKey::new(&key_bytes);
            if msg.verify_integrity(&key).is_ok() {
                return Ok(Authenticated { username, key, key_bytes, rest_expiry, oauth: None });
            }
        }
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    }
}

/// The MESSAGE-INTEGRITY a session key calls for, RFC 7635 §6.2: HMAC-SHA1 for a 20-byte mac_key,
/// MESSAGE-INTEGRITY-SHA256 for a 32-byte one; constant-time.
fn verify_session_mac(msg: &Message<'_>, key: &MacKey) -> Result<(), AuthError> {
    let ok = match key {
        MacKey::Sha1(k) => msg.verify_integrity(k).is_ok(),
        MacKey::Sha256(k) => msg.verify_integrity_sha256(k).is_ok(),
    };
    if ok { Ok(()) } else { Err(AuthError::Unauthenticated(Reason::BadIntegrity)) }
}

#[cfg(test)]
mod capture_tests;
#[cfg(test)]
mod tests;
