//! TURN end to end, in process: our [`TurnClient`] against `io::bind` + the sans-IO server, with
//! UDP echo peers on 127.0.0.1. Allocation with REST and static credentials, data through Send
//! indications and channels without loss, client to client through two relayed addresses, and the
//! refusals: wrong password (401), no permission (dropped and counted), deleted allocation (437),
//! loopback peers when they are not allowed (403), RFC 8656-only channel numbers.
//!
//! The scenarios take the client's transport and run over UDP, TCP and TLS (modules `udp`, `tcp`,
//! `tls`, made by [`over_every_transport!`]); a few are about one transport only.
#![cfg(feature = "runtime")]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{RECV_TIMEOUT, RawTurn, TURN_USER, TurnFixture, bounded, eventually, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, LostReason, TurnClient};
use switchback::proto::stun::{Lifetime, Method, codes};
use switchback::server::{ServerOptions, Transport};
use tokio::net::UdpSocket;

/// How long to wait before concluding that a datagram will not come.
const SILENCE: Duration = Duration::from_millis(300);
/// Messages per data-path test.
const MESSAGES: usize = 100;

fn rest(fixture: &TurnFixture, user: &str) -> Credentials {
    let (username, password) = fixture.rest_credentials(user);
    Credentials::new(username, password)
}

fn static_user() -> Credentials {
    Credentials::new(TURN_USER.0, TURN_USER.1)
}

/// A server relaying to loopback peers, listening on `transport` (among others).
async fn loopback(transport: Transport) -> TurnFixture {
    TurnFixture::start_for(transport, ServerOptions::default().with(|o| o.allow_loopback_peers = true)).await
}

/// For each transport a module of `#[tokio::test]`s, one per scenario `async fn(Transport)`, each
/// bounded by [`TEST_TIMEOUT`].
macro_rules! over_every_transport {
    ($($scenario:ident),* $(,)?) => {
        over_every_transport!(@module udp Udp $($scenario)*);
        over_every_transport!(@module tcp Tcp $($scenario)*);
        over_every_transport!(@module tls Tls $($scenario)*);
    };
    (@module $module:ident $transport:ident $($scenario:ident)*) => {
        mod $module {
            $(
                #[tokio::test]
                async fn $scenario() {
                    super::bounded(super::$scenario(super::Transport::$transport)).await;
                }
            )*
        }
    };
}

over_every_transport!(
    allocate_with_rest_credentials,
    allocate_with_static_user,
    send_indications_echo_without_loss,
    channel_echo_without_loss,
    two_clients_relay_to_each_other,
    wrong_password_is_401,
    peer_without_permission_never_arrives,
    refresh_after_deleting_refresh_is_437,
    close_deletes_the_allocation,
    loopback_peers_are_refused_by_default,
    relay_port_is_released_after_close,
);

/// The next datagram relayed to `client`, or `None` after `wait`.
async fn recv(client: &TurnClient, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(wait, client.recv_from(&mut buf)).await.ok()?.expect("recv_from");
    buf.truncate(n);
    Some((buf, from))
}

fn message(i: usize) -> Vec<u8> {
    format!("message {i:03} {}", "x".repeat(i % 37)).into_bytes()
}

/// Sends [`MESSAGES`] numbered messages to `peer` (an echo peer) and checks that every one comes
/// back, from `peer`, with its bytes intact.
async fn echo_round(client: &TurnClient, peer: SocketAddr) {
    for i in 0..MESSAGES {
        client.send_to(&message(i), peer).await.expect("send_to");
    }
    let mut seen = BTreeSet::new();
    while seen.len() < MESSAGES {
        let Some((data, from)) = recv(client, RECV_TIMEOUT).await else {
            let missing: Vec<usize> = (0..MESSAGES).filter(|i| !seen.contains(i)).collect();
            panic!("lost {} of {MESSAGES} messages: {missing:?}", missing.len());
        };
        assert_eq!(from, peer, "data relayed from the wrong peer");
        let text = String::from_utf8(data.clone()).expect("utf-8 echo");
        let i: usize = text[8..11].parse().expect("numbered echo");
        assert_eq!(data, message(i), "message {i} corrupted");
        assert!(seen.insert(i), "message {i} delivered twice");
    }
}

async fn allocate_with_rest_credentials(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, rest(&fixture, "bob")).await.expect("allocate");
    let relayed = client.relayed_addr();
    assert_eq!(relayed.ip(), fixture.udp.ip(), "relayed on the listener's IP");
    assert_ne!(relayed.port(), 0);
    assert_eq!(client.mapped_addr().port(), client.local_addr().unwrap().port());
    assert_eq!(client.lifetime(), 600);
    assert_eq!(fixture.server.allocations().len(), 1);
    assert_eq!(fixture.stats().allocations_created, 1);
    // The relay socket is really bound: a second bind of the same port fails.
    assert!(std::net::UdpSocket::bind(relayed).is_err(), "relay port {relayed} is not bound");
}

