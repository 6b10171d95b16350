//! Codec hot paths. Run with
//! `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`.
//!
//! * decode + MESSAGE-INTEGRITY check of Chromium's authenticated Allocate (a captured packet, with
//!   the key cached as an `IntegrityKey` the way a server caches it per allocation);
//! * decode of a Send indication carrying 1,000 bytes of DATA;
//! * ChannelData header parse;
//! * encode of a Data indication (XOR-PEER-ADDRESS, 1,000 bytes of DATA, FINGERPRINT) into a reused
//!   buffer;
//! * encode of a signed Allocate success response (XOR-RELAYED-ADDRESS, XOR-MAPPED-ADDRESS, LIFETIME,
//!   SOFTWARE, MESSAGE-INTEGRITY with a cached key, FINGERPRINT) into a reused buffer.
//!
//! The two Allocate benchmarks also run on `stun-rs` (`stun_rs/...`), the crate the design started
//! from, and on `stun-types`/`turn-types` (`stun_types/...`), on the same bytes and the same message
//! (docs/performance.md, "The codec against stun-rs and stun-types"; tests/codec/differential*.rs
//! show all three write identical bytes).

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use stun_rs::attributes::{stun as rs, turn as rt};
use stun_rs::{
    Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
    StunMessageBuilder,
};
use stun_types::attribute as sa;
use stun_types::message as sm;
use stun_types::prelude::*;
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    Class, Data, IntegrityKey, Lifetime, Message, MessageType, MessageWriter, Method, Nonce, Realm, RequestedTransport,
    Software, TransactionId, Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress, long_term_key_md5,
};
use turn_types::attribute as ta;

const CHROMIUM_ALLOCATE: &[u8] = include_bytes!("../tests/data/captures/chromium-allocate-auth.bin");
const UCLIENT_CHANNEL_DATA: &[u8] = include_bytes!("../tests/data/captures/uclient-channeldata.bin");

fn peer() -> SocketAddr {
    "192.0.2.7:49717".parse().unwrap()
}

fn send_indication(payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut w = MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), TransactionId([7; 12]))
        .unwrap();
    w.add(&XorPeerAddress(peer())).unwrap();
    w.add(&Data(payload)).unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

// The REST credentials of tests/data/captures/README.md.
const USER: &str = "2000000000:fixture-chromium-udp";
const REALM: &str = "fixture.test";
const PASSWORD: &str = "oUX2YJPluLAKwg1BNeXd8rkMcxs=";

