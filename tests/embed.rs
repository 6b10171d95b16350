//! The embedded server (issue #18 §1): `switchback::Relay::builder()` with a credential hook and
//! an event sink, the `RelayHandle` (reload, drain, shutdown, metrics, the mountable router), and
//! `examples/embedded_server.rs` run as a process.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{ChildGuard, bounded, drain, http_request};
use switchback::auth::StaticCredential;
use switchback::auth::hook::{CachedCredentials, Found, LookupFn};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::server::{Event, EventSink, Transport};
use switchback::{Relay, RelayBuilder, RelayHandle};

/// The hook's "database": ann has a password, mallory is refused, anyone else is unknown.
fn user_database() -> CachedCredentials {
    let users: Arc<HashMap<&'static str, Found>> = Arc::new(
        [
            ("ann", Found::Credential(StaticCredential::Password("s3cret".into()))),
            ("bob", Found::Credential(StaticCredential::Password("hunter2".into()))),
            ("mallory", Found::Refused),
        ]
        .into(),
    );
    let lookup: LookupFn = Arc::new(move |name: String| {
        let users = users.clone();
        Box::pin(async move { users.get(name.as_str()).cloned().unwrap_or(Found::NotFound) })
    });
    CachedCredentials::new(lookup, 300, 100)
}

/// Every event the sink saw, as one line each.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EventSink for Recorder {
    fn event(&self, event: &Event<'_>) {
        let line = match event {
            Event::Allocated { session, .. } => format!("allocated {}", session.username),
            Event::Deleted { session, usage, .. } => {
                format!(
                    "deleted {} to_peer_bytes={} to_client_bytes={}",
                    session.username, usage.to_peer_bytes, usage.to_client_bytes
                )
            }
            Event::AuthFailed { username, reason, .. } => format!("auth_failed {} {reason}", username.unwrap_or("-")),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A relay on 127.0.0.1:0 with the user database as its credential hook and `events` as its sink.
fn builder(events: Arc<Recorder>) -> RelayBuilder {
    Relay::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .realm("embed.test")
        .allow_loopback_peers(true)
        .credential_hook(user_database())
        .events(events)
}

fn udp_addr(relay: &RelayHandle) -> SocketAddr {
    relay.local_addrs().iter().find(|l| l.transport == Transport::Udp).expect("a UDP listener").addr
}

fn error_code(result: Result<TurnClient, ClientError>) -> u16 {
    match result {
        Err(ClientError::ErrorResponse { code, .. }) => code,
        Err(e) => panic!("expected an error response, got {e}"),
        Ok(_) => panic!("expected an error response, the Allocate succeeded"),
    }
}

/// Relays "hello" from `client` to a fresh loopback peer and checks it arrives from the relayed address.
async fn relay_hello(client: &TurnClient) {
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    client.create_permission(peer_addr).await.unwrap();
    client.send_to(b"hello", peer_addr).await.unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf)).await.unwrap().unwrap();
    assert_eq!((&buf[..n], from), (&b"hello"[..], client.relayed_addr()));
}

