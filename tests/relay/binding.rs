//! Binding end to end over loopback, in process: `io::bind` + our client, the drivers' handling of
//! garbage, TCP framing, limits and shutdown, and interop with coturn's `turnutils_stunclient`.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::eventually;
use switchback::client::{self, ClientTransport, binding::encode_request, binding::parse_response};
use switchback::config::Config;
use switchback::io::{self, Limits, Running, TurnServer, UdpRelay};
use switchback::proto::demux::{Frame, stream_frame};
use switchback::proto::stun::TransactionId;
use switchback::server::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const TIMEOUT: Duration = Duration::from_secs(5);

fn loopback_config() -> Config {
    Config { listening_port: 0, ..Config::default() }
}

async fn start_with(config: Config, limits: Limits) -> (Running, Arc<TurnServer>) {
    let server = UdpRelay::server(config.server_options(), None);
    let running = io::bind_with_limits(&config, server.clone(), limits).await.unwrap();
    (running, server)
}

async fn start() -> (Running, Arc<TurnServer>, SocketAddr, SocketAddr) {
    let (running, server) = start_with(loopback_config(), Limits::default()).await;
    let udp = running.local_addr(Transport::Udp).unwrap();
    let tcp = running.local_addr(Transport::Tcp).unwrap();
    (running, server, udp, tcp)
}

