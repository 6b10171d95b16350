//! The embedder's peer-policy and relay-address hooks through the drivers (issue #18): a relay
//! hook puts two tenants on two loopback addresses (127.0.0.2 and 127.0.0.3, which Linux answers
//! without configuration) and data relays through both; a peer hook refuses one loopback peer port
//! with 403 on CreatePermission. Loopback only.
#![cfg(feature = "runtime")]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{RawTurn, TurnFixture, bounded};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::proto::stun::{Method, RequestedTransport, XorPeerAddress};
use switchback::server::{PeerContext, PeerDecision, RelayChoice, RelayContext, Transport};
use tokio::net::UdpSocket;

const STEP: Duration = Duration::from_secs(1);

fn creds(fixture: &TurnFixture, user: &str) -> Credentials {
    let (username, password) = fixture.rest_credentials(user);
    Credentials::new(username, password)
}

/// Sends `message` from `client` to `peer` until it arrives (the relay driver may drop the first
/// datagram after an Allocate, see `support::echo_through`), at most 5 tries; returns where it
/// came from.
async fn deliver(client: &TurnClient, peer: &UdpSocket, message: &[u8]) -> SocketAddr {
    let mut buf = [0u8; 64];
    for _ in 0..5 {
        client.send_to(message, peer.local_addr().unwrap()).await.unwrap();
        if let Ok(received) = tokio::time::timeout(STEP, peer.recv_from(&mut buf)).await {
            let (n, from) = received.unwrap();
            assert_eq!(&buf[..n], message);
            return from;
        }
    }
    panic!("{} bytes never reached the peer", message.len());
}

#[tokio::test]
async fn the_relay_hook_puts_each_tenant_on_its_own_loopback_address() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        fixture.server.set_relay_address_hook(Some(Arc::new(|ctx: &RelayContext<'_>| {
            let ip = match ctx.user {
                "tenant-a" => [127, 0, 0, 2],
                "tenant-b" => [127, 0, 0, 3],
                _ => return None,
            };
            Some(RelayChoice::new(IpAddr::from(ip), 49152..=65535))
        })));
        let a = fixture.allocate(Transport::Udp, creds(&fixture, "tenant-a")).await.unwrap();
        let b = fixture.allocate(Transport::Udp, creds(&fixture, "tenant-b")).await.unwrap();
        let other = fixture.allocate(Transport::Udp, creds(&fixture, "carol")).await.unwrap();
        assert_eq!(a.relayed_addr().ip(), IpAddr::from([127, 0, 0, 2]));
        assert_eq!(b.relayed_addr().ip(), IpAddr::from([127, 0, 0, 3]));
        assert_eq!(other.relayed_addr().ip(), IpAddr::from([127, 0, 0, 1]), "the default address");

        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for (i, client) in [&a, &b].into_iter().enumerate() {
            client.create_permission(peer.local_addr().unwrap()).await.unwrap();
            let message = format!("tenant {i}");
            let from = deliver(client, &peer, message.as_bytes()).await;
            assert_eq!(from, client.relayed_addr(), "sent from the tenant's relayed address");
            peer.send_to(b"back", from).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, sender) = tokio::time::timeout(STEP * 5, client.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!((&buf[..n], sender), (&b"back"[..], peer.local_addr().unwrap()));
        }
        assert_eq!(fixture.stats().relay_hook_ignored, 0);
    })
    .await;
}

#[tokio::test]
async fn the_peer_hook_refuses_one_loopback_port_with_403() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        // Nothing listens there and nothing is sent there: only the CreatePermission names it.
        let refused: SocketAddr = "127.0.0.1:9".parse().unwrap();
        fixture.server.set_peer_hook(Some(Arc::new(move |ctx: &PeerContext<'_>| {
            if ctx.peer == refused { PeerDecision::Deny } else { PeerDecision::Allow }
        })));
        let (username, password) = fixture.rest_credentials("tenant-a");
        let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), fixture.udp, &username, &password).await;
        let allocated = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
        assert!(allocated.success, "Allocate failed with {}", allocated.code);

        let denied = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(refused))).await;
        assert_eq!((denied.success, denied.code), (false, 403));
        assert_eq!(fixture.stats().peer_denied, 1);
        // Another port of the same loopback IP: the built-in policy and the hook allow it.
        let other: SocketAddr = "127.0.0.1:10".parse().unwrap();
        let allowed = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(other))).await;
        assert!(allowed.success, "CreatePermission failed with {}", allowed.code);
        assert_eq!(fixture.stats().peer_denied, 1);
    })
    .await;
}
