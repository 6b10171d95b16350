//! Fleet mode in the daemon (`redis-url`): the tasks that talk to the [`FleetBackend`] — never the
//! per-packet path, never a worker waiting on Redis.
//!
//! - **heartbeat** (every [`HEARTBEAT`]): this node's load (allocations, relayed bit rate, CPU,
//!   client-facing addresses, draining) with a TTL of [`TTL_BEATS`] intervals; then the live nodes
//!   are read and the least-loaded live sibling of each family becomes the alternate server of the
//!   core's `Admission` (RFC 8489 §10, 300 Try Alternate over `alternate-threshold` or while
//!   draining); `alternate-server` is the fallback for a family without a live sibling;
//! - **revocations**: a revocation made here ([`super::Revoker::revoke`]) is written to the backend
//!   and published; every node's subscriber applies the entries it hears through its `Revoker`
//!   (the user's live allocations end, its requests get 403, RFC 8656 §7.2), and re-reads the whole
//!   set on each (re)connection;
//! - **usage**: the event sink ([`FleetSink`]) turns each ended allocation into its usage record
//!   (`docs/usage.md`) and totals and hands them to the flusher through a bounded queue (full:
//!   dropped and counted); every [`FLUSH`] the flusher also walks the live allocations and counts
//!   what each relayed since the last walk (each byte is counted once: at the end only the rest),
//!   then adds the per-user counters and the records in one batch. A batch that fails is kept and
//!   retried, bounded by [`QUEUE`] records.
//!
//! Failures are counted (`switchback_fleet_errors_total`) and logged at most every
//! [`LOG_EVERY`] per task; the node carries on alone meanwhile.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::Revoker;
use super::usage::UsageRecord;
use crate::config::Config;
use crate::fleet::{FleetBackend, FleetError, NodeAddress, NodeLoad, RevocationNotice, UsageBatch, UserUsage};
use crate::http::metrics::FleetStats;
use crate::io::{Running, TurnServer};
use crate::server::{Event, EventSink};

mod placement;
pub use placement::Placement;

/// Between heartbeats (and refreshes of the alternates).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node is live for this many heartbeat intervals after its last one.
pub const TTL_BEATS: u32 = 3;
/// Between usage flushes.
pub const FLUSH: Duration = Duration::from_secs(2);
/// Ended allocations waiting for the flusher at most (and records kept while Redis is away).
pub const QUEUE: usize = 16_384;
/// A failing task logs at most this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// One Redis call waits at most this long (connecting included).
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// An ended allocation, as the flusher needs it.
#[derive(Debug)]
struct Ended {
    /// The allocation id.
    id: u64,
    user: String,
    usage: UserUsage,
    record: String,
}

/// The event sink side: never blocks, never queues without bound.
#[derive(Debug)]
pub struct FleetSink {
    node: String,
    queue: mpsc::Sender<Ended>,
    stats: Arc<FleetStats>,
}

