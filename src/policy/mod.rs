//! Peer address policy: which peers a client may reach through the relay (RFC 8656 §21.3: a TURN
//! server must not become a way into the operator's network).
//!
//! A peer is judged in this order; the first rule that decides wins:
//! 1. **Operator allow** (`allowed-peer-ip`): a matching rule allows, over every deny below.
//!    `allow-loopback-peers` opens 127.0.0.0/8 and ::1 the same way, except that `denied-peer-ip`
//!    still applies to them.
//! 2. **Special-purpose blocks** ([`special`]): every IANA block that is not globally reachable,
//!    plus multicast, broadcast, reserved and site-local.
//! 3. **Operator deny** (`denied-peer-ip`).
//! 4. **The server's own addresses**: denied on every port outside the relay range, so that a client
//!    cannot reach the server's other services; inside the range two allocations of one server can
//!    reach each other. An unspecified own address (a `0.0.0.0` listener) carries no information and
//!    is ignored: list specific addresses to get this protection.
//!
//! Every IPv4 address carried inside an IPv6 address is judged as that IPv4 address
//! ([`embedded_ipv4`]); Teredo carries two and is denied if either is. 6to4 and Teredo are
//! moreover denied whole unless an `allowed-peer-ip` rule opens them ([`special::TUNNELS`],
//! RFC 8656 §21.4).
//!
//! Permissions carry no port (RFC 8656 §9), so CreatePermission uses [`PeerPolicy::check_ip`]:
//! port rules and the own-address rule wait for [`PeerPolicy::check_addr`], which ChannelBind, every
//! relayed packet and RFC 6062 Connect use.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod bandwidth;
mod peer_rule;
pub mod quota;
pub mod rate;
pub mod revocation;
mod slots;
pub mod special;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

#[cfg(feature = "runtime")]
pub(crate) use peer_rule::parse_ip;
pub use peer_rule::{AddrRuleError, PeerAddrs, PeerRule};
pub use slots::{SourceSlot, SourceSlots};

/// What counts as one source for per-source limits (rate limits, connection caps): the IPv4
/// address (an IPv4-mapped IPv6 one unwrapped), or the IPv6 /64 — one /64 is one subscriber, whose
/// interface identifiers are its own to choose, so it must not open 2^64 slots.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// Why a peer was refused (answered with 403 Forbidden, or dropped on the data path, and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerDenied {
    /// In a special-purpose block; the block's name (for example "loopback (RFC 1122 §3.2.1.3)").
    #[error("special-purpose address: {0}")]
    SpecialPurpose(&'static str),
    /// Matched a `denied-peer-ip` rule.
    #[error("denied by denied-peer-ip")]
    Operator,
    /// One of the server's own addresses, on a port outside the relay range.
    #[error("the server's own address outside the relay port range")]
    OwnAddress,
}

/// The inputs of a [`PeerPolicy`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPolicyConfig {
    /// Allow 127.0.0.0/8 and ::1, in every spelling (`allow-loopback-peers`; tests and the
    /// loopback-only embedded default).
    pub allow_loopback: bool,
    /// `allowed-peer-ip`: these win over every deny.
    pub allowed: Vec<PeerRule>,
    /// `denied-peer-ip`: denied in addition to the special-purpose blocks.
    pub denied: Vec<PeerRule>,
    /// The server's own addresses (listening, HTTP, external, relay); unspecified ones are ignored.
    pub own_addresses: Vec<IpAddr>,
    /// The relay port range `(min-port, max-port)`, inclusive: the only ports of an own address a
    /// peer may have.
    pub relay_ports: (u16, u16),
}

impl Default for PeerPolicyConfig {
    fn default() -> Self {
        PeerPolicyConfig {
            allow_loopback: false,
            allowed: Vec::new(),
            denied: Vec::new(),
            own_addresses: Vec::new(),
            relay_ports: (49152, 65535),
        }
    }
}

/// A [`PeerRule`] as one inclusive integer range, so a match is two comparisons.
#[derive(Clone, Copy, Debug)]
struct Rule {
    v4: bool,
    first: u128,
    last: u128,
    ports: Option<(u16, u16)>,
}

