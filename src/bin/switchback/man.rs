//! The man page, docs/switchback.1: clap_mangen renders the name, synopsis, description and the
//! options from the clap definitions — the daemon's under OPTIONS, one subsection per `--help`
//! heading ([`heading::ALL`]) — and this module adds what clap has no place for: the subcommands
//! on this page (there are no separate pages for them), SIGNALS, FILES, ENVIRONMENT, EXIT STATUS
//! and SEE ALSO. A test regenerates the page and compares it with the committed one.

use clap::CommandFactory as _;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

use crate::args::{Cli, heading};

/// Roff text without the apostrophe preamble that every rendering starts with (the page has it
/// once, at the top).
fn strip(text: String) -> String {
    let preamble = Roff::new().render();
    text.strip_prefix(&preamble).map(str::to_owned).unwrap_or(text)
}

/// `roff` rendered (apostrophes as `\*(Aq`), without the preamble.
fn rendered(roff: &Roff) -> String {
    strip(roff.render())
}

/// What a clap_mangen `render_*` method writes, without the preamble.
fn mangen(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut out);
    strip(String::from_utf8_lossy(&out).into_owned())
}

/// A section with tagged paragraphs (`.TP`): `(tag, text)` pairs, the tag in bold.
fn tagged(title: &str, entries: &[(&str, &str)]) -> String {
    let mut roff = Roff::new();
    roff.control("SH", [title]);
    for (tag, text) in entries {
        roff.control("TP", []).text([bold(*tag)]).text([roman(*text)]);
    }
    rendered(&roff)
}

/// SIGNALS: what each signal does (`serve.rs`, `signals.rs`).
fn signals_section() -> String {
    tagged(
        "SIGNALS",
        &[
            (
                "SIGTERM",
                "Drains, then exits 0: /readyz answers 503, new allocations are refused (300 ALTERNATE-SERVER \
                 with alternate-server, else 508) and live ones relay until they end or drain-timeout passes. \
                 A second SIGTERM, or SIGINT, ends the drain at once.",
            ),
            ("SIGINT", "Exits at once (0), ending every allocation."),
            (
                "SIGHUP",
                "Reloads the configuration (file, environment and flags as at the start) without a restart: \
                 credentials and their files, peer policy, quotas, alternate server, revocation-file, log \
                 level, TLS certificate (turn.toml's header lists the keys); a changed key outside those (ports, \
                 addresses, workers, limits) keeps its old value and is named in a \"restart needed\" warning; \
                 a configuration that does not load is refused with one log line and the old one stays. Then \
                 reopens log-file and usage-file.",
            ),
            ("SIGUSR1", "Reopens log-file and usage-file (after logrotate moved them); nothing else changes."),
        ],
    )
}

/// FILES: the configuration file and the files its keys name.
fn files_section() -> String {
    tagged(
        "FILES",
        &[
            (
                "turn.toml",
                "The configuration, given with -c; there is no default location (without -c the daemon runs \
                 the development default). contrib/switchback.service and contrib/Dockerfile use \
                 /etc/switchback/turn.toml. Relative paths in it are relative to its directory.",
            ),
            (
                "static-auth-secret-file, users-file, admin-key-file, api-key-file, token-key-file, \
                 nonce-secret-file",
                "Secrets, one a line (blank lines and # comments skipped), read at the start and on SIGHUP. \
                 The daemon warns when group or others can read them (chmod 600).",
            ),
            ("cert, pkey, token-public-key", "PEM files, read at the start and on SIGHUP."),
            (
                "revocation-file",
                "Revoked users, usernames or token ids, one a line; re-read on SIGHUP, appended to by \
                 switchback admin revoke and POST /v1/revocations.",
            ),
            (
                "usage-file",
                "Appended: one JSON usage record per ended allocation (docs/usage.md); reopened on SIGHUP and \
                 SIGUSR1.",
            ),
            ("log-file", "Appended: the log, instead of stderr; reopened on SIGHUP and SIGUSR1."),
            (
                "redis-url-file",
                "The fleet's Redis URL (redis:// or rediss://), for one carrying a password; read at the start. \
                 The daemon warns when group or others can read it (chmod 600).",
            ),
            (
                "redis-userdb-file",
                "coturn's Redis user database (a redis:// URL or coturn's \"ip=... dbname=... password=...\"), for \
                 one carrying a password; re-read on reload. The daemon warns when group or others can read it \
                 (chmod 600).",
            ),
        ],
    )
}

