//! Text → typed TOML values, by the type of the key they are for: the one conversion behind flags
//! (`bin/switchback/flags.rs`) and environment variables ([`super::env_overrides`]). A key's type is
//! not listed anywhere but on its field: it is found by asking serde whether [`Config`] takes a
//! candidate value for the key.

use toml::Value;

use super::{Config, ConfigError};

/// What kind of value a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// One value (a string, number or boolean).
    Scalar,
    /// A list (`Vec<_>` fields): `[]` is accepted.
    List,
    /// A table (`users`): `{}` is accepted.
    Table,
}

impl Shape {
    /// The shape of `key`'s field, found by offering it an empty list and an empty table.
    pub(super) fn of(key: &str) -> Shape {
        if accepts(key, Value::Array(Vec::new())).is_ok() {
            Shape::List
        } else if accepts(key, Value::Table(toml::Table::new())).is_ok() {
            Shape::Table
        } else {
            Shape::Scalar
        }
    }

    /// `item` as a whole value of this shape: a one-element list, or a one-entry table.
    fn wrap(self, item: Value) -> Value {
        match self {
            Shape::Scalar => item,
            Shape::List => Value::Array(vec![item]),
            Shape::Table => Value::Table(std::iter::once(("name".to_owned(), item)).collect()),
        }
    }
}

/// Whether [`Config`] takes `value` for `key` (alone, every other key at its default); the
/// deserializer's message when not.
pub(super) fn accepts(key: &str, value: Value) -> Result<(), String> {
    let single: toml::Table = std::iter::once((key.to_owned(), value)).collect();
    single.try_into::<Config>().map(drop).map_err(|e: toml::de::Error| e.message().trim().to_owned())
}

/// The TOML value that `text` (a flag's or an environment variable's) stands for as a value of
/// `key` — for a list key one element, for a table key one entry's value: a boolean or an integer
/// when the key takes that, else a string. An error names the key with the message of the first
/// form tried.
pub fn value_from_str(key: &str, text: &str) -> Result<Value, ConfigError> {
    let shape = Shape::of(key);
    let mut first_error = None;
    for candidate in candidates(text) {
        match accepts(key, shape.wrap(candidate.clone())) {
            Ok(()) => return Ok(candidate),
            Err(message) => {
                first_error.get_or_insert(message);
            }
        }
    }
    Err(ConfigError::invalid(key, first_error.unwrap_or_default()))
}

/// The forms `text` can take, most specific first.
fn candidates(text: &str) -> impl Iterator<Item = Value> {
    let boolean = text.parse::<bool>().ok().map(Value::Boolean);
    let integer = text.parse::<i64>().ok().map(Value::Integer);
    boolean.into_iter().chain(integer).chain(std::iter::once(Value::String(text.to_owned())))
}

/// `value` for `key`, with a single value where a list is expected made a one-element list
/// (`static-auth-secret = "abc"` means `["abc"]`).
pub(super) fn one_or_list(key: &str, value: Value) -> Value {
    match value {
        Value::Array(_) | Value::Table(_) => value,
        scalar if Shape::of(key) == Shape::List => Value::Array(vec![scalar]),
        scalar => scalar,
    }
}

/// [`one_or_list`] for every key of a table.
pub(super) fn lists_from_single_values(table: &mut toml::Table) {
    for (key, value) in table.iter_mut() {
        let taken = std::mem::replace(value, Value::Boolean(false));
        *value = one_or_list(key, taken);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys;

    #[test]
    fn shapes_are_read_off_the_fields() {
        let lists: Vec<&str> = keys().iter().copied().filter(|k| Shape::of(k) == Shape::List).collect();
        #[rustfmt::skip]
        let expected = [
            "listening-ip", "relay-ip", "external-ip", "static-auth-secret", "allowed-peer-ip", "denied-peer-ip",
            "revoked-users", "oauth-key", "proxy-protocol-from", "alternate-server", "api-key", "token-key",
            "token-public-key", "api-cors-origin",
        ];
        for key in expected {
            assert!(lists.contains(&key), "{key} is a list: {lists:?}");
        }
        assert_eq!(lists.len(), expected.len(), "{lists:?}");
        assert_eq!(Shape::of("users"), Shape::Table);
        for key in ["listening-port", "realm", "no-udp", "rate-limit-unauth", "cert", "log-level"] {
            assert_eq!(Shape::of(key), Shape::Scalar, "{key}");
        }
    }

    #[test]
    fn text_becomes_the_keys_type() {
        assert_eq!(value_from_str("listening-port", "3479").unwrap(), Value::Integer(3479));
        assert_eq!(value_from_str("no-udp", "true").unwrap(), Value::Boolean(true));
        assert_eq!(value_from_str("realm", "true").unwrap(), Value::String("true".into()));
        assert_eq!(value_from_str("realm", "42").unwrap(), Value::String("42".into()));
        assert_eq!(value_from_str("rest-separator", "1").unwrap(), Value::String("1".into()));
        assert_eq!(value_from_str("relay-ip", "10.0.0.1").unwrap(), Value::String("10.0.0.1".into()));
        assert_eq!(value_from_str("users", "pw").unwrap(), Value::String("pw".into()));
        assert_eq!(value_from_str("rate-limit-unauth", "5/s:9").unwrap(), Value::String("5/s:9".into()));
        assert_eq!(value_from_str("nonce-lifetime", "9223372036854775807").unwrap(), Value::Integer(i64::MAX));
    }

    #[test]
    fn text_of_the_wrong_type_is_an_error_naming_the_key() {
        for (key, text, says) in [
            ("listening-port", "three", "u16"),
            ("listening-port", "70000", "70000"),
            ("no-udp", "yes", "bool"),
            ("relay-ip", "localhost", "address"),
            ("nonce-lifetime", "18446744073709551616", "u64"),
        ] {
            let err = value_from_str(key, text).unwrap_err();
            assert!(matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key), "{err:?}");
            assert!(err.to_string().contains(says), "{key}={text}: {err}");
        }
    }

    #[test]
    fn a_single_value_is_a_one_element_list_for_list_keys_only() {
        let one = |key, v: Value| one_or_list(key, v);
        let s = |t: &str| Value::String(t.to_owned());
        assert_eq!(one("static-auth-secret", s("abc")), Value::Array(vec![s("abc")]));
        assert_eq!(one("static-auth-secret", Value::Array(vec![s("a")])), Value::Array(vec![s("a")]));
        assert_eq!(one("realm", s("abc")), s("abc"));
        assert_eq!(one("listening-port", Value::Integer(1)), Value::Integer(1));
    }
}
