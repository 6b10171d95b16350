//! Fleet mode (`redis-url`) against a real `redis-server` started by each test on a free loopback
//! port: the Redis backend on its own (atomic lease admission, expiry, a dead node's leases,
//! revocations published and re-read after a reconnection, the usage stream and counters), then
//! several `switchback` daemons sharing one server (a revocation made on one node ends a live
//! allocation on another, usage of allocations on three nodes, redirection to the least-loaded
//! sibling, the fleet in `/v1/relay-configuration`, a node whose Redis is unreachable), and
//! coturn's Redis user database (`redis-userdb`) as a source of users, REST secrets and quotas.
//! Without `redis-server` each test prints SKIP (and fails under `CI=true`).

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod nodes;
mod userdb;
