//! (A test module: declared under #[cfg(test)] in its parent.)
//! RFC 7635 §6.2 tokens: coturn's vectors, and one test per rejection.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

const SERVER: &str = "blackdow.carleon.gov";
const NORTH: &str = "north:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK:A256GCM";
const UNION: &str = "union:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM";
const OLDEMPIRE: &str = "oldempire:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIK:A256GCM";
const T0: u64 = 1_700_000_000;

fn key(s: &str) -> AccessTokenKey {
    AccessTokenKey::parse(s).unwrap().0
}

fn config() -> OauthConfig {
    OauthConfig { server_name: SERVER.into(), keys: vec![key(NORTH), key(UNION), key(OLDEMPIRE)] }
}

/// The MAC a key computes over a fixed input, to compare keys that hide their bytes.
fn mac_of(k: &MacKey) -> Vec<u8> {
    match k {
        MacKey::Sha1(k) => k.compute(&[b"probe"]).to_vec(),
        MacKey::Sha256(k) => k.compute(&[b"probe"]).to_vec(),
    }
}

fn sealed(mac_key: &[u8], ts: u64, lifetime: u32) -> Vec<u8> {
    seal(&key(NORTH), SERVER, [7; 12], mac_key, ts, lifetime).unwrap()
}

#[test]
fn coturn_vectors_open() {
    let text = include_str!("../../tests/data/oauth/turnutils_oauth.txt");
    let mut n = 0;
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [kid, spec, token, mac_key, ts, lifetime] = f[..] else { panic!("bad fixture line {line}") };
        let (k, longer) = AccessTokenKey::parse(spec).unwrap();
        assert!(longer, "coturn's test keys carry a trailing newline");
        let cfg = OauthConfig { server_name: SERVER.into(), keys: vec![k] };
        let token = STANDARD.decode(token).unwrap();
        let mac_key = STANDARD.decode(mac_key).unwrap();
        let ts: u64 = ts.parse().unwrap();
        let got = cfg.open(kid, &token, ts + 10).unwrap();
        assert_eq!(got.timestamp, ts);
        assert_eq!(got.lifetime, lifetime.parse::<u32>().unwrap());
        assert_eq!(mac_of(&got.mac_key), mac_of(&MacKey::new(&mac_key).unwrap()));
        assert_eq!(matches!(got.mac_key, MacKey::Sha256(_)), mac_key.len() == 32);
        // Another server name is another AAD: the tag fails.
        let other = OauthConfig { server_name: "other.example".into(), ..cfg.clone() };
        assert_eq!(other.open(kid, &token, ts + 10).unwrap_err(), AccessTokenError::BadTag);
        n += 1;
    }
    assert_eq!(n, 2);
}

#[test]
fn seal_then_open_round_trips_both_algorithms_and_mac_lengths() {
    let cfg = config();
    for spec in [NORTH, UNION] {
        for mac_key in [&[1u8; 20][..], &[2u8; 32][..]] {
            let k = key(spec);
            let token = seal(&k, SERVER, [9; 12], mac_key, T0, 600).unwrap();
            let got = cfg.open(k.kid(), &token, T0 + 599).unwrap();
            assert_eq!(got.expires(), T0 + 600);
            assert_eq!(mac_of(&got.mac_key), mac_of(&MacKey::new(mac_key).unwrap()));
        }
    }
}

#[test]
fn unknown_kid() {
    let token = sealed(&[1; 20], T0, 600);
    assert_eq!(config().open("south", &token, T0).unwrap_err(), AccessTokenError::UnknownKid);
}

#[test]
fn bad_tag_under_another_key_or_tampered() {
    let token = sealed(&[1; 20], T0, 600);
    // Sealed under north, presented as oldempire's.
    assert_eq!(config().open("oldempire", &token, T0).unwrap_err(), AccessTokenError::BadTag);
    for i in [2, 14, 20, token.len() - 1] {
        let mut t = token.clone();
        t[i] ^= 0x01;
        assert_eq!(config().open("north", &t, T0).unwrap_err(), AccessTokenError::BadTag, "byte {i}");
    }
}

#[test]
fn expired() {
    let token = sealed(&[1; 20], T0, 600);
    assert!(config().open("north", &token, T0 + 600).is_ok(), "within the skew");
    let late = T0 + 600 + TOKEN_CLOCK_SKEW_SECS;
    assert_eq!(config().open("north", &token, late).unwrap_err(), AccessTokenError::Expired);
    let zero = sealed(&[1; 20], T0, 0);
    assert_eq!(config().open("north", &zero, T0).unwrap_err(), AccessTokenError::Expired);
}

