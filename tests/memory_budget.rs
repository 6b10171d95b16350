//! The memory a stalled TCP client can pin: clients with credentials allocate over TCP, permit a
//! peer, then stop reading while the peer floods their relayed addresses with large datagrams. The
//! relay queues of their connections (`switchback::io::queued_total`) stay within
//! `STREAM_QUEUE_BYTES` each — 256 KiB, where 256 frames of up to 64 KiB used to pin ~16 MB — and
//! the flood is dropped and counted instead of queued.
//!
//! Alone in its binary: the queue total is process-wide, so no other test may queue meanwhile.

use std::net::SocketAddr;
use std::time::Duration;

use switchback::io::{STREAM_QUEUE_BYTES, queued_total};
use switchback::proto::stun::{
    ErrorCode, IntegrityKey, Message, Method, Nonce, RequestedTransport, XorPeerAddress, XorRelayedAddress,
    long_term_key_md5,
};
use switchback::server::{ServerOptions, Transport};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

#[path = "support/mod.rs"]
mod support;

use support::{TURN_REALM, TURN_USER, TurnFixture, bounded, read_stream_frame, turn_request};

/// Stalled clients.
const CLIENTS: usize = 6;

/// Allocates over a fresh TCP connection and permits `peer`; returns the stream (never read again)
/// and the relayed address.
async fn stalled_client(server: SocketAddr, peer: SocketAddr) -> (TcpStream, SocketAddr) {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let mut buf = Vec::new();
    let udp = |w: &mut switchback::proto::stun::MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    stream.write_all(&turn_request(Method::ALLOCATE, 1, None, udp)).await.unwrap();
    let challenge = read_stream_frame(&mut stream, &mut buf).await;
    let challenge = Message::parse(&challenge).unwrap();
    assert_eq!(challenge.get::<ErrorCode>().unwrap().code, 401);
    let nonce = challenge.get::<Nonce>().unwrap().0.to_owned();
    let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));
    stream.write_all(&turn_request(Method::ALLOCATE, 2, Some((&nonce, &key)), udp)).await.unwrap();
    let answer = read_stream_frame(&mut stream, &mut buf).await;
    let answer = Message::parse(&answer).unwrap();
    let relayed =
        answer.get::<XorRelayedAddress>().unwrap_or_else(|_| panic!("allocated: {:?}", answer.get::<ErrorCode>())).0;
    let permit = |w: &mut switchback::proto::stun::MessageWriter<'_>| w.add(&XorPeerAddress(peer)).unwrap();
    stream.write_all(&turn_request(Method::CREATE_PERMISSION, 3, Some((&nonce, &key)), permit)).await.unwrap();
    let permitted = read_stream_frame(&mut stream, &mut buf).await;
    assert!(Message::parse(&permitted).unwrap().get::<ErrorCode>().is_err(), "permission granted");
    (stream, relayed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tcp_clients_pin_at_most_their_queue_budget() {
    bounded(async {
        let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
        let fixture = TurnFixture::start(options).await;
        let server = fixture.addr(Transport::Tcp);
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            clients.push(stalled_client(server, peer.local_addr().unwrap()).await);
        }
        // A sampler watches the queues while the peer floods.
        let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = tokio::spawn({
            let sampling = sampling.clone();
            async move {
                let mut peak = 0;
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    peak = peak.max(queued_total());
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                peak
            }
        });
        // 400 datagrams of 60,000 bytes to each: 24 MB a client, beyond its queue and its socket
        // buffers.
        let datagram = vec![0x5au8; 60_000];
        for _ in 0..400 {
            for (_, relayed) in &clients {
                let _ = peer.send_to(&datagram, relayed).await;
            }
        }
        let dropped = || fixture.server.driver().client_queue_drops.load(std::sync::atomic::Ordering::Relaxed);
        support::eventually("the flood reached the queues and overflowed them", || dropped() > 0).await;
        sampling.store(false, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.await.unwrap();
        let budget = CLIENTS * STREAM_QUEUE_BYTES;
        assert!(peak <= budget, "{peak} bytes queued for {CLIENTS} stalled clients, budget {budget}");
        assert!(queued_total() <= budget);
        drop(clients);
        fixture.running.shutdown().await;
    })
    .await;
}
