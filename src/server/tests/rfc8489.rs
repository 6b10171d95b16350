//! (A test module: declared under #[cfg(test)] in its parent.)
//! RFC 8489 §9.2 in full on the sans-IO server: the nonce cookie and PASSWORD-ALGORITHMS in 401,
//! SHA-256 keys with MESSAGE-INTEGRITY-SHA256 answered in kind, bid-down protection (400), RFC 5389
//! clients unchanged, USERHASH for static users, and `require-sha256`.

use super::*;
use crate::auth::{KeyAlgorithm, LongTermKey, userhash};

/// How a test request names its user and signs itself.
#[derive(Clone, Copy)]
struct Creds<'a> {
    /// USERNAME, or USERHASH of it with `hashed`.
    user: &'a str,
    hashed: bool,
    password: &'a str,
    nonce: &'a str,
    /// PASSWORD-ALGORITHMS and PASSWORD-ALGORITHM to carry, if any.
    algorithms: Option<(PasswordAlgorithms<'a>, u16)>,
    algorithm: KeyAlgorithm,
    /// MESSAGE-INTEGRITY-SHA256 instead of MESSAGE-INTEGRITY.
    sha256_mac: bool,
}

impl<'a> Creds<'a> {
    /// An RFC 8489 SHA-256 request echoing the server's offer.
    fn sha256(user: &'a str, password: &'a str, nonce: &'a str, offered: PasswordAlgorithms<'a>) -> Self {
        Creds {
            user,
            hashed: false,
            password,
            nonce,
            algorithms: Some((offered, password_algorithm::SHA256)),
            algorithm: KeyAlgorithm::Sha256,
            sha256_mac: true,
        }
    }

    /// An RFC 5389 request: MD5, MESSAGE-INTEGRITY, no algorithm attributes.
    fn legacy(user: &'a str, password: &'a str, nonce: &'a str) -> Self {
        Creds {
            user,
            hashed: false,
            password,
            nonce,
            algorithms: None,
            algorithm: KeyAlgorithm::Md5,
            sha256_mac: false,
        }
    }

    fn key(&self) -> LongTermKey {
        LongTermKey::derive(self.algorithm, self.user, REALM, self.password).unwrap()
    }

    fn request(&self, method: Method, tid: TransactionId, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
        let mut buf = vec![0u8; 1500];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid).unwrap();
        body(&mut w);
        if self.hashed {
            w.add(&Userhash(userhash(self.user, REALM).unwrap())).unwrap();
        } else {
            w.add(&Username(self.user)).unwrap();
        }
        w.add(&Realm(REALM)).unwrap();
        w.add(&Nonce(self.nonce)).unwrap();
        if let Some((list, chosen)) = self.algorithms {
            w.add(&list).unwrap();
            w.add(&PasswordAlgorithm { algorithm: chosen, params: &[] }).unwrap();
        }
        let key = self.key();
        if self.sha256_mac {
            w.add_message_integrity_sha256(&IntegrityKeySha256::new(key.as_bytes())).unwrap();
        } else {
            w.add_message_integrity(&IntegrityKey::new(key.as_bytes())).unwrap();
        }
        w.add_fingerprint().unwrap();
        let n = w.finish();
        buf.truncate(n);
        buf
    }
}

/// The 401 to an unauthenticated Allocate: its NONCE and PASSWORD-ALGORITHMS.
fn challenge(h: &mut Harness) -> (String, Vec<u8>) {
    let tid = h.next_tid();
    let (_, resp) = h.feed(&request(Method::ALLOCATE, tid, None, udp));
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    let nonce = m.get::<Nonce>().unwrap().0.to_string();
    assert!(nonce.starts_with("obMatJos2"), "{nonce}");
    let offered = m.get::<PasswordAlgorithms>().unwrap().as_bytes().to_vec();
    (nonce, offered)
}

fn send(h: &mut Harness, c: &Creds<'_>, method: Method, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    let tid = h.next_tid();
    h.feed(&c.request(method, tid, body)).1
}

