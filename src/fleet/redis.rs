//! The fleet state in Redis or Valkey (`redis-url`): redis-rs' connection manager (one multiplexed
//! connection, reconnected with backoff), Lua scripts for what must be atomic, a separate
//! connection for the revocation channel.
//!
//! Keys, under the prefix (`redis-prefix`, default `switchback:`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `leases` | sorted set | every live lease id, scored by expiry (Unix ms) |
//! | `lease:user:<user>` | sorted set | the user's lease ids, scored by expiry |
//! | `lease:owner` | hash | lease id → `<node>\n<user>` |
//! | `lease:node:<node>` | set | the node's lease ids |
//! | `lease:nodes` | set | the nodes holding leases |
//! | `heartbeat:<node>` | string, PX | the node's load (JSON), gone when it stops beating |
//! | `nodes` | set | the nodes that sent a heartbeat (pruned when read) |
//! | `revoked` | sorted set | revoked entries, scored by expiry (`+inf`: for ever) |
//! | `revocations` | channel | each revoked entry, as it is revoked |
//! | `usage:user:<user>` | hash | `bytes`, `packets`, `allocation_ms` (HINCRBY) |
//! | `usage` | stream | one entry per ended allocation, field `record`: its JSON usage record |
//!
//! Lease ids, node ids and users are interpolated into key names inside the scripts, so the
//! backend needs one Redis (or a primary with replicas), not Redis Cluster.

use std::time::Duration;

use futures_util::StreamExt as _;
use redis::aio::ConnectionManager;
use redis::{Client, Script};
use tokio::sync::mpsc;

use super::{
    Admitted, BoxFuture, FleetBackend, FleetError, Lease, LeaseLimit, LeaseLimits, NodeLoad, RevocationNotice,
    USAGE_STREAM_MAXLEN, UsageBatch,
};

/// Drops one lease from every structure (shared by the scripts).
const DROP: &str = r"
local function drop(p, id)
  local owner = redis.call('HGET', p .. 'lease:owner', id)
  redis.call('ZREM', p .. 'leases', id)
  if owner then
    local nl = string.find(owner, '\n', 1, true)
    if nl then
      redis.call('SREM', p .. 'lease:node:' .. string.sub(owner, 1, nl - 1), id)
      redis.call('ZREM', p .. 'lease:user:' .. string.sub(owner, nl + 1), id)
    end
    redis.call('HDEL', p .. 'lease:owner', id)
  end
end
";

/// ARGV: prefix, user, lease id, node, expires (ms), now (ms), per-user limit, total limit (0: none).
/// Returns 1 (admitted), -1 (per-user limit), -2 (total limit).
const ADMIT: &str = r"
local p, user, id, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local expires, now = tonumber(ARGV[5]), tonumber(ARGV[6])
local per_user, total = tonumber(ARGV[7]), tonumber(ARGV[8])
for _, n in ipairs(redis.call('SMEMBERS', p .. 'lease:nodes')) do
  if n ~= node and redis.call('EXISTS', p .. 'heartbeat:' .. n) == 0 then
    for _, lid in ipairs(redis.call('SMEMBERS', p .. 'lease:node:' .. n)) do drop(p, lid) end
    redis.call('DEL', p .. 'lease:node:' .. n)
    redis.call('SREM', p .. 'lease:nodes', n)
  end
end
for _, lid in ipairs(redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', now, 'LIMIT', 0, 1000)) do drop(p, lid) end
local ukey = p .. 'lease:user:' .. user
for _, lid in ipairs(redis.call('ZRANGEBYSCORE', ukey, '-inf', now)) do drop(p, lid) end
redis.call('ZREMRANGEBYSCORE', ukey, '-inf', now)
if redis.call('ZSCORE', p .. 'leases', id) then
  redis.call('ZADD', p .. 'leases', expires, id)
  redis.call('ZADD', ukey, expires, id)
  return 1
end
if per_user > 0 and redis.call('ZCARD', ukey) >= per_user then return -1 end
if total > 0 and redis.call('ZCARD', p .. 'leases') >= total then return -2 end
redis.call('ZADD', p .. 'leases', expires, id)
redis.call('ZADD', ukey, expires, id)
redis.call('HSET', p .. 'lease:owner', id, node .. '\n' .. user)
redis.call('SADD', p .. 'lease:node:' .. node, id)
redis.call('SADD', p .. 'lease:nodes', node)
return 1
";

/// ARGV: prefix, user, lease id, expires (ms). Returns 1 when the lease was held.
const RENEW: &str = r"
local p, user, id, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if not redis.call('ZSCORE', p .. 'leases', id) then return 0 end
redis.call('ZADD', p .. 'leases', 'XX', expires, id)
redis.call('ZADD', p .. 'lease:user:' .. user, 'XX', expires, id)
return 1
";

/// ARGV: prefix, lease id.
const RELEASE: &str = r"
drop(ARGV[1], ARGV[2])
return 1
";

/// How a Redis backend connects.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    /// `redis://` or `rediss://` (TLS) URL, with the password if any.
    pub url: String,
    /// Key prefix (`redis-prefix`).
    pub prefix: String,
    /// How long one call may take, connecting included.
    pub timeout: Duration,
}

