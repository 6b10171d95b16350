//! (A test module: declared under #[cfg(test)] in its parent.)
//! The client core on a fake clock: against scripted answers, and against the sans-IO server core
//! ([`crate::server::Server`]) in the same process — no sockets — through allocate, refresh,
//! permissions, channels, data both ways, expiry and loss.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::alloc::FiveTuple;
use crate::auth::{AuthConfig, Authenticator, StaticCredential};
use crate::proto::stun::{Class, ErrorCode, Message, MessageWriter, Method, Nonce, Realm, Username, codes};
use crate::server::{HEADROOM, Outcome as ServerOutcome, Received, Server, ServerOptions, Transport};
use crate::testing::FakeRelay;

const REALM: &str = "test.realm";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn server_core(epoch: Instant) -> (Server<FakeRelay>, FakeRelay) {
    let mut config = AuthConfig::new(REALM);
    let mut users = HashMap::new();
    users.insert("alice".to_string(), StaticCredential::Password("wonderland".into()));
    config.users = users;
    let relay = FakeRelay::recording();
    let options =
        ServerOptions { allow_loopback_peers: true, min_port: 50000, max_port: 50999, ..ServerOptions::default() };
    let server =
        Server::with_relay(options, Some(Authenticator::new(config, [7u8; 32])), relay.clone(), epoch, 1_800_000_000);
    (server, relay)
}

/// The client core and the server core on one fake clock, the "network" between them a function
/// call that can lose or duplicate answers.
struct Pair {
    client: ClientAllocation,
    server: Server<FakeRelay>,
    relay: FakeRelay,
    epoch: Instant,
    now: Instant,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    transport: Transport,
    /// Lose the next n datagrams to the server / to the client.
    lose_to_server: u32,
    lose_to_client: u32,
    /// Deliver every answer twice.
    duplicate: bool,
    /// The times (ms from the epoch) at which the client sent, and what.
    sent: Vec<(u64, Vec<u8>)>,
    events: Vec<(u64, Event)>,
}

