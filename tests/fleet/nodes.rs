//! Several `switchback` daemons sharing one `redis-server`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::proto::stun::{AlternateServer, Message, Method, RequestedTransport};

use crate::support::{
    Daemon, RawTurn, RedisServer, TempFile, echo_through, http_request, poll_until, udp_echo_peer, wait_until,
};

const ADMIN_KEY: &str = "admin-key-for-the-fleet-test";
const STEP: Duration = Duration::from_secs(5);

/// A node of the fleet on `redis`, named `name`, with `extra` flags.
fn node(redis: &RedisServer, name: &str, extra: &[&str]) -> Daemon {
    let url = redis.url();
    let mut args = vec!["--redis-url", url.as_str(), "--node-id", name];
    args.extend_from_slice(extra);
    Daemon::start_loopback(&args)
}

/// The value of the metric line `name` (labels included) on `daemon`'s `/metrics`.
fn metric(daemon: &Daemon, name: &str) -> Option<f64> {
    let text = http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Waits until every one of `nodes` sees `count` live nodes (their heartbeats reached Redis).
fn wait_for_fleet(nodes: &[&Daemon], count: usize) {
    for daemon in nodes {
        wait_until("every node sees the fleet", Duration::from_secs(10), || {
            metric(daemon, "switchback_fleet_nodes") == Some(count as f64)
        });
    }
}

async fn allocate(server: SocketAddr) -> Result<TurnClient, ClientError> {
    tokio::time::timeout(STEP, TurnClient::allocate(server, Credentials::new("u", "pw"))).await.expect("answer in time")
}

/// A revocation made through node A's admin API ends u's live allocation on node B within a second
/// (B hears it on the channel), and B refuses u from then on with 403.
#[test]
fn a_revocation_on_node_a_ends_a_live_allocation_on_node_b_within_a_second() {
    let Some(redis) = RedisServer::start() else { return };
    let a = node(&redis, "a", &["--admin-listen", "127.0.0.1:0", "--admin-key", ADMIN_KEY]);
    let b = node(&redis, "b", &[]);
    wait_for_fleet(&[&a, &b], 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_echo, client) = rt.block_on(async {
        let (peer, echo) = udp_echo_peer().await;
        let client = allocate(b.udp[0]).await.unwrap();
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"before").await;
        (echo, client)
    });
    assert_eq!(metric(&b, "switchback_allocations_deleted_total"), Some(0.0));

    let auth = format!("Bearer {ADMIN_KEY}");
    let answer = http_request(
        a.http_addr("admin"),
        "POST",
        "/admin/revocations",
        &[("Authorization", &auth)],
        r#"{"user":"u"}"#,
    );
    let revoked = Instant::now();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["ended"], 0, "nothing of u's lived on node A");
    wait_until("node B ends u's allocation", Duration::from_secs(1), || {
        metric(&b, "switchback_allocations_deleted_total") == Some(1.0)
    });
    let took = revoked.elapsed();
    assert!(metric(&b, "switchback_fleet_revocations_received_total").unwrap_or(0.0) >= 1.0);
    rt.block_on(async {
        let refresh = client.refresh(600).await;
        assert!(matches!(refresh, Err(ClientError::ErrorResponse { code: 403, .. })), "{refresh:?}");
        let again = allocate(b.udp[0]).await;
        assert!(matches!(again, Err(ClientError::ErrorResponse { code: 403, .. })), "{:?}", again.err());
    });
    eprintln!("revocation on A ended the allocation on B after {took:?}");
    let (status, log) = b.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert!(log.contains("fleet revocations applied"), "{log}");
    // A node that stops leaves the fleet at once (its heartbeat is deleted, not left to expire).
    assert!(heartbeat(&mut redis.connection(), "b").is_none(), "B still looks live after its shutdown");
    assert!(heartbeat(&mut redis.connection(), "a").is_some());
}

