//! The Redis backend on its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchback::fleet::{
    Admitted, FleetBackend, Lease, LeaseLimit, LeaseLimits, NodeAddress, NodeLoad, RedisBackend, RedisOptions,
    RevocationNotice, UsageBatch, UserUsage,
};

use crate::support::{RedisServer, bounded};

fn backend(redis: &RedisServer, prefix: &str) -> Arc<RedisBackend> {
    let options = RedisOptions { url: redis.url(), prefix: prefix.to_owned(), timeout: Duration::from_secs(2) };
    Arc::new(RedisBackend::new(options).expect("a redis backend"))
}

fn load(node: &str, allocations: u64, port: u16) -> NodeLoad {
    let addr = NodeAddress { transport: "udp".into(), addr: format!("127.0.0.1:{port}").parse().unwrap() };
    NodeLoad {
        node: node.into(),
        allocations,
        bitrate_bps: 0,
        cpu: 0.0,
        draining: false,
        addresses: vec![addr],
        at_ms: 0,
    }
}

fn lease<'a>(user: &'a str, id: &'a str, node: &'a str, expires_at_ms: u64) -> Lease<'a> {
    Lease { user, lease_id: id, node, expires_at_ms }
}

/// 50 Allocates at once against a limit of 10 admit exactly 10, per user and in total: the script
/// checks and adds in one step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_admissions_against_a_limit_of_ten_admit_ten() {
    let Some(redis) = RedisServer::start() else { return };
    bounded(async {
        let b = backend(&redis, "t1:");
        b.heartbeat(&load("a", 0, 1), 60_000).await.unwrap();
        for (limits, user_of) in [
            (LeaseLimits { per_user: 10, total: 0 }, (|_| "alice".to_owned()) as fn(usize) -> String),
            (LeaseLimits { per_user: 0, total: 10 }, |i| format!("user{i}")),
        ] {
            let run = format!("{limits:?}");
            let tasks: Vec<_> = (0..50)
                .map(|i| {
                    let (b, user, run) = (b.clone(), user_of(i), run.clone());
                    tokio::spawn(async move {
                        let id = format!("{run}-{i}");
                        b.admit(lease(&user, &id, "a", u64::MAX / 2), limits, 1000).await.unwrap()
                    })
                })
                .collect();
            let mut admitted = 0;
            for task in tasks {
                match task.await.unwrap() {
                    Admitted::Yes => admitted += 1,
                    Admitted::Refused(limit) => {
                        let expected = if limits.per_user != 0 { LeaseLimit::PerUser } else { LeaseLimit::Total };
                        assert_eq!(limit, expected);
                    }
                }
            }
            assert_eq!(admitted, 10, "{limits:?}");
            // Clear the slate for the next round.
            for i in 0..50 {
                b.release(&user_of(i), &format!("{run}-{i}")).await.unwrap();
            }
            assert_eq!(b.leases("alice", 1000).await.unwrap(), (0, 0));
        }
    })
    .await;
}

