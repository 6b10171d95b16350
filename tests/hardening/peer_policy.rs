//! The peer policy end to end, in process: with the default policy, CreatePermission (and
//! ChannelBind) to loopback, unspecified, private, link-local (cloud metadata) and their IPv6
//! spellings answer 403, over UDP, TCP and TLS; with `allowed-peer-ip 127.0.0.1` (and no
//! allow-loopback) a permission to 127.0.0.1 works and data flows to an echo peer there.
//!
//! Network rule: a refused peer is only ever named in a request; no data is sent toward any address
//! but the echo peer on 127.0.0.1.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;

use crate::support::{RECV_TIMEOUT, RawTurn, TEST_TIMEOUT, TURN_USER, TurnFixture, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::proto::stun::{
    AddressFamily, ChannelNumber, Method, RequestedAddressFamily, RequestedTransport, XorPeerAddress, codes,
};
use switchback::server::{RelayAddress, ServerOptions, Transport};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A raw client on 127.0.0.1 with an allocation of `family` on `fixture`.
async fn allocation(fixture: &TurnFixture, family: AddressFamily) -> RawTurn {
    let mut raw = RawTurn::new(sa("127.0.0.1:0"), fixture.udp, TURN_USER.0, TURN_USER.1).await;
    let answer = raw
        .request(Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&RequestedAddressFamily(family))
        })
        .await;
    assert!(answer.success, "allocate ({family:?}) failed with {}", answer.code);
    raw
}

async fn create_permission(raw: &mut RawTurn, peer: SocketAddr) -> u16 {
    raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).await.code
}

async fn channel_bind(raw: &mut RawTurn, peer: SocketAddr) -> u16 {
    raw.request(Method::CHANNEL_BIND, &|w| {
        w.add(&ChannelNumber(0x4000))?;
        w.add(&XorPeerAddress(peer))
    })
    .await
    .code
}

/// Denied IPv4 peers, asked about on an IPv4 allocation.
const DENIED_V4: [&str; 6] =
    ["127.0.0.1:9", "0.0.0.0:9", "10.0.0.1:80", "169.254.169.254:80", "192.168.1.1:80", "0.1.2.3:80"];

/// Denied IPv6 spellings (IPv4 inside IPv6 among them), asked about on an IPv6 allocation.
const DENIED_V6: [&str; 10] = [
    "[::ffff:127.0.0.1]:9",
    "[::1]:9",
    "[::]:9",
    "[::ffff:0.0.0.0]:9",
    "[::ffff:10.0.0.1]:80",
    "[::ffff:169.254.169.254]:80",
    "[64:ff9b::a9fe:a9fe]:80",
    "[2002:a9fe:a9fe::1]:80",
    "[fe80::1]:80",
    "[fd00::1]:80",
];

/// The default policy, with relays on 127.0.0.1 and ::1 so that IPv6 spellings can be asked about
/// on an IPv6 allocation; listening on `transport` too.
async fn default_policy_fixture(transport: Transport) -> TurnFixture {
    let loopback = |s: &str| RelayAddress { local: s.parse().unwrap(), advertised: s.parse().unwrap() };
    let options = ServerOptions::default().with(|o| o.relay_addresses = vec![loopback("127.0.0.1"), loopback("::1")]);
    TurnFixture::start_for(transport, options).await
}

#[tokio::test]
async fn default_policy_refuses_internal_peers_in_every_spelling() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fixture = default_policy_fixture(Transport::Udp).await;
        let mut denied = 0u64;
        let mut v4 = allocation(&fixture, AddressFamily::V4).await;
        for peer in DENIED_V4 {
            assert_eq!(create_permission(&mut v4, sa(peer)).await, codes::FORBIDDEN, "CreatePermission {peer}");
            assert_eq!(channel_bind(&mut v4, sa(peer)).await, codes::FORBIDDEN, "ChannelBind {peer}");
            denied += 2;
        }
        let mut v6 = allocation(&fixture, AddressFamily::V6).await;
        for peer in DENIED_V6 {
            assert_eq!(create_permission(&mut v6, sa(peer)).await, codes::FORBIDDEN, "CreatePermission {peer}");
            denied += 1;
        }
        let stats = fixture.stats();
        assert_eq!(stats.peer_denied, denied, "{stats:?}");
        assert_eq!(stats.relayed_to_peer, 0, "{stats:?}");
    })
    .await
    .expect("the test did not finish within its timeout");
}

