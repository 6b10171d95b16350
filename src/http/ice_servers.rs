//! The WebRTC `iceServers` JSON (`RTCConfiguration.iceServers`, W3C webrtc-pc §4.2.1) for a
//! server's listening addresses: what `/v1/relay-configuration`, the daemon's banner and
//! `switchback credentials` hand out.
//!
//! ```
//! use switchback::http::ice_servers::IceServers;
//!
//! let udp = ["127.0.0.1:3478".parse().unwrap()];
//! let json = IceServers::new(&udp, &[], None, Some(("1700003600:alice", "pw"))).to_string();
//! assert!(json.starts_with(r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},"#));
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// A wildcard address is reachable on loopback from this host; any other stays as it is.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// One `RTCIceServer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs (RFC 7064, RFC 7065).
    pub urls: Vec<String>,
    /// The TURN username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `{"iceServers": [...]}`: a STUN entry, and a TURN entry when credentials are given. `Display`
/// writes it as one line of JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServers {
    /// The servers.
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<IceServer>,
}

impl IceServers {
    /// The servers for the UDP and TCP listeners `udp` and `tcp`: `stun:` URLs for the UDP listeners
    /// (the TCP ones when there is no UDP listener), and, with `credentials`, `turn:` URLs with
    /// `?transport=udp` for the UDP listeners and `?transport=tcp` for the TCP ones (the client's
    /// leg over TCP, the relayed address UDP: what browsers behind UDP-blocking firewalls use).
    /// `host` replaces the listeners' IPs (a DNS name, say); otherwise a
    /// wildcard listener is shown as loopback.
    pub fn new(udp: &[SocketAddr], tcp: &[SocketAddr], host: Option<&str>, credentials: Option<(&str, &str)>) -> Self {
        IceServers::with_tls(udp, tcp, &[], host, credentials)
    }

    /// [`IceServers::new`] with TLS listeners too: with `credentials`, `turns:` URLs with
    /// `?transport=tcp` (RFC 7065) for them, after the others.
    pub fn with_tls(
        udp: &[SocketAddr],
        tcp: &[SocketAddr],
        tls: &[SocketAddr],
        host: Option<&str>,
        credentials: Option<(&str, &str)>,
    ) -> Self {
        let authority = |addr: &SocketAddr| match host {
            Some(h) if h.contains(':') && !h.starts_with('[') => format!("[{h}]:{}", addr.port()),
            Some(h) => format!("{h}:{}", addr.port()),
            None => reachable(*addr).to_string(),
        };
        let stun_from = if udp.is_empty() { tcp } else { udp };
        let mut servers = vec![IceServer {
            urls: dedup(stun_from.iter().map(|a| format!("stun:{}", authority(a)))),
            username: None,
            credential: None,
        }];
        if let Some((username, credential)) = credentials
            && !(udp.is_empty() && tcp.is_empty() && tls.is_empty())
        {
            let turn_udp = udp.iter().map(|a| format!("turn:{}?transport=udp", authority(a)));
            let turn_tcp = tcp.iter().map(|a| format!("turn:{}?transport=tcp", authority(a)));
            let turns = tls.iter().map(|a| format!("turns:{}?transport=tcp", authority(a)));
            servers.push(IceServer {
                urls: dedup(turn_udp.chain(turn_tcp).chain(turns)),
                username: Some(username.to_owned()),
                credential: Some(credential.to_owned()),
            });
        }
        servers.retain(|s| !s.urls.is_empty());
        IceServers { ice_servers: servers }
    }
}

impl fmt::Display for IceServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

fn dedup(urls: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for url in urls {
        if !out.contains(&url) {
            out.push(url);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ice_servers_json() {
        let udp = [sa("127.0.0.1:3478"), sa("[::1]:3478")];
        let tcp = [sa("127.0.0.1:3478")];
        let json = IceServers::new(&udp, &tcp, None, Some(("1:alice", "pw"))).to_string();
        assert_eq!(
            json,
            r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478","stun:[::1]:3478"]},{"urls":["turn:127.0.0.1:3478?transport=udp","turn:[::1]:3478?transport=udp","turn:127.0.0.1:3478?transport=tcp"],"username":"1:alice","credential":"pw"}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["iceServers"][1]["credential"], "pw");
    }

    #[test]
    fn host_override_wildcards_and_tcp_only() {
        let udp = [sa("0.0.0.0:3478"), sa("[::]:3478")];
        let s = IceServers::new(&udp, &[], Some("turn.example.org"), Some(("u", "p")));
        assert_eq!(s.ice_servers[0].urls, vec!["stun:turn.example.org:3478"]);
        assert_eq!(s.ice_servers[1].urls, vec!["turn:turn.example.org:3478?transport=udp"]);
        let s = IceServers::new(&udp, &[], None, None);
        assert_eq!(s.ice_servers.len(), 1);
        assert_eq!(s.ice_servers[0].urls, vec!["stun:127.0.0.1:3478", "stun:[::1]:3478"]);
        let s = IceServers::new(&[sa("[::]:1")], &[], Some("2001:db8::1"), None);
        assert_eq!(s.ice_servers[0].urls, vec!["stun:[2001:db8::1]:1"]);
        // TCP only: STUN over TCP and TURN with the client's leg over TCP.
        let s = IceServers::new(&[], &[sa("127.0.0.1:5")], None, Some(("u", "p")));
        assert_eq!(
            s.to_string(),
            r#"{"iceServers":[{"urls":["stun:127.0.0.1:5"]},{"urls":["turn:127.0.0.1:5?transport=tcp"],"username":"u","credential":"p"}]}"#
        );
    }

    #[test]
    fn turns_urls_for_tls_listeners() {
        let udp = [sa("127.0.0.1:3478")];
        let tls = [sa("127.0.0.1:5349"), sa("[::]:5349")];
        let s = IceServers::with_tls(&udp, &[], &tls, None, Some(("u", "p")));
        assert_eq!(
            s.ice_servers[1].urls,
            vec![
                "turn:127.0.0.1:3478?transport=udp",
                "turns:127.0.0.1:5349?transport=tcp",
                "turns:[::1]:5349?transport=tcp"
            ]
        );
        let s = IceServers::with_tls(&udp, &[], &tls[..1], Some("turn.example.org"), Some(("u", "p")));
        assert_eq!(s.ice_servers[1].urls[1], "turns:turn.example.org:5349?transport=tcp");
        // Without credentials TLS adds nothing (there is no `stuns:` in WebRTC).
        assert_eq!(IceServers::with_tls(&udp, &[], &tls, None, None), IceServers::new(&udp, &[], None, None));
    }
}
