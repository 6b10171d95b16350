//! RFC 8656 §11.5 end to end over loopback: a datagram relayed to a closed UDP port draws an ICMP
//! port unreachable (type 3, code 3), which the server reads from the relay socket's error queue
//! (IP_RECVERR) and sends the client as a Data indication with ICMP and XOR-PEER-ADDRESS.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::{RawTurn, TURN_USER, TurnFixture, bounded, send_indication};
use switchback::proto::stun::{Class, Data, Icmp, Message, MessageType, Method, RequestedTransport, XorPeerAddress};

/// Whether this kernel takes IP_RECVERR on a UDP socket; prints SKIP when not (a failure under
/// CI=true).
fn kernel_takes_ip_recverr() -> bool {
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a probe");
    match nix::sys::socket::setsockopt(&probe, nix::sys::socket::sockopt::Ipv4RecvErr, &true) {
        Ok(()) => true,
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "IP_RECVERR refused under CI: {e}");
            eprintln!("SKIP icmp_port_unreachable_reaches_the_client: IP_RECVERR refused ({e})");
            false
        }
    }
}

/// A loopback UDP port nothing listens on (bound, noted, closed).
fn closed_port() -> SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("local_addr")
}

/// The first Data indication with an ICMP attribute to reach `raw` before `deadline`, re-sending
/// `probe` every 200 ms meanwhile (a datagram, or its ICMP error, may be lost).
async fn icmp_indication(raw: &RawTurn, probe: &[u8], deadline: tokio::time::Instant) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 2048];
    while tokio::time::Instant::now() < deadline {
        raw.socket.send_to(probe, raw.server).await.expect("send");
        let until = (tokio::time::Instant::now() + Duration::from_millis(200)).min(deadline);
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(until, raw.socket.recv_from(&mut buf)).await {
            let Ok(m) = Message::parse(&buf[..n]) else { continue };
            if m.message_type() == MessageType::new(Method::DATA, Class::Indication) && m.has::<Icmp>() {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

#[tokio::test]
async fn icmp_port_unreachable_reaches_the_client() {
    if !kernel_takes_ip_recverr() {
        return;
    }
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), fixture.udp, TURN_USER.0, TURN_USER.1).await;
        let allocated = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
        assert!(allocated.success, "Allocate failed with {}", allocated.code);
        let peer = closed_port();
        let permitted = raw.request(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).await;
        assert!(permitted.success, "CreatePermission failed with {}", permitted.code);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let bytes = icmp_indication(&raw, &send_indication(peer, b"anyone?"), deadline)
            .await
            .expect("a Data indication with ICMP within 5 s");
        let m = Message::parse(&bytes).unwrap();
        assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer);
        assert_eq!(m.get::<Icmp>().unwrap(), Icmp { icmp_type: 3, icmp_code: 3, error_data: 0 });
        assert!(!m.has::<Data>(), "RFC 8656 §11.5: no DATA");
        assert!(fixture.stats().icmp_relayed >= 1);
    })
    .await;
}
