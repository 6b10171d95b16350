//! (A test module: declared under #[cfg(test)] in its parent.)
//! The peer policy, decision by decision. Nothing here sends a packet: every test asks the policy
//! about an address and checks the answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::special::{self, Block};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn rules(list: &[&str]) -> Vec<PeerRule> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

fn policy(config: PeerPolicyConfig) -> PeerPolicy {
    PeerPolicy::new(config)
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_bits()),
        IpAddr::V6(a) => a.to_bits(),
    }
}

fn from_bits(v4: bool, x: u128) -> IpAddr {
    if v4 { IpAddr::V4(Ipv4Addr::from_bits(u32::try_from(x).unwrap())) } else { IpAddr::V6(Ipv6Addr::from_bits(x)) }
}

fn all_blocks() -> impl Iterator<Item = &'static Block> {
    special::IPV4.iter().chain(special::IPV6)
}

/// An independent reading of the table: the CIDR arithmetic of [`PeerAddrs`], first row wins.
fn reference(ip: IpAddr) -> Option<&'static str> {
    all_blocks().find(|b| PeerAddrs::Cidr { network: b.prefix, prefix: b.len }.contains(ip)).map(|b| b.name)
}

#[test]
fn every_row_is_a_valid_cidr_and_none_hides_behind_an_earlier_one() {
    for table in [special::IPV4, special::IPV6] {
        for (i, b) in table.iter().enumerate() {
            let text = format!("{}/{}", b.prefix, b.len);
            assert_eq!(text.parse::<PeerAddrs>(), Ok(PeerAddrs::Cidr { network: b.prefix, prefix: b.len }), "{text}");
            for earlier in &table[..i] {
                assert!(
                    !(earlier.len <= b.len && earlier.contains(b.prefix)),
                    "{text} ({}) is hidden behind {}/{}",
                    b.name,
                    earlier.prefix,
                    earlier.len
                );
            }
        }
    }
    assert!(special::IPV4.len() + special::IPV6.len() <= 40, "keep the scan short: it runs per packet");
}

#[test]
fn every_block_denies_its_first_middle_and_last_address_and_its_neighbours_follow_the_next_rule() {
    let p = PeerPolicy::default();
    for b in all_blocks() {
        let v4 = b.prefix.is_ipv4();
        let (first, last) = (bits(b.prefix), bits(b.last()));
        for x in [first, first + (last - first) / 2, last] {
            let x = from_bits(v4, x);
            let found = special::lookup(x).unwrap_or_else(|| panic!("{x} in {} is not in the table", b.name));
            assert!(found.contains(x));
            assert_eq!(Some(found.name), reference(x), "{x}");
            assert!(matches!(p.check_ip(x), Err(PeerDenied::SpecialPurpose(_))), "{x} ({}) is allowed", b.name);
            assert!(p.check_addr(SocketAddr::new(x, 50000)).is_err(), "{x} ({})", b.name);
        }
        let max = if v4 { u128::from(u32::MAX) } else { u128::MAX };
        let neighbours = [first.checked_sub(1), last.checked_add(1).filter(|n| *n <= max)];
        for n in neighbours.into_iter().flatten().map(|n| from_bits(v4, n)) {
            assert!(special::lookup(n).is_none_or(|c| c != b), "{n} is outside {}", b.name);
            assert_eq!(special::lookup(n).map(|c| c.name), reference(n), "{n} next to {}", b.name);
        }
    }
}

