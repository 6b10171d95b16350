//! External tools (coturn's `turnutils_*`, Chromium, `systemd-analyze`) and machine features (IPv6
//! loopback) a test needs. Missing, the test prints `SKIP: <test>: <tool> not found` and returns;
//! under `CI=true` (where `.ci/run` installs them) a missing one fails the test instead. No test
//! passes silently without what it checks.

use std::path::{Path, PathBuf};

/// Whether an executable `name` is on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Debian package that provides `tool`, for the skip line.
fn package(tool: &str) -> &'static str {
    match tool {
        t if t.starts_with("turnutils_") => "coturn",
        "chromium" => "chromium",
        "ip" => "iproute2",
        "ethtool" => "ethtool",
        "systemd-analyze" => "systemd",
        "redis-server" => "redis-server",
        _ => "?",
    }
}

/// Whether this run is CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The running test's name (libtest names each test's thread after it), else the caller's place.
#[track_caller]
fn test_name() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => std::panic::Location::caller().to_string(),
    }
}

/// Skips the calling test for want of `what`: prints `SKIP: <test>: <what> not found (<why>)`
/// (returns `false` for the caller to return), or panics under `CI=true`.
#[track_caller]
pub fn skip(what: &str, why: &str) -> bool {
    let test = test_name();
    assert!(!under_ci(), "{test}: {what} not found and CI=true ({why})");
    eprintln!("SKIP: {test}: {what} not found ({why}; under CI=true this test fails)");
    false
}

/// The path of `tool` when it is on `PATH`; otherwise `None` after [`skip`] (a panic under
/// `CI=true`). A test returns on `None`.
#[track_caller]
pub fn require(tool: &str) -> Option<PathBuf> {
    let found = on_path(tool);
    if found.is_none() {
        skip(tool, &format!("apt-get install {}", package(tool)));
    }
    found
}

/// `true` when every one of `tools` is on `PATH` (each missing one is reported by [`require`]).
#[track_caller]
pub fn require_all(tools: &[&str]) -> bool {
    let mut all = true;
    for tool in tools {
        all &= require(tool).is_some();
    }
    all
}

/// `true` when `::1` can be bound; otherwise [`skip`] (a panic under `CI=true`).
#[track_caller]
pub fn require_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok() || skip("IPv6 loopback (::1)", "no ::1 on this machine")
}
