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
