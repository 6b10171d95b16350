//! Environment variables as `turn.toml` keys, for containers: `SWITCHBACK_` + the key in upper
//! case with `_` for `-` (`SWITCHBACK_LISTENING_PORT=3479`). Lists are comma-separated
//! (`SWITCHBACK_RELAY_IP=10.0.0.1,10.0.0.2`; empty: an empty list), the `users` table is
//! `NAME:PASSWORD,…`; values get the key's type as flags do ([`value_from_str`]). The daemon lays
//! the result over the file and the flags over it: flags win over the environment, the
//! environment over the file.

use std::ffi::OsStr;

use toml::Value;

use super::values::{Shape, value_from_str};
use super::{ConfigError, keys, suggest};

/// What every configuration variable's name starts with.
pub const ENV_PREFIX: &str = "SWITCHBACK_";

/// Variables with [`ENV_PREFIX`] that are not configuration keys, left alone: the test switches
/// that rewrite generated files (`SWITCHBACK_WRITE_MAN`: docs/switchback.1,
/// `SWITCHBACK_WRITE_SEEDS`: the fuzz seeds) and the fuzz harness's trace switch
/// (`SWITCHBACK_FUZZ_TRACE`). `SWITCHBACK_ADMIN_KEY`, which `switchback admin` reads, is the
/// `admin-key` key: the daemon takes it too.
pub const ENV_NOT_KEYS: &[&str] = &["SWITCHBACK_WRITE_MAN", "SWITCHBACK_WRITE_SEEDS", "SWITCHBACK_FUZZ_TRACE"];

/// The variable that sets `key`: `listening-port` → `SWITCHBACK_LISTENING_PORT`.
pub fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('-', "_"))
}

/// The keys set by the `SWITCHBACK_*` variables among `vars` (pass `std::env::vars_os()`); other
/// variables and those of [`ENV_NOT_KEYS`] are skipped. A `SWITCHBACK_*` variable that names no key
/// is an error naming it (with the closest variable that does), and so is a value the key does not
/// take.
pub fn env_overrides<N, V>(vars: impl IntoIterator<Item = (N, V)>) -> Result<toml::Table, ConfigError>
where
    N: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut table = toml::Table::new();
    for (name, value) in vars {
        let name = name.as_ref().to_string_lossy();
        if !name.starts_with(ENV_PREFIX) || ENV_NOT_KEYS.contains(&name.as_ref()) {
            continue;
        }
        let Some(key) = keys().iter().find(|k| env_var(k) == name) else {
            return Err(unknown(&name));
        };
        let in_env = |source| ConfigError::InEnv { name: name.to_string(), source: Box::new(source) };
        let text = value.as_ref().to_str().ok_or_else(|| in_env(ConfigError::invalid(key, "not UTF-8")))?;
        table.insert((*key).to_owned(), parse(key, text).map_err(in_env)?);
    }
    Ok(table)
}

/// The error for a `SWITCHBACK_*` variable that names no key.
fn unknown(name: &str) -> ConfigError {
    let names: Vec<String> = keys().iter().map(|k| env_var(k)).collect();
    let suggestion = suggest::closest(name, names.iter().map(String::as_str)).map(str::to_owned);
    ConfigError::UnknownEnv { name: name.to_owned(), suggestion }
}

/// The value of `key` that the variable's `text` stands for.
fn parse(key: &str, text: &str) -> Result<Value, ConfigError> {
    let items = || text.split(',').map(str::trim).filter(|item| !item.is_empty());
    match Shape::of(key) {
        Shape::Scalar => value_from_str(key, text),
        Shape::List => items().map(|item| value_from_str(key, item)).collect::<Result<_, _>>().map(Value::Array),
        Shape::Table => items().map(|entry| table_entry(key, entry)).collect::<Result<_, _>>().map(Value::Table),
    }
}