/// A lease counts until it expires (scored by expiry); Refresh extends it, delete releases it, and
/// admitting the same lease again takes no second slot.
#[tokio::test]
async fn leases_expire_unless_renewed_and_release_frees_the_slot() {
    let Some(redis) = RedisServer::start() else { return };
    bounded(async {
        let b = backend(&redis, "t2:");
        let limits = LeaseLimits { per_user: 2, total: 3 };
        let admit = |user: &'static str, id: &'static str, expires, now| {
            let b = b.clone();
            async move { b.admit(lease(user, id, "a", expires), limits, now).await.unwrap() }
        };
        assert_eq!(admit("u", "1", 1000, 0).await, Admitted::Yes);
        assert_eq!(admit("u", "2", 2000, 0).await, Admitted::Yes);
        assert_eq!(admit("u", "2", 2000, 0).await, Admitted::Yes, "the same lease again");
        assert_eq!(admit("u", "3", 2000, 0).await, Admitted::Refused(LeaseLimit::PerUser));
        assert_eq!(admit("v", "4", 2000, 0).await, Admitted::Yes);
        assert_eq!(admit("w", "5", 2000, 0).await, Admitted::Refused(LeaseLimit::Total));
        assert_eq!(b.leases("u", 0).await.unwrap(), (2, 3));
        // At 1000 lease 1 has expired: u has a slot again.
        assert_eq!(admit("u", "3", 3000, 1000).await, Admitted::Yes);
        // Renewed, lease 3 outlives the others; a lease that is gone cannot be renewed.
        assert!(b.renew("u", "3", 9000).await.unwrap());
        assert!(!b.renew("u", "1", 9000).await.unwrap());
        assert_eq!(b.leases("u", 2500).await.unwrap(), (1, 1));
        b.release("u", "3").await.unwrap();
        assert_eq!(b.leases("u", 2500).await.unwrap(), (0, 0));
        // Nothing of the released and expired leases is left behind.
        let mut con = redis.connection();
        let owners: u64 = redis::cmd("HLEN").arg("t2:lease:owner").query(&mut con).unwrap();
        assert_eq!(owners, 2, "leases 2 and 4 are still in the owner hash until swept");
        assert_eq!(admit("w", "5", 9000, 2500).await, Admitted::Yes);
        let owners: u64 = redis::cmd("HLEN").arg("t2:lease:owner").query(&mut con).unwrap();
        assert_eq!(owners, 1, "the expired ones were swept with the admission");
    })
    .await;
}

/// A node that stops beating loses its leases once its heartbeat key expires: its slots come back
/// without waiting for the leases' own expiry.
#[tokio::test]
async fn a_dead_nodes_leases_are_dropped_after_its_heartbeat_ttl() {
    let Some(redis) = RedisServer::start() else { return };
    bounded(async {
        let b = backend(&redis, "t3:");
        let limits = LeaseLimits { per_user: 1, total: 0 };
        let far = u64::MAX / 2;
        b.heartbeat(&load("dead", 0, 1), 300).await.unwrap();
        b.heartbeat(&load("live", 0, 2), 60_000).await.unwrap();
        assert_eq!(b.admit(lease("u", "1", "dead", far), limits, 0).await.unwrap(), Admitted::Yes);
        let beat = Instant::now();
        assert_eq!(
            b.admit(lease("u", "2", "live", far), limits, 0).await.unwrap(),
            Admitted::Refused(LeaseLimit::PerUser)
        );
        // Poll until the dead node's slot is free (the heartbeat's PX is 300 ms).
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if b.admit(lease("u", "2", "live", far), limits, 0).await.unwrap() == Admitted::Yes {
                break;
            }
            assert!(Instant::now() < deadline, "the dead node's lease was never dropped");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(beat.elapsed() >= Duration::from_millis(250), "dropped before the TTL: {:?}", beat.elapsed());
        let nodes: Vec<String> = b.nodes(0).await.unwrap().into_iter().map(|n| n.node).collect();
        assert_eq!(nodes, ["live"]);
    })
    .await;
}

/// A revocation is published to subscribers and kept in the set; after Redis comes back (a
/// reconnection) the subscriber says Resync, and the set read then holds what was revoked meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_subscribers_and_are_re_read_after_a_reconnection() {
    let Some(mut redis) = RedisServer::start() else { return };
    bounded(async {
        let a = backend(&redis, "t4:");
        let b = backend(&redis, "t4:");
        let mut heard = b.subscribe();
        assert_eq!(heard.recv().await, Some(RevocationNotice::Resync));
        a.revoke("eve", None).await.unwrap();
        a.revoke("jti-1", Some(5_000)).await.unwrap();
        assert_eq!(heard.recv().await, Some(RevocationNotice::Revoked("eve".into())));
        assert_eq!(heard.recv().await, Some(RevocationNotice::Revoked("jti-1".into())));
        let mut all = b.revocations(1_000).await.unwrap();
        all.sort();
        assert_eq!(all, ["eve", "jti-1"]);
        assert_eq!(b.revocations(5_000).await.unwrap(), ["eve"], "an entry with an expiry goes");

        // A fresh (empty) Redis: the subscriber reconnects and asks for a re-read.
        tokio::task::block_in_place(|| redis.restart());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Until the manager has reconnected, a revocation fails: retry.
            if a.revoke("mallory", None).await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the backend did not reconnect");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let notice = tokio::time::timeout(Duration::from_secs(10), heard.recv()).await.expect("a notice");
        assert_eq!(notice, Some(RevocationNotice::Resync), "the first notice after the reconnection");
        assert!(b.revocations(1_000).await.unwrap().contains(&"mallory".to_owned()));
    })
    .await;
}

