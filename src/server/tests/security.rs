//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of the security issue: rate limits, revocation and strict expiry, the peer policy,
//! quotas and bandwidth.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::*;

// --- Rate limits, revocation, strict expiry (the security issue) ---------------------------------

use crate::policy::rate::RateLimit;
use crate::policy::revocation::RevocationList;

/// A transaction ID from a counter (the harness's own wraps at 255).
fn tid_of(i: u32) -> TransactionId {
    let mut t = [0u8; 12];
    t[..4].copy_from_slice(&i.to_be_bytes());
    TransactionId(t)
}

#[test]
fn unauthenticated_answers_over_the_rate_are_dropped_and_counted() {
    let options = ServerOptions { rate_limit_unauth: RateLimit::new(20, 40), ..Harness::default_options() };
    let mut h = Harness::new(options);
    // One source, 1,000 unauthenticated Allocates within one second of fake time.
    let mut answered = 0;
    for i in 0..1000u32 {
        h.now = h.epoch + Duration::from_millis(u64::from(i));
        let (o, resp) = h.feed(&request(Method::ALLOCATE, tid_of(i), None, udp));
        match o {
            Outcome::Reply(_) => {
                answered += 1;
                assert_eq!(error_code(&resp), Some(401));
            }
            Outcome::Dropped(DropReason::RateLimited) => assert!(resp.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    assert!((40..=60).contains(&answered), "burst 40 + 20/s, got {answered}");
    let s = h.server.stats().snapshot();
    assert_eq!(s.dropped_rate_limited, 1000 - answered);
    assert_eq!(s.replies, answered);
    assert_eq!(s.errors_sent, answered, "a dropped answer is not counted as sent");
    assert_eq!((s.auth_failures, s.auth_challenges), (0, 1000), "requests without credentials are challenges");

    // Another source is not affected, nor is Binding (unlimited by default).
    let (o, _) = h.feed_from(addr("127.0.0.2:40000"), &request(Method::ALLOCATE, tid_of(5000), None, udp));
    assert!(matches!(o, Outcome::Reply(_)));
    let (o, _) = h.feed(&request(Method::BINDING, tid_of(5001), None, |_| {}));
    assert!(matches!(o, Outcome::Reply(_)));
    // Another port of the same IPv4 address is the same source.
    let (o, _) = h.feed_from(addr("127.0.0.1:40999"), &request(Method::ALLOCATE, tid_of(5002), None, udp));
    assert_eq!(o, Outcome::Dropped(DropReason::RateLimited));

    // A limited source that authenticates is served: only unauthenticated answers are limited.
    h.now = h.epoch + Duration::from_secs(10);
    let c = h.login("bob");
    for i in 0..100 {
        h.feed(&request(Method::ALLOCATE, tid_of(6000 + i), None, udp));
    }
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    // And a second later the source gets answers again.
    h.advance(1);
    let (o, _) = h.feed_from(addr("127.0.0.1:41000"), &request(Method::ALLOCATE, tid_of(7000), None, udp));
    assert!(matches!(o, Outcome::Reply(_)));
}

#[test]
fn one_ipv6_64_is_one_source() {
    let options = ServerOptions { rate_limit_unauth: RateLimit::new(1, 3), ..Harness::default_options() };
    let h = Harness::new(options);
    let answered = (0..50u32)
        .filter(|&i| {
            let src = SocketAddr::new(IpAddr::V6(format!("2001:db8:aa:bb::{:x}", i + 1).parse().unwrap()), 5000);
            matches!(h.feed_from(src, &request(Method::ALLOCATE, tid_of(i), None, udp)).0, Outcome::Reply(_))
        })
        .count();
    assert_eq!(answered, 3);
    let other = addr("[2001:db8:aa:cc::1]:5000");
    assert!(matches!(h.feed_from(other, &request(Method::ALLOCATE, tid_of(99), None, udp)).0, Outcome::Reply(_)));
}

#[test]
fn binding_can_be_rate_limited_too() {
    let h = Harness::new(Harness::default_options());
    let all = (0..100u32)
        .filter(|&i| matches!(h.feed(&request(Method::BINDING, tid_of(i), None, |_| {})).0, Outcome::Reply(_)));
    assert_eq!(all.count(), 100);
    let options = ServerOptions {
        rate_limit_unauth: RateLimit::new(20, 40),
        rate_limit_binding: true,
        ..Harness::default_options()
    };
    let h = Harness::new(options);
    let outcomes: Vec<Outcome> =
        (0..100u32).map(|i| h.feed(&request(Method::BINDING, tid_of(i), None, |_| {})).0).collect();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Outcome::Reply(_))).count(), 40);
    assert_eq!(h.server.stats().snapshot().dropped_rate_limited, 60);
}