/// One `NAME:VALUE` entry of a table key (`users`: `alice:password`).
fn table_entry(key: &str, entry: &str) -> Result<(String, Value), ConfigError> {
    let (name, value) = entry.split_once(':').ok_or_else(|| ConfigError::invalid(key, "expected NAME:VALUE,…"))?;
    Ok((name.trim().to_owned(), value_from_str(key, value)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<toml::Table, ConfigError> {
        env_overrides(vars.iter().copied())
    }

    #[test]
    fn names_are_the_keys_in_upper_case() {
        assert_eq!(env_var("listening-port"), "SWITCHBACK_LISTENING_PORT");
        assert_eq!(env_var("realm"), "SWITCHBACK_REALM");
        assert_eq!(env_var("strict-rfc8656"), "SWITCHBACK_STRICT_RFC8656");
    }

    #[test]
    fn variables_set_their_keys_with_the_keys_types() {
        let t = env(&[
            ("PATH", "/usr/bin"),
            ("SWITCHBACK_REALM", "example.org"),
            ("SWITCHBACK_LISTENING_PORT", "3479"),
            ("SWITCHBACK_NO_TCP", "true"),
            ("SWITCHBACK_RELAY_IP", "10.0.0.1, 10.0.0.2"),
            ("SWITCHBACK_STATIC_AUTH_SECRET", "one"),
            ("SWITCHBACK_DENIED_PEER_IP", ""),
            ("SWITCHBACK_USERS", "alice:pw,bob:0x97b37d1e83e546d3c2ac44283b33af08"),
        ])
        .unwrap();
        assert_eq!(t.len(), 7, "{t:?}");
        assert_eq!(t["realm"].as_str(), Some("example.org"));
        assert_eq!(t["listening-port"].as_integer(), Some(3479));
        assert_eq!(t["no-tcp"].as_bool(), Some(true));
        let relay: Vec<_> = t["relay-ip"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(relay, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(t["static-auth-secret"].as_array().map(Vec::len), Some(1));
        assert_eq!(t["denied-peer-ip"].as_array().map(Vec::len), Some(0));
        assert_eq!(t["users"].get("alice").and_then(Value::as_str), Some("pw"));
        crate::config::check_table(&t).unwrap();
    }

    #[test]
    fn the_variables_of_other_uses_are_skipped() {
        assert_eq!(env(&[("SWITCHBACK_WRITE_MAN", "1"), ("SWITCHBACK_FUZZ_TRACE", "1")]).unwrap().len(), 0);
        assert_eq!(
            env(&[("SWITCHBACK_ADMIN_KEY", "0123456789abcdef")]).unwrap()["admin-key"].as_str().map(str::len),
            Some(16)
        );
    }

    #[test]
    fn an_unknown_variable_is_named_with_the_closest_one() {
        let err = env(&[("SWITCHBACK_LISTENNING_PORT", "1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown environment variable SWITCHBACK_LISTENNING_PORT (did you mean SWITCHBACK_LISTENING_PORT?)"
        );
        let err = env(&[("SWITCHBACK_NOTHING_LIKE_IT_AT_ALL", "1")]).unwrap_err();
        assert_eq!(err.to_string(), "unknown environment variable SWITCHBACK_NOTHING_LIKE_IT_AT_ALL");
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_key() {
        for (name, value) in [
            ("SWITCHBACK_LISTENING_PORT", "three"),
            ("SWITCHBACK_RELAY_IP", "10.0.0.1,nowhere"),
            ("SWITCHBACK_USERS", "alice"),
            ("SWITCHBACK_NO_UDP", "yes"),
        ] {
            let err = env(&[(name, value)]).unwrap_err();
            assert!(matches!(&err, ConfigError::InEnv { name: n, .. } if n == name), "{err:?}");
            assert!(err.to_string().starts_with(&format!("{name}: invalid value for ")), "{err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_value_that_is_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStrExt as _;
        let value = OsStr::from_bytes(b"\xff");
        let err = env_overrides([(OsStr::new("SWITCHBACK_REALM"), value)]).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
