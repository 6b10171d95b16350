//! The peer policy on the data path: `check_addr` runs for every relayed packet (Send indication
//! and ChannelData), so it must cost a few nanoseconds. The worst case is a public peer that scans
//! every row of the deny list, the operator lists and the own addresses and is allowed.
//!
//! Run: `cargo bench --bench policy -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::policy::{PeerPolicy, PeerPolicyConfig, PeerRule};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn checks(c: &mut Criterion) {
    let default = PeerPolicy::default();
    let rules = |list: &[&str]| list.iter().map(|s| s.parse::<PeerRule>().unwrap()).collect::<Vec<_>>();
    // A realistic operator configuration: a few rules, a few own addresses.
    let configured = PeerPolicy::new(PeerPolicyConfig {
        allow_loopback: false,
        allowed: rules(&["10.1.0.0/16", "192.168.1.20-192.168.1.29", "10.2.3.4@3000-4000"]),
        denied: rules(&["8.8.4.0/24", "2001:4860::/32"]),
        own_addresses: vec!["1.2.3.4".parse().unwrap(), "2606:4700::7".parse().unwrap(), "10.0.0.5".parse().unwrap()],
        relay_ports: (49152, 65535),
    });
    let cases = [
        ("v4_public_allowed", sa("93.184.216.34:5000")),
        ("v4_loopback_denied", sa("127.0.0.1:5000")),
        ("v4_metadata_denied", sa("169.254.169.254:80")),
        ("v6_public_allowed", sa("[2606:4700::1111]:5000")),
        ("v6_mapped_loopback_denied", sa("[::ffff:127.0.0.1]:5000")),
        ("v6_teredo_public_allowed", sa("[2001:0:5db8:d822:0:8000:f7f7:f7f7]:5000")),
    ];
    let mut g = c.benchmark_group("policy_check_addr");
    for (name, peer) in cases {
        g.bench_function(format!("default/{name}"), |b| b.iter(|| black_box(default.check_addr(black_box(peer)))));
        g.bench_function(format!("configured/{name}"), |b| {
            b.iter(|| black_box(configured.check_addr(black_box(peer))))
        });
    }
    g.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
