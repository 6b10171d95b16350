//! WebRTC through switchback: headless Chromium (Debian package `chromium`) loads a page with two
//! `RTCPeerConnection`s restricted to relay candidates (`iceTransportPolicy: "relay"`) on an
//! in-process switchback, opens a data channel between them and echoes messages; `getStats()` must
//! show a selected candidate pair that is relay on both ends. The page (`tests/chromium/`) and its
//! configuration come from a minimal HTTP server in the test, which also receives the result.
//! A wrong credential must make the page report failure. Over `turns:` the server's certificate is
//! self-signed: Chromium uses it with `--ignore-certificate-errors` and refuses it without. With
//! `api-on-tls` the page fetches its iceServers from the token service on the TURN-TLS port itself
//! and relays over that same port.
#![cfg(feature = "runtime")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{Browser, TurnFixture, eventually};
use serde_json::Value;
use switchback::server::{ServerOptions, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PAGE_HTML: &str = include_str!("chromium/page.html");
const PAGE_JS: &str = include_str!("chromium/page.js");
/// How long the page may take from launch to result (Chromium starts slowly on a busy machine).
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The page's own limit per step (channel open, echoes): well inside [`RESULT_TIMEOUT`].
const PAGE_STEP_TIMEOUT_MS: u64 = 20_000;
/// Messages the page sends over the data channel.
const MESSAGES: u64 = 20;
/// Launch attempts when Chromium dies before the page reports.
const LAUNCHES: usize = 2;

/// The test's HTTP server: serves the page and `/config.json`, takes `/result` and `/log` POSTs.
struct PageServer {
    url: String,
    results: mpsc::Receiver<String>,
    log: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PageServer {
    async fn start(config: Value) -> PageServer {
        PageServer::start_on(TcpListener::bind("127.0.0.1:0").await.expect("bind the page server"), config)
    }

    /// On a listener bound by the caller (who needed the page's origin first).
    fn start_on(listener: TcpListener, config: Value) -> PageServer {
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let (tx, results) = mpsc::channel(4);
        let log = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(config.to_string());
        let task = {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (tx, log, config) = (tx.clone(), Arc::clone(&log), Arc::clone(&config));
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(10), serve(stream, &config, &tx, &log)).await;
                    });
                }
            })
        };
        PageServer { url, results, log, task }
    }

    fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// One HTTP/1.1 request per connection (`Connection: close`), headers up to 16 KiB, bodies up to
