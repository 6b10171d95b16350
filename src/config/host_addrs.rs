//! Whether the addresses of `listening-ip` and `relay-ip` belong to this host: a warning (not an
//! error, the address may come up later, a floating IP say) for `--check-config` and the start.
//!
//! The check binds a UDP socket to `ADDR:0` and closes it: no packet is sent, and it works alike on
//! every Unix without listing interfaces. EADDRNOTAVAIL means the host does not have the address.
//! Wildcard and loopback addresses are always fine.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use super::Config;

impl Config {
    /// One warning per `listening-ip` or `relay-ip` address that this host cannot bind.
    pub fn address_warnings(&self) -> Vec<String> {
        let keyed = self.listening_ip.iter().map(|ip| ("listening-ip", *ip));
        let keyed = keyed.chain(self.relay_ip.iter().map(|ip| ("relay-ip", *ip)));
        keyed.filter_map(|(key, ip)| unavailable(ip).map(|why| format!("{key} {ip}: {why}"))).collect()
    }
}

/// The addresses of this host's interfaces (getifaddrs), link-local IPv6 ones left out (they need
/// a scope and are never a relayed address); empty when they cannot be read.
pub(super) fn interface_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Vec::new() };
    let mut out: Vec<IpAddr> = Vec::new();
    for a in addrs {
        let Some(storage) = a.address else { continue };
        let ip = match (storage.as_sockaddr_in(), storage.as_sockaddr_in6()) {
            (Some(v4), _) => IpAddr::V4(v4.ip()),
            (_, Some(v6)) if (v6.ip().segments()[0] & 0xffc0) != 0xfe80 => IpAddr::V6(v6.ip()),
            _ => continue,
        };
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Why this host cannot bind `ip`, or `None` when it can (or `ip` is a wildcard or loopback).
fn unavailable(ip: IpAddr) -> Option<String> {
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    match UdpSocket::bind(SocketAddr::new(ip, 0)) {
        Ok(_) => None,
        Err(e) if e.kind() == ErrorKind::AddrNotAvailable => Some(
            "not an address of this host (binding fails with EADDRNOTAVAIL): check the interface's addresses; \
             behind 1:1 NAT listen and relay on the private address and give the public one as external-ip"
                .to_owned(),
        ),
        Err(e) => Some(format!("cannot bind it here: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_the_host_lacks_is_warned_about() {
        // 192.0.2.0/24 and 198.51.100.0/24 are TEST-NET-1 and -2 (RFC 5737): documentation
        // addresses, not to be on a host (some test sandboxes use 192.0.2.2, so not that one).
        let config = Config {
            listening_ip: vec!["127.0.0.1".parse().unwrap(), "192.0.2.1".parse().unwrap()],
            relay_ip: vec!["0.0.0.0".parse().unwrap(), "198.51.100.1".parse().unwrap()],
            ..Config::default()
        };
        let warnings = config.address_warnings();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("listening-ip 192.0.2.1: not an address of this host"), "{warnings:?}");
        assert!(warnings[1].starts_with("relay-ip 198.51.100.1: not an address of this host"), "{warnings:?}");
    }

    #[test]
    fn wildcard_and_loopback_are_fine() {
        let config = Config {
            listening_ip: vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap(), "::1".parse().unwrap()],
            relay_ip: vec!["127.0.0.5".parse().unwrap()],
            ..Config::default()
        };
        assert_eq!(config.address_warnings(), Vec::<String>::new());
        assert_eq!(Config::default().address_warnings(), Vec::<String>::new());
    }
}
