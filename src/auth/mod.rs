//! The long-term credential mechanism, RFC 8489 §9.2, with stateless nonces and shared-secret
//! ("REST") credentials; sans-IO: time comes in as `unix_now` seconds, keys come in as bytes, and
//! nothing is stored per client before a request proves its credentials.
//!
//! * [`nonce`](NonceKey) — nonces that carry their own timestamp and a MAC over the client address;
//! * [`RestCredentials`] — `username = <expiry>:<user>`, `password = base64(HMAC(secret, username))`;
//! * [`StaticCredential`] — configured users, by password or pre-computed key;
//! * [`oauth`] — RFC 7635 self-contained ACCESS-TOKENs (AES-GCM) and their session keys;
//! * [`LongTermKey`] — the key per password algorithm (MD5, SHA-256: RFC 8489 §9.2.2, §18.5.1),
//!   [`userhash`] (§14.4) and [`opaque_string`] (RFC 8265 §4.2, ASCII subset);
//! * [`Authenticator`] — the server side of RFC 8489 §9.2.4 over a parsed [`Message`] (and of
//!   RFC 7635 §6.2 for requests with a token): nonce cookie and security features (§9.2.1),
//!   PASSWORD-ALGORITHMS with bid-down protection (§9.2.4, §9.2.5), MESSAGE-INTEGRITY-SHA256
//!   (§14.6) and USERHASH for static users.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod algorithm;
mod error;
mod hex;
pub mod hook;
mod nonce;
pub mod oauth;
mod rest;
#[cfg(feature = "tokens")]
pub mod token;
mod users;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::proto::stun::{
    AccessToken, IntegrityKey, IntegrityKeySha256, Message, Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm,
    Userhash, Username,
};

pub use algorithm::{KeyAlgorithm, LongTermKey, OpaqueStringError, offered_algorithms, opaque_string, userhash};

pub use error::{AuthError, Reason};
pub use nonce::{
    MAX_FUTURE_SKEW_SECS, NONCE_COOKIE, NONCE_LEN, NonceBuf, NonceError, NonceKey, SecurityFeatures, nonce_features,
};
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
    /// Refuse the MD5 password algorithm (RFC 8489 §18.5.1.1 keeps it for RFC 5389 clients only):
    /// 401 and 438 offer SHA-256 alone, and a request keyed with MD5 gets 401.
    pub require_sha256: bool,
    /// The embedder's credentials, asked for names that are not static users, before REST
    /// ([`hook`]).
    pub hook: Option<hook::HookHandle>,
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
            require_sha256: false,
            hook: None,
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
    /// The keyed HMAC-SHA1 state, to sign the response's MESSAGE-INTEGRITY (RFC 8489 §9.2.4) and to
    /// cache for later requests ([`Authenticator::verify_with_key`]).
    pub key: IntegrityKey,
    /// Set when the request carried MESSAGE-INTEGRITY-SHA256: the response is signed with it
    /// instead, "with the same algorithm" (RFC 8489 §9.2.4).
    pub key_sha256: Option<IntegrityKeySha256>,
    /// The long-term key (RFC 8489 §9.2.2) of the password algorithm the request chose.
    pub key_bytes: LongTermKey,
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
    algorithm: KeyAlgorithm,
    rest_expiry: Option<u64>,
}

#[derive(Clone)]
enum CandidateSource<'a> {
    Static(Option<LongTermKey>),
    Rest(Passwords<'a>),
}

impl KeyCandidates<'_> {
    /// For a REST username, its (already checked) expiry.
    pub fn rest_expiry(&self) -> Option<u64> {
        self.rest_expiry
    }
}

