//! Packaging: systemd's `Type=notify` protocol (READY=1 once the listeners are bound, STOPPING=1 at
//! shutdown) against a unix datagram socket standing in for systemd, and the shipped unit file
//! checked by `systemd-analyze verify` when it is installed.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

use crate::support::{Daemon, PROCESS_TIMEOUT, run_with_timeout};

/// A socket path in the temp dir, removed on drop.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let path = std::env::temp_dir().join(format!("switchback-notify-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        NotifySocket { socket, path }
    }

    fn recv(&self) -> String {
        let mut buf = [0u8; 4096];
        let n = self.socket.recv(&mut buf).expect("a notification within 10 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[test]
fn notifies_ready_after_binding_and_stopping_at_shutdown() {
    let notify = NotifySocket::new();
    let daemon =
        Daemon::start_with_env(&["--listening-port", "0", "--no-tls"], &[("NOTIFY_SOCKET", notify.path.as_os_str())]);
    let ready = notify.recv();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // Ready means serving: a Binding over UDP is answered now.
    let udp = daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mapped = rt
        .block_on(switchback::client::binding(udp, switchback::client::ClientTransport::Udp, Duration::from_secs(5)))
        .unwrap();
    assert!(mapped.ip().is_loopback());
    let (status, stderr) = daemon.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    let stopping = notify.recv();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
}

#[test]
fn without_notify_socket_nothing_is_sent_and_nothing_fails() {
    let daemon = Daemon::start(&["--listening-port", "0", "--no-tls"]);
    let (status, stderr) = daemon.stop_with("TERM");
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("cannot notify systemd"), "{stderr}");
}

#[test]
fn the_systemd_unit_verifies() {
    if crate::support::tools::require("systemd-analyze").is_none() {
        return;
    }
    let unit = concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/switchback.service");
    // ExecStart names /usr/bin/switchback: verify a copy that runs the binary under test instead.
    let text = std::fs::read_to_string(unit).unwrap().replace("/usr/bin/switchback", env!("CARGO_BIN_EXE_switchback"));
    assert!(text.contains("Type=notify"));
    let dir = std::env::temp_dir().join(format!("switchback-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("switchback.service");
    std::fs::write(&copy, text).unwrap();
    let out =
        run_with_timeout(Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&copy), PROCESS_TIMEOUT);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys are warnings with exit code 0: any line naming the unit fails the test. Lines
    // about the host's other units are not ours. (--man=no: the man page is not installed here.)
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("switchback.service")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify: {stderr}");
}
