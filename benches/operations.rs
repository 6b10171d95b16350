//! Operations paths that run once per connection or once per start. Run with
//! `cargo bench --bench operations -- --warm-up-time 1 --measurement-time 3`.
//!
//! * PROXY protocol v2 header parse (IPv4 with an AWS-style TLV, IPv6), once per TCP/TLS connection
//!   behind a load balancer;
//! * `import-coturn` of the test fixture with every mapped option.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use switchback::config::coturn::import_coturn;
use switchback::proto::proxy::{encode_v2, parse_v2};

const FIXTURE: &str = include_str!("../tests/data/turnserver.conf");

fn proxy(c: &mut Criterion) {
    let tlv = [0xEA, 0x00, 0x17, 0x01].iter().copied().chain(*b"vpce-0123456789abcdef0").collect::<Vec<u8>>();
    let v4 = encode_v2("203.0.113.7:4242".parse().unwrap(), "192.0.2.1:3478".parse().unwrap(), &tlv);
    let v6 = encode_v2("[2001:db8::7]:4242".parse().unwrap(), "[2001:db8::1]:3478".parse().unwrap(), &[]);
    c.bench_function("proxy_v2_parse_ipv4_tlv", |b| b.iter(|| parse_v2(black_box(&v4))));
    c.bench_function("proxy_v2_parse_ipv6", |b| b.iter(|| parse_v2(black_box(&v6))));
}

fn coturn(c: &mut Criterion) {
    c.bench_function("import_coturn_fixture", |b| b.iter(|| import_coturn(black_box(FIXTURE)).to_toml()));
}

criterion_group!(benches, proxy, coturn);
criterion_main!(benches);
