//! The addresses people have (issue #18 §5): `stun:`/`stuns:` URIs (RFC 7064) and `turn:`/`turns:`
//! URIs (RFC 7065) with host names, and the WebRTC `iceServers` JSON that
//! `/v1/relay-configuration` serves (`{"iceServers": [{"urls", "username", "credential"}]}`, W3C
//! webrtc-pc §4.2.1), turned into servers to allocate on.
//!
//! ```no_run
//! use switchback::client::turn::{ClientOptions, TurnClient};
//! use switchback::client::url::{IceServers, IceUrl};
//!
//! # async fn run(json: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let url: IceUrl = "turn:localhost:3478?transport=udp".parse()?;
//! assert_eq!(url.to_string(), "turn:localhost:3478?transport=udp");
//! // What the token service handed out: the first TURN server over UDP, with its credentials.
//! let servers = IceServers::parse(json)?;
//! let choice = servers.turn().find(|c| !c.url.is_secure()).ok_or("no turn: url")?;
//! let creds = choice.credentials.clone().ok_or("no credentials")?;
//! let client = TurnClient::allocate_url(&choice.url, creds, ClientOptions::default()).await?;
//! println!("relayed at {}", client.relayed_addr());
//! # Ok(()) }
//! ```
//!
//! The grammar (RFC 7064 §3.1, RFC 7065 §3.1): `scheme ":" host [":" port] ["?transport=" t]`
//! with no `//` and no user information; the host is an IPv4 address, an IPv6 literal in
//! brackets, or a name (RFC 3986 reg-name: letters, digits, `-._~`); the port defaults to 3478,
//! 5349 for `stuns:`/`turns:`; `?transport=` (`udp` or `tcp`) is for TURN only, and `turns:`
//! takes `tcp` only (TURN over DTLS is not spoken here). Schemes and transports are
//! case-insensitive (RFC 3986 §3.1); [`IceUrl`]'s `Display` writes them in lower case, so a
//! parsed URL written out parses back to itself.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use super::ClientError;
use super::turn::{ClientOptions, Credentials, TurnClient, TurnTransport};

/// The default port of `stun:` and `turn:` (RFC 7064 §3.2, RFC 7065 §3.2).
pub const DEFAULT_PORT: u16 = 3478;
/// The default port of `stuns:` and `turns:` (over TLS).
pub const DEFAULT_TLS_PORT: u16 = 5349;

/// Why a URL or an `iceServers` document was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// Not `stun:`, `stuns:`, `turn:` or `turns:`.
    #[error("unknown scheme (not stun:, stuns:, turn: or turns:)")]
    Scheme,
    /// `//` or user information after the scheme: RFC 7064/7065 URIs have neither.
    #[error("a STUN/TURN URI has no `//` and no user information (RFC 7064 §3.1)")]
    Authority,
    /// An empty or malformed host.
    #[error("invalid host `{0}`")]
    Host(String),
    /// A port that is not a number from 1 to 65535.
    #[error("invalid port `{0}`")]
    Port(String),
    /// A query other than `?transport=udp|tcp` on a TURN URI (RFC 7065 §3.1).
    #[error("invalid query `{0}` (only ?transport=udp|tcp on turn: and turns:)")]
    Query(String),
    /// A transport this client does not speak (`turns:` over UDP is DTLS; others are unknown).
    #[error("unsupported transport `{0}`")]
    Transport(String),
    /// The host name did not resolve, or to no address.
    #[error("cannot resolve `{host}`: {error}")]
    Resolve {
        /// The name.
        host: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// The `iceServers` JSON is not what webrtc-pc §4.2.1 describes.
    #[error("invalid iceServers JSON: {0}")]
    Json(String),
}

/// The four schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `stun:` (RFC 7064): Binding over UDP or TCP.
    Stun,
    /// `stuns:` (RFC 7064): Binding over TLS.
    Stuns,
    /// `turn:` (RFC 7065): TURN over UDP or TCP.
    Turn,
    /// `turns:` (RFC 7065): TURN over TLS.
    Turns,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Stun => "stun",
            Scheme::Stuns => "stuns",
            Scheme::Turn => "turn",
            Scheme::Turns => "turns",
        }
    }
}

/// `?transport=` (RFC 7065 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlTransport {
    /// `udp`.
    Udp,
    /// `tcp` (TLS over TCP for `turns:`).
    Tcp,
}

/// The host of a URL: an IP address or a name to resolve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 address or a bracketed IPv6 literal.
    Ip(IpAddr),
    /// A DNS name (RFC 3986 reg-name), as written.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// A `stun:`, `stuns:`, `turn:` or `turns:` URI (RFC 7064, RFC 7065).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IceUrl {
    /// The scheme.
    pub scheme: Scheme,
    /// The host.
    pub host: Host,
    /// The port, when the URI names one.
    pub port: Option<u16>,
    /// `?transport=`, when the URI has it (TURN only).
    pub transport: Option<UrlTransport>,
}

