//! Credentials of the long-term mechanism (RFC 8489 §9.2) and of RFC 7635 access tokens, and what
//! a request is signed with ([`Auth`]): what a 401 or 438 teaches (realm, nonce, the password
//! algorithm, RFC 8489 §9.2.5) and the key derived from it, re-derived without a round trip when
//! the credentials are swapped. [`sign`] writes the credential attributes and the MAC; [`Dance`]
//! is one request's way through the challenges (RFC 8489 §9.2.5).

use std::sync::Arc;

use super::RequestError;
use crate::auth::{KeyAlgorithm, LongTermKey, SecurityFeatures, opaque_string};
use crate::proto::stun::{
    AccessToken, Class, ErrorCode, IntegrityKey, IntegrityKeySha256, Message, MessageType, MessageWriter, Method,
    Nonce, PasswordAlgorithm, PasswordAlgorithms, Realm, TransactionId, Userhash, Username, codes, long_term_key_md5,
    password_algorithm,
};

/// A username and password for the long-term credential mechanism (RFC 8489 §9.2); with REST
/// credentials the username is `expiry:user` and the password the base64 HMAC.
#[derive(Clone)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// An RFC 7635 access token instead of the password.
    token: Option<Arc<TokenCredential>>,
    /// Use the SHA-256 password algorithm when the server offers it (RFC 8489 §9.2.5).
    prefer_sha256: bool,
    /// Send USERHASH instead of USERNAME when the server offers username anonymity (RFC 8489 §9.2.5).
    userhash: bool,
}

/// An RFC 7635 self-contained token and the session key it carries.
struct TokenCredential {
    token: Vec<u8>,
    mac_key: Vec<u8>,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            token: None,
            prefer_sha256: false,
            userhash: false,
        }
    }

    /// RFC 8489 §9.2.5: when the server's nonce announces password algorithms and its
    /// PASSWORD-ALGORITHMS lists SHA-256, key with SHA-256(username ":" realm ":" OpaqueString(password))
    /// and sign with MESSAGE-INTEGRITY-SHA256, echoing PASSWORD-ALGORITHMS. Without it (or without
    /// the offer) requests are RFC 5389 ones: MD5 and MESSAGE-INTEGRITY.
    pub fn prefer_sha256(mut self) -> Self {
        self.prefer_sha256 = true;
        self
    }

    /// RFC 8489 §9.2.5, §14.4: when the server's nonce announces username anonymity, send USERHASH
    /// instead of USERNAME (for a username that is an ASCII OpaqueString; others go as they are).
    pub fn with_userhash(mut self) -> Self {
        self.userhash = true;
        self
    }

    /// RFC 7635 third-party authorization: `token` is the ACCESS-TOKEN an authorization server
    /// issued under the key `kid`, `mac_key` the session key it carries (20 bytes: MESSAGE-INTEGRITY
    /// with HMAC-SHA1; 32 bytes: MESSAGE-INTEGRITY-SHA256). Allocate and Refresh carry the token;
    /// every request carries USERNAME `kid` and is signed with `mac_key` (RFC 7635 §6.2).
    pub fn access_token(kid: impl Into<String>, token: impl Into<Vec<u8>>, mac_key: impl Into<Vec<u8>>) -> Self {
        let token = TokenCredential { token: token.into(), mac_key: mac_key.into() };
        Credentials {
            username: kid.into(),
            password: String::new(),
            token: Some(Arc::new(token)),
            prefer_sha256: false,
            userhash: false,
        }
    }
}

