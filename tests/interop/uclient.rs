//! Interop with coturn's test client: `turnutils_uclient` against an in-process switchback, with
//! `turnutils_peer` as the UDP echo peer (Debian package `coturn`). Channels and Send indications,
//! REST (`-W`) and static (`-u/-w`) credentials; RFC 8016 mobility (`-M` moves each allocation to a
//! new socket); a wrong secret must fail. Also, over the socket: a
//! `strict_rfc8656` server answers 400 to the RFC 5766 channel numbers uclient picks.
#![cfg(feature = "runtime")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::{EchoPeer, RawTurn, TURN_SECRET, TURN_USER, Totals, TurnFixture, run_with_timeout, totals};
use switchback::proto::stun::{ChannelNumber, Method, RequestedTransport, XorPeerAddress, codes};
use switchback::server::{ServerOptions, Transport};

/// uclient's own run takes about a second with these sizes; this bounds a hung one.
const UCLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// What uclient reported.
#[derive(Debug)]
struct Report {
    success: bool,
    stdout: String,
    /// Shown when an assertion prints the report.
    #[allow(dead_code)]
    stderr: String,
}

/// Runs `turnutils_uclient ARGS 127.0.0.1` against `server` (on a blocking thread, so the in-process
/// server keeps running), with [`UCLIENT_TIMEOUT`].
async fn uclient(server: SocketAddr, args: &[&str]) -> Report {
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(args).args(["-p", &server.port().to_string()]).arg(server.ip().to_string());
    let output =
        tokio::task::spawn_blocking(move || run_with_timeout(&mut cmd, UCLIENT_TIMEOUT)).await.expect("uclient thread");
    Report {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn parses_uclient_totals() {
    let out = "6: : start_mclient: msz=2, tot_send_msgs=86, tot_recv_msgs=85, tot_send_bytes ~ 8600, tot_recv_bytes ~ 8500\n\
               0: : channel bind sent\n\
               6: : start_mclient: tot_send_msgs=100, tot_recv_msgs=99\n\
               6: : start_mclient: tot_send_bytes ~ 10000, tot_recv_bytes ~ 10000\n\
               6: : Total lost packets 1 (1.000000%), total send dropped 0 (0.000000%)\n";
    let t = totals(out).unwrap();
    assert_eq!(t, Totals { sent: 100, received: 99, lost: 1, send_dropped: 0, channel_binds: 1 });
    assert_eq!(totals("0: : ERROR: Cannot complete Allocation\n"), None);
}

/// Messages per uclient client and clients per run.
const MESSAGES: u64 = 50;
const CLIENTS: u64 = 2;

/// Runs uclient with `credentials` (and `-s` when `send_indications`) through a fresh in-process
/// server to a `turnutils_peer` and checks a clean run: exit 0, every message sent and echoed, 0 lost,
/// the mode it was asked for, and the server's counters agreeing.
async fn clean_run(credentials: &[&str], send_indications: bool) {
    clean_run_over(credentials, send_indications, Transport::Udp).await;
}

/// [`clean_run`] with the client leg over `transport`: TCP is `-t`, TLS `-t -S` (`-S` alone would
/// be DTLS); the relay leg stays UDP. uclient does not check the server's certificate.
async fn clean_run_over(credentials: &[&str], send_indications: bool, transport: Transport) {
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let fixture = match transport {
        Transport::Tls => TurnFixture::start_tls(options, switchback::io::Limits::default()).await,
        _ => TurnFixture::start(options).await,
    };
    let peer = EchoPeer::start();
    let port = peer.port.to_string();
    let (n, m) = (MESSAGES.to_string(), CLIENTS.to_string());
    let mut args = vec!["-v", "-e", "127.0.0.1", "-r", &port, "-n", &n, "-m", &m, "-l", "100"];
    args.extend_from_slice(credentials);
    if send_indications {
        args.push("-s");
    }
    let server = match transport {
        Transport::Udp => fixture.udp,
        Transport::Tcp => {
            args.push("-t");
            fixture.running.local_addr(Transport::Tcp).expect("a TCP listener")
        }
        Transport::Tls => {
            args.extend(["-t", "-S"]);
            fixture.tls_addr()
        }
    };
    let report = uclient(server, &args).await;
    assert!(report.success, "uclient failed: {report:#?}");
    let t = totals(&report.stdout).unwrap_or_else(|| panic!("no totals in uclient's output: {report:#?}"));
    let expected = MESSAGES * CLIENTS;
    assert_eq!((t.sent, t.received), (expected, expected), "{report:#?}");
    assert_eq!((t.lost, t.send_dropped), (0, 0), "{report:#?}");
    if send_indications {
        assert_eq!(t.channel_binds, 0, "-s must not bind channels: {report:#?}");
    } else {
        assert!(t.channel_binds > 0, "no ChannelBind in channel mode: {report:#?}");
    }
    let stats = fixture.stats();
    assert!(stats.allocations_created >= CLIENTS, "{stats:?}");
    if transport == Transport::Tls {
        // uclient first probes each TLS version it knows with a connection of its own: its TLS 1.0
        // and 1.1 probes fail (rustls speaks 1.2 and 1.3 only), the rest succeed.
        let io = fixture.running.io_stats();
        assert!(io.tls_handshakes >= CLIENTS, "{io:?}");
    }
    assert!(stats.relayed_to_peer >= expected && stats.relayed_to_client >= expected, "{stats:?}");
    // Nothing uclient sent was malformed or refused (late data after its Refresh 0 could be
    // dropped for want of an allocation, which says nothing about interop).
    let refused = stats.dropped() - stats.dropped_no_allocation;
    assert_eq!(refused, 0, "{stats:?}");
}

/// A run that must fail: uclient cannot allocate, nothing is relayed.
async fn failed_run(credentials: &[&str]) {
    let fixture = TurnFixture::loopback().await;
    let peer = EchoPeer::start();
    let port = peer.port.to_string();
    let mut args = vec!["-e", "127.0.0.1", "-r", &port, "-n", "5", "-m", "1", "-l", "100"];
    args.extend_from_slice(credentials);
    let report = uclient(fixture.udp, &args).await;
    assert!(!report.success, "uclient succeeded with wrong credentials: {report:#?}");
    assert!(report.stdout.contains("Cannot complete Allocation"), "{report:#?}");
    if let Some(t) = totals(&report.stdout) {
        assert_eq!(t.received, 0, "{report:#?}");
    }
    let stats = fixture.stats();
    assert_eq!(stats.allocations_created, 0, "{stats:?}");
    assert_eq!(stats.relayed_to_client, 0, "{stats:?}");
    assert!(stats.auth_failures > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_channels_rest_secret() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run(&["-W", TURN_SECRET, "-u", "bob"], false).await;
    }
}

/// `-W` without `-u`: uclient sends the REST username `"<expiry>"` alone, which coturn accepts
/// (the user part is empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_rest_secret_without_a_user() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run(&["-W", TURN_SECRET], false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_channels_static_user() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run(&["-u", TURN_USER.0, "-w", TURN_USER.1], false).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_send_indications_rest_secret() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run(&["-W", TURN_SECRET, "-u", "bob"], true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_send_indications_static_user() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run(&["-u", TURN_USER.0, "-w", TURN_USER.1], true).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_over_tcp_channels_rest_secret() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run_over(&["-W", TURN_SECRET, "-u", "bob"], false, Transport::Tcp).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_over_tcp_send_indications_static_user() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run_over(&["-u", TURN_USER.0, "-w", TURN_USER.1], true, Transport::Tcp).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_over_tls_channels_rest_secret() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run_over(&["-W", TURN_SECRET, "-u", "bob"], false, Transport::Tls).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_over_tls_send_indications_static_user() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        clean_run_over(&["-u", TURN_USER.0, "-w", TURN_USER.1], true, Transport::Tls).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_fails_with_a_wrong_secret() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        failed_run(&["-W", "not-the-secret", "-u", "bob"]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_fails_with_a_wrong_password() {
    if crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        failed_run(&["-u", TURN_USER.0, "-w", "not-the-password"]).await;
    }
}

