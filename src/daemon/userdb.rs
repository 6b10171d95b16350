//! coturn's Redis user database (`redis-userdb`, issue #16 item 8) joined to the configuration at
//! start ([`with_userdb`]) and on every reload ([`with_userdb_blocking`]): what the realm holds
//! in Redis becomes users, REST secrets and quotas of the [`Config`] before it is turned into the
//! core's options, so nothing downstream knows where a credential came from. A database that
//! cannot be read is logged (never with the URL's password) and the node serves with what the
//! file gives — or, on a reload, with the last read of the same database ([`LastRead`]), so a
//! Redis that is away during a SIGHUP does not take the database's users away. It never stops the
//! daemon or refuses a reload.

use std::sync::Mutex;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::{Config, Userdb, redacted_url};

/// How long one read of the database may take, connecting included.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// The last successful read of the user database, kept for a reload during which it cannot be read.
#[derive(Default)]
pub struct LastRead(Mutex<Option<(String, Userdb)>>);

impl LastRead {
    fn store(&self, source: String, db: &Userdb) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((source, db.clone()));
    }

    fn get(&self, source: &str) -> Option<Userdb> {
        let last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref().filter(|(s, _)| s == source).map(|(_, db)| db.clone())
    }
}

/// `config` with the user database's entries for its realm; unchanged without `redis-userdb`.
/// When the database cannot be read (logged), with `last`'s read of the same database and realm if
/// there is one, else unchanged.
pub async fn with_userdb(config: Config, last: &LastRead) -> Config {
    let Some(url) = config.redis_userdb.as_ref().map(|u| u.0.clone()) else { return config };
    let realm = config.userdb_realm().to_owned();
    let source = format!("{url}\n{realm}");
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
