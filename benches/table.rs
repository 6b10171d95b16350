//! The allocation table candidates (ARCHITECTURE.md "Keys and tables"): papaya, scc::HashIndex and
//! dashmap (the reference), all keyed by the client 5-tuple with the same seeded hasher, plus
//! `alloc::Table` itself (papaya behind our API).
//!
//! Run: `cargo bench --bench table -- --warm-up-time 1 --measurement-time 3`
//!
//! What matters is the data path: a hit lookup per relayed ChannelData (`get_hit`), under a second
//! thread doing the same (`get_hit_contended`), and a miss (garbage from unknown sources).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::alloc::{Allocation, AllocationInfo, FiveTuple, Table};
use switchback::server::Transport;

const N: usize = 10_000;
type Hasher = foldhash::quality::RandomState;

fn key(i: usize) -> FiveTuple {
    let ip = Ipv4Addr::from(0x7F00_0000u32 + (i as u32 >> 16) + 1);
    FiveTuple {
        transport: Transport::Udp,
        client: SocketAddr::new(IpAddr::V4(ip), (i & 0xFFFF) as u16),
        server: SocketAddr::from(([127, 0, 0, 1], 3478)),
    }
}

trait Candidate: Send + Sync + 'static {
    fn name() -> &'static str;
    fn build() -> Self;
    fn insert(&self, k: FiveTuple, v: Arc<u64>);
    fn read(&self, k: &FiveTuple) -> u64;
}

impl Candidate for papaya::HashMap<FiveTuple, Arc<u64>, Hasher> {
    fn name() -> &'static str {
        "papaya"
    }
    fn build() -> Self {
        papaya::HashMap::builder().hasher(Hasher::default()).build()
    }
    fn insert(&self, k: FiveTuple, v: Arc<u64>) {
        self.pin().insert(k, v);
    }
    fn read(&self, k: &FiveTuple) -> u64 {
        self.pin().get(k).map(|v| **v).unwrap_or(0)
    }
}

impl Candidate for scc::HashIndex<FiveTuple, Arc<u64>, Hasher> {
    fn name() -> &'static str {
        "scc_hashindex"
    }
    fn build() -> Self {
        scc::HashIndex::with_hasher(Hasher::default())
    }
    fn insert(&self, k: FiveTuple, v: Arc<u64>) {
        let _ = self.insert_sync(k, v);
    }
    fn read(&self, k: &FiveTuple) -> u64 {
        self.peek_with(k, |_, v| **v).unwrap_or(0)
    }
}

impl Candidate for dashmap::DashMap<FiveTuple, Arc<u64>, Hasher> {
    fn name() -> &'static str {
        "dashmap"
    }
    fn build() -> Self {
        dashmap::DashMap::with_hasher(Hasher::default())
    }
    fn insert(&self, k: FiveTuple, v: Arc<u64>) {
        self.insert(k, v);
    }
    fn read(&self, k: &FiveTuple) -> u64 {
        self.get(k).map(|v| **v).unwrap_or(0)
    }
}

struct OurTable(Table<()>);

impl Candidate for OurTable {
    fn name() -> &'static str {
        "alloc_table"
    }
    fn build() -> Self {
        OurTable(Table::default())
    }
    fn insert(&self, k: FiveTuple, v: Arc<u64>) {
        let info = AllocationInfo {
            five_tuple: k,
            relay_addr: k.server,
            advertised_addr: k.server,
            username: "bench".into(),
            rest_expiry: None,
        };
        let _ = self.0.insert(Arc::new(Allocation::new(info, [0; 16], (), *v)));
    }
    fn read(&self, k: &FiveTuple) -> u64 {
        self.0.with(k, |a| a.expires()).unwrap_or(0)
    }
}

fn filled<C: Candidate>() -> Arc<C> {
    let m = C::build();
    for i in 0..N {
        m.insert(key(i), Arc::new(i as u64 + 1));
    }
    Arc::new(m)
}

fn bench<C: Candidate>(c: &mut Criterion) {
    let map = filled::<C>();
    let mut g = c.benchmark_group(C::name());
    let mut i = 0usize;
    g.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(map.read(&key(i)))
        })
    });
    let miss = key(N + 12345);
    g.bench_function("get_miss", |b| b.iter(|| black_box(map.read(black_box(&miss)))));
    // A second thread hammers the same map while we measure (2 cores here).
    let stop = Arc::new(AtomicBool::new(false));
    let other = {
        let (map, stop) = (Arc::clone(&map), Arc::clone(&stop));
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut j = 0usize;
            // Bounded in time as well as by the flag.
            while !stop.load(Ordering::Relaxed) && start.elapsed().as_secs() < 120 {
                j = (j + 104729) % N;
                black_box(map.read(&key(j)));
            }
        })
    };
    g.bench_function("get_hit_contended", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(map.read(&key(i)))
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = other.join();
    g.bench_function("insert_fresh_10k", |b| b.iter(|| black_box(filled::<C>())));
    g.finish();
}

fn all(c: &mut Criterion) {
    bench::<papaya::HashMap<FiveTuple, Arc<u64>, Hasher>>(c);
    bench::<scc::HashIndex<FiveTuple, Arc<u64>, Hasher>>(c);
    bench::<dashmap::DashMap<FiveTuple, Arc<u64>, Hasher>>(c);
    bench::<OurTable>(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
