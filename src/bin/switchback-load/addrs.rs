//! Where the tool may send: the address rules of `relay`, `forwarder` and `alloc` (loopback; with
//! `--netns-addresses` the benchmarking ranges of the caller's own network namespaces; never a
//! private or public address for the relay modes), and the clients' local address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use anyhow::{Context as _, Result, bail};

/// `addr` if it is a loopback address (the relay and forwarder modes stay on this machine).
pub fn loopback(addr: SocketAddr) -> Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        bail!("{addr}: the relay and forwarder modes only talk to loopback addresses (alloc works remotely)");
    }
    Ok(addr)
}

/// Whether `ip` is in a benchmarking range: 198.18.0.0/15 (RFC 2544 §C.2.2, RFC 6890) or
/// 2001:2::/48 (RFC 5180 §8), addresses no real network routes, which benches/xdp.sh gives its
/// network namespaces.
pub fn benchmarking(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => matches!(v4.octets(), [198, 18 | 19, _, _]),
        IpAddr::V6(v6) => matches!(v6.segments(), [0x2001, 0x0002, 0, ..]),
    }
}

/// `addr` if the relay mode may talk to it: loopback, or with `netns` (--netns-addresses, the
/// caller's own namespaces) a benchmarking address too. Private and public addresses never.
pub fn relay_addr(addr: SocketAddr, netns: bool) -> Result<SocketAddr> {
    if netns && benchmarking(addr.ip()) {
        return Ok(addr);
    }
    if netns && !addr.ip().is_loopback() {
        bail!(
            "{addr}: with --netns-addresses the relay mode talks to loopback and the benchmarking ranges \
             198.18.0.0/15 and 2001:2::/48 only"
        );
    }
    loopback(addr)
}

/// `HOST:PORT` to one address (the first the resolver gives).
pub fn resolve(server: &str) -> Result<SocketAddr> {
    let mut addrs = server.to_socket_addrs().with_context(|| format!("--server {server}: expected HOST:PORT"))?;
    addrs.next().with_context(|| format!("--server {server}: no address"))
}

/// The clients' local address for `server`: as given (same family), else 127.0.0.2 for a loopback
/// IPv4 server, ::1 for a loopback IPv6 one, the unspecified address otherwise.
pub fn client_ip_for(server: SocketAddr, given: Option<IpAddr>) -> Result<IpAddr> {
    match given {
        Some(ip) if ip.is_ipv4() != server.is_ipv4() => {
            bail!("--client-ip {ip} and --server {server} differ in family")
        }
        Some(ip) if ip.is_loopback() != server.ip().is_loopback() => {
            bail!("--client-ip {ip} cannot reach --server {server} (one is loopback, the other not)")
        }
        Some(ip) => Ok(ip),
        None => Ok(match server.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => IpAddr::from([127, 0, 0, 2]),
            IpAddr::V4(_) => IpAddr::from(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(v6) if v6.is_loopback() => IpAddr::V6(v6),
            IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
        }),
    }
}
