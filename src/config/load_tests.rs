//! Loading: single values for lists, errors at the file's line, the shipped file's shape.

use toml::Value;

use super::super::tests::TempDir;
use super::super::values::{Shape, accepts};
use super::*;

/// The error of loading `text` as a file (with `flags` laid over it), as its text with the file's
/// path replaced by `FILE`.
fn file_error(dir: &TempDir, text: &str, flags: toml::Table) -> String {
    let path = dir.0.join("turn.toml");
    std::fs::write(&path, text).unwrap();
    let err = Config::from_sources(Some(&path), flags).unwrap_err();
    err.to_string().replace(&path.display().to_string(), "FILE")
}

#[test]
fn a_single_value_is_taken_where_a_list_is_expected() {
    let c = Config::from_toml_str("static-auth-secret = \"abc\"\n").unwrap();
    assert_eq!(c.static_auth_secret, vec![SecretText("abc".into())]);
    let c = Config::from_toml_str("listening-ip = \"::1\"\napi-cors-origin = \"*\"\n").unwrap();
    assert_eq!(c.listening_ip, vec!["::1".parse::<std::net::IpAddr>().unwrap()]);
    assert_eq!(c.api_cors_origin, ["*"]);
    // Every list key, whatever its element type, takes a lone value of that type.
    for key in keys().iter().filter(|k| Shape::of(k) == Shape::List) {
        let single: toml::Table = std::iter::once(((*key).to_owned(), Value::String("x".into()))).collect();
        if let Err(e) = check_table(&single) {
            assert!(!e.to_string().contains("sequence"), "{key}: {e}");
        }
    }
    // Not a key that is not a list.
    assert!(accepts("realm", Value::Array(vec![Value::String("r".into())])).is_err());
}

#[test]
fn a_single_value_in_a_file_is_a_list_too() {
    let dir = TempDir::new("single-list");
    let path = dir.0.join("turn.toml");
    std::fs::write(&path, "static-auth-secret = \"abc\"\nrelay-ip = \"127.0.0.1\"\n").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.static_auth_secret.len(), 1);
    assert_eq!(c.relay_ip.len(), 1);
}

#[test]
fn errors_about_a_key_of_the_file_name_the_file_and_its_line() {
    let dir = TempDir::new("lines");
    let none = toml::Table::new;
    assert_eq!(
        file_error(&dir, "realm = \"r\"\n\n# a comment\nlistenning-port = 1\n", none()),
        "FILE:4: unknown key \"listenning-port\" (did you mean \"listening-port\"?)"
    );
    assert_eq!(
        file_error(&dir, "realm = \"r\"\nlistening-port = \"three\"\n", none()),
        "FILE:2: invalid value for `listening-port`: invalid type: string \"three\", expected u16"
    );
    // A validation error about one key.
    assert_eq!(
        file_error(&dir, "max-port = 1000\nmin-port = 2000\n", none()),
        "FILE:2: invalid value for `min-port`: 2000 is above max-port (1000)"
    );
    // A table's line is its header's.
    let err = file_error(&dir, "realm = \"r\"\n\n[users]\nalice = 1\n", none());
    assert!(err.starts_with("FILE:3: invalid value for `users`"), "{err}");
    // A syntax error keeps its line and column.
    let err = file_error(&dir, "realm = = 1\n", none());
    assert!(err.starts_with("FILE: TOML syntax error at line 1, column"), "{err}");
}

#[test]
fn errors_about_a_key_set_elsewhere_do_not_blame_the_file() {
    let dir = TempDir::new("not-file");
    let mut flags = toml::Table::new();
    flags.insert("min-port".into(), Value::Integer(3000));
    let err = file_error(&dir, "max-port = 1000\nmin-port = 2000\n", flags);
    assert_eq!(err, "invalid value for `min-port`: 3000 is above max-port (1000)");
    let mut flags = toml::Table::new();
    flags.insert("no-tcp".into(), Value::Boolean(true));
    let err = file_error(&dir, "no-udp = true\n", flags);
    assert!(err.starts_with("invalid value for `no-tcp`"), "{err}");
}

#[test]
fn key_lines_come_from_the_parsers_spans() {
    let text = "# c\nrealm = \"r\"\n\n  listening-port = 1\nusers.alice = \"pw\"\n[api]\n";
    assert_eq!(key_line(text, "realm"), Some(2));
    assert_eq!(key_line(text, "listening-port"), Some(4));
    assert_eq!(key_line(text, "users"), Some(5));
    assert_eq!(key_line(text, "api"), Some(6));
    assert_eq!(key_line(text, "alice"), None, "not a top-level key");
    assert_eq!(key_line("realm = = 1", "realm"), None, "no line from text that does not parse");
}

/// Whether `line`, uncommented, would be a table header (`[name]`, `[[name]]`).
fn is_table_header(line: &str) -> bool {
    let l = line.trim_start_matches('#').trim();
    let inner = l.trim_start_matches('[').trim_end_matches(']');
    l.starts_with('[') && l.ends_with(']') && inner.chars().all(|c| c.is_ascii_alphanumeric() || "-_.\"".contains(c))
}

/// A key appended to the shipped turn.toml, even with every example uncommented, is a top-level key:
/// the file shows no table header (whose table would swallow it).
#[test]
fn a_key_appended_to_the_shipped_turn_toml_is_a_top_level_key() {
    let shipped = include_str!("../../turn.toml");
    let headers: Vec<&str> = shipped.lines().filter(|l| is_table_header(l)).collect();
    assert!(headers.is_empty(), "table headers in turn.toml: {headers:?}");
    assert!(is_table_header("# [users]") && is_table_header("[[a.b]]") && !is_table_header("# ]"));
    let with_users = shipped.replace("\n# users = ", "\nusers = ");
    assert_ne!(with_users, shipped, "turn.toml shows users as `# users = {{ ... }}`");
    for text in [shipped, with_users.as_str()] {
        let table = parse_table(&format!("{text}\nrealm = \"appended.example\"\n")).unwrap();
        assert_eq!(table.get("realm").and_then(Value::as_str), Some("appended.example"));
    }
    let table = parse_table(&with_users).unwrap();
    assert!(table.get("users").and_then(|u| u.get("alice")).is_some(), "the users example is an inline table");
}
