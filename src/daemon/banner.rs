//! The daemon's banner after its `listening` lines: what TURN does, for the development default a
//! ready `iceServers` JSON and the secret, commands to try it, and the `stun:` URL as the last line
//! (`stuns:` when only TLS listens; tests and scripts read up to it: it is the bound address, never
//! `public-host`). A configured secret or password is never part of it. [`ice_servers`] is the one
//! place that names the public host in generated URLs.

use std::net::SocketAddr;

use crate::config::{Config, DEFAULT_REALM};
use crate::http::ice_servers::{IceServers, reachable};

/// The user of the development default's printed credentials, and their lifetime.
pub const DEMO_USER: &str = "demo";
const DEMO_TTL_SECS: u64 = 3600;
/// The port `turnutils_peer` listens on by default.
const PEER_PORT: u16 = 3480;

/// The addresses clients are told for these listeners: mapped through `external-ip`, as
/// XOR-RELAYED-ADDRESS is.
pub fn advertised(config: &Config, addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    addrs.iter().map(|&a| crate::config::advertised_addr(a, &config.external_ip)).collect()
}

/// The `iceServers` for these listeners as every generated URL names them (the banner,
/// `switchback credentials`, `/v1/relay-configuration`): the host is `public-host` when set
/// ([`Config::public_host`]), else each listener's address mapped through `external-ip`.
pub fn ice_servers(
    config: &Config,
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    tls: &[SocketAddr],
    credentials: Option<(&str, &str)>,
) -> IceServers {
    let (udp, tcp, tls) = (advertised(config, udp), advertised(config, tcp), advertised(config, tls));
    IceServers::with_tls(&udp, &tcp, &tls, config.public_host(), credentials)
}

