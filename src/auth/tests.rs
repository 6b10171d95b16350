//! (A test module: declared under #[cfg(test)] in its parent.)
//! The RFC 8489 §9.2.4 decision table, every branch, on requests built with `MessageWriter`.

use std::net::SocketAddr;

use super::*;
use crate::proto::stun::{
    Class, ErrorCode, MessageType, MessageWriter, Method, RequestedTransport, TransactionId, long_term_key_md5,
};

const NOW: u64 = 1_800_000_000;
const REALM: &str = "example.org";
const NONCE_SECRET: [u8; 32] = [0x42; 32];

fn client() -> SocketAddr {
    "198.51.100.7:51000".parse().unwrap()
}

fn rest() -> RestCredentials {
    RestCredentials::new(vec![Secret::from("current"), Secret::from("previous")])
}

fn authenticator() -> Authenticator {
    let mut config = AuthConfig::new(REALM);
    config.rest = Some(rest());
    config.users.insert("alice".into(), StaticCredential::Password("hunter2".into()));
    let key = long_term_key_md5("bob", REALM, "swordfish");
    config.users.insert("bob".into(), StaticCredential::Key(key));
    // A static user whose name looks like a REST username: the static entry wins.
    config.users.insert(format!("{}:static", NOW + 60), StaticCredential::Password("pw".into()));
    Authenticator::new(config, NONCE_SECRET)
}

/// What goes into a test request; `None` leaves the attribute out.
#[derive(Clone, Copy)]
struct Req<'a> {
    username: Option<&'a [u8]>,
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    key: Option<[u8; 16]>,
}

impl<'a> Req<'a> {
    /// A complete request for `username` with `password`, our realm and a fresh nonce.
    fn new(auth: &Authenticator, username: &'a str, password: &str, nonce: &'a str) -> Self {
        Req {
            username: Some(username.as_bytes()),
            realm: Some(REALM),
            nonce: Some(nonce),
            key: Some(long_term_key_md5(username, auth.realm(), password)),
        }
    }

    fn build(self, buf: &mut [u8]) -> usize {
        let ty = MessageType::new(Method::ALLOCATE, Class::Request);
        let mut w = MessageWriter::new(buf, ty, TransactionId([9; 12])).unwrap();
        w.add(&RequestedTransport::UDP).unwrap();
        if let Some(u) = self.username {
            w.add_raw(crate::proto::stun::types::USERNAME, u).unwrap();
        }
        if let Some(r) = self.realm {
            w.add(&Realm(r)).unwrap();
        }
        if let Some(n) = self.nonce {
            w.add(&Nonce(n)).unwrap();
        }
        if let Some(k) = self.key {
            w.add_message_integrity(&IntegrityKey::new(&k)).unwrap();
        }
        w.add_fingerprint().unwrap();
        w.finish()
    }
}

/// Builds the request and authenticates it at `now` from `client()`.
fn run(auth: &Authenticator, req: Req<'_>, now: u64) -> Result<(String, [u8; 16], Option<u64>), AuthError> {
    let mut buf = [0u8; 512];
    let n = req.build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    auth.authenticate(&msg, now, client()).map(|a| {
        let LongTermKey::Md5(key) = a.key_bytes else { panic!("{:?}", a.key_bytes) };
        (a.username.to_owned(), key, a.rest_expiry)
    })
}

fn fresh_nonce(auth: &Authenticator) -> NonceBuf {
    auth.nonce(NOW, client())
}

#[test]
fn static_password_user() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let (user, key, expiry) = run(&auth, Req::new(&auth, "alice", "hunter2", nonce.as_str()), NOW).unwrap();
    assert_eq!(user, "alice");
    assert_eq!(key, long_term_key_md5("alice", REALM, "hunter2"));
    assert_eq!(expiry, None);
}