#[test]
fn unauthenticated_answers_have_no_reason_phrase() {
    let mut h = Harness::new(Harness::default_options());
    let (_, resp) = h.feed(&request(Method::ALLOCATE, tid_of(1), None, udp));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap(), ErrorCode { code: 401, reason: "" });
    let nonce = m.get::<Nonce>().unwrap().0;
    // RFC 8489 §9.2.1: the nonce cookie, the password algorithms feature bit, 16 characters of MAC.
    assert_eq!(nonce.len(), 29, "{nonce}");
    assert!(nonce.starts_with("obMatJos2AAAB"), "{nonce}");
    assert_eq!(m.get::<PasswordAlgorithms>().unwrap(), PasswordAlgorithms::SHA256_AND_MD5);
    let c = h.login("bob");
    h.advance(3601);
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(Message::parse(&resp).unwrap().get::<ErrorCode>().unwrap(), ErrorCode { code: 438, reason: "" });
    // Other codes keep theirs (an Allocate without REQUESTED-TRANSPORT: 400).
    let c = h.login("carol");
    let (_, resp) = h.feed(&request(Method::ALLOCATE, tid_of(2), Some((&c.user, &c.pass, &c.nonce)), |_| {}));
    assert_eq!(Message::parse(&resp).unwrap().get::<ErrorCode>().unwrap(), ErrorCode::new(400));
}

#[test]
fn allocates_over_the_per_user_rate_get_486() {
    let options = ServerOptions { rate_limit_allocate: RateLimit::new(1, 2), ..Harness::default_options() };
    let mut h = Harness::new(options);
    let mut codes_seen = Vec::new();
    for port in 0..3u16 {
        h.client = SocketAddr::new(h.client.ip(), 41000 + port);
        let c = h.login("bob");
        let resp = h.send(&c, Method::ALLOCATE, udp);
        let m = Message::parse(&resp).unwrap();
        let key = IntegrityKey::new(&long_term_key_md5(&c.user, REALM, &c.pass));
        assert_eq!(m.verify_integrity(&key), Ok(()), "answers to an authenticated request are signed");
        codes_seen.push(error_code(&resp).unwrap_or(0));
    }
    assert_eq!(codes_seen, [0, 0, codes::ALLOCATION_QUOTA_REACHED]);
    assert_eq!(h.server.stats().snapshot().rate_limited_allocates, 1);
    assert_eq!(h.server.allocations().len(), 2);
    // Another user has its own bucket; bob's refills with time.
    h.client = addr("127.0.0.1:42000");
    let c = h.login("alice");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), None);
    h.advance(1);
    h.client = addr("127.0.0.1:42001");
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), None);
    assert_eq!(h.server.allocations().len(), 4);
}

#[test]
fn revoked_users_get_403_and_lose_their_allocations_at_the_sweep() {
    let mut h = Harness::new(Harness::default_options());
    let (bob, bob_relayed) = h.allocate();
    let bob_client = h.client;
    h.client = addr("127.0.0.1:40001");
    let alice = h.login("alice");
    assert_eq!(error_code(&h.send(&alice, Method::ALLOCATE, udp)), None);
    assert_eq!(h.server.allocations().len(), 2);

    // Revoke bob by his user part: every request of his gets 403 (RFC 8656 §7.2), Refresh included,
    // signed with his key (his credentials are valid; policy refuses them), without a new NONCE.
    h.server.set_revocations(RevocationList::new(["bob"]));
    assert!(h.server.is_revoked(&bob.user) && !h.server.is_revoked("alice"));
    h.client = bob_client;
    for lifetime in [600, 0] {
        let resp = h.send(&bob, Method::REFRESH, |w| w.add(&Lifetime(lifetime)).unwrap());
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().code, 403);
        assert!(m.has_integrity() && !m.has::<Nonce>());
    }
    let resp = h.send(&bob, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("127.0.0.1:9"))).unwrap());
    assert_eq!(error_code(&resp), Some(403));
    // The live allocation goes at the next sweep, its relay stopped.
    assert_eq!(h.server.allocations().len(), 2);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 1);
    assert_eq!(h.driver.stopped.lock().unwrap().as_slice(), &[bob_relayed]);
    let s = h.server.stats().snapshot();
    assert_eq!((s.revoked_requests, s.revoked_allocations, s.allocations_deleted), (3, 1, 1));
    // A new Allocate with fresh credentials is refused too.
    h.client = addr("127.0.0.1:40002");
    let again = h.login("bob");
    assert_eq!(error_code(&h.send(&again, Method::ALLOCATE, udp)), Some(403));
    assert_eq!(h.server.allocations().len(), 1);

    // revoke_now acts at once: a static user by name.
    h.server.set_revocations(RevocationList::new(["alice"]));
    assert_eq!(h.server.revoke_now(h.now), 1);
    assert!(h.server.allocations().is_empty());
    // Bob is no longer on the list.
    assert_eq!(error_code(&h.send(&again, Method::ALLOCATE, udp)), None);
}

