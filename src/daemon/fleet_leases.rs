//! Fleet-wide quotas (issue #16 §2): with `redis-url` and `user-quota` or `total-quota` set, every
//! new Allocate takes a lease in the fleet's backend before the allocation is made (the core holds
//! it meanwhile, `server::lease`), Refresh renews it and the end of the allocation releases it —
//! both from the lifecycle events, through a bounded queue to one task, never on a worker.
//!
//! A lease's id is its allocation's id (16 hex digits), its node this node's `node-id`; the admit
//! script drops the leases of nodes whose heartbeat is gone, so a crashed node's slots come back
//! within [`super::fleet::TTL_BEATS`] heartbeats. An admission that fails or takes longer than
//! [`super::fleet::TIMEOUT`] is `Unavailable`: `redis-failure` decides (open: this node's own
//! quotas; closed: 508).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::fleet::TIMEOUT;
use crate::fleet::{Admitted, FleetBackend, FleetError, Lease, LeaseLimit, LeaseLimits};
use crate::http::metrics::FleetStats;
use crate::io::TurnServer;
use crate::server::{AllocationLedger, Event, EventSink, LeaseRequest, LeaseVerdict};

/// Lease renewals and releases waiting for the keeper at most.
const QUEUE: usize = 16_384;

/// How often the keeper re-asserts the leases of every live allocation: after Redis lost its data
/// (a restart without persistence, a failover) the fleet's counts come back within this.
pub const RECONCILE: std::time::Duration = std::time::Duration::from_secs(10);

use super::fleet::unix_ms;

/// A lease id as the backend keeps it: the allocation id as logs and usage records print it.
fn lease_id(id: u64) -> String {
    crate::alloc::AllocationId(id).to_string()
}

/// The core's [`AllocationLedger`] over the fleet's backend.
pub struct FleetLedger {
    backend: Arc<dyn FleetBackend>,
    node: Arc<str>,
    stats: Arc<FleetStats>,
}

impl FleetLedger {
    /// The ledger of `node` on `backend`; failures count in `stats`.
    pub fn new(backend: Arc<dyn FleetBackend>, node: &str, stats: Arc<FleetStats>) -> FleetLedger {
        FleetLedger { backend, node: node.into(), stats }
    }
}

impl AllocationLedger for FleetLedger {
    fn admit(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = LeaseVerdict> + Send + 'static>> {
        let (backend, node, stats) = (self.backend.clone(), self.node.clone(), self.stats.clone());
        Box::pin(async move {
            let now = unix_ms();
            let id = lease_id(request.id);
            let expires_at_ms = now.saturating_add(u64::from(request.lifetime_secs) * 1000);
            let lease = Lease { user: &request.user, lease_id: &id, node: &node, expires_at_ms };
            let limits = LeaseLimits { per_user: request.limits.per_user, total: request.limits.total };
            match tokio::time::timeout(TIMEOUT, backend.admit(lease, limits, now)).await {
                Ok(Ok(Admitted::Yes)) => LeaseVerdict::Granted,
                Ok(Ok(Admitted::Refused(LeaseLimit::PerUser))) => LeaseVerdict::UserQuota,
                Ok(Ok(Admitted::Refused(LeaseLimit::Total))) => LeaseVerdict::TotalQuota,
                Ok(Err(e)) => {
                    stats.errors.fetch_add(1, Relaxed);
                    warn!(error = %e, user = %request.user, "fleet: lease admission failed; redis-failure decides");
                    LeaseVerdict::Unavailable
                }
                Err(_) => {
                    stats.errors.fetch_add(1, Relaxed);
                    warn!(user = %request.user, "fleet: lease admission timed out; redis-failure decides");
                    LeaseVerdict::Unavailable
                }
            }
        })
    }

    fn release(&self, request: LeaseRequest) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let (backend, stats) = (self.backend.clone(), self.stats.clone());
        Box::pin(async move {
            let id = lease_id(request.id);
            if !matches!(tokio::time::timeout(TIMEOUT, backend.release(&request.user, &id)).await, Ok(Ok(()))) {
                stats.errors.fetch_add(1, Relaxed);
            }
        })
    }
}

