//! coturn's Redis user database as a source of credentials and quotas (`redis-userdb`, issue #16
//! item 8): a coturn fleet's database works unchanged. This file holds what the configuration
//! knows of it — the key's value (a `redis://` URL, or coturn's own `"ip=… dbname=… password=…
//! port=…"` connection string, turned into a URL), `redis-userdb-file`, and how what was read
//! ([`Userdb`]) joins a [`Config`]. Reading Redis is `fleet::userdb`'s job, at start and on every
//! reload `daemon::userdb`'s.
//!
//! coturn's schema (`turndb/schema.userdb.redis`), for the one realm switchback serves:
//!
//! | key | type | read as |
//! |---|---|---|
//! | `turn/realm/<realm>/user/<user>/key` | string | the long-term key, 32 hex digits (MD5 of `user:realm:password`, RFC 8489 §9.2.2): a static user |
//! | `turn/realm/<realm>/user/<user>/password` | string | a plain password (not written by today's coturn; accepted for hand-made databases) |
//! | `turn/realm/<realm>/secret` | set | REST shared secrets |
//! | `turn/realm/<realm>/user-quota`, `total-quota`, `max-bps` | string (integer) | override the keys of the same name |

use std::collections::BTreeMap;

use super::{Config, ConfigError, SecretText, redacted_url, secret_files};

/// What one read of coturn's user database gave for the realm (empty fields: not set there).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Userdb {
    /// User → credential as `users` holds it: `0x<32 hex>` for a key, else a password.
    pub users: BTreeMap<String, SecretText>,
    /// The realm's REST secrets, sorted (a Redis set has no order).
    pub secrets: Vec<SecretText>,
    /// `turn/realm/<realm>/user-quota`.
    pub user_quota: Option<u32>,
    /// `turn/realm/<realm>/total-quota`.
    pub total_quota: Option<u32>,
    /// `turn/realm/<realm>/max-bps`.
    pub max_bps: Option<u64>,
    /// Entries left out (a bad key, a user name with `:`), one line each, never a secret.
    pub skipped: Vec<String>,
}

impl std::fmt::Debug for Userdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names and counts only: the credentials are secrets.
        f.debug_struct("Userdb")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.len())
            .field("user_quota", &self.user_quota)
            .field("total_quota", &self.total_quota)
            .field("max_bps", &self.max_bps)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Userdb {
    /// Adds user `name` from its `key` entry (`hex`: coturn's 32 hex digits), or records why not.
    pub fn add_key(&mut self, name: &str, hex: &str) {
        let hex = hex.trim();
        if !user_name_ok(name) {
            return self.skipped.push(format!("user `{}`: a name with `:` or control characters", printable(name)));
        }
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.skipped.push(format!("user `{name}`: its key is not 32 hex digits"));
        }
        self.users.insert(name.to_owned(), SecretText(format!("0x{}", hex.to_ascii_lowercase())));
    }

    /// Adds user `name` with a plain `password` unless its key was given (the key wins).
    pub fn add_password(&mut self, name: &str, password: &str) {
        if !user_name_ok(name) {
            return self.skipped.push(format!("user `{}`: a name with `:` or control characters", printable(name)));
        }
        if password.is_empty() || password.starts_with("0x") || password.starts_with("0X") {
            return self.skipped.push(format!("user `{name}`: an empty password, or one that reads as a key"));
        }
        self.users.entry(name.to_owned()).or_insert_with(|| SecretText(password.to_owned()));
    }
}

/// A name `users` can hold: not empty, no `:` (the `name:password` separator), no control characters.
fn user_name_ok(name: &str) -> bool {
    !name.is_empty() && !name.contains(':') && !name.chars().any(char::is_control)
}

/// `name` with control characters escaped, for a log line.
fn printable(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).collect()
}

impl Config {
    /// This configuration with what coturn's user database holds for the realm: its users join
    /// `users` (a user the file names keeps the file's credential), its secrets go after
    /// `static-auth-secret`'s (the file's first secret still mints), and its `user-quota`,
    /// `total-quota` and `max-bps` replace the file's when set.
    pub fn with_userdb(mut self, db: &Userdb) -> Config {
        for (name, credential) in &db.users {
            self.users.entry(name.clone()).or_insert_with(|| credential.clone());
        }
        for secret in &db.secrets {
            if !secret.0.is_empty() && !self.static_auth_secret.contains(secret) {
                self.static_auth_secret.push(secret.clone());
            }
        }
        self.user_quota = db.user_quota.unwrap_or(self.user_quota);
        self.total_quota = db.total_quota.unwrap_or(self.total_quota);
        self.max_bps = db.max_bps.unwrap_or(self.max_bps);
        self
    }

