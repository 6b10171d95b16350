//! Access tokens: JSON Web Tokens (RFC 7519, signed per RFC 7515) that an application's trusted
//! backend mints for a user and the client trades at `POST /v1/relay-configuration` for REST
//! credentials (see `http::api`). Sync and clock-free like the rest of `auth`: the time comes in as
//! `unix_now`.
//!
//! Keys are chosen by the token header's `kid` (RFC 7515 §4.1.4), so keys rotate by adding the new
//! one beside the old. Three algorithms (RFC 7518 §3.1, RFC 8037 §3.1):
//! - **HS256**, a shared key: the relay can verify and mint (`switchback token`, `POST /v1/tokens`);
//! - **EdDSA** (Ed25519) and **ES256** (P-256): the relay holds the public key only, so a
//!   compromised relay cannot mint tokens.
//!
//! The header's `alg` must be the one of the key its `kid` names (no algorithm confusion, RFC 8725
//! §3.1). Claims (RFC 7519 §4.1): `sub` (the user; it becomes the REST username's user part), `exp`,
//! `aud` (must contain the configured audience) and a space-separated `scope` containing `turn`
//! (RFC 8693 §4.2) are required; `nbf`, `iat` and `jti` are optional (`jti` is what revocation
//! names). `exp` and `nbf` are checked with a configurable leeway for clock skew.
//!
//! ```
//! use switchback::auth::token::{TokenKey, TokenKeys, TokenError};
//!
//! let keys = TokenKeys::new(vec![TokenKey::hs256(Some("k1"), b"a shared key of 32 bytes or more!")]);
//! let now = 1_800_000_000;
//! let token = keys.mint("alice", 3600, now, "jti-1")?;
//! assert_eq!(keys.verify(&token, now)?.sub, "alice");
//! assert_eq!(keys.verify(&token, now + 3600 + 61).unwrap_err(), TokenError::Expired);
//! # Ok::<(), TokenError>(())
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The scope a token must carry (one of the space-separated words of its `scope` claim).
pub const TURN_SCOPE: &str = "turn";
/// The audience when none is configured (`token-audience`).
pub const DEFAULT_AUDIENCE: &str = "switchback";
/// The clock-skew leeway when none is configured (`token-leeway`), seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// The longest token accepted, in bytes: tokens come from the network.
pub const MAX_TOKEN_LEN: usize = 4096;
/// The longest `sub` accepted, in bytes: it becomes part of a STUN USERNAME (at most 513 bytes,
/// RFC 8489 §14.3) and a rate-limit key.
pub const MAX_SUBJECT_LEN: usize = 128;

/// Why a token was refused. Each has a stable [`TokenError::code`] for the HTTP error bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts with a JSON header and claims, or too long.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header's `kid` names no configured key (or it has none and every key has a kid).
    #[error("the token's key id (kid) is unknown")]
    UnknownKid,
    /// The header's `alg` is not the algorithm of the key its `kid` names.
    #[error("the token's algorithm does not match its key")]
    WrongAlgorithm,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    BadSignature,
    /// `exp` (plus the leeway) has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` (minus the leeway) lies ahead.
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    /// `aud` does not contain the configured audience.
    #[error("the token is for another audience (aud)")]
    WrongAudience,
    /// `scope` does not contain `turn`.
    #[error("the token's scope does not include `turn`")]
    MissingScope,
    /// A required claim is absent or empty.
    #[error("the token has no `{0}` claim")]
    MissingClaim(&'static str),
    /// `sub` is longer than [`MAX_SUBJECT_LEN`] or holds control characters.
    #[error("the token's subject (sub) is too long or holds control characters")]
    BadSubject,
    /// Minting needs an HS256 key (public keys only verify).
    #[error("no HS256 token-key to mint with (public keys only verify)")]
    NoMintingKey,
}

impl TokenError {
    /// A short machine-readable code, as the HTTP service puts in its error bodies.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "token_malformed",
            TokenError::UnknownKid => "token_unknown_kid",
            TokenError::WrongAlgorithm => "token_wrong_algorithm",
            TokenError::BadSignature => "token_bad_signature",
            TokenError::Expired => "token_expired",
            TokenError::NotYetValid => "token_not_yet_valid",
            TokenError::WrongAudience => "token_wrong_audience",
            TokenError::MissingScope => "insufficient_scope",
            TokenError::MissingClaim(_) => "token_missing_claim",
            TokenError::BadSubject => "token_bad_subject",
            TokenError::NoMintingKey => "minting_unavailable",
        }
    }
}

