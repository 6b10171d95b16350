//! RFC 7635 third-party authorization keys: `oauth`, `server-name` and `oauth-key`
//! (`KID:BASE64KEY:ALG`, coturn's spelling), and what they become for the auth core.

use super::{Config, ConfigError, DEFAULT_REALM};
use crate::auth::{AccessTokenKey, OauthConfig};

/// The longest server name: coturn's limit (the THIRD-PARTY-AUTHORIZATION value and token AAD).
const MAX_SERVER_NAME_LEN: usize = 255;

impl Config {
    /// `oauth` needs at least one `oauth-key`, every key must parse and be long enough for its
    /// algorithm, kids must differ, and `server-name` is 1 to 255 bytes.
    pub(super) fn validate_oauth(&self) -> Result<(), ConfigError> {
        if !self.oauth_key.is_empty() && !self.oauth {
            return Err(ConfigError::invalid("oauth-key", "is set but oauth is not: set oauth = true"));
        }
        if self.oauth && self.oauth_key.is_empty() {
            return Err(ConfigError::invalid("oauth", "needs at least one oauth-key (KID:BASE64KEY:ALG)"));
        }
        if let Some(name) = &self.server_name
            && (name.is_empty() || name.len() > MAX_SERVER_NAME_LEN)
        {
            return Err(ConfigError::invalid("server-name", "must be 1 to 255 bytes"));
        }
        let keys = self.oauth_token_keys()?;
        for (i, (k, _)) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|(other, _)| other.kid() == k.kid()) {
                return Err(ConfigError::invalid("oauth-key", format!("kid `{}` is given twice", k.kid())));
            }
        }
        Ok(())
    }

    /// The parsed `oauth-key` list, each with whether its key was longer than its algorithm's
    /// (only the first 16 or 32 bytes are used, as coturn does).
    fn oauth_token_keys(&self) -> Result<Vec<(AccessTokenKey, bool)>, ConfigError> {
        self.oauth_key
            .iter()
            .map(|s| {
                AccessTokenKey::parse(&s.0).map_err(|e| {
                    // Name the kid, never the key.
                    let kid = s.0.split(':').next().unwrap_or("");
                    ConfigError::invalid("oauth-key", format!("`{kid}`: {e}"))
                })
            })
            .collect()
    }

    /// The server name bound into tokens: `server-name`, else the realm (coturn's default).
    pub fn effective_server_name(&self) -> &str {
        self.server_name.as_deref().or(self.realm.as_deref()).unwrap_or(DEFAULT_REALM)
    }

    /// The RFC 7635 settings of the auth core, `None` unless `oauth` is on.
    pub fn oauth_config(&self) -> Result<Option<OauthConfig>, ConfigError> {
        if !self.oauth {
            return Ok(None);
        }
        let keys = self.oauth_token_keys()?.into_iter().map(|(k, _)| k).collect();
        Ok(Some(OauthConfig { server_name: self.effective_server_name().to_owned(), keys }))
    }

    /// Warnings for the daemon's log: `oauth-key`s whose key is longer than their algorithm's.
    pub fn oauth_warnings(&self) -> Vec<String> {
        let Ok(keys) = self.oauth_token_keys() else { return Vec::new() };
        keys.iter()
            .filter(|(_, longer)| *longer)
            .map(|(k, _)| {
                format!(
                    "oauth-key `{}`: the key is longer than {} needs; only its first {} bytes are used",
                    k.kid(),
                    k.algorithm().as_str(),
                    k.algorithm().key_len()
                )
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "oauth_tests.rs"]
mod tests;
