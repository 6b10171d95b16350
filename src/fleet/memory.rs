//! The fleet state of one node on its own, in memory: the same semantics as the Redis backend
//! (leases scored by expiry, dead nodes' leases dropped, revocations published), so the unit tests
//! pin them down without a server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{broadcast, mpsc};

use super::{
    Admitted, BoxFuture, FleetBackend, FleetError, Lease, LeaseLimit, LeaseLimits, NodeLoad, RevocationNotice,
    USAGE_STREAM_MAXLEN, UsageBatch, UserUsage,
};

/// A lease held.
#[derive(Clone, Debug)]
struct Held {
    user: String,
    node: String,
    expires_at_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    leases: HashMap<String, Held>,
    /// Node → (load, live until).
    nodes: BTreeMap<String, (NodeLoad, u64)>,
    /// Entry → expiry (`None`: for ever).
    revoked: BTreeMap<String, Option<u64>>,
    usage: HashMap<String, UserUsage>,
    stream: VecDeque<String>,
}

impl State {
    /// Drops expired leases and those of nodes without a live heartbeat (`own` counts as live).
    fn sweep(&mut self, now_ms: u64, own: &str) {
        let nodes = &self.nodes;
        self.leases.retain(|_, l| {
            l.expires_at_ms > now_ms && (l.node == own || nodes.get(&l.node).is_some_and(|(_, until)| *until > now_ms))
        });
    }
}

/// One node's fleet state, in memory.
#[derive(Debug)]
pub struct MemoryBackend {
    state: Mutex<State>,
    revocations: broadcast::Sender<String>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend { state: Mutex::default(), revocations: broadcast::channel(1024).0 }
    }
}

impl MemoryBackend {
    /// An empty state.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters of `user`.
    pub fn usage(&self, user: &str) -> UserUsage {
        self.lock().usage.get(user).copied().unwrap_or_default()
    }

    /// The usage records, oldest first.
    pub fn records(&self) -> Vec<String> {
        self.lock().stream.iter().cloned().collect()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

impl FleetBackend for MemoryBackend {
    fn admit<'a>(
        &'a self,
        lease: Lease<'a>,
        limits: LeaseLimits,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Admitted, FleetError>> {
        let mut state = self.lock();
        state.sweep(now_ms, lease.node);
        if let Some(held) = state.leases.get_mut(lease.lease_id) {
            held.expires_at_ms = lease.expires_at_ms;
            return ready(Ok(Admitted::Yes));
        }
        let user = state.leases.values().filter(|l| l.user == lease.user).count();
        let answer = if limits.per_user != 0 && user >= limits.per_user as usize {
            Admitted::Refused(LeaseLimit::PerUser)
        } else if limits.total != 0 && state.leases.len() >= limits.total as usize {
            Admitted::Refused(LeaseLimit::Total)
        } else {
            let held = Held { user: lease.user.into(), node: lease.node.into(), expires_at_ms: lease.expires_at_ms };
            state.leases.insert(lease.lease_id.into(), held);
            Admitted::Yes
        };
        ready(Ok(answer))
    }

    fn renew<'a>(
        &'a self,
        user: &'a str,
        lease_id: &'a str,
        expires_at_ms: u64,
    ) -> BoxFuture<'a, Result<bool, FleetError>> {
        let mut state = self.lock();
        let renewed = match state.leases.get_mut(lease_id) {
            Some(held) if held.user == user => {
                held.expires_at_ms = expires_at_ms;
                true
            }
            _ => false,
        };
        ready(Ok(renewed))
    }