#[test]
fn static_key_user() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let (user, _, _) = run(&auth, Req::new(&auth, "bob", "swordfish", nonce.as_str()), NOW).unwrap();
    assert_eq!(user, "bob");
    assert_eq!(
        run(&auth, Req::new(&auth, "bob", "wrong", nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    );
}

#[test]
fn static_user_wins_over_rest_parsing() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let name = format!("{}:static", NOW + 60);
    let (_, _, expiry) = run(&auth, Req::new(&auth, &name, "pw", nonce.as_str()), NOW).unwrap();
    assert_eq!(expiry, None, "looked up as a static user, not as REST");
    // Its REST password does not work for it.
    let rest_pw = rest_password(&rest().secrets[0], &name, RestAlgorithm::Sha1);
    assert_eq!(
        run(&auth, Req::new(&auth, &name, rest_pw.as_str(), nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    );
}

#[test]
fn rest_user_every_secret_verifies() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let (username, password) = rest().mint("carol", 600, NOW).unwrap();
    let (user, key, expiry) = run(&auth, Req::new(&auth, &username, &password, nonce.as_str()), NOW).unwrap();
    assert_eq!(user, username);
    assert_eq!(key, long_term_key_md5(&username, REALM, &password));
    assert_eq!(expiry, Some(NOW + 600));

    let old = RestCredentials::new(vec![Secret::from("previous")]);
    let (username, password) = old.mint("dave", 600, NOW).unwrap();
    assert!(run(&auth, Req::new(&auth, &username, &password, nonce.as_str()), NOW).is_ok());

    let other = RestCredentials::new(vec![Secret::from("unknown")]);
    let (username, password) = other.mint("mallory", 600, NOW).unwrap();
    assert_eq!(
        run(&auth, Req::new(&auth, &username, &password, nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    );
}

#[test]
fn rest_expired_and_too_far() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let (username, password) = rest().mint("erin", 60, NOW - 61).unwrap();
    assert_eq!(
        run(&auth, Req::new(&auth, &username, &password, nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::Expired))
    );
    let far = format!("{}:erin", NOW + 49 * 3600);
    let pw = rest_password(&rest().secrets[0], &far, RestAlgorithm::Sha1);
    assert_eq!(
        run(&auth, Req::new(&auth, &far, pw.as_str(), nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::TooFarInFuture))
    );
}

#[test]
fn unknown_users() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    // Not static, and not a REST username.
    assert_eq!(
        run(&auth, Req::new(&auth, "nobody", "x", nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::UnknownUser))
    );
    // A REST-looking username with REST disabled.
    let mut config = AuthConfig::new(REALM);
    config.users.insert("alice".into(), StaticCredential::Password("hunter2".into()));
    let no_rest = Authenticator::new(config.clone(), NONCE_SECRET);
    let (username, password) = rest().mint("carol", 600, NOW).unwrap();
    let nonce = fresh_nonce(&no_rest);
    assert_eq!(
        run(&no_rest, Req::new(&no_rest, &username, &password, nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::UnknownUser))
    );
    // REST enabled but no secret at all.
    config.rest = Some(RestCredentials::default());
    let no_secret = Authenticator::new(config, NONCE_SECRET);
    assert_eq!(
        run(&no_secret, Req::new(&no_secret, &username, &password, nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::UnknownUser))
    );
}

#[test]
fn no_message_integrity_is_401_no_credentials() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let req = Req { key: None, ..Req::new(&auth, "alice", "hunter2", nonce.as_str()) };
    let err = run(&auth, req, NOW).unwrap_err();
    assert_eq!(err, AuthError::Unauthenticated(Reason::NoCredentials));
    assert_eq!(err.error_code(), 401);
    // Even with nothing else in the message.
    let bare = Req { username: None, realm: None, nonce: None, key: None };
    assert_eq!(run(&auth, bare, NOW), Err(AuthError::Unauthenticated(Reason::NoCredentials)));
}

#[test]
fn missing_username_realm_or_nonce_is_400() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let full = Req::new(&auth, "alice", "hunter2", nonce.as_str());
    for req in [
        Req { username: None, ..full },
        Req { realm: None, ..full },
        Req { nonce: None, ..full },
        Req { username: Some(&[0xff, 0xfe]), ..full },
        // Before the nonce is looked at: a missing field with a stale nonce is still 400.
        Req { realm: None, nonce: Some("stale"), ..full },
    ] {
        let err = run(&auth, req, NOW).unwrap_err();
        assert_eq!(err, AuthError::BadRequest);
        assert_eq!(err.error_code(), 400);
        assert_eq!(err.reason(), Reason::Malformed);
    }
}

