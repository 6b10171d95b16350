//! TURN with the client's leg over TCP (RFC 8656 §3.1): allocation over a stream, relayed data
//! framed (and padded) on the stream, and the allocation freed when the connection closes; our
//! client sends a request once on a stream.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{TURN_REALM, TURN_USER, TurnFixture};
use switchback::proto::demux::{Frame, stream_frame};
use switchback::proto::stun::*;
use switchback::server::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

const STEP: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocation_over_tcp_relays_and_dies_with_its_connection() {
    let fixture = TurnFixture::loopback().await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();

    stream.write_all(&crate::support::turn_request(Method::ALLOCATE, 1, None, udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    let nonce = m.get::<Nonce>().unwrap().0.to_string();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));

    stream.write_all(&crate::support::turn_request(Method::ALLOCATE, 2, Some((&nonce, &key)), udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, stream.local_addr().unwrap());
    assert_eq!(fixture.server.allocations().len(), 1);

    // A UDP peer; bind channel 0x4001 to it; 5 bytes each way (padded to 8 on the stream).
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr: SocketAddr = peer.local_addr().unwrap();
    let bind = |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(0x4001)).unwrap();
        w.add(&XorPeerAddress(peer_addr)).unwrap();
    };
    stream.write_all(&crate::support::turn_request(Method::CHANNEL_BIND, 3, Some((&nonce, &key)), bind)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);

    crate::support::channel_data_over_stream_then_close(&fixture, stream, buf, &peer, relayed).await;
}

/// Allocates over a fresh TCP connection to `server`; the stream, its read buffer, the nonce and
/// key for further requests, and the relayed address.
async fn allocate_over_tcp(server: SocketAddr) -> (TcpStream, Vec<u8>, String, IntegrityKey, SocketAddr) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    stream.write_all(&crate::support::turn_request(Method::ALLOCATE, 1, None, udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    let nonce = Message::parse(&resp).unwrap().get::<Nonce>().unwrap().0.to_string();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));
    stream.write_all(&crate::support::turn_request(Method::ALLOCATE, 2, Some((&nonce, &key)), udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut stream, &mut buf).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    (stream, buf, nonce, key, relayed)
}

/// Many frames in one write: the server batches the datagrams one read carries for one peer
/// (equal sizes, one GSO send), and queues a peer's burst to the client as one buffer. Whatever the
/// batching, every datagram reaches its peer whole, in order, and a peer's burst reaches the
/// client whole and in order: two peers, runs of equal and unequal sizes, a run longer than a GSO
/// send takes, one datagram too big to batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_of_frames_keep_their_order_and_contents_both_ways() {
    let fixture = TurnFixture::loopback().await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let (mut stream, mut buf, nonce, key, relayed) = allocate_over_tcp(server).await;
    bursts_both_ways(&mut stream, &mut buf, &nonce, &key, relayed).await;
}

/// The body of the burst tests (TCP here, TLS in `tls.rs`): over a stream with an allocation at
/// `relayed`, two channels to two peers, a burst of frames written at once, then a peer's burst.
pub(crate) async fn bursts_both_ways<S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    nonce: &str,
    key: &IntegrityKey,
    relayed: SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let peers = [UdpSocket::bind("127.0.0.1:0").await.unwrap(), UdpSocket::bind("127.0.0.1:0").await.unwrap()];
    for (i, peer) in peers.iter().enumerate() {
        let peer_addr = peer.local_addr().unwrap();
        let bind = |w: &mut MessageWriter<'_>| {
            w.add(&ChannelNumber(0x4001 + i as u16)).unwrap();
            w.add(&XorPeerAddress(peer_addr)).unwrap();
        };
        stream
            .write_all(&crate::support::turn_request(Method::CHANNEL_BIND, 3 + i as u8, Some((nonce, key)), bind))
            .await
            .unwrap();
        let resp = crate::support::read_stream_frame(stream, buf).await;
        assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    }

    // (peer, size) of each datagram, in the order written; each payload is tagged with its index.
    let mut plan: Vec<(usize, usize)> = Vec::new();
    plan.extend(std::iter::repeat_n((0, 100), 80));
    plan.extend(std::iter::repeat_n((1, 100), 3));
    plan.extend(std::iter::repeat_n((0, 37), 5));
    plan.push((0, 1400));
    plan.push((0, 3000));
    plan.extend(std::iter::repeat_n((0, 100), 10));
    plan.extend((0..20).map(|i| (i % 2, 60)));
    let payload = |index: usize, size: usize| -> Vec<u8> {
        (0..size).map(|j| if j < 2 { (index as u16).to_be_bytes()[j] } else { (index + j) as u8 }).collect()
    };
    let mut burst = Vec::new();
    let mut frame = vec![0u8; 4096];
    for (index, &(peer, size)) in plan.iter().enumerate() {
        let data = payload(index, size);
        let n = switchback::proto::channel_data::ChannelData { channel: 0x4001 + peer as u16, data: &data }
            .encode(true, &mut frame)
            .unwrap();
        burst.extend_from_slice(&frame[..n]);
    }
    stream.write_all(&burst).await.unwrap();
    stream.flush().await.unwrap();

    let mut got = vec![0u8; 4096];
    for (i, peer) in peers.iter().enumerate() {
        for (index, &(_, size)) in plan.iter().enumerate().filter(|(_, (p, _))| *p == i) {
            let (len, from) =
                tokio::time::timeout(STEP, peer.recv_from(&mut got)).await.expect("datagram lost").unwrap();
            assert_eq!(from, relayed);
            assert_eq!(&got[..len], &payload(index, size)[..], "peer {i}: datagram {index} whole and in order");
        }
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), peers[0].recv_from(&mut got)).await.is_err(),
        "no extra datagram"
    );

    // Peer → client: a burst of 50 datagrams arrives framed, in order.
    for index in 0..50u16 {
        peers[0].send_to(&payload(usize::from(index), 30 + usize::from(index)), relayed).await.unwrap();
    }
    for index in 0..50usize {
        let frame = crate::support::read_stream_frame(stream, buf).await;
        let cd = switchback::proto::channel_data::ChannelData::parse(&frame).unwrap();
        assert_eq!((cd.channel, cd.data), (0x4001, &payload(index, 30 + index)[..]), "frame {index}");
    }
}

