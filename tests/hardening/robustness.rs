//! Robust parsing in the server (issue 4, item 6): malformed STUN and ChannelData, broken TCP framing,
//! oversized and stalled TCP frames. Each is dropped (or answered 400), counted, never a panic, and
//! the server still answers afterwards; nothing partial reaches a peer; and what the relay writes
//! never carries bytes of an earlier, larger datagram.
//!
//! The malformed inputs are one table ([`malformed`]) fed twice: over real loopback sockets to
//! `io::bind` + the sans-IO server (counters and an echo peer that must stay silent), and to
//! [`Server::handle`] directly with the exact [`Outcome`] each must get.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{FakeRelay, RECV_TIMEOUT, RawTurn, TURN_USER, TurnFixture, bounded, eventually, udp_echo_peer};
use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::client::turn::Credentials;
use switchback::config::Config;
use switchback::io::{self, Limits, UdpRelay};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    ChannelNumber, Class, Data, DecodeError, ErrorCode, IntegrityKey, Message, MessageType, MessageWriter, Method,
    Nonce, Realm, RequestedTransport, TransactionId, Username, XorPeerAddress, codes, long_term_key_md5, types,
};
use switchback::server::{DropReason, Outcome, Received, Server, ServerOptions, StatsSnapshot, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long to wait before concluding that a datagram will not come.
const SILENCE: Duration = Duration::from_millis(300);
/// The channel the malformed ChannelData cases use, bound to the peer.
const CHANNEL: u16 = 0x4001;

// ---------------------------------------------------------------------------------------------------
// The malformed inputs.

/// A STUN header with the magic cookie: type, length field, transaction ID.
fn header(typ: u16, len: u16, tid: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&typ.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    v.extend_from_slice(&[tid; 12]);
    v
}

/// An attribute header with any length field, then `value` as given (no padding added).
fn attr(typ: u16, len: u16, value: &[u8]) -> Vec<u8> {
    let mut v = typ.to_be_bytes().to_vec();
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(value);
    v
}

/// A header whose length field is what follows it.
fn message(typ: u16, tid: u8, body: &[u8]) -> Vec<u8> {
    let len = u16::try_from(body.len()).unwrap();
    let mut v = header(typ, len, tid);
    v.extend_from_slice(body);
    v
}

const BINDING_REQUEST: u16 = 0x0001;
const SEND_INDICATION: u16 = 0x0016;

/// XOR-PEER-ADDRESS of `peer` (IPv4) as raw attribute bytes.
fn xor_peer(peer: SocketAddr, tid: u8) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let mut w =
        MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([tid; 12]))
            .unwrap();
    w.add(&XorPeerAddress(peer)).unwrap();
    let n = w.finish();
    buf[20..n].to_vec()
}

/// One malformed input and what the server must do with it (from the client of an allocation
/// with a permission for `peer` and channel [`CHANNEL`] bound to it).
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    outcome: Outcome,
}