fn decode(c: &mut Criterion) {
    let key = IntegrityKey::new(&long_term_key_md5(USER, REALM, PASSWORD));
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("chromium_allocate_parse_and_verify", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(CHROMIUM_ALLOCATE)).unwrap();
            let user = msg.get::<Username>().unwrap();
            let realm = msg.get::<Realm>().unwrap();
            let nonce = msg.get::<Nonce>().unwrap();
            let transport = msg.get::<RequestedTransport>().unwrap();
            msg.verify_integrity(&key).unwrap();
            black_box((user, realm, nonce, transport))
        })
    });
    // stun-rs, the same work: decode (owned attributes), the same four lookups, and the
    // MESSAGE-INTEGRITY check with a key derived once, through `MessageIntegrity::validate` over
    // `get_input_text` (what its decoder does per attribute when it validates, below).
    let rs_key = HMACKey::new_long_term(USER, REALM, PASSWORD, Algorithm::from(AlgorithmId::MD5)).unwrap();
    let rs_decoder = MessageDecoderBuilder::default().build();
    g.bench_function("stun_rs/chromium_allocate_parse_and_verify", |b| {
        b.iter(|| {
            let bytes = black_box(CHROMIUM_ALLOCATE);
            let (msg, _) = rs_decoder.decode(bytes).unwrap();
            let user = msg.get::<rs::UserName>().unwrap().as_user_name().unwrap().as_str().len();
            let realm = msg.get::<rs::Realm>().unwrap().as_realm().unwrap().as_str().len();
            let nonce = msg.get::<rs::Nonce>().unwrap().as_nonce().unwrap().as_str().len();
            let transport = msg.get::<rt::RequestedTrasport>().unwrap().as_requested_trasport().unwrap().protocol();
            let input = stun_rs::get_input_text::<rs::MessageIntegrity>(bytes).unwrap();
            let mi = msg.get::<rs::MessageIntegrity>().unwrap().as_message_integrity().unwrap();
            assert!(mi.validate(&input, &rs_key));
            black_box((user, realm, nonce, transport))
        })
    });
    // stun-rs's documented way: a decoder whose context holds the key and validates while decoding
    // (MESSAGE-INTEGRITY, and FINGERPRINT where there is one: not in this packet).
    let rs_validating = MessageDecoderBuilder::default()
        .with_context(DecoderContextBuilder::default().with_key(rs_key.clone()).with_validation().build())
        .build();
    g.bench_function("stun_rs/chromium_allocate_decode_validating", |b| {
        b.iter(|| {
            let (msg, _) = rs_validating.decode(black_box(CHROMIUM_ALLOCATE)).unwrap();
            let user = msg.get::<rs::UserName>().unwrap().as_user_name().unwrap().as_str().len();
            let realm = msg.get::<rs::Realm>().unwrap().as_realm().unwrap().as_str().len();
            let nonce = msg.get::<rs::Nonce>().unwrap().as_nonce().unwrap().as_str().len();
            let transport = msg.get::<rt::RequestedTrasport>().unwrap().as_requested_trasport().unwrap().protocol();
            black_box((user, realm, nonce, transport))
        })
    });
    // stun-types 2 / turn-types 0.7 (tests/codec/differential.rs), its key derived once too.
    let st_key = sm::LongTermKeyCredentials::new(USER.into(), PASSWORD.into(), REALM.into())
        .make_key(sm::IntegrityAlgorithm::Sha1);
    g.bench_function("stun_types/chromium_allocate_parse_and_verify", |b| {
        b.iter(|| {
            let msg = sm::Message::from_bytes(black_box(CHROMIUM_ALLOCATE)).unwrap();
            let user = msg.attribute::<sa::Username>().unwrap().username().len();
            let realm = msg.attribute::<sa::Realm>().unwrap().realm().len();
            let nonce = msg.attribute::<sa::Nonce>().unwrap().nonce().len();
            let transport = msg.attribute::<ta::RequestedTransport>().unwrap().protocol();
            msg.validate_integrity_with_key(&st_key).unwrap();
            black_box((user, realm, nonce, transport))
        })
    });
    g.bench_function("chromium_allocate_parse_only", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(CHROMIUM_ALLOCATE)).unwrap();
            black_box((
                msg.get::<Username>().unwrap(),
                msg.get::<Realm>().unwrap(),
                msg.get::<Nonce>().unwrap(),
                msg.get::<RequestedTransport>().unwrap(),
            ))
        })
    });

    g.bench_function("stun_rs/chromium_allocate_parse_only", |b| {
        b.iter(|| {
            let (msg, _) = rs_decoder.decode(black_box(CHROMIUM_ALLOCATE)).unwrap();
            let user = msg.get::<rs::UserName>().unwrap().as_user_name().unwrap().as_str().len();
            let realm = msg.get::<rs::Realm>().unwrap().as_realm().unwrap().as_str().len();
            let nonce = msg.get::<rs::Nonce>().unwrap().as_nonce().unwrap().as_str().len();
            let transport = msg.get::<rt::RequestedTrasport>().unwrap().as_requested_trasport().unwrap().protocol();
            black_box((user, realm, nonce, transport))
        })
    });

    let payload = vec![0xA5u8; 1000];
    let send = send_indication(&payload);
    g.bench_function("send_indication_1000B", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(&send)).unwrap();
            let peer = msg.get::<XorPeerAddress>().unwrap();
            let data = msg.get::<Data>().unwrap();
            black_box((peer, data.0.len()))
        })
    });

    g.bench_function("channel_data_header", |b| {
        b.iter(|| {
            let cd = ChannelData::parse(black_box(UCLIENT_CHANNEL_DATA)).unwrap();
            black_box((cd.channel, cd.data.len()))
        })
    });
    g.finish();
}

