//! IPv6 on loopback (RFC 6156 / RFC 8656): a client reaching the server over ::1 gets an IPv4
//! relayed address by default (RFC 8656 §7.2) from the server's own IPv4 address, and relays to an
//! IPv4 peer through it.
#![cfg(feature = "runtime")]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::config::Config;
use switchback::io::{self, UdpRelay};
use switchback::server::Transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_ipv6_relays_through_a_dual_stack_listener() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        assert!(std::env::var("CI").is_err(), "IPv6 loopback is needed under CI");
        return;
    }
    let config = Config {
        listening_ip: vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()],
        listening_port: 0,
        no_tls: true,
        allow_loopback_peers: true,
        ..Config::default()
    };
    let mut auth = AuthConfig::new("test.realm");
    auth.users.insert("alice".into(), StaticCredential::Password("pw".into()));
    let server = UdpRelay::server(config.server_options(), Some(Authenticator::new(auth, [3; 32])));
    let running = io::bind(&config, server.clone()).await.unwrap();
    let v6 = running
        .local_addrs()
        .iter()
        .find(|l| l.transport == Transport::Udp && l.addr.is_ipv6())
        .map(|l| l.addr)
        .expect("a UDP listener on ::1");

    let client = TurnClient::allocate(v6, Credentials::new("alice", "pw")).await.unwrap();
    assert!(client.mapped_addr().is_ipv6(), "the server sees us over IPv6: {}", client.mapped_addr());
    assert_eq!(client.relayed_addr().ip(), "127.0.0.1".parse::<IpAddr>().unwrap());

    let (peer, _echo) = common::udp_echo_peer().await;
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
