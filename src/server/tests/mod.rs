//! (A test module: declared under #[cfg(test)] in its parent.)
//! Scenario tests of the sans-IO server on a fake clock: every TURN method, every error code,
//! retransmissions, expiry, stale nonces and expired REST usernames.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::auth::{AuthConfig, Authenticator, RestCredentials, Secret, StaticCredential};
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::*;

const REALM: &str = "test.realm";
const SECRET: &str = "s3cret";
const EPOCH_UNIX: u64 = 1_800_000_000;

/// The crate's fake relay driver, recording what the core asks.
type FakeDriver = crate::testing::FakeRelay;

struct Harness {
    server: Server<FakeDriver>,
    driver: FakeDriver,
    epoch: Instant,
    now: Instant,
    client: SocketAddr,
    local: SocketAddr,
    tid: u8,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn auth_config() -> AuthConfig {
    let mut c = AuthConfig::new(REALM);
    c.rest = Some(RestCredentials::new(vec![Secret::new(SECRET)]));
    let mut users = HashMap::new();
    users.insert("alice".to_string(), StaticCredential::Password("wonderland".into()));
    c.users = users;
    c
}

impl Harness {
    fn new(options: ServerOptions) -> Self {
        let driver = FakeDriver::recording();
        let epoch = Instant::now();
        let auth = Authenticator::new(auth_config(), [7u8; 32]);
        let server = Server::with_relay(options, Some(auth), driver.clone(), epoch, EPOCH_UNIX);
        Harness {
            server,
            driver,
            epoch,
            now: epoch,
            client: addr("127.0.0.1:40000"),
            local: addr("127.0.0.1:3478"),
            tid: 0,
        }
    }

    fn default_options() -> ServerOptions {
        ServerOptions { allow_loopback_peers: true, min_port: 50000, max_port: 50999, ..ServerOptions::default() }
    }

    fn advance(&mut self, secs: u64) {
        self.now += Duration::from_secs(secs);
    }

    fn unix(&self) -> u64 {
        EPOCH_UNIX + self.now.duration_since(self.epoch).as_secs()
    }

    /// A REST username valid for two hours from now, and its password.
    fn rest_credentials(&self, user: &str) -> (String, String) {
        let rest = RestCredentials::new(vec![Secret::new(SECRET)]);
        rest.mint(user, 7200, self.unix()).unwrap()
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid += 1;
        TransactionId([self.tid; 12])
    }

    fn feed(&self, data: &[u8]) -> (Outcome, Vec<u8>) {
        self.feed_from(self.client, data)
    }

    fn feed_from(&self, client: SocketAddr, data: &[u8]) -> (Outcome, Vec<u8>) {
        let rx = Received { transport: Transport::Udp, source: client, local: self.local, data };
        let mut out = vec![0u8; 1500];
        let o = self.server.handle(self.now, &rx, &mut out);
        let n = match o {
            Outcome::Reply(n) | Outcome::ReplyVia { len: n, .. } => n,
            _ => 0,
        };
        out.truncate(n);
        (o, out)
    }
}

mod admission;
mod conformance;
mod dual;
mod events;
mod hook;
mod icmp;
mod lease;
mod mobility;
mod oauth;
mod policy_hooks;
mod relay_ips;
mod rfc5780;
mod rfc6062;
mod rfc8489;
mod security;

/// Builds a request; `creds` = (username, password, nonce) signs it with the long-term key.
fn request(
    method: Method,
    tid: TransactionId,
    creds: Option<(&str, &str, &str)>,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let signer = creds.map(|(u, p, n)| crate::testing::Signer::password(u, REALM, p, n));
    crate::testing::signed_with(method, tid, signer.as_ref(), true, body)
}

fn error_code(bytes: &[u8]) -> Option<u16> {
    let m = Message::parse(bytes).unwrap();
    m.get::<ErrorCode>().ok().map(|e| e.code)
}

fn udp(w: &mut MessageWriter<'_>) {
    w.add(&RequestedTransport::UDP).unwrap();
}

/// A client with credentials and the server's current nonce.
#[derive(Clone)]
struct Client {
    user: String,
    pass: String,
    nonce: String,
}

impl Harness {
    /// Does the 401 round trip and returns credentials with a nonce.
    fn login(&mut self, user: &str) -> Client {
        let (u, p) =
            if user == "alice" { ("alice".to_string(), "wonderland".to_string()) } else { self.rest_credentials(user) };
        let tid = self.next_tid();
        let (o, resp) = self.feed(&request(Method::ALLOCATE, tid, None, udp));
        assert!(matches!(o, Outcome::Reply(_)));
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
        assert_eq!(m.get::<Realm>().unwrap().0, REALM);
        assert!(!m.has_integrity(), "a 401 must not be signed");
        let nonce = m.get::<Nonce>().unwrap().0.to_string();
        Client { user: u, pass: p, nonce }
    }

