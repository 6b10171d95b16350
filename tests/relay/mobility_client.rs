//! RFC 8016 mobility from our client's side, in process: [`TurnClient::move_to`] takes an
//! allocation to a new UDP socket while a peer streams to it; data follows, the old socket is let go
//! and the server's old 5-tuple is gone; two moves in a row each present the ticket of the answer
//! before; a move the server refuses, or a server without mobility, leaves the client where it was.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::support::{RECV_TIMEOUT, RawTurn, TURN_USER, TurnFixture, bounded, echo_through, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::proto::stun::{Method, RequestedTransport, codes};
use switchback::server::{ServerOptions, Transport};
use tokio::net::UdpSocket;

const LOOPBACK: &str = "127.0.0.1:0";

/// A server relaying to loopback peers, with `mobility` on or off.
async fn server(mobility: bool) -> TurnFixture {
    TurnFixture::start(ServerOptions::default().with(|o| {
        o.allow_loopback_peers = true;
        o.mobility = mobility;
    }))
    .await
}

/// Our client on 127.0.0.1, asking for mobility when `mobility`.
async fn allocate(fixture: &TurnFixture, mobility: bool) -> TurnClient {
    let options = fixture.client_options(Transport::Udp).with(|o| {
        o.mobility = mobility;
        o.bind = Some(LOOPBACK.parse().unwrap());
    });
    TurnClient::allocate_with(fixture.udp, Credentials::new(TURN_USER.0, TURN_USER.1), options).await.expect("allocate")
}