/// Hand-written edges, independent of the table's numbers: the address at each end of a block is
/// denied under the block's name, the one beside it is judged by whatever comes next.
#[test]
fn block_edges_by_hand() {
    let p = PeerPolicy::default();
    let denied: &[(&str, &str)] = &[
        ("0.0.0.0", "this host"),
        ("0.255.255.255", "this network"),
        ("10.0.0.0", "private-use"),
        ("10.255.255.255", "private-use"),
        ("100.64.0.0", "shared address space"),
        ("100.127.255.255", "shared address space"),
        ("127.0.0.0", "loopback"),
        ("127.255.255.255", "loopback"),
        ("169.254.0.0", "link-local"),
        ("169.254.169.254", "link-local"),
        ("172.16.0.0", "private-use"),
        ("172.31.255.255", "private-use"),
        ("192.0.0.0", "service continuity"),
        ("192.0.0.8", "dummy"),
        ("192.0.0.9", "IETF protocol assignments"),
        ("192.0.0.10", "IETF protocol assignments"),
        ("192.0.0.170", "NAT64/DNS64"),
        ("192.0.0.255", "IETF protocol assignments"),
        ("192.0.2.0", "TEST-NET-1"),
        ("192.0.2.255", "TEST-NET-1"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("192.88.99.2", "6a44"),
        ("192.168.0.0", "private-use"),
        ("192.168.255.255", "private-use"),
        ("198.18.0.0", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.0", "TEST-NET-2"),
        ("203.0.113.255", "TEST-NET-3"),
        ("224.0.0.0", "multicast"),
        ("239.255.255.255", "multicast"),
        ("240.0.0.0", "reserved"),
        ("255.255.255.254", "reserved"),
        ("255.255.255.255", "limited broadcast"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::1:0:0:0", "reserved by the IETF"),
        ("::ffff:0:7f00:1", "reserved by the IETF"),
        ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved by the IETF"),
        ("64:ff9b:1::", "local-use IPv4/IPv6 translation"),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use IPv4/IPv6 translation"),
        ("100::", "discard-only"),
        ("100::ffff:ffff:ffff:ffff", "discard-only"),
        ("100:0:0:1::", "dummy IPv6 prefix"),
        ("2001:1::1", "IETF protocol assignments"),
        ("2001:2::", "benchmarking"),
        ("2001:10::", "ORCHID"),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"),
        ("2001:db8::", "documentation"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("3fff::", "documentation"),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("5f00::1", "SRv6"),
        ("fc00::", "unique-local"),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local"),
        ("fe80::1", "link-local"),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
    ];
    for &(addr, name) in denied {
        match p.check_ip(ip(addr)) {
            Err(PeerDenied::SpecialPurpose(n)) => assert!(n.contains(name), "{addr}: {n}, expected {name}"),
            other => panic!("{addr}: {other:?}, expected {name}"),
        }
    }
    let allowed = [
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "100:0:0:2::",
        "2001:200::",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2003::1",
        "2620:4f:8000::1",
        "3ffe:ffff::1",
        "3fff:1000::",
        "5eff:ffff::1",
        "5f01::",
        "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fe00::1",
        "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    for addr in allowed {
        assert_eq!(p.check_ip(ip(addr)), Ok(()), "{addr}");
        assert_eq!(p.check_addr(SocketAddr::new(ip(addr), 3478)), Ok(()), "{addr}");
    }
}

/// Every IPv6 spelling of `v4` that carries it (the relay is told the IPv6 address, the network may
/// deliver to the IPv4 one).
fn spellings(v4: Ipv4Addr) -> Vec<(String, IpAddr)> {
    let x = v4.to_bits();
    let (hi, lo) = ((x >> 16) as u16, x as u16);
    let public = Ipv4Addr::new(8, 8, 8, 8).to_bits();
    let (phi, plo) = ((public >> 16) as u16, public as u16);
    let mut out = vec![
        ("IPv4-mapped".to_owned(), IpAddr::V6(v4.to_ipv6_mapped())),
        ("NAT64".to_owned(), IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo))),
        ("6to4".to_owned(), IpAddr::V6(Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1))),
        ("Teredo server".to_owned(), IpAddr::V6(Ipv6Addr::new(0x2001, 0, hi, lo, 0, 0x8000, !phi, !plo))),
        ("Teredo client".to_owned(), IpAddr::V6(Ipv6Addr::new(0x2001, 0, phi, plo, 0, 0x8000, !hi, !lo))),
        // RFC 6052 §2.2 layout for a /48: 16 bits, the zero octet u, 16 bits.
        ("local-use NAT64".to_owned(), IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 1, hi, lo >> 8, (lo & 0xff) << 8, 0, 0))),
    ];
    if x > 1 {
        out.push(("IPv4-compatible".to_owned(), IpAddr::V6(v4.to_ipv6_compatible())));
    }
    out
}

#[test]
fn ipv4_carried_in_ipv6_is_judged_as_ipv4() {
    let p = PeerPolicy::default();
    for v4 in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "0.0.0.0", "192.168.1.1"] {
        let v4: Ipv4Addr = v4.parse().unwrap();
        assert!(p.check_ip(IpAddr::V4(v4)).is_err(), "{v4}");
        for (form, v6) in spellings(v4) {
            assert!(matches!(p.check_ip(v6), Err(PeerDenied::SpecialPurpose(_))), "{v4} as {form} {v6}");
            assert!(p.check_addr(SocketAddr::new(v6, 50000)).is_err(), "{v4} as {form} {v6}");
        }
    }
    // The name is the IPv4 block's.
    assert_eq!(p.check_ip(ip("::ffff:169.254.169.254")), Err(PeerDenied::SpecialPurpose("link-local (RFC 3927)")));
    assert_eq!(p.check_ip(ip("64:ff9b::7f00:1")), Err(PeerDenied::SpecialPurpose("loopback (RFC 1122 §3.2.1.3)")));
    // A public address in the same spellings is allowed, except local-use NAT64, 6to4 and Teredo,
    // denied whole (RFC 8656 §21.4).
    let denied_whole = ["local-use NAT64", "6to4", "Teredo server", "Teredo client"];
    for (form, v6) in spellings(Ipv4Addr::new(1, 1, 1, 1)) {
        let expected = if denied_whole.contains(&form.as_str()) { Err(PeerDenied::SpecialPurpose("")) } else { Ok(()) };
        let got = p.check_ip(v6).map_err(|_| PeerDenied::SpecialPurpose(""));
        assert_eq!(got, expected, "1.1.1.1 as {form} {v6}");
    }
}

