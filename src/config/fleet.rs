//! Fleet mode's keys: `redis-url` (or `redis-url-file`, for a URL carrying a password) and
//! `redis-prefix`. The URL is a secret: no error or log line shows it, only [`redacted_url`].

use super::{Config, ConfigError, SecretText, secret_files};

/// `url` with its password (and user) replaced by `***`: what a log line may show.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "***".to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{host}/{path}"),
        None => format!("{scheme}://{host}"),
    }
}

impl Config {
    /// Reads `redis-url-file` into `redis-url` (its first meaningful line). Giving both is an
    /// error; reading twice (same URL) is not.
    pub(super) fn read_redis_url_file(&mut self) -> Result<(), ConfigError> {
        let Some(path) = &self.redis_url_file else { return Ok(()) };
        let key = "redis-url-file";
        let text = secret_files::read(key, path)?;
        let Some(url) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')) else {
            return Err(ConfigError::invalid(key, format!("{} holds no URL", path.display())));
        };
        match &self.redis_url {
            Some(SecretText(given)) if given != url => {
                Err(ConfigError::invalid(key, "give redis-url or redis-url-file, not both"))
            }
            _ => {
                self.redis_url = Some(SecretText(url.to_owned()));
                Ok(())
            }
        }
    }

    /// `redis-url` is a `redis://` or `rediss://` URL with a host; `redis-prefix` is not empty.
    pub(super) fn validate_fleet(&self) -> Result<(), ConfigError> {
        if let Some(SecretText(url)) = &self.redis_url {
            let key = if self.redis_url_file.is_some() { "redis-url-file" } else { "redis-url" };
            let rest = url.strip_prefix("redis://").or_else(|| url.strip_prefix("rediss://"));
            let Some(rest) = rest else {
                return Err(ConfigError::invalid(key, "must start with redis:// or rediss:// (TLS)"));
            };
            let host = rest.split('/').next().unwrap_or("").rsplit('@').next().unwrap_or("");
            if host.is_empty() {
                return Err(ConfigError::invalid(key, format!("names no host: {}", redacted_url(url))));
            }
        }
        if self.redis_prefix.is_empty() {
            return Err(ConfigError::invalid("redis-prefix", "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(redacted_url("redis://:hunter2@127.0.0.1:6379/0"), "redis://***@127.0.0.1:6379/0");
        assert_eq!(redacted_url("rediss://user:p@ss@cache.example:6380"), "rediss://***@cache.example:6380");
        assert_eq!(redacted_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(redacted_url("hunter2"), "***");
    }

    #[test]
    fn redis_url_is_checked_and_its_file_read() {
        let err = Config::from_toml_str("redis-url = \"http://:hunter2@x\"\n").unwrap_err().to_string();
        assert!(err.contains("redis-url") && !err.contains("hunter2"), "{err}");
        let err = Config::from_toml_str("redis-url = \"redis://:hunter2@/0\"\n").unwrap_err().to_string();
        assert!(err.contains("no host") && !err.contains("hunter2"), "{err}");
        assert!(Config::from_toml_str("redis-url = \"redis://127.0.0.1:1\"\nredis-prefix = \"\"\n").is_err());
        let c = Config::from_toml_str("redis-url = \"rediss://:pw@127.0.0.1:1\"\nalternate-threshold = 5\n").unwrap();
        assert_eq!(c.redis_url, Some(SecretText("rediss://:pw@127.0.0.1:1".into())));
        assert_eq!(c.redis_prefix, "switchback:");
        assert!(!format!("{c:?}").contains(":pw@"), "Debug shows no password");
        // Without redis-url the threshold still needs a static alternate.
        assert!(Config::from_toml_str("alternate-threshold = 5\n").is_err());

        let dir = std::env::temp_dir().join(format!("switchback-redis-url-{}", crate::random::u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("redis-url");
        std::fs::write(&file, "# the fleet's Redis\nredis://:secret@127.0.0.1:6379\n").unwrap();
        let toml = format!("redis-url-file = \"{}\"\n", file.display());
        let c = Config::from_toml_str(&toml).unwrap();
        assert_eq!(c.redis_url, Some(SecretText("redis://:secret@127.0.0.1:6379".into())));
        let both = format!("{toml}redis-url = \"redis://127.0.0.1:1\"\n");
        let err = Config::from_toml_str(&both).unwrap_err().to_string();
        assert!(err.contains("not both") && !err.contains("secret"), "{err}");
        std::fs::write(&file, "# nothing\n").unwrap();
        assert!(Config::from_toml_str(&toml).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