#[test]
fn a_revoked_username_spares_the_users_other_credentials() {
    let mut h = Harness::new(Harness::default_options());
    let old = h.login("carol");
    h.server.set_revocations(RevocationList::new([old.user.as_str()]));
    assert_eq!(error_code(&h.send(&old, Method::ALLOCATE, udp)), Some(403));
    h.advance(5);
    let new = h.login("carol");
    assert_ne!(new.user, old.user);
    assert_eq!(error_code(&h.send(&new, Method::ALLOCATE, udp)), None);
}

#[test]
fn strict_expiry_tears_down_at_the_rest_expiry() {
    for strict in [false, true] {
        let options = ServerOptions { strict_expiry: strict, ..Harness::default_options() };
        let mut h = Harness::new(options);
        let (c, relayed) = h.allocate();
        let expiry: u64 = c.user.split(':').next().unwrap().parse().unwrap();
        assert_eq!(expiry, EPOCH_UNIX + 7200);
        // Refreshed to live past its credential's expiry.
        let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap());
        assert_eq!(error_code(&resp), None);
        let mut c = c;
        for _ in 0..2 {
            h.advance(3000);
            c = h.login_again(c);
            let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap());
            assert_eq!(error_code(&resp), None);
        }
        h.advance(1200);
        assert_eq!(h.unix(), expiry, "the credential is valid through its expiry second");
        h.server.sweep(h.now);
        assert_eq!(h.server.allocations().len(), 1);
        h.advance(1);
        h.server.sweep(h.now);
        let s = h.server.stats().snapshot();
        if strict {
            assert!(h.server.allocations().is_empty());
            assert_eq!(h.driver.stopped.lock().unwrap().as_slice(), &[relayed]);
            assert_eq!(s.credential_expired_allocations, 1);
        } else {
            assert_eq!(h.server.allocations().len(), 1, "without strict expiry it lives out its lifetime");
            assert!(h.driver.stopped.lock().unwrap().is_empty());
            assert_eq!(s.credential_expired_allocations, 0);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Peer policy (the security issue, item 1). Decisions only: the fake driver records sends and
// never touches a network.

// --- Quotas: allocations, permissions and channels per allocation, bandwidth -----------------------

fn is_success(resp: &[u8]) -> bool {
    Message::parse(resp).unwrap().message_type().class == Class::SuccessResponse
}

#[test]
fn denied_peers_get_403_on_create_permission_and_channel_bind_and_are_counted() {
    let mut h = Harness::new(ServerOptions { allow_loopback_peers: false, ..Harness::default_options() });
    let (c, _) = h.allocate();
    let denied = ["127.0.0.1:9", "10.0.0.1:80", "169.254.169.254:80", "0.0.0.0:80", "192.168.1.1:80", "224.0.0.1:5"];
    for peer in denied {
        let resp = h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr(peer))).unwrap());
        assert_eq!(error_code(&resp), Some(403), "CreatePermission {peer}");
        assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4000, addr(peer)))), Some(403));
    }
    assert_eq!(h.server.stats().snapshot().peer_denied, 2 * denied.len() as u64);
    assert!(
        h.server
            .allocations()
            .get(&FiveTuple { transport: Transport::Udp, client: h.client, server: h.local })
            .unwrap()
            .bindings()
            .channel(0x4000, 0)
            .is_none()
    );
    // A public peer is fine (nothing is sent: the fake driver only records).
    let resp = h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("8.8.8.8:53"))).unwrap());
    assert!(is_success(&resp));
}

