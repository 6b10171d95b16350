//! Several relay addresses of one family (`--relay-ip` twice): the daemon spreads allocations over
//! 127.0.0.1 and 127.0.0.2, and data relays through either. Loopback only.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use crate::support::Daemon;
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

/// Two private addresses behind 1:1 NAT, one `-X PUBLIC/PRIVATE` each: each allocation is told the
/// public address of the private one its socket is bound on. (Nothing is sent to the public
/// addresses: they only appear in XOR-RELAYED-ADDRESS.)
#[tokio::test]
async fn each_relay_ip_is_told_its_own_external_ip() {
    #[rustfmt::skip]
    let daemon = Daemon::start(&[
        "--listening-port", "0", "--no-tcp", "--no-tls", "--realm", "test.realm", "--user", "bob:pw",
        "--relay-ip", "127.0.0.1", "--relay-ip", "127.0.0.2",
        "-X", "198.51.100.1/127.0.0.1", "-X", "198.51.100.2/127.0.0.2",
    ]);
    let mut told = BTreeSet::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = TurnClient::allocate(daemon.udp[0], Credentials::new("bob", "pw")).await.unwrap();
        told.insert(client.relayed_addr().ip());
        clients.push(client);
    }
    let want: BTreeSet<IpAddr> = ["198.51.100.1".parse().unwrap(), "198.51.100.2".parse().unwrap()].into();
    assert_eq!(told, want);
}

/// `switchback credentials` prints iceServers URLs with the external address, as clients are told
/// in XOR-RELAYED-ADDRESS, not the private listening address.
#[test]
fn credentials_urls_use_the_external_ip() {
    let file = crate::support::TempFile::new(
        "nat.toml",
        "listening-ip = [\"127.0.0.1\"]\nexternal-ip = \"198.51.100.1/127.0.0.1\"\nstatic-auth-secret = [\"s\"]\n",
    );
    let out = crate::support::run_with_timeout(
        std::process::Command::new(env!("CARGO_BIN_EXE_switchback")).args([
            "credentials",
            "-c",
            file.as_str(),
            "--user",
            "u",
        ]),
        crate::support::PROCESS_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"turn:198.51.100.1:3478?transport=udp\""), "{stdout}");
    assert!(!stdout.contains("127.0.0.1"), "{stdout}");
}
