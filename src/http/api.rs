//! The token service on `api-listen`: the trusted-service flow. The application's backend holds a
//! key and mints short-lived access tokens (itself, or with `POST /v1/tokens`); the browser trades
//! its token at `POST /v1/relay-configuration` for short-lived REST credentials and an
//! `iceServers` list, and never sees a secret.
//!
//! - `POST /v1/relay-configuration`, `Authorization: Bearer <access token>` (RFC 6750 §2.1),
//!   optional body `{"ttl": seconds}` → `{"iceServers": [...], "expiresOn": "<RFC 3339>"}`.
//!   The credentials are REST ones for the token's `sub`, valid no longer than the token, nor
//!   `api-max-ttl`, nor `max-credential-lifetime`.
//! - The same with `Authorization: Bearer <api key>` and body `{"user": ..., "ttl": ...}`: the
//!   backend gets `iceServers` for a user in one call (as Cloudflare's and Twilio's APIs do); `user`
//!   is required (400 `user_required`), a revoked user gets 403. The bearer credential is matched
//!   against the API keys first (in constant time); anything else is verified as an access token.
//! - `POST /v1/tokens`, `Authorization: Bearer <api key>`, body `{"user": ..., "ttl": ...}` →
//!   `{"token": ..., "expiresOn": ...}` (only when `api-key` is configured).
//! - `POST /v1/revocations`, `Authorization: Bearer <api key>`, body `{"user": ...}` or
//!   `{"jti": ...}`: see [`super::revocations`] (only when `api-key` is configured).
//!
//! Request bodies are JSON objects; fields this version does not know are ignored (forward
//! compatibility: a backend may send what a later version takes).
//!
//! Every error is `{"error": {"code", "message"}}` with the status HTTP means: 400 bad body, 401
//! no or bad credentials (with `WWW-Authenticate: Bearer`, RFC 6750 §3), 403 revoked user or
//! missing `turn` scope, 405, 413 body over [`MAX_BODY`], 429 rate limited (with `Retry-After`).
//! Rate limits apply per source address (IPv6: per /64) and per token subject or minted user;
//! their tables stay bounded ([`MAX_RATE_KEYS`]). CORS answers for the configured origins.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::error_response;
use super::revocations::{RevokeFn, RevokeRequest};
use crate::auth::RestCredentials;
use crate::auth::token::{TokenError, TokenKeys};
use crate::http::ice_servers::IceServers;
use crate::policy::rate::RateLimit;
use crate::policy::source_key;

/// The largest request body accepted, bytes.
pub const MAX_BODY: usize = 4096;
/// The most keys a rate-limit table holds; past it, idle keys are dropped (at most once a second)
/// and, while it stays full, every request is refused (429): memory stays bounded under a flood.
pub const MAX_RATE_KEYS: usize = 65_536;
/// The longest user name `POST /v1/tokens` accepts, in bytes (what a token's `sub` may hold).
pub const MAX_USER_LEN: usize = crate::auth::token::MAX_SUBJECT_LEN;
// Whatever a token may name, a revocation can name too.
const _: () = assert!(crate::policy::revocation::MAX_ENTRY_LEN == MAX_USER_LEN);

/// Whether a user or a token id is on the revocation list (the daemon's, shared with the TURN
/// server and reloaded on SIGHUP).
pub type Revoked = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Where clients reach the TURN listeners, for the `iceServers` urls.
#[derive(Clone, Debug, Default)]
pub struct IceUrls {
    /// UDP listeners.
    pub udp: Vec<SocketAddr>,
    /// TCP listeners.
    pub tcp: Vec<SocketAddr>,
    /// TLS listeners.
    pub tls: Vec<SocketAddr>,
    /// A host name to use instead of the listeners' addresses.
    pub host: Option<String>,
}

/// Fleet mode: the urls of every live node of the fleet, least-loaded first (this one included);
/// empty when they are not known.
pub type FleetUrls = std::sync::Arc<dyn Fn() -> Vec<IceUrls> + Send + Sync>;

