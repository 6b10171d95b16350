//! The daemon's flag handling: the coturn import round-trip goes through the same path as the
//! daemon's flags (`DaemonArgs::overrides`, `SourceArgs::load`, `Config::from_sources`).

use clap::Parser as _;
use switchback::config::coturn::{NoteKind, import_coturn};

use crate::args::Cli;
use switchback::config::Config;

/// The configuration the daemon would run with for these flags (and no file).
fn from_flags(args: &[&str]) -> Config {
    let cli = Cli::try_parse_from(std::iter::once("switchback").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(cli.command.is_none());
    cli.daemon.overrides().and_then(|o| cli.daemon.source.load(o)).unwrap_or_else(|e| panic!("{e}"))
}

fn import(text: &str) -> (Config, Vec<switchback::config::coturn::ImportNote>) {
    let import = import_coturn(text);
    let config = Config::from_toml_str(&import.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", import.to_toml()));
    (config, import.notes)
}

#[test]
fn coturn_import_equals_the_equivalent_flags() {
    let (imported, notes) = import(include_str!("../../../tests/data/turnserver.conf"));
    assert_eq!(notes, vec![], "every option of the fixture maps");
    #[rustfmt::skip]
    let flags = from_flags(&[
        "--listening-ip", "0.0.0.0", "--listening-ip", "::",
        "--listening-port", "3479", "--tls-listening-port", "5350",
        "--no-tcp", "--no-tls",
        "--relay-ip", "192.0.2.10", "--relay-ip", "192.0.2.11", "--relay-ip", "2001:db8::10",
        "-X", "203.0.113.10/192.0.2.10", "--external-ip", "203.0.113.11/192.0.2.11",
        "--min-port", "50000", "--max-port", "50999", "--max-lifetime", "7200",
        "--no-tcp-relay",
        "--realm", "example.org",
        "--user", "alice:alicepass", "--user", "bob:0x6b6c66d6a0e7c1ea8d5fbb7bda1f0e53",
        "--user", "carol:carolpass",
        "--use-auth-secret", "--static-auth-secret", "northwind",
        "--rest-separator", "-", "--nonce-lifetime", "1200",
        "--user-quota", "5", "--total-quota", "500", "--max-bps", "125000", "--bps-capacity", "10000000",
        "--denied-peer-ip", "10.0.0.0-10.255.255.255", "--denied-peer-ip", "192.168.0.0/16",
        "--allowed-peer-ip", "10.0.0.5", "--allow-loopback-peers",
        "--cert", "/etc/ssl/turn_server_cert.pem", "--pkey", "/etc/ssl/turn_server_pkey.pem",
        "-v",
    ]);
    assert_eq!(imported, flags);
    // Every key the fixture sets moved away from the default (so the equality above means something).
    let default = Config::default();
    assert_ne!(imported.listening_ip, default.listening_ip);
    assert_eq!(imported.users.len(), 3);
    assert_eq!(imported.denied_peer_ip.len(), 2);
    assert_eq!(imported.relay_ip.len(), 3);
    assert_eq!(imported.external_ip.len(), 2);
    // One option changed gives a different configuration.
    let (other, _) =
        import(&include_str!("../../../tests/data/turnserver.conf").replace("max-bps=125000", "max-bps=1"));
    assert_ne!(other, flags);
}

#[test]
fn debians_example_imports_with_cannot_map_notes_only() {
    let (config, notes) = import(include_str!("../../../tests/data/turnserver-debian.conf"));
    assert_eq!(config, Config::default(), "Debian's example sets nothing switchback has");
    let named: Vec<&str> = notes.iter().map(|n| n.option.as_str()).collect();
    assert_eq!(named, ["syslog", "no-rfc5780", "no-stun-backward-compatibility", "response-origin-only-with-rfc5780"]);
    assert!(notes.iter().all(|n| n.kind == NoteKind::CannotMap), "{notes:?}");
}

#[test]
fn every_flag_has_a_help_text() {
    use clap::CommandFactory as _;
    fn check(cmd: &clap::Command, path: &str) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(!help.trim().is_empty(), "{path} --{id} has no help text");
        }
        for sub in cmd.get_subcommands() {
            let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
            assert!(!about.trim().is_empty(), "{path} {} has no help text", sub.get_name());
            check(sub, &format!("{path} {}", sub.get_name()));
        }
    }
    let cmd = Cli::command();
    check(&cmd, "switchback");
    assert!(cmd.get_arguments().count() > 40, "the daemon's flags are all there");
}

/// docs/switchback.1 is the man page clap_mangen renders from these definitions; this test fails
/// when they changed and the page was not regenerated. Regenerate with
/// `SWITCHBACK_WRITE_MAN=1 cargo test --bin switchback man_page`.
#[test]
fn man_page_is_current() {
    use clap::CommandFactory as _;
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/switchback.1");
    if std::env::var_os("SWITCHBACK_WRITE_MAN").is_some() {
        std::fs::write(&path, &page).unwrap();
    }
    let text = String::from_utf8(page).unwrap();
    for flag in ["listening\\-port", "proxy\\-protocol", "relay\\-ip", "import\\-coturn"] {
        assert!(text.contains(flag), "`{flag}` missing from the man page");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "docs/switchback.1 is out of date: SWITCHBACK_WRITE_MAN=1 cargo test --bin switchback man_page"
    );
}