/// 1 MiB. Enough for a page and a few fetches.
async fn serve(mut stream: TcpStream, config: &str, results: &mpsc::Sender<String>, log: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
    let content_length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(content_length);
    let body = String::from_utf8_lossy(&body).into_owned();
    let (status, content_type, reply): (&str, &str, &str) = match (method, path) {
        ("GET", "/" | "/index.html") => ("200 OK", "text/html; charset=utf-8", PAGE_HTML),
        ("GET", "/page.js") => ("200 OK", "text/javascript; charset=utf-8", PAGE_JS),
        ("GET", "/config.json") => ("200 OK", "application/json", config),
        ("POST", "/result") => {
            let _ = results.send(body).await;
            ("200 OK", "text/plain", "ok")
        }
        ("POST", "/log") => {
            log.lock().unwrap().push(body);
            ("200 OK", "text/plain", "ok")
        }
        _ => ("404 Not Found", "text/plain", "not found"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
         Connection: close\r\n\r\n{reply}",
        reply.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves the page with `credential` for `username` against `fixture`, runs Chromium on it and
/// returns the page's result (relaunching once if the browser dies before reporting).
async fn run_page(fixture: &TurnFixture, username: &str, credential: &str) -> (Value, Vec<String>) {
    run_page_at(&format!("turn:{}?transport=udp", fixture.udp), username, credential).await
}

/// [`run_page`] with the TURN URL given.
async fn run_page_at(url: &str, username: &str, credential: &str) -> (Value, Vec<String>) {
    run_page_with(url, username, credential, &[]).await
}

/// [`run_page_at`] with extra Chromium flags.
async fn run_page_with(url: &str, username: &str, credential: &str, browser_args: &[&str]) -> (Value, Vec<String>) {
    let config = serde_json::json!({
        "url": url,
        "username": username,
        "credential": credential,
        "messages": MESSAGES,
        "timeout_ms": PAGE_STEP_TIMEOUT_MS,
    });
    run_browser(PageServer::start(config).await, browser_args).await
}

/// Runs Chromium on `page` and returns the page's result (relaunching once if the browser dies
/// before reporting).
async fn run_browser(mut page: PageServer, browser_args: &[&str]) -> (Value, Vec<String>) {
    let deadline = tokio::time::Instant::now() + RESULT_TIMEOUT;
    let mut failures = Vec::new();
    for _ in 0..LAUNCHES {
        let mut browser = Browser::launch(&page.url, browser_args);
        loop {
            match tokio::time::timeout(Duration::from_millis(250), page.results.recv()).await {
                Ok(Some(body)) => {
                    let result: Value = serde_json::from_str(&body)
                        .unwrap_or_else(|e| panic!("the page posted invalid JSON ({e}): {body}"));
                    return (result, page.log_lines());
                }
                Ok(None) => unreachable!("the page server holds a sender"),
                Err(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no result from the page within {RESULT_TIMEOUT:?}; page log {:?}; chromium:\n{}",
                    page.log_lines(),
                    browser.log_tail()
                );
            }
            if browser.exited() {
                failures.push(browser.log_tail());
                break;
            }
        }
    }
    panic!("chromium exited {LAUNCHES} times without a result:\n{}", failures.join("\n----\n"));
}

fn candidate_types(result: &Value, side: &str) -> (String, String) {
    let pair = &result["pairs"][side];
    let ty = |k: &str| pair[k].as_str().unwrap_or("none").to_string();
    (ty("local"), ty("remote"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_through_the_relay() {
    if crate::support::tools::require("chromium").is_some() {
        relay_only_data_channel(Transport::Udp).await;
    }
}

/// `turn:…?transport=tcp`: Chromium's leg to the server is TCP; the relayed addresses stay UDP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_through_the_relay_over_tcp() {
    if crate::support::tools::require("chromium").is_some() {
        relay_only_data_channel(Transport::Tcp).await;
    }
}

/// `turns:…?transport=tcp`: Chromium's leg is TLS, accepted with `--ignore-certificate-errors`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_through_the_relay_over_tls() {
    if crate::support::tools::require("chromium").is_some() {
        relay_only_data_channel(Transport::Tls).await;
    }
}

/// A fixture with loopback peers allowed, and a TLS listener when `transport` is TLS.
async fn loopback_fixture(transport: Transport) -> TurnFixture {
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    match transport {
        Transport::Tls => TurnFixture::start_tls(options, switchback::io::Limits::default()).await,
        _ => TurnFixture::start(options).await,
    }
}

async fn relay_only_data_channel(transport: Transport) {
    let fixture = loopback_fixture(transport).await;
    let (username, password) = fixture.rest_credentials("chromium");
    let (url, browser_args): (String, &[&str]) = match transport {
        Transport::Udp => (format!("turn:{}?transport=udp", fixture.udp), &[]),
        Transport::Tcp => {
            let addr = fixture.running.local_addr(Transport::Tcp).expect("a TCP listener");
            (format!("turn:{addr}?transport=tcp"), &[])
        }
        Transport::Tls => (format!("turns:{}?transport=tcp", fixture.tls_addr()), &["--ignore-certificate-errors"]),
    };
    let usage = crate::support::UsageFile::attach(&fixture.server);
    let (result, log) = run_page_with(&url, &username, &password, browser_args).await;
    let context = format!("result {result:#}\npage log {log:?}\nserver {:?}", fixture.stats());
    eprintln!("{context}");
    assert_eq!(result["ok"], Value::Bool(true), "{context}");
    assert_eq!(result["sent"].as_u64(), Some(MESSAGES), "{context}");
    assert_eq!(result["echoed"].as_u64(), Some(MESSAGES), "{context}");
    let leg = switchback::io::transport_name(transport);
    for side in ["a", "b"] {
        assert_eq!(candidate_types(&result, side), ("relay".into(), "relay".into()), "{side}: {context}");
        let local = result["pairs"][side]["local_address"].as_str().unwrap_or_default();
        assert!(local.starts_with("127.0.0.1:"), "{side} relayed address {local}: {context}");
        assert_eq!(result["pairs"][side]["relay_protocol"].as_str(), Some(leg), "{context}");
    }
    let stats = fixture.stats();
    assert!(stats.allocations_created >= 2, "{context}");
    assert!(stats.relayed_to_peer >= MESSAGES && stats.relayed_to_client >= MESSAGES, "{context}");
    usage_matches_the_pairs(&fixture, &usage, &result, &context);
    if transport == Transport::Tls {
        assert!(fixture.running.io_stats().tls_handshakes >= 2, "{:?}", fixture.running.io_stats());
    }
}

/// Each side's allocation leaves one usage record (at shutdown at the latest) naming the user and
/// its relayed address, with at least the payload bytes Chromium's selected pair counted each way:
/// a record counts every relayed datagram, the pair's `bytesSent`/`bytesReceived` leave out the
/// ICE connectivity checks that also cross the relay.
fn usage_matches_the_pairs(fixture: &TurnFixture, usage: &crate::support::UsageFile, result: &Value, context: &str) {
    fixture.server.close_all(std::time::Instant::now());
    for side in ["a", "b"] {
        let pair = &result["pairs"][side];
        let relayed = pair["local_address"].as_str().unwrap_or_default();
        let record =
            usage.final_record(relayed).unwrap_or_else(|| panic!("no record for {relayed}: {:?}", usage.records()));
        assert_eq!(record["user"], "chromium", "{record}");
        let (sent, received) = (pair["bytes_sent"].as_u64().unwrap(), pair["bytes_received"].as_u64().unwrap());
        let (to_peer, to_client) =
            (record["to_peer_bytes"].as_u64().unwrap(), record["to_client_bytes"].as_u64().unwrap());
        assert!(sent > 0 && to_peer >= sent && to_client >= received, "{side}: {record} vs {pair}: {context}");
        // The checks are a few hundred bytes a second: the counts are those of the pair, not of
        // the whole allocation table.
        assert!(to_peer - sent < 50_000 && to_client - received < 50_000, "{side}: {record} vs {pair}");
    }
}

/// Without `--ignore-certificate-errors` Chromium refuses the self-signed certificate: no relay
/// candidate, no allocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turns_with_an_untrusted_certificate_fails() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    let fixture = loopback_fixture(Transport::Tls).await;
    let (username, password) = fixture.rest_credentials("chromium");
    let url = format!("turns:{}?transport=tcp", fixture.tls_addr());
    let (result, log) = run_page_at(&url, &username, &password).await;
    let context = format!("result {result:#}\npage log {log:?}\nio {:?}", fixture.running.io_stats());
    eprintln!("{context}");
    assert_eq!(result["ok"], Value::Bool(false), "{context}");
    assert_eq!(relay_candidates(&result), 0, "{context}");
    assert_eq!(fixture.stats().allocations_created, 0, "{context}");
    // Chromium ended the handshakes itself (on the certificate).
    eventually(&format!("a failed handshake: {context}"), || fixture.running.io_stats().tls_handshake_failures != 0)
        .await;
    assert_eq!(fixture.running.io_stats().tls_handshakes, 0, "{context}");
}

/// The relay candidates both sides gathered.
fn relay_candidates(result: &Value) -> usize {
    ["a", "b"]
        .iter()
        .flat_map(|side| result["candidates"][side].as_array().cloned().unwrap_or_default())
        .filter(|c| c.as_str().is_some_and(|c| c.contains(" typ relay")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credential_fails() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    let fixture = TurnFixture::loopback().await;
    let (username, _) = fixture.rest_credentials("chromium");
    let (result, log) = run_page(&fixture, &username, "bm90IHRoZSBwYXNzd29yZA==").await;
    let context = format!("result {result:#}\npage log {log:?}\nserver {:?}", fixture.stats());
    eprintln!("{context}");
    assert_eq!(result["ok"], Value::Bool(false), "{context}");
    assert_eq!(result["echoed"].as_u64(), Some(0), "{context}");
    assert_eq!(relay_candidates(&result), 0, "{context}");
    let stats = fixture.stats();
    assert_eq!(stats.allocations_created, 0, "{context}");
    assert!(stats.auth_failures > 0, "{context}");
}

/// The API key of the daemon in `data_channel_over_the_one_tls_port`.
#[cfg(feature = "http")]
const ONE_PORT_API_KEY: &str = "backend-key-for-chromium-0123";

/// An in-process daemon with its development self-signed certificate and `api-on-tls` (no
/// `api-listen`): the token service, with `api-key` and CORS for `origin`, on the TURN-TLS port.
#[cfg(feature = "http")]
async fn one_port_daemon(origin: &str) -> switchback::daemon::Daemon {
    use switchback::config::{Config, SecretText};
    use switchback::daemon::{Daemon, Setup, TlsSetup};
    use switchback::io::tls::{DEV_CERTIFICATE_NAMES, TlsIdentity};
    use switchback::policy::rate::RateLimit;
    let secret = |s: &str| SecretText(s.to_owned());
    let config = Config {
        listening_port: 0,
        static_auth_secret: vec![secret("chromium-one-port-secret")],
        allow_loopback_peers: true,
        api_on_tls: true,
        token_key: vec![secret("k1:0123456789abcdef0123456789abcdef")],
        api_key: vec![secret(ONE_PORT_API_KEY)],
        api_cors_origin: vec![origin.to_owned()],
        api_rate_limit: RateLimit::OFF,
        api_user_rate_limit: RateLimit::OFF,
        workers: 1,
        ..Config::default()
    };
    let identity = TlsIdentity::self_signed(DEV_CERTIFICATE_NAMES).expect("a development certificate");
    let again = config.clone();
    let setup = Setup::new(TlsSetup::SelfSigned(identity), Arc::new(move || Ok(again.clone())));
    Daemon::start(&config, setup).await.expect("the daemon starts")
}

/// One port for everything (`api-on-tls`): the page, from the test's page server, fetches its
/// iceServers with the API key from `https://127.0.0.1:PORT/v1/relay-configuration` — the daemon's
/// TURN-TLS listener, cross-origin (CORS for the page's origin) — keeps the `turns:` url, which is
/// that same 127.0.0.1:PORT, and opens a relay-only data channel over it.
#[cfg(feature = "http")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_over_the_one_tls_port() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    let page_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the page server");
    let origin = format!("http://{}", page_listener.local_addr().unwrap());
    let daemon = one_port_daemon(&origin).await;
    let tls = daemon.running().local_addr(Transport::Tls).expect("a TLS listener");
    let config = serde_json::json!({
        "api": format!("https://{tls}/v1/relay-configuration"),
        "api_key": ONE_PORT_API_KEY,
        "user": "chromium",
        "only": "turns:",
        "messages": MESSAGES,
        "timeout_ms": PAGE_STEP_TIMEOUT_MS,
    });
    let page = PageServer::start_on(page_listener, config);
    let (result, log) = run_browser(page, &["--ignore-certificate-errors"]).await;
    let stats = daemon.server().stats().snapshot();
    let io = daemon.running().io_stats();
    let context = format!("result {result:#}\npage log {log:?}\nserver {stats:?}\nio {io:?}");
    eprintln!("{context}");
    assert_eq!(result["api_status"].as_u64(), Some(200), "{context}");
    let turns = format!("turns:{tls}?transport=tcp");
    assert_eq!(result["ice_servers"], serde_json::json!([[turns]]), "{context}");
    assert_eq!(result["ok"], Value::Bool(true), "{context}");
    assert_eq!(result["echoed"].as_u64(), Some(MESSAGES), "{context}");
    for side in ["a", "b"] {
        assert_eq!(candidate_types(&result, side), ("relay".into(), "relay".into()), "{side}: {context}");
        assert_eq!(result["pairs"][side]["relay_protocol"].as_str(), Some("tls"), "{side}: {context}");
    }
    assert!(stats.allocations_created >= 2, "{context}");
    // The fetch and both allocations came through the one port's handshakes.
    assert!(io.tls_handshakes >= 3, "{context}");
    daemon.shutdown().await;
}

/// Chromium through the `switchback` binary, as an operator runs it: for each side's relay
/// allocation the session log (stderr, `info`) has a create line and a delete line naming the user
/// and the relayed address, the delete line with its byte counts, and `usage-file` one record
/// holding at least what the side's selected candidate pair counted.
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chromium_session_leaves_session_lines_and_a_usage_record() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("switchback-chromium-usage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("usage.jsonl");
    let secret = "chromium-session-secret";
    let args = ["--static-auth-secret", secret, "--usage-file", path.to_str().unwrap()];
    let daemon = tokio::task::block_in_place(|| crate::support::Daemon::start_loopback(&args));
    let rest = switchback::auth::RestCredentials::new(vec![switchback::auth::Secret::new(secret)]);
    let (username, password) = rest.mint("chromium", 3600, crate::support::unix_now()).unwrap();
    let url = format!("turn:{}?transport=udp", daemon.udp[0]);
    let (result, page_log) = run_page_at(&url, &username, &password).await;
    assert_eq!(result["ok"], Value::Bool(true), "result {result:#}\npage log {page_log:?}\nlog {}", daemon.log());
    // SIGINT ends the allocations Chromium still holds: their delete lines and records follow.
    let (status, log) = tokio::task::block_in_place(|| daemon.stop_with("INT"));
    assert!(status.success(), "{log}");
    let records: Vec<Value> =
        std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for side in ["a", "b"] {
        let pair = &result["pairs"][side];
        let relayed = pair["local_address"].as_str().unwrap();
        let lines = |what: &str| -> Vec<&str> {
            log.lines().filter(|l| l.contains(what) && l.contains(&format!("relayed={relayed}"))).collect()
        };
        let (created, deleted) = (lines("allocation created"), lines("allocation deleted"));
        assert_eq!((created.len(), deleted.len()), (1, 1), "{side} {relayed}: {log}");
        assert!(created[0].contains("user=\"chromium\"") && deleted[0].contains("user=\"chromium\""), "{log}");
        let record = records
            .iter()
            .find(|r| r["relayed"].as_array().is_some_and(|a| a.iter().any(|x| x == relayed)))
            .unwrap_or_else(|| panic!("no usage record for {relayed}: {records:?}"));
        let to_client = record["to_client_bytes"].as_u64().unwrap();
        assert!(deleted[0].contains(&format!("to_client_bytes={to_client}")), "{}\n{record}", deleted[0]);
        assert!(deleted[0].contains(&format!("id={}", record["id"].as_str().unwrap())), "{}", deleted[0]);
        let sent = pair["bytes_sent"].as_u64().unwrap();
        assert!(sent > 0 && record["to_peer_bytes"].as_u64().unwrap() >= sent, "{record} vs {pair}");
        assert!(to_client >= pair["bytes_received"].as_u64().unwrap(), "{record} vs {pair}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
