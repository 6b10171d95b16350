//! IPv6 on loopback (RFC 6156 / RFC 8656): a client reaching the server over ::1 gets an IPv4
//! relayed address by default (RFC 8656 §7.2) from the server's own IPv4 address, and relays to an
//! IPv4 peer through it.
#![cfg(feature = "runtime")]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use switchback::client::turn::{Credentials, TurnClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_ipv6_relays_through_a_dual_stack_listener() {
    if !crate::support::tools::require_ipv6_loopback() {
        return;
    }
    let (_server, running, _, v6) = crate::support::dual_stack_server().await;

    let client = TurnClient::allocate(v6, Credentials::new("alice", "pw")).await.unwrap();
    assert!(client.mapped_addr().is_ipv6(), "the server sees us over IPv6: {}", client.mapped_addr());
    assert_eq!(client.relayed_addr().ip(), "127.0.0.1".parse::<IpAddr>().unwrap());

    let (peer, _echo) = crate::support::udp_echo_peer().await;
    client.create_permission(peer).await.unwrap();
    for i in 0..10u8 {
        client.send_to(&[i; 32], peer).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from): (usize, SocketAddr) =
            tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!((&buf[..n], from), (&[i; 32][..], peer));
    }
    running.shutdown().await;
}
