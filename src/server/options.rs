//! Options of the sans-IO server (the daemon fills them from `turn.toml` and the flags).

use std::net::IpAddr;

/// One relay address: the local IP relay sockets bind to, and the IP advertised to clients in
/// XOR-RELAYED-ADDRESS (differs behind a 1:1 NAT: `-X PUBLIC/PRIVATE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayAddress {
    /// Where relay sockets are bound.
    pub local: IpAddr,
    /// What clients are told.
    pub advertised: IpAddr,
}

/// Options of the sans-IO server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// SOFTWARE attribute value to add to responses; `None` (the default) adds none (RFC 8489 §14.14
    /// makes it optional; leaving it out tells an attacker less).
    pub software: Option<String>,
    /// Only RFC 8656 channel numbers (0x4000–0x4FFF); by default RFC 5766's 0x4000–0x7FFF is taken.
    pub strict_rfc8656: bool,
    /// Relay addresses, at most one per family is used for now.
    pub relay_addresses: Vec<RelayAddress>,
    /// Lowest relay port.
    pub min_port: u16,
    /// Highest relay port.
    pub max_port: u16,
    /// Allocation lifetime when the client asks for less or none, seconds (RFC 8656 §7.2: 600).
    pub default_lifetime: u32,
    /// Longest allocation lifetime granted, seconds (RFC 8656 §7.2 suggests 3600).
    pub max_lifetime: u32,
    /// Permission lifetime, seconds (RFC 8656 §9: 300, not configurable by the RFC).
    pub permission_lifetime: u32,
    /// Channel binding lifetime, seconds (RFC 8656 §12: 600).
    pub channel_lifetime: u32,
    /// Allow loopback peers (tests; the loopback-only embedded default).
    pub allow_loopback_peers: bool,
    /// Most allocations one username may hold (0: no limit), 486 beyond.
    pub user_quota: u32,
    /// Most allocations in total (0: no limit), 508 beyond.
    pub total_quota: u32,
    /// How many ports an Allocate tries before answering 508.
    pub port_tries: usize,
    /// Most live permissions (peer IPs) per allocation (0: no limit); CreatePermission or
    /// ChannelBind beyond gets 508 (RFC 8656 §10.2, §12.2). Default 64.
    pub max_permissions: u32,
    /// Most live channel bindings per allocation (0: no limit), 508 beyond. Default 64.
    pub max_channels: u32,
    /// Relayed bytes per second per allocation, each direction (0: no limit; coturn's `max-bps`).
    pub max_bps: u64,
    /// Relayed bytes per second per user across its allocations, each direction (0: no limit).
    pub user_max_bps: u64,
    /// Relayed bytes per second for the whole server, each direction (0: no limit; coturn's
    /// `bps-capacity`).
    pub bps_capacity: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            software: None,
            strict_rfc8656: false,
            relay_addresses: Vec::new(),
            min_port: 49152,
            max_port: 65535,
            default_lifetime: 600,
            max_lifetime: 3600,
            permission_lifetime: 300,
            channel_lifetime: 600,
            allow_loopback_peers: false,
            user_quota: 0,
            total_quota: 0,
            port_tries: 64,
            max_permissions: 64,
            max_channels: 64,
            max_bps: 0,
            user_max_bps: 0,
            bps_capacity: 0,
        }
    }
}
