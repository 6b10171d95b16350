use super::*;
use crate::auth::StaticCredential;

#[test]
fn keys_are_the_fields_in_kebab_case() {
    let keys = keys();
    assert!(keys.len() >= 70, "{keys:?}");
    let unique: std::collections::BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(unique.len(), keys.len(), "no key twice");
    for key in keys {
        assert!(key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{key}");
    }
    for key in ["listening-port", "static-auth-secret", "users", "socket-buffer"] {
        assert!(keys.contains(&key), "{key}");
    }
}

#[test]
fn shipped_turn_toml_parses_and_validates() {
    let text = include_str!("../../turn.toml");
    let config = Config::from_toml_str(text).unwrap();
    config.validate().unwrap();
    assert_eq!(config, Config::default(), "the example should show the defaults");
    // Every key is documented in it, set or commented out.
    for key in keys() {
        let documented = text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim_start();
            l.starts_with(&format!("{key} =")) || l.starts_with(&format!("[{key}]"))
        });
        assert!(documented, "turn.toml does not document `{key}`");
    }
}

#[test]
fn default_listens_on_loopback_3478() {
    let c = Config::default();
    assert_eq!(c.listening_ip, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    assert_eq!(c.listening_port, 3478);
    assert!(!c.no_udp && !c.no_tcp);
    c.validate().unwrap();
    assert_eq!(Config::from_toml_str("").unwrap(), c);
}

#[test]
fn supported_keys_parse() {
    let c = Config::from_toml_str(
        r#"
        listening-ip = ["0.0.0.0", "::1"]
        listening-port = 0
        no-tcp = true
        no-tls = true
        software = "switchback"
        strict-rfc8656 = true
        log-level = "warn"
        verbose = 2
        log-format = "json"
        "#,
    )
    .unwrap();
    assert_eq!(c.listening_ip.len(), 2);
    assert_eq!(c.listening_port, 0);
    assert!(c.no_tcp && c.no_tls && c.strict_rfc8656);
    assert_eq!(c.software.as_deref(), Some("switchback"));
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.effective_log_level(), LogLevel::Debug);
    let opts = c.server_options();
    assert_eq!(opts.software.as_deref(), Some("switchback"));
    assert!(opts.strict_rfc8656);
}

#[test]
fn turn_keys_parse_and_map_into_the_server() {
    let c = Config::from_toml_str(
        r#"
        listening-ip = ["0.0.0.0"]
        relay-ip = ["10.0.0.5"]
        external-ip = "203.0.113.4/10.0.0.5"
        min-port = 50000
        max-port = 50100
        realm = "example.org"
        static-auth-secret = ["new", "old"]
        use-auth-secret = true
        max-credential-lifetime = 0
        rest-separator = "-"
        rest-algorithm = "sha256"
        nonce-lifetime = 600
        require-sha256 = true
        default-lifetime = 300
        max-lifetime = 1200
        allow-loopback-peers = true
        user-quota = 2
        total-quota = 100

        [users]
        alice = "pw"
        bob = "0x97b37d1e83e546d3c2ac44283b33af08"
        "#,
    )
    .unwrap();
    let o = c.server_options();
    assert_eq!(
        o.relay_addresses,
        vec![crate::server::RelayAddress {
            local: "10.0.0.5".parse().unwrap(),
            advertised: "203.0.113.4".parse().unwrap()
        }]
    );
    assert_eq!((o.min_port, o.max_port), (50000, 50100));
    assert_eq!((o.default_lifetime, o.max_lifetime), (300, 1200));
    assert_eq!((o.user_quota, o.total_quota), (2, 100));
    assert!(o.allow_loopback_peers);

    let auth = c.auth_config().unwrap().unwrap();
    assert_eq!(auth.realm, "example.org");
    assert_eq!(auth.nonce_ttl_secs, 600);
    assert!(auth.require_sha256);
    let rest = auth.rest.as_ref().unwrap();
    assert_eq!(rest.secrets.len(), 2);
    assert_eq!(rest.separator, '-');
    assert_eq!(rest.algorithm, RestAlgorithm::Sha256);
    assert_eq!(rest.max_lifetime_secs, 0);
    assert_eq!(auth.users["alice"], StaticCredential::Password("pw".into()));
    assert!(matches!(auth.users["bob"], StaticCredential::Key(_)));
    let dbg = format!("{auth:?}{c:?}");
    assert!(!dbg.contains("pw\"") && !dbg.contains("\"new\"") && !dbg.contains("97b37d"), "{dbg}");
}