#[test]
fn embedded_forms_are_unwrapped_exactly() {
    let v4 = |s: &str| Embedded::One(s.parse().unwrap());
    assert_eq!(embedded_ipv4("::ffff:10.1.2.3".parse().unwrap()), v4("10.1.2.3"));
    assert_eq!(embedded_ipv4("::10.1.2.3".parse().unwrap()), v4("10.1.2.3"));
    assert_eq!(embedded_ipv4("::2".parse().unwrap()), v4("0.0.0.2"));
    assert_eq!(embedded_ipv4("::".parse().unwrap()), Embedded::None);
    assert_eq!(embedded_ipv4("::1".parse().unwrap()), Embedded::None);
    assert_eq!(embedded_ipv4("64:ff9b::a01:203".parse().unwrap()), v4("10.1.2.3"));
    assert_eq!(embedded_ipv4("64:ff9b:0:0:0:1:a01:203".parse().unwrap()), Embedded::None);
    assert_eq!(embedded_ipv4("2002:a01:203:4::5".parse().unwrap()), v4("10.1.2.3"));
    // RFC 4380 §4's example: server 65.54.227.120, client 192.0.2.45 (stored as 3fff:fdd2).
    assert_eq!(
        embedded_ipv4("2001:0:4136:e378:8000:63bf:3fff:fdd2".parse().unwrap()),
        Embedded::Teredo { server: "65.54.227.120".parse().unwrap(), client: "192.0.2.45".parse().unwrap() }
    );
    assert_eq!(embedded_ipv4("2001:1::1".parse().unwrap()), Embedded::None);
    assert_eq!(embedded_ipv4("2606:4700::1111".parse().unwrap()), Embedded::None);
}

#[test]
fn the_cve_spellings_are_denied() {
    let p = PeerPolicy::default();
    // CVE-2020-26262 (0.0.0.0, [::], [::1], 0.1.2.3) and CVE-2026-27624 (::ffff:127.0.0.1).
    for peer in ["0.0.0.0:80", "[::]:80", "[::1]:80", "0.1.2.3:80", "[::ffff:127.0.0.1]:80"] {
        let peer = sa(peer);
        assert!(p.check_ip(peer.ip()).is_err(), "{peer}");
        assert!(p.check_addr(peer).is_err(), "{peer}");
    }
    // allow-loopback opens loopback, not what reached it.
    let p = policy(PeerPolicyConfig { allow_loopback: true, ..Default::default() });
    for peer in ["0.0.0.0:80", "[::]:80", "0.1.2.3:80", "[::ffff:0.0.0.0]:80"] {
        assert!(p.check_addr(sa(peer)).is_err(), "{peer}");
    }
    for peer in ["127.0.0.1:80", "127.9.9.9:80", "[::1]:80", "[::ffff:127.0.0.1]:80", "[::127.0.0.1]:80"] {
        assert_eq!(p.check_addr(sa(peer)), Ok(()), "{peer}");
    }
}

#[test]
fn public_addresses_are_allowed() {
    let p = PeerPolicy::default();
    for peer in ["8.8.8.8:53", "1.1.1.1:3478", "[2606:4700::1111]:443", "[::ffff:8.8.8.8]:53"] {
        let peer = sa(peer);
        assert_eq!(p.check_ip(peer.ip()), Ok(()), "{peer}");
        assert_eq!(p.check_addr(peer), Ok(()), "{peer}");
    }
}

#[test]
fn allow_loopback_opens_loopback_only() {
    let p = policy(PeerPolicyConfig { allow_loopback: true, ..Default::default() });
    assert!(p.allows_loopback());
    for other in ["10.0.0.1", "169.254.169.254", "192.168.1.1", "fe80::1", "::ffff:10.0.0.1"] {
        assert!(p.check_ip(ip(other)).is_err(), "{other}");
    }
}

