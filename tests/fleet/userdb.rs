//! coturn's Redis user database (`redis-userdb`, issue #16 item 8): a `redis-server` filled the way
//! coturn's `turnadmin -a -N …` and `redis-cli` fill it (`turndb/schema.userdb.redis`), and a
//! `switchback` daemon with no users or secrets of its own reading it.

use std::net::SocketAddr;
use std::time::Duration;

use switchback::auth::{RestAlgorithm, RestCredentials, Secret, StaticCredential};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};

use crate::support::{Daemon, EchoPeer, RedisServer, echo_through, run_with_timeout, totals, udp_echo_peer, unix_now};

const REALM: &str = "north.gov";
const STEP: Duration = Duration::from_secs(5);

/// What `turnadmin -a -u NAME -r REALM -p PASSWORD` writes: the hex MD5 key of `name:realm:password`.
fn add_user(redis: &RedisServer, name: &str, password: &str) {
    let key = StaticCredential::Password(password.to_owned()).key(name, REALM);
    let mut con = redis.connection();
    let _: () = redis::cmd("SET")
        .arg(format!("turn/realm/{REALM}/user/{name}/key"))
        .arg(hex::encode(key))
        .query(&mut con)
        .unwrap();
}

/// `SADD turn/realm/<realm>/secret …` and `SET turn/realm/<realm>/<option> N`, as `redis-cli` would.
fn fill(redis: &RedisServer, secrets: &[&str], options: &[(&str, &str)]) {
    let mut con = redis.connection();
    if !secrets.is_empty() {
        let _: () = redis::cmd("SADD").arg(format!("turn/realm/{REALM}/secret")).arg(secrets).query(&mut con).unwrap();
    }
    for (name, value) in options {
        let _: () = redis::cmd("SET").arg(format!("turn/realm/{REALM}/{name}")).arg(*value).query(&mut con).unwrap();
    }
}

/// A daemon on loopback for `REALM` with no credentials of its own but the user database at `url`.
fn daemon(url: &str) -> Daemon {
    Daemon::start(&[
        "--realm",
        REALM,
        "--redis-userdb",
        url,
        "--allow-loopback-peers",
        "--listening-port",
        "0",
        "--no-tls",
    ])
}

async fn allocate(server: SocketAddr, user: &str, password: &str) -> Result<TurnClient, u16> {
    match tokio::time::timeout(STEP, TurnClient::allocate(server, Credentials::new(user, password))).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(ClientError::ErrorResponse { code, .. })) => Err(code),
        Ok(Err(e)) => panic!("allocate as {user}: {e}"),
        Err(_) => panic!("allocate as {user}: no answer within {STEP:?}"),
    }
}

/// The key `turnadmin` computes is coturn's own example (`schema.userdb.redis`): gorst's in
/// north.gov with password hero.
#[test]
fn the_key_written_is_coturns() {
    let key = StaticCredential::Password("hero".into()).key("gorst", REALM);
    assert_eq!(hex::encode(key), "7da2270ccfa49786e0115366d3a3d14d");
}

/// (1) A user of the database allocates and relays; a wrong password gets 401. (2) A REST
/// credential minted with a secret of the database's set allocates. (3) A user added to Redis
/// after start works after SIGHUP, and one never added still gets 401; a reload while Redis is away
/// keeps the last read.
#[test]
fn users_and_rest_secrets_of_coturns_database_allocate_and_a_reload_reads_new_users() {
    let Some(mut redis) = RedisServer::start() else { return };
    add_user(&redis, "gorst", "hero");
    fill(&redis, &["logen", "bloody9"], &[]);
    let daemon = daemon(&redis.url());
    let server = daemon.udp[0];
    let rest = RestCredentials {
        secrets: vec![Secret::from("logen")],
        separator: ':',
        algorithm: RestAlgorithm::Sha1,
        max_lifetime_secs: 0,
    };
    let (rest_user, rest_password) = rest.mint("whirrun", 3600, unix_now()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let client = allocate(server, "gorst", "hero").await.expect("the database's user allocates");
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"from coturn's userdb").await;
        client.close().await.unwrap();
        assert_eq!(allocate(server, "gorst", "not-hero").await.err(), Some(401));
        let client = allocate(server, &rest_user, &rest_password).await.expect("a REST credential of its secret");
        client.close().await.unwrap();
        assert_eq!(allocate(server, "ninefingers", "bloody").await.err(), Some(401), "not there yet");
    });

    add_user(&redis, "ninefingers", "bloody");
    daemon.guard.signal("HUP");
    daemon.wait_for_log("users=2", 1);
    rt.block_on(async {
        let client = allocate(server, "ninefingers", "bloody").await.expect("added to Redis, read on reload");
        client.close().await.unwrap();
        assert_eq!(allocate(server, "stranger", "x").await.err(), Some(401));
    });

    // Redis away during a reload: the last read stays in force.
    redis.kill();
    daemon.guard.signal("HUP");
    daemon.wait_for_log("keeping what the last read gave", 1);
    daemon.wait_for_log("configuration reloaded", 2);
    rt.block_on(async {
        let client = allocate(server, "ninefingers", "bloody").await.expect("kept from the last read");
        client.close().await.unwrap();
    });
    let (status, log) = daemon.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert!(log.contains("coturn's user database read") && log.contains("rest_secrets=2"), "{log}");
    assert!(!log.contains("logen") && !log.contains("bloody9"), "a secret shows in the log: {log}");
}

