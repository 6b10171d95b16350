//! No state before authentication, proven under load (security issue, item 2): floods of
//! unauthenticated requests through the sans-IO server, with a counting global allocator measuring
//! the heap. coturn 4.6.1 grows from 20 MiB to about 960 MiB under 200,000 unauthenticated
//! Allocates from 50,000 source ports; the target here is under 5 MiB (and ~0 is what we get).
//!
//! The requests are built in buffers allocated before the measurement starts, so the counts are the
//! server's alone. Tests in this binary take a lock: the allocator counts every thread.

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret, StaticCredential};
use switchback::policy::rate::RateLimit;
use switchback::proto::stun::{
    Class, IntegrityKey, MessageType, MessageWriter, Method, Nonce, Realm, RequestedTransport, TransactionId, Username,
    long_term_key_md5,
};
use switchback::server::{DropReason, NoRelay, Outcome, Received, Server, ServerOptions, Transport};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One test at a time: the allocator's counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

const REALM: &str = "flood.test";
const UNIX: u64 = 1_800_000_000;
/// The flood: requests, distinct source addresses, and a bound on its wall-clock time.
const REQUESTS: u32 = 200_000;
const SOURCES: u32 = 50_000;
const TIME_LIMIT: Duration = Duration::from_secs(300);
const MIB: i64 = 1 << 20;

fn server(options: ServerOptions) -> Server<NoRelay> {
    let mut auth = AuthConfig::new(REALM);
    auth.rest = Some(RestCredentials::new(vec![Secret::new("flood-secret")]));
    auth.users.insert("alice".into(), StaticCredential::Password("wonderland".into()));
    Server::with_relay(options, Some(Authenticator::new(auth, [9; 32])), NoRelay, Instant::now(), UNIX)
}

/// Source `k` of `SOURCES`: an address spread over 127.0.0.0/8 and a port.
fn source(k: u32, i: u32) -> SocketAddr {
    let ip = Ipv4Addr::from(0x7F00_0001 + k.wrapping_mul(331) % 0x00FF_FFFE);
    SocketAddr::new(IpAddr::V4(ip), 1024 + (i.wrapping_mul(7919) % 64_000) as u16)
}

fn tid(i: u32) -> TransactionId {
    let mut t = [0x5a; 12];
    t[..4].copy_from_slice(&i.to_be_bytes());
    TransactionId(t)
}

/// The REST password of `1800003600:mallory` (minted once, in the warm-up).
static MALLORY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rest = RestCredentials::new(vec![Secret::new("flood-secret")]);
    rest.mint("mallory", 3600, UNIX).map(|(_, password)| password).unwrap_or_default()
});

/// Writes request `i` from `src` into `buf`: one of four kinds of unauthenticated Allocate.
/// 0: no credentials (401); 1: valid REST credentials with a nonce that is not ours (438: RFC 8489
/// §9.2.4 judges the nonce after the MAC); 2: a REST username, our nonce, the wrong password (401);
/// 3: an unknown static user with our nonce (401).
fn write_request(server: &Server<NoRelay>, i: u32, src: SocketAddr, buf: &mut [u8]) -> usize {
    let ty = MessageType::new(Method::ALLOCATE, Class::Request);
    let mut w = MessageWriter::new(buf, ty, tid(i)).unwrap();
    w.add(&RequestedTransport::UDP).unwrap();
    let kind = i % 4;
    if kind == 0 {
        return w.finish();
    }
    let nonce = server.authenticator().unwrap().nonce(UNIX, src);
    let (username, nonce) = match kind {
        1 => ("1800003600:mallory", "not-our-nonce-at-all"),
        2 => ("1800003600:mallory", nonce.as_str()),
        _ => ("nobody", nonce.as_str()),
    };
    w.add(&Username(username)).unwrap();
    w.add(&Realm(REALM)).unwrap();
    w.add(&Nonce(nonce)).unwrap();
    let password = if kind == 1 { MALLORY.as_str() } else { "guess" };
    w.add_message_integrity(&IntegrityKey::new(&long_term_key_md5(username, REALM, password))).unwrap();
    w.finish()
}

/// Net heap bytes the region gained (allocated and not freed).
fn net_bytes(region: &Region<'_, System>) -> i64 {
    let c = region.change();
    c.bytes_allocated as i64 - c.bytes_deallocated as i64 + c.bytes_reallocated as i64
}

