//! The daemon's consumers of the core's lifecycle events: the session log, always, and the usage
//! writer with `usage-file`, the fleet's usage flusher with `redis-url`, and an embedder's sink
//! ([`super::Hooks::events`]) — one sink that hands each event to each, in that order, on the
//! worker that caused it.

use std::sync::Arc;
use std::time::Duration;

use super::session_log::SessionLog;
use super::usage::{UsageError, UsageWriter};
use crate::config::Config;
use crate::io::TurnServer;
use crate::server::{Event, EventSink, Session, Usage};

/// The session log and, with `usage-file`, the usage writer; with `redis-url`, the fleet; an
/// embedder's sink last.
pub struct DaemonEvents {
    log: SessionLog,
    usage: Option<UsageWriter>,
    fleet: Option<super::fleet::FleetSink>,
    leases: Option<super::fleet_leases::LeaseSink>,
    forward: Option<Arc<dyn EventSink>>,
    /// The XDP fast path (`fast-path = "xdp"`): ChannelBind, CreatePermission and Refresh fill its maps.
    fast_path: Option<FastPathSink>,
}

impl std::fmt::Debug for DaemonEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonEvents")
            .field("log", &self.log)
            .field("usage", &self.usage)
            .field("fleet", &self.fleet)
            .field("leases", &self.leases)
            .field("forward", &self.forward.is_some())
            .field("fast_path", &self.fast_path.is_some())
            .finish()
    }
}

/// The fast path as a sink (only its events matter here).
struct FastPathSink(Arc<dyn EventSink>);

impl std::fmt::Debug for FastPathSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FastPathSink")
    }
}

impl DaemonEvents {
    /// The consumers `config` asks for; `node` names this node (`node-id`).
    pub fn new(config: &Config, node: String) -> Result<DaemonEvents, UsageError> {
        let usage = match &config.usage_file {
            Some(path) => Some(UsageWriter::start(path, node.clone())?),
            None => None,
        };
        Ok(DaemonEvents {
            log: SessionLog::new(node),
            usage,
            fleet: None,
            leases: None,
            forward: None,
            fast_path: None,
        })
    }

    /// Fleet mode: ended allocations go to the fleet's usage flusher too.
    pub fn with_fleet(self, sink: Option<super::fleet::FleetSink>) -> DaemonEvents {
        DaemonEvents { fleet: sink, ..self }
    }

    /// Fleet-wide quotas: Refresh renews the allocation's lease, its end releases it.
    pub fn with_leases(self, sink: Option<super::fleet_leases::LeaseSink>) -> DaemonEvents {
        DaemonEvents { leases: sink, ..self }
    }

    /// An embedder's sink ([`super::Hooks::events`]): every event reaches it too, after the
    /// daemon's own consumers.
    pub fn with_forward(self, sink: Option<Arc<dyn EventSink>>) -> DaemonEvents {
        DaemonEvents { forward: sink, ..self }
    }

    /// With `fast-path = "xdp"` (feature `xdp`): attaches the XDP program to `xdp-interface` (a
    /// warning and the user-space path when the kernel refuses) and feeds it the lifecycle events.
    pub fn with_fast_path(self, config: &Config, server: &Arc<TurnServer>) -> DaemonEvents {
        if config.fast_path == crate::config::FastPath::Off {
            return self;
        }
        #[cfg(feature = "xdp")]
        if let Some(interface) = config.xdp_interface.as_deref() {
            if config.bps_capacity != 0 {
                tracing::warn!("fast path off: bps-capacity needs every datagram in user space");
                return self;
            }
            let fast: Arc<dyn EventSink> = crate::io::fastpath::FastPath::attach(interface, server);
            return DaemonEvents { fast_path: Some(FastPathSink(fast)), ..self };
        }
        let _ = server;
        self
    }

    /// The usage writer, when `usage-file` is set.
    pub fn usage(&self) -> Option<&UsageWriter> {
        self.usage.as_ref()
    }

    /// Reopens the usage file (logrotate).
    pub fn reopen(&self) {
        if let Some(usage) = &self.usage {
            usage.reopen();
        }
    }

    /// Writes out queued records (shutdown), waiting at most two seconds.
    pub fn flush(&self) {
        if let Some(usage) = &self.usage {
            usage.flush(Duration::from_secs(2));
            if usage.dropped() > 0 {
                tracing::warn!(
                    dropped = usage.dropped(),
                    "usage records dropped since start (usage-file could not keep up)"
                );
            }
        }
    }
}

impl EventSink for DaemonEvents {
    fn event(&self, event: &Event<'_>) {
        if let Some(fast_path) = &self.fast_path {
            fast_path.0.event(event);
        }
        self.log.event(event);
        if let Some(usage) = &self.usage {
            usage.event(event);
        }
        if let Some(fleet) = &self.fleet {
            fleet.event(event);
        }
        if let Some(leases) = &self.leases {
            leases.event(event);
        }
        if let Some(forward) = &self.forward {
            forward.event(event);
        }
    }
}

/// `node-id`, or the host name and the first listening address.
pub fn node_id(config: &Config, first_listener: Option<std::net::SocketAddr>) -> String {
    if let Some(id) = &config.node_id {
        return id.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "switchback".to_owned());
    match first_listener {
        Some(addr) => format!("{host}/{addr}"),
        None => host,
    }
}

/// Every `interval`, an interim usage record of each live allocation (`usage-interval`).
pub async fn interim_records(server: Arc<TurnServer>, events: Arc<DaemonEvents>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(usage) = events.usage() else { return };
        let now = server.unix_ms(server.millis(std::time::Instant::now()));
        let auth = server.authenticator();
        let realm = auth.as_deref().map_or("", |a| a.realm());
        for a in server.allocations().all() {
            let session = Session::of(&a, realm, server.unix_ms(a.created()));
            usage.interim(&session, now, Usage::of(&a.counters));
        }
    }
}