fn encode(c: &mut Criterion) {
    let payload = vec![0x5Au8; 1000];
    let mut out = vec![0u8; 1500];
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("data_indication_1000B_with_fingerprint", |b| {
        b.iter(|| {
            let mut w = MessageWriter::new(
                &mut out,
                MessageType::new(Method::DATA, Class::Indication),
                black_box(TransactionId([9; 12])),
            )
            .unwrap();
            w.add(&XorPeerAddress(peer())).unwrap();
            w.add(&Data(black_box(&payload))).unwrap();
            w.add_fingerprint().unwrap();
            black_box(w.finish())
        })
    });
    // The encoded message is what the decoder expects.
    let msg = Message::parse(&out[..20 + 12 + 1004 + 8]).unwrap();
    msg.verify_fingerprint().unwrap();

    // A signed Allocate success response, the key cached per allocation on both sides.
    let key = IntegrityKey::new(&long_term_key_md5(USER, REALM, PASSWORD));
    let relayed: SocketAddr = "203.0.113.5:49170".parse().unwrap();
    let mapped: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let tid = [0x42u8; 12];
    let mut ours = 0;
    g.bench_function("allocate_success_signed", |b| {
        b.iter(|| {
            let mut w = MessageWriter::new(
                &mut out,
                MessageType::new(Method::ALLOCATE, Class::SuccessResponse),
                black_box(TransactionId(tid)),
            )
            .unwrap();
            w.add(&XorRelayedAddress(black_box(relayed))).unwrap();
            w.add(&XorMappedAddress(black_box(mapped))).unwrap();
            w.add(&Lifetime(600)).unwrap();
            w.add(&Software("switchback")).unwrap();
            w.add_message_integrity(&key).unwrap();
            w.add_fingerprint().unwrap();
            ours = w.finish();
            black_box(ours)
        })
    });
    let mine = out[..ours].to_vec();

    let rs_key = HMACKey::new_long_term(USER, REALM, PASSWORD, Algorithm::from(AlgorithmId::MD5)).unwrap();
    let encoder = MessageEncoderBuilder::default().build();
    let mut theirs = 0;
    g.bench_function("stun_rs/allocate_success_signed", |b| {
        b.iter(|| {
            let msg = StunMessageBuilder::new(stun_rs::methods::ALLOCATE, MessageClass::SuccessResponse)
                .with_transaction_id(stun_rs::TransactionId::from(black_box(tid)))
                .with_attribute(rt::XorRelayedAddress::from(black_box(relayed)))
                .with_attribute(rs::XorMappedAddress::from(black_box(mapped)))
                .with_attribute(rt::LifeTime::new(600))
                .with_attribute(rs::Software::new("switchback").unwrap())
                .with_attribute(rs::MessageIntegrity::new(rs_key.clone()))
                .with_attribute(rs::Fingerprint::default())
                .build();
            theirs = encoder.encode(&mut out, &msg).unwrap();
            black_box(theirs)
        })
    });
    // Both wrote the same message.
    assert_eq!(&out[..theirs], &mine[..]);

    let st_key = sm::LongTermKeyCredentials::new(USER.into(), PASSWORD.into(), REALM.into())
        .make_key(sm::IntegrityAlgorithm::Sha1);
    let st_tid = sm::TransactionId::from(u128::from_be_bytes({
        let mut t = [0u8; 16];
        t[4..].copy_from_slice(&tid);
        t
    }));
    let st_type = sm::MessageType::from_class_method(sm::MessageClass::Success, sm::Method::new(Method::ALLOCATE.0));
    g.bench_function("stun_types/allocate_success_signed", |b| {
        b.iter(|| {
            let tid = black_box(st_tid);
            let mut w = sm::Message::builder(st_type, tid, sm::MessageWriteMutSlice::new(&mut out));
            w.add_attribute(&ta::XorRelayedAddress::new(black_box(relayed), tid)).unwrap();
            w.add_attribute(&sa::XorMappedAddress::new(black_box(mapped), tid)).unwrap();
            w.add_attribute(&ta::Lifetime::new(600)).unwrap();
            w.add_attribute(&sa::Software::new("switchback").unwrap()).unwrap();
            w.add_message_integrity_with_key(&st_key, sm::IntegrityAlgorithm::Sha1).unwrap();
            w.add_fingerprint().unwrap();
            theirs = w.finish();
            black_box(theirs)
        })
    });
    g.finish();
    assert_eq!(&out[..theirs], &mine[..]);
    Message::parse(&mine).unwrap().verify_integrity(&key).unwrap();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
