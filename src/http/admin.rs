//! The admin API on `admin-listen`, behind `Authorization: Bearer <admin-key>` (compared in
//! constant time): list allocations, end one or all of a user's, reload the configuration, and the
//! JSON behind the status page (`/`, served by `http/status.rs`).
//!
//! - `GET /admin/allocations[?user=NAME][&limit=N]` — live allocations (at most 10,000): user,
//!   client, relay address, age, bytes.
//! - `DELETE /admin/allocations?relay=ADDR` — ends the allocation on that relayed address (its
//!   client's next Refresh gets 437, RFC 8656 §7).
//! - `DELETE /admin/users/{user}/allocations` — ends every allocation of a user (the REST user
//!   part or the static name, as quotas count it).
//! - `POST /admin/reload` — the same as SIGHUP.
//! - `POST /admin/revocations`, body `{"user": ...}` or `{"jti": ...}` — revokes at run time, as
//!   `POST /v1/revocations` does for a backend (see [`super::revocations`]): the operator's way,
//!   `switchback admin revoke`. Both go to the one revocation list of the daemon.
//! - `GET /admin/status` — counts, relayed totals and the top users by bytes, for the status page.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error_response;
use super::revocations::{RevokeFn, RevokeRequest};
use crate::io::{TurnServer, transport_name};

/// What `POST /admin/reload` runs: the daemon's reload. `Ok` carries a summary, `Err` why the new
/// configuration was refused (the old one stays).
pub type ReloadFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Starts a drain: `/readyz` 503 and new allocations refused (300 or 508), the live ones carry on.
pub type DrainFn = Arc<dyn Fn() + Send + Sync>;

/// The admin key as the admin face reads it per request and a reload replaces it.
#[derive(Clone)]
pub struct AdminKey(Arc<arc_swap::ArcSwap<[u8; 32]>>);

impl AdminKey {
    /// The key `key`.
    pub fn new(key: &str) -> AdminKey {
        AdminKey(Arc::new(arc_swap::ArcSwap::from_pointee(Sha256::digest(key.as_bytes()).into())))
    }

    /// From now on the key is `key`.
    pub fn replace(&self, key: &str) {
        self.0.store(Arc::new(Sha256::digest(key.as_bytes()).into()));
    }

    /// Whether `presented` is the key (constant time).
    fn accepts(&self, presented: &str) -> bool {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(hash.ct_eq(&**self.0.load()))
    }
}

/// The admin face's state.
#[derive(Clone)]
pub struct Admin {
    server: Arc<TurnServer>,
    /// SHA-256 of the key: compared in constant time with the hash of what a request presents
    /// (equal lengths, so the comparison leaks nothing, not even the key's length). Swapped by a
    /// reload that rotates `admin-key`.
    key_hash: AdminKey,
    reload: ReloadFn,
    /// Run-time revocation; `None` leaves `POST /admin/revocations` off.
    revoke: Option<RevokeFn>,
    /// Starts a drain; `None`: `POST /admin/drain` only refuses new allocations (no readiness).
    drain: Option<DrainFn>,
    started: Instant,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// The admin face over `server`, accepting `key` as Bearer token.
    pub fn new(server: Arc<TurnServer>, key: AdminKey, reload: ReloadFn) -> Admin {
        Admin { server, key_hash: key, reload, revoke: None, drain: None, started: Instant::now() }
    }

    /// With `POST /admin/drain` handled by `drain` (the daemon's: readiness off too).
    pub fn with_drain(self, drain: DrainFn) -> Admin {
        Admin { drain: Some(drain), ..self }
    }

    /// With `POST /admin/revocations`, handled by `revoke`.
    pub fn with_revoke(self, revoke: RevokeFn) -> Admin {
        Admin { revoke: Some(revoke), ..self }
    }

    /// Whether `presented` is the admin key (constant time).
    pub fn accepts(&self, presented: &str) -> bool {
        self.key_hash.accepts(presented)
    }
}

