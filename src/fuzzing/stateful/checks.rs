//! The checks after each input and each operation, and the model they compare with: what the
//! server's success answers allow (an over-approximation: a permission the model holds may have
//! lapsed on the server, never the other way round).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;

use super::driver::FakeSocket;
use super::{CLIENTS, Harness, MAX_PORT, MIN_PORT, REALM, RELAY_V4, RELAY_V6, RESERVATION_MS, never_a_peer, pattern};
use crate::alloc::{Allocation, FiveTuple, Millis};
use crate::proto::channel_data::{self, ChannelData};
use crate::proto::stun::{
    AddressFamily, ChannelNumber, Class, ConnectionId, Data, ErrorCode, EvenPort, Lifetime, Message, MessageType,
    Method, Nonce, Realm, RequestedAddressFamily, ReservationToken, Software, Username, XorMappedAddress,
    XorPeerAddress, XorRelayedAddress, codes, padded_len,
};
use crate::server::{DropReason, HEADROOM, Outcome};

/// A port reservation the model expects the server to hold.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) token: [u8; 8],
    /// The reserved relayed address: the port after the EVEN-PORT allocation's.
    pub(super) addr: SocketAddr,
    pub(super) expires: Millis,
}

#[derive(Debug, Default)]
pub(super) struct Model {
    pub(super) reservations: Vec<Reservation>,
    /// Every token ever seen in an answer (a cached answer repeats one).
    pub(super) seen_tokens: HashSet<[u8; 8]>,
    /// (relay socket id, peer IP, expiry) learnt from CreatePermission and ChannelBind successes.
    pub(super) permissions: Vec<(usize, IpAddr, Millis)>,
    /// (relay socket id, channel, peer, expiry) learnt from ChannelBind successes.
    pub(super) channels: Vec<(usize, u16, SocketAddr, Millis)>,
    /// (relay socket id, expiry) learnt from Allocate and Refresh successes.
    pub(super) lifetimes: Vec<(usize, Millis)>,
    /// Every success answer so far: the same bytes again are a retransmission answered from the
    /// cache, which changes nothing on the server.
    pub(super) answers: HashSet<Vec<u8>>,
    /// RFC 6062 connections made: (CONNECTION-ID, the username of the allocation that made it).
    pub(super) connections: Vec<(u32, String)>,
}

impl Model {
    fn permits(&self, socket: usize, ip: IpAddr, now: Millis) -> bool {
        self.permissions.iter().any(|&(s, p, e)| s == socket && p == ip && e > now)
    }

    fn channel(&self, socket: usize, number: u16, peer: SocketAddr, now: Millis) -> bool {
        self.channels.iter().any(|&(s, n, p, e)| s == socket && n == number && p == peer && e > now)
    }

    fn live(&self, socket: usize, now: Millis) -> bool {
        self.lifetimes.iter().any(|&(s, e)| s == socket && e > now)
    }

    fn extend(&mut self, socket: usize, expires: Millis) {
        match self.lifetimes.iter_mut().find(|(s, _)| *s == socket) {
            Some((_, e)) => *e = (*e).max(expires),
            None => self.lifetimes.push((socket, expires)),
        }
    }
}