#[test]
fn send_and_channel_data_to_a_denied_peer_are_dropped() {
    // The operator denies one port of a public host: the permission (no port) is granted, the
    // port is refused on ChannelBind and on every packet.
    let denied_peers = vec!["1.1.1.1@53-53".parse().unwrap()];
    let mut h = Harness::new(ServerOptions { allow_loopback_peers: false, denied_peers, ..Harness::default_options() });
    let (c, relayed) = h.allocate();
    let resp = h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("1.1.1.1:0"))).unwrap());
    assert!(is_success(&resp));
    assert_eq!(send_indication(&mut h, addr("1.1.1.1:53"), b"x"), Outcome::Dropped(DropReason::PeerDenied));
    assert_eq!(send_indication(&mut h, addr("1.1.1.1:54"), b"y"), Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().as_slice(), &[(relayed, addr("1.1.1.1:54"), b"y".to_vec())]);
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4000, addr("1.1.1.1:53")))), Some(403));

    // A channel bound before the policy changed (as a reload would) is checked on every packet.
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, addr("1.1.1.1:54")))));
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"ping" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);
    h.server.policy.store(std::sync::Arc::new(PeerPolicy::new(PeerPolicyConfig {
        denied: vec!["1.1.1.0/24".parse().unwrap()],
        ..Default::default()
    })));
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Dropped(DropReason::PeerDenied));
    assert_eq!(send_indication(&mut h, addr("1.1.1.1:54"), b"z"), Outcome::Dropped(DropReason::PeerDenied));
    assert_eq!(h.driver.sent.lock().unwrap().len(), 2, "nothing more reached the driver");
    let s = h.server.stats().snapshot();
    assert_eq!((s.dropped_peer_denied, s.peer_denied), (3, 1));
}

#[test]
fn two_allocations_of_one_server_reach_each_other_on_relay_ports_only() {
    // The relay is told to clients as 1.2.3.4 (behind 1:1 NAT); 5.6.7.8 is another own address.
    let mut h = Harness::new(ServerOptions {
        allow_loopback_peers: false,
        relay_addresses: vec![RelayAddress { local: addr("127.0.0.1:0").ip(), advertised: addr("1.2.3.4:0").ip() }],
        own_addresses: vec![addr("5.6.7.8:0").ip()],
        ..Harness::default_options()
    });
    let a_client = h.client;
    let (a, a_relayed) = h.allocate();
    h.client = addr("127.0.0.1:40001");
    let (_, b_relayed) = h.allocate();
    h.client = a_client;
    assert_eq!((a_relayed.ip(), b_relayed.ip()), (addr("1.2.3.4:0").ip(), addr("1.2.3.4:0").ip()));
    assert!((50000..=50999).contains(&b_relayed.port()));

    // A permission has no port: an own address passes; each port is judged when used.
    let resp = h.send(&a, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(b_relayed)).unwrap());
    assert!(is_success(&resp));
    assert!(is_success(&h.send(&a, Method::CHANNEL_BIND, channel_bind_body(0x4000, b_relayed))));
    assert_eq!(send_indication(&mut h, b_relayed, b"hi b"), Outcome::Relayed);
    let a_socket = SocketAddr::new(addr("127.0.0.1:0").ip(), a_relayed.port());
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap(), &(a_socket, b_relayed, b"hi b".to_vec()));
    for outside in ["1.2.3.4:3478", "1.2.3.4:22", "1.2.3.4:49999", "1.2.3.4:51000"] {
        let peer = addr(outside);
        assert_eq!(error_code(&h.send(&a, Method::CHANNEL_BIND, channel_bind_body(0x4001, peer))), Some(403));
        assert_eq!(send_indication(&mut h, peer, b"no"), Outcome::Dropped(DropReason::PeerDenied), "{outside}");
    }
    let resp = h.send(&a, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("5.6.7.8:0"))).unwrap());
    assert!(is_success(&resp));
    assert!(is_success(&h.send(&a, Method::CHANNEL_BIND, channel_bind_body(0x4002, addr("5.6.7.8:50010")))));
    assert_eq!(send_indication(&mut h, addr("5.6.7.8:8080"), b"no"), Outcome::Dropped(DropReason::PeerDenied));
    // The local side of the relay (127.0.0.1) is special-purpose: denied even on relay ports.
    let resp = h.send(&a, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(addr("127.0.0.1:50001"))).unwrap());
    assert_eq!(error_code(&resp), Some(403));
}

fn peers(ips: &'static [&'static str]) -> impl Fn(&mut MessageWriter<'_>) {
    move |w: &mut MessageWriter<'_>| {
        for ip in ips {
            w.add(&XorPeerAddress(addr(&format!("{ip}:7000")))).unwrap();
        }
    }
}

fn channel(n: u16, peer: &'static str) -> impl Fn(&mut MessageWriter<'_>) {
    move |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(n)).unwrap();
        w.add(&XorPeerAddress(addr(peer))).unwrap();
    }
}