fn malformed(peer: SocketAddr) -> Vec<Case> {
    let malformed = |e| Outcome::Dropped(DropReason::Malformed(e));
    let data = |len: u16, value: &[u8]| attr(types::DATA, len, value);
    let mut send_cut = message(SEND_INDICATION, 3, &[xor_peer(peer, 3), data(16, &[0xAB; 16])].concat());
    send_cut.truncate(send_cut.len() - 8);
    let mut send_short_length = message(SEND_INDICATION, 4, &[xor_peer(peer, 4), data(16, &[0xAB; 16])].concat());
    send_short_length[3] -= 8;
    vec![
        Case {
            name: "DATA length beyond the message",
            bytes: message(SEND_INDICATION, 1, &[xor_peer(peer, 1), data(200, &[0xAB; 8])].concat()),
            outcome: malformed(DecodeError::AttributeOverflow),
        },
        Case {
            name: "Send indication cut inside DATA (length field larger than the datagram)",
            bytes: send_cut,
            outcome: malformed(DecodeError::BadLength),
        },
        Case {
            name: "Send indication whose DATA is longer than the message length says",
            bytes: send_short_length,
            outcome: malformed(DecodeError::BadLength),
        },
        Case {
            name: "Send indication without DATA",
            bytes: message(SEND_INDICATION, 5, &xor_peer(peer, 5)),
            outcome: Outcome::Dropped(DropReason::BadData),
        },
        Case {
            name: "attribute length past the end",
            bytes: message(BINDING_REQUEST, 6, &attr(types::SOFTWARE, 0x0100, b"abcd")),
            outcome: malformed(DecodeError::AttributeOverflow),
        },
        Case {
            name: "message length not a multiple of 4",
            bytes: [header(BINDING_REQUEST, 2, 8), vec![0, 0]].concat(),
            outcome: malformed(DecodeError::BadLength),
        },
        Case {
            name: "message length field larger than the datagram",
            bytes: [header(BINDING_REQUEST, 8, 9), attr(types::SOFTWARE, 0, &[])].concat(),
            outcome: malformed(DecodeError::BadLength),
        },
        Case {
            name: "message length field smaller than the datagram",
            bytes: [header(BINDING_REQUEST, 0, 10), attr(types::SOFTWARE, 4, b"abcd")].concat(),
            outcome: malformed(DecodeError::BadLength),
        },
        Case {
            name: "shorter than a STUN header",
            bytes: header(BINDING_REQUEST, 0, 11)[..12].to_vec(),
            outcome: malformed(DecodeError::TooShort),
        },
        Case {
            name: "attribute after FINGERPRINT",
            bytes: message(
                BINDING_REQUEST,
                12,
                &[attr(types::FINGERPRINT, 4, &[0; 4]), attr(types::SOFTWARE, 4, b"late")].concat(),
            ),
            outcome: malformed(DecodeError::AttributeAfterFingerprint),
        },
        Case {
            name: "truncated ChannelData (length field beyond the payload)",
            bytes: [&CHANNEL.to_be_bytes()[..], &100u16.to_be_bytes(), &[0xAB; 10]].concat(),
            outcome: Outcome::Dropped(DropReason::BadData),
        },
        Case {
            name: "ChannelData shorter than its header",
            bytes: CHANNEL.to_be_bytes().to_vec(),
            outcome: Outcome::Dropped(DropReason::BadData),
        },
        Case {
            name: "ChannelData on an unbound channel",
            bytes: [&0x4FFEu16.to_be_bytes()[..], &4u16.to_be_bytes(), b"data"].concat(),
            outcome: Outcome::Dropped(DropReason::NoChannel),
        },
        Case { name: "empty datagram", bytes: Vec::new(), outcome: Outcome::Dropped(DropReason::NotStunOrChannelData) },
    ]
}

/// The drop counters the cases' outcomes should move, summed.
fn expected_drops(cases: &[Case]) -> StatsSnapshot {
    let mut s = StatsSnapshot::default();
    for c in cases {
        match c.outcome {
            Outcome::Dropped(DropReason::Malformed(_)) => s.dropped_malformed += 1,
            Outcome::Dropped(DropReason::BadData) => s.dropped_bad_data += 1,
            Outcome::Dropped(DropReason::NoChannel) => s.dropped_no_channel += 1,
            Outcome::Dropped(DropReason::NotStunOrChannelData) => s.dropped_not_stun += 1,
            other => panic!("{}: no counter for {other:?}", c.name),
        }
    }
    s
}

fn drops(s: &StatsSnapshot) -> [u64; 4] {
    [s.dropped_malformed, s.dropped_bad_data, s.dropped_no_channel, s.dropped_not_stun]
}

// ---------------------------------------------------------------------------------------------------
// Over UDP, from a client with an allocation.

