//! `/metrics` on `metrics-listen`: Prometheus / OpenMetrics text, read at scrape time from the
//! counters the server and the drivers keep anyway ([`crate::server::Stats`],
//! [`crate::io::IoStatsHandle`], the allocation table). Nothing is added to the data path; the request
//! latency histogram is recorded by the drivers per STUN request, never per data packet; the
//! allocation histograms once per ended allocation. The `process_*` series are read from
//! `/proc/self` per scrape (Linux only, `http/process.rs`).
//!
//! No label carries a user, an address or anything else a client chooses: the number of series
//! is fixed.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::process::ProcessStats;
use crate::io::{IoStatsHandle, TurnServer, transport_name};
use crate::server::{AUTH_FAILURE_REASONS, LATENCY_BUCKETS_US};
use crate::server::{HistogramSnapshot, StatsSnapshot};

/// The OpenMetrics text content type.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

mod fleet;
mod listeners;
mod process;

pub use fleet::FleetStats;
use fleet::encode_fleet;
use process::encode_process;

/// Reads everything at scrape time.
#[derive(Debug)]
pub struct TurnCollector {
    server: Arc<TurnServer>,
    io: IoStatsHandle,
    /// The listeners' IPs: where relay sockets open when no relay address is configured.
    listener_ips: Vec<IpAddr>,
    /// Fleet mode's counters (with `redis-url`).
    fleet: Option<Arc<FleetStats>>,
}

impl TurnCollector {
    /// A collector over `server` and the drivers' `io` counters.
    pub fn new(server: Arc<TurnServer>, io: IoStatsHandle) -> Self {
        TurnCollector { server, io, listener_ips: Vec::new(), fleet: None }
    }

    /// With fleet mode's series.
    pub fn with_fleet(self, fleet: Arc<FleetStats>) -> Self {
        TurnCollector { fleet: Some(fleet), ..self }
    }

    /// The IPs the TURN listeners are bound to: without configured relay addresses the core opens
    /// relay sockets on the address an Allocate arrived on, so `switchback_relay_ports` lists
    /// these (unspecified ones left out) even while they have no allocation.
    pub fn with_listener_ips(self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        let mut listener_ips: Vec<IpAddr> = Vec::new();
        for ip in ips.into_iter().filter(|ip| !ip.is_unspecified()) {
            if !listener_ips.contains(&ip) {
                listener_ips.push(ip);
            }
        }
        TurnCollector { listener_ips, ..self }
    }
}

/// The routes: `GET /metrics`.
pub fn router(collector: TurnCollector) -> Router {
    router_of(registry(collector))
}

/// A registry reading `collector` at each render: one to share between `/metrics` ([`router_of`])
/// and a caller that wants the same text without HTTP ([`render`]).
pub fn registry(collector: TurnCollector) -> Arc<Registry> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    Arc::new(registry)
}

/// `GET /metrics` serving `registry`.
pub fn router_of(registry: Arc<Registry>) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(registry)
}

/// Renders the registry (also for tests and the admin face).
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would leave a partial page.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

async fn metrics(State(registry): State<Arc<Registry>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&registry))
}