    fn send(&mut self, c: &Client, method: Method, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let tid = self.next_tid();
        let (_, resp) = self.feed(&request(method, tid, Some((&c.user, &c.pass, &c.nonce)), body));
        resp
    }

    fn allocate(&mut self) -> (Client, SocketAddr) {
        let c = self.login("bob");
        let resp = self.send(&c, Method::ALLOCATE, udp);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
        let relayed = m.get::<XorRelayedAddress>().unwrap().0;
        (c, relayed)
    }

    /// A datagram from `peer` to the allocation of the harness client; returns what the client gets.
    fn peer_sends(&self, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        let five = FiveTuple { transport: Transport::Udp, client: self.client, server: self.local };
        let alloc = self.server.allocations().get(&five)?;
        let mut buf = vec![0u8; HEADROOM + data.len() + 3];
        buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
        let r = self.server.relay_from_peer(self.now, &alloc, peer, &mut buf, data.len())?;
        Some(buf[r].to_vec())
    }
}

#[test]
fn allocate_success_is_signed_and_carries_the_addresses() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&Lifetime(777)).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::ALLOCATE, Class::SuccessResponse));
    let key = IntegrityKey::new(&long_term_key_md5(&c.user, REALM, &c.pass));
    assert_eq!(m.verify_integrity(&key), Ok(()));
    assert_eq!(m.verify_fingerprint(), Ok(()));
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(relayed.ip(), h.local.ip());
    assert!((50000..=50999).contains(&relayed.port()));
    assert_eq!(m.get::<XorMappedAddress>().unwrap().0, h.client);
    assert_eq!(m.get::<Lifetime>().unwrap().0, 777);
    assert_eq!(h.driver.started.lock().unwrap().as_slice(), &[relayed]);
    assert_eq!(h.server.allocations().len(), 1);
}

#[test]
fn lifetime_is_clamped_between_default_and_max() {
    for (asked, granted) in [(None, 600), (Some(30), 600), (Some(1200), 1200), (Some(99_999), 3600)] {
        let mut h = Harness::new(Harness::default_options());
        let c = h.login("bob");
        let resp = h.send(&c, Method::ALLOCATE, |w| {
            udp(w);
            if let Some(l) = asked {
                w.add(&Lifetime(l)).unwrap();
            }
        });
        assert_eq!(Message::parse(&resp).unwrap().get::<Lifetime>().unwrap().0, granted, "asked {asked:?}");
    }
}

#[test]
fn retransmitted_allocate_gets_the_same_answer_and_no_second_allocation() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let tid = h.next_tid();
    let req = request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), udp);
    let (_, first) = h.feed(&req);
    let (_, again) = h.feed(&req);
    assert_eq!(first, again);
    assert_eq!(h.driver.bound.lock().unwrap().len(), 1);
    // A new transaction on the same 5-tuple is a mismatch.
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(error_code(&resp), Some(codes::ALLOCATION_MISMATCH));
}

#[test]
fn bad_credentials_get_401_and_no_state() {
    let mut h = Harness::new(Harness::default_options());
    let mut c = h.login("bob");
    c.pass = "wrong".into();
    let resp = h.send(&c, Method::ALLOCATE, udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    assert!(m.has::<Nonce>() && m.has::<Realm>());
    assert_eq!(h.server.allocations().len(), 0);
    assert!(h.driver.bound.lock().unwrap().is_empty());
    // Unknown static user.
    let c = Client { user: "mallory".into(), pass: "x".into(), nonce: c.nonce };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(401));
}