/// The usage records of allocations on three nodes reach the stream, one each, and their bytes sum
/// to what the clients relayed; the per-user counters hold the same totals, and count a live
/// allocation's bytes before it ends.
#[test]
fn usage_of_three_nodes_reaches_the_stream_and_sums_to_what_was_relayed() {
    let Some(redis) = RedisServer::start() else { return };
    let nodes: Vec<Daemon> = ["a", "b", "c"].iter().map(|n| node(&redis, n, &[])).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut to_client, mut min_to_peer, mut max_to_peer) = (0u64, 0u64, 0u64);
    let (_echo, live) = rt.block_on(async {
        let (peer, echo) = udp_echo_peer().await;
        let mut live = None;
        for (i, daemon) in nodes.iter().enumerate() {
            let client = allocate(daemon.udp[0]).await.unwrap();
            client.create_permission(peer).await.unwrap();
            for _ in 0..=i {
                let sends = echo_through(&client, peer, &[i as u8; 100]).await as u64;
                to_client += 100;
                min_to_peer += 100;
                max_to_peer += 100 * sends;
            }
            // The last one stays open for now.
            match i {
                2 => live = Some(client),
                _ => client.close().await.unwrap(),
            }
        }
        (echo, live.unwrap())
    });
    // The live allocation on c is counted by the flusher's walk, before it ends.
    let mut con = redis.connection();
    wait_until("the live allocation's bytes in the per-user counters", Duration::from_secs(10), || {
        let bytes: Option<u64> = redis::cmd("HGET").arg("switchback:usage:user:u").arg("bytes").query(&mut con).ok();
        bytes.unwrap_or(0) >= to_client + min_to_peer
    });
    rt.block_on(live.close()).unwrap();
    let records: Vec<Value> = poll_until("three usage records in the stream", Duration::from_secs(10), || {
        let entries: redis::streams::StreamRangeReply =
            redis::cmd("XRANGE").arg("switchback:usage").arg("-").arg("+").query(&mut con).ok()?;
        let records: Vec<Value> = entries
            .ids
            .iter()
            .map(|e| serde_json::from_str(&e.get::<String>("record").expect("a record field")).expect("JSON"))
            .collect();
        (records.len() >= 3).then_some(records)
    });
    assert_eq!(records.len(), 3, "{records:?}");
    let mut seen: Vec<&str> = records.iter().map(|r| r["node"].as_str().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, ["a", "b", "c"]);
    let sum = |field: &str| records.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("to_client_bytes"), to_client, "{records:?}");
    let to_peer = sum("to_peer_bytes");
    assert!((min_to_peer..=max_to_peer).contains(&to_peer), "{to_peer} not in {min_to_peer}..={max_to_peer}");
    assert!(records.iter().all(|r| r["user"] == "u" && r["type"] == "final" && r["reason"] == "client"));

    // The per-user counters (flushed in the same batches).
    let counters: std::collections::HashMap<String, u64> =
        redis::cmd("HGETALL").arg("switchback:usage:user:u").query(&mut con).unwrap();
    assert_eq!(counters["bytes"], to_client + to_peer, "{counters:?}");
    assert_eq!(counters["packets"], sum("to_client_packets") + sum("to_peer_packets"));
    assert!(counters["allocation_ms"] > 0);
}

/// The address in a 300 answer to an Allocate on `daemon`, or `None` when it was admitted (or
/// refused otherwise).
async fn redirect_from(daemon: &Daemon) -> Option<SocketAddr> {
    let mut raw = RawTurn::new("127.0.0.1:0".parse().unwrap(), daemon.udp[0], "u", "pw").await;
    let answer = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
    assert!(answer.success || answer.code == 300, "Allocate answered {}", answer.code);
    if answer.success {
        return None;
    }
    let message = Message::parse(&answer.bytes).expect("a STUN answer");
    Some(message.get::<AlternateServer>().expect("ALTERNATE-SERVER in a 300").0)
}

/// The heartbeat `node` last wrote to Redis.
fn heartbeat(con: &mut redis::Connection, node: &str) -> Option<Value> {
    let json: Option<String> = redis::cmd("GET").arg(format!("switchback:heartbeat:{node}")).query(con).ok()?;
    serde_json::from_str(&json?).ok()
}

