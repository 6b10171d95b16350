//! Quotas end to end, in process: our [`TurnClient`] against `io::bind` + the sans-IO server over
//! real UDP on 127.0.0.1. `user-quota` answers 486 and `total-quota` 508 (and slots come back when
//! an allocation is closed), with the client's leg over UDP, TCP and TLS; `max-bps` drops what a client or a peer sends over the rate, in each
//! direction, and counts it.
//!
//! The bandwidth tests offer ten times the rate and compare what arrives with what the bucket can
//! let through in the time the test actually took (a burst of one second plus the rate times the
//! elapsed time), so a slow machine loosens the bound instead of failing the test.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::support::{TurnFixture, bounded, eventually, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::proto::stun::codes;
use switchback::server::{ServerOptions, Transport};
use tokio::net::UdpSocket;

/// The limit of the bandwidth tests, bytes per second.
const RATE: u64 = 10_000;
/// Datagram size of the bandwidth tests.
const SIZE: usize = 1_000;
/// Datagrams offered: 100 kB, in bursts of 10 every 100 ms (about ten times the rate for a second).
const OFFERED: usize = 100;

fn rest(fixture: &TurnFixture, user: &str) -> Credentials {
    let (username, password) = fixture.rest_credentials(user);
    Credentials::new(username, password)
}

fn error_code(result: Result<TurnClient, ClientError>) -> u16 {
    match result {
        Err(ClientError::ErrorResponse { code, .. }) => code,
        Err(e) => panic!("expected an error response, got {e:?}"),
        Ok(c) => panic!("expected an error response, got an allocation at {}", c.relayed_addr()),
    }
}

/// A quota test per transport of the client's leg.
macro_rules! over_every_transport {
    ($scenario:ident: $($test:ident = $transport:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                bounded($scenario(Transport::$transport)).await;
            }
        )*
    };
}

over_every_transport!(user_quota_answers_486: user_quota_answers_486_over_udp = Udp,
    user_quota_answers_486_over_tcp = Tcp, user_quota_answers_486_over_tls = Tls);
over_every_transport!(total_quota_answers_508: total_quota_answers_508_over_udp = Udp,
    total_quota_answers_508_over_tcp = Tcp, total_quota_answers_508_over_tls = Tls);

async fn user_quota_answers_486(transport: Transport) {
    let fixture = TurnFixture::start_for(transport, ServerOptions::default().with(|o| o.user_quota = 2)).await;
    let first = fixture.allocate(transport, rest(&fixture, "bob")).await.expect("first allocation");
    let _second = fixture.allocate(transport, rest(&fixture, "bob")).await.expect("second allocation");
    // A third, even with freshly minted credentials (another REST username: once the clock has
    // moved to the next second), is over bob's quota.
    let earlier = fixture.rest_credentials("bob").0;
    eventually("a REST username of the next second", || fixture.rest_credentials("bob").0 != earlier).await;
    let third = rest(&fixture, "bob");
    assert_eq!(error_code(fixture.allocate(transport, third).await), codes::ALLOCATION_QUOTA_REACHED);
    // Another user is not affected.
    let _carol = fixture.allocate(transport, rest(&fixture, "carol")).await.expect("carol");
    // Closing one of bob's gives the slot back.
    first.close().await.expect("close");
    let _again = fixture.allocate(transport, rest(&fixture, "bob")).await.expect("bob again");
    assert_eq!(fixture.server.allocations().len(), 3);
}

async fn total_quota_answers_508(transport: Transport) {
    let fixture = TurnFixture::start_for(transport, ServerOptions::default().with(|o| o.total_quota = 2)).await;
    let a = fixture.allocate(transport, rest(&fixture, "a")).await.expect("a");
    let _b = fixture.allocate(transport, rest(&fixture, "b")).await.expect("b");
    let c = fixture.allocate(transport, rest(&fixture, "c")).await;
    assert_eq!(error_code(c), codes::INSUFFICIENT_CAPACITY);
    assert_eq!(fixture.server.allocations().len(), 2);
    if transport == Transport::Udp {
        a.close().await.expect("close");
    } else {
        // RFC 8656 §3.1: closing the connection deletes the allocation, and gives its slot back.
        drop(a);
        eventually("the allocation to end with its connection", || fixture.server.allocations().len() <= 1).await;
    }
    let _c = fixture.allocate(transport, rest(&fixture, "c")).await.expect("c after a left");
}

/// What a bucket of [`RATE`] can let through in `elapsed`, with one more datagram of slack.
fn allowed(elapsed: Duration) -> usize {
    let bytes = RATE as f64 * (1.0 + elapsed.as_secs_f64()) + SIZE as f64;
    bytes as usize / SIZE
}