#[test]
fn no_credentials_means_stun_only() {
    let c = Config::default();
    assert!(!c.has_credentials());
    assert!(c.auth_config().unwrap().is_none());
    assert!(c.rest_credentials().is_none());
    // A realm alone gives nothing to check credentials against.
    assert!(Config::from_toml_str("realm = \"x\"").unwrap().auth_config().unwrap().is_none());
    // Credentials without a realm get the default one.
    let c = Config::from_toml_str("static-auth-secret = [\"s\"]").unwrap();
    assert_eq!(c.auth_config().unwrap().unwrap().realm, DEFAULT_REALM);
}

#[test]
fn dev_credentials_allow_loopback_only_on_loopback() {
    let c = Config::default().with_dev_credentials(SecretText("dev".into()));
    assert_eq!(c.realm.as_deref(), Some(DEFAULT_REALM));
    assert!(c.allow_loopback_peers);
    assert!(c.auth_config().unwrap().unwrap().rest.is_some());
    let c = Config { listening_ip: vec!["::1".parse().unwrap(), "127.0.0.2".parse().unwrap()], ..Config::default() };
    assert!(c.with_dev_credentials(SecretText("dev".into())).allow_loopback_peers);
    let c =
        Config { listening_ip: vec!["127.0.0.1".parse().unwrap(), "0.0.0.0".parse().unwrap()], ..Config::default() };
    assert!(!c.with_dev_credentials(SecretText("dev".into())).allow_loopback_peers);
    let c = Config { relay_ip: vec!["192.0.2.1".parse().unwrap()], ..Config::default() };
    assert!(!c.with_dev_credentials(SecretText("dev".into())).allow_loopback_peers);
}

#[test]
fn unknown_key_is_named() {
    let err = Config::from_toml_str("listening-ports = 1\n").unwrap_err();
    assert_eq!(err.to_string(), "unknown key \"listening-ports\" (did you mean \"listening-port\"?)");
    let err = Config::from_toml_str("quite-unlike-any-key = 1\n").unwrap_err();
    assert_eq!(err.to_string(), "unknown key \"quite-unlike-any-key\"");
}

