//! What `POST /v1/relay-configuration` spends on the token: verifying an access token (key lookup
//! by kid, signature, claims) for each algorithm, and minting one (HS256).
//!
//! Run: `cargo bench --bench token -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::auth::token::{TokenKey, TokenKeys, sign_claims};

const NOW: u64 = 1_800_000_000;

fn tokens(c: &mut Criterion) {
    let claims = serde_json::json!({"sub": "alice", "exp": NOW + 600, "nbf": NOW, "iat": NOW,
        "aud": "switchback", "jti": "0123456789abcdef0123456789abcdef", "scope": "turn"});
    let hs = TokenKey::hs256(Some("hs"), b"0123456789abcdef0123456789abcdef");
    let mut signers = vec![("hs256", hs.clone())];
    let mut relay_keys = vec![hs];
    for (name, alg) in [("eddsa", &rcgen::PKCS_ED25519), ("es256", &rcgen::PKCS_ECDSA_P256_SHA256)] {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        let public = pair.public_key_pem();
        signers.push((
            name,
            TokenKey::private_pem(Some(name), pair.serialize_pem().as_bytes(), public.as_bytes()).unwrap(),
        ));
        relay_keys.push(TokenKey::public_pem(Some(name), public.as_bytes()).unwrap());
    }
    let relay = TokenKeys::new(relay_keys);
    let mut g = c.benchmark_group("token");
    for (name, signer) in &signers {
        let token = sign_claims(signer, &claims).unwrap();
        assert!(relay.verify(&token, NOW).is_ok());
        g.bench_function(format!("verify/{name}"), |b| b.iter(|| black_box(relay.verify(black_box(&token), NOW))));
    }
    g.bench_function("mint/hs256", |b| b.iter(|| black_box(relay.mint(black_box("alice"), 600, NOW, "jti"))));
    g.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
