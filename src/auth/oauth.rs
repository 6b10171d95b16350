//! RFC 7635 third-party authorization: the self-contained ACCESS-TOKEN (§6.2, Appendix B) that an
//! authorization server encrypts for us with AEAD_AES_128_GCM or AEAD_AES_256_GCM under a key it
//! shares with us, named by `kid` (the request's USERNAME). Sans-IO: the clock comes in as
//! `unix_now`, keys come in as bytes.
//!
//! The wire format, as RFC 7635 §6.2 lays it out and coturn (`turnutils_oauth -e`) produces it:
//!
//! ```text
//! token           = nonce_length (u16, = 12) ‖ nonce (12) ‖ AES-GCM(key, nonce, aad = server name,
//!                   encrypted_block) ‖ tag (16)
//! encrypted_block = key_length (u16) ‖ mac_key (key_length) ‖ timestamp (u64, 48.16 fixed-point
//!                   Unix seconds) ‖ lifetime (u32 seconds)
//! ```
//!
//! The `mac_key` then keys MESSAGE-INTEGRITY directly (no MD5 long-term key): 20 bytes mean
//! HMAC-SHA1 (MESSAGE-INTEGRITY, RFC 8489 §14.5), 32 bytes HMAC-SHA256 (MESSAGE-INTEGRITY-SHA256,
//! §14.6). Other lengths are refused.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::Digest as _;

use crate::proto::stun::{IntegrityKey, IntegrityKeySha256};

/// The nonce length coturn and our [`seal`] use; the only one we accept (AES-GCM's natural size).
pub const TOKEN_NONCE_LEN: usize = 12;
/// The AES-GCM authentication tag that ends the token.
const TAG_LEN: usize = 16;
/// How far the token's timestamp may lie ahead of our clock, and how long after its lifetime it is
/// still taken, in seconds: coturn's `OAUTH_TIME_DELTA`. RFC 7635 §6.2 assumes synchronized clocks.
pub const TOKEN_CLOCK_SKEW_SECS: u64 = 5;
/// The longest encrypted block we accept: key_length, a 32-byte mac_key, timestamp, lifetime.
const MAX_BLOCK_LEN: usize = 2 + 32 + 8 + 4;

/// The AEAD algorithm shared with the authorization server, RFC 7635 §6.2 (JWA names, RFC 7518).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenAlgorithm {
    /// AEAD_AES_128_GCM, a 16-byte key.
    A128Gcm,
    /// AEAD_AES_256_GCM, a 32-byte key.
    A256Gcm,
}

impl TokenAlgorithm {
    /// The key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            TokenAlgorithm::A128Gcm => 16,
            TokenAlgorithm::A256Gcm => 32,
        }
    }

    /// The JWA name: `A128GCM` or `A256GCM`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAlgorithm::A128Gcm => "A128GCM",
            TokenAlgorithm::A256Gcm => "A256GCM",
        }
    }
}

impl std::str::FromStr for TokenAlgorithm {
    type Err = AccessTokenKeyError;

    fn from_str(s: &str) -> Result<Self, AccessTokenKeyError> {
        match s {
            "A128GCM" => Ok(TokenAlgorithm::A128Gcm),
            "A256GCM" => Ok(TokenAlgorithm::A256Gcm),
            _ => Err(AccessTokenKeyError::Algorithm),
        }
    }
}

/// Why an `oauth-key` setting (`KID:BASE64KEY:ALG`) was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenKeyError {
    /// Not three `:`-separated parts, or an empty kid.
    #[error("expected KID:BASE64KEY:ALG with a non-empty KID")]
    Format,
    /// The key is not base64.
    #[error("the key is not base64")]
    Base64,
    /// ALG is neither `A256GCM` nor `A128GCM`.
    #[error("the algorithm must be A256GCM or A128GCM")]
    Algorithm,
    /// The key decodes to fewer bytes than the algorithm needs.
    #[error("the key decodes to {got} bytes, {alg} needs {need}")]
    TooShort {
        /// Decoded bytes.
        got: usize,
        /// Bytes the algorithm needs.
        need: usize,
        /// The algorithm's name.
        alg: &'static str,
    },
}

#[derive(Clone)]
enum Cipher {
    A128(Box<Aes128Gcm>),
    A256(Box<Aes256Gcm>),
}

