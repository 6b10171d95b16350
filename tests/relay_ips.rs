//! Several relay addresses of one family (`--relay-ip` twice): the daemon spreads allocations over
//! 127.0.0.1 and 127.0.0.2, and data relays through either. Loopback only.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use common::Daemon;
use switchback::client::turn::{Credentials, TurnClient};
use tokio::net::UdpSocket;

const STEP: Duration = Duration::from_secs(5);

#[tokio::test]
async fn allocations_land_on_both_relay_ips_and_relay_data() {
    #[rustfmt::skip]
    let daemon = Daemon::start(&[
        "--listening-port", "0", "--no-tcp", "--no-tls", "--realm", "test.realm", "--user", "bob:pw",
        "--relay-ip", "127.0.0.1", "--relay-ip", "127.0.0.2", "--allow-loopback-peers",
    ]);
    let server = daemon.udp[0];
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(TurnClient::allocate(server, Credentials::new("bob", "pw")).await.unwrap());
    }
    let ips: Vec<IpAddr> = clients.iter().map(|c| c.relayed_addr().ip()).collect();
    let distinct: BTreeSet<IpAddr> = ips.iter().copied().collect();
    let want: BTreeSet<IpAddr> = ["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()].into();
    assert_eq!(distinct, want, "relayed addresses {ips:?}");
    // Data leaves from, and comes back to, each relayed address.
    for (i, client) in clients.iter().enumerate() {
        client.create_permission(peer_addr).await.unwrap();
        let message = format!("hello {i}");
        client.send_to(message.as_bytes(), peer_addr).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = tokio::time::timeout(STEP, peer.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], message.as_bytes());
        assert_eq!(from, client.relayed_addr(), "sent from the relayed address");
        peer.send_to(&buf[..n], from).await.unwrap();
        let (n, _) = tokio::time::timeout(STEP, client.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], message.as_bytes());
    }
}
