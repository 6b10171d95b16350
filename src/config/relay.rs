//! Where relay sockets open and what clients are told: `relay-ip` and `external-ip` mapped onto
//! the [`RelayAddress`] list of [`ServerOptions`](crate::server::ServerOptions).
//!
//! * `relay-ip` given: one relay address per entry; the core spreads allocations round-robin over
//!   the addresses of each family.
//! * `external-ip` given without `relay-ip`: the listening addresses; per family the ones
//!   `external-ip` maps (several, for several `PUBLIC/PRIVATE` entries), or else the first.
//! * neither: the list stays empty and the core opens each relay socket on the address the
//!   Allocate request arrived on (right for every host with one address per family).
//!
//! Each address is then mapped through `external-ip` (repeatable): `PUBLIC/PRIVATE` advertises
//! PUBLIC for relay sockets on PRIVATE (an unspecified address stands for every PRIVATE of its
//! family); `PUBLIC` alone advertises PUBLIC for every other relay address of its family.

use std::net::{IpAddr, SocketAddr};

use super::{ConfigError, ExternalIp};
use crate::server::RelayAddress;

/// The relay addresses for these options, without duplicates.
pub fn relay_addresses(relay_ip: &[IpAddr], listening_ip: &[IpAddr], external: &[ExternalIp]) -> Vec<RelayAddress> {
    let sources = match (relay_ip.is_empty(), external.is_empty()) {
        (false, _) => relay_ip,
        (true, false) => listening_ip,
        (true, true) => return Vec::new(),
    };
    let mut out: Vec<RelayAddress> = Vec::new();
    for &ip in sources {
        let privates: Vec<IpAddr> = match ip.is_unspecified() {
            true => external.iter().filter_map(|e| e.private).filter(|p| same_family(*p, ip)).collect(),
            false => Vec::new(),
        };
        let locals = if privates.is_empty() { vec![ip] } else { privates };
        for local in locals {
            let addr = map(local, external);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
    }
    if relay_ip.is_empty() {
        // Derived from the listening addresses: per family the mapped ones, else the first.
        for v4 in [true, false] {
            let any_mapped = out.iter().any(|r| r.local.is_ipv4() == v4 && r.local != r.advertised);
            let mut first = true;
            out.retain(|r| match (r.local.is_ipv4() == v4, any_mapped) {
                (false, _) => true,
                (true, true) => r.local != r.advertised,
                (true, false) => std::mem::replace(&mut first, false),
            });
        }
    }
    out
}

/// The address clients are told for `addr` of this host (a listener, for the iceServers URLs):
/// mapped through `external-ip` like the relay addresses, so URLs and XOR-RELAYED-ADDRESS agree.
pub fn advertised_addr(addr: SocketAddr, external: &[ExternalIp]) -> SocketAddr {
    SocketAddr::new(map(addr.ip(), external).advertised, addr.port())
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn map(ip: IpAddr, external: &[ExternalIp]) -> RelayAddress {
    if let Some(e) = external.iter().find(|e| e.private == Some(ip)) {
        return RelayAddress { local: ip, advertised: e.public };
    }
    if ip.is_unspecified()
        && let Some((e, private)) =
            external.iter().find_map(|e| e.private.filter(|p| same_family(*p, ip)).map(|p| (e, p)))
    {
        return RelayAddress { local: private, advertised: e.public };
    }
    match external.iter().find(|e| e.private.is_none() && same_family(e.public, ip)) {
        Some(e) => RelayAddress { local: ip, advertised: e.public },
        None => RelayAddress { local: ip, advertised: ip },
    }
}

/// What no single key can check: an advertised address must be specific, each `external-ip` must
/// apply to some relay address, one entry per PRIVATE and one `PUBLIC` alone per family, and
/// `PUBLIC` alone cannot stand for several relay addresses (two allocations on different private
/// addresses could get the same public address and port).
pub(super) fn check(relay_ip: &[IpAddr], listening_ip: &[IpAddr], external: &[ExternalIp]) -> Result<(), ConfigError> {
    for (i, ip) in relay_ip.iter().enumerate() {
        if relay_ip.get(..i).is_some_and(|before| before.contains(ip)) {
            return Err(ConfigError::invalid("relay-ip", format!("`{ip}` is listed twice")));
        }
    }
    for (i, e) in external.iter().enumerate() {
        let before = external.get(..i).unwrap_or_default();
        let clash = before.iter().find(|b| match (b.private, e.private) {
            (Some(a), Some(b)) => a == b,
            (None, None) => same_family(b.public, e.public),
            _ => false,
        });
        if let Some(b) = clash {
            let message = format!(
                "`{e}` and `{b}` map the same addresses: one PUBLIC/PRIVATE per PRIVATE, one PUBLIC alone per family"
            );
            return Err(ConfigError::invalid("external-ip", message));
        }
        if e.private.is_none() && relay_ip.iter().filter(|ip| same_family(**ip, e.public)).count() > 1 {
            return Err(ConfigError::invalid(
                "external-ip",
                format!("`{e}` alone cannot stand for several relay-ip addresses: write PUBLIC/PRIVATE"),
            ));
        }
    }
    let addrs = relay_addresses(relay_ip, listening_ip, external);
    if let Some(r) = addrs.iter().find(|r| r.advertised.is_unspecified() && relay_ip.contains(&r.local)) {
        return Err(ConfigError::invalid(
            "relay-ip",
            format!("`{}` cannot be told to clients: give a specific address, or external-ip", r.local),
        ));
    }
    if let Some(e) = external.iter().find(|e| !addrs.iter().any(|r| r.advertised == e.public)) {
        let among = if relay_ip.is_empty() { "listening-ip" } else { "relay-ip" };
        return Err(ConfigError::invalid(
            "external-ip",
            format!("`{e}` matches no address of {among} (same family; PRIVATE must be one of them)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ext(s: &str) -> Vec<ExternalIp> {
        s.split(',').map(|e| e.parse().unwrap()).collect()
    }

    fn ra(local: &str, advertised: &str) -> RelayAddress {
        RelayAddress { local: ip(local), advertised: ip(advertised) }
    }

    #[test]
    fn nothing_set_means_the_arrival_address() {
        assert!(relay_addresses(&[], &[ip("127.0.0.1"), ip("10.0.0.1")], &[]).is_empty());
        assert!(relay_addresses(&[], &[ip("0.0.0.0")], &[]).is_empty());
    }

    #[test]
    fn relay_ip_list() {
        let r = relay_addresses(&[ip("10.0.0.5"), ip("2001:db8::5")], &[ip("0.0.0.0")], &[]);
        assert_eq!(r, vec![ra("10.0.0.5", "10.0.0.5"), ra("2001:db8::5", "2001:db8::5")]);
    }

    #[test]
    fn external_ip_public_only_maps_its_family() {
        let r = relay_addresses(&[], &[ip("0.0.0.0"), ip("::")], &ext("203.0.113.4"));
        assert_eq!(r, vec![ra("0.0.0.0", "203.0.113.4"), ra("::", "::")]);
        let r = relay_addresses(&[ip("10.0.0.5")], &[], &ext("203.0.113.4"));
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4")]);
    }

    #[test]
    fn external_ip_with_private() {
        let e = ext("203.0.113.4/10.0.0.5");
        let r = relay_addresses(&[ip("10.0.0.5"), ip("2001:db8::5")], &[], &e);
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4"), ra("2001:db8::5", "2001:db8::5")]);
        // Listening on every address: relay on PRIVATE.
        assert_eq!(relay_addresses(&[], &[ip("0.0.0.0")], &e), vec![ra("10.0.0.5", "203.0.113.4")]);
        // From the listening addresses: one per family, the mapped one.
        let r = relay_addresses(&[], &[ip("127.0.0.1"), ip("10.0.0.5")], &e);
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4")]);
        // Another private address is left alone.
        assert_eq!(relay_addresses(&[ip("10.0.0.6")], &[], &e), vec![ra("10.0.0.6", "10.0.0.6")]);
    }

    #[test]
    fn several_per_family_keep_their_order() {
        let r = relay_addresses(&[ip("127.0.0.1"), ip("127.0.0.2"), ip("::1")], &[], &[]);
        assert_eq!(r, vec![ra("127.0.0.1", "127.0.0.1"), ra("127.0.0.2", "127.0.0.2"), ra("::1", "::1")]);
        let e = ext("203.0.113.4/10.0.0.5");
        let r = relay_addresses(&[ip("10.0.0.6"), ip("10.0.0.5")], &[], &e);
        assert_eq!(r, vec![ra("10.0.0.6", "10.0.0.6"), ra("10.0.0.5", "203.0.113.4")]);
    }

    #[test]
    fn several_mappings_for_several_private_addresses() {
        // A cloud VM with two private addresses, each with its own public one.
        let e = ext("203.0.113.4/10.0.0.5,203.0.113.6/10.0.0.6");
        let both = vec![ra("10.0.0.5", "203.0.113.4"), ra("10.0.0.6", "203.0.113.6")];
        assert_eq!(relay_addresses(&[ip("10.0.0.5"), ip("10.0.0.6")], &[], &e), both);
        // Listening on every address: relay on each PRIVATE.
        assert_eq!(relay_addresses(&[], &[ip("0.0.0.0")], &e), both);
        assert_eq!(relay_addresses(&[], &[ip("10.0.0.5"), ip("127.0.0.1"), ip("10.0.0.6")], &e), both);
        check(&[], &[ip("0.0.0.0")], &e).unwrap();
        check(&[ip("10.0.0.5"), ip("10.0.0.6")], &[], &e).unwrap();
        // The other family keeps its first address; PUBLIC alone maps it.
        let e6 = ext("203.0.113.4/10.0.0.5,203.0.113.6/10.0.0.6,2001:db8::99");
        let r = relay_addresses(&[], &[ip("0.0.0.0"), ip("::")], &e6);
        assert_eq!(r, [both, vec![ra("::", "2001:db8::99")]].concat());
        // Two entries for one PRIVATE, or two PUBLIC alone of a family, are refused.
        let err = check(&[], &[ip("0.0.0.0")], &ext("203.0.113.4/10.0.0.5,203.0.113.6/10.0.0.5")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
        let err = check(&[], &[ip("10.0.0.5")], &ext("203.0.113.4,203.0.113.6")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
        // Each entry must apply to some address.
        let err = check(&[ip("10.0.0.5")], &[], &ext("203.0.113.4/10.0.0.5,203.0.113.6/10.0.0.6")).unwrap_err();
        assert!(err.to_string().contains("203.0.113.6/10.0.0.6"), "{err}");
    }

    #[test]
    fn listener_urls_use_the_advertised_address() {
        let sa = |s: &str| s.parse::<SocketAddr>().unwrap();
        let e = ext("203.0.113.4/10.0.0.5");
        assert_eq!(advertised_addr(sa("10.0.0.5:3478"), &e), sa("203.0.113.4:3478"));
        assert_eq!(advertised_addr(sa("0.0.0.0:3478"), &e), sa("203.0.113.4:3478"));
        assert_eq!(advertised_addr(sa("127.0.0.1:3478"), &e), sa("127.0.0.1:3478"));
        assert_eq!(advertised_addr(sa("[::1]:3478"), &ext("203.0.113.4")), sa("[::1]:3478"));
        assert_eq!(advertised_addr(sa("10.0.0.9:5349"), &ext("203.0.113.4")), sa("203.0.113.4:5349"));
        assert_eq!(advertised_addr(sa("10.0.0.9:5349"), &[]), sa("10.0.0.9:5349"));
    }

    #[test]
    fn checks() {
        check(&[], &[ip("0.0.0.0")], &[]).unwrap();
        check(&[], &[ip("0.0.0.0")], &ext("203.0.113.4")).unwrap();
        check(&[], &[ip("0.0.0.0")], &ext("203.0.113.4/10.0.0.5")).unwrap();
        check(&[ip("0.0.0.0")], &[], &ext("203.0.113.4")).unwrap();
        let err = check(&[ip("0.0.0.0")], &[], &[]).unwrap_err();
        assert!(err.to_string().contains("relay-ip"), "{err}");
        // Several per family are fine; twice the same is not.
        check(&[ip("10.0.0.1"), ip("10.0.0.2"), ip("2001:db8::1"), ip("2001:db8::2")], &[], &[]).unwrap();
        let err = check(&[ip("10.0.0.1"), ip("10.0.0.1")], &[], &[]).unwrap_err();
        assert!(err.to_string().contains("relay-ip"), "{err}");
        // Several private addresses need PUBLIC/PRIVATE.
        let err = check(&[ip("10.0.0.1"), ip("10.0.0.2")], &[], &ext("203.0.113.4")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
        check(&[ip("10.0.0.1"), ip("10.0.0.2")], &[], &ext("203.0.113.4/10.0.0.1")).unwrap();
        check(&[ip("10.0.0.1"), ip("10.0.0.2"), ip("2001:db8::1")], &[], &ext("2001:db8::99")).unwrap();
        let err = check(&[ip("10.0.0.6")], &[], &ext("203.0.113.4/10.0.0.5")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
        let err = check(&[], &[ip("127.0.0.1")], &ext("2001:db8::1")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
    }
}
