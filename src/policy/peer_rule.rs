//! Operator peer rules (`allowed-peer-ip`, `denied-peer-ip`): `CIDR`, `IP` or `IP-IP`, each optionally
//! followed by `@LO-HI`. Parsed from strings so that the same text works as a flag and in `turn.toml`;
//! the policy core owns the type and `config` re-exports it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// Why a peer rule (or `config`'s `external-ip` value) does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrRuleError {
    /// Not an IP address.
    #[error("`{0}` is not an IP address")]
    BadAddress(String),
    /// A CIDR prefix that is not a number or is too long for the address family.
    #[error("bad prefix length in `{0}`")]
    BadPrefix(String),
    /// A CIDR whose address has bits set past the prefix (`10.0.0.1/8`).
    #[error("`{0}` has host bits set past the prefix")]
    HostBitsSet(String),
    /// A range whose ends are of different families or in the wrong order.
    #[error("bad address range `{0}` (same family, first <= last)")]
    BadRange(String),
    /// A port range that is not `LO-HI` with `1 <= LO <= HI <= 65535`.
    #[error("bad port range `{0}` (expected LO-HI, 1 <= LO <= HI)")]
    BadPorts(String),
    /// An `external-ip` public address that is unspecified (`0.0.0.0`, `::`).
    #[error("external address `{0}` must be a specific address")]
    Unspecified(String),
}

/// The addresses a [`PeerRule`] covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAddrs {
    /// One address: `IP`.
    Single(IpAddr),
    /// An inclusive range of one family: `IP-IP`.
    Range {
        /// First address of the range.
        first: IpAddr,
        /// Last address of the range (inclusive).
        last: IpAddr,
    },
    /// A network: `IP/PREFIX` with no host bits set.
    Cidr {
        /// Network address.
        network: IpAddr,
        /// Prefix length in bits.
        prefix: u8,
    },
}

/// One `allowed-peer-ip` / `denied-peer-ip` entry: `CIDR`, `IP` or `IP-IP`, each optionally followed
/// by `@LO-HI`, a port range (for example `203.0.113.0/24@3000-4000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "runtime", derive(serde::Deserialize), serde(try_from = "String"))]
pub struct PeerRule {
    /// The addresses covered.
    pub addrs: PeerAddrs,
    /// The ports covered (inclusive); `None` means all ports.
    pub ports: Option<(u16, u16)>,
}

impl PeerRule {
    /// Whether `peer` falls inside the rule.
    pub fn contains(&self, peer: SocketAddr) -> bool {
        let port_ok = self.ports.is_none_or(|(lo, hi)| (lo..=hi).contains(&peer.port()));
        port_ok && self.addrs.contains(peer.ip())
    }
}

impl PeerAddrs {
    /// Whether `ip` falls inside. Addresses of the other family never match (an IPv4-mapped IPv6
    /// address is not unwrapped here: the peer policy decides about those).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            PeerAddrs::Single(a) => a == ip,
            PeerAddrs::Range { first, last } => {
                same_family(first, ip) && as_u128(first) <= as_u128(ip) && as_u128(ip) <= as_u128(last)
            }
            PeerAddrs::Cidr { network, prefix } => {
                same_family(network, ip) && as_u128(ip) & mask(network, prefix) == as_u128(network)
            }
        }
    }

    /// The rule as an inclusive range of one family: `(is_ipv4, first, last)`, the addresses as
    /// integers (IPv4 in the low 32 bits). The policy precomputes it so a match is two comparisons.
    pub fn bounds(&self) -> (bool, u128, u128) {
        match *self {
            PeerAddrs::Single(a) => (a.is_ipv4(), as_u128(a), as_u128(a)),
            PeerAddrs::Range { first, last } => (first.is_ipv4(), as_u128(first), as_u128(last)),
            PeerAddrs::Cidr { network, prefix } => {
                let net = as_u128(network);
                let host_bits = !mask(network, prefix) & mask(network, bits(network));
                (network.is_ipv4(), net, net | host_bits)
            }
        }
    }
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

/// The network mask of `prefix` bits for the family of `ip`, as a u128 in the low `bits(ip)` bits.
fn mask(ip: IpAddr, prefix: u8) -> u128 {
    let width = u32::from(bits(ip));
    let host_bits = width - u32::from(prefix);
    let all: u128 = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    all.checked_shl(host_bits).map_or(0, |m| m & all)
}

/// Parses one IP address, trimmed; the error names it.
pub(crate) fn parse_ip(s: &str) -> Result<IpAddr, AddrRuleError> {
    s.trim().parse().map_err(|_| AddrRuleError::BadAddress(s.trim().to_owned()))
}

