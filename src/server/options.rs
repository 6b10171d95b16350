//! Options of the sans-IO server (the daemon fills them from `turn.toml` and the flags).

use std::net::IpAddr;

use crate::policy::PeerRule;
use crate::policy::rate::RateLimit;

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
///
/// `#[non_exhaustive]` so options can be added without a semver break: outside the crate, start
/// from [`ServerOptions::default`] and set fields on the value, or use [`ServerOptions::with`]:
///
/// ```
/// use switchback::server::ServerOptions;
///
/// let options = ServerOptions::default().with(|o| o.mobility = true);
/// assert!(options.mobility);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerOptions {
    /// SOFTWARE attribute value to add to responses; `None` (the default) adds none (RFC 8489 §14.14
    /// makes it optional; leaving it out tells an attacker less).
    pub software: Option<String>,
    /// Only RFC 8656 channel numbers (0x4000–0x4FFF); by default RFC 5766's 0x4000–0x7FFF is taken.
    pub strict_rfc8656: bool,
    /// Relay addresses. Allocations of a family are spread round-robin over that family's addresses
    /// (an address with no free port is skipped); a dual allocation takes one of each family.
    /// Empty: the address each Allocate arrived on.
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
    /// How many ports an Allocate tries before answering 508 (default 512; see
    /// [`crate::alloc::PortRange::candidates`]: the default range fills past 16,000 ports).
    pub port_tries: usize,
    /// Unauthenticated answers (the 400/401/438 of the long-term credential mechanism) per source
    /// IPv4 address or IPv6 /64. Beyond it the request is dropped without an answer and counted
    /// (`DropReason::RateLimited`): a spoofed flood gets no reflection. [`RateLimit::OFF`]: none.
    pub rate_limit_unauth: RateLimit,
    /// Binding answers count against `rate_limit_unauth` too (default off: STUN stays unlimited).
    pub rate_limit_binding: bool,
    /// Authenticated Allocate requests per user (the REST user part or the static name). Beyond it
    /// the answer is 486 Allocation Quota Reached, signed like any answer to that user (the source
    /// proved its address with the nonce, so nothing is reflected). [`RateLimit::OFF`]: none.
    pub rate_limit_allocate: RateLimit,
    /// Tear an allocation down at the first sweep after its REST credential expires (by default
    /// it lives out its lifetime, and only its next request is refused).
    pub strict_expiry: bool,
    /// Peers allowed despite the deny list (`allowed-peer-ip`); they win over every deny.
    pub allowed_peers: Vec<PeerRule>,
    /// Peers denied in addition to the special-purpose blocks (`denied-peer-ip`).
    pub denied_peers: Vec<PeerRule>,
    /// The server's own addresses (listening, HTTP, external), denied as peers outside the relay
    /// port range; the relay addresses are added to them. Unspecified addresses are ignored.
    pub own_addresses: Vec<IpAddr>,
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
    /// Refuse RFC 6062 TCP allocations (REQUESTED-TRANSPORT TCP gets 442; `no-tcp-relay`).
    pub no_tcp_relay: bool,
    /// Take ADDITIONAL-ADDRESS-FAMILY under the draft code point 0x8032 too, answering with
    /// ADDRESS-ERROR-CODE under 0x8033 (coturn 4.6.1 and `turnutils_uclient -Z`). Default on.
    pub legacy_dual_allocation: bool,
    /// RFC 8016 mobility (`mobility`): an Allocate with an empty MOBILITY-TICKET gets a ticket, and
    /// a Refresh carrying it from a new 5-tuple moves the allocation there. Off: 405. Default off.
    pub mobility: bool,
    /// Where new allocations are redirected (300 with ALTERNATE-SERVER, RFC 8489 §10) while
    /// draining, or above `alternate_threshold` allocations (`alternate-server`): at most one per
    /// family, since the ALTERNATE-SERVER must be of the family of the request's source (§14.15).
    pub alternate_servers: Vec<std::net::SocketAddr>,
    /// Allocation count from which new Allocates are redirected to `alternate_server` (0: only
    /// while draining; `alternate-threshold`).
    pub alternate_threshold: u32,
    /// The domain name a TLS client checks the alternate server's certificate against (RFC 8489
    /// §10, §14.16: ALTERNATE-DOMAIN in a 300 answered over TLS; `alternate-domain`). Without it
    /// a TLS client is redirected with ALTERNATE-SERVER alone.
    pub alternate_domain: Option<String>,
    /// With fleet leases on (issue #16), what an Allocate gets when the ledger cannot be asked:
    /// false (the default, `redis-failure = "open"`) lets the node decide under its own quotas,
    /// true (`"closed"`) answers 508.
    pub lease_fail_closed: bool,
    /// Front mode (`fleet-front`, RFC 8155 §6): every new Allocate is redirected (300) to the
    /// alternate of the client's family while one is known; allocations are made here only
    /// without one. Default off.
    pub redirect_all: bool,
    /// RFC 5780 NAT behaviour discovery (`rfc5780`, §6, §7) on UDP, once the driver has told the
    /// server its four addresses ([`Server::set_nat_discovery`](super::Server::set_nat_discovery)).
    /// Off (the default): a CHANGE-REQUEST with a flag set gets 420. Its answers amplify, so with
    /// it on every Binding answer counts against `rate_limit_unauth`.
    pub rfc5780: bool,
}

