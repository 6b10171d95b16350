//! `/metrics` on the daemon: the counters move as traffic flows (scraped before and after a relay
//! exchange), and every metric the Grafana dashboard queries exists.

use std::time::Duration;

use crate::support::{Daemon, http_request, udp_echo_peer};
use switchback::client::turn::{Credentials, TurnClient};

/// The value of the sample `series` (name with labels, exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

fn scrape(daemon: &Daemon) -> String {
    let r = http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").is_some_and(|t| t.contains("openmetrics-text")), "{:?}", r.headers);
    r.body
}

#[test]
fn counters_move_when_traffic_is_relayed() {
    let daemon = Daemon::start_loopback(&[]);
    let before = scrape(&daemon);
    let to_peer = r#"switchback_relayed_packets_total{direction="to_peer"}"#;
    let to_client_bytes = r#"switchback_relayed_bytes_total{direction="to_client"}"#;
    let udp_ipv4 = r#"switchback_allocations{transport="udp",family="ipv4"}"#;
    let allocate_count = r#"switchback_request_duration_seconds_count{method="Allocate"}"#;
    let challenges = r#"switchback_auth_challenges_total{kind="no_credentials"}"#;
    let failures = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("switchback_auth_failures_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sample(&before, to_peer), Some(0.0), "{before}");
    assert_eq!(sample(&before, udp_ipv4), Some(0.0), "{before}");
    assert_eq!(sample(&before, allocate_count), Some(0.0), "{before}");
    for reason in ["idle", "invalid", "unauthenticated", "duplicate"] {
        let closed = format!(r#"switchback_client_connections_closed_total{{reason="{reason}"}}"#);
        assert_eq!(sample(&before, &closed), Some(0.0), "{before}");
    }
    assert!(before.contains("# EOF"), "OpenMetrics ends with # EOF");

    let udp = daemon.udp[0];
    let metrics_addr = daemon.http_addr("metrics");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let step = Duration::from_secs(5);
    // Five echoes through the relay. A send the relay socket refuses (counted as `socket_full`:
    // a tokio socket may not report itself writable right after it is made) is sent again.
    let (client, sends) = rt.block_on(async {
        let (peer, _echo) = udp_echo_peer().await;
        let client =
            tokio::time::timeout(step, TurnClient::allocate(udp, Credentials::new("u", "pw"))).await.unwrap().unwrap();
        client.create_permission(peer).await.unwrap();
        let mut sends = 0;
        for i in 0..5u8 {
            let message = [i; 100];
            let mut echoed = false;
            for _attempt in 0..5 {
                sends += 1;
                client.send_to(&message, peer).await.unwrap();
                let mut buf = [0u8; 200];
                if let Ok(received) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await {
                    let (n, from) = received.unwrap();
                    assert_eq!((&buf[..n], from), (&message[..], peer));
                    echoed = true;
                    break;
                }
            }
            if !echoed {
                let metrics = http_request(metrics_addr, "GET", "/metrics", &[], "").body;
                panic!("no echo for message {i}; metrics:\n{metrics}");
            }
        }
        (client, sends)
    });
    let socket_full = r#"switchback_dropped_packets_total{reason="socket_full"}"#;
    let during = scrape(&daemon);
    assert_eq!(sample(&during, to_peer), Some(5.0), "{during}");
    assert_eq!(sample(&during, socket_full), Some(f64::from(sends - 5)), "{during}");
    assert_eq!(sample(&during, to_client_bytes), Some(500.0), "{during}");
    assert_eq!(sample(&during, udp_ipv4), Some(1.0), "{during}");
    assert_eq!(sample(&during, "switchback_permissions"), Some(1.0), "{during}");
    assert_eq!(sample(&during, "switchback_allocations_created_total"), Some(1.0), "{during}");
    // The 401 dance, then the signed Allocate: both timed.
    assert!(sample(&during, allocate_count).unwrap() >= 2.0, "{during}");
    // The UDP workers' counters: at least the Allocates and the five Send indications were read.
    let received = "switchback_udp_datagrams_received_total";
    assert!(sample(&during, received).unwrap() >= sample(&before, received).unwrap() + 7.0, "{during}");
    // A normal login is a challenge and a success: no failure counter moves.
    assert!(sample(&during, challenges).unwrap() >= 1.0, "{during}");
    assert_eq!(failures(&during), 0.0, "{during}");
    assert!(during.contains(r#"switchback_auth_failures_total{reason="bad_integrity"} 0"#), "{during}");

    // Deleted allocations keep their bytes in the totals.
    rt.block_on(async { client.close().await.unwrap() });
    let after = scrape(&daemon);
    assert_eq!(sample(&after, udp_ipv4), Some(0.0), "{after}");
    assert_eq!(sample(&after, to_peer), Some(5.0), "{after}");
    assert_eq!(sample(&after, to_client_bytes), Some(500.0), "{after}");
    assert_eq!(sample(&after, "switchback_allocations_deleted_total"), Some(1.0), "{after}");

    let (status, err) = daemon.stop_with("TERM");
    assert!(status.success(), "{err}");
}

/// The metric names a PromQL expression uses: identifiers starting with `switchback_`, with the
/// histogram and counter suffixes as exposed.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("switchback_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_metric_the_grafana_dashboard_queries_exists() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/grafana/switchback.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() >= 8, "the dashboard queries {} expressions", exprs.len());
    let daemon = Daemon::start_loopback(&[]);
    let text = scrape(&daemon);
    let exposed: Vec<&str> =
        text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no switchback metric in {expr}");
        for name in names {
            assert!(exposed.contains(&name.as_str()), "{name} (in {expr}) is not in /metrics:\n{text}");
        }
    }
    let (status, err) = daemon.stop_with("TERM");
    assert!(status.success(), "{err}");
}
