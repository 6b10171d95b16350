//! The trusted-service flow end to end on the daemon: an access token — minted offline by
//! `switchback token`, or by `POST /v1/tokens` — becomes, through `POST /v1/relay-configuration`,
//! credentials that our TURN client (UDP and TCP) and coturn's `turnutils_uclient` use to relay
//! data; they stop working when they expire, and when the user is revoked (SIGHUP), which also
//! tears down the user's live allocations. A backend holding the API key gets the same in one call
//! (`POST /v1/relay-configuration {"user", "ttl"}`) and revokes at run time (`POST /v1/revocations`,
//! or the operator with `switchback admin revoke`): at once, kept across reload and restart.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::{
    Daemon, PROCESS_TIMEOUT, RECV_TIMEOUT, TempFile, http_request, run_with_timeout, udp_echo_peer, unix_now,
};
use switchback::client::ClientError;
use switchback::client::turn::{ClientOptions, Credentials, TurnClient, TurnTransport};

const SECRET: &str = "rest-secret-for-the-e2e-test";
const TOKEN_KEY: &str = "k1:0123456789abcdef0123456789abcdef";
const API_KEY: &str = "backend-key-0123456789";
const ADMIN_KEY: &str = "admin-key-for-the-e2e-test";
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

struct Relay {
    daemon: Daemon,
    api: SocketAddr,
    config: TempFile,
    revocations: TempFile,
    _keys: TempFile,
}

impl Relay {
    fn start(name: &str) -> Relay {
        Relay::start_with(name, true)
    }

    /// With `revocation-file` or without; the admin face on too.
    fn start_with(name: &str, revocation_file: bool) -> Relay {
        let keys = TempFile::new(&format!("{name}-token-keys"), &format!("{TOKEN_KEY}\n"));
        let revocations = TempFile::new(&format!("{name}-revoked"), "");
        let file_line =
            if revocation_file { format!("revocation-file = \"{}\"\n", revocations.as_str()) } else { String::new() };
        let text = format!(
            "listening-port = 0\nno-tls = true\nstatic-auth-secret = [\"{SECRET}\"]\nallow-loopback-peers = true\n\
             api-listen = \"127.0.0.1:0\"\ntoken-key-file = \"{}\"\napi-key = [\"{API_KEY}\"]\n\
             {file_line}api-rate-limit = 0\napi-user-rate-limit = 0\n\
             admin-listen = \"127.0.0.1:0\"\nadmin-key = \"{ADMIN_KEY}\"\n",
            keys.as_str(),
        );
        let config = TempFile::new(&format!("{name}-turn.toml"), &text);
        let daemon = Daemon::start(&["-c", config.as_str()]);
        let api = daemon.http_addr("api");
        Relay { daemon, api, config, revocations, _keys: keys }
    }

    /// Stops the daemon (SIGTERM) and starts it again with the same configuration.
    fn restart(&mut self) {
        let again = Daemon::start(&["-c", self.config.as_str()]);
        let (status, log) = std::mem::replace(&mut self.daemon, again).stop_with("TERM");
        assert_eq!(status.code(), Some(0), "{log}");
        self.api = self.daemon.http_addr("api");
    }

    /// `POST path` on the token service with the API key.
    fn backend(&self, path: &str, body: &str) -> crate::support::HttpResponse {
        let auth = format!("Bearer {API_KEY}");
        http_request(self.api, "POST", path, &[("Authorization", &auth), ("Content-Type", "application/json")], body)
    }

    /// How many live allocations the admin API lists for `user`.
    fn allocations_of(&self, user: &str) -> u64 {
        let auth = format!("Bearer {ADMIN_KEY}");
        let path = format!("/admin/allocations?user={user}");
        let r = http_request(self.daemon.http_addr("admin"), "GET", &path, &[("Authorization", &auth)], "");
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["count"].as_u64().unwrap()
    }