/// The banner lines for a server with these UDP, TCP and TLS listeners. `dev_secret` is the secret
/// of the development default (see [`Config::with_dev_credentials`]), printed since it is generated
/// for this run; `unix_now` dates the demo credentials.
pub fn turn_banner(
    config: &Config,
    udp: &[SocketAddr],
    tcp: &[SocketAddr],
    tls: &[SocketAddr],
    dev_secret: Option<&str>,
    unix_now: u64,
) -> Vec<String> {
    let mut lines = Vec::new();
    let realm = config.realm.as_deref().unwrap_or(DEFAULT_REALM);
    let turn = config.has_credentials();
    match dev_secret {
        _ if !turn => lines.push("turn: off (no static-auth-secret and no users configured): STUN only".to_owned()),
        Some(secret) => lines
            .push(format!("turn: realm {realm}, REST credentials; development secret generated at start: {secret}")),
        None => lines.push(format!(
            "turn: realm {realm}, {} REST secret(s), {} user(s); mint credentials with `switchback credentials`",
            config.static_auth_secret.len(),
            config.users.len()
        )),
    }
    if turn && config.allow_loopback_peers {
        let why = if dev_secret.is_some() && config.loopback_only() {
            "every listening address is loopback"
        } else {
            "allow-loopback-peers"
        };
        lines.push(format!("loopback peers: allowed ({why})"));
    }
    if turn && config.oauth {
        let (keys, name) = (config.oauth_key.len(), config.effective_server_name());
        lines.push(format!("oauth: RFC 7635 access tokens, {keys} key(s), server name {name}"));
    }
    if let Some(rest) = config.rest_credentials().filter(|_| dev_secret.is_some())
        && let Some((username, password)) = rest.mint(DEMO_USER, DEMO_TTL_SECS, unix_now)
    {
        lines.push(format!("iceServers (user {DEMO_USER}, valid 1h):"));
        lines.push(ice_servers(config, udp, tcp, tls, Some((&username, &password))).to_string());
    }
    if let Some(addr) = udp.first().copied().map(reachable) {
        let (ip, port) = (addr.ip(), addr.port());
        lines.push(format!("try it: turnutils_stunclient -p {port} {ip}"));
        if turn {
            let rest = !config.static_auth_secret.is_empty();
            let mut auth = match dev_secret {
                Some(secret) => format!("-W {secret} -u {DEMO_USER}"),
                None if rest => "-W SECRET -u NAME".to_owned(),
                None => "-u NAME -w PASSWORD".to_owned(),
            };
            if rest && config.rest_separator != ':' {
                auth.push_str(&format!(" -C {}", config.rest_separator));
            }
            if config.allow_loopback_peers {
                lines.push(format!("try it: turnutils_peer -L {ip} -p {PEER_PORT}"));
                lines
                    .push(format!("try it: turnutils_uclient {auth} -e {ip} -r {PEER_PORT} -p {port} -n 10 -m 1 {ip}"));
            } else {
                // Client to client: the two relayed addresses are each other's peers.
                lines.push(format!("try it: turnutils_uclient {auth} -y -p {port} -n 10 -m 1 {ip}"));
            }
        }
    }
    if let Some(addr) = udp.first().or(tcp.first()).copied().map(reachable) {
        lines.push(format!("stun:{addr}"));
    } else if let Some(addr) = tls.first().copied().map(reachable) {
        lines.push(format!("stuns:{addr}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretText;

    const NOW: u64 = 1_800_000_000;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn development_default() {
        let config = Config::default().with_dev_credentials(SecretText("d3v".into()));
        let udp = [sa("127.0.0.1:3478")];
        let tls = [sa("127.0.0.1:5349")];
        let lines = turn_banner(&config, &udp, &udp, &tls, Some("d3v"), NOW);
        let text = lines.join("\n");
        assert!(text.contains("development secret generated at start: d3v"), "{text}");
        assert!(text.contains("loopback peers: allowed (every listening address is loopback)"), "{text}");
        assert!(text.contains("turnutils_peer -L 127.0.0.1 -p 3480"), "{text}");
        assert!(text.contains("turnutils_uclient -W d3v -u demo -e 127.0.0.1 -r 3480 -p 3478 -n 10 -m 1 127.0.0.1"));
        assert_eq!(lines.last().map(String::as_str), Some("stun:127.0.0.1:3478"));

        let json = lines.iter().find(|l| l.starts_with('{')).unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let username = v["iceServers"][1]["username"].as_str().unwrap();
        assert_eq!(username, format!("{}:demo", NOW + 3600));
        assert_eq!(v["iceServers"][1]["urls"][2], "turns:127.0.0.1:5349?transport=tcp");
        let rest = config.rest_credentials().unwrap();
        let expected = rest.passwords(username, NOW).unwrap().next().unwrap();
        assert_eq!(v["iceServers"][1]["credential"], expected.as_str());
    }

    #[test]
    fn configured_credentials_are_not_printed() {
        let mut config = Config {
            realm: Some("example.org".into()),
            static_auth_secret: vec![SecretText("s3cret".into())],
            rest_separator: '-',
            ..Config::default()
        };
        config.users.insert("alice".into(), SecretText("pa55".into()));
        let text = turn_banner(&config, &[sa("0.0.0.0:3478")], &[], &[], None, NOW).join("\n");
        assert!(!text.contains("s3cret") && !text.contains("pa55") && !text.contains("iceServers"), "{text}");
        assert!(text.contains("turn: realm example.org, 1 REST secret(s), 1 user(s)"), "{text}");
        assert!(text.contains("turnutils_uclient -W SECRET -u NAME -C - -y -p 3478"), "{text}");
        assert!(text.ends_with("stun:127.0.0.1:3478"), "{text}");
    }

    #[test]
    fn ice_servers_use_the_external_ip() {
        let config = Config { external_ip: vec!["203.0.113.4/10.0.0.5".parse().unwrap()], ..Config::default() }
            .with_dev_credentials(SecretText("d3v".into()));
        let udp = [sa("10.0.0.5:3478")];
        let lines = turn_banner(&config, &udp, &udp, &[], Some("d3v"), NOW);
        let json = lines.iter().find(|l| l.starts_with('{')).unwrap();
        assert!(json.contains("\"turn:203.0.113.4:3478?transport=udp\""), "{json}");
        assert!(!json.contains("10.0.0.5"), "{json}");
    }

    #[test]
    fn ice_servers_use_the_public_host() {
        let mut config = Config { external_ip: vec!["203.0.113.4/10.0.0.5".parse().unwrap()], ..Config::default() };
        config.public_host = Some("turn.example.org".into());
        let s = ice_servers(&config, &[sa("10.0.0.5:3478")], &[], &[sa("10.0.0.5:5349")], Some(("u", "p")));
        assert_eq!(s.ice_servers[0].urls, ["stun:turn.example.org:3478"]);
        assert_eq!(s.ice_servers[1].urls[1], "turns:turn.example.org:5349?transport=tcp");
        // The deprecated name still works; without either, external-ip maps the address.
        config.public_host = None;
        config.api_url_host = Some("old.example.org".into());
        let s = ice_servers(&config, &[sa("10.0.0.5:3478")], &[], &[], None);
        assert_eq!(s.ice_servers[0].urls, ["stun:old.example.org:3478"]);
        config.api_url_host = None;
        let s = ice_servers(&config, &[sa("10.0.0.5:3478")], &[], &[], None);
        assert_eq!(s.ice_servers[0].urls, ["stun:203.0.113.4:3478"]);
    }

    #[test]
    fn stun_only() {
        let tcp = [sa("[::1]:3478")];
        let lines = turn_banner(&Config::default(), &[], &tcp, &[], None, NOW);
        assert_eq!(lines, ["turn: off (no static-auth-secret and no users configured): STUN only", "stun:[::1]:3478"]);
    }
}
