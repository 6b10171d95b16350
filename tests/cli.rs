//! The `switchback` binary: configuration errors and their exit codes, the banner, Binding over UDP
//! and TCP against the running daemon, TURN allocations with the embedded default's and configured
//! credentials, `switchback credentials`, clean shutdown on signals.

mod common;

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine as _;
use common::{Daemon, PROCESS_TIMEOUT, TempFile, run_with_timeout, unix_now};
use hmac::{Hmac, Mac};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::client::{self, ClientError};
use tokio::net::{TcpStream, UdpSocket};

fn switchback(args: &[&str]) -> Output {
    run_with_timeout(Command::new(env!("CARGO_BIN_EXE_switchback")).args(args), PROCESS_TIMEOUT)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit code 2 and exactly one `error:` line on stderr, which contains `needle`.
fn assert_config_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line expected: {err}");
    assert!(errors[0].contains(needle), "`{needle}` not in: {err}");
}

#[test]
fn check_config_accepts_the_shipped_turn_toml() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/turn.toml");
    let out = switchback(&["-c", path, "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("config OK"));
}

#[test]
fn check_config_without_a_file_uses_the_defaults() {
    let out = switchback(&["--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn unknown_key_in_the_file_exits_2_naming_it() {
    let file = TempFile::new("unknown.toml", "listening-port = 3478\nlisten-port = 1\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "listen-port");
}

#[test]
fn bad_value_in_the_file_exits_2_naming_the_key() {
    let file = TempFile::new("badvalue.toml", "listening-port = \"three\"\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "listening-port");
    let file = TempFile::new("badsyntax.toml", "listening-port = = 1\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "line 1");
}

#[test]
fn missing_file_exits_2() {
    let out = switchback(&["-c", "/nonexistent/turn.toml", "--check-config"]);
    assert_config_error(&out, "/nonexistent/turn.toml");
}

#[test]
fn unsupported_flag_is_rejected() {
    let out = switchback(&["--cert", "x", "--check-config"]);
    assert_config_error(&out, "not supported yet: --cert");
    // Without --check-config too: the daemon must not start and ignore it.
    let out = switchback(&["--cert", "x", "--listening-port", "0"]);
    assert_config_error(&out, "not supported yet: --cert");
    let out = switchback(&["--allowed-peer-ip", "10.0.0.0/8", "--check-config"]);
    assert_config_error(&out, "not supported yet: --allowed-peer-ip");
}

#[test]
fn unsupported_key_in_the_file_is_rejected() {
    let file = TempFile::new("tls.toml", "tls-listening-port = 5349\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "not supported yet: --tls-listening-port");
}

#[test]
fn turn_flags_are_accepted() {
    let secret = TempFile::new("flags-secret", "s3cret\n");
    let users = TempFile::new("flags-users", "carol:pw\n");
    let out = switchback(&[
        "--realm",
        "example.org",
        "--relay-ip",
        "127.0.0.1",
        "-X",
        "203.0.113.4/127.0.0.1",
        "--min-port",
        "50000",
        "--max-port",
        "50100",
        "--user-quota",
        "2",
        "--total-quota",
        "100",
        "--max-credential-lifetime",
        "0",
        "--rest-separator",
        "-",
        "--rest-algorithm",
        "sha256",
        "--nonce-lifetime",
        "600",
        "--default-lifetime",
        "300",
        "--max-lifetime",
        "1200",
        "--allow-loopback-peers",
        "--use-auth-secret",
        "--static-auth-secret-file",
        secret.as_str(),
        "--users-file",
        users.as_str(),
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // A file without a secret, or none at all: the error names the key.
    let out = switchback(&["--static-auth-secret-file", "/dev/null", "--check-config"]);
    assert_config_error(&out, "static-auth-secret-file");
    let out = switchback(&["--users-file", "/nonexistent/users", "--check-config"]);
    assert_config_error(&out, "users-file");
    let out = switchback(&["--default-lifetime", "7200", "--check-config"]);
    assert_config_error(&out, "default-lifetime");
}

#[test]
fn min_port_above_max_port_exits_2_naming_the_key() {
    let out = switchback(&["--min-port", "60000", "--max-port", "50000", "--check-config"]);
    assert_config_error(&out, "min-port");
    let file = TempFile::new("ports.toml", "min-port = 60000\nmax-port = 50000\n");
    let out = switchback(&["-c", file.as_str(), "--listening-port", "0"]);
    assert_config_error(&out, "min-port");
}

#[test]
fn secrets_on_the_command_line_warn() {
    let out = switchback(&["-u", "alice:pa55w0rd", "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning:") && err.contains("process list"), "{err}");
    assert!(!err.contains("pa55w0rd"), "the password leaked: {err}");
    let out = switchback(&["--static-auth-secret", "hunter2", "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("process list"));
    assert!(!stderr(&out).contains("hunter2"));
}

#[test]
fn realm_and_secret_flags_run_a_turn_server_that_keeps_the_secret_to_itself() {
    let secret = "cli-s3cret-b7f1";
    let daemon = Daemon::start(&["--realm", "x", "--static-auth-secret", secret, "--listening-port", "0"]);
    let banner = daemon.banner.join("\n");
    assert!(banner.contains("turn: realm x"), "{banner}");
    assert!(!banner.contains(secret), "a configured secret is never printed: {banner}");
    let udp = daemon.udp[0];
    let (username, password) = mint(secret, "carol", 3600);
    let relayed = allocate(udp, &username, &password).expect("REST credentials from the flag's secret");
    assert!(relayed.ip().is_loopback(), "{relayed}");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("process list"), "the warning is logged: {err}");
    assert!(!err.contains(secret), "the secret leaked into the log: {err}");
}

#[test]
fn static_auth_secret_file_is_read() {
    let file = TempFile::new("secret-file", "# newest first\nfile-s3cret-new\nfile-s3cret-old\n");
    let daemon = Daemon::start(&["--static-auth-secret-file", file.as_str(), "--listening-port", "0"]);
    let banner = daemon.banner.join("\n");
    assert!(banner.contains("turn: realm switchback.local"), "{banner}");
    assert!(!banner.contains("file-s3cret"), "{banner}");
    let udp = daemon.udp[0];
    // Both secrets verify (rotation).
    for secret in ["file-s3cret-new", "file-s3cret-old"] {
        let (username, password) = mint(secret, "dave", 600);
        allocate(udp, &username, &password).unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
    let (username, _) = mint("file-s3cret-new", "dave", 600);
    let err = allocate(udp, &username, "not-the-password").unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err}");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("file-s3cret"), "{err}");
}

#[test]
fn a_config_without_credentials_runs_stun_only_and_says_so() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/turn.toml");
    let daemon = Daemon::start(&["-c", path, "--listening-port", "0"]);
    assert!(daemon.banner.iter().any(|l| l.contains("turn: off")), "{:?}", daemon.banner);
    assert!(!daemon.banner.iter().any(|l| l.contains("iceServers")), "{:?}", daemon.banner);
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("STUN only"), "{err}");
}

#[test]
fn credentials_mints_a_rest_username_and_password() {
    let secret = TempFile::new("credentials-secret", "mint-s3cret\nolder-secret\n");
    let out =
        switchback(&["credentials", "--user", "alice", "--ttl", "1h", "--static-auth-secret-file", secret.as_str()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no `{name}` line: {stdout}"))
            .trim()
            .to_owned()
    };
    let username = field("username:");
    let password = field("password:");
    let (expiry, user) = username.split_once(':').expect("<expiry>:<user>");
    assert_eq!(user, "alice");
    let expiry: u64 = expiry.parse().expect("a unix time");
    let expected = unix_now() + 3600;
    assert!(expiry.abs_diff(expected) <= 5, "expiry {expiry}, expected about {expected}");
    assert_eq!(password, hmac_sha1_base64("mint-s3cret", &username), "the first secret mints");
    assert!(!stdout.contains("mint-s3cret"), "{stdout}");

    let json = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let turn = &v["iceServers"][1];
    assert_eq!(turn["username"], username.as_str());
    assert_eq!(turn["credential"], password.as_str());
    assert_eq!(turn["urls"][0], "turn:127.0.0.1:3478?transport=udp");

    // The TTL is capped by max-credential-lifetime; the host of the urls can be given.
    let out = switchback(&[
        "credentials",
        "--user",
        "bob",
        "--ttl",
        "2d",
        "--max-credential-lifetime",
        "600",
        "--static-auth-secret-file",
        secret.as_str(),
        "--url-host",
        "turn.example.org",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("capped"), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stun:turn.example.org:3478"), "{stdout}");
    assert!(stdout.contains("in 10m"), "{stdout}");
}

#[test]
fn credentials_without_a_secret_exits_2() {
    let out = switchback(&["credentials", "--user", "alice"]);
    assert_config_error(&out, "no REST secret");
    assert!(out.stdout.is_empty());
    let out = switchback(&["credentials", "--user", "alice", "--ttl", "soon", "--static-auth-secret", "s"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
}

#[test]
fn default_daemon_prints_ice_servers_that_allocate() {
    let daemon = Daemon::start(&["--listening-port", "0"]);
    let banner = daemon.banner.join("\n");
    assert!(banner.contains("loopback peers: allowed"), "{banner}");
    let json = daemon.banner.iter().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON: {banner}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let udp = daemon.udp[0];
    assert_eq!(v["iceServers"][0]["urls"][0], format!("stun:{udp}"));
    let turn = &v["iceServers"][1];
    assert_eq!(turn["urls"][0], format!("turn:{udp}?transport=udp"));
    let username = turn["username"].as_str().expect("username");
    let credential = turn["credential"].as_str().expect("credential");
    assert!(username.ends_with(":demo"), "{username}");
    let try_it = format!("-u demo -e 127.0.0.1 -r 3480 -p {} -n 10 -m 1 127.0.0.1", udp.port());
    assert!(banner.contains(&try_it) && banner.contains("turnutils_peer -L 127.0.0.1 -p 3480"), "{banner}");

    let relayed = allocate(udp, username, credential).expect("the banner's credentials allocate");
    assert_eq!(relayed.ip(), "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
    assert_ne!(relayed.port(), 0);
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn static_users_allocate_and_a_wrong_password_gets_401() {
    let users = TempFile::new("users-file", "# name:password\ncarol:c4rol-pw\n");
    let daemon =
        Daemon::start(&["--realm", "r", "--user", "bob:pw", "--users-file", users.as_str(), "--listening-port", "0"]);
    let udp = daemon.udp[0];
    let relayed = allocate(udp, "bob", "pw").expect("bob:pw allocates");
    assert!(relayed.ip().is_loopback() && relayed.port() != 0, "{relayed}");
    allocate(udp, "carol", "c4rol-pw").expect("a users-file user allocates");
    let err = allocate(udp, "bob", "wrong").unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 401, .. }), "{err}");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("c4rol-pw"), "{err}");
}

/// base64(HMAC-SHA1(secret, username)), computed independently of the crate.
fn hmac_sha1_base64(secret: &str, username: &str) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A REST username for `user` valid for `ttl` seconds, and its password under `secret`.
fn mint(secret: &str, user: &str, ttl: u64) -> (String, String) {
    let username = format!("{}:{user}", unix_now() + ttl);
    let password = hmac_sha1_base64(secret, &username);
    (username, password)
}

/// Allocates on `server` and returns the relayed address (the allocation is closed again).
fn allocate(server: SocketAddr, username: &str, password: &str) -> Result<SocketAddr, ClientError> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = tokio::time::timeout(
            Duration::from_secs(15),
            TurnClient::allocate(server, Credentials::new(username, password)),
        )
        .await
        .expect("allocation within 15 s")?;
        let relayed = client.relayed_addr();
        client.close().await?;
        Ok(relayed)
    })
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(switchback(&["--listening-port", "abc"]).status.code(), Some(2));
    assert_eq!(switchback(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(switchback(&["--log-format", "xml", "--check-config"]).status.code(), Some(2));
    let out = switchback(&["--no-udp", "--no-tcp", "--check-config"]);
    assert_config_error(&out, "no-tcp");
}

#[test]
fn flags_override_the_file() {
    // The file alone is invalid (nothing to listen on); it still names the file.
    let file = TempFile::new("override.toml", "no-udp = true\nno-tcp = true\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "no-tcp");
    // A valid file with a flag on top.
    let file = TempFile::new("override2.toml", "listening-port = 1\nno-tcp = true\n");
    let daemon = Daemon::start(&["-c", file.as_str(), "--listening-port", "0"]);
    assert!(daemon.tcp.is_empty(), "no-tcp from the file: {:?}", daemon.banner);
    assert_eq!(daemon.udp.len(), 1);
    assert_ne!(daemon.udp[0].port(), 1, "the flag wins");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
}

#[test]
fn daemon_serves_binding_and_stops_on_sigterm() {
    let daemon = Daemon::start(&["--listening-port", "0"]);
    assert_eq!(daemon.udp.len(), 1, "{:?}", daemon.banner);
    assert_eq!(daemon.tcp.len(), 1, "{:?}", daemon.banner);
    let (udp, tcp) = (daemon.udp[0], daemon.tcp[0]);
    assert!(udp.ip().is_loopback() && udp.port() != 0);
    assert!(tcp.ip().is_loopback() && tcp.port() != 0);
    assert!(daemon.banner.iter().any(|l| l.starts_with("stun:")), "{:?}", daemon.banner);
    let try_it = format!("turnutils_stunclient -p {} 127.0.0.1", udp.port());
    assert!(daemon.banner.iter().any(|l| l.contains(&try_it)), "{:?}", daemon.banner);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mapped = client::binding_udp(&socket, udp, Duration::from_secs(5)).await.unwrap();
        assert_eq!(mapped, socket.local_addr().unwrap());

        let mut stream = TcpStream::connect(tcp).await.unwrap();
        let mapped = client::binding_stream(&mut stream, Duration::from_secs(5)).await.unwrap();
        assert_eq!(mapped, stream.local_addr().unwrap());
    });

    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
}

#[test]
fn daemon_stops_on_sigint_and_logs_json() {
    let daemon = Daemon::start(&["-p", "0", "--no-tcp", "--log-format", "json"]);
    assert!(daemon.tcp.is_empty());
    let (status, err) = daemon.stop_with("INT");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    let first = err.lines().next().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
    assert!(v.get("level").is_some(), "{first}");
}

#[test]
fn port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = switchback(&["-p", &port, "--no-udp"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(&port), "{}", stderr(&out));
}

#[test]
fn turn_on_a_wildcard_listener_needs_a_relay_ip() {
    let out = switchback(&["--listening-ip", "0.0.0.0", "--realm", "r", "--user", "a:b", "--check-config"]);
    assert_config_error(&out, "relay-ip");
    let ok = switchback(&[
        "--listening-ip",
        "0.0.0.0",
        "--relay-ip",
        "127.0.0.1",
        "--realm",
        "r",
        "--user",
        "a:b",
        "--check-config",
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // The development default (no file, no credentials) is TURN too.
    let dev = switchback(&["--listening-ip", "0.0.0.0", "--check-config"]);
    assert_config_error(&dev, "relay-ip");
    // STUN only (a file without credentials): nothing to advertise, so a wildcard is fine.
    let file = TempFile::new("stun-only.toml", "listening-ip = [\"0.0.0.0\"]\n");
    let stun = switchback(&["-c", file.as_str(), "--check-config"]);
    assert!(stun.status.success(), "{}", stderr(&stun));
}

#[test]
fn quota_and_bandwidth_flags_are_accepted() {
    let out = switchback(&[
        "--max-permissions",
        "8",
        "--max-channels",
        "4",
        "--max-bps",
        "125000",
        "--user-max-bps",
        "250000",
        "--bps-capacity",
        "12500000",
        "--check-config",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = switchback(&["--max-bps", "-5", "--check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