#[test]
fn missing_username_with_integrity_is_400() {
    let mut h = Harness::new(Harness::default_options());
    let tid = h.next_tid();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid).unwrap();
    udp(&mut w);
    w.add_message_integrity(&IntegrityKey::new(b"k")).unwrap();
    let n = w.finish();
    let (_, resp) = h.feed(&buf[..n]);
    assert_eq!(error_code(&resp), Some(400));
}

#[test]
fn static_users_and_rest_work_side_by_side() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("alice");
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    h.client = addr("127.0.0.1:40001");
    let (_, _) = h.allocate();
    assert_eq!(h.server.allocations().len(), 2);
}

#[test]
fn stale_nonce_gets_438_with_a_fresh_nonce() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    h.advance(3601);
    let resp = h.send(&c, Method::ALLOCATE, udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 438);
    let fresh = m.get::<Nonce>().unwrap().0.to_string();
    assert_ne!(fresh, c.nonce);
    let c = Client { nonce: fresh, ..c };
    let resp = h.send(&c, Method::ALLOCATE, udp);
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    assert_eq!(h.server.stats().snapshot().stale_nonces, 1);
}

#[test]
fn expired_rest_username_is_refused_on_refresh_too() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    // Keep the allocation alive past the username's two hours; the nonce goes stale on the way.
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    for _ in 0..2 {
        h.advance(3000);
        let c2 = h.login_again(c.clone());
        let resp = h.send(&c2, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap());
        assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    }
    h.advance(3000);
    // RFC 8489 §9.2.4: the username is judged before the nonce, so its stale nonce does not matter
    // (this was a 438 first when the nonce was checked first); a fresh nonce does not help.
    let resp = h.send(&c, Method::REFRESH, |_| {});
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    let c = Client { nonce: m.get::<Nonce>().unwrap().0.to_string(), ..c };
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |_| {})), Some(401));
}

#[test]
fn allocate_attribute_errors() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, |_| {})), Some(400), "no REQUESTED-TRANSPORT");
    // RFC 6062 §5.1: TCP over a UDP client connection is 400; an unknown protocol 442.
    let tcp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::TCP).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, tcp)), Some(400));
    let sctp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport(132)).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, sctp)), Some(442));
    let v6 = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, v6)), Some(440));
    let bad_family = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add_raw(types::REQUESTED_ADDRESS_FAMILY, &[0x03, 0, 0, 0]).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, bad_family)), Some(440));
    let token_and_even = |w: &mut MessageWriter<'_>| {
        udp(w);
        w.add(&EvenPort { reserve_next: false }).unwrap();
        w.add(&ReservationToken([1; 8])).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, token_and_even)), Some(400));
    assert_eq!(h.server.allocations().len(), 0);
}

#[test]
fn unknown_comprehension_required_attribute_gets_420() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add_raw(0x7F01, b"????").unwrap();
        w.add_raw(0xC001, b"fine").unwrap(); // comprehension-optional: ignored
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 420);
    assert_eq!(m.get::<UnknownAttributes>().unwrap().as_slice(), &[0x7F01]);
}

#[test]
fn wrong_credentials_on_an_existing_allocation_get_441() {
    let mut h = Harness::new(Harness::default_options());
    let (_, _) = h.allocate();
    let other = h.login("carol");
    let resp = h.send(&other, Method::REFRESH, |_| {});
    assert_eq!(error_code(&resp), Some(441));
}

#[test]
fn user_quota_answers_486_and_total_quota_508() {
    let mut h = Harness::new(ServerOptions { user_quota: 1, ..Harness::default_options() });
    let (_, _) = h.allocate();
    h.client = addr("127.0.0.1:40001");
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(486));
    let c = h.login("dave");
    assert_eq!(
        Message::parse(&h.send(&c, Method::ALLOCATE, udp)).unwrap().message_type().class,
        Class::SuccessResponse
    );

    let mut h = Harness::new(ServerOptions { total_quota: 1, ..Harness::default_options() });
    let (_, _) = h.allocate();
    h.client = addr("127.0.0.1:40001");
    let c = h.login("erin");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(508));
}

#[test]
fn no_free_port_answers_508_and_busy_ports_are_skipped() {
    let mut h = Harness::new(ServerOptions { min_port: 50000, max_port: 50003, ..Harness::default_options() });
    *h.driver.busy_ports.lock().unwrap() = vec![50000, 50001, 50002];
    let (_, relayed) = h.allocate();
    assert_eq!(relayed.port(), 50003);
    h.client = addr("127.0.0.1:40001");
    *h.driver.all_busy.lock().unwrap() = true;
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(508));
}