impl Credentials {
    /// The RFC 7635 ACCESS-TOKEN that Allocate and Refresh carry, if these are token credentials.
    pub(crate) fn token_bytes(&self) -> Option<&[u8]> {
        self.token.as_ref().map(|t| t.token.as_slice())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// What requests are signed with: the credentials, and what the server's latest 401 or 438 taught
/// (RFC 8489 §9.2). Requests read it and sign with it; a challenge or a credential swap makes a new
/// one.
#[derive(Clone)]
pub struct Auth {
    /// The credentials the key was derived from: a request is signed with them, USERNAME included.
    pub(crate) creds: Arc<Credentials>,
    pub(crate) realm: String,
    pub(crate) nonce: String,
    pub(crate) key: IntegrityKey,
    /// MESSAGE-INTEGRITY-SHA256 instead: an RFC 7635 session key of 32 bytes, or a SHA-256
    /// long-term key (RFC 8489 §9.2.5).
    pub(crate) key_sha256: Option<IntegrityKeySha256>,
    /// The server's PASSWORD-ALGORITHMS (raw, echoed as it came) and the one we chose, when we
    /// choose one (RFC 8489 §9.2.5).
    pub(crate) algorithms: Option<(Vec<u8>, u16)>,
    /// USERHASH to send instead of USERNAME (RFC 8489 §14.4).
    pub(crate) userhash: Option<[u8; 32]>,
    /// The challenge's PASSWORD-ALGORITHMS as it came (raw), to derive the key of other
    /// credentials under the same realm and nonce ([`Auth::rekey`]).
    offer: Option<Vec<u8>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("realm", &self.realm).field("nonce", &self.nonce).finish_non_exhaustive()
    }
}

impl Auth {
    /// The realm the server named (RFC 8489 §14.9).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// RFC 8489 §9.2.5: whether a response to a request signed with this is authentic — its
    /// MESSAGE-INTEGRITY-SHA256 (when we signed with SHA-256) or MESSAGE-INTEGRITY verifies with our
    /// key. One with neither, or with a wrong one, is not.
    pub fn authenticates(&self, m: &Message<'_>) -> bool {
        match &self.key_sha256 {
            Some(k) if m.has_integrity_sha256() => m.verify_integrity_sha256(k).is_ok(),
            _ if m.has_integrity() => m.verify_integrity(&self.key).is_ok(),
            _ => false,
        }
    }