/// An allocation through `fixture` with a permission for `peer` and [`CHANNEL`] bound to it.
async fn allocated(fixture: &TurnFixture, peer: SocketAddr) -> RawTurn {
    let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), fixture.udp, TURN_USER.0, TURN_USER.1).await;
    let r = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
    assert!(r.success, "allocate: {r:?}");
    let r = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).await;
    assert!(r.success, "create permission: {r:?}");
    let r = raw
        .request(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(CHANNEL))?;
            w.add(&XorPeerAddress(peer))
        })
        .await;
    assert!(r.success, "channel bind: {r:?}");
    raw
}

async fn recv_within(socket: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65536];
    let (n, from) = tokio::time::timeout(wait, socket.recv_from(&mut buf)).await.ok()?.expect("recv_from");
    buf.truncate(n);
    Some((buf, from))
}

fn channel_data(data: &[u8]) -> Vec<u8> {
    let cd = ChannelData { channel: CHANNEL, data };
    let mut buf = vec![0u8; cd.wire_len(false)];
    cd.encode(false, &mut buf).unwrap();
    buf
}

#[tokio::test]
async fn malformed_datagrams_are_dropped_counted_and_the_server_still_answers() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let raw = allocated(&fixture, peer_addr).await;
        let cases = malformed(peer_addr);
        let before = fixture.stats();
        for case in &cases {
            raw.socket.send_to(&case.bytes, fixture.udp).await.unwrap();
        }
        let want = expected_drops(&cases);
        let moved = |now: &StatsSnapshot| {
            let (a, b) = (drops(now), drops(&before));
            [a[0] - b[0], a[1] - b[1], a[2] - b[2], a[3] - b[3]]
        };
        eventually("every malformed datagram counted", || moved(&fixture.stats()) == drops(&want)).await;
        // Nothing partial reached the peer, nothing came back to the client.
        assert_eq!(recv_within(&peer, SILENCE).await, None, "a malformed datagram reached the peer");
        assert_eq!(recv_within(&raw.socket, SILENCE).await, None, "a malformed datagram was answered");
        assert_eq!(fixture.stats().relayed_to_peer, before.relayed_to_peer);

        // Still answering: Binding, and data through both modes.
        let mapped = switchback::client::binding_udp(&raw.socket, fixture.udp, RECV_TIMEOUT).await.unwrap();
        assert_eq!(mapped, raw.socket.local_addr().unwrap());
        for datagram in [crate::support::send_indication(peer_addr, b"still"), channel_data(b"alive")] {
            raw.socket.send_to(&datagram, fixture.udp).await.unwrap();
            let (got, _) = recv_within(&peer, RECV_TIMEOUT).await.expect("relayed after the malformed ones");
            assert!(got == b"still" || got == b"alive", "{got:?}");
        }
        assert_eq!(moved(&fixture.stats()), drops(&want), "no further drops");
    })
    .await;
}

#[tokio::test]
async fn malformed_attribute_values_in_a_signed_request_get_400() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), fixture.udp, TURN_USER.0, TURN_USER.1).await;
        // REQUESTED-TRANSPORT of 2 bytes instead of 4, then a LIFETIME of 3 bytes.
        let r = raw.request(Method::ALLOCATE, &|w| w.add_raw(types::REQUESTED_TRANSPORT, &[17, 0])).await;
        assert_eq!((r.success, r.code), (false, codes::BAD_REQUEST), "{r:?}");
        let r = raw
            .request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add_raw(types::LIFETIME, &[0, 0, 1])
            })
            .await;
        assert_eq!((r.success, r.code), (false, codes::BAD_REQUEST), "{r:?}");
        let r = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
        assert!(r.success, "{r:?}");
        // XOR-PEER-ADDRESS of an unknown family, then cut to 4 bytes.
        let r = raw.request(Method::CREATE_PERMISSION, &|w| w.add_raw(types::XOR_PEER_ADDRESS, &[0, 9, 0, 0])).await;
        assert_eq!((r.success, r.code), (false, codes::BAD_REQUEST), "{r:?}");
        assert_eq!(fixture.server.allocations().len(), 1);
        assert!(fixture.stats().errors_sent >= 3);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------
// Over TCP.

