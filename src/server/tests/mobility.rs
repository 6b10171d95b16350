//! RFC 8016 mobility: MOBILITY-TICKET in Allocate and Refresh, and an allocation moving to a new
//! 5-tuple.

use super::*;

fn mobile() -> ServerOptions {
    ServerOptions { mobility: true, ..Harness::default_options() }
}

/// An Allocate with an empty MOBILITY-TICKET by the harness client: credentials, relayed address
/// and the ticket.
fn allocate_mobile(h: &mut Harness) -> (Client, SocketAddr, Vec<u8>) {
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&MobilityTicket(&[])).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let ticket = m.get::<MobilityTicket>().expect("a ticket").0.to_vec();
    (c, m.get::<XorRelayedAddress>().unwrap().0, ticket)
}

/// The client moves to `to` (a new 5-tuple): its nonce was bound to the old source address, so
/// it takes a fresh one (the 401 round trip), keeping its credentials.
fn move_to(h: &mut Harness, c: &Client, to: &str) -> Client {
    h.client = addr(to);
    let fresh = h.login("bob");
    Client { nonce: fresh.nonce, ..c.clone() }
}

fn refresh_with(h: &mut Harness, c: &Client, ticket: &[u8]) -> Vec<u8> {
    h.send(c, Method::REFRESH, |w| w.add(&MobilityTicket(ticket)).unwrap())
}

#[test]
fn the_ticket_is_32_bytes_without_a_zero_byte_and_differs_each_time() {
    let mut h = Harness::new(mobile());
    let mut seen = Vec::new();
    for port in 40000..40008 {
        h.client = SocketAddr::new(h.client.ip(), port);
        let (_, _, ticket) = allocate_mobile(&mut h);
        assert_eq!(ticket.len(), 32);
        assert!(!ticket.contains(&0), "{ticket:?}");
        assert!(!seen.contains(&ticket));
        seen.push(ticket);
    }
}

#[test]
fn a_refresh_from_a_new_5_tuple_with_the_ticket_moves_the_allocation() {
    let mut h = Harness::new(mobile());
    let (c, relayed, ticket) = allocate_mobile(&mut h);
    let peer = addr("127.0.0.1:9000");
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap())), None);
    let old = h.client;
    let c = move_to(&mut h, &c, "127.0.0.1:41000");
    let resp = refresh_with(&mut h, &c, &ticket);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let fresh = m.get::<MobilityTicket>().expect("a fresh ticket").0.to_vec();
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, ticket);
    // The table has it under the new 5-tuple alone, same relayed address; the driver restarted it.
    assert_eq!(h.server.allocations().len(), 1);
    let five = FiveTuple { transport: Transport::Udp, client: h.client, server: h.local };
    let moved = h.server.allocations().get(&five).expect("moved");
    assert_eq!(moved.info().five_tuple, five);
    assert_eq!(moved.info().advertised_addr, relayed);
    assert_eq!(h.driver.started.lock().unwrap().len(), 2);
    assert_eq!(h.server.stats().snapshot().allocations_moved, 1);
    // The permission came along: the peer's data now reaches the new 5-tuple.
    assert!(h.peer_sends(peer, b"hi").is_some());
    // The old 5-tuple has no allocation any more.
    let c = move_to(&mut h, &c, &old.to_string());
    assert!(h.peer_sends(peer, b"hi").is_none());
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |_| {})), Some(437));
    // The retired ticket moves nothing; the fresh one does.
    let c = move_to(&mut h, &c, "127.0.0.1:42000");
    assert_eq!(error_code(&refresh_with(&mut h, &c, &ticket)), Some(400));
    assert_eq!(error_code(&refresh_with(&mut h, &c, &fresh)), None);
    assert_eq!(h.server.allocations().len(), 1);
    assert!(h.peer_sends(peer, b"hi").is_some());
}

