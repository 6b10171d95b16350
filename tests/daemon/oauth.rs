//! RFC 7635 third-party authorization end to end, against the daemon configured from a `turn.toml`
//! (`oauth`, `server-name`, `oauth-key`): coturn's `turnutils_uclient -J` (a random one of coturn's
//! three test keys per Allocate and Refresh) relays to an echo peer at 0 % loss, and fails when our
//! keys are other than its own; tokens made by coturn's `turnutils_oauth -e` (HMAC-SHA1 and
//! HMAC-SHA256 session keys) take our own client through; tokens we seal open in `turnutils_oauth -d`;
//! an expired token is refused. Needs Debian's `coturn` (skipped without it unless CI=true).
#![cfg(feature = "cli")]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::support::{Daemon, EchoPeer, TempFile, run_with_timeout, totals, udp_echo_peer, unix_now};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use switchback::auth::oauth::{AccessTokenKey, seal};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};

const SERVER_NAME: &str = "blackdow.carleon.gov";
/// coturn's built-in test keys, the ones `turnutils_uclient -J` uses (see REFERENCE notes).
const COTURN_KEYS: [(&str, &str, &str); 3] = [
    ("north", "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK", "A256GCM"),
    ("union", "MTIzNDU2Nzg5MDEyMzQ1Ngo=", "A128GCM"),
    ("oldempire", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIK", "A256GCM"),
];
const UCLIENT_TIMEOUT: Duration = Duration::from_secs(30);
const MESSAGES: u64 = 50;
const CLIENTS: u64 = 2;

/// The daemon on 127.0.0.1 (OS-chosen ports, no TLS, loopback peers) with `keys` as `oauth-key`.
/// The relay range covers the ephemeral ports: the echo peer's port is one, and the daemon refuses
/// its own address as a peer outside the relay range.
fn daemon(keys: &[(&str, &str, &str)]) -> (Daemon, TempFile) {
    let keys: Vec<String> = keys.iter().map(|(kid, key, alg)| format!("\"{kid}:{key}:{alg}\"")).collect();
    let toml = format!(
        "listening-port = 0\nno-tls = true\nrealm = \"oauth.test\"\nallow-loopback-peers = true\n\
         min-port = 32768\nmax-port = 65535\n\
         oauth = true\nserver-name = \"{SERVER_NAME}\"\noauth-key = [{}]\n",
        keys.join(", ")
    );
    let file = TempFile::new("oauth.toml", &toml);
    let daemon = Daemon::start(&["-c", file.as_str()]);
    (daemon, file)
}

/// `turnutils_uclient -J EXTRA` through `server` to `turnutils_peer`; returns (exit ok, stdout).
async fn uclient_j(server: SocketAddr, extra: &[&str]) -> (bool, String) {
    let peer = EchoPeer::start();
    let (n, m, port) = (MESSAGES.to_string(), CLIENTS.to_string(), peer.port.to_string());
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args(["-J", "-v", "-e", "127.0.0.1", "-r", &port, "-n", &n, "-m", &m, "-l", "100"]).args(extra).args([
        "-p",
        &server.port().to_string(),
        "127.0.0.1",
    ]);
    let out = tokio::task::spawn_blocking(move || run_with_timeout(&mut cmd, UCLIENT_TIMEOUT)).await.expect("uclient");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_j_relays_with_coturns_test_keys() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let (daemon, _file) = daemon(&COTURN_KEYS);
    let banner = daemon.banner.join("\n");
    assert!(
        banner.contains(&format!("oauth: RFC 7635 access tokens, 3 key(s), server name {SERVER_NAME}")),
        "{banner}"
    );
    let (ok, stdout) = uclient_j(daemon.udp[0], &[]).await;
    let (status, stderr) = daemon.stop_with("INT");
    assert!(ok, "uclient -J failed:\n{stdout}\n{stderr}");
    let expected = MESSAGES * CLIENTS;
    let t = totals(&stdout).unwrap_or_else(|| panic!("no totals in uclient's output:\n{stdout}"));
    assert_eq!((t.sent, t.received, t.lost), (expected, expected, 0), "{stdout}");
    assert!(status.success(), "{stderr}");
    // coturn's test keys are a byte longer than their algorithms need: one warning each.
    assert_eq!(stderr.matches("only its first").count(), 3, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_j_over_tcp_with_send_indications() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let (daemon, _file) = daemon(&COTURN_KEYS);
    let (ok, stdout) = uclient_j(daemon.tcp[0], &["-t", "-s"]).await;
    let (_, stderr) = daemon.stop_with("INT");
    assert!(ok, "uclient -J -t -s failed:\n{stdout}\n{stderr}");
    let expected = MESSAGES * CLIENTS;
    let t = totals(&stdout).unwrap_or_else(|| panic!("no totals in uclient's output:\n{stdout}"));
    assert_eq!((t.sent, t.received, t.lost), (expected, expected, 0), "{stdout}");
    assert!(!stdout.contains("channel bind sent"), "-s must not bind channels: {stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_j_fails_when_our_keys_are_not_its_keys() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    // The same kids and algorithms, other key bytes.
    let other = STANDARD.encode([0x42u8; 32]);
    let keys =
        [("north", other.as_str(), "A256GCM"), ("union", other.as_str(), "A128GCM"), ("oldempire", &other, "A256GCM")];
    let (daemon, _file) = daemon(&keys);
    let (ok, stdout) = uclient_j(daemon.udp[0], &[]).await;
    let (_, stderr) = daemon.stop_with("INT");
    assert!(!ok, "uclient -J succeeded with the wrong keys:\n{stdout}");
    assert!(stdout.contains("Cannot complete Allocation"), "{stdout}\n{stderr}");
    assert!(stderr.contains("allocations_created=0") && !stderr.contains("auth_failures=0"), "{stderr}");
}

/// A token from `turnutils_oauth -e` for key `(kid, key, alg)`, issued `age` seconds ago.
fn coturn_token((kid, key, alg): (&str, &str, &str), mac_key: &[u8], age: u64, lifetime: u32) -> Vec<u8> {
    let hmac = if mac_key.len() == 32 { "HMAC-SHA256" } else { "HMAC-SHA1" };
    let now = unix_now();
    let out = run_with_timeout(
        Command::new("turnutils_oauth")
            .args(["-e", "-i", SERVER_NAME, "-j", kid, "-k", key, "-n", alg, "-u", hmac])
            .args(["-l", &now.to_string(), "-m", "86400", "-p", &STANDARD.encode(mac_key)])
            .args(["-q", &((now - age) << 16).to_string(), "-r", &lifetime.to_string()]),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "turnutils_oauth -e: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.contains("\"access_token\"")).expect("an access_token line");
    let b64 = line.split('"').nth(3).expect("the token");
    STANDARD.decode(b64).expect("base64 token")
}

/// Our client with `creds` allocates, relays to an echo peer and back, refreshes (the token again).
async fn relay_once(server: SocketAddr, creds: Credentials) -> Result<(), ClientError> {
    let (peer, echo) = udp_echo_peer().await;
    let client = TurnClient::allocate(server, creds).await?;
    client.create_permission(peer).await?;
    client.bind_channel(peer).await?;
    client.send_to(b"rfc 7635", peer).await?;
    let mut buf = [0u8; 64];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.expect("echo")?;
    assert_eq!((&buf[..n], from), (&b"rfc 7635"[..], peer));
    assert!(client.refresh(600).await? > 0);
    client.close().await?;
    echo.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turnutils_oauth_tokens_take_our_client_through() {
    if crate::support::tools::require("turnutils_oauth").is_none() {
        return;
    }
    let (daemon, _file) = daemon(&COTURN_KEYS);
    let server = daemon.udp[0];
    // HMAC-SHA1 with a 20-byte mac_key (A256GCM), HMAC-SHA256 with a 32-byte one (A128GCM).
    let sha1 = [0x11u8; 20];
    let token = coturn_token(COTURN_KEYS[0], &sha1, 0, 3600);
    relay_once(server, Credentials::access_token("north", token, sha1)).await.expect("SHA-1 session key");
    let sha256 = [0x22u8; 32];
    let token = coturn_token(COTURN_KEYS[1], &sha256, 0, 3600);
    relay_once(server, Credentials::access_token("union", token, sha256)).await.expect("SHA-256 session key");
    // Expired an hour ago: 401, nothing allocated.
    let token = coturn_token(COTURN_KEYS[2], &sha1, 7200, 3600);
    let err = TurnClient::allocate(server, Credentials::access_token("oldempire", token, sha1)).await.unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");
    // A token under another kid than the one it was made for: 401.
    let token = coturn_token(COTURN_KEYS[0], &sha1, 0, 3600);
    let err = TurnClient::allocate(server, Credentials::access_token("oldempire", token, sha1)).await.unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err:?}");
    let (_, stderr) = daemon.stop_with("INT");
    assert!(stderr.contains("allocations_created=2 "), "{stderr}");
}

#[test]
fn our_tokens_open_in_turnutils_oauth() {
    if crate::support::tools::require("turnutils_oauth").is_none() {
        return;
    }
    for (kid, key, alg) in COTURN_KEYS {
        let token_key = AccessTokenKey::parse(&format!("{kid}:{key}:{alg}")).unwrap().0;
        let now = unix_now();
        let token = seal(&token_key, SERVER_NAME, [3; 12], b"abcdefghijklmnopqrst", now, 600).unwrap();
        let out = run_with_timeout(
            Command::new("turnutils_oauth")
                .args(["-d", "-v", "-i", SERVER_NAME, "-j", kid, "-k", key, "-n", alg])
                .args(["-l", &now.to_string(), "-m", "86400", "-t", &STANDARD.encode(&token)]),
            Duration::from_secs(10),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.contains("Valid token"), "{kid}: {out:?}");
        assert!(stdout.contains("mac key: abcdefghijklmnopqrst") && stdout.contains("lifetime: 600"), "{stdout}");
        // Under another server name the tag fails.
        let other = seal(&token_key, "other.example", [3; 12], b"abcdefghijklmnopqrst", now, 600).unwrap();
        let out =
            run_with_timeout(
                Command::new("turnutils_oauth")
                    .args(["-d", "-i", SERVER_NAME, "-j", kid, "-k", key, "-n", alg])
                    .args(["-l", &now.to_string(), "-m", "86400", "-t", &STANDARD.encode(&other)]),
                Duration::from_secs(10),
            );
        assert!(!out.status.success(), "{kid}: {out:?}");
    }
}