/// Usage batches: per-user counters add up in hashes, each record is one stream entry that a
/// billing job reads with a consumer group.
#[tokio::test]
async fn usage_goes_to_per_user_hashes_and_to_a_stream_a_consumer_group_reads() {
    let Some(redis) = RedisServer::start() else { return };
    bounded(async {
        let b = backend(&redis, "t5:");
        let one = UserUsage { bytes: 1000, packets: 10, allocation_ms: 1500 };
        let batch = UsageBatch {
            users: vec![("alice".into(), one), ("bob".into(), one)],
            records: vec![r#"{"user":"alice","n":1}"#.into(), r#"{"user":"bob","n":2}"#.into()],
        };
        b.add_usage(&batch).await.unwrap();
        let batch =
            UsageBatch { users: vec![("alice".into(), one)], records: vec![r#"{"user":"alice","n":3}"#.into()] };
        b.add_usage(&batch).await.unwrap();
        b.add_usage(&UsageBatch::default()).await.unwrap();

        let mut con = redis.connection();
        let alice: std::collections::HashMap<String, u64> =
            redis::cmd("HGETALL").arg("t5:usage:user:alice").query(&mut con).unwrap();
        assert_eq!((alice["bytes"], alice["packets"], alice["allocation_ms"]), (2000, 20, 3000));
        let bob: u64 = redis::cmd("HGET").arg("t5:usage:user:bob").arg("bytes").query(&mut con).unwrap();
        assert_eq!(bob, 1000);

        let _: () = redis::cmd("XGROUP").arg("CREATE").arg("t5:usage").arg("billing").arg("0").query(&mut con).unwrap();
        let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("billing")
            .arg("job-1")
            .arg("COUNT")
            .arg(10)
            .arg("STREAMS")
            .arg("t5:usage")
            .arg(">")
            .query(&mut con)
            .unwrap();
        let records: Vec<String> =
            reply.keys[0].ids.iter().map(|e| e.get::<String>("record").expect("a record field")).collect();
        assert_eq!(records, [r#"{"user":"alice","n":1}"#, r#"{"user":"bob","n":2}"#, r#"{"user":"alice","n":3}"#]);
    })
    .await;
}

/// The added latency of one admission (the script, one round trip to a local Redis), measured
/// over 2000 admit + release pairs with 200 other leases held; printed (`--nocapture`) for
/// `docs/performance.md` and bounded loosely (a shared CI machine): p99 under 20 ms.
#[tokio::test]
async fn admission_latency_with_a_local_redis_is_printed_and_bounded() {
    let Some(redis) = RedisServer::start() else { return };
    bounded(async {
        let b = backend(&redis, "t6:");
        b.heartbeat(&load("a", 0, 1), 60_000).await.unwrap();
        let limits = LeaseLimits { per_user: 32, total: 10_000 };
        for i in 0..200 {
            let (user, id) = (format!("held{}", i % 20), format!("held-{i}"));
            assert_eq!(b.admit(lease(&user, &id, "a", u64::MAX / 2), limits, 1000).await.unwrap(), Admitted::Yes);
        }
        let mut admit = Vec::with_capacity(2000);
        for i in 0..2000 {
            let id = format!("probe-{i}");
            let t = Instant::now();
            let answer = b.admit(lease("probe", &id, "a", u64::MAX / 2), limits, 1000).await.unwrap();
            admit.push(t.elapsed());
            assert_eq!(answer, Admitted::Yes);
            b.release("probe", &id).await.unwrap();
        }
        admit.sort();
        let (p50, p99) = (admit[admit.len() / 2], admit[admit.len() * 99 / 100]);
        eprintln!("admit with a local redis-server: p50 {p50:?}, p99 {p99:?} (2000 admissions, 200 leases held)");
        assert!(p99 < Duration::from_millis(20), "p50 {p50:?}, p99 {p99:?}");
    })
    .await;
}
