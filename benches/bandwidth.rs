//! The bandwidth check of the data path. Run with
//! `cargo bench --bench bandwidth -- --warm-up-time 1 --measurement-time 3`.
//!
//! * one `TokenBucket::try_take` that passes (a rate high enough never to run dry);
//! * the same on a bucket that is empty (the drop path: no compare-and-swap);
//! * `Bandwidth::admit` with no limit set (the default: three branches);
//! * `Bandwidth::admit` with all three limits set (allocation, user and server buckets);
//! * `admit` with all three limits while another thread admits on the same allocation (the
//!   buckets' atomics contended between two cores).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::policy::bandwidth::{Bandwidth, BandwidthLimits, Direction, TokenBucket};

/// Fast enough that the buckets never run dry within a benchmark.
const HUGE: u64 = 1 << 50;

fn bucket(c: &mut Criterion) {
    let mut g = c.benchmark_group("bandwidth");
    let open = TokenBucket::new(HUGE);
    let mut now = 0u64;
    g.bench_function("try_take_pass", |b| {
        b.iter(|| {
            now += 1;
            black_box(open.try_take(black_box(now), 1_000))
        })
    });
    let dry = TokenBucket::new(1_000);
    assert!(dry.try_take(0, 1_000));
    g.bench_function("try_take_drop", |b| b.iter(|| black_box(dry.try_take(black_box(0), 1_000))));

    let unlimited = Bandwidth::new(BandwidthLimits::default());
    let a = unlimited.for_allocation("bench");
    g.bench_function("admit_unlimited", |b| {
        b.iter(|| black_box(unlimited.admit(&a, Direction::ToPeer, black_box(1), 1_000)))
    });

    let limits = BandwidthLimits { per_allocation: HUGE, per_user: HUGE, total: HUGE };
    let limited = Arc::new(Bandwidth::new(limits));
    let a = Arc::new(limited.for_allocation("bench"));
    let mut now = 0u64;
    g.bench_function("admit_three_buckets", |b| {
        b.iter(|| {
            now += 1;
            black_box(limited.admit(&a, Direction::ToPeer, black_box(now), 1_000))
        })
    });

    let stop = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = (0..1)
        .map(|_| {
            let (bw, a, stop) = (Arc::clone(&limited), Arc::clone(&a), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut now = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    now += 1;
                    black_box(bw.admit(&a, Direction::ToPeer, now, 1_000));
                }
            })
        })
        .collect();
    g.bench_function("admit_three_buckets_contended", |b| {
        b.iter(|| {
            now += 1;
            black_box(limited.admit(&a, Direction::ToPeer, black_box(now), 1_000))
        })
    });
    stop.store(true, Ordering::Relaxed);
    for t in others {
        let _ = t.join();
    }
    g.finish();
}

criterion_group!(benches, bucket);
criterion_main!(benches);
