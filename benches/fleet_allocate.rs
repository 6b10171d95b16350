//! What fleet mode adds to an Allocate (issue #16 §2): the latency of a whole allocation by our
//! client (the 401 round trip, then the Allocate), p50 and p99, on one in-process server without
//! a fleet, then with the fleet's lease admission over a local `redis-server` (one node), then
//! three servers sharing it (allocations round-robin). Loopback only; bounded in count.
//!
//!   cargo bench --bench fleet_allocate            # COUNT=2000 by default
//!
//! Needs `redis-server` (Debian's); without it the fleet rows are skipped with a message.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchback::client::turn::{Credentials, TurnClient};
use switchback::config::Config;
use switchback::daemon::fleet_leases::FleetLedger;
use switchback::fleet::{FleetBackend, RedisBackend, RedisOptions};
use switchback::http::metrics::FleetStats;

/// A redis-server on a free loopback port, killed on drop.
struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis() -> Option<Redis> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let redis = Redis(child, port);
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(redis)
}

/// An in-process server with REST credentials and a quota; with `redis`, fleet leases on it.
async fn server(secret: &str, redis: Option<u16>, node: &str) -> (SocketAddr, switchback::io::Running) {
    let config = Config {
        listening_ip: vec!["127.0.0.1".parse().unwrap()],
        listening_port: 0,
        no_tls: true,
        no_tcp: true,
        static_auth_secret: vec![switchback::config::SecretText(secret.into())],
        user_quota: 1_000_000,
        max_port: 65535,
        min_port: 20000,
        // Every client is on 127.0.0.1: the per-source limit on unauthenticated answers (the 401s)
        // would drop some and measure the client's 500 ms retransmission instead.
        rate_limit_unauth: switchback::policy::rate::RateLimit::OFF,
        rate_limit_allocate: switchback::policy::rate::RateLimit::OFF,
        ..Config::default()
    };
    let auth =
        switchback::auth::Authenticator::new(config.auth_config().unwrap().expect("REST is configured"), [9; 32]);
    let server = switchback::io::UdpRelay::server(config.server_options(), Some(auth));
    if let Some(port) = redis {
        let options = RedisOptions {
            url: format!("redis://127.0.0.1:{port}/0"),
            prefix: "bench:".into(),
            timeout: Duration::from_secs(1),
        };
        let backend: Arc<dyn FleetBackend> = Arc::new(RedisBackend::new(options).unwrap());
        let ledger = FleetLedger::new(backend, node, Arc::new(FleetStats::default()));
        switchback::io::lease::use_ledger(&server, Arc::new(ledger));
    }
    let running = switchback::io::bind(&config, server).await.unwrap();
    (running.local_addrs()[0].addr, running)
}

/// `count` allocations round-robin over `servers`, one after another; the sorted latencies.
async fn allocations(servers: &[SocketAddr], secret: &str, count: usize) -> Vec<Duration> {
    let rest = switchback::auth::RestCredentials::new(vec![switchback::auth::Secret::new(secret)]);
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut took = Vec::with_capacity(count);
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        // One user per allocation: the per-user Allocate rate limit stays out of the measurement.
        let (username, password) = rest.mint(&format!("user{i}"), 3600, unix).unwrap();
        let start = Instant::now();
        let server = servers[i % servers.len()];
        let client = TurnClient::allocate(server, Credentials::new(username, password))
            .await
            .unwrap_or_else(|e| panic!("allocation {i} through {server}: {e}"));
        took.push(start.elapsed());
        // Held to the end: a dropped client's port could come back to a new client while the
        // server still has the allocation of that 5-tuple (437).
        held.push(client);
    }
    took.sort();
    took
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, sorted: &[Duration]) {
    println!(
        "| {name} | {} | {:.0} µs | {:.0} µs |",
        sorted.len(),
        percentile(sorted, 0.5).as_secs_f64() * 1e6,
        percentile(sorted, 0.99).as_secs_f64() * 1e6
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let count: usize = std::env::var("COUNT").ok().and_then(|c| c.parse().ok()).unwrap_or(2000);
    let secret = "fleet-bench-secret";
    println!("| case | allocations | p50 | p99 |\n|---|---|---|---|");
    let (alone, _a) = server(secret, None, "alone").await;
    row("one node, no fleet", &allocations(&[alone], secret, count).await);
    let Some(redis) = redis() else {
        println!("SKIP: no redis-server: the fleet rows need it (apt-get install redis-server)");
        return;
    };
    let (one, _b) = server(secret, Some(redis.1), "n1").await;
    row("one node, fleet leases (local Redis)", &allocations(&[one], secret, count).await);
    let mut nodes = Vec::new();
    let mut keep = Vec::new();
    for n in ["m1", "m2", "m3"] {
        let (addr, running) = server(secret, Some(redis.1), n).await;
        nodes.push(addr);
        keep.push(running);
    }
    row("three nodes, fleet leases (one Redis)", &allocations(&nodes, secret, count).await);
}
