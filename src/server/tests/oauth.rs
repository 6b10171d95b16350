//! (A test module: declared under #[cfg(test)] in its parent.)
//! RFC 7635 third-party authorization on the fake clock: THIRD-PARTY-AUTHORIZATION in 401/438,
//! Allocate with ACCESS-TOKEN, the session key on later requests, Refresh switching the token, every
//! token rejection, and long-term credentials beside it.

use super::*;
use crate::auth::oauth::{AccessTokenKey, OauthConfig, seal};

const SERVER_NAME: &str = "blackdow.carleon.gov";
const NORTH: &str = "north:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK:A256GCM";
const UNION: &str = "union:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM";

fn key(spec: &str) -> AccessTokenKey {
    AccessTokenKey::parse(spec).unwrap().0
}

fn oauth_harness() -> Harness {
    let mut h = Harness::new(Harness::default_options());
    let mut config = auth_config();
    config.oauth = Some(OauthConfig { server_name: SERVER_NAME.into(), keys: vec![key(NORTH), key(UNION)] });
    let auth = Authenticator::new(config, [7u8; 32]);
    h.server = Server::with_relay(Harness::default_options(), Some(auth), h.driver.clone(), h.epoch, EPOCH_UNIX);
    h
}

/// A request signed with a session key (MESSAGE-INTEGRITY for 20 bytes, -SHA256 for 32), USERNAME
/// the kid, with ACCESS-TOKEN if given.
fn oauth_request(
    method: Method,
    tid: TransactionId,
    (kid, nonce, mac): (&str, &str, &[u8]),
    token: Option<&[u8]>,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
    body(&mut w);
    if let Some(t) = token {
        w.add(&AccessToken(t)).unwrap();
    }
    w.add(&Username(kid)).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(nonce)).unwrap();
    if mac.len() == 32 {
        w.add_message_integrity_sha256(&IntegrityKeySha256::new(mac)).unwrap();
    } else {
        w.add_message_integrity(&IntegrityKey::new(mac)).unwrap();
    }
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

impl Harness {
    /// The 401 round trip; checks THIRD-PARTY-AUTHORIZATION and returns the nonce.
    fn oauth_nonce(&mut self) -> String {
        let tid = self.next_tid();
        let (_, resp) = self.feed(&request(Method::ALLOCATE, tid, None, udp));
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
        assert_eq!(m.get::<ThirdPartyAuthorization>().unwrap().0, SERVER_NAME);
        m.get::<Nonce>().unwrap().0.to_string()
    }

    /// A token for `spec`'s key issued now, valid `lifetime` seconds.
    fn token(&self, spec: &str, mac: &[u8], lifetime: u32) -> Vec<u8> {
        seal(&key(spec), SERVER_NAME, [self.tid; 12], mac, self.unix(), lifetime).unwrap()
    }

    fn oauth_send(
        &mut self,
        creds: (&str, &str, &[u8]),
        method: Method,
        token: Option<&[u8]>,
        body: impl FnOnce(&mut MessageWriter<'_>),
    ) -> Vec<u8> {
        let tid = self.next_tid();
        self.feed(&oauth_request(method, tid, creds, token, body)).1
    }
}

fn success(resp: &[u8]) -> Message<'_> {
    let m = Message::parse(resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    m
}

fn peer(w: &mut MessageWriter<'_>) {
    w.add(&XorPeerAddress(addr("127.0.0.1:9000"))).unwrap();
}

#[test]
fn challenges_name_the_server_only_when_enabled() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    // 438 too: coturn's client takes the server name from either. RFC 8489 §9.2.4 judges the nonce
    // last, so the stale nonce comes with a valid token (before: no token at all, now a 401).
    h.advance(3601);
    let token = h.token(NORTH, &[1; 20], 600);
    let resp = h.oauth_send(("north", &nonce, &[1; 20]), Method::ALLOCATE, Some(&token), udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 438);
    assert_eq!(m.get::<ThirdPartyAuthorization>().unwrap().0, SERVER_NAME);
    // Without oauth: no THIRD-PARTY-AUTHORIZATION, and a token is not looked at.
    let mut plain = Harness::new(Harness::default_options());
    let tid = plain.next_tid();
    let (_, resp) = plain.feed(&request(Method::ALLOCATE, tid, None, udp));
    let m = Message::parse(&resp).unwrap();
    assert!(!m.has::<ThirdPartyAuthorization>());
    let nonce = m.get::<Nonce>().unwrap().0.to_string();
    let token = plain.token(NORTH, &[1; 20], 600);
    let resp = plain.oauth_send(("north", &nonce, &[1; 20]), Method::ALLOCATE, Some(&token), udp);
    assert_eq!(error_code(&resp), Some(401));
    assert_eq!(plain.server.allocations().len(), 0);
}

