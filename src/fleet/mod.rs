//! Fleet mode: what several switchback nodes share — allocation leases (fleet-wide quotas),
//! heartbeats with each node's load (placement), revocations and usage — behind one
//! [`FleetBackend`] trait.
//!
//! [`MemoryBackend`] is one node on its own (today's behaviour; the unit tests' backend);
//! [`RedisBackend`] (feature `fleet`, `redis-url`) keeps the state in Redis or Valkey, so every node
//! pointed at the same server sees the same leases, revocations, usage and siblings. Only lifecycle
//! edges (Allocate, Refresh, delete) and periodic tasks (heartbeat, usage flush) talk to a backend,
//! never the per-packet path. The keys and scripts are listed in `docs/architecture.md`, "Fleet
//! mode".

mod memory;
#[cfg(feature = "fleet")]
mod redis;
#[cfg(feature = "fleet")]
pub mod userdb;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use memory::MemoryBackend;
#[cfg(feature = "fleet")]
pub use redis::{RedisBackend, RedisOptions};

/// The key prefix when `redis-prefix` is not set.
pub const DEFAULT_PREFIX: &str = "switchback:";

/// The usage stream's length at which old records are trimmed (approximately: `MAXLEN ~`).
pub const USAGE_STREAM_MAXLEN: u64 = 1_000_000;

/// What a backend call returns: a boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a backend call failed (the node goes on without it; the caller logs and counts).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The server answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Backend(String),
    /// No answer in time.
    #[error("redis: no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// `redis-url` is not a Redis URL.
    #[error("redis-url: {0}")]
    Url(String),
    /// An answer of an unexpected shape.
    #[error("redis: unexpected answer: {0}")]
    Answer(String),
}

/// One allocation lease: the allocation `lease_id` of `user` on `node`, until `expires_at_ms`
/// (Unix milliseconds; renewed by Refresh, RFC 8656 §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease<'a> {
    /// The user the quota counts against.
    pub user: &'a str,
    /// Unique across the fleet (an allocation id).
    pub lease_id: &'a str,
    /// `node-id` of the node holding the allocation.
    pub node: &'a str,
    /// When the lease ends unless renewed.
    pub expires_at_ms: u64,
}

/// The fleet-wide limits an admission checks (0: no limit): `user-quota`, `total-quota`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseLimits {
    /// Live leases per user.
    pub per_user: u32,
    /// Live leases in the whole fleet.
    pub total: u32,
}

/// Which limit refused a lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseLimit {
    /// The user has `per_user` live leases already (RFC 8656 §7.2: 486).
    PerUser,
    /// The fleet has `total` live leases already (486 too, RFC 8656 §7.2).
    Total,
}

/// The answer to an admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// The lease is held (or was held already: an admission is idempotent).
    Yes,
    /// Refused by a limit.
    Refused(LeaseLimit),
}

/// A client-facing address of a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAddress {
    /// `udp`, `tcp` or `tls`.
    pub transport: String,
    /// The address clients reach (the advertised address behind NAT).
    pub addr: SocketAddr,
}

/// What a node publishes with each heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// `node-id`.
    pub node: String,
    /// Live allocations.
    pub allocations: u64,
    /// Relayed bits per second (both directions) over the last interval.
    pub bitrate_bps: u64,
    /// CPU time used over the last interval, as a share of one core (2.0: two cores busy).
    pub cpu: f64,
    /// The node is draining: it takes no new allocation.
    pub draining: bool,
    /// The addresses clients reach it at.
    pub addresses: Vec<NodeAddress>,
    /// When the heartbeat was taken (Unix milliseconds).
    pub at_ms: u64,
}

impl NodeLoad {
    /// The order of placement: fewer allocations first, then less traffic, then less CPU.
    fn cost(&self) -> (u64, u64, u64) {
        (self.allocations, self.bitrate_bps, (self.cpu * 1000.0) as u64)
    }

    /// The address a client of `ipv4`'s family is sent to: UDP first, else any transport.
    pub fn address_for(&self, ipv4: bool) -> Option<SocketAddr> {
        let family = self.addresses.iter().filter(|a| a.addr.is_ipv4() == ipv4);
        let mut any = None;
        for a in family {
            if a.transport == "udp" {
                return Some(a.addr);
            }
            any = any.or(Some(a.addr));
        }
        any
    }
}

/// The alternates of node `own` (RFC 8489 §10 ALTERNATE-SERVER, one per family, what
/// `Admission::set_alternate` takes): the least-loaded live sibling with an address of each family,
/// draining siblings left out.
pub fn alternates(nodes: &[NodeLoad], own: &str) -> Vec<SocketAddr> {
    let mut siblings: Vec<&NodeLoad> = nodes.iter().filter(|n| n.node != own && !n.draining).collect();
    siblings.sort_by_key(|n| n.cost());
    [true, false].iter().filter_map(|v4| siblings.iter().find_map(|n| n.address_for(*v4))).collect()
}

/// The fleet's live nodes, least-loaded first (draining ones last).
pub fn by_load(mut nodes: Vec<NodeLoad>) -> Vec<NodeLoad> {
    nodes.sort_by_key(|n| (n.draining, n.cost()));
    nodes
}

/// Usage of one user, added to the fleet's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserUsage {
    /// Relayed bytes, both directions (payload only).
    pub bytes: u64,
    /// Relayed packets, both directions.
    pub packets: u64,
    /// Allocation time, milliseconds.
    pub allocation_ms: u64,
}

