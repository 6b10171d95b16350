//! In-process TURN fixtures (they need the tokio drivers, hence the `runtime` feature): a server on
//! 127.0.0.1 with REST and static credentials, UDP and TCP echo peers, a raw STUN/TURN client, and
//! an echo through a relay.

use std::net::SocketAddr;
use std::time::Duration;

use super::stun::{TURN_REALM, TURN_SECRET, TURN_USER};

/// An in-process TURN server on 127.0.0.1 (UDP and TCP, OS-chosen port) with REST credentials
/// ([`TURN_SECRET`]) and one static user ([`TURN_USER`]). Dropping it stops the listeners.
pub struct TurnFixture {
    pub server: std::sync::Arc<switchback::io::TurnServer>,
    pub running: switchback::io::Running,
    /// The UDP listener's address.
    pub udp: SocketAddr,
    /// The REST configuration the server checks, to mint credentials with.
    pub rest: switchback::auth::RestCredentials,
    /// The TLS listener's address and certificate, for [`TurnFixture::start_tls`] servers.
    pub tls: Option<(SocketAddr, rustls_pki_types::CertificateDer<'static>)>,
}

impl TurnFixture {
    /// Starts a server with `options` (set `allow_loopback_peers` for peers on 127.0.0.1).
    pub async fn start(options: switchback::server::ServerOptions) -> TurnFixture {
        TurnFixture::start_with(options, None, switchback::io::Limits::default()).await
    }

    /// [`TurnFixture::start`] with a TLS listener too, presenting a fresh self-signed certificate
    /// for 127.0.0.1 (see [`TurnFixture::tls_client`]).
    pub async fn start_tls(options: switchback::server::ServerOptions, limits: switchback::io::Limits) -> TurnFixture {
        let identity = switchback::io::TlsIdentity::self_signed(&["127.0.0.1", "localhost"]).expect("self-signed");
        TurnFixture::start_with(options, Some(identity), limits).await
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls.as_ref().expect("a fixture started with start_tls").0
    }

    /// A TLS client trusting this fixture's certificate, for the name `127.0.0.1`.
    pub fn tls_client(&self) -> switchback::client::TlsClient {
        switchback::client::TlsClient::new("127.0.0.1", self.tls_roots()).expect("a TLS client")
    }

