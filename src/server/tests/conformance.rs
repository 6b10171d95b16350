//! (A test module: declared under #[cfg(test)] in its parent.)
//! Issue #14 §1: conformance with RFC 8489 and RFC 8656 where the server was lenient.

use super::*;

fn granted(resp: &[u8]) -> u32 {
    Message::parse(resp).unwrap().get::<Lifetime>().unwrap().0
}

// Item 1.
#[test]
fn refresh_below_the_default_lifetime_gets_the_default() {
    // RFC 8656 §8.2: the lifetime is computed as for an Allocate (§7.2), never below the default.
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(30)).unwrap())), 600);
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(1200)).unwrap())), 1200);
    assert_eq!(granted(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(99_999)).unwrap())), 3600);
    h.advance(599);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 1, "the 30 s asked for were 600 granted");
}

// Item 2.
#[test]
fn allocate_on_a_live_allocation_is_437_whatever_the_credentials() {
    // RFC 8656 §7.2 step 2: any Allocate on a 5-tuple with an allocation, not a retransmission.
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let other = h.login("carol");
    assert_eq!(error_code(&h.send(&other, Method::ALLOCATE, udp)), Some(437));
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(437));
    // Still authenticated first.
    let bad = Client { pass: "wrong".into(), ..other };
    assert_eq!(error_code(&h.send(&bad, Method::ALLOCATE, udp)), Some(401));
    // Other methods under other credentials stay 441 (RFC 8656 §6).
    let other = h.login("carol");
    assert_eq!(error_code(&h.send(&other, Method::REFRESH, |_| {})), Some(441));
}

// Item 3.
#[test]
fn even_port_reserving_with_additional_address_family_is_400() {
    // RFC 8656 §7.2: the R bit cannot be honoured for two relayed addresses.
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let body = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&EvenPort { reserve_next: true }).unwrap();
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, body)), Some(400));
    assert_eq!(h.server.allocations().len(), 0);
    assert!(h.driver.bound.lock().unwrap().is_empty());
}

// Item 4.
/// An indication of `method` with `body`, unsigned and without FINGERPRINT.
fn indication(h: &mut Harness, method: Method, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let tid = h.next_tid();
    let mut buf = vec![0u8; 1500];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Indication), tid).unwrap();
    body(&mut w);
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn indications_with_unknown_comprehension_required_attributes_are_discarded() {
    // RFC 8489 §6.3.2: discarded, and no 420 (an indication gets no answer).
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap());
    let send = indication(&mut h, Method::SEND, |w| {
        w.add(&XorPeerAddress(peer)).unwrap();
        w.add(&Data(b"hidden")).unwrap();
        w.add_raw(0x7F01, b"????").unwrap();
    });
    assert_eq!(h.feed(&send).0, Outcome::Dropped(DropReason::Unexpected));
    assert!(h.driver.sent.lock().unwrap().is_empty(), "nothing relayed");
    let binding = indication(&mut h, Method::BINDING, |w| w.add_raw(0x7F01, b"????").unwrap());
    assert_eq!(h.feed(&binding).0, Outcome::Dropped(DropReason::Unexpected));
    // Comprehension-optional ones are ignored: relayed.
    let fine = indication(&mut h, Method::SEND, |w| {
        w.add(&XorPeerAddress(peer)).unwrap();
        w.add(&Data(b"seen")).unwrap();
        w.add_raw(0xC001, b"fine").unwrap();
    });
    assert_eq!(h.feed(&fine).0, Outcome::Relayed);
}

// Item 5.
/// `msg` as RFC 3489 wrote it: no magic cookie (those bytes belong to the transaction ID).
fn without_cookie(mut msg: Vec<u8>) -> Vec<u8> {
    msg[4..8].copy_from_slice(&[1, 2, 3, 4]);
    msg
}

