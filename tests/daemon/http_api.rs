//! The token service (`/v1`, `api-listen`) on the daemon: `POST /v1/relay-configuration` turns
//! access tokens (from `switchback token`, from `POST /v1/tokens`, or signed by a backend) into REST
//! credentials; every error is a JSON body with the status HTTP means; CORS, body limits, rate
//! limits and revocation.

use std::net::SocketAddr;
use std::process::Command;

use crate::support::{Daemon, HttpResponse, PROCESS_TIMEOUT, TempFile, http_request, run_with_timeout, unix_now};
use serde_json::json;
use switchback::auth::token::{TokenKey, sign_claims};
use switchback::auth::{RestAlgorithm, Secret, rest_password};

const SECRET: &str = "rest-secret-for-the-api-tests";
const TOKEN_KEY: &str = "0123456789abcdef0123456789abcdef";
const API_KEY: &str = "backend-key-0123456789";

/// A daemon with the token service on, configured by a `turn.toml` (plus `extra` flags).
struct Api {
    daemon: Daemon,
    addr: SocketAddr,
    config: TempFile,
    _files: Vec<TempFile>,
}

impl Api {
    fn start(name: &str, extra_toml: &str, extra_args: &[&str]) -> Api {
        let keys = TempFile::new(&format!("{name}-token-keys"), &format!("# HS256\nk1:{TOKEN_KEY}\n"));
        let api_keys = TempFile::new(&format!("{name}-api-keys"), &format!("{API_KEY}\n"));
        let text = format!(
            "listening-port = 0\nno-tls = true\nrealm = \"test.realm\"\nstatic-auth-secret = [\"{SECRET}\"]\n\
             allow-loopback-peers = true\napi-listen = \"127.0.0.1:0\"\ntoken-key-file = \"{}\"\n\
             api-key-file = \"{}\"\n{extra_toml}",
            keys.as_str(),
            api_keys.as_str()
        );
        // Rate limits off unless the test is about them: the other tests send bursts.
        let limits =
            if extra_toml.contains("rate-limit") { "" } else { "api-rate-limit = 0\napi-user-rate-limit = 0\n" };
        let text = format!("{text}{limits}");
        let config = TempFile::new(&format!("{name}-turn.toml"), &text);
        let mut args = vec!["-c", config.as_str()];
        args.extend_from_slice(extra_args);
        let daemon = Daemon::start(&args);
        let addr = daemon.http_addr("api");
        Api { daemon, addr, config, _files: vec![keys, api_keys] }
    }

    fn post(&self, path: &str, bearer: Option<&str>, body: &str) -> HttpResponse {
        let auth = bearer.map(|b| format!("Bearer {b}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        http_request(self.addr, "POST", path, &headers, body)
    }

    fn relay_configuration(&self, token: &str, body: &str) -> HttpResponse {
        self.post("/v1/relay-configuration", Some(token), body)
    }

    /// `switchback token -c CONFIG ARGS`: the token it prints.
    fn cli_token(&self, args: &[&str]) -> String {
        let out = run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_switchback")).args(["token", "-c", self.config.as_str()]).args(args),
            PROCESS_TIMEOUT,
        );
        assert!(out.status.success(), "switchback token failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    }
}

fn key() -> TokenKey {
    TokenKey::hs256(Some("k1"), TOKEN_KEY.as_bytes())
}

/// A token signed with the daemon's key, `edit` applied to valid claims for `sub`.
fn token_for(sub: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let now = unix_now();
    let mut claims = json!({"sub": sub, "exp": now + 600, "iat": now, "nbf": now, "aud": "switchback",
                            "jti": format!("jti-{sub}"), "scope": "turn"});
    edit(&mut claims);
    sign_claims(&key(), &claims).expect("sign")
}

/// A change to a token's claims.
type ClaimsEdit = Box<dyn FnOnce(&mut serde_json::Value)>;

fn assert_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert_eq!(r.json()["error"]["code"], code, "{r:?}");
    assert!(r.json()["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{r:?}");
}

/// The TURN entry of a relay configuration: (urls, username, credential).
fn turn_entry(v: &serde_json::Value) -> (Vec<String>, String, String) {
    let servers = v["iceServers"].as_array().expect("iceServers");
    let turn = servers.iter().find(|s| s.get("username").is_some()).expect("a TURN entry");
    let urls = turn["urls"].as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_owned()).collect();
    (urls, turn["username"].as_str().unwrap().to_owned(), turn["credential"].as_str().unwrap().to_owned())
}

#[test]
fn a_cli_token_becomes_rest_credentials_for_the_listeners() {
    let api = Api::start("cli", "", &[]);
    let token = api.cli_token(&["--user", "alice", "--ttl", "1h", "--jti", "cli-token-1"]);
    assert_eq!(token.split('.').count(), 3, "{token}");
    let claims = switchback::auth::token::TokenKeys::new(vec![key()]).verify(&token, unix_now()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.jti.as_deref()), ("alice", Some("cli-token-1")));
    assert!((unix_now() + 3590..=unix_now() + 3600).contains(&claims.exp));
    let before = unix_now();
    let r = api.relay_configuration(&token, "");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    let (urls, username, credential) = turn_entry(&v);
    let udp = api.daemon.udp[0];
    let tcp = api.daemon.tcp[0];
    assert_eq!(urls, vec![format!("turn:{udp}?transport=udp"), format!("turn:{tcp}?transport=tcp")]);
    assert_eq!(v["iceServers"][0]["urls"][0], format!("stun:{udp}"));
    // REST credentials for the token's subject, no longer than the token (1 h).
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, "alice");
    let expiry: u64 = expiry.parse().unwrap();
    assert!((before + 3590..=unix_now() + 3600).contains(&expiry), "{expiry}");
    let expected = rest_password(&Secret::new(SECRET), &username, RestAlgorithm::Sha1);
    assert_eq!(credential, expected.as_str());
    let expires_on = v["expiresOn"].as_str().unwrap();
    assert_eq!(expires_on, switchback::http::api::rfc3339(expiry));
    let issued = expiry - v["ttl"].as_u64().unwrap();
    assert!((before..=unix_now()).contains(&issued), "ttl {} for expiry {expiry}", v["ttl"]);

