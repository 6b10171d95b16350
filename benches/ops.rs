//! What the operations issue added on the hot paths: the request-latency hook (`request_index`
//! runs for every datagram, the clock and `observe` only for STUN requests) and the peer policy
//! read through an `ArcSwap` (swappable on reload) instead of a plain field.
//!
//! Run: `cargo bench --bench ops -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use switchback::policy::PeerPolicy;
use switchback::proto::stun::{Class, MessageType, Method};
use switchback::server::RequestLatency;

fn latency_hook(c: &mut Criterion) {
    let channel_data = [0x40u8, 0x01, 0x00, 0x64];
    let allocate = MessageType::new(Method::ALLOCATE, Class::Request).to_bits().to_be_bytes();
    let latency = RequestLatency::default();
    let mut g = c.benchmark_group("latency_hook");
    g.bench_function("request_index/channel_data", |b| {
        b.iter(|| black_box(RequestLatency::request_index(black_box(&channel_data))))
    });
    g.bench_function("request_index/allocate", |b| {
        b.iter(|| black_box(RequestLatency::request_index(black_box(&allocate))))
    });
    g.bench_function("observe", |b| b.iter(|| latency.observe(black_box(1), black_box(Duration::from_micros(180)))));
    g.bench_function("clock_and_observe", |b| {
        b.iter(|| {
            let start = Instant::now();
            latency.observe(1, start.elapsed());
        })
    });
    g.finish();
}

fn swappable_policy(c: &mut Criterion) {
    let peer: SocketAddr = "93.184.216.34:5000".parse().unwrap();
    let plain = PeerPolicy::default();
    let swappable = ArcSwap::from_pointee(PeerPolicy::default());
    let mut g = c.benchmark_group("policy_on_the_data_path");
    g.bench_function("plain_field", |b| b.iter(|| black_box(plain.check_addr(black_box(peer)))));
    g.bench_function("arc_swap_load", |b| b.iter(|| black_box(swappable.load().check_addr(black_box(peer)))));
    g.finish();
}

criterion_group!(benches, latency_hook, swappable_policy);
criterion_main!(benches);