/// Why a configured key could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM is neither an Ed25519 nor a P-256 key.
    #[error("not an Ed25519 or P-256 (EC) key in PEM form")]
    NotEdOrEc,
    /// An HS256 key shorter than 32 bytes (RFC 7518 §3.2: at least the hash's size).
    #[error("an HS256 key needs at least 32 bytes (RFC 7518 §3.2)")]
    TooShort,
}

/// One key: a `kid` (none matches tokens without one), its algorithm, and for HS256 (or a private
/// PEM) the key to mint with.
#[derive(Clone)]
pub struct TokenKey {
    kid: Option<String>,
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl TokenKey {
    /// An HS256 shared key (RFC 7518 §3.2), used to verify and to mint. See [`TokenKey::hs256_checked`].
    pub fn hs256(kid: Option<&str>, secret: &[u8]) -> TokenKey {
        TokenKey {
            kid: kid.map(str::to_owned),
            algorithm: Algorithm::HS256,
            decoding: DecodingKey::from_secret(secret),
            encoding: Some(EncodingKey::from_secret(secret)),
        }
    }

    /// [`TokenKey::hs256`], refusing keys shorter than 32 bytes.
    pub fn hs256_checked(kid: Option<&str>, secret: &[u8]) -> Result<TokenKey, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::TooShort);
        }
        Ok(TokenKey::hs256(kid, secret))
    }

    /// A public key in PEM (SubjectPublicKeyInfo): Ed25519 → EdDSA, P-256 → ES256. Verifies only.
    pub fn public_pem(kid: Option<&str>, pem: &[u8]) -> Result<TokenKey, KeyError> {
        let (algorithm, decoding) = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (Algorithm::EdDSA, k)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (Algorithm::ES256, k)
        } else {
            return Err(KeyError::NotEdOrEc);
        };
        Ok(TokenKey { kid: kid.map(str::to_owned), algorithm, decoding, encoding: None })
    }

    /// A private key in PEM (PKCS#8) with its public half in PEM, for a backend that mints EdDSA or
    /// ES256 tokens (the example backend and tests; the relay itself never needs one).
    pub fn private_pem(kid: Option<&str>, private: &[u8], public: &[u8]) -> Result<TokenKey, KeyError> {
        let mut key = TokenKey::public_pem(kid, public)?;
        let encoding = match key.algorithm {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(private),
            _ => EncodingKey::from_ec_pem(private),
        };
        key.encoding = Some(encoding.map_err(|_| KeyError::NotEdOrEc)?);
        Ok(key)
    }

    /// The key id.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// `HS256`, `EdDSA` or `ES256`.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// `aud`: one string or several (RFC 7519 §4.1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "x"`.
    One(String),
    /// `"aud": ["x", "y"]`.
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(a) => a == audience,
            Audience::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// The claims of a token as sent (everything optional: [`TokenKeys::verify`] checks presence so it
/// can say which one is missing).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct RawClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<Audience>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// The claims of a token that verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// `sub`: the user.
    pub sub: String,
    /// `exp`: Unix time after which the token is refused (before the leeway).
    pub exp: u64,
    /// `nbf`, if present.
    pub nbf: Option<u64>,
    /// `iat`, if present.
    pub iat: Option<u64>,
    /// `jti`, if present: the token's id, which revocation can name.
    pub jti: Option<String>,
    /// The key id it was verified with.
    pub kid: Option<String>,
}

