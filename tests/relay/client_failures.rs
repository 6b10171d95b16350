//! Our TURN client cannot hang (issue #18, item 4): what its background refresh learns turns its
//! state to Failed and a waiting `recv_from` returns [`ClientError::AllocationLost`] — the server
//! deleting the allocation (437 to the next Refresh, as after a restart), the server stopped (UDP:
//! ICMP port unreachable; TCP: the connection closes), refreshes that nobody answers (retried with
//! backoff until the lifetime runs out), an Allocate nobody answers (retransmitted on the RFC 8489
//! §6.2.1 schedule of the core's `Transaction`). And credential swaps: a new RFC 7635 token
//! carries the allocation past the first token's expiry; a new REST credential is refused with 441
//! (RFC 8656 §5: same username) and the allocation ends with its first credential.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::{RECV_TIMEOUT, TurnFixture, bounded, udp_echo_peer, unix_now};
use switchback::auth::oauth::{AccessTokenKey, OauthConfig, TokenAlgorithm, seal};
use switchback::client::ClientError;
use switchback::client::turn::{ClientOptions, ClientState, Credentials, LostReason, TurnClient};
use switchback::proto::stun::{
    Class, Lifetime, Message, MessageType, MessageWriter, Method, XorMappedAddress, XorRelayedAddress,
};
use switchback::server::{EndReason, ServerOptions, Transport};
use tokio::net::UdpSocket;

/// The refresh period the tests ask for ([`ClientOptions::refresh_interval`]).
const REFRESH: Duration = Duration::from_millis(500);
/// The request timeout the tests set (UDP retransmits at 500 ms within it).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a failure may take to reach `recv_from`: a refresh period and a request, with room
/// for a loaded machine.
const NOTICED: Duration = Duration::from_secs(5);

fn loopback_options() -> ServerOptions {
    ServerOptions::default().with(|o| o.allow_loopback_peers = true)
}

fn options(fixture: &TurnFixture, transport: Transport) -> ClientOptions {
    fixture.client_options(transport).with(|o| {
        o.refresh_interval = Some(REFRESH);
        o.request_timeout = REQUEST_TIMEOUT;
    })
}

fn rest(fixture: &TurnFixture, ttl: u64) -> Credentials {
    let (username, password) = fixture.rest.mint("bob", ttl, unix_now()).expect("a REST secret");
    Credentials::new(username, password)
}

/// `data` to the echo peer and back through the relay.
async fn echo(client: &TurnClient, peer: SocketAddr, data: &[u8]) {
    client.send_to(data, peer).await.expect("send_to");
    let mut buf = [0u8; 256];
    let (n, from) =
        tokio::time::timeout(RECV_TIMEOUT, client.recv_from(&mut buf)).await.expect("the echo").expect("recv_from");
    assert_eq!((&buf[..n], from), (data, peer));
}

/// Runs `event` while a `recv_from` waits; returns why `recv_from` says the allocation is lost,
/// which it must within `within`.
async fn recv_fails_after(
    client: &TurnClient,
    within: Duration,
    event: impl std::future::Future<Output = ()>,
) -> LostReason {
    let recv = async {
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let got = tokio::time::timeout(within, client.recv_from(&mut buf)).await;
        (got, started.elapsed())
    };
    let ((got, took), ()) = tokio::join!(recv, event);
    let got = got.unwrap_or_else(|_| panic!("recv_from still waits after {within:?}"));
    match got {
        Err(ClientError::AllocationLost { reason }) => {
            eprintln!("recv_from returned after {took:?}: {reason}");
            reason
        }
        other => panic!("expected AllocationLost, got {other:?}"),
    }
}