#[test]
fn turn_without_magic_cookie_and_unknown_methods_are_discarded() {
    let mut h = Harness::new(Harness::default_options());
    // RFC 8656 §5: TURN messages carry the magic cookie; without it, not TURN: silence.
    for method in [Method::ALLOCATE, Method::REFRESH, Method::CREATE_PERMISSION, Method::CHANNEL_BIND] {
        let tid = h.next_tid();
        let req = without_cookie(crate::testing::signed_with(method, tid, None, false, udp));
        assert_eq!(h.feed(&req).0, Outcome::Dropped(DropReason::Unexpected), "{method:?}");
    }
    let send = without_cookie(indication(&mut h, Method::SEND, |w| {
        w.add(&XorPeerAddress(addr("127.0.0.1:9"))).unwrap();
        w.add(&Data(b"x")).unwrap();
    }));
    assert_eq!(h.feed(&send).0, Outcome::Dropped(DropReason::Unexpected));
    // RFC 8489 §12: an RFC 3489 Binding request is still answered, with MAPPED-ADDRESS.
    let tid = h.next_tid();
    let (o, resp) = h.feed(&without_cookie(crate::testing::signed_with(Method::BINDING, tid, None, false, |_| {})));
    assert!(matches!(o, Outcome::Reply(_)));
    assert_eq!(Message::parse(&resp).unwrap().get::<MappedAddress>().unwrap().0, h.client);
    // RFC 8489 §6.3: a method the server does not support, or a class not allowed for the method,
    // is silently discarded.
    let tid = h.next_tid();
    assert_eq!(h.feed(&request(Method(0x0FF), tid, None, |_| {})).0, Outcome::Dropped(DropReason::Unexpected));
    let tid = h.next_tid();
    let mut buf = vec![0u8; 64];
    let w = MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::SuccessResponse), tid).unwrap();
    let n = w.finish();
    assert_eq!(h.feed(&buf[..n]).0, Outcome::Dropped(DropReason::Unexpected));
    let allocate_indication = indication(&mut h, Method::ALLOCATE, udp);
    assert_eq!(h.feed(&allocate_indication).0, Outcome::Dropped(DropReason::Unexpected));
}

// Item 6.
/// RFC 8656 §8.2 reads REQUESTED-ADDRESS-FAMILY in a Refresh: a malformed one is a bad request,
/// not ignored (the Refresh would otherwise cover both families, or delete the whole allocation).
#[test]
fn refresh_with_a_malformed_requested_address_family_is_400() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let short = |w: &mut MessageWriter<'_>| w.add_raw(types::REQUESTED_ADDRESS_FAMILY, &[0x01]).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, short)), Some(400));
    let long = |w: &mut MessageWriter<'_>| w.add_raw(types::REQUESTED_ADDRESS_FAMILY, &[0x01, 0, 0, 0, 0]).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, long)), Some(400));
    let family_3 = |w: &mut MessageWriter<'_>| w.add_raw(types::REQUESTED_ADDRESS_FAMILY, &[0x03, 0, 0, 0]).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, family_3)), Some(400));
    // A well-formed one for the allocation's family still refreshes.
    let v4 = |w: &mut MessageWriter<'_>| w.add(&RequestedAddressFamily(AddressFamily::V4)).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, v4)), None);
}

// Item 7.
#[test]
fn peers_behind_6to4_and_teredo_are_refused_by_default() {
    // RFC 8656 §21.4, RFC 6156: whatever IPv4 address they carry (here public ones). Permissions
    // only: nothing is ever sent to these addresses.
    let v6 = IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]);
    let mut h = Harness::new(ServerOptions {
        relay_addresses: vec![RelayAddress { local: v6, advertised: v6 }],
        ..Harness::default_options()
    });
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    });
    assert_eq!(error_code(&resp), None);
    let permit = |h: &mut Harness, peer: &str| {
        let peer = addr(peer);
        error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap()))
    };
    assert_eq!(permit(&mut h, "[2002:808:808::1]:9000"), Some(403), "6to4 of 8.8.8.8");
    assert_eq!(permit(&mut h, "[2001:0:808:808:0:8000:f7f7:f7f7]:9000"), Some(403), "Teredo of 8.8.8.8");
    assert_eq!(permit(&mut h, "[2606:4700::1111]:9000"), None, "a plain global IPv6 peer");
    // allowed-peer-ip opens them explicitly.
    let allowed = vec!["2002::/16".parse().unwrap(), "2001::/32".parse().unwrap()];
    let policy = peer_policy(&ServerOptions { allowed_peers: allowed, ..Harness::default_options() });
    assert_eq!(policy.check_ip("2002:808:808::1".parse().unwrap()), Ok(()));
    assert_eq!(policy.check_ip("2001:0:808:808:0:8000:f7f7:f7f7".parse().unwrap()), Ok(()));
}

