//! `switchback import-coturn` as a user runs it: the fixture with every mapped option converts
//! without a note into a file the daemon accepts; Debian's shipped example converts with "cannot
//! map" notes only; a missing file is a configuration error.

use std::process::{Command, Output};

use crate::support::{PROCESS_TIMEOUT, TempFile, run_with_timeout};

fn switchback(args: &[&str]) -> Output {
    run_with_timeout(Command::new(env!("CARGO_BIN_EXE_switchback")).args(args), PROCESS_TIMEOUT)
}

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn notes(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.starts_with("note:")).map(str::to_owned).collect()
}

#[test]
fn the_fixture_imports_without_notes_and_the_daemon_accepts_it() {
    let out_file = TempFile::new("imported-turn.toml", "");
    let out = switchback(&["import-coturn", &data("turnserver.conf"), "-o", out_file.as_str()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(notes(&out), Vec::<String>::new());
    let text = std::fs::read_to_string(&out_file.path).unwrap();
    assert!(text.contains("external-ip = [\"203.0.113.10/192.0.2.10\", \"203.0.113.11/192.0.2.11\"]"), "{text}");
    assert!(text.contains("denied-peer-ip = [\"10.0.0.0-10.255.255.255\", \"192.168.0.0/16\"]"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out_file.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file holds secrets: owner only, got {mode:o}");
    }
    let check = switchback(&["-c", out_file.as_str(), "--check-config"]);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("config OK"));
}

#[test]
fn debians_example_imports_with_cannot_map_notes_only() {
    let out = switchback(&["import-coturn", &data("turnserver-debian.conf")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let notes = notes(&out);
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert!(notes.iter().all(|n| n.contains(": cannot map: `")), "{notes:#?}");
    for option in ["syslog", "no-rfc5780", "no-stun-backward-compatibility", "response-origin-only-with-rfc5780"] {
        assert!(notes.iter().any(|n| n.contains(&format!("`{option}`"))), "{option} not named: {notes:#?}");
    }
    // The TOML goes to stdout and loads.
    let toml = TempFile::new("debian-turn.toml", &String::from_utf8_lossy(&out.stdout));
    let check = switchback(&["-c", toml.as_str(), "--check-config"]);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn an_import_that_does_not_validate_exits_2() {
    let conf = TempFile::new("bad-turnserver.conf", "min-port=60000\nmax-port=50000\n");
    let out = switchback(&["import-coturn", conf.as_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("min-port"));
    assert!(out.stdout.is_empty());
    let out = switchback(&["import-coturn", "/nonexistent/turnserver.conf"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `-o` in a shared directory: a symbolic link there is refused, not followed (the file it points
/// to keeps its text and its mode), and an existing file of the user is replaced by a private one.
#[cfg(unix)]
#[test]
fn output_refuses_a_symlink_and_replaces_files_instead_of_chmodding_them() {
    use std::os::unix::fs::PermissionsExt as _;
    let victim = TempFile::new("victim.txt", "someone else's\n");
    std::fs::set_permissions(&victim.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = victim.path.with_extension("link.toml");
    std::os::unix::fs::symlink(&victim.path, &link).unwrap();
    let out = switchback(&["import-coturn", &data("turnserver.conf"), "-o", link.to_str().unwrap()]);
    let _ = std::fs::remove_file(&link);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim.path).unwrap(), "someone else's\n");
    assert_eq!(std::fs::metadata(&victim.path).unwrap().permissions().mode() & 0o777, 0o644);
    // An existing file: replaced (a new inode, private), not rewritten in place.
    let existing = TempFile::new("existing.toml", "old\n");
    std::fs::set_permissions(&existing.path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let hard = existing.path.with_extension("hardlink");
    std::fs::hard_link(&existing.path, &hard).unwrap();
    let out = switchback(&["import-coturn", &data("turnserver.conf"), "-o", existing.as_str()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&existing.path).unwrap().contains("external-ip"));
    assert_eq!(std::fs::metadata(&existing.path).unwrap().permissions().mode() & 0o077, 0);
    // The other name of the old inode still has the old text and mode.
    assert_eq!(std::fs::read_to_string(&hard).unwrap(), "old\n");
    assert_eq!(std::fs::metadata(&hard).unwrap().permissions().mode() & 0o777, 0o644);
    let _ = std::fs::remove_file(&hard);
}
