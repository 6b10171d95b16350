//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of dual allocations (RFC 8656 §7.2 ADDITIONAL-ADDRESS-FAMILY, RFC 6156): both
//! families granted, one family missing (ADDRESS-ERROR-CODE), the draft code points of coturn 4.6.1
//! (0x8032 answered with 0x8033), the 400 cases, data routed per family, 443, and
//! each family's own lifetime (RFC 8656 §8: a Refresh of one family, its expiry alone).

use super::*;

/// A harness whose server owns 127.0.0.1 and ::1 (no relay-ip): either family can be relayed.
fn dual_stack() -> Harness {
    let own = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    Harness::new(ServerOptions { own_addresses: own, ..Harness::default_options() })
}

fn dual(w: &mut MessageWriter<'_>) {
    udp(w);
    w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
}

fn legacy_dual(w: &mut MessageWriter<'_>) {
    udp(w);
    w.add(&LegacyAdditionalAddressFamily(AddressFamily::V6)).unwrap();
}

fn relayed(resp: &[u8]) -> Vec<SocketAddr> {
    let m = Message::parse(resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    m.get_all::<XorRelayedAddress>().map(|a| a.unwrap().0).collect()
}

fn ok(resp: &[u8]) -> bool {
    Message::parse(resp).unwrap().message_type().class == Class::SuccessResponse
}

/// A dual allocation of the harness client: its client and its IPv4 and IPv6 relayed addresses.
fn allocate_dual(h: &mut Harness) -> (Client, SocketAddr, SocketAddr) {
    let c = h.login("bob");
    let r = relayed(&h.send(&c, Method::ALLOCATE, dual));
    assert_eq!(r.len(), 2, "{r:?}");
    (c, r[0], r[1])
}

#[test]
fn both_families_are_granted_ipv4_first() {
    let mut h = dual_stack();
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, dual);
    let r = relayed(&resp);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(r[1].ip(), "::1".parse::<IpAddr>().unwrap());
    let m = Message::parse(&resp).unwrap();
    assert!(!m.has::<AddressErrorCode>() && !m.has::<LegacyAddressErrorCode>());
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, h.client);
    // Two relay sockets bound and started, one allocation (and one quota slot).
    assert_eq!(*h.driver.started.lock().unwrap(), r);
    assert_eq!(h.server.allocations().len(), 1);
    assert_eq!(h.server.allocations().quota().total(), 1);
    // A retransmission gets the same bytes and binds nothing more.
    let bound = h.driver.bound.lock().unwrap().len();
    let tid = TransactionId([h.tid; 12]);
    let again = h.feed(&request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), dual)).1;
    assert_eq!(again, resp);
    assert_eq!(h.driver.bound.lock().unwrap().len(), bound);
}

#[test]
fn relay_ip_gives_one_address_per_family() {
    let mut h = Harness::new(ServerOptions {
        relay_addresses: vec![
            RelayAddress { local: "10.0.0.5".parse().unwrap(), advertised: "203.0.113.4".parse().unwrap() },
            RelayAddress { local: "2001:db8::5".parse().unwrap(), advertised: "2001:db8::5".parse().unwrap() },
        ],
        ..Harness::default_options()
    });
    let (_, v4, v6) = allocate_dual(&mut h);
    assert_eq!(v4.ip(), "203.0.113.4".parse::<IpAddr>().unwrap(), "the advertised address");
    assert_eq!(v6.ip(), "2001:db8::5".parse::<IpAddr>().unwrap());
    let bound = h.driver.bound.lock().unwrap().clone();
    assert_eq!(bound.iter().map(|a| a.ip()).collect::<Vec<_>>(), ["10.0.0.5".parse::<IpAddr>().unwrap(), v6.ip()]);
}