/// The server deletes the allocation under the client (an operator, or a restart that lost it):
/// the next Refresh draws 437, the client fails with `Gone`, a waiting `recv_from` returns within
/// the refresh period, and `send_to` and requests fail alike.
async fn a_deleted_allocation_fails_the_client(transport: Transport) {
    let fixture = TurnFixture::start_for(transport, loopback_options()).await;
    let (peer, _echo) = udp_echo_peer().await;
    let client = TurnClient::allocate_with(fixture.addr(transport), rest(&fixture, 3600), options(&fixture, transport))
        .await
        .expect("allocate");
    client.create_permission(peer).await.expect("permission");
    echo(&client, peer, b"before").await;
    let mut changes = client.state_changes();
    assert_eq!(client.state(), ClientState::Live);
    let delete = async {
        let allocations = fixture.server.allocations().all();
        let five_tuple = allocations.first().expect("the allocation").info().five_tuple;
        assert!(fixture.server.close_allocation(Instant::now(), &five_tuple, EndReason::Admin));
    };
    let reason = recv_fails_after(&client, NOTICED, delete).await;
    assert_eq!(reason, LostReason::Gone);
    assert_eq!(*changes.borrow_and_update(), ClientState::Failed(LostReason::Gone));
    let err = client.send_to(b"after", peer).await.expect_err("send_to on a lost allocation");
    assert!(matches!(err, ClientError::AllocationLost { reason: LostReason::Gone }), "{err:?}");
    let err = client.create_permission(peer).await.expect_err("a permission on a lost allocation");
    assert!(matches!(err, ClientError::AllocationLost { .. }), "{err:?}");
    client.close().await.expect("closing a lost allocation");
}

#[tokio::test]
async fn udp_a_deleted_allocation_fails_the_client() {
    bounded(a_deleted_allocation_fails_the_client(Transport::Udp)).await;
}

#[tokio::test]
async fn tcp_a_deleted_allocation_fails_the_client() {
    bounded(a_deleted_allocation_fails_the_client(Transport::Tcp)).await;
}

/// The server process stops under a UDP client: the next Refresh draws ICMP port unreachable from
/// the closed port (the client's socket is connected to the server, so the kernel reports it),
/// and `recv_from` returns `Unreachable` within the refresh period and a request.
#[tokio::test]
async fn udp_a_stopped_server_fails_the_client() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let (peer, _echo) = udp_echo_peer().await;
        let client = TurnClient::allocate_with(fixture.udp, rest(&fixture, 3600), options(&fixture, Transport::Udp))
            .await
            .expect("allocate");
        client.create_permission(peer).await.expect("permission");
        echo(&client, peer, b"before").await;
        let reason = recv_fails_after(&client, REFRESH + REQUEST_TIMEOUT + NOTICED, async { drop(fixture) }).await;
        assert_eq!(reason, LostReason::Unreachable);
        assert_eq!(client.state(), ClientState::Failed(LostReason::Unreachable));
    })
    .await;
}

/// The server process stops under a TCP client: the connection closes, and with it the
/// allocation (RFC 8656 §3.1): `recv_from` returns `ConnectionClosed` at once.
#[tokio::test]
async fn tcp_a_stopped_server_fails_the_client() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let client = TurnClient::allocate_with(
            fixture.addr(Transport::Tcp),
            rest(&fixture, 3600),
            options(&fixture, Transport::Tcp).with(|o| o.refresh_interval = None),
        )
        .await
        .expect("allocate");
        // The default refresh period (8 minutes) is far away: the closing connection tells.
        let reason = recv_fails_after(&client, NOTICED, async { drop(fixture) }).await;
        assert_eq!(reason, LostReason::ConnectionClosed);
        let err = client.refresh(600).await.expect_err("a refresh on a lost allocation");
        assert!(matches!(err, ClientError::AllocationLost { reason: LostReason::ConnectionClosed }), "{err:?}");
    })
    .await;
}