    // Asking for less.
    let v = api.relay_configuration(&token, r#"{"ttl": 60}"#).json();
    let (_, username, _) = turn_entry(&v);
    let expiry: u64 = username.split_once(':').unwrap().0.parse().unwrap();
    assert!(expiry <= unix_now() + 60 && expiry + 5 >= unix_now() + 60, "{username}");
    assert_eq!(v["ttl"], 60);
    // A token that ends sooner caps the credentials at its exp.
    let short = token_for("bob", |c| c["exp"] = json!(unix_now() + 30));
    let v = api.relay_configuration(&short, "").json();
    assert!(v["ttl"].as_u64().unwrap() <= 30, "{v}");
}

#[test]
fn relay_configuration_errors_are_json_with_the_right_status() {
    let api = Api::start("errors", "", &[]);
    let r = api.post("/v1/relay-configuration", None, "");
    assert_error(&r, 401, "missing_token");
    assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{r:?}");
    let r = http_request(api.addr, "POST", "/v1/relay-configuration", &[("Authorization", "Basic YTpi")], "");
    assert_error(&r, 401, "missing_token");
    assert_error(&api.relay_configuration("not.a.jwt", ""), 401, "token_malformed");
    let now = unix_now();
    let cases: Vec<(&str, ClaimsEdit, u16, &str)> = vec![
        ("expired", Box::new(move |c| c["exp"] = json!(now - 120)), 401, "token_expired"),
        ("early", Box::new(move |c| c["nbf"] = json!(now + 600)), 401, "token_not_yet_valid"),
        ("audience", Box::new(|c| c["aud"] = json!("someone-else")), 401, "token_wrong_audience"),
        ("scope", Box::new(|c| c["scope"] = json!("chat")), 403, "insufficient_scope"),
        ("no sub", Box::new(|c| c["sub"] = json!("")), 401, "token_missing_claim"),
    ];
    for (what, edit, status, code) in cases {
        let r = api.relay_configuration(&token_for("alice", edit), "");
        assert_eq!(r.status, status, "{what}: {r:?}");
        assert_error(&r, status, code);
    }
    let forged = sign_claims(&TokenKey::hs256(Some("k1"), b"another key of thirty-two bytes!"), &json!({})).unwrap();
    assert_error(&api.relay_configuration(&forged, ""), 401, "token_bad_signature");
    let other_kid = sign_claims(&TokenKey::hs256(Some("k9"), TOKEN_KEY.as_bytes()), &json!({})).unwrap();
    assert_error(&api.relay_configuration(&other_kid, ""), 401, "token_unknown_kid");

    let good = token_for("alice", |_| {});
    assert_error(&api.relay_configuration(&good, "{not json"), 400, "bad_request");
    assert_error(&api.relay_configuration(&good, r#"{"ttl": 0}"#), 400, "bad_request");
    assert_error(&api.relay_configuration(&good, r#"{"ttl": -5}"#), 400, "bad_request");
    // Unknown fields are ignored (forward compatibility), known ones still checked.
    assert_eq!(api.relay_configuration(&good, r#"{"lifetime": 5, "ttl": 60}"#).status, 200);
    assert_error(&api.relay_configuration(&good, r#"{"lifetime": 5, "ttl": "60"}"#), 400, "bad_request");
    let big = format!(r#"{{"ttl": 60, "pad": "{}"}}"#, "x".repeat(8192));
    assert_error(&api.relay_configuration(&good, &big), 413, "body_too_large");
    let r = http_request(api.addr, "GET", "/v1/relay-configuration", &[], "");
    assert_error(&r, 405, "method_not_allowed");
    assert_error(&http_request(api.addr, "GET", "/metrics", &[], ""), 404, "not_found");
    // Still serving after all that.
    assert_eq!(api.relay_configuration(&good, "").status, 200);
}

#[test]
fn the_tokens_endpoint_mints_for_the_trusted_backend() {
    let api = Api::start("tokens", "", &[]);
    assert_error(&api.post("/v1/tokens", None, r#"{"user": "carol"}"#), 401, "missing_token");
    assert_error(&api.post("/v1/tokens", Some("wrong-key-0123456789"), r#"{"user": "carol"}"#), 401, "invalid_api_key");
    // An access token is not an API key.
    assert_error(&api.post("/v1/tokens", Some(&token_for("carol", |_| {})), "{}"), 401, "invalid_api_key");
    assert_error(&api.post("/v1/tokens", Some(API_KEY), ""), 400, "bad_request");
    assert_error(&api.post("/v1/tokens", Some(API_KEY), r#"{"user": ""}"#), 400, "bad_request");
    assert_error(&api.post("/v1/tokens", Some(API_KEY), r#"{"user": "a\u0000b"}"#), 400, "bad_request");
    assert_error(&api.post("/v1/tokens", Some(API_KEY), r#"{"user": "carol", "ttl": 0}"#), 400, "bad_request");

    let r = api.post("/v1/tokens", Some(API_KEY), r#"{"user": "carol", "ttl": 120}"#);
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["ttl"], 120);
    let token = v["token"].as_str().unwrap();
    let claims = switchback::auth::token::TokenKeys::new(vec![key()]).verify(token, unix_now()).unwrap();
    assert_eq!(claims.sub, "carol");
    assert_eq!(v["expiresOn"], switchback::http::api::rfc3339(claims.exp));
    assert_eq!(v["jti"].as_str(), claims.jti.as_deref());
    let r = api.relay_configuration(token, "");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(turn_entry(&r.json()).1.ends_with(":carol"));
}

#[test]
fn without_api_keys_there_is_no_tokens_endpoint() {
    let keys = TempFile::new("nokeys-token-keys", &format!("{TOKEN_KEY}\n"));
    let daemon = Daemon::start(&[
        "--listening-port",
        "0",
        "--no-tls",
        "--static-auth-secret",
        SECRET,
        "--api-listen",
        "127.0.0.1:0",
        "--token-key-file",
        keys.as_str(),
    ]);
    let addr = daemon.http_addr("api");
    let r = http_request(addr, "POST", "/v1/tokens", &[("Authorization", &format!("Bearer {API_KEY}"))], "{}");
    assert_error(&r, 404, "not_found");
    // A token without kid matches the key without kid.
    let token = sign_claims(
        &TokenKey::hs256(None, TOKEN_KEY.as_bytes()),
        &json!({"sub": "dave", "exp": unix_now() + 60, "aud": "switchback", "scope": "turn"}),
    )
    .unwrap();
    let r = http_request(addr, "POST", "/v1/relay-configuration", &[("Authorization", &format!("Bearer {token}"))], "");
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn cors_for_the_configured_origins_only() {
    let api = Api::start(
        "cors",
        "api-cors-origin = [\"https://app.example\"]\npublic-host = \"turn.example.org\"\napi-max-ttl = 120\n",
        &[],
    );
    let preflight = |origin: &str| {
        http_request(
            api.addr,
            "OPTIONS",
            "/v1/relay-configuration",
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type"),
            ],
            "",
        )
    };
    let ok = preflight("https://app.example");
    assert!(ok.status == 200 || ok.status == 204, "{ok:?}");
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://app.example"), "{ok:?}");
    assert!(ok.header("access-control-allow-headers").is_some_and(|h| h.contains("authorization")), "{ok:?}");
    let other = preflight("https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None, "{other:?}");
    let token = token_for("erin", |_| {});
    let auth = format!("Bearer {token}");
    let r = http_request(
        api.addr,
        "POST",
        "/v1/relay-configuration",
        &[("Origin", "https://app.example"), ("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("https://app.example"));
    // public-host names the host in the urls; api-max-ttl caps credentials and minted tokens.
    let v = r.json();
    let port = api.daemon.udp[0].port();
    assert_eq!(turn_entry(&v).0[0], format!("turn:turn.example.org:{port}?transport=udp"));
    assert_eq!(v["ttl"], 120, "{v}");
    let minted = api.post("/v1/tokens", Some(API_KEY), r#"{"user": "erin", "ttl": 3600}"#).json();
    assert_eq!(minted["ttl"], 120, "{minted}");
    let long = token_for(&"x".repeat(129), |_| {});
    assert_error(&api.relay_configuration(&long, ""), 401, "token_bad_subject");
}

#[test]
fn rate_limits_per_source_and_per_user() {
    let api = Api::start("rate", "api-rate-limit = \"1/s:3\"\napi-user-rate-limit = \"1/s:2\"\n", &[]);
    // Per user: the third request of one subject within the burst is refused, another user goes on.
    let frank = token_for("frank", |_| {});
    assert_eq!(api.relay_configuration(&frank, "").status, 200);
    assert_eq!(api.relay_configuration(&frank, "").status, 200);
    let r = api.relay_configuration(&frank, "");
    assert_error(&r, 429, "rate_limited");
    assert!(r.header("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1), "{r:?}");
    // Per source: the burst of 3 is spent (the refused request counted too).
    let r = api.relay_configuration(&token_for("grace", |_| {}), "");
    assert_error(&r, 429, "rate_limited");
}

#[test]
fn revoked_users_and_token_ids_are_refused_after_sighup() {
    let list = TempFile::new("revoke-list", "# nobody yet\n");
    let api = Api::start("revoke", &format!("revocation-file = \"{}\"\n", list.as_str()), &[]);
    let heidi = token_for("heidi", |_| {});
    let ivan = token_for("ivan", |c| c["jti"] = json!("ivan-token-1"));
    let ivan_again = token_for("ivan", |c| c["jti"] = json!("ivan-token-2"));
    for t in [&heidi, &ivan, &ivan_again] {
        assert_eq!(api.relay_configuration(t, "").status, 200);
    }
    std::fs::write(&list.path, "heidi\nivan-token-1\n").unwrap();
    api.daemon.guard.signal("HUP");
    // The reload is asynchronous: wait (bounded) for it to show.
    let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
    while api.relay_configuration(&heidi, "").status == 200 {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload the revocation list");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_error(&api.relay_configuration(&heidi, ""), 403, "user_revoked");
    assert_error(&api.relay_configuration(&ivan, ""), 401, "token_revoked");
    assert_eq!(api.relay_configuration(&ivan_again, "").status, 200, "another token of ivan's");
    // No new token for a revoked user either.
    assert_error(&api.post("/v1/tokens", Some(API_KEY), r#"{"user": "heidi"}"#), 403, "user_revoked");
}

#[test]
fn the_token_cli_refuses_without_a_key_and_names_it() {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args(["token", "--user", "x"]),
        PROCESS_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("token-key"), "{stderr}");
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args(["token", "--user", "x", "--token-key", "short"]),
        PROCESS_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("32 bytes"));
    // api-listen without a token key is a configuration error.
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args([
            "--static-auth-secret",
            SECRET,
            "--api-listen",
            "127.0.0.1:0",
            "--check-config",
        ]),
        PROCESS_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("api-listen"));
}

#[test]
fn a_relay_with_only_public_keys_verifies_eddsa_and_es256_tokens() {
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed_pub = TempFile::new("pub-ed.pem", &ed.public_key_pem());
    let ec_pub = TempFile::new("pub-ec.pem", &ec.public_key_pem());
    let ed_arg = format!("ed1:{}", ed_pub.as_str());
    let ec_arg = format!("ec1:{}", ec_pub.as_str());
    let daemon = Daemon::start(&[
        "--listening-port",
        "0",
        "--no-tls",
        "--static-auth-secret",
        SECRET,
        "--api-listen",
        "127.0.0.1:0",
        "--token-public-key",
        &ed_arg,
        "--token-public-key",
        &ec_arg,
        "--api-rate-limit",
        "0",
    ]);
    let addr = daemon.http_addr("api");
    let claims = json!({"sub": "kim", "exp": unix_now() + 60, "aud": "switchback", "scope": "turn"});
    let post = |token: &str| {
        http_request(addr, "POST", "/v1/relay-configuration", &[("Authorization", &format!("Bearer {token}"))], "")
    };
    for (kid, pair) in [("ed1", &ed), ("ec1", &ec)] {
        let signer =
            TokenKey::private_pem(Some(kid), pair.serialize_pem().as_bytes(), pair.public_key_pem().as_bytes())
                .unwrap();
        let r = post(&sign_claims(&signer, &claims).unwrap());
        assert_eq!(r.status, 200, "{kid}: {r:?}");
        assert!(turn_entry(&r.json()).1.ends_with(":kim"));
    }
    // The Ed25519 key under the EC key's kid: the algorithm does not match the key.
    let wrong = TokenKey::private_pem(Some("ec1"), ed.serialize_pem().as_bytes(), ed.public_key_pem().as_bytes());
    assert_error(&post(&sign_claims(&wrong.unwrap(), &claims).unwrap()), 401, "token_wrong_algorithm");
    // HS256 keyed with the public PEM (the classic confusion attack) is refused too.
    let confused = sign_claims(&TokenKey::hs256(Some("ed1"), ed.public_key_pem().as_bytes()), &claims).unwrap();
    assert_error(&post(&confused), 401, "token_wrong_algorithm");
    // The relay cannot mint: the CLI says so.
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args(["token", "--user", "kim", "--token-public-key", &ed_arg]),
        PROCESS_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// One HTTPS request trusting `cert` for 127.0.0.1; the raw response text.
async fn https_request(addr: SocketAddr, cert: &rcgen::Certificate, request: &str) -> Result<String, std::io::Error> {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    tls.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), tls.read_to_string(&mut response))
        .await
        .expect("an HTTPS answer within 10 s")?;
    Ok(response)
}

#[tokio::test]
async fn api_tls_serves_v1_over_https_with_the_turn_certificate() {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let cert_file = TempFile::new("https-cert.pem", &cert.pem());
    let key_file = TempFile::new("https-key.pem", &signing_key.serialize_pem());
    let extra = format!("cert = \"{}\"\npkey = \"{}\"\napi-tls = true\n", cert_file.as_str(), key_file.as_str());
    let api = tokio::task::spawn_blocking(move || {
        // The base configuration has no-tls; this one needs TLS on.
        let keys = TempFile::new("https-token-keys", &format!("k1:{TOKEN_KEY}\n"));
        let text = format!(
            "listening-port = 0\nstatic-auth-secret = [\"{SECRET}\"]\napi-listen = \"127.0.0.1:0\"\n\
             token-key-file = \"{}\"\n{extra}",
            keys.as_str()
        );
        let config = TempFile::new("https-turn.toml", &text);
        let daemon = Daemon::start(&["-c", config.as_str()]);
        (daemon, config, keys)
    })
    .await
    .unwrap();
    let addr = api.0.http_addr("api");
    let token = token_for("lena", |_| {});
    let request = format!(
        "POST /v1/relay-configuration HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let response = https_request(addr, &cert, &request).await.expect("an HTTPS exchange");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("turns:127.0.0.1:"), "the TLS listener's url is handed out: {response}");
    assert!(response.contains(":lena"), "{response}");
    let bad = format!("POST /v1/relay-configuration HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let response = https_request(addr, &cert, &bad).await.expect("an HTTPS exchange");
    assert!(response.starts_with("HTTP/1.1 401") && response.contains("missing_token"), "{response}");
    // Plain HTTP on the HTTPS port gets no HTTP answer.
    let plain = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    })
    .await
    .unwrap();
    assert!(!plain.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&plain));
}

#[test]
fn a_reload_that_rotates_the_secret_is_followed_by_the_token_service() {
    let api = Api::start("rotate", "", &[]);
    let token = token_for("alice", |_| {});
    let (_, username, credential) = turn_entry(&api.relay_configuration(&token, "").json());
    assert_eq!(credential, rest_password(&Secret::new(SECRET), &username, RestAlgorithm::Sha1).as_str());

    // The operator rotates the secret: the new one first (it mints), the old one kept to verify.
    let text = std::fs::read_to_string(&api.config.path).unwrap();
    let rotated = text.replace(
        &format!("static-auth-secret = [\"{SECRET}\"]"),
        &format!("static-auth-secret = [\"rotated-secret\", \"{SECRET}\"]"),
    );
    assert_ne!(text, rotated);
    std::fs::write(&api.config.path, rotated).unwrap();
    api.daemon.guard.signal("HUP");
    let deadline = std::time::Instant::now() + PROCESS_TIMEOUT;
    loop {
        let (_, username, credential) = turn_entry(&api.relay_configuration(&token, "").json());
        if credential == rest_password(&Secret::new("rotated-secret"), &username, RestAlgorithm::Sha1).as_str() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the token service still mints with the old secret");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
