//! The trusted-service flow end to end on the daemon: an access token — minted offline by
//! `switchback token`, or by `POST /v1/tokens` — becomes, through `POST /v1/relay-configuration`,
//! credentials that our TURN client (UDP and TCP) and coturn's `turnutils_uclient` use to relay
//! data; they stop working when they expire, and when the user is revoked (SIGHUP), which also
//! tears down the user's live allocations.

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
        let keys = TempFile::new(&format!("{name}-token-keys"), &format!("{TOKEN_KEY}\n"));
        let revocations = TempFile::new(&format!("{name}-revoked"), "");
        let text = format!(
            "listening-port = 0\nno-tls = true\nstatic-auth-secret = [\"{SECRET}\"]\nallow-loopback-peers = true\n\
             api-listen = \"127.0.0.1:0\"\ntoken-key-file = \"{}\"\napi-key = [\"{API_KEY}\"]\n\
             revocation-file = \"{}\"\napi-rate-limit = 0\napi-user-rate-limit = 0\n",
            keys.as_str(),
            revocations.as_str()
        );
        let config = TempFile::new(&format!("{name}-turn.toml"), &text);
        let daemon = Daemon::start(&["-c", config.as_str()]);
        let api = daemon.http_addr("api");
        Relay { daemon, api, config, revocations, _keys: keys }
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
        let v = r.json();
        let turn = v["iceServers"].as_array().unwrap().iter().find(|s| s.get("username").is_some()).unwrap().clone();
        let urls = turn["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
        let creds = Credentials::new(turn["username"].as_str().unwrap(), turn["credential"].as_str().unwrap());
        (creds, urls)
    }
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
    TurnClient::allocate_with(addr.parse().unwrap(), creds, ClientOptions { transport, ..Default::default() }).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turnutils_uclient_relays_with_credentials_from_a_token() {
    if crate::support::tools::require("turnutils_uclient").is_none() {
        return;
    }
    let relay = Relay::start("uclient");
    let (peer, echo_task) = udp_echo_peer().await;
    let (creds, _) = relay.credentials(&relay.api_token("dave"), "");
    let server = relay.daemon.udp[0];
    let args = [
        "-u".to_owned(),
        creds.username.clone(),
        "-w".to_owned(),
        creds.password.clone(),
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
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            run_with_timeout(Command::new("turnutils_uclient").args(args), Duration::from_secs(30))
        })
    };
    let out = run(args.to_vec()).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "uclient failed: {stdout}");
    assert!(stdout.contains("tot_recv_msgs=20"), "uclient did not get its 20 messages back: {stdout}");
    // With a wrong password it cannot allocate.
    let mut wrong = args.to_vec();
    wrong[3] = "not-the-password".to_owned();
    let out = run(wrong).await.unwrap();
    assert!(!out.status.success(), "uclient allocated with a wrong password");
    echo_task.abort();
}