fn is_403<T: std::fmt::Debug>(result: Result<T, ClientError>) -> bool {
    matches!(result, Err(ClientError::ErrorResponse { code: codes::FORBIDDEN, .. }))
}

/// The same refusals with our client's leg over a stream (requests only: no data is sent).
async fn stream_refuses_internal_peers(transport: Transport) {
    let fixture = default_policy_fixture(transport).await;
    let allocate = |family| {
        let options = fixture.client_options(transport).with(|o| o.family = Some(family));
        TurnClient::allocate_with(fixture.addr(transport), Credentials::new(TURN_USER.0, TURN_USER.1), options)
    };
    let mut denied = 0u64;
    let v4 = allocate(AddressFamily::V4).await.expect("an IPv4 allocation");
    assert!(v4.relayed_addr().is_ipv4());
    for peer in DENIED_V4 {
        assert!(is_403(v4.create_permission(sa(peer)).await), "CreatePermission {peer} over {transport:?}");
        assert!(is_403(v4.bind_channel(sa(peer)).await), "ChannelBind {peer} over {transport:?}");
        denied += 2;
    }
    let v6 = allocate(AddressFamily::V6).await.expect("an IPv6 allocation");
    assert!(v6.relayed_addr().is_ipv6());
    for peer in DENIED_V6 {
        assert!(is_403(v6.create_permission(sa(peer)).await), "CreatePermission {peer} over {transport:?}");
        assert!(is_403(v6.bind_channel(sa(peer)).await), "ChannelBind {peer} over {transport:?}");
        denied += 2;
    }
    let stats = fixture.stats();
    assert_eq!(stats.peer_denied, denied, "{stats:?}");
    assert_eq!(stats.relayed_to_peer, 0, "{stats:?}");
}

#[tokio::test]
async fn default_policy_refuses_internal_peers_over_tcp() {
    tokio::time::timeout(TEST_TIMEOUT, stream_refuses_internal_peers(Transport::Tcp))
        .await
        .expect("the test did not finish within its timeout");
}

#[tokio::test]
async fn default_policy_refuses_internal_peers_over_tls() {
    tokio::time::timeout(TEST_TIMEOUT, stream_refuses_internal_peers(Transport::Tls))
        .await
        .expect("the test did not finish within its timeout");
}

#[tokio::test]
async fn allowed_peer_ip_opens_one_loopback_address() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let fixture = TurnFixture::start(ServerOptions::default().with(|o| {
            o.allowed_peers = vec!["127.0.0.1".parse().unwrap()];
            o.own_addresses = vec!["127.0.0.1".parse().unwrap()];
        }))
        .await;
        assert!(!fixture.server.options().allow_loopback_peers);
        let (peer, echo) = udp_echo_peer().await;
        let (username, password) = fixture.rest_credentials("bob");
        let client = TurnClient::allocate(fixture.udp, Credentials::new(username, password)).await.expect("allocate");
        client.create_permission(peer).await.expect("a permission to the allowed 127.0.0.1");
        for i in 0..20 {
            let ping = format!("ping {i}");
            client.send_to(ping.as_bytes(), peer).await.expect("send_to");
            let mut buf = vec![0u8; 2048];
            let (n, from) = tokio::time::timeout(RECV_TIMEOUT, client.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("no echo of {ping}"))
                .expect("recv_from");
            assert_eq!((&buf[..n], from), (ping.as_bytes(), peer));
        }
        // Only that address: the rest of loopback stays closed.
        let err = client.create_permission(sa("127.0.0.2:9")).await.expect_err("127.0.0.2 is not allowed");
        assert!(matches!(err, ClientError::ErrorResponse { code: codes::FORBIDDEN, .. }), "{err:?}");
        let stats = fixture.stats();
        assert_eq!((stats.peer_denied, stats.dropped()), (1, 0), "{stats:?}");
        echo.abort();
    })
    .await
    .expect("the test did not finish within its timeout");
}