#[test]
fn timestamp_too_far_in_the_future() {
    let token = sealed(&[1; 20], T0 + TOKEN_CLOCK_SKEW_SECS, 600);
    assert!(config().open("north", &token, T0).is_ok(), "within the skew");
    let token = sealed(&[1; 20], T0 + TOKEN_CLOCK_SKEW_SECS + 1, 600);
    assert_eq!(config().open("north", &token, T0).unwrap_err(), AccessTokenError::FromFuture);
}

#[test]
fn bad_lengths() {
    let cfg = config();
    let token = sealed(&[1; 20], T0, 600);
    // Truncated anywhere, or empty.
    for n in 0..token.len() {
        assert!(cfg.open("north", &token[..n], T0).is_err(), "prefix of {n}");
    }
    // A nonce length other than 12.
    let mut t = token.clone();
    t[1] = 11;
    assert_eq!(cfg.open("north", &t, T0).unwrap_err(), AccessTokenError::BadLength);
    // An encrypted block longer than any we accept.
    let mut long = token.clone();
    long.splice(14..14, [0u8; 64]);
    assert_eq!(cfg.open("north", &long, T0).unwrap_err(), AccessTokenError::BadLength);
    // A mac_key of 16 bytes: the block decrypts but is refused (and `seal` will not make one).
    assert_eq!(seal(&key(NORTH), SERVER, [7; 12], &[1; 16], T0, 600).unwrap_err(), AccessTokenError::BadLength);
    let mut block = Vec::new();
    block.extend_from_slice(&16u16.to_be_bytes());
    block.extend_from_slice(&[1; 16]);
    block.extend_from_slice(&(T0 << 16).to_be_bytes());
    block.extend_from_slice(&600u32.to_be_bytes());
    let k = key(NORTH);
    let tag = k.encrypt([7; 12], SERVER.as_bytes(), &mut block).unwrap();
    let mut t = vec![0, 12];
    t.extend_from_slice(&[7; 12]);
    t.extend_from_slice(&block);
    t.extend_from_slice(&tag);
    assert_eq!(cfg.open("north", &t, T0).unwrap_err(), AccessTokenError::BadLength);
    // A key_length that runs past the block.
    let mut block = Vec::new();
    block.extend_from_slice(&40u16.to_be_bytes());
    block.extend_from_slice(&[1; 20]);
    block.extend_from_slice(&(T0 << 16).to_be_bytes());
    block.extend_from_slice(&600u32.to_be_bytes());
    let tag = k.encrypt([7; 12], SERVER.as_bytes(), &mut block).unwrap();
    let mut t = vec![0, 12];
    t.extend_from_slice(&[7; 12]);
    t.extend_from_slice(&block);
    t.extend_from_slice(&tag);
    assert_eq!(cfg.open("north", &t, T0).unwrap_err(), AccessTokenError::BadLength);
}

#[test]
fn key_parsing() {
    let (k, longer) = AccessTokenKey::parse(UNION).unwrap();
    assert_eq!((k.kid(), k.algorithm(), longer), ("union", TokenAlgorithm::A128Gcm, true));
    let exact = format!("k:{}:A256GCM", STANDARD.encode([5u8; 32]));
    assert!(!AccessTokenKey::parse(&exact).unwrap().1);
    let short = format!("k:{}:A256GCM", STANDARD.encode([5u8; 31]));
    assert_eq!(
        AccessTokenKey::parse(&short).unwrap_err(),
        AccessTokenKeyError::TooShort { got: 31, need: 32, alg: "A256GCM" }
    );
    assert_eq!(AccessTokenKey::parse("k:MTIz:A192GCM").unwrap_err(), AccessTokenKeyError::Algorithm);
    assert_eq!(AccessTokenKey::parse("k:!!!:A128GCM").unwrap_err(), AccessTokenKeyError::Base64);
    assert_eq!(AccessTokenKey::parse(":MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM").unwrap_err(), AccessTokenKeyError::Format);
    assert_eq!(AccessTokenKey::parse("k:MTIz").unwrap_err(), AccessTokenKeyError::Format);
    // Debug shows no key material.
    let dbg = format!("{k:?}");
    assert!(dbg.contains("union") && !dbg.contains("MTIz"), "{dbg}");
}