impl Rule {
    fn new(rule: &PeerRule) -> Rule {
        let (v4, first, last) = rule.addrs.bounds();
        Rule { v4, first, last, ports: rule.ports }
    }

    #[inline]
    fn covers(&self, ip: IpAddr) -> bool {
        let (v4, bits) = match ip {
            IpAddr::V4(a) => (true, u128::from(a.to_bits())),
            IpAddr::V6(a) => (false, a.to_bits()),
        };
        v4 == self.v4 && self.first <= bits && bits <= self.last
    }

    #[inline]
    fn port_in_range(&self, port: u16) -> bool {
        self.ports.is_none_or(|(lo, hi)| lo <= port && port <= hi)
    }

    /// An allow rule with a port range allows the IP when there is no port yet (CreatePermission).
    #[inline]
    fn allows(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.covers(ip) && port.is_none_or(|p| self.port_in_range(p))
    }

    /// A deny rule with a port range denies nothing until there is a port.
    #[inline]
    fn denies(&self, ip: IpAddr, port: Option<u16>) -> bool {
        self.covers(ip)
            && match port {
                None => self.ports.is_none(),
                Some(p) => self.port_in_range(p),
            }
    }
}

/// The IPv4 address(es) an IPv6 address carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Embedded {
    /// A plain IPv6 address.
    None,
    /// IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96 or 6to4.
    One(Ipv4Addr),
    /// Teredo: the server's address and the client's (stored inverted, here as it is meant).
    Teredo {
        /// Bits 32–63.
        server: Ipv4Addr,
        /// Bits 96–127, XOR 0xFFFFFFFF.
        client: Ipv4Addr,
    },
}

/// The IPv4 addresses carried in `ip`: IPv4-mapped ::ffff:0:0/96 and IPv4-compatible ::/96 (except
/// :: and ::1) (RFC 4291 §2.5.5), NAT64 64:ff9b::/96 (RFC 6052 §2.1), 6to4 2002::/16 with the IPv4
/// address in bits 16–47 (RFC 3056 §2) and Teredo 2001::/32 (RFC 4380 §4).
pub fn embedded_ipv4(ip: Ipv6Addr) -> Embedded {
    let [s0, s1, s2, s3, s4, s5, s6, s7] = ip.segments();
    let join = |hi: u16, lo: u16| Ipv4Addr::from_bits((u32::from(hi) << 16) | u32::from(lo));
    match (s0, s1, s2, s3, s4, s5) {
        (0, 0, 0, 0, 0, 0xffff) => Embedded::One(join(s6, s7)),
        (0, 0, 0, 0, 0, 0) if ip.to_bits() > 1 => Embedded::One(join(s6, s7)),
        (0x64, 0xff9b, 0, 0, 0, 0) => Embedded::One(join(s6, s7)),
        (0x2002, ..) => Embedded::One(join(s1, s2)),
        (0x2001, 0, ..) => Embedded::Teredo { server: join(s2, s3), client: join(!s6, !s7) },
        _ => Embedded::None,
    }
}

/// The peer policy: built once from a [`PeerPolicyConfig`], then consulted on every request and
/// every relayed packet (a linear scan of a few dozen precomputed prefixes, no allocation).
#[derive(Clone, Debug)]
pub struct PeerPolicy {
    allow_loopback: bool,
    allowed: Box<[Rule]>,
    denied: Box<[Rule]>,
    own: Box<[IpAddr]>,
    relay_ports: (u16, u16),
}

impl Default for PeerPolicy {
    /// The default policy: special-purpose blocks denied, no exceptions.
    fn default() -> Self {
        PeerPolicy::new(PeerPolicyConfig::default())
    }
}