#[test]
fn allocate_with_a_token_then_the_session_key_signs_everything() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac = [0x5a; 20];
    let token = h.token(NORTH, &mac, 3600);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::ALLOCATE, Some(&token), udp);
    let m = success(&resp);
    assert_eq!(m.verify_integrity(&IntegrityKey::new(&mac)), Ok(()));
    assert!(m.has::<XorRelayedAddress>());
    // Later requests: USERNAME = kid, no token, MESSAGE-INTEGRITY with the mac_key.
    let resp = h.oauth_send(("north", &nonce, &mac), Method::CREATE_PERMISSION, None, peer);
    assert_eq!(success(&resp).verify_integrity(&IntegrityKey::new(&mac)), Ok(()));
    // Another key under the same kid: 401, and unsigned.
    let resp = h.oauth_send(("north", &nonce, &[0x5b; 20]), Method::CREATE_PERMISSION, None, peer);
    assert_eq!(error_code(&resp), Some(401));
    assert!(!Message::parse(&resp).unwrap().has_integrity());
}

#[test]
fn a_32_byte_mac_key_means_message_integrity_sha256() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac = [0x77; 32];
    let token = h.token(UNION, &mac, 3600);
    let resp = h.oauth_send(("union", &nonce, &mac), Method::ALLOCATE, Some(&token), udp);
    let m = success(&resp);
    assert!(!m.has_integrity());
    assert_eq!(m.verify_integrity_sha256(&IntegrityKeySha256::new(&mac)), Ok(()));
    let resp = h.oauth_send(("union", &nonce, &mac), Method::REFRESH, None, |_| {});
    assert_eq!(success(&resp).verify_integrity_sha256(&IntegrityKeySha256::new(&mac)), Ok(()));
    // HMAC-SHA1 with a 32-byte session key is not what the token says: 401.
    let tid = h.next_tid();
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::REFRESH, Class::Request), tid).unwrap();
    w.add(&Username("union")).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(&nonce)).unwrap();
    w.add_message_integrity(&IntegrityKey::new(&mac)).unwrap();
    let n = w.finish();
    assert_eq!(error_code(&h.feed(&buf[..n]).1), Some(401));
}

#[test]
fn refresh_with_a_new_token_switches_kid_and_key() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let (mac1, mac2) = ([1u8; 20], [2u8; 20]);
    let t1 = h.token(NORTH, &mac1, 3600);
    success(&h.oauth_send(("north", &nonce, &mac1), Method::ALLOCATE, Some(&t1), udp));
    let t2 = h.token(UNION, &mac2, 3600);
    let resp = h.oauth_send(("union", &nonce, &mac2), Method::REFRESH, Some(&t2), |_| {});
    assert_eq!(success(&resp).verify_integrity(&IntegrityKey::new(&mac2)), Ok(()));
    // The new kid and key work; the old ones no longer do.
    success(&h.oauth_send(("union", &nonce, &mac2), Method::CREATE_PERMISSION, None, peer));
    let resp = h.oauth_send(("north", &nonce, &mac1), Method::CREATE_PERMISSION, None, peer);
    assert_eq!(error_code(&resp), Some(401));
    // A token on another method authenticates that request but switches nothing.
    let mac3 = [3u8; 20];
    let t3 = h.token(NORTH, &mac3, 3600);
    success(&h.oauth_send(("north", &nonce, &mac3), Method::CREATE_PERMISSION, Some(&t3), peer));
    success(&h.oauth_send(("union", &nonce, &mac2), Method::CREATE_PERMISSION, None, peer));
    // A Refresh whose token fails leaves the allocation as it was.
    let bad = h.token(NORTH, &mac3, 0);
    let resp = h.oauth_send(("north", &nonce, &mac3), Method::REFRESH, Some(&bad), |_| {});
    assert_eq!(error_code(&resp), Some(401));
    success(&h.oauth_send(("union", &nonce, &mac2), Method::REFRESH, None, |_| {}));
}

