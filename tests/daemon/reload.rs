//! Reload without restart (SIGHUP): a new REST secret takes over for new allocations while an
//! allocation made with the old one keeps relaying; a configuration that does not load is refused
//! and the old one stays in force.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::{Daemon, PROCESS_TIMEOUT, TempFile, udp_echo_peer, unix_now};
use switchback::auth::{RestCredentials, Secret};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};

const STEP: Duration = Duration::from_secs(5);

fn config(secret: &str, log_level: &str) -> String {
    format!(
        "listening-port = 0\nno-tls = true\nrealm = \"r\"\nallow-loopback-peers = true\n\
         static-auth-secret = [\"{secret}\"]\nlog-level = \"{log_level}\"\n"
    )
}

fn credentials(secret: &str, user: &str) -> Credentials {
    let (username, password) = RestCredentials::new(vec![Secret::new(secret)]).mint(user, 3600, unix_now()).unwrap();
    Credentials::new(username, password)
}

async fn allocate(udp: SocketAddr, creds: Credentials) -> Result<TurnClient, ClientError> {
    tokio::time::timeout(STEP, TurnClient::allocate(udp, creds)).await.expect("answer in time")
}

async fn echo(client: &TurnClient, peer: SocketAddr, message: &[u8]) {
    crate::support::echo_through(client, peer, message).await;
}

#[test]
fn sighup_swaps_the_secret_and_the_live_allocation_keeps_relaying() {
    let file = TempFile::new("reload.toml", &config("old-secret", "info"));
    let daemon = Daemon::start(&["-c", file.as_str()]);
    let udp = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (peer, _echo) = rt.block_on(udp_echo_peer());
    let live = rt.block_on(async {
        let client = allocate(udp, credentials("old-secret", "alice")).await.unwrap();
        client.create_permission(peer).await.unwrap();
        echo(&client, peer, b"before").await;
        client
    });
    // The new secret is refused before the reload.
    let err = rt.block_on(allocate(udp, credentials("new-secret", "bob"))).unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err}");

    // The new file also raises the log level to debug.
    std::fs::write(&file.path, config("new-secret", "debug")).unwrap();
    daemon.guard.signal("HUP");
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let fresh = loop {
        match rt.block_on(allocate(udp, credentials("new-secret", "bob"))) {
            Ok(client) => break client,
            Err(ClientError::ErrorResponse { code: 401, .. }) => {
                assert!(Instant::now() < deadline, "SIGHUP did not install the new secret");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("unexpected: {e}"),
        }
    };
    // Old-secret credentials no longer make allocations...
    let err = rt.block_on(allocate(udp, credentials("old-secret", "carol"))).unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err}");
    // ...but the allocation made with them is untouched: it relays, refreshes, renews permissions.
    rt.block_on(async {
        echo(&live, peer, b"after the reload").await;
        assert_eq!(live.refresh(600).await.unwrap(), 600);
        live.create_permission(peer).await.unwrap();
        fresh.create_permission(peer).await.unwrap();
        echo(&fresh, peer, b"new one").await;
    });

    // A broken file: refused, the running configuration stays.
    std::fs::write(&file.path, "static-auth-secret = [\"x\"\nthis is not toml").unwrap();
    daemon.guard.signal("HUP");
    daemon.wait_for_log("reload refused", 1);
    let again = rt.block_on(allocate(udp, credentials("new-secret", "dave"))).expect("the new secret still works");
    rt.block_on(async {
        echo(&live, peer, b"after the broken reload").await;
        again.close().await.unwrap();
        fresh.close().await.unwrap();
        live.close().await.unwrap();
    });

    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("configuration reloaded"), "{err}");
    assert!(err.contains("reload refused") && err.contains("TOML syntax error"), "{err}");
    // The log level came from the reloaded file: debug lines at shutdown (unless RUST_LOG rules).
    if std::env::var_os("RUST_LOG").is_none() {
        assert!(err.contains("udp listener stopped"), "{err}");
    }
}