/// A key shared with the authorization server, keyed once. `Debug` shows the kid and algorithm only.
#[derive(Clone)]
pub struct AccessTokenKey {
    kid: Box<str>,
    alg: TokenAlgorithm,
    cipher: Cipher,
}

impl std::fmt::Debug for AccessTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokenKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl AccessTokenKey {
    /// A key from its bytes: the first 16 (A128GCM) or 32 (A256GCM) are used, as coturn does; the
    /// second value says whether there were more (worth a warning). Fewer is an error.
    pub fn new(kid: &str, key: &[u8], alg: TokenAlgorithm) -> Result<(Self, bool), AccessTokenKeyError> {
        if kid.is_empty() {
            return Err(AccessTokenKeyError::Format);
        }
        let need = alg.key_len();
        let bytes = key.get(..need).ok_or(AccessTokenKeyError::TooShort { got: key.len(), need, alg: alg.as_str() })?;
        let cipher = match alg {
            TokenAlgorithm::A128Gcm => Aes128Gcm::new_from_slice(bytes).map(|c| Cipher::A128(Box::new(c))),
            TokenAlgorithm::A256Gcm => Aes256Gcm::new_from_slice(bytes).map(|c| Cipher::A256(Box::new(c))),
        }
        .map_err(|_| AccessTokenKeyError::TooShort { got: key.len(), need, alg: alg.as_str() })?;
        Ok((AccessTokenKey { kid: kid.into(), alg, cipher }, key.len() > need))
    }

    /// Parses coturn's `--oauth-key`-style `KID:BASE64KEY:ALG`; the flag says the key was longer
    /// than the algorithm's (coturn's test keys are: base64 of text with a trailing newline).
    pub fn parse(s: &str) -> Result<(Self, bool), AccessTokenKeyError> {
        let mut parts = s.splitn(3, ':');
        let (Some(kid), Some(b64), Some(alg)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AccessTokenKeyError::Format);
        };
        let alg: TokenAlgorithm = alg.trim().parse()?;
        let key = STANDARD.decode(b64.trim()).map_err(|_| AccessTokenKeyError::Base64)?;
        AccessTokenKey::new(kid.trim(), &key, alg)
    }

    /// The key's name (`kid`), carried in USERNAME (RFC 7635 §6.2).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Its algorithm.
    pub fn algorithm(&self) -> TokenAlgorithm {
        self.alg
    }

    fn decrypt(&self, nonce: [u8; TOKEN_NONCE_LEN], aad: &[u8], buf: &mut [u8], tag: [u8; TAG_LEN]) -> bool {
        let nonce = GenericArray::from(nonce);
        let tag = GenericArray::from(tag);
        match &self.cipher {
            Cipher::A128(c) => c.decrypt_in_place_detached(&nonce, aad, buf, &tag).is_ok(),
            Cipher::A256(c) => c.decrypt_in_place_detached(&nonce, aad, buf, &tag).is_ok(),
        }
    }

    fn encrypt(&self, nonce: [u8; TOKEN_NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let nonce = GenericArray::from(nonce);
        let tag = match &self.cipher {
            Cipher::A128(c) => c.encrypt_in_place_detached(&nonce, aad, buf),
            Cipher::A256(c) => c.encrypt_in_place_detached(&nonce, aad, buf),
        };
        tag.ok().map(Into::into)
    }
}

/// Why an ACCESS-TOKEN was refused (each answered 401, RFC 7635 §6.2). Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// No key of that `kid` is configured.
    #[error("unknown kid")]
    UnknownKid,
    /// The token or its decrypted block has the wrong length (nonce length other than 12, a
    /// mac_key other than 20 or 32 bytes, trailing bytes).
    #[error("malformed token")]
    BadLength,
    /// The AEAD tag does not verify: another key, another server name, or a tampered token.
    #[error("token does not decrypt")]
    BadTag,
    /// `timestamp + lifetime` has passed (or the lifetime is 0).
    #[error("token expired")]
    Expired,
    /// The timestamp lies ahead of our clock by more than [`TOKEN_CLOCK_SKEW_SECS`].
    #[error("token timestamp in the future")]
    FromFuture,
}