impl Harness {
    /// A datagram from `peer` into `a`; checks what comes out.
    pub(super) fn peer_datagram(&mut self, a: &Arc<Allocation<FakeSocket>>, peer: SocketAddr, len: usize, fill: u8) {
        let before = self.server.stats().snapshot().relayed_to_client;
        let out = self.relay_from_peer(a, peer, len, fill);
        let after = self.server.stats().snapshot().relayed_to_client;
        assert_eq!(after - before, u64::from(out.is_some()), "relayed_to_client counts what is relayed");
        let now = self.now_ms();
        let id = a.socket.id;
        if !self.model.permits(id, peer.ip(), now) {
            assert!(out.is_none(), "peer {peer} without a permission reached the client");
        }
        if !self.model.live(id, now) {
            assert!(out.is_none(), "an expired allocation relayed peer data");
        }
        let Some(out) = out else {
            // What the server's own state permits is relayed, unless too large to wrap.
            let permitted = a.is_live(now) && a.bindings().permits(peer.ip(), now);
            assert!(!permitted || len > 65000, "a permitted datagram of {len} bytes from {peer} was dropped");
            return;
        };
        let data = pattern(len, fill);
        if let Some(&first) = out.first()
            && (0x40..=0x7F).contains(&first)
        {
            let cd = ChannelData::parse(&out).expect("ChannelData to the client parses");
            assert_eq!(cd.data, &data[..], "ChannelData carries exactly the peer's bytes");
            let stream = a.info().five_tuple.transport.is_stream();
            assert_eq!(out.len(), channel_data::wire_len(len, stream), "no bytes after the ChannelData");
            assert!(out[4 + len..].iter().all(|&b| b == 0), "padding is zero");
            assert!(self.model.channel(id, cd.channel, peer, now), "channel {:#x} is not bound to {peer}", cd.channel);
        } else {
            let m = Message::parse(&out).expect("a Data indication parses");
            assert_eq!(m.message_type(), MessageType::new(Method::DATA, Class::Indication));
            assert_eq!(m.get::<XorPeerAddress>().expect("XOR-PEER-ADDRESS").0, peer);
            assert_eq!(m.get::<Data>().expect("DATA").0, &data[..], "DATA carries exactly the peer's bytes");
            assert_eq!(m.attributes().count(), 2, "a Data indication carries two attributes");
            let pad = padded_len(len) - len;
            assert!(out[out.len() - pad..].iter().all(|&b| b == 0), "padding is zero");
        }
    }

    pub(super) fn relay_from_peer(
        &mut self,
        a: &Allocation<FakeSocket>,
        peer: SocketAddr,
        len: usize,
        fill: u8,
    ) -> Option<Vec<u8>> {
        let data = pattern(len, fill);
        self.peer_buf[HEADROOM..HEADROOM + len].copy_from_slice(&data);
        let range = self.server.relay_from_peer(self.now(), a, peer, &mut self.peer_buf, len)?;
        Some(self.peer_buf.get(range).expect("the range lies in the buffer").to_vec())
    }

    /// An answer to what client `c` sent: STUN answering that request, signed with the key of its
    /// USERNAME when signed; then the model learns from it.
    pub(super) fn check_answer(&mut self, c: usize, request: &[u8], answer: &[u8]) {
        let req = Message::parse(request).expect("only a STUN request is answered");
        let reply = Message::parse(answer).expect("an answer is well-formed STUN");
        assert_eq!(req.message_type().class, Class::Request, "only requests are answered");
        assert_eq!(reply.message_type().method, req.message_type().method, "the answer's method");
        let class = reply.message_type().class;
        assert!(matches!(class, Class::SuccessResponse | Class::ErrorResponse));
        assert_eq!(reply.transaction_id(), req.transaction_id(), "the answer's transaction ID");
        assert_eq!(reply.cookie_bytes(), req.cookie_bytes(), "the answer's cookie");
        if reply.has_fingerprint() {
            reply.verify_fingerprint().expect("the answer's FINGERPRINT verifies");
        }
        for a in reply.decoded() {
            a.expect("the server writes only attributes it can read back");
        }
        let code = reply.get::<ErrorCode>().ok().map(|e| e.code);
        if matches!(code, Some(codes::UNAUTHENTICATED | codes::STALE_NONCE)) && !reply.has_integrity() {
            // A nonce comes with a realm, unsigned.
            if let Ok(Nonce(n)) = reply.get::<Nonce>() {
                assert_eq!(reply.get::<Realm>().expect("REALM with NONCE").0, REALM);
                self.clients[c].nonce = Some(n.to_string());
            }
        }
        if matches!(code, Some(codes::UNAUTHENTICATED | codes::STALE_NONCE)) {
            assert!(!reply.has_integrity(), "a 401/438 is never signed");
        }
        if reply.has_integrity() {
            let user = req.get::<Username>().ok().and_then(|n| self.users.iter().find(|u| u.name == n.0));
            match user {
                Some(u) => reply.verify_integrity(&u.key).expect("a signed answer verifies with the request's key"),
                // A retransmission answered from the cache before any authentication: the key of the
                // allocation's user.
                None => assert!(
                    self.users.iter().any(|u| reply.verify_integrity(&u.key).is_ok()),
                    "a signed answer verifies with some user's key"
                ),
            }
        }
        if class != Class::SuccessResponse || req.message_type().method == Method::BINDING {
            return;
        }
        assert!(reply.has_integrity(), "a success is signed");
        if self.options.software.is_some() {
            assert!(reply.get::<Software>().is_ok(), "SOFTWARE when configured");
        }
        self.learn(c, &req, &reply);
    }

