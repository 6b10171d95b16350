//! The abuse-control keys: `rate-limit-unauth`, `rate-limit-allocate` (`N/s[:burst]`, or `0` for
//! none) and the revocation list (`revoked-users`, `revocation-file`), which the daemon re-reads on
//! SIGHUP.

use serde::{Deserialize, Deserializer, de::Error as _};

use super::{Config, ConfigError, secret_files};
use crate::policy::rate::RateLimit;
use crate::policy::revocation::RevocationList;

/// A rate as `turn.toml` writes it: `"20/s:40"`, `"10/s"`, `"0"` or the integer `0`.
pub(super) fn rate_limit<'de, D: Deserializer<'de>>(d: D) -> Result<RateLimit, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(i64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(0) => Ok(RateLimit::OFF),
        Raw::Number(_) => Err(D::Error::custom("expected \"N/s\" or \"N/s:BURST\" (a string), or 0 for no limit")),
        Raw::Text(s) => s.parse().map_err(D::Error::custom),
    }
}

impl Config {
    /// The revocation list: `revoked-users` and the lines of `revocation-file` (read now; the
    /// daemon calls this again on SIGHUP). A file that cannot be read is an error naming the key.
    pub fn revocation_list(&self) -> Result<RevocationList, ConfigError> {
        let mut list = RevocationList::new(&self.revoked_users);
        if let Some(path) = &self.revocation_file {
            list.extend(RevocationList::parse(&secret_files::read("revocation-file", path)?));
        }
        Ok(list)
    }
}