/// coturn's own client, `turnutils_uclient -W SECRET`, relays through switchback with a secret that
/// exists only in the database's set. SKIP without coturn's tools.
#[test]
fn coturns_uclient_relays_with_a_rest_secret_of_the_database() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let Some(redis) = RedisServer::start() else { return };
    fill(&redis, &["logen"], &[]);
    let daemon = daemon(&redis.url());
    let peer = EchoPeer::start();
    let (peer_port, port) = (peer.port.to_string(), daemon.udp[0].port().to_string());
    let mut cmd = std::process::Command::new("turnutils_uclient");
    cmd.args(["-e", "127.0.0.1", "-r", &peer_port, "-n", "10", "-m", "1", "-l", "100", "-W", "logen", "-u", "bob"])
        .args(["-p", &port, "127.0.0.1"]);
    let output = run_with_timeout(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "uclient failed: {stdout}");
    let t = totals(&stdout).unwrap_or_else(|| panic!("no totals in uclient's output: {stdout}"));
    // `-m 1` runs one pair of clients: 10 messages each.
    assert_eq!((t.sent, t.received, t.lost), (20, 20, 0), "{stdout}");
    // uclient leaves its allocations to expire: SIGINT exits without draining them.
    let (status, log) = daemon.stop_with("INT");
    assert!(status.success(), "{log}");
}

/// With `redis-userdb-interval`, a user `turnadmin` adds works without a reload (coturn asks Redis on
/// every request); a read that finds nothing changed reloads nothing.
#[test]
fn a_user_added_to_redis_works_after_the_next_periodic_read() {
    let Some(redis) = RedisServer::start() else { return };
    add_user(&redis, "gorst", "hero");
    let url = redis.url();
    let daemon = Daemon::start(&[
        "--realm",
        REALM,
        "--redis-userdb",
        &url,
        "--redis-userdb-interval",
        "1",
        "--listening-port",
        "0",
        "--no-tls",
    ]);
    let server = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(allocate(server, "ninefingers", "bloody")).err(), Some(401));
    add_user(&redis, "ninefingers", "bloody");
    daemon.wait_for_log("redis-userdb changed", 1);
    rt.block_on(async {
        let client = allocate(server, "ninefingers", "bloody").await.expect("read by the periodic read");
        client.close().await.unwrap();
    });
    // An absence is watched for a window, not polled: two more periodic reads (1 s apart) find
    // nothing new and reload nothing.
    std::thread::sleep(Duration::from_millis(2500));
    let (status, log) = daemon.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert_eq!(log.matches("configuration reloaded").count(), 1, "{log}");
}

/// (4) The realm's `user-quota` in Redis replaces the default (32): the third allocation of a user
/// gets 486, and the first two are not disturbed.
#[test]
fn the_realms_user_quota_in_redis_is_enforced() {
    let Some(redis) = RedisServer::start() else { return };
    add_user(&redis, "gorst", "hero");
    fill(&redis, &[], &[("user-quota", "2"), ("total-quota", "100")]);
    let daemon = daemon(&redis.url());
    let server = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let first = allocate(server, "gorst", "hero").await.expect("1 of 2");
        let second = allocate(server, "gorst", "hero").await.expect("2 of 2");
        assert_eq!(allocate(server, "gorst", "hero").await.err(), Some(486), "over the realm's user-quota");
        first.close().await.unwrap();
        second.close().await.unwrap();
    });
    let (status, log) = daemon.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert!(log.contains("user_quota=Some(2)"), "{log}");
}

/// (5) An unreachable database at start is logged (without its password) and the node serves with
/// what its own configuration gives. Needs no `redis-server`: nothing listens on the port.
#[test]
fn an_unreachable_userdb_at_start_is_logged_and_the_node_serves() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conninfo = format!("ip=127.0.0.1 port={port} dbname=2 password=hunter2-secret");
    let daemon = Daemon::start_loopback(&["--redis-userdb", &conninfo]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let client = tokio::time::timeout(STEP, TurnClient::allocate(daemon.udp[0], Credentials::new("u", "pw")))
            .await
            .expect("answer in time")
            .expect("the file's user allocates");
        client.create_permission(peer).await.unwrap();
        echo_through(&client, peer, b"no userdb").await;
        client.close().await.unwrap();
    });
    let (status, log) = daemon.stop_with("TERM");
    assert!(status.success(), "{log}");
    assert!(log.contains("cannot read coturn's user database"), "{log}");
    assert!(log.contains(&format!("redis://***@127.0.0.1:{port}/2")), "{log}");
    assert!(!log.contains("hunter2"), "the password shows in the log: {log}");
}