impl Iterator for KeyCandidates<'_> {
    type Item = LongTermKey;

    fn next(&mut self) -> Option<LongTermKey> {
        match &mut self.source {
            CandidateSource::Static(key) => key.take(),
            CandidateSource::Rest(passwords) => passwords
                .by_ref()
                .find_map(|p| LongTermKey::derive(self.algorithm, self.username, self.realm, p.as_str())),
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

/// USERNAME (or USERHASH), REALM and NONCE of a request that carries MESSAGE-INTEGRITY or
/// MESSAGE-INTEGRITY-SHA256.
#[derive(Clone, Copy, Debug)]
struct Presented<'m> {
    username: Option<&'m str>,
    userhash: Option<[u8; 32]>,
    realm: &'m str,
    nonce: &'m str,
}

impl<'m> Presented<'m> {
    /// The USERNAME; a request with USERHASH only has none for paths that need the name itself.
    fn username(&self) -> Result<&'m str, AuthError> {
        self.username.ok_or(AuthError::Unauthenticated(Reason::UnknownUser))
    }
}

/// The server side of the long-term credential mechanism, RFC 8489 §9.2.4. Holds configuration
/// only: no per-client state. `Debug` redacts every secret.
#[derive(Clone, Debug)]
pub struct Authenticator {
    config: AuthConfig,
    nonce_key: NonceKey,
    /// USERHASH → static user, precomputed for our realm (RFC 8489 §14.4).
    userhashes: HashMap<[u8; 32], String>,
}

impl Authenticator {
    /// An authenticator with its configuration and the 32-byte secret that signs nonces (shared by
    /// every node that should accept the others' nonces).
    pub fn new(config: AuthConfig, nonce_key: [u8; 32]) -> Self {
        let userhashes = userhashes(&config);
        Authenticator { config, nonce_key: NonceKey::new(nonce_key), userhashes }
    }