/// The configured keys (the first HS256 one mints), the audience and the leeway.
#[derive(Clone, Debug)]
pub struct TokenKeys {
    keys: Vec<TokenKey>,
    /// `aud` must contain this; minted tokens carry it.
    pub audience: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl TokenKeys {
    /// These keys, the [`DEFAULT_AUDIENCE`] and the [`DEFAULT_LEEWAY_SECS`].
    pub fn new(keys: Vec<TokenKey>) -> TokenKeys {
        TokenKeys { keys, audience: DEFAULT_AUDIENCE.to_owned(), leeway_secs: DEFAULT_LEEWAY_SECS }
    }

    /// Whether any key is configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys.
    pub fn keys(&self) -> &[TokenKey] {
        &self.keys
    }

    /// Whether [`TokenKeys::mint`] can work (an HS256 or private key is configured).
    pub fn can_mint(&self) -> bool {
        self.minting_key().is_some()
    }

    fn minting_key(&self) -> Option<(&TokenKey, &EncodingKey)> {
        self.keys.iter().find_map(|k| k.encoding.as_ref().map(|e| (k, e)))
    }

    /// The key a header names: the one with its `kid`, or for a header without one the first key
    /// without one.
    fn key_for(&self, kid: Option<&str>) -> Option<&TokenKey> {
        self.keys.iter().find(|k| k.kid.as_deref() == kid)
    }

    /// Mints a token for `user` valid `ttl_secs` from `unix_now`, with scope `turn`, the audience,
    /// `iat`, `nbf` and `jti`, signed by the first key that can (its `kid` in the header).
    /// A `user` that [`TokenKeys::verify`] would refuse as `sub` is refused here too.
    pub fn mint(&self, user: &str, ttl_secs: u64, unix_now: u64, jti: &str) -> Result<String, TokenError> {
        if user.is_empty() || user.len() > MAX_SUBJECT_LEN || user.chars().any(char::is_control) {
            return Err(TokenError::BadSubject);
        }
        let (key, encoding) = self.minting_key().ok_or(TokenError::NoMintingKey)?;
        let mut header = Header::new(key.algorithm);
        header.kid = key.kid.clone();
        let claims = RawClaims {
            sub: Some(user.to_owned()),
            exp: Some(unix_now.saturating_add(ttl_secs)),
            nbf: Some(unix_now),
            iat: Some(unix_now),
            aud: Some(Audience::One(self.audience.clone())),
            jti: Some(jti.to_owned()),
            scope: Some(TURN_SCOPE.to_owned()),
        };
        jsonwebtoken::encode(&header, &claims, encoding).map_err(|_| TokenError::NoMintingKey)
    }

    /// Verifies `token` at `unix_now`: its key (by `kid`), algorithm and signature, then `exp`,
    /// `nbf` (with the leeway), `aud`, `scope` and `sub` (RFC 7519 §7.2, RFC 8725 §3.1).
    pub fn verify(&self, token: &str, unix_now: u64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let key = self.key_for(header.kid.as_deref()).ok_or(TokenError::UnknownKid)?;
        if header.alg != key.algorithm {
            return Err(TokenError::WrongAlgorithm);
        }
        // Signature only: the claims are checked below against `unix_now` (no clock read here).
        let mut validation = Validation::new(key.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data =
            jsonwebtoken::decode::<RawClaims>(token, &key.decoding, &validation).map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
                _ => TokenError::Malformed,
            })?;
        let c = data.claims;
        let exp = c.exp.ok_or(TokenError::MissingClaim("exp"))?;
        if exp.saturating_add(self.leeway_secs) < unix_now {
            return Err(TokenError::Expired);
        }
        if c.nbf.is_some_and(|nbf| nbf > unix_now.saturating_add(self.leeway_secs)) {
            return Err(TokenError::NotYetValid);
        }
        match &c.aud {
            None => return Err(TokenError::MissingClaim("aud")),
            Some(aud) if !aud.contains(&self.audience) => return Err(TokenError::WrongAudience),
            Some(_) => {}
        }
        let scope = c.scope.as_deref().ok_or(TokenError::MissingClaim("scope"))?;
        if !scope.split_ascii_whitespace().any(|s| s == TURN_SCOPE) {
            return Err(TokenError::MissingScope);
        }
        let sub = c.sub.filter(|s| !s.is_empty()).ok_or(TokenError::MissingClaim("sub"))?;
        if sub.len() > MAX_SUBJECT_LEN || sub.chars().any(char::is_control) {
            return Err(TokenError::BadSubject);
        }
        Ok(Claims { sub, exp, nbf: c.nbf, iat: c.iat, jti: c.jti, kid: key.kid.clone() })
    }
}