/// The fleet state in Redis/Valkey.
pub struct RedisBackend {
    client: Client,
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    admit: Script,
    renew: Script,
    release: Script,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may carry a password.
        f.debug_struct("RedisBackend").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn backend(e: redis::RedisError) -> FleetError {
    FleetError::Backend(e.to_string())
}

impl RedisBackend {
    /// A backend on `options.url`; connects lazily (a Redis that is down does not stop the node,
    /// every call fails until it is back).
    pub fn new(options: RedisOptions) -> Result<RedisBackend, FleetError> {
        // The URL itself never goes into an error: it may carry a password.
        let client = Client::open(options.url.as_str()).map_err(|e| FleetError::Url(format!("{:?}", e.kind())))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.timeout))
            .set_response_timeout(Some(options.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(backend)?;
        Ok(RedisBackend {
            client,
            manager,
            prefix: options.prefix,
            timeout: options.timeout,
            admit: Script::new(&format!("{DROP}{ADMIT}")),
            renew: Script::new(RENEW),
            release: Script::new(&format!("{DROP}{RELEASE}")),
        })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Runs `f` on a connection; once more when the connection had dropped (the manager reconnects
    /// after the first failure). Both attempts together are bounded by twice the timeout. For
    /// idempotent calls only.
    async fn with<T, F>(&self, f: impl Fn(ConnectionManager) -> F) -> Result<T, FleetError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        self.bounded(async {
            match self.once(&f).await {
                Err(Retry::Dropped(_)) => self.once(&f).await,
                other => other,
            }
        })
        .await
    }

    /// `attempts`, bounded by twice the timeout (the manager's own timeouts bound each try).
    async fn bounded<T>(&self, attempts: impl Future<Output = Result<T, Retry>>) -> Result<T, FleetError> {
        let limit = self.timeout * 2;
        match tokio::time::timeout(limit, attempts).await {
            Ok(result) => result.map_err(FleetError::from),
            Err(_) => Err(FleetError::Timeout(limit)),
        }
    }

    /// One attempt of `f`.
    async fn once<T, F>(&self, f: &impl Fn(ConnectionManager) -> F) -> Result<T, Retry>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match f(self.manager.clone()).await {
            Ok(value) => Ok(value),
            Err(e) if e.is_connection_dropped() || e.is_io_error() => Err(Retry::Dropped(e)),
            Err(e) => Err(Retry::Failed(backend(e))),
        }
    }
}

/// A failed attempt: worth a second one on a fresh connection, or not.
enum Retry {
    Dropped(redis::RedisError),
    Failed(FleetError),
}

impl From<Retry> for FleetError {
    fn from(retry: Retry) -> FleetError {
        match retry {
            Retry::Dropped(e) => backend(e),
            Retry::Failed(e) => e,
        }
    }
}

/// A revocation subscription checks its connection this often.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Revocation subscriptions reconnect after at most this long.
const RESUBSCRIBE_MAX: Duration = Duration::from_secs(5);

/// The subscriber: subscribe, say [`RevocationNotice::Resync`], forward messages; on a lost
/// connection, again after a backoff. Ends when `tx` is closed.
async fn subscription(client: Client, channel: String, timeout: Duration, tx: mpsc::Sender<RevocationNotice>) {
    let mut backoff = Duration::from_millis(100);
    let mut failures = 0u64;
    loop {
        let connected = tokio::time::timeout(timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        })
        .await;
        match connected {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(100);
                if failures > 0 {
                    tracing::info!(failures, "fleet: revocation channel subscribed again");
                    failures = 0;
                }
                if tx.send(RevocationNotice::Resync).await.is_err() {
                    return;
                }
                let (mut sink, mut messages) = pubsub.split();
                // A connection that died silently (no FIN: a partition) is found by a PING.
                let mut keepalive = tokio::time::interval(KEEPALIVE);
                keepalive.tick().await;
                loop {
                    tokio::select! {
                        message = messages.next() => match message {
                            Some(message) => {
                                let Ok(entry) = message.get_payload::<String>() else { continue };
                                if tx.send(RevocationNotice::Revoked(entry)).await.is_err() {
                                    return;
                                }
                            }
                            None => break,
                        },
                        _ = keepalive.tick() => {
                            if !matches!(tokio::time::timeout(timeout, sink.ping::<redis::Value>()).await, Ok(Ok(_))) {
                                break;
                            }
                        }
                        () = tx.closed() => return,
                    }
                }
                tracing::warn!("fleet: revocation channel lost, subscribing again");
            }
            Ok(Err(e)) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "fleet: revocation channel: cannot subscribe (retrying)");
                }
            }
            Err(_) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(?timeout, "fleet: revocation channel: no answer (retrying)");
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(RESUBSCRIBE_MAX);
    }
}

