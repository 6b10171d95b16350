//! What authenticating a request costs with an RFC 7635 ACCESS-TOKEN (decrypt the token, then one
//! HMAC with its mac_key) against long-term REST credentials (HMAC for the password, MD5 for the
//! key, then one HMAC), and the token's AES-GCM open alone. The nonce check is in both.
//!
//! Run: `cargo bench --bench oauth -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::auth::oauth::{AccessTokenKey, OauthConfig, seal};
use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret};
use switchback::proto::stun::{
    AccessToken, Class, IntegrityKey, Message, MessageType, MessageWriter, Method, Nonce, Realm, RequestedTransport,
    TransactionId, Username, long_term_key_md5,
};

const NOW: u64 = 1_800_000_000;
const REALM: &str = "bench.realm";

fn allocate(username: &str, nonce: &str, token: Option<&[u8]>, key: &IntegrityKey) -> Vec<u8> {
    let mut buf = vec![0u8; 512];
    let ty = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut w = MessageWriter::new(&mut buf, ty, TransactionId([1; 12])).unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    if let Some(t) = token {
        w.add(&AccessToken(t)).unwrap();
    }
    w.add(&Username(username)).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(nonce)).unwrap();
    w.add_message_integrity(key).unwrap();
    w.add_fingerprint().unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

fn auth(c: &mut Criterion) {
    let client: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    let rest = RestCredentials::new(vec![Secret::from("s3cret")]);
    let (key256, _) = AccessTokenKey::parse("north:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK:A256GCM").unwrap();
    let (key128, _) = AccessTokenKey::parse("union:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM").unwrap();
    let oauth = OauthConfig { server_name: "turn.example.org".into(), keys: vec![key256.clone(), key128.clone()] };
    let mut config = AuthConfig::new(REALM);
    config.rest = Some(rest.clone());
    config.oauth = Some(oauth.clone());
    let authenticator = Authenticator::new(config, [9; 32]);
    let nonce = authenticator.nonce(NOW, client);

    let mac = [0x5a; 20];
    let token256 = seal(&key256, "turn.example.org", [1; 12], &mac, NOW, 3600).unwrap();
    let token128 = seal(&key128, "turn.example.org", [1; 12], &mac, NOW, 3600).unwrap();
    let with_token = allocate("north", nonce.as_str(), Some(&token256), &IntegrityKey::new(&mac));
    let (username, password) = rest.mint("alice", 3600, NOW).unwrap();
    let long_term = IntegrityKey::new(&long_term_key_md5(&username, REALM, &password));
    let with_rest = allocate(&username, nonce.as_str(), None, &long_term);

    let mut g = c.benchmark_group("auth");
    g.bench_function("token_open/A256GCM", |b| {
        b.iter(|| black_box(oauth.open(black_box("north"), black_box(&token256), NOW).is_ok()))
    });
    g.bench_function("token_open/A128GCM", |b| {
        b.iter(|| black_box(oauth.open(black_box("union"), black_box(&token128), NOW).is_ok()))
    });
    g.bench_function("allocate/access_token", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&with_token)).unwrap();
            black_box(authenticator.authenticate(&m, NOW, client).is_ok())
        })
    });
    g.bench_function("allocate/rest", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(&with_rest)).unwrap();
            black_box(authenticator.authenticate(&m, NOW, client).is_ok())
        })
    });
    g.finish();
    // The requests must verify, or the numbers measure a failure path.
    assert!(authenticator.authenticate(&Message::parse(&with_token).unwrap(), NOW, client).is_ok());
    assert!(authenticator.authenticate(&Message::parse(&with_rest).unwrap(), NOW, client).is_ok());
}

criterion_group!(benches, auth);
criterion_main!(benches);