/// Where the token service reads the current REST secrets from (the daemon: the TURN server's
/// authenticator, which a reload replaces).
pub type RestSource = std::sync::Arc<dyn Fn() -> Option<RestCredentials> + Send + Sync>;

/// What the token service needs.
pub struct ApiOptions {
    /// The token keys and API keys, swapped whole on reload.
    pub keys: SharedApiKeys,
    /// The REST secrets that mint the TURN credentials, read per request so that a reload
    /// (SIGHUP, the admin API) that rotates `static-auth-secret` is followed at once; `None` when
    /// the relay has no REST secret.
    pub rest: RestSource,
    /// The urls.
    pub urls: IceUrls,
    /// Fleet mode (`redis-url`): `/v1/relay-configuration` lists the fleet's nodes, least-loaded
    /// first, instead of `urls` (unless `urls` has a host name, `public-host`, which already names
    /// the service as a whole).
    pub fleet: Option<FleetUrls>,
    /// The longest credential and minted-token lifetime, seconds.
    pub max_ttl_secs: u64,
    /// CORS origins (`*` for any); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// Per source address.
    pub rate_per_source: RateLimit,
    /// Per token subject or minted user.
    pub rate_per_user: RateLimit,
    /// The revocation list.
    pub revoked: Revoked,
    /// Adds to the revocation list (`POST /v1/revocations`, with `api-key`); `None` leaves the
    /// route off.
    pub revoke: Option<RevokeFn>,
    /// The Unix time now (the daemon passes the system clock; tests a fixed one).
    pub unix_now: fn() -> u64,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("keys", &self.keys.load())
            .field("urls", &self.urls)
            .field("max_ttl_secs", &self.max_ttl_secs)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

/// The secrets of the token service: `token-key`/`token-public-key` (verify, and mint for
/// `/v1/tokens`) and `api-key` (the trusted backend's Bearer keys; none at start leaves
/// `/v1/tokens` off until a restart). A reload swaps them whole, so a removed key stops working at
/// once.
pub struct ApiKeys {
    /// Verifies access tokens (and mints for `/v1/tokens`).
    pub tokens: TokenKeys,
    /// Keys of the trusted backend for `/v1/tokens`.
    pub api_keys: Vec<String>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys").field("tokens", &self.tokens).field("api_keys", &self.api_keys.len()).finish()
    }
}

/// [`ApiKeys`] as the token service reads them per request and a reload replaces them.
pub type SharedApiKeys = Arc<arc_swap::ArcSwap<ApiKeys>>;

/// A bounded keyed rate limiter (governor's GCRA, one cell per key).
struct Limiter<K: Clone + std::hash::Hash + Eq> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    /// When idle keys were last dropped: at most once a second, so a full table under a flood
    /// does not cost a walk over it per request.
    swept: std::sync::Mutex<Option<std::time::Instant>>,
}

impl<K: Clone + std::hash::Hash + Eq> Limiter<K> {
    fn new(limit: RateLimit) -> Self {
        let quota = NonZeroU32::new(limit.per_second)
            .map(|rate| Quota::per_second(rate).allow_burst(NonZeroU32::new(limit.burst).unwrap_or(rate)));
        Limiter { limiter: quota.map(DefaultKeyedRateLimiter::keyed), swept: std::sync::Mutex::new(None) }
    }