#[test]
fn bad_nonce_is_438() {
    let auth = authenticator();
    let fresh = fresh_nonce(&auth);
    let stale = auth.nonce(NOW - AuthConfig::DEFAULT_NONCE_TTL_SECS - 1, client());
    let other_client = auth.nonce(NOW, "198.51.100.7:51001".parse().unwrap());
    let other_key = NonceKey::new([1; 32]).nonce(NOW, client(), SecurityFeatures::PASSWORD_ALGORITHMS);
    let coturn = "7acbb4af1b5e0932";
    for nonce in [stale.as_str(), other_client.as_str(), other_key.as_str(), coturn, ""] {
        let err = run(&auth, Req::new(&auth, "alice", "hunter2", nonce), NOW).unwrap_err();
        assert_eq!(err, AuthError::StaleNonce, "{nonce:?}");
        assert_eq!(err.error_code(), 438);
    }
    // RFC 8489 §9.2.4: the nonce is judged last, after the realm, the user and the MAC: only valid
    // credentials learn that their nonce is stale (this encoded the RFC 5389 order before).
    let req = Req { realm: Some("evil.example"), ..Req::new(&auth, "alice", "hunter2", stale.as_str()) };
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::WrongRealm)));
    let req = Req::new(&auth, "nobody", "x", stale.as_str());
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::UnknownUser)));
    let req = Req::new(&auth, "alice", "wrong", stale.as_str());
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::BadIntegrity)));
    // At the edge of its lifetime a nonce still works.
    let edge = auth.nonce(NOW - AuthConfig::DEFAULT_NONCE_TTL_SECS, client());
    assert!(run(&auth, Req::new(&auth, "alice", "hunter2", edge.as_str()), NOW).is_ok());
    assert!(run(&auth, Req::new(&auth, "alice", "hunter2", fresh.as_str()), NOW).is_ok());
}

#[test]
fn wrong_realm_is_401() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    // The client computed its key with the realm it sends; still refused before any key lookup.
    let req = Req {
        realm: Some("other.example"),
        key: Some(long_term_key_md5("alice", "other.example", "hunter2")),
        ..Req::new(&auth, "alice", "hunter2", nonce.as_str())
    };
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::WrongRealm)));
    let req = Req { realm: Some("EXAMPLE.ORG"), ..Req::new(&auth, "alice", "hunter2", nonce.as_str()) };
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::WrongRealm)));
    // Realm before user: an unknown user in the wrong realm is a realm error.
    let req = Req { realm: Some("other.example"), ..Req::new(&auth, "nobody", "x", nonce.as_str()) };
    assert_eq!(run(&auth, req, NOW), Err(AuthError::Unauthenticated(Reason::WrongRealm)));
}

#[test]
fn bad_integrity_is_401() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    assert_eq!(
        run(&auth, Req::new(&auth, "alice", "hunter3", nonce.as_str()), NOW),
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    );
    // A correctly signed message changed afterwards.
    let mut buf = [0u8; 512];
    let n = Req::new(&auth, "alice", "hunter2", nonce.as_str()).build(&mut buf);
    buf[24] ^= 0x01; // inside REQUESTED-TRANSPORT
    let msg = Message::parse(&buf[..n]).unwrap();
    assert_eq!(auth.authenticate(&msg, NOW, client()).unwrap_err(), AuthError::Unauthenticated(Reason::BadIntegrity));
}

#[test]
fn authenticated_key_signs_the_response() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let mut buf = [0u8; 512];
    let n = Req::new(&auth, "alice", "hunter2", nonce.as_str()).build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    let ok = auth.authenticate(&msg, NOW, client()).unwrap();
    let mut out = [0u8; 256];
    let mut w = MessageWriter::response(&mut out, &msg, Class::SuccessResponse).unwrap();
    w.add_message_integrity(&ok.key).unwrap();
    let len = w.finish();
    let resp = Message::parse(&out[..len]).unwrap();
    assert!(resp.verify_integrity(&IntegrityKey::new(&long_term_key_md5("alice", REALM, "hunter2"))).is_ok());
    // Debug shows the user, never the key.
    let dbg = format!("{ok:?}");
    assert!(dbg.contains("alice") && !dbg.contains(&format!("{:?}", ok.key_bytes)), "{dbg}");
}