impl IceUrl {
    /// Whether this is `turn:` or `turns:`.
    pub fn is_turn(&self) -> bool {
        matches!(self.scheme, Scheme::Turn | Scheme::Turns)
    }

    /// Whether this is `stuns:` or `turns:` (TLS).
    pub fn is_secure(&self) -> bool {
        matches!(self.scheme, Scheme::Stuns | Scheme::Turns)
    }

    /// The port: the URI's, else 3478, or 5349 for `stuns:`/`turns:` (RFC 7064 §3.2, RFC 7065 §3.2).
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.is_secure() { DEFAULT_TLS_PORT } else { DEFAULT_PORT })
    }

    /// The transport to the server: the URI's `?transport=`, else TCP for `stuns:`/`turns:` and UDP
    /// for the others (RFC 7065 §3.1).
    pub fn transport_or_default(&self) -> UrlTransport {
        self.transport.unwrap_or(if self.is_secure() { UrlTransport::Tcp } else { UrlTransport::Udp })
    }

    /// The server's addresses: the IP as it is, or every address the name resolves to
    /// (`tokio::net::lookup_host`), in the resolver's order.
    pub async fn resolve(&self) -> Result<Vec<SocketAddr>, UrlError> {
        let port = self.port_or_default();
        let name = match &self.host {
            Host::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Host::Name(name) => name,
        };
        let resolve = |error| UrlError::Resolve { host: name.clone(), error };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port)).await.map_err(resolve)?.collect();
        if addrs.is_empty() {
            return Err(resolve(std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses")));
        }
        Ok(addrs)
    }
}

impl fmt::Display for IceUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme.as_str(), self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        match self.transport {
            Some(UrlTransport::Udp) => f.write_str("?transport=udp"),
            Some(UrlTransport::Tcp) => f.write_str("?transport=tcp"),
            None => Ok(()),
        }
    }
}

/// RFC 3986 reg-name, without percent-encoding: unreserved characters and the sub-delims a DNS
/// name could never hold are left out too.
fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn parse_host(s: &str) -> Result<Host, UrlError> {
    if let Some(inner) = s.strip_prefix('[') {
        let literal = inner.strip_suffix(']').ok_or_else(|| UrlError::Host(s.to_owned()))?;
        return literal.parse::<Ipv6Addr>().map(|ip| Host::Ip(ip.into())).map_err(|_| UrlError::Host(s.to_owned()));
    }
    if let Ok(ip) = s.parse::<std::net::Ipv4Addr>() {
        return Ok(Host::Ip(ip.into()));
    }
    if is_name(s) { Ok(Host::Name(s.to_owned())) } else { Err(UrlError::Host(s.to_owned())) }
}

fn parse_port(s: &str) -> Result<u16, UrlError> {
    let port = (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse::<u16>().ok())
        .flatten()
        .filter(|p| *p != 0);
    port.ok_or_else(|| UrlError::Port(s.to_owned()))
}

impl FromStr for IceUrl {
    type Err = UrlError;

