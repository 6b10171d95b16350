//! coturn's Redis user database (`redis-userdb`, issue #16 item 8) joined to the configuration at
//! start ([`with_userdb`]) and on every reload ([`with_userdb_blocking`]): what the realm holds
//! in Redis becomes users, REST secrets and quotas of the [`Config`] before it is turned into the
//! core's options, so nothing downstream knows where a credential came from. A database that
//! cannot be read is logged (never with the URL's password) and the node serves with what the
//! file gives — or, on a reload, with the last read of the same database ([`LastRead`]), so a
//! Redis that is away during a SIGHUP does not take the database's users away. It never stops the
//! daemon or refuses a reload. Every `redis-userdb-interval` seconds [`watch`] reads it again and
//! reloads when it changed, so a user `turnadmin` adds works without a SIGHUP.

use std::sync::Mutex;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{Config, Userdb, redacted_url};

/// How long one read of the database may take, connecting included.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a database is read: its URL and the realm.
#[derive(Clone, PartialEq, Eq)]
struct Source {
    url: String,
    realm: String,
}

/// The last successful read of the user database, kept for a reload during which it cannot be read
/// and compared by [`watch`].
#[derive(Default)]
pub struct LastRead(Mutex<Option<(Source, Userdb)>>);

impl LastRead {
    fn store(&self, source: Source, db: &Userdb) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((source, db.clone()));
    }

    fn get(&self, source: &Source) -> Option<Userdb> {
        let last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().filter(|(s, _)| s == source).map(|(_, db)| db.clone())
    }

    fn source(&self) -> Option<Source> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(s, _)| s.clone())
    }
}

/// Every `redis-userdb-interval` seconds (when not 0), reads the database the last read came from
/// (or `config`'s, before any succeeded) and reloads the configuration through `reloader` when the
/// realm's users, secrets or quotas differ from what is in force. A failed read is logged at debug
/// level (the reload path logs its own); the task ends with the daemon.
pub fn watch(config: &Config, reloader: std::sync::Arc<super::Reloader>) -> Option<tokio::task::JoinHandle<()>> {
    let url = config.redis_userdb.as_ref()?.0.clone();
    let start = Source { url, realm: config.userdb_realm().to_owned() };
    let interval = Duration::from_secs(config.redis_userdb_interval);
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let source = reloader.userdb.source().unwrap_or_else(|| start.clone());
            let db = match read(&source.url, &source.realm).await {
                Ok(db) => db,
                Err(e) => {
                    tracing::debug!(url = %redacted_url(&source.url), error = %e, "redis-userdb: periodic read failed");
                    continue;
                }
            };
            if reloader.userdb.get(&source).as_ref() == Some(&db) {
                continue;
            }
            info!(realm = %source.realm, "redis-userdb: coturn's user database changed; reloading");
            let r = reloader.clone();
            let _ = tokio::task::spawn_blocking(move || r.reload("redis-userdb changed")).await;
        }
    }))
}

/// `config` with the user database's entries for its realm; unchanged without `redis-userdb`.
/// When the database cannot be read (logged), with `last`'s read of the same database and realm if
/// there is one, else unchanged.
pub async fn with_userdb(config: Config, last: &LastRead) -> Config {
    let Some(url) = config.redis_userdb.as_ref().map(|u| u.0.clone()) else { return config };
    let realm = config.userdb_realm().to_owned();
    let source = Source { url: url.clone(), realm: realm.clone() };
    match read(&url, &realm).await {
        Ok(db) => {
            for why in &db.skipped {
                warn!(realm = %realm, "redis-userdb: left out {why}");
            }
            info!(
                url = %redacted_url(&url),
                realm = %realm,
                users = db.users.len(),
                rest_secrets = db.secrets.len(),
                user_quota = ?db.user_quota,
                total_quota = ?db.total_quota,
                max_bps = ?db.max_bps,
                "redis-userdb: coturn's user database read"
            );
            last.store(source, &db);
            config.with_userdb(&db)
        }
        Err(e) => match last.get(&source) {
            Some(db) => {
                warn!(
                    url = %redacted_url(&url),
                    realm = %realm,
                    error = %e,
                    "redis-userdb: cannot read coturn's user database; keeping what the last read gave"
                );
                config.with_userdb(&db)
            }
            None => {
                warn!(
                    url = %redacted_url(&url),
                    realm = %realm,
                    error = %e,
                    "redis-userdb: cannot read coturn's user database; serving with the configuration file's \
                     credentials"
                );
                config
            }
        },
    }
}

/// [`with_userdb`] from a thread that may block (a reload runs in `spawn_blocking`); without a
/// tokio runtime around, on one of its own.
pub fn with_userdb_blocking(config: Config, last: &LastRead) -> Config {
    if config.redis_userdb.is_none() {
        return config;
    }
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(with_userdb(config, last)),
        Err(_) => match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(with_userdb(config, last)),
            Err(e) => {
                warn!(error = %e, "redis-userdb: no runtime to read coturn's user database");
                config
            }
        },
    }
}

#[cfg(feature = "fleet")]
async fn read(url: &str, realm: &str) -> Result<crate::config::Userdb, crate::fleet::FleetError> {
    crate::fleet::userdb::read_userdb(url, realm, READ_TIMEOUT).await
}

#[cfg(not(feature = "fleet"))]
async fn read(_: &str, _: &str) -> Result<crate::config::Userdb, &'static str> {
    Err("this build has no Redis client (feature `fleet`)")
}