impl UserUsage {
    /// What was added since `earlier` (each field saturating at 0).
    pub fn since(self, earlier: UserUsage) -> UserUsage {
        UserUsage {
            bytes: self.bytes.saturating_sub(earlier.bytes),
            packets: self.packets.saturating_sub(earlier.packets),
            allocation_ms: self.allocation_ms.saturating_sub(earlier.allocation_ms),
        }
    }

    /// Adds `other` (saturating).
    pub fn add(&mut self, other: UserUsage) {
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.packets = self.packets.saturating_add(other.packets);
        self.allocation_ms = self.allocation_ms.saturating_add(other.allocation_ms);
    }
}

/// One flush of usage: counters per user and the ended allocations' records (JSON lines, the
/// format of `docs/usage.md`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageBatch {
    /// Usage to add, per user.
    pub users: Vec<(String, UserUsage)>,
    /// Usage records to append to the stream.
    pub records: Vec<String>,
}

impl UsageBatch {
    /// Nothing to flush.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.records.is_empty()
    }
}

/// What a revocation subscription delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevocationNotice {
    /// (Re)connected: messages may have been missed, read the whole set ([`FleetBackend::revocations`]).
    Resync,
    /// An entry (user or token id) revoked on some node.
    Revoked(String),
}

/// The state a fleet shares. Every method is one round trip (or one script) and bounded in time by
/// the backend; none is called per packet.
pub trait FleetBackend: Send + Sync + 'static {
    /// Admits `lease` atomically: drops expired leases (`now_ms`) and those of nodes whose heartbeat
    /// is gone, checks `limits`, adds the lease.
    fn admit<'a>(
        &'a self,
        lease: Lease<'a>,
        limits: LeaseLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Admitted, FleetError>>;

    /// Extends a lease (Refresh); `false` when it is not held (expired, or dropped with its node).
    fn renew<'a>(
        &'a self,
        user: &'a str,
        lease_id: &'a str,
        expires_at_ms: u64,
    ) -> BoxFuture<'a, Result<bool, FleetError>>;

    /// Ends a lease (the allocation is gone).
    fn release<'a>(&'a self, user: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), FleetError>>;

    /// Live leases of `user`, and of the fleet (expired ones left out).
    fn leases<'a>(&'a self, user: &'a str, now_ms: u64) -> BoxFuture<'a, Result<(u64, u64), FleetError>>;

    /// Publishes this node's load; it counts as live for `ttl_ms` from `load.at_ms`.
    fn heartbeat<'a>(&'a self, load: &'a NodeLoad, ttl_ms: u64) -> BoxFuture<'a, Result<(), FleetError>>;

    /// `node` stops (shutdown): it is no longer live, at once rather than when its heartbeat
    /// expires (its leases go with the next admission).
    fn leave<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), FleetError>>;

    /// The live nodes and their load (this one included).
    fn nodes(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<NodeLoad>, FleetError>>;

    /// Revokes `entry` fleet-wide (until `expires_at_ms`, for ever with `None`) and tells every
    /// subscriber.
    fn revoke<'a>(&'a self, entry: &'a str, expires_at_ms: Option<u64>) -> BoxFuture<'a, Result<(), FleetError>>;

    /// Every entry in force at `now_ms`.
    fn revocations(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<String>, FleetError>>;

    /// Revocations as they are made, from now on; [`RevocationNotice::Resync`] first and after each
    /// reconnection. The subscription ends when the receiver is dropped.
    fn subscribe(&self) -> tokio::sync::mpsc::Receiver<RevocationNotice>;

    /// Adds a batch of usage: the per-user counters and the records' stream.
    fn add_usage<'a>(&'a self, batch: &'a UsageBatch) -> BoxFuture<'a, Result<(), FleetError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, allocations: u64, addrs: &[(&str, &str)]) -> NodeLoad {
        NodeLoad {
            node: name.into(),
            allocations,
            bitrate_bps: 0,
            cpu: 0.0,
            draining: false,
            addresses: addrs
                .iter()
                .map(|(t, a)| NodeAddress { transport: (*t).into(), addr: a.parse().unwrap() })
                .collect(),
            at_ms: 0,
        }
    }

    #[test]
    fn the_least_loaded_live_sibling_of_each_family_is_the_alternate() {
        let nodes = vec![
            node("a", 0, &[("udp", "192.0.2.1:3478"), ("udp", "[2001:db8::1]:3478")]),
            node("b", 5, &[("tcp", "192.0.2.2:3478"), ("udp", "192.0.2.2:3479"), ("udp", "[2001:db8::2]:3478")]),
            node("c", 3, &[("udp", "192.0.2.3:3478")]),
        ];
        // a is this node: c is the least-loaded sibling with IPv4, b the only one with IPv6.
        assert_eq!(
            alternates(&nodes, "a"),
            vec!["192.0.2.3:3478".parse().unwrap(), "[2001:db8::2]:3478".parse().unwrap()]
        );
        // UDP is preferred over TCP on the same node.
        assert_eq!(
            alternates(&nodes[..2], "a"),
            vec!["192.0.2.2:3479".parse().unwrap(), "[2001:db8::2]:3478".parse().unwrap()]
        );
        let mut draining = nodes.clone();
        draining[2].draining = true;
        assert_eq!(alternates(&draining, "a")[0], "192.0.2.2:3479".parse().unwrap());
        assert!(alternates(&nodes[..1], "a").is_empty());
        let order: Vec<String> = by_load(draining).into_iter().map(|n| n.node).collect();
        assert_eq!(order, ["a", "b", "c"]);
    }
}