impl EventSink for FleetSink {
    fn event(&self, event: &Event<'_>) {
        let Event::Deleted { session, reason, at_ms, usage } = event else { return };
        if self.queue.capacity() == 0 {
            self.stats.events_dropped.fetch_add(1, Relaxed);
            return;
        }
        let record = UsageRecord::new(&self.node, session, *at_ms, Some(reason.as_str()), *usage);
        let Ok(record) = serde_json::to_string(&record) else { return };
        let ended = Ended {
            id: session.id.0,
            user: session.user.to_owned(),
            usage: UserUsage {
                bytes: usage.to_peer_bytes.saturating_add(usage.to_client_bytes),
                packets: usage.to_peer_packets.saturating_add(usage.to_client_packets),
                allocation_ms: at_ms.saturating_sub(session.started_ms),
            },
            record,
        };
        if self.queue.try_send(ended).is_err() {
            self.stats.events_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Logs a failing task at most every [`LOG_EVERY`], counts every failure, says when it recovers.
struct Failures {
    task: &'static str,
    stats: Arc<FleetStats>,
    failing: u64,
    logged: Option<Instant>,
}

impl Failures {
    fn new(task: &'static str, stats: Arc<FleetStats>) -> Failures {
        Failures { task, stats, failing: 0, logged: None }
    }

    fn failed(&mut self, error: &FleetError) {
        self.stats.errors.fetch_add(1, Relaxed);
        self.failing += 1;
        if self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            self.logged = Some(Instant::now());
            warn!(task = self.task, error = %error, failures = self.failing, "fleet: redis unreachable, carrying on alone");
        }
    }

    fn ok(&mut self) {
        if self.failing > 0 {
            info!(task = self.task, failures = self.failing, "fleet: redis reachable again");
            self.failing = 0;
            self.logged = None;
        }
    }
}

/// The running fleet tasks.
pub struct Fleet {
    backend: Arc<dyn FleetBackend>,
    node: String,
    stats: Arc<FleetStats>,
    placement: Arc<Placement>,
    handle: tokio::runtime::Handle,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    shutdown: Arc<tokio::sync::Notify>,
    sink_queue: Mutex<Option<mpsc::Receiver<Ended>>>,
    sink: Mutex<Option<mpsc::Sender<Ended>>>,
    /// The live nodes of the last heartbeat, least-loaded first (empty while Redis is away).
    nodes: Arc<arc_swap::ArcSwap<Vec<NodeLoad>>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("node", &self.node).finish_non_exhaustive()
    }
}

/// The Unix time in milliseconds.
pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Fleet {
    /// The fleet of `config` (`None` without `redis-url`), for `node`; its tasks start with
    /// `Fleet::start`. Connecting is lazy: a Redis that is down does not stop the daemon.
    #[cfg(feature = "fleet")]
    pub fn of(config: &Config, node: &str) -> Result<Option<Arc<Fleet>>, FleetError> {
        let Some(url) = &config.redis_url else { return Ok(None) };
        let options =
            crate::fleet::RedisOptions { url: url.0.clone(), prefix: config.redis_prefix.clone(), timeout: TIMEOUT };
        let backend = crate::fleet::RedisBackend::new(options)?;
        info!(redis = %crate::config::redacted_url(&url.0), prefix = %config.redis_prefix, node, "fleet mode on");
        Ok(Some(Arc::new(Fleet::with_backend(config, node, Arc::new(backend)))))
    }

    /// Built without the `fleet` feature: `redis-url` is refused.
    #[cfg(not(feature = "fleet"))]
    pub fn of(config: &Config, _node: &str) -> Result<Option<Arc<Fleet>>, FleetError> {
        match config.redis_url {
            Some(_) => Err(FleetError::Url("this build has no fleet mode (cargo feature `fleet`)".into())),
            None => Ok(None),
        }
    }

    /// A fleet on `backend` (tests pass a [`crate::fleet::MemoryBackend`]). Call inside a runtime.
    pub fn with_backend(config: &Config, node: &str, backend: Arc<dyn FleetBackend>) -> Fleet {
        let (tx, rx) = mpsc::channel(QUEUE);
        Fleet {
            backend,
            node: node.to_owned(),
            stats: Arc::new(FleetStats::default()),
            placement: Arc::new(Placement::new(config)),
            handle: tokio::runtime::Handle::current(),
            tasks: Mutex::new(Vec::new()),
            flusher: Mutex::new(None),
            shutdown: Arc::new(tokio::sync::Notify::new()),
            sink_queue: Mutex::new(Some(rx)),
            sink: Mutex::new(Some(tx)),
            nodes: Arc::default(),
        }
    }

    /// The shared state (the lease methods are there for admission).
    pub fn backend(&self) -> &Arc<dyn FleetBackend> {
        &self.backend
    }

    /// This node's `node-id`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The counters `/metrics` shows.
    pub fn stats(&self) -> &Arc<FleetStats> {
        &self.stats
    }

    /// The live nodes of the last heartbeat, least-loaded first (empty while Redis is away).
    pub fn nodes(&self) -> Arc<Vec<NodeLoad>> {
        self.nodes.load_full()
    }

    /// `/v1/relay-configuration`'s urls in fleet mode: every live node's, least-loaded first.
    pub(super) fn ice_urls(&self) -> crate::http::api::FleetUrls {
        let nodes = self.nodes.clone();
        // Draining nodes take no new allocation: left out.
        Arc::new(move || nodes.load().iter().filter(|n| !n.draining).map(node_urls).collect())
    }

    pub(super) fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// The event sink feeding the usage flusher (one; `None` once taken).
    pub(super) fn sink(&self) -> Option<FleetSink> {
        let queue = self.sink.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(FleetSink { node: self.node.clone(), queue, stats: self.stats.clone() })
    }

    /// Publishes a revocation made on this node (blocking, at most about [`TIMEOUT`] × 2: the
    /// HTTP faces call the revoker from `spawn_blocking`).
    pub(super) fn publish_revocation(&self, entry: &str) -> Result<(), FleetError> {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        let backend = self.backend.clone();
        let entry = entry.to_owned();
        self.handle.spawn(async move {
            let _ = done.send(backend.revoke(&entry, None).await);
        });
        let result = wait.recv_timeout(TIMEOUT * 3).unwrap_or(Err(FleetError::Timeout(TIMEOUT * 3)));
        if result.is_err() {
            self.stats.errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// Starts the heartbeat, the revocation subscriber and the usage flusher.
    pub(super) fn start(
        self: &Arc<Self>,
        config: &Config,
        server: &Arc<TurnServer>,
        running: &Running,
        revoker: &Arc<Revoker>,
    ) {
        let addresses: Vec<NodeAddress> = running
            .local_addrs()
            .iter()
            .map(|l| NodeAddress {
                transport: l.transport_name().to_owned(),
                addr: crate::http::ice_servers::reachable(crate::config::advertised_addr(l.addr, &config.external_ip)),
            })
            .collect();
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.push(tokio::spawn(heartbeat(self.clone(), server.clone(), addresses)));
        tasks.push(tokio::spawn(revocations(self.clone(), revoker.clone())));
        if let Some(queue) = self.sink_queue.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let task = tokio::spawn(flusher(self.clone(), server.clone(), queue, self.shutdown.clone()));
            *self.flusher.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
        }
    }

    /// Stops the tasks and leaves the fleet (siblings stop sending clients here at once); the
    /// flusher first sends what is queued (waiting at most two seconds).
    pub(super) async fn stop(&self) {
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            task.abort();
        }
        if let Err(e) = self.backend.leave(&self.node).await {
            self.stats.errors.fetch_add(1, Relaxed);
            warn!(error = %e, "fleet: could not leave (siblings forget this node when its heartbeat expires)");
        }
        let flusher = self.flusher.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut flusher) = flusher {
            self.shutdown.notify_one();
            if tokio::time::timeout(Duration::from_secs(2), &mut flusher).await.is_err() {
                flusher.abort();
            }
        }
    }
}