#[test]
fn a_missing_family_is_named_in_address_error_code_440() {
    // No IPv6 address of its own: the IPv4 relay alone, and ADDRESS-ERROR-CODE 440 for IPv6.
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, dual);
    let r = relayed(&resp);
    assert_eq!(r.len(), 1);
    assert!(r[0].is_ipv4());
    let m = Message::parse(&resp).unwrap();
    let e = m.get::<AddressErrorCode>().unwrap();
    assert_eq!((e.family, e.code), (AddressFamily::V6, 440));
    assert!(!m.has::<LegacyAddressErrorCode>());
    // And the allocation is an IPv4 one: an IPv6 peer gets 443 and its data is dropped.
    let v6_peer = addr("[::1]:9000");
    assert_eq!(
        error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(v6_peer)).unwrap())),
        Some(443)
    );
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, v6_peer))), Some(443));
    assert_eq!(send_indication(&mut h, v6_peer, b"x"), Outcome::Dropped(DropReason::NoPermission));

    // Arriving over IPv6 with no IPv4 address of its own: the IPv6 relay alone, 440 for IPv4.
    let mut h = Harness::new(Harness::default_options());
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, dual);
    let r = relayed(&resp);
    assert_eq!(r.len(), 1);
    assert!(r[0].is_ipv6());
    let e = Message::parse(&resp).unwrap().get::<AddressErrorCode>().unwrap().code;
    assert_eq!(e, 440);
    let e = Message::parse(&resp).unwrap().get::<AddressErrorCode>().unwrap().family;
    assert_eq!(e, AddressFamily::V4);
    let v4_peer = addr("127.0.0.1:9000");
    assert_eq!(
        error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(v4_peer)).unwrap())),
        Some(443)
    );
}

#[test]
fn no_family_at_all_is_an_error_and_frees_everything() {
    let mut h = dual_stack();
    *h.driver.all_busy.lock().unwrap() = true;
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, dual)), Some(508));
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(h.server.allocations().quota().total(), 0);
}

#[test]
fn the_draft_code_point_0x8032_is_answered_with_0x8033() {
    let mut h = dual_stack();
    let c = h.login("bob");
    assert_eq!(relayed(&h.send(&c, Method::ALLOCATE, legacy_dual)).len(), 2);

    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, legacy_dual);
    assert_eq!(relayed(&resp).len(), 1);
    let m = Message::parse(&resp).unwrap();
    assert!(!m.has::<AddressErrorCode>());
    let LegacyAddressErrorCode(e) = m.get::<LegacyAddressErrorCode>().unwrap();
    assert_eq!((e.family, e.code), (AddressFamily::V6, 440));

    // Switched off, 0x8032 is an unknown optional attribute: a plain IPv4 allocation.
    let mut h = Harness::new(ServerOptions { legacy_dual_allocation: false, ..dual_stack_options() });
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, legacy_dual);
    assert_eq!(relayed(&resp).len(), 1);
    assert!(!Message::parse(&resp).unwrap().has::<LegacyAddressErrorCode>());
}

fn dual_stack_options() -> ServerOptions {
    let own = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    ServerOptions { own_addresses: own, ..Harness::default_options() }
}

#[test]
fn bad_dual_requests_get_400() {
    let mut h = dual_stack();
    let c = h.login("bob");
    let v4_additional = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V4)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, v4_additional)), Some(400));
    let v4_legacy = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&LegacyAdditionalAddressFamily(AddressFamily::V4)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, v4_legacy)), Some(400));
    let bad_family = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add_raw(types::ADDITIONAL_ADDRESS_FAMILY, &[0x03, 0, 0, 0]).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, bad_family)), Some(400));
    for requested in [AddressFamily::V4, AddressFamily::V6] {
        let both = move |w: &mut MessageWriter<'_>| {
            dual(w);
            w.add(&RequestedAddressFamily(requested)).unwrap();
        };
        assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, both)), Some(400));
    }
    let with_token = |w: &mut MessageWriter<'_>| {
        dual(w);
        w.add(&ReservationToken([1; 8])).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, with_token)), Some(400));
    assert_eq!(h.server.allocations().len(), 0);
    assert!(h.driver.bound.lock().unwrap().is_empty());
}