/// ENVIRONMENT: the `SWITCHBACK_*` keys (with the exempt names of `ENV_NOT_KEYS`) and the other
/// variables read.
fn environment_section() -> String {
    use switchback::config::{ENV_NOT_KEYS, ENV_PREFIX};
    let exempt = ENV_NOT_KEYS.join(", ");
    let keys = format!(
        "Every turn.toml key, in upper case with _ for - (SWITCHBACK_LISTENING_PORT=3479, \
         SWITCHBACK_STATIC_AUTH_SECRET_FILE=/run/secrets/turn). Values are typed as the key is; lists are \
         comma-separated (SWITCHBACK_RELAY_IP=10.0.0.1,10.0.0.2), users is NAME:PASSWORD,... Flags override \
         the environment, the environment overrides the file. A {ENV_PREFIX} variable that names no key is an \
         error (exit status 2), except {exempt}, switches of the tests and the fuzz harness."
    );
    let mut roff = Roff::new();
    roff.control("SH", ["ENVIRONMENT"]).control("TP", []).text([bold(ENV_PREFIX), italic("KEY")]).text([roman(keys)]);
    let others = [
        (
            "SWITCHBACK_ADMIN_KEY",
            "The admin key of switchback admin and switchback reload; the daemon takes it as admin-key.",
        ),
        ("RUST_LOG", "Overrides log-level (a tracing filter)."),
        ("NOTIFY_SOCKET", "Set by systemd (Type=notify): the daemon reports that it is ready, and stopping."),
    ];
    for (name, text) in others {
        roff.control("TP", []).text([bold(name)]).text([roman(text)]);
    }
    rendered(&roff)
}

/// EXIT STATUS: `main.rs` (`config_error`), `serve.rs`, `admin_cli.rs`, `commands.rs`.
fn exit_status_section() -> String {
    tagged(
        "EXIT STATUS",
        &[
            (
                "0",
                "A clean shutdown (SIGINT, SIGTERM after the drain), a good --check-config, printed credentials \
                 or token, a successful admin answer.",
            ),
            (
                "1",
                "A runtime error: a listener cannot bind (a port in use), the admin API cannot be reached or \
                 answers an error, import-coturn cannot write its output.",
            ),
            (
                "2",
                "A bad flag or configuration: one error: line naming the key (after any warning: lines), before \
                 anything listens.",
            ),
        ],
    )
}

/// SEE ALSO: the files of the project that explain more (there is no turn.toml(5)).
fn see_also_section() -> String {
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]).text([roman(
        "turn.toml, the commented example configuration that ships with switchback (every key, its flag and \
         its default); README.md; docs/tls.md, docs/usage.md, docs/security-limits.md, \
         docs/security-peer-policy.md, docs/security-quotas.md, docs/architecture.md; \
         contrib/switchback.service.",
    )]);
    rendered(&roff)
}

/// clap_mangen's OPTIONS of `cmd`: `.SH OPTIONS` for the arguments without a heading, then one
/// `.SH` per heading.
fn options(cmd: &clap::Command) -> String {
    mangen(|out| Man::new(cmd.clone()).render_options_section(out))
}

/// A `.SH`/`.SS` control line as roff renders it (quoted when it holds a space).
fn control(name: &str, arg: &str) -> String {
    rendered(Roff::new().control(name, [arg]))
}

/// The daemon's OPTIONS: the ungrouped options, then a subsection per `--help` heading.
fn daemon_options(cmd: &clap::Command) -> String {
    let mut text = options(cmd);
    for h in heading::ALL {
        text = text.replace(&control("SH", &h.to_uppercase()), &control("SS", h));
    }
    text
}

