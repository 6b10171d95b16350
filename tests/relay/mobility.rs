//! RFC 8016 mobility end to end, in process: a raw client moves its allocation to a new socket
//! (a new 5-tuple) again and again while a peer streams to the relayed address; after each move the
//! data reaches the new socket, and the old one gets 437.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::support::{RawTurn, TURN_USER, TurnFixture, bounded};
use switchback::proto::stun::{
    Data, Message, Method, MobilityTicket, RequestedTransport, XorPeerAddress, XorRelayedAddress, codes,
};
use switchback::server::ServerOptions;
use tokio::net::UdpSocket;

/// Moves per run.
const MOVES: usize = 8;

fn ticket_of(bytes: &[u8]) -> Vec<u8> {
    Message::parse(bytes).unwrap().get::<MobilityTicket>().expect("a MOBILITY-TICKET").0.to_vec()
}

/// Whether a Data indication reaches `client` within 2 s.
async fn data_arrives(client: &RawTurn) -> bool {
    let mut buf = vec![0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, client.socket.recv_from(&mut buf)).await {
        if Message::parse(&buf[..n]).is_ok_and(|m| m.get::<Data>().is_ok()) {
            return true;
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allocation_moves_mid_stream_and_the_data_follows() {
    bounded(async {
        let options = ServerOptions::default().with(|o| {
            o.allow_loopback_peers = true;
            o.mobility = true;
        });
        let fixture = TurnFixture::start(options).await;
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut client = RawTurn::new(any, fixture.udp, TURN_USER.0, TURN_USER.1).await;
        let allocate = client
            .request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add(&MobilityTicket(&[]))
            })
            .await;
        assert!(allocate.success, "{allocate:?}");
        let relayed = Message::parse(&allocate.bytes).unwrap().get::<XorRelayedAddress>().unwrap().0;
        let mut ticket = ticket_of(&allocate.bytes);
        let peer = UdpSocket::bind(any).await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        assert!(client.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer_addr))).await.success);
        let streaming = Arc::new(AtomicBool::new(true));
        let stream = tokio::spawn({
            let streaming = Arc::clone(&streaming);
            async move {
                while streaming.load(Ordering::Relaxed) {
                    let _ = peer.send_to(b"stream", relayed).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        assert!(data_arrives(&client).await, "no data before the first move");
        for i in 0..MOVES {
            let mut moved = RawTurn::new(any, fixture.udp, TURN_USER.0, TURN_USER.1).await;
            let t = ticket.clone();
            let refresh = moved.request(Method::REFRESH, &|w| w.add(&MobilityTicket(&t))).await;
            assert!(refresh.success, "move {i}: {refresh:?}");
            ticket = ticket_of(&refresh.bytes);
            assert!(data_arrives(&moved).await, "no data after move {i}");
            let old = client.request(Method::REFRESH, &|_| Ok(())).await;
            assert_eq!(old.code, codes::ALLOCATION_MISMATCH, "move {i}");
            client = moved;
        }
        streaming.store(false, Ordering::Relaxed);
        stream.await.unwrap();
        assert_eq!(fixture.stats().allocations_moved, MOVES as u64);
    })
    .await;
}