    /// The same nonce key with a new configuration (reload: nonces handed out before stay valid).
    pub fn with_config(&self, config: AuthConfig) -> Self {
        let userhashes = userhashes(&config);
        Authenticator { config, nonce_key: self.nonce_key.clone(), userhashes }
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
            // `"<expiry>"` alone has an empty user part.
            Some(rest) if rest.expiry(username).is_ok() => username.split_once(rest.separator).map_or("", |s| s.1),
            _ => username,
        }
    }

    /// The PASSWORD-ALGORITHMS our 401 and 438 answers carry (RFC 8489 §9.2.4, §14.12), and which a
    /// request must echo unchanged (bid-down protection, §9.2.5).
    pub fn password_algorithms(&self) -> PasswordAlgorithms<'static> {
        offered_algorithms(self.config.require_sha256)
    }

    /// The security features our nonces announce (RFC 8489 §9.2.1): password algorithms always;
    /// username anonymity when every user is a static one (a REST or token username cannot be
    /// recovered from its USERHASH, and a client that hashes whenever it may would fail).
    pub fn security_features(&self) -> SecurityFeatures {
        let anonymity = !self.userhashes.is_empty() && self.config.rest.is_none() && self.config.oauth.is_none();
        match anonymity {
            true => SecurityFeatures::PASSWORD_ALGORITHMS.union(SecurityFeatures::USERNAME_ANONYMITY),
            false => SecurityFeatures::PASSWORD_ALGORITHMS,
        }
    }

    /// A fresh NONCE for `client`, for 401 and 438 answers (RFC 8489 §9.2.4), with the nonce cookie
    /// and our security features (§9.2.1).
    pub fn nonce(&self, unix_now: u64, client: SocketAddr) -> NonceBuf {
        self.nonce_key.nonce(unix_now, client, self.security_features())
    }

    /// Checks a NONCE against our key, the client's address and the nonce lifetime; returns the
    /// security features it announced.
    pub fn check_nonce(&self, nonce: &str, unix_now: u64, client: SocketAddr) -> Result<SecurityFeatures, NonceError> {
        self.nonce_key.check(nonce, unix_now, client, self.config.nonce_ttl_secs)
    }

    /// The MD5 candidate keys of `username`, see [`Self::key_candidates_with`].
    pub fn key_candidates<'a>(&'a self, username: &'a str, unix_now: u64) -> Result<KeyCandidates<'a>, AuthError> {
        self.key_candidates_with(username, KeyAlgorithm::Md5, unix_now)
    }

    /// The candidate long-term keys of `username` (RFC 8489 §9.2.2) in our realm for `algorithm`: a
    /// static user's key if the exact name is configured, else, with REST enabled, one key per
    /// secret after the expiry check. Errors are those [`Authenticator::authenticate`] returns for
    /// the username.
    pub fn key_candidates_with<'a>(
        &'a self,
        username: &'a str,
        algorithm: KeyAlgorithm,
        unix_now: u64,
    ) -> Result<KeyCandidates<'a>, AuthError> {
        self.key_candidates_from(username, algorithm, unix_now, None)
    }

    /// [`Self::key_candidates_with`] for a request from `client`: between the static users and
    /// REST, the embedder's hook is asked ([`hook`]): its credential, a refusal (401 `refused`),
    /// or [`AuthError::Pending`] while it looks the name up.
    fn key_candidates_from<'a>(
        &'a self,
        username: &'a str,
        algorithm: KeyAlgorithm,
        unix_now: u64,
        client: Option<SocketAddr>,
    ) -> Result<KeyCandidates<'a>, AuthError> {
        let realm = self.config.realm.as_str();
        let fixed =
            |key| KeyCandidates { source: CandidateSource::Static(key), username, realm, algorithm, rest_expiry: None };
        if let Some(cred) = self.config.users.get(username) {
            return Ok(fixed(cred.key_for(algorithm, username, realm)));
        }
        // REST usernames go to REST; any other name to the hook.
        if let Some(hook) = self.config.hook.as_ref().filter(|_| !self.is_rest_username(username)) {
            match hook.0.lookup(&hook::CredentialQuery { username, realm, client, unix_now }) {
                hook::Lookup::Credential(cred) => return Ok(fixed(cred.key_for(algorithm, username, realm))),
                hook::Lookup::Refused => return Err(AuthError::Unauthenticated(Reason::Refused)),
                hook::Lookup::Pending => return Err(AuthError::Pending),
                hook::Lookup::NotFound => {}
            }
        }
        let rest = self.config.rest.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
        if rest.secrets.is_empty() {
            return Err(AuthError::Unauthenticated(Reason::UnknownUser));
        }
        let passwords = rest.passwords(username, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
        let rest_expiry = Some(passwords.expiry());
        Ok(KeyCandidates { source: CandidateSource::Rest(passwords), username, realm, algorithm, rest_expiry })
    }

    /// Authenticates a request, RFC 8489 §9.2.4, with its checks in the order the RFC lists them:
    /// MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 present (else 401, no credentials); USERNAME or
    /// USERHASH, REALM and NONCE present (else 400); the realm ours (else 401); with a nonce
    /// announcing password algorithms, PASSWORD-ALGORITHMS as we sent it and PASSWORD-ALGORITHM one
    /// of them, or neither (MD5) (else 400); MD5 allowed (else 401); the user known (a USERHASH
    /// matches a static user) and, for REST, not expired (else 401); the MAC, with every candidate
    /// key, compared in constant time (else 401); and only then the nonce ours, for this client,
    /// fresh (else 438). So only a request with valid credentials learns that its nonce is stale;
    /// a forged or bid-down nonce (its features read unverified for the algorithm) still fails
    /// there, after the MAC, before anything succeeds.
    pub fn authenticate<'a>(
        &'a self,
        msg: &Message<'a>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'a>, AuthError> {
        if self.config.oauth.is_some() && msg.get::<AccessToken<'a>>().is_ok() {
            return self.authenticate_token(msg, unix_now, client);
        }
        let (creds, algorithm) = self.check_long_term(msg)?;
        let username = match (creds.username, creds.userhash) {
            (Some(name), _) => name,
            (None, Some(hash)) => {
                self.userhashes.get(&hash).ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?.as_str()
            }
            (None, None) => return Err(AuthError::BadRequest),
        };
        let auth = self.verify_user(msg, username, algorithm, unix_now, client)?;
        self.fresh_nonce(creds.nonce, unix_now, client)?;
        Ok(auth)
    }

    /// Authenticates a request carrying ACCESS-TOKEN, RFC 7635 §6.2: MESSAGE-INTEGRITY, USERNAME,
    /// REALM and NONCE present and the realm ours (as for long-term credentials), then the token
    /// opened under the key named by USERNAME (the kid) with our server name, its lifetime checked,
    /// and MESSAGE-INTEGRITY (20-byte mac_key) or MESSAGE-INTEGRITY-SHA256 (32-byte) keyed with its
    /// mac_key; every token failure is 401. The nonce last (438), as RFC 8489 §9.2.4 orders it.
    pub fn authenticate_token<'m>(
        &self,
        msg: &Message<'m>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        let oauth = self.config.oauth.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
        let creds = self.check_request(msg)?;
        let kid = creds.username.ok_or(AuthError::BadRequest)?;
        let token = msg.get::<AccessToken<'m>>().map_err(|_| AuthError::BadRequest)?;
        let token = oauth.open(kid, token.0, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
        let expires = token.expires();
        // The RFC's key first, then coturn's cut one; the session keeps the one that verified.
        let key = match verify_session_mac(msg, &token.mac_key) {
            Ok(()) => token.mac_key,
            Err(e) => match token.coturn_mac_key {
                Some(k) if verify_session_mac(msg, &k).is_ok() => k,
                _ => return Err(e),
            },
        };
        self.fresh_nonce(creds.nonce, unix_now, client)?;
        let session = OauthSession { kid: kid.into(), key, id: token.id, expires };
        Ok(Self::oauth_authenticated(kid, Arc::new(session)))
    }

    /// Authenticates a request without ACCESS-TOKEN on an allocation a token made, with the session
    /// key that token gave (RFC 7635 §6.2: later requests use the mac_key). Checks presence and
    /// realm, that USERNAME is the session's kid, that the token has not expired, the MAC, and last
    /// the nonce (RFC 8489 §9.2.4).
    pub fn verify_with_session<'m>(
        &self,
        msg: &Message<'m>,
        session: &Arc<OauthSession>,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        let creds = self.check_request(msg)?;
        let username = creds.username()?;
        if *username != *session.kid {
            return Err(AuthError::Unauthenticated(Reason::UnknownUser));
        }
        if session.expires.saturating_add(oauth::TOKEN_CLOCK_SKEW_SECS) <= unix_now {
            return Err(AuthError::Unauthenticated(Reason::Expired));
        }
        verify_session_mac(msg, &session.key)?;
        self.fresh_nonce(creds.nonce, unix_now, client)?;
        Ok(Self::oauth_authenticated(username, Arc::clone(session)))
    }

    fn oauth_authenticated(username: &str, session: Arc<OauthSession>) -> Authenticated<'_> {
        // `key` is not used to sign (the session's key is); a placeholder keeps the type simple.
        Authenticated {
            username,
            key: IntegrityKey::new(&[]),
            key_sha256: None,
            key_bytes: LongTermKey::Md5([0; 16]),
            rest_expiry: None,
            oauth: Some(session),
        }
    }

    /// Authenticates a request with a key the caller cached from an earlier [`Authenticated`] (one
    /// HMAC, no key derivation): `key` is its HMAC-SHA1 state, `long_term` its bytes. Still checks
    /// presence, realm, the password algorithm (it must be the key's), a REST username's expiry, the
    /// MAC and, last (RFC 8489 §9.2.4), the nonce. The caller must check that the USERNAME is the one the key belongs to (RFC 8656 §5:
    /// same credentials for the life of an allocation).
    pub fn verify_with_key<'m>(
        &self,
        msg: &Message<'m>,
        key: &IntegrityKey,
        long_term: &LongTermKey,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'m>, AuthError> {
        let (creds, algorithm) = self.check_long_term(msg)?;
        let username = creds.username()?;
        let mut rest_expiry = None;
        // A credential hook's user (neither static nor REST-shaped) keeps the key the hook gave at
        // Allocate for the allocation's lifetime, as every cached key (revocation ends it earlier).
        let hook_user = self.config.hook.is_some() && !self.is_rest_username(username);
        if !self.config.users.contains_key(username) && !hook_user {
            let rest = self.config.rest.as_ref().ok_or(AuthError::Unauthenticated(Reason::UnknownUser))?;
            let expiry =
                rest.check_expiry(username, unix_now).map_err(|e| AuthError::Unauthenticated(Reason::from(e)))?;
            rest_expiry = Some(expiry);
        }
        if algorithm != long_term.algorithm() {
            return Err(AuthError::Unauthenticated(Reason::BadIntegrity));
        }
        let key_sha256 = verify_long_term_mac(msg, key, long_term)?;
        self.fresh_nonce(creds.nonce, unix_now, client)?;
        Ok(Authenticated { username, key: key.clone(), key_sha256, key_bytes: *long_term, rest_expiry, oauth: None })
    }

    /// Presence of MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256, then of USERNAME (or USERHASH),
    /// REALM and NONCE (RFC 8489 §9.2.4).
    fn credentials<'m>(msg: &Message<'m>) -> Result<Presented<'m>, AuthError> {
        if !msg.has_integrity() && !msg.has_integrity_sha256() {
            return Err(AuthError::Unauthenticated(Reason::NoCredentials));
        }
        let username = msg.get::<Username<'m>>().ok().map(|u| u.0);
        let userhash = msg.get::<Userhash>().ok().map(|h| h.0);
        if username.is_none() && userhash.is_none() {
            return Err(AuthError::BadRequest);
        }
        let realm = msg.get::<Realm<'m>>().map_err(|_| AuthError::BadRequest)?.0;
        let nonce = msg.get::<Nonce<'m>>().map_err(|_| AuthError::BadRequest)?.0;
        Ok(Presented { username, userhash, realm, nonce })
    }

    /// [`Self::credentials`], then the realm; returns the security features the nonce announces,
    /// read without checking it (RFC 8489 §9.2.4 takes them for the password algorithm checks and
    /// judges the nonce last: see [`Self::fresh_nonce`]).
    fn check_request_features<'m>(&self, msg: &Message<'m>) -> Result<(Presented<'m>, SecurityFeatures), AuthError> {
        let creds = Self::credentials(msg)?;
        if creds.realm != self.config.realm {
            return Err(AuthError::Unauthenticated(Reason::WrongRealm));
        }
        let features = nonce_features(creds.nonce).unwrap_or(SecurityFeatures::NONE);
        Ok((creds, features))
    }

    /// [`Self::check_request_features`] without the features (the token paths).
    fn check_request<'m>(&self, msg: &Message<'m>) -> Result<Presented<'m>, AuthError> {
        self.check_request_features(msg).map(|(creds, _)| creds)
    }

    /// The last check of RFC 8489 §9.2.4, once the credentials are valid: the nonce ours, for this
    /// client and no longer than its lifetime old (else 438 Stale Nonce).
    fn fresh_nonce(&self, nonce: &str, unix_now: u64, client: SocketAddr) -> Result<(), AuthError> {
        self.check_nonce(nonce, unix_now, client).map(|_| ()).map_err(|_| AuthError::StaleNonce)
    }

    /// [`Self::check_request`], then the password algorithm ([`Self::algorithm`]), refused with 401
    /// if it is MD5 and we require SHA-256.
    fn check_long_term<'m>(&self, msg: &Message<'m>) -> Result<(Presented<'m>, KeyAlgorithm), AuthError> {
        let (creds, features) = self.check_request_features(msg)?;
        let algorithm = self.algorithm(msg, features)?;
        if algorithm == KeyAlgorithm::Md5 && self.config.require_sha256 {
            return Err(AuthError::Unauthenticated(Reason::Md5Refused));
        }
        Ok((creds, algorithm))
    }

    /// The password algorithm of a request, RFC 8489 §9.2.4: MD5 for a nonce without the password
    /// algorithms bit (an RFC 5389 client) or a request with neither PASSWORD-ALGORITHMS nor
    /// PASSWORD-ALGORITHM; else both must be present, PASSWORD-ALGORITHMS byte for byte what we
    /// offer (bid-down protection, §9.2.5) and PASSWORD-ALGORITHM one of its entries (else 400).
    fn algorithm(&self, msg: &Message<'_>, features: SecurityFeatures) -> Result<KeyAlgorithm, AuthError> {
        if !features.contains(SecurityFeatures::PASSWORD_ALGORITHMS) {
            return Ok(KeyAlgorithm::Md5);
        }
        let offered = self.password_algorithms();
        match (msg.get::<PasswordAlgorithms<'_>>().ok(), msg.get::<PasswordAlgorithm<'_>>().ok()) {
            (None, None) => Ok(KeyAlgorithm::Md5),
            (Some(list), Some(chosen)) if list.as_bytes() == offered.as_bytes() && list.iter().any(|a| a == chosen) => {
                KeyAlgorithm::from_attribute(chosen.algorithm, chosen.params).ok_or(AuthError::BadRequest)
            }
            _ => Err(AuthError::BadRequest),
        }
    }

    /// Whether `username` is one for REST (REST on, and an `expiry:user` it can parse): such names
    /// never go to the credential hook.
    fn is_rest_username(&self, username: &str) -> bool {
        self.config.rest.as_ref().is_some_and(|r| !r.secrets.is_empty() && r.expiry(username).is_ok())
    }

    /// The user's candidate keys for `algorithm`, then the MAC with each.
    fn verify_user<'a>(
        &self,
        msg: &Message<'_>,
        username: &'a str,
        algorithm: KeyAlgorithm,
        unix_now: u64,
        client: SocketAddr,
    ) -> Result<Authenticated<'a>, AuthError> {
        let candidates = self.key_candidates_from(username, algorithm, unix_now, Some(client))?;
        let rest_expiry = candidates.rest_expiry();
        for key_bytes in candidates {
            let key = IntegrityKey::new(key_bytes.as_bytes());
            if let Ok(key_sha256) = verify_long_term_mac(msg, &key, &key_bytes) {
                return Ok(Authenticated { username, key, key_sha256, key_bytes, rest_expiry, oauth: None });
            }
        }
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    }
}

/// USERHASH → name of every static user whose name and our realm are OpaqueStrings (RFC 8489
/// §14.4); computed on load and reload.
fn userhashes(config: &AuthConfig) -> HashMap<[u8; 32], String> {
    config.users.keys().filter_map(|name| userhash(name, &config.realm).ok().map(|h| (h, name.clone()))).collect()
}

/// The long-term MAC a request carries, RFC 8489 §9.2.4: MESSAGE-INTEGRITY-SHA256 if present
/// (returned, keyed, to sign the response the same way), else MESSAGE-INTEGRITY with `key` (the
/// HMAC-SHA1 state of `long_term`); constant-time.
fn verify_long_term_mac(
    msg: &Message<'_>,
    key: &IntegrityKey,
    long_term: &LongTermKey,
) -> Result<Option<IntegrityKeySha256>, AuthError> {
    let bad = AuthError::Unauthenticated(Reason::BadIntegrity);
    if msg.has_integrity_sha256() {
        let k = IntegrityKeySha256::new(long_term.as_bytes());
        msg.verify_integrity_sha256(&k).map_err(|_| bad)?;
        return Ok(Some(k));
    }
    msg.verify_integrity(key).map_err(|_| bad)?;
    Ok(None)
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