/// The address grid of RFC 5780 §6: two IPs of one family × two ports (primary and alternate),
/// four sockets in all (A:P, A:P', B:P, B:P').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NatDiscovery {
    /// The primary and the alternate IP.
    pub ips: [std::net::IpAddr; 2],
    /// The primary and the alternate port.
    pub ports: [u16; 2],
}

impl NatDiscovery {
    /// Where `local` sits in the grid: (IP index, port index), or `None` for an address outside it.
    fn position(&self, local: std::net::SocketAddr) -> Option<(usize, usize)> {
        let ip = self.ips.iter().position(|&ip| ip == local.ip())?;
        let port = self.ports.iter().position(|&p| p == local.port())?;
        Some((ip, port))
    }

    fn at(&self, ip: usize, port: usize) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new(*self.ips.get(ip)?, *self.ports.get(port)?))
    }

    /// OTHER-ADDRESS for a request that came to `local` (RFC 5780 §7.4: the other IP and the
    /// other port), or `None` when `local` is not one of the four addresses.
    pub fn other_address(&self, local: std::net::SocketAddr) -> Option<std::net::SocketAddr> {
        let (ip, port) = self.position(local)?;
        self.at(1 - ip, 1 - port)
    }

    /// The address an answer to a request that came to `local` leaves from, after CHANGE-REQUEST's
    /// flags (RFC 5780 §6.1, §7.2); `None` when `local` is not one of the four addresses.
    pub fn response_origin(
        &self,
        local: std::net::SocketAddr,
        change_ip: bool,
        change_port: bool,
    ) -> Option<std::net::SocketAddr> {
        let (ip, port) = self.position(local)?;
        self.at(ip ^ usize::from(change_ip), port ^ usize::from(change_port))
    }
}

impl ServerOptions {
    /// Default of [`ServerOptions::rate_limit_unauth`]: 20 answers a second, bursts of 300.
    pub const DEFAULT_RATE_LIMIT_UNAUTH: RateLimit = RateLimit::new(20, 300);
    /// Default of [`ServerOptions::rate_limit_allocate`]: 10 Allocates a second, bursts of 20.
    pub const DEFAULT_RATE_LIMIT_ALLOCATE: RateLimit = RateLimit::new(10, 20);

    /// These options after `set` has changed them: builds options in one expression, as a struct
    /// literal would (the struct is `#[non_exhaustive]`, so code outside the crate cannot use one).
    #[must_use]
    pub fn with(mut self, set: impl FnOnce(&mut Self)) -> Self {
        set(&mut self);
        self
    }
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
            port_tries: 512,
            rate_limit_unauth: Self::DEFAULT_RATE_LIMIT_UNAUTH,
            rate_limit_binding: false,
            rate_limit_allocate: Self::DEFAULT_RATE_LIMIT_ALLOCATE,
            strict_expiry: false,
            allowed_peers: Vec::new(),
            denied_peers: Vec::new(),
            own_addresses: Vec::new(),
            max_permissions: 64,
            max_channels: 64,
            max_bps: 0,
            user_max_bps: 0,
            bps_capacity: 0,
            no_tcp_relay: false,
            legacy_dual_allocation: true,
            mobility: false,
            alternate_servers: Vec::new(),
            alternate_threshold: 0,
            alternate_domain: None,
            lease_fail_closed: false,
            redirect_all: false,
            rfc5780: false,
        }
    }
}
