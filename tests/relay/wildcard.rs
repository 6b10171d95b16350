//! A wildcard listener (`listening-ip = 0.0.0.0` or `::`) with TURN on and no `relay-ip`: each
//! datagram's destination address (IP_PKTINFO / IPV6_RECVPKTINFO) is the server side of its
//! 5-tuple, the answer leaves from it, the relay socket opens on it (RFC 8656 §7.2: no relay-ip,
//! so the address the Allocate arrived on) and peer data reaches the client from it too.
#![cfg(feature = "runtime")]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{RECV_TIMEOUT, RawTurn, TURN_USER, bounded, echo_through, udp_echo_peer};
use switchback::client::binding::{encode_request, parse_response};
use switchback::client::turn::{ClientOptions, Credentials, TurnClient};
use switchback::proto::stun::{
    Class, Data, Lifetime, Message, Method, RequestedTransport, TransactionId, XorPeerAddress, XorRelayedAddress,
};
use switchback::server::Transport;

/// A server on `listening` (wildcards), port 0, TURN on (user alice/pw), no relay-ip, loopback
/// peers allowed; its UDP listeners.
async fn wildcard_server(
    listening: &[&str],
) -> (Arc<switchback::io::TurnServer>, switchback::io::Running, Vec<SocketAddr>) {
    let config = switchback::config::Config {
        listening_ip: listening.iter().map(|ip| ip.parse().unwrap()).collect(),
        listening_port: 0,
        no_tls: true,
        allow_loopback_peers: true,
        ..switchback::config::Config::default()
    };
    let mut auth = switchback::auth::AuthConfig::new(crate::support::TURN_REALM);
    auth.users.insert(TURN_USER.0.into(), switchback::auth::StaticCredential::Password(TURN_USER.1.into()));
    let server = switchback::io::UdpRelay::server(
        config.server_options(),
        Some(switchback::auth::Authenticator::new(auth, [7; 32])),
    );
    let running = switchback::io::bind(&config, server.clone()).await.expect("bind the wildcard listeners");
    let udp: Vec<SocketAddr> =
        running.local_addrs().iter().filter(|l| l.transport == Transport::Udp).map(|l| l.addr).collect();
    assert!(udp.iter().all(|a| a.ip().is_unspecified()), "{udp:?}");
    (server, running, udp)
}

/// `ip` at the listener's port.
fn at(ip: &str, listener: SocketAddr) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), listener.port())
}

/// A Binding from the unconnected `socket` to `to`; the answer's source address.
async fn binding_answer_from(socket: &tokio::net::UdpSocket, to: SocketAddr) -> SocketAddr {
    let tid = TransactionId([to.ip().is_ipv4() as u8 + 1; 12]);
    let mut buf = [0u8; 1500];
    let n = encode_request(tid, &mut buf).unwrap();
    socket.send_to(&buf[..n], to).await.unwrap();
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    loop {
        let (n, from) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no Binding answer to a request sent to {to}"))
            .unwrap();
        if let Some(mapped) = parse_response(&buf[..n], tid) {
            assert_eq!(mapped.unwrap(), socket.local_addr().unwrap());
            return from;
        }
    }
}

