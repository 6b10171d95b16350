//! Revocation end to end, in process: a live allocation whose user is revoked is torn down (by
//! `revoke_now`, or by the driver's once-a-second sweep), its client's Refresh gets 403 (RFC 8656 §7.2:
//! administratively refused) and its data stops, while other users go on; over UDP, TCP and TLS.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{RECV_TIMEOUT, TURN_USER, TurnFixture, bounded, eventually, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::policy::revocation::RevocationList;
use switchback::server::Transport;

const SILENCE: Duration = Duration::from_millis(300);

/// Sends `data` to the echo `peer` and returns what comes back, or `None` after `wait`.
async fn echo(client: &TurnClient, peer: SocketAddr, data: &[u8], wait: Duration) -> Option<Vec<u8>> {
    client.send_to(data, peer).await.expect("send_to");
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(wait, client.recv_from(&mut buf)).await.ok()?.expect("recv_from");
    assert_eq!(from, peer);
    buf.truncate(n);
    Some(buf)
}

fn is_403(r: Result<u32, ClientError>) -> bool {
    matches!(r, Err(ClientError::ErrorResponse { code: 403, .. }))
}

#[tokio::test]
async fn a_revoked_users_allocation_is_torn_down_and_its_refresh_fails() {
    bounded(revoked_allocation_is_torn_down(Transport::Udp)).await;
}

#[tokio::test]
async fn a_revoked_users_tcp_allocation_is_torn_down_and_its_refresh_fails() {
    bounded(revoked_allocation_is_torn_down(Transport::Tcp)).await;
}

#[tokio::test]
async fn a_revoked_users_tls_allocation_is_torn_down_and_its_refresh_fails() {
    bounded(revoked_allocation_is_torn_down(Transport::Tls)).await;
}

/// Bob's allocation (our client over `transport`) is torn down by `revoke_now`; alice, over UDP,
/// goes on.
async fn revoked_allocation_is_torn_down(transport: Transport) {
    let fixture = TurnFixture::start_for(
        transport,
        switchback::server::ServerOptions::default().with(|o| o.allow_loopback_peers = true),
    )
    .await;
    let (peer, echo_task) = udp_echo_peer().await;
    let (username, password) = fixture.rest_credentials("bob");
    let bob = fixture.allocate(transport, Credentials::new(username, password)).await.expect("bob");
    let alice = TurnClient::allocate(fixture.udp, Credentials::new(TURN_USER.0, TURN_USER.1)).await.expect("alice");
    for c in [&bob, &alice] {
        c.create_permission(peer).await.expect("create_permission");
        assert_eq!(echo(c, peer, b"before", RECV_TIMEOUT).await.as_deref(), Some(&b"before"[..]));
    }
    assert_eq!(fixture.server.allocations().len(), 2);

    fixture.server.set_revocations(RevocationList::new(["bob"]));
    assert_eq!(fixture.server.revoke_now(Instant::now()), 1);
    assert_eq!(fixture.server.allocations().len(), 1);
    assert!(is_403(bob.refresh(600).await), "a revoked user's Refresh gets 403");
    assert_eq!(echo(&bob, peer, b"after", SILENCE).await, None, "no data after revocation");
    // A new allocation is refused too, on a fresh connection.
    let (username, password) = fixture.rest_credentials("bob");
    let again = fixture.allocate(transport, Credentials::new(username, password)).await;
    assert!(matches!(again, Err(ClientError::ErrorResponse { code: 403, .. })), "{again:?}");
    assert_eq!(fixture.stats().revoked_allocations, 1);

    // The other user goes on.
    assert_eq!(alice.refresh(600).await.expect("alice refreshes"), 600);
    assert_eq!(echo(&alice, peer, b"still", RECV_TIMEOUT).await.as_deref(), Some(&b"still"[..]));
    echo_task.abort();
}

#[tokio::test]
async fn the_drivers_sweep_tears_a_revoked_allocation_down() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let (peer, echo_task) = udp_echo_peer().await;
        let (username, password) = fixture.rest_credentials("carol");
        let carol = TurnClient::allocate(fixture.udp, Credentials::new(username.clone(), password)).await.unwrap();
        carol.create_permission(peer).await.expect("create_permission");
        assert!(echo(&carol, peer, b"before", RECV_TIMEOUT).await.is_some());

        // Revoke the exact username; no revoke_now: the once-a-second sweep does it.
        fixture.server.set_revocations(RevocationList::new([username.as_str()]));
        eventually("the sweep to tear the allocation down", || fixture.server.allocations().is_empty()).await;
        assert_eq!(echo(&carol, peer, b"after", SILENCE).await, None);
        assert!(is_403(carol.refresh(600).await));
        echo_task.abort();
    })
    .await;
}
