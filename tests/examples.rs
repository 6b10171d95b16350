//! The examples run as a user would run them (issue #18: "the examples build and run in `cargo
//! test`"): `cargo test` builds every example whose features are on into `target/debug/examples/`,
//! and these tests start the built binaries, each with a timeout and killed on drop, and check what
//! they print. An example that was not built (`cargo test --test examples` alone does not build
//! examples; the `quic` feature off) prints SKIP, and fails under `CI=true`: build them with
//! `cargo build --examples` first.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{run_with_timeout, tools};

/// `target/debug/examples/<name>`, next to this test binary's `target/debug/deps/`.
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe.parent()?.parent()?.join("examples");
    let path = dir.join(name);
    if path.is_file() {
        return Some(path);
    }
    tools::skip(&format!("example {name} at {}", path.display()), "cargo build --examples --features quic");
    None
}

/// Runs example `name` to completion (20 s at most) and returns its standard output; it must exit 0.
fn run(name: &str) -> Option<String> {
    let path = example(name)?;
    let out = run_with_timeout(&mut Command::new(&path), Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed ({}):\n{stdout}\n{stderr}", out.status);
    Some(stdout)
}

#[test]
fn quic_over_turn_echoes_through_two_allocations() {
    let Some(stdout) = run("quic_over_turn") else { return };
    assert!(stdout.lines().any(|l| l == "quic echo: hello over TURN"), "{stdout}");
    // The two relayed addresses the QUIC endpoints used: distinct loopback ports.
    let line = stdout.lines().find(|l| l.starts_with("relayed addresses: ")).unwrap_or_else(|| panic!("{stdout}"));
    let addrs: Vec<&str> =
        line.split(' ').filter(|w| w.starts_with("127.0.0.1:")).map(|w| w.trim_end_matches(',')).collect();
    assert_eq!(addrs.len(), 2, "{line}");
    assert_ne!(addrs[0], addrs[1], "{line}");
}

#[test]
fn game_client_gets_every_tick_back() {
    let Some(stdout) = run("game_client") else { return };
    assert!(stdout.lines().any(|l| l == "20/20 ticks echoed"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "channel to the peer: bound"), "{stdout}");
}

#[test]
fn relay_echo_echoes_its_messages() {
    let Some(stdout) = run("relay_echo") else { return };
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("client: ") && l.contains(" came back from ")).count(),
        5,
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l == "allocation deleted"), "{stdout}");
}