    /// The same realm and nonce, keyed with `creds`: what a credential swap signs with until the
    /// server asks for more (RFC 8489 §9.2.4: the key is derived from username, realm and password).
    pub fn rekey(&self, creds: &Arc<Credentials>) -> Result<Auth, RequestError> {
        derive(creds, self.realm.clone(), &self.nonce, self.offer.as_deref())
    }
}

/// What to retry with after the error response `m` (RFC 8489 §9.2.5): a 401 teaches the realm and
/// nonce when we sent no credentials (`realm` is `None`), a 438 a fresh nonce. Any other error is
/// returned as [`RequestError::ErrorResponse`].
pub fn challenge(creds: &Arc<Credentials>, realm: Option<&str>, m: &Message<'_>) -> Result<Auth, RequestError> {
    let err = m.get::<ErrorCode>().map_err(|_| RequestError::BadResponse)?;
    let (realm, nonce) = match (err.code, m.get::<Realm>(), m.get::<Nonce>()) {
        (codes::UNAUTHENTICATED, Ok(new), Ok(nonce)) if realm.is_none() => (new.0.to_string(), nonce.0),
        (codes::STALE_NONCE, new, Ok(nonce)) => {
            (new.map(|r| r.0.to_string()).ok().or_else(|| realm.map(str::to_string)).unwrap_or_default(), nonce.0)
        }
        _ => return Err(RequestError::ErrorResponse { code: err.code, reason: err.reason.to_string() }),
    };
    let offer = m.get::<PasswordAlgorithms>().ok().map(|list| list.as_bytes().to_vec());
    derive(creds, realm, nonce, offer.as_deref())
}

/// The key of `creds` under `realm` and `nonce`, `offer` the challenge's PASSWORD-ALGORITHMS.
fn derive(creds: &Arc<Credentials>, realm: String, nonce: &str, offer: Option<&[u8]>) -> Result<Auth, RequestError> {
    let offer_owned = offer.map(<[u8]>::to_vec);
    // RFC 7635 §6.2: a token's mac_key keys MESSAGE-INTEGRITY directly.
    if let Some(t) = &creds.token {
        let key_sha256 = (t.mac_key.len() == 32).then(|| IntegrityKeySha256::new(&t.mac_key));
        let key = IntegrityKey::new(&t.mac_key);
        let (nonce, creds) = (nonce.to_string(), Arc::clone(creds));
        return Ok(Auth { creds, realm, nonce, key, key_sha256, algorithms: None, userhash: None, offer: offer_owned });
    }
    let offered = match offer {
        Some(raw) => Some(PasswordAlgorithms::from_raw(raw).map_err(|_| RequestError::BadResponse)?),
        None => None,
    };
    let mut auth = long_term_auth(creds, realm, nonce, offered)?;
    auth.offer = offer_owned;
    Ok(auth)
}

/// The long-term key and what goes with it, RFC 8489 §9.2.5: the nonce cookie's security features
/// say whether the server offers password algorithms (then PASSWORD-ALGORITHMS must be there: a
/// missing one is a bid-down) and username anonymity.
fn long_term_auth(
    creds: &Arc<Credentials>,
    realm: String,
    nonce: &str,
    offered: Option<PasswordAlgorithms<'_>>,
) -> Result<Auth, RequestError> {
    let features = crate::auth::nonce_features(nonce).unwrap_or(SecurityFeatures::NONE);
    let userhash = (creds.userhash && features.contains(SecurityFeatures::USERNAME_ANONYMITY))
        .then(|| crate::auth::userhash(&creds.username, &realm).ok())
        .flatten();
    let sha256 = match (features.contains(SecurityFeatures::PASSWORD_ALGORITHMS), offered) {
        (true, None) => return Err(RequestError::AuthDowngrade),
        (true, Some(list))
            if creds.prefer_sha256
                && list.iter().any(|a| a.algorithm == password_algorithm::SHA256 && a.params.is_empty()) =>
        {
            Some(list.as_bytes().to_vec())
        }
        _ => None,
    };
    let nonce = nonce.to_string();
    let Some(list) = sha256 else {
        let key = IntegrityKey::new(&long_term_key_md5(&creds.username, &realm, &creds.password));
        let creds = Arc::clone(creds);
        return Ok(Auth { creds, realm, nonce, key, key_sha256: None, algorithms: None, userhash, offer: None });
    };
    opaque_string(&creds.password)?;
    let long_term = LongTermKey::derive(KeyAlgorithm::Sha256, &creds.username, &realm, &creds.password)
        .ok_or(RequestError::Password(crate::auth::OpaqueStringError::Empty))?;
    Ok(Auth {
        creds: Arc::clone(creds),
        realm,
        nonce,
        key: IntegrityKey::new(long_term.as_bytes()),
        key_sha256: Some(IntegrityKeySha256::new(long_term.as_bytes())),
        algorithms: Some((list, password_algorithm::SHA256)),
        userhash,
        offer: None,
    })
}

/// Writes request `method` (transaction `tid`) into `buf`: the attributes `body` adds, then those
/// of `auth` when the server has challenged us (RFC 8489 §9.2.4: USERNAME or USERHASH, REALM,
/// NONCE, PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM when one was chosen, MESSAGE-INTEGRITY or
/// -SHA256; RFC 7635 §6.2: ACCESS-TOKEN with Allocate and Refresh), and FINGERPRINT. Returns the
/// length.
pub fn sign(
    buf: &mut [u8],
    method: Method,
    tid: TransactionId,
    auth: Option<&Auth>,
    body: impl FnOnce(&mut MessageWriter<'_>) -> Result<(), crate::proto::stun::EncodeError>,
) -> Result<usize, RequestError> {
    let mut w = MessageWriter::new(buf, MessageType::new(method, Class::Request), tid)?;
    body(&mut w)?;
    if let Some(a) = auth {
        if let Some(token) = a.creds.token_bytes()
            && (method == Method::ALLOCATE || method == Method::REFRESH)
        {
            w.add(&AccessToken(token))?;
        }
        match a.userhash {
            Some(h) => w.add(&Userhash(h))?,
            None => w.add(&Username(&a.creds.username))?,
        }
        w.add(&Realm(&a.realm))?;
        w.add(&Nonce(&a.nonce))?;
        if let Some((list, chosen)) = &a.algorithms {
            let list = PasswordAlgorithms::from_raw(list).map_err(|_| RequestError::BadResponse)?;
            w.add(&list)?;
            w.add(&PasswordAlgorithm { algorithm: *chosen, params: &[] })?;
        }
        match &a.key_sha256 {
            Some(k) => w.add_message_integrity_sha256(k)?,
            None => w.add_message_integrity(&a.key)?,
        }
    }
    w.add_fingerprint()?;
    Ok(w.finish())
}

/// How many times one request is sent at most with new credentials or a new nonce: without
/// credentials, after the 401 with them, after a 438 with the fresh nonce (RFC 8489 §9.2.5).
pub const MAX_AUTH_ATTEMPTS: u8 = 3;

/// One request's way through the long-term credential challenges (RFC 8489 §9.2.5): a 401 to a
/// request without credentials teaches the realm and nonce, a 438 a fresh nonce; each is answered
/// by sending the request again, at most [`MAX_AUTH_ATTEMPTS`] times in all. A 401 to a request
/// with credentials is final.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dance {
    attempts: u8,
}

/// What to do after a response.
#[derive(Clone, Debug)]
pub enum Step {
    /// A success response: the request is done.
    Done,
    /// Send the request again, signed with this.
    Retry(Box<Auth>),
}

impl Dance {
    /// A request is sent (once per attempt, not per retransmission).
    pub fn sent(&mut self) {
        self.attempts = self.attempts.saturating_add(1);
    }