async fn allocate_with_static_user(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    assert_eq!(client.relayed_addr().ip(), fixture.udp.ip());
    assert_eq!(fixture.server.allocations().len(), 1);
    assert_eq!(client.refresh(1200).await.expect("refresh"), 1200);
}

async fn send_indications_echo_without_loss(transport: Transport) {
    let fixture = loopback(transport).await;
    let (peer, echo) = udp_echo_peer().await;
    let client = fixture.allocate(transport, rest(&fixture, "bob")).await.expect("allocate");
    client.create_permission(peer).await.expect("create_permission");
    echo_round(&client, peer).await;
    let stats = fixture.stats();
    assert!(stats.relayed_to_peer >= MESSAGES as u64, "{stats:?}");
    assert!(stats.relayed_to_client >= MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    echo.abort();
}

async fn channel_echo_without_loss(transport: Transport) {
    let fixture = loopback(transport).await;
    let (peer, echo) = udp_echo_peer().await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    let channel = client.bind_channel(peer).await.expect("bind_channel");
    assert!((0x4000..=0x4FFF).contains(&channel), "channel {channel:#x}");
    echo_round(&client, peer).await;
    let stats = fixture.stats();
    assert!(stats.relayed_to_peer >= MESSAGES as u64, "{stats:?}");
    assert!(stats.relayed_to_client >= MESSAGES as u64, "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");
    echo.abort();
}

#[tokio::test]
async fn strict_rfc8656_server_works_with_our_client() {
    bounded(async {
        let fixture = TurnFixture::start(ServerOptions::default().with(|o| {
            o.allow_loopback_peers = true;
            o.strict_rfc8656 = true;
        }))
        .await;
        let (peer, echo) = udp_echo_peer().await;
        let client = TurnClient::allocate(fixture.udp, static_user()).await.expect("allocate");
        client.bind_channel(peer).await.expect("bind_channel on a strict server");
        echo_round(&client, peer).await;
        echo.abort();
    })
    .await;
}

/// Client `a` over `transport`, client `b` over UDP; `a` talks over a channel, `b` with Send
/// indications.
async fn two_clients_relay_to_each_other(transport: Transport) {
    let fixture = loopback(transport).await;
    let a = fixture.allocate(transport, rest(&fixture, "a")).await.expect("allocate a");
    let b = TurnClient::allocate(fixture.udp, static_user()).await.expect("allocate b");
    assert_ne!(a.relayed_addr(), b.relayed_addr());
    assert_eq!(fixture.server.allocations().len(), 2);
    a.bind_channel(b.relayed_addr()).await.expect("a binds a channel to b");
    b.create_permission(a.relayed_addr()).await.expect("b permits a");
    for i in 0..20 {
        let ping = format!("ping {i}");
        a.send_to(ping.as_bytes(), b.relayed_addr()).await.unwrap();
        let (data, from) = recv(&b, RECV_TIMEOUT).await.unwrap_or_else(|| panic!("b got no {ping}"));
        assert_eq!((data.as_slice(), from), (ping.as_bytes(), a.relayed_addr()));
        let pong = format!("pong {i}");
        b.send_to(pong.as_bytes(), a.relayed_addr()).await.unwrap();
        let (data, from) = recv(&a, RECV_TIMEOUT).await.unwrap_or_else(|| panic!("a got no {pong}"));
        assert_eq!((data.as_slice(), from), (pong.as_bytes(), b.relayed_addr()));
    }
}

async fn wrong_password_is_401(transport: Transport) {
    let fixture = loopback(transport).await;
    let err = fixture
        .allocate(transport, Credentials::new(TURN_USER.0, "not-the-password"))
        .await
        .expect_err("a wrong static password must fail");
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");
    let (username, _) = fixture.rest_credentials("bob");
    let err = fixture
        .allocate(transport, Credentials::new(username, "bm90IHRoZSBobWFj"))
        .await
        .expect_err("a wrong REST password must fail");
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");
    let (username, password) = fixture.rest.mint("bob", 60, 0).unwrap();
    let err = fixture
        .allocate(transport, Credentials::new(username, password))
        .await
        .expect_err("an expired REST username must fail");
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");
    assert_eq!(fixture.server.allocations().len(), 0);
    // Three challenges (each login's first 401) and three failures: two wrong passwords, one
    // expired username.
    let s = fixture.stats();
    assert_eq!((s.auth_challenges, s.auth_failures), (3, 3), "{s:?}");
    let reason = |r: &str| {
        let i = switchback::server::AUTH_FAILURE_REASONS.iter().position(|x| *x == r).unwrap();
        s.auth_failures_by_reason[i]
    };
    assert_eq!((reason("bad_integrity"), reason("expired")), (2, 1), "{s:?}");
}

async fn peer_without_permission_never_arrives(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    for i in 0..5 {
        peer.send_to(format!("unpermitted {i}").as_bytes(), client.relayed_addr()).await.unwrap();
    }
    eventually("5 peer datagrams dropped for want of a permission", || fixture.stats().peer_no_permission >= 5).await;
    assert_eq!(recv(&client, SILENCE).await, None, "data from a peer without permission arrived");
    assert_eq!(fixture.stats().relayed_to_client, 0);

    // The same peer once permitted gets through: the path itself works.
    client.create_permission(peer_addr).await.expect("create_permission");
    peer.send_to(b"permitted", client.relayed_addr()).await.unwrap();
    let (data, from) = recv(&client, RECV_TIMEOUT).await.expect("data after the permission");
    assert_eq!((data.as_slice(), from), (&b"permitted"[..], peer_addr));
    assert_eq!(fixture.stats().peer_no_permission, 5);
}

async fn refresh_after_deleting_refresh_is_437(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    assert_eq!(client.refresh(0).await.expect("deleting refresh"), 0);
    assert_eq!(fixture.server.allocations().len(), 0);
    let err = client.refresh(600).await.expect_err("refresh of a deleted allocation");
    assert!(matches!(err, ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. }), "{err:?}");
    // RFC 8656 §8.3: close() takes the 437 as "already gone".
    client.close().await.expect("close after delete");
}

