//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of the operations issue: graceful drain, ALTERNATE-SERVER load shedding
//! (RFC 8489 §10) and reload of credentials, peer policy and quotas without touching live
//! allocations.

use super::*;
use crate::proto::stun::{AlternateDomain, AlternateServer, ChannelNumber, XorPeerAddress};

fn class_of(resp: &[u8]) -> Class {
    Message::parse(resp).unwrap().message_type().class
}

#[test]
fn draining_refuses_new_allocations_with_508_and_keeps_the_old_ones() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    let resp = h.send(&c, Method::CHANNEL_BIND, |w| {
        w.add(&ChannelNumber(0x4001)).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(class_of(&resp), Class::SuccessResponse);
    h.server.admission().set_draining(true);

    // A new client gets 508 (no alternate server), signed.
    let first = h.client;
    h.client = addr("127.0.0.1:40001");
    let d = h.login("dave");
    let resp = h.send(&d, Method::ALLOCATE, udp);
    assert_eq!(error_code(&resp), Some(508));
    assert!(Message::parse(&resp).unwrap().has_integrity());
    assert_eq!(h.server.allocations().len(), 1);
    assert_eq!(h.server.stats().snapshot().allocations_refused_draining, 1);

    // The existing allocation refreshes and relays both ways.
    h.client = first;
    h.advance(100);
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(600)).unwrap());
    assert_eq!(class_of(&resp), Class::SuccessResponse);
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"hi" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);
    assert!(h.peer_sends(peer, b"back").is_some());
}

#[test]
fn draining_with_an_alternate_server_answers_300_with_alternate_server() {
    let alternate = addr("192.0.2.10:3478");
    let options = ServerOptions { alternate_servers: vec![alternate], ..Harness::default_options() };
    let mut h = Harness::new(options);
    // Not draining and no threshold: served here.
    let (_, _) = h.allocate();
    h.server.admission().set_draining(true);
    h.client = addr("127.0.0.1:40001");
    let d = h.login("dave");
    let resp = h.send(&d, Method::ALLOCATE, udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 300);
    assert_eq!(m.get::<AlternateServer>().unwrap().0, alternate);
    assert!(m.has_integrity(), "RFC 8489 §10: the 300 of an authenticated request is signed");
    assert_eq!(h.server.stats().snapshot().allocations_redirected, 1);
}

#[test]
fn over_the_threshold_new_allocations_are_redirected() {
    let alternate = addr("192.0.2.11:3478");
    let options = ServerOptions {
        alternate_servers: vec![addr("[2001:db8::1]:3478"), alternate],
        alternate_threshold: 2,
        ..Harness::default_options()
    };
    let mut h = Harness::new(options);
    let (_, _) = h.allocate();
    h.client = addr("127.0.0.1:40001");
    let (_, _) = h.allocate();
    h.client = addr("127.0.0.1:40002");
    let e = h.login("erin");
    let resp = h.send(&e, Method::ALLOCATE, udp);
    assert_eq!(error_code(&resp), Some(300));
    assert_eq!(Message::parse(&resp).unwrap().get::<AlternateServer>().unwrap().0, alternate);
    // Room again below the threshold.
    h.client = addr("127.0.0.1:40000");
    let c = h.login("bob");
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap());
    assert_eq!(class_of(&resp), Class::SuccessResponse);
    h.client = addr("127.0.0.1:40002");
    assert_eq!(class_of(&h.send(&e, Method::ALLOCATE, udp)), Class::SuccessResponse);
}

#[test]
fn reload_swaps_secrets_and_quotas_and_live_allocations_carry_on() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    // New secret only, and a total quota of 2.
    let mut config = auth_config();
    config.rest = Some(RestCredentials::new(vec![Secret::new("a new secret")]));
    let auth = h.server.authenticator().unwrap().with_config(config);
    h.server.reload(Some(auth), &ServerOptions { total_quota: 2, ..Harness::default_options() });

    // The live allocation keeps working with its credentials (the key it was made with).
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(600)).unwrap());
    assert_eq!(class_of(&resp), Class::SuccessResponse);
    // Old-secret credentials are refused for a new allocation; the nonce stays valid.
    h.client = addr("127.0.0.1:40001");
    let nonce = h.login("alice").nonce;
    let old = Client { user: c.user.clone(), pass: c.pass.clone(), nonce: nonce.clone() };
    assert_eq!(error_code(&h.send(&old, Method::ALLOCATE, udp)), Some(401));
    // New-secret credentials are taken.
    let (u, p) = RestCredentials::new(vec![Secret::new("a new secret")]).mint("dave", 3600, h.unix()).unwrap();
    let d = Client { user: u, pass: p, nonce };
    assert_eq!(class_of(&h.send(&d, Method::ALLOCATE, udp)), Class::SuccessResponse);
    // The new total quota (2) is in force.
    h.client = addr("127.0.0.1:40002");
    let d = Client { nonce: h.login("alice").nonce, ..d };
    assert_eq!(error_code(&h.send(&d, Method::ALLOCATE, udp)), Some(508));
}

