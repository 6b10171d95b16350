//! Dual allocations on loopback (RFC 8656 §7.2 ADDITIONAL-ADDRESS-FAMILY, RFC 6156): a server
//! listening on 127.0.0.1 and ::1 grants one allocation an IPv4 and an IPv6 relayed address, and
//! echo peers on 127.0.0.1 and ::1 are each reached through the relayed address of their family
//! (they see it as the source). Also the draft code point 0x8032 coturn 4.6.1 still sends, and
//! `turnutils_uclient -Z` (dual allocation) against the in-process server.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::tools::{require_all, require_ipv6_loopback};
use crate::support::{EchoPeer, RawTurn, dual_stack_server, run_with_timeout};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    AdditionalAddressFamily, AddressFamily, ChannelNumber, Class, Data, LegacyAdditionalAddressFamily, Lifetime,
    Message, MessageType, Method, RequestedAddressFamily, RequestedTransport, XorPeerAddress, XorRelayedAddress,
};

/// A UDP peer on `bind` that answers every datagram with the datagram followed by `|` and the
/// sender's address as it saw it.
async fn reporting_echo_peer(bind: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind(bind).await.expect("bind the echo peer");
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut answer = buf[..n].to_vec();
            answer.extend_from_slice(format!("|{from}").as_bytes());
            let _ = socket.send_to(&answer, from).await;
        }
    });
    (addr, task)
}