// Issue #14 §1, the rest. Item 1: 420 means "not implemented here" (RFC 8489 §6.3.1, §7.3.1).
fn unknown_listed(resp: &[u8]) -> Vec<u16> {
    let m = Message::parse(resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 420);
    m.get::<UnknownAttributes>().unwrap().as_slice().to_vec()
}

#[test]
fn binding_with_change_request_flags_gets_420() {
    // RFC 5780 §7.2 is not implemented: a success from the same address would tell the client its
    // NAT does no filtering.
    let mut h = Harness::new(Harness::default_options());
    for (ip, port) in [(true, false), (false, true), (true, true)] {
        let tid = h.next_tid();
        let change = ChangeRequest { change_ip: ip, change_port: port };
        let (_, resp) = h.feed(&request(Method::BINDING, tid, None, |w| w.add(&change).unwrap()));
        assert_eq!(unknown_listed(&resp), vec![0x0003]);
    }
    // An RFC 3489 client (no magic cookie) asking for a change gets 420 as well (RFC 3489 §11.2).
    let tid = h.next_tid();
    let change = ChangeRequest { change_ip: true, change_port: true };
    let req = crate::testing::signed_with(Method::BINDING, tid, None, false, |w| w.add(&change).unwrap());
    let (_, resp) = h.feed(&without_cookie(req));
    assert_eq!(unknown_listed(&resp), vec![0x0003]);
}

#[test]
fn binding_with_an_all_zero_change_request_is_answered() {
    // Asks for nothing: tolerated, as coturn does.
    let mut h = Harness::new(Harness::default_options());
    let tid = h.next_tid();
    let change = ChangeRequest { change_ip: false, change_port: false };
    let (_, resp) = h.feed(&request(Method::BINDING, tid, None, |w| w.add(&change).unwrap()));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse);
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, h.client);
}

#[test]
fn access_token_without_oauth_gets_420() {
    // RFC 7635 is off in the harness: ACCESS-TOKEN is not understood here.
    let mut h = Harness::new(Harness::default_options());
    let tid = h.next_tid();
    let (_, resp) = h.feed(&request(Method::BINDING, tid, None, |w| w.add(&AccessToken(b"token")).unwrap()));
    assert_eq!(unknown_listed(&resp), vec![0x001B]);
    // A TURN request is authenticated first (RFC 8489 §6.3), then refused with 420, signed.
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&AccessToken(b"token")).unwrap();
    });
    assert_eq!(unknown_listed(&resp), vec![0x001B]);
    assert!(Message::parse(&resp).unwrap().has_integrity());
    assert_eq!(h.server.allocations().len(), 0);
}

// Item 2: the checks of RFC 8489 §9.2.4 in the RFC's order: the user, the MAC, then the nonce.
#[test]
fn only_valid_credentials_learn_their_nonce_is_stale() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("alice");
    h.advance(3601);
    let unknown = Client { user: "mallory".into(), ..c.clone() };
    assert_eq!(error_code(&h.send(&unknown, Method::ALLOCATE, udp)), Some(401));
    let wrong = Client { pass: "wrong".into(), ..c.clone() };
    assert_eq!(error_code(&h.send(&wrong, Method::ALLOCATE, udp)), Some(401));
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(438));
    // On an allocation too (the cached-key path): a wrong password with an old nonce is 401.
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    h.advance(3601);
    let wrong = Client { pass: "wrong".into(), ..c.clone() };
    assert_eq!(error_code(&h.send(&wrong, Method::REFRESH, |_| {})), Some(401));
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |_| {})), Some(438));
}