/// A "server" that answers the first Allocate (LIFETIME `lifetime`, no authentication) and then
/// nothing, its socket left open (no ICMP); counts the Refresh transactions it hears.
async fn silent_after_allocate(lifetime: u32) -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind the silent server");
    let addr = socket.local_addr().expect("its address");
    let count = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&count);
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        let mut refreshes = std::collections::BTreeSet::new();
        loop {
            let Ok((n, from)) = socket.recv_from(&mut buf).await else { break };
            let Ok(m) = Message::parse(&buf[..n]) else { continue };
            match m.message_type().method {
                Method::ALLOCATE => {
                    let mut out = [0u8; 256];
                    let ty = MessageType::new(Method::ALLOCATE, Class::SuccessResponse);
                    let mut w = MessageWriter::new(&mut out, ty, m.transaction_id()).expect("a writer");
                    w.add(&XorRelayedAddress("127.0.0.1:40000".parse().unwrap())).unwrap();
                    w.add(&XorMappedAddress(from)).unwrap();
                    w.add(&Lifetime(lifetime)).unwrap();
                    let len = w.finish();
                    let _ = socket.send_to(&out[..len], from).await;
                }
                Method::REFRESH => {
                    refreshes.insert(m.transaction_id().0);
                    counter.store(refreshes.len(), Ordering::Relaxed);
                }
                _ => {}
            }
        }
    });
    (addr, count, task)
}

/// Refreshes nobody answers (each retransmitted within the request timeout, RFC 8489 §6.2.1) are
/// tried again with backoff while the granted lifetime lasts; when it has run out the client fails
/// with `Expired` and `recv_from` returns.
#[tokio::test]
async fn unanswered_refreshes_are_retried_until_the_lifetime_runs_out() {
    bounded(async {
        let (server, refreshes, silent) = silent_after_allocate(3).await;
        let options = ClientOptions::default().with(|o| {
            o.refresh_interval = Some(REFRESH);
            o.request_timeout = REQUEST_TIMEOUT;
        });
        let client =
            TurnClient::allocate_with(server, Credentials::new("alice", "pw"), options).await.expect("allocate");
        assert_eq!(client.lifetime(), 3);
        let started = Instant::now();
        let reason = recv_fails_after(&client, Duration::from_secs(3) + NOTICED, async {}).await;
        assert_eq!(reason, LostReason::Expired);
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "failed before the lifetime ran out: {:?}",
            started.elapsed()
        );
        // The first Refresh and at least one retry, each a transaction of its own.
        let heard = refreshes.load(Ordering::Relaxed);
        assert!(heard >= 2, "{heard} refreshes");
        silent.abort();
        let _ = silent.await;
    })
    .await;
}

/// The tokio client times its requests with the core's `Transaction` (RFC 8489 §6.2.1): an
/// Allocate nobody answers goes at 0, 500 ms and 1.5 s, the same bytes each time, and fails with
/// `Timeout` at the request timeout (2 s).
#[tokio::test]
async fn an_unanswered_allocate_is_retransmitted_on_the_rfc_8489_schedule() {
    bounded(async {
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind the silent server");
        let server = silent.local_addr().expect("its address");
        let options = ClientOptions::default().with(|o| o.request_timeout = Duration::from_secs(2));
        let allocate = tokio::spawn(TurnClient::allocate_with(server, Credentials::new("alice", "pw"), options));
        let mut heard: Vec<(Instant, Vec<u8>)> = Vec::new();
        let mut buf = [0u8; 1500];
        let listen_until = Instant::now() + Duration::from_secs(3);
        while let Some(left) = listen_until.checked_duration_since(Instant::now()) {
            match tokio::time::timeout(left, silent.recv_from(&mut buf)).await {
                Ok(Ok((n, _))) => heard.push((Instant::now(), buf[..n].to_vec())),
                Ok(Err(e)) => panic!("recv: {e}"),
                Err(_) => break,
            }
        }
        let result = allocate.await.expect("the allocate task");
        assert!(matches!(result, Err(ClientError::Timeout(t)) if t == Duration::from_secs(2)), "{result:?}");
        assert_eq!(heard.len(), 3, "sends at 0, 0.5 and 1.5 s within 2 s");
        assert!(heard.iter().all(|(_, b)| *b == heard[0].1), "retransmissions are the same request");
        let gap = |i: usize| heard[i + 1].0.duration_since(heard[i].0);
        // RTO 500 ms, doubling; generous upper bounds for a loaded machine.
        assert!(gap(0) >= Duration::from_millis(450) && gap(0) < Duration::from_millis(900), "{:?}", gap(0));
        assert!(gap(1) >= Duration::from_millis(950) && gap(1) < Duration::from_millis(1400), "{:?}", gap(1));
    })
    .await;
}

