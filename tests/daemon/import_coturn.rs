//! `switchback import-coturn` as a user runs it: the fixture with every mapped option converts
//! without a note into a file the daemon accepts; Debian's shipped example (the test copy, and the
//! one the coturn package installs) converts with "cannot map" notes only; a production file of a
//! VM behind 1:1 NAT keeps listening on every interface, passes `--check-config` and relays
//! `turnutils_uclient`'s traffic; a missing file is a configuration error.

use std::process::{Command, Output};
use std::time::Duration;

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
fn debians_example_imports_with_cannot_map_notes_only_and_serves_stun_on_every_interface() {
    let out = switchback(&["import-coturn", &data("turnserver-debian.conf")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let notes = notes(&out);
    assert_eq!(notes.len(), 5, "{notes:#?}");
    let no_credentials = |n: &String| n.contains("differs: `lt-cred-mech`");
    assert!(notes.iter().all(|n| n.contains(": cannot map: `") || no_credentials(n)), "{notes:#?}");
    for option in ["syslog", "no-rfc5780", "no-stun-backward-compatibility", "response-origin-only-with-rfc5780"] {
        assert!(notes.iter().any(|n| n.contains(&format!("`{option}`"))), "{option} not named: {notes:#?}");
    }
    // The TOML goes to stdout and loads.
    let toml = TempFile::new("debian-turn.toml", &String::from_utf8_lossy(&out.stdout));
    let check = switchback(&["-c", toml.as_str(), "--check-config"]);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&check.stderr));
    // The example sets no credentials: coturn would relay for anyone, switchback says it serves
    // STUN only — and does, on every interface (ports moved to free ones for the test).
    assert!(notes.iter().any(|n| n.contains("`lt-cred-mech`") && n.contains("STUN only")), "{notes:#?}");
    let daemon = crate::support::Daemon::start(&["-c", toml.as_str(), "--listening-port", "0", "--no-tls"]);
    let wildcard: Vec<String> = daemon.udp.iter().map(|a| a.ip().to_string()).collect();
    assert!(wildcard.contains(&"0.0.0.0".to_owned()), "{:?}", daemon.banner);
    let port = daemon.udp.iter().find(|a| a.ip().is_unspecified() && a.is_ipv4()).unwrap().port();
    let server: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let timeout = std::time::Duration::from_secs(5);
    let mapped = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(switchback::client::binding(server, switchback::client::ClientTransport::Udp, timeout))
        .unwrap();
    assert!(mapped.ip().is_loopback(), "{mapped}");
    let (status, log) = daemon.stop_with("INT");
    assert!(status.success(), "{log}");
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

/// A production `turnserver.conf` of a cloud VM behind 1:1 NAT (public address 203.0.113.7, no
/// `listening-ip`, no `relay-ip`: coturn listens and relays on every interface), with REST
/// credentials, quotas, the usual private-range denials, TLS and the Prometheus exporter. `{cert}`
/// and `{pkey}` are filled in with test files.
const PRODUCTION: &str = "\
# TURN server for example.org on a cloud VM; its Elastic IP is 203.0.113.7
listening-port=3478
tls-listening-port=5349
external-ip=203.0.113.7
min-port=49152
max-port=65535
relay-threads=2

fingerprint
lt-cred-mech
use-auth-secret
static-auth-secret=4080218913b9e2d5ed1a3c9e7f0b6d4a
realm=example.org
server-name=turn.example.org
stale-nonce=600
max-allocate-timeout=60

user-quota=12
total-quota=1200
max-bps=3000000

cert={cert}
pkey={pkey}
cipher-list=\"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256\"
no-tlsv1
no-tlsv1_1
no-dtls

no-loopback-peers
no-multicast-peers
denied-peer-ip=0.0.0.0-0.255.255.255
denied-peer-ip=10.0.0.0-10.255.255.255
denied-peer-ip=100.64.0.0-100.127.255.255
denied-peer-ip=169.254.0.0-169.254.255.255
denied-peer-ip=172.16.0.0-172.31.255.255
denied-peer-ip=192.0.0.0-192.0.0.255
denied-peer-ip=192.168.0.0-192.168.255.255
denied-peer-ip=198.18.0.0-198.19.255.255
denied-peer-ip=::ffff:0.0.0.0-::ffff:255.255.255.255

prometheus
no-cli
log-file=/var/log/turnserver/turnserver.log
simple-log
pidfile=\"/var/run/turnserver.pid\"
";

/// The REST secret of [`PRODUCTION`].
const PRODUCTION_SECRET: &str = "4080218913b9e2d5ed1a3c9e7f0b6d4a";

/// A self-signed certificate and its key (mode 0600) in temp files, made as tests/daemon/cli.rs makes them.
fn certificate_files() -> (TempFile, TempFile) {
    let c = rcgen::generate_simple_self_signed(vec!["turn.example.org".to_owned()]).unwrap();
    let cert = TempFile::new("import-cert.pem", &c.cert.pem());
    let pkey = TempFile::new("import-pkey.pem", &c.signing_key.serialize_pem());
    #[cfg(unix)]
    std::fs::set_permissions(&pkey.path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (cert, pkey)
}

/// [`PRODUCTION`] imported with `-o`: the files (kept alive), the TOML text and the notes.
struct Imported {
    toml: TempFile,
    text: String,
    notes: Vec<String>,
    _files: [TempFile; 3],
}

fn import_production() -> Imported {
    let (cert, pkey) = certificate_files();
    let conf = PRODUCTION.replace("{cert}", cert.as_str()).replace("{pkey}", pkey.as_str());
    let conf = TempFile::new("production-turnserver.conf", &conf);
    let toml = TempFile::new("production-turn.toml", "");
    let out = switchback(&["import-coturn", conf.as_str(), "-o", toml.as_str()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&toml.path).unwrap();
    Imported { toml, text, notes: notes(&out), _files: [conf, cert, pkey] }
}

fn has_note(notes: &[String], option: &str, kind: &str) -> bool {
    notes.iter().any(|n| n.contains(&format!(": {kind}: `{option}`:")))
}

#[test]
fn a_production_file_imports_listening_on_every_interface_and_passes_check_config() {
    let imported = import_production();
    let (text, notes) = (&imported.text, &imported.notes);
    // coturn without listening-ip listens on every interface: so does the import.
    assert!(text.contains("listening-ip = [\"0.0.0.0\", \"::\"]\n"), "{text}");
    assert!(text.contains("external-ip = [\"203.0.113.7\"]\n"), "{text}");
    assert!(!text.contains("\nrelay-ip ="), "{text}");
    assert!(text.contains("metrics-listen = \"0.0.0.0:9641\"\n"), "{text}");
    assert!(text.contains("workers = 2\n") && text.contains("server-name = \"turn.example.org\"\n"), "{text}");
    let config = switchback::config::Config::from_toml_str(text).unwrap();
    assert!(config.listening_ip.contains(&"0.0.0.0".parse().unwrap()));
    assert_eq!(config.denied_peer_ip.len(), 9);
    assert_eq!((config.user_quota, config.total_quota), (12, 1200));
    assert!(!config.allow_loopback_peers);
    // Relay sockets on the wildcard address, clients told the public one (coturn behind 1:1 NAT).
    let relay = switchback::server::RelayAddress {
        local: "0.0.0.0".parse().unwrap(),
        advertised: "203.0.113.7".parse().unwrap(),
    };
    assert!(config.server_options().relay_addresses.contains(&relay));
    // Every option is accounted for: carried over, or a note that says what to do instead.
    assert!(notes.iter().all(|n| !n.contains("no switchback equivalent")), "{notes:#?}");
    for (option, kind) in [
        ("external-ip", "differs"),
        ("prometheus", "differs"),
        ("no-loopback-peers", "already the default"),
        ("no-multicast-peers", "already the default"),
        ("no-tlsv1", "already the default"),
        ("cipher-list", "cannot map"),
        ("pidfile", "cannot map"),
    ] {
        assert!(has_note(notes, option, kind), "no `{kind}` note on {option}: {notes:#?}");
    }
    assert!(text.contains("#   line 4: differs: `external-ip`:"), "the notes head the file: {text}");
    let check = switchback(&["-c", imported.toml.as_str(), "--check-config"]);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&check.stderr));
    assert!(String::from_utf8_lossy(&check.stdout).contains("config OK"));
}

/// The imported production file serves: started with its ports replaced by OS-chosen ones (port 0;
/// the metrics face on loopback), coturn's `turnutils_uclient` relays through 127.0.0.1 (the
/// 0.0.0.0 listener accepts there) to a `turnutils_peer` on loopback, over UDP and over TLS with
/// the file's certificate. The relay socket is on 0.0.0.0 and its address is told as 203.0.113.7.
#[test]
fn the_imported_production_file_relays_with_turnutils_uclient() {
    if !crate::support::tools::require_all(&["turnutils_uclient", "turnutils_peer"]) {
        return;
    }
    let imported = import_production();
    let peer = crate::support::EchoPeer::start();
    // The test network is loopback only, so the peer is on 127.0.0.1: loopback peers are allowed
    // by this override for the test alone (the imported file keeps switchback's default, denied).
    let daemon = crate::support::Daemon::start(&[
        "-c",
        imported.toml.as_str(),
        "--listening-port",
        "0",
        "--tls-listening-port",
        "0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--allow-loopback-peers",
        // The file's log-file is coturn's directory, absent here: the log stays on stderr.
        "--log-file",
        "/dev/stderr",
    ]);
    assert!(daemon.udp.iter().any(|a| a.ip().is_unspecified() && a.is_ipv4()), "{:?}", daemon.banner);
    let udp = daemon.udp.iter().find(|a| a.is_ipv4()).expect("an IPv4 UDP listener").port();
    let tls = daemon.tls.iter().find(|a| a.is_ipv4()).expect("an IPv4 TLS listener").port();
    for (port, transport) in [(udp, &[][..]), (tls, &["-t", "-S"][..])] {
        let (port, peer_port) = (port.to_string(), peer.port.to_string());
        let mut args = vec!["-v", "-W", PRODUCTION_SECRET, "-u", "alice", "-e", "127.0.0.1", "-r", &peer_port];
        args.extend(["-c", "-n", "10", "-m", "1", "-l", "100", "-p", &port]);
        args.extend(transport);
        args.push("127.0.0.1");
        let out = run_with_timeout(Command::new("turnutils_uclient").args(&args), Duration::from_secs(30));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "uclient {transport:?} failed: {stdout}\ndaemon: {}", daemon.log());
        let totals = crate::support::totals(&stdout).unwrap_or_else(|| panic!("no totals: {stdout}"));
        assert_eq!((totals.sent, totals.received), (10, 10), "uclient {transport:?}: {stdout}");
        assert!(
            stdout.contains("Received relay addr: 203.0.113.7:"),
            "the relayed address told is the public one: {stdout}"
        );
    }
}