/// The routes: the API under `/admin/`, all behind the key, and the status page at `/` (a static
/// page that asks for the key and sends it as a Bearer header; it shows nothing without it).
pub fn router(admin: Admin) -> Router {
    let api = Router::new()
        .route("/admin/allocations", get(list).delete(end_one))
        .route("/admin/users/{user}/allocations", delete(end_user))
        .route("/admin/reload", post(reload))
        .route("/admin/drain", post(drain))
        .route("/admin/revocations", post(revoke))
        .route("/admin/status", get(status))
        .route_layer(middleware::from_fn_with_state(admin.clone(), require_key))
        .with_state(admin);
    api.route("/", get(super::status::page))
}

async fn require_key(State(admin): State<Admin>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(key) if admin.accepts(key.trim()) => next.run(request).await,
        _ => {
            let mut r = error_response(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong admin key");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
            r
        }
    }
}

fn allocation_json(server: &TurnServer, a: &crate::alloc::Allocation<crate::io::RelaySocket>, now: Instant) -> Value {
    let info = a.info();
    let millis = server.millis(now);
    let c = &a.counters;
    json!({
        "user": a.quota_user(),
        "username": &*info.username,
        "transport": transport_name(info.five_tuple.transport),
        "client": info.five_tuple.client.to_string(),
        "server": info.five_tuple.server.to_string(),
        "relay": info.advertised_addr.to_string(),
        "relay_local": info.relay_addr.to_string(),
        "relay_extra": a.extra.as_ref().map(|e| e.advertised_addr.to_string()),
        "tcp_relay": a.is_tcp_relay(),
        "age_secs": a.age_secs(millis),
        "expires_in_secs": a.expires().saturating_sub(millis) / 1000,
        "to_peer_bytes": c.to_peer_bytes.load(Relaxed),
        "to_client_bytes": c.to_client_bytes.load(Relaxed),
        "to_peer_packets": c.to_peer_packets.load(Relaxed),
        "to_client_packets": c.to_client_packets.load(Relaxed),
    })
}

/// Most allocations one listing returns (`?limit=` lowers it): the answer stays bounded.
const MAX_LISTED: usize = 10_000;

#[derive(Deserialize)]
struct ListQuery {
    /// Only this user's allocations.
    user: Option<String>,
    /// At most this many (default and cap [`MAX_LISTED`]).
    limit: Option<usize>,
}

async fn list(State(admin): State<Admin>, Query(q): Query<ListQuery>) -> Response {
    let now = Instant::now();
    let limit = q.limit.unwrap_or(MAX_LISTED).min(MAX_LISTED);
    let all = admin.server.allocations().all();
    let matching: Vec<_> = all
        .iter()
        .filter(|a| q.user.as_deref().is_none_or(|u| a.quota_user() == u || *a.info().username == *u))
        .collect();
    let listed: Vec<Value> = matching.iter().take(limit).map(|a| allocation_json(&admin.server, a, now)).collect();
    let body = json!({ "count": matching.len(), "truncated": listed.len() < matching.len(), "allocations": listed });
    axum::Json(body).into_response()
}

#[derive(Deserialize)]
struct RelayQuery {
    relay: String,
}

async fn end_one(State(admin): State<Admin>, Query(q): Query<RelayQuery>) -> Response {
    let Ok(relay) = q.relay.parse::<SocketAddr>() else {
        return error_response(StatusCode::BAD_REQUEST, "bad_relay", "relay must be ADDR:PORT");
    };
    let found = admin.server.allocations().all().into_iter().find(|a| {
        let info = a.info();
        info.advertised_addr == relay
            || info.relay_addr == relay
            || a.extra.as_ref().is_some_and(|e| e.advertised_addr == relay || e.relay_addr == relay)
    });
    match found {
        Some(a) => {
            admin.server.close_allocation(
                std::time::Instant::now(),
                &a.info().five_tuple,
                crate::server::EndReason::Admin,
            );
            tracing::info!(%relay, user = a.quota_user(), "admin: allocation ended");
            axum::Json(json!({ "ended": 1 })).into_response()
        }
        None => error_response(StatusCode::NOT_FOUND, "no_allocation", "no allocation on that relayed address"),
    }
}