    /// `Ok` or the seconds to wait.
    fn check(&self, key: &K) -> Result<(), u64> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        if limiter.len() >= MAX_RATE_KEYS {
            if let Ok(mut swept) = self.swept.try_lock() {
                let now = std::time::Instant::now();
                if swept.is_none_or(|at| now.duration_since(at) >= std::time::Duration::from_secs(1)) {
                    *swept = Some(now);
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            }
            if limiter.len() >= MAX_RATE_KEYS {
                return Err(1);
            }
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

struct Api {
    options: ApiOptions,
    by_source: Limiter<IpAddr>,
    by_user: Limiter<String>,
}

/// The routes of the token service, state applied.
pub fn router(options: ApiOptions) -> Router {
    let cors = (!options.cors_origins.is_empty()).then(|| cors_layer(&options.cors_origins));
    let tokens_on = !options.keys.load().api_keys.is_empty();
    let api = Arc::new(Api {
        by_source: Limiter::new(options.rate_per_source),
        by_user: Limiter::new(options.rate_per_user),
        options,
    });
    let mut router =
        Router::new().route("/v1/relay-configuration", post(relay_configuration).fallback(method_not_allowed));
    if tokens_on {
        router = router.route("/v1/tokens", post(mint_token).fallback(method_not_allowed));
        if api.options.revoke.is_some() {
            router = router.route("/v1/revocations", post(revocations).fallback(method_not_allowed));
        }
    }
    let router = router.layer(DefaultBodyLimit::max(MAX_BODY)).with_state(api);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(600))
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "use POST")
}

/// An error answer, boxed (a `Response` is large for an `Err`).
struct Rejection(Box<Response>);

impl From<Response> for Rejection {
    fn from(r: Response) -> Self {
        Rejection(Box::new(r))
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A JSON error, with `WWW-Authenticate` on 401 and 403 (RFC 6750 §3) and `Retry-After` on 429.
fn fail(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = error_response(status, code, message);
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let error = if code == "insufficient_scope" {
            "insufficient_scope"
        } else if status == StatusCode::UNAUTHORIZED {
            "invalid_token"
        } else {
            "access_denied"
        };
        let value = format!("Bearer realm=\"switchback\", error=\"{error}\"");
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    response
}

fn too_many(wait_secs: u64) -> Response {
    let mut response = error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; slow down");
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait_secs.max(1)));
    response
}

/// The bearer credential of `Authorization` (RFC 6750 §2.1), or a 401.
fn bearer(headers: &HeaderMap) -> Result<&str, Rejection> {
    let missing = || fail(StatusCode::UNAUTHORIZED, "missing_token", "Authorization: Bearer <token> is required");
    let value = headers.get(header::AUTHORIZATION).ok_or_else(missing)?.to_str().map_err(|_| missing())?;
    let (scheme, credential) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || credential.trim().is_empty() {
        return Err(missing().into());
    }
    Ok(credential.trim())
}

/// The body as JSON of type `T`; an empty body is `T::default()` when `optional`.
fn json_body<T: for<'de> Deserialize<'de> + Default>(
    body: Result<Bytes, BytesRejection>,
    optional: bool,
) -> Result<T, Rejection> {
    let body = body.map_err(|e| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            fail(status, "body_too_large", &format!("the body is over {MAX_BODY} bytes"))
        } else {
            fail(StatusCode::BAD_REQUEST, "bad_request", "unreadable body")
        }
    })?;
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| {
        fail(StatusCode::BAD_REQUEST, "bad_request", &format!("the body is not the expected JSON: {e}")).into()
    })
}

/// RFC 3339 (`2026-11-28T07:35:00Z`) of a Unix time (UTC; days to civil date after Howard
/// Hinnant's algorithm, exact for the proleptic Gregorian calendar).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

/// The body of `POST /v1/relay-configuration`. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct RelayRequest {
    /// The user, with an API key (required then); ignored with an access token (its `sub` rules).
    user: Option<String>,
    ttl: Option<u64>,
}

/// `POST /v1/relay-configuration`.
async fn relay_configuration(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    relay_configuration_inner(&api, peer, &headers, body)
}

fn token_status(e: TokenError) -> StatusCode {
    match e {
        TokenError::MissingScope => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    }
}

/// Who the credentials are for, as the `Authorization` header proves it.
struct Grant {
    user: String,
    /// Seconds the access token has left (`None`: an API key, which does not expire).
    left: Option<u64>,
    /// `api_key` or `token`, for the log.
    via: &'static str,
}

