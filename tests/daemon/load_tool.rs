//! `switchback-load alloc` against the daemon: with a static user it stops at the server's
//! per-user limits and names them (486) instead of "no answer from the server"; with the REST
//! secret a small run makes every allocation; `relay` reaches it over TLS (checking the
//! certificate it is given) and runs the call model at its fixed rate; `alloc --bucket` reports per
//! bucket. Everything on loopback, ports chosen by the OS.

use std::net::SocketAddr;
use std::process::{Command, Output};

use crate::support::{Daemon, PROCESS_TIMEOUT, TempFile, run_with_timeout};

/// The daemon's UDP listener as the load tool reaches it.
fn server(daemon: &Daemon) -> SocketAddr {
    let mut addr = *daemon.udp.first().expect("a UDP listener");
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    addr
}

/// Runs `switchback-load --quiet alloc --server SERVER ARGS` (bounded).
fn load_alloc(server: SocketAddr, args: &[&str]) -> (Output, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback-load"));
    cmd.args(["--quiet", "alloc", "--server", &server.to_string()]).args(args);
    let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// The value of `key` in the `result key=value …` line.
fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    let line = stdout.lines().rfind(|l| l.starts_with("result ")).unwrap_or_else(|| panic!("no result line: {stdout}"));
    let prefix = format!("{key}=");
    line.split_whitespace().find_map(|w| w.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key}: {line}"))
}

#[test]
fn a_static_user_over_its_quota_is_told_486_and_the_limit_to_raise() {
    let daemon = Daemon::start_loopback(&["--user-quota", "3"]);
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--user", "u:pw", "--count", "10"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(field(&stdout, "allocations"), "3", "{stderr}");
    assert_eq!(field(&stdout, "stopped"), "quota", "{stderr}");
    assert!(stderr.contains("stopped early at allocation 3 (3 held): user u: "), "{stderr}");
    assert!(stderr.contains("486 Allocation Quota Reached") && stderr.contains("user-quota"), "{stderr}");
    assert!(!stderr.contains("no answer"), "{stderr}");
}

#[test]
fn a_static_user_over_the_allocate_rate_limit_is_told_486() {
    let daemon = Daemon::start_loopback(&["--rate-limit-allocate", "2/s:2"]);
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--user", "u:pw", "--count", "20"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // A burst of 2, then 2 a second: 20 back-to-back allocations cannot all pass.
    let made: u32 = field(&stdout, "allocations").parse().expect("a count");
    assert!((2..20).contains(&made), "{made}: {stderr}");
    assert_eq!(field(&stdout, "stopped"), "quota", "{stderr}");
    assert!(stderr.contains("rate-limit-allocate") && !stderr.contains("no answer"), "{stderr}");
}

#[test]
fn rest_credentials_make_every_allocation_of_a_small_run() {
    let daemon = Daemon::start(&[
        "--realm",
        "r",
        "--static-auth-secret",
        "load-secret",
        "--listening-port",
        "0",
        "--no-tls",
        "--user-quota",
        "1",
    ]);
    // One REST user per allocation: a user-quota of 1 does not stop the run.
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--secret", "load-secret", "--count", "5"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(field(&stdout, "allocations"), "5", "{stderr}");
    assert_eq!(field(&stdout, "stopped"), "", "{stderr}");
    assert!(!stderr.contains("stopped early"), "{stderr}");

    // A wrong secret is named as such, not as silence.
    let (out, _, stderr) = load_alloc(server(&daemon), &["--secret", "wrong", "--count", "2"]);
    assert!(!out.status.success());
    assert!(stderr.contains("refused the credentials") && stderr.contains("static-auth-secret"), "{stderr}");
}

#[test]
fn alloc_without_credentials_or_with_both_is_refused_before_sending() {
    let server: SocketAddr = ([127, 0, 0, 1], 9).into();
    let (out, _, stderr) = load_alloc(server, &["--count", "1"]);
    assert!(!out.status.success() && stderr.contains("no credentials"), "{stderr}");
    let (out, _, stderr) = load_alloc(server, &["--secret", "s", "--user", "u:pw", "--count", "1"]);
    assert!(!out.status.success() && stderr.contains("not both"), "{stderr}");
}

#[test]
fn a_silent_server_is_named_unreachable_not_rate_limited() {
    // Bound and never read: every request goes unanswered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = silent.local_addr().expect("addr");
    let (out, _, stderr) = load_alloc(addr, &["--secret", "s", "--count", "3"]);
    assert!(!out.status.success());
    assert!(stderr.contains(&format!("no answer from the server at {addr}")), "{stderr}");
    assert!(!stderr.contains("rate-limit-unauth"), "{stderr}");
}

#[test]
fn rate_paces_a_static_user_under_the_allocate_rate_limit() {
    // One token, refilled every 200 ms: back to back one of five allocations gets 486; paced at
    // 2 a second (300 ms of margin) every one finds its token.
    // A daemon each: both runs start with a full bucket.
    let limit = ["--rate-limit-allocate", "5/s:1"];
    let daemon = Daemon::start_loopback(&limit);
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--user", "u:pw", "--count", "5"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(field(&stdout, "stopped"), "quota", "without --rate: {stderr}");
    let daemon = Daemon::start_loopback(&limit);
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--user", "u:pw", "--count", "4", "--rate", "2"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!((field(&stdout, "allocations"), field(&stdout, "stopped")), ("4", ""), "{stderr}");
    let seconds: f64 = field(&stdout, "seconds").parse().expect("seconds");
    assert!(seconds >= 1.4, "4 allocations at 2/s took {seconds} s");
}

