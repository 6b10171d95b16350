//! DONT-FRAGMENT (RFC 8656 §18.9) on real relay sockets: DF is the allocation's (IP_MTU_DISCOVER),
//! including on a port reserved by EVEN-PORT and taken with RESERVATION-TOKEN (§7.2).
#![cfg(feature = "runtime")]

use std::net::SocketAddr;

use crate::support::{RawTurn, TURN_USER, TurnFixture, bounded};
use switchback::alloc::FiveTuple;
use switchback::proto::stun::{DontFragment, EvenPort, Message, Method, RequestedTransport, ReservationToken};
use switchback::server::Transport;

/// Whether the allocation of `raw` sets DF on its datagrams to peers.
fn dont_fragment(fixture: &TurnFixture, raw: &RawTurn) -> bool {
    let client: SocketAddr = raw.socket.local_addr().unwrap();
    let five = FiveTuple { transport: Transport::Udp, client, server: fixture.udp };
    let allocation = fixture.server.allocations().get(&five).expect("the allocation");
    allocation.socket.dont_fragment().expect("IP_MTU_DISCOVER")
}

#[tokio::test]
async fn dont_fragment_follows_the_allocate_also_on_a_reserved_port() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let new_raw = || RawTurn::new("127.0.0.1:0".parse().unwrap(), fixture.udp, TURN_USER.0, TURN_USER.1);
        let mut first = new_raw().await;
        let answer = first
            .request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add(&EvenPort { reserve_next: true })
            })
            .await;
        assert!(answer.success, "Allocate with EVEN-PORT failed with {}", answer.code);
        assert!(!dont_fragment(&fixture, &first), "no DONT-FRAGMENT: the kernel may fragment");
        let token = Message::parse(&answer.bytes).unwrap().get::<ReservationToken>().expect("a token").0;

        let mut second = new_raw().await;
        let answer = second
            .request(Method::ALLOCATE, &|w| {
                w.add(&RequestedTransport::UDP)?;
                w.add(&ReservationToken(token))?;
                w.add(&DontFragment)
            })
            .await;
        assert!(answer.success, "Allocate with RESERVATION-TOKEN failed with {}", answer.code);
        assert!(dont_fragment(&fixture, &second), "DONT-FRAGMENT on the reserved port's socket");
    })
    .await;
}
