//! `examples/web/` in headless Chromium: the example backend (its own code, included below) mints
//! an access token, the page trades it at the daemon's `POST /v1/relay-configuration` across
//! origins (CORS), and opens a data channel between two relay-only `RTCPeerConnection`s through the
//! daemon. The selected candidate pairs must be relay on both ends.

#[allow(dead_code)]
#[path = "../../examples/web/backend.rs"]
mod backend;

use std::time::Duration;

use crate::support::{Browser, Daemon, TempFile};
use serde_json::Value;
use switchback::auth::token::{TokenKey, TokenKeys};

const TOKEN_KEY: &str = "0123456789abcdef0123456789abcdef";
/// From launch to result (Chromium starts slowly on a busy machine).
const RESULT_TIMEOUT: Duration = Duration::from_secs(60);
const LAUNCHES: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_example_opens_a_relayed_data_channel_from_a_token() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    // The backend's listener first: its origin goes into the relay's api-cors-origin.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the backend");
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let keys = TempFile::new("web-token-keys", &format!("k1:{TOKEN_KEY}\n"));
    let daemon = Daemon::start(&[
        "--listening-port",
        "0",
        "--no-tls",
        "--static-auth-secret",
        "web-example-secret",
        "--allow-loopback-peers",
        "--api-listen",
        "127.0.0.1:0",
        "--token-key-file",
        keys.as_str(),
        "--api-cors-origin",
        &origin,
    ]);
    let api = format!("http://{}", daemon.http_addr("api"));
    let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
    let backend = backend::Backend {
        keys: TokenKeys::new(vec![TokenKey::hs256(Some("k1"), TOKEN_KEY.as_bytes())]),
        api,
        user: "webuser".into(),
        ttl_secs: 300,
        on_result: Box::new(move |r| {
            let _ = tx.send(r);
        }),
    };
    let server = tokio::spawn(async move { axum::serve(listener, backend::router(backend)).await });
    let url = format!("{origin}/");

    let mut result = None;
    let deadline = tokio::time::Instant::now() + RESULT_TIMEOUT;
    'launches: for _ in 0..LAUNCHES {
        let mut browser = Browser::launch(&url, &[]);
        loop {
            if let Ok(Some(body)) = tokio::time::timeout(Duration::from_millis(250), results.recv()).await {
                result = Some(serde_json::from_str::<Value>(&body).expect("the page posts JSON"));
                break 'launches;
            }
            assert!(tokio::time::Instant::now() < deadline, "no result from the page within {RESULT_TIMEOUT:?}");
            if browser.exited() {
                continue 'launches;
            }
        }
    }
    server.abort();
    let result = result.expect("chromium exited every time without a result");
    eprintln!("{result:#}");
    assert_eq!(result["ok"], Value::Bool(true), "{result:#}");
    assert_eq!(result["echoed"], 10, "{result:#}");
    for side in ["a", "b"] {
        assert_eq!(result["pairs"][side]["local"], "relay", "{result:#}");
        assert_eq!(result["pairs"][side]["remote"], "relay", "{result:#}");
    }
    let udp = daemon.udp[0];
    let urls: Vec<&str> = result["urls"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(urls.contains(&format!("turn:{udp}?transport=udp").as_str()), "{urls:?}");
    assert!(result["expiresOn"].as_str().is_some_and(|e| e.ends_with('Z')), "{result:#}");
    let (status, _) = daemon.stop_with("TERM");
    assert!(status.success());
}
