//! The deny list: special-purpose address blocks that a TURN relay must not reach by default
//! (RFC 8656 §21.3; the blocks themselves from the IANA registries below).
//!
//! # Source
//!
//! Every block that the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, with the
//! "Globally Reachable" column of RFC 8190) mark **Globally Reachable: False**:
//! <https://www.iana.org/assignments/iana-ipv4-special-registry/> and
//! <https://www.iana.org/assignments/iana-ipv6-special-registry/>, transcribed 2026-11 (newest rows:
//! IPv4 192.0.0.170–171, RFC 8880; IPv6 100:0:0:1::/64, RFC 9780). When the registries change, update
//! this file and its test; nothing else holds addresses.
//!
//! Deliberate differences from the registries, all denying more:
//! * whole blocks win over the globally reachable rows nested in them: 192.0.0.0/24 includes
//!   192.0.0.9 (PCP anycast) and 192.0.0.10 (TURN anycast); 2001::/23 includes 2001:1::1–3 (anycast),
//!   2001:3::/32 (AMT), 2001:4:112::/48 (AS112), 2001:20::/28 (ORCHIDv2) and 2001:30::/28 (DETs) —
//!   none is a media peer, and `allowed-peer-ip` opens them if ever needed;
//! * 192.88.99.0/24, deprecated 6to4 relay anycast (RFC 7526), whose row has no reachability;
//! * not in the registries: multicast 224.0.0.0/4 (RFC 5771) and ff00::/8 (RFC 4291 §2.7), deprecated
//!   site-local fec0::/10 (RFC 3879), and the rest of ::/8, "Reserved by IETF" in the IPv6 address
//!   space registry (RFC 4291), which holds odd IPv4 spellings such as IPv4-translated
//!   ::ffff:0:a.b.c.d (RFC 6145) and the unassigned rest of 64:ff9b::/32.
//!
//! Rows that are not here because `policy` judges those addresses by the IPv4 address they carry
//! (see [`super::embedded_ipv4`]): IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96, NAT64
//! 64:ff9b::/96, 6to4 2002::/16 and Teredo 2001::/32; the last two are moreover denied whole by
//! default ([`TUNNELS`]) unless `allowed-peer-ip` opens them. 64:ff9b:1::/48 is here and denied whole (its
//! IPv4 address sits at an offset that depends on the operator's prefix length, RFC 8215).
//!
//! # Order
//!
//! The first matching row names the block, so a row nested in another comes before it (a test
//! checks that no row is hidden behind an earlier one).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One special-purpose block: prefix, length and a name for logs and 403 reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The network address (no host bits set).
    pub prefix: IpAddr,
    /// The prefix length in bits.
    pub len: u8,
    /// What the registry calls it, with the RFC.
    pub name: &'static str,
    /// `prefix` as an integer (IPv4 in the low 32 bits) and the mask of `len` bits.
    network: u128,
    mask: u128,
}

impl Block {
    /// Whether `ip` (of the block's family, as an integer) is inside.
    #[inline]
    fn matches(&self, bits: u128) -> bool {
        bits & self.mask == self.network
    }

    /// Whether `ip` is inside the block (addresses of the other family never are).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.prefix, ip) {
            (IpAddr::V4(_), IpAddr::V4(a)) => self.matches(u128::from(a.to_bits())),
            (IpAddr::V6(_), IpAddr::V6(a)) => self.matches(a.to_bits()),
            _ => false,
        }
    }

    /// The last address of the block.
    pub fn last(&self) -> IpAddr {
        match self.prefix {
            IpAddr::V4(_) => {
                let host = !self.mask & u128::from(u32::MAX);
                IpAddr::V4(Ipv4Addr::from_bits(u32::try_from(self.network | host).unwrap_or(u32::MAX)))
            }
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from_bits(self.network | !self.mask)),
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, name: &'static str) -> Block {
    let network = Ipv4Addr::new(a, b, c, d).to_bits();
    // Out-of-range lengths fail to compile (shift overflow in a constant).
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    assert!(network & !mask == 0, "host bits set in a special-purpose prefix");
    Block { prefix: IpAddr::V4(Ipv4Addr::from_bits(network)), len, name, network: network as u128, mask: mask as u128 }
}

const fn v6(prefix: u128, len: u8, name: &'static str) -> Block {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    assert!(prefix & !mask == 0, "host bits set in a special-purpose prefix");
    Block { prefix: IpAddr::V6(Ipv6Addr::from_bits(prefix)), len, name, network: prefix, mask }
}