impl Harness {
    /// A Send indication of `data` from the harness client to `peer`.
    fn send_indication(&mut self, peer: SocketAddr, data: &[u8]) -> Outcome {
        let tid = self.next_tid();
        let mut buf = vec![0u8; data.len() + 100];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), tid).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
        w.add(&Data(data)).unwrap();
        let n = w.finish();
        self.feed(&buf[..n]).0
    }

    /// How many of `count` Send indications of `size` bytes to `peer` were relayed.
    fn sends_passing(&mut self, peer: SocketAddr, count: usize, size: usize) -> usize {
        (0..count).filter(|_| self.send_indication(peer, &vec![7u8; size]) == Outcome::Relayed).count()
    }

    /// How many of `count` datagrams of `size` bytes from `peer` reached the harness client.
    fn peer_datagrams_passing(&self, peer: SocketAddr, count: usize, size: usize) -> usize {
        (0..count).filter(|_| self.peer_sends(peer, &vec![7u8; size]).is_some()).count()
    }

    /// An allocation for `user` from the client address `client` (the harness client moves there).
    fn allocate_as(&mut self, user: &str, client: &str) -> Client {
        self.client = addr(client);
        let c = self.login(user);
        let resp = self.send(&c, Method::ALLOCATE, udp);
        assert!(is_success(&resp), "{:?}", error_code(&resp));
        c
    }
}

#[test]
fn permissions_over_the_cap_get_508_and_refreshes_always_work() {
    let mut h = Harness::new(ServerOptions { max_permissions: 3, ..Harness::default_options() });
    let (c, _) = h.allocate();
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2", "127.0.0.3"]))));
    // Two more would make four: 508, and neither is installed (all or nothing).
    let resp = h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.4", "127.0.0.5"]));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
    assert_eq!(h.send_indication(addr("127.0.0.4:7000"), b"x"), Outcome::Dropped(DropReason::NoPermission));
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.4", "127.0.0.4"]))), "one new");
    let resp = h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.5"]));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
    // At the cap, refreshing live permissions works, and a channel to a permitted IP too.
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2", "127.0.0.3", "127.0.0.4"]))));
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    // A channel to a new IP needs a new permission: 508 as well.
    let resp = h.send(&c, Method::CHANNEL_BIND, channel(0x4001, "127.0.0.5:7000"));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));

    // Expired permissions do not count: keep 127.0.0.2 alive, let the other two lapse.
    h.advance(200);
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    h.advance(150);
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.5", "127.0.0.6"]))));
    let resp = h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.7"]));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
    assert_eq!(h.send_indication(addr("127.0.0.6:7000"), b"x"), Outcome::Relayed);

    // 0 is no limit.
    let mut h = Harness::new(ServerOptions { max_permissions: 0, ..Harness::default_options() });
    let (c, _) = h.allocate();
    for i in 0..4u8 {
        let body = move |w: &mut MessageWriter<'_>| {
            for j in 0..32u8 {
                w.add(&XorPeerAddress(SocketAddr::from(([127, 1, i, j], 7000)))).unwrap();
            }
        };
        assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, body)));
    }
}

#[test]
fn the_default_caps_are_64_permissions_and_64_channels() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    for i in 0..2u8 {
        let body = move |w: &mut MessageWriter<'_>| {
            for j in 0..32u8 {
                w.add(&XorPeerAddress(SocketAddr::from(([127, 1, i, j], 7000)))).unwrap();
            }
        };
        assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, body)));
    }
    let resp = h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
    for n in 0..64u16 {
        let body = move |w: &mut MessageWriter<'_>| {
            w.add(&ChannelNumber(0x4000 + n)).unwrap();
            w.add(&XorPeerAddress(SocketAddr::from(([127, 1, 0, 0], 7000 + n)))).unwrap();
        };
        assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, body)), "channel {n}");
    }
    let resp = h.send(&c, Method::CHANNEL_BIND, channel(0x4100, "127.1.0.0:6000"));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
}

#[test]
fn channels_over_the_cap_get_508_and_refreshes_always_work() {
    let opts = ServerOptions { max_channels: 2, max_permissions: 2, ..Harness::default_options() };
    let mut h = Harness::new(opts);
    let (c, _) = h.allocate();
    assert!(is_success(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap())));
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4001, "127.0.0.2:7001"))));
    let resp = h.send(&c, Method::CHANNEL_BIND, channel(0x4002, "127.0.0.2:7002"));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));
    // The rebinding rules still come first: another peer on a bound channel is 400.
    let resp = h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.3:7000"));
    assert_eq!(error_code(&resp), Some(codes::BAD_REQUEST));
    // Refreshing a bound channel works at the cap.
    h.advance(300);
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    // At 601 s the unrefreshed channel has expired and no longer counts.
    h.advance(301);
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4002, "127.0.0.2:7002"))));
    let resp = h.send(&c, Method::CHANNEL_BIND, channel(0x4003, "127.0.0.2:7003"));
    assert_eq!(error_code(&resp), Some(codes::INSUFFICIENT_CAPACITY));

    // A live channel whose permission lapsed gets it back on refresh even with the permissions
    // full: the refresh of an existing binding is always allowed.
    let opts = ServerOptions { max_channels: 2, max_permissions: 1, ..Harness::default_options() };
    let mut h = Harness::new(opts);
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.2:7000");
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    h.advance(301);
    assert!(h.peer_sends(peer, b"x").is_none(), "the permission lapsed");
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.3"]))));
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    assert_eq!(h.peer_sends(peer, b"x").unwrap(), b"\x40\x00\x00\x01x");
}