/// Writes one metric family: `samples` are (labels, value) pairs.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    ty: MetricType,
    samples: &[(&[(&str, &str)], M)],
) -> fmt::Result {
    let mut m: MetricEncoder<'_> = encoder.encode_descriptor(name, help, None, ty)?;
    for (labels, value) in samples {
        if labels.is_empty() {
            value.encode(m.encode_family(&Vec::<(&str, &str)>::new())?)?;
        } else {
            value.encode(m.encode_family(labels)?)?;
        }
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    family(encoder, name, help, MetricType::Counter, &[(&[], ConstCounter::new(value))])
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, value: u64) -> fmt::Result {
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    family(encoder, name, help, MetricType::Gauge, &[(&[], ConstGauge::new(value))])
}

/// Live allocations by client transport and relayed family, permissions, channels and the
/// relayed totals of the live allocations.
#[derive(Default)]
struct Live {
    /// [transport udp/tcp/tls][family ipv4/ipv6/dual][relay udp/tcp (RFC 6062)]
    allocations: [[[u64; 2]; 3]; 3],
    tcp_relays: u64,
    permissions: u64,
    channels: u64,
    to_peer: (u64, u64),
    to_client: (u64, u64),
}

const FAMILIES: [&str; 3] = ["ipv4", "ipv6", "dual"];
/// The relayed transport: UDP (RFC 8656) or TCP (RFC 6062).
const RELAYS: [&str; 2] = ["udp", "tcp"];
const TRANSPORTS: [crate::server::Transport; 3] =
    [crate::server::Transport::Udp, crate::server::Transport::Tcp, crate::server::Transport::Tls];

impl TurnCollector {
    fn live(&self) -> Live {
        let now = self.server.millis(Instant::now());
        let mut live = Live::default();
        for a in self.server.allocations().all() {
            let info = a.info();
            let t = TRANSPORTS.iter().position(|&t| t == info.five_tuple.transport).unwrap_or(0);
            let f = match (&a.extra, info.relay_addr.is_ipv4()) {
                (Some(_), _) => 2,
                (None, true) => 0,
                (None, false) => 1,
            };
            let r = usize::from(a.is_tcp_relay());
            if let Some(slot) = live.allocations.get_mut(t).and_then(|row| row.get_mut(f)).and_then(|c| c.get_mut(r)) {
                *slot += 1;
            }
            live.tcp_relays += u64::from(a.is_tcp_relay());
            let bindings = a.bindings();
            live.permissions += bindings.live_permissions(now) as u64;
            live.channels += bindings.channels().iter().filter(|c| c.expires() > now).count() as u64;
            let c = &a.counters;
            live.to_peer.0 += c.to_peer_packets.load(Relaxed);
            live.to_peer.1 += c.to_peer_bytes.load(Relaxed);
            live.to_client.0 += c.to_client_packets.load(Relaxed);
            live.to_client.1 += c.to_client_bytes.load(Relaxed);
        }
        live
    }
}

impl TurnCollector {
    /// Live allocations, permissions and channels; allocations created, deleted, redirected; draining.
    fn encode_allocations(&self, e: &mut DescriptorEncoder<'_>, s: &StatsSnapshot, live: &Live) -> fmt::Result {
        let mut allocations = Vec::new();
        for (t, row) in TRANSPORTS.iter().zip(live.allocations) {
            for (f, cell) in FAMILIES.iter().zip(row) {
                for (r, n) in RELAYS.iter().zip(cell) {
                    allocations.push(([("transport", transport_name(*t)), ("family", *f), ("relay", *r)], n));
                }
            }
        }
        let samples: Vec<(&[(&str, &str)], ConstGauge)> =
            allocations.iter().map(|(l, n)| (l.as_slice(), ConstGauge::new(*n as i64))).collect();
        family(
            e,
            "switchback_allocations",
            "Live allocations by client transport, relayed address family and relayed transport (tcp: RFC 6062)",
            MetricType::Gauge,
            &samples,
        )?;
        gauge(e, "switchback_tcp_relay_allocations", "Live RFC 6062 TCP allocations", live.tcp_relays)?;
        gauge(e, "switchback_permissions", "Live permissions over all allocations", live.permissions)?;
        gauge(e, "switchback_channels", "Live channel bindings over all allocations", live.channels)?;
        counter(e, "switchback_allocations_created", "Allocations created", s.allocations_created)?;
        counter(e, "switchback_allocations_deleted", "Allocations deleted or expired", s.allocations_deleted)?;
        counter(
            e,
            "switchback_allocations_redirected",
            "Allocate requests answered 300 with ALTERNATE-SERVER",
            s.allocations_redirected,
        )?;
        counter(
            e,
            "switchback_allocations_moved",
            "Allocations an RFC 8016 mobility Refresh moved to a new client 5-tuple",
            s.allocations_moved,
        )?;
        counter(
            e,
            "switchback_allocations_refused_draining",
            "Allocate requests answered 508 while draining",
            s.allocations_refused_draining,
        )?;
        gauge(
            e,
            "switchback_draining",
            "1 while a graceful drain is under way",
            u64::from(self.server.admission().is_draining()),
        )?;
        gauge(
            e,
            "switchback_requests_held",
            "Requests held for a fleet lease or a credential lookup (answered when it comes back)",
            self.server.leases_pending() as u64,
        )?;
        Ok(())
    }

    /// The XDP fast path (`fast-path = "xdp"`, issue #19): whether it runs, its channels, what it
    /// relayed (also inside `switchback_relayed_*`, folded once a second).
    fn encode_fast_path(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let Some(fast) = self.server.driver().offload() else { return Ok(()) };
        let s = fast.stats();
        gauge(
            e,
            "switchback_fastpath_enabled",
            "1 while the XDP fast path is attached, 0 when the kernel refused it",
            u64::from(s.enabled.load(Relaxed)),
        )?;
        gauge(
            e,
            "switchback_fastpath_channels",
            "Channels relayed by the XDP fast path now",
            s.channels.load(Relaxed),
        )?;
        let dir = |d: &'static str| [("direction", d)];
        let (peer, client) = (dir("to_peer"), dir("to_client"));
        family(
            e,
            "switchback_fastpath_packets",
            "Packets relayed by the XDP fast path, by direction",
            MetricType::Counter,
            &[
                (&peer, ConstCounter::new(s.to_peer_packets.load(Relaxed))),
                (&client, ConstCounter::new(s.to_client_packets.load(Relaxed))),
            ],
        )?;
        family(
            e,
            "switchback_fastpath_bytes",
            "Application bytes relayed by the XDP fast path, by direction",
            MetricType::Counter,
            &[
                (&peer, ConstCounter::new(s.to_peer_bytes.load(Relaxed))),
                (&client, ConstCounter::new(s.to_client_bytes.load(Relaxed))),
            ],
        )?;
        counter(
            e,
            "switchback_fastpath_map_errors",
            "Channels the fast path's maps could not take (left in user space)",
            s.map_errors.load(Relaxed),
        )
    }

    /// Relayed packets and bytes by direction.
    fn encode_traffic(&self, e: &mut DescriptorEncoder<'_>, s: &StatsSnapshot, live: &Live) -> fmt::Result {
        let dir = |d: &'static str| [("direction", d)];
        let (peer, client) = (dir("to_peer"), dir("to_client"));
        family(
            e,
            "switchback_relayed_packets",
            "Packets relayed, by direction",
            MetricType::Counter,
            &[
                (&peer, ConstCounter::new(s.retired_to_peer_packets + live.to_peer.0)),
                (&client, ConstCounter::new(s.retired_to_client_packets + live.to_client.0)),
            ],
        )?;
        family(
            e,
            "switchback_relayed_bytes",
            "Application bytes relayed, by direction",
            MetricType::Counter,
            &[
                (&peer, ConstCounter::new(s.retired_to_peer_bytes + live.to_peer.1)),
                (&client, ConstCounter::new(s.retired_to_client_bytes + live.to_client.1)),
            ],
        )?;
        counter(
            e,
            "switchback_icmp_relayed",
            "ICMP errors for relayed datagrams sent to clients as Data indications (RFC 8656 §11.5)",
            s.icmp_relayed,
        )?;
        Ok(())
    }

    /// Drops, authentication failures, rate limits, refusals and errors.
    fn encode_requests(&self, e: &mut DescriptorEncoder<'_>, s: &StatsSnapshot) -> fmt::Result {
        let driver = self.server.driver();
        let drops: [(&str, u64); 18] = [
            ("not_stun", s.dropped_not_stun),
            ("malformed", s.dropped_malformed),
            ("bad_fingerprint", s.dropped_bad_fingerprint),
            ("unexpected", s.dropped_unexpected),
            ("bad_data", s.dropped_bad_data),
            ("no_allocation", s.dropped_no_allocation),
            ("no_channel", s.dropped_no_channel),
            ("no_permission", s.dropped_no_permission),
            ("peer_denied", s.dropped_peer_denied),
            ("socket_full", s.dropped_send_failed + driver.peer_batch_failures.load(Relaxed)),
            ("output_too_small", s.dropped_output),
            ("rate_limited", s.dropped_rate_limited),
            ("bandwidth", s.dropped_bandwidth),
            ("peer_no_permission", s.peer_no_permission),
            ("peer_bandwidth", s.peer_bandwidth_exceeded),
            ("peer_icmp", s.icmp_dropped),
            ("client_socket_full", driver.client_send_failures.load(Relaxed)),
            ("client_queue_full", driver.client_queue_drops.load(Relaxed)),
        ];
        let labels: Vec<[(&str, &str); 1]> = drops.iter().map(|(r, _)| [("reason", *r)]).collect();
        let samples: Vec<(&[(&str, &str)], ConstCounter)> =
            labels.iter().zip(drops).map(|(l, (_, n))| (l.as_slice(), ConstCounter::new(n))).collect();
        family(
            e,
            "switchback_dropped_packets",
            "Packets dropped, by reason (peer_* come from peers, peer_icmp are ICMP errors not relayed; client_* were relayed to a client whose UDP socket or TCP/TLS queue was full)",
            MetricType::Counter,
            &samples,
        )?;

        let labels: Vec<[(&str, &str); 1]> = AUTH_FAILURE_REASONS.iter().map(|r| [("reason", *r)]).collect();
        let samples: Vec<(&[(&str, &str)], ConstCounter)> =
            labels.iter().zip(s.auth_failures_by_reason).map(|(l, n)| (l.as_slice(), ConstCounter::new(n))).collect();
        family(
            e,
            "switchback_auth_failures",
            "Requests refused for their credentials, by reason (challenges are not failures)",
            MetricType::Counter,
            &samples,
        )?;
        let stale = s.stale_nonces;
        let (first, stale_label) = ([("kind", "no_credentials")], [("kind", "stale_nonce")]);
        family(
            e,
            "switchback_auth_challenges",
            "Challenges: 401 to a request without credentials (every login's first step), 438 stale nonce",
            MetricType::Counter,
            &[
                (&first, ConstCounter::new(s.auth_challenges.saturating_sub(stale))),
                (&stale_label, ConstCounter::new(stale)),
            ],
        )?;
        counter(e, "switchback_revoked_requests", "Requests of revoked users (403)", s.revoked_requests)?;
        let (unauth, allocate) = ([("kind", "unauthenticated")], [("kind", "allocate")]);
        family(
            e,
            "switchback_rate_limited_requests",
            "Requests over a rate limit: unauthenticated answers dropped, Allocates answered 486",
            MetricType::Counter,
            &[
                (&unauth, ConstCounter::new(s.dropped_rate_limited)),
                (&allocate, ConstCounter::new(s.rate_limited_allocates)),
            ],
        )?;
        counter(e, "switchback_peer_denied_requests", "Requests refused 403 by the peer policy", s.peer_denied)?;
        counter(
            e,
            "switchback_relay_hook_ignored",
            "Relay-address hook choices ignored as invalid (wrong family, bad port range)",
            s.relay_hook_ignored,
        )?;
        counter(e, "switchback_error_responses", "Error responses sent", s.errors_sent)?;
        Ok(())
    }

    /// The histograms of deleted allocations: lifetime, and bytes by direction.
    fn encode_ended(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let ended = self.server.stats().ended();
        let mut m = e.encode_descriptor(
            "switchback_allocation_duration_seconds",
            "Lifetime of deleted allocations, from the Allocate to the end",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(&mut m, &ended.duration_ms.snapshot(), 1e-3)?;
        let mut m = e.encode_descriptor(
            "switchback_allocation_bytes",
            "Application bytes relayed per deleted allocation, by direction",
            None,
            MetricType::Histogram,
        )?;
        for (direction, h) in [("to_peer", &ended.to_peer_bytes), ("to_client", &ended.to_client_bytes)] {
            encode_histogram(&mut m.encode_family(&[("direction", direction)])?, &h.snapshot(), 1.0)?;
        }
        Ok(())
    }

    /// The request latency histogram by method.
    fn encode_latency(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut m = e.encode_descriptor(
            "switchback_request_duration_seconds",
            "Time to answer a STUN request, by method",
            None,
            MetricType::Histogram,
        )?;
        for h in self.server.stats().latency().snapshot() {
            let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
            let mut previous = 0;
            for (le, cumulative) in LATENCY_BUCKETS_US.iter().zip(h.cumulative) {
                buckets.push((*le as f64 / 1e6, cumulative - previous));
                previous = cumulative;
            }
            buckets.push((f64::INFINITY, h.count - previous));
            let labels = [("method", h.method)];
            m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(h.sum_us as f64 / 1e6, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

/// Writes one histogram, its bounds and sum multiplied by `scale` (to seconds, say).
fn encode_histogram<const N: usize>(m: &mut MetricEncoder<'_>, h: &HistogramSnapshot<N>, scale: f64) -> fmt::Result {
    let mut buckets = Vec::with_capacity(N + 1);
    let mut previous = 0;
    for (le, cumulative) in h.bounds.iter().zip(h.cumulative) {
        buckets.push((*le as f64 * scale, cumulative - previous));
        previous = cumulative;
    }
    buckets.push((f64::INFINITY, h.count - previous));
    m.encode_histogram::<NoLabelSet>(h.sum as f64 * scale, h.count, &buckets, None)
}

/// The Cargo features this binary was built with, comma-separated.
fn features() -> String {
    let all = [
        ("runtime", cfg!(feature = "runtime")),
        ("http", cfg!(feature = "http")),
        ("tokens", cfg!(feature = "tokens")),
        ("cli", cfg!(feature = "cli")),
        ("load", cfg!(feature = "load")),
    ];
    all.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect::<Vec<_>>().join(",")
}

impl Collector for TurnCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let s = self.server.stats().snapshot();
        let live = self.live();
        self.encode_allocations(&mut e, &s, &live)?;
        self.encode_traffic(&mut e, &s, &live)?;
        self.encode_requests(&mut e, &s)?;
        self.encode_connections(&mut e, &s)?;
        self.encode_open_connections(&mut e)?;
        self.encode_relay_ports(&mut e)?;
        self.encode_ended(&mut e)?;
        self.encode_latency(&mut e)?;
        self.encode_fast_path(&mut e)?;
        if let Some(fleet) = &self.fleet {
            encode_fleet(&mut e, fleet)?;
        }
        encode_process(&mut e)
    }
}
