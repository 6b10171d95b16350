//! Session logs and usage records (`usage-file`): a relay session leaves a create and a delete line
//! with the same allocation id and one usage record whose byte counts are what the client relayed;
//! a wrong password leaves one auth-failure line with its reason; SIGUSR1 reopens the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Daemon, http_request, udp_echo_peer};
use switchback::client::turn::{Credentials, TurnClient};

const STEP: Duration = Duration::from_secs(5);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("switchback-{name}-{}-{:?}", std::process::id(), Instant::now()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON lines of `path` once it has at least `count` of them (bounded wait: the writer thread
/// flushes when its queue runs empty).
fn records(path: &Path, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} has {} records, waiting for {count}: {text}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Allocates as `u:pw`, echoes `messages` payloads of 100 bytes through a loopback peer and deletes
/// the allocation; returns the bytes the client got back and its relayed address.
fn relay_session(daemon: &Daemon, messages: u8) -> (u64, std::net::SocketAddr) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let client = tokio::time::timeout(STEP, TurnClient::allocate(daemon.udp[0], Credentials::new("u", "pw")))
            .await
            .unwrap()
            .unwrap();
        let relayed = client.relayed_addr();
        client.create_permission(peer).await.unwrap();
        let mut received = 0u64;
        for i in 0..messages {
            // A send the fresh relay socket refuses is sent again (see metrics.rs).
            for _attempt in 0..5 {
                client.send_to(&[i; 100], peer).await.unwrap();
                let mut buf = [0u8; 200];
                if let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await {
                    received += n as u64;
                    break;
                }
            }
        }
        client.close().await.unwrap();
        (received, relayed)
    })
}