/// The next datagram from the server to `raw` that is not a STUN response: a Data indication
/// (peer, data) or ChannelData (channel, data).
async fn next_data(raw: &RawTurn) -> Received {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::time::timeout(Duration::from_secs(5), raw.socket.recv_from(&mut buf))
            .await
            .expect("peer data within 5 s")
            .unwrap();
        assert_eq!(from, raw.server);
        let bytes = &buf[..n];
        if let Ok(cd) = ChannelData::parse(bytes) {
            return Received::Channel(cd.channel, cd.data.to_vec());
        }
        let m = Message::parse(bytes).expect("STUN or ChannelData");
        if m.message_type() == MessageType::new(Method::DATA, Class::Indication) {
            return Received::Indication(m.get::<XorPeerAddress>().unwrap().0, m.get::<Data>().unwrap().0.to_vec());
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Received {
    Indication(SocketAddr, Vec<u8>),
    Channel(u16, Vec<u8>),
}

/// Allocates with ADDITIONAL-ADDRESS-FAMILY (or its draft code point with `legacy`), expects two relayed addresses (IPv4 first),
/// and relays to both echo peers through them.
async fn dual_relays_to_both_families(legacy: bool) {
    if !require_ipv6_loopback() {
        return;
    }
    let (_server, running, v4_listener, _v6_listener) = dual_stack_server().await;
    let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), v4_listener, "alice", "pw").await;
    let answer = raw
        .request(Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            if legacy {
                w.add(&LegacyAdditionalAddressFamily(AddressFamily::V6))
            } else {
                w.add(&AdditionalAddressFamily(AddressFamily::V6))
            }
        })
        .await;
    assert!(answer.success, "dual Allocate failed with {}", answer.code);
    let m = Message::parse(&answer.bytes).unwrap();
    let relayed: Vec<SocketAddr> = m.get_all::<XorRelayedAddress>().map(|a| a.unwrap().0).collect();
    assert_eq!(relayed.len(), 2, "{relayed:?}");
    assert_eq!(relayed[0].ip().to_string(), "127.0.0.1");
    assert_eq!(relayed[1].ip().to_string(), "::1");

    let (p4, _e4) = reporting_echo_peer("127.0.0.1:0").await;
    let (p6, _e6) = reporting_echo_peer("[::1]:0").await;
    let permission = raw
        .request(Method::CREATE_PERMISSION, &|w| {
            w.add(&XorPeerAddress(p4))?;
            w.add(&XorPeerAddress(p6))
        })
        .await;
    assert!(permission.success, "CreatePermission failed with {}", permission.code);

    // Send indications: each peer answers through the relay of its family.
    for (peer, via) in [(p4, relayed[0]), (p6, relayed[1]), (p6, relayed[1]), (p4, relayed[0])] {
        raw.socket.send_to(&crate::support::send_indication(peer, b"hello"), raw.server).await.unwrap();
        let expected = format!("hello|{via}").into_bytes();
        assert_eq!(next_data(&raw).await, Received::Indication(peer, expected));
    }
    // A channel to the IPv6 peer, one to the IPv4 peer.
    for (number, peer, via) in [(0x4001u16, p6, relayed[1]), (0x4002, p4, relayed[0])] {
        let bound = raw
            .request(Method::CHANNEL_BIND, &|w| {
                w.add(&ChannelNumber(number))?;
                w.add(&XorPeerAddress(peer))
            })
            .await;
        assert!(bound.success, "ChannelBind failed with {}", bound.code);
        let mut cd = vec![0u8; 64];
        let n = ChannelData { channel: number, data: b"chan" }.encode(false, &mut cd).unwrap();
        raw.socket.send_to(&cd[..n], raw.server).await.unwrap();
        assert_eq!(next_data(&raw).await, Received::Channel(number, format!("chan|{via}").into_bytes()));
    }
    // RFC 8656 §8: Refresh 0 with REQUESTED-ADDRESS-FAMILY IPv6 deletes the IPv6 relay alone.
    let deleted = raw
        .request(Method::REFRESH, &|w| {
            w.add(&Lifetime(0))?;
            w.add(&RequestedAddressFamily(AddressFamily::V6))
        })
        .await;
    assert!(deleted.success, "Refresh failed with {}", deleted.code);
    let refused = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(p6))).await;
    assert_eq!(refused.code, 443);
    // Its port is free at once, not when the allocation ends (the IPv4 relay is still bound).
    crate::support::eventually("the deleted family's relay port is free", || {
        std::net::UdpSocket::bind(relayed[1]).is_ok()
    })
    .await;
    assert!(std::net::UdpSocket::bind(relayed[0]).is_err(), "the IPv4 relay {} stays bound", relayed[0]);
    raw.socket.send_to(&crate::support::send_indication(p4, b"still"), raw.server).await.unwrap();
    // (The IPv4 peer has channel 0x4002 by now.)
    let expected = format!("still|{}", relayed[0]).into_bytes();
    assert_eq!(next_data(&raw).await, Received::Channel(0x4002, expected));
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_allocation_relays_to_ipv4_and_ipv6_peers_through_their_own_relay() {
    dual_relays_to_both_families(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_draft_code_point_0x8032_gets_a_dual_allocation_too() {
    dual_relays_to_both_families(true).await;
}

// ---------------------------------------------------------------------------------------------------
// turnutils_uclient -Z

/// The number after `key` in the last line of `stdout` holding it.
fn last_number(stdout: &str, key: &str) -> Option<u64> {
    let line = stdout.lines().rev().find(|l| l.contains(key))?;
    let rest = &line[line.find(key)? + key.len()..];
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// `turnutils_uclient -Z` through the in-process server to a `turnutils_peer` on `peer_ip`: every
/// message echoed, none lost, and the allocations were dual ones.
async fn uclient_dual(peer_ip: &str) {
    uclient_run("-Z", peer_ip).await;
}

/// `turnutils_uclient FLAG` (`-Z` dual allocation, `-x` IPv6 relayed address) through the
/// in-process server (reached over IPv4) to a `turnutils_peer` on `peer_ip`.
async fn uclient_run(flag: &str, peer_ip: &str) {
    if !require_all(&["turnutils_uclient", "turnutils_peer"]) || !require_ipv6_loopback() {
        return;
    }
    let (server, running, v4_listener, _) = dual_stack_server().await;
    let peer = EchoPeer::start_on(peer_ip);
    let port = peer.port;
    let (messages, clients) = (50u64, 2u64);
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(["-v", flag, "-u", "alice", "-w", "pw", "-e", peer_ip, "-r", &port.to_string()])
        .args(["-n", &messages.to_string(), "-m", &clients.to_string(), "-l", "100"])
        .args(["-p", &v4_listener.port().to_string(), &v4_listener.ip().to_string()]);
    let output = tokio::task::spawn_blocking(move || run_with_timeout(&mut cmd, Duration::from_secs(30)))
        .await
        .expect("uclient thread");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "uclient failed:\n{stdout}\n{stderr}");
    let sent = last_number(&stdout, "tot_send_msgs=");
    let received = last_number(&stdout, "tot_recv_msgs=");
    let lost = last_number(&stdout, "Total lost packets ");
    let expected = Some(messages * clients);
    assert_eq!((sent, received, lost), (expected, expected, Some(0)), "{stdout}\n{stderr}");
    // uclient sends 0x8032 and gets both relayed addresses; it prints the IPv6 one only when the
    // peer is IPv6 (with an IPv4 peer it prints the IPv4 one alone).
    let v4 = stdout.lines().filter(|l| l.contains("IPv4. Received relay addr: 127.0.0.1:")).count();
    let v6 = stdout.lines().filter(|l| l.contains("IPv6. Received relay addr: ::1:")).count();
    if flag == "-x" {
        assert!(v6 >= clients as usize && v4 == 0, "not IPv6 relayed addresses:\n{stdout}");
    } else {
        assert!(v4 >= clients as usize, "no relayed addresses:\n{stdout}");
        if peer_ip.contains(':') {
            assert_eq!(v6, v4, "not dual allocations:\n{stdout}");
        }
    }
    let stats = server.stats().snapshot();
    assert!(stats.allocations_created >= clients, "{stats:?}");
    // Nothing uclient sent was malformed or refused (late data after its Refresh 0 may find no
    // allocation).
    assert_eq!(stats.dropped() - stats.dropped_no_allocation, 0, "{stats:?}");
    assert!(stats.relayed_to_peer >= messages * clients, "{stats:?}");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_dual_allocation_to_an_ipv4_peer() {
    uclient_dual("127.0.0.1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_dual_allocation_to_an_ipv6_peer() {
    uclient_dual("::1").await;
}

/// `turnutils_uclient -x`: an IPv6 relayed address (REQUESTED-ADDRESS-FAMILY IPv6) asked for over
/// IPv4, relaying to an IPv6 peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_ipv6_relaying() {
    uclient_run("-x", "::1").await;
}