/// Signs arbitrary claims with `key` (tests and the example backend use it to build tokens the
/// relay must refuse or accept). `claims` is any JSON object.
pub fn sign_claims(key: &TokenKey, claims: &serde_json::Value) -> Result<String, TokenError> {
    let encoding = key.encoding.as_ref().ok_or(TokenError::NoMintingKey)?;
    let mut header = Header::new(key.algorithm);
    header.kid = key.kid.clone();
    jsonwebtoken::encode(&header, claims, encoding).map_err(|_| TokenError::NoMintingKey)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(vec![
            TokenKey::hs256(Some("k1"), KEY),
            TokenKey::hs256(Some("k0"), b"an older key, still verifying!!!"),
        ])
    }

    fn claims() -> serde_json::Value {
        json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW, "iat": NOW, "aud": "switchback", "jti": "j1", "scope": "turn"})
    }

    fn with(key: &TokenKey, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut c = claims();
        edit(&mut c);
        sign_claims(key, &c).unwrap()
    }

    #[test]
    fn minted_tokens_verify_with_every_claim() {
        let keys = keys();
        let token = keys.mint("alice", 600, NOW, "j1").unwrap();
        let c = keys.verify(&token, NOW).unwrap();
        assert_eq!(
            c,
            Claims {
                sub: "alice".into(),
                exp: NOW + 600,
                nbf: Some(NOW),
                iat: Some(NOW),
                jti: Some("j1".into()),
                kid: Some("k1".into())
            }
        );
        // The rotated-out key still verifies its tokens.
        let old = TokenKey::hs256(Some("k0"), b"an older key, still verifying!!!");
        assert_eq!(keys.verify(&with(&old, |_| {}), NOW).unwrap().kid.as_deref(), Some("k0"));
        // aud as a list, scope among others.
        let k1 = &keys.keys()[0];
        let t = with(k1, |c| {
            c["aud"] = json!(["other", "switchback"]);
            c["scope"] = json!("chat turn video");
        });
        assert!(keys.verify(&t, NOW).is_ok());
    }

    #[test]
    fn expired_and_not_yet_valid_with_leeway() {
        let keys = keys();
        let t = keys.mint("alice", 600, NOW, "j").unwrap();
        assert!(keys.verify(&t, NOW + 600 + 60).is_ok(), "within the leeway");
        assert_eq!(keys.verify(&t, NOW + 600 + 61), Err(TokenError::Expired));
        let mut strict = keys.clone();
        strict.leeway_secs = 0;
        assert_eq!(strict.verify(&t, NOW + 601), Err(TokenError::Expired));
        let early = with(&keys.keys()[0], |c| c["nbf"] = json!(NOW + 100));
        assert_eq!(keys.verify(&early, NOW + 39), Err(TokenError::NotYetValid));
        assert!(keys.verify(&early, NOW + 40).is_ok());
    }

    #[test]
    fn bad_signature_and_tampering() {
        let keys = keys();
        let forged = with(&TokenKey::hs256(Some("k1"), b"not the key, but just as long!!!"), |_| {});
        assert_eq!(keys.verify(&forged, NOW), Err(TokenError::BadSignature));
        // Swap in other claims under the original signature.
        let good = keys.mint("alice", 600, NOW, "j").unwrap();
        let other = keys.mint("mallory", 600, NOW, "j").unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let spliced = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(keys.verify(&spliced, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn wrong_audience_missing_scope_and_claims() {
        let keys = keys();
        let k = &keys.keys()[0];
        assert_eq!(keys.verify(&with(k, |c| c["aud"] = json!("elsewhere")), NOW), Err(TokenError::WrongAudience));
        assert_eq!(keys.verify(&with(k, |c| c["aud"] = json!(["a", "b"])), NOW), Err(TokenError::WrongAudience));
        assert_eq!(keys.verify(&with(k, |c| c["scope"] = json!("chat turnx")), NOW), Err(TokenError::MissingScope));
        for claim in ["sub", "exp", "aud", "scope"] {
            let t = with(k, |c| {
                c.as_object_mut().unwrap().remove(claim);
            });
            assert_eq!(keys.verify(&t, NOW), Err(TokenError::MissingClaim(claim)), "{claim}");
        }
        assert_eq!(keys.verify(&with(k, |c| c["sub"] = json!("")), NOW), Err(TokenError::MissingClaim("sub")));
        let long = "x".repeat(MAX_SUBJECT_LEN + 1);
        assert_eq!(keys.verify(&with(k, |c| c["sub"] = json!(long)), NOW), Err(TokenError::BadSubject));
        assert_eq!(keys.verify(&with(k, |c| c["sub"] = json!("a\nb")), NOW), Err(TokenError::BadSubject));
        assert!(keys.verify(&with(k, |c| c["sub"] = json!("x".repeat(MAX_SUBJECT_LEN))), NOW).is_ok());
        assert_eq!(keys.mint(&"x".repeat(MAX_SUBJECT_LEN + 1), 60, NOW, "j"), Err(TokenError::BadSubject));
        assert_eq!(keys.mint("", 60, NOW, "j"), Err(TokenError::BadSubject));
        let mut other = keys.clone();
        other.audience = "elsewhere".into();
        assert!(other.verify(&with(k, |c| c["aud"] = json!("elsewhere")), NOW).is_ok());
    }

    #[test]
    fn unknown_kid_and_algorithm_confusion() {
        let keys = keys();
        let t = with(&TokenKey::hs256(Some("k9"), KEY), |_| {});
        assert_eq!(keys.verify(&t, NOW), Err(TokenError::UnknownKid));
        let no_kid = with(&TokenKey::hs256(None, KEY), |_| {});
        assert_eq!(keys.verify(&no_kid, NOW), Err(TokenError::UnknownKid), "every configured key has a kid");
        // A key without kid matches tokens without one.
        let kidless = TokenKeys::new(vec![TokenKey::hs256(None, KEY)]);
        assert!(kidless.verify(&no_kid, NOW).is_ok());
        // An HS256 token under the kid of an Ed25519 public key: refused before any MAC.
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mixed = TokenKeys::new(vec![TokenKey::public_pem(Some("ed"), ed.public_key_pem().as_bytes()).unwrap()]);
        let confused = with(&TokenKey::hs256(Some("ed"), ed.public_key_pem().as_bytes()), |_| {});
        assert_eq!(mixed.verify(&confused, NOW), Err(TokenError::WrongAlgorithm));
        assert_eq!(mixed.mint("a", 1, NOW, "j"), Err(TokenError::NoMintingKey));
    }

    #[test]
    fn malformed_tokens() {
        let keys = keys();
        for t in ["", "a", "a.b", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.e30", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(keys.verify(t, NOW), Err(TokenError::Malformed), "{t:?}");
        }
        // A claim of the wrong type.
        let k = &keys.keys()[0];
        assert_eq!(keys.verify(&with(k, |c| c["exp"] = json!("tomorrow")), NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn eddsa_and_es256_public_keys_verify_only() {
        for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P256_SHA256] {
            let pair = rcgen::KeyPair::generate_for(alg).unwrap();
            let public = pair.public_key_pem();
            let signer = TokenKey::private_pem(Some("pk"), pair.serialize_pem().as_bytes(), public.as_bytes()).unwrap();
            let relay = TokenKeys::new(vec![TokenKey::public_pem(Some("pk"), public.as_bytes()).unwrap()]);
            assert!(!relay.can_mint());
            let t = with(&signer, |_| {});
            let c = relay.verify(&t, NOW).unwrap();
            assert_eq!((c.sub.as_str(), c.kid.as_deref()), ("alice", Some("pk")));
            // Another key pair of the same kind does not verify.
            let other = rcgen::KeyPair::generate_for(alg).unwrap();
            let other_signer =
                TokenKey::private_pem(Some("pk"), other.serialize_pem().as_bytes(), other.public_key_pem().as_bytes())
                    .unwrap();
            assert_eq!(relay.verify(&with(&other_signer, |_| {}), NOW), Err(TokenError::BadSignature));
        }
        assert_eq!(TokenKey::public_pem(None, b"-----BEGIN NOTHING-----").unwrap_err(), KeyError::NotEdOrEc);
        assert_eq!(TokenKey::hs256_checked(None, b"short").unwrap_err(), KeyError::TooShort);
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            TokenError::Malformed,
            TokenError::UnknownKid,
            TokenError::WrongAlgorithm,
            TokenError::BadSignature,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::WrongAudience,
            TokenError::MissingScope,
            TokenError::MissingClaim("sub"),
            TokenError::BadSubject,
            TokenError::NoMintingKey,
        ];
        let mut codes: Vec<&str> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