/// A renewal or a release for the keeper.
#[derive(Debug)]
enum LeaseOp {
    Renew { user: String, id: u64, expires_at_ms: u64 },
    Release { user: String, id: u64 },
}

/// The event side: Refresh renews, the end releases (RFC 8656 §8, §7). Never blocks; a full
/// queue drops and counts (the lease then expires with its last lifetime, or is freed late).
#[derive(Debug)]
pub struct LeaseSink {
    queue: mpsc::Sender<LeaseOp>,
    stats: Arc<FleetStats>,
}

impl EventSink for LeaseSink {
    fn event(&self, event: &Event<'_>) {
        let op = match event {
            Event::Refreshed { session, lifetime_secs, .. } if *lifetime_secs > 0 => LeaseOp::Renew {
                user: session.user.to_owned(),
                id: session.id.0,
                expires_at_ms: unix_ms().saturating_add(u64::from(*lifetime_secs) * 1000),
            },
            Event::Deleted { session, .. } => LeaseOp::Release { user: session.user.to_owned(), id: session.id.0 },
            _ => return,
        };
        if self.queue.try_send(op).is_err() {
            self.stats.events_dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Re-asserts the lease of each live allocation of `server`: renewed, or added again (without a
/// limit check: the allocation exists) when the backend no longer has it. Returns how many were
/// added again.
pub async fn reconcile(backend: &dyn FleetBackend, node: &str, server: &TurnServer) -> Result<usize, FleetError> {
    let now_core = server.millis(std::time::Instant::now());
    let now = unix_ms();
    let mut added = 0;
    for a in server.allocations().all() {
        let expires_at_ms = now.saturating_add(a.expires().saturating_sub(now_core));
        let id = lease_id(a.id().0);
        let user = a.quota_user();
        if !tokio::time::timeout(TIMEOUT, backend.renew(user, &id, expires_at_ms))
            .await
            .map_err(|_| FleetError::Timeout(TIMEOUT))??
        {
            let lease = Lease { user, lease_id: &id, node, expires_at_ms };
            tokio::time::timeout(TIMEOUT, backend.admit(lease, LeaseLimits::default(), now))
                .await
                .map_err(|_| FleetError::Timeout(TIMEOUT))??;
            added += 1;
        }
    }
    Ok(added)
}

/// The lease sink and the task applying what it queues, and re-asserting every [`RECONCILE`] the
/// leases of `server`'s live allocations (spawned on the current runtime).
pub fn lease_keeper(
    backend: Arc<dyn FleetBackend>,
    node: &str,
    server: Arc<TurnServer>,
    stats: Arc<FleetStats>,
) -> LeaseSink {
    let (queue, mut ops) = mpsc::channel(QUEUE);
    let task_stats = stats.clone();
    let node = node.to_owned();
    // Weak: the keeper ends with the server (or when the sink is dropped).
    let server = Arc::downgrade(&server);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RECONCILE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let op = tokio::select! {
                op = ops.recv() => match op {
                    Some(op) => op,
                    None => return,
                },
                _ = tick.tick() => {
                    let Some(server) = server.upgrade() else { return };
                    match reconcile(&*backend, &node, &server).await {
                        Ok(0) => {}
                        Ok(added) => info!(added, "fleet: leases of live allocations added again (Redis had lost them)"),
                        Err(e) => {
                            task_stats.errors.fetch_add(1, Relaxed);
                            debug!(error = %e, "fleet: lease reconciliation failed");
                        }
                    }
                    continue;
                }
            };
            let ok = match op {
                LeaseOp::Renew { user, id, expires_at_ms } => {
                    let id = lease_id(id);
                    matches!(tokio::time::timeout(TIMEOUT, backend.renew(&user, &id, expires_at_ms)).await, Ok(Ok(_)))
                }
                LeaseOp::Release { user, id } => {
                    let id = lease_id(id);
                    matches!(tokio::time::timeout(TIMEOUT, backend.release(&user, &id)).await, Ok(Ok(())))
                }
            };
            if !ok {
                task_stats.errors.fetch_add(1, Relaxed);
            }
        }
    });
    LeaseSink { queue, stats }
}
