//! Flags → `turn.toml` keys, read off clap's matches: a flag whose long name is a key of
//! [`Config`](switchback::config::Config) sets that key, typed as clap parsed it. So an option is
//! declared twice only where it must be — its field in `Config` (the key, its type, its default,
//! serde) and its field in [`crate::args`] (the flag, its help) — and nothing maps one to the
//! other by hand; `tests.rs` walks every flag and checks it reaches its key.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Command};
use switchback::config::{ConfigError, Overrides, flag_error, keys};
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

/// The values of flag `id`, as TOML values of the type its key has.
fn values(matches: &ArgMatches, id: &str, key: &str) -> Result<Vec<Value>, ConfigError> {
    macro_rules! as_type {
        ($t:ty, $to_value:expr) => {
            if let Ok(Some(values)) = matches.try_get_many::<$t>(id) {
                return values.map($to_value).collect();
            }
        };
    }
    let text = |v: &dyn ToString| Ok(Value::String(v.to_string()));
    as_type!(String, |v| text(v));
    as_type!(char, |v| text(v));
    as_type!(IpAddr, |v| text(v));
    as_type!(SocketAddr, |v| text(v));
    as_type!(PathBuf, |v| Ok(Value::String(v.to_string_lossy().into_owned())));
    as_type!(u8, |v| Ok(Value::Integer(i64::from(*v))));
    as_type!(u16, |v| Ok(Value::Integer(i64::from(*v))));
    as_type!(u32, |v| Ok(Value::Integer(i64::from(*v))));
    // TOML integers stop at i64::MAX.
    as_type!(u64, |v| i64::try_from(*v).map(Value::Integer).map_err(|_| flag_error(key, "too large")));
    Err(flag_error(key, "this flag's type has no turn.toml form (add it to flags.rs)"))
}
