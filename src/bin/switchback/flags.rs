//! Flags → `turn.toml` keys, read off clap's matches: a flag whose long name is a key of
//! [`Config`](switchback::config::Config) sets that key, its text (checked by clap) typed as the key
//! is by [`value_from_str`], the conversion environment variables go through too. So an option is
//! declared twice only where it must be — its field in `Config` (the key, its type, its default,
//! serde) and its field in [`crate::args`] (the flag, its help) — and nothing maps one to the
//! other by hand; `tests.rs` walks every flag and checks it reaches its key.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use switchback::config::{ConfigError, Overrides, keys, value_from_str};
use toml::Value;

/// The keys the flags given on the command line set (flags left at their default set nothing; a
/// repeated flag replaces the file's whole list).
pub fn overrides(command: &Command, matches: &ArgMatches) -> Result<Overrides, ConfigError> {
    let mut o = Overrides::default();
    for arg in command.get_arguments() {
        let (Some(key), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
        if !keys().contains(&key) || matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        match arg.get_action() {
            ArgAction::SetTrue => {
                if matches.get_flag(id) {
                    o.set(key, Value::Boolean(true));
                }
            }
            ArgAction::Count => o.set(key, Value::Integer(i64::from(matches.get_count(id)))),
            ArgAction::Append => o.set(key, Value::Array(values(matches, id, key)?)),
            _ => {
                if let Some(value) = values(matches, id, key)?.into_iter().next() {
                    o.set(key, value);
                }
            }
        }
    }
    Ok(o)
}

/// The values of flag `id`, as TOML values of the type its key has: the same conversion as for
/// environment variables ([`value_from_str`]), from the text given (which clap has checked).
fn values(matches: &ArgMatches, id: &str, key: &str) -> Result<Vec<Value>, ConfigError> {
    let raw = matches.try_get_raw(id).ok().flatten().into_iter().flatten();
    raw.map(|text| value_from_str(key, &text.to_string_lossy())).collect()
}
