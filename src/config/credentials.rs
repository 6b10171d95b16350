//! What the daemon's banner and `switchback credentials` print: durations such as `--ttl 1h`, and
//! the WebRTC `iceServers` JSON (`RTCConfiguration.iceServers`, W3C webrtc-pc §4.2.1) for the
//! listening addresses.
//!
//! ```
//! use switchback::config::credentials::{IceServers, parse_duration};
//!
//! assert_eq!(parse_duration("1h")?, 3600);
//! let udp = ["127.0.0.1:3478".parse().unwrap()];
//! let json = IceServers::new(&udp, &[], None, Some(("1700003600:alice", "pw"))).to_string();
//! assert!(json.starts_with(r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},"#));
//! # Ok::<(), switchback::config::credentials::DurationError>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// A duration that is not `N`, `Ns`, `Nm`, `Nh` or `Nd` with `N` a positive whole number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a duration (3600, 90s, 30m, 1h, 2d; more than 0)")]
pub struct DurationError(pub String);

/// Seconds in `3600`, `90s`, `30m`, `1h` or `2d`; zero is refused.
pub fn parse_duration(s: &str) -> Result<u64, DurationError> {
    let bad = || DurationError(s.to_owned());
    let t = s.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (t.get(..i).ok_or_else(bad)?, c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match n.checked_mul(scale) {
        Some(secs) if secs > 0 => Ok(secs),
        _ => Err(bad()),
    }
}

/// `secs` in the largest unit that divides it: `2d`, `1h`, `90s`.
pub fn format_duration(secs: u64) -> String {
    for (unit, scale) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs != 0 && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

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
    fn durations() {
        for (s, secs) in [("3600", 3600), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172_800), ("1H", 3600)] {
            assert_eq!(parse_duration(s), Ok(secs), "{s}");
        }
        for s in ["", "h", "0", "0h", "-1h", "1.5h", "1w", "1 h", "h1", "99999999999999999999d", "+5"] {
            assert!(parse_duration(s).is_err(), "{s:?}");
        }
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(172_800), "2d");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(1800), "30m");
        assert_eq!(format_duration(0), "0s");
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