/// The IPv4 deny list (see the module documentation for the source).
pub const IPV4: &[Block] = &[
    v4(0, 0, 0, 0, 32, "this host on this network (RFC 1122 §3.2.1.3)"),
    v4(0, 0, 0, 0, 8, "this network (RFC 791 §3.2)"),
    v4(10, 0, 0, 0, 8, "private-use (RFC 1918)"),
    v4(100, 64, 0, 0, 10, "shared address space (RFC 6598)"),
    v4(127, 0, 0, 0, 8, "loopback (RFC 1122 §3.2.1.3)"),
    v4(169, 254, 0, 0, 16, "link-local (RFC 3927)"),
    v4(172, 16, 0, 0, 12, "private-use (RFC 1918)"),
    v4(192, 0, 0, 0, 29, "IPv4 service continuity prefix (RFC 7335)"),
    v4(192, 0, 0, 8, 32, "IPv4 dummy address (RFC 7600)"),
    v4(192, 0, 0, 170, 32, "NAT64/DNS64 discovery (RFC 8880)"),
    v4(192, 0, 0, 171, 32, "NAT64/DNS64 discovery (RFC 8880)"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments (RFC 6890 §2.1)"),
    v4(192, 0, 2, 0, 24, "documentation TEST-NET-1 (RFC 5737)"),
    v4(192, 88, 99, 2, 32, "6a44-relay anycast (RFC 6751)"),
    v4(192, 88, 99, 0, 24, "deprecated 6to4 relay anycast (RFC 7526)"),
    v4(192, 168, 0, 0, 16, "private-use (RFC 1918)"),
    v4(198, 18, 0, 0, 15, "benchmarking (RFC 2544)"),
    v4(198, 51, 100, 0, 24, "documentation TEST-NET-2 (RFC 5737)"),
    v4(203, 0, 113, 0, 24, "documentation TEST-NET-3 (RFC 5737)"),
    v4(224, 0, 0, 0, 4, "multicast (RFC 5771)"),
    v4(255, 255, 255, 255, 32, "limited broadcast (RFC 919 §7)"),
    v4(240, 0, 0, 0, 4, "reserved (RFC 1112 §4)"),
];

/// The IPv6 deny list (see the module documentation for the source).
pub const IPV6: &[Block] = &[
    v6(0, 128, "unspecified (RFC 4291)"),
    v6(1, 128, "loopback (RFC 4291)"),
    v6(0x0064_ff9b_0001 << 80, 48, "local-use IPv4/IPv6 translation (RFC 8215)"),
    v6(0, 8, "reserved by the IETF (RFC 4291)"),
    v6(0x0100 << 112, 64, "discard-only (RFC 6666)"),
    v6((0x0100 << 112) | (1 << 64), 64, "dummy IPv6 prefix (RFC 9780)"),
    v6(0x2001_0002_0000 << 80, 48, "benchmarking (RFC 5180)"),
    v6(0x2001_0010 << 96, 28, "deprecated ORCHID (RFC 4843)"),
    v6(0x2001 << 112, 23, "IETF protocol assignments (RFC 2928)"),
    v6(0x2001_0db8 << 96, 32, "documentation (RFC 3849)"),
    v6(0x3fff << 112, 20, "documentation (RFC 9637)"),
    v6(0x5f00 << 112, 16, "SRv6 SIDs (RFC 9602)"),
    v6(0xfc00 << 112, 7, "unique-local (RFC 4193)"),
    v6(0xfe80 << 112, 10, "link-local (RFC 4291)"),
    v6(0xfec0 << 112, 10, "site-local, deprecated (RFC 3879)"),
    v6(0xff00 << 112, 8, "multicast (RFC 4291 §2.7)"),
];

/// IPv6 transition prefixes denied whole by default, whatever IPv4 address they carry: 6to4 and
/// Teredo reach a peer through a relay the operator does not choose, so a permission for one is a
/// way around the peer policy (RFC 8656 §21.4, RFC 6156 §9). Kept apart from [`IPV6`] because
/// `allowed-peer-ip` may open them by the address as spelled or by the IPv4 address(es) they carry.
pub const TUNNELS: &[Block] = &[
    v6(0x2002 << 112, 16, "6to4 (RFC 3056), denied by default (RFC 8656 §21.4)"),
    v6(0x2001_0000 << 96, 32, "Teredo (RFC 4380), denied by default (RFC 8656 §21.4)"),
];

/// The [`TUNNELS`] block that holds `ip`, if any.
#[inline]
pub fn tunnel(ip: Ipv6Addr) -> Option<&'static Block> {
    let bits = ip.to_bits();
    TUNNELS.iter().find(|b| b.matches(bits))
}

/// The first block of the deny list that holds `ip`, as written (no IPv4 unwrapping here).
#[inline]
pub fn lookup(ip: IpAddr) -> Option<&'static Block> {
    match ip {
        IpAddr::V4(a) => {
            let bits = u128::from(a.to_bits());
            IPV4.iter().find(|b| b.matches(bits))
        }
        IpAddr::V6(a) => {
            let bits = a.to_bits();
            IPV6.iter().find(|b| b.matches(bits))
        }
    }
}