/// RFC 8489 §6.2.2: over a reliable transport a request is sent once and the client waits for the
/// timeout; over UDP it is retransmitted (§6.2.1). A silent server counts what arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_sends_a_request_once_over_tcp_and_retransmits_over_udp() {
    use switchback::client::ClientError;
    use switchback::client::turn::{ClientOptions, Credentials, TurnClient, TurnTransport as Leg};
    let timeout = Duration::from_millis(1_600);
    let creds = Credentials::new(TURN_USER.0, TURN_USER.1);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut chunk = [0u8; 1500];
        // Until the client gives up and closes the connection.
        while let Ok(n @ 1..) = stream.read(&mut chunk).await {
            received.extend_from_slice(&chunk[..n]);
        }
        received
    });
    let options = ClientOptions::default().with(|o| {
        o.transport = Leg::Tcp;
        o.request_timeout = timeout;
    });
    let started = tokio::time::Instant::now();
    let err = TurnClient::allocate_with(server, creds.clone(), options).await.expect_err("no answer");
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() >= timeout, "waited the whole timeout");
    let received = tokio::time::timeout(STEP, silent).await.expect("the client closed its connection").unwrap();
    assert!(matches!(stream_frame(&received, false), Frame::Complete(n) if n == received.len()), "exactly one request");
    let m = Message::parse(&received).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::ALLOCATE, Class::Request));

    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let options = ClientOptions::default().with(|o| o.request_timeout = timeout);
    let err = TurnClient::allocate_with(silent.local_addr().unwrap(), creds, options).await.expect_err("no answer");
    assert!(matches!(err, ClientError::Timeout(_)), "{err:?}");
    let mut datagrams = 0;
    let mut buf = [0u8; 1500];
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buf)).await {
        datagrams += 1;
    }
    // Sent at 0, 0.5 and 1.5 s (the last may miss the deadline on a loaded machine).
    assert!((2..=3).contains(&datagrams), "retransmitted over UDP: {datagrams} transmissions");
}

/// RFC 8489 §6.2.2: with `tcp-idle-timeout` at 1 s, a connection without an allocation is closed
/// after about a second, while one that owns a live allocation stays open through 3 s of silence
/// and its allocation still answers a Refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idle_timeout_spares_a_connection_with_a_live_allocation() {
    let limits = switchback::io::Limits { tcp_idle_timeout: Duration::from_secs(1), ..Default::default() };
    let fixture = TurnFixture::start_with(switchback::server::ServerOptions::default(), None, limits).await;
    let server = fixture.running.local_addr(Transport::Tcp).unwrap();
    let mut owner = TcpStream::connect(server).await.unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    owner.write_all(&crate::support::turn_request(Method::ALLOCATE, 1, None, udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut owner, &mut buf).await;
    let nonce = Message::parse(&resp).unwrap().get::<Nonce>().unwrap().0.to_string();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));
    owner.write_all(&crate::support::turn_request(Method::ALLOCATE, 2, Some((&nonce, &key)), udp)).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut owner, &mut buf).await;
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);

    let started = tokio::time::Instant::now();
    let mut idle = TcpStream::connect(server).await.unwrap();
    let mut byte = [0u8; 1];
    // Closed by the server (end of stream or reset), polled with a deadline.
    let read = tokio::time::timeout(STEP, idle.read(&mut byte)).await.expect("the idle connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "after the idle timeout, {:?}", started.elapsed());
    assert_eq!(fixture.running.io_stats().tcp_closed_idle, 1);

    // The owner has said nothing since its Allocate: nothing arrives, and it is not closed.
    let silent = Duration::from_secs(3).saturating_sub(started.elapsed());
    let quiet = tokio::time::timeout(silent, owner.read(&mut byte)).await;
    assert!(quiet.is_err(), "the owner's connection was closed or written to: {quiet:?}");
    owner.write_all(&crate::support::turn_request(Method::REFRESH, 3, Some((&nonce, &key)), |_| {})).await.unwrap();
    let resp = crate::support::read_stream_frame(&mut owner, &mut buf).await;
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    assert_eq!(fixture.server.allocations().len(), 1);
    assert_eq!(fixture.running.io_stats().tcp_closed_idle, 1);
}