/// A node's client-facing addresses as the token service lists them.
fn node_urls(node: &NodeLoad) -> crate::http::api::IceUrls {
    let of = |t: &str| node.addresses.iter().filter(|a| a.transport == t).map(|a| a.addr).collect();
    crate::http::api::IceUrls { udp: of("udp"), tcp: of("tcp"), tls: of("tls"), host: None }
}

/// The relayed bytes so far (ended allocations and live ones).
fn relayed_bytes(server: &TurnServer) -> u64 {
    let s = server.stats().snapshot();
    let mut total = s.retired_to_peer_bytes.saturating_add(s.retired_to_client_bytes);
    for a in server.allocations().all() {
        let u = crate::server::Usage::of(&a.counters);
        total = total.saturating_add(u.to_peer_bytes).saturating_add(u.to_client_bytes);
    }
    total
}

fn cpu_seconds() -> f64 {
    crate::http::process::ProcessStats::read().cpu_seconds.unwrap_or(0.0)
}

async fn heartbeat(fleet: Arc<Fleet>, server: Arc<TurnServer>, addresses: Vec<NodeAddress>) {
    let mut failures = Failures::new("heartbeat", fleet.stats.clone());
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ttl_ms = (HEARTBEAT * TTL_BEATS).as_millis() as u64;
    let mut last = (Instant::now(), relayed_bytes(&server), cpu_seconds());
    loop {
        tick.tick().await;
        let (now, bytes, cpu) = (Instant::now(), relayed_bytes(&server), cpu_seconds());
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let load = NodeLoad {
            node: fleet.node.clone(),
            allocations: server.allocations().len() as u64,
            bitrate_bps: (bytes.saturating_sub(last.1) as f64 * 8.0 / secs) as u64,
            cpu: ((cpu - last.2).max(0.0) / secs * 1000.0).round() / 1000.0,
            // A front node (fleet-front) is never a sibling to send clients to.
            draining: server.admission().is_draining() || server.options().redirect_all,
            addresses: addresses.clone(),
            at_ms: unix_ms(),
        };
        last = (now, bytes, cpu);
        let result = async {
            fleet.backend.heartbeat(&load, ttl_ms).await?;
            fleet.backend.nodes(unix_ms()).await
        };
        match result.await {
            Ok(nodes) => {
                failures.ok();
                fleet.stats.nodes.store(nodes.len() as u64, Relaxed);
                fleet.placement.set_siblings(&server, crate::fleet::alternates(&nodes, &fleet.node));
                fleet.nodes.store(Arc::new(crate::fleet::by_load(nodes)));
            }
            Err(e) => {
                failures.failed(&e);
                // Siblings unknown: the static alternates only.
                fleet.stats.nodes.store(0, Relaxed);
                fleet.placement.set_siblings(&server, Vec::new());
                fleet.nodes.store(Arc::default());
            }
        }
    }
}

