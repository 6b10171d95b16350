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

/// The database of the configuration in force and the last successful read of it: kept for a
/// reload during which it cannot be read, and compared by [`watch`].
#[derive(Default)]
pub struct LastRead(Mutex<State>);

#[derive(Default)]
struct State {
    /// Where the configuration in force reads (none: no `redis-userdb`).
    source: Option<Source>,
    /// The last successful read and where it came from.
    read: Option<(Source, Userdb)>,
}

impl LastRead {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn in_force(&self, source: Option<Source>) {
        self.state().source = source;
    }

    fn store(&self, source: Source, db: &Userdb) {
        self.state().read = Some((source, db.clone()));
    }

    fn get(&self, source: &Source) -> Option<Userdb> {
        self.state().read.as_ref().filter(|(s, _)| s == source).map(|(_, db)| db.clone())
    }

    fn source(&self) -> Option<Source> {
        self.state().source.clone()
    }
}

/// Every `redis-userdb-interval` seconds (when not 0), reads the database of the configuration in
/// force and reloads the configuration through `reloader` when the
/// realm's users, secrets or quotas differ from what is in force. A failed read is logged at debug
/// level (the reload path logs its own); the task ends with the daemon.
pub fn watch(config: &Config, reloader: std::sync::Arc<super::Reloader>) -> Option<tokio::task::JoinHandle<()>> {
    let interval = Duration::from_secs(config.redis_userdb_interval);
    if config.redis_userdb.is_none() || interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // A reload may have changed the URL or the realm, or removed the key.
            let Some(source) = reloader.userdb.source() else { continue };
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
    let Some(url) = config.redis_userdb.as_ref().map(|u| u.0.clone()) else {
        last.in_force(None);
        return config;
    };
    let realm = config.userdb_realm().to_owned();
    let source = Source { url: url.clone(), realm: realm.clone() };
    last.in_force(Some(source.clone()));
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
        last.in_force(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretText;

    #[tokio::test]
    async fn the_database_in_force_follows_the_configuration_and_a_failed_read_keeps_the_last() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("redis://127.0.0.1:{port}/0");
        let config = Config { redis_userdb: Some(SecretText(url.clone())), ..Config::default() };
        let last = LastRead::default();
        assert_eq!(with_userdb(config.clone(), &last).await, config, "unreachable, nothing read yet: unchanged");
        let source = Source { url, realm: config.userdb_realm().to_owned() };
        assert!(last.source() == Some(source.clone()));

        let mut db = Userdb::default();
        db.add_password("gorst", "hero");
        last.store(source.clone(), &db);
        let kept = with_userdb(config.clone(), &last).await;
        assert_eq!(kept.users["gorst"], SecretText("hero".into()), "the last read stays in force");
        let other_realm = Config { realm: Some("elsewhere".into()), ..config.clone() };
        assert!(with_userdb(other_realm, &last).await.users.is_empty(), "a read of another realm is not used");

        assert_eq!(with_userdb(Config::default(), &last).await, Config::default());
        assert!(last.source().is_none(), "redis-userdb removed: nothing to watch");
    }
}
