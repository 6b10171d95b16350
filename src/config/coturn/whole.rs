//! What a coturn file means as a whole, beyond its lines one by one: listening on every interface
//! when `listening-ip` is left out, the relay addresses that gives (told to clients through
//! `external-ip`), the Prometheus exporter's address, the REST secret without `use-auth-secret`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use toml::Value;

use super::{Import, NoteKind};
use crate::config::{ExternalIp, relay_addresses};

/// coturn's Prometheus exporter port.
pub(super) const COTURN_PROMETHEUS_PORT: u16 = 9641;

/// What coturn listens on without `listening-ip`: every interface, of both families.
const EVERY_INTERFACE: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)];

impl Import {
    /// Adds what follows from the file as a whole, then puts the notes in line order (notes on
    /// options the file leaves out, line 0, first).
    pub(super) fn finish(&mut self) {
        self.secret_without_use_auth_secret();
        if !self.table.contains_key("listening-ip") {
            let every = EVERY_INTERFACE.iter().map(|ip| Value::String(ip.to_string())).collect();
            self.table.insert("listening-ip".to_owned(), Value::Array(every));
        }
        self.relay_notes();
        self.prometheus();
        self.notes.sort_by_key(|note| note.line);
    }

    /// The line of the first `option`, 0 when the file leaves it out.
    fn line_of(&self, option: &str) -> usize {
        self.lines.get(option).copied().unwrap_or(0)
    }

    fn secret_without_use_auth_secret(&mut self) {
        if let Some(&line) = self.lines.get("static-auth-secret")
            && !self.table.contains_key("use-auth-secret")
        {
            let message = "coturn uses it only with use-auth-secret; switchback turns REST credentials on whenever a \
                           secret is given";
            self.note(line, "static-auth-secret", NoteKind::Differs, message);
        }
    }

    /// The parsed values of a list key of the table so far.
    fn list<T: std::str::FromStr>(&self, key: &str) -> Vec<T> {
        match self.table.get(key) {
            Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str()?.parse().ok()).collect(),
            _ => Vec::new(),
        }
    }

    /// With TURN on: coturn relays on every interface address (it lists them); switchback binds
    /// relay sockets on the addresses [`relay_addresses`] gives — without `relay-ip` or
    /// `external-ip` the address each Allocate arrived on (IP_PKTINFO on a wildcard listener),
    /// with `external-ip` alone on a wildcard listener the wildcard itself, told to clients as
    /// `external-ip` says. A family whose relay address would be told as the wildcard gets no
    /// relays: that is noted, with the `relay-ip` that fixes it.
    fn relay_notes(&mut self) {
        let turn = ["users", "static-auth-secret", "redis-userdb"].iter().any(|k| self.table.contains_key(*k));
        if !turn {
            // RFC 8656 §5 requires the long-term credential mechanism for every TURN request;
            // coturn without one serves allocations to anyone.
            let message = "the file sets no credentials (no lt-cred-mech user, no static-auth-secret): coturn \
                           would relay for anyone; switchback serves STUN only until static-auth-secret or users \
                           is set (RFC 8656 requires credentials for TURN)";
            return self.note(0, "lt-cred-mech", NoteKind::Differs, message);
        }
        let listening: Vec<IpAddr> = self.list("listening-ip");
        let relay: Vec<IpAddr> = self.list("relay-ip");
        let external: Vec<ExternalIp> = self.list("external-ip");
        let line = self.line_of("listening-ip");
        let addrs = relay_addresses(&relay, &listening, &external);
        for lost in addrs.iter().filter(|r| r.advertised.is_unspecified()) {
            let family = if lost.local.is_ipv4() { "IPv4" } else { "IPv6" };
            let mut fix: Vec<String> =
                addrs.iter().filter(|r| !r.advertised.is_unspecified()).map(|r| format!("\"{}\"", r.local)).collect();
            fix.push(format!("\"<this host's {family} address>\""));
            let message = format!(
                "listening on {} as coturn does, but coturn relays {family} on each interface address while \
                 switchback would bind {family} relay sockets on {} and cannot tell clients that address: \
                 {family} relayed addresses are refused (508). To relay {family}, set relay-ip = [{}]",
                lost.local,
                lost.local,
                fix.join(", ")
            );
            let (line, option) = match self.lines.get("external-ip") {
                Some(&at) => (at, "external-ip"),
                None => (line, "listening-ip"),
            };
            self.note(line, option, NoteKind::Differs, message);
        }
    }

    /// `prometheus` (with `prometheus-port`, `prometheus-address`): `metrics-listen`, on every
    /// interface as coturn's exporter unless an address is given.
    fn prometheus(&mut self) {
        let Some(&line) = self.lines.get("prometheus") else {
            if self.prometheus_port.is_some() || self.prometheus_address.is_some() {
                let option = if self.prometheus_port.is_some() { "prometheus-port" } else { "prometheus-address" };
                self.cannot(self.line_of(option), option, "the exporter is off without `prometheus`: nothing to map");
            }
            return;
        };
        let ip = self.prometheus_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, self.prometheus_port.unwrap_or(COTURN_PROMETHEUS_PORT));
        self.table.insert("metrics-listen".to_owned(), Value::String(addr.to_string()));
        let mut message = format!(
            "metrics-listen = \"{addr}\" serves switchback's own metric names on /metrics (not coturn's), and \
             /healthz and /readyz"
        );
        if ip.is_unspecified() {
            let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port());
            message.push_str(&format!(
                ", on every interface as coturn's exporter: anyone who reaches the port reads them; prefer \
                 metrics-listen = \"{loopback}\" (or a firewall) unless Prometheus scrapes from another host"
            ));
        }
        self.note(line, "prometheus", NoteKind::Differs, message);
    }
}