    /// A root store with this fixture's certificate.
    pub fn tls_roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.tls.as_ref().expect("a fixture started with start_tls").1.clone()).expect("a root");
        roots
    }

    /// A server with `options`, TLS with `tls` when given, and the drivers' `limits`.
    pub async fn start_with(
        options: switchback::server::ServerOptions,
        tls: Option<switchback::io::TlsIdentity>,
        limits: switchback::io::Limits,
    ) -> TurnFixture {
        TurnFixture::start_auth(options, tls, limits, None).await
    }

    /// [`TurnFixture::start`] taking RFC 7635 access tokens under `oauth` too.
    pub async fn start_with_oauth(
        options: switchback::server::ServerOptions,
        oauth: switchback::auth::oauth::OauthConfig,
    ) -> TurnFixture {
        TurnFixture::start_auth(options, None, switchback::io::Limits::default(), Some(oauth)).await
    }

    async fn start_auth(
        options: switchback::server::ServerOptions,
        tls: Option<switchback::io::TlsIdentity>,
        limits: switchback::io::Limits,
        oauth: Option<switchback::auth::oauth::OauthConfig>,
    ) -> TurnFixture {
        use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret, StaticCredential};
        let rest = RestCredentials::new(vec![Secret::new(TURN_SECRET)]);
        let mut auth = AuthConfig::new(TURN_REALM);
        auth.rest = Some(rest.clone());
        auth.oauth = oauth;
        auth.users.insert(TURN_USER.0.into(), StaticCredential::Password(TURN_USER.1.into()));
        let mut nonce_key = [0u8; 32];
        getrandom_fill(&mut nonce_key);
        let server = switchback::io::UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
        let config = switchback::config::Config { listening_port: 0, ..switchback::config::Config::default() };
        let certificate = tls.as_ref().map(|t| t.end_entity().clone());
        let tls = tls.map(switchback::io::ReloadableTls::new);
        let running =
            switchback::io::bind_with_tls(&config, server.clone(), limits, tls).await.expect("bind the TURN server");
        let udp = running.local_addr(switchback::server::Transport::Udp).expect("a UDP listener");
        let tls = running.local_addr(switchback::server::Transport::Tls).zip(certificate);
        TurnFixture { server, running, udp, rest, tls }
    }

    /// A server with `options` that listens on UDP and TCP, and on TLS too when `transport` is
    /// [`Transport::Tls`](switchback::server::Transport::Tls): a fixture for a test that runs over
    /// each transport.
    pub async fn start_for(
        transport: switchback::server::Transport,
        options: switchback::server::ServerOptions,
    ) -> TurnFixture {
        match transport {
            switchback::server::Transport::Tls => {
                TurnFixture::start_tls(options, switchback::io::Limits::default()).await
            }
            _ => TurnFixture::start(options).await,
        }
    }

    /// The address of the listener for `transport`.
    pub fn addr(&self, transport: switchback::server::Transport) -> SocketAddr {
        self.running.local_addr(transport).unwrap_or_else(|| panic!("no {transport:?} listener"))
    }

    /// Options for our TURN client to reach this fixture over `transport` (TLS trusting its
    /// certificate).
    pub fn client_options(&self, transport: switchback::server::Transport) -> switchback::client::turn::ClientOptions {
        use switchback::client::turn::TurnTransport as Leg;
        let transport = match transport {
            switchback::server::Transport::Udp => Leg::Udp,
            switchback::server::Transport::Tcp => Leg::Tcp,
            switchback::server::Transport::Tls => Leg::Tls(self.tls_client()),
        };
        switchback::client::turn::ClientOptions::default().with(|o| o.transport = transport)
    }

    /// An allocation by our TURN client over `transport`.
    pub async fn allocate(
        &self,
        transport: switchback::server::Transport,
        creds: switchback::client::turn::Credentials,
    ) -> Result<switchback::client::turn::TurnClient, switchback::client::ClientError> {
        switchback::client::turn::TurnClient::allocate_with(self.addr(transport), creds, self.client_options(transport))
            .await
    }

    /// A server that relays to loopback peers, otherwise with the default options.
    pub async fn loopback() -> TurnFixture {
        TurnFixture::start(switchback::server::ServerOptions::default().with(|o| o.allow_loopback_peers = true)).await
    }

    /// Fresh REST credentials for `user`, valid for an hour.
    pub fn rest_credentials(&self, user: &str) -> (String, String) {
        self.rest.mint(user, 3600, unix_now()).expect("a REST secret is configured")
    }

    /// The server's counters now.
    pub fn stats(&self) -> switchback::server::StatsSnapshot {
        self.server.stats().snapshot()
    }
}

/// A server on 127.0.0.1 and ::1 (UDP, TCP), loopback peers allowed, user alice/pw; its UDP
/// listeners (IPv4, IPv6).
pub async fn dual_stack_server()
-> (std::sync::Arc<switchback::io::TurnServer>, switchback::io::Running, SocketAddr, SocketAddr) {
    let config = switchback::config::Config {
        listening_ip: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        listening_port: 0,
        no_tls: true,
        allow_loopback_peers: true,
        ..switchback::config::Config::default()
    };
    let mut auth = switchback::auth::AuthConfig::new("test.realm");
    auth.users.insert("alice".into(), switchback::auth::StaticCredential::Password("pw".into()));
    let server = switchback::io::UdpRelay::server(
        config.server_options(),
        Some(switchback::auth::Authenticator::new(auth, [5; 32])),
    );
    let running = switchback::io::bind(&config, server.clone()).await.unwrap();
    let udp = |v6: bool| {
        running
            .local_addrs()
            .iter()
            .find(|l| l.transport == switchback::server::Transport::Udp && l.addr.is_ipv6() == v6)
            .map(|l| l.addr)
            .expect("a UDP listener of each family")
    };
    let (v4, v6) = (udp(false), udp(true));
    (server, running, v4, v6)
}