#[test]
fn even_port_reserves_the_next_port_for_a_token() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&EvenPort { reserve_next: true }).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(relayed.port() % 2, 0);
    let token = m.get::<ReservationToken>().unwrap();
    h.client = addr("127.0.0.1:40001");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&token).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<XorRelayedAddress>().unwrap().0.port(), relayed.port() + 1);
    // A token works once.
    h.client = addr("127.0.0.1:40002");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&token).unwrap();
    });
    assert_eq!(error_code(&resp), Some(508));
}

#[test]
fn methods_without_an_allocation_get_437() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let peer = addr("127.0.0.1:9000");
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |_| {})), Some(437));
    assert_eq!(
        error_code(&h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap())),
        Some(437)
    );
    let bind = |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(0x4000)).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind)), Some(437));
}

#[test]
fn create_permission_errors() {
    let mut h = Harness::new(ServerOptions { allow_loopback_peers: false, ..Harness::default_options() });
    let (c, _) = h.allocate();
    let perm = |p: &'static str| move |w: &mut MessageWriter<'_>| w.add(&XorPeerAddress(addr(p))).unwrap();
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, |_| {})), Some(400));
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, perm("127.0.0.1:9000"))), Some(403));
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, perm("[::ffff:127.0.0.1]:9000"))), Some(443));
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, perm("0.0.0.0:9000"))), Some(403));
    // All or nothing: one bad peer refuses the lot.
    let two = |w: &mut MessageWriter<'_>| {
        w.add(&XorPeerAddress(addr("1.1.1.1:1"))).unwrap();
        w.add(&XorPeerAddress(addr("127.0.0.1:1"))).unwrap();
    };
    assert_eq!(error_code(&h.send(&c, Method::CREATE_PERMISSION, two)), Some(403));
    assert!(h.peer_sends(addr("1.1.1.1:1"), b"x").is_none());
    assert_eq!(h.server.stats().snapshot().peer_denied, 3);
}

#[test]
fn permissions_gate_both_directions_and_expire() {
    let mut h = Harness::new(Harness::default_options());
    let (c, relayed) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    let send = |h: &mut Harness, data: &[u8]| send_indication(h, peer, data);
    assert_eq!(send(&mut h, b"early"), Outcome::Dropped(DropReason::NoPermission));
    assert!(h.peer_sends(peer, b"early").is_none());

    let resp = h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    assert_eq!(send(&mut h, b"hello"), Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap(), &(relayed, peer, b"hello".to_vec()));
    // Any port of a permitted IP may answer (permissions carry no port).
    let reply = h.peer_sends(addr("127.0.0.1:9999"), b"world").unwrap();
    let m = Message::parse(&reply).unwrap();
    assert_eq!(m.message_type(), MessageType::new(Method::DATA, Class::Indication));
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, addr("127.0.0.1:9999"));
    assert_eq!(m.get::<Data>().unwrap().0, b"world");

    h.advance(301);
    assert_eq!(send(&mut h, b"late"), Outcome::Dropped(DropReason::NoPermission));
    assert!(h.peer_sends(peer, b"late").is_none());
}

