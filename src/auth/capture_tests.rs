//! (A test module: declared under #[cfg(test)] in its parent.)
//! REST keys and the §9.2.4 checks against packets captured from coturn 4.6.1's `turnutils_uclient`
//! and from aioice (fixture: realm `fixture.test`, secret `fixture-secret`; see
//! `tests/data/captures/README.md`). Their NONCEs are coturn's, so the nonce check is bypassed by
//! calling the steps after it.

use super::*;

const NONCE_SECRET: [u8; 32] = [0x42; 32];

fn client() -> std::net::SocketAddr {
    "198.51.100.7:51000".parse().unwrap()
}

const UCLIENT_ALLOCATE: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures/uclient-allocate-auth.bin"));
const AIOICE_ALLOCATE: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures/aioice-allocate-auth.bin"));
const CAPTURE_NOW: u64 = 1_795_921_000;

fn fixture_authenticator() -> Authenticator {
    let mut config = AuthConfig::new("fixture.test");
    let mut rest = RestCredentials::new(vec![Secret::from("fixture-secret")]);
    rest.max_lifetime_secs = 0;
    config.rest = Some(rest);
    Authenticator::new(config, NONCE_SECRET)
}

fn hex16(s: &str) -> [u8; 16] {
    let mut k = [0u8; 16];
    hex::decode(s.as_bytes(), &mut k).unwrap();
    k
}

#[test]
fn captured_uclient_allocate_known_answer() {
    let auth = fixture_authenticator();
    let msg = Message::parse(UCLIENT_ALLOCATE).unwrap();
    let username = msg.get::<Username<'_>>().unwrap().0;
    assert_eq!(username, "1795921235:uclient");
    let pw = rest_password(&Secret::from("fixture-secret"), username, RestAlgorithm::Sha1);
    assert_eq!(pw.as_str(), "NKHMu+dGJ/ayG8gZN6CWEgob98w=");

    // The public lower-level path: candidates, then the codec's check.
    let mut cands = auth.key_candidates(username, CAPTURE_NOW).unwrap();
    assert_eq!(cands.rest_expiry(), Some(1_795_921_235));
    let key = cands.next().unwrap();
    assert_eq!(key, LongTermKey::Md5(hex16("97b37d1e83e546d3c2ac44283b33af08")));
    assert!(cands.next().is_none());
    assert!(msg.verify_integrity(&IntegrityKey::new(key.as_bytes())).is_ok());

    // The internal path of `authenticate`, minus our nonce check (the NONCE is coturn's).
    let creds = Authenticator::credentials(&msg).unwrap();
    assert_eq!(creds.realm, "fixture.test");
    assert_eq!(creds.nonce, "7acbb4af1b5e0932");
    let ok = auth.verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, CAPTURE_NOW, any_client()).unwrap();
    assert_eq!(ok.username, "1795921235:uclient");
    assert_eq!(ok.key_bytes, key);
    assert_eq!(ok.rest_expiry, Some(1_795_921_235));

    // The full path refuses coturn's nonce (438), and the expiry is enforced an hour later.
    assert_eq!(auth.authenticate(&msg, CAPTURE_NOW, client()).unwrap_err(), AuthError::StaleNonce);
    assert_eq!(
        auth.verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, 1_795_921_236, any_client()).unwrap_err(),
        AuthError::Unauthenticated(Reason::Expired)
    );
}

#[test]
fn captured_aioice_allocate_known_answer() {
    let auth = fixture_authenticator();
    let msg = Message::parse(AIOICE_ALLOCATE).unwrap();
    let creds = Authenticator::credentials(&msg).unwrap();
    assert_eq!(creds.username, Some("2000000000:fixture-aioice-udp"));
    let ok = auth.verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, CAPTURE_NOW, any_client()).unwrap();
    assert_eq!(ok.key_bytes, LongTermKey::Md5(hex16("4ce2297a8ee5fdd0900bb10cf71cf4d3")));
    assert_eq!(ok.rest_expiry, Some(2_000_000_000));
    // With the default 48-hour cap the 2033 expiry is too far ahead of the capture time.
    let mut capped = fixture_authenticator().config().clone();
    if let Some(r) = capped.rest.as_mut() {
        r.max_lifetime_secs = RestCredentials::DEFAULT_MAX_LIFETIME_SECS;
    }
    let capped = Authenticator::new(capped, NONCE_SECRET);
    assert_eq!(
        capped.verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, CAPTURE_NOW, any_client()).unwrap_err(),
        AuthError::Unauthenticated(Reason::TooFarInFuture)
    );
    // Another secret: every candidate fails.
    let mut other = fixture_authenticator().config().clone();
    other.rest =
        Some(RestCredentials { max_lifetime_secs: 0, ..RestCredentials::new(vec![Secret::from("not-the-secret")]) });
    let other = Authenticator::new(other, NONCE_SECRET);
    assert_eq!(
        other.verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, CAPTURE_NOW, any_client()).unwrap_err(),
        AuthError::Unauthenticated(Reason::BadIntegrity)
    );
}

/// Every captured client request that carries MESSAGE-INTEGRITY authenticates (nonce aside).
#[test]
fn every_captured_request_verifies() {
    macro_rules! captures {
        ($($f:literal),* $(,)?) => {
            [$(($f, &include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/captures/", $f))[..])),*]
        };
    }
    let files = captures![
        "uclient-allocate-auth.bin",
        "uclient-refresh.bin",
        "uclient-refresh-lifetime0.bin",
        "uclient-create-permission.bin",
        "uclient-channel-bind.bin",
        "rfc6062-allocate-tcp.bin",
        "rfc6062-create-permission.bin",
        "rfc6062-connect.bin",
        "rfc6062-connectionbind.bin",
        "aioice-allocate-auth.bin",
        "aioice-channel-bind.bin",
        "aioice-refresh.bin",
        "chromium-allocate-auth.bin",
        "chromium-create-permission.bin",
        "chromium-channel-bind.bin",
        "chromium-refresh.bin",
        "chromium-tcp-allocate-auth.bin",
        "chromium-tcp-create-permission.bin",
        "chromium-tcp-channel-bind.bin",
        "chromium-tcp-refresh.bin",
    ];
    let auth = fixture_authenticator();
    for (name, bytes) in files {
        let msg = Message::parse(bytes).unwrap();
        let creds = Authenticator::credentials(&msg).unwrap();
        assert_eq!(creds.realm, auth.realm(), "{name}");
        let ok = auth
            .verify_user(&msg, creds.username.unwrap(), KeyAlgorithm::Md5, CAPTURE_NOW, any_client())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The cached-key path agrees (its nonce check aside: coturn's nonce is a 438 here).
        assert!(msg.verify_integrity(&ok.key).is_ok(), "{name}");
        assert_eq!(
            auth.verify_with_key(&msg, &ok.key, &ok.key_bytes, CAPTURE_NOW, client()).map(|a| a.username),
            Err(AuthError::StaleNonce)
        );
    }
}

/// A client address for `verify_user` (the captures' keys do not depend on it).
fn any_client() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 50000))
}