    /// Updates the model from a success answer.
    fn learn(&mut self, c: usize, req: &Message<'_>, reply: &Message<'_>) {
        let now = self.now_ms();
        let method = req.message_type().method;
        // RFC 6062 §5.4 with RFC 8656 §6: a ConnectionBind binds only with the credentials of the
        // allocation that made the connection (another user, or a guessed ID, gets nothing).
        if method == Method::CONNECTION_BIND {
            let id = req.get::<ConnectionId>().expect("a ConnectionBind names its connection").0;
            let user = req.get::<Username>().expect("a success was signed").0;
            let owner = self.model.connections.iter().find(|(i, _)| *i == id).map(|(_, u)| u.as_str());
            assert_eq!(owner, Some(user), "ConnectionBind of connection {id} by another user");
            return;
        }
        let current = self.allocation(c);
        if method == Method::REFRESH && reply.get::<Lifetime>().is_ok_and(|l| l.0 == 0) {
            assert!(current.is_none(), "Refresh 0 answered success but the allocation lives");
            return;
        }
        let a = current.unwrap_or_else(|| panic!("{method:?} succeeded without an allocation for client {c}"));
        let id = a.socket.id;
        let replay = !self.model.answers.insert(reply.as_bytes().to_vec());
        if method != Method::ALLOCATE && !replay {
            // RFC 8656 §7–§8: an allocation is gone once its lifetime ran out, swept or not (437).
            assert!(self.model.live(id, now), "{method:?} succeeded on an expired allocation");
        }
        match method {
            Method::ALLOCATE => {
                let relayed = reply.get::<XorRelayedAddress>().expect("XOR-RELAYED-ADDRESS").0;
                assert_eq!(relayed, a.info().advertised_addr);
                assert!((MIN_PORT..=MAX_PORT).contains(&relayed.port()));
                assert_eq!(reply.get::<XorMappedAddress>().expect("XOR-MAPPED-ADDRESS").0, CLIENTS[c].1);
                let family = match req.get::<RequestedAddressFamily>() {
                    Ok(RequestedAddressFamily(f)) => f,
                    Err(_) => AddressFamily::V4,
                };
                let expected_ip = match (self.options.relay_addresses.is_empty(), family) {
                    (true, _) => CLIENTS[c].2.ip(),
                    (false, AddressFamily::V4) => RELAY_V4,
                    (false, AddressFamily::V6) => RELAY_V6,
                };
                if !req.has::<ReservationToken>() {
                    assert_eq!(relayed.ip(), expected_ip, "relayed on the configured address of the family");
                }
                let lifetime = reply.get::<Lifetime>().expect("LIFETIME").0;
                let o = &self.options;
                assert!(lifetime >= o.default_lifetime.min(o.max_lifetime) && lifetime <= o.max_lifetime);
                self.model.extend(id, now + u64::from(lifetime) * 1000);
                // A request that reuses an earlier Allocate's transaction ID is a retransmission (RFC
                // 8489 §6.3.1): it gets that Allocate's cached answer, whatever it asks for now.
                if !replay && let Ok(e) = req.get::<EvenPort>() {
                    assert_eq!(relayed.port() % 2, 0, "EVEN-PORT gives an even port");
                    assert_eq!(e.reserve_next, reply.get::<ReservationToken>().is_ok());
                }
                if !replay && let Ok(ReservationToken(t)) = req.get::<ReservationToken>() {
                    if let Some(i) = self.model.reservations.iter().position(|r| r.token == t) {
                        let r = self.model.reservations.swap_remove(i);
                        assert!(r.expires > now, "an expired reservation was used");
                        assert_eq!(r.addr, relayed, "the reserved address");
                    } else {
                        assert!(self.model.seen_tokens.contains(&t), "a token the server never gave was taken");
                    }
                }
                if let Ok(ReservationToken(t)) = reply.get::<ReservationToken>()
                    && self.model.seen_tokens.insert(t)
                {
                    let addr = SocketAddr::new(relayed.ip(), relayed.port() + 1);
                    self.model.reservations.push(Reservation { token: t, addr, expires: now + RESERVATION_MS });
                }
            }
            Method::REFRESH => {
                let l = reply.get::<Lifetime>().expect("LIFETIME").0;
                assert!(l <= self.options.max_lifetime);
                self.model.extend(id, now + u64::from(l) * 1000);
            }
            Method::CREATE_PERMISSION => {
                let expires = now + u64::from(self.options.permission_lifetime) * 1000;
                for p in req.get_all::<XorPeerAddress>() {
                    let XorPeerAddress(p) = p.expect("a permitted peer decodes");
                    assert!(self.policy.check_ip(p.ip()).is_ok(), "permission granted to a denied peer {p}");
                    self.model.permissions.push((id, p.ip(), expires));
                }
            }
            Method::CHANNEL_BIND => {
                let number = req.get::<ChannelNumber>().expect("CHANNEL-NUMBER").0;
                let XorPeerAddress(p) = req.get::<XorPeerAddress>().expect("XOR-PEER-ADDRESS");
                assert!(self.policy.check_addr(p).is_ok(), "channel bound to a denied peer {p}");
                assert!(channel_data::is_channel_number(number, self.options.strict_rfc8656));
                let o = &self.options;
                self.model.permissions.push((id, p.ip(), now + u64::from(o.permission_lifetime) * 1000));
                self.model.channels.push((id, number, p, now + u64::from(o.channel_lifetime) * 1000));
            }
            _ => panic!("success for {method:?}"),
        }
    }

