//! The sans-IO data path in memory, both directions, 100 and 1200 bytes. Run with
//! `cargo bench --bench datapath -- --warm-up-time 1 --measurement-time 3`.
//!
//! * client → peer: `Server::handle` of ChannelData and of a Send indication (table lookup,
//!   channel or permission, peer policy, the driver's `send_to_peer`, here a counter);
//! * peer → client: `Server::relay_from_peer` writing the ChannelData header or the Data
//!   indication in place in front of the datagram.
//!
//! What the sockets cost on top is what `switchback-load` measures (docs/performance.md).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchback::alloc::{Allocation, FiveTuple};
use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::*;
use switchback::server::{HEADROOM, Outcome, Received, Server, ServerOptions, Transport};
use switchback::testing::{FakeRelay, Signer};

/// A request signed as alice/pw in realm `r` once `nonce` is known.
fn signed(method: Method, tid: u8, nonce: Option<&str>, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    switchback::testing::signed(method, tid, nonce.map(|n| Signer::password("alice", "r", "pw", n)).as_ref(), body)
}

struct Setup {
    server: Server<FakeRelay>,
    allocation: Arc<Allocation<SocketAddr>>,
    client: SocketAddr,
    local: SocketAddr,
    by_channel: SocketAddr,
    by_send: SocketAddr,
    now: Instant,
}

/// A server with one allocation: a channel to one peer, a permission for another.
fn setup() -> Setup {
    let mut auth = AuthConfig::new("r");
    auth.users.insert("alice".into(), StaticCredential::Password("pw".into()));
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let epoch = Instant::now();
    let driver = FakeRelay::counting();
    let server = Server::with_relay(options, Some(Authenticator::new(auth, [1; 32])), driver, epoch, 1_800_000_000);
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let now = epoch + Duration::from_secs(1);
    let mut out = vec![0u8; 1500];
    let mut feed = |data: &[u8]| {
        let rx = Received { transport: Transport::Udp, source: client, local, data };
        match server.handle(now, &rx, &mut out) {
            Outcome::Reply(n) => out[..n].to_vec(),
            other => panic!("{other:?}"),
        }
    };
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    let answer = feed(&signed(Method::ALLOCATE, 1, None, udp));
    let nonce = Message::parse(&answer).unwrap().get::<Nonce>().unwrap().0.to_string();
    feed(&signed(Method::ALLOCATE, 2, Some(&nonce), udp));
    let by_channel: SocketAddr = "127.0.0.2:5000".parse().unwrap();
    let by_send: SocketAddr = "127.0.0.3:5000".parse().unwrap();
    feed(&signed(Method::CHANNEL_BIND, 3, Some(&nonce), |w| {
        w.add(&ChannelNumber(0x4000)).unwrap();
        w.add(&XorPeerAddress(by_channel)).unwrap();
    }));
    feed(&signed(Method::CREATE_PERMISSION, 4, Some(&nonce), |w| w.add(&XorPeerAddress(by_send)).unwrap()));
    let allocation =
        server.allocations().get(&FiveTuple { transport: Transport::Udp, client, server: local }).expect("allocated");
    Setup { server, allocation, client, local, by_channel, by_send, now }
}

fn datapath(c: &mut Criterion) {
    let s = setup();
    let mut out = vec![0u8; 1500];
    for size in [100usize, 1200] {
        let payload = vec![0xABu8; size];
        let mut cd = vec![0u8; size + 8];
        let n = ChannelData { channel: 0x4000, data: &payload }.encode(false, &mut cd).unwrap();
        cd.truncate(n);
        let mut send = vec![0u8; size + 64];
        let mut w =
            MessageWriter::new(&mut send, MessageType::new(Method::SEND, Class::Indication), TransactionId([9; 12]))
                .unwrap();
        w.add(&XorPeerAddress(s.by_send)).unwrap();
        w.add(&Data(&payload)).unwrap();
        let n = w.finish();
        send.truncate(n);

        let mut g = c.benchmark_group(format!("datapath/{size}B"));
        g.throughput(Throughput::Elements(1));
        g.bench_function("client->peer ChannelData", |b| {
            b.iter(|| {
                let rx = Received { transport: Transport::Udp, source: s.client, local: s.local, data: black_box(&cd) };
                assert_eq!(s.server.handle(s.now, &rx, &mut out), Outcome::Relayed);
            })
        });
        g.bench_function("client->peer Send indication", |b| {
            b.iter(|| {
                let rx =
                    Received { transport: Transport::Udp, source: s.client, local: s.local, data: black_box(&send) };
                assert_eq!(s.server.handle(s.now, &rx, &mut out), Outcome::Relayed);
            })
        });
        let mut buf = vec![0u8; HEADROOM + size + 4];
        g.bench_function("peer->client ChannelData", |b| {
            b.iter(|| {
                let r = s.server.relay_from_peer(s.now, &s.allocation, s.by_channel, &mut buf, size).unwrap();
                black_box(r)
            })
        });
        g.bench_function("peer->client Data indication", |b| {
            b.iter(|| {
                let r = s.server.relay_from_peer(s.now, &s.allocation, s.by_send, &mut buf, size).unwrap();
                black_box(r)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, datapath);
criterion_main!(benches);