impl Pair {
    fn new(config: ClientConfig) -> Self {
        let epoch = Instant::now();
        let (server, relay) = server_core(epoch);
        let server_addr = addr("127.0.0.1:3478");
        let transport = if config.reliable { Transport::Tcp } else { Transport::Udp };
        let client = ClientAllocation::new(epoch, server_addr, Credentials::new("alice", "wonderland"), config);
        Pair {
            transport,
            client,
            server,
            relay,
            epoch,
            now: epoch,
            client_addr: addr("127.0.0.1:40000"),
            server_addr,
            lose_to_server: 0,
            lose_to_client: 0,
            duplicate: false,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn at(&self) -> u64 {
        self.now.duration_since(self.epoch).as_millis() as u64
    }

    /// Moves what is due both ways at `now`, until nothing moves.
    fn exchange(&mut self) {
        for _ in 0..1000 {
            let Some(t) = self.client.poll_transmit(self.now) else { break };
            assert_eq!(t.destination, self.server_addr);
            self.sent.push((self.at(), t.bytes.clone()));
            if self.lose_to_server > 0 {
                self.lose_to_server -= 1;
                continue;
            }
            let rx = Received {
                transport: Transport::Udp,
                source: self.client_addr,
                local: self.server_addr,
                data: &t.bytes,
            };
            let mut out = vec![0u8; 1500];
            let n = match self.server.handle(self.now, &rx, &mut out) {
                ServerOutcome::Reply(n) | ServerOutcome::ReplyVia { len: n, .. } => n,
                _ => continue,
            };
            if self.lose_to_client > 0 {
                self.lose_to_client -= 1;
                continue;
            }
            let answer = &out[..n];
            self.client.handle_input(self.now, self.server_addr, answer);
            if self.duplicate {
                self.client.handle_input(self.now, self.server_addr, answer);
            }
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push((self.at(), e));
        }
    }

    /// Runs the clock to `until` (ms from the epoch), waking the client when it asks.
    fn run_to(&mut self, until: u64) {
        let end = self.epoch + ms(until);
        for _ in 0..100_000 {
            self.exchange();
            match self.client.poll_timeout() {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.client.handle_timeout(self.now);
                }
                _ => {
                    self.now = end;
                    self.exchange();
                    return;
                }
            }
        }
        panic!("the client never settled");
    }

    /// The events since the last call.
    fn take(&mut self) -> Vec<(u64, Event)> {
        std::mem::take(&mut self.events)
    }

    /// `peer` sends `data` to the relayed address; the client gets what the server relays.
    fn peer_sends(&mut self, peer: SocketAddr, data: &[u8]) -> bool {
        let five = FiveTuple { transport: self.transport, client: self.client_addr, server: self.server_addr };
        let Some(alloc) = self.server.allocations().get(&five) else { return false };
        let mut buf = vec![0u8; HEADROOM + data.len() + 3];
        buf[HEADROOM..HEADROOM + data.len()].copy_from_slice(data);
        let Some(r) = self.server.relay_from_peer(self.now, &alloc, peer, &mut buf, data.len()) else { return false };
        self.client.handle_input(self.now, self.server_addr, &buf[r]);
        true
    }

    /// What the server relayed to peers so far.
    fn relayed(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        self.relay.sent().into_iter().collect()
    }
}

fn is_signed(bytes: &[u8]) -> bool {
    Message::parse(bytes).unwrap().has_integrity()
}

/// The method of a STUN message; `None` for ChannelData.
fn method_of(bytes: &[u8]) -> Option<Method> {
    Message::parse(bytes).ok().map(|m| m.message_type().method)
}

#[test]
fn the_client_core_against_the_server_core() {
    let mut p = Pair::new(ClientConfig::default());
    p.run_to(0);
    // RFC 8489 §9.2: the Allocate without credentials, 401, again signed.
    assert_eq!(p.sent.len(), 2);
    assert!(!is_signed(&p.sent[0].1) && is_signed(&p.sent[1].1));
    let relayed = match p.take().as_slice() {
        [(0, Event::Allocated { relayed, mapped, lifetime: 600 })] => {
            assert_eq!(*mapped, p.client_addr);
            *relayed
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(p.client.relayed_addr(), Some(relayed));

    // A permission, then data both ways as Send and Data indications (RFC 8656 §11).
    let peer = addr("127.0.0.1:6000");
    p.run_to(10);
    p.client.create_permission(p.now, peer.ip());
    p.exchange();
    assert_eq!(p.take(), [(10, Event::PermissionCreated { peer: peer.ip() })]);
    p.client.send(peer, b"hello").unwrap();
    p.run_to(20);
    assert_eq!(p.relayed(), [(peer, b"hello".to_vec())]);
    assert!(p.peer_sends(peer, b"hi back"));
    p.exchange();
    assert_eq!(p.take(), [(20, Event::Data { peer, bytes: b"hi back".to_vec() })]);

    // A channel, and data both ways as ChannelData (RFC 8656 §12).
    let other = addr("127.0.0.2:6001");
    p.run_to(30);
    assert_eq!(p.client.bind_channel(p.now, other), Some(0x4000));
    p.exchange();
    assert_eq!(p.take(), [(30, Event::ChannelBound { peer: other, number: 0x4000 })]);
    p.client.send(other, b"over a channel").unwrap();
    p.run_to(40);
    let last = p.sent.last().unwrap().1.clone();
    assert_eq!(last.first(), Some(&0x40), "ChannelData");
    assert_eq!(p.relayed().last(), Some(&(other, b"over a channel".to_vec())));
    assert!(p.peer_sends(other, b"back on the channel"));
    p.exchange();
    assert_eq!(p.take(), [(40, Event::Data { peer: other, bytes: b"back on the channel".to_vec() })]);

    // The schedule: the permission renewed at 240 s (< 300 s, RFC 8656 §9), the channel's at 30 +
    // 480 s (< 600 s, §12; its permission with it), the allocation at 4/5 of 600 s (§8).
    p.run_to(3_600_000);
    let events = p.take();
    let at =
        |want: &dyn Fn(&Event) -> bool| events.iter().filter(|(_, e)| want(e)).map(|(t, _)| *t).collect::<Vec<_>>();
    assert_eq!(&at(&|e| matches!(e, Event::Refreshed { lifetime: 600 }))[..3], [480_000, 960_000, 1_440_000]);
    assert_eq!(&at(&|e| matches!(e, Event::PermissionCreated { peer: i } if *i == peer.ip()))[..2], [240_010, 480_010]);
    assert_eq!(&at(&|e| matches!(e, Event::ChannelBound { .. }))[..2], [480_030, 960_030]);
    assert!(
        events.iter().all(|(_, e)| !matches!(e, Event::AllocationLost(_) | Event::PeerFailed { .. })),
        "{events:?}"
    );
    // An hour on, the server still relays both ways: nothing lapsed.
    assert!(p.peer_sends(peer, b"still here"));
    assert!(p.peer_sends(other, b"me too"));
    p.client.send(peer, b"an hour later").unwrap();
    p.exchange();
    assert_eq!(p.relayed().last(), Some(&(peer, b"an hour later".to_vec())));
    assert_eq!(p.take().len(), 2);
    assert_eq!(p.client.ignored(), 0);

    // Deleted (RFC 8656 §8.1, LIFETIME 0): the server lets go, the client sends nothing more.
    p.client.refresh(p.now, 0);
    p.exchange();
    assert_eq!(p.take(), [(3_600_000, Event::Deleted)]);
    assert!(!p.client.is_live() && !p.peer_sends(peer, b"gone"));
    assert_eq!(p.client.poll_timeout(), None);
}

#[test]
fn a_refresh_interval_is_kept() {
    let config = ClientConfig { refresh_interval: Some(secs(30)), ..ClientConfig::default() };
    let mut p = Pair::new(config);
    p.run_to(95_000);
    let refreshed: Vec<u64> =
        p.take().into_iter().filter(|(_, e)| matches!(e, Event::Refreshed { .. })).map(|(t, _)| t).collect();
    assert_eq!(refreshed, [30_000, 60_000, 90_000]);
}

#[test]
fn lost_answers_are_retransmitted_and_duplicates_ignored() {
    let mut p = Pair::new(ClientConfig::default());
    // The 401 is lost: the unsigned Allocate goes again after RTO (RFC 8489 §6.2.1).
    p.lose_to_client = 1;
    p.duplicate = true;
    p.run_to(400);
    assert_eq!(p.sent.iter().map(|(t, _)| *t).collect::<Vec<_>>(), [0]);
    p.run_to(2_000);
    let times: Vec<u64> = p.sent.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [0, 500, 500], "sent again at 500 ms, then signed after the 401");
    assert_eq!(p.sent[0].1, p.sent[1].1, "a retransmission is the same request");
    // Each answer came twice: the duplicate of each is counted, not acted on.
    assert_eq!(p.client.ignored(), 2);
    let events = p.take();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(matches!(events[0], (500, Event::Allocated { .. })));

    // A lost Refresh is retransmitted too, and the allocation lives on.
    p.lose_to_server = 2;
    p.run_to(482_000);
    let refreshes: Vec<u64> =
        p.sent.iter().filter(|(_, b)| method_of(b) == Some(Method::REFRESH)).map(|(t, _)| *t).collect();
    assert_eq!(refreshes, [480_500, 481_000, 482_000]);
    assert!(matches!(p.take().as_slice(), [(482_000, Event::Refreshed { lifetime: 600 })]));
}

#[test]
fn a_437_to_a_refresh_is_allocation_lost() {
    let mut p = Pair::new(ClientConfig::default());
    p.run_to(0);
    p.take();
    // The server restarts (same nonce key): it knows the credentials, not the allocation.
    let (server, relay) = server_core(p.epoch);
    (p.server, p.relay) = (server, relay);
    p.run_to(600_000);
    assert_eq!(p.take(), [(480_000, Event::AllocationLost(LostReason::Gone))]);
    assert!(!p.client.is_live());
    assert_eq!(p.client.poll_timeout(), None);
    assert_eq!(p.client.send(addr("127.0.0.1:1"), b"x"), Err(SendError::NotAllocated));
}

#[test]
fn unanswered_refreshes_end_when_the_lifetime_does() {
    let mut p = Pair::new(ClientConfig::default());
    p.run_to(0);
    p.take();
    p.lose_to_server = u32::MAX;
    p.run_to(700_000);
    // RFC 8656 §8: the server deletes it at 600 s; the client says so then, not before.
    assert_eq!(p.take(), [(600_000, Event::AllocationLost(LostReason::Expired))]);
    let refreshes = p.sent.iter().filter(|(_, b)| method_of(b) == Some(Method::REFRESH)).count();
    // 480 s: seven sends, a timeout at 519.5 s, tried again after 1 s, 2 s, … each retransmitted.
    assert!(refreshes > 14, "{refreshes}");
}

#[test]
fn a_refused_permission_fails_only_itself() {
    let mut p = Pair::new(ClientConfig::default());
    p.run_to(0);
    p.take();
    // 0.0.0.0 is never a peer (RFC 8656 §9.1 and the special-purpose list): 403.
    let bad: IpAddr = "0.0.0.0".parse().unwrap();
    p.run_to(1);
    p.client.create_permission(p.now, bad);
    p.exchange();
    match p.take().as_slice() {
        [(1, Event::PeerFailed { peer, channel: None, error: RequestError::ErrorResponse { code: 403, .. } })] => {
            assert_eq!(peer.ip(), bad)
        }
        other => panic!("{other:?}"),
    }
    assert!(p.client.is_live());
}

/// A scripted server's answer to `request`: an error `code` with REALM and `nonce`.
fn challenge_answer(request: &[u8], code: u16, nonce: &str) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::response(&mut buf, &req, Class::ErrorResponse).unwrap();
    w.add(&ErrorCode::new(code)).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(nonce)).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn scripted(config: ClientConfig) -> (ClientAllocation, Instant, SocketAddr) {
    let t0 = Instant::now();
    let server = addr("192.0.2.1:3478");
    (ClientAllocation::new(t0, server, Credentials::new("alice", "wonderland"), config), t0, server)
}

#[test]
fn a_stale_nonce_is_retried_once_with_the_new_nonce() {
    let (mut c, t0, server) = scripted(ClientConfig::default());
    let first = c.poll_transmit(t0).unwrap().bytes;
    c.handle_input(t0, server, &challenge_answer(&first, codes::UNAUTHENTICATED, "nonce-1"));
    let second = c.poll_transmit(t0).unwrap().bytes;
    let m = Message::parse(&second).unwrap();
    assert_eq!((m.get::<Nonce>().unwrap().0, m.get::<Username>().unwrap().0), ("nonce-1", "alice"));
    assert_ne!(m.transaction_id(), Message::parse(&first).unwrap().transaction_id());
    c.handle_input(t0, server, &challenge_answer(&second, codes::STALE_NONCE, "nonce-2"));
    let third = c.poll_transmit(t0).unwrap().bytes;
    assert_eq!(Message::parse(&third).unwrap().get::<Nonce>().unwrap().0, "nonce-2");
    assert!(c.poll_event().is_none());
    // Another 438: the dance is over (RFC 8489 §9.2.5 retries once).
    c.handle_input(t0, server, &challenge_answer(&third, codes::STALE_NONCE, "nonce-3"));
    assert!(c.poll_transmit(t0).is_none());
    assert!(matches!(c.poll_event(), Some(Event::AllocateFailed(RequestError::ErrorResponse { code: 401, .. }))));
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_second_401_is_an_auth_error() {
    let (mut c, t0, server) = scripted(ClientConfig::default());
    let first = c.poll_transmit(t0).unwrap().bytes;
    c.handle_input(t0, server, &challenge_answer(&first, codes::UNAUTHENTICATED, "n"));
    let second = c.poll_transmit(t0).unwrap().bytes;
    assert!(is_signed(&second));
    c.handle_input(t0, server, &challenge_answer(&second, codes::UNAUTHENTICATED, "n"));
    assert!(c.poll_transmit(t0).is_none());
    assert!(matches!(c.poll_event(), Some(Event::AllocateFailed(RequestError::ErrorResponse { code: 401, .. }))));
}

#[test]
fn an_unanswered_allocate_times_out_at_39_5_s_or_the_request_timeout() {
    for (config, sends, end) in [
        (ClientConfig::default(), 7, 39_500),
        (ClientConfig { reliable: true, ..ClientConfig::default() }, 1, 39_500),
        (ClientConfig { request_timeout: Some(secs(5)), ..ClientConfig::default() }, 4, 5_000),
    ] {
        let (mut c, t0, _) = scripted(config);
        let mut now = t0;
        let mut sent = 0;
        for _ in 0..100 {
            while c.poll_transmit(now).is_some() {
                sent += 1;
            }
            let Some(next) = c.poll_timeout() else { break };
            now = next;
            c.handle_timeout(now);
        }
        assert_eq!(sent, sends);
        assert_eq!(now.duration_since(t0), ms(end));
        assert_eq!(c.poll_event(), Some(Event::AllocateFailed(RequestError::Timeout)));
    }
}

#[test]
fn garbage_is_ignored_and_counted() {
    let (mut c, t0, server) = scripted(ClientConfig::default());
    let first = c.poll_transmit(t0).unwrap().bytes;
    let answer = challenge_answer(&first, codes::UNAUTHENTICATED, "n");
    let mut inputs: Vec<(SocketAddr, Vec<u8>)> = vec![
        (server, vec![]),
        (server, vec![0xFF; 40]),
        (server, answer[..answer.len() - 1].to_vec()),
        (server, vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]),
        (addr("192.0.2.2:3478"), answer.clone()),
    ];
    // Bytes from a deterministic generator, each a prefix of a real answer with bits flipped.
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..500 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = answer.clone();
        let i = (x as usize) % bytes.len();
        bytes[i] ^= (x >> 32) as u8 | 1;
        bytes.truncate(((x >> 40) as usize) % (answer.len() + 1));
        inputs.push((server, bytes));
    }
    let count = inputs.len() as u64;
    for (from, bytes) in &inputs {
        c.handle_input(t0, *from, bytes);
    }
    // None of it was the answer (a flipped header or transaction ID; a flipped attribute may still
    // be a challenge, which is answered as one): no panic, and the most of it counted.
    assert!(c.ignored() >= 5 && c.ignored() <= count, "{}", c.ignored());
}