#[test]
fn data_leaves_through_the_relay_of_the_peers_family() {
    let mut h = dual_stack();
    let (c, v4, v6) = allocate_dual(&mut h);
    let p4 = addr("127.0.0.1:9000");
    let p6 = addr("[::1]:9000");
    // One CreatePermission may mix families.
    let resp = h.send(&c, Method::CREATE_PERMISSION, |w| {
        w.add(&XorPeerAddress(p4)).unwrap();
        w.add(&XorPeerAddress(p6)).unwrap();
    });
    assert!(ok(&resp), "{:?}", error_code(&resp));
    assert_eq!(send_indication(&mut h, p4, b"four"), Outcome::Relayed);
    assert_eq!(send_indication(&mut h, p6, b"six"), Outcome::Relayed);
    {
        let sent = h.driver.sent.lock().unwrap();
        assert_eq!(sent[0], (v4, p4, b"four".to_vec()));
        assert_eq!(sent[1], (v6, p6, b"six".to_vec()));
    }
    // Channels to either family.
    assert!(ok(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, p6))));
    assert!(ok(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4002, p4))));
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"ch6" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);
    let n = ChannelData { channel: 0x4002, data: b"ch4" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);
    {
        let sent = h.driver.sent.lock().unwrap();
        assert_eq!(sent[2], (v6, p6, b"ch6".to_vec()));
        assert_eq!(sent[3], (v4, p4, b"ch4".to_vec()));
    }
    // Peer → client from each family: ChannelData, and a Data indication for an unbound port.
    assert_eq!(h.peer_sends(p6, b"pong").unwrap(), b"\x40\x01\x00\x04pong");
    assert_eq!(h.peer_sends(p4, b"pong").unwrap(), b"\x40\x02\x00\x04pong");
    let other = addr("[::1]:9001");
    let m = h.peer_sends(other, b"hi").unwrap();
    assert_eq!(Message::parse(&m).unwrap().get::<XorPeerAddress>().unwrap().0, other);
    // No permission, no data, whatever the family.
    assert!(h.peer_sends(addr("[::2]:9000"), b"x").is_none());
}

#[test]
fn refresh_covers_both_relays_and_deletes_both() {
    let mut h = dual_stack();
    let (c, v4, v6) = allocate_dual(&mut h);
    assert!(ok(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap())));
    // A family the allocation has is fine in a Refresh.
    let v6_refresh = |w: &mut MessageWriter<'_>| {
        w.add(&Lifetime(3600)).unwrap();
        w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    };
    assert!(ok(&h.send(&c, Method::REFRESH, v6_refresh)));
    h.advance(1800);
    let p6 = addr("[::1]:9000");
    assert!(ok(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(p6)).unwrap())));
    assert_eq!(send_indication(&mut h, p6, b"x"), Outcome::Relayed);
    assert!(ok(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap())));
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4, v6]);
    assert_eq!(h.server.allocations().len(), 0);
}

#[test]
fn refresh_0_with_a_family_deletes_that_relay_alone() {
    let mut h = dual_stack();
    let (c, v4, v6) = allocate_dual(&mut h);
    let (p4, p6) = (addr("127.0.0.1:9000"), addr("[::1]:9000"));
    assert!(ok(&h.send(&c, Method::CREATE_PERMISSION, |w| {
        w.add(&XorPeerAddress(p4)).unwrap();
        w.add(&XorPeerAddress(p6)).unwrap();
    })));
    let delete = |family: AddressFamily| {
        move |w: &mut MessageWriter<'_>| {
            w.add(&Lifetime(0)).unwrap();
            w.add(&RequestedAddressFamily(family)).unwrap();
        }
    };
    assert!(ok(&h.send(&c, Method::REFRESH, delete(AddressFamily::V6))));
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v6]);
    assert_eq!(h.server.allocations().len(), 1);
    // The IPv6 relay is gone: 443 for IPv6 peers, their data dropped; IPv4 goes on.
    assert_eq!(send_indication(&mut h, p6, b"x"), Outcome::Dropped(DropReason::NoPermission));
    assert!(h.peer_sends(p6, b"x").is_none());
    assert!(h.peer_sends(p4, b"x").is_some());
    assert_eq!(send_indication(&mut h, p4, b"x"), Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap().0, v4);
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(p6)).unwrap())), Some(443));
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, delete(AddressFamily::V6))), Some(443));
    // Deleting the last family deletes the allocation (both sockets stop).
    assert!(ok(&h.send(&c, Method::REFRESH, delete(AddressFamily::V4))));
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v6, v4, v6]);

    // The IPv4 one may go first too.
    let mut h = dual_stack();
    let (c, v4, v6) = allocate_dual(&mut h);
    assert!(ok(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(p6)).unwrap())));
    assert!(ok(&h.send(&c, Method::REFRESH, delete(AddressFamily::V4))));
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4]);
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(p4)).unwrap())), Some(443));
    assert_eq!(send_indication(&mut h, p6, b"y"), Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap().0, v6);
}

