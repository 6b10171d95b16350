//! The example application backend for `examples/web/`: the trusted half of the flow.
//!
//! It holds the access-token key (HS256, the same `token-key` the relay has; with EdDSA/ES256 it
//! would hold the private key and the relay only the public one), serves the page, and mints a
//! short-lived access token for the signed-in user at `POST /token`. The page trades that token at
//! the relay's `POST /v1/relay-configuration` for TURN credentials; the secret never reaches the
//! browser. Any JWT library can mint the token: claims `sub`, `exp`, `aud` (the relay's
//! `token-audience`), `scope: "turn"`, and a `kid` header naming the key.
//!
//! ```text
//! switchback --static-auth-secret S --token-key k1:0123456789abcdef0123456789abcdef \
//!     --api-listen 127.0.0.1:8080 --api-cors-origin http://127.0.0.1:8000
//! cargo run --example web_backend -- --listen 127.0.0.1:8000 --api http://127.0.0.1:8080 \
//!     --token-key k1:0123456789abcdef0123456789abcdef --user alice
//! # open http://127.0.0.1:8000/
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use switchback::auth::token::{TokenKey, TokenKeys};

/// The page.
pub const INDEX_HTML: &str = include_str!("index.html");
/// Its script.
pub const APP_JS: &str = include_str!("app.js");

/// What the backend needs.
pub struct Backend {
    /// Mints access tokens.
    pub keys: TokenKeys,
    /// The relay's token service, `http://HOST:PORT` (its `api-listen`).
    pub api: String,
    /// The user tokens are minted for (a real application takes it from its session).
    pub user: String,
    /// Token lifetime, seconds.
    pub ttl_secs: u64,
    /// Called with the JSON the page posts to `/result` when it is done.
    pub on_result: Box<dyn Fn(String) + Send + Sync>,
}

/// The backend's routes: `/`, `/app.js`, `POST /token`, `POST /result`.
pub fn router(backend: Backend) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX_HTML) }))
        .route("/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS) }))
        .route("/token", post(token))
        .route("/result", post(result))
        .with_state(Arc::new(backend))
}

/// `POST /token`: a fresh access token for the user, and where to trade it.
async fn token(State(backend): State<Arc<Backend>>) -> Response {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let Some(jti) = switchback::http::api::random_id() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no randomness").into_response();
    };
    match backend.keys.mint(&backend.user, backend.ttl_secs, now, &jti) {
        Ok(token) => axum::Json(serde_json::json!({ "token": token, "api": backend.api })).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `POST /result`: the page's outcome.
async fn result(State(backend): State<Arc<Backend>>, body: String) -> &'static str {
    (backend.on_result)(body);
    "ok"
}

/// The value after `--name` in `args`.
fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let listen: SocketAddr = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:8000".into()).parse()?;
    let api = arg(&args, "--api").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let key = arg(&args, "--token-key")
        .or_else(|| std::env::var("SWITCHBACK_TOKEN_KEY").ok())
        .ok_or("--token-key [KID:]KEY (or SWITCHBACK_TOKEN_KEY) is required")?;
    let (kid, secret) = switchback::config::api::split_kid(&key);
    let mut keys = TokenKeys::new(vec![TokenKey::hs256_checked(kid, secret.as_bytes())?]);
    if let Some(audience) = arg(&args, "--audience") {
        keys.audience = audience;
    }
    let backend = Backend {
        keys,
        api,
        user: arg(&args, "--user").unwrap_or_else(|| "demo".into()),
        ttl_secs: 300,
        on_result: Box::new(|result| println!("result {result}")),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("example page at http://{}/", listener.local_addr()?);
        axum::serve(listener, router(backend)).await
    })?;
    Ok(())
}