    fn release<'a>(&'a self, user: &'a str, lease_id: &'a str) -> BoxFuture<'a, Result<(), FleetError>> {
        let mut state = self.lock();
        if state.leases.get(lease_id).is_some_and(|l| l.user == user) {
            state.leases.remove(lease_id);
        }
        ready(Ok(()))
    }

    fn leases<'a>(&'a self, user: &'a str, now_ms: u64) -> BoxFuture<'a, Result<(u64, u64), FleetError>> {
        let state = self.lock();
        let live = state.leases.values().filter(|l| l.expires_at_ms > now_ms);
        let (mut mine, mut all) = (0, 0);
        for l in live {
            all += 1;
            mine += u64::from(l.user == user);
        }
        ready(Ok((mine, all)))
    }

    fn heartbeat<'a>(&'a self, load: &'a NodeLoad, ttl_ms: u64) -> BoxFuture<'a, Result<(), FleetError>> {
        self.lock().nodes.insert(load.node.clone(), (load.clone(), load.at_ms.saturating_add(ttl_ms)));
        ready(Ok(()))
    }

    fn leave<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Result<(), FleetError>> {
        self.lock().nodes.remove(node);
        ready(Ok(()))
    }

    fn nodes(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<NodeLoad>, FleetError>> {
        let mut state = self.lock();
        state.nodes.retain(|_, (_, until)| *until > now_ms);
        ready(Ok(state.nodes.values().map(|(load, _)| load.clone()).collect()))
    }

    fn revoke<'a>(&'a self, entry: &'a str, expires_at_ms: Option<u64>) -> BoxFuture<'a, Result<(), FleetError>> {
        self.lock().revoked.insert(entry.into(), expires_at_ms);
        let _ = self.revocations.send(entry.into());
        ready(Ok(()))
    }

    fn revocations(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<String>, FleetError>> {
        let mut state = self.lock();
        state.revoked.retain(|_, until| until.is_none_or(|u| u > now_ms));
        ready(Ok(state.revoked.keys().cloned().collect()))
    }

    fn subscribe(&self) -> mpsc::Receiver<RevocationNotice> {
        let (tx, rx) = mpsc::channel(256);
        let mut published = self.revocations.subscribe();
        let _ = tx.try_send(RevocationNotice::Resync);
        tokio::spawn(async move {
            loop {
                let notice = match published.recv().await {
                    Ok(entry) => RevocationNotice::Revoked(entry),
                    Err(broadcast::error::RecvError::Lagged(_)) => RevocationNotice::Resync,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(notice).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn add_usage<'a>(&'a self, batch: &'a UsageBatch) -> BoxFuture<'a, Result<(), FleetError>> {
        let mut state = self.lock();
        for (user, usage) in &batch.users {
            state.usage.entry(user.clone()).or_default().add(*usage);
        }
        for record in &batch.records {
            if state.stream.len() as u64 >= USAGE_STREAM_MAXLEN {
                state.stream.pop_front();
            }
            state.stream.push_back(record.clone());
        }
        ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeAddress;
    use super::*;

    fn lease<'a>(user: &'a str, id: &'a str, node: &'a str, expires_at_ms: u64) -> Lease<'a> {
        Lease { user, lease_id: id, node, expires_at_ms }
    }

    fn load(node: &str, at_ms: u64) -> NodeLoad {
        let addr = NodeAddress { transport: "udp".into(), addr: "127.0.0.1:3478".parse().unwrap() };
        NodeLoad {
            node: node.into(),
            allocations: 0,
            bitrate_bps: 0,
            cpu: 0.0,
            draining: false,
            addresses: vec![addr],
            at_ms,
        }
    }

    async fn admit(b: &MemoryBackend, l: Lease<'_>, limits: LeaseLimits, now: u64) -> Admitted {
        b.admit(l, limits, now).await.unwrap()
    }

    #[tokio::test]
    async fn leases_count_per_user_and_in_total_until_they_expire_or_are_released() {
        let b = MemoryBackend::new();
        let limits = LeaseLimits { per_user: 2, total: 3 };
        assert_eq!(admit(&b, lease("u", "1", "a", 1000), limits, 0).await, Admitted::Yes);
        assert_eq!(admit(&b, lease("u", "2", "a", 1000), limits, 0).await, Admitted::Yes);
        assert_eq!(admit(&b, lease("u", "3", "a", 1000), limits, 0).await, Admitted::Refused(LeaseLimit::PerUser));
        // The same lease again is no new slot.
        assert_eq!(admit(&b, lease("u", "2", "a", 1000), limits, 0).await, Admitted::Yes);
        assert_eq!(admit(&b, lease("v", "4", "a", 1000), limits, 0).await, Admitted::Yes);
        assert_eq!(admit(&b, lease("w", "5", "a", 1000), limits, 0).await, Admitted::Refused(LeaseLimit::Total));
        assert_eq!(b.leases("u", 0).await.unwrap(), (2, 3));
        b.release("u", "1").await.unwrap();
        assert_eq!(admit(&b, lease("w", "5", "a", 1000), limits, 0).await, Admitted::Yes);
        // Renewed past the others' expiry: only that one is left at 1500.
        assert!(b.renew("w", "5", 2000).await.unwrap());
        assert!(!b.renew("w", "nope", 2000).await.unwrap());
        assert_eq!(admit(&b, lease("x", "6", "a", 3000), limits, 1500).await, Admitted::Yes);
        assert_eq!(b.leases("w", 1500).await.unwrap(), (1, 2));
    }

    #[tokio::test]
    async fn a_dead_nodes_leases_are_dropped_once_its_heartbeat_lapses() {
        let b = MemoryBackend::new();
        let limits = LeaseLimits { per_user: 1, total: 0 };
        b.heartbeat(&load("b", 0), 100).await.unwrap();
        assert_eq!(admit(&b, lease("u", "1", "b", 10_000), limits, 0).await, Admitted::Yes);
        assert_eq!(admit(&b, lease("u", "2", "a", 10_000), limits, 50).await, Admitted::Refused(LeaseLimit::PerUser));
        assert_eq!(b.nodes(50).await.unwrap().len(), 1);
        // b's heartbeat is gone at 100: its lease goes with it.
        assert_eq!(admit(&b, lease("u", "2", "a", 10_000), limits, 150).await, Admitted::Yes);
        assert!(b.nodes(150).await.unwrap().is_empty());
        // A node that leaves is gone at once.
        b.heartbeat(&load("c", 200), 100).await.unwrap();
        b.leave("c").await.unwrap();
        assert!(b.nodes(250).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn revocations_reach_subscribers_and_expire() {
        let b = MemoryBackend::new();
        let mut sub = b.subscribe();
        assert_eq!(sub.recv().await, Some(RevocationNotice::Resync));
        b.revoke("eve", None).await.unwrap();
        b.revoke("jti-1", Some(100)).await.unwrap();
        assert_eq!(sub.recv().await, Some(RevocationNotice::Revoked("eve".into())));
        assert_eq!(sub.recv().await, Some(RevocationNotice::Revoked("jti-1".into())));
        assert_eq!(b.revocations(50).await.unwrap(), ["eve", "jti-1"]);
        assert_eq!(b.revocations(100).await.unwrap(), ["eve"]);
    }

    #[tokio::test]
    async fn usage_adds_up_per_user_and_records_are_kept_in_order() {
        let b = MemoryBackend::new();
        let one = UserUsage { bytes: 10, packets: 1, allocation_ms: 1000 };
        let batch = UsageBatch { users: vec![("u".into(), one), ("v".into(), one)], records: vec!["{\"a\":1}".into()] };
        b.add_usage(&batch).await.unwrap();
        let batch = UsageBatch { users: vec![("u".into(), one)], records: vec!["{\"a\":2}".into()] };
        b.add_usage(&batch).await.unwrap();
        assert_eq!(b.usage("u"), UserUsage { bytes: 20, packets: 2, allocation_ms: 2000 });
        assert_eq!(b.usage("v"), one);
        assert_eq!(b.records(), ["{\"a\":1}", "{\"a\":2}"]);
    }
}
