//! Why a request was not authenticated (RFC 8489 §9.2.4), as the error to answer and as a stable
//! label for metrics and logs.

use super::{AccessTokenError, CredentialError};
use crate::proto::stun::{ErrorCode, codes};

/// Why a request was not authenticated; its `Display` is a stable snake_case label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// No MESSAGE-INTEGRITY: the first request of a client, answered with REALM and NONCE.
    NoCredentials,
    /// No such static user, and not a REST username either (or no REST secret configured).
    UnknownUser,
    /// A REST username whose expiry has passed.
    Expired,
    /// A REST username whose expiry lies beyond the configured maximum lifetime.
    TooFarInFuture,
    /// A REALM other than ours.
    WrongRealm,
    /// MESSAGE-INTEGRITY does not match any candidate key: wrong password or tampered message.
    BadIntegrity,
    /// A NONCE that is not ours or too old.
    StaleNonce,
    /// MESSAGE-INTEGRITY without USERNAME, REALM or NONCE, or one of them not UTF-8.
    Malformed,
    /// Valid credentials of a user or username on the revocation list.
    Revoked,
    /// An ACCESS-TOKEN that does not decrypt under its kid's key or is malformed (RFC 7635 §6.2).
    BadToken,
    /// The MD5 password algorithm while `require-sha256` is on (RFC 8489 §9.2.4, §18.5.1.1).
    Md5Refused,
    /// The embedder's credential hook refused the user ([`hook`](super::hook)).
    Refused,
}

impl Reason {
    /// A short snake_case label, stable for metrics.
    fn as_str(self) -> &'static str {
        match self {
            Reason::NoCredentials => "no_credentials",
            Reason::UnknownUser => "unknown_user",
            Reason::Expired => "expired",
            Reason::TooFarInFuture => "too_far_in_future",
            Reason::WrongRealm => "wrong_realm",
            Reason::BadIntegrity => "bad_integrity",
            Reason::StaleNonce => "stale_nonce",
            Reason::Malformed => "malformed",
            Reason::Revoked => "revoked",
            Reason::BadToken => "bad_token",
            Reason::Md5Refused => "md5_refused",
            Reason::Refused => "refused",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why [`Authenticator::authenticate`](super::Authenticator::authenticate) refused a request, and so which error to answer with
/// (RFC 8489 §9.2.4). Small and `Copy`: a flood of bad requests allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// 400: MESSAGE-INTEGRITY without USERNAME, REALM or NONCE (or one of them not UTF-8).
    #[error("bad request: incomplete credentials")]
    BadRequest,
    /// 401: answer with REALM and a fresh NONCE (and no MESSAGE-INTEGRITY).
    #[error("unauthenticated: {0}")]
    Unauthenticated(Reason),
    /// 438: answer with REALM and a fresh NONCE; the client retries with it.
    #[error("stale nonce")]
    StaleNonce,
    /// No answer yet: the embedder's credential hook is looking the user up ([`hook`](super::hook));
    /// the request is held and run again (never answered as such).
    #[error("credentials pending")]
    Pending,
}

impl AuthError {
    /// The STUN error code to answer with: 400, 401 or 438 (RFC 8489 §9.2.4).
    pub fn error_code(&self) -> u16 {
        match self {
            AuthError::BadRequest => codes::BAD_REQUEST,
            AuthError::Unauthenticated(_) => codes::UNAUTHENTICATED,
            AuthError::StaleNonce => codes::STALE_NONCE,
            AuthError::Pending => codes::UNAUTHENTICATED,
        }
    }

    /// The metrics label.
    pub fn reason(&self) -> Reason {
        match self {
            AuthError::BadRequest => Reason::Malformed,
            AuthError::Unauthenticated(r) => *r,
            AuthError::StaleNonce => Reason::StaleNonce,
            AuthError::Pending => Reason::NoCredentials,
        }
    }
}

impl From<AuthError> for ErrorCode<'static> {
    fn from(e: AuthError) -> Self {
        ErrorCode::new(e.error_code())
    }
}

impl From<CredentialError> for Reason {
    fn from(e: CredentialError) -> Self {
        match e {
            CredentialError::Expired => Reason::Expired,
            CredentialError::TooFarInFuture => Reason::TooFarInFuture,
            // Not a REST username at all: as far as we know, nobody.
            CredentialError::Malformed => Reason::UnknownUser,
        }
    }
}

impl From<AccessTokenError> for Reason {
    fn from(e: AccessTokenError) -> Self {
        match e {
            AccessTokenError::UnknownKid => Reason::UnknownUser,
            AccessTokenError::Expired => Reason::Expired,
            AccessTokenError::FromFuture => Reason::TooFarInFuture,
            _ => Reason::BadToken,
        }
    }
}