const SERVER_NAME: &str = "turn.test";
const KID: &str = "k1";

/// A token under `key` with session key `mac_key`, issued at `timestamp` for `lifetime` seconds.
fn token(key: &AccessTokenKey, mac_key: [u8; 32], timestamp: u64, lifetime: u32) -> Credentials {
    let token = seal(key, SERVER_NAME, [mac_key[0]; 12], &mac_key, timestamp, lifetime).expect("a token");
    Credentials::access_token(KID, token, mac_key)
}

/// RFC 7635 §6.2: a Refresh carrying a new ACCESS-TOKEN moves the allocation to its session key.
/// Two clients hold tokens that expire in 3 s (the server takes them 5 s more, its clock skew);
/// one swaps to a token of an hour. Once the first tokens are past, the other client's refresh
/// is refused (401) and it fails, while the swapped one refreshes, installs permissions and
/// relays on.
#[tokio::test]
async fn a_token_swap_outlives_the_first_token() {
    bounded(async {
        let key = AccessTokenKey::new(KID, &[9u8; 32], TokenAlgorithm::A256Gcm).expect("a token key").0;
        let oauth = OauthConfig { server_name: SERVER_NAME.into(), keys: vec![key.clone()] };
        let fixture = TurnFixture::start_with_oauth(loopback_options(), oauth).await;
        let (peer, _echo) = udp_echo_peer().await;
        let now = unix_now();
        let first = |mac_key| token(&key, mac_key, now - 7, 10);
        let options = || options(&fixture, Transport::Udp);
        let unswapped = TurnClient::allocate_with(fixture.udp, first([1; 32]), options()).await.expect("allocate");
        let client = TurnClient::allocate_with(fixture.udp, first([2; 32]), options()).await.expect("allocate");
        client.create_permission(peer).await.expect("permission");
        echo(&client, peer, b"first token").await;

        client.set_credentials(token(&key, [3; 32], now, 3600)).await.expect("the server takes a new token");
        echo(&client, peer, b"swapped").await;

        let mut changes = unswapped.state_changes();
        let failed = tokio::time::timeout(Duration::from_secs(15), changes.wait_for(|s| *s != ClientState::Live))
            .await
            .expect("the first token to expire")
            .expect("a state")
            .clone();
        assert!(
            matches!(failed, ClientState::Failed(LostReason::Refused { code: 401, .. })),
            "the unswapped client: {failed:?}"
        );
        assert!(unix_now() > now + 3, "past the first token's expiry");
        assert_eq!(client.state(), ClientState::Live);
        assert!(client.refresh(600).await.expect("a refresh with the new token") > 0);
        client.create_permission(peer).await.expect("a permission with the new session key");
        echo(&client, peer, b"after the first token").await;
        assert!(client.peer_failures().is_empty());
        client.close().await.expect("close");
    })
    .await;
}

/// A REST credential carries its expiry in the username, so a fresh one is another username: the
/// server refuses the swap with 441 (RFC 8656 §5) and the client keeps the first one and relays
/// on. After that one expires its refreshes are refused (401): the client fails and `recv_from`
/// returns.
#[tokio::test]
async fn a_rest_swap_is_refused_and_the_allocation_ends_with_its_first_credential() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let (peer, _echo) = udp_echo_peer().await;
        let client = TurnClient::allocate_with(fixture.udp, rest(&fixture, 3), options(&fixture, Transport::Udp))
            .await
            .expect("allocate");
        client.create_permission(peer).await.expect("permission");
        let err = client.set_credentials(rest(&fixture, 3600)).await.expect_err("a new REST username");
        assert!(matches!(err, ClientError::ErrorResponse { code: 441, .. }), "{err:?}");
        assert_eq!(client.state(), ClientState::Live);
        client.create_permission(peer).await.expect("the first credential still signs");
        echo(&client, peer, b"still relaying").await;
        let reason = recv_fails_after(&client, Duration::from_secs(4) + NOTICED, async {}).await;
        assert!(matches!(reason, LostReason::Refused { code: 401, .. }), "{reason:?}");
    })
    .await;
}
