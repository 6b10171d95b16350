//! The token service's keys (`api-listen` or `api-on-tls` turns it on): `api-key` (the trusted backend's key for
//! `POST /v1/tokens`), `token-key` (HS256, `[KID:]KEY`), `token-public-key` (EdDSA/ES256 PEM,
//! `[KID:]FILE`), each secret with its `…-file` twin (one a line); `token-audience`, `token-leeway`,
//! `api-max-ttl`, `api-cors-origin`, `api-rate-limit`, `api-user-rate-limit` (the urls' host is
//! `public-host`, formerly `api-url-host`).

use std::path::Path;

use super::{Config, ConfigError, SecretText, parse_secrets, secret_files};

/// `api-max-ttl` by default: a day.
pub const DEFAULT_API_MAX_TTL_SECS: u64 = 86_400;

/// `KID:KEY` → (`Some(KID)`, `KEY`); a value without `:` has no kid.
pub fn split_kid(value: &str) -> (Option<&str>, &str) {
    match value.split_once(':') {
        Some((kid, key)) if !kid.is_empty() => (Some(kid), key),
        _ => (None, value),
    }
}

impl Config {
    /// Reads `api-key-file` and `token-key-file` (their lines go after the keys given directly).
    pub(super) fn read_api_files(&mut self) -> Result<(), ConfigError> {
        for (key, path, into) in [
            ("api-key-file", &self.api_key_file, &mut self.api_key),
            ("token-key-file", &self.token_key_file, &mut self.token_key),
        ] {
            let Some(path) = path else { continue };
            let secrets = parse_secrets(&secret_files::read(key, path)?);
            if secrets.is_empty() {
                return Err(ConfigError::invalid(key, format!("{} holds no key", path.display())));
            }
            for secret in secrets {
                if !into.contains(&secret) {
                    into.push(secret);
                }
            }
        }
        Ok(())
    }

    /// The key that turns the token service on — `api-listen`, else `api-on-tls` — for errors
    /// about what it needs; `None` when it is off.
    pub fn api_face_key(&self) -> Option<&'static str> {
        match (self.api_listen, self.api_on_tls) {
            (Some(_), _) => Some("api-listen"),
            (None, true) => Some("api-on-tls"),
            (None, false) => None,
        }
    }

    /// What no single key of the token service can check.
    pub(super) fn validate_api(&self) -> Result<(), ConfigError> {
        if self.token_audience.is_empty() {
            return Err(ConfigError::invalid("token-audience", "must not be empty"));
        }
        if self.api_tls && (self.cert.is_none() || self.no_tls) {
            return Err(ConfigError::invalid("api-tls", "needs cert and pkey (and TLS not turned off with no-tls)"));
        }
        if self.api_on_tls && (self.cert.is_none() || self.no_tls) {
            return Err(ConfigError::invalid(
                "api-on-tls",
                "serves /v1 on the TURN-TLS listeners: needs cert and pkey (and TLS not turned off with no-tls)",
            ));
        }
        if self.api_max_ttl == 0 {
            return Err(ConfigError::invalid("api-max-ttl", "must be at least 1 second"));
        }
        for SecretText(key) in &self.api_key {
            if key.len() < 16 {
                return Err(ConfigError::invalid("api-key", "an API key needs at least 16 characters"));
            }
        }
        for origin in &self.api_cors_origin {
            if origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://")) {
                let message = format!("`{origin}` is not an origin (https://host[:port], or *)");
                return Err(ConfigError::invalid("api-cors-origin", message));
            }
        }
        #[cfg(feature = "tokens")]
        {
            let keys = self.token_keys()?;
            if let Some(key) = self.api_face_key()
                && keys.is_empty()
            {
                return Err(ConfigError::invalid(
                    key,
                    "the token service needs token-key, token-key-file or token-public-key",
                ));
            }
            if !self.api_key.is_empty() && !keys.can_mint() {
                return Err(ConfigError::invalid(
                    "api-key",
                    "POST /v1/tokens mints with a token-key (HS256): give one",
                ));
            }
        }
        Ok(())
    }

    /// The access-token keys, audience and leeway: `token-key` (HS256, at least 32 bytes) and the
    /// PEM files of `token-public-key`, read now. Errors name the key, never a secret.
    #[cfg(feature = "tokens")]
    pub fn token_keys(&self) -> Result<crate::auth::token::TokenKeys, ConfigError> {
        use crate::auth::token::{TokenKey, TokenKeys};
        let mut keys = Vec::new();
        for SecretText(value) in &self.token_key {
            let (kid, key) = split_kid(value);
            let key = TokenKey::hs256_checked(kid, key.as_bytes()).map_err(|e| ConfigError::invalid("token-key", e))?;
            keys.push(key);
        }
        for value in &self.token_public_key {
            let (kid, file) = split_kid(value);
            let pem = secret_files::read("token-public-key", Path::new(file))?;
            let key = TokenKey::public_pem(kid, pem.as_bytes())
                .map_err(|e| ConfigError::invalid("token-public-key", format!("{file}: {e}")))?;
            keys.push(key);
        }
        let mut kids: Vec<Option<&str>> = keys.iter().map(TokenKey::kid).collect();
        kids.sort_unstable();
        if kids.windows(2).any(|w| w.first() == w.get(1)) {
            return Err(ConfigError::invalid("token-key", "two token keys with the same kid (or both without one)"));
        }
        let mut keys = TokenKeys::new(keys);
        keys.audience = self.token_audience.clone();
        keys.leeway_secs = self.token_leeway;
        Ok(keys)
    }
}
