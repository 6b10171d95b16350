//! (A test module: declared under #[cfg(test)] in its parent.)
//! The RFC 7635 keys: parsing, validation and what the auth core gets.

use crate::auth::TokenAlgorithm;
use crate::config::{Config, ConfigError};

const KEYS: &str = r#"
oauth = true
oauth-key = [
    "north:MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDEK:A256GCM",
    "union:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM",
]
"#;

fn invalid_key(text: &str) -> String {
    match Config::from_toml_str(text).unwrap_err() {
        ConfigError::InvalidValue { key, .. } => key,
        e => panic!("{e}"),
    }
}

#[test]
fn oauth_keys_become_the_auth_cores_and_turn_is_on() {
    let c =
        Config::from_toml_str(&format!("realm = \"example.org\"\nserver-name = \"turn.example.org\"\n{KEYS}")).unwrap();
    assert!(c.has_credentials(), "oauth alone serves TURN");
    let auth = c.auth_config().unwrap().unwrap();
    let oauth = auth.oauth.unwrap();
    assert_eq!(oauth.server_name, "turn.example.org");
    let kids: Vec<_> = oauth.keys.iter().map(|k| (k.kid(), k.algorithm())).collect();
    assert_eq!(kids, [("north", TokenAlgorithm::A256Gcm), ("union", TokenAlgorithm::A128Gcm)]);
    // coturn's test keys are a byte longer than needed: one warning each, naming no key.
    let warnings = c.oauth_warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("`north`") && !warnings[0].contains("MDEy"), "{warnings:?}");
}

#[test]
fn server_name_defaults_to_the_realm() {
    let c = Config::from_toml_str(&format!("realm = \"example.org\"\n{KEYS}")).unwrap();
    assert_eq!(c.oauth_config().unwrap().unwrap().server_name, "example.org");
    let c = Config::from_toml_str(KEYS).unwrap();
    assert_eq!(c.effective_server_name(), crate::config::DEFAULT_REALM);
    assert!(Config::default().oauth_config().unwrap().is_none());
}

#[test]
fn bad_oauth_settings_are_refused_naming_the_key() {
    assert_eq!(invalid_key("oauth = true"), "oauth");
    assert_eq!(invalid_key("oauth-key = [\"north:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM\"]"), "oauth-key");
    for key in ["north:MTIz:A128GCM", "north:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A192GCM", "north:***:A128GCM", "nokey"] {
        let text = format!("oauth = true\noauth-key = [\"{key}\"]");
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains("oauth-key"), "{key}: {err}");
        assert!(!err.contains("MTIz"), "the key must not be echoed: {err}");
    }
    let twice =
        "oauth = true\noauth-key = [\"a:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM\", \"a:MTIzNDU2Nzg5MDEyMzQ1Ngo=:A128GCM\"]";
    assert_eq!(invalid_key(twice), "oauth-key");
    assert_eq!(invalid_key(&format!("server-name = \"\"\n{KEYS}")), "server-name");
    assert_eq!(invalid_key(&format!("server-name = \"{}\"\n{KEYS}", "x".repeat(256))), "server-name");
}

#[test]
fn debug_hides_the_keys() {
    let c = Config::from_toml_str(KEYS).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("MTIz") && !dbg.contains("MDEy"), "{dbg}");
}