fn relay_configuration_inner(
    api: &Api,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let o = &api.options;
    api.by_source.check(&source_key(peer.ip())).map_err(too_many)?;
    let credential = bearer(headers)?;
    let now = (o.unix_now)();
    let (grant, request) = if api_key_matches(&o.keys.load().api_keys, credential) {
        let request: RelayRequest = json_body(body, true)?;
        (backend_grant(o, request.user.as_deref())?, request)
    } else {
        (token_grant(o, credential, now)?, json_body(body, true)?)
    };
    api.by_user.check(&grant.user).map_err(too_many)?;
    if request.ttl == Some(0) {
        return Err(fail(StatusCode::BAD_REQUEST, "bad_request", "ttl must be at least 1 second").into());
    }
    issue(o, &grant, request.ttl, now)
}

/// The user a backend holding an API key names: required, fit for a credential, not revoked.
fn backend_grant(o: &ApiOptions, user: Option<&str>) -> Result<Grant, Rejection> {
    let Some(user) = user else {
        let message = "with an API key, the body must name the user: {\"user\": ...}";
        return Err(fail(StatusCode::BAD_REQUEST, "user_required", message).into());
    };
    check_user(user)?;
    if (o.revoked)(user) {
        return Err(fail(StatusCode::FORBIDDEN, "user_revoked", "the user has been revoked").into());
    }
    Ok(Grant { user: user.to_owned(), left: None, via: "api_key" })
}

/// The user of a valid access token that is not revoked, and how long it has left.
fn token_grant(o: &ApiOptions, token: &str, now: u64) -> Result<Grant, Rejection> {
    let claims =
        o.keys.load().tokens.verify(token, now).map_err(|e| fail(token_status(e), e.code(), &e.to_string()))?;
    if claims.jti.as_deref().is_some_and(|jti| (o.revoked)(jti)) {
        return Err(fail(StatusCode::UNAUTHORIZED, "token_revoked", "the token has been revoked").into());
    }
    if (o.revoked)(&claims.sub) {
        return Err(fail(StatusCode::FORBIDDEN, "user_revoked", "the token's user has been revoked").into());
    }
    // No longer than the token (within the leeway it may already be past: nothing left to give).
    let left = claims.exp.saturating_sub(now);
    if left == 0 {
        return Err(fail(StatusCode::UNAUTHORIZED, "token_expired", "the token has expired").into());
    }
    tracing::trace!(kid = ?claims.kid, "access token verified");
    Ok(Grant { user: claims.sub, left: Some(left), via: "token" })
}

