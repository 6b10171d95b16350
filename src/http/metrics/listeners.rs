//! The listeners' series: client connections, TLS handshakes, UDP batches, PROXY headers,
//! RFC 6062 peer connections, open connections per face, relay ports in use.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::super::{HTTP_FACES, open_connections};
use super::{TurnCollector, counter, family};
use crate::server::StatsSnapshot;

impl TurnCollector {
    /// The listeners: client connections, TLS, UDP batches, PROXY headers, RFC 6062 peers.
    pub(super) fn encode_connections(&self, e: &mut DescriptorEncoder<'_>, s: &StatsSnapshot) -> fmt::Result {
        let (io, udp) = (self.io.snapshot(), self.io.udp());
        counter(
            e,
            "switchback_client_connections_accepted",
            "TCP connections accepted (TLS included)",
            io.tcp_accepted,
        )?;
        counter(
            e,
            "switchback_client_connections_rejected",
            "TCP connections closed at once over a connection cap",
            io.tcp_rejected,
        )?;
        let closed: [(&str, u64); 4] = [
            ("idle", io.tcp_closed_idle),
            ("invalid", io.tcp_closed_invalid),
            ("unauthenticated", io.tcp_closed_unauthenticated),
            ("duplicate", io.tcp_closed_duplicate),
        ];
        let labels: Vec<[(&str, &str); 1]> = closed.iter().map(|(r, _)| [("reason", *r)]).collect();
        let samples: Vec<(&[(&str, &str)], ConstCounter)> =
            labels.iter().zip(closed).map(|(l, (_, n))| (l.as_slice(), ConstCounter::new(n))).collect();
        family(
            e,
            "switchback_client_connections_closed",
            "TCP/TLS connections the server closed, by reason (idle, invalid framing, no allocation by tcp-auth-timeout, a PROXY header claiming a connected client)",
            MetricType::Counter,
            &samples,
        )?;
        counter(
            e,
            "switchback_tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            io.tls_handshake_failures,
        )?;
        counter(e, "switchback_udp_send_errors", "Replies lost to a failing UDP send", io.udp_send_errors)?;
        counter(e, "switchback_udp_datagrams_received", "Datagrams read by the UDP listeners", udp.received)?;
        counter(e, "switchback_udp_receive_batches", "recvmmsg batches read by the UDP listeners", udp.batches)?;
        counter(e, "switchback_udp_receive_errors", "Failed reads of the UDP listeners", io.udp_recv_errors)?;
        counter(
            e,
            "switchback_proxy_header_failures",
            "proxy-protocol connections closed for a missing, malformed or late PROXY v2 header",
            io.proxy_header_failures,
        )?;
        counter(
            e,
            "switchback_proxy_untrusted",
            "proxy-protocol connections closed because they came from outside proxy-protocol-from",
            io.proxy_untrusted,
        )?;
        counter(
            e,
            "switchback_tcp_peer_connections",
            "RFC 6062 peer connections made (Connect answered with CONNECTION-ID)",
            s.tcp_connected,
        )?;
        Ok(())
    }

    /// Open connections: TURN clients over TCP and TLS by state, HTTP faces.
    pub(super) fn encode_open_connections(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let io = self.io.snapshot();
        let state = |open: u64, authenticated: u64| [open.saturating_sub(authenticated), authenticated];
        let mut clients = Vec::new();
        for (transport, counts) in
            [("tcp", state(io.tcp_open, io.tcp_authenticated)), ("tls", state(io.tls_open, io.tls_authenticated))]
        {
            for (s, n) in ["unauthenticated", "authenticated"].into_iter().zip(counts) {
                clients.push(([("transport", transport), ("state", s)], n));
            }
        }
        let samples: Vec<(&[(&str, &str)], ConstGauge)> = clients
            .iter()
            .map(|(l, n)| (l.as_slice(), ConstGauge::new(i64::try_from(*n).unwrap_or(i64::MAX))))
            .collect();
        family(
            e,
            "switchback_client_connections",
            "TCP and TLS client connections open now, by state: authenticated once they made an allocation or bound an RFC 6062 connection",
            MetricType::Gauge,
            &samples,
        )?;
        let labels: Vec<[(&str, &str); 1]> = HTTP_FACES.iter().map(|f| [("face", *f)]).collect();
        let samples: Vec<(&[(&str, &str)], ConstGauge)> = labels
            .iter()
            .zip(open_connections())
            .map(|(l, n)| (l.as_slice(), ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX))))
            .collect();
        family(
            e,
            "switchback_http_connections",
            "HTTP connections open now on each face's listener (faces sharing a listener show the same count)",
            MetricType::Gauge,
            &samples,
        )
    }

    /// Relay ports in use and free per relay address (free: the range's size less those in use).
    pub(super) fn encode_relay_ports(&self, e: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let mut in_use = self.server.relay_ports_in_use();
        if self.server.options().relay_addresses.is_empty() {
            for ip in &self.listener_ips {
                if !in_use.iter().any(|(i, _)| i == ip) {
                    in_use.push((*ip, 0));
                }
            }
        }
        let range = self.server.port_range().len();
        let names: Vec<String> = in_use.iter().map(|(ip, _)| ip.to_string()).collect();
        let mut rows = Vec::new();
        for (name, (_, n)) in names.iter().zip(&in_use) {
            rows.push(([("relay", name.as_str()), ("state", "in_use")], *n));
            rows.push(([("relay", name.as_str()), ("state", "free")], range.saturating_sub(*n)));
        }
        let samples: Vec<(&[(&str, &str)], ConstGauge)> =
            rows.iter().map(|(l, n)| (l.as_slice(), ConstGauge::new(i64::from(*n)))).collect();
        family(
            e,
            "switchback_relay_ports",
            "Relay ports of the configured range per relay address: in use by allocations and reservations, or free",
            MetricType::Gauge,
            &samples,
        )
    }
}