#[test]
fn bad_values_name_the_key() {
    for (text, key) in [
        ("listening-port = \"x\"", "listening-port"),
        ("listening-port = 70000", "listening-port"),
        ("listening-ip = [\"localhost\"]", "listening-ip"),
        ("log-format = \"xml\"", "log-format"),
        ("log-level = \"loud\"", "log-level"),
        ("no-udp = 1", "no-udp"),
    ] {
        let err = Config::from_toml_str(text).unwrap_err();
        match &err {
            ConfigError::InvalidValue { key: k, .. } => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert!(!err.to_string().contains('\n'), "one line: {err}");
    }
}

#[test]
fn validation() {
    let err = Config::from_toml_str("no-udp = true\nno-tcp = true").unwrap_err();
    assert!(err.to_string().contains("no-tcp"), "{err}");
    let err = Config::from_toml_str("listening-ip = []").unwrap_err();
    assert!(err.to_string().contains("listening-ip"), "{err}");
    let long = "x".repeat(128);
    let err = Config::from_toml_str(&format!("software = \"{long}\"")).unwrap_err();
    assert!(err.to_string().contains("software"), "{err}");
    Config::from_toml_str(&format!("software = \"{}\"", "é".repeat(127))).unwrap();

    // Checks for options that later issues enable, exercised on the struct directly.
    let mut c = Config { min_port: 60000, max_port: 50000, ..Config::default() };
    assert!(c.validate().is_err());
    c.max_port = 60000;
    c.validate().unwrap();
    c.use_auth_secret = true;
    assert!(c.validate().is_err());
    c.static_auth_secret.push(SecretText("s".into()));
    c.validate().unwrap();
    c.cert = Some("c.pem".into());
    assert!(matches!(c.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "pkey"));
    c.cert = None;
    c.pkey = Some("k.pem".into());
    assert!(matches!(c.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "cert"));
    c.cert = Some("c.pem".into());
    c.validate().unwrap();
    // TLS alone is something to listen on.
    c.no_udp = true;
    c.no_tcp = true;
    c.validate().unwrap();
    c.no_tls = true;
    assert!(matches!(c.validate(), Err(ConfigError::InvalidValue { key, .. }) if key == "no-tcp"));
}

#[test]
fn syntax_error_has_line_and_column() {
    let err = Config::from_toml_str("listening-port = 1\nno-udp = = true\n").unwrap_err();
    match err {
        ConfigError::Syntax { line, .. } => assert_eq!(line, 2),
        other => panic!("{other:?}"),
    }
}

/// A fresh directory under the temp dir, removed on drop.
pub(super) struct TempDir(pub(super) std::path::PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("switchback-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn overrides_replace_file_values() {
    let dir = TempDir::new("overrides");
    let path = dir.0.join("turn.toml");
    std::fs::write(&path, "listening-port = 4000\nno-tcp = true\n").unwrap();

    let mut flags = toml::Table::new();
    flags.insert("listening-port".into(), toml::Value::Integer(0));
    let c = Config::from_sources(Some(&path), flags).unwrap();
    assert_eq!(c.listening_port, 0);
    assert!(c.no_tcp);

    std::fs::write(&path, "max-bps = -1\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("turn.toml") && err.contains("max-bps"), "{err}");

    // cert and pkey are paths: relative to the file's directory.
    std::fs::write(&path, "cert = \"c.pem\"\npkey = \"/etc/k.pem\"\ntls-listening-port = 443\n").unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.cert, Some(dir.0.join("c.pem")));
    assert_eq!(c.pkey, Some("/etc/k.pem".into()));
    assert_eq!(c.tls_port(), 443);

    let mut flags = toml::Table::new();
    flags.insert("tls-listening-port".into(), toml::Value::Integer(1));
    assert_eq!(Config::from_sources(Some(&path), flags).unwrap().tls_port(), 1, "the flag wins over the file");

    let err = Config::load(&dir.0.join("missing.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }), "{err}");
}

#[test]
fn credential_files_are_read_relative_to_the_config_file() {
    let dir = TempDir::new("files");
    std::fs::write(dir.0.join("secret"), "# newest first\nfile-new\nfile-old\n").unwrap();
    std::fs::write(dir.0.join("users"), "carol:pw3\n# comment\n\ndave:0x97b37d1e83e546d3c2ac44283b33af08\n").unwrap();
    let path = dir.0.join("turn.toml");
    std::fs::write(
        &path,
        "realm = \"r\"\nstatic-auth-secret = [\"inline\"]\nstatic-auth-secret-file = \"secret\"\n\
         users-file = \"users\"\n[users]\nalice = \"pw\"\n",
    )
    .unwrap();
    let mut c = Config::load(&path).unwrap();
    let secrets: Vec<&str> = c.static_auth_secret.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(secrets, ["inline", "file-new", "file-old"]);
    assert_eq!(c.users.keys().collect::<Vec<_>>(), ["alice", "carol", "dave"]);
    c.read_secret_files().unwrap();
    assert_eq!(c.static_auth_secret.len(), 3, "reading twice adds nothing");
    assert_eq!(c.rest_credentials().unwrap().mint("x", 60, 0).unwrap().1.len(), 28);

    // Errors name the key, never the content.
    std::fs::write(dir.0.join("users"), "carol:pw3\nhunter2\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("users-file") && err.contains("line 2"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    std::fs::write(dir.0.join("users"), "alice:other\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("users-file") && err.contains("alice"), "{err}");
    std::fs::write(dir.0.join("secret"), "# empty\n").unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("static-auth-secret-file") && err.contains("no secret"), "{err}");
    std::fs::remove_file(dir.0.join("secret")).unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("static-auth-secret-file") && err.contains("cannot read"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug() {
    let c = Config { static_auth_secret: vec![SecretText("hunter2".into())], ..Config::default() };
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn log_level_raised() {
    assert_eq!(LogLevel::Info.raised(0), LogLevel::Info);
    assert_eq!(LogLevel::Info.raised(1), LogLevel::Debug);
    assert_eq!(LogLevel::Error.raised(200), LogLevel::Trace);
    assert_eq!(LogLevel::Warn.as_str(), "warn");
}

#[test]
fn rate_limits_and_revocation_keys() {
    use crate::policy::rate::RateLimit;
    use crate::policy::revocation::Revocations as _;

    let d = Config::default();
    assert_eq!(d.rate_limit_unauth, RateLimit::new(20, 300));
    assert_eq!(d.rate_limit_allocate, RateLimit::new(10, 20));
    assert!(!d.rate_limit_binding && !d.strict_expiry);
    assert!(d.revocation_list().unwrap().is_empty());

    let dir = TempDir::new("revocation");
    std::fs::write(dir.0.join("revoked"), "# revoked\nmallory\n1800000000:eve\n").unwrap();
    let path = dir.0.join("turn.toml");
    std::fs::write(
        &path,
        "rate-limit-unauth = \"5/s\"\nrate-limit-allocate = 0\nrate-limit-binding = true\nstrict-expiry = true\n\
         revoked-users = [\"trudy\"]\nrevocation-file = \"revoked\"\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let o = c.server_options();
    assert_eq!(o.rate_limit_unauth, RateLimit::new(5, 10));
    assert_eq!(o.rate_limit_allocate, RateLimit::OFF);
    assert!(o.rate_limit_binding && o.strict_expiry);
    let list = c.revocation_list().unwrap();
    assert_eq!(list.len(), 3);
    assert!(list.is_revoked("trudy", "trudy") && list.is_revoked("mallory", "1:mallory"));
    assert!(list.is_revoked("eve", "1800000000:eve") && !list.is_revoked("eve", "1800000001:eve"));

    // A revocation file that cannot be read stops the start, naming the key.
    std::fs::remove_file(dir.0.join("revoked")).unwrap();
    let err = Config::load(&path).unwrap_err().to_string();
    assert!(err.contains("revocation-file") && err.contains("cannot read"), "{err}");

    for bad in ["rate-limit-unauth = \"20\"", "rate-limit-unauth = 5", "rate-limit-allocate = \"10/s:0\""] {
        let err = Config::from_toml_str(bad).unwrap_err().to_string();
        assert!(err.contains("rate-limit-") && err.contains("N/s"), "{bad}: {err}");
    }
    assert_eq!(Config::from_toml_str("rate-limit-unauth = \"off\"").unwrap().rate_limit_unauth, RateLimit::OFF);
}

#[test]
fn peer_rules_and_own_addresses_map_into_the_server() {
    let c = Config::from_toml_str(
        r#"
        listening-ip = ["0.0.0.0", "127.0.0.1"]
        relay-ip = ["10.0.0.5"]
        external-ip = "198.51.100.4/10.0.0.5"
        allowed-peer-ip = ["10.0.0.0/8", "192.0.2.1-192.0.2.9", "198.51.100.7@3000-4000"]
        denied-peer-ip = ["8.8.4.0/24"]
        "#,
    )
    .unwrap();
    let o = c.server_options();
    let rules = |v: &[PeerRule]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(rules(&o.allowed_peers), ["10.0.0.0/8", "192.0.2.1-192.0.2.9", "198.51.100.7@3000-4000"]);
    assert_eq!(rules(&o.denied_peers), ["8.8.4.0/24"]);
    let own: Vec<IpAddr> = ["0.0.0.0", "127.0.0.1", "10.0.0.5", "198.51.100.4"].map(|s| s.parse().unwrap()).to_vec();
    // The named ones first; then, for the 0.0.0.0 listener, this host's other IPv4 addresses.
    assert_eq!(o.own_addresses[..4], own[..]);
    assert!(o.own_addresses[4..].iter().all(|ip| ip.is_ipv4() && !own.contains(ip)), "{:?}", o.own_addresses);
    // A bad rule names its key.
    let err = Config::from_toml_str(r#"denied-peer-ip = ["10.0.0.1/8"]"#).unwrap_err();
    assert!(err.to_string().contains("host bits"), "{err}");
}

#[test]
fn quota_and_bandwidth_keys_map_into_the_server() {
    let d = Config::default().server_options();
    assert_eq!((d.max_permissions, d.max_channels), (64, 64));
    assert_eq!((d.max_bps, d.user_max_bps, d.bps_capacity), (0, 0, 0), "bandwidth is unlimited by default");
    let c = Config::from_toml_str(
        "max-permissions = 8\nmax-channels = 4\nmax-bps = 125000\nuser-max-bps = 250000\nbps-capacity = 12500000\n",
    )
    .unwrap();
    let o = c.server_options();
    assert_eq!((o.max_permissions, o.max_channels), (8, 4));
    assert_eq!((o.max_bps, o.user_max_bps, o.bps_capacity), (125_000, 250_000, 12_500_000));
    for bad in ["max-bps = -1", "max-channels = 5000000000", "bps-capacity = \"1M\""] {
        let err = Config::from_toml_str(bad).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }), "{bad}: {err}");
    }
}

#[test]
fn the_legacy_dual_allocation_alias_is_on_unless_turned_off() {
    assert!(Config::default().server_options().legacy_dual_allocation);
    let c = Config::from_toml_str("no-legacy-dual-allocation = true\n").unwrap();
    assert!(!c.server_options().legacy_dual_allocation);
}

#[test]
fn admin_listen_needs_a_key_and_the_threshold_an_alternate_server() {
    let err = Config::from_toml_str("admin-listen = \"127.0.0.1:0\"").unwrap_err();
    assert!(err.to_string().contains("admin-listen"), "{err}");
    let err = Config::from_toml_str("admin-listen = \"127.0.0.1:0\"\nadmin-key = \"short\"").unwrap_err();
    assert!(err.to_string().contains("admin-key"), "{err}");
    let c = Config::from_toml_str("admin-listen = \"127.0.0.1:0\"\nadmin-key = \"0123456789abcdef\"").unwrap();
    assert_eq!(c.admin_key.unwrap().0, "0123456789abcdef");
    let err = Config::from_toml_str("alternate-threshold = 10").unwrap_err();
    assert!(err.to_string().contains("alternate-threshold"), "{err}");
    let c = Config::from_toml_str("alternate-server = [\"192.0.2.1:3478\"]\nalternate-threshold = 10").unwrap();
    let opts = c.server_options();
    assert_eq!((opts.alternate_servers, opts.alternate_threshold), (vec!["192.0.2.1:3478".parse().unwrap()], 10));
    let err = Config::from_toml_str("alternate-server = [\"192.0.2.1:3478\", \"192.0.2.2:3478\"]").unwrap_err();
    assert!(err.to_string().contains("alternate-server"), "{err}");
    assert_eq!(Config::default().drain_timeout, 30);
}

#[test]
fn token_service_keys() {
    let dir = TempDir::new("tokens");
    let path = dir.0.join("turn.toml");
    std::fs::write(dir.0.join("token-keys"), "# rotated\nk2:abcdefghijklmnopqrstuvwxyz012345\n").unwrap();
    std::fs::write(dir.0.join("api-keys"), "backend-key-0123456789\n").unwrap();
    std::fs::write(
        &path,
        "static-auth-secret = [\"s\"]\napi-listen = \"127.0.0.1:0\"\ntoken-key = [\"k1:0123456789abcdef0123456789abcdef\"]\n\
         token-key-file = \"token-keys\"\napi-key-file = \"api-keys\"\ntoken-audience = \"app\"\ntoken-leeway = 5\n\
         api-cors-origin = [\"https://app.example\"]\napi-rate-limit = \"5/s\"\napi-user-rate-limit = 0\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.api_listen, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(c.token_key.len(), 2, "the file's key joins the flag's");
    assert_eq!(c.api_key, vec![SecretText("backend-key-0123456789".into())]);
    assert_eq!(c.api_rate_limit, RateLimit::new(5, 10));
    assert!(!c.api_user_rate_limit.is_on());
    let keys = c.token_keys().unwrap();
    let kids: Vec<_> = keys.keys().iter().map(|k| k.kid()).collect();
    assert_eq!(kids, vec![Some("k1"), Some("k2")]);
    assert_eq!((keys.audience.as_str(), keys.leeway_secs), ("app", 5));
    assert!(keys.can_mint());
    assert!(!format!("{c:?}").contains("0123456789abcdef"), "keys do not show in Debug");

    let key = "token-key = [\"0123456789abcdef0123456789abcdef\"]\n";
    for (text, named) in [
        ("api-listen = \"127.0.0.1:0\"\n".to_owned(), "api-listen"),
        ("token-key = [\"short\"]\n".to_owned(), "token-key"),
        (format!("{key}token-key-file = \"/nonexistent/keys\"\n"), "token-key-file"),
        ("token-public-key = [\"/nonexistent.pem\"]\n".to_owned(), "token-public-key"),
        (format!("{key}api-key = [\"short\"]\n"), "api-key"),
        ("api-key = [\"backend-key-0123456789\"]\n".to_owned(), "api-key"),
        (format!("{key}api-cors-origin = [\"app.example\"]\n"), "api-cors-origin"),
        (format!("{key}token-audience = \"\"\n"), "token-audience"),
        (format!("{key}api-max-ttl = 0\n"), "api-max-ttl"),
        (format!("{key}api-tls = true\n"), "api-tls"),
        (format!("{key}api-on-tls = true\n"), "api-on-tls"),
        (format!("{key}api-on-tls = true\ncert = \"c.pem\"\npkey = \"k.pem\"\nno-tls = true\n"), "api-on-tls"),
        ("api-on-tls = true\ncert = \"c.pem\"\npkey = \"k.pem\"\n".to_owned(), "api-on-tls"),
        (format!("{key}api-rate-limit = \"fast\"\n"), "api-rate-limit"),
        (
            "token-key = [\"a:0123456789abcdef0123456789abcdef\", \"a:0123456789abcdef0123456789abcdeX\"]\n".to_owned(),
            "token-key",
        ),
    ] {
        let err = Config::from_toml_str(&text).unwrap_err().to_string();
        assert!(err.contains(named), "{text}: {err}");
        assert!(!err.contains("0123456789abcdef"), "no key in errors: {err}");
    }
}

#[test]
fn workers_and_socket_buffer_keys() {
    let d = Config::default();
    assert_eq!((d.workers, d.socket_buffer), (0, DEFAULT_SOCKET_BUFFER));
    assert!(d.worker_count() >= 1, "0 means one per core");
    let c = Config::from_toml_str("workers = 3\nsocket-buffer = 0\n").unwrap();
    assert_eq!((c.workers, c.worker_count(), c.socket_buffer), (3, 3, 0));
    for bad in ["workers = -1", "workers = 70000", "socket-buffer = \"4M\""] {
        assert!(Config::from_toml_str(bad).is_err(), "{bad} accepted");
    }
}

/// A PROXY header names the client: with no balancer listed anyone could claim any address, so the
/// configuration is refused, naming `proxy-protocol-from`.
#[test]
fn proxy_protocol_needs_its_balancers() {
    let err = Config::from_toml_str("proxy-protocol = true\n").unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "proxy-protocol-from"), "{err}");
    let ok = Config::from_toml_str("proxy-protocol = true\nproxy-protocol-from = [\"10.0.0.1\"]\n").unwrap();
    assert_eq!(ok.proxy_protocol_from.len(), 1);
}

/// A secret file others can read gets a warning naming the key and the file; a private one none.
#[cfg(unix)]
#[test]
fn secret_files_readable_by_others_are_named() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("switchback-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secrets");
    std::fs::write(&file, "s3cret\n").unwrap();
    let config = |path: &std::path::Path| {
        Config::from_toml_str(&format!("static-auth-secret-file = {:?}\n", path.display().to_string())).unwrap()
    };
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warnings = config(&file).file_warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("static-auth-secret-file") && warnings[0].contains(&file.display().to_string()));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(config(&file).file_warnings(), Vec::<String>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A listening port inside the relay range is refused naming its key and the range; the HTTP faces'
/// addresses are own addresses of the peer policy.
#[test]
fn listening_ports_stay_out_of_the_relay_range_and_http_addresses_are_own() {
    for (text, key) in [
        ("listening-port = 50000\n", "listening-port"),
        ("metrics-listen = \"127.0.0.1:60000\"\n", "metrics-listen"),
        ("api-listen = \"127.0.0.1:49152\"\nstatic-auth-secret = [\"s\"]\n", "api-listen"),
    ] {
        let err = Config::from_toml_str(text).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key: k, .. } if k == key), "{text}: {err}");
        assert!(err.to_string().contains("min-port 49152 to max-port 65535"), "{err}");
    }
    Config::from_toml_str("listening-port = 50000\nmin-port = 50001\n").unwrap();
    let c = Config::from_toml_str("metrics-listen = \"192.0.2.7:9100\"\n").unwrap();
    assert!(c.own_addresses().contains(&"192.0.2.7".parse().unwrap()), "{:?}", c.own_addresses());
}

/// Finite allocation quotas by default (one credential must not take every relay port); 0 still
/// means unlimited when the operator says so.
#[test]
fn allocation_quotas_are_finite_by_default() {
    let o = Config::default().server_options();
    assert_eq!((o.user_quota, o.total_quota), (DEFAULT_USER_QUOTA, DEFAULT_TOTAL_QUOTA));
    assert!(o.user_quota > 0 && o.total_quota > o.user_quota);
    let unlimited = Config::from_toml_str("user-quota = 0\ntotal-quota = 0\n").unwrap().server_options();
    assert_eq!((unlimited.user_quota, unlimited.total_quota), (0, 0));
}

/// `api-on-tls` serves the token service on the TURN-TLS listeners: it needs their certificate and
/// the token service's keys and secret, not `api-listen`; errors name it.
#[test]
fn api_on_tls_needs_tls_and_the_token_service_keys_but_not_api_listen() {
    let tls = "cert = \"c.pem\"\npkey = \"k.pem\"\n";
    let key = "token-key = [\"0123456789abcdef0123456789abcdef\"]\n";
    let c = Config::from_toml_str(&format!("{tls}{key}static-auth-secret = [\"s\"]\napi-on-tls = true\n")).unwrap();
    assert!(c.api_on_tls && c.api_listen.is_none());
    assert_eq!(c.api_face_key(), Some("api-on-tls"));
    c.validate_serving(false).unwrap();
    assert!(!Config::default().api_on_tls, "off by default");
    assert_eq!(Config::default().api_face_key(), None);
    // The secret is a serving check, as for api-listen.
    let c = Config::from_toml_str(&format!("{tls}{key}api-on-tls = true\n")).unwrap();
    let err = c.validate_serving(false).unwrap_err();
    assert!(matches!(&err, ConfigError::Serving { key: "api-on-tls", .. }), "{err}");
    c.validate_serving(true).unwrap();
}

#[test]
fn tcp_idle_timeout_is_a_key_of_at_least_a_second() {
    assert_eq!(Config::default().tcp_idle_timeout, 300);
    assert_eq!(Config::from_toml_str("tcp-idle-timeout = 1").unwrap().tcp_idle_timeout, 1);
    match Config::from_toml_str("tcp-idle-timeout = 0") {
        Err(ConfigError::InvalidValue { key, .. }) => assert_eq!(key, "tcp-idle-timeout"),
        other => panic!("{other:?}"),
    }
}

/// RFC 5780 §6 needs two addresses of one family: refused otherwise, naming `rfc5780`; the
/// alternate port follows `listening-port` (+ 1, or 0 with 0) and reaches the listen plan.
#[test]
fn rfc5780_needs_two_listening_ips_of_one_family() {
    for ips in ["[\"127.0.0.1\"]", "[\"127.0.0.1\", \"::1\"]", "[\"127.0.0.1\", \"127.0.0.1\"]"] {
        let err = Config::from_toml_str(&format!("rfc5780 = true\nlistening-ip = {ips}\n")).unwrap_err();
        assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "rfc5780"), "{ips}: {err}");
    }
    let ok = Config::from_toml_str("rfc5780 = true\nlistening-ip = [\"127.0.0.1\", \"127.0.0.2\"]\n").unwrap();
    assert_eq!(ok.alt_port(), 3479);
    assert_eq!(crate::io::ListenPlan::from(&ok).rfc5780_alt_port, Some(3479));
    assert!(ok.server_options().rfc5780);
    assert_eq!(Config { listening_port: 0, ..ok.clone() }.alt_port(), 0);
    assert_eq!(Config { alt_listening_port: Some(5000), ..ok.clone() }.alt_port(), 5000);
    let same = "rfc5780 = true\nlistening-ip = [\"127.0.0.1\", \"127.0.0.2\"]\nalt-listening-port = 3478\n";
    let err = Config::from_toml_str(same).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "alt-listening-port"), "{err}");
    assert_eq!(crate::io::ListenPlan::from(&Config::default()).rfc5780_alt_port, None);
    // The alternate port stays out of the relay range like the others.
    let inside = "rfc5780 = true\nlistening-ip = [\"127.0.0.1\", \"127.0.0.2\"]\nalt-listening-port = 50000\n";
    let err = Config::from_toml_str(inside).unwrap_err();
    assert!(matches!(&err, ConfigError::InvalidValue { key, .. } if key == "alt-listening-port"), "{err}");
}

