//! `proxy-protocol`: TCP and TLS listeners read a PROXY protocol v2 header first (for TLS, before
//! the handshake) and the server sees its source as the client: XOR-MAPPED-ADDRESS of a Binding is
//! the header's address, not the loopback address the test connects from. Connections without a
//! header, or from outside `proxy-protocol-from`, are closed and counted.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{Daemon, TempFile};
use switchback::client::{TlsClient, binding_stream};
use switchback::config::Config;
use switchback::io::{self, ReloadableTls, Running, TlsIdentity, UdpRelay};
use switchback::proto::proxy::encode_v2;
use switchback::server::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

async fn start(config: Config, tls: Option<TlsIdentity>) -> Running {
    let config = Config { listening_port: 0, no_udp: true, ..config };
    let server = UdpRelay::server(config.server_options(), None);
    io::bind_with_tls(&config, server, io::Limits::default(), tls.map(ReloadableTls::new)).await.unwrap()
}

fn proxied() -> Config {
    Config { proxy_protocol: true, proxy_protocol_from: vec!["127.0.0.1".parse().unwrap()], ..Config::default() }
}

/// Connects, sends the header for `client`, and returns the stream.
async fn connect_as(server: SocketAddr, client: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(server).await.unwrap();
    stream.write_all(&encode_v2(client, server, &[])).await.unwrap();
    stream
}

/// Whether the server closes `stream` (reads EOF or a reset) within the timeout.
async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test]
async fn tcp_binding_sees_the_header_source() {
    let running = start(proxied(), None).await;
    let server = running.local_addr(Transport::Tcp).unwrap();
    for client in [sa("203.0.113.7:4242"), sa("[2001:db8::7]:50000")] {
        let mut stream = connect_as(server, client).await;
        assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), client);
        // Later requests on the same connection too.
        assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), client);
    }
    // A header and the request in one write: the header is cut exactly.
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut both = encode_v2(sa("198.51.100.9:9"), server, &[0x04, 0x00, 0x01, 0xAA]);
    both.extend_from_slice(&crate::support::turn_request(switchback::proto::stun::Method::BINDING, 7, None, |_| {}));
    stream.write_all(&both).await.unwrap();
    let mut buf = Vec::new();
    let frame = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    let msg = switchback::proto::stun::Message::parse(&frame).unwrap();
    let mapped = msg.get::<switchback::proto::stun::XorMappedAddress>().unwrap();
    assert_eq!(mapped.0, sa("198.51.100.9:9"));
    running.shutdown().await;
}

#[tokio::test]
async fn tls_header_comes_before_the_handshake() {
    let identity = TlsIdentity::self_signed(&["127.0.0.1"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity.end_entity().clone()).unwrap();
    let running = start(proxied(), Some(identity)).await;
    let server = running.local_addr(Transport::Tls).unwrap();
    let client = sa("203.0.113.8:443");
    let tcp = connect_as(server, client).await;
    let tls = TlsClient::new("127.0.0.1", roots).unwrap();
    let mut stream = tls.handshake(tcp, TIMEOUT).await.unwrap();
    assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), client);
    assert_eq!(running.io_stats().tls_handshakes, 1);
    running.shutdown().await;
}

#[tokio::test]
async fn no_header_is_closed_and_counted() {
    let running = start(proxied(), None).await;
    let server = running.local_addr(Transport::Tcp).unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    let request = crate::support::turn_request(switchback::proto::stun::Method::BINDING, 1, None, |_| {});
    stream.write_all(&request).await.unwrap();
    assert!(closed_by_server(&mut stream).await);
    assert_eq!(running.io_stats().proxy_header_failures, 1);
    // Without proxy-protocol the same request is answered with the real address.
    let plain = start(Config::default(), None).await;
    let mut stream = TcpStream::connect(plain.local_addr(Transport::Tcp).unwrap()).await.unwrap();
    let local = stream.local_addr().unwrap();
    assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), local);
    running.shutdown().await;
    plain.shutdown().await;
}

#[tokio::test]
async fn only_trusted_balancers() {
    let config = Config { proxy_protocol_from: vec!["10.0.0.0/8".parse().unwrap()], ..proxied() };
    let running = start(config, None).await;
    let server = running.local_addr(Transport::Tcp).unwrap();
    let mut stream = connect_as(server, sa("203.0.113.7:4242")).await;
    assert!(closed_by_server(&mut stream).await);
    assert_eq!(running.io_stats().proxy_untrusted, 1);
    running.shutdown().await;

    let config = Config { proxy_protocol_from: vec!["127.0.0.0/8".parse().unwrap()], ..proxied() };
    let running = start(config, None).await;
    let server = running.local_addr(Transport::Tcp).unwrap();
    let mut stream = connect_as(server, sa("203.0.113.7:4242")).await;
    assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), sa("203.0.113.7:4242"));
    running.shutdown().await;
}