/// Reads until the server closes the connection; fails if it answers or stays open. (A TLS
/// stream closed without close_notify reads as an unexpected end of file.)
async fn assert_closed_by_server<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(RECV_TIMEOUT, stream.read(&mut buf)).await {
        Ok(Ok(0)) => {}
        Ok(Err(e)) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof) => {}
        other => panic!("expected the server to close the connection, got {other:?}"),
    }
}

/// Inputs that end a stream: the well-framed malformed STUN messages of [`malformed`] (first, as
/// many as the first number says) and bytes that cannot be framed at all.
fn fatal_on_a_stream() -> (usize, Vec<Vec<u8>>) {
    let peer = "127.0.0.1:9".parse().unwrap();
    let framed: Vec<Vec<u8>> = malformed(peer)
        .into_iter()
        .filter(|c| matches!(c.outcome, Outcome::Dropped(DropReason::Malformed(DecodeError::AttributeOverflow))))
        .map(|c| c.bytes)
        .collect();
    let unframeable = [
        [header(BINDING_REQUEST, 2, 1), vec![0, 0]].concat(),
        // The largest length a header can announce, beyond the largest frame (0xFFFC): closed at
        // once, not after 64 KiB.
        header(BINDING_REQUEST, 0xFFFF, 2),
        vec![0xFF; 4],
    ];
    (framed.len(), framed.into_iter().chain(unframeable).collect())
}

async fn start_tcp(limits: Limits) -> (io::Running, Arc<io::TurnServer>, SocketAddr) {
    let config = Config { listening_port: 0, ..Config::default() };
    let server = UdpRelay::server(config.server_options(), None);
    let running = io::bind_with_limits(&config, server.clone(), limits).await.unwrap();
    let tcp = running.local_addr(Transport::Tcp).unwrap();
    (running, server, tcp)
}

#[tokio::test]
async fn malformed_tcp_frames_close_the_connection_and_the_listener_goes_on() {
    bounded(async {
        let (running, server, tcp) = start_tcp(Limits::default()).await;
        let (framed, inputs) = fatal_on_a_stream();
        assert_eq!(framed, 2);
        for (i, bytes) in inputs.iter().enumerate() {
            let mut stream = TcpStream::connect(tcp).await.unwrap();
            stream.write_all(bytes).await.unwrap();
            assert_closed_by_server(&mut stream).await;
            eventually("the close counted", || running.io_stats().tcp_closed_invalid == i as u64 + 1).await;
        }
        assert_eq!(server.stats().snapshot().dropped_malformed, framed as u64);
        let mut stream = TcpStream::connect(tcp).await.unwrap();
        switchback::client::binding_stream(&mut stream, RECV_TIMEOUT).await.expect("still answering over TCP");
        running.shutdown().await;
    })
    .await;
}

/// A client on its own connection (TCP or TLS, after the handshake) sends a frame that ends its
/// stream: it is disconnected and counted, while a [`switchback::client::turn::TurnClient`] holding an
/// allocation over the same transport keeps relaying and new clients are served.
async fn a_malformed_frame_disconnects_only_its_sender(transport: Transport) {
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let fixture = TurnFixture::start_for(transport, options).await;
    let server = fixture.addr(transport);
    let (peer, echo) = udp_echo_peer().await;
    let live = fixture.allocate(transport, Credentials::new(TURN_USER.0, TURN_USER.1)).await.expect("allocate");
    live.create_permission(peer).await.expect("create_permission");
    let (framed, inputs) = fatal_on_a_stream();
    let before = (fixture.running.io_stats(), fixture.stats());
    for (i, bytes) in inputs.iter().enumerate() {
        let mut stream: Box<dyn Io> = match transport {
            Transport::Tls => Box::new(fixture.tls_client().connect(server, RECV_TIMEOUT).await.expect("handshake")),
            _ => Box::new(TcpStream::connect(server).await.unwrap()),
        };
        stream.write_all(bytes).await.unwrap();
        stream.flush().await.unwrap();
        assert_closed_by_server(&mut stream).await;
        let closed = before.0.tcp_closed_invalid + i as u64 + 1;
        eventually("the close counted", || fixture.running.io_stats().tcp_closed_invalid == closed).await;
    }
    assert_eq!(fixture.stats().dropped_malformed - before.1.dropped_malformed, framed as u64);
    assert_eq!(fixture.server.allocations().len(), 1, "the live allocation stays");

    // The live client still relays; a new one allocates.
    for i in 0..10 {
        let ping = format!("ping {i}");
        live.send_to(ping.as_bytes(), peer).await.expect("send_to");
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(RECV_TIMEOUT, live.recv_from(&mut buf)).await.expect("echo").unwrap();
        assert_eq!((&buf[..n], from), (ping.as_bytes(), peer));
    }
    let (username, password) = fixture.rest_credentials("bob");
    fixture.allocate(transport, Credentials::new(username, password)).await.expect("a new allocation");
    assert_eq!(fixture.stats().relayed_to_peer - before.1.relayed_to_peer, 10);
    echo.abort();
}