    /// The realm whose entries are read from the user database: `realm`, or the default one.
    pub fn userdb_realm(&self) -> &str {
        self.realm.as_deref().unwrap_or(super::DEFAULT_REALM)
    }

    /// Reads `redis-userdb-file` into `redis-userdb` and turns a coturn connection string into a
    /// URL. Giving both keys is an error; doing it twice changes nothing.
    pub(super) fn read_redis_userdb(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.redis_userdb_file {
            let key = "redis-userdb-file";
            let text = secret_files::read(key, path)?;
            let Some(line) = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')) else {
                return Err(ConfigError::invalid(key, format!("{} holds no URL", path.display())));
            };
            let url = userdb_url(line).map_err(|e| ConfigError::invalid(key, e))?;
            match &self.redis_userdb {
                Some(SecretText(given)) if userdb_url(given).as_deref() != Ok(url.as_str()) => {
                    return Err(ConfigError::invalid(key, "give redis-userdb or redis-userdb-file, not both"));
                }
                _ => self.redis_userdb = Some(SecretText(url)),
            }
        }
        if let Some(SecretText(value)) = &self.redis_userdb {
            let url = userdb_url(value).map_err(|e| ConfigError::invalid("redis-userdb", e))?;
            self.redis_userdb = Some(SecretText(url));
        }
        Ok(())
    }
}

/// `redis-userdb`'s value as a `redis://` or `rediss://` URL: a URL is checked and kept; coturn's
/// connection string (`ip=127.0.0.1 dbname=2 password=turn port=6379 connect_timeout=30`, every
/// part optional; `host`, `addr`… and `db`, `database`… and `pwd`, `secret`… as coturn spells
/// them; `tls=true` for TLS) is turned into one. Errors never show the password.
pub fn userdb_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix("redis://").or_else(|| value.strip_prefix("rediss://")) {
        let host = rest.split('/').next().unwrap_or("").rsplit('@').next().unwrap_or("");
        if host.is_empty() {
            return Err(format!("names no host: {}", redacted_url(value)));
        }
        return Ok(value.to_owned());
    }
    if value.contains("://") {
        return Err("must be a redis:// or rediss:// URL, or coturn's \"ip=… dbname=… password=… port=…\"".into());
    }
    let (mut host, mut port, mut db) = ("127.0.0.1".to_owned(), 6379u16, "0".to_owned());
    let (mut user, mut password, mut tls) = (String::new(), String::new(), false);
    for part in value.split_whitespace() {
        let Some((name, v)) = part.split_once('=') else {
            return Err("coturn's connection string is `name=value` parts separated by spaces".into());
        };
        match name {
            "host" | "ip" | "addr" | "ipaddr" | "hostaddr" => host = v.to_owned(),
            "dbname" | "db" | "database" => db = v.to_owned(),
            "user" | "uname" | "name" | "username" => user = v.to_owned(),
            "password" | "pwd" | "passwd" | "secret" => password = v.to_owned(),
            "port" | "p" => port = v.parse().map_err(|_| format!("port `{v}` is not a port number"))?,
            // Our own per-call timeouts bound every read.
            "connect_timeout" | "timeout" => {}
            "tls" | "ssl" => tls = matches!(v, "1" | "true" | "on" | "yes"),
            other => {
                return Err(format!(
                    "`{other}` of coturn's connection string has no equivalent (TLS options: use a rediss:// URL)"
                ));
            }
        }
    }
    if host.is_empty() || db.parse::<u32>().is_err() {
        return Err("coturn's connection string needs a host and a numeric dbname".into());
    }
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    let auth = match (user.is_empty(), password.is_empty()) {
        (true, true) => String::new(),
        (true, false) => format!(":{}@", percent_encode(&password)),
        (false, true) => format!("{}@", percent_encode(&user)),
        (false, false) => format!("{}:{}@", percent_encode(&user), percent_encode(&password)),
    };
    let scheme = if tls { "rediss" } else { "redis" };
    Ok(format!("{scheme}://{auth}{host}:{port}/{db}"))
}