#[test]
fn redis_failure_is_open_or_closed() {
    assert!(!Config::default().server_options().lease_fail_closed);
    let closed = Config::from_toml_str("redis-failure = \"closed\"\n").unwrap();
    assert!(closed.server_options().lease_fail_closed);
    let e = Config::from_toml_str("redis-failure = \"maybe\"\n").unwrap_err();
    assert_eq!(e.key(), Some("redis-failure"), "{e}");
}

/// A wildcard listener answers on every address of its family, so each interface address of that
/// family is one of the server's own addresses for the peer policy (docs/security-peer-policy.md):
/// a client cannot reach the host's other services through the relay on an address it never named.
#[test]
fn a_wildcard_listener_makes_every_interface_address_of_its_family_an_own_address() {
    let host = super::host_addrs::interface_addresses();
    assert!(host.contains(&"127.0.0.1".parse().unwrap()), "the loopback interface: {host:?}");
    let v4 = Config { listening_ip: vec!["0.0.0.0".parse().unwrap()], ..Config::default() }.own_addresses();
    for ip in &host {
        assert_eq!(v4.contains(ip), ip.is_ipv4(), "{ip} with a 0.0.0.0 listener: {v4:?}");
    }
    let v6 = Config { listening_ip: vec!["::".parse().unwrap()], ..Config::default() }.own_addresses();
    for ip in &host {
        assert_eq!(v6.contains(ip), ip.is_ipv6(), "{ip} with a :: listener: {v6:?}");
    }
    // A specific listener names its own address: the host's others are not added.
    let one = Config { listening_ip: vec!["127.0.0.1".parse().unwrap()], ..Config::default() }.own_addresses();
    assert_eq!(one, vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
}