/// Node A over its `alternate-threshold` (and with no `alternate-server`) sends a new Allocate to
/// the least-loaded live sibling: C (no allocation) rather than B (one); the client follows and
/// relays there.
#[test]
fn a_node_over_its_threshold_redirects_to_the_least_loaded_sibling() {
    let Some(redis) = RedisServer::start() else { return };
    let a = node(&redis, "a", &["--alternate-threshold", "1"]);
    let b = node(&redis, "b", &[]);
    let c = node(&redis, "c", &[]);
    wait_for_fleet(&[&a, &b, &c], 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (on_a, on_b) = rt.block_on(async { (allocate(a.udp[0]).await.unwrap(), allocate(b.udp[0]).await.unwrap()) });
    // Wait for B's heartbeat with its allocation, then for A to have read the nodes after it.
    let mut con = redis.connection();
    let b_at = poll_until("B's heartbeat with one allocation", Duration::from_secs(10), || {
        let beat = heartbeat(&mut con, "b")?;
        (beat["allocations"] == 1).then(|| beat["at_ms"].as_u64().unwrap())
    });
    wait_until("A's heartbeat after B's", Duration::from_secs(10), || {
        heartbeat(&mut con, "a").is_some_and(|beat| beat["at_ms"].as_u64().unwrap() > b_at && beat["allocations"] == 1)
    });
    // A's alternates are refreshed right after its heartbeat: poll the short gap.
    let target = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let to = redirect_from(&a).await.expect("A is over its threshold: 300");
            if to == c.udp[0] || Instant::now() > deadline {
                return to;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(target, c.udp[0], "the least-loaded sibling is C (B has one allocation): {target}");
    assert_ne!(target, b.udp[0]);
    let metrics_a = http_request(a.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    assert!(metrics_a.contains("switchback_allocations_redirected_total"), "{metrics_a}");
    // The client follows the redirection and relays through C.
    rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let client = allocate(target).await.unwrap();
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"via the sibling").await;
        client.close().await.unwrap();
        drop((on_a, on_b));
    });
}