/// REST credentials for `grant` (RFC 8489 §9.2 long-term credentials, coturn's REST form) and the
/// `iceServers` that carry them, valid for the shortest of the request's `ttl`, the token's life,
/// `api-max-ttl` and `max-credential-lifetime`.
fn issue(o: &ApiOptions, grant: &Grant, ttl: Option<u64>, now: u64) -> Result<Response, Rejection> {
    let mut ttl = ttl.unwrap_or(u64::MAX).min(o.max_ttl_secs).min(grant.left.unwrap_or(u64::MAX));
    let Some(rest) = (o.rest)() else {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, "no_secret", "the relay has no REST secret").into());
    };
    if rest.max_lifetime_secs != 0 {
        ttl = ttl.min(rest.max_lifetime_secs);
    }
    let Some((username, password)) = rest.mint(&grant.user, ttl, now) else {
        return Err(fail(StatusCode::SERVICE_UNAVAILABLE, "no_secret", "the relay has no REST secret").into());
    };
    let fleet = o.fleet.as_ref().filter(|_| o.urls.host.is_none()).map(|f| f()).filter(|n| !n.is_empty());
    let urls = match fleet {
        Some(nodes) => fleet_urls(nodes),
        None => o.urls.clone(),
    };
    let servers =
        IceServers::with_tls(&urls.udp, &urls.tcp, &urls.tls, urls.host.as_deref(), Some((&username, &password)));
    let expiry = now.saturating_add(ttl);
    tracing::debug!(user = %grant.user, via = grant.via, ttl, "relay configuration issued");
    let body = serde_json::json!({
        "iceServers": servers.ice_servers,
        "expiresOn": rfc3339(expiry),
        "ttl": ttl,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

/// The urls of several nodes in their order: each transport's list is the nodes' addresses, the
/// first node's first.
fn fleet_urls(nodes: Vec<IceUrls>) -> IceUrls {
    let mut all = IceUrls::default();
    for node in nodes {
        all.udp.extend(node.udp);
        all.tcp.extend(node.tcp);
        all.tls.extend(node.tls);
    }
    all
}

/// A user name fit for a credential and a token's `sub`, or a 400.
fn check_user(user: &str) -> Result<(), Rejection> {
    if user.is_empty() || user.len() > MAX_USER_LEN || user.chars().any(char::is_control) {
        let message = format!("user must be 1 to {MAX_USER_LEN} bytes without control characters");
        return Err(fail(StatusCode::BAD_REQUEST, "bad_request", &message).into());
    }
    Ok(())
}

/// The body of `POST /v1/tokens`. Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    user: String,
    ttl: Option<u64>,
}

/// `POST /v1/tokens`.
async fn mint_token(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    mint_token_inner(&api, peer, &headers, body)
}

/// Whether `key` is one of the API keys: SHA-256 digests compared in constant time, every key
/// tried, so the timing shows neither a key's bytes nor its length (a plain `ct_eq` of two slices
/// returns at once when the lengths differ).
fn api_key_matches(keys: &[String], key: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let given: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    keys.iter().fold(false, |found, k| {
        let ours: [u8; 32] = Sha256::digest(k.as_bytes()).into();
        found | bool::from(ours.ct_eq(&given))
    })
}

/// The default lifetime of a minted token when the request names none.
const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;

fn mint_token_inner(
    api: &Api,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let o = &api.options;
    api.by_source.check(&source_key(peer.ip())).map_err(too_many)?;
    let key = bearer(headers)?;
    let keys = o.keys.load();
    if !api_key_matches(&keys.api_keys, key) {
        return Err(fail(StatusCode::UNAUTHORIZED, "invalid_api_key", "the API key is not valid").into());
    }
    let request: TokenRequest = json_body(body, false)?;
    let user = request.user.as_str();
    check_user(user)?;
    if request.ttl == Some(0) {
        return Err(fail(StatusCode::BAD_REQUEST, "bad_request", "ttl must be at least 1 second").into());
    }
    if (o.revoked)(user) {
        return Err(fail(StatusCode::FORBIDDEN, "user_revoked", "the user has been revoked").into());
    }
    api.by_user.check(&request.user).map_err(too_many)?;
    let ttl = request.ttl.unwrap_or(DEFAULT_TOKEN_TTL_SECS).min(o.max_ttl_secs);
    let now = (o.unix_now)();
    let jti = random_id().ok_or_else(|| fail(StatusCode::SERVICE_UNAVAILABLE, "no_randomness", "try again"))?;
    let token = keys
        .tokens
        .mint(user, ttl, now, &jti)
        .map_err(|e| fail(StatusCode::NOT_IMPLEMENTED, e.code(), &e.to_string()))?;
    let expiry = now.saturating_add(ttl);
    tracing::debug!(user, ttl, "access token minted");
    let body = serde_json::json!({ "token": token, "expiresOn": rfc3339(expiry), "ttl": ttl, "jti": jti });
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response())
}

/// `POST /v1/revocations` (API key): see [`super::revocations`].
async fn revocations(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Rejection> {
    let o = &api.options;
    api.by_source.check(&source_key(peer.ip())).map_err(too_many)?;
    let key = bearer(&headers)?;
    if !api_key_matches(&o.keys.load().api_keys, key) {
        return Err(fail(StatusCode::UNAUTHORIZED, "invalid_api_key", "the API key is not valid").into());
    }
    let request: RevokeRequest = json_body(body, false)?;
    let target = request.target().map_err(IntoResponse::into_response)?;
    let Some(revoke) = o.revoke.clone() else {
        return Err(fail(StatusCode::NOT_FOUND, "not_found", "no such endpoint").into());
    };
    Ok(super::revocations::revoke(revoke, target, "api").await)
}

/// A random token id: 16 bytes as hex.
pub fn random_id() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