async fn close_deletes_the_allocation(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    assert_eq!(fixture.server.allocations().len(), 1);
    client.close().await.expect("close");
    assert_eq!(fixture.server.allocations().len(), 0);
    assert_eq!(fixture.stats().allocations_deleted, 1);
}

/// Over UDP the 5-tuple outlives the client: a Refresh from it (the client's port, reused once its
/// socket is closed) finds no allocation: 437.
#[tokio::test]
async fn udp_refresh_from_a_closed_clients_five_tuple_is_437() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let client = TurnClient::allocate(fixture.udp, static_user()).await.expect("allocate");
        let local = SocketAddr::new(fixture.udp.ip(), client.local_addr().unwrap().port());
        client.close().await.expect("close");
        let mut raw = None;
        for _ in 0..200 {
            if let Ok(s) = std::net::UdpSocket::bind(local) {
                drop(s);
                raw = Some(RawTurn::new(local, fixture.udp, TURN_USER.0, TURN_USER.1).await);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut raw = raw.expect("the client's port was not released");
        let answer = raw.request(Method::REFRESH, &|w| w.add(&Lifetime(600))).await;
        assert!(!answer.success);
        assert_eq!(answer.code, codes::ALLOCATION_MISMATCH);
    })
    .await;
}

/// RFC 8656 §3.1: over TCP and TLS the allocation lives as long as its connection. Dropping the
/// client (no Refresh 0) closes the connection, and the server deletes the allocation and frees
/// its relay port.
async fn dropping_a_stream_client_deletes_its_allocation(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    let relayed = client.relayed_addr();
    assert_eq!(fixture.server.allocations().len(), 1);
    drop(client);
    eventually("the allocation to end with its connection", || fixture.server.allocations().is_empty()).await;
    assert_eq!(fixture.stats().allocations_deleted, 1);
    eventually("the relay port to be released", || std::net::UdpSocket::bind(relayed).is_ok()).await;
}

#[tokio::test]
async fn tcp_dropping_the_client_deletes_its_allocation() {
    bounded(dropping_a_stream_client_deletes_its_allocation(Transport::Tcp)).await;
}

#[tokio::test]
async fn tls_dropping_the_client_deletes_its_allocation() {
    bounded(dropping_a_stream_client_deletes_its_allocation(Transport::Tls)).await;
}

/// The server closing the stream ends the client: waiting and later requests and `recv_from` fail
/// (`Closed`, `AllocationLost`) instead of waiting for their timeout.
#[tokio::test]
async fn tcp_a_stream_closed_by_the_server_fails_fast() {
    bounded(async {
        let fixture = loopback(Transport::Tcp).await;
        let client = fixture.allocate(Transport::Tcp, static_user()).await.expect("allocate");
        fixture.running.shutdown().await;
        let mut buf = [0u8; 64];
        let got = tokio::time::timeout(RECV_TIMEOUT, client.recv_from(&mut buf)).await.expect("recv_from returns");
        assert!(matches!(got, Err(ClientError::AllocationLost { reason: LostReason::ConnectionClosed })), "{got:?}");
        let err = client.refresh(600).await.expect_err("a refresh over a closed stream");
        assert!(
            matches!(err, ClientError::Closed | ClientError::Io(_) | ClientError::AllocationLost { .. }),
            "{err:?}"
        );
    })
    .await;
}