#[test]
fn session_key_stops_at_the_tokens_expiry_and_a_new_token_carries_it_on() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac = [9u8; 20];
    let token = h.token(NORTH, &mac, 600);
    success(&h.oauth_send(("north", &nonce, &mac), Method::ALLOCATE, Some(&token), |w| {
        udp(w);
        w.add(&Lifetime(3600)).unwrap();
    }));
    h.advance(599);
    success(&h.oauth_send(("north", &nonce, &mac), Method::CREATE_PERMISSION, None, peer));
    // A new token before the old one expires carries the allocation on (the allocation never
    // outlives its token, so after the expiry there is nothing left to revive).
    let fresh = h.token(NORTH, &mac, 600);
    success(&h.oauth_send(("north", &nonce, &mac), Method::REFRESH, Some(&fresh), |_| {}));
    h.advance(10);
    success(&h.oauth_send(("north", &nonce, &mac), Method::CREATE_PERMISSION, None, peer));
    // Past the new token's expiry the session key stops, and the allocation is gone with it.
    h.advance(600);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::CREATE_PERMISSION, None, peer);
    assert_eq!(error_code(&resp), Some(401));
    assert_eq!(h.server.allocations().len(), 0);
}

#[test]
fn every_token_rejection_is_401_and_leaves_no_state() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac = [4u8; 20];
    let unix = h.unix();
    let good = h.token(NORTH, &mac, 600);
    let mut tampered = good.clone();
    *tampered.last_mut().unwrap() ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("south", good.clone()),                                                            // unknown kid
        ("union", good.clone()),                                                            // another key
        ("north", tampered),                                                                // bad tag
        ("north", good[..20].to_vec()),                                                     // bad length
        ("north", seal(&key(NORTH), SERVER_NAME, [1; 12], &mac, unix - 700, 600).unwrap()), // expired
        ("north", seal(&key(NORTH), SERVER_NAME, [1; 12], &mac, unix + 60, 600).unwrap()),  // future
        ("north", seal(&key(NORTH), "other.example", [1; 12], &mac, unix, 600).unwrap()),   // server name
    ];
    for (kid, token) in cases {
        let resp = h.oauth_send((kid, &nonce, &mac), Method::ALLOCATE, Some(&token), udp);
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.get::<ErrorCode>().unwrap().code, 401, "{kid} {token:?}");
        assert_eq!(m.get::<ThirdPartyAuthorization>().unwrap().0, SERVER_NAME);
    }
    // A valid token with the wrong MAC.
    let resp = h.oauth_send(("north", &nonce, &[5; 20]), Method::ALLOCATE, Some(&good), udp);
    assert_eq!(error_code(&resp), Some(401));
    assert_eq!(h.server.allocations().len(), 0);
    assert!(h.driver.bound.lock().unwrap().is_empty());
    let s = h.server.stats().snapshot();
    assert_eq!((s.auth_failures, s.auth_challenges), (8, 1), "eight refused tokens after one challenge");
}

#[test]
fn long_term_credentials_work_beside_tokens_and_do_not_mix() {
    let mut h = oauth_harness();
    // A REST user allocates as before.
    let (c, _) = h.allocate();
    // A token on the long-term allocation is 441.
    let nonce = c.nonce.clone();
    let mac = [6u8; 20];
    let token = h.token(NORTH, &mac, 600);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::REFRESH, Some(&token), |_| {});
    assert_eq!(error_code(&resp), Some(codes::WRONG_CREDENTIALS));
    // A token allocation on another 5-tuple; long-term credentials there are 441.
    h.client = addr("127.0.0.1:40002");
    let nonce = h.oauth_nonce();
    success(&h.oauth_send(("north", &nonce, &mac), Method::ALLOCATE, Some(&token), udp));
    let c = Client { nonce, ..c };
    let resp = h.send(&c, Method::REFRESH, |_| {});
    assert_eq!(error_code(&resp), Some(codes::WRONG_CREDENTIALS));
    assert_eq!(h.server.allocations().len(), 2);
}