#[test]
fn verify_with_cached_key() {
    let auth = authenticator();
    let nonce = fresh_nonce(&auth);
    let (username, password) = rest().mint("carol", 600, NOW).unwrap();
    let mut buf = [0u8; 512];
    let n = Req::new(&auth, &username, &password, nonce.as_str()).build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    let ok = auth.authenticate(&msg, NOW, client()).unwrap();
    let (key, lt) = (ok.key, ok.key_bytes);

    assert_eq!(auth.verify_with_key(&msg, &key, &lt, NOW, client()).map(|a| a.username), Ok(username.as_str()));
    let wrong = IntegrityKey::new(&[0u8; 16]);
    assert_eq!(
        auth.verify_with_key(&msg, &wrong, &lt, NOW, client()).map(|a| a.username),
        Err(AuthError::Unauthenticated(Reason::BadIntegrity))
    );
    // Still checks the REST expiry on every request, and the nonce (last, RFC 8489 §9.2.4: so the
    // expired credential is what this request is refused for).
    assert_eq!(
        auth.verify_with_key(&msg, &key, &lt, NOW + 3601, client()).map(|a| a.username),
        Err(AuthError::Unauthenticated(Reason::Expired))
    );
    let (long_user, long_pass) = rest().mint("carol", 7200, NOW).unwrap();
    let n = Req::new(&auth, &long_user, &long_pass, nonce.as_str()).build(&mut buf);
    let long = Message::parse(&buf[..n]).unwrap();
    let ok = auth.authenticate(&long, NOW, client()).unwrap();
    assert_eq!(
        auth.verify_with_key(&long, &ok.key, &ok.key_bytes, NOW + 3601, client()).map(|a| a.username),
        Err(AuthError::StaleNonce)
    );
    let later = auth.nonce(NOW + 601, client());
    let n = Req::new(&auth, &username, &password, later.as_str()).build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        auth.verify_with_key(&msg, &key, &lt, NOW + 601, client()).map(|a| a.username),
        Err(AuthError::Unauthenticated(Reason::Expired))
    );
    // And the realm, and the fields.
    let req = Req { realm: Some("other.example"), ..Req::new(&auth, &username, &password, nonce.as_str()) };
    let n = req.build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        auth.verify_with_key(&msg, &key, &lt, NOW, client()).map(|a| a.username),
        Err(AuthError::Unauthenticated(Reason::WrongRealm))
    );
    let req = Req { key: None, ..Req::new(&auth, &username, &password, nonce.as_str()) };
    let n = req.build(&mut buf);
    let msg = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        auth.verify_with_key(&msg, &key, &lt, NOW, client()).map(|a| a.username),
        Err(AuthError::Unauthenticated(Reason::NoCredentials))
    );
}

#[test]
fn error_codes_and_labels() {
    assert_eq!(AuthError::BadRequest.error_code(), 400);
    assert_eq!(AuthError::Unauthenticated(Reason::Expired).error_code(), 401);
    assert_eq!(AuthError::StaleNonce.error_code(), 438);
    assert_eq!(ErrorCode::from(AuthError::StaleNonce), ErrorCode::new(438));
    assert_eq!(AuthError::StaleNonce.reason().to_string(), "stale_nonce");
    let labels = [
        (Reason::NoCredentials, "no_credentials"),
        (Reason::UnknownUser, "unknown_user"),
        (Reason::Expired, "expired"),
        (Reason::TooFarInFuture, "too_far_in_future"),
        (Reason::WrongRealm, "wrong_realm"),
        (Reason::BadIntegrity, "bad_integrity"),
        (Reason::StaleNonce, "stale_nonce"),
        (Reason::Malformed, "malformed"),
        (Reason::Revoked, "revoked"),
    ];
    for (r, s) in labels {
        assert_eq!(r.to_string(), s);
        assert_eq!(AuthError::Unauthenticated(r).reason(), r);
    }
    assert_eq!(AuthError::Unauthenticated(Reason::WrongRealm).to_string(), "unauthenticated: wrong_realm");
}

#[test]
fn debug_never_shows_secrets() {
    let auth = authenticator();
    let dbg = format!("{auth:?}");
    for secret in ["current", "previous", "hunter2", "swordfish"] {
        assert!(!dbg.contains(secret), "{secret} in {dbg}");
    }
    let cands = auth.key_candidates("alice", NOW).unwrap();
    assert!(!format!("{cands:?}").contains('['), "{cands:?}");
}

#[test]
fn user_of_static_and_rest_usernames() {
    let auth = authenticator();
    assert_eq!(auth.user_of("alice"), "alice");
    assert_eq!(auth.user_of("1800000000:carol"), "carol");
    assert_eq!(auth.user_of("1800000000:carol:with:colons"), "carol:with:colons");
    // A static user whose name looks like a REST username is that static user.
    let name = format!("{}:static", NOW + 60);
    assert_eq!(auth.user_of(&name), name);
    // Neither: the username as it is.
    assert_eq!(auth.user_of("nobody"), "nobody");
    assert_eq!(auth.user_of("x:y"), "x:y");
}