#[test]
fn channels_bind_relay_and_follow_the_rebinding_rules() {
    let mut h = Harness::new(Harness::default_options());
    let (c, relayed) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    let bind = |n: u16, p: SocketAddr| {
        move |w: &mut MessageWriter<'_>| {
            w.add(&ChannelNumber(n)).unwrap();
            w.add(&XorPeerAddress(p)).unwrap();
        }
    };
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind(0x3FFF, peer))), Some(400));
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind(0x8000, peer))), Some(400));
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, |w| w.add(&XorPeerAddress(peer)).unwrap())), Some(400));
    let ok = h.send(&c, Method::CHANNEL_BIND, bind(0x4001, peer));
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
    // Same binding again refreshes; another peer on the channel or another channel for the peer: 400.
    let again = h.send(&c, Method::CHANNEL_BIND, bind(0x4001, peer));
    assert_eq!(Message::parse(&again).unwrap().message_type().class, Class::SuccessResponse);
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind(0x4001, addr("127.0.0.1:9001")))), Some(400));
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind(0x4002, peer))), Some(400));

    // Client → peer over the channel.
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"ping" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);
    assert_eq!(h.driver.sent.lock().unwrap().last().unwrap(), &(relayed, peer, b"ping".to_vec()));
    // An unbound channel is dropped.
    let n = ChannelData { channel: 0x4005, data: b"ping" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Dropped(DropReason::NoChannel));
    // Peer → client comes back as ChannelData; another port of the same IP as a Data indication.
    assert_eq!(h.peer_sends(peer, b"pong").unwrap(), b"\x40\x01\x00\x04pong");
    let other = h.peer_sends(addr("127.0.0.1:9001"), b"pong").unwrap();
    assert!(Message::parse(&other).is_ok());

    // The permission lapses at 300 s unless refreshed; the channel at 600 s. (The allocation is
    // refreshed to outlive both.)
    let ok = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(3600)).unwrap());
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
    h.advance(301);
    assert!(h.peer_sends(peer, b"x").is_none());
    let ok = h.send(&c, Method::CHANNEL_BIND, bind(0x4001, peer));
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
    assert!(h.peer_sends(peer, b"x").is_some());
    h.advance(601);
    // Both gone now: the channel may be bound to another peer.
    let ok = h.send(&c, Method::CHANNEL_BIND, bind(0x4001, addr("127.0.0.1:9001")));
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
}

#[test]
fn old_channel_numbers_are_accepted_unless_strict() {
    let peer = addr("127.0.0.1:9000");
    let bind = |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(0x74DB)).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    };
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let ok = h.send(&c, Method::CHANNEL_BIND, bind);
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x74DB, data: b"ping" }.encode(false, &mut cd).unwrap();
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Relayed);

    let mut h = Harness::new(ServerOptions { strict_rfc8656: true, ..Harness::default_options() });
    let (c, _) = h.allocate();
    assert_eq!(error_code(&h.send(&c, Method::CHANNEL_BIND, bind)), Some(400));
    assert_eq!(h.feed(&cd[..n]).0, Outcome::Dropped(DropReason::NotStunOrChannelData));
}

#[test]
fn refresh_extends_and_zero_deletes() {
    let mut h = Harness::new(Harness::default_options());
    let (c, relayed) = h.allocate();
    h.advance(500);
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(1000)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().get::<Lifetime>().unwrap().0, 1000);
    h.advance(900); // past the first 600 s, within the refreshed 1000 s
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 1);
    let c = h.login_again(c);
    let resp = h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap());
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<Lifetime>().unwrap().0, 0);
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(h.driver.stopped.lock().unwrap().as_slice(), &[relayed]);
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |w| w.add(&Lifetime(0)).unwrap())), Some(437));
}

impl Harness {
    /// A fresh nonce for an existing client (after the clock moved past the nonce lifetime).
    fn login_again(&mut self, c: Client) -> Client {
        let resp = self.send(&c, Method::REFRESH, |_| {});
        match Message::parse(&resp).unwrap().get::<Nonce>() {
            Ok(n) if error_code(&resp) == Some(438) => Client { nonce: n.0.to_string(), ..c },
            _ => c,
        }
    }
}

#[test]
fn allocations_expire_and_free_their_port() {
    let mut h = Harness::new(Harness::default_options());
    let (_, relayed) = h.allocate();
    h.advance(599);
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 1);
    h.advance(2);
    // Data stops at once, before any sweep.
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"x" }.encode(false, &mut cd).unwrap();
    assert!(matches!(h.feed(&cd[..n]).0, Outcome::Dropped(_)));
    h.server.sweep(h.now);
    assert_eq!(h.server.allocations().len(), 0);
    assert_eq!(h.driver.stopped.lock().unwrap().as_slice(), &[relayed]);
    assert_eq!(h.server.stats().snapshot().allocations_deleted, 1);
}

