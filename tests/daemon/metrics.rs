//! `/metrics` on the daemon: the counters move as traffic flows (scraped before and after a relay
//! exchange), and every metric the Grafana dashboard queries exists.

use std::time::Duration;

use crate::support::{Daemon, http_request, poll_until, udp_echo_peer};
use switchback::client::turn::{ClientOptions, Credentials, TcpAllocation, TurnClient, TurnTransport};

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
    let udp_ipv4 = r#"switchback_allocations{transport="udp",family="ipv4",relay="udp"}"#;
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

/// The standard process series (Linux) and the build info, read from a running daemon.
fn check_process_and_build(text: &str) {
    let version = format!(r#"switchback_build_info{{version="{}",features=""#, env!("CARGO_PKG_VERSION"));
    assert!(text.lines().any(|l| l.starts_with(&version) && l.ends_with(" 1")), "{text}");
    if !cfg!(target_os = "linux") {
        assert!(!text.contains("process_open_fds"), "{text}");
        return;
    }
    let value = |series: &str| sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    let (open, max) = (value("process_open_fds"), value("process_max_fds"));
    assert!(open > 0.0 && open <= max, "{open} fds open of {max}");
    assert!(value("process_resident_memory_bytes") > 1e6, "{text}");
    assert!(value("process_cpu_seconds_total") >= 0.0, "{text}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 600.0, "started {started}, now {now}");
}

/// Relay ports, client connections by state, the allocation histograms and the process series
/// move with what they count: a UDP allocation holds a relay port until it is deleted, and is
/// then observed once; a TCP connection is unauthenticated until its RFC 6062 allocation.
#[test]
fn relay_ports_connection_states_and_allocation_histograms_move() {
    let daemon = Daemon::start_loopback(&[]);
    let (udp, tcp) = (daemon.udp[0], daemon.tcp[0]);
    let in_use = format!(r#"switchback_relay_ports{{relay="{}",state="in_use"}}"#, udp.ip());
    let free = format!(r#"switchback_relay_ports{{relay="{}",state="free"}}"#, udp.ip());
    let durations = "switchback_allocation_duration_seconds_count";
    let durations_inf = r#"switchback_allocation_duration_seconds_bucket{le="+Inf"}"#;
    let to_peer_bytes = r#"switchback_allocation_bytes_count{direction="to_peer"}"#;
    let unauthenticated = r#"switchback_client_connections{transport="tcp",state="unauthenticated"}"#;
    let authenticated = r#"switchback_client_connections{transport="tcp",state="authenticated"}"#;
    let tcp_relays = r#"switchback_allocations{transport="tcp",family="ipv4",relay="tcp"}"#;
    let value = |text: &str, series: &str| sample(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
    // Scrapes until `series` reads `want`: the scrape that did.
    let until = |series: &str, want: f64| -> String {
        let mut last = String::new();
        poll_until(&format!("{series} = {want}"), Duration::from_secs(5), || {
            last = scrape(&daemon);
            (sample(&last, series) == Some(want)).then(|| last.clone())
        })
    };
    let before = scrape(&daemon);
    check_process_and_build(&before);
    assert!(value(&before, r#"switchback_http_connections{face="metrics"}"#) >= 1.0, "the scrape itself");
    assert_eq!(value(&before, r#"switchback_http_connections{face="admin"}"#), 0.0);
    assert_eq!(value(&before, &in_use), 0.0);
    let range = value(&before, &free);
    assert!(range >= 1.0, "{before}");
    assert_eq!(value(&before, durations), 0.0);
    assert_eq!(value(&before, unauthenticated), 0.0);
    assert_eq!(value(&before, r#"switchback_dropped_packets_total{reason="client_queue_full"}"#), 0.0);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let step = Duration::from_secs(5);
    let creds = || Credentials::new("u", "pw");
    let client = rt.block_on(async { tokio::time::timeout(step, TurnClient::allocate(udp, creds())).await });
    let during = until(&in_use, 1.0);
    assert_eq!(value(&during, &free), range - 1.0);
    assert_eq!(value(&during, durations), 0.0);
    rt.block_on(async { client.unwrap().unwrap().close().await.unwrap() });
    let after = until(&in_use, 0.0);
    assert_eq!(value(&after, &free), range);
    assert_eq!((value(&after, durations), value(&after, durations_inf)), (1.0, 1.0), "{after}");
    assert_eq!(value(&after, to_peer_bytes), 1.0, "{after}");

    // A connection that has not allocated yet, then an RFC 6062 TCP allocation beside it.
    let raw = std::net::TcpStream::connect(tcp).unwrap();
    until(unauthenticated, 1.0);
    let options = ClientOptions::default().with(|o| o.transport = TurnTransport::Tcp);
    let allocation =
        rt.block_on(async { tokio::time::timeout(step, TcpAllocation::allocate(tcp, creds(), options)).await });
    let during = until(authenticated, 1.0);
    assert_eq!(value(&during, unauthenticated), 1.0, "the raw connection still is: {during}");
    assert_eq!(value(&during, tcp_relays), 1.0, "{during}");
    assert_eq!(value(&during, &in_use), 1.0, "{during}");
    drop(raw);
    until(unauthenticated, 0.0);
    rt.block_on(async { allocation.unwrap().unwrap().close().await.unwrap() });
    let after = until(authenticated, 0.0);
    assert_eq!(value(&after, durations), 2.0, "{after}");
    assert_eq!(value(&after, tcp_relays), 0.0, "{after}");
    assert_eq!(value(&after, &in_use), 0.0, "{after}");

    let (status, err) = daemon.stop_with("TERM");
    assert!(status.success(), "{err}");
}

/// The metric names a PromQL expression uses: identifiers starting with `switchback_` or
/// `process_` (the standard process series), with the histogram and counter suffixes as exposed.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["switchback_", "process_"] {
        let mut rest = expr;
        while let Some(i) = rest.find(prefix) {
            let starts_word = !rest[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
            if starts_word {
                names.push(tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
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
    // The panels operators asked for: challenges beside failures, process resources, relay ports,
    // allocation lifetimes.
    let queried: Vec<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for wanted in [
        "switchback_auth_challenges_total",
        "switchback_auth_failures_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "switchback_relay_ports",
        "switchback_allocation_duration_seconds_bucket",
    ] {
        assert!(queried.iter().any(|q| q == wanted), "no panel queries {wanted}");
    }
    let daemon = Daemon::start_loopback(&[]);
    let text = scrape(&daemon);
    let exposed: Vec<&str> =
        text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split(['{', ' ']).next()).collect();
    for expr in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no switchback metric in {expr}");
        for name in names {
            // The process series are read from /proc: Linux only.
            if name.starts_with("process_") && !cfg!(target_os = "linux") {
                continue;
            }
            assert!(exposed.contains(&name.as_str()), "{name} (in {expr}) is not in /metrics:\n{text}");
        }
    }
    let (status, err) = daemon.stop_with("TERM");
    assert!(status.success(), "{err}");
}