#[test]
fn expiry_stops_both_relays() {
    let mut h = dual_stack();
    let (_, v4, v6) = allocate_dual(&mut h);
    h.advance(601);
    h.server.sweep(h.now);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4, v6]);
}

#[test]
fn refresh_naming_a_family_the_allocation_lacks_is_443() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let v6_refresh = |w: &mut MessageWriter<'_>| w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, v6_refresh)), Some(443));
    let v4_refresh = |w: &mut MessageWriter<'_>| w.add(&RequestedAddressFamily(AddressFamily::V4)).unwrap();
    assert!(ok(&h.send(&c, Method::REFRESH, v4_refresh)));
}

#[test]
fn tcp_allocations_are_single_family() {
    let mut h = dual_stack();
    let c = h.login("bob");
    let over_tcp = |h: &mut Harness, body: &dyn Fn(&mut MessageWriter<'_>)| {
        let tid = h.next_tid();
        let req = request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), body);
        let rx = Received { transport: Transport::Tcp, source: h.client, local: h.local, data: &req };
        let mut out = vec![0u8; 1500];
        let Outcome::Reply(n) = h.server.handle(h.now, &rx, &mut out) else { panic!("no answer") };
        out.truncate(n);
        out
    };
    let tcp_dual = |w: &mut MessageWriter<'_>| {
        w.add(&RequestedTransport::TCP).unwrap();
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    };
    assert_eq!(error_code(&over_tcp(&mut h, &tcp_dual)), Some(400));
    let tcp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::TCP).unwrap();
    assert!(ok(&over_tcp(&mut h, &tcp)));
}

/// A Refresh of `family` alone (RFC 8656 §8.2) with `lifetime`.
fn refresh_family(family: AddressFamily, lifetime: u32) -> impl Fn(&mut MessageWriter<'_>) {
    move |w: &mut MessageWriter<'_>| {
        w.add(&Lifetime(lifetime)).unwrap();
        w.add(&RequestedAddressFamily(family)).unwrap();
    }
}

/// CreatePermission for `peers`, answered with success.
fn permit(h: &mut Harness, c: &Client, peers: &[SocketAddr]) {
    let resp = h.send(c, Method::CREATE_PERMISSION, |w| {
        for p in peers {
            w.add(&XorPeerAddress(*p)).unwrap();
        }
    });
    assert!(ok(&resp), "{:?}", error_code(&resp));
}

fn granted(resp: &[u8]) -> u32 {
    assert!(ok(resp), "{:?}", error_code(resp));
    Message::parse(resp).unwrap().get::<Lifetime>().unwrap().0
}