/// The MESSAGE-INTEGRITY key a token carries, RFC 7635 §6.2: HMAC-SHA1 for a 20-byte mac_key,
/// HMAC-SHA256 (MESSAGE-INTEGRITY-SHA256) for a 32-byte one. `Debug` shows no key.
#[derive(Clone, Debug)]
pub enum MacKey {
    /// MESSAGE-INTEGRITY, RFC 8489 §14.5.
    Sha1(IntegrityKey),
    /// MESSAGE-INTEGRITY-SHA256, RFC 8489 §14.6.
    Sha256(IntegrityKeySha256),
}

impl MacKey {
    /// The key for a mac_key of 20 or 32 bytes.
    pub fn new(mac_key: &[u8]) -> Option<Self> {
        match mac_key.len() {
            20 => Some(MacKey::Sha1(IntegrityKey::new(mac_key))),
            32 => Some(MacKey::Sha256(IntegrityKeySha256::new(mac_key))),
            _ => None,
        }
    }
}

/// A decrypted token: what the authorization server granted.
#[derive(Clone, Debug)]
pub struct Token {
    /// The session key, for MESSAGE-INTEGRITY.
    pub mac_key: MacKey,
    /// coturn's reading of a 20-byte mac_key: HMAC-SHA1 keyed with its first 16 bytes only (coturn
    /// sizes every SHA-1 HMAC key like an MD5 long-term key, `get_hmackey_size`), which its
    /// `turnutils_uclient -J` and its server both use. `None` for a 32-byte mac_key.
    pub coturn_mac_key: Option<MacKey>,
    /// The token's identity: SHA-256 of its mac_key. Two holders of tokens under one kid have
    /// different mac_keys, so this tells them apart without keeping the key itself.
    pub id: [u8; 32],
    /// When it was issued, Unix seconds (the integer part of the 48.16 timestamp).
    pub timestamp: u64,
    /// For how long, in seconds.
    pub lifetime: u32,
}

impl Token {
    /// The Unix second it expires.
    pub fn expires(&self) -> u64 {
        self.timestamp.saturating_add(u64::from(self.lifetime))
    }
}

/// What a request authenticated by a token (or by the key an earlier token gave its allocation)
/// proved: the kid it named and the session key it holds, until `expires`. An allocation keeps the
/// latest one (RFC 7635 §6.2: a Refresh with a new token switches it).
#[derive(Clone, Debug)]
pub struct OauthSession {
    /// The `kid` of the token, the USERNAME of the requests that use this session key.
    pub kid: Box<str>,
    /// The token's mac_key.
    pub key: MacKey,
    /// The token's identity ([`Token::id`]).
    pub id: [u8; 32],
    /// `timestamp + lifetime` of the token, Unix seconds.
    pub expires: u64,
}

impl OauthSession {
    /// The user this token stands for in quotas, rate limits, bandwidth meters and revocation:
    /// `<kid>#<first 8 bytes of the token id, hex>`. Every holder of a token under one kid has its
    /// own (the kid names the authorization server's key, not a user).
    pub fn identity(&self) -> String {
        let mut id = String::with_capacity(self.kid.len() + 17);
        id.push_str(&self.kid);
        id.push('#');
        for b in self.id.iter().take(8) {
            id.push_str(&format!("{b:02x}"));
        }
        id
    }
}

/// The third-party authorization settings: our server name and the keys shared with the
/// authorization server. `Debug` shows no key.
#[derive(Clone, Debug)]
pub struct OauthConfig {
    /// The server name bound into every token as AEAD associated data and sent in
    /// THIRD-PARTY-AUTHORIZATION (RFC 7635 §6.1).
    pub server_name: String,
    /// The keys, by kid; a few, so a linear search.
    pub keys: Vec<AccessTokenKey>,
}

impl OauthConfig {
    /// The key named `kid`.
    pub fn key(&self, kid: &str) -> Option<&AccessTokenKey> {
        self.keys.iter().find(|k| *k.kid == *kid)
    }

    /// Decrypts and checks `token` under the key named `kid`, RFC 7635 §6.2: the key known, the
    /// lengths right, the tag valid with our server name as AAD, the timestamp not ahead of
    /// `unix_now` (beyond the skew) and `timestamp + lifetime` not past.
    pub fn open(&self, kid: &str, token: &[u8], unix_now: u64) -> Result<Token, AccessTokenError> {
        let key = self.key(kid).ok_or(AccessTokenError::UnknownKid)?;
        open(key, &self.server_name, token, unix_now)
    }
}