#[test]
fn own_addresses_are_reachable_only_on_relay_ports() {
    let own = PeerPolicyConfig {
        own_addresses: vec![ip("1.2.3.4"), ip("::ffff:5.6.7.8"), ip("2606:4700::7"), ip("0.0.0.0"), ip("::")],
        relay_ports: (50000, 50999),
        ..Default::default()
    };
    let p = policy(own.clone());
    for host in ["1.2.3.4", "5.6.7.8", "[::ffff:1.2.3.4]", "[2606:4700::7]"] {
        // CreatePermission has no port: allowed (the port is enforced per packet).
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        assert_eq!(p.check_ip(ip(bare)), Ok(()), "{host}");
        for port in [50000, 50500, 50999] {
            assert_eq!(p.check_addr(sa(&format!("{host}:{port}"))), Ok(()), "{host}:{port}");
        }
        for port in [1, 22, 3478, 49999, 51000, 65535] {
            assert_eq!(p.check_addr(sa(&format!("{host}:{port}"))), Err(PeerDenied::OwnAddress), "{host}:{port}");
        }
    }
    // Unspecified own addresses carry no information: other hosts are unaffected.
    assert_eq!(p.check_addr(sa("1.2.3.5:22")), Ok(()));
    assert_eq!(p.check_addr(sa("[2606:4700::8]:22")), Ok(()));

    // An own address that is itself special-purpose stays denied, in the relay range too...
    let p = policy(PeerPolicyConfig { own_addresses: vec![ip("127.0.0.1")], ..own.clone() });
    assert!(matches!(p.check_ip(ip("127.0.0.1")), Err(PeerDenied::SpecialPurpose(_))));
    assert!(matches!(p.check_addr(sa("127.0.0.1:50000")), Err(PeerDenied::SpecialPurpose(_))));
    // ...unless the operator opens it: allow-loopback opens loopback on every port, as does a rule.
    let p = policy(PeerPolicyConfig { allow_loopback: true, own_addresses: vec![ip("127.0.0.1")], ..own.clone() });
    assert_eq!(p.check_addr(sa("127.0.0.1:50000")), Ok(()));
    assert_eq!(p.check_addr(sa("127.0.0.1:3478")), Ok(()));
    let p = policy(PeerPolicyConfig {
        allowed: rules(&["127.0.0.1"]),
        own_addresses: vec![ip("127.0.0.1")],
        ..own.clone()
    });
    assert_eq!(p.check_addr(sa("127.0.0.1:3478")), Ok(()));
    assert!(p.check_addr(sa("127.0.0.2:3478")).is_err());
    // An allow rule with a port opens just that port of an own address.
    let p = policy(PeerPolicyConfig { allowed: rules(&["1.2.3.4@22-22"]), ..own });
    assert_eq!(p.check_addr(sa("1.2.3.4:22")), Ok(()));
    assert_eq!(p.check_addr(sa("1.2.3.4:23")), Err(PeerDenied::OwnAddress));
}

#[test]
fn allowed_peer_ip_wins_over_every_deny() {
    let p = policy(PeerPolicyConfig {
        allowed: rules(&["10.0.0.0/8", "172.16.5.5@5000-5001", "8.8.4.4"]),
        denied: rules(&["8.8.4.0/24"]),
        ..Default::default()
    });
    for addr in ["10.0.0.1", "10.255.255.255", "::ffff:10.1.2.3", "2002:a01:203::1", "64:ff9b::a01:203"] {
        assert_eq!(p.check_ip(ip(addr)), Ok(()), "{addr}");
    }
    assert_eq!(p.check_addr(sa("10.1.2.3:22")), Ok(()));
    assert!(p.check_ip(ip("172.16.0.1")).is_err());
    assert!(p.check_ip(ip("192.168.1.1")).is_err());
    // A port rule allows the IP for a permission, then only its ports.
    assert_eq!(p.check_ip(ip("172.16.5.5")), Ok(()));
    assert_eq!(p.check_addr(sa("172.16.5.5:5000")), Ok(()));
    assert_eq!(p.check_addr(sa("172.16.5.5:5001")), Ok(()));
    assert!(matches!(p.check_addr(sa("172.16.5.5:5002")), Err(PeerDenied::SpecialPurpose(_))));
    assert!(matches!(p.check_addr(sa("172.16.5.5:4999")), Err(PeerDenied::SpecialPurpose(_))));
    assert!(p.check_ip(ip("172.16.5.6")).is_err());
    // Allow beats the operator's own deny list too.
    assert_eq!(p.check_ip(ip("8.8.4.4")), Ok(()));
    assert_eq!(p.check_ip(ip("8.8.4.5")), Err(PeerDenied::Operator));
    // A Teredo address passes only if both addresses it carries pass.
    assert_eq!(p.check_ip(ip("2001:0:a00:1:0:8000:f5fe:fefe")), Ok(()), "server 10.0.0.1, client 10.1.1.1");
    assert!(p.check_ip(ip("2001:0:a00:1:0:8000:3f57:fefe")).is_err(), "client 192.168.1.1");
}