impl PeerPolicy {
    /// Builds the policy. Own addresses in IPv4-mapped form are stored as IPv4; unspecified ones
    /// are dropped (see the module documentation).
    pub fn new(config: PeerPolicyConfig) -> PeerPolicy {
        let mut own: Vec<IpAddr> = Vec::with_capacity(config.own_addresses.len());
        for ip in config.own_addresses {
            let ip = match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
                v4 => v4,
            };
            if !ip.is_unspecified() && !own.contains(&ip) {
                own.push(ip);
            }
        }
        PeerPolicy {
            allow_loopback: config.allow_loopback,
            allowed: config.allowed.iter().map(Rule::new).collect(),
            denied: config.denied.iter().map(Rule::new).collect(),
            own: own.into_boxed_slice(),
            relay_ports: config.relay_ports,
        }
    }

    /// Whether loopback peers are allowed (`allow-loopback-peers`).
    pub fn allows_loopback(&self) -> bool {
        self.allow_loopback
    }

    /// Judges a peer IP without a port: CreatePermission (RFC 8656 §9–10: permissions are per IP).
    /// Port rules and the own-address rule are left to [`PeerPolicy::check_addr`].
    #[inline]
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), PeerDenied> {
        self.check(ip, None)
    }

    /// Judges a peer transport address: ChannelBind (RFC 8656 §12.2), every Send indication and
    /// ChannelData (§11.2, §12.5) and RFC 6062 Connect.
    #[inline]
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), PeerDenied> {
        self.check(addr.ip(), Some(addr.port()))
    }

    fn check(&self, ip: IpAddr, port: Option<u16>) -> Result<(), PeerDenied> {
        match ip {
            IpAddr::V4(_) => self.judge(ip, ip, port),
            IpAddr::V6(v6) if special::tunnel(v6).is_some() && !self.tunnel_allowed(v6, port) => {
                Err(PeerDenied::SpecialPurpose(special::tunnel(v6).map_or("", |b| b.name)))
            }
            IpAddr::V6(v6) => match embedded_ipv4(v6) {
                Embedded::None => self.judge(ip, ip, port),
                Embedded::One(v4) => self.judge(IpAddr::V4(v4), ip, port),
                Embedded::Teredo { server, client } => {
                    self.judge(IpAddr::V4(server), ip, port)?;
                    self.judge(IpAddr::V4(client), ip, port)
                }
            },
        }
    }

    /// Whether `allowed-peer-ip` opens a 6to4 or Teredo address ([`special::TUNNELS`], denied by
    /// default, RFC 8656 §21.4): a rule covering it as spelled, or every IPv4 address it carries.
    /// The IPv4 addresses are then judged as usual.
    fn tunnel_allowed(&self, v6: Ipv6Addr, port: Option<u16>) -> bool {
        let allowed = |ip: IpAddr| self.allowed.iter().any(|r| r.allows(ip, port));
        allowed(IpAddr::V6(v6))
            || match embedded_ipv4(v6) {
                Embedded::None => false,
                Embedded::One(v4) => allowed(IpAddr::V4(v4)),
                Embedded::Teredo { server, client } => allowed(IpAddr::V4(server)) && allowed(IpAddr::V4(client)),
            }
    }

    /// Judges `target` (the address itself, or an IPv4 address it carries); operator rules also
    /// match the address as `spelled`.
    fn judge(&self, target: IpAddr, spelled: IpAddr, port: Option<u16>) -> Result<(), PeerDenied> {
        let matches = |ip: IpAddr| ip == target || ip == spelled;
        if self.allowed.iter().any(|r| r.allows(target, port) || (spelled != target && r.allows(spelled, port))) {
            return Ok(());
        }
        let loopback_opened = self.allow_loopback && target.is_loopback();
        if !loopback_opened && let Some(block) = special::lookup(target) {
            return Err(PeerDenied::SpecialPurpose(block.name));
        }
        if self.denied.iter().any(|r| r.denies(target, port) || (spelled != target && r.denies(spelled, port))) {
            return Err(PeerDenied::Operator);
        }
        if let Some(port) = port
            && !loopback_opened
            && self.own.iter().any(|ip| matches(*ip))
            && !(self.relay_ports.0 <= port && port <= self.relay_ports.1)
        {
            return Err(PeerDenied::OwnAddress);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