    /// `switchback admin ARGS` against this daemon's admin face.
    fn admin_cli(&self, args: &[&str]) -> serde_json::Value {
        let addr = self.daemon.http_addr("admin").to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
        cmd.arg("admin").args(args).args(["--admin-listen", &addr]).env("SWITCHBACK_ADMIN_KEY", ADMIN_KEY);
        let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The TURN credentials and urls the backend gets for `user` with the API key.
    fn backend_credentials(&self, user: &str, ttl: u64) -> (Credentials, Vec<String>) {
        let r = self.backend("/v1/relay-configuration", &format!(r#"{{"user": "{user}", "ttl": {ttl}}}"#));
        assert_eq!(r.status, 200, "{r:?}");
        turn_credentials(&r.json())
    }

    fn cli_token(&self, user: &str) -> String {
        let out = run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_switchback")).args(["token", "-c", self.config.as_str(), "--user", user]),
            PROCESS_TIMEOUT,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    fn api_token(&self, user: &str) -> String {
        let body = format!(r#"{{"user": "{user}", "ttl": 600}}"#);
        let r = http_request(self.api, "POST", "/v1/tokens", &[("Authorization", &format!("Bearer {API_KEY}"))], &body);
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["token"].as_str().unwrap().to_owned()
    }

    /// The TURN credentials `/v1/relay-configuration` gives for `token` (and `body`), and its urls.
    fn credentials(&self, token: &str, body: &str) -> (Credentials, Vec<String>) {
        let auth = format!("Bearer {token}");
        let r = http_request(self.api, "POST", "/v1/relay-configuration", &[("Authorization", &auth)], body);
        assert_eq!(r.status, 200, "{r:?}");
        turn_credentials(&r.json())
    }
}

/// The TURN entry of a relay configuration: its credentials and urls.
fn turn_credentials(v: &serde_json::Value) -> (Credentials, Vec<String>) {
    let turn = v["iceServers"].as_array().unwrap().iter().find(|s| s.get("username").is_some()).unwrap().clone();
    let urls = turn["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
    let creds = Credentials::new(turn["username"].as_str().unwrap(), turn["credential"].as_str().unwrap());
    (creds, urls)
}

/// Sends `data` through `client` to the echo `peer`; what comes back, or `None` after `wait`.
async fn echo(client: &TurnClient, peer: SocketAddr, data: &[u8], wait: Duration) -> Option<Vec<u8>> {
    client.send_to(data, peer).await.expect("send_to");
    let mut buf = vec![0u8; 2048];
    let (n, from) = tokio::time::timeout(wait, client.recv_from(&mut buf)).await.ok()?.ok()?;
    assert_eq!(from, peer);
    buf.truncate(n);
    Some(buf)
}

fn is_401<T>(r: &Result<T, ClientError>) -> bool {
    matches!(r, Err(ClientError::ErrorResponse { code: 401, .. }))
}

/// A revoked user's request: 403 Forbidden (RFC 8656 §7.2, administratively refused).
fn is_403<T>(r: &Result<T, ClientError>) -> bool {
    matches!(r, Err(ClientError::ErrorResponse { code: 403, .. }))
}

/// An allocation over the transport of `url` (`turn:ADDR?transport=udp|tcp`) at the address it names.
async fn allocate(url: &str, creds: Credentials) -> Result<TurnClient, ClientError> {
    let rest = url.strip_prefix("turn:").expect("a turn: url");
    let (addr, transport) = rest.split_once("?transport=").expect("a transport");
    let transport = if transport == "tcp" { TurnTransport::Tcp } else { TurnTransport::Udp };
    TurnClient::allocate_with(addr.parse().unwrap(), creds, ClientOptions::default().with(|o| o.transport = transport))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_become_credentials_that_relay_and_stop_on_revocation() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let relay = Relay::start("revoke");
        let (peer, echo_task) = udp_echo_peer().await;

        // From the CLI (alice) and from POST /v1/tokens (bob), over every url handed out.
        let (alice_creds, urls) = relay.credentials(&relay.cli_token("alice"), "");
        assert_eq!(urls.len(), 2, "{urls:?}");
        let mut alices = Vec::new();
        for url in &urls {
            let client = allocate(url, alice_creds.clone()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
            client.create_permission(peer).await.expect("create_permission");
            assert_eq!(echo(&client, peer, url.as_bytes(), RECV_TIMEOUT).await.as_deref(), Some(url.as_bytes()));
            alices.push(client);
        }
        let (bob_creds, _) = relay.credentials(&relay.api_token("bob"), "");
        let bob = allocate(&urls[0], bob_creds.clone()).await.expect("bob allocates");
        bob.create_permission(peer).await.expect("create_permission");
        assert_eq!(echo(&bob, peer, b"bob", RECV_TIMEOUT).await.as_deref(), Some(&b"bob"[..]));

        // Revoke bob: his allocation goes, his refresh and a new allocation get 403, his token is
        // refused at the HTTP service; alice goes on.
        std::fs::write(&relay.revocations.path, "bob\n").unwrap();
        relay.daemon.guard.signal("HUP");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let r = bob.refresh(600).await;
            if is_403(&r) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "bob's allocation survived revocation: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(echo(&bob, peer, b"after", Duration::from_millis(300)).await, None);
        assert!(is_403(&allocate(&urls[0], bob_creds).await), "a revoked user cannot allocate");
        let auth = format!("Bearer {}", relay.api_token("bob-2"));
        assert_eq!(
            http_request(relay.api, "POST", "/v1/relay-configuration", &[("Authorization", &auth)], "").status,
            200
        );
        let r = http_request(
            relay.api,
            "POST",
            "/v1/tokens",
            &[("Authorization", &format!("Bearer {API_KEY}"))],
            r#"{"user":"bob"}"#,
        );
        assert_eq!(r.status, 403, "{r:?}");
        for client in &alices {
            assert_eq!(client.refresh(600).await.expect("alice refreshes"), 600);
            assert_eq!(echo(client, peer, b"still", RECV_TIMEOUT).await.as_deref(), Some(&b"still"[..]));
        }
        echo_task.abort();
    })
    .await
    .expect("the test did not finish in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stop_working_when_they_expire() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let relay = Relay::start("expire");
        let (creds, urls) = relay.credentials(&relay.cli_token("carol"), r#"{"ttl": 1}"#);
        let expiry: u64 = creds.username.split_once(':').unwrap().0.parse().unwrap();
        assert!(expiry <= unix_now() + 1);
        let client = allocate(&urls[0], creds.clone()).await.expect("valid until the expiry second");
        drop(client);
        // REST credentials are valid through their expiry second.
        // The server counts whole seconds from its start, so its clock may lag by up to one.
        while unix_now() <= expiry + 1 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = allocate(&urls[0], creds).await;
        assert!(is_401(&r), "expired credentials allocate nothing: {:?}", r.map(|c| c.relayed_addr()));
    })
    .await
    .expect("the test did not finish in time");
}

/// `turnutils_uclient` with `creds` against `server` (UDP): 20 messages to the echo `peer`; the
/// process output.
async fn uclient(server: SocketAddr, creds: &Credentials, password: &str, peer: SocketAddr) -> std::process::Output {
    let args = [
        "-u".to_owned(),
        creds.username.clone(),
        "-w".to_owned(),
        password.to_owned(),
        "-e".to_owned(),
        "127.0.0.1".to_owned(),
        "-r".to_owned(),
        peer.port().to_string(),
        "-n".to_owned(),
        "20".to_owned(),
        "-m".to_owned(),
        "1".to_owned(),
        "-l".to_owned(),
        "100".to_owned(),
        "-p".to_owned(),
        server.port().to_string(),
        server.ip().to_string(),
    ];
    tokio::task::spawn_blocking(move || {
        run_with_timeout(Command::new("turnutils_uclient").args(args), Duration::from_secs(30))
    })
    .await
    .unwrap()
}

/// `turnutils_uclient` relays its 20 messages with `creds`, and allocates nothing with a wrong
/// password.
async fn assert_uclient_relays(server: SocketAddr, creds: &Credentials, peer: SocketAddr) {
    let out = uclient(server, creds, &creds.password, peer).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "uclient failed: {stdout}");
    assert!(stdout.contains("tot_recv_msgs=20"), "uclient did not get its 20 messages back: {stdout}");
    let out = uclient(server, creds, "not-the-password", peer).await;
    assert!(!out.status.success(), "uclient allocated with a wrong password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turnutils_uclient_relays_with_credentials_from_a_token() {
    if crate::support::tools::require("turnutils_uclient").is_none() {
        return;
    }
    let relay = Relay::start("uclient");
    let (peer, echo_task) = udp_echo_peer().await;
    let (creds, _) = relay.credentials(&relay.api_token("dave"), "");
    assert_uclient_relays(relay.daemon.udp[0], &creds, peer).await;
    echo_task.abort();
}

/// A backend holding the API key gets iceServers for a user in one call; those credentials
/// allocate and relay with our client (over every url) and with coturn's `turnutils_uclient`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_with_the_api_key_gets_ice_servers_that_relay() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let relay = Relay::start("backend");
        let (peer, echo_task) = udp_echo_peer().await;
        let before = unix_now();
        let (creds, urls) = relay.backend_credentials("erin", 300);
        let expiry: u64 = creds.username.strip_suffix(":erin").expect("erin's credentials").parse().unwrap();
        assert!((before + 300..=unix_now() + 300).contains(&expiry), "{}", creds.username);
        assert_eq!(urls.len(), 2, "{urls:?}");
        for url in &urls {
            let client = allocate(url, creds.clone()).await.unwrap_or_else(|e| panic!("{url}: {e}"));
            client.create_permission(peer).await.expect("create_permission");
            assert_eq!(echo(&client, peer, url.as_bytes(), RECV_TIMEOUT).await.as_deref(), Some(url.as_bytes()));
        }
        // Without a user: a clear 400, not a token error.
        let r = relay.backend("/v1/relay-configuration", r#"{"ttl": 300}"#);
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("user_required")), "{r:?}");
        if crate::support::tools::require("turnutils_uclient").is_some() {
            assert_uclient_relays(relay.daemon.udp[0], &creds, peer).await;
        }
        echo_task.abort();
    })
    .await
    .expect("the test did not finish in time");
}

/// `POST /v1/revocations {"user"}`: the user's allocation ends at once (the admin API lists none,
/// its Refresh is refused), a new Allocate gets 403, the line is in `revocation-file`; a reload and
/// a restart keep it. `switchback admin revoke` does the same through the admin face.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_over_the_api_ends_allocations_at_once_and_survives_reload_and_restart() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let mut relay = Relay::start("api-revoke");
        let (peer, echo_task) = udp_echo_peer().await;
        let (creds, urls) = relay.backend_credentials("frank", 600);
        let frank = allocate(&urls[0], creds.clone()).await.expect("frank allocates");
        frank.create_permission(peer).await.expect("create_permission");
        assert!(echo(&frank, peer, b"before", RECV_TIMEOUT).await.is_some());
        assert_eq!(relay.allocations_of("frank"), 1);