fn parse_ports(s: &str) -> Result<(u16, u16), AddrRuleError> {
    let bad = || AddrRuleError::BadPorts(s.to_owned());
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

impl FromStr for PeerAddrs {
    type Err = AddrRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some((net, prefix)) = s.split_once('/') {
            let network = parse_ip(net)?;
            let prefix: u8 = prefix.trim().parse().map_err(|_| AddrRuleError::BadPrefix(s.to_owned()))?;
            if prefix > bits(network) {
                return Err(AddrRuleError::BadPrefix(s.to_owned()));
            }
            if as_u128(network) & !mask(network, prefix) != 0 {
                return Err(AddrRuleError::HostBitsSet(s.to_owned()));
            }
            Ok(PeerAddrs::Cidr { network, prefix })
        } else if let Some((first, last)) = s.split_once('-') {
            let (first, last) = (parse_ip(first)?, parse_ip(last)?);
            if !same_family(first, last) || as_u128(first) > as_u128(last) {
                return Err(AddrRuleError::BadRange(s.to_owned()));
            }
            Ok(PeerAddrs::Range { first, last })
        } else {
            Ok(PeerAddrs::Single(parse_ip(s)?))
        }
    }
}

impl FromStr for PeerRule {
    type Err = AddrRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addrs, ports) = match s.split_once('@') {
            Some((addrs, ports)) => (addrs, Some(parse_ports(ports)?)),
            None => (s, None),
        };
        Ok(PeerRule { addrs: addrs.parse()?, ports })
    }
}

impl TryFrom<String> for PeerRule {
    type Error = AddrRuleError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for PeerAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddrs::Single(a) => write!(f, "{a}"),
            PeerAddrs::Range { first, last } => write!(f, "{first}-{last}"),
            PeerAddrs::Cidr { network, prefix } => write!(f, "{network}/{prefix}"),
        }
    }
}

impl fmt::Display for PeerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addrs)?;
        if let Some((lo, hi)) = self.ports {
            write!(f, "@{lo}-{hi}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> PeerRule {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forms_parse_and_round_trip() {
        for s in [
            "10.0.0.0/8",
            "192.0.2.7",
            "192.0.2.1-192.0.2.9",
            "2001:db8::/32",
            "2001:db8::1-2001:db8::ff",
            "::1",
            "203.0.113.0/24@3000-4000",
            "198.51.100.5@1-65535",
            "0.0.0.0/0",
            "::/0",
        ] {
            assert_eq!(rule(s).to_string(), s);
        }
    }

    #[test]
    fn bad_forms_are_rejected() {
        for s in [
            "",
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "10.0.0.9-10.0.0.1",
            "10.0.0.1-::1",
            "10.0.0.1@5",
            "10.0.0.1@0-5",
            "10.0.0.1@9-5",
            "10.0.0.1@1-70000",
            "example.com",
        ] {
            assert!(s.parse::<PeerRule>().is_err(), "{s} should not parse");
        }
    }

    #[test]
    fn contains() {
        let r = rule("10.0.0.0/8");
        assert!(r.contains(sa("10.255.1.2:1")));
        assert!(!r.contains(sa("11.0.0.0:1")));
        assert!(!r.contains(sa("[::a00:1]:1")));
        let r = rule("0.0.0.0/0@100-200");
        assert!(r.contains(sa("1.2.3.4:100")));
        assert!(r.contains(sa("1.2.3.4:200")));
        assert!(!r.contains(sa("1.2.3.4:201")));
        let r = rule("2001:db8::1-2001:db8::ff");
        assert!(r.contains(sa("[2001:db8::80]:9")));
        assert!(!r.contains(sa("[2001:db8::100]:9")));
        let r = rule("::/0");
        assert!(r.contains(sa("[2001:db8::80]:9")));
        assert!(!r.contains(sa("1.2.3.4:9")));
        assert!(rule("192.0.2.7").contains(sa("192.0.2.7:5")));
    }

    #[test]
    fn bounds_cover_what_contains_matches() {
        assert_eq!(rule("10.0.0.0/8").addrs.bounds(), (true, 0x0a00_0000, 0x0aff_ffff));
        assert_eq!(rule("0.0.0.0/0").addrs.bounds(), (true, 0, 0xffff_ffff));
        assert_eq!(rule("::/0").addrs.bounds(), (false, 0, u128::MAX));
        assert_eq!(rule("2001:db8::/32").addrs.bounds().2, 0x2001_0db8_ffff_ffff_ffff_ffff_ffff_ffff);
        assert_eq!(rule("192.0.2.7").addrs.bounds(), (true, 0xc000_0207, 0xc000_0207));
        assert_eq!(rule("::1-::9").addrs.bounds(), (false, 1, 9));
    }
}