async fn loopback_peers_are_refused_by_default(transport: Transport) {
    let fixture = TurnFixture::start_for(transport, ServerOptions::default()).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = client.create_permission(peer).await.expect_err("permission to loopback");
    assert!(matches!(err, ClientError::ErrorResponse { code: codes::FORBIDDEN, .. }), "{err:?}");
    let err = client.bind_channel(peer).await.expect_err("channel to loopback");
    assert!(matches!(err, ClientError::ErrorResponse { code: codes::FORBIDDEN, .. }), "{err:?}");
    assert_eq!(fixture.stats().peer_denied, 2);
    // A Send indication to it is dropped, not relayed.
    client.send_to(b"to loopback", peer).await.unwrap();
    eventually("the Send indication to be dropped", || fixture.stats().dropped() >= 1).await;
    assert_eq!(fixture.stats().relayed_to_peer, 0);
}

/// RFC 8656 §7: deleting an allocation releases its relayed transport address. A peer must not keep
/// filling the socket buffer of a dead allocation, and the port must be free for a new one.
async fn relay_port_is_released_after_close(transport: Transport) {
    let fixture = loopback(transport).await;
    let client = fixture.allocate(transport, static_user()).await.expect("allocate");
    let relayed = client.relayed_addr();
    client.close().await.expect("close");
    assert_eq!(fixture.server.allocations().len(), 0);
    eventually("the relay port of the deleted allocation to be released", || {
        std::net::UdpSocket::bind(relayed).is_ok()
    })
    .await;
}

/// Bursts from a peer (runs of equal-sized datagrams, the size changing every 7) reach a UDP client
/// one datagram each, intact and in order: the relay socket reads them in `recvmmsg` batches and
/// sends equal-sized answers with one GSO `sendmsg`, which must split them again.
async fn peer_bursts_arrive_one_by_one(channel: bool) {
    const BURST: usize = 300;
    let fixture = loopback(Transport::Udp).await;
    let client = fixture.allocate(Transport::Udp, static_user()).await.expect("allocate");
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    if channel {
        client.bind_channel(peer_addr).await.expect("bind_channel");
    } else {
        client.create_permission(peer_addr).await.expect("create_permission");
    }
    let datagram = |i: usize| format!("burst {i:04} {}", "y".repeat((i / 7) % 5 * 301)).into_bytes();
    // Bursts of 30: well within the client's receive buffer.
    for burst in (0..BURST).collect::<Vec<_>>().chunks(30) {
        for &i in burst {
            peer.send_to(&datagram(i), client.relayed_addr()).await.unwrap();
        }
        for &i in burst {
            let (data, from) = recv(&client, RECV_TIMEOUT).await.unwrap_or_else(|| panic!("datagram {i} lost"));
            assert_eq!(from, peer_addr);
            assert_eq!(data, datagram(i), "datagram {i} not as sent");
        }
    }
    assert_eq!(fixture.stats().relayed_to_client, BURST as u64);
}

#[tokio::test]
async fn udp_peer_bursts_arrive_one_by_one_over_a_channel() {
    bounded(peer_bursts_arrive_one_by_one(true)).await;
}

#[tokio::test]
async fn udp_peer_bursts_arrive_one_by_one_as_data_indications() {
    bounded(peer_bursts_arrive_one_by_one(false)).await;
}

/// RFC 8489 end to end: a server with static users only (its nonces announce username anonymity)
/// that requires SHA-256, and our client with `.prefer_sha256().with_userhash()`: MD5 alone is
/// refused (401), SHA-256 with USERHASH allocates, refreshes and relays.
#[tokio::test]
async fn sha256_and_userhash_client_relays() {
    bounded(async {
        let fixture = loopback(Transport::Udp).await;
        let auth = fixture.server.authenticator().expect("an authenticator");
        let mut config = auth.config().clone();
        config.rest = None;
        config.require_sha256 = true;
        let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
        fixture.server.reload(Some(auth.with_config(config)), &options);
        let err = fixture.allocate(Transport::Udp, static_user()).await.expect_err("MD5 is refused");
        assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");

        let (peer, echo) = udp_echo_peer().await;
        let creds = static_user().prefer_sha256().with_userhash();
        let client = fixture.allocate(Transport::Udp, creds).await.expect("allocate with SHA-256 and USERHASH");
        let five = fixture.server.allocations().len();
        assert_eq!(five, 1);
        assert_eq!(client.refresh(1200).await.expect("refresh"), 1200);
        client.create_permission(peer).await.expect("create_permission");
        client.send_to(b"hello over sha-256", peer).await.expect("send_to");
        let (data, from) = recv(&client, RECV_TIMEOUT).await.expect("the echo");
        assert_eq!((data.as_slice(), from), (&b"hello over sha-256"[..], peer));
        echo.abort();
    })
    .await;
}