/// The faces' keys rotate on reload like every other secret: after new `api-key`, `token-key` and
/// `admin-key` files and `POST /admin/reload`, the old keys are refused at once and the new ones
/// work — a token signed with a removed key buys no TURN credentials.
#[test]
fn reload_rotates_the_api_token_and_admin_keys() {
    use crate::support::http_request;
    const OLD_TOKEN_KEY: &str = "k1:old-token-key-of-thirty-two-bytes!!";
    const NEW_TOKEN_KEY: &str = "k2:new-token-key-of-thirty-two-bytes!!";
    let (old_api, new_api) = ("old-api-key-0123456789", "new-api-key-0123456789");
    let (old_admin, new_admin) = ("old-admin-key-0123456789", "new-admin-key-0123456789");
    let token_keys = TempFile::new("rotate-token-keys", &format!("{OLD_TOKEN_KEY}\n"));
    let api_keys = TempFile::new("rotate-api-keys", &format!("{old_api}\n"));
    let admin_key = TempFile::new("rotate-admin-key", &format!("{old_admin}\n"));
    let daemon = Daemon::start(&[
        "--listening-port",
        "0",
        "--no-tls",
        "--static-auth-secret",
        "s3cret",
        "--api-listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--token-key-file",
        token_keys.as_str(),
        "--api-key-file",
        api_keys.as_str(),
        "--admin-key-file",
        admin_key.as_str(),
    ]);
    let (api, admin) = (daemon.http_addr("api"), daemon.http_addr("admin"));
    let bearer = |key: &str| format!("Bearer {key}");
    let mint =
        |key: &str| http_request(api, "POST", "/v1/tokens", &[("Authorization", &bearer(key))], r#"{"user":"ann"}"#);
    let trade =
        |token: &str| http_request(api, "POST", "/v1/relay-configuration", &[("Authorization", &bearer(token))], "");
    let status = |key: &str| http_request(admin, "GET", "/admin/status", &[("Authorization", &bearer(key))], "").status;
    let r = mint(old_api);
    assert_eq!(r.status, 200, "{r:?}");
    let old_token = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(trade(&old_token).status, 200);

    std::fs::write(&token_keys.path, format!("{NEW_TOKEN_KEY}\n")).unwrap();
    std::fs::write(&api_keys.path, format!("{new_api}\n")).unwrap();
    std::fs::write(&admin_key.path, format!("{new_admin}\n")).unwrap();
    let r = http_request(admin, "POST", "/admin/reload", &[("Authorization", &bearer(old_admin))], "");
    assert_eq!(r.status, 200, "{r:?}");

    assert_eq!(mint(old_api).status, 401, "the removed API key");
    let r = mint(new_api);
    assert_eq!(r.status, 200, "{r:?}");
    let new_token = r.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(trade(&old_token).status, 401, "a token of the removed token key");
    assert_eq!(trade(&new_token).status, 200);
    assert_eq!(status(old_admin), 401, "the removed admin key");
    assert_eq!(status(new_admin), 200);
}

/// A reload names the changed options it cannot apply (and keeps their old values), and does not
/// name those it applied.
#[test]
fn a_reload_names_the_changes_that_need_a_restart() {
    let base = config("s3cret", "info");
    let file = TempFile::new("restart.toml", &base);
    let daemon = Daemon::start(&["-c", file.as_str()]);
    // Nothing changed: no restart needed.
    daemon.guard.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 1);
    assert!(!daemon.log().contains("restart_needed"), "{}", daemon.log());

    // A quota (reloadable), a bandwidth limit and the worker count (not reloadable).
    std::fs::write(&file.path, format!("{base}user-quota = 5\nmax-bps = 100000\nworkers = 1\n")).unwrap();
    daemon.guard.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 2);
    let log = daemon.log();
    let warning =
        log.lines().find(|l| l.contains("only take effect after a restart")).unwrap_or_else(|| panic!("{log}"));
    assert!(warning.contains("restart_needed=max-bps,workers"), "{warning}");
    // Still named on the next reload: the old values are still in force.
    daemon.guard.signal("HUP");
    daemon.wait_for_log("configuration reloaded", 3);
    assert_eq!(daemon.log().matches("restart_needed=max-bps,workers").count(), 2, "{}", daemon.log());
    let (status, _) = daemon.stop_with("INT");
    assert!(status.success());
}