#[test]
fn binding_still_works_and_unknown_methods_are_discarded() {
    let mut h = Harness::new(Harness::default_options());
    let tid = h.next_tid();
    let (_, resp) = h.feed(&request(Method::BINDING, tid, None, |_| {}));
    assert_eq!(Message::parse(&resp).unwrap().get::<XorMappedAddress>().unwrap().0, h.client);
    // RFC 8489 §6.3: an unsupported method is silently discarded.
    let tid = h.next_tid();
    assert_eq!(h.feed(&request(Method(0x0FF), tid, None, |_| {})).0, Outcome::Dropped(DropReason::Unexpected));
    // Connect (RFC 6062) is a TURN method: without credentials, 401.
    let tid = h.next_tid();
    let (_, resp) = h.feed(&request(Method::CONNECT, tid, None, |_| {}));
    assert_eq!(error_code(&resp), Some(401));
}

#[test]
fn stun_only_server_answers_turn_requests_400() {
    let server = Server::new(ServerOptions::default());
    let rx_data = request(Method::ALLOCATE, TransactionId([1; 12]), None, udp);
    let rx =
        Received { transport: Transport::Udp, source: addr("127.0.0.1:1"), local: addr("127.0.0.1:2"), data: &rx_data };
    let mut out = [0u8; 512];
    let Outcome::Reply(n) = server.handle(Instant::now(), &rx, &mut out) else { panic!() };
    assert_eq!(error_code(&out[..n]), Some(400));
}

#[test]
fn send_indication_errors_are_silent() {
    let mut h = Harness::new(Harness::default_options());
    let (_, _) = h.allocate();
    let tid = h.next_tid();
    let mut buf = vec![0u8; 256];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), tid).unwrap();
    w.add(&Data(b"no peer")).unwrap();
    let n = w.finish();
    assert_eq!(h.feed(&buf[..n]).0, Outcome::Dropped(DropReason::BadData));
    // From a 5-tuple with no allocation.
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), tid).unwrap();
    w.add(&XorPeerAddress(addr("127.0.0.1:9"))).unwrap();
    w.add(&Data(b"x")).unwrap();
    let n = w.finish();
    assert_eq!(h.feed_from(addr("127.0.0.1:1"), &buf[..n]).0, Outcome::Dropped(DropReason::NoAllocation));
}

#[test]
fn data_indication_to_an_ipv6_client_fits_the_headroom() {
    let mut h = Harness::new(ServerOptions {
        relay_addresses: vec![RelayAddress {
            local: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            advertised: IpAddr::from([0x2001u16, 0xdb8, 0, 0, 0, 0, 0, 1]),
        }],
        ..Harness::default_options()
    });
    h.client = addr("[::1]:40000");
    h.local = addr("[::1]:3478");
    let c = h.login("bob");
    let resp = h.send(&c, Method::ALLOCATE, |w| {
        udp(w);
        w.add(&RequestedAddressFamily(AddressFamily::V6)).unwrap();
    });
    let m = Message::parse(&resp).unwrap();
    let relayed = m.get::<XorRelayedAddress>().unwrap().0;
    assert_eq!(relayed.ip(), "2001:db8::1".parse::<IpAddr>().unwrap(), "the advertised address");
    let peer = addr("[::1]:9000");
    let resp = h.send(&c, Method::CREATE_PERMISSION, |w| w.add(&XorPeerAddress(peer)).unwrap());
    assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
    let out = h.peer_sends(peer, b"abcde").unwrap();
    let m = Message::parse(&out).unwrap();
    assert_eq!(m.get::<XorPeerAddress>().unwrap().0, peer);
    assert_eq!(m.get::<Data>().unwrap().0, b"abcde");
}

#[test]
fn retransmitted_requests_on_an_allocation_get_the_same_bytes() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let tid = h.next_tid();
    let peer = addr("127.0.0.1:9000");
    let req = request(Method::CREATE_PERMISSION, tid, Some((&c.user, &c.pass, &c.nonce)), |w| {
        w.add(&XorPeerAddress(peer)).unwrap();
    });
    let (_, first) = h.feed(&req);
    h.advance(10);
    let (_, again) = h.feed(&req);
    assert_eq!(first, again);
    assert_eq!(Message::parse(&first).unwrap().message_type().class, Class::SuccessResponse);
}

#[test]
fn the_cached_key_path_still_refuses_a_wrong_password() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let bad = Client { pass: "not-the-password".into(), ..c.clone() };
    assert_eq!(error_code(&h.send(&bad, Method::REFRESH, |_| {})), Some(401));
    let ok = h.send(&c, Method::REFRESH, |_| {});
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
}