#[test]
fn a_session_leaves_two_log_lines_and_one_usage_record_with_what_was_relayed() {
    let dir = temp_dir("usage");
    let path = dir.join("usage.jsonl");
    let daemon = Daemon::start_loopback(&["--usage-file", path.to_str().unwrap(), "--node-id", "node-a"]);
    let (received, relayed) = relay_session(&daemon, 5);
    assert_eq!(received, 500);

    let record = records(&path, 1).remove(0);
    assert_eq!(record["type"], "final", "{record}");
    assert_eq!(record["node"], "node-a");
    assert_eq!(record["user"], "u");
    assert_eq!(record["realm"], "r");
    assert_eq!(record["auth"], "static");
    assert_eq!(record["transport"], "udp");
    assert_eq!(record["reason"], "client");
    assert_eq!(record["relayed"], serde_json::json!([relayed.to_string()]));
    // Payload bytes, as the client sent and received them (TURN framing not counted).
    assert_eq!(record["to_client_bytes"].as_u64(), Some(received), "{record}");
    assert_eq!(record["to_client_packets"].as_u64(), Some(5), "{record}");
    let to_peer = record["to_peer_packets"].as_u64().unwrap();
    assert!(to_peer >= 5, "{record}");
    assert_eq!(record["to_peer_bytes"].as_u64(), Some(100 * to_peer), "{record}");
    // The session lasted a few seconds at most, and the record's end is after its start (RFC 3339
    // strings of one format compare as times).
    let duration = record["duration_secs"].as_f64().unwrap();
    assert!(duration > 0.0 && duration < 60.0, "{record}");
    assert!(record["end"].as_str().unwrap() > record["start"].as_str().unwrap(), "{record}");
    assert!(record["start"].as_str().unwrap().ends_with('Z'));
    let id = record["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);

    // The session log: created and deleted, the same id, the usage on the deletion.
    daemon.wait_for_log("allocation deleted", 1);
    let log = daemon.log();
    let created: Vec<&str> = log.lines().filter(|l| l.contains("allocation created")).collect();
    let deleted: Vec<&str> = log.lines().filter(|l| l.contains("allocation deleted")).collect();
    assert_eq!((created.len(), deleted.len()), (1, 1), "{log}");
    for line in [created[0], deleted[0]] {
        assert!(line.contains(&format!("id={id}")) && line.contains("user=\"u\""), "{line}");
        assert!(line.contains(&relayed.to_string()), "{line}");
    }
    assert!(deleted[0].contains("to_client_bytes=500") && deleted[0].contains("reason=\"client\""), "{}", deleted[0]);

    // logrotate: the file moves, SIGUSR1, and the next record goes to a new file.
    std::fs::rename(&path, dir.join("usage.jsonl.1")).unwrap();
    daemon.guard.signal("USR1");
    daemon.wait_for_log("SIGUSR1: reopening", 1);
    relay_session(&daemon, 1);
    let next = records(&path, 1);
    assert_eq!(next[0]["to_client_bytes"].as_u64(), Some(100), "{:?}", next);
    assert_eq!(records(&dir.join("usage.jsonl.1"), 1).len(), 1);
    let (status, _) = daemon.stop_with("TERM");
    assert!(status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn live_allocations_get_interim_records_and_shutdown_ends_them() {
    let dir = temp_dir("interim");
    let path = dir.join("usage.jsonl");
    let daemon = Daemon::start_loopback(&["--usage-file", path.to_str().unwrap(), "--usage-interval", "1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        tokio::time::timeout(STEP, TurnClient::allocate(daemon.udp[0], Credentials::new("u", "pw")))
            .await
            .unwrap()
            .unwrap()
    });
    let interim = records(&path, 1).remove(0);
    assert_eq!(interim["type"], "interim", "{interim}");
    assert_eq!(interim["reason"], Value::Null);
    assert!(interim["node"].as_str().unwrap().contains(&daemon.udp[0].to_string()), "default node id: {interim}");
    // SIGINT shuts down at once: the live allocation ends with reason "shutdown", and its record
    // is written before the process exits.
    let (status, _) = daemon.stop_with("INT");
    assert!(status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!((last["type"].as_str(), last["reason"].as_str()), (Some("final"), Some("shutdown")), "{text}");
    assert_eq!(last["id"], interim["id"]);
    drop(client);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_wrong_password_is_one_rate_limited_log_line_and_one_failure() {
    let daemon = Daemon::start_loopback(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let err = rt.block_on(async {
        tokio::time::timeout(STEP, TurnClient::allocate(daemon.udp[0], Credentials::new("u", "wrong"))).await.unwrap()
    });
    assert!(err.is_err());
    daemon.wait_for_log("authentication failed", 1);
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("authentication failed")).collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("reason=bad_integrity") && lines[0].contains("username=\"u\""), "{}", lines[0]);
    let metrics = http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("switchback_auth_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(failures, 1.0, "{metrics}");
    assert!(metrics.contains(r#"switchback_auth_failures_total{reason="bad_integrity"} 1"#), "{metrics}");
    let (status, _) = daemon.stop_with("INT");
    assert!(status.success());
}

/// coturn's client through the daemon: each of its allocations leaves a create and a delete line
/// and one usage record, and the records add up to what uclient says it sent and received.
#[test]
fn a_uclient_run_leaves_log_lines_and_records_that_add_up_to_its_totals() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let dir = temp_dir("uclient-usage");
    let path = dir.join("usage.jsonl");
    let daemon = Daemon::start_loopback(&["--usage-file", path.to_str().unwrap()]);
    let peer = crate::support::EchoPeer::start();
    let mut cmd = std::process::Command::new("turnutils_uclient");
    let port = daemon.udp[0].port().to_string();
    let peer_port = peer.port.to_string();
    cmd.args(["-u", "u", "-w", "pw", "-e", "127.0.0.1", "-r", &peer_port, "-n", "20", "-m", "1", "-l", "100"]).args([
        "-p",
        &port,
        "127.0.0.1",
    ]);
    let output = crate::support::run_with_timeout(&mut cmd, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let totals = crate::support::totals(&stdout).unwrap_or_else(|| panic!("no totals: {stdout}"));
    // 20 messages per session; uclient runs two sessions per client (`msz=2`).
    assert!(totals.sent >= 20 && totals.received == totals.sent && totals.lost == 0, "{stdout}");
    // uclient leaves its allocations to expire: SIGINT ends them, and their records are written.
    let (status, log) = daemon.stop_with("INT");
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(&path).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!records.is_empty(), "{log}");
    let sum = |field: &str| records.iter().map(|r| r[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("to_peer_bytes"), 100 * totals.sent, "{text}");
    assert_eq!(sum("to_client_bytes"), 100 * totals.received, "{text}");
    for record in &records {
        let id = record["id"].as_str().unwrap();
        let lines = |what: &str| log.lines().filter(|l| l.contains(what) && l.contains(&format!("id={id}"))).count();
        assert_eq!((lines("allocation created"), lines("allocation deleted")), (1, 1), "{id}: {log}");
        assert_eq!(record["user"], "u");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `log-file`: the log goes to the file, not stderr, and after logrotate moved it SIGUSR1 makes
/// the daemon write to a new file under the same name.
#[test]
fn log_file_takes_the_log_and_is_reopened_after_a_move() {
    let dir = temp_dir("log-file");
    let path = dir.join("switchback.log");
    let daemon = Daemon::start_loopback(&["--log-file", path.to_str().unwrap()]);
    let wait_for = |path: &Path, needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(path).unwrap_or_default().contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {}", path.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(&path, "TURN on (UDP)");
    std::fs::rename(&path, dir.join("switchback.log.1")).unwrap();
    daemon.guard.signal("USR1");
    wait_for(&path, "SIGUSR1: reopening");
    let (status, stderr) = daemon.stop_with("INT");
    assert!(status.success());
    assert!(!stderr.contains("TURN on") && !stderr.contains("stopped"), "the log went to stderr: {stderr}");
    let rotated = std::fs::read_to_string(dir.join("switchback.log.1")).unwrap();
    assert!(rotated.contains("TURN on (UDP)") && !rotated.contains("SIGUSR1"), "{rotated}");
    wait_for(&path, "stopped");
    std::fs::remove_dir_all(&dir).unwrap();
}