impl FleetBackend for RedisBackend {
    fn admit<'a>(
        &'a self,
        lease: Lease<'a>,
        limits: LeaseLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Admitted, FleetError>> {
        Box::pin(async move {
            let answer: i64 = self
                .with(|mut c| async move {
                    self.admit
                        .arg(&self.prefix)
                        .arg(lease.user)
                        .arg(lease.lease_id)
                        .arg(lease.node)
                        .arg(lease.expires_at_ms)
                        .arg(now_ms)
                        .arg(limits.per_user)
                        .arg(limits.total)
                        .invoke_async(&mut c)
                        .await
                })
                .await?;
            match answer {
                1 => Ok(Admitted::Yes),
                -1 => Ok(Admitted::Refused(LeaseLimit::PerUser)),
                -2 => Ok(Admitted::Refused(LeaseLimit::Total)),
                other => Err(FleetError::Answer(format!("admit returned {other}"))),
            }
        })
    }

    fn renew<'a>(
        &'a self,
        user: &'a str,
        lease_id: &'a str,
        expires_at_ms: u64,
    ) -> BoxFuture<'a, Result<bool, FleetError>> {
        Box::pin(async move {
            let held: i64 = self
                .with(|mut c| async move {
                    self.renew.arg(&self.prefix).arg(user).arg(lease_id).arg(expires_at_ms).invoke_async(&mut c).await
                })
                .await?;
            Ok(held == 1)
        })
    }

    fn release<'a>(&'a self, _user: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let _: i64 = self
                .with(|mut c| async move { self.release.arg(&self.prefix).arg(lease_id).invoke_async(&mut c).await })
                .await?;
            Ok(())
        })
    }

    fn leases<'a>(&'a self, user: &'a str, now_ms: u64) -> BoxFuture<'a, Result<(u64, u64), FleetError>> {
        Box::pin(async move {
            let after = format!("({now_ms}");
            let (user_key, total_key) = (self.key(&format!("lease:user:{user}")), self.key("leases"));
            let (after, user_key, total_key) = (&after, &user_key, &total_key);
            self.with(|mut c| async move {
                redis::pipe()
                    .cmd("ZCOUNT")
                    .arg(user_key)
                    .arg(after)
                    .arg("+inf")
                    .cmd("ZCOUNT")
                    .arg(total_key)
                    .arg(after)
                    .arg("+inf")
                    .query_async(&mut c)
                    .await
            })
            .await
        })
    }

    fn heartbeat<'a>(&'a self, load: &'a NodeLoad, ttl_ms: u64) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let json = serde_json::to_string(load).map_err(|e| FleetError::Answer(e.to_string()))?;
            let (beat, nodes) = (self.key(&format!("heartbeat:{}", load.node)), self.key("nodes"));
            let (json, beat, nodes) = (&json, &beat, &nodes);
            self.with(|mut c| async move {
                redis::pipe()
                    .cmd("SET")
                    .arg(beat)
                    .arg(json)
                    .arg("PX")
                    .arg(ttl_ms.max(1))
                    .ignore()
                    .cmd("SADD")
                    .arg(nodes)
                    .arg(&load.node)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn leave<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let (beat, nodes) = (&self.key(&format!("heartbeat:{node}")), &self.key("nodes"));
            self.with(|mut c| async move {
                redis::pipe()
                    .cmd("DEL")
                    .arg(beat)
                    .ignore()
                    .cmd("SREM")
                    .arg(nodes)
                    .arg(node)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn nodes(&self, _now_ms: u64) -> BoxFuture<'_, Result<Vec<NodeLoad>, FleetError>> {
        Box::pin(async move {
            let nodes_key = &self.key("nodes");
            let names: Vec<String> = self
                .with(|mut c| async move { redis::cmd("SMEMBERS").arg(nodes_key).query_async(&mut c).await })
                .await?;
            if names.is_empty() {
                return Ok(Vec::new());
            }
            let keys: &Vec<String> = &names.iter().map(|n| self.key(&format!("heartbeat:{n}"))).collect();
            let beats: Vec<Option<String>> =
                self.with(|mut c| async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await }).await?;
            let mut live = Vec::with_capacity(beats.len());
            let mut gone = Vec::new();
            for (name, beat) in names.iter().zip(beats) {
                match beat.and_then(|b| serde_json::from_str::<NodeLoad>(&b).ok()) {
                    Some(load) => live.push(load),
                    None => gone.push(name.clone()),
                }
            }
            if !gone.is_empty() {
                // A node that stopped beating: forget it (a late heartbeat adds it back).
                let gone = &gone;
                let _ =
                    self.with(|mut c| async move {
                        redis::cmd("SREM").arg(nodes_key).arg(gone).query_async::<()>(&mut c).await
                    })
                    .await;
            }
            Ok(live)
        })
    }

    fn revoke<'a>(&'a self, entry: &'a str, expires_at_ms: Option<u64>) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            let score = expires_at_ms.map_or_else(|| "+inf".to_owned(), |ms| ms.to_string());
            let (set, channel) = (self.key("revoked"), self.key("revocations"));
            let (score, set, channel) = (&score, &set, &channel);
            self.with(|mut c| async move {
                redis::pipe()
                    .atomic()
                    .cmd("ZADD")
                    .arg(set)
                    .arg("GT")
                    .arg(score)
                    .arg(entry)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(channel)
                    .arg(entry)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
        })
    }

    fn revocations(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<String>, FleetError>> {
        Box::pin(async move {
            let set = &self.key("revoked");
            let (entries,): (Vec<String>,) = self
                .with(|mut c| async move {
                    redis::pipe()
                        .cmd("ZREMRANGEBYSCORE")
                        .arg(set)
                        .arg("-inf")
                        .arg(now_ms)
                        .ignore()
                        .cmd("ZRANGE")
                        .arg(set)
                        .arg(format!("({now_ms}"))
                        .arg("+inf")
                        .arg("BYSCORE")
                        .query_async(&mut c)
                        .await
                })
                .await?;
            Ok(entries)
        })
    }

    fn subscribe(&self) -> mpsc::Receiver<RevocationNotice> {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(subscription(self.client.clone(), self.key("revocations"), self.timeout, tx));
        rx
    }

    fn add_usage<'a>(&'a self, batch: &'a UsageBatch) -> BoxFuture<'a, Result<(), FleetError>> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            pipe.atomic();
            for (user, usage) in &batch.users {
                let key = self.key(&format!("usage:user:{user}"));
                for (field, n) in
                    [("bytes", usage.bytes), ("packets", usage.packets), ("allocation_ms", usage.allocation_ms)]
                {
                    pipe.cmd("HINCRBY").arg(&key).arg(field).arg(n).ignore();
                }
            }
            let stream = self.key("usage");
            for record in &batch.records {
                pipe.cmd("XADD")
                    .arg(&stream)
                    .arg("MAXLEN")
                    .arg("~")
                    .arg(USAGE_STREAM_MAXLEN)
                    .arg("*")
                    .arg("record")
                    .arg(record)
                    .ignore();
            }
            // Not idempotent (HINCRBY, XADD): one attempt; the flusher keeps a failed batch.
            let pipe = &pipe;
            self.bounded(self.once(&|mut c: ConnectionManager| async move { pipe.query_async::<()>(&mut c).await }))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(url: &str) -> RedisOptions {
        RedisOptions { url: url.into(), prefix: "t:".into(), timeout: Duration::from_millis(200) }
    }

    #[tokio::test]
    async fn urls_open_lazily_with_tls_and_errors_never_show_them() {
        // Nothing listens there: opening does not connect.
        assert!(RedisBackend::new(options("redis://:pw@127.0.0.1:1/0")).is_ok());
        assert!(RedisBackend::new(options("rediss://:pw@127.0.0.1:1/0")).is_ok(), "TLS is built in");
        let err = RedisBackend::new(options("http://:hunter2@127.0.0.1:1")).unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        // An unreachable server: an error soon, bounded by the timeout, never the URL.
        let b = RedisBackend::new(options("redis://:hunter2@127.0.0.1:1/0")).unwrap();
        let started = std::time::Instant::now();
        let err = b.revocations(0).await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(!err.contains("hunter2"), "{err}");
    }
}