#[test]
fn denied_peer_ip_adds_to_the_deny_list() {
    // Decision only: 8.8.4.0/24 is public and nothing is sent there.
    let p = policy(PeerPolicyConfig { denied: rules(&["8.8.4.0/24", "2606:4700::/32"]), ..Default::default() });
    // (6to4 2002:808:404::1 is denied whole before the operator's rules: see
    // six_to_four_and_teredo_are_denied_unless_allowed.)
    for addr in ["8.8.4.0", "8.8.4.4", "8.8.4.255", "::ffff:8.8.4.4", "2606:4700::1111"] {
        assert_eq!(p.check_ip(ip(addr)), Err(PeerDenied::Operator), "{addr}");
        assert_eq!(p.check_addr(SocketAddr::new(ip(addr), 3478)), Err(PeerDenied::Operator), "{addr}");
    }
    assert_eq!(p.check_ip(ip("8.8.8.8")), Ok(()));
    assert_eq!(p.check_ip(ip("8.8.5.0")), Ok(()));
    // A deny rule with ports denies no permission, only those ports.
    let p = policy(PeerPolicyConfig { denied: rules(&["8.8.4.0/24@5000-6000"]), ..Default::default() });
    assert_eq!(p.check_ip(ip("8.8.4.4")), Ok(()));
    assert_eq!(p.check_addr(sa("8.8.4.4:5000")), Err(PeerDenied::Operator));
    assert_eq!(p.check_addr(sa("8.8.4.4:6000")), Err(PeerDenied::Operator));
    assert_eq!(p.check_addr(sa("8.8.4.4:6001")), Ok(()));
    // It still applies where allow-loopback opened loopback: protect a local service.
    let p = policy(PeerPolicyConfig {
        allow_loopback: true,
        denied: rules(&["127.0.0.1@3478-3478"]),
        ..Default::default()
    });
    assert_eq!(p.check_addr(sa("127.0.0.1:3478")), Err(PeerDenied::Operator));
    assert_eq!(p.check_addr(sa("[::ffff:127.0.0.1]:3478")), Err(PeerDenied::Operator));
    assert_eq!(p.check_addr(sa("127.0.0.1:9")), Ok(()));
}

#[test]
fn denial_reasons_read_well() {
    let p = PeerPolicy::default();
    let e = p.check_ip(ip("169.254.169.254")).unwrap_err();
    assert_eq!(e.to_string(), "special-purpose address: link-local (RFC 3927)");
    assert_eq!(PeerDenied::OwnAddress.to_string(), "the server's own address outside the relay port range");
    assert!(std::mem::size_of::<PeerDenied>() <= 24);
}

/// RFC 8656 §21.4: 6to4 and Teredo peers are refused by default whatever IPv4 address they carry;
/// `allowed-peer-ip` opens them by their IPv6 prefix or by the IPv4 address(es) they carry.
#[test]
fn six_to_four_and_teredo_are_denied_unless_allowed() {
    let (six_to_four, teredo) = (ip("2002:808:808::1"), ip("2001:0:808:808:0:8000:f7f7:f7f7"));
    let p = PeerPolicy::default();
    for peer in [six_to_four, teredo] {
        assert!(matches!(p.check_ip(peer), Err(PeerDenied::SpecialPurpose(_))), "{peer}");
        assert!(p.check_addr(SocketAddr::new(peer, 3478)).is_err(), "{peer}");
    }
    let p = policy(PeerPolicyConfig { allowed: rules(&["2002::/16", "2001::/32"]), ..Default::default() });
    assert_eq!(p.check_ip(six_to_four), Ok(()));
    assert_eq!(p.check_ip(teredo), Ok(()));
    let p = policy(PeerPolicyConfig { allowed: rules(&["8.8.8.8"]), ..Default::default() });
    assert_eq!(p.check_ip(six_to_four), Ok(()));
    assert_eq!(p.check_ip(teredo), Ok(()), "server and client both 8.8.8.8");
    assert!(p.check_ip(ip("2002:101:101::1")).is_err(), "1.1.1.1 is not allowed");
}