#[test]
fn max_bps_drops_and_counts_the_excess_in_each_direction_and_refills() {
    let mut h = Harness::new(ServerOptions { max_bps: 10_000, ..Harness::default_options() });
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.2:7000");
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    // A burst of one second of the rate passes at once; the rest of the 30 kB is dropped.
    assert_eq!(h.sends_passing(peer, 30, 1_000), 10);
    assert_eq!(h.send_indication(peer, b"x"), Outcome::Dropped(DropReason::BandwidthExceeded));
    let s = h.server.stats().snapshot();
    assert_eq!((s.dropped_bandwidth, s.relayed_to_peer), (21, 10));
    assert_eq!(s.dropped(), 21);
    // Peer → client has its own bucket.
    assert_eq!(h.peer_datagrams_passing(peer, 30, 1_000), 10);
    assert_eq!(h.server.stats().snapshot().peer_bandwidth_exceeded, 20);
    // Half a second refills half.
    h.now += Duration::from_millis(500);
    assert_eq!(h.sends_passing(peer, 30, 1_000), 5);
    assert_eq!(h.peer_datagrams_passing(peer, 30, 1_000), 5);
    // A long pause refills to the burst, not beyond.
    h.advance(60);
    assert_eq!(h.sends_passing(peer, 30, 1_000), 10);
    // ChannelData is metered the same way.
    assert!(is_success(&h.send(&c, Method::CHANNEL_BIND, channel(0x4000, "127.0.0.2:7000"))));
    h.advance(60);
    let mut cd = vec![0u8; 1_100];
    let n = ChannelData { channel: 0x4000, data: &[1u8; 1_000] }.encode(false, &mut cd).unwrap();
    let relayed = (0..30).filter(|_| h.feed(&cd[..n]).0 == Outcome::Relayed).count();
    assert_eq!(relayed, 10);
    let five = FiveTuple { transport: Transport::Udp, client: h.client, server: h.local };
    let alloc = h.server.allocations().get(&five).unwrap();
    assert_eq!(
        alloc.counters.dropped_bandwidth.load(std::sync::atomic::Ordering::Relaxed),
        21 + 20 + 25 + 25 + 20 + 20
    );
}

