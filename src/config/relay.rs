//! Where relay sockets open and what clients are told: `relay-ip` and `external-ip` mapped onto
//! the [`RelayAddress`] list of [`ServerOptions`](crate::server::ServerOptions).
//!
//! * `relay-ip` given: one relay address per entry.
//! * `external-ip` given without `relay-ip`: one per listening address (the core uses the first of
//!   each family, so the addresses `external-ip` maps come first).
//! * neither: the list stays empty and the core opens each relay socket on the address the
//!   Allocate request arrived on (right for every host with one address per family).
//!
//! Each address is then mapped through `external-ip`: `PUBLIC/PRIVATE` advertises PUBLIC for relay
//! sockets on PRIVATE (an unspecified address of PRIVATE's family stands for PRIVATE); `PUBLIC` alone
//! advertises PUBLIC for every relay address of its family.

use std::net::IpAddr;

use super::{ConfigError, ExternalIp};
use crate::server::RelayAddress;

/// The relay addresses for these options, without duplicates.
pub fn relay_addresses(
    relay_ip: &[IpAddr],
    listening_ip: &[IpAddr],
    external: Option<ExternalIp>,
) -> Vec<RelayAddress> {
    let sources = match (relay_ip.is_empty(), external.is_some()) {
        (false, _) => relay_ip,
        (true, true) => listening_ip,
        (true, false) => return Vec::new(),
    };
    let mut out: Vec<RelayAddress> = Vec::new();
    for &ip in sources {
        let addr = map(ip, external);
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    // The core takes the first address of each family: a mapped one wins over an unmapped one.
    out.sort_by_key(|r| r.local == r.advertised);
    out
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn map(ip: IpAddr, external: Option<ExternalIp>) -> RelayAddress {
    let unchanged = RelayAddress { local: ip, advertised: ip };
    match external {
        Some(ExternalIp { public, private: Some(private) }) => {
            if private == ip || (ip.is_unspecified() && same_family(private, ip)) {
                RelayAddress { local: private, advertised: public }
            } else {
                unchanged
            }
        }
        Some(ExternalIp { public, private: None }) if same_family(public, ip) => {
            RelayAddress { local: ip, advertised: public }
        }
        _ => unchanged,
    }
}

/// What no single key can check: an advertised address must be specific, `external-ip` must apply
/// to some relay address, and the core uses one relay address per family.
pub(super) fn check(
    relay_ip: &[IpAddr],
    listening_ip: &[IpAddr],
    external: Option<ExternalIp>,
) -> Result<(), ConfigError> {
    for family in [true, false] {
        if relay_ip.iter().filter(|ip| ip.is_ipv4() == family).count() > 1 {
            return Err(ConfigError::invalid("relay-ip", "at most one IPv4 and one IPv6 address"));
        }
    }
    let addrs = relay_addresses(relay_ip, listening_ip, external);
    if let Some(r) = addrs.iter().find(|r| r.advertised.is_unspecified() && relay_ip.contains(&r.local)) {
        return Err(ConfigError::invalid(
            "relay-ip",
            format!("`{}` cannot be told to clients: give a specific address, or external-ip", r.local),
        ));
    }
    if let Some(external) = external
        && !addrs.iter().any(|r| r.advertised == external.public)
    {
        let among = if relay_ip.is_empty() { "listening-ip" } else { "relay-ip" };
        return Err(ConfigError::invalid(
            "external-ip",
            format!("`{external}` matches no address of {among} (same family; PRIVATE must be one of them)"),
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

    fn ext(s: &str) -> Option<ExternalIp> {
        Some(s.parse().unwrap())
    }

    fn ra(local: &str, advertised: &str) -> RelayAddress {
        RelayAddress { local: ip(local), advertised: ip(advertised) }
    }

    #[test]
    fn nothing_set_means_the_arrival_address() {
        assert!(relay_addresses(&[], &[ip("127.0.0.1"), ip("10.0.0.1")], None).is_empty());
        assert!(relay_addresses(&[], &[ip("0.0.0.0")], None).is_empty());
    }

    #[test]
    fn relay_ip_list() {
        let r = relay_addresses(&[ip("10.0.0.5"), ip("2001:db8::5")], &[ip("0.0.0.0")], None);
        assert_eq!(r, vec![ra("10.0.0.5", "10.0.0.5"), ra("2001:db8::5", "2001:db8::5")]);
    }

    #[test]
    fn external_ip_public_only_maps_its_family() {
        let r = relay_addresses(&[], &[ip("0.0.0.0"), ip("::")], ext("203.0.113.4"));
        assert_eq!(r, vec![ra("0.0.0.0", "203.0.113.4"), ra("::", "::")]);
        let r = relay_addresses(&[ip("10.0.0.5")], &[], ext("203.0.113.4"));
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4")]);
    }

    #[test]
    fn external_ip_with_private() {
        let e = ext("203.0.113.4/10.0.0.5");
        let r = relay_addresses(&[ip("10.0.0.5"), ip("2001:db8::5")], &[], e);
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4"), ra("2001:db8::5", "2001:db8::5")]);
        // Listening on every address: relay on PRIVATE.
        assert_eq!(relay_addresses(&[], &[ip("0.0.0.0")], e), vec![ra("10.0.0.5", "203.0.113.4")]);
        // The mapped address comes first: the core takes the first of each family.
        let r = relay_addresses(&[], &[ip("127.0.0.1"), ip("10.0.0.5")], e);
        assert_eq!(r, vec![ra("10.0.0.5", "203.0.113.4"), ra("127.0.0.1", "127.0.0.1")]);
        // Another private address is left alone.
        assert_eq!(relay_addresses(&[ip("10.0.0.6")], &[], e), vec![ra("10.0.0.6", "10.0.0.6")]);
    }

    #[test]
    fn checks() {
        check(&[], &[ip("0.0.0.0")], None).unwrap();
        check(&[], &[ip("0.0.0.0")], ext("203.0.113.4")).unwrap();
        check(&[], &[ip("0.0.0.0")], ext("203.0.113.4/10.0.0.5")).unwrap();
        check(&[ip("0.0.0.0")], &[], ext("203.0.113.4")).unwrap();
        let err = check(&[ip("0.0.0.0")], &[], None).unwrap_err();
        assert!(err.to_string().contains("relay-ip"), "{err}");
        let err = check(&[ip("10.0.0.1"), ip("10.0.0.2")], &[], None).unwrap_err();
        assert!(err.to_string().contains("relay-ip"), "{err}");
        let err = check(&[ip("10.0.0.6")], &[], ext("203.0.113.4/10.0.0.5")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
        let err = check(&[], &[ip("127.0.0.1")], ext("2001:db8::1")).unwrap_err();
        assert!(err.to_string().contains("external-ip"), "{err}");
    }
}
