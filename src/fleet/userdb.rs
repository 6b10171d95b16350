//! Reads coturn's Redis user database (`redis-userdb`) for one realm: the keys coturn's
//! `turnadmin` writes and `dbd_redis.c` reads (`turndb/schema.userdb.redis`), listed in
//! `config::Userdb`. Users are found with `SCAN … MATCH` (not `KEYS`, which blocks the server) and
//! read with `MGET`; the secrets are `SMEMBERS` of the realm's set; the realm's options are one
//! `MGET`. Left out: coturn's admin users (`turn/admin_user/*`), `turn/origin/*` (switchback serves
//! one realm), oAuth keys (`turn/oauth/kid/*`) and the realm's peer lists
//! (`allowed-peer-ip`/`denied-peer-ip` sets).

use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::FleetError;
use crate::config::Userdb;

/// `SCAN` rounds at most (each asks for 1000 keys): bounds a read of a huge or changing database.
const MAX_SCAN_ROUNDS: usize = 10_000;

/// Reads the realm's users, secrets and options from the database at `url`, all of it within
/// `timeout`. Errors never show the URL.
pub async fn read_userdb(url: &str, realm: &str, timeout: Duration) -> Result<Userdb, FleetError> {
    match tokio::time::timeout(timeout, read(url, realm, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(FleetError::Timeout(timeout)),
    }
}

fn backend(e: redis::RedisError) -> FleetError {
    FleetError::Backend(e.to_string())
}

async fn read(url: &str, realm: &str, timeout: Duration) -> Result<Userdb, FleetError> {
    let client = redis::Client::open(url).map_err(|e| FleetError::Url(format!("{:?}", e.kind())))?;
    let config =
        redis::AsyncConnectionConfig::new().set_connection_timeout(Some(timeout)).set_response_timeout(Some(timeout));
    let mut con = client.get_multiplexed_async_connection_with_config(&config).await.map_err(backend)?;
    let base = format!("turn/realm/{realm}/");
    let mut db = Userdb::default();
    for (name, value) in users(&mut con, &base, "key").await? {
        db.add_key(&name, &value);
    }
    for (name, value) in users(&mut con, &base, "password").await? {
        db.add_password(&name, &value);
    }
    let mut secrets: Vec<String> =
        redis::cmd("SMEMBERS").arg(format!("{base}secret")).query_async(&mut con).await.map_err(backend)?;
    secrets.sort();
    secrets.dedup();
    db.secrets = secrets.into_iter().filter(|s| !s.is_empty()).map(crate::config::SecretText).collect();
    let options: Vec<Option<String>> = redis::cmd("MGET")
        .arg(format!("{base}user-quota"))
        .arg(format!("{base}total-quota"))
        .arg(format!("{base}max-bps"))
        .query_async(&mut con)
        .await
        .map_err(backend)?;
    let mut option = |i: usize, name: &str| -> Option<u64> {
        let text = options.get(i)?.as_deref()?;
        match text.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                db.skipped.push(format!("{name}: `{text}` is not a whole number"));
                None
            }
        }
    };
    let (user_quota, total_quota, max_bps) = (option(0, "user-quota"), option(1, "total-quota"), option(2, "max-bps"));
    db.user_quota = user_quota.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    db.total_quota = total_quota.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    db.max_bps = max_bps;
    Ok(db)
}

/// Every `<base>user/<name>/<leaf>` string: (name, value). Keys that vanish between the scan and
/// the read, or are not strings, are left out.
async fn users(con: &mut MultiplexedConnection, base: &str, leaf: &str) -> Result<Vec<(String, String)>, FleetError> {
    let prefix = format!("{base}user/");
    let suffix = format!("/{leaf}");
    let pattern = format!("{}*{}", glob_escape(&prefix), glob_escape(&suffix));
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    for _ in 0..MAX_SCAN_ROUNDS {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(con)
            .await
            .map_err(backend)?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    keys.sort();
    keys.dedup();
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        let values: Vec<redis::Value> = redis::cmd("MGET").arg(chunk).query_async(con).await.map_err(backend)?;
        for (key, value) in chunk.iter().zip(values) {
            let Some(name) = key.strip_prefix(&prefix).and_then(|k| k.strip_suffix(&suffix)) else { continue };
            let value: Option<String> = redis::from_redis_value(value).ok();
            if let Some(value) = value {
                found.push((name.to_owned(), value));
            }
        }
    }
    Ok(found)
}

/// `text` with Redis glob's special characters (`*?[]\`) escaped, so a realm or a prefix matches
/// only itself.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_of_a_realm_match_only_themselves() {
        assert_eq!(glob_escape("turn/realm/a*b?[c]\\/"), "turn/realm/a\\*b\\?\\[c\\]\\\\/");
        assert_eq!(glob_escape("north.gov"), "north.gov");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_an_error_soon_that_never_shows_the_password() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
        let started = std::time::Instant::now();
        let err = read_userdb(&url, "r", Duration::from_millis(500)).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "bounded");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