#[tokio::test]
async fn binding_is_answered_from_the_address_it_was_sent_to() {
    bounded(async {
        let (_server, running, udp) = wildcard_server(&["0.0.0.0"]).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for ip in ["127.0.0.2", "127.0.0.3", "127.0.0.1"] {
            let to = at(ip, udp[0]);
            assert_eq!(binding_answer_from(&client, to).await, to, "the answer must leave from {to}");
        }
        running.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn an_allocation_relays_on_the_address_the_allocate_arrived_on() {
    bounded(async {
        let (_server, running, udp) = wildcard_server(&["0.0.0.0"]).await;
        let server = at("127.0.0.2", udp[0]);
        // Our client's UDP socket is connected to 127.0.0.2: answers from elsewhere never reach it.
        let client =
            TurnClient::allocate_with(server, Credentials::new(TURN_USER.0, TURN_USER.1), ClientOptions::default())
                .await
                .expect("an allocation through 127.0.0.2");
        assert_eq!(client.relayed_addr().ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        let (peer, _echo) = udp_echo_peer().await;
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"through 127.0.0.2").await;
        running.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_tcp_allocation_relays_on_the_address_the_client_connected_to() {
    bounded(async {
        let (_server, running, udp) = wildcard_server(&["0.0.0.0"]).await;
        let tcp = running.local_addr(Transport::Tcp).expect("a TCP listener");
        assert!(tcp.ip().is_unspecified() && tcp.port() != 0, "{tcp} {udp:?}");
        let options = ClientOptions::default().with(|o| o.transport = switchback::client::turn::TurnTransport::Tcp);
        let client =
            TurnClient::allocate_with(at("127.0.0.2", tcp), Credentials::new(TURN_USER.0, TURN_USER.1), options)
                .await
                .expect("an allocation over TCP through 127.0.0.2");
        assert_eq!(client.relayed_addr().ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        let (peer, _echo) = udp_echo_peer().await;
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"tcp through 127.0.0.2").await;
        running.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn peer_data_reaches_a_raw_client_from_the_address_it_allocated_through() {
    bounded(async {
        let (_server, running, udp) = wildcard_server(&["0.0.0.0"]).await;
        let server = at("127.0.0.3", udp[0]);
        let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), server, TURN_USER.0, TURN_USER.1).await;
        let answer = raw
            .request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add(&Lifetime(600))
            })
            .await;
        assert!(answer.success, "Allocate through 127.0.0.3 failed with {}", answer.code);
        let relayed = Message::parse(&answer.bytes).unwrap().get::<XorRelayedAddress>().unwrap().0;
        assert_eq!(relayed.ip(), "127.0.0.3".parse::<IpAddr>().unwrap());

        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let permission = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer_addr))).await;
        assert!(permission.success, "CreatePermission failed with {}", permission.code);

        // Client → peer: a Send indication leaves the relayed address.
        let send = crate::support::send_indication(peer_addr, b"ping");
        let mut buf = vec![0u8; 2048];
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        let got = loop {
            raw.socket.send_to(&send, server).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(200), peer.recv_from(&mut buf)).await {
                Ok(r) => break r.unwrap(),
                Err(_) => assert!(tokio::time::Instant::now() < deadline, "no datagram at the peer"),
            }
        };
        assert_eq!((&buf[..got.0], got.1), (&b"ping"[..], relayed));

        // Peer → client: a burst of equal-sized datagrams (one recvmmsg, sent as a GSO run when
        // the kernel batches them) and a lone bigger one, each a Data indication from 127.0.0.3.
        const BURST: usize = 16;
        for i in 0..BURST {
            peer.send_to(&[i as u8; 100], relayed).await.unwrap();
        }
        peer.send_to(&[0xee; 300], relayed).await.unwrap();
        let mut seen = 0;
        while seen < BURST + 1 {
            let (n, from) = tokio::time::timeout(RECV_TIMEOUT, raw.socket.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{seen} of {} peer datagrams reached the client", BURST + 1))
                .unwrap();
            assert_eq!(from, server, "peer data must leave from the address the client allocated through");
            let m = Message::parse(&buf[..n]).expect("a Data indication");
            assert_eq!((m.message_type().method, m.message_type().class), (Method::DATA, Class::Indication));
            assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer_addr);
            let data = m.get::<Data>().unwrap().0;
            assert!(data.len() == 100 || data == [0xee; 300], "{} bytes", data.len());
            seen += 1;
        }
        running.shutdown().await;
    })
    .await;
}

/// `::` (bound IPV6_V6ONLY, as every IPv6 listener is) next to `0.0.0.0`: ::1 is answered from
/// ::1 and relays on ::1; IPv4 still works on the IPv4 wildcard.
#[tokio::test]
async fn the_ipv6_wildcard_answers_from_ipv6_loopback_next_to_the_ipv4_one() {
    if !crate::support::tools::require_ipv6_loopback() {
        return;
    }
    bounded(async {
        let (_server, running, udp) = wildcard_server(&["0.0.0.0", "::"]).await;
        let v4 = *udp.iter().find(|a| a.is_ipv4()).expect("an IPv4 listener");
        let v6 = *udp.iter().find(|a| a.is_ipv6()).expect("an IPv6 listener");
        let client6 = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
        assert_eq!(binding_answer_from(&client6, at("::1", v6)).await, at("::1", v6));
        let client4 = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(binding_answer_from(&client4, at("127.0.0.2", v4)).await, at("127.0.0.2", v4));

        let options = ClientOptions::default().with(|o| o.family = Some(switchback::proto::stun::AddressFamily::V6));
        let client = TurnClient::allocate_with(at("::1", v6), Credentials::new(TURN_USER.0, TURN_USER.1), options)
            .await
            .expect("an IPv6 allocation through ::1");
        assert_eq!(client.relayed_addr().ip(), "::1".parse::<IpAddr>().unwrap());
        let peer = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        client.create_permission(peer_addr).await.unwrap();
        let mut buf = [0u8; 64];
        // The first datagram may be dropped on a socket tokio has not yet seen writable: resend.
        let mut got = None;
        for _ in 0..5 {
            client.send_to(b"v6", peer_addr).await.unwrap();
            if let Ok(r) = tokio::time::timeout(Duration::from_secs(1), peer.recv_from(&mut buf)).await {
                got = Some(r.unwrap());
                break;
            }
        }
        let (n, from) = got.expect("a datagram at the IPv6 peer");
        assert_eq!((&buf[..n], from), (&b"v6"[..], client.relayed_addr()));
        peer.send_to(b"back", from).await.unwrap();
        let (n, from) = tokio::time::timeout(RECV_TIMEOUT, client.recv_from(&mut buf)).await.unwrap().unwrap();
        assert_eq!((&buf[..n], from), (&b"back"[..], peer_addr));
        running.shutdown().await;
    })
    .await;
}