/// `text` with every byte but RFC 3986's unreserved ones percent-encoded (for a URL's userinfo).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coturns_connection_string_becomes_a_url() {
        assert_eq!(userdb_url("redis://127.0.0.1:6379/2").unwrap(), "redis://127.0.0.1:6379/2");
        assert_eq!(
            userdb_url("ip=127.0.0.1 dbname=2 password=turn port=6380 connect_timeout=30").unwrap(),
            "redis://:turn@127.0.0.1:6380/2"
        );
        assert_eq!(userdb_url("").unwrap(), "redis://127.0.0.1:6379/0", "every part is optional");
        assert_eq!(userdb_url("host=::1 user=me pwd=p@ss/w tls=true").unwrap(), "rediss://me:p%40ss%2Fw@[::1]:6379/0");
        let err = userdb_url("ip=127.0.0.1 password=hunter2 ca=/etc/ca.pem").unwrap_err();
        assert!(err.contains("ca") && !err.contains("hunter2"), "{err}");
        let err = userdb_url("redis://:hunter2@/0").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(userdb_url("http://x").is_err());
        assert!(userdb_url("port=http").is_err());
        assert!(userdb_url("dbname=two").is_err());
    }

    #[test]
    fn the_key_and_its_file_load_and_never_show_the_password() {
        let c = Config::from_toml_str("redis-userdb = \"ip=127.0.0.1 dbname=3 password=hunter2\"\n").unwrap();
        assert_eq!(c.redis_userdb, Some(SecretText("redis://:hunter2@127.0.0.1:6379/3".into())));
        assert!(c.has_credentials(), "the userdb is a credential source: no development default");
        assert!(!format!("{c:?}").contains("hunter2"));
        let err = Config::from_toml_str("redis-userdb = \"ip=x password=hunter2 bogus=1\"\n").unwrap_err().to_string();
        assert!(err.contains("redis-userdb") && !err.contains("hunter2"), "{err}");

        let dir = std::env::temp_dir().join(format!("switchback-userdb-{}", crate::random::u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("userdb");
        std::fs::write(&file, "# coturn's database\nredis://:pw@127.0.0.1:6379/2\n").unwrap();
        let toml = format!("redis-userdb-file = \"{}\"\n", file.display());
        let c = Config::from_toml_str(&toml).unwrap();
        assert_eq!(c.redis_userdb, Some(SecretText("redis://:pw@127.0.0.1:6379/2".into())));
        let same = format!("{toml}redis-userdb = \"redis://:pw@127.0.0.1:6379/2\"\n");
        assert!(Config::from_toml_str(&same).is_ok());
        let both = format!("{toml}redis-userdb = \"redis://127.0.0.1:1\"\n");
        let err = Config::from_toml_str(&both).unwrap_err().to_string();
        assert!(err.contains("not both") && !err.contains(":pw@"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_userdb_joins_the_files_credentials_and_overrides_its_quotas() {
        let file = "realm = \"north.gov\"\nstatic-auth-secret = \"file\"\nusers = { gorst = \"mine\" }\n\
                    user-quota = 5\nmax-bps = 7\n";
        let c = Config::from_toml_str(file).unwrap();
        let mut db = Userdb::default();
        db.add_key("gorst", "7da2270ccfa49786e0115366d3a3d14d");
        db.add_key("ninefingers", "BC807EE29DF3C9FFA736523FB2C4E8EE");
        db.add_key("bad", "7da2");
        db.add_key("a:b", "7da2270ccfa49786e0115366d3a3d14d");
        db.add_password("whirrun", "cold");
        db.add_password("ninefingers", "ignored: the key wins");
        db.secrets = vec![SecretText("bloody9".into()), SecretText("file".into()), SecretText("logen".into())];
        db.user_quota = Some(2);
        db.total_quota = Some(12000);
        let merged = c.clone().with_userdb(&db);
        assert_eq!(merged.users["gorst"], SecretText("mine".into()), "the file's user wins");
        assert_eq!(merged.users["ninefingers"], SecretText("0xbc807ee29df3c9ffa736523fb2c4e8ee".into()));
        assert_eq!(merged.users["whirrun"], SecretText("cold".into()));
        assert!(!merged.users.contains_key("bad") && !merged.users.contains_key("a:b"));
        assert_eq!(db.skipped.len(), 2, "{:?}", db.skipped);
        let secrets: Vec<&str> = merged.static_auth_secret.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(secrets, ["file", "bloody9", "logen"], "the file's first secret still mints");
        assert_eq!((merged.user_quota, merged.total_quota, merged.max_bps), (2, 12000, 7));
        let auth = merged.auth_config().unwrap().unwrap();
        assert_eq!(auth.users.len(), 3);
        assert!(!format!("{db:?}").contains("cold") && !format!("{db:?}").contains("bloody9"));
        assert_eq!(c.clone().with_userdb(&Userdb::default()), c, "an empty database changes nothing");
        assert_eq!(Config::default().userdb_realm(), crate::config::DEFAULT_REALM);
    }
}