/// ChannelBind with `number` to `peer` on a fresh allocation of `fixture`; the error code, 0 on success.
async fn channel_bind(fixture: &TurnFixture, number: u16, peer: SocketAddr) -> u16 {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut raw = RawTurn::new(bind, fixture.udp, TURN_USER.0, TURN_USER.1).await;
    let allocate = raw.request(Method::ALLOCATE, &|w| w.add(&RequestedTransport::UDP)).await;
    assert!(allocate.success, "allocate failed with {}", allocate.code);
    let answer = raw
        .request(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(number))?;
            w.add(&XorPeerAddress(peer))
        })
        .await;
    answer.code
}

/// uclient picks channel numbers up to 0x7FFF (RFC 5766); RFC 8656 §12 allows 0x4000–0x4FFF only.
/// The default server takes 0x74DB (one uclient sent); a `strict_rfc8656` one answers 400 over the
/// socket and still takes 0x4000.
#[tokio::test]
async fn strict_server_refuses_rfc5766_channel_numbers() {
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let lenient = TurnFixture::loopback().await;
    assert_eq!(channel_bind(&lenient, 0x74DB, peer).await, 0);
    let strict = TurnFixture::start(ServerOptions::default().with(|o| {
        o.allow_loopback_peers = true;
        o.strict_rfc8656 = true;
    }))
    .await;
    assert_eq!(channel_bind(&strict, 0x74DB, peer).await, codes::BAD_REQUEST);
    assert_eq!(channel_bind(&strict, 0x5000, peer).await, codes::BAD_REQUEST);
    assert_eq!(channel_bind(&strict, 0x4000, peer).await, 0);
    assert_eq!(channel_bind(&strict, 0x4FFF, peer).await, 0);
}