    /// RFC 7064 §3.1, RFC 7065 §3.1.
    fn from_str(s: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = s.split_once(':').ok_or(UrlError::Scheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => Scheme::Stun,
            "stuns" => Scheme::Stuns,
            "turn" => Scheme::Turn,
            "turns" => Scheme::Turns,
            _ => return Err(UrlError::Scheme),
        };
        if rest.starts_with("//") || rest.contains('@') {
            return Err(UrlError::Authority);
        }
        let (authority, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        // A bracketed IPv6 literal holds colons; the port's colon follows the bracket.
        let (host, port) = match authority.rfind(']') {
            Some(end) if authority.starts_with('[') => {
                let (host, after) = authority.split_at(end + 1);
                match after {
                    "" => (host, None),
                    _ => (host, Some(after.strip_prefix(':').ok_or_else(|| UrlError::Host(authority.to_owned()))?)),
                }
            }
            _ => match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        let host = parse_host(host)?;
        let port = port.map(parse_port).transpose()?;
        let transport = match query {
            None => None,
            Some(q) if !matches!(scheme, Scheme::Turn | Scheme::Turns) => return Err(UrlError::Query(q.to_owned())),
            Some(q) => {
                let (key, value) = q.split_once('=').ok_or_else(|| UrlError::Query(q.to_owned()))?;
                if !key.eq_ignore_ascii_case("transport") {
                    return Err(UrlError::Query(q.to_owned()));
                }
                match (value.to_ascii_lowercase().as_str(), scheme) {
                    ("udp", Scheme::Turn) => Some(UrlTransport::Udp),
                    ("tcp", _) => Some(UrlTransport::Tcp),
                    _ => return Err(UrlError::Transport(value.to_owned())),
                }
            }
        };
        Ok(IceUrl { scheme, host, port, transport })
    }
}

/// One server of an `iceServers` document: a URL with the entry's credentials.
#[derive(Clone, Debug)]
pub struct IceChoice {
    /// The URL.
    pub url: IceUrl,
    /// The entry's `username` and `credential`, when it has both.
    pub credentials: Option<Credentials>,
}

/// The servers of an `iceServers` document, in its order (one [`IceChoice`] per URL).
#[derive(Clone, Debug, Default)]
pub struct IceServers {
    /// Every URL of every entry.
    pub choices: Vec<IceChoice>,
}

#[derive(serde::Deserialize)]
struct Document {
    #[serde(rename = "iceServers")]
    ice_servers: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct Entry {
    urls: Urls,
    username: Option<String>,
    credential: Option<String>,
}

/// `urls` is one string or a list (webrtc-pc §4.2.1).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Urls {
    One(String),
    Many(Vec<String>),
}

impl IceServers {
    /// Parses `{"iceServers": [...]}` (or the bare list): every URL must parse, as webrtc-pc's
    /// `RTCPeerConnection` constructor demands (a `SyntaxError` there).
    pub fn parse(json: &str) -> Result<Self, UrlError> {
        let json_error = |e: serde_json::Error| UrlError::Json(e.to_string());
        let entries = match serde_json::from_str::<Document>(json) {
            Ok(doc) => doc.ice_servers,
            Err(e) => serde_json::from_str::<Vec<Entry>>(json).map_err(|_| json_error(e))?,
        };
        let mut choices = Vec::new();
        for entry in entries {
            let credentials = match (&entry.username, &entry.credential) {
                (Some(u), Some(c)) => Some(Credentials::new(u.clone(), c.clone())),
                _ => None,
            };
            let urls = match entry.urls {
                Urls::One(url) => vec![url],
                Urls::Many(urls) => urls,
            };
            for url in urls {
                choices.push(IceChoice { url: url.parse()?, credentials: credentials.clone() });
            }
        }
        Ok(IceServers { choices })
    }

    /// The `turn:` and `turns:` choices, in order.
    pub fn turn(&self) -> impl Iterator<Item = &IceChoice> {
        self.choices.iter().filter(|c| c.url.is_turn())
    }

    /// The `stun:` and `stuns:` choices, in order.
    pub fn stun(&self) -> impl Iterator<Item = &IceChoice> {
        self.choices.iter().filter(|c| !c.url.is_turn())
    }
}

impl TurnClient {
    /// Allocates on the server a `turn:` or `turns:` URL names (RFC 7065): its host resolved (the
    /// first address that answers is kept, in the resolver's order), the transport from the scheme
    /// and `?transport=`, overriding `options.transport` — except for `turns:`, which needs
    /// `options.transport` to be [`TurnTransport::Tls`] with the roots and server name to trust
    /// (else [`ClientError::Tls`]). A `stun:` URL is refused with [`ClientError::Url`].
    pub async fn allocate_url(
        url: &IceUrl,
        creds: Credentials,
        mut options: ClientOptions,
    ) -> Result<Self, ClientError> {
        options.transport = match (url.scheme, url.transport_or_default(), options.transport) {
            (Scheme::Turn, UrlTransport::Udp, _) => TurnTransport::Udp,
            (Scheme::Turn, UrlTransport::Tcp, _) => TurnTransport::Tcp,
            (Scheme::Turns, _, TurnTransport::Tls(tls)) => TurnTransport::Tls(tls),
            (Scheme::Turns, _, _) => {
                return Err(ClientError::Tls("turns: needs ClientOptions::transport = TurnTransport::Tls".into()));
            }
            (Scheme::Stun | Scheme::Stuns, _, _) => return Err(ClientError::Url(UrlError::Scheme)),
        };
        let mut last = None;
        for server in url.resolve().await.map_err(ClientError::Url)? {
            match TurnClient::allocate_with(server, creds.clone(), options.clone()).await {
                Ok(client) => return Ok(client),
                // The next address may answer (an IPv6 name on a host without IPv6, say).
                Err(e @ (ClientError::Io(_) | ClientError::Timeout(_))) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ClientError::Closed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn url(s: &str) -> IceUrl {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn the_rfc_examples_parse() {
        // RFC 7064 §3.2 and RFC 7065 §3.2 (the examples of their tables).
        let u = url("stun:example.org");
        assert_eq!((u.scheme, u.port_or_default(), u.transport_or_default()), (Scheme::Stun, 3478, UrlTransport::Udp));
        assert_eq!(url("stuns:example.org").port_or_default(), 5349);
        assert_eq!(url("stun:example.org:8000").port, Some(8000));
        let u = url("turn:example.org?transport=tcp");
        assert_eq!((u.port_or_default(), u.transport_or_default()), (3478, UrlTransport::Tcp));
        let u = url("turns:example.org");
        assert_eq!((u.port_or_default(), u.transport_or_default()), (5349, UrlTransport::Tcp));
        let u = url("turn:[2001:db8::1]:3479?transport=udp");
        assert_eq!(u.host, Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(3479));
        assert_eq!(url("TURN:Example.ORG?Transport=UDP").to_string(), "turn:Example.ORG?transport=udp");
        assert_eq!(url("turn:127.0.0.1").host, Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(url("stun:[::1]").to_string(), "stun:[::1]");
    }

    #[test]
    fn what_the_grammar_refuses() {
        for bad in [
            "http://example.org",
            "stun://example.org",
            "turn:user@example.org",
            "turn:",
            "turn:example.org:",
            "turn:example.org:0",
            "turn:example.org:65536",
            "turn:example.org:12ab",
            "stun:example.org?transport=udp",
            "turns:example.org?transport=udp",
            "turn:example.org?transport=sctp",
            "turn:example.org?proto=udp",
            "turn:[2001:db8::1",
            "turn:[2001:db8::1]x",
            "turn:[example.org]",
            "turn:exa mple.org",
            "turn:2001:db8::1",
            "example.org",
        ] {
            assert!(bad.parse::<IceUrl>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn ice_servers_of_our_token_service() {
        // The shape http/ice_servers.rs writes (a STUN entry, then TURN with credentials).
        let json = r#"{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},
            {"urls":["turn:127.0.0.1:3478?transport=udp","turn:127.0.0.1:3478?transport=tcp",
            "turns:localhost:5349?transport=tcp"],"username":"1700003600:alice","credential":"pw"}]}"#;
        let servers = IceServers::parse(json).unwrap();
        assert_eq!(servers.choices.len(), 4);
        assert_eq!(servers.stun().count(), 1);
        assert!(servers.stun().all(|c| c.credentials.is_none()));
        let turn: Vec<_> = servers.turn().collect();
        assert_eq!(turn.len(), 3);
        let creds = turn[0].credentials.as_ref().unwrap();
        assert_eq!(creds.username, "1700003600:alice");
        assert_eq!(turn[2].url.to_string(), "turns:localhost:5349?transport=tcp");
        // One URL as a string, and the bare list, as webrtc-pc allows.
        let one = IceServers::parse(r#"[{"urls":"stun:localhost"}]"#).unwrap();
        assert_eq!(one.choices.len(), 1);
        assert!(IceServers::parse(r#"{"iceServers":[{"urls":["ftp:x"]}]}"#).is_err());
        assert!(IceServers::parse("{").is_err());
    }

    #[tokio::test]
    async fn names_and_literals_resolve() {
        let addrs = url("turn:localhost:3478").resolve().await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 3478), "{addrs:?}");
        assert_eq!(url("stun:[::1]").resolve().await.unwrap(), vec!["[::1]:3478".parse().unwrap()]);
        let stun = url("stun:127.0.0.1");
        let err = TurnClient::allocate_url(&stun, Credentials::new("a", "b"), ClientOptions::default()).await;
        assert!(matches!(err, Err(ClientError::Url(UrlError::Scheme))), "{err:?}");
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9][a-zA-Z0-9._~-]{0,30}",
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,60}") {
            let _ = s.parse::<IceUrl>();
        }

        #[test]
        fn near_misses_never_panic(s in "(stun|stuns|turn|turns|TURN):[\\[\\]:?=@/a-z0-9.]{0,40}") {
            if let Ok(u) = s.parse::<IceUrl>() {
                prop_assert_eq!(u.to_string().parse::<IceUrl>().unwrap(), u);
            }
        }

        #[test]
        fn display_round_trips(
            scheme in prop_oneof![Just("stun"), Just("stuns"), Just("turn"), Just("turns")],
            host in host(),
            port in proptest::option::of(1u16..),
            transport in proptest::option::of(prop_oneof![Just("udp"), Just("tcp")]),
        ) {
            let mut s = format!("{scheme}:{host}");
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            let turn = scheme.starts_with("turn");
            if let Some(t) = transport.filter(|t| turn && !(scheme == "turns" && *t == "udp")) {
                s.push_str(&format!("?transport={t}"));
            }
            let parsed: IceUrl = s.parse().map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(parsed.to_string(), s.clone());
            prop_assert_eq!(parsed.to_string().parse::<IceUrl>().unwrap(), parsed);
        }
    }
}