/// A TCP or TLS stream, boxed.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

#[tokio::test]
async fn a_malformed_tcp_frame_disconnects_only_its_sender() {
    bounded(a_malformed_frame_disconnects_only_its_sender(Transport::Tcp)).await;
}

#[tokio::test]
async fn a_malformed_tls_frame_disconnects_only_its_sender() {
    bounded(a_malformed_frame_disconnects_only_its_sender(Transport::Tls)).await;
}

#[tokio::test]
async fn the_largest_tcp_frame_is_answered_and_the_stream_goes_on() {
    bounded(async {
        let (running, _server, tcp) = start_tcp(Limits::default()).await;
        // A Binding request of the largest length: one comprehension-optional attribute filling it.
        let big = message(BINDING_REQUEST, 1, &attr(0x8888, 0xFFF8, &vec![0xAB; 0xFFF8]));
        assert_eq!(big.len(), 20 + 0xFFFC);
        let mut stream = TcpStream::connect(tcp).await.unwrap();
        stream.write_all(&big).await.unwrap();
        let mut answer = [0u8; 20];
        tokio::time::timeout(RECV_TIMEOUT, stream.read_exact(&mut answer)).await.unwrap().unwrap();
        assert_eq!(&answer[..2], &[0x01, 0x01], "a Binding success");
        let len = usize::from(u16::from_be_bytes([answer[2], answer[3]]));
        let mut rest = vec![0u8; len];
        stream.read_exact(&mut rest).await.unwrap();
        assert_eq!(&answer[8..20], &[1; 12], "the request's transaction ID");
        switchback::client::binding_stream(&mut stream, RECV_TIMEOUT).await.expect("the same stream goes on");
        assert_eq!(running.io_stats().tcp_closed_invalid, 0);
        running.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_tcp_client_that_stalls_in_a_header_is_freed_by_the_idle_timeout() {
    bounded(async {
        let limits = Limits { tcp_idle_timeout: Duration::from_millis(300), ..Limits::default() };
        let (running, _server, tcp) = start_tcp(limits).await;
        let mut stalled = TcpStream::connect(tcp).await.unwrap();
        stalled.write_all(&header(BINDING_REQUEST, 8, 1)[..10]).await.unwrap();
        // An active client meanwhile is not disturbed.
        let mut active = TcpStream::connect(tcp).await.unwrap();
        switchback::client::binding_stream(&mut active, RECV_TIMEOUT).await.unwrap();
        let started = Instant::now();
        assert_closed_by_server(&mut stalled).await;
        assert!(started.elapsed() < Duration::from_secs(3), "closed by the idle timeout, not later");
        eventually("the idle close counted", || running.io_stats().tcp_closed_idle >= 1).await;
        assert_eq!(running.io_stats().tcp_closed_invalid, 0);
        let mut fresh = TcpStream::connect(tcp).await.unwrap();
        switchback::client::binding_stream(&mut fresh, RECV_TIMEOUT).await.expect("still answering");
        running.shutdown().await;
    })
    .await;
}

/// A TCP connection that makes no allocation within `tcp_auth_timeout` is closed even while it
/// keeps the idle timer alive with Bindings (a cheap pre-authentication slot otherwise); one that
/// allocated stays and goes on working past the deadline.
#[tokio::test]
async fn a_tcp_client_without_an_allocation_is_closed_at_the_authentication_deadline() {
    bounded(async {
        let deadline = Duration::from_millis(500);
        let limits = Limits { tcp_auth_timeout: deadline, ..Limits::default() };
        let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
        let fixture = TurnFixture::start_with(options, None, limits).await;
        let tcp = fixture.addr(Transport::Tcp);
        let live =
            fixture.allocate(Transport::Tcp, Credentials::new(TURN_USER.0, TURN_USER.1)).await.expect("allocate");
        let mut binding_only = TcpStream::connect(tcp).await.unwrap();
        let started = Instant::now();
        // Busy, never idle: a Binding every 100 ms until the server closes the connection.
        let closed = loop {
            if started.elapsed() > Duration::from_secs(5) {
                break false;
            }
            if switchback::client::binding_stream(&mut binding_only, RECV_TIMEOUT).await.is_err() {
                break true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(closed, "a connection without an allocation outlived the deadline");
        assert!(started.elapsed() >= deadline, "closed before the deadline");
        eventually("the close counted", || fixture.running.io_stats().tcp_closed_unauthenticated == 1).await;
        // The allocated connection outlives the deadline and still works.
        let (peer, _echo) = udp_echo_peer().await;
        live.create_permission(peer).await.expect("the authenticated connection is still served");
        assert_eq!(fixture.running.io_stats().tcp_closed_unauthenticated, 1);
        fixture.running.shutdown().await;
    })
    .await;
}

/// The per-source cap counts connections that have not authenticated: behind one NAT address,
/// TCP clients with allocations do not use it up (they count against their user's quota), while
/// unauthenticated connections beyond it are closed at once.
#[tokio::test]
async fn authenticated_tcp_connections_leave_the_per_source_cap() {
    bounded(async {
        let limits = Limits { max_tcp_connections_per_source: 2, ..Limits::default() };
        let fixture = TurnFixture::start_with(ServerOptions::default(), None, limits).await;
        let tcp = fixture.addr(Transport::Tcp);
        let mut allocated = Vec::new();
        for _ in 0..4 {
            let client = fixture.allocate(Transport::Tcp, Credentials::new(TURN_USER.0, TURN_USER.1)).await;
            allocated.push(client.expect("an office's users each allocate over TCP from one address"));
        }
        // Two unauthenticated connections fill the cap; the third is closed at once.
        let mut first = TcpStream::connect(tcp).await.unwrap();
        switchback::client::binding_stream(&mut first, RECV_TIMEOUT).await.expect("served");
        let mut second = TcpStream::connect(tcp).await.unwrap();
        switchback::client::binding_stream(&mut second, RECV_TIMEOUT).await.expect("served");
        let mut third = TcpStream::connect(tcp).await.unwrap();
        assert_closed_by_server(&mut third).await;
        assert_eq!(fixture.running.io_stats().tcp_rejected, 1);
        drop(allocated);
        fixture.running.shutdown().await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------
// No bytes of an earlier datagram.

/// Checks a Data indication to the client: exactly `data` from `peer`, padding zero, nothing after.
fn check_data_indication(datagram: &[u8], peer: SocketAddr, data: &[u8]) {
    let m = Message::parse(datagram).expect("a Data indication");
    assert_eq!(m.message_type(), MessageType::new(Method::DATA, Class::Indication));
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer);
    assert_eq!(m.get::<Data>().unwrap().0, data);
    let padded = (data.len() + 3) & !3;
    assert_eq!(datagram.len(), 20 + 12 + 4 + padded, "header, XOR-PEER-ADDRESS, DATA: nothing more");
    assert!(datagram[datagram.len() - (padded - data.len())..].iter().all(|&b| b == 0), "DATA padding is zero");
}

#[tokio::test]
async fn a_small_datagram_after_a_large_one_carries_only_its_own_bytes() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let raw = allocated(&fixture, peer_addr).await;
        let large: Vec<u8> = (0..4001u32).map(|i| 0x80 | (i % 101) as u8).collect();
        let sizes: [&[u8]; 4] = [&large, b"small", b"x", b"0123456"];
        // Large, then small, each way and in each mode, through the one allocation (whose relay task
        // reads every peer datagram into the same buffer). Send indications out; the peer's echo
        // comes back as ChannelData, the channel being bound to it.
        for data in sizes {
            raw.socket.send_to(&crate::support::send_indication(peer_addr, data), fixture.udp).await.unwrap();
            let (got, relay) = recv_within(&peer, RECV_TIMEOUT).await.expect("the peer gets the data");
            assert_eq!(got, data, "client → peer carries exactly the data");
            peer.send_to(data, relay).await.unwrap();
            let (back, _) = recv_within(&raw.socket, RECV_TIMEOUT).await.expect("the client gets the echo");
            // The channel is bound to this peer: the relay uses ChannelData for it.
            assert_eq!(back.len(), 4 + data.len(), "exactly one ChannelData, no padding over UDP");
            assert_eq!(ChannelData::parse(&back).unwrap(), ChannelData { channel: CHANNEL, data });
        }
        // ChannelData out.
        for data in sizes {
            raw.socket.send_to(&channel_data(data), fixture.udp).await.unwrap();
            let (got, _) = recv_within(&peer, RECV_TIMEOUT).await.expect("the peer gets the data");
            assert_eq!(got, data, "client → peer carries exactly the data");
        }
        // Another port of the same peer IP has a permission but no channel: Data indications.
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let other_addr = other.local_addr().unwrap();
        let relayed = fixture.server.allocations().all()[0].info().relay_addr;
        for data in sizes {
            other.send_to(data, relayed).await.unwrap();
            let (back, _) = recv_within(&raw.socket, RECV_TIMEOUT).await.expect("the client gets the data");
            check_data_indication(&back, other_addr, data);
        }
        assert_eq!(fixture.stats().dropped(), 0, "{:?}", fixture.stats());
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------
// Sans-IO: the exact outcome of each malformed input.

const REALM: &str = "robust.test";

struct SansIo {
    server: Server<FakeRelay>,
    driver: FakeRelay,
    now: Instant,
    client: SocketAddr,
    local: SocketAddr,
    nonce: String,
    tid: u8,
}

impl SansIo {
    fn new() -> Self {
        let mut auth = AuthConfig::new(REALM);
        auth.users.insert(TURN_USER.0.into(), StaticCredential::Password(TURN_USER.1.into()));
        let driver = FakeRelay::recording();
        let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
        let now = Instant::now();
        let server =
            Server::with_relay(options, Some(Authenticator::new(auth, [9; 32])), driver.clone(), now, 1_800_000_000);
        let client = "127.0.0.1:40000".parse().unwrap();
        let local = "127.0.0.1:3478".parse().unwrap();
        SansIo { server, driver, now, client, local, nonce: String::new(), tid: 0x40 }
    }

    fn handle(&self, transport: Transport, data: &[u8]) -> (Outcome, Vec<u8>) {
        let rx = Received { transport, source: self.client, local: self.local, data };
        let mut out = vec![0u8; 1500];
        let outcome = self.server.handle(self.now, &rx, &mut out);
        let n = if let Outcome::Reply(n) = outcome { n } else { 0 };
        out.truncate(n);
        (outcome, out)
    }

    /// A request signed as the static user (after a 401 round trip for the nonce); the answer.
    fn request(&mut self, method: Method, body: impl Fn(&mut MessageWriter<'_>)) -> Vec<u8> {
        for _ in 0..2 {
            self.tid += 1;
            let mut buf = vec![0u8; 512];
            let mut w =
                MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), TransactionId([self.tid; 12]))
                    .unwrap();
            body(&mut w);
            if !self.nonce.is_empty() {
                w.add(&Username(TURN_USER.0)).unwrap();
                w.add(&Realm(REALM)).unwrap();
                w.add(&Nonce(&self.nonce)).unwrap();
                w.add_message_integrity(&IntegrityKey::new(&long_term_key_md5(TURN_USER.0, REALM, TURN_USER.1)))
                    .unwrap();
            }
            let n = w.finish();
            let (_, answer) = self.handle(Transport::Udp, &buf[..n]);
            let m = Message::parse(&answer).expect("an answer");
            match m.get::<ErrorCode>().map(|e| e.code) {
                Ok(codes::UNAUTHENTICATED | codes::STALE_NONCE) if self.nonce.is_empty() => {
                    self.nonce = m.get::<Nonce>().unwrap().0.to_string();
                }
                _ => return answer,
            }
        }
        panic!("no nonce");
    }
}

#[test]
fn sans_io_each_malformed_input_gets_its_exact_outcome() {
    let mut s = SansIo::new();
    let peer: SocketAddr = "127.0.0.1:9000".parse().unwrap();
    let class = |answer: &[u8]| Message::parse(answer).unwrap().message_type().class;
    let code = |answer: &[u8]| Message::parse(answer).unwrap().get::<ErrorCode>().map(|e| e.code).ok();
    let answer = s.request(Method::ALLOCATE, |w| w.add(&RequestedTransport::UDP).unwrap());
    assert_eq!(class(&answer), Class::SuccessResponse);
    let answer = s.request(Method::CHANNEL_BIND, |w| {
        w.add(&ChannelNumber(CHANNEL)).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(class(&answer), Class::SuccessResponse);

    let cases = malformed(peer);
    for case in &cases {
        let before = s.server.stats().snapshot();
        assert_eq!(s.handle(Transport::Udp, &case.bytes).0, case.outcome, "{}", case.name);
        let after = s.server.stats().snapshot();
        assert_eq!(after.dropped(), before.dropped() + 1, "{}: counted once", case.name);
    }
    assert_eq!(drops(&s.server.stats().snapshot()), drops(&expected_drops(&cases)), "each under its own counter");
    assert!(s.driver.sent().is_empty(), "nothing reached the peer");

    // On a stream a malformed STUN frame is fatal (the stream lost its framing); bad data is not.
    for case in &cases {
        if let Outcome::Dropped(reason) = case.outcome {
            let fatal = matches!(reason, DropReason::Malformed(_) | DropReason::NotStunOrChannelData);
            assert_eq!(reason.is_fatal_on_stream(), fatal, "{}", case.name);
        }
    }

    // Well-framed requests with malformed attribute values are answered 400, signed.
    for value in [&[0u8, 9, 0, 0][..], &[0, 1, 0], &[0, 1, 0, 9, 1, 2, 3]] {
        let answer = s.request(Method::CREATE_PERMISSION, |w| w.add_raw(types::XOR_PEER_ADDRESS, value).unwrap());
        assert_eq!(code(&answer), Some(codes::BAD_REQUEST), "XOR-PEER-ADDRESS {value:?}");
        assert!(Message::parse(&answer).unwrap().has_integrity());
    }
    let answer = s.request(Method::CHANNEL_BIND, |w| {
        w.add_raw(types::CHANNEL_NUMBER, &[0x40, 0x02]).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(code(&answer), Some(codes::BAD_REQUEST));
    let answer = s.request(Method::REFRESH, |w| w.add_raw(types::LIFETIME, &[0, 0, 1]).unwrap());
    assert_eq!(code(&answer), Some(codes::BAD_REQUEST));

    // The allocation still works.
    assert_eq!(s.handle(Transport::Udp, &channel_data(b"ok")).0, Outcome::Relayed);
    assert_eq!(s.driver.sent().as_slice(), &[(peer, b"ok".to_vec())]);
}