/// Receives through `client` until a datagram whose sequence number is at least `from` arrives;
/// returns how many datagrams that took.
async fn receive_from_seq(client: &TurnClient, peer: SocketAddr, from: u64) -> usize {
    let mut buf = [0u8; 64];
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    let mut received = 0;
    loop {
        received += 1;
        let (n, who) = tokio::time::timeout_at(deadline, client.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no datagram numbered {from} or later within {RECV_TIMEOUT:?}"))
            .expect("receive through the relay");
        assert_eq!(who, peer);
        let seq = u64::from_be_bytes(buf[..n].try_into().expect("an 8-byte sequence number"));
        if seq >= from {
            return received;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_moves_mid_stream_and_the_data_follows() {
    bounded(async {
        let fixture = server(true).await;
        let client = allocate(&fixture, true).await;
        let ticket = client.mobility_ticket().expect("a MOBILITY-TICKET from the Allocate");
        let relayed = client.relayed_addr();
        let old = client.local_addr().unwrap();
        let peer = Arc::new(UdpSocket::bind(LOOPBACK).await.unwrap());
        let peer_addr = peer.local_addr().unwrap();
        client.bind_channel(peer_addr).await.expect("ChannelBind");
        // The peer streams numbered datagrams to the relayed address until told to stop.
        let (streaming, sent) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
        let stream = tokio::spawn({
            let (peer, streaming, sent) = (Arc::clone(&peer), Arc::clone(&streaming), Arc::clone(&sent));
            async move {
                while streaming.load(Ordering::Relaxed) {
                    let seq = sent.fetch_add(1, Ordering::Relaxed);
                    let _ = peer.send_to(&seq.to_be_bytes(), relayed).await;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        });
        receive_from_seq(&client, peer_addr, 0).await;

        client.move_to(UdpSocket::bind(LOOPBACK).await.unwrap()).await.expect("the move");
        let moved_at = sent.load(Ordering::Relaxed);
        let new = client.local_addr().unwrap();
        assert_ne!(new, old, "the client still talks from its old socket");
        assert_eq!(client.relayed_addr(), relayed);
        assert_eq!(fixture.stats().allocations_moved, 1);
        let renewed = client.mobility_ticket().expect("a ticket after the move");
        assert_ne!(renewed, ticket, "the move's answer carries a fresh ticket");
        // The client let its old socket go: its address is free again, and from now on nothing
        // the peer streams reaches it.
        let mut stale = RawTurn::new(old, fixture.udp, TURN_USER.0, TURN_USER.1).await;
        receive_from_seq(&client, peer_addr, moved_at + 200).await;
        let mut buf = [0u8; 2048];
        // A datagram the relay had in hand when the move landed may still leave for the old
        // 5-tuple (the relay reads the 5-tuple once per wake): in flight, not misrouted. Anything
        // the peer sent well after the move (later than 10 ms of the stream) must not.
        while let Ok((n, _)) = stale.socket.try_recv_from(&mut buf) {
            let seq = buf.get(4..12).filter(|_| n >= 12).map(|b| u64::from_be_bytes(b.try_into().unwrap()));
            assert!(
                seq.is_some_and(|seq| seq <= moved_at + 10),
                "the old address received datagram {seq:?} (the move was done at {moved_at})"
            );
        }
        // The server's old 5-tuple has no allocation any more (RFC 8656 §8.2: 437).
        let old_refresh = stale.request(Method::REFRESH, &|_| Ok(())).await;
        assert_eq!(old_refresh.code, codes::ALLOCATION_MISMATCH, "{old_refresh:?}");
        // Client to peer from the new socket (a datagram the relay dropped is sent again).
        let mut got = None;
        for _ in 0..5 {
            client.send_to(b"up", peer_addr).await.expect("send after the move");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while let Ok(Ok((n, from))) = tokio::time::timeout_at(deadline, peer.recv_from(&mut buf)).await {
                if &buf[..n] == b"up" {
                    got = Some(from);
                    break;
                }
            }
            if got.is_some() {
                break;
            }
        }
        assert_eq!(got, Some(relayed), "the peer got nothing from the moved client");
        // Requests go from the new socket too: a Refresh from the old one would get 437.
        client.refresh(600).await.expect("a Refresh after the move");
        client.create_permission(peer_addr).await.expect("a CreatePermission after the move");
        streaming.store(false, Ordering::Relaxed);
        stream.await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_moves_in_a_row_each_with_the_latest_ticket() {
    bounded(async {
        let fixture = server(true).await;
        let client = allocate(&fixture, true).await;
        let relayed = client.relayed_addr();
        let (peer, echo) = udp_echo_peer().await;
        client.create_permission(peer).await.expect("CreatePermission");
        echo_through(&client, peer, b"before").await;
        let mut tickets = vec![client.mobility_ticket().expect("a ticket from the Allocate")];
        let mut addrs = vec![client.local_addr().unwrap()];
        for round in 1..=2 {
            // The second move presents the ticket of the first move's answer: the Allocate's no
            // longer opens (the server answers 400 to a retired ticket).
            client.rebind(LOOPBACK.parse().unwrap()).await.unwrap_or_else(|e| panic!("move {round}: {e:?}"));
            echo_through(&client, peer, format!("after move {round}").as_bytes()).await;
            tickets.push(client.mobility_ticket().expect("a ticket after a move"));
            addrs.push(client.local_addr().unwrap());
            assert_eq!(client.relayed_addr(), relayed);
        }
        for round in 1..=2 {
            assert_ne!(tickets[round], tickets[round - 1], "move {round} kept the old ticket");
            assert_ne!(addrs[round], addrs[round - 1], "move {round} kept the old socket");
        }
        assert_eq!(fixture.stats().allocations_moved, 2);
        echo.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_mobility_refuses_and_the_client_stays() {
    bounded(async {
        let fixture = server(false).await;
        // RFC 8016 §3.4: the Allocate asking for mobility draws 405; the client allocates without.
        let client = allocate(&fixture, true).await;
        assert_eq!(client.mobility_ticket(), None);
        let (peer, echo) = udp_echo_peer().await;
        client.create_permission(peer).await.expect("CreatePermission");
        let old = client.local_addr().unwrap();
        let err = client.rebind(LOOPBACK.parse().unwrap()).await.expect_err("a move without mobility");
        assert!(matches!(err, ClientError::MobilityForbidden), "{err:?}");
        assert_eq!(client.local_addr().unwrap(), old);
        echo_through(&client, peer, b"still relayed").await;
        client.refresh(600).await.expect("a Refresh from the old socket");
        assert_eq!(fixture.stats().allocations_moved, 0);

        // A client that did not ask for mobility has nothing to move with.
        let fixture = server(true).await;
        let client = allocate(&fixture, false).await;
        assert_eq!(client.mobility_ticket(), None);
        let err = client.rebind(LOOPBACK.parse().unwrap()).await.expect_err("a move without a ticket");
        assert!(matches!(err, ClientError::NoMobilityTicket), "{err:?}");
        client.create_permission(peer).await.expect("CreatePermission");
        echo_through(&client, peer, b"still relayed").await;
        echo.abort();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_the_server_refuses_leaves_the_client_on_its_old_socket() {
    bounded(async {
        let fixture = server(true).await;
        let client = allocate(&fixture, true).await;
        let (peer, echo) = udp_echo_peer().await;
        client.create_permission(peer).await.expect("CreatePermission");
        echo_through(&client, peer, b"before").await;
        let (old, ticket) = (client.local_addr().unwrap(), client.mobility_ticket());
        // A socket that holds another allocation: the ticket names a different one there, and the
        // server answers 437 (RFC 8656 §8.2) after the new socket's 438.
        let mut other = RawTurn::new(LOOPBACK.parse().unwrap(), fixture.udp, TURN_USER.0, TURN_USER.1).await;
        let allocated = other.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
        assert!(allocated.success, "{allocated:?}");
        let err = client.move_to(other.socket).await.expect_err("a move onto another allocation's 5-tuple");
        assert!(matches!(err, ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. }), "{err:?}");
        assert_eq!(client.local_addr().unwrap(), old);
        assert_eq!(client.mobility_ticket(), ticket);
        assert_eq!(fixture.stats().allocations_moved, 0);
        // Data and requests still go from the old socket.
        echo_through(&client, peer, b"still relayed").await;
        client.refresh(600).await.expect("a Refresh from the old socket");
        // And the ticket still moves it.
        client.rebind(LOOPBACK.parse().unwrap()).await.expect("a move after the refusal");
        echo_through(&client, peer, b"moved").await;
        echo.abort();
    })
    .await;
}
