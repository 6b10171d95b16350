//! Headless Chromium for the WebRTC tests. Callers check it with [`super::tools::require`] first.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::process::ChildGuard;

/// The flags every headless Chromium of the tests runs with.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// Headless Chromium on `url` with a fresh profile, in its own process group; the whole group is
/// killed and the profile removed on drop.
pub struct Browser {
    guard: ChildGuard,
    profile: PathBuf,
}

impl Browser {
    pub fn launch(url: &str, extra_args: &[&str]) -> Browser {
        use std::os::unix::process::CommandExt;
        static LAUNCHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = LAUNCHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile = std::env::temp_dir().join(format!("switchback-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("create the profile dir");
        let log = std::fs::File::create(profile.join("chromium.log")).expect("create the browser log");
        let mut cmd = Command::new("chromium");
        cmd.args(CHROMIUM_FLAGS)
            .args(["--disable-quic", "--allow-loopback-in-peer-connection"])
            .args(extra_args)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .process_group(0);
        Browser { guard: ChildGuard::spawn(&mut cmd), profile }
    }

    pub fn exited(&mut self) -> bool {
        self.guard.child_mut().try_wait().ok().flatten().is_some()
    }

    /// The last lines Chromium wrote to stderr/stdout.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.profile.join("chromium.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group id is the browser's pid (process_group(0)); renderers and the zygote are in it.
        let _ =
            Command::new("kill").args(["-KILL", "--", &format!("-{}", self.guard.id())]).stderr(Stdio::null()).status();
        let _ = self.guard.child_mut().kill();
        let _ = self.guard.child_mut().wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