/// Sends [`OFFERED`] datagrams in bursts of ten every 100 ms with `send`, then sets `done`.
async fn offer(done: &AtomicBool, mut send: impl AsyncFnMut()) {
    for i in 0..OFFERED {
        send().await;
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    done.store(true, Relaxed);
}

/// Counts the datagrams `recv` gets (it says whether one came) until `done` is set and 300 ms
/// pass without one.
async fn count_until_quiet(done: &AtomicBool, mut recv: impl AsyncFnMut() -> bool) -> usize {
    let mut n = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), recv()).await {
            Ok(true) => n += 1,
            _ if done.load(Relaxed) => return n,
            _ => {}
        }
    }
}

fn bandwidth_fixture_options() -> ServerOptions {
    ServerOptions::default().with(|o| {
        o.allow_loopback_peers = true;
        o.max_bps = RATE;
    })
}

#[tokio::test]
async fn max_bps_limits_client_to_peer() {
    bounded(async {
        let fixture = TurnFixture::start(bandwidth_fixture_options()).await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let client = TurnClient::allocate(fixture.udp, rest(&fixture, "bob")).await.expect("allocate");
        client.create_permission(peer_addr).await.expect("create_permission");

        let start = Instant::now();
        let done = AtomicBool::new(false);
        let counter = async {
            let mut buf = vec![0u8; 2048];
            count_until_quiet(&done, async || peer.recv_from(&mut buf).await.is_ok_and(|(n, _)| n == SIZE)).await
        };
        let sender = offer(&done, async || client.send_to(&[1u8; SIZE], peer_addr).await.expect("send_to"));
        let (arrived, ()) = tokio::join!(counter, sender);
        let elapsed = start.elapsed();
        eprintln!("{arrived} of {OFFERED} datagrams arrived in {elapsed:?} (the bucket allows {})", allowed(elapsed));

        let stats = fixture.stats();
        assert!(arrived >= 5, "the path works: {arrived} arrived; {stats:?}");
        assert!(arrived <= allowed(elapsed), "{arrived} of {OFFERED} arrived in {elapsed:?}; {stats:?}");
        assert!(arrived * 2 < OFFERED, "far less than offered: {arrived} of {OFFERED}");
        assert_eq!(stats.relayed_to_peer as usize, arrived, "{stats:?}");
        assert_eq!(stats.dropped_bandwidth as usize, OFFERED - arrived, "every excess datagram is counted");
    })
    .await;
}

#[tokio::test]
async fn max_bps_limits_peer_to_client() {
    bounded(async {
        let fixture = TurnFixture::start(bandwidth_fixture_options()).await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let client = TurnClient::allocate(fixture.udp, rest(&fixture, "bob")).await.expect("allocate");
        client.create_permission(peer_addr).await.expect("create_permission");
        let relayed: SocketAddr = client.relayed_addr();

        let start = Instant::now();
        let done = AtomicBool::new(false);
        let counter = async {
            let mut buf = vec![0u8; 2048];
            count_until_quiet(&done, async || client.recv_from(&mut buf).await.is_ok_and(|(n, _)| n == SIZE)).await
        };
        let sender = offer(&done, async || {
            peer.send_to(&[2u8; SIZE], relayed).await.expect("peer send");
        });
        let (arrived, ()) = tokio::join!(counter, sender);
        let elapsed = start.elapsed();
        eprintln!("{arrived} of {OFFERED} datagrams arrived in {elapsed:?} (the bucket allows {})", allowed(elapsed));

        let stats = fixture.stats();
        assert!(arrived >= 5, "the path works: {arrived} arrived; {stats:?}");
        assert!(arrived <= allowed(elapsed), "{arrived} of {OFFERED} arrived in {elapsed:?}; {stats:?}");
        assert!(arrived * 2 < OFFERED, "far less than offered: {arrived} of {OFFERED}");
        assert_eq!(stats.relayed_to_client as usize, arrived, "{stats:?}");
        assert_eq!(stats.peer_bandwidth_exceeded as usize, OFFERED - arrived, "every excess datagram is counted");
    })
    .await;
}

/// Under the rate nothing is lost: the limit only ever drops the excess.
#[tokio::test]
async fn traffic_under_max_bps_passes_whole() {
    bounded(async {
        let fixture = TurnFixture::start(bandwidth_fixture_options()).await;
        let (peer, echo) = udp_echo_peer().await;
        let client = TurnClient::allocate(fixture.udp, rest(&fixture, "bob")).await.expect("allocate");
        client.create_permission(peer).await.expect("create_permission");
        // 8 kB at once (within the burst) in each direction, through an echo peer.
        for _ in 0..8 {
            client.send_to(&[3u8; SIZE], peer).await.unwrap();
        }
        let mut buf = vec![0u8; 2048];
        let done = AtomicBool::new(true);
        let arrived = count_until_quiet(&done, async || client.recv_from(&mut buf).await.is_ok()).await;
        assert_eq!(arrived, 8, "{:?}", fixture.stats());
        let stats = fixture.stats();
        assert_eq!((stats.dropped_bandwidth, stats.peer_bandwidth_exceeded), (0, 0));
        echo.abort();
    })
    .await;
}
