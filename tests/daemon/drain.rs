//! Graceful drain on SIGTERM: `/readyz` turns 503 at once, a new Allocate is refused (508, or 300
//! with ALTERNATE-SERVER when one is configured), the existing allocation keeps relaying and
//! refreshing, and the daemon exits 0 once it is gone. A second signal, or `drain-timeout`, ends
//! the drain early.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{Daemon, PROCESS_TIMEOUT, http_request, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};

const STEP: Duration = Duration::from_secs(5);

async fn allocate(udp: SocketAddr) -> Result<TurnClient, ClientError> {
    tokio::time::timeout(STEP, TurnClient::allocate(udp, Credentials::new("u", "pw"))).await.expect("answer in time")
}

/// Sends through the relay to the echo peer and expects the echo back.
async fn echo(client: &TurnClient, peer: SocketAddr, message: &[u8]) {
    crate::support::echo_through(client, peer, message).await;
}

/// Waits (bounded) until `/readyz` answers `status`.
fn wait_ready_status(daemon: &Daemon, status: u16) {
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    loop {
        let r = http_request(daemon.http_addr("metrics"), "GET", "/readyz", &[], "");
        if r.status == status {
            return;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {} ({})", r.status, r.body);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigterm_refuses_new_allocations_and_keeps_relaying_the_old_until_they_end() {
    let daemon = Daemon::start_loopback(&[]);
    let udp = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (peer, _echo) = rt.block_on(udp_echo_peer());
    let client = rt.block_on(async {
        let client = allocate(udp).await.unwrap();
        client.create_permission(peer).await.unwrap();
        echo(&client, peer, b"before").await;
        client
    });
    wait_ready_status(&daemon, 200);

    daemon.guard.signal("TERM");
    wait_ready_status(&daemon, 503);
    // A new allocation is refused with 508 (no alternate server).
    match rt.block_on(allocate(udp)) {
        Err(ClientError::ErrorResponse { code: 508, .. }) => {}
        Err(e) => panic!("expected 508, got {e}"),
        Ok(c) => panic!("a new allocation was made while draining: {}", c.relayed_addr()),
    }
    // The existing one relays, refreshes and keeps its permission.
    rt.block_on(async {
        echo(&client, peer, b"while draining").await;
        assert_eq!(client.refresh(600).await.unwrap(), 600);
        client.create_permission(peer).await.unwrap();
        echo(&client, peer, b"still").await;
    });
    // The daemon answers, still draining, with the allocation counted: what keeps it running.
    let metrics = http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    assert!(metrics.contains("switchback_draining 1"), "{metrics}");
    assert!(
        metrics.contains("switchback_allocations{transport=\"udp\",family=\"ipv4\",relay=\"udp\"} 1\n"),
        "{metrics}"
    );
    let mut daemon = daemon;
    assert!(daemon.guard.child_mut().try_wait().unwrap().is_none(), "exited with an allocation left");
    // The last allocation ends: the drain is over, the daemon exits 0 well before drain-timeout.
    let closed = Instant::now();
    rt.block_on(async { client.close().await.unwrap() });
    let (status, err) = daemon.wait_exit("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(closed.elapsed() < Duration::from_secs(10), "exit took {:?}", closed.elapsed());
    assert!(err.contains("SIGTERM: draining"), "{err}");
    assert!(err.contains("drained: no allocation left"), "{err}");
}

#[test]
fn draining_with_an_alternate_server_redirects_with_300() {
    let daemon = Daemon::start_loopback(&["--alternate-server", "192.0.2.7:3478"]);
    let udp = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(allocate(udp)).unwrap();
    daemon.guard.signal("TERM");
    wait_ready_status(&daemon, 503);
    match rt.block_on(allocate(udp)) {
        Err(ClientError::ErrorResponse { code: 300, .. }) => {}
        Err(e) => panic!("expected 300, got {e}"),
        Ok(_) => panic!("a new allocation was made while draining"),
    }
    let metrics = http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    assert!(metrics.contains("switchback_allocations_redirected_total 1"), "{metrics}");
    assert!(metrics.contains("switchback_draining 1"), "{metrics}");
    // A second signal ends the drain at once, allocation or not.
    let t = Instant::now();
    let (status, err) = daemon.stop_with("INT");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(err.contains("second signal while draining"), "{err}");
    drop(client);
}

#[test]
fn drain_timeout_ends_the_drain_with_allocations_left() {
    let daemon = Daemon::start_loopback(&["--drain-timeout", "1"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(allocate(daemon.udp[0])).unwrap();
    let t = Instant::now();
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(t.elapsed() >= Duration::from_millis(900), "left before the timeout: {:?}", t.elapsed());
    assert!(err.contains("drain-timeout reached"), "{err}");
    drop(client);
}