#[test]
fn a_retransmitted_moving_refresh_gets_the_same_answer() {
    let mut h = Harness::new(mobile());
    let (c, _, ticket) = allocate_mobile(&mut h);
    let c = move_to(&mut h, &c, "127.0.0.1:41000");
    let tid = h.next_tid();
    let req = request(Method::REFRESH, tid, Some((&c.user, &c.pass, &c.nonce)), |w| {
        w.add(&MobilityTicket(&ticket)).unwrap();
    });
    let (_, first) = h.feed(&req);
    let (_, again) = h.feed(&req);
    assert_eq!(error_code(&first), None);
    assert_eq!(first, again);
}

#[test]
fn forged_or_altered_tickets_are_refused_with_400() {
    let mut h = Harness::new(mobile());
    let (c, _, ticket) = allocate_mobile(&mut h);
    let old = h.client;
    let c = move_to(&mut h, &c, "127.0.0.1:41000");
    let mut altered = ticket.clone();
    altered[13] ^= 1;
    assert_eq!(error_code(&refresh_with(&mut h, &c, &altered)), Some(400));
    assert_eq!(error_code(&refresh_with(&mut h, &c, &[1u8; 32])), Some(400));
    assert_eq!(error_code(&refresh_with(&mut h, &c, &ticket[..31])), Some(400));
    // Nothing moved.
    let five = FiveTuple { transport: Transport::Udp, client: old, server: h.local };
    assert!(h.server.allocations().get(&five).is_some());
    assert_eq!(h.server.allocations().len(), 1);
}

#[test]
fn another_users_credentials_cannot_move_it() {
    let mut h = Harness::new(mobile());
    let (_, _, ticket) = allocate_mobile(&mut h);
    h.client = addr("127.0.0.1:41000");
    let mallory = h.login("mallory");
    assert_eq!(error_code(&refresh_with(&mut h, &mallory, &ticket)), Some(441));
    let alice = h.login("alice");
    assert_eq!(error_code(&refresh_with(&mut h, &alice, &ticket)), Some(441));
    assert_eq!(h.server.allocations().len(), 1);
}

#[test]
fn a_refresh_on_its_own_5_tuple_with_the_ticket_refreshes_and_answers_a_ticket() {
    let mut h = Harness::new(mobile());
    let (c, _, ticket) = allocate_mobile(&mut h);
    let m_bytes = refresh_with(&mut h, &c, &ticket);
    let m = Message::parse(&m_bytes).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse);
    assert_eq!(m.get::<MobilityTicket>().unwrap().0.len(), 32);
    // Another server's ticket (another key) is forged here: 400.
    let mut other = Harness::new(mobile());
    let (_, _, foreign) = allocate_mobile(&mut other);
    assert_eq!(error_code(&refresh_with(&mut h, &c, &foreign)), Some(400));
    // Another allocation's ticket on this 5-tuple: 437.
    h.client = addr("127.0.0.1:41000");
    let (c2, _, _) = allocate_mobile(&mut h);
    assert_eq!(error_code(&refresh_with(&mut h, &c2, &ticket)), Some(437));
}

#[test]
fn mobility_off_answers_405_mobility_forbidden() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&MobilityTicket(&[])).unwrap();
    });
    assert_eq!(error_code(&resp), Some(405));
    assert!(h.server.allocations().is_empty());
    let (c, _) = h.allocate();
    assert_eq!(error_code(&refresh_with(&mut h, &c, &[1u8; 32])), Some(405));
    let c = move_to(&mut h, &c, "127.0.0.1:41000");
    assert_eq!(error_code(&refresh_with(&mut h, &c, &[1u8; 32])), Some(405));
}

#[test]
fn a_non_empty_ticket_in_an_allocate_is_400_and_without_one_there_is_no_ticket() {
    let mut h = Harness::new(mobile());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&MobilityTicket(&[1, 2, 3])).unwrap();
    });
    assert_eq!(error_code(&resp), Some(400));
    let (c, _) = h.allocate();
    let resp = h.send(&c, Method::REFRESH, |_| {});
    assert!(Message::parse(&resp).unwrap().get::<MobilityTicket>().is_err());
}