#[test]
fn unauthenticated_flood_leaves_the_heap_flat() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let options = ServerOptions::default().with(|o| {
        o.rate_limit_unauth = RateLimit::OFF;
        o.rate_limit_allocate = RateLimit::OFF;
    });
    let server = server(options);
    let local: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let mut req = vec![0u8; 512];
    let mut out = vec![0u8; 1500];
    let now = Instant::now();
    let feed = |i: u32, req: &mut [u8], out: &mut [u8]| {
        let src = source(i % SOURCES, i);
        let n = write_request(&server, i, src, req);
        let rx = Received { transport: Transport::Udp, source: src, local, data: &req[..n] };
        server.handle(now, &rx, out)
    };
    // Warm-up: lazily initialised statics (hasher seeds, thread-locals) are not the flood's.
    for i in 0..100 {
        feed(u32::MAX - i, &mut req, &mut out);
    }

    let started = Instant::now();
    let region = Region::new(GLOBAL);
    let mut replies = 0u32;
    for i in 0..REQUESTS {
        if let Outcome::Reply(_) = feed(i, &mut req, &mut out) {
            replies += 1;
        }
    }
    let grown = net_bytes(&region);
    let stats = region.change();
    let elapsed = started.elapsed();
    println!(
        "flood: {REQUESTS} unauthenticated Allocates from {SOURCES} sources in {elapsed:.2?}: \
         heap grew by {grown} bytes net ({} allocations, {} frees during the flood)",
        stats.allocations, stats.deallocations
    );
    assert!(elapsed < TIME_LIMIT, "the flood took {elapsed:?}");
    assert_eq!(replies, REQUESTS, "every request answered (rate limits off)");
    assert!(grown < 5 * MIB, "the heap grew by {grown} bytes");
    assert!(grown.abs() < 64 * 1024, "target ~0, got {grown} bytes");
    assert!(server.allocations().is_empty());
    let s = server.stats().snapshot();
    assert_eq!(s.auth_failures + s.auth_challenges, u64::from(REQUESTS) + 100);
    assert_eq!(s.stale_nonces, u64::from(REQUESTS / 4) + 25);
    assert_eq!(s.allocations_created, 0);
}

#[test]
fn rate_limits_bound_answers_per_source_not_memory() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let options = ServerOptions::default().with(|o| o.rate_limit_unauth = RateLimit::new(20, 40));
    let epoch = Instant::now();
    let mut auth = AuthConfig::new(REALM);
    auth.rest = Some(RestCredentials::new(vec![Secret::new("flood-secret")]));
    let server = Server::with_relay(options, Some(Authenticator::new(auth, [9; 32])), NoRelay, epoch, UNIX);
    let local: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let mut req = vec![0u8; 512];
    let mut out = vec![0u8; 1500];
    let feed = |at: Instant, i: u32, src: SocketAddr, req: &mut [u8], out: &mut [u8]| {
        let n = write_request(&server, i * 4, src, req);
        let rx = Received { transport: Transport::Udp, source: src, local, data: &req[..n] };
        server.handle(at, &rx, out)
    };
    feed(epoch, u32::MAX / 4, "127.255.255.254:1".parse().unwrap(), &mut req, &mut out);

    // One source, 1,000 requests within one second of fake time (ports vary: the key is the IP).
    let hammer = Ipv4Addr::new(127, 1, 2, 3);
    let region = Region::new(GLOBAL);
    let answered = (0..1000u32)
        .filter(|&i| {
            let src = SocketAddr::new(IpAddr::V4(hammer), 2000 + i as u16);
            let at = epoch + Duration::from_micros(u64::from(i) * 999);
            match feed(at, i, src, &mut req, &mut out) {
                Outcome::Reply(_) => true,
                Outcome::Dropped(DropReason::RateLimited) => false,
                other => panic!("{other:?}"),
            }
        })
        .count();
    println!("one source, 1000 requests in 1 s: {answered} answered (burst 40 + 20/s)");
    assert!(answered <= 40 + 20, "{answered}");
    assert!(answered >= 40, "{answered}");

    // 10,000 other sources, later (the buckets refilled): each gets its answers.
    let later = epoch + Duration::from_secs(10);
    let mut unanswered = 0;
    for k in 0..10_000u32 {
        for j in 0..2 {
            let src = source(k + 1, k * 2 + j);
            if !matches!(feed(later, k * 2 + j, src, &mut req, &mut out), Outcome::Reply(_)) {
                unanswered += 1;
            }
        }
    }
    let grown = net_bytes(&region);
    println!("10,000 sources x 2 requests: {unanswered} unanswered; heap grew by {grown} bytes net");
    assert_eq!(unanswered, 0);
    // The bucket table was allocated with the server: more sources, no more memory.
    assert!(grown.abs() < 64 * 1024, "{grown}");
    assert_eq!(server.stats().snapshot().dropped_rate_limited, 1000 - answered as u64);
}