#[test]
fn max_time_ends_a_slow_run_and_says_so() {
    let daemon = Daemon::start_loopback(&[]);
    let args = ["--user", "u:pw", "--count", "100", "--rate", "1", "--max-time", "1"];
    let (out, stdout, stderr) = load_alloc(server(&daemon), &args);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(field(&stdout, "stopped"), "time", "{stderr}");
    let made: u32 = field(&stdout, "allocations").parse().expect("a count");
    assert!((1..=2).contains(&made), "{made}: {stderr}");
    assert!(stderr.contains("--max-time"), "{stderr}");
}

#[test]
fn relay_with_a_static_user_relays_through_the_daemon() {
    let daemon = Daemon::start_loopback(&[]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback-load"));
    let server = server(&daemon).to_string();
    cmd.args(["--quiet", "relay", "--server", &server, "--user", "u:pw", "--allocations", "2", "--window", "2"]);
    cmd.args(["--warmup", "0.2", "--duration", "0.5"]);
    let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let msgs: u64 = field(&stdout, "msgs").parse().expect("a count");
    assert!(msgs > 0, "{stdout}\n{stderr}");
}

/// Runs `switchback-load --quiet relay --server SERVER --user u:pw ARGS` (bounded).
fn load_relay(server: SocketAddr, args: &[&str]) -> (Output, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback-load"));
    cmd.args(["--quiet", "relay", "--server", &server.to_string(), "--user", "u:pw"]).args(args);
    let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

/// A self-signed certificate for 127.0.0.1 as PEM files: (certificate, key).
fn certificate(name: &str) -> (TempFile, TempFile) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("a certificate");
    (
        TempFile::new(&format!("{name}-cert.pem"), &cert.pem()),
        TempFile::new(&format!("{name}-key.pem"), &signing_key.serialize_pem()),
    )
}

#[test]
fn relay_over_tls_relays_and_checks_the_certificate_it_is_given() {
    let (cert, key) = certificate("load-tls");
    let daemon = Daemon::start(&[
        "--realm",
        "r",
        "--user",
        "u:pw",
        "--allow-loopback-peers",
        "--listening-port",
        "0",
        "--cert",
        cert.as_str(),
        "--pkey",
        key.as_str(),
    ]);
    let mut tls = *daemon.tls.first().expect("a TLS listener");
    if tls.ip().is_unspecified() {
        tls.set_ip([127, 0, 0, 1].into());
    }
    let short = ["--allocations", "2", "--window", "2", "--warmup", "0.2", "--duration", "0.5"];
    // The server's own certificate, and any certificate: both relay.
    for trust in [&["--tls", "--tls-cert", cert.as_str()][..], &["--tls"][..]] {
        let (out, stdout, stderr) = load_relay(tls, &[trust, &short[..]].concat());
        assert!(out.status.success(), "{trust:?}: {stdout}\n{stderr}");
        let msgs: u64 = field(&stdout, "msgs").parse().expect("a count");
        assert!(msgs > 0 && field(&stdout, "loss_pct") == "0.0000", "{trust:?}: {stdout}\n{stderr}");
    }
    // Another certificate than the server's: the handshake fails.
    let (other, _other_key) = certificate("load-tls-other");
    let (out, stdout, stderr) = load_relay(tls, &[&["--tls", "--tls-cert", other.as_str()][..], &short[..]].concat());
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}

#[test]
fn the_call_model_sends_at_its_fixed_rate_and_reports_latency_and_jitter() {
    let daemon = Daemon::start_loopback(&[]);
    // 4 allocations × 50 messages a second for 1 s measured: 200 messages, none lost.
    let args = ["--call", "--allocations", "4", "--warmup", "0.3", "--duration", "1"];
    let (out, stdout, stderr) = load_relay(server(&daemon), &args);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let sent: u64 = field(&stdout, "sent").parse().expect("a count");
    assert!((180..=220).contains(&sent), "{sent} sent: {stdout}\n{stderr}");
    assert_eq!(field(&stdout, "msgs"), sent.to_string(), "every message came back: {stdout}");
    let p50: f64 = field(&stdout, "rtt_p50_us").parse().expect("p50");
    let p999: f64 = field(&stdout, "rtt_p999_us").parse().expect("p999");
    assert!(p50 > 0.0 && p999 >= p50, "{stdout}");
    let jitter: f64 = field(&stdout, "jitter_us").parse().expect("jitter");
    assert!(jitter.is_finite() && jitter >= 0.0, "{stdout}");
    // Twice the rate, twice the messages.
    let args = ["--call", "--pps", "100", "--allocations", "4", "--warmup", "0.3", "--duration", "1"];
    let (out, stdout, stderr) = load_relay(server(&daemon), &args);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let sent: u64 = field(&stdout, "sent").parse().expect("a count");
    assert!((370..=430).contains(&sent), "{sent} sent at 100 pps: {stdout}\n{stderr}");
}

#[test]
fn alloc_buckets_cover_the_run_in_order() {
    let daemon = Daemon::start_loopback(&["--user-quota", "0", "--rate-limit-allocate", "0"]);
    let (out, stdout, stderr) = load_alloc(server(&daemon), &["--user", "u:pw", "--count", "6", "--bucket", "2"]);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let buckets: Vec<&str> = stdout.lines().filter(|l| l.starts_with("bucket ")).collect();
    assert_eq!(buckets.len(), 3, "{stdout}");
    for (b, (from, to)) in buckets.iter().zip([(1, 2), (3, 4), (5, 6)]) {
        assert!(b.starts_with(&format!("bucket from={from} to={to} ")), "{b}");
        assert!(b.contains("allocs_per_s="), "{b}");
    }
}
