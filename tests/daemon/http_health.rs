//! The metrics face's health endpoints on the daemon: `/healthz`, `/readyz`, JSON 404s, and the
//! faces that are off stay off.

use crate::support::{Daemon, http_request};

#[test]
fn health_endpoints_answer_on_metrics_listen() {
    let daemon = Daemon::start(&["--listening-port", "0", "--no-tls", "--metrics-listen", "127.0.0.1:0"]);
    let addr = daemon.http_addr("metrics");
    let health = http_request(addr, "GET", "/healthz", &[], "");
    assert_eq!((health.status, health.body.trim()), (200, "ok"));
    let ready = http_request(addr, "GET", "/readyz", &[], "");
    assert_eq!((ready.status, ready.body.trim()), (200, "ready"));
    let missing = http_request(addr, "GET", "/v1/tokens", &[], "");
    assert_eq!(missing.status, 404, "the metrics face does not serve the token API");
    assert_eq!(missing.json()["error"]["code"], "not_found");
    let (status, _) = daemon.stop_with("TERM");
    assert!(status.success());
}

#[test]
fn no_http_listener_unless_asked() {
    let daemon = Daemon::start(&["--listening-port", "0", "--no-tls"]);
    assert!(daemon.http.is_empty(), "{:?}", daemon.banner);
    let (status, _) = daemon.stop_with("TERM");
    assert!(status.success());
}

/// Slowloris on the metrics face: 300 connections that send half a request head and stall. The
/// face stays bounded (most are closed at once by its per-source cap, the rest at the 10 s header
/// timeout), `/healthz` from another source is answered, and TURN keeps allocating throughout.
#[test]
fn half_open_http_requests_are_closed_while_turn_keeps_allocating() {
    use std::io::{Read as _, Write as _};
    use std::time::{Duration, Instant};
    use switchback::client::turn::{Credentials, TurnClient};
    let daemon = Daemon::start_loopback(&[]);
    let metrics = daemon.http_addr("metrics");
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(metrics).unwrap();
        let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n");
        stalled.push(s);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let turn = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), TurnClient::allocate(daemon.udp[0], Credentials::new("u", "pw")))
            .await
    });
    assert!(turn.is_ok_and(|r| r.is_ok()), "TURN allocates while the HTTP face is flooded");
    let started = Instant::now();
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"), "{n} bytes"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(14), "every half-open request closed within the timeout");
    // SIGINT: the allocation made above would hold a SIGTERM drain.
    let (status, _) = daemon.stop_with("INT");
    assert!(status.success());
}