/// SUBCOMMANDS: each with its description and its options, on this page.
fn subcommands_section(cmd: &clap::Command) -> String {
    let mut text = control("SH", "SUBCOMMANDS");
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let mut roff = Roff::new();
        // `\-`: a hyphen that stays one (roff does not escape control lines).
        roff.control("SS", [format!("switchback {}", sub.get_name().replace('-', "\\-")).as_str()]);
        let about = sub.get_long_about().or_else(|| sub.get_about()).map(ToString::to_string).unwrap_or_default();
        for paragraph in about.split("\n\n") {
            roff.control("PP", []).text([roman(paragraph.replace('\n', " "))]);
        }
        text.push_str(&rendered(&roff));
        // The subcommand's options without headings (roff has two levels: SH and SS).
        let options = options(sub);
        text.extend(options.lines().filter(|l| !l.starts_with(".SH")).map(|l| format!("{l}\n")));
        for action in sub.get_subcommands().filter(|s| s.get_name() != "help") {
            let about = action.get_about().map(ToString::to_string).unwrap_or_default();
            let tag = format!("switchback {} {}", sub.get_name(), action.get_name());
            text.push_str(&rendered(Roff::new().control("TP", []).text([bold(tag)]).text([roman(about)])));
        }
    }
    text
}

/// The page: clap_mangen's title, name, synopsis, description and options (the daemon's by
/// heading), then the subcommands and the sections above, and the version.
pub fn man_page() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let man = Man::new(cmd.clone());
    [
        Roff::new().render(),
        mangen(|out| man.render_title(out)),
        mangen(|out| man.render_name_section(out)),
        mangen(|out| man.render_synopsis_section(out)),
        mangen(|out| man.render_description_section(out)),
        daemon_options(&cmd),
        subcommands_section(&cmd),
        signals_section(),
        files_section(),
        environment_section(),
        exit_status_section(),
        see_also_section(),
        mangen(|out| man.render_version_section(out)),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/switchback.1 is [`man_page`]; this test fails when the definitions changed and the page
    /// was not regenerated. Regenerate with `SWITCHBACK_WRITE_MAN=1 cargo test --bin switchback man_page`.
    #[test]
    fn man_page_is_current() {
        let text = man_page();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/switchback.1");
        if std::env::var_os("SWITCHBACK_WRITE_MAN").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        for needle in ["listening\\-port", "proxy\\-protocol", "relay\\-ip", "switchback import\\-coturn"] {
            assert!(text.contains(needle), "`{needle}` missing from the man page");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "docs/switchback.1 is out of date: SWITCHBACK_WRITE_MAN=1 cargo test --bin switchback man_page"
        );
    }

    /// The sections, in order; OPTIONS has one subsection per `--help` heading, each holding the
    /// flags of that heading; no page it names is missing.
    #[test]
    fn man_page_sections_follow_the_help_headings() {
        let text = man_page();
        let sections: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix(".SH ")).collect();
        let expected = [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "SUBCOMMANDS",
            "SIGNALS",
            "FILES",
            "ENVIRONMENT",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
            "VERSION",
        ];
        assert_eq!(sections, expected);
        let mut cmd = Cli::command();
        cmd.build();
        for arg in cmd.get_arguments() {
            let (Some(h), Some(long)) = (arg.get_help_heading(), arg.get_long()) else { continue };
            let subsection = text.find(&control("SS", h)).unwrap_or_else(|| panic!("no subsection {h}"));
            let next = text[subsection + 4..].find("\n.S").map_or(text.len(), |i| subsection + 4 + i);
            let flag = format!("\\fB\\-\\-{}\\fR", long.replace('-', "\\-"));
            assert!(text[subsection..next].contains(&flag), "--{long} is not under {h} in the man page");
        }
        // No page that does not exist: no switchback-SUBCOMMAND(1), no turn.toml(5).
        assert!(!text.contains("(1)") && !text.contains("(5)"), "{text}");
        for signal in ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"] {
            assert!(text.contains(&format!("\\fB{signal}\\fR")), "{signal}");
        }
    }

    /// Every flag that names a file the daemon reads or writes is in FILES.
    #[test]
    fn files_names_every_file_flag() {
        let files = files_section();
        for arg in Cli::command().get_arguments() {
            let (Some(long), Some(names)) = (arg.get_long(), arg.get_value_names()) else { continue };
            if long != "config" && names.iter().any(|n| n.ends_with("FILE")) {
                assert!(files.contains(&long.replace('-', "\\-")), "FILES lacks {long}");
            }
        }
    }
}