        let r = relay.backend("/v1/revocations", r#"{"user": "frank"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        assert_eq!(
            (v["revoked"].as_str(), v["persisted"].as_bool(), v["ended"].as_u64()),
            (Some("frank"), Some(true), Some(1))
        );
        // Ended before the answer: no waiting.
        assert_eq!(relay.allocations_of("frank"), 0);
        assert!(is_403(&frank.refresh(600).await), "frank's Refresh after revocation");
        assert_eq!(echo(&frank, peer, b"after", Duration::from_millis(300)).await, None);
        assert!(is_403(&allocate(&urls[0], creds.clone()).await), "a revoked user cannot allocate");
        let r = relay.backend("/v1/relay-configuration", r#"{"user": "frank"}"#);
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("user_revoked")), "{r:?}");
        assert_eq!(std::fs::read_to_string(&relay.revocations.path).unwrap(), "frank\n");

        // A reload re-reads the file: still refused.
        relay.daemon.guard.signal("HUP");
        relay.daemon.wait_for_log("configuration reloaded", 1);
        assert!(is_403(&allocate(&urls[0], creds.clone()).await), "refused after a reload");

        // The operator's CLI, through the admin face: gina's allocation ends too.
        let (gina_creds, _) = relay.backend_credentials("gina", 600);
        let _gina = allocate(&urls[0], gina_creds.clone()).await.expect("gina allocates");
        assert_eq!(relay.allocations_of("gina"), 1);
        let v = relay.admin_cli(&["revoke", "gina"]);
        assert_eq!((v["revoked"].as_str(), v["ended"].as_u64()), (Some("gina"), Some(1)), "{v}");
        assert_eq!(relay.allocations_of("gina"), 0);
        assert_eq!(std::fs::read_to_string(&relay.revocations.path).unwrap(), "frank\ngina\n");

        // A restart reads the file: both still refused, another user is not.
        relay.restart();
        let udp = relay.daemon.udp[0];
        for c in [creds, gina_creds] {
            let r = allocate(&format!("turn:{udp}?transport=udp"), c).await;
            assert!(is_403(&r), "refused after a restart: {:?}", r.map(|c| c.relayed_addr()));
        }
        let (ok, _) = relay.backend_credentials("heidi", 600);
        allocate(&format!("turn:{udp}?transport=udp"), ok).await.expect("heidi is not revoked");
        echo_task.abort();
    })
    .await
    .expect("the test did not finish in time");
}

