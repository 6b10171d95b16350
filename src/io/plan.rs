//! What the listeners bind: a plain description that [`bind`](super::bind) follows, built from the
//! configuration by `config` (`impl From<&Config> for ListenPlan`), so the drivers never read the
//! configuration schema themselves.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use crate::policy::PeerRule;

/// The listeners to bind and how to run them.
#[derive(Clone, Debug)]
pub struct ListenPlan {
    /// UDP and TCP listening addresses (`listening-ip` × `listening-port`; port 0 lets the OS choose).
    pub addrs: Vec<SocketAddr>,
    /// TLS listening addresses (`listening-ip` × the TLS port).
    pub tls_addrs: Vec<SocketAddr>,
    /// Listen on UDP (not `no-udp`).
    pub udp: bool,
    /// Listen on TCP (not `no-tcp`).
    pub tcp: bool,
    /// Listen on TLS when a certificate is there (not `no-tls`).
    pub tls: bool,
    /// The certificate chain and key files (`cert`, `pkey`), read by [`bind_with_limits`](super::bind_with_limits).
    pub certificate: Option<(PathBuf, PathBuf)>,
    /// UDP sockets per address, joined with SO_REUSEPORT (at least 1).
    pub workers: usize,
    /// UDP socket receive/send buffer asked for, bytes (0: the kernel's default).
    pub socket_buffer: usize,
    /// TCP and TLS connections start with a PROXY protocol v2 header.
    pub proxy_protocol: bool,
    /// Where PROXY headers may come from; empty: nowhere.
    pub proxy_protocol_from: Vec<PeerRule>,
    /// Only channel numbers 0x4000–0x4FFF count as ChannelData on streams.
    pub strict_rfc8656: bool,
    /// RFC 5780 (`rfc5780`): the alternate port (0: the OS picks). The first two UDP addresses
    /// (two IPs of one family, at one port) are then bound at that port too, four sockets (§6).
    pub rfc5780_alt_port: Option<u16>,
    /// RFC 5780 over TLS (RFC 7443 `stun.nat-discovery`): the alternate TLS port (0: the OS
    /// picks). The first two TLS addresses are then bound at that port too, and TLS listeners
    /// offer `stun.nat-discovery`.
    pub rfc5780_tls_alt_port: Option<u16>,
}

impl ListenPlan {
    /// UDP and TCP on `ips` at `port`, TLS off, one worker, the kernel's buffers.
    pub fn new(ips: &[IpAddr], port: u16) -> ListenPlan {
        ListenPlan {
            addrs: ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect(),
            tls_addrs: Vec::new(),
            udp: true,
            tcp: true,
            tls: false,
            certificate: None,
            workers: 1,
            socket_buffer: 0,
            proxy_protocol: false,
            proxy_protocol_from: Vec::new(),
            strict_rfc8656: false,
            rfc5780_alt_port: None,
            rfc5780_tls_alt_port: None,
        }
    }
}

impl From<&ListenPlan> for ListenPlan {
    fn from(plan: &ListenPlan) -> ListenPlan {
        plan.clone()
    }
}
