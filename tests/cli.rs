//! The `switchback` binary: configuration errors and their exit codes, the banner, Binding over UDP
//! and TCP against the running daemon, clean shutdown on signals.

mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{Daemon, PROCESS_TIMEOUT, TempFile, run_with_timeout};
use switchback::client;
use tokio::net::{TcpStream, UdpSocket};

fn switchback(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args(args),
        PROCESS_TIMEOUT,
    )
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
    let out = switchback(&["--realm", "x", "--check-config"]);
    assert_config_error(&out, "not supported yet: --realm");
    // Without --check-config too: the daemon must not start and ignore it.
    let out = switchback(&["--realm", "x", "--listening-port", "0"]);
    assert_config_error(&out, "not supported yet: --realm");
    let out = switchback(&["--min-port", "50000", "--check-config"]);
    assert_config_error(&out, "not supported yet: --min-port");
    let out = switchback(&["--allowed-peer-ip", "10.0.0.0/8", "--check-config"]);
    assert_config_error(&out, "not supported yet: --allowed-peer-ip");
}

#[test]
fn unsupported_key_in_the_file_is_rejected() {
    let file = TempFile::new("realm.toml", "realm = \"x\"\n");
    let out = switchback(&["-c", file.as_str(), "--check-config"]);
    assert_config_error(&out, "not supported yet: --realm");
}

#[test]
fn secrets_on_the_command_line_warn() {
    let out = switchback(&["-u", "alice:pa55w0rd", "--check-config"]);
    assert_config_error(&out, "not supported yet: --user");
    let err = stderr(&out);
    assert!(
        err.contains("warning:") && err.contains("process list"),
        "{err}"
    );
    assert!(!err.contains("pa55w0rd"), "the password leaked: {err}");
    let out = switchback(&["--static-auth-secret", "hunter2", "--check-config"]);
    assert_config_error(&out, "not supported yet: --static-auth-secret");
    assert!(stderr(&out).contains("process list"));
    assert!(!stderr(&out).contains("hunter2"));
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(
        switchback(&["--listening-port", "abc"]).status.code(),
        Some(2)
    );
    assert_eq!(switchback(&["--no-such-flag"]).status.code(), Some(2));
    assert_eq!(
        switchback(&["--log-format", "xml", "--check-config"])
            .status
            .code(),
        Some(2)
    );
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
    assert!(
        daemon.tcp.is_empty(),
        "no-tcp from the file: {:?}",
        daemon.banner
    );
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
    assert!(
        daemon.banner.iter().any(|l| l.starts_with("stun:")),
        "{:?}",
        daemon.banner
    );
    let try_it = format!("turnutils_stunclient -p {} 127.0.0.1", udp.port());
    assert!(
        daemon.banner.iter().any(|l| l.contains(&try_it)),
        "{:?}",
        daemon.banner
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mapped = client::binding_udp(&socket, udp, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(mapped, socket.local_addr().unwrap());

        let mut stream = TcpStream::connect(tcp).await.unwrap();
        let mapped = client::binding_stream(&mut stream, Duration::from_secs(5))
            .await
            .unwrap();
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
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {err}"));
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
