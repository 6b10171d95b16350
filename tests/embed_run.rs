//! `RelayBuilder::run` (issue #18): it serves until ctrl-c (SIGINT), then drains and shuts down —
//! the live allocation's Deleted event is emitted and the port is closed — and returns `Ok`.
//!
//! Alone in its binary: the test sends SIGINT to its own process. It installs tokio's SIGINT
//! handler first, so the signal never terminates the process, and sends it until `run` returns
//! (a signal that lands before `run` waits for ctrl-c would otherwise be missed).

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::bounded;
use switchback::Relay;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::server::{Event, EventSink};

#[derive(Default)]
struct Deleted(Mutex<Vec<String>>);

impl EventSink for Deleted {
    fn event(&self, event: &Event<'_>) {
        if let Event::Deleted { session, .. } = event {
            self.0.lock().unwrap().push(session.username.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_sigint_then_drains_and_shuts_down() {
    bounded(async {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).unwrap();
        // A free port from the OS (run() hands out no handle to read it from).
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deleted = Arc::new(Deleted::default());
        let builder =
            Relay::builder().listen(addr).realm("run.test").user("ann", "s3cret").events(deleted.clone()).configure(
                |c| {
                    // The relay range must not hold the listening port (a configuration check).
                    (c.min_port, c.max_port) = if port < 45000 { (50000, 60000) } else { (30000, 40000) };
                    c.no_tcp = true;
                    c.drain_timeout = 1;
                },
            );
        let run = tokio::spawn(builder.run());

        // Up: an allocation succeeds (retried while the listener starts).
        let deadline = Instant::now() + Duration::from_secs(10);
        let client = loop {
            match TurnClient::allocate(addr, Credentials::new("ann", "s3cret")).await {
                Ok(client) => break client,
                Err(_) if run.is_finished() => panic!("run() ended before serving: {:?}", run.await),
                Err(e) if Instant::now() < deadline => {
                    eprintln!("not up yet: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the relay never came up: {e}"),
            }
        };
        assert!(!run.is_finished(), "run() returned while serving");

        // SIGINT (to ourselves, by PID) until run() returns.
        let pid = std::process::id().to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !run.is_finished() {
            assert!(Instant::now() < deadline, "run() did not return after SIGINT");
            let status = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
            assert!(status.success());
            let _ = tokio::time::timeout(Duration::from_millis(200), sigint.recv()).await;
        }
        run.await.unwrap().expect("run() returns Ok after ctrl-c");
        assert_eq!(deleted.0.lock().unwrap().as_slice(), ["ann"], "the live allocation ended with a Deleted event");
        // The listener is closed: its port can be bound again.
        assert!(std::net::UdpSocket::bind(addr).is_ok(), "{addr} still bound after run() returned");
        drop(client);
    })
    .await;
}