/// `POST /v1/relay-configuration` on node A lists the fleet's nodes least-loaded first: B (no
/// allocation) before A (one), both with the same credentials.
#[test]
fn relay_configuration_lists_the_fleet_least_loaded_first() {
    let Some(redis) = RedisServer::start() else { return };
    let api = [
        "--static-auth-secret",
        "fleet-shared-secret",
        "--api-listen",
        "127.0.0.1:0",
        "--api-key",
        "fleet-backend-key-0123456789",
        "--token-key",
        "k1:0123456789abcdef0123456789abcdef",
        // The test polls the endpoint.
        "--api-rate-limit",
        "0",
        "--api-user-rate-limit",
        "0",
    ];
    let a = node(&redis, "a", &api);
    let b = node(&redis, "b", &[]);
    wait_for_fleet(&[&a, &b], 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let on_a = rt.block_on(allocate(a.udp[0])).unwrap();
    let auth = "Bearer fleet-backend-key-0123456789";
    let turn_urls = || -> Vec<String> {
        let r = http_request(
            a.http_addr("api"),
            "POST",
            "/v1/relay-configuration",
            &[("Authorization", auth)],
            r#"{"user":"alice"}"#,
        );
        assert_eq!(r.status, 200, "{r:?}");
        let servers = r.json()["iceServers"].clone();
        let turn =
            servers.as_array().unwrap().iter().find(|s| s["username"].is_string()).expect("a TURN entry").clone();
        turn["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect()
    };
    let (on_b, on_a_url) = (format!("turn:{}?transport=udp", b.udp[0]), format!("turn:{}?transport=udp", a.udp[0]));
    // Once A's heartbeat carries its allocation, B comes first.
    let urls = poll_until("B listed first", Duration::from_secs(10), || {
        let urls = turn_urls();
        (urls.first() == Some(&on_b)).then_some(urls)
    });
    assert!(urls.contains(&on_a_url), "A is listed too: {urls:?}");
    assert!(urls.contains(&format!("turn:{}?transport=tcp", a.tcp[0])), "{urls:?}");
    drop(on_a);
}

/// With its Redis unreachable a node serves on its own: it starts, allocates and relays (over its
/// threshold too: no sibling is known), counts the failures, logs them rate-limited, and never
/// shows the password of `redis-url-file`. Needs no `redis-server`: nothing listens on the port.
#[test]
fn an_unreachable_redis_does_not_stop_the_node_and_its_password_never_shows() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = TempFile::new("fleet-redis-url", &format!("redis://:hunter2-secret@127.0.0.1:{port}/0\n"));
    let daemon =
        Daemon::start_loopback(&["--redis-url-file", url.as_str(), "--node-id", "alone", "--alternate-threshold", "1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let first = allocate(daemon.udp[0]).await.unwrap();
        first.create_permission(peer).await.unwrap();
        echo_through(&first, peer, b"alone").await;
        let second = allocate(daemon.udp[0]).await.expect("no sibling known: allocated here");
        first.close().await.unwrap();
        second.close().await.unwrap();
    });
    wait_until("failures counted", Duration::from_secs(10), || {
        metric(&daemon, "switchback_fleet_errors_total").is_some_and(|n| n >= 1.0)
    });
    assert_eq!(metric(&daemon, "switchback_fleet_nodes"), Some(0.0));
    let (status, log) = daemon.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert!(log.contains("fleet mode on") && log.contains("redis://***@127.0.0.1"), "{log}");
    assert!(log.contains("fleet: redis unreachable"), "{log}");
    assert!(!log.contains("hunter2"), "the password shows in the log: {log}");
}

/// Allocates for u through `server`; the error code when refused.
fn allocate_code(rt: &tokio::runtime::Runtime, server: SocketAddr) -> Result<TurnClient, u16> {
    match rt.block_on(allocate(server)) {
        Ok(client) => Ok(client),
        Err(ClientError::ErrorResponse { code, .. }) => Err(code),
        Err(e) => panic!("allocate through {server}: {e}"),
    }
}

/// Issue #16 §2: a fleet quota of 8 for one user — 8 Allocates spread over three nodes succeed, the
/// 9th gets 486 on every node; after one node is killed with SIGKILL its leases come back within
/// a few heartbeat intervals (the admit script drops the leases of nodes without a heartbeat), and
/// an allocation that ends gives its slot back at once.
#[test]
fn a_fleet_quota_holds_across_three_nodes_and_a_killed_nodes_leases_come_back() {
    let Some(redis) = RedisServer::start() else { return };
    let quota = ["--user-quota", "8"];
    let (a, b, c) = (node(&redis, "a", &quota), node(&redis, "b", &quota), node(&redis, "c", &quota));
    wait_for_fleet(&[&a, &b, &c], 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut held = Vec::new();
    for server in [a.udp[0], b.udp[0], c.udp[0], a.udp[0], b.udp[0], c.udp[0], a.udp[0], b.udp[0]] {
        held.push(
            allocate_code(&rt, server).unwrap_or_else(|code| panic!("allocation {} refused: {code}", held.len())),
        );
    }
    for server in [a.udp[0], b.udp[0], c.udp[0]] {
        assert_eq!(allocate_code(&rt, server).err(), Some(486), "the 9th through {server}");
    }
    // An allocation that ends (Refresh 0 on node B) frees its lease: the next one goes through C.
    let on_b = held.remove(1);
    rt.block_on(on_b.close()).unwrap();
    wait_until("b's lease is released", Duration::from_secs(5), || match allocate_code(&rt, c.udp[0]) {
        Ok(client) => {
            held.push(client);
            true
        }
        Err(code) => {
            assert_eq!(code, 486);
            false
        }
    });
    assert_eq!(allocate_code(&rt, c.udp[0]).err(), Some(486), "8 again");
    // Node A (3 leases) dies without a word; within a few heartbeats its slots come back.
    let killed = Instant::now();
    let (status, _) = a.stop_with("KILL");
    assert!(!status.success());
    let mut freed = 0;
    wait_until("a's leases come back", Duration::from_secs(20), || {
        while let Ok(client) = allocate_code(&rt, b.udp[0]) {
            held.push(client);
            freed += 1;
        }
        freed == 3
    });
    println!("a killed node's 3 leases came back after {:?}", killed.elapsed());
    assert_eq!(allocate_code(&rt, c.udp[0]).err(), Some(486));
    assert_eq!(metric(&b, "switchback_requests_held"), Some(0.0), "nothing left held");
}

/// Issue #16 §7: Redis killed mid-run — live allocations keep relaying; a node with
/// `redis-failure = closed` refuses new allocations with 508, one with the default (open) admits
/// them under its own quota.
#[test]
fn with_redis_away_live_allocations_relay_and_redis_failure_decides_new_ones() {
    let Some(mut redis) = RedisServer::start() else { return };
    let open = node(&redis, "open", &["--user-quota", "2"]);
    let closed = node(&redis, "closed", &["--user-quota", "2", "--redis-failure", "closed"]);
    wait_for_fleet(&[&open, &closed], 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (peer, _echo) = rt.block_on(udp_echo_peer());
    let live = allocate_code(&rt, closed.udp[0]).expect("allocated while Redis is up");
    rt.block_on(live.create_permission(peer)).unwrap();
    redis.kill();
    rt.block_on(echo_through(&live, peer, b"redis is away"));
    assert_eq!(allocate_code(&rt, closed.udp[0]).err(), Some(508), "fail closed");
    let admitted = allocate_code(&rt, open.udp[0]).expect("fail open: the node's own quota");
    assert!(metric(&open, "switchback_fleet_errors_total").unwrap_or(0.0) >= 1.0);
    // The node's own quota still holds while Redis is away (2 for u here).
    let second = allocate_code(&rt, open.udp[0]).expect("the second of u's two on this node");
    assert_eq!(allocate_code(&rt, open.udp[0]).err(), Some(486));
    rt.block_on(echo_through(&live, peer, b"still relaying"));
    drop((admitted, second));
}

/// Issue #16 §7: when Redis comes back empty (restarted without persistence), each node re-asserts
/// the leases of its live allocations within `RECONCILE`, so the fleet's counts are right again.
#[test]
fn after_redis_comes_back_empty_the_leases_of_live_allocations_are_counted_again() {
    let Some(mut redis) = RedisServer::start() else { return };
    let a = node(&redis, "a", &["--user-quota", "2"]);
    wait_for_fleet(&[&a], 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let held = [allocate_code(&rt, a.udp[0]).unwrap(), allocate_code(&rt, a.udp[0]).unwrap()];
    let leases = |redis: &RedisServer| -> usize {
        redis::cmd("ZCARD").arg("switchback:lease:user:u").query(&mut redis.connection()).unwrap()
    };
    assert_eq!(leases(&redis), 2);
    redis.restart();
    assert_eq!(leases(&redis), 0, "a fresh, empty Redis");
    let back = Instant::now();
    let limit = switchback::daemon::fleet_leases::RECONCILE + Duration::from_secs(5);
    wait_until("a's two leases are counted again", limit, || leases(&redis) == 2);
    println!("leases re-asserted {:?} after Redis came back", back.elapsed());
    drop(held);
}

/// Issue #16 §5, front mode (`fleet-front`, RFC 8155 §6): alone, the front node serves; once a
/// relay node is live, every Allocate to the front gets 300 naming it, and the relay node never
/// sends clients to the front (its heartbeat counts as draining).
#[test]
fn a_front_node_redirects_every_allocate_to_a_live_relay_node() {
    let Some(redis) = RedisServer::start() else { return };
    let front = node(&redis, "front", &["--fleet-front"]);
    wait_for_fleet(&[&front], 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(redirect_from(&front)), None, "no relay node yet: served here");
    let relay = node(&redis, "relay", &["--alternate-threshold", "1"]);
    wait_for_fleet(&[&front, &relay], 2);
    let target = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match redirect_from(&front).await {
                Some(to) => return to,
                None => assert!(Instant::now() < deadline, "the front never redirected"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert_eq!(target, relay.udp[0]);
    let mut con = redis.connection();
    assert_eq!(heartbeat(&mut con, "front").unwrap()["draining"], true, "never a sibling to send clients to");
    // The relay node over its threshold has no sibling to send to: it serves.
    rt.block_on(async {
        let first = allocate(relay.udp[0]).await.unwrap();
        assert_eq!(redirect_from(&relay).await, None, "the front is no candidate");
        drop(first);
    });
}

/// Issue #16 §5 with coturn's client: `turnutils_uclient` pointed at a `fleet-front` node follows
/// its 300 ALTERNATE-SERVER to the relay node and relays there.
#[test]
fn coturns_uclient_follows_a_front_node_to_the_relay_node() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let Some(redis) = RedisServer::start() else { return };
    let relay = node(&redis, "relay", &[]);
    let front = node(&redis, "front", &["--fleet-front"]);
    wait_for_fleet(&[&front, &relay], 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.block_on(redirect_from(&front)) != Some(relay.udp[0]) {
        assert!(Instant::now() < deadline, "the front never redirected to the relay node");
        std::thread::sleep(Duration::from_millis(100));
    }
    let before = metric(&relay, "switchback_allocations_created_total").unwrap_or(0.0);
    let peer = crate::support::EchoPeer::start();
    let (peer_port, port) = (peer.port.to_string(), front.udp[0].port().to_string());
    let mut cmd = std::process::Command::new("turnutils_uclient");
    cmd.args(["-e", "127.0.0.1", "-r", &peer_port, "-n", "10", "-m", "1", "-l", "100", "-u", "u", "-w", "pw"]).args([
        "-p",
        &port,
        "127.0.0.1",
    ]);
    let output = crate::support::run_with_timeout(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "uclient failed: {stdout}");
    let t = crate::support::totals(&stdout).unwrap_or_else(|| panic!("no totals in uclient's output: {stdout}"));
    assert_eq!((t.sent, t.received, t.lost), (20, 20, 0), "{stdout}");
    let made = metric(&relay, "switchback_allocations_created_total").unwrap_or(0.0) - before;
    assert!(made >= 2.0, "uclient's two allocations were made on the relay node ({made}): {stdout}");
}
