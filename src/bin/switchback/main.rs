//! `switchback`, the daemon: flags over `turn.toml`, logging, listeners, signals; and the
//! subcommands that start no listener (`credentials`, `token`, `import-coturn`) or talk to a
//! running daemon (`admin`, `reload`). What runs the server is [`switchback::daemon`]; this binary
//! keeps what only a command line has, one file per job:
//!
//! * `args.rs` — the flags and subcommands (clap);
//! * `flags.rs` — flags → `turn.toml` keys, by name (laid over the `SWITCHBACK_*` environment
//!   variables, [`switchback::config::env_overrides`]);
//! * `serve.rs` — the daemon command: check, start, signals, drain;
//! * `commands.rs` — `credentials`, `token`, `import-coturn`;
//! * `admin_cli.rs` — `admin` and `reload`, clients of the admin API (`admin_table.rs`: `admin list`'s
//!   table);
//! * `logging.rs`, `banner.rs`, `signals.rs`.
//!
//! Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), a good `--check-config` or printed
//! credentials; 2 for a bad flag or configuration (one `error:` line naming the key); 1 when the
//! server cannot run (a port in use, say).
//!
//! Signals: SIGHUP reloads the configuration without a restart (credentials, peer policy, quotas,
//! alternate server, revocation list, log level, TLS certificate; a configuration that does not
//! load is refused with one log line and the old one stays). SIGTERM drains: `/readyz` turns 503,
//! new allocations are refused (300 ALTERNATE-SERVER or 508), live ones relay until they end or
//! `drain-timeout` passes, then exit 0; a second SIGTERM, or SIGINT, exits at once.

use std::fmt::Display;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use switchback::config::{ConfigError, Overrides};

mod admin_cli;
mod admin_table;
mod args;
mod banner;
mod commands;
mod flags;
mod logging;
mod serve;
mod signals;

use args::{Cli, Command};

fn main() -> ExitCode {
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // The configuration keys that the flags of the (sub)command set, over those of the environment.
    let flags = |name: &str| match (command.find_subcommand(name), matches.subcommand_matches(name)) {
        (Some(command), Some(matches)) => flags::overrides(command, matches).and_then(over_env),
        _ => over_env(Overrides::default()),
    };
    match &cli.command {
        Some(Command::Credentials(args)) => commands::credentials(args, flags("credentials")),
        Some(Command::ImportCoturn(args)) => commands::import_coturn(args),
        Some(Command::Admin(args)) => admin_cli::run(&args.connect, &args.action),
        Some(Command::Reload(connect)) => admin_cli::run(connect, &admin_cli::Action::Reload),
        Some(Command::Token(args)) => commands::token(args, flags("token")),
        None => serve::daemon(&cli.daemon, cli.daemon.overrides(&command, &matches).and_then(over_env)),
    }
}

/// `flags` laid over the keys of the `SWITCHBACK_*` environment variables: flags win over the
/// environment, which wins over the file.
fn over_env(flags: Overrides) -> Result<Overrides, ConfigError> {
    flags.over_env(std::env::vars_os())
}

/// Exit code 2 after the warnings and one `error:` line.
fn config_error(warnings: &[&str], e: impl Display) -> ExitCode {
    for w in warnings {
        eprintln!("warning: {w}");
    }
    eprintln!("error: {e}");
    ExitCode::from(2)
}

#[cfg(test)]
mod man;
#[cfg(test)]
mod tests;