/// The daemon's flag and key: `--proxy-protocol` over a file's `proxy-protocol-from`.
#[tokio::test]
async fn daemon_flag() {
    let file = TempFile::new("proxy.toml", "proxy-protocol-from = [\"127.0.0.1\"]\n");
    let daemon = Daemon::start(&[
        "-c",
        file.as_str(),
        "--listening-port",
        "0",
        "--no-udp",
        "--proxy-protocol",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let server = daemon.tcp[0];
    let mut stream = connect_as(server, sa("203.0.113.9:1234")).await;
    assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), sa("203.0.113.9:1234"));
    // A connection without a header is closed and shows in /metrics.
    let mut bare = TcpStream::connect(server).await.unwrap();
    bare.write_all(&[0u8; 16]).await.unwrap();
    assert!(closed_by_server(&mut bare).await);
    let metrics = daemon.http_addr("metrics");
    let scrape = tokio::task::spawn_blocking(move || crate::support::http_request(metrics, "GET", "/metrics", &[], ""))
        .await
        .unwrap();
    assert!(scrape.body.contains("switchback_proxy_header_failures_total 1"), "{}", scrape.body);
    assert!(scrape.body.contains("switchback_proxy_untrusted_total 0"), "{}", scrape.body);
}

/// The per-source connection cap counts the clients the headers name, not the balancer: two
/// connections for one client, a third is closed, another client still gets in.
#[tokio::test]
async fn the_per_source_cap_applies_to_the_header_source() {
    let config = Config { listening_port: 0, no_udp: true, ..proxied() };
    let limits = io::Limits { max_tcp_connections_per_source: 2, ..io::Limits::default() };
    let server = UdpRelay::server(config.server_options(), None);
    let running = io::bind_with_tls(&config, server, limits, None).await.unwrap();
    let addr = running.local_addr(Transport::Tcp).unwrap();
    let alice = sa("203.0.113.7:1000");
    let mut open = Vec::new();
    for port in [1000, 1001] {
        let client = SocketAddr::new(alice.ip(), port);
        let mut stream = connect_as(addr, client).await;
        assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), client);
        open.push(stream);
    }
    let mut third = connect_as(addr, sa("203.0.113.7:1002")).await;
    assert!(closed_by_server(&mut third).await);
    assert_eq!(running.io_stats().tcp_rejected, 1);
    let bob = sa("198.51.100.9:2000");
    let mut stream = connect_as(addr, bob).await;
    assert_eq!(binding_stream(&mut stream, TIMEOUT).await.unwrap(), bob);
    // A closed connection gives its slot back.
    drop(open.pop());
    let again = sa("203.0.113.7:1003");
    let mut retry = None;
    for _ in 0..50 {
        let mut stream = connect_as(addr, again).await;
        if let Ok(mapped) = binding_stream(&mut stream, Duration::from_millis(500)).await {
            retry = Some(mapped);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(retry, Some(again));
    running.shutdown().await;
}

/// Behind a balancer a PROXY header names the client: a second connection whose header claims the
/// address of a connected client is closed at once (counted), so it can neither take that
/// client's relayed data nor delete its allocation by closing; the first connection goes on.
#[tokio::test]
async fn a_header_claiming_a_connected_clients_address_is_refused() {
    let running = start(proxied(), None).await;
    let server = running.local_addr(Transport::Tcp).unwrap();
    let client = sa("203.0.113.9:5000");
    let mut victim = connect_as(server, client).await;
    assert_eq!(binding_stream(&mut victim, TIMEOUT).await.unwrap(), client);
    let mut thief = connect_as(server, client).await;
    assert!(closed_by_server(&mut thief).await, "the claimed 5-tuple is taken");
    assert_eq!(running.io_stats().tcp_closed_duplicate, 1);
    assert_eq!(binding_stream(&mut victim, TIMEOUT).await.unwrap(), client, "the first connection goes on");
    // Once the first one is gone, the address may connect again.
    drop(victim);
    crate::support::eventually("the first connection's 5-tuple freed", || running.io_stats().tcp_open == 0).await;
    let mut again = connect_as(server, client).await;
    assert_eq!(binding_stream(&mut again, TIMEOUT).await.unwrap(), client);
    running.shutdown().await;
}