/// A re-read of the revocations that failed is tried again after this long.
const RESYNC_RETRY: Duration = Duration::from_millis(500);

async fn revocations(fleet: Arc<Fleet>, revoker: Arc<Revoker>) {
    let mut failures = Failures::new("revocations", fleet.stats.clone());
    let mut notices = fleet.backend.subscribe();
    // A re-read is owed until one succeeds (a notice may have been missed meanwhile).
    let mut owed = false;
    loop {
        let notice = if owed {
            tokio::select! {
                notice = notices.recv() => notice,
                () = tokio::time::sleep(RESYNC_RETRY) => Some(RevocationNotice::Resync),
            }
        } else {
            notices.recv().await
        };
        let Some(notice) = notice else { return };
        let entries = match notice {
            RevocationNotice::Revoked(entry) => vec![entry],
            RevocationNotice::Resync => match fleet.backend.revocations(unix_ms()).await {
                Ok(entries) => {
                    failures.ok();
                    owed = false;
                    entries
                }
                Err(e) => {
                    failures.failed(&e);
                    owed = true;
                    continue;
                }
            },
        };
        let revoker = revoker.clone();
        let applied = tokio::task::spawn_blocking(move || revoker.apply_fleet(&entries)).await.unwrap_or(0);
        fleet.stats.revocations_received.fetch_add(applied as u64, Relaxed);
    }
}

/// What the flusher has counted of each live allocation so far, so that each byte is added once:
/// walks add what live allocations relayed since the last walk, the end adds the rest.
#[derive(Debug, Default)]
struct Counted {
    /// Allocation id → (counted so far, the walk that last saw it).
    seen: HashMap<u64, (UserUsage, u64)>,
    walks: u64,
}

impl Counted {
    /// Adds to `users` what the live allocations of `server` relayed since the last walk. An entry
    /// not seen for two walks is forgotten (its end event was dropped): never sooner, since an
    /// allocation leaves the table just before its end event is queued.
    fn walk(&mut self, server: &TurnServer, users: &mut HashMap<String, UserUsage>) {
        self.walks += 1;
        let now = server.unix_ms(server.millis(Instant::now()));
        for a in server.allocations().all() {
            let usage = crate::server::Usage::of(&a.counters);
            let total = UserUsage {
                bytes: usage.to_peer_bytes.saturating_add(usage.to_client_bytes),
                packets: usage.to_peer_packets.saturating_add(usage.to_client_packets),
                allocation_ms: now.saturating_sub(server.unix_ms(a.created())),
            };
            let entry = self.seen.entry(a.id().0).or_default();
            let delta = total.since(entry.0);
            if delta != UserUsage::default() {
                users.entry(a.quota_user().to_owned()).or_default().add(delta);
            }
            *entry = (total, self.walks);
        }
        let walks = self.walks;
        self.seen.retain(|_, (_, last)| walks.saturating_sub(*last) < 2);
    }

    /// The part of an ended allocation's totals not yet counted.
    fn ended(&mut self, id: u64, total: UserUsage) -> UserUsage {
        total.since(self.seen.remove(&id).map(|(counted, _)| counted).unwrap_or_default())
    }
}

