//! TURN over TLS (RFC 8656 §3.1) in process: Binding with our client, ALPN (RFC 7443), TLS 1.2 and
//! 1.3, what happens to clients that do not speak TLS or stall in the handshake, an allocation over
//! TLS that relays and dies with its connection, and a certificate replaced under live connections.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{TURN_REALM, TURN_USER, TurnFixture, eventually};
use rustls::{ClientConfig, ProtocolVersion};
use switchback::client::{self, ClientError, TlsClient};
use switchback::io::tls::{ALPN_STUN_NAT_DISCOVERY, ALPN_STUN_TURN, crypto_provider};
use switchback::io::{Limits, TlsIdentity};
use switchback::proto::stun::*;
use switchback::server::{ServerOptions, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const STEP: Duration = Duration::from_secs(5);

async fn fixture() -> TurnFixture {
    TurnFixture::start_tls(ServerOptions::default().with(|o| o.allow_loopback_peers = true), Limits::default()).await
}

/// A rustls client configuration trusting `fixture`'s certificate, with only `versions` and
/// offering `alpn`.
fn client_config(
    fixture: &TurnFixture,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(fixture.tls_roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_over_tls_negotiates_stun_turn() {
    let fixture = fixture().await;
    let server = fixture.tls_addr();
    assert_ne!(server.port(), 0);
    assert_eq!(fixture.running.local_addrs().last().map(|l| l.transport_name()), Some("tls"));

    let mut stream = fixture.tls_client().connect(server, STEP).await.unwrap();
    let (tcp, session) = stream.get_ref();
    assert_eq!(session.alpn_protocol(), Some(ALPN_STUN_TURN), "ALPN stun.turn (RFC 7443)");
    assert_eq!(session.protocol_version(), Some(ProtocolVersion::TLSv1_3));
    let local = tcp.local_addr().unwrap();
    assert_eq!(client::binding_stream(&mut stream, STEP).await.unwrap(), local);
    // Many requests on one connection.
    assert_eq!(client::binding_stream(&mut stream, STEP).await.unwrap(), local);

    // The convenience entry point, on a connection of its own.
    let mapped = client::binding_tls(server, &fixture.tls_client(), STEP).await.unwrap();
    assert!(mapped.ip().is_loopback() && mapped.port() != local.port(), "{mapped}");
    assert_eq!(fixture.running.io_stats().tls_handshakes, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_and_1_3_with_and_without_alpn() {
    let fixture = fixture().await;
    /// The version offered, the one expected, the ALPN protocols offered, the one expected.
    type Case =
        (&'static rustls::SupportedProtocolVersion, ProtocolVersion, &'static [&'static [u8]], Option<&'static [u8]>);
    let cases: [Case; 4] = [
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2, &[ALPN_STUN_TURN], Some(ALPN_STUN_TURN)),
        // `stun.nat-discovery` is not offered (RFC 5780 is off): `stun.turn` is chosen.
        (
            &rustls::version::TLS13,
            ProtocolVersion::TLSv1_3,
            &[ALPN_STUN_NAT_DISCOVERY, ALPN_STUN_TURN],
            Some(ALPN_STUN_TURN),
        ),
        // Clients without ALPN are served.
        (&rustls::version::TLS12, ProtocolVersion::TLSv1_2, &[], None),
        (&rustls::version::TLS13, ProtocolVersion::TLSv1_3, &[b"h2", ALPN_STUN_TURN], Some(ALPN_STUN_TURN)),
    ];
    for (version, expected, alpn, negotiated) in cases {
        let tls = TlsClient::with_config("127.0.0.1", client_config(&fixture, &[version], alpn)).unwrap();
        let mut stream = tls.connect(fixture.tls_addr(), STEP).await.unwrap();
        let (tcp, session) = stream.get_ref();
        assert_eq!(session.protocol_version(), Some(expected));
        assert_eq!(session.alpn_protocol(), negotiated, "{expected:?} offering {alpn:?}");
        let local = tcp.local_addr().unwrap();
        assert_eq!(client::binding_stream(&mut stream, STEP).await.unwrap(), local, "{expected:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_other_alpn_protocols_or_another_name_is_refused() {
    let fixture = fixture().await;
    let tls = TlsClient::with_config("127.0.0.1", client_config(&fixture, &[&rustls::version::TLS13], &[b"h2"]));
    let err = tls.unwrap().connect(fixture.tls_addr(), STEP).await.unwrap_err();
    assert!(matches!(err, ClientError::Io(_)), "{err}");
    // RFC 7443: `stun.nat-discovery` alone asks for RFC 5780, off here: no agreement.
    let offer: &[&[u8]] = &[ALPN_STUN_NAT_DISCOVERY];
    let tls = TlsClient::with_config("127.0.0.1", client_config(&fixture, &[&rustls::version::TLS13], offer));
    let err = tls.unwrap().connect(fixture.tls_addr(), STEP).await.unwrap_err();
    assert!(matches!(err, ClientError::Io(_)), "{err}");
    // The certificate names 127.0.0.1 and localhost only.
    let tls = TlsClient::new("turn.example.org", fixture.tls_roots()).unwrap();
    assert!(tls.connect(fixture.tls_addr(), STEP).await.is_err());
    assert!(matches!(TlsClient::new("not a name", fixture.tls_roots()), Err(ClientError::ServerName(_))));
    // The server goes on.
    client::binding_tls(fixture.tls_addr(), &fixture.tls_client(), STEP).await.unwrap();
}

/// Reads until the server closes the connection; what it sent before (a TLS alert) is ignored.
async fn closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(STEP, stream.read(&mut buf)).await.expect("the server should close") {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_stun_client_on_the_tls_port_is_closed_and_the_server_goes_on() {
    let fixture = fixture().await;
    let mut stream = TcpStream::connect(fixture.tls_addr()).await.unwrap();
    let mut request = [0u8; 64];
    let n = client::binding::encode_request(TransactionId([3; 12]), &mut request).unwrap();
    stream.write_all(&request[..n]).await.unwrap();
    closed_by_server(&mut stream).await;
    // The close can reach us a moment before the failure is counted.
    eventually("the failed handshake to be counted", || fixture.running.io_stats().tls_handshake_failures == 1).await;
    assert_eq!(fixture.running.io_stats().tls_handshake_failures, 1);
    assert_eq!(fixture.stats().replies, 0, "nothing reached the server core");

    client::binding_tls(fixture.tls_addr(), &fixture.tls_client(), STEP).await.unwrap();
    // The plain TCP and UDP listeners are not affected either.
    let tcp = fixture.running.local_addr(Transport::Tcp).unwrap();
    client::binding(tcp, client::ClientTransport::Tcp, STEP).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_times_out() {
    let limits = Limits { tls_handshake_timeout: Duration::from_millis(200), ..Limits::default() };
    let fixture = TurnFixture::start_tls(ServerOptions::default(), limits).await;
    let started = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(fixture.tls_addr()).await.unwrap();
    closed_by_server(&mut stream).await;
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // The close can reach us a moment before the failure is counted.
    eventually("the failed handshake to be counted", || fixture.running.io_stats().tls_handshake_failures == 1).await;
    assert_eq!(fixture.running.io_stats().tls_handshake_failures, 1);
}

/// Sends a request (signed with `key` and `nonce` when given) and reads the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    method: Method,
    tid: u8,
    auth: Option<(&str, &IntegrityKey)>,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let out = crate::support::turn_request(method, tid, auth, body);
    stream.write_all(&out).await.unwrap();
    stream.flush().await.unwrap();
    crate::support::read_stream_frame(stream, buf).await
}

/// Bursts of frames over TLS: a whole burst in few records each way, every datagram whole and in
/// order (the body is the TCP test's, `tcp_client.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_frames_over_tls_keep_their_order_and_contents_both_ways() {
    let fixture = fixture().await;
    let mut stream = fixture.tls_client().connect(fixture.tls_addr(), STEP).await.unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    let resp = exchange(&mut stream, &mut buf, Method::ALLOCATE, 1, None, udp).await;
    let nonce = Message::parse(&resp).unwrap().get::<Nonce>().unwrap().0.to_string();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));
    let resp = exchange(&mut stream, &mut buf, Method::ALLOCATE, 2, Some((&nonce, &key)), udp).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    crate::tcp_client::bursts_both_ways(&mut stream, &mut buf, &nonce, &key, relayed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_over_tls_relays_and_dies_with_its_connection() {
    let fixture = fixture().await;
    let mut stream = fixture.tls_client().connect(fixture.tls_addr(), STEP).await.unwrap();
    let client_addr = stream.get_ref().0.local_addr().unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();

    let resp = exchange(&mut stream, &mut buf, Method::ALLOCATE, 1, None, udp).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    let nonce = m.get::<Nonce>().unwrap().0.to_string();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));

    let resp = exchange(&mut stream, &mut buf, Method::ALLOCATE, 2, Some((&nonce, &key)), udp).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, client_addr);
    let allocations = fixture.server.allocations().all();
    assert_eq!(allocations.len(), 1);
    let five = allocations[0].info().five_tuple;
    assert_eq!((five.transport, five.client, five.server), (Transport::Tls, client_addr, fixture.tls_addr()));

    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr: SocketAddr = peer.local_addr().unwrap();
    let bind = |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(0x4001)).unwrap();
        w.add(&XorPeerAddress(peer_addr)).unwrap();
    };
    let resp = exchange(&mut stream, &mut buf, Method::CHANNEL_BIND, 3, Some((&nonce, &key)), bind).await;
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);

    crate::support::channel_data_over_stream_then_close(&fixture, stream, buf, &peer, relayed).await;
}

/// The certificate the server presents on a new connection (trusting `roots`).
async fn presented(fixture: &TurnFixture, roots: rustls::RootCertStore) -> Vec<u8> {
    let tls = TlsClient::new("127.0.0.1", roots).unwrap();
    let stream = tls.connect(fixture.tls_addr(), STEP).await.unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_serves_new_handshakes_and_live_connections_stay() {
    let fixture = fixture().await;
    let tls = fixture.running.tls().expect("TLS listeners").clone();
    let old = tls.identity();
    let mut live = fixture.tls_client().connect(fixture.tls_addr(), STEP).await.unwrap();

    let new = TlsIdentity::self_signed(&["127.0.0.1"]).unwrap();
    assert_ne!(new.fingerprint(), old.fingerprint());
    let mut roots = fixture.tls_roots();
    roots.add(new.end_entity().clone()).unwrap();
    assert_eq!(presented(&fixture, roots.clone()).await, old.end_entity().to_vec());
    tls.replace(new.clone());
    assert_eq!(tls.identity().fingerprint(), new.fingerprint());
    assert_eq!(presented(&fixture, roots).await, new.end_entity().to_vec());
    // The old certificate is no longer presented: a client trusting only it fails.
    assert!(fixture.tls_client().connect(fixture.tls_addr(), STEP).await.is_err());

    let local = live.get_ref().0.local_addr().unwrap();
    assert_eq!(client::binding_stream(&mut live, STEP).await.unwrap(), local, "the live connection goes on");
}

#[test]
fn pem_files_load_and_errors_name_the_key() {
    let dir = std::env::temp_dir().join(format!("switchback-tls-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name);
    let a = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(path("a.pem"), a.cert.pem()).unwrap();
    std::fs::write(path("a.key"), a.signing_key.serialize_pem()).unwrap();
    std::fs::write(path("b.key"), b.signing_key.serialize_pem()).unwrap();
    std::fs::write(path("garbage"), "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
    std::fs::write(path("empty"), "").unwrap();

    let identity = TlsIdentity::from_pem_files(&path("a.pem"), &path("a.key")).unwrap();
    assert_eq!(identity.end_entity().as_ref(), a.cert.der().as_ref());
    let fingerprint = identity.fingerprint();
    assert_eq!(fingerprint.len(), 32 * 3 - 1);
    assert!(fingerprint.chars().all(|c| c == ':' || c.is_ascii_hexdigit()), "{fingerprint}");

    let key_of = |cert: &str, key: &str| TlsIdentity::from_pem_files(&path(cert), &path(key)).unwrap_err().key();
    assert_eq!(key_of("missing", "a.key"), "cert");
    assert_eq!(key_of("a.pem", "missing"), "pkey");
    assert_eq!(key_of("garbage", "a.key"), "cert");
    assert_eq!(key_of("empty", "a.key"), "cert");
    assert_eq!(key_of("a.pem", "empty"), "pkey");
    assert_eq!(key_of("a.pem", "a.pem"), "pkey", "a certificate is no key");
    assert_eq!(key_of("a.pem", "b.key"), "pkey", "a key of another certificate");
    let err = TlsIdentity::from_pem_files(&path("a.pem"), &path("b.key")).unwrap_err().to_string();
    assert!(!err.contains("PRIVATE"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// RFC 7443 `stun.nat-discovery` with RFC 5780 on (issue #14): TLS on two loopback addresses at
/// two ports (the §6 grid), the ALPN offered and chosen, and a Binding over it answered with
/// OTHER-ADDRESS (the other IP at the other TLS port, where a TLS connection is answered too) and
/// RESPONSE-ORIGIN; CHANGE-REQUEST, which a stream cannot follow, gets 420.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_discovery_over_tls_with_rfc5780_on() {
    let identity = TlsIdentity::self_signed(&["127.0.0.1", "127.0.0.2", "localhost"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity.end_entity().clone()).unwrap();
    let server = switchback::io::UdpRelay::server(ServerOptions::default().with(|o| o.rfc5780 = true), None);
    let ips = ["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
    let plan = switchback::io::ListenPlan {
        tls_addrs: ips.iter().map(|&ip| SocketAddr::new(ip, 0)).collect(),
        udp: false,
        tcp: false,
        tls: true,
        rfc5780_tls_alt_port: Some(0),
        ..switchback::io::ListenPlan::new(&ips, 0)
    };
    let tls = switchback::io::ReloadableTls::new(identity);
    let running = switchback::io::bind_with_tls(plan, server, Limits::default(), Some(tls)).await.unwrap();
    let tls_addrs: Vec<SocketAddr> = running.local_addrs().iter().map(|l| l.addr).collect();
    assert_eq!(tls_addrs.len(), 4, "A:P, B:P, A:P', B:P': {tls_addrs:?}");
    let (a, other) = (tls_addrs[0], SocketAddr::new(ips[1], tls_addrs[2].port()));
    assert!(tls_addrs.contains(&other) && a.port() == tls_addrs[1].port(), "{tls_addrs:?}");

    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_STUN_NAT_DISCOVERY.to_vec()];
    let config = Arc::new(config);
    let mut buf = Vec::new();
    let mut stream = TlsClient::with_config("127.0.0.1", config.clone()).unwrap().connect(a, STEP).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(ALPN_STUN_NAT_DISCOVERY));
    let answer = exchange(&mut stream, &mut buf, Method::BINDING, 1, None, |_| {}).await;
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, stream.get_ref().0.local_addr().unwrap());
    assert_eq!(m.get::<OtherAddress>().unwrap().0, other);
    assert_eq!(m.get::<ResponseOrigin>().unwrap().0, a);
    let change = |w: &mut MessageWriter<'_>| w.add(&ChangeRequest { change_ip: true, change_port: true }).unwrap();
    let answer = exchange(&mut stream, &mut buf, Method::BINDING, 2, None, change).await;
    assert_eq!(Message::parse(&answer).unwrap().get::<ErrorCode>().unwrap().code, 420);
    // The mapping test of RFC 5780 §4.3 goes on at OTHER-ADDRESS.
    let mut stream = TlsClient::with_config("127.0.0.2", config).unwrap().connect(other, STEP).await.unwrap();
    let answer = exchange(&mut stream, &mut buf, Method::BINDING, 3, None, |_| {}).await;
    let m = Message::parse(&answer).unwrap();
    assert_eq!(m.get::<ResponseOrigin>().unwrap().0, other);
    assert_eq!(m.get::<OtherAddress>().unwrap().0, a);
    running.shutdown().await;
}
