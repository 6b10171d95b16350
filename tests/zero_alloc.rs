//! The data path allocates nothing (ARCHITECTURE.md "The data path"): 10,000 relayed packets in each
//! direction — ChannelData and Send indications from the client, ChannelData and Data indications
//! to it — through the sans-IO core, after a warm-up, under a counting global allocator.
//!
//! One test in this binary, so no other test thread allocates while the region is measured.

use std::alloc::System;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchback::alloc::FiveTuple;
use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::*;
use switchback::server::{HEADROOM, Outcome, Received, Server, ServerOptions, Transport};

#[path = "support/mod.rs"]
mod support;

use support::{FakeRelay, Signer};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PACKETS: usize = 10_000;

/// A request signed as alice/pw in realm `r` once `nonce` is known.
fn signed(method: Method, tid: u8, nonce: Option<&str>, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    support::signed(method, tid, nonce.map(|n| Signer::password("alice", "r", "pw", n)).as_ref(), body)
}

#[test]
fn relaying_allocates_nothing_in_either_direction() {
    let mut auth = AuthConfig::new("r");
    auth.users.insert("alice".into(), StaticCredential::Password("pw".into()));
    let driver = FakeRelay::counting();
    let sent = driver.clone();
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let epoch = Instant::now();
    let server = Server::with_relay(options, Some(Authenticator::new(auth, [1; 32])), driver, epoch, 1_800_000_000);
    let client: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let now = epoch + Duration::from_secs(1);
    let mut out = vec![0u8; 1500];
    let feed = |data: &[u8], out: &mut [u8]| {
        let rx = Received { transport: Transport::Udp, source: client, local, data };
        server.handle(now, &rx, out)
    };

    // Control path (allocations allowed): log in, allocate, a permission for one peer, a channel
    // for another.
    let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    let Outcome::Reply(n) = feed(&signed(Method::ALLOCATE, 1, None, udp), &mut out) else { panic!() };
    let nonce = Message::parse(&out[..n]).unwrap().get::<Nonce>().unwrap().0.to_string();
    let ok = |o: Outcome, out: &[u8]| match o {
        Outcome::Reply(n) => {
            assert_eq!(Message::parse(&out[..n]).unwrap().message_type().class, Class::SuccessResponse)
        }
        other => panic!("{other:?}"),
    };
    let o = feed(&signed(Method::ALLOCATE, 2, Some(&nonce), udp), &mut out);
    ok(o, &out);
    let (by_channel, by_send): (SocketAddr, SocketAddr) =
        ("127.0.0.2:5000".parse().unwrap(), "127.0.0.3:5000".parse().unwrap());
    let o = feed(
        &signed(Method::CHANNEL_BIND, 3, Some(&nonce), |w| {
            w.add(&ChannelNumber(0x4000)).unwrap();
            w.add(&XorPeerAddress(by_channel)).unwrap();
        }),
        &mut out,
    );
    ok(o, &out);
    let o = feed(
        &signed(Method::CREATE_PERMISSION, 4, Some(&nonce), |w| w.add(&XorPeerAddress(by_send)).unwrap()),
        &mut out,
    );
    ok(o, &out);
    let allocation =
        server.allocations().get(&FiveTuple { transport: Transport::Udp, client, server: local }).expect("allocated");

    // The packets, built before measuring.
    let payload = [0xABu8; 100];
    let mut cd = vec![0u8; 200];
    let cd_len = ChannelData { channel: 0x4000, data: &payload }.encode(false, &mut cd).unwrap();
    let cd = &cd[..cd_len];
    let mut send = vec![0u8; 300];
    let mut w =
        MessageWriter::new(&mut send, MessageType::new(Method::SEND, Class::Indication), TransactionId([9; 12]))
            .unwrap();
    w.add(&XorPeerAddress(by_send)).unwrap();
    w.add(&Data(&payload)).unwrap();
    let send_len = w.finish();
    let send = &send[..send_len];
    let mut from_peer = vec![0u8; HEADROOM + 1500];

    let round = |server: &Server<FakeRelay>, out: &mut [u8], from_peer: &mut [u8]| {
        let rx = Received { transport: Transport::Udp, source: client, local, data: cd };
        assert_eq!(server.handle(now, &rx, out), Outcome::Relayed);
        let rx = Received { transport: Transport::Udp, source: client, local, data: send };
        assert_eq!(server.handle(now, &rx, out), Outcome::Relayed);
        from_peer[HEADROOM..HEADROOM + payload.len()].copy_from_slice(&payload);
        let r = server.relay_from_peer(now, &allocation, by_channel, from_peer, payload.len()).expect("ChannelData");
        assert_eq!(r.len(), 4 + payload.len());
        from_peer[HEADROOM..HEADROOM + payload.len()].copy_from_slice(&payload);
        let r = server.relay_from_peer(now, &allocation, by_send, from_peer, payload.len()).expect("Data indication");
        assert!(r.len() > payload.len() + 20);
    };
    for _ in 0..1000 {
        round(&server, &mut out, &mut from_peer); // warm-up
    }
    let region = Region::new(GLOBAL);
    for _ in 0..PACKETS {
        round(&server, &mut out, &mut from_peer);
    }
    let change = region.change();
    assert_eq!(
        (change.allocations, change.reallocations),
        (0, 0),
        "the data path allocated over {PACKETS} rounds of 4 packets: {change:?}"
    );
    assert_eq!(sent.bytes(), ((PACKETS + 1000) * 2 * payload.len()) as u64);
    let s = server.stats().snapshot();
    assert_eq!(s.relayed_to_client, ((PACKETS + 1000) * 2) as u64);
}