async fn flusher(
    fleet: Arc<Fleet>,
    server: Arc<TurnServer>,
    mut queue: mpsc::Receiver<Ended>,
    shutdown: Arc<tokio::sync::Notify>,
) {
    let mut failures = Failures::new("usage", fleet.stats.clone());
    let mut users: HashMap<String, UserUsage> = HashMap::new();
    let mut records: VecDeque<String> = VecDeque::new();
    let mut counted = Counted::default();
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let add = |ended: Ended,
               counted: &mut Counted,
               users: &mut HashMap<String, UserUsage>,
               records: &mut VecDeque<String>| {
        users.entry(ended.user).or_default().add(counted.ended(ended.id, ended.usage));
        if records.len() >= QUEUE {
            records.pop_front();
            fleet.stats.events_dropped.fetch_add(1, Relaxed);
        }
        records.push_back(ended.record);
    };
    loop {
        let last = tokio::select! {
            ended = queue.recv() => match ended {
                Some(ended) => {
                    add(ended, &mut counted, &mut users, &mut records);
                    continue;
                }
                None => true,
            },
            () = shutdown.notified() => {
                while let Ok(ended) = queue.try_recv() {
                    add(ended, &mut counted, &mut users, &mut records);
                }
                true
            }
            _ = tick.tick() => false,
        };
        counted.walk(&server, &mut users);
        if !users.is_empty() || !records.is_empty() {
            let batch = UsageBatch {
                users: users.iter().map(|(u, n)| (u.clone(), *n)).collect(),
                records: records.drain(..).collect(),
            };
            match fleet.backend.add_usage(&batch).await {
                Ok(()) => {
                    failures.ok();
                    users.clear();
                }
                // Kept for the next flush (bounded above).
                Err(e) => {
                    failures.failed(&e);
                    records = batch.records.into();
                }
            }
        }
        if last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::alloc::{AllocationId, FiveTuple};
    use crate::server::{AuthKind, EndReason, Session, Transport, Usage};

    fn ended(user: &str) -> Event<'_> {
        let session = Session {
            id: AllocationId(7),
            user,
            username: user,
            realm: "r",
            auth: AuthKind::Static,
            five_tuple: FiveTuple {
                transport: Transport::Udp,
                client: "192.0.2.1:5000".parse().unwrap(),
                server: "192.0.2.2:3478".parse().unwrap(),
            },
            relayed: [Some("192.0.2.2:50000".parse().unwrap()), None],
            tcp_relay: false,
            started_ms: 1_000,
        };
        let usage = Usage { to_peer_packets: 2, to_peer_bytes: 200, to_client_packets: 3, to_client_bytes: 300 };
        Event::Deleted { session, reason: EndReason::Client, at_ms: 3_500, usage }
    }

    #[test]
    fn the_sink_queues_ended_allocations_and_counts_what_a_full_queue_drops() {
        let (queue, mut queued) = mpsc::channel(1);
        let stats = Arc::new(FleetStats::default());
        let sink = FleetSink { node: "n1".into(), queue, stats: stats.clone() };
        sink.event(&ended("alice"));
        sink.event(&ended("bob"));
        let first = queued.try_recv().unwrap();
        assert_eq!(first.user, "alice");
        assert_eq!(first.usage, UserUsage { bytes: 500, packets: 5, allocation_ms: 2_500 });
        let record: serde_json::Value = serde_json::from_str(&first.record).unwrap();
        assert_eq!((record["node"].as_str(), record["user"].as_str()), (Some("n1"), Some("alice")));
        assert_eq!((record["type"].as_str(), record["to_client_bytes"].as_u64()), (Some("final"), Some(300)));
        assert!(queued.try_recv().is_err(), "bob did not fit");
        assert_eq!(stats.events_dropped.load(Relaxed), 1);
    }

    #[test]
    fn placement_takes_live_siblings_and_falls_back_to_the_static_alternate_per_family() {
        let server = crate::io::UdpRelay::server(crate::server::ServerOptions::default(), None);
        let v4: SocketAddr = "192.0.2.9:3478".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::9]:3478".parse().unwrap();
        let sibling: SocketAddr = "198.51.100.1:3478".parse().unwrap();
        let config = Config { alternate_server: vec![v4, v6], alternate_threshold: 5, ..Config::default() };
        let placement = Placement::new(&config);
        placement.set_siblings(&server, vec![sibling]);
        assert_eq!(server.admission().alternates(), [sibling, v6], "the sibling for IPv4, the static one for IPv6");
        // Over the threshold an IPv4 client goes to the sibling.
        let client: SocketAddr = "203.0.113.5:4000".parse().unwrap();
        assert_eq!(server.admission().refusal(5, client), Some(crate::server::Refusal::Redirect(sibling)));
        assert_eq!(server.admission().refusal(4, client), None);
        placement.set_siblings(&server, Vec::new());
        assert_eq!(server.admission().alternates(), [v4, v6], "no sibling live: the static list");
        // A reload without alternate-server: siblings only.
        placement.set_siblings(&server, vec![sibling]);
        placement.set_static(&server, Vec::new(), 7);
        assert_eq!(server.admission().alternates(), [sibling]);
        assert_eq!(server.admission().refusal(6, client), None, "the reload's threshold");
    }
}