/// [`OauthConfig::open`] with one key.
pub fn open(key: &AccessTokenKey, server_name: &str, token: &[u8], unix_now: u64) -> Result<Token, AccessTokenError> {
    let (len, rest) = token.split_first_chunk::<2>().ok_or(AccessTokenError::BadLength)?;
    if usize::from(u16::from_be_bytes(*len)) != TOKEN_NONCE_LEN {
        return Err(AccessTokenError::BadLength);
    }
    let (nonce, rest) = rest.split_first_chunk::<TOKEN_NONCE_LEN>().ok_or(AccessTokenError::BadLength)?;
    let (sealed, tag) = rest.split_last_chunk::<TAG_LEN>().ok_or(AccessTokenError::BadLength)?;
    let mut buf = [0u8; MAX_BLOCK_LEN];
    let block = buf.get_mut(..sealed.len()).ok_or(AccessTokenError::BadLength)?;
    block.copy_from_slice(sealed);
    if !key.decrypt(*nonce, server_name.as_bytes(), block, *tag) {
        return Err(AccessTokenError::BadTag);
    }
    let (key_len, rest) = block.split_first_chunk::<2>().ok_or(AccessTokenError::BadLength)?;
    let key_len = usize::from(u16::from_be_bytes(*key_len));
    let mac_key = rest.get(..key_len).ok_or(AccessTokenError::BadLength)?;
    let tail = rest.get(key_len..).ok_or(AccessTokenError::BadLength)?;
    let (ts, tail) = tail.split_first_chunk::<8>().ok_or(AccessTokenError::BadLength)?;
    let (lifetime, tail) = tail.split_first_chunk::<4>().ok_or(AccessTokenError::BadLength)?;
    if !tail.is_empty() {
        return Err(AccessTokenError::BadLength);
    }
    let coturn_mac_key = mac_key.get(..16).filter(|_| mac_key.len() == 20).map(|k| MacKey::Sha1(IntegrityKey::new(k)));
    let id = sha2::Sha256::digest(mac_key).into();
    let mac_key = MacKey::new(mac_key).ok_or(AccessTokenError::BadLength)?;
    let token = Token {
        mac_key,
        coturn_mac_key,
        id,
        timestamp: u64::from_be_bytes(*ts) >> 16,
        lifetime: u32::from_be_bytes(*lifetime),
    };
    if token.timestamp > unix_now.saturating_add(TOKEN_CLOCK_SKEW_SECS) {
        return Err(AccessTokenError::FromFuture);
    }
    if token.lifetime == 0 || token.expires().saturating_add(TOKEN_CLOCK_SKEW_SECS) <= unix_now {
        return Err(AccessTokenError::Expired);
    }
    Ok(token)
}

/// Makes a token, RFC 7635 §6.2 (what an authorization server does; for tests, tools and embedders
/// that mint their own): `mac_key` of 20 or 32 bytes, `nonce` fresh and random per token.
pub fn seal(
    key: &AccessTokenKey,
    server_name: &str,
    nonce: [u8; TOKEN_NONCE_LEN],
    mac_key: &[u8],
    timestamp: u64,
    lifetime: u32,
) -> Result<Vec<u8>, AccessTokenError> {
    let key_len = u16::try_from(mac_key.len()).map_err(|_| AccessTokenError::BadLength)?;
    if MacKey::new(mac_key).is_none() {
        return Err(AccessTokenError::BadLength);
    }
    let mut block = Vec::with_capacity(MAX_BLOCK_LEN);
    block.extend_from_slice(&key_len.to_be_bytes());
    block.extend_from_slice(mac_key);
    block.extend_from_slice(&(timestamp << 16).to_be_bytes());
    block.extend_from_slice(&lifetime.to_be_bytes());
    let tag = key.encrypt(nonce, server_name.as_bytes(), &mut block).ok_or(AccessTokenError::BadLength)?;
    let mut token = Vec::with_capacity(2 + TOKEN_NONCE_LEN + block.len() + TAG_LEN);
    token.extend_from_slice(&(TOKEN_NONCE_LEN as u16).to_be_bytes());
    token.extend_from_slice(&nonce);
    token.extend_from_slice(&block);
    token.extend_from_slice(&tag);
    Ok(token)
}

#[cfg(test)]
#[path = "oauth_tests.rs"]
mod tests;
