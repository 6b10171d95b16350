//! Replays the committed seed corpus of every fuzz target (`fuzz/corpus/<target>/`) through the same
//! `switchback::fuzzing` function the target calls, so `cargo test` on the stable toolchain runs
//! them too. A missing or empty corpus directory fails the test.
//!
//! The named seeds of `server_stateful` (`seed-<name>.bin`) are built from typed operations by
//! `switchback::fuzzing::server_stateful_seeds`; a test checks the committed files match, and
//! `SWITCHBACK_WRITE_SEEDS=1 cargo test --test fuzz_corpus` rewrites them after the input format
//! changes.

use std::fs;
use std::path::PathBuf;

/// A fuzz target's name and the `switchback::fuzzing` function it calls.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("stun_decode", switchback::fuzzing::stun_decode),
    ("channel_data", switchback::fuzzing::channel_data),
    ("stream_framing", switchback::fuzzing::stream_framing),
    ("server_datagram", switchback::fuzzing::server_datagram),
    ("server_stateful", switchback::fuzzing::server_stateful),
    ("proxy_header", switchback::fuzzing::proxy_header),
];

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_fuzz_target_has_a_corpus_and_replays_it() {
    for (target, run) in TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "fuzz/corpus/{target} is empty");
        for (name, data) in &files {
            let r = std::panic::catch_unwind(|| run(data));
            assert!(r.is_ok(), "{target}: {name} panics");
        }
    }
}

/// Every fuzz target in fuzz/Cargo.toml is replayed here, and every one has a corpus.
#[test]
fn targets_match_fuzz_manifest() {
    let manifest = fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml")).unwrap();
    let declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "switchback-fuzz")
        .collect();
    let mut declared = declared;
    declared.sort_unstable();
    let mut replayed: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    replayed.sort_unstable();
    assert_eq!(declared, replayed);
}

/// The committed `seed-<name>.bin` files of `server_stateful` are what the typed seeds encode to
/// (the format is positional: a changed operation silently turns old seeds into other programs).
#[test]
fn server_stateful_named_seeds_are_current() {
    let dir = corpus_dir("server_stateful");
    let write = std::env::var_os("SWITCHBACK_WRITE_SEEDS").is_some();
    for (name, bytes) in switchback::fuzzing::server_stateful_seeds() {
        let path = dir.join(format!("seed-{name}.bin"));
        if write {
            fs::create_dir_all(&dir).unwrap();
            fs::write(&path, &bytes).unwrap();
        }
        let committed = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(committed == bytes, "{} is stale: rerun with SWITCHBACK_WRITE_SEEDS=1", path.display());
    }
}