    /// What the driver sent for the input `data` from client `c`: at most one datagram, only when
    /// the outcome says so, to a peer the policy and a permission allow, from the client's own
    /// allocation, carrying exactly the client's data.
    pub(super) fn check_sends(&mut self, c: usize, data: &[u8], outcome: Outcome) {
        let sent = std::mem::take(&mut self.driver.state().sent);
        assert!(sent.len() <= 1, "one input, {} datagrams to peers", sent.len());
        let Some(s) = sent.first() else {
            assert_ne!(outcome, Outcome::Relayed, "Relayed but nothing was sent");
            return;
        };
        assert!(
            matches!(outcome, Outcome::Relayed | Outcome::Dropped(DropReason::SendFailed)),
            "a send with outcome {outcome:?}"
        );
        assert!(self.policy.check_addr(s.peer).is_ok(), "data sent to a denied peer {}", s.peer);
        if !self.options.allow_loopback_peers {
            assert!(!never_a_peer(s.peer.ip()), "data sent to {}", s.peer);
        }
        let a = self.allocation(c).expect("data sent for a client without allocation");
        assert_eq!(a.socket.id, s.socket, "data sent through another client's relay socket");
        let now = self.now_ms();
        assert!(self.model.permits(s.socket, s.peer.ip(), now), "data sent to {} without a permission", s.peer);
        assert!(self.model.live(s.socket, now), "an expired allocation relayed client data");
        let expected: &[u8] = if let Ok(cd) = ChannelData::parse(data) {
            assert!(self.model.channel(s.socket, cd.channel, s.peer, now), "ChannelData on an unbound channel");
            cd.data
        } else {
            let m = Message::parse(data).expect("data sent for an input that is neither ChannelData nor STUN");
            assert_eq!(m.message_type(), MessageType::new(Method::SEND, Class::Indication));
            assert_eq!(m.get::<XorPeerAddress>().expect("XOR-PEER-ADDRESS").0, s.peer);
            m.get::<Data>().expect("DATA").0
        };
        assert_eq!(s.data, expected, "the peer gets exactly the client's data");
    }

    /// An allocation's state holds nothing the answers did not grant: its lifetime, permissions and
    /// channels are within what the model learnt, and every peer in them passes the policy.
    fn check_state(&self, a: &Allocation<FakeSocket>) {
        let now = self.now_ms();
        let id = a.socket.id;
        let until = |found: Option<Millis>| found.unwrap_or(0);
        let lifetime = until(self.model.lifetimes.iter().filter(|l| l.0 == id).map(|l| l.1).max());
        assert!(a.expires() <= lifetime, "allocation expires at {} beyond the granted {lifetime}", a.expires());
        let bindings = a.bindings();
        for p in bindings.permissions().iter().filter(|p| p.expires() > now) {
            let granted = until(self.model.permissions.iter().filter(|m| m.0 == id && m.1 == p.ip).map(|m| m.2).max());
            assert!(p.expires() <= granted, "permission for {} beyond what was granted", p.ip);
            assert!(self.policy.check_ip(p.ip).is_ok(), "a permission for the denied {}", p.ip);
        }
        for c in bindings.channels().iter().filter(|c| c.expires() > now) {
            let granted = until(
                self.model.channels.iter().filter(|m| m.0 == id && m.1 == c.number && m.2 == c.peer).map(|m| m.3).max(),
            );
            assert!(c.expires() <= granted, "channel {:#x} to {} beyond what was granted", c.number, c.peer);
            assert!(channel_data::is_channel_number(c.number, self.options.strict_rfc8656));
        }
    }