/// Debian's example configuration, as the coturn package installs it, imports into a file that
/// passes `--check-config`; its notes only say what is left out.
#[test]
fn the_installed_debian_example_imports_and_passes_check_config() {
    let candidates = ["/usr/share/doc/coturn/examples/etc/turnserver.conf", "/etc/turnserver.conf"];
    let Some(example) = candidates.iter().find(|p| std::path::Path::new(p).is_file()) else {
        crate::support::tools::skip("coturn's example turnserver.conf", "apt-get install coturn");
        return;
    };
    let toml = TempFile::new("debian-example-turn.toml", "");
    let out = switchback(&["import-coturn", example, "-o", toml.as_str()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let notes = notes(&out);
    assert!(
        notes.iter().all(|n| n.contains(": cannot map: `")
            || n.contains(": already the default: `")
            || n.contains(": differs: `lt-cred-mech`")),
        "{notes:#?}"
    );
    let text = std::fs::read_to_string(&toml.path).unwrap();
    switchback::config::Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(text.contains("listening-ip = [\"0.0.0.0\", \"::\"]\n"), "{text}");
    let check = switchback(&["-c", toml.as_str(), "--check-config"]);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&check.stderr));
    // The example sets no credentials: coturn would relay for anyone, switchback says it serves
    // STUN only — and does, on every interface (ports moved to free ones for the test).
    assert!(notes.iter().any(|n| n.contains("`lt-cred-mech`") && n.contains("STUN only")), "{notes:#?}");
}
