//! Flags as `turn.toml` keys: the daemon collects the flags it was given into [`Overrides`], lays
//! them over the `SWITCHBACK_*` environment variables ([`Overrides::over_env`]), and
//! [`Config::from_sources`](super::Config::from_sources) lays the result over the file key by key.

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::Path;

use toml::Value;

use super::{ConfigError, env_overrides};

/// A table of `turn.toml` keys built from flags; unset flags add nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides(toml::Table);

impl Overrides {
    /// Sets `key` to `value`.
    pub fn set(&mut self, key: &str, value: Value) {
        self.0.insert(key.to_owned(), value);
    }

    /// A string key, if given.
    pub fn text(&mut self, key: &str, value: Option<impl Display>) {
        if let Some(v) = value {
            self.set(key, Value::String(v.to_string()));
        }
    }

    /// A path key, if given.
    pub fn path(&mut self, key: &str, value: Option<&Path>) {
        self.text(key, value.map(Path::to_string_lossy));
    }

    /// A list of strings, if not empty (it replaces the file's whole list).
    pub fn list(&mut self, key: &str, values: &[impl Display]) {
        if !values.is_empty() {
            self.set(key, Value::Array(values.iter().map(|v| Value::String(v.to_string())).collect()));
        }
    }

    /// An integer key, if given.
    pub fn int(&mut self, key: &str, value: Option<impl Into<i64>>) {
        if let Some(v) = value {
            self.set(key, Value::Integer(v.into()));
        }
    }

    /// A `u64` key, if given; TOML integers stop at `i64::MAX`.
    pub fn u64(&mut self, key: &str, value: Option<u64>) -> Result<(), ConfigError> {
        let value = value.map(|v| i64::try_from(v).map_err(|_| flag_error(key, "too large"))).transpose()?;
        self.int(key, value);
        Ok(())
    }

    /// A boolean key, set only when the flag is on.
    pub fn flag(&mut self, key: &str, on: bool) {
        if on {
            self.set(key, Value::Boolean(true));
        }
    }

    /// These keys laid over those of the `SWITCHBACK_*` variables among `vars` (see
    /// [`env_overrides`]): a flag wins over the environment.
    pub fn over_env<N, V>(self, vars: impl IntoIterator<Item = (N, V)>) -> Result<Overrides, ConfigError>
    where
        N: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let mut table = env_overrides(vars)?;
        table.extend(self.0);
        Ok(Overrides(table))
    }

    /// The table.
    pub fn into_table(self) -> toml::Table {
        self.0
    }
}

/// The error for a flag value that cannot even be put into the table.
pub fn flag_error(key: &str, message: &str) -> ConfigError {
    ConfigError::invalid(key, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_flags_become_keys() {
        let mut o = Overrides::default();
        o.text("realm", None::<&str>);
        o.list("relay-ip", &[] as &[String]);
        o.int("min-port", None::<u16>);
        o.flag("no-tcp", false);
        assert_eq!(o, Overrides::default());
        o.int("min-port", Some(5u16));
        o.flag("no-tcp", true);
        o.list("relay-ip", &["10.0.0.1"]);
        o.path("users-file", Some(Path::new("/etc/u")));
        let t = o.into_table();
        assert_eq!(t["min-port"].as_integer(), Some(5));
        assert_eq!(t["no-tcp"].as_bool(), Some(true));
        assert_eq!(t["relay-ip"].as_array().map(Vec::len), Some(1));
        assert_eq!(t["users-file"].as_str(), Some("/etc/u"));
    }

    #[test]
    fn flags_win_over_the_environment() {
        let mut flags = Overrides::default();
        flags.int("listening-port", Some(4000));
        let env = [("SWITCHBACK_LISTENING_PORT", "5000"), ("SWITCHBACK_REALM", "env.example")];
        let t = flags.over_env(env).unwrap().into_table();
        assert_eq!(t["listening-port"].as_integer(), Some(4000));
        assert_eq!(t["realm"].as_str(), Some("env.example"));
        assert!(Overrides::default().over_env([("SWITCHBACK_NO_SUCH_KEY", "1")]).is_err());
    }

    #[test]
    fn too_large() {
        let mut o = Overrides::default();
        assert!(o.u64("nonce-lifetime", Some(u64::MAX)).unwrap_err().to_string().contains("nonce-lifetime"));
        o.u64("nonce-lifetime", Some(60)).unwrap();
        assert_eq!(o.into_table()["nonce-lifetime"].as_integer(), Some(60));
    }
}