#[test]
fn allocations_over_tcp_are_keyed_by_the_tcp_five_tuple() {
    let mut h = Harness::new(Harness::default_options());
    let c = h.login("bob");
    let tid = h.next_tid();
    let req = request(Method::ALLOCATE, tid, Some((&c.user, &c.pass, &c.nonce)), udp);
    let rx = Received { transport: Transport::Tcp, source: h.client, local: h.local, data: &req };
    let mut out = vec![0u8; 1500];
    let Outcome::Reply(n) = h.server.handle(h.now, &rx, &mut out) else { panic!() };
    assert_eq!(Message::parse(&out[..n]).unwrap().message_type().class, Class::SuccessResponse);
    let tcp = FiveTuple { transport: Transport::Tcp, client: h.client, server: h.local };
    assert!(h.server.allocations().get(&tcp).is_some());
    // The same addresses over UDP are another 5-tuple: no allocation there.
    assert_eq!(error_code(&h.send(&c, Method::REFRESH, |_| {})), Some(437));
    h.server.close_allocation(h.now, &tcp, crate::server::EndReason::ConnectionClosed);
    assert_eq!(h.server.allocations().len(), 0);
}

#[test]
fn a_wildcard_listener_without_relay_address_never_advertises_0_0_0_0() {
    let mut h = Harness::new(Harness::default_options());
    h.local = addr("0.0.0.0:3478");
    let c = h.login("bob");
    assert_eq!(error_code(&h.send(&c, Method::ALLOCATE, udp)), Some(508));
    assert!(h.driver.bound.lock().unwrap().is_empty());
}

/// RFC 8656 §14: the ECN codepoint a client datagram arrived with reaches the driver with the
/// data to the peer (ChannelData and Send indication); Not-ECT takes the plain `send_to_peer`.
#[test]
fn the_ecn_codepoint_of_client_data_goes_to_the_peer() {
    let mut h = Harness::new(Harness::default_options());
    let (c, _) = h.allocate();
    let peer = addr("127.0.0.1:9000");
    let ok = h.send(&c, Method::CHANNEL_BIND, channel_bind_body(0x4001, peer));
    assert_eq!(Message::parse(&ok).unwrap().message_type().class, Class::SuccessResponse);
    let mut cd = vec![0u8; 16];
    let n = ChannelData { channel: 0x4001, data: b"ping" }.encode(false, &mut cd).unwrap();
    let mut send = vec![0u8; 128];
    let mut w = MessageWriter::new(&mut send, MessageType::new(Method::SEND, Class::Indication), h.next_tid()).unwrap();
    w.add(&XorPeerAddress(peer)).unwrap();
    w.add(&Data(b"ping")).unwrap();
    let m = w.finish();
    let mut out = vec![0u8; 1500];
    for (data, ecn) in [(&cd[..n], Ecn::Ect0), (&send[..m], Ecn::Ce), (&cd[..n], Ecn::NotEct), (&send[..m], Ecn::Ect1)]
    {
        let rx = Received { transport: Transport::Udp, source: h.client, local: h.local, data };
        assert_eq!(h.server.handle_ecn(h.now, &rx, ecn, &mut out), Outcome::Relayed);
    }
    assert_eq!(h.driver.sent.lock().unwrap().len(), 4);
    assert_eq!(*h.driver.sent_ecn.lock().unwrap(), [Ecn::Ect0, Ecn::Ce, Ecn::Ect1]);
    assert_eq!(Ecn::from_bits(0b1110_0110), Ecn::Ect0, "the two low bits of a TOS byte");
}

/// A Send indication from the harness client to `peer`.
fn send_indication(h: &mut Harness, peer: SocketAddr, data: &[u8]) -> Outcome {
    let tid = h.next_tid();
    let mut buf = vec![0u8; 1500];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), tid).unwrap();
    w.add(&XorPeerAddress(peer)).unwrap();
    w.add(&Data(data)).unwrap();
    let n = w.finish();
    h.feed(&buf[..n]).0
}

fn channel_bind_body(n: u16, peer: SocketAddr) -> impl FnOnce(&mut MessageWriter<'_>) {
    move |w: &mut MessageWriter<'_>| {
        w.add(&ChannelNumber(n)).unwrap();
        w.add(&XorPeerAddress(peer)).unwrap();
    }
}
