//! `deploy/` (issue #16 §9): images cannot be pulled here, so the Compose file and the Kubernetes
//! manifests are parsed instead (YAML), and everything they hand the binary is checked against it:
//! every flag of every `command`/`args`/`preStop`, every `SWITCHBACK_*` variable, and the
//! `turn.toml` they mount (the ConfigMap's and `deploy/turn.toml`, which must agree), loaded as the
//! daemon would load it with the secrets in place and passed through `--check-config`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

use crate::support::{PROCESS_TIMEOUT, run_with_timeout};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

/// Every YAML document of `path`.
fn documents(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path} is not YAML: {e}"))
}

/// The long flags `switchback [SUBCOMMAND…] --help` lists.
fn flags(subcommand: &[&str]) -> BTreeSet<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
    cmd.args(subcommand).arg("--help");
    let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
    assert!(out.status.success(), "{subcommand:?} --help: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split(['=', '<']).next().unwrap_or(w).to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

/// The strings of a YAML list.
fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec().map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// Checks a switchback command line (after the binary name): its subcommand path and every flag.
fn check_command(args: &[String], what: &str) {
    // The subcommand path (`admin drain`): the bare words, flag values (paths, numbers) aside;
    // none for the daemon itself, whose command line starts with a flag.
    let path: Vec<&str> = match args.first() {
        Some(first) if !first.starts_with('-') => args
            .iter()
            .map(String::as_str)
            .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-'))
            .collect(),
        _ => Vec::new(),
    };
    let known = flags(&path);
    for flag in args.iter().filter_map(|a| a.strip_prefix("--")) {
        let name = flag.split('=').next().unwrap_or(flag);
        assert!(known.contains(name), "{what}: --{name} is not a flag of `switchback {}`", path.join(" "));
    }
}

/// `text` (a turn.toml) loaded as the daemon would, with its secret files under
/// `/run/secrets/switchback/` present, and passed through `switchback --check-config`.
fn check_turn_toml(text: &str, what: &str) -> switchback::config::Config {
    let dir = std::env::temp_dir().join(format!("sb-deploy-{}-{}", std::process::id(), what.replace('/', "-")));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, value) in [
        ("static-auth-secret", "a-rest-secret-for-the-test"),
        ("nonce-secret", "a-nonce-secret-for-the-test-0123456789"),
        ("admin-key", "an-admin-key-for-the-test-0123456789"),
        ("redis-url", "redis://127.0.0.1:1/0"),
    ] {
        std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
    }
    let mounted = text.replace("/run/secrets/switchback/", &format!("{}/", dir.display()));
    let config = switchback::config::Config::from_toml_str(&mounted).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(config.redis_url.is_some() && config.nonce_key().is_some(), "{what}: fleet mode with one nonce key");
    let file = dir.join("turn.toml");
    std::fs::write(&file, &mounted).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
    cmd.args(["-c", file.to_str().unwrap(), "--check-config"]);
    let out = run_with_timeout(&mut cmd, PROCESS_TIMEOUT);
    assert!(out.status.success(), "{what}: --check-config: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
    config
}

/// The meaningful lines of a turn.toml (no comments, no blank lines), to compare two copies.
fn settings(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect()
}

#[test]
fn the_compose_file_uses_only_flags_that_exist() {
    let compose = &documents("compose.yaml")[0];
    let services = compose["services"].as_hash().expect("services");
    let mut nodes = 0;
    for (name, service) in services {
        let name = name.as_str().unwrap_or_default();
        if name == "valkey" {
            continue;
        }
        let command = strings(&service["command"]);
        assert!(!command.is_empty(), "{name}: a command");
        check_command(&command, &format!("compose {name}"));
        nodes += 1;
    }
    assert_eq!(nodes, 3, "three switchback nodes");
    check_turn_toml(&std::fs::read_to_string(deploy("turn.toml")).unwrap(), "deploy/turn.toml");
}

#[test]
fn the_kubernetes_manifests_use_only_flags_keys_and_variables_that_exist() {
    let daemonset = documents("k8s/daemonset.yaml");
    let spec = &daemonset[0]["spec"]["template"]["spec"];
    assert_eq!(spec["hostNetwork"].as_bool(), Some(true), "relay ports need the host's network");
    let container = &spec["containers"][0];
    check_command(&strings(&container["args"]), "daemonset args");
    let pre_stop = strings(&container["lifecycle"]["preStop"]["exec"]["command"]);
    assert_eq!(pre_stop.first().map(String::as_str), Some("/usr/bin/switchback"), "{pre_stop:?}");
    check_command(&pre_stop[1..], "preStop");
    assert!(pre_stop.iter().any(|a| a == "drain"), "the preStop hook drains: {pre_stop:?}");
    for env in container["env"].as_vec().expect("env") {
        let var = env["name"].as_str().unwrap_or_default();
        let key = var.strip_prefix(switchback::config::ENV_PREFIX).map(|k| k.to_ascii_lowercase().replace('_', "-"));
        let key = key.unwrap_or_else(|| panic!("{var}: not a SWITCHBACK_ variable"));
        assert_eq!(switchback::config::env_var(&key), var, "{var} names the key {key}");
        let one = switchback::config::Config::from_toml_str(&format!("{key} = \"x\""));
        assert!(one.is_ok(), "{var}: {key} is a key taking a string: {:?}", one.err());
    }
    // Readiness and liveness probe the metrics face the ConfigMap opens.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"].as_str(), Some("/readyz"));
    let grace = spec["terminationGracePeriodSeconds"].as_i64().expect("a grace period");

    let configmap = documents("k8s/configmap.yaml");
    let turn_toml = configmap[0]["data"]["turn.toml"].as_str().expect("data.turn.toml");
    let config = check_turn_toml(turn_toml, "k8s configmap");
    assert_eq!(
        settings(turn_toml),
        settings(&std::fs::read_to_string(deploy("turn.toml")).unwrap()),
        "the ConfigMap and deploy/turn.toml agree"
    );
    assert!(grace > config.drain_timeout as i64, "terminationGracePeriodSeconds above drain-timeout");

    // Every secret file the configuration names is a key of the Secret.
    let secret = documents("k8s/secret.yaml");
    let data = secret[0]["stringData"].as_hash().expect("stringData");
    for line in turn_toml.lines().filter(|l| l.contains("/run/secrets/switchback/")) {
        let file = line.split("/run/secrets/switchback/").nth(1).unwrap_or_default().trim_end_matches('"');
        assert!(data.contains_key(&Yaml::String(file.to_owned())), "the Secret lacks {file}");
    }
    for doc in ["k8s/valkey.yaml", "k8s/namespace.yaml"] {
        assert!(!documents(doc).is_empty(), "{doc}");
    }
}