    /// What the response `m` to a request signed with `auth` (keyed with `creds`) means.
    pub fn on_response(
        &mut self,
        creds: &Arc<Credentials>,
        auth: Option<&Auth>,
        m: &Message<'_>,
    ) -> Result<Step, RequestError> {
        if m.message_type().class == Class::SuccessResponse {
            return Ok(Step::Done);
        }
        let retry = challenge(creds, auth.map(|a| a.realm.as_str()), m)?;
        if self.attempts >= MAX_AUTH_ATTEMPTS {
            return Err(RequestError::ErrorResponse {
                code: codes::UNAUTHENTICATED,
                reason: "authentication failed".into(),
            });
        }
        Ok(Step::Retry(Box::new(retry)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{NonceKey, userhash};
    use crate::proto::stun::{Class, MessageType, MessageWriter, Method, TransactionId};

    /// A 401 with `nonce` and PASSWORD-ALGORITHMS `offer` when given.
    fn challenge_401(nonce: &str, offer: Option<PasswordAlgorithms<'_>>) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let ty = MessageType::new(Method::ALLOCATE, Class::ErrorResponse);
        let mut w = MessageWriter::new(&mut buf, ty, TransactionId([1; 12])).unwrap();
        w.add(&ErrorCode::new(401)).unwrap();
        w.add(&Realm("example.org")).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        if let Some(o) = offer {
            w.add(&o).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    fn nonce(features: SecurityFeatures) -> String {
        NonceKey::new([1; 32]).nonce(1_800_000_000, "192.0.2.1:1".parse().unwrap(), features).to_string()
    }

    #[test]
    fn sha256_and_userhash_when_offered_and_asked_for() {
        let both = SecurityFeatures::PASSWORD_ALGORITHMS.union(SecurityFeatures::USERNAME_ANONYMITY);
        let bytes = challenge_401(&nonce(both), Some(PasswordAlgorithms::SHA256_AND_MD5));
        let m = Message::parse(&bytes).unwrap();
        let creds = Arc::new(Credentials::new("alice", "wonderland").prefer_sha256().with_userhash());
        let a = challenge(&creds, None, &m).unwrap();
        assert_eq!(a.algorithms, Some((PasswordAlgorithms::SHA256_AND_MD5.as_bytes().to_vec(), 2)));
        assert_eq!(a.userhash, Some(userhash("alice", "example.org").unwrap()));
        assert!(a.key_sha256.is_some());
        // Not asked for: an RFC 5389 request.
        let a = challenge(&Arc::new(Credentials::new("alice", "wonderland")), None, &m).unwrap();
        assert!(a.algorithms.is_none() && a.userhash.is_none() && a.key_sha256.is_none());
        // Username anonymity not offered: USERNAME.
        let bytes =
            challenge_401(&nonce(SecurityFeatures::PASSWORD_ALGORITHMS), Some(PasswordAlgorithms::SHA256_AND_MD5));
        let a = challenge(&creds, None, &Message::parse(&bytes).unwrap()).unwrap();
        assert!(a.userhash.is_none() && a.algorithms.is_some());
    }

    /// A Binding request signed with `key` (MESSAGE-INTEGRITY-SHA256), to compare keys by.
    fn signed(key: Option<&IntegrityKeySha256>) -> Vec<u8> {
        let mut buf = vec![0u8; 128];
        let ty = MessageType::new(Method::BINDING, Class::Request);
        let mut w = MessageWriter::new(&mut buf, ty, TransactionId([2; 12])).unwrap();
        w.add_message_integrity_sha256(key.expect("a SHA-256 key")).unwrap();
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_swap_rekeys_under_the_same_challenge() {
        let bytes =
            challenge_401(&nonce(SecurityFeatures::PASSWORD_ALGORITHMS), Some(PasswordAlgorithms::SHA256_AND_MD5));
        let old = Arc::new(Credentials::new("1:alice", "one").prefer_sha256());
        let a = challenge(&old, None, &Message::parse(&bytes).unwrap()).unwrap();
        let new = Arc::new(Credentials::new("2:alice", "two").prefer_sha256());
        let b = a.rekey(&new).unwrap();
        assert!(Arc::ptr_eq(&b.creds, &new));
        assert_eq!((&b.realm, &b.nonce, &b.algorithms), (&a.realm, &a.nonce, &a.algorithms));
        let expected = LongTermKey::derive(KeyAlgorithm::Sha256, "2:alice", "example.org", "two").unwrap();
        assert_eq!(signed(b.key_sha256.as_ref()), signed(Some(&IntegrityKeySha256::new(expected.as_bytes()))));
        // An RFC 7635 token keys with its mac_key whatever the challenge offered.
        let token = Arc::new(Credentials::access_token("kid", vec![1, 2, 3], [7u8; 32]));
        let c = a.rekey(&token).unwrap();
        assert_eq!(signed(c.key_sha256.as_ref()), signed(Some(&IntegrityKeySha256::new(&[7u8; 32]))));
        assert_eq!(new.token_bytes(), None);
        assert_eq!(token.token_bytes(), Some(&[1u8, 2, 3][..]));
    }

    #[test]
    fn a_stripped_offer_is_a_bid_down() {
        let bytes = challenge_401(&nonce(SecurityFeatures::PASSWORD_ALGORITHMS), None);
        let creds = Arc::new(Credentials::new("alice", "wonderland").prefer_sha256());
        let err = challenge(&creds, None, &Message::parse(&bytes).unwrap()).map(|_| ()).unwrap_err();
        assert!(matches!(err, RequestError::AuthDowngrade), "{err:?}");
        // An RFC 5389 server (no cookie): MD5, nothing more.
        let bytes = challenge_401("0123456789abcdef", None);
        let a = challenge(&creds, None, &Message::parse(&bytes).unwrap()).unwrap();
        assert!(a.algorithms.is_none() && a.key_sha256.is_none());
    }
}