/// Reads until the server closes the connection; fails if it sends anything or stays open.
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(TIMEOUT, stream.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

#[tokio::test]
async fn binding_over_udp_and_tcp_returns_our_address() {
    let (running, _server, udp, tcp) = start().await;
    assert!(udp.port() != 0 && tcp.port() != 0);
    assert_eq!(running.local_addrs().len(), 2);

    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mapped = client::binding_udp(&socket, udp, TIMEOUT).await.unwrap();
    assert_eq!(mapped, socket.local_addr().unwrap());

    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let mapped = client::binding_stream(&mut stream, TIMEOUT).await.unwrap();
    assert_eq!(mapped, stream.local_addr().unwrap());

    // The convenience entry point (its own socket, so only the IP is known in advance).
    for transport in [ClientTransport::Udp, ClientTransport::Tcp] {
        let server = if transport == ClientTransport::Udp { udp } else { tcp };
        let mapped = client::binding(server, transport, TIMEOUT).await.unwrap();
        assert!(mapped.ip().is_loopback() && mapped.port() != 0, "{mapped}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn garbage_datagram_is_dropped_and_counted_then_served_again() {
    let (running, server, udp, _) = start().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&[0xFF; 32], udp).await.unwrap();
    socket.send_to(&[], udp).await.unwrap();
    eventually("two drops", || server.stats().snapshot().dropped_not_stun >= 2).await;

    let mapped = client::binding_udp(&socket, udp, TIMEOUT).await.unwrap();
    assert_eq!(mapped, socket.local_addr().unwrap());
    assert_eq!(server.stats().snapshot().replies, 1);
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_garbage_closes_the_connection() {
    let (running, _server, _, tcp) = start().await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    stream.write_all(&[0xFF; 32]).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    eventually("tcp_closed_invalid", || running.io_stats().tcp_closed_invalid == 1).await;

    // A STUN header whose length is not a multiple of 4 cannot be framed either.
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    stream.write_all(&[0x00, 0x01, 0x00, 0x03, 0x21, 0x12, 0xA4, 0x42]).await.unwrap();
    assert_closed_by_server(&mut stream).await;

    // The listener still serves.
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    client::binding_stream(&mut stream, TIMEOUT).await.unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_two_requests_in_one_write_both_answered() {
    let (running, _server, _, tcp) = start().await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    let local = stream.local_addr().unwrap();
    let tids = [TransactionId([1; 12]), TransactionId([2; 12])];
    let mut bytes = Vec::new();
    for tid in tids {
        let mut buf = [0u8; 64];
        let n = encode_request(tid, &mut buf).unwrap();
        bytes.extend_from_slice(&buf[..n]);
    }
    stream.write_all(&bytes).await.unwrap();

    let mut buf = Vec::new();
    let mut answers = Vec::new();
    while answers.len() < 2 {
        match stream_frame(&buf, false) {
            Frame::Complete(n) => {
                answers.push(buf[..n].to_vec());
                buf.drain(..n);
                continue;
            }
            Frame::Incomplete => {}
            Frame::Invalid => panic!("server sent an unframeable stream"),
        }
        let mut chunk = [0u8; 1500];
        let n = tokio::time::timeout(TIMEOUT, stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed after {} answers", answers.len());
        buf.extend_from_slice(&chunk[..n]);
    }
    for (answer, tid) in answers.iter().zip(tids) {
        let mapped = parse_response(answer, tid).expect("answers in request order").unwrap();
        assert_eq!(mapped, local);
    }
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_request_split_across_writes_is_reassembled() {
    let (running, _server, _, tcp) = start().await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let tid = TransactionId([3; 12]);
    let mut req = [0u8; 64];
    let n = encode_request(tid, &mut req).unwrap();
    for piece in [&req[..3], &req[3..21], &req[21..n]] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut answer = vec![0u8; 1500];
    let mut filled = 0;
    let len = loop {
        filled += tokio::time::timeout(TIMEOUT, stream.read(&mut answer[filled..])).await.unwrap().unwrap();
        if let Frame::Complete(len) = stream_frame(&answer[..filled], false) {
            break len;
        }
    };
    let mapped = parse_response(&answer[..len], tid).unwrap().unwrap();
    assert_eq!(mapped, stream.local_addr().unwrap());
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_idle_connection_is_closed() {
    let limits = Limits { tcp_idle_timeout: Duration::from_millis(200), ..Limits::default() };
    let (running, _server) = start_with(loopback_config(), limits).await;
    let tcp = running.local_addr(Transport::Tcp).unwrap();
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    assert_closed_by_server(&mut stream).await;
    assert_eq!(running.io_stats().tcp_closed_idle, 1);
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_connection_cap_is_enforced() {
    let limits = Limits { max_tcp_connections: 1, ..Limits::default() };
    let (running, _server) = start_with(loopback_config(), limits).await;
    let tcp = running.local_addr(Transport::Tcp).unwrap();
    let mut first = TcpStream::connect(tcp).await.unwrap();
    client::binding_stream(&mut first, TIMEOUT).await.unwrap();
    let mut second = TcpStream::connect(tcp).await.unwrap();
    assert_closed_by_server(&mut second).await;
    assert_eq!(running.io_stats().tcp_rejected, 1);
    // The first connection is unaffected.
    client::binding_stream(&mut first, TIMEOUT).await.unwrap();
    running.shutdown().await;
}

#[tokio::test]
async fn tcp_connection_cap_per_source_is_enforced_and_released() {
    let limits = Limits { max_tcp_connections_per_source: 2, ..Limits::default() };
    let (running, _server) = start_with(loopback_config(), limits).await;
    let tcp = running.local_addr(Transport::Tcp).unwrap();
    let connect_from = |ip: &'static str| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{ip}:0").parse().unwrap()).unwrap();
        socket.connect(tcp).await.unwrap()
    };
    let mut a = connect_from("127.0.0.1").await;
    let mut b = connect_from("127.0.0.1").await;
    client::binding_stream(&mut a, TIMEOUT).await.unwrap();
    client::binding_stream(&mut b, TIMEOUT).await.unwrap();
    let mut third = connect_from("127.0.0.1").await;
    assert_closed_by_server(&mut third).await;
    assert_eq!(running.io_stats().tcp_rejected, 1);
    // Another source is not affected.
    let mut other = connect_from("127.0.0.2").await;
    client::binding_stream(&mut other, TIMEOUT).await.unwrap();
    // A closed connection gives its slot back.
    drop(a);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut again = connect_from("127.0.0.1").await;
        if client::binding_stream(&mut again, Duration::from_millis(500)).await.is_ok() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_open_connections() {
    let (running, _server, _, tcp) = start().await;
    let mut stream = TcpStream::connect(tcp).await.unwrap();
    client::binding_stream(&mut stream, TIMEOUT).await.unwrap();
    tokio::time::timeout(TIMEOUT, running.shutdown()).await.expect("shutdown is prompt");
    assert_closed_by_server(&mut stream).await;
    assert!(TcpStream::connect(tcp).await.is_err(), "listener closed");
}

#[tokio::test]
async fn only_the_configured_transports_listen() {
    let config = Config { no_tcp: true, ..loopback_config() };
    let (running, _server) = start_with(config, Limits::default()).await;
    assert!(running.local_addr(Transport::Tcp).is_none());
    assert!(running.local_addr(Transport::Udp).is_some());
    running.shutdown().await;
}

#[tokio::test]
async fn port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = Config { listening_port: taken.local_addr().unwrap().port(), no_udp: true, ..Config::default() };
    let server = UdpRelay::server(config.server_options(), None);
    let err = io::bind(&config, server).await.unwrap_err();
    assert!(matches!(err, io::IoError::Bind { transport: "tcp", .. }), "{err}");
}

#[tokio::test]
async fn ipv6_loopback_when_available() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let config =
        Config { listening_ip: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()], ..loopback_config() };
    let (running, _server) = start_with(config, Limits::default()).await;
    assert_eq!(running.local_addrs().len(), 4);
    let udp6 = running.local_addrs().iter().find(|l| l.transport == Transport::Udp && l.addr.is_ipv6()).unwrap().addr;
    let socket = UdpSocket::bind("[::1]:0").await.unwrap();
    let mapped = client::binding_udp(&socket, udp6, TIMEOUT).await.unwrap();
    assert_eq!(mapped, socket.local_addr().unwrap());
    running.shutdown().await;
}

/// The reflexive address `turnutils_stunclient` prints, e.g. `UDP reflexive addr: 127.0.0.1:40000`.
fn reflexive_addr(output: &str) -> Option<SocketAddr> {
    output
        .lines()
        .filter(|l| l.contains("reflexive addr"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|w| w.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_with_coturn_turnutils_stunclient() {
    if crate::support::tools::require("turnutils_stunclient").is_none() {
        return;
    }
    let (running, _server, udp, _) = start().await;
    let port = udp.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        crate::support::run_with_timeout(
            Command::new("turnutils_stunclient").args(["-p", &port, "127.0.0.1"]),
            crate::support::PROCESS_TIMEOUT,
        )
    })
    .await
    .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "turnutils_stunclient failed: {text}");
    let mapped = reflexive_addr(&text).unwrap_or_else(|| panic!("no reflexive address in: {text}"));
    assert_eq!(mapped.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap(), "{text}");
    assert_ne!(mapped.port(), 0, "{text}");
    running.shutdown().await;
}

/// RFC 5780 end to end: the daemon with `--rfc5780` on two loopback addresses (four UDP sockets)
/// and coturn's `turnutils_natdiscovery` running the mapping (§4.3) and filtering (§4.4) tests:
/// on loopback there is no NAT, so both are endpoint-independent. Started through the daemon binary.
#[cfg(feature = "cli")]
#[test]
fn interop_with_coturn_turnutils_natdiscovery() {
    if crate::support::tools::require("turnutils_natdiscovery").is_none() {
        return;
    }
    #[rustfmt::skip]
    let daemon = crate::support::Daemon::start(&[
        "--listening-port", "0", "--listening-ip", "127.0.0.1", "--listening-ip", "127.0.0.2",
        "--rfc5780", "--no-tls",
    ]);
    assert_eq!(daemon.udp.len(), 4, "A:P, B:P, A:P', B:P': {:?}", daemon.udp);
    let port = daemon.udp[0].port().to_string();
    // Then again with PADDING (-P, RFC 5780 §7.6) in every request.
    for extra in [&[][..], &["-P"][..]] {
        let mut cmd = Command::new("turnutils_natdiscovery");
        cmd.args(["-m", "-f"]).args(extra).args(["-p", &port, "127.0.0.1"]);
        let output = crate::support::run_with_timeout(&mut cmd, crate::support::PROCESS_TIMEOUT);
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(text.contains("NAT with Endpoint Independent Mapping!"), "{extra:?}: {text}");
        assert!(text.contains("NAT with Endpoint Independent Filtering!"), "{extra:?}: {text}");
        assert!(text.contains("Other addr: : 127.0.0.2:"), "{extra:?}: {text}");
        assert!(text.contains("Response origin: : 127.0.0.2:"), "{extra:?}: {text}");
    }
}
