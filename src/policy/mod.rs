//! Peer address policy: which peers a client may reach through the relay (RFC 8656 §21.3: a TURN
//! server must not become a way into the operator's network).
//!
//! This is the minimum the UDP relay needs: unspecified addresses are always refused, and loopback
//! (including IPv4 loopback carried in IPv6) unless the operator allows it. The security issue grows
//! this into the full special-purpose registry with operator allow/deny lists.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod bandwidth;
pub mod quota;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a peer was refused (answered with 403 Forbidden and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerDenied {
    /// 0.0.0.0 or :: (CVE-2020-26262 reached loopback through these).
    #[error("unspecified address")]
    Unspecified,
    /// A loopback address and loopback peers are not allowed.
    #[error("loopback address")]
    Loopback,
}

/// The peer policy.
#[derive(Clone, Debug, Default)]
pub struct PeerPolicy {
    /// Allow loopback peers (`--allow-loopback-peers`; tests and the loopback-only embedded default).
    pub allow_loopback: bool,
}

/// The IPv4 address carried by an IPv4-mapped or IPv4-compatible IPv6 address, if any.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    if s.iter().take(6).all(|x| *x == 0) && !ip.is_loopback() && !ip.is_unspecified() {
        return ip.to_ipv4();
    }
    None
}

impl PeerPolicy {
    /// Judges a peer IP (RFC 8656 §9: permissions are per IP address).
    pub fn check(&self, ip: IpAddr) -> Result<(), PeerDenied> {
        let ip = match ip {
            IpAddr::V6(v6) => embedded_v4(&v6).map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_unspecified() || matches!(ip, IpAddr::V4(v4) if v4.octets().first() == Some(&0)) {
            return Err(PeerDenied::Unspecified);
        }
        if ip.is_loopback() && !self.allow_loopback {
            return Err(PeerDenied::Loopback);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_in_every_spelling_is_refused_by_default() {
        let p = PeerPolicy::default();
        for s in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::127.0.0.1"] {
            assert_eq!(p.check(s.parse().unwrap()), Err(PeerDenied::Loopback), "{s}");
        }
        for s in ["0.0.0.0", "::", "0.1.2.3", "::ffff:0.0.0.0"] {
            assert_eq!(p.check(s.parse().unwrap()), Err(PeerDenied::Unspecified), "{s}");
        }
        assert_eq!(p.check("198.51.100.7".parse().unwrap()), Ok(()));
    }

    #[test]
    fn allow_loopback_opens_loopback_only() {
        let p = PeerPolicy { allow_loopback: true };
        assert_eq!(p.check("127.0.0.1".parse().unwrap()), Ok(()));
        assert_eq!(p.check("::1".parse().unwrap()), Ok(()));
        assert_eq!(p.check("0.0.0.0".parse().unwrap()), Err(PeerDenied::Unspecified));
    }
}