#[test]
fn each_family_expires_on_its_own_lifetime() {
    let mut h = dual_stack();
    let events = super::events::recorded(&h);
    let (c, v4, v6) = allocate_dual(&mut h);
    let (p4, p6) = (addr("127.0.0.1:9000"), addr("[::1]:9000"));
    // RFC 8656 §8.2: the IPv6 relayed address alone gets 1200 s; the IPv4 one keeps its 600.
    assert_eq!(granted(&h.send(&c, Method::REFRESH, refresh_family(AddressFamily::V6, 1200))), 1200);
    h.advance(590);
    permit(&mut h, &c, &[p4, p6]);
    assert_eq!(send_indication(&mut h, p4, b"4"), Outcome::Relayed);
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Relayed);
    h.advance(11);
    // Past 600 s the IPv4 family is gone at once, before any sweep: nothing relayed either way.
    assert_eq!(send_indication(&mut h, p4, b"4"), Outcome::Dropped(DropReason::NoPermission));
    assert!(h.peer_sends(p4, b"4").is_none());
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(p4)).unwrap())), Some(443));
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Relayed);
    assert!(h.peer_sends(p6, b"6").is_some());
    // The sweep stops the IPv4 relay alone, once; the allocation lives on.
    h.server.sweep(h.now);
    h.server.sweep(h.now);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4]);
    assert_eq!(h.server.allocations().len(), 1);
    h.advance(499);
    permit(&mut h, &c, &[p6]);
    h.server.sweep(h.now);
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap().0, v6);
    assert_eq!(h.server.allocations().len(), 1);
    // At 1200 s the IPv6 family expires too: the allocation ends, once, as expired.
    h.advance(100);
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Dropped(DropReason::NoAllocation));
    h.server.sweep(h.now);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(h.server.allocations().quota().total(), 0);
    let deleted: Vec<String> = events.take().into_iter().filter(|e| e.starts_with("deleted")).collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].contains(" expired "), "{deleted:?}");
    assert_eq!(h.server.stats().snapshot().allocations_deleted, 1);
}

#[test]
fn a_family_deleted_then_the_other_expired_ends_the_allocation_once() {
    let mut h = dual_stack();
    let events = super::events::recorded(&h);
    let (c, v4, v6) = allocate_dual(&mut h);
    let p6 = addr("[::1]:9000");
    assert_eq!(granted(&h.send(&c, Method::REFRESH, refresh_family(AddressFamily::V4, 0))), 0);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4]);
    // The IPv4 family is gone for good: a Refresh of it is 443, one of both does not bring it back.
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, refresh_family(AddressFamily::V4, 600))), Some(443));
    h.advance(300);
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(600)).unwrap())), 600);
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, refresh_family(AddressFamily::V4, 600))), Some(443));
    permit(&mut h, &c, &[p6]);
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Relayed);
    h.advance(599);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 1);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4]);
    h.advance(2);
    h.server.sweep(h.now);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4, v4, v6]);
    let deleted: Vec<String> = events.take().into_iter().filter(|e| e.starts_with("deleted")).collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].contains(" expired "), "{deleted:?}");
    assert_eq!(h.server.stats().snapshot().allocations_deleted, 1);
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(600)).unwrap())), Some(437));
}

#[test]
fn a_refresh_without_a_family_refreshes_both_live_ones() {
    let mut h = dual_stack();
    let (c, v4, _) = allocate_dual(&mut h);
    let (p4, p6) = (addr("127.0.0.1:9000"), addr("[::1]:9000"));
    h.advance(500);
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(1000)).unwrap())), 1000);
    h.advance(900);
    h.server.sweep(h.now);
    assert!(h.driver.stopped.lock().unwrap().is_empty());
    permit(&mut h, &c, &[p4, p6]);
    assert_eq!(send_indication(&mut h, p4, b"4"), Outcome::Relayed);
    assert_eq!(send_indication(&mut h, p6, b"6"), Outcome::Relayed);
    // A family that ran out (not swept yet) is not brought back by a Refresh of both.
    assert_eq!(granted(&h.send(&c, Method::REFRESH, refresh_family(AddressFamily::V6, 1000))), 1000);
    h.advance(101);
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(600)).unwrap())), 600);
    assert_eq!(send_indication(&mut h, p4, b"4"), Outcome::Dropped(DropReason::NoPermission));
    h.server.sweep(h.now);
    assert_eq!(*h.driver.stopped.lock().unwrap(), [v4]);
    assert_eq!(h.server.allocations().len(), 1);
}