/// RFC 8016 mobility: `turnutils_uclient -M` asks for a MOBILITY-TICKET in its Allocate, then
/// opens a new socket (a new local port: a new 5-tuple) and sends a Refresh with the ticket from
/// there, and relays all its data over the new socket. Against a server with `mobility` on, every
/// allocation moves (the Refresh is answered with a fresh ticket) and every message comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_mobility_moves_allocations() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let options = ServerOptions::default().with(|o| {
        o.allow_loopback_peers = true;
        o.mobility = true;
    });
    let fixture = TurnFixture::start(options).await;
    let peer = EchoPeer::start();
    let port = peer.port.to_string();
    let (n, m) = (MESSAGES.to_string(), CLIENTS.to_string());
    let mut args = vec!["-v", "-M", "-e", "127.0.0.1", "-r", &port, "-n", &n, "-m", &m, "-l", "100"];
    args.extend_from_slice(&["-W", TURN_SECRET, "-u", "bob"]);
    let report = uclient(fixture.udp, &args).await;
    assert!(report.success, "uclient failed: {report:#?}");
    let t = totals(&report.stdout).unwrap_or_else(|| panic!("no totals in uclient's output: {report:#?}"));
    let expected = MESSAGES * CLIENTS;
    assert_eq!((t.sent, t.received, t.lost), (expected, expected, 0), "{report:#?}");
    let stats = fixture.stats();
    // uclient makes one allocation more than -m (its peer side); each one moves.
    assert!(stats.allocations_created >= CLIENTS, "{stats:?}");
    assert_eq!(stats.allocations_moved, stats.allocations_created, "{stats:?}");
    assert!(stats.relayed_to_peer >= expected && stats.relayed_to_client >= expected, "{stats:?}");
}

/// `turnutils_uclient -M` against a server with `mobility` off: its Allocate is answered 405
/// Mobility Forbidden (RFC 8016 §3.4), and it cannot allocate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_mobility_refused_when_off() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let fixture = TurnFixture::loopback().await;
    let peer = EchoPeer::start();
    let port = peer.port.to_string();
    let args =
        ["-M", "-e", "127.0.0.1", "-r", &port, "-n", "5", "-m", "1", "-l", "100", "-W", TURN_SECRET, "-u", "bob"];
    let report = uclient(fixture.udp, &args).await;
    assert!(!report.success, "uclient allocated with mobility off: {report:#?}");
    let stats = fixture.stats();
    assert_eq!((stats.allocations_created, stats.allocations_moved), (0, 0), "{stats:?}");
}
