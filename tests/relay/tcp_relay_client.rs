//! RFC 6062 from our client's side, in process: [`TcpAllocation`] over TCP and TLS control
//! connections Connects to a loopback TCP echo peer (small and 200 kB echoes), accepts a peer that
//! connects to the relayed address, and gets 447 for a closed port and 403 for a peer the default
//! policy denies; `accept` ends when the control connection does.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{TURN_USER, TurnFixture, bounded};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, PeerStream, TcpAllocation};
use switchback::server::{ServerOptions, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const STEP: Duration = Duration::from_secs(5);

fn static_user() -> Credentials {
    Credentials::new(TURN_USER.0, TURN_USER.1)
}

async fn allocate(fixture: &TurnFixture, transport: Transport) -> TcpAllocation {
    TcpAllocation::allocate(fixture.addr(transport), static_user(), fixture.client_options(transport))
        .await
        .expect("a TCP allocation")
}

async fn read_exact(stream: &mut (impl AsyncReadExt + Unpin), n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    tokio::time::timeout(STEP, stream.read_exact(&mut got)).await.expect("read timeout").unwrap();
    got
}

/// Sends `data` through `stream` to the echo peer and checks that it all comes back.
async fn echo(stream: &mut PeerStream, data: &[u8]) {
    let (mut r, mut w) = tokio::io::split(stream);
    let (_, echoed) = tokio::join!(
        async {
            w.write_all(data).await.unwrap();
            w.flush().await.unwrap();
        },
        read_exact(&mut r, data.len())
    );
    assert!(echoed == data, "{} bytes echoed intact", data.len());
}

async fn connects_to_an_echo_peer(transport: Transport) {
    let fixture =
        TurnFixture::start_for(transport, ServerOptions::default().with(|o| o.allow_loopback_peers = true)).await;
    let peer = crate::support::tcp_echo_peer().await;
    let alloc = allocate(&fixture, transport).await;
    assert_ne!(alloc.relayed_addr().port(), 0);
    let mut stream = alloc.connect(peer).await.expect("Connect and ConnectionBind");
    assert_eq!(stream.peer_addr(), peer);
    echo(&mut stream, b"hello, peer").await;
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    echo(&mut stream, &big).await;

    // RFC 6062 §5.2: a second Connect to the same peer while the first lives is 446.
    match alloc.connect(peer).await {
        Err(ClientError::ErrorResponse { code: 446, .. }) => {}
        other => panic!("expected 446, got {other:?}"),
    }
    let s = fixture.stats();
    assert_eq!((s.tcp_connects, s.tcp_connected, s.tcp_connections_bound), (1, 1, 1), "{s:?}");
    // The data connection's first ConnectionBind carried the control connection's nonce, bound to
    // another source port: one 438, then success.
    assert_eq!(s.stale_nonces, 1, "{s:?}");

    // Closing the allocation closes the data connection.
    alloc.close().await.unwrap();
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(STEP, stream.read(&mut b)).await.expect("data connection closed");
    assert_eq!(n.unwrap_or(0), 0);
}

async fn accepts_a_peer(transport: Transport) {
    let fixture =
        TurnFixture::start_for(transport, ServerOptions::default().with(|o| o.allow_loopback_peers = true)).await;
    let alloc = allocate(&fixture, transport).await;
    alloc.create_permission("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut peer = TcpStream::connect(alloc.relayed_addr()).await.unwrap();
    // Bytes the peer sends before the bind wait for it, and may come with the bind's answer.
    peer.write_all(b"early").await.unwrap();
    let (from, mut stream) = tokio::time::timeout(STEP, alloc.accept()).await.expect("an attempt").unwrap();
    assert_eq!(from, peer.local_addr().unwrap());
    assert_eq!(stream.peer_addr(), from);
    assert_eq!(read_exact(&mut stream, 5).await, b"early");
    stream.write_all(b"pong").await.unwrap();
    stream.flush().await.unwrap();
    assert_eq!(read_exact(&mut peer, 4).await, b"pong");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let (_, got) = tokio::join!(async { peer.write_all(&big).await.unwrap() }, read_exact(&mut stream, big.len()));
    assert!(got == big, "200 kB from the peer intact");
    assert_eq!(fixture.stats().tcp_connection_attempts, 1);

    // The peer closes: so does our stream.
    drop(peer);
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(STEP, stream.read(&mut b)).await.expect("closed").unwrap_or(0);
    assert_eq!(n, 0);
}

mod tcp {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connects_to_an_echo_peer() {
        bounded(super::connects_to_an_echo_peer(Transport::Tcp)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepts_a_peer() {
        bounded(super::accepts_a_peer(Transport::Tcp)).await;
    }
}

mod tls {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connects_to_an_echo_peer() {
        bounded(super::connects_to_an_echo_peer(Transport::Tls)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn accepts_a_peer() {
        bounded(super::accepts_a_peer(Transport::Tls)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_closed_port_is_447() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let alloc = allocate(&fixture, Transport::Tcp).await;
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        match alloc.connect(closed).await {
            Err(ClientError::ErrorResponse { code: 447, .. }) => {}
            other => panic!("expected 447, got {other:?}"),
        }
        assert_eq!(fixture.stats().tcp_connect_failures, 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_a_denied_peer_is_403() {
    bounded(async {
        // Default policy: loopback peers are denied; only the request goes out.
        let fixture = TurnFixture::start(ServerOptions::default()).await;
        let alloc = allocate(&fixture, Transport::Tcp).await;
        match alloc.connect("127.0.0.1:9".parse().unwrap()).await {
            Err(ClientError::ErrorResponse { code: 403, .. }) => {}
            other => panic!("expected 403, got {other:?}"),
        }
        let s = fixture.stats();
        assert_eq!((s.tcp_connects, s.tcp_connections_bound), (0, 0), "{s:?}");
    })
    .await;
}

#[tokio::test]
async fn a_tcp_allocation_needs_a_stream() {
    let server: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let err = TcpAllocation::allocate(server, static_user(), Default::default()).await.unwrap_err();
    assert!(matches!(err, ClientError::NotAStream), "{err:?}");
}

/// The server going away closes the control connection: a waiting `accept` ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_ends_when_the_control_connection_closes() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let alloc = allocate(&fixture, Transport::Tcp).await;
        drop(fixture);
        match tokio::time::timeout(STEP, alloc.accept()).await.expect("accept returns") {
            Err(ClientError::Closed) => {}
            other => panic!("expected Closed, got {other:?}"),
        }
    })
    .await;
}

/// `max-bps` holds on RFC 6062 relaying too (it used to pass 2 MB at once through a 5000 B/s
/// limit): 24 kB to a peer at 4000 B/s (a one-second burst of 4000 bytes) takes about five seconds
/// (back-pressure, nothing lost), and the allocation's byte counter shows the bytes as they flow.
#[tokio::test]
async fn rfc6062_relaying_is_held_to_max_bps() {
    bounded(async {
        let options = ServerOptions::default().with(|o| {
            o.allow_loopback_peers = true;
            o.max_bps = 4000;
        });
        let fixture = TurnFixture::start_for(Transport::Tcp, options).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = listener.local_addr().unwrap();
        let alloc = allocate(&fixture, Transport::Tcp).await;
        let (stream, accepted) = tokio::join!(alloc.connect(peer), listener.accept());
        let (mut stream, (mut at_peer, _)) = (stream.expect("Connect"), accepted.unwrap());
        let data = vec![7u8; 24_000];
        let started = std::time::Instant::now();
        stream.write_all(&data).await.unwrap();
        // After a second, only about the burst and a second's rate have reached the peer.
        let mut got = vec![0u8; 24_000];
        let mut n = 0;
        while started.elapsed() < Duration::from_secs(1) {
            if let Ok(Ok(k)) = tokio::time::timeout(Duration::from_millis(100), at_peer.read(&mut got[n..])).await {
                n += k;
            }
        }
        assert!(n <= 9_000, "{n} bytes within the first second at 4000 B/s");
        let counted = fixture
            .server
            .allocations()
            .all()
            .iter()
            .map(|a| a.counters.to_peer_bytes.load(std::sync::atomic::Ordering::Relaxed))
            .sum::<u64>();
        assert!(counted >= n as u64 && counted < 24_000, "counted as they flow: {counted}");
        tokio::time::timeout(Duration::from_secs(10), at_peer.read_exact(&mut got[n..])).await.unwrap().unwrap();
        assert!(got == data, "everything arrives, nothing dropped");
    })
    .await;
}
