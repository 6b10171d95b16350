//! Child processes of the tests: a guard that kills (and reaps) on drop, running a command with a
//! timeout, and temp files removed on drop.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
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
pub fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        // Lossy: a tool may print bytes that are not UTF-8 (turnutils_uclient -M prints the
        // binary MOBILITY-TICKET), which must not lose the rest of its output.
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
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

/// A file in the temp dir that is removed on drop.
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a fresh file named after `name` (unique in the process: tests running
    /// in parallel may use the same name).
    pub fn new(name: &str, contents: &str) -> TempFile {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("switchback-test-{}-{n}-{name}", std::process::id()));
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