#[test]
fn over_a_stream_requests_go_once_and_channel_data_is_padded() {
    let mut p = Pair::new(ClientConfig { reliable: true, ..ClientConfig::default() });
    p.run_to(0);
    assert!(matches!(p.take().as_slice(), [(0, Event::Allocated { .. })]));
    let peer = addr("127.0.0.1:6000");
    p.run_to(10);
    assert_eq!(p.client.bind_channel(p.now, peer), Some(0x4000));
    p.exchange();
    p.client.send(peer, b"odd").unwrap();
    p.exchange();
    let last = &p.sent.last().unwrap().1;
    assert_eq!(last.len(), 8, "4-byte header, 3 bytes, 1 of padding (RFC 8656 §12.5)");
    assert_eq!(p.relayed(), [(peer, b"odd".to_vec())]);
    // A padded ChannelData from the server (what its stream path writes) is read without the padding.
    p.client.handle_input(p.now, p.server_addr, &[0x40, 0x00, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
    p.exchange();
    assert!(
        matches!(p.take().as_slice(), [(10, Event::ChannelBound { .. }), (10, Event::Data { bytes, .. })] if bytes == b"abcde")
    );
    // A lost answer is not retransmitted for (RFC 8489 §6.2.2): the Refresh times out after Ti.
    p.run_to(479_999);
    p.lose_to_client = 1;
    p.run_to(480_000 + 39_499);
    let refreshes: Vec<u64> =
        p.sent.iter().filter(|(_, b)| method_of(b) == Some(Method::REFRESH)).map(|(t, _)| *t).collect();
    assert_eq!(refreshes, [480_000]);
    // Ti later it is tried again (backoff 1 s) and answered.
    p.run_to(521_000);
    let refreshes: Vec<u64> =
        p.sent.iter().filter(|(_, b)| method_of(b) == Some(Method::REFRESH)).map(|(t, _)| *t).collect();
    assert_eq!(refreshes, [480_000, 520_500]);
    assert!(p.take().iter().any(|(t, e)| *t == 520_500 && matches!(e, Event::Refreshed { .. })));
}

/// A scripted server's success answer to `request`, unsigned or signed with `key`.
fn success_answer(request: &[u8], key: Option<&[u8]>) -> Vec<u8> {
    let req = Message::parse(request).unwrap();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::response(&mut buf, &req, Class::SuccessResponse).unwrap();
    w.add(&crate::proto::stun::XorRelayedAddress(addr("192.0.2.1:50000"))).unwrap();
    if let Some(key) = key {
        w.add_message_integrity(&crate::proto::stun::IntegrityKey::new(key)).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

#[test]
fn an_answer_to_a_signed_request_must_be_signed_with_our_key() {
    let (mut c, t0, server) = scripted(ClientConfig::default());
    let first = c.poll_transmit(t0).unwrap().bytes;
    c.handle_input(t0, server, &challenge_answer(&first, codes::UNAUTHENTICATED, "n"));
    let signed = c.poll_transmit(t0).unwrap().bytes;
    // Unsigned, or signed with another key: discarded as if never received (RFC 8489 §9.2.5), and
    // the request is retransmitted as if no answer came.
    c.handle_input(t0, server, &success_answer(&signed, None));
    c.handle_input(t0, server, &success_answer(&signed, Some(b"not our key")));
    assert_eq!((c.poll_event(), c.ignored()), (None, 2));
    assert_eq!(c.poll_transmit(t0 + ms(500)).map(|t| t.bytes), Some(signed.clone()));
    let key = crate::proto::stun::long_term_key_md5("alice", REALM, "wonderland");
    c.handle_input(t0 + ms(600), server, &success_answer(&signed, Some(&key)));
    assert!(matches!(c.poll_event(), Some(Event::Allocated { .. })));
}
