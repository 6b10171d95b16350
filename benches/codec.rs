//! Codec hot paths. Run with
//! `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`.
//!
//! * decode + MESSAGE-INTEGRITY check of Chromium's authenticated Allocate (a captured packet, with
//!   the key cached as an `IntegrityKey` the way a server caches it per allocation);
//! * decode of a Send indication carrying 1,000 bytes of DATA;
//! * ChannelData header parse;
//! * encode of a Data indication (XOR-PEER-ADDRESS, 1,000 bytes of DATA, FINGERPRINT) into a reused
//!   buffer.

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    Class, Data, IntegrityKey, Message, MessageType, MessageWriter, Method, Nonce, Realm, RequestedTransport,
    TransactionId, Username, XorPeerAddress, long_term_key_md5,
};

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

fn decode(c: &mut Criterion) {
    // The REST credentials of tests/data/captures/README.md.
    let key = IntegrityKey::new(&long_term_key_md5(
        "2000000000:fixture-chromium-udp",
        "fixture.test",
        "oUX2YJPluLAKwg1BNeXd8rkMcxs=",
    ));
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
    g.finish();
    // The encoded message is what the decoder expects.
    let msg = Message::parse(&out[..20 + 12 + 1004 + 8]).unwrap();
    msg.verify_fingerprint().unwrap();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