#[test]
fn coturns_16_byte_reading_of_a_20_byte_mac_key_is_accepted_and_answered_in_kind() {
    // coturn (turnutils_uclient -J and its server) keys HMAC-SHA1 with the first 16 bytes.
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac: [u8; 20] = std::array::from_fn(|i| i as u8 + 1);
    let token = h.token(NORTH, &mac, 3600);
    let resp = h.oauth_send(("north", &nonce, &mac[..16]), Method::ALLOCATE, Some(&token), udp);
    let m = success(&resp);
    assert_eq!(m.verify_integrity(&IntegrityKey::new(&mac[..16])), Ok(()));
    assert!(m.verify_integrity(&IntegrityKey::new(&mac)).is_err());
    // The session keeps the reading that verified; the other one is refused from then on.
    success(&h.oauth_send(("north", &nonce, &mac[..16]), Method::CREATE_PERMISSION, None, peer));
    let resp = h.oauth_send(("north", &nonce, &mac), Method::CREATE_PERMISSION, None, peer);
    assert_eq!(error_code(&resp), Some(401));
    // Any other 16 bytes are not a reading of the token's key.
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let token = h.token(NORTH, &mac, 3600);
    let resp = h.oauth_send(("north", &nonce, &mac[4..]), Method::ALLOCATE, Some(&token), udp);
    assert_eq!(error_code(&resp), Some(401));
}

