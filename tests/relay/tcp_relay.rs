//! RFC 6062 TCP relaying end to end, with a raw STUN-over-TCP client: Allocate TCP, Connect to a
//! loopback echo peer, ConnectionBind on a data connection and raw bytes both ways; a peer's
//! connection announced with ConnectionAttempt; 403 for a denied peer and 447 for a closed port.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{TURN_REALM, TURN_USER, TurnFixture};
use switchback::proto::demux::{Frame, stream_frame};
use switchback::proto::stun::*;
use switchback::server::{ServerOptions, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(5);

/// A raw STUN client on one TCP connection; signs with the static test user once it has a nonce.
struct StunConn<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    nonce: Option<String>,
    key: IntegrityKey,
    tid: u8,
}

impl StunConn {
    async fn connect(server: SocketAddr) -> StunConn {
        StunConn::over(TcpStream::connect(server).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> StunConn<S> {
    fn over(stream: S) -> StunConn<S> {
        StunConn {
            stream,
            buf: Vec::new(),
            nonce: None,
            key: IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1)),
            tid: 0,
        }
    }

    async fn read_frame(&mut self) -> Vec<u8> {
        loop {
            if let Frame::Complete(n) = stream_frame(&self.buf, false) {
                return self.buf.drain(..n).collect();
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(STEP, self.stream.read(&mut chunk)).await.expect("read timeout").unwrap();
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn encode(&mut self, method: Method, body: &dyn Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        self.tid += 1;
        let mut buf = vec![0u8; 1500];
        let ty = MessageType::new(method, Class::Request);
        let mut w = MessageWriter::new(&mut buf, ty, TransactionId([self.tid; 12])).unwrap();
        body(&mut w);
        if let Some(nonce) = &self.nonce {
            w.add(&Username(TURN_USER.0)).unwrap();
            w.add(&Realm(TURN_REALM)).unwrap();
            w.add(&Nonce(nonce)).unwrap();
            w.add_message_integrity(&self.key).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    /// Sends a request (again with the new nonce after a 401 or 438) and returns the answer.
    async fn call(&mut self, method: Method, body: &dyn Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        for _ in 0..3 {
            let req = self.encode(method, body);
            self.stream.write_all(&req).await.unwrap();
            let resp = self.read_frame().await;
            let m = Message::parse(&resp).unwrap();
            match m.get::<ErrorCode>().map(|e| e.code) {
                Ok(401 | 438) if m.has::<Nonce>() => self.nonce = Some(m.get::<Nonce>().unwrap().0.to_string()),
                _ => return resp,
            }
        }
        panic!("no answer beyond 401/438");
    }

    /// Allocates a TCP relay; returns the relayed address.
    async fn allocate_tcp(&mut self) -> SocketAddr {
        let resp = self.call(Method::ALLOCATE, &|w| w.add(&RequestedTransport::TCP).unwrap()).await;
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
        m.get::<XorRelayedAddress>().unwrap().0
    }
}

fn code(resp: &[u8]) -> Option<u16> {
    Message::parse(resp).unwrap().get::<ErrorCode>().ok().map(|e| e.code)
}

/// Opens a client data connection and binds it to `id` (RFC 6062 §5.4).
async fn bind_data(server: SocketAddr, id: u32) -> StunConn {
    let mut data = StunConn::connect(server).await;
    let resp = data.call(Method::CONNECTION_BIND, &|w| w.add(&ConnectionId(id)).unwrap()).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECTION_BIND, Class::SuccessResponse));
    data
}

async fn read_exact(stream: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    tokio::time::timeout(STEP, stream.read_exact(&mut got)).await.expect("read timeout").unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_then_connection_bind_relays_bytes_to_an_echo_peer() {
    let fixture = TurnFixture::loopback().await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let peer = crate::support::tcp_echo_peer().await;
    let mut control = StunConn::connect(server).await;
    let relayed = control.allocate_tcp().await;

    let resp = control.call(Method::CONNECT, &|w| w.add(&XorPeerAddress(peer)).unwrap()).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECT, Class::SuccessResponse), "{:?}", code(&resp));
    assert_eq!(m.verify_integrity(&control.key), Ok(()));
    let id = m.get::<ConnectionId>().unwrap().0;

    // RFC 6062 §5.2: a second Connect to the same peer while the first lives: 446.
    let again = control.call(Method::CONNECT, &|w| w.add(&XorPeerAddress(peer)).unwrap()).await;
    assert_eq!(code(&again), Some(codes::CONNECTION_ALREADY_EXISTS));

    let mut data = bind_data(server, id).await;
    assert!(data.buf.is_empty());
    data.stream.write_all(b"hello, peer").await.unwrap();
    assert_eq!(read_exact(&mut data.stream, 11).await, b"hello, peer");
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let (mut r, mut w) = data.stream.split();
    let (_, echoed) = tokio::join!(async { w.write_all(&big).await.unwrap() }, async {
        let mut got = vec![0u8; big.len()];
        tokio::time::timeout(STEP, r.read_exact(&mut got)).await.expect("echo timeout").unwrap();
        got
    });
    assert!(echoed == big, "200 kB echoed intact");

    // An unknown CONNECTION-ID: 400.
    let mut stray = StunConn::connect(server).await;
    let resp = stray.call(Method::CONNECTION_BIND, &|w| w.add(&ConnectionId(id ^ 1)).unwrap()).await;
    assert_eq!(code(&resp), Some(codes::BAD_REQUEST));

    let s = fixture.stats();
    assert_eq!((s.tcp_connects, s.tcp_connected, s.tcp_connections_bound), (1, 1, 1));
    assert_ne!(relayed.port(), 0);

    // Closing the control connection deletes the allocation, and its data connections close.
    drop(control);
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(STEP, data.stream.read(&mut b)).await.expect("data connection closed");
    assert_eq!(n.unwrap_or(0), 0);
    // Its relayed address closes (once the accept task has seen the deletion).
    let deadline = tokio::time::Instant::now() + STEP;
    while TcpStream::connect(relayed).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "the relayed address outlived its allocation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_connecting_to_the_relayed_address_is_announced_and_bound() {
    let fixture = TurnFixture::loopback().await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let mut control = StunConn::connect(server).await;
    let relayed = control.allocate_tcp().await;

    // Without a permission the peer's connection is closed at once.
    let mut refused = TcpStream::connect(relayed).await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(STEP, refused.read(&mut b)).await.expect("closed").unwrap_or(0);
    assert_eq!(n, 0);

    let loopback: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let resp = control.call(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(loopback)).unwrap()).await;
    assert_eq!(code(&resp), None);
    let mut peer = TcpStream::connect(relayed).await.unwrap();
    let attempt = control.read_frame().await;
    let m = Message::parse(&attempt).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication));
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer.local_addr().unwrap());
    let id = m.get::<ConnectionId>().unwrap().0;

    // Bytes the peer sends before the bind wait for it.
    peer.write_all(b"early").await.unwrap();
    let mut data = bind_data(server, id).await;
    // Raw bytes may follow the ConnectionBind answer in the same read.
    let mut early = std::mem::take(&mut data.buf);
    early.extend(read_exact(&mut data.stream, 5 - early.len()).await);
    assert_eq!(early, b"early");
    data.stream.write_all(b"pong").await.unwrap();
    assert_eq!(read_exact(&mut peer, 4).await, b"pong");
    assert_eq!(fixture.stats().tcp_connection_attempts, 1);

    // The peer closes: so does the client data connection.
    drop(peer);
    let n = tokio::time::timeout(STEP, data.stream.read(&mut b)).await.expect("closed").unwrap_or(0);
    assert_eq!(n, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_denied_peer_is_403_and_to_a_closed_port_447() {
    // Default policy: loopback peers are denied. Only the request is sent.
    let strict = TurnFixture::start(ServerOptions::default()).await;
    let mut control = StunConn::connect(strict.running.local_addr(Transport::Tcp).unwrap()).await;
    control.allocate_tcp().await;
    let denied: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let resp = control.call(Method::CONNECT, &|w| w.add(&XorPeerAddress(denied)).unwrap()).await;
    assert_eq!(code(&resp), Some(codes::FORBIDDEN));
    assert_eq!(strict.stats().tcp_connects, 0);

    let fixture = TurnFixture::loopback().await;
    let mut control = StunConn::connect(fixture.running.local_addr(Transport::Tcp).unwrap()).await;
    control.allocate_tcp().await;
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let resp = control.call(Method::CONNECT, &|w| w.add(&XorPeerAddress(closed)).unwrap()).await;
    assert_eq!(code(&resp), Some(codes::CONNECTION_TIMEOUT_OR_FAILURE));
    assert_eq!(fixture.stats().tcp_connect_failures, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_relaying_over_tls_control_and_data_connections() {
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let fixture = TurnFixture::start_tls(options, switchback::io::Limits::default()).await;
    let server = fixture.tls_addr();
    let tls = fixture.tls_client();
    let peer = crate::support::tcp_echo_peer().await;
    let mut control = StunConn::over(tls.connect(server, STEP).await.unwrap());
    let resp = control.call(Method::ALLOCATE, &|w| w.add(&RequestedTransport::TCP).unwrap()).await;
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse, "{:?}", code(&resp));
    let resp = control.call(Method::CONNECT, &|w| w.add(&XorPeerAddress(peer)).unwrap()).await;
    let id = Message::parse(&resp).unwrap().get::<ConnectionId>().expect("CONNECTION-ID").0;
    let mut data = StunConn::over(tls.connect(server, STEP).await.unwrap());
    let resp = data.call(Method::CONNECTION_BIND, &|w| w.add(&ConnectionId(id)).unwrap()).await;
    assert_eq!(code(&resp), None);
    data.stream.write_all(b"over tls").await.unwrap();
    data.stream.flush().await.unwrap();
    assert_eq!(read_exact(&mut data.stream, 8).await, b"over tls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_allocation_needs_a_stream_and_can_be_switched_off() {
    let fixture = TurnFixture::start(ServerOptions::default().with(|o| o.no_tcp_relay = true)).await;
    let mut control = StunConn::connect(fixture.running.local_addr(Transport::Tcp).unwrap()).await;
    let resp = control.call(Method::ALLOCATE, &|w| w.add(&RequestedTransport::TCP).unwrap()).await;
    assert_eq!(code(&resp), Some(codes::UNSUPPORTED_TRANSPORT_PROTOCOL));
}

/// coturn's `turnutils_uclient -T` (RFC 6062; implies `-t -y -c`): two clients allocate TCP
/// relays, Connect to each other's relayed address, get ConnectionAttempt, bind data connections
/// and exchange their messages. None may be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_rfc6062_mode_relays_every_message() {
    if crate::support::tools::require("turnutils_uclient").is_none() {
        return;
    }
    let fixture = TurnFixture::loopback().await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let mut cmd = std::process::Command::new("turnutils_uclient");
    cmd.args(["-T", "-v", "-n", "50", "-m", "2", "-l", "100", "-u", TURN_USER.0, "-w", TURN_USER.1])
        .args(["-p", &server.port().to_string()])
        .arg(server.ip().to_string());
    let output =
        tokio::task::spawn_blocking(move || crate::support::run_with_timeout(&mut cmd, Duration::from_secs(30)))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "uclient failed: {report}");
    let number_after = |key: &str| -> Option<u64> {
        let line = stdout.lines().rev().find(|l| l.contains(key))?;
        let rest = &line[line.find(key)? + key.len()..];
        rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
    };
    assert_eq!(number_after("tot_send_msgs="), Some(100), "{report}");
    assert_eq!(number_after("tot_recv_msgs="), Some(100), "{report}");
    assert_eq!(number_after("Total lost packets "), Some(0), "{report}");
    let s = fixture.stats();
    assert!(s.tcp_connected >= 1 && s.tcp_connection_attempts >= 1, "{s:?}");
    assert!(s.tcp_connections_bound >= 2, "{s:?}");
}