/// The end of a stream allocation test (the client's leg over TCP or TLS, channel 0x4001 bound to
/// `peer`, `relayed` the relayed address): ChannelData "hello" reaches the peer from the relayed
/// address, the peer's "world" comes back as ChannelData padded to 4 on the stream; then the stream
/// is dropped and the allocation must end with it (RFC 8656 §3.1).
pub async fn channel_data_over_stream_then_close<S>(
    fixture: &TurnFixture,
    mut stream: S,
    mut buf: Vec<u8>,
    peer: &tokio::net::UdpSocket,
    relayed: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut cd = [0u8; 16];
    let n =
        switchback::proto::channel_data::ChannelData { channel: 0x4001, data: b"hello" }.encode(true, &mut cd).unwrap();
    assert_eq!(n, 12);
    stream.write_all(&cd[..n]).await.unwrap();
    stream.flush().await.unwrap();
    let mut got = [0u8; 64];
    let (len, from) = tokio::time::timeout(super::RECV_TIMEOUT, peer.recv_from(&mut got)).await.unwrap().unwrap();
    assert_eq!((&got[..len], from), (&b"hello"[..], relayed));

    peer.send_to(b"world", relayed).await.unwrap();
    let frame = super::read_stream_frame(&mut stream, &mut buf).await;
    assert_eq!(frame, b"\x40\x01\x00\x05world\x00\x00\x00", "ChannelData padded to 4 on a stream");

    drop(stream);
    super::eventually("the allocation to end with its connection", || fixture.server.allocations().is_empty()).await;
    assert_eq!(fixture.stats().allocations_deleted, 1);
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// Fills `buf` with random bytes (nonce keys, transaction IDs).
pub fn getrandom_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("OS randomness");
}