#[test]
fn user_max_bps_is_shared_by_the_allocations_of_one_user() {
    let mut h = Harness::new(ServerOptions { user_max_bps: 10_000, ..Harness::default_options() });
    let peer = addr("127.0.0.2:7000");
    let a = h.allocate_as("bob", "127.0.0.1:40000");
    assert!(is_success(&h.send(&a, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    // A second REST credential for bob (another expiry, so another username) is the same user.
    h.advance(1);
    let b = h.allocate_as("bob", "127.0.0.1:40001");
    assert_ne!(a.user, b.user);
    assert_eq!(h.server.allocations().user_count("bob"), 2);
    assert!(is_success(&h.send(&b, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    h.client = addr("127.0.0.1:40000");
    assert_eq!(h.sends_passing(peer, 6, 1_000), 6);
    h.client = addr("127.0.0.1:40001");
    assert_eq!(h.sends_passing(peer, 10, 1_000), 4, "b gets what a left of bob's 10 kB");
    h.client = addr("127.0.0.1:40000");
    assert_eq!(h.sends_passing(peer, 1, 1_000), 0);
    // Peer → client: bob's other bucket, shared as well.
    assert_eq!(h.peer_datagrams_passing(peer, 7, 1_000), 7);
    h.client = addr("127.0.0.1:40001");
    assert_eq!(h.peer_datagrams_passing(peer, 7, 1_000), 3);
    // Another user has a bucket of its own.
    let c = h.allocate_as("carol", "127.0.0.1:40002");
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    assert_eq!(h.sends_passing(peer, 12, 1_000), 10);
    assert_eq!(h.server.bandwidth().users(), 2);
    // bob's meter goes with bob's last allocation.
    h.advance(700);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(h.server.bandwidth().users(), 0);
}

#[test]
fn bps_capacity_limits_the_server_across_users() {
    let mut h = Harness::new(ServerOptions { bps_capacity: 10_000, ..Harness::default_options() });
    let peer = addr("127.0.0.2:7000");
    let b = h.allocate_as("bob", "127.0.0.1:40000");
    assert!(is_success(&h.send(&b, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    let c = h.allocate_as("carol", "127.0.0.1:40001");
    assert!(is_success(&h.send(&c, Method::CREATE_PERMISSION, peers(&["127.0.0.2"]))));
    assert_eq!(h.sends_passing(peer, 5, 1_000), 5);
    h.client = addr("127.0.0.1:40000");
    assert_eq!(h.sends_passing(peer, 10, 1_000), 5);
    h.client = addr("127.0.0.1:40001");
    assert_eq!(h.sends_passing(peer, 1, 1_000), 0);
    assert_eq!(h.server.stats().snapshot().dropped_bandwidth, 6);
    h.advance(1);
    assert_eq!(h.sends_passing(peer, 12, 1_000), 10);
    // Peer → client is metered apart.
    assert_eq!(h.peer_datagrams_passing(peer, 12, 1_000), 10);
}

#[test]
fn quota_slots_come_back_on_delete_expiry_and_failed_allocates() {
    let mut h = Harness::new(ServerOptions { user_quota: 1, total_quota: 2, ..Harness::default_options() });
    // No free port: 508, and the slot taken before the bind is given back.
    *h.driver.all_busy.lock().unwrap() = true;
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(508));
    *h.driver.all_busy.lock().unwrap() = false;
    assert_eq!(h.server.allocations().quota().total(), 0);
    let bob = h.allocate_as("bob", "127.0.0.1:40000");
    // A fresh REST credential does not buy bob a second allocation.
    h.advance(1);
    h.client = addr("127.0.0.1:40001");
    let again = h.login("bob");
    assert_ne!(again.user, bob.user);
    assert_eq!(error_code(&h.send(&again, Method::ALLOCATE, udp)), Some(486));
    // Deleting gives the slot back.
    h.client = addr("127.0.0.1:40000");
    assert!(is_success(&h.send(&bob, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap())));
    let _ = h.allocate_as("bob", "127.0.0.1:40001");
    // Total: a second user fits, a third does not (508 before 486).
    let _ = h.allocate_as("carol", "127.0.0.1:40002");
    h.client = addr("127.0.0.1:40003");
    let dave = h.login("dave");
    assert_eq!(error_code(&h.send(&dave, Method::ALLOCATE, udp)), Some(508));
    // Expiry gives them back too.
    h.advance(601);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().quota().total(), 0);
    let _ = h.allocate_as("dave", "127.0.0.1:40003");
}

#[test]
fn a_dual_stack_listener_relays_either_family_whatever_the_client_arrived_on() {
    let own = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
    let mut h = Harness::new(ServerOptions { own_addresses: own, ..Harness::default_options() });
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("bob");
    // No REQUESTED-ADDRESS-FAMILY: IPv4 (RFC 8656 §7.2), from the server's own IPv4 address.
    let resp = h.send(&c, Method::ALLOCATE, udp);
    let relayed = Message::parse(&resp).unwrap().get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(relayed.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());
    h.client = addr("[::1]:40001");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    });
    let relayed = Message::parse(&resp).unwrap().get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(relayed.ip(), "::1".parse::<IpAddr>().unwrap());
    // Without an own address of the family: 440.
    let mut h = Harness::new(Harness::default_options());
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(440));
}

/// splitmix64's output function and its inverse: what the server drew its tokens with before they
/// came from ChaCha. One observed token gave the counter, and so the next token.
fn splitmix_mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn splitmix_unmix(mut z: u64) -> u64 {
    fn inverse(a: u64) -> u64 {
        // Newton's iteration for the inverse of an odd number modulo 2^64.
        let mut x = a;
        for _ in 0..6 {
            x = x.wrapping_mul(2u64.wrapping_sub(a.wrapping_mul(x)));
        }
        x
    }
    fn unshift(z: u64, s: u32) -> u64 {
        let mut x = z;
        for _ in 0..(64 / s) {
            x = z ^ (x >> s);
        }
        x
    }
    z = unshift(z, 31);
    z = unshift(z.wrapping_mul(inverse(0x94D0_49BB_1331_11EB)), 27);
    unshift(z.wrapping_mul(inverse(0xBF58_476D_1CE4_E5B9)), 30)
}

/// RESERVATION-TOKENs, CONNECTION-IDs and the server's transaction IDs are capabilities: one seen
/// must not tell the next (a splitmix64 counter did, and another user took a reserved port).
#[test]
fn one_token_does_not_predict_the_next() {
    assert_eq!(splitmix_unmix(splitmix_mix(0x0123_4567_89ab_cdef)), 0x0123_4567_89ab_cdef);
    let h = Harness::new(Harness::default_options());
    for _ in 0..32 {
        let seen = u64::from_be_bytes(h.server.random_token());
        let next = u64::from_be_bytes(h.server.random_token());
        let predicted = splitmix_mix(splitmix_unmix(seen).wrapping_add(0x9E37_79B9_7F4A_7C15));
        assert_ne!(predicted, next, "the next RESERVATION-TOKEN follows from the last one");
    }
    let tids: std::collections::HashSet<[u8; 12]> = (0..1000).map(|_| h.server.random_tid().0).collect();
    assert_eq!(tids.len(), 1000);
}

/// Every unauthenticated answer counts against `rate-limit-unauth`: a Binding answered 420 (an
/// unknown comprehension-required attribute, 2.33× amplification) too, not only the 401
/// challenges. A request of an unknown method gets no answer at all (RFC 8489 §6.3) and takes no
/// token. A plain Binding stays unlimited.
#[test]
fn binding_errors_are_rate_limited_too() {
    let options = ServerOptions { rate_limit_unauth: RateLimit::new(20, 40), ..Harness::default_options() };
    let mut h = Harness::new(options);
    let unknown_attribute = |w: &mut MessageWriter<'_>| w.add_raw(0x0030, &[0; 4]).unwrap();
    let mut answered = 0;
    for i in 0..500u32 {
        h.now = h.epoch + Duration::from_millis(u64::from(i));
        let req = if i % 2 == 0 {
            request(Method::BINDING, tid_of(i), None, unknown_attribute)
        } else {
            request(Method(0x0FF), tid_of(i), None, |_| {})
        };
        match h.feed(&req) {
            (Outcome::Reply(_), resp) => {
                answered += 1;
                assert_eq!(error_code(&resp), Some(420));
            }
            (Outcome::Dropped(DropReason::RateLimited), _) => {}
            (Outcome::Dropped(DropReason::Unexpected), _) if i % 2 == 1 => {}
            other => panic!("{other:?}"),
        }
    }
    assert!((40..=55).contains(&answered), "burst 40 + 20/s, got {answered}");
    // A Binding that succeeds is not limited (rate-limit-binding is off).
    let (o, resp) = h.feed(&request(Method::BINDING, tid_of(9000), None, |_| {}));
    assert!(matches!(o, Outcome::Reply(_)));
    assert_eq!(error_code(&resp), None);
}

/// A signed Allocate replayed byte for byte after its allocation is gone (within the nonce
/// lifetime, from the same address) must not make a new allocation: 438 with a fresh nonce. The
/// client's own retransmission while the allocation lives still gets the cached answer.
#[test]
fn a_replayed_allocate_does_not_recreate_a_deleted_allocation() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let original = request(Method::ALLOCATE, tid_of(77), Some((&c.user, &c.pass, &c.nonce)), udp);
    let (_, first) = h.feed(&original);
    assert_eq!(Message::parse(&first).unwrap().message_type().class, Class::SuccessResponse);
    let (_, again) = h.feed(&original);
    assert_eq!(again, first, "a retransmission gets the cached answer");
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    assert!(h.server.allocations().is_empty());
    h.advance(60);
    let (_, replayed) = h.feed(&original);
    assert_eq!(error_code(&replayed), Some(438), "the replay is not acted on");
    assert!(h.server.allocations().is_empty());
    // A fresh transaction with a fresh nonce works.
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
}

/// An office behind one NAT address: 300 users join within ten seconds, each getting a 401 for an
/// Allocate before authenticating. At the default `rate-limit-unauth` every one of them is answered
/// (the old 20/s with a burst of 40 dropped most of them).
#[test]
fn an_office_behind_one_address_gets_its_challenges_at_the_default_limit() {
    let mut h = Harness::new(Harness::default_options());
    assert_eq!(Harness::default_options().rate_limit_unauth, ServerOptions::DEFAULT_RATE_LIMIT_UNAUTH);
    let mut answered = 0;
    for i in 0..300u32 {
        // 30 a second for 10 s, from ports of one address.
        h.now = h.epoch + Duration::from_millis(u64::from(i) * 33);
        let source = SocketAddr::new("203.0.113.7".parse().unwrap(), 20_000 + i as u16);
        let (o, resp) = h.feed_from(source, &request(Method::ALLOCATE, tid_of(i), None, udp));
        if matches!(o, Outcome::Reply(_)) && error_code(&resp) == Some(401) {
            answered += 1;
        }
    }
    assert_eq!(answered, 300);
}