/// A token request over a TCP connection from `source`, with a nonce for that source.
fn oauth_over_tcp(
    h: &mut Harness,
    source: SocketAddr,
    (mac, token): (&[u8], &[u8]),
    method: Method,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> (Outcome, Vec<u8>) {
    let nonce = h.server.authenticator().unwrap().nonce(h.unix(), source);
    let tid = h.next_tid();
    let req = oauth_request(method, tid, ("north", nonce.as_str(), mac), Some(token), body);
    let rx = Received { transport: Transport::Tcp, source, local: h.local, data: &req };
    let mut out = vec![0u8; 1500];
    let o = h.server.handle(h.now, &rx, &mut out);
    let n = if let Outcome::Reply(n) = o { n } else { 0 };
    out.truncate(n);
    (o, out)
}

/// RFC 6062 with tokens: every holder under one kid has its own mac_key, and a ConnectionBind must
/// come from the session that made the allocation — another holder's valid token is 441, so it
/// cannot take over (read or inject into) someone else's peer connection.
#[test]
fn connection_bind_needs_the_allocations_own_token_session() {
    let mut h = oauth_harness();
    let (victim_mac, thief_mac) = ([0x11; 20], [0x22; 20]);
    let victim = h.token(NORTH, &victim_mac, 3600);
    let thief = h.token(NORTH, &thief_mac, 3600);
    let control = h.client;
    let (_, resp) = oauth_over_tcp(&mut h, control, (&victim_mac, &victim), Method::ALLOCATE, |w| {
        w.add(&RequestedTransport::TCP).unwrap();
    });
    success(&resp);
    let peer = addr("127.0.0.1:7000");
    let (o, _) = oauth_over_tcp(&mut h, control, (&victim_mac, &victim), Method::CONNECT, |w| {
        w.add(&XorPeerAddress(peer)).unwrap();
    });
    assert_eq!(o, Outcome::Silent);
    let (id, _) = *h.driver.connects.lock().unwrap().last().unwrap();
    let mut out = vec![0u8; 1500];
    h.server.connect_completed(h.now, id, true, &mut out).unwrap();
    let bind = |w: &mut MessageWriter<'_>| w.add(&ConnectionId(id)).unwrap();
    let (_, resp) =
        oauth_over_tcp(&mut h, addr("192.0.2.1:40001"), (&thief_mac, &thief), Method::CONNECTION_BIND, bind);
    assert_eq!(error_code(&resp), Some(codes::WRONG_CREDENTIALS), "another holder's token");
    let (_, resp) =
        oauth_over_tcp(&mut h, addr("192.0.2.1:40002"), (&victim_mac, &victim), Method::CONNECTION_BIND, bind);
    success(&resp);
}

/// Every token holder under one kid is a user of its own: a user quota of 1 lets two holders
/// allocate once each (the kid used to be the user, and the second holder got 486), and a holder's
/// second allocation is over its own quota.
#[test]
fn token_holders_under_one_kid_have_their_own_quota() {
    let mut h = oauth_harness();
    let options = ServerOptions { user_quota: 1, ..Harness::default_options() };
    let mut config = auth_config();
    config.oauth = Some(OauthConfig { server_name: SERVER_NAME.into(), keys: vec![key(NORTH), key(UNION)] });
    let auth = Authenticator::new(config, [7u8; 32]);
    h.server = Server::with_relay(options, Some(auth), h.driver.clone(), h.epoch, EPOCH_UNIX);
    let (ann, bob) = ([0x31; 20], [0x32; 20]);
    let (ann_token, bob_token) = (h.token(NORTH, &ann, 3600), h.token(NORTH, &bob, 3600));
    let allocate_from = |h: &mut Harness, source: &str, mac: &[u8], token: &[u8]| {
        let source = addr(source);
        let nonce = h.server.authenticator().unwrap().nonce(h.unix(), source);
        let tid = h.next_tid();
        let req = oauth_request(Method::ALLOCATE, tid, ("north", nonce.as_str(), mac), Some(token), udp);
        h.feed_from(source, &req).1
    };
    success(&allocate_from(&mut h, "127.0.0.1:41001", &ann, &ann_token));
    success(&allocate_from(&mut h, "127.0.0.1:41002", &bob, &bob_token));
    let again = allocate_from(&mut h, "127.0.0.1:41003", &ann, &ann_token);
    assert_eq!(error_code(&again), Some(codes::ALLOCATION_QUOTA_REACHED), "ann's own quota");
}

/// Issue #14 §1: an allocation never outlives its token (RFC 7635 §6.2, as coturn caps it).
#[test]
fn the_granted_lifetime_is_capped_at_the_tokens_remaining_lifetime() {
    let mut h = oauth_harness();
    let nonce = h.oauth_nonce();
    let mac = [6u8; 20];
    let token = h.token(NORTH, &mac, 100);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::ALLOCATE, Some(&token), |w| {
        udp(w);
        w.add(&Lifetime(3600)).unwrap();
    });
    assert_eq!(success(&resp).get::<Lifetime>().unwrap().0, 100);
    // A Refresh with the session key: what is left of the token, below the default lifetime too.
    h.advance(40);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::REFRESH, None, |w| w.add(&Lifetime(3600)).unwrap());
    assert_eq!(success(&resp).get::<Lifetime>().unwrap().0, 60);
    // A Refresh with a new token: that token's lifetime.
    let fresh = h.token(NORTH, &mac, 1200);
    let resp = h.oauth_send(("north", &nonce, &mac), Method::REFRESH, Some(&fresh), |_| {});
    assert_eq!(success(&resp).get::<Lifetime>().unwrap().0, 600, "the default, within the token");
    let resp =
        h.oauth_send(("north", &nonce, &mac), Method::REFRESH, Some(&fresh), |w| w.add(&Lifetime(3600)).unwrap());
    assert_eq!(success(&resp).get::<Lifetime>().unwrap().0, 1200);
    // LIFETIME 0 still deletes.
    let resp = h.oauth_send(("north", &nonce, &mac), Method::REFRESH, None, |w| w.add(&Lifetime(0)).unwrap());
    assert_eq!(success(&resp).get::<Lifetime>().unwrap().0, 0);
    assert_eq!(h.server.allocations().len(), 0);
}
