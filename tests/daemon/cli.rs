//! The `switchback` binary: configuration errors and their exit codes, the banner, Binding over UDP
//! and TCP against the running daemon, TURN allocations with the embedded default's and configured
//! credentials, `switchback credentials`, clean shutdown on signals.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use std::sync::Arc;

use crate::support::{Daemon, PROCESS_TIMEOUT, TempFile, run_with_timeout, unix_now};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;
use switchback::client::turn::{Credentials, TurnClient};
use switchback::client::{self, ClientError, TlsClient};
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

/// `switchback ARGS` with the variables `env` set on the child only.
fn switchback_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchback"));
    command.args(args).envs(env.iter().copied());
    run_with_timeout(&mut command, PROCESS_TIMEOUT)
}

#[test]
fn a_misspelled_key_is_named_at_its_file_and_line_with_the_key_meant() {
    let file = TempFile::new("typo.toml", "realm = \"example.org\"\n\n# the port\nlistenning-port = 3479\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    let expected =
        format!("error: {}:4: unknown key \"listenning-port\" (did you mean \"listening-port\"?)", file.as_str());
    assert_config_error(&out, &expected);
}

#[test]
fn environment_variables_override_the_file_and_flags_override_them() {
    // The file alone is refused, naming its line: min-port above max-port.
    let file = TempFile::new("env.toml", "max-port = 1000\nmin-port = 2000\n");
    let check = |env: &[(&str, &str)], flags: &[&str]| {
        let args: Vec<&str> =
            ["-c", file.as_str(), "--check-config"].into_iter().chain(flags.iter().copied()).collect();
        switchback_with_env(&args, env)
    };
    let file_line = format!("{}:2: invalid value for `min-port`: 2000 is above max-port (1000)", file.as_str());
    assert_config_error(&check(&[], &[]), &file_line);
    // The environment wins over the file…
    let out = check(&[("SWITCHBACK_MIN_PORT", "500"), ("SWITCHBACK_LISTENING_IP", "127.0.0.1,::1")], &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("config OK"));
    let out = check(&[("SWITCHBACK_MIN_PORT", "1500")], &[]);
    assert_config_error(&out, "error: invalid value for `min-port`: 1500 is above max-port (1000)");
    // …and a flag over the environment.
    let out = check(&[("SWITCHBACK_MIN_PORT", "500")], &["--min-port", "3000"]);
    assert_config_error(&out, "error: invalid value for `min-port`: 3000 is above max-port (1000)");
    let out = check(&[("SWITCHBACK_MIN_PORT", "1500")], &["--min-port", "600"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    // A value the key does not take names the variable.
    let out = check(&[("SWITCHBACK_MIN_PORT", "low")], &[]);
    assert_config_error(&out, "error: SWITCHBACK_MIN_PORT: invalid value for `min-port`");
}

#[test]
fn an_unknown_switchback_variable_is_an_error_but_the_test_switches_are_not() {
    let out = switchback_with_env(&["--check-config"], &[("SWITCHBACK_RELM", "example.org")]);
    assert_config_error(&out, "unknown environment variable SWITCHBACK_RELM (did you mean SWITCHBACK_REALM?)");
    let out =
        switchback_with_env(&["--check-config"], &[("SWITCHBACK_WRITE_MAN", "1"), ("SWITCHBACK_FUZZ_TRACE", "1")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn missing_file_exits_2() {
    let out = switchback(&["-c", "/nonexistent/turn.toml", "--check-config"]);
    assert_config_error(&out, "/nonexistent/turn.toml");
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
        "--allowed-peer-ip",
        "10.0.0.0/8",
        "--denied-peer-ip",
        "8.8.4.0/24@5000-6000",
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
        "--public-host",
        "turn.example.org",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains("capped"), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stun:turn.example.org:3478"), "{stdout}");
    assert!(stdout.contains("in 10m"), "{stdout}");
}

/// The `iceServers` urls `switchback credentials` prints with these extra arguments, and its stderr.
fn credential_urls(args: &[&str]) -> (Vec<String>, String) {
    let mut argv = vec!["credentials", "--user", "alice"];
    argv.extend_from_slice(args);
    let out = switchback(&argv);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = stdout.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON: {stdout}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let urls = v["iceServers"].as_array().unwrap().iter().flat_map(|s| s["urls"].as_array().unwrap().clone());
    (urls.map(|u| u.as_str().unwrap().to_owned()).collect(), stderr(&out))
}

#[test]
fn credentials_name_the_public_host_of_the_file_and_of_its_old_name() {
    let secret = TempFile::new("public-host-secret", "s3cret\n");
    let with = |key: &str| {
        let text = format!("static-auth-secret-file = {:?}\n{key} = \"turn.example.org\"\n", secret.as_str());
        TempFile::new(&format!("public-host-{key}.toml"), &text)
    };
    let all_on = |urls: &[String], host: &str| urls.iter().all(|u| u.contains(&format!(":{host}:3478")));
    // public-host in the file: every url names it, no warning.
    let (urls, err) = credential_urls(&["-c", with("public-host").as_str()]);
    assert!(all_on(&urls, "turn.example.org") && urls.len() == 3, "{urls:?}");
    assert!(!err.contains("warning"), "{err}");
    // api-url-host, its old name, is honoured too, with a warning.
    let (urls, err) = credential_urls(&["-c", with("api-url-host").as_str()]);
    assert!(all_on(&urls, "turn.example.org"), "{urls:?}");
    assert!(err.contains("warning: api-url-host is deprecated"), "{err}");
    // The flag wins over the file; --url-host still works, with a warning.
    let (urls, _) = credential_urls(&["-c", with("public-host").as_str(), "--public-host", "other.example"]);
    assert!(all_on(&urls, "other.example"), "{urls:?}");
    let (urls, err) = credential_urls(&["--static-auth-secret-file", secret.as_str(), "--url-host", "old.example"]);
    assert!(all_on(&urls, "old.example"), "{urls:?}");
    assert!(err.contains("--url-host is deprecated"), "{err}");
    // Without it, the listening address.
    let (urls, _) = credential_urls(&["--static-auth-secret-file", secret.as_str()]);
    assert!(all_on(&urls, "127.0.0.1"), "{urls:?}");
}

#[test]
fn check_config_warns_about_addresses_the_host_does_not_have() {
    // TEST-NET-1 and -2 (RFC 5737): no host has them (binding to them sends nothing).
    #[rustfmt::skip]
    let out = switchback(&[
        "--listening-ip", "127.0.0.1", "--listening-ip", "192.0.2.1", "--relay-ip", "198.51.100.1", "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "a warning, not an error: {}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "config OK");
    let err = stderr(&out);
    assert!(err.contains("warning: listening-ip 192.0.2.1: not an address of this host"), "{err}");
    assert!(err.contains("warning: relay-ip 198.51.100.1: not an address of this host"), "{err}");
    assert!(!err.contains("127.0.0.1"), "loopback is fine: {err}");
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
    // The banner is one JSON object on stdout (the support reads its listeners from it).
    let daemon = Daemon::start(&["-p", "0", "--no-tcp", "--log-format", "json"]);
    assert!(daemon.tcp.is_empty());
    assert_eq!(daemon.udp.len(), 1);
    assert!(daemon.banner.iter().any(|l| l.starts_with("stun:")), "{:?}", daemon.banner);
    let (status, err) = daemon.stop_with("INT");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    // stderr is JSON only, every line, and the listeners and the shutdown summary are events.
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(err.contains(r#""message":"listening""#) && err.contains(r#""message":"stopped""#), "{err}");
}

#[test]
fn human_logs_do_not_repeat_the_banner() {
    let daemon = Daemon::start(&["-p", "0", "--no-tcp"]);
    let (status, err) = daemon.stop_with("INT");
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert!(!err.contains("listening"), "the listeners are on stdout already: {err}");
}

#[test]
fn port_in_use_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    // (The OS hands out ports inside the default relay range: move the range out of the way.)
    let out = switchback(&["-p", &port, "--no-udp", "--min-port", "20000", "--max-port", "20999"]);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(stderr(&out).contains(&port), "{}", stderr(&out));
}

/// SO_REUSEPORT joins the workers of one process; a second switchback on the same UDP address
/// must not start (it used to, and answered a share of the clients). The error names the address
/// and says "in use" once.
#[test]
fn a_second_instance_on_the_same_udp_port_fails_naming_it() {
    let first = Daemon::start_loopback(&["--workers", "2"]);
    let taken = first.udp[0];
    let port = taken.port().to_string();
    // (The OS hands out ports inside the default relay range: move the range out of the way.)
    let second = |workers: &str| {
        switchback(&[
            "--realm",
            "r",
            "--user",
            "u:pw",
            "--listening-port",
            &port,
            "--no-tcp",
            "--no-tls",
            "--workers",
            workers,
            "--min-port",
            "20000",
            "--max-port",
            "20999",
        ])
    };
    let out = second("2");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the second instance must not start; stderr: {err}");
    assert!(err.contains(&format!("udp {taken}")), "{err}");
    assert_eq!(err.matches("in use").count(), 1, "{err}");
    // One worker, no SO_REUSEPORT at all: refused the same way.
    let out = second("1");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

/// A wildcard listener with TURN needs no relay-ip: relay sockets open on the address each
/// Allocate arrived on (IP_PKTINFO). The daemon starts and relays through 127.0.0.2.
#[test]
fn turn_on_a_wildcard_listener_needs_no_relay_ip() {
    let ok = switchback(&["--listening-ip", "0.0.0.0", "--realm", "r", "--user", "a:b", "--check-config"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let dev = switchback(&["--listening-ip", "0.0.0.0", "--check-config"]);
    assert!(dev.status.success(), "{}", stderr(&dev));
    let daemon = Daemon::start(&[
        "--listening-ip",
        "0.0.0.0",
        "--listening-port",
        "0",
        "--realm",
        "r",
        "--user",
        "a:b",
        "--allow-loopback-peers",
    ]);
    let udp = daemon.udp[0];
    assert!(udp.ip().is_unspecified(), "{:?}", daemon.banner);
    let server = std::net::SocketAddr::new("127.0.0.2".parse().unwrap(), udp.port());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let creds = switchback::client::turn::Credentials::new("a", "b");
        let client = switchback::client::turn::TurnClient::allocate(server, creds).await.expect("an allocation");
        assert_eq!(client.relayed_addr().ip(), server.ip());
    });
}

#[test]
fn sighup_reloads_the_revocation_file() {
    let revoked = TempFile::new("revoked", "# nobody yet\n");
    let daemon = Daemon::start(&[
        "--realm",
        "r",
        "--user",
        "bob:pw",
        "--user",
        "carol:pw2",
        "--revocation-file",
        revoked.as_str(),
        "--listening-port",
        "0",
    ]);
    let udp = daemon.udp[0];
    allocate(udp, "bob", "pw").expect("bob allocates before he is revoked");

    std::fs::write(&revoked.path, "# revoked\nbob\n").unwrap();
    daemon.guard.signal("HUP");
    let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
    loop {
        match allocate(udp, "bob", "pw") {
            Err(ClientError::ErrorResponse { code: 403, .. }) => break,
            Ok(_) => assert!(std::time::Instant::now() < deadline, "SIGHUP did not revoke bob"),
            Err(e) => panic!("unexpected: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    allocate(udp, "carol", "pw2").expect("carol is not on the list");

    // A file that cannot be read keeps the old list.
    std::fs::remove_file(&revoked.path).unwrap();
    daemon.guard.signal("HUP");
    daemon.wait_for_log("reload refused", 1);
    let err = allocate(udp, "bob", "pw").unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 403, .. }), "{err}");

    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("configuration reloaded"), "{err}");
    assert!(err.contains("reload refused") && err.contains("keeping the old"), "{err}");
}

#[test]
fn abuse_control_flags_are_accepted_and_checked() {
    let revoked = TempFile::new("revoked-flags", "mallory\n");
    let out = switchback(&[
        "--rate-limit-unauth",
        "5/s:10",
        "--rate-limit-allocate",
        "0",
        "--rate-limit-binding",
        "--revoked-users",
        "eve",
        "--revoked-users",
        "1800000000:trudy",
        "--revocation-file",
        revoked.as_str(),
        "--strict-expiry",
        "--check-config",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let out = switchback(&["--rate-limit-unauth", "5", "--check-config"]);
    assert_config_error(&out, "rate-limit-unauth");
    let out = switchback(&["--revocation-file", "/nonexistent/revoked", "--check-config"]);
    assert_config_error(&out, "revocation-file");
}

// ---------------------------------------------------------------------------------------------------
// TURN over TLS: certificate errors, the development default's certificate, reload on SIGHUP.

/// A certificate for 127.0.0.1 and its key, as PEM files in a fresh directory (removed on drop).
struct CertFiles {
    dir: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl CertFiles {
    fn new(name: &str) -> CertFiles {
        let dir = std::env::temp_dir().join(format!("switchback-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = CertFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), dir };
        files.write(&new_certificate());
        files
    }

    /// Replaces the files the way certbot's renewals appear to a reader: each one whole, at once.
    fn write(&self, (cert, key): &(String, String)) {
        for (path, text) in [(&self.cert, cert), (&self.key, key)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
    }

    fn args(&self) -> [&str; 4] {
        ["--cert", self.cert.to_str().unwrap(), "--pkey", self.key.to_str().unwrap()]
    }
}

impl Drop for CertFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh self-signed certificate for 127.0.0.1 and its key, in PEM.
fn new_certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn der_of(pem: &str) -> Vec<u8> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
}

/// Accepts any certificate: the tests compare what was presented themselves.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client that takes whatever certificate the server presents.
fn any_certificate_client() -> TlsClient {
    let provider = switchback::io::tls::crypto_provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![switchback::io::tls::ALPN_STUN_TURN.to_vec()];
    TlsClient::with_config("localhost", Arc::new(config)).unwrap()
}

/// Connects over TLS, checks a Binding on the connection, and returns the certificate presented.
async fn presented_certificate(server: SocketAddr) -> Vec<u8> {
    let mut stream = any_certificate_client().connect(server, Duration::from_secs(5)).await.unwrap();
    let local = stream.get_ref().0.local_addr().unwrap();
    let certificate = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    assert_eq!(client::binding_stream(&mut stream, Duration::from_secs(5)).await.unwrap(), local);
    certificate
}

#[test]
fn cert_and_pkey_errors_exit_2_naming_the_key() {
    let good = CertFiles::new("errors");
    let (cert, key) = (good.cert.to_str().unwrap(), good.key.to_str().unwrap());
    assert_config_error(&switchback(&["--cert", cert, "--check-config"]), "pkey");
    assert_config_error(&switchback(&["--pkey", key, "--check-config"]), "cert");
    let file = TempFile::new("cert-only.toml", &format!("cert = {cert:?}\n"));
    assert_config_error(&switchback(&["-c", file.as_str(), "--check-config"]), "pkey");

    let garbage = TempFile::new("garbage.pem", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n");
    let empty = TempFile::new("empty.pem", "");
    for (c, k, key_named) in [
        (garbage.as_str(), key, "`cert`"),
        (empty.as_str(), key, "`cert`"),
        ("/nonexistent/cert.pem", key, "`cert`"),
        (cert, garbage.as_str(), "`pkey`"),
        (cert, cert, "`pkey`"),
        (cert, "/nonexistent/key.pem", "`pkey`"),
    ] {
        let out = switchback(&["--cert", c, "--pkey", k, "--check-config"]);
        assert_config_error(&out, key_named);
        // The daemon does not start with them either.
        let out = switchback(&["--cert", c, "--pkey", k, "-p", "0"]);
        assert_config_error(&out, key_named);
    }
    // A key that belongs to another certificate.
    let other = CertFiles::new("errors-other");
    let out = switchback(&["--cert", cert, "--pkey", other.key.to_str().unwrap(), "--check-config"]);
    assert_config_error(&out, "`pkey`");
    assert!(!stderr(&out).contains("PRIVATE KEY"), "{}", stderr(&out));
    // A good pair checks; with --no-tls it is not even read.
    let out = switchback(&["--cert", cert, "--pkey", key, "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let out = switchback(&["--cert", garbage.as_str(), "--pkey", key, "--no-tls", "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));

    // `switchback credentials` lists the turns: URL of a configuration with a certificate.
    let file = TempFile::new(
        "credentials-tls.toml",
        &format!("static-auth-secret = [\"s\"]\ncert = {cert:?}\npkey = {key:?}\ntls-listening-port = 443\n"),
    );
    let out = switchback(&["credentials", "-c", file.as_str(), "--user", "alice"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""turns:127.0.0.1:443?transport=tcp""#), "{stdout}");
}

#[test]
fn development_default_serves_tls_with_a_printed_fingerprint() {
    let daemon = Daemon::start(&["--listening-port", "0"]);
    let banner = daemon.banner.join("\n");
    assert_eq!(daemon.tls.len(), 1, "{banner}");
    let tls = daemon.tls[0];
    assert!(tls.ip().is_loopback() && tls.port() != 0, "{tls}");
    let fingerprint = daemon
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("tls: self-signed development certificate for localhost, 127.0.0.1, ::1, "))
        .and_then(|l| l.strip_prefix("SHA-256 fingerprint "))
        .unwrap_or_else(|| panic!("no fingerprint line: {banner}"));
    let json = daemon.banner.iter().find(|l| l.starts_with('{')).unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let urls: Vec<&str> = v["iceServers"][1]["urls"].as_array().unwrap().iter().filter_map(|u| u.as_str()).collect();
    assert!(urls.contains(&format!("turns:{tls}?transport=tcp").as_str()), "{urls:?}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let certificate = rt.block_on(presented_certificate(tls));
    let digest: Vec<String> = sha2::Sha256::digest(&certificate).iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(digest.join(":"), fingerprint, "the banner's fingerprint is the certificate's");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");

    // --no-tls: no TLS listener, no certificate, no turns: URL.
    let daemon = Daemon::start(&["--listening-port", "0", "--no-tls"]);
    let banner = daemon.banner.join("\n");
    assert!(daemon.tls.is_empty() && !banner.contains("fingerprint") && !banner.contains("turns:"), "{banner}");
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");

    // A configuration without cert and pkey runs no TLS listener, and says so.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/turn.toml");
    let daemon = Daemon::start(&["-c", path, "--listening-port", "0"]);
    assert!(daemon.tls.is_empty(), "{:?}", daemon.banner);
    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("no TLS listener"), "{err}");
}

#[test]
fn sighup_reloads_the_certificate_and_live_allocations_go_on() {
    let files = CertFiles::new("reload");
    let first = std::fs::read_to_string(&files.cert).unwrap();
    let mut args = vec!["--realm", "r", "--user", "u:pw", "--allow-loopback-peers", "-p", "0"];
    args.extend(files.args());
    let daemon = Daemon::start(&args);
    assert_eq!(daemon.tls.len(), 1, "{:?}", daemon.banner);
    assert!(!daemon.banner.iter().any(|l| l.contains("self-signed")), "{:?}", daemon.banner);
    let (udp, tls) = (daemon.udp[0], daemon.tls[0]);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let step = Duration::from_secs(5);
    // An allocation over UDP relaying to an echo peer, and a live TLS connection.
    let (peer, client, mut live) = rt.block_on(async {
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let client = TurnClient::allocate(udp, Credentials::new("u", "pw")).await.unwrap();
        client.create_permission(peer.local_addr().unwrap()).await.unwrap();
        let live = any_certificate_client().connect(tls, step).await.unwrap();
        assert_eq!(presented_certificate(tls).await, der_of(&first));
        (peer, client, live)
    });
    let echo = |client: &TurnClient, peer: &UdpSocket, message: &[u8]| {
        rt.block_on(async {
            client.send_to(message, peer.local_addr().unwrap()).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = tokio::time::timeout(step, peer.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], message);
            peer.send_to(&buf[..n], from).await.unwrap();
            let (n, _) = tokio::time::timeout(step, client.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], message);
        })
    };
    echo(&client, &peer, b"before");

    // New files, SIGHUP: new handshakes present the new certificate.
    let second = new_certificate();
    files.write(&second);
    daemon.guard.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rt.block_on(presented_certificate(tls)) != der_of(&second.0) {
        assert!(std::time::Instant::now() < deadline, "the new certificate was not presented after SIGHUP");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The allocation and the TLS connection made before are still there.
    echo(&client, &peer, b"after");
    rt.block_on(async {
        assert_eq!(client.refresh(600).await.unwrap(), 600);
        let local = live.get_ref().0.local_addr().unwrap();
        assert_eq!(client::binding_stream(&mut live, step).await.unwrap(), local);
    });

    // A broken pair on the next SIGHUP: the last good certificate stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").unwrap();
    daemon.guard.signal("HUP");
    daemon.wait_for_log("keeping the previous certificate", 1);
    assert_eq!(rt.block_on(presented_certificate(tls)), der_of(&second.0));
    echo(&client, &peer, b"still");
    rt.block_on(async { client.close().await.unwrap() });

    let (status, err) = daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("TLS certificate reloaded"), "{err}");
    assert!(err.contains("keeping the previous certificate"), "{err}");
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

#[test]
fn workers_and_socket_buffer_flags_are_accepted() {
    let out = switchback(&["--workers", "2", "--socket-buffer", "0", "--check-config"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = switchback(&["--workers", "-1", "--check-config"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