/// Without `revocation-file` a revocation is held in memory, says so, and a reload keeps it; a
/// token id revoked with `switchback admin revoke --jti` is refused by the token service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_revocation_file_revocations_are_held_in_memory_across_reloads() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let relay = Relay::start_with("memory-revoke", false);
        let (creds, urls) = relay.backend_credentials("ivan", 600);
        let _ivan = allocate(&urls[0], creds.clone()).await.expect("ivan allocates");
        let r = relay.backend("/v1/revocations", r#"{"user": "ivan", "reason": "ignored"}"#);
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json();
        assert_eq!(
            (v["persisted"].as_bool(), v["storage"].as_str(), v["ended"].as_u64()),
            (Some(false), Some("memory"), Some(1)),
            "{v}"
        );
        assert!(v["warning"].as_str().is_some_and(|w| w.contains("memory")), "{v}");
        relay.daemon.wait_for_log("held in memory only", 1);

        let token = relay.api_token("judy");
        let jti = switchback::auth::token::TokenKeys::new(vec![switchback::auth::token::TokenKey::hs256(
            Some("k1"),
            TOKEN_KEY.split_once(':').unwrap().1.as_bytes(),
        )])
        .verify(&token, unix_now())
        .unwrap()
        .jti
        .unwrap();
        let v = relay.admin_cli(&["revoke", "--jti", &jti]);
        assert_eq!((v["kind"].as_str(), v["persisted"].as_bool()), (Some("jti"), Some(false)), "{v}");

        relay.daemon.guard.signal("HUP");
        relay.daemon.wait_for_log("configuration reloaded", 1);
        assert!(is_403(&allocate(&urls[0], creds).await), "the in-memory revocation survives the reload");
        let auth = format!("Bearer {token}");
        let r = http_request(relay.api, "POST", "/v1/relay-configuration", &[("Authorization", &auth)], "");
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("token_revoked")), "{r:?}");
        // Judy herself is not revoked: a new token works.
        let auth = format!("Bearer {}", relay.api_token("judy"));
        assert_eq!(
            http_request(relay.api, "POST", "/v1/relay-configuration", &[("Authorization", &auth)], "").status,
            200
        );
    })
    .await
    .expect("the test did not finish in time");
}
