//! Run-time revocation over HTTP, shared by the token service (`POST /v1/revocations`, behind the
//! backend's API key) and the admin API (`POST /admin/revocations`, behind the admin key, what
//! `switchback admin revoke` calls). Both hand the request to one [`RevokeFn`], the daemon's
//! revoker: one revocation list, read by the TURN server and the token service alike.
//!
//! Body `{"user": NAME}` or `{"jti": TOKEN_ID}` (unknown fields are ignored). The user's requests
//! get 403 from then on (RFC 8656 §7.2 and §9: administratively refused) and its live allocations
//! end at once; a `jti` is refused by the token service. The answer:
//! `{"revoked": ENTRY, "kind": "user"|"jti", "persisted": BOOL, "storage": "file"|"memory",
//! "ended": N}`, with a `warning` when the revocation is held in memory only (no
//! `revocation-file`: it survives reloads, not a restart).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::error_response;
use crate::policy::revocation::{RevokeError, RevokeOutcome, RevokeTarget};

/// Revokes a user or a token id: puts it on the list (and in `revocation-file` when configured),
/// then ends the user's live allocations. Blocking (file I/O): called from `spawn_blocking`.
pub type RevokeFn = Arc<dyn Fn(&RevokeTarget) -> Result<RevokeOutcome, RevokeError> + Send + Sync>;

/// The body of a revocation request. Unknown fields are ignored (forward compatibility).
#[derive(Debug, Default, Deserialize)]
pub struct RevokeRequest {
    /// A user (REST user part, static user name, or token `sub`).
    pub user: Option<String>,
    /// An access token's `jti`.
    pub jti: Option<String>,
}

/// A revocation request that names nothing, or too much, or an entry the list cannot hold: a 400
/// with `code`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BadRevokeRequest {
    /// The error code of the JSON answer.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl IntoResponse for BadRevokeRequest {
    fn into_response(self) -> Response {
        bad(self.code, &self.message)
    }
}

impl RevokeRequest {
    /// What to revoke: exactly one of `user` and `jti`, fit for the list.
    pub fn target(self) -> Result<RevokeTarget, BadRevokeRequest> {
        let refuse = |code, message: &str| BadRevokeRequest { code, message: message.to_owned() };
        let target = match (self.user, self.jti) {
            (Some(user), None) => RevokeTarget::User(user),
            (None, Some(jti)) => RevokeTarget::TokenId(jti),
            (Some(_), Some(_)) => return Err(refuse("user_or_jti", "give either user or jti, not both")),
            (None, None) => {
                return Err(refuse("user_or_jti_required", "the body needs {\"user\": ...} or {\"jti\": ...}"));
            }
        };
        target.check().map_err(|e| refuse("bad_request", &e.to_string()))?;
        Ok(target)
    }
}

fn bad(code: &str, message: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, code, message)
}

/// Runs `revoke` on `target` off the async workers and answers as the module says; `face` names
/// the caller in the log.
pub async fn revoke(revoke: RevokeFn, target: RevokeTarget, face: &'static str) -> Response {
    let job = target.clone();
    let done = tokio::task::spawn_blocking(move || revoke(&job)).await;
    let (entry, kind) = (target.entry(), target.kind());
    match done {
        Ok(Ok(outcome)) => {
            tracing::info!(face, kind, entry, persisted = outcome.persisted, ended = outcome.ended, "revoked");
            let mut body = json!({
                "revoked": entry,
                "kind": kind,
                "persisted": outcome.persisted,
                "storage": if outcome.persisted { "file" } else { "memory" },
                "ended": outcome.ended,
            });
            if !outcome.persisted {
                tracing::warn!(face, kind, entry, "revocation held in memory only: no revocation-file configured");
                body["warning"] = json!(
                    "no revocation-file is configured: the revocation is held in memory only; it survives reloads \
                     but not a restart"
                );
            }
            axum::Json(body).into_response()
        }
        Ok(Err(e @ RevokeError::BadEntry { .. })) => bad("bad_request", &e.to_string()),
        Ok(Err(e)) => {
            tracing::error!(face, kind, entry, error = %e, "revocation not saved");
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "revocation_not_saved", &e.to_string())
        }
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "revocation_failed", "the revocation task failed"),
    }
}
