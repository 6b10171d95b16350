//! Helpers shared by the integration tests: a guard that kills a child process on drop, running a
//! command with a timeout, starting the daemon and reading its banner, and skipping a test whose
//! external tool is missing (but failing under `CI=true`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any spawned process may run before a test gives up on it.
pub const PROCESS_TIMEOUT: Duration = Duration::from_secs(20);

/// Owns a child process: it is killed and reaped when the guard drops (also when a test panics).
pub struct ChildGuard {
    child: Child,
}

impl ChildGuard {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        ChildGuard { child }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (for example `TERM`, `INT`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").arg(format!("-{signal}")).arg(self.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a pipe to its end on a thread.
fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Runs `cmd` to completion (stdin closed), killing it and failing the test after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(cmd);
    let stdout = drain(guard.child_mut().stdout.take().expect("stdout"));
    let stderr = drain(guard.child_mut().stderr.take().expect("stderr"));
    let Some(status) = guard.wait_timeout(timeout) else {
        panic!("{cmd:?} did not finish within {timeout:?}");
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout thread").into_bytes(),
        stderr: stderr.join().expect("stderr thread").into_bytes(),
    }
}

/// Whether an executable `name` is on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `true` when `tool` is on `PATH`. Otherwise the test should return early: under plain `cargo test`
/// this prints why it is skipped; with `CI=true` a missing tool is a failure.
pub fn require_tool(tool: &str, install_hint: &str) -> bool {
    if on_path(tool).is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("`{tool}` is not on PATH and CI=true: {install_hint}");
    }
    eprintln!("SKIPPED: `{tool}` is not on PATH ({install_hint}); under CI=true this test fails");
    false
}

/// The daemon, started with some flags, and the addresses from its banner.
pub struct Daemon {
    pub guard: ChildGuard,
    /// `listening udp ADDR` lines.
    pub udp: Vec<SocketAddr>,
    /// `listening tcp ADDR` lines.
    pub tcp: Vec<SocketAddr>,
    /// Every stdout line up to the `stun:` line.
    pub banner: Vec<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Daemon {
    /// Starts `switchback ARGS` and waits (bounded) for its banner.
    pub fn start(args: &[&str]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stderr = drain(guard.child_mut().stderr.take().expect("stderr"));
        let stdout = guard.child_mut().stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut daemon = Daemon { guard, udp: Vec::new(), tcp: Vec::new(), banner: Vec::new(), stderr: Some(stderr) };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = daemon.guard.child.kill();
                    let stderr = daemon.stderr.take().map(|h| h.join().unwrap_or_default());
                    panic!("no banner from the daemon ({e}); banner so far {:?}; stderr: {stderr:?}", daemon.banner);
                }
            };
            daemon.banner.push(line.clone());
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("udp"), Some(addr)) => daemon.udp.push(addr.parse().expect("udp addr")),
                (Some("listening"), Some("tcp"), Some(addr)) => daemon.tcp.push(addr.parse().expect("tcp addr")),
                _ => {}
            }
            if line.starts_with("stun:") {
                return daemon;
            }
        }
    }

    /// Sends `signal` and waits (bounded) for the exit; returns the status and everything on stderr.
    pub fn stop_with(mut self, signal: &str) -> (ExitStatus, String) {
        self.guard.signal(signal);
        let status = self
            .guard
            .wait_timeout(PROCESS_TIMEOUT)
            .unwrap_or_else(|| panic!("daemon did not exit within {PROCESS_TIMEOUT:?} after SIG{signal}"));
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default();
        (status, stderr)
    }
}

/// A file in the temp dir that is removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a fresh file named after `name`.
    pub fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("switchback-test-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile { path }
    }

    /// The path as a `&str` for command lines.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