#[test]
fn reload_replaces_the_peer_policy() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    let permit =
        |h: &mut Harness| error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap()));
    assert_eq!(permit(&mut h), None);
    let auth = h.server.authenticator().map(|a| (*a).clone());
    h.server.reload(auth, &ServerOptions { allow_loopback_peers: false, ..Harness::default_options() });
    assert_eq!(permit(&mut h), Some(403));
}

#[test]
fn the_alternate_server_is_of_the_client_family_or_none() {
    // RFC 8489 §14.15: only an IPv6 alternate configured, IPv4 clients.
    let options = ServerOptions {
        alternate_servers: vec![addr("[2001:db8::1]:3478")],
        alternate_threshold: 1,
        ..Harness::default_options()
    };
    let mut h = Harness::new(options);
    let (_, _) = h.allocate();
    // Over the threshold, but no IPv4 alternate: served here.
    h.client = addr("127.0.0.1:40001");
    let (_, _) = h.allocate();
    // Draining without an IPv4 alternate: 508, not a redirect to an IPv6 address.
    h.server.admission().set_draining(true);
    h.client = addr("127.0.0.1:40002");
    let d = h.login("dave");
    assert_eq!(error_code(&h.send(&d, Method::ALLOCATE, udp)), Some(508));
    assert_eq!(h.server.admission().alternate_for(addr("[::1]:5000")), Some(addr("[2001:db8::1]:3478")));
}

/// Issue #14 §1: with an alternate of each family, a 300 names the one of the client's family
/// (RFC 8489 §14.15: the family of the request's source; RFC 8656 §7.2), a dual Allocate included.
#[test]
fn with_both_families_configured_each_client_is_sent_to_its_own() {
    let (v4, v6) = (addr("192.0.2.10:3478"), addr("[2001:db8::10]:3478"));
    let options = ServerOptions { alternate_servers: vec![v6, v4], ..Harness::default_options() };
    let mut h = Harness::new(options);
    h.server.admission().set_draining(true);
    let alternate_of = |resp: &[u8]| {
        let m = Message::parse(resp).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().code, 300);
        m.get::<AlternateServer>().unwrap().0
    };
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("dave");
    assert_eq!(alternate_of(&h.send(&c, Method::ALLOCATE, udp)), v6);
    let dual = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V4)).unwrap();
    };
    assert_eq!(alternate_of(&h.send(&c, Method::ALLOCATE, dual)), v6);
    h.client = addr("127.0.0.1:40000");
    h.local = addr("127.0.0.1:3478");
    let c = h.login("erin");
    assert_eq!(alternate_of(&h.send(&c, Method::ALLOCATE, udp)), v4);
    let dual = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&AdditionalAddressFamily(AddressFamily::V6)).unwrap();
    };
    assert_eq!(alternate_of(&h.send(&c, Method::ALLOCATE, dual)), v4);
    assert_eq!(h.server.allocations().len(), 0);
}

/// RFC 8489 §10, §14.16: a 300 answered over TLS names the domain the client checks the
/// alternate's certificate against; over UDP (and without a domain) there is no ALTERNATE-DOMAIN.
#[test]
fn a_redirect_over_tls_carries_the_alternate_domain() {
    let alternate = addr("192.0.2.10:5349");
    let options = ServerOptions {
        alternate_servers: vec![alternate],
        alternate_domain: Some("turn2.example.net".into()),
        ..Harness::default_options()
    };
    let mut h = Harness::new(options.clone());
    h.server.admission().set_draining(true);
    let c = h.login("dave");
    let redirect_over = |h: &mut Harness, transport: Transport| {
        let tid = h.next_tid();
        let req = request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), udp);
        let rx = Received { transport, source: h.client, local: h.local, data: &req };
        let mut out = vec![0u8; 1500];
        let Outcome::Reply(n) = h.server.handle(h.now, &rx, &mut out) else { panic!("no answer") };
        out.truncate(n);
        out
    };
    let tls = redirect_over(&mut h, Transport::Tls);
    let m = Message::parse(&tls).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 300);
    assert_eq!(m.get::<AlternateServer>().unwrap().0, alternate);
    assert_eq!(m.get::<AlternateDomain>().unwrap().0, "turn2.example.net");
    let key = IntegrityKey::new(&long_term_key_md5(&c.user, REALM, &c.pass));
    assert_eq!(m.verify_integrity(&key), Ok(()), "ALTERNATE-DOMAIN sits under MESSAGE-INTEGRITY");
    let plain = redirect_over(&mut h, Transport::Udp);
    let m = Message::parse(&plain).unwrap();
    assert_eq!(m.get::<AlternateServer>().unwrap().0, alternate);
    assert!(m.get::<AlternateDomain>().is_err(), "ALTERNATE-DOMAIN only over TLS");
    // A reload without the domain drops it.
    let auth = h.server.authenticator().map(|a| (*a).clone());
    h.server.reload(auth, &ServerOptions { alternate_domain: None, ..options });
    let tls = redirect_over(&mut h, Transport::Tls);
    assert!(Message::parse(&tls).unwrap().get::<AlternateDomain>().is_err());
}
