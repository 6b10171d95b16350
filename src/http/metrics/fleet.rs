//! Fleet mode's series (`redis-url`): Redis failures (the node carries on alone), dropped events,
//! revocations heard, live nodes.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, gauge};

/// Fleet mode's counters (`redis-url`), kept by the daemon's fleet task and read at scrape time.
#[derive(Debug, Default)]
pub struct FleetStats {
    /// Calls to Redis that failed or timed out (`switchback_fleet_errors_total`).
    pub errors: std::sync::atomic::AtomicU64,
    /// Usage events the fleet queue could not take (`switchback_fleet_events_dropped_total`).
    pub events_dropped: std::sync::atomic::AtomicU64,
    /// Live nodes at the last heartbeat, this one included (`switchback_fleet_nodes`).
    pub nodes: std::sync::atomic::AtomicU64,
    /// Revocations received from other nodes and applied (`switchback_fleet_revocations_received_total`).
    pub revocations_received: std::sync::atomic::AtomicU64,
}

/// Fleet mode's series: Redis failures (the node carries on alone), dropped events, live nodes.
pub(super) fn encode_fleet(e: &mut DescriptorEncoder<'_>, f: &FleetStats) -> fmt::Result {
    counter(
        e,
        "switchback_fleet_errors",
        "Calls to the fleet's Redis that failed or timed out",
        f.errors.load(Relaxed),
    )?;
    counter(
        e,
        "switchback_fleet_events_dropped",
        "Usage events dropped because the fleet queue was full",
        f.events_dropped.load(Relaxed),
    )?;
    counter(
        e,
        "switchback_fleet_revocations_received",
        "Revocations published by the fleet and applied here",
        f.revocations_received.load(Relaxed),
    )?;
    gauge(
        e,
        "switchback_fleet_nodes",
        "Live fleet nodes at the last heartbeat, this one included",
        f.nodes.load(Relaxed),
    )
}