async fn end_user(State(admin): State<Admin>, Path(user): Path<String>) -> Response {
    let mut ended = 0;
    for a in admin.server.allocations().all() {
        if a.quota_user() == user || *a.info().username == *user {
            admin.server.close_allocation(
                std::time::Instant::now(),
                &a.info().five_tuple,
                crate::server::EndReason::Admin,
            );
            ended += 1;
        }
    }
    tracing::info!(user, ended, "admin: allocations of a user ended");
    axum::Json(json!({ "ended": ended })).into_response()
}

async fn reload(State(admin): State<Admin>) -> Response {
    let f = admin.reload.clone();
    match tokio::task::spawn_blocking(move || f()).await {
        Ok(Ok(summary)) => axum::Json(json!({ "reloaded": true, "summary": summary })).into_response(),
        Ok(Err(e)) => error_response(StatusCode::UNPROCESSABLE_ENTITY, "reload_refused", &e),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "reload_failed", "the reload task failed"),
    }
}

/// `POST /admin/drain`: starts a drain without stopping the process (a Kubernetes preStop hook,
/// or an operator moving users off a node): `/readyz` answers 503 and new Allocates get 300 to an
/// alternate or 508, while the live allocations carry on. SIGTERM later exits as soon as they are
/// gone. Answers the live allocation count; idempotent.
async fn drain(State(admin): State<Admin>) -> Response {
    match &admin.drain {
        Some(f) => f(),
        None => admin.server.admission().set_draining(true),
    }
    axum::Json(json!({ "draining": true, "allocations": admin.server.allocations().len() })).into_response()
}

/// Larger revocation bodies are refused (a user name or token id is short).
const MAX_REVOKE_BODY: usize = 4096;

async fn revoke(State(admin): State<Admin>, body: Bytes) -> Response {
    let Some(revoke) = admin.revoke.clone() else {
        return error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint");
    };
    if body.len() > MAX_REVOKE_BODY {
        return error_response(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the body is too large");
    }
    let request: RevokeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("the body is not the expected JSON: {e}");
            return error_response(StatusCode::BAD_REQUEST, "bad_request", &message);
        }
    };
    match request.target() {
        Ok(target) => super::revocations::revoke(revoke, target, "admin").await,
        Err(bad) => bad.into_response(),
    }
}

/// How many users the status page lists.
const TOP_USERS: usize = 10;

async fn status(State(admin): State<Admin>) -> Response {
    let all = admin.server.allocations().all();
    let stats = admin.server.stats().snapshot();
    let (mut to_peer, mut to_client) = (stats.retired_to_peer_bytes, stats.retired_to_client_bytes);
    let mut users: HashMap<&str, (u64, usize)> = HashMap::new();
    for a in &all {
        let (p, c) = (a.counters.to_peer_bytes.load(Relaxed), a.counters.to_client_bytes.load(Relaxed));
        to_peer += p;
        to_client += c;
        let entry = users.entry(a.quota_user()).or_default();
        entry.0 += p + c;
        entry.1 += 1;
    }
    let mut top: Vec<(&str, (u64, usize))> = users.into_iter().collect();
    top.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let top: Vec<Value> = top
        .into_iter()
        .take(TOP_USERS)
        .map(|(user, (bytes, n))| json!({ "user": user, "bytes": bytes, "allocations": n }))
        .collect();
    axum::Json(json!({
        "allocations": all.len(),
        "draining": admin.server.admission().is_draining(),
        "uptime_secs": admin.started.elapsed().as_secs(),
        "to_peer_bytes": to_peer,
        "to_client_bytes": to_client,
        "allocations_created": stats.allocations_created,
        "top_users": top,
    }))
    .into_response()
}