#[tokio::test]
async fn builder_relay_with_a_credential_hook_reports_created_and_deleted_with_usage() {
    bounded(async {
        let events = Arc::new(Recorder::default());
        let relay = builder(events.clone()).spawn().await.unwrap();
        let transports: Vec<_> = relay.local_addrs().iter().map(|l| l.transport).collect();
        assert_eq!(transports, [Transport::Udp, Transport::Tcp], "UDP and TCP by default");
        assert!(relay.local_addrs().iter().all(|l| l.addr.port() != 0), "port 0 resolved");
        let turn = udp_addr(&relay);
        assert!(relay.turn_urls().contains(&format!("turn:{turn}?transport=udp")), "{:?}", relay.turn_urls());

        let client = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        relay_hello(&client).await;
        let list = relay.allocation_list();
        assert_eq!((relay.allocations(), list.len()), (1, 1));
        assert_eq!((list[0].username.as_str(), list[0].relayed), ("ann", client.relayed_addr()));
        assert_eq!(list[0].usage.to_peer_bytes, 5);
        client.close().await.unwrap();
        support::eventually("the allocation ends", || relay.allocations() == 0).await;

        let lines = events.lines();
        assert!(lines.contains(&"allocated ann".to_owned()), "{lines:?}");
        assert!(lines.contains(&"deleted ann to_peer_bytes=5 to_client_bytes=0".to_owned()), "{lines:?}");
        relay.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn a_hook_refusal_is_a_401_an_auth_failed_event_and_a_refused_metric() {
    bounded(async {
        let events = Arc::new(Recorder::default());
        let relay = builder(events.clone()).spawn().await.unwrap();
        let refused = TurnClient::allocate(udp_addr(&relay), Credentials::new("mallory", "whatever")).await;
        assert_eq!(error_code(refused), 401);
        let lines = events.lines();
        assert!(lines.contains(&"auth_failed mallory refused".to_owned()), "{lines:?}");
        let metrics = relay.metrics();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("switchback_auth_failures_total{reason=\"refused\"}"))
            .unwrap_or_else(|| panic!("no refused auth failure series in\n{metrics}"));
        let count: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(count > 0, "{line}");
        relay.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn reload_applies_a_new_config_and_keeps_the_hook() {
    bounded(async {
        let events = Arc::new(Recorder::default());
        let relay = builder(events).spawn().await.unwrap();
        let turn = udp_addr(&relay);
        // Before: ann may hold two allocations at once.
        let a = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        let b = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        a.close().await.unwrap();
        b.close().await.unwrap();
        let mut config = relay.config();
        assert!(config.user_quota > 1, "the default user-quota: {}", config.user_quota);
        config.user_quota = 1;
        let summary = relay.reload(config).await.unwrap();
        assert!(summary.contains("users=0"), "{summary}");
        assert_eq!(relay.config().user_quota, 1);

        // The hook still answers after the reload (401 without it), and the quota is in force.
        let first = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        relay_hello(&first).await;
        let second = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await;
        assert_eq!(error_code(second), 486, "user-quota 1 after the reload");
        let refused = TurnClient::allocate(turn, Credentials::new("mallory", "x")).await;
        assert_eq!(error_code(refused), 401);

        // A configuration that does not hold together is refused as a whole.
        let mut broken = relay.config();
        broken.users.insert("eve".into(), switchback::config::SecretText("0xnothex".into()));
        assert!(relay.reload(broken).await.is_err());
        assert_eq!(relay.config().user_quota, 1, "the old configuration stays");
        first.close().await.unwrap();
        relay.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn drain_refuses_new_allocations_and_returns_once_the_last_one_closes() {
    bounded(async {
        let events = Arc::new(Recorder::default());
        // A long drain-timeout: drain must return because the allocation closed, not by timing out.
        let relay = builder(events.clone()).configure(|c| c.drain_timeout = 120).spawn().await.unwrap();
        let turn = udp_addr(&relay);
        let live = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        let started = tokio::time::Instant::now();
        let drained = async {
            relay.drain().await;
            assert_eq!(relay.allocations(), 0, "drain returned with an allocation left");
        };
        let meanwhile = async {
            support::eventually("draining", || relay.server().admission().is_draining()).await;
            let refused = TurnClient::allocate(turn, Credentials::new("bob", "hunter2")).await;
            assert_eq!(error_code(refused), 508, "no alternate server: 508 Insufficient Capacity");
            relay_hello(&live).await;
            live.close().await.unwrap();
        };
        tokio::join!(drained, meanwhile);
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(events.lines().iter().any(|l| l.starts_with("deleted ann")));
        let router = relay.router();
        relay.shutdown().await;
        drop(router);
    })
    .await;
}

#[tokio::test]
async fn the_metrics_router_mounts_into_an_embedders_axum_app() {
    bounded(async {
        let relay = builder(Arc::new(Recorder::default())).spawn().await.unwrap();
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "the embedder's own page" }))
            .nest("/turn", relay.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        // One allocation, so the gauge the page shows is not a default.
        let client = TurnClient::allocate(udp_addr(&relay), Credentials::new("ann", "s3cret")).await.unwrap();
        let (metrics, ready, own) = tokio::task::spawn_blocking(move || {
            let get = |path| http_request(addr, "GET", path, &[], "");
            (get("/turn/metrics"), get("/turn/readyz"), get("/"))
        })
        .await
        .unwrap();
        assert_eq!(metrics.status, 200);
        assert!(one_allocation(&metrics.body), "{}", metrics.body);
        assert!(one_allocation(&relay.metrics()), "the handle renders the same text");
        assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));
        assert_eq!((own.status, own.body.as_str()), (200, "the embedder's own page"));
        client.close().await.unwrap();
        server.abort();
        relay.shutdown().await;
    })
    .await;
}

/// The token service and the admin API mount into the embedder's app too, when their keys are set.
#[tokio::test]
async fn the_token_service_and_admin_api_mount_into_an_embedders_app() {
    use switchback::config::SecretText;
    bounded(async {
        let plain = builder(Arc::new(Recorder::default())).spawn().await.unwrap();
        assert!(plain.api_router().is_none() && plain.admin_router().is_none(), "no keys, no routes");
        plain.shutdown().await;

        let relay = builder(Arc::new(Recorder::default()))
            .static_auth_secret("embed-rest-secret")
            .configure(|c| {
                c.api_key = vec![SecretText("embed-api-key-0123".into())];
                c.token_key = vec![SecretText("embed-token-key-0123456789abcdef0123".into())];
                c.admin_key = Some(SecretText("embed-admin-key-0123".into()));
            })
            .spawn()
            .await
            .unwrap();
        let app = axum::Router::new()
            .nest("/turn", relay.api_router().expect("api-key set: the token service"))
            .nest("/ops", relay.admin_router().expect("admin-key set: the admin API"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The token service limits requests per source address: serve with ConnectInfo.
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let server = tokio::spawn(async move { axum::serve(listener, service).await });
        let (config, no_key, allocations) = tokio::task::spawn_blocking(move || {
            let api = [("Authorization", "Bearer embed-api-key-0123"), ("Content-Type", "application/json")];
            let admin = [("Authorization", "Bearer embed-admin-key-0123")];
            (
                http_request(addr, "POST", "/turn/v1/relay-configuration", &api, r#"{"user": "ann"}"#),
                http_request(addr, "GET", "/ops/admin/allocations", &[], ""),
                http_request(addr, "GET", "/ops/admin/allocations", &admin, ""),
            )
        })
        .await
        .unwrap();
        assert_eq!(config.status, 200, "{}", config.body);
        assert!(config.body.contains("iceServers") && config.body.contains("turn:"), "{}", config.body);
        assert_eq!(no_key.status, 401, "the admin API keeps its key when mounted");
        assert_eq!(allocations.status, 200, "{}", allocations.body);
        server.abort();
        relay.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn tls_gives_a_turns_listener() {
    bounded(async {
        let identity = switchback::io::TlsIdentity::self_signed(&["localhost"]).unwrap();
        let relay = Relay::builder().listen("127.0.0.1:0".parse().unwrap()).tls(identity).spawn().await.unwrap();
        let tls = relay.local_addrs().iter().find(|l| l.transport == Transport::Tls).expect("a TLS listener").addr;
        assert_ne!(tls.port(), 0);
        assert!(relay.turn_urls().contains(&format!("turns:{tls}?transport=tcp")), "{:?}", relay.turn_urls());
        // It accepts connections.
        tokio::net::TcpStream::connect(tls).await.unwrap();
        relay.shutdown().await;
    })
    .await;
}

/// Whether the page's `switchback_allocations` gauge has a series at 1 (the live allocation).
fn one_allocation(page: &str) -> bool {
    page.lines().any(|l| l.starts_with("switchback_allocations{") && l.ends_with(" 1"))
}

/// `examples/embedded_server.rs` (built by `cargo test`, which builds the examples) runs, relays
/// and exits 0.
#[test]
fn the_embedded_server_example_relays_and_exits() {
    // target/debug/deps/embed-<hash> → target/debug/examples/embedded_server
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().and_then(|deps| deps.parent()).unwrap().join("examples").join("embedded_server");
    if !example.exists() {
        support::tools::skip(
            "examples/embedded_server",
            "built by `cargo test` or `cargo build --example embedded_server`, not by `cargo test --test embed`",
        );
        return;
    }
    let mut child =
        ChildGuard::spawn(Command::new(&example).stdout(Stdio::piped()).stderr(Stdio::piped()).env("RUST_LOG", "off"));
    let stdout = drain(child.child_mut().stdout.take().unwrap());
    let stderr = drain(child.child_mut().stderr.take().unwrap());
    let status = child.wait_timeout(support::PROCESS_TIMEOUT).expect("the example did not exit within its timeout");
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(status.success(), "exit {status}\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("turn:127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("relayed 5 bytes"), "{stdout}");
    assert!(stdout.contains("usage: ann sent 5 bytes"), "{stdout}");
}

/// The builder's peer and relay-address hooks (issue #18 §3) reach the core: bob's allocations
/// take a port in 40000..=40099 on 127.0.0.3, ann keeps the default; nobody may reach 127.0.0.9
/// (a 403 on the CreatePermission, the only packet sent toward it), anything else relays.
#[tokio::test]
async fn the_builders_peer_and_relay_address_hooks_reach_the_core() {
    use switchback::server::{PeerContext, PeerDecision, RelayChoice, RelayContext};
    bounded(async {
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        let denied_ip: std::net::IpAddr = "127.0.0.9".parse().unwrap();
        let relay = builder(Arc::new(Recorder::default()))
            .peer_hook(Arc::new(move |ctx: &PeerContext<'_>| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if ctx.peer.ip() == denied_ip { PeerDecision::Deny } else { PeerDecision::Allow }
            }))
            .relay_address_hook(Arc::new(|ctx: &RelayContext<'_>| {
                (ctx.username == "bob").then(|| RelayChoice::new("127.0.0.3".parse().unwrap(), 40000..=40099))
            }))
            .spawn()
            .await
            .unwrap();
        let turn = udp_addr(&relay);
        let bob = TurnClient::allocate(turn, Credentials::new("bob", "hunter2")).await.unwrap();
        let relayed = bob.relayed_addr();
        assert_eq!(relayed.ip().to_string(), "127.0.0.3", "the relay hook's address");
        assert!((40000..=40099).contains(&relayed.port()), "the relay hook's range: {relayed}");
        let ann = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await.unwrap();
        assert_ne!(ann.relayed_addr().ip().to_string(), "127.0.0.3", "ann gets the default");

        match bob.create_permission("127.0.0.9:4000".parse().unwrap()).await {
            Err(ClientError::ErrorResponse { code: 403, .. }) => {}
            other => panic!("expected 403 from the peer hook, got {other:?}"),
        }
        let before = asked.load(std::sync::atomic::Ordering::Relaxed);
        assert!(before >= 1, "the peer hook was asked");
        // Allowed peers relay, from the hook's address; data does not ask the hook again.
        let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        bob.create_permission(peer_addr).await.unwrap();
        for _ in 0..3 {
            bob.send_to(b"hello", peer_addr).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) =
                tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!((&buf[..n], from), (&b"hello"[..], relayed));
        }
        assert_eq!(
            asked.load(std::sync::atomic::Ordering::Relaxed),
            before + 1,
            "one ask for the permission, none per packet"
        );
        let metrics = relay.metrics();
        assert!(metrics.contains("switchback_relay_hook_ignored_total 0"), "{metrics}");
        bob.close().await.unwrap();
        ann.close().await.unwrap();
        relay.shutdown().await;
    })
    .await;
}