/// A UDP echo peer on 127.0.0.1:0: every datagram goes back to its sender. The task ends when the
/// returned handle is aborted (or the runtime stops).
pub async fn udp_echo_peer() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind the echo peer");
    let addr = socket.local_addr().expect("echo peer addr");
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// A TCP echo peer on 127.0.0.1:0: every connection gets back what it sends. The accept task runs
/// until the runtime stops.
pub async fn tcp_echo_peer() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the TCP echo peer");
    let addr = listener.local_addr().expect("TCP echo peer addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A bare STUN/TURN client over one UDP socket, for requests [`switchback::client::turn::TurnClient`]
/// does not make (an RFC 5766 channel number, a Refresh from a 5-tuple whose allocation is gone).
/// Handles the 401 dance itself.
pub struct RawTurn {
    pub socket: tokio::net::UdpSocket,
    pub server: SocketAddr,
    username: String,
    password: String,
    auth: Option<(String, String)>,
}

/// A response [`RawTurn::request`] got: its class and error code (0 on success), and the bytes.
#[derive(Debug)]
pub struct RawResponse {
    pub success: bool,
    pub code: u16,
    pub bytes: Vec<u8>,
}

impl RawTurn {
    /// A socket on `bind` (for example `127.0.0.1:0`) talking to `server` with these credentials.
    pub async fn new(bind: SocketAddr, server: SocketAddr, username: &str, password: &str) -> RawTurn {
        let socket = tokio::net::UdpSocket::bind(bind).await.expect("bind the raw client");
        RawTurn { socket, server, username: username.into(), password: password.into(), auth: None }
    }

    /// A client on a socket of the caller's (one bound in a network namespace, say).
    pub fn from_socket(socket: tokio::net::UdpSocket, server: SocketAddr, username: &str, password: &str) -> RawTurn {
        RawTurn { socket, server, username: username.into(), password: password.into(), auth: None }
    }

    /// Sends a request of `method` with the attributes `body` adds, signed once the realm and nonce
    /// are known (a 401 or 438 teaches them and the request is repeated); returns the final answer.
    /// Retransmits every 500 ms, gives up after 5 s.
    pub async fn request(
        &mut self,
        method: switchback::proto::stun::Method,
        body: &dyn Fn(
            &mut switchback::proto::stun::MessageWriter<'_>,
        ) -> Result<(), switchback::proto::stun::EncodeError>,
    ) -> RawResponse {
        use switchback::proto::stun::{
            Class, ErrorCode, IntegrityKey, Message, MessageType, MessageWriter, Nonce, Realm, TransactionId, Username,
            codes, long_term_key_md5,
        };
        for _ in 0..3 {
            let mut id = [0u8; 12];
            getrandom_fill(&mut id);
            let tid = TransactionId(id);
            let mut buf = vec![0u8; 1500];
            let n = {
                let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
                body(&mut w).unwrap();
                if let Some((realm, nonce)) = &self.auth {
                    w.add(&Username(&self.username)).unwrap();
                    w.add(&Realm(realm)).unwrap();
                    w.add(&Nonce(nonce)).unwrap();
                    let key = long_term_key_md5(&self.username, realm, &self.password);
                    w.add_message_integrity(&IntegrityKey::new(&key)).unwrap();
                }
                w.add_fingerprint().unwrap();
                w.finish()
            };
            let answer = self.exchange(&buf[..n], tid).await;
            let m = Message::parse(&answer).expect("a STUN response");
            if m.message_type().class == Class::SuccessResponse {
                return RawResponse { success: true, code: 0, bytes: answer };
            }
            let code = m.get::<ErrorCode>().expect("ERROR-CODE in an error response").code;
            let retry = match code {
                codes::UNAUTHENTICATED => self.auth.is_none(),
                codes::STALE_NONCE => true,
                _ => false,
            };
            if retry && let (Ok(realm), Ok(nonce)) = (m.get::<Realm>(), m.get::<Nonce>()) {
                self.auth = Some((realm.0.to_string(), nonce.0.to_string()));
                continue;
            }
            return RawResponse { success: false, code, bytes: answer };
        }
        panic!("authentication did not converge in three rounds");
    }

    async fn exchange(&self, request: &[u8], tid: switchback::proto::stun::TransactionId) -> Vec<u8> {
        use switchback::proto::stun::Message;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut buf = vec![0u8; 65536];
        loop {
            assert!(tokio::time::Instant::now() < deadline, "no answer from {} within 5 s", self.server);
            self.socket.send_to(request, self.server).await.expect("send a request");
            let until = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
            while let Ok(Ok((n, from))) = tokio::time::timeout_at(until, self.socket.recv_from(&mut buf)).await {
                if from == self.server
                    && let Ok(m) = Message::parse(&buf[..n])
                    && m.transaction_id() == tid
                {
                    return buf[..n].to_vec();
                }
            }
        }
    }
}

/// Sends `message` from `client` through its relay to an echo peer and waits for the echo; a
/// datagram the server dropped is sent again (at most 5 tries of 1 s). The relay driver counts a
/// send on a relay socket that tokio does not yet know to be writable as a full socket and drops
/// it, which can hit the first datagram after an Allocate. Returns the number of sends.
pub async fn echo_through(client: &switchback::client::turn::TurnClient, peer: SocketAddr, message: &[u8]) -> usize {
    let mut buf = vec![0u8; message.len() + 64];
    for attempt in 1..=5 {
        client.send_to(message, peer).await.expect("send through the relay");
        if let Ok(received) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await {
            let (n, from) = received.expect("receive through the relay");
            assert_eq!((&buf[..n], from), (message, peer));
            return attempt;
        }
    }
    panic!("no echo of {} bytes from {peer} after 5 sends", message.len());
}

/// A UDP-only server on 127.0.0.1 with `workers` worker sockets, loopback peers allowed, REST
/// credentials (secret "s", realm "r"): the server, its listeners, the UDP address, and the REST
/// minter for clients.
pub async fn rest_udp_server(
    workers: u16,
) -> (std::sync::Arc<switchback::io::TurnServer>, switchback::io::Running, SocketAddr, switchback::auth::RestCredentials)
{
    use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret};
    let rest = RestCredentials::new(vec![Secret::new("s")]);
    let mut auth = AuthConfig::new("r");
    auth.rest = Some(rest.clone());
    let options = switchback::server::ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let mut nonce_key = [0u8; 32];
    getrandom_fill(&mut nonce_key);
    let server = switchback::io::UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
    let config = switchback::config::Config { listening_port: 0, workers, no_tcp: true, ..Default::default() };
    let running = switchback::io::bind_with_limits(&config, server.clone(), switchback::io::Limits::default())
        .await
        .expect("bind the TURN server");
    let addr = running.local_addr(switchback::server::Transport::Udp).expect("a UDP listener");
    (server, running, addr, rest)
}