/// A success signed with MESSAGE-INTEGRITY-SHA256 under `key`, and without MESSAGE-INTEGRITY.
fn assert_sha256_success(resp: &[u8], key: &LongTermKey) {
    let m = Message::parse(resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    assert!(m.verify_integrity_sha256(&IntegrityKeySha256::new(key.as_bytes())).is_ok());
    assert!(!m.has_integrity(), "signed with the request's algorithm only");
}

#[test]
fn sha256_round_trip_is_answered_with_sha256() {
    let mut h = Harness::new(Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    // SHA-256 first (preferred), then MD5, neither with parameters (RFC 8489 §14.12).
    assert_eq!(offered, PasswordAlgorithms::SHA256_AND_MD5);
    let c = Creds::sha256("alice", "wonderland", &nonce, offered);
    let key = c.key();
    assert!(matches!(key, LongTermKey::Sha256(_)));
    let resp = send(&mut h, &c, Method::ALLOCATE, udp);
    assert_sha256_success(&resp, &key);
    // Later requests on the allocation take the cached-key path, answered the same way.
    let resp = send(&mut h, &c, Method::REFRESH, |_| {});
    assert_sha256_success(&resp, &key);
    // MESSAGE-INTEGRITY with the SHA-256 key is fine too, and answered with MESSAGE-INTEGRITY.
    let resp = send(&mut h, &Creds { sha256_mac: false, ..c }, Method::REFRESH, |_| {});
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse);
    assert!(m.verify_integrity(&IntegrityKey::new(key.as_bytes())).is_ok());
    assert!(!m.has_integrity_sha256());
    // Switching to MD5 on the allocation is refused.
    let md5 = Creds { algorithms: Some((offered, password_algorithm::MD5)), algorithm: KeyAlgorithm::Md5, ..c };
    let resp = send(&mut h, &md5, Method::REFRESH, |_| {});
    assert!(matches!(error_code(&resp), Some(401 | 441)), "{:?}", error_code(&resp));
}

#[test]
fn sha256_with_rest_credentials() {
    let mut h = Harness::new(Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    let (u, p) = h.rest_credentials("carol");
    let c = Creds::sha256(&u, &p, &nonce, offered);
    let resp = send(&mut h, &c, Method::ALLOCATE, udp);
    assert_sha256_success(&resp, &c.key());
}

#[test]
fn tampered_password_algorithms_get_400() {
    let mut h = Harness::new(Harness::default_options());
    let (nonce, _) = challenge(&mut h);
    // A man in the middle struck SHA-256 from the offer (RFC 8489 §9.2.5): the echo differs.
    let md5_only = PasswordAlgorithms::from_raw(&[0, 1, 0, 0]).unwrap();
    let c = Creds {
        algorithms: Some((md5_only, password_algorithm::MD5)),
        algorithm: KeyAlgorithm::Md5,
        ..Creds::sha256("alice", "wonderland", &nonce, md5_only)
    };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(400));
    // Reordered is tampered too.
    let c = Creds::sha256("alice", "wonderland", &nonce, PasswordAlgorithms::MD5_AND_SHA256);
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(400));
    // PASSWORD-ALGORITHM not among them.
    let c = Creds {
        algorithms: Some((PasswordAlgorithms::SHA256_AND_MD5, 0x0003)),
        ..Creds::sha256("alice", "wonderland", &nonce, PasswordAlgorithms::SHA256_AND_MD5)
    };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(400));
    // PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS.
    let tid = h.next_tid();
    let key = IntegrityKeySha256::new(
        LongTermKey::derive(KeyAlgorithm::Sha256, "alice", REALM, "wonderland").unwrap().as_bytes(),
    );
    let mut buf = vec![0u8; 512];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::ALLOCATE, Class::Request), tid).unwrap();
    udp(&mut w);
    w.add(&Username("alice")).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(&nonce)).unwrap();
    w.add(&PasswordAlgorithm { algorithm: password_algorithm::SHA256, params: &[] }).unwrap();
    w.add_message_integrity_sha256(&key).unwrap();
    let n = w.finish();
    assert_eq!(error_code(&h.feed(&buf[..n]).1), Some(400));
    assert!(h.server.allocations().is_empty());
}