    /// The invariants that hold between operations.
    pub(super) fn check(&mut self) {
        let stats = self.server.stats().snapshot();
        let table = self.server.allocations().all();
        let len = self.server.allocations().len();
        assert_eq!(table.len(), len);
        assert_eq!(stats.allocations_created - stats.allocations_deleted, len as u64, "created − deleted = table");
        assert_eq!(
            stats.replies + stats.silent + stats.relayed_to_peer + stats.dropped(),
            self.handled,
            "every input is counted once"
        );
        if self.options.total_quota != 0 {
            assert!(len <= self.options.total_quota as usize, "total quota");
        }
        if self.options.user_quota != 0 {
            for u in &self.users {
                assert!(self.server.allocations().user_count(&u.name) <= self.options.user_quota, "user quota");
            }
        }
        let in_table: Vec<usize> = table.iter().map(|a| a.socket.id).collect();
        for a in &table {
            let f = &a.socket.flags;
            assert!(f.started.load(SeqCst) && f.live(), "allocation {:?} in the table with a dead socket", a.info());
            assert!(!a.is_deleted());
            assert!(
                CLIENTS
                    .iter()
                    .any(|&(t, cl, s)| a.info().five_tuple == FiveTuple { transport: t, client: cl, server: s })
            );
            self.check_state(a);
        }
        // The lifecycle events tell the same story as the table.
        let (announced, violations) = self.ledger.read();
        assert!(violations.is_empty(), "lifecycle events: {violations:?}");
        let ids: HashSet<u64> = table.iter().map(|a| a.id().0).collect();
        assert_eq!(announced, ids, "the events' live allocations are the table's");
        for a in &table {
            if !self.seen.iter().any(|s| s.socket.id == a.socket.id) {
                self.seen.push(Arc::clone(a));
            }
        }
        // Keep the live ones and the last few deleted ones.
        let mut deleted = self.seen.iter().filter(|a| a.is_deleted()).count();
        self.seen.retain(|a| {
            let drop = a.is_deleted() && deleted > 4;
            deleted -= usize::from(drop);
            !drop
        });
        for a in self.seen.iter().filter(|a| !in_table.contains(&a.socket.id)) {
            assert!(a.is_deleted(), "an allocation left the table without being marked deleted");
        }
        drop(table);

        let s = self.driver.state();
        let mut started_unstopped = 0;
        let mut reserved = 0;
        for (i, (addr, f)) in s.sockets.iter().enumerate() {
            let started = f.started.load(SeqCst);
            let stops = f.stops.load(SeqCst);
            assert!(stops <= 1, "relay socket {addr} stopped {stops} times");
            assert!(stops == 0 || started, "relay socket {addr} stopped but never started");
            if started && stops == 0 {
                started_unstopped += 1;
                assert!(
                    in_table.contains(&i),
                    "relay socket {addr} of an allocation gone from the table was never stopped"
                );
            }
            if !started && f.live() {
                reserved += 1;
                assert!(
                    self.model.reservations.iter().any(|r| r.addr == *addr),
                    "relay socket {addr} bound, never started, and no reservation holds it"
                );
            }
        }
        assert_eq!(started_unstopped, len, "one running relay socket per allocation");
        assert_eq!(reserved, self.model.reservations.len(), "one held socket per reservation");
        let live: Vec<SocketAddr> = s.sockets.iter().filter(|(_, f)| f.live()).map(|(a, _)| *a).collect();
        let unique: HashSet<&SocketAddr> = live.iter().collect();
        assert_eq!(unique.len(), live.len(), "two live relay sockets on one address");
    }
}
