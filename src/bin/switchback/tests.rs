//! The daemon's flag handling: the coturn import round-trip goes through the same path as the
//! daemon's flags (`DaemonArgs::overrides`, `SourceArgs::load`, `Config::from_sources`).

use clap::{CommandFactory as _, FromArgMatches as _};
use switchback::config::coturn::{NoteKind, import_coturn};

use crate::args::Cli;
use switchback::config::Config;

/// The configuration the daemon would run with for these flags (and no file).
fn from_flags(args: &[&str]) -> Config {
    let (command, matches) = parse(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"));
    assert!(cli.command.is_none());
    cli.daemon.overrides(&command, &matches).and_then(|o| cli.daemon.source.load(&o)).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(args: &[&str]) -> (clap::Command, clap::ArgMatches) {
    let command = Cli::command();
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once("switchback").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{e}"));
    (command, matches)
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
    // coturn without listening-ip listens on every interface; nothing else is set.
    let every = vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
    assert_eq!(config, Config { listening_ip: every, ..Config::default() }, "Debian's example sets nothing else");
    let named: Vec<&str> = notes.iter().map(|n| n.option.as_str()).collect();
    // First (line 0, not in the file): no credentials, so coturn would relay for anyone and
    // switchback serves STUN only; then what cannot be carried over.
    let rest = ["syslog", "no-rfc5780", "no-stun-backward-compatibility", "response-origin-only-with-rfc5780"];
    assert_eq!(named.first(), Some(&"lt-cred-mech"), "{notes:?}");
    assert_eq!(named.get(1..), Some(&rest[..]));
    assert_eq!(notes.first().map(|n| n.kind), Some(NoteKind::Differs));
    assert!(notes.iter().skip(1).all(|n| n.kind == NoteKind::CannotMap), "{notes:?}");
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

/// The daemon's flags, but the ones that are not a `turn.toml` key of the same name.
fn key_flags(command: &clap::Command) -> Vec<&clap::Arg> {
    const NOT_KEYS: &[&str] = &["help", "version", "config", "check-config", "user"];
    command.get_arguments().filter(|a| a.get_long().is_some_and(|l| !NOT_KEYS.contains(&l))).collect()
}

/// A value to give flag `arg` in a test, by its value name.
fn sample(arg: &clap::Arg) -> Option<String> {
    if let Some(first) = arg.get_possible_values().first() {
        return Some(first.get_name().to_owned());
    }
    let name = arg.get_value_names()?.first()?.to_string();
    Some(
        match name.as_str() {
            "IP" => "127.0.0.2",
            "PORT" => "4000",
            "SECS" | "N" | "BYTES" => "77",
            "N/s[:BURST]" => "5/s:9",
            "FILE" => "/var/empty/sample",
            "ADDR:PORT" => "127.0.0.1:0",
            "PUBLIC[/PRIVATE]" => "192.0.2.1",
            "RULE" => "192.0.2.0/24",
            "CHAR" => "-",
            "URL" => "redis://127.0.0.1:6379",
            "PREFIX" => "sample:",
            "[KID:]KEY" => "k1:0123456789abcdef0123456789abcdef",
            "[KID:]FILE" => "k1:/var/empty/key.pem",
            "KID:BASE64KEY:ALG" => "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:A256GCM",
            "KEY" | "SECRET" | "NAME" | "HOST" | "AUD" | "ORIGIN" | "USER" | "REALM" | "SOFTWARE" => "sample-value",
            _ => return None,
        }
        .to_owned(),
    )
}

/// Each option is one `Config` field (key, type, default) and one flag of the same name: every flag
/// must reach its key with a value of the key's type, every key must have its flag, and the
/// shipped turn.toml and the man page must name them all. Editing one side alone fails here.
#[test]
fn every_flag_reaches_its_key_and_every_key_has_a_flag() {
    use switchback::config::{check_table, keys};
    let command = Cli::command();
    let flags = key_flags(&command);
    for arg in &flags {
        let long = arg.get_long().unwrap();
        assert!(keys().contains(&long), "--{long} is not a turn.toml key (rename it, or list it in NOT_KEYS)");
        let mut argv = vec![format!("--{long}")];
        if arg.get_action().takes_values() {
            argv.push(sample(arg).unwrap_or_else(|| panic!("--{long}: add a sample for its value name")));
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let (command, matches) = parse(&argv);
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let table = cli.daemon.overrides(&command, &matches).unwrap_or_else(|e| panic!("--{long}: {e}")).into_table();
        let set: Vec<&String> = table.keys().collect();
        assert_eq!(set, [long], "--{long} sets its key and nothing else");
        check_table(&table).unwrap_or_else(|e| panic!("--{long} gives its key a value of the wrong type: {e}"));
    }
    // `users` is a table: `--user NAME:PASSWORD` (repeatable) fills it.
    let (command, matches) = parse(&["--user", "alice:pw"]);
    let cli = Cli::from_arg_matches(&matches).unwrap();
    let table = cli.daemon.overrides(&command, &matches).unwrap().into_table();
    assert_eq!(table.get("users").and_then(|u| u.get("alice")).and_then(|p| p.as_str()), Some("pw"));
    let named: Vec<&str> = flags.iter().filter_map(|a| a.get_long()).chain(["user"]).collect();
    let without_flag: Vec<&&str> = keys().iter().filter(|k| !named.contains(k) && **k != "users").collect();
    assert!(without_flag.is_empty(), "keys without a flag of the same name: {without_flag:?}");
    let turn_toml = include_str!("../../../turn.toml");
    let man =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/switchback.1")).unwrap();
    for key in keys() {
        let documented = turn_toml.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("[{key}]"))
        });
        assert!(documented, "turn.toml does not show `{key}`");
    }
    for arg in &flags {
        let long = arg.get_long().unwrap().replace('-', "\\-");
        assert!(man.contains(&format!("\\-\\-{long}")), "docs/switchback.1 lacks --{long}");
    }
}

/// A flag's help that says "Default X" says what `Config::default()` holds: giving `--flag X`
/// changes nothing.
#[test]
fn the_defaults_in_the_help_are_the_defaults() {
    let command = Cli::command();
    let plain = from_flags(&[]);
    let mut checked = 0;
    for arg in key_flags(&command) {
        let long = arg.get_long().unwrap();
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let Some((_, after)) = help.split_once("Default ") else { continue };
        let value: String = after.chars().take_while(|c| !matches!(c, ' ' | ')' | ',')).collect();
        let value = value.trim_end_matches('.').trim_matches('\'');
        if value.is_empty() || value.ends_with(':') {
            continue;
        }
        let given = from_flags(&[&format!("--{long}"), value]);
        // Optional keys whose default is computed: compare what is in force.
        let in_force = |c: &Config| match long {
            "tls-listening-port" => format!("{}", c.tls_port()),
            "realm" => c.realm.as_deref().unwrap_or(switchback::config::DEFAULT_REALM).to_owned(),
            _ => format!("{c:?}"),
        };
        assert_eq!(in_force(&given), in_force(&plain), "--{long}: the help says the default is {value}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} flags name their default");
}

/// `switchback --help` groups the daemon's flags under [`heading::ALL`], in that order; only `-c`,
/// `--check-config`, `--help` and `--version` stay under clap's "Options".
#[test]
fn every_daemon_flag_is_under_a_heading() {
    use crate::args::heading;
    let mut command = Cli::command();
    command.build();
    let mut seen: Vec<&str> = Vec::new();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        match arg.get_help_heading() {
            None => assert!(["config", "check_config", "help", "version"].contains(&id), "--{id} has no heading"),
            Some(h) => {
                assert!(heading::ALL.contains(&h), "--{id}: unknown heading {h}");
                if !seen.contains(&h) {
                    seen.push(h);
                }
            }
        }
    }
    assert_eq!(seen, heading::ALL, "the headings in --help order");
    let help = command.render_help().to_string();
    for h in heading::ALL {
        assert!(help.contains(&format!("{h}:")), "--help lacks {h}:\n{help}");
    }
}