#[test]
fn legacy_md5_clients_are_unchanged() {
    let mut h = Harness::new(Harness::default_options());
    // An RFC 5389 client echoes the cookie nonce and signs with MD5 and MESSAGE-INTEGRITY only.
    let (nonce, _) = challenge(&mut h);
    let c = Creds::legacy("alice", "wonderland", &nonce);
    let resp = send(&mut h, &c, Method::ALLOCATE, udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
    let key = LongTermKey::Md5(long_term_key_md5("alice", REALM, "wonderland"));
    assert_eq!(c.key(), key);
    assert!(m.verify_integrity(&IntegrityKey::new(key.as_bytes())).is_ok());
    assert!(!m.has_integrity_sha256());
    let resp = send(&mut h, &c, Method::REFRESH, |_| {});
    assert_eq!(error_code(&resp), None);
    // An RFC 8489 client choosing MD5 from the offer works as well.
    let mut h = Harness::new(Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    let c = Creds {
        algorithms: Some((offered, password_algorithm::MD5)),
        algorithm: KeyAlgorithm::Md5,
        sha256_mac: false,
        ..Creds::sha256("alice", "wonderland", &nonce, offered)
    };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), None);
}

#[test]
fn userhash_names_a_static_user() {
    let mut h = Harness::new(Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    let c = Creds { hashed: true, ..Creds::sha256("alice", "wonderland", &nonce, offered) };
    let resp = send(&mut h, &c, Method::ALLOCATE, udp);
    assert_sha256_success(&resp, &c.key());
    let m = Message::parse(&resp).unwrap();
    assert!(m.get::<Username>().is_err(), "the username is not echoed");
    let alloc = h.server.allocations().get(&FiveTuple { transport: Transport::Udp, client: h.client, server: h.local });
    assert_eq!(&*alloc.unwrap().info().username, "alice");
    // A USERHASH request on the allocation (full path) is the same credentials.
    let resp = send(&mut h, &c, Method::REFRESH, |_| {});
    assert_sha256_success(&resp, &c.key());
    // With MD5 too.
    let mut h = Harness::new(Harness::default_options());
    let (nonce, _) = challenge(&mut h);
    let c = Creds { hashed: true, ..Creds::legacy("alice", "wonderland", &nonce) };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), None);
}

#[test]
fn userhash_of_no_static_user_gets_401() {
    let mut h = Harness::new(Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    // A REST username cannot be recovered from its hash.
    let (u, p) = h.rest_credentials("carol");
    let c = Creds { hashed: true, ..Creds::sha256(&u, &p, &nonce, offered) };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(401));
    let c = Creds { hashed: true, ..Creds::sha256("mallory", "x", &nonce, offered) };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(401));
}

#[test]
fn username_anonymity_is_announced_only_without_rest() {
    let h = Harness::new(Harness::default_options());
    let auth = h.server.authenticator().unwrap();
    assert_eq!(auth.security_features(), crate::auth::SecurityFeatures::PASSWORD_ALGORITHMS);
    let mut config = auth_config();
    config.rest = None;
    let only_static = auth.with_config(config);
    let f = only_static.security_features();
    assert!(f.contains(crate::auth::SecurityFeatures::USERNAME_ANONYMITY), "{f:?}");
    assert!(only_static.nonce(EPOCH_UNIX, h.client).as_str().starts_with("obMatJos2AAAD"));
}

#[test]
fn require_sha256_refuses_md5() {
    let mut h = Harness::new(Harness::default_options());
    let mut config = auth_config();
    config.require_sha256 = true;
    h.server.reload(Some(Authenticator::new(config, [7u8; 32])), &Harness::default_options());
    let (nonce, offered) = challenge(&mut h);
    assert_eq!(offered, PasswordAlgorithms::SHA256.as_bytes(), "SHA-256 alone is offered");
    let offered = PasswordAlgorithms::from_raw(&offered).unwrap();
    // An RFC 5389 client: MD5, refused with 401 (and a fresh challenge).
    let resp = send(&mut h, &Creds::legacy("alice", "wonderland", &nonce), Method::ALLOCATE, udp);
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    assert_eq!(m.get::<PasswordAlgorithms>().unwrap(), PasswordAlgorithms::SHA256);
    // MD5 chosen from a list that does not carry it: 400.
    let c = Creds {
        algorithms: Some((offered, password_algorithm::MD5)),
        algorithm: KeyAlgorithm::Md5,
        ..Creds::sha256("alice", "wonderland", &nonce, offered)
    };
    assert_eq!(error_code(&send(&mut h, &c, Method::ALLOCATE, udp)), Some(400));
    // SHA-256 works.
    let c = Creds::sha256("alice", "wonderland", &nonce, offered);
    assert_sha256_success(&send(&mut h, &c, Method::ALLOCATE, udp), &c.key());
    assert_eq!(h.server.stats().snapshot().auth_failures_by_reason[8], 1, "one md5_refused");
}
