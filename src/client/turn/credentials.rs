//! The credentials a TURN client signs with and their swap
//! ([`TurnClient::set_credentials`](super::TurnClient::set_credentials)). The credentials, the key
//! derivation and the 401/438 dance (RFC 8489 §9.2) are the sans-IO core's
//! ([`crate::client_core`]); this is what the tokio client adds.

use std::sync::Arc;
use std::time::Duration;

use super::TurnClient;
use crate::client::ClientError;
pub(super) use crate::client_core::Auth;
pub use crate::client_core::Credentials;
use crate::client_core::{RequestError, challenge};
use crate::proto::stun::Message;

impl TurnClient {
    /// Swaps the credentials requests on the allocation use — a REST credential or an access token
    /// about to expire, replaced by a fresh one. A Refresh signed with `creds` (and carrying its
    /// ACCESS-TOKEN, RFC 7635 §6.2) goes at once; only when the server takes it do they become the
    /// client's, for the background refresh, permissions, channels and Connect. A refusal is
    /// returned and the old credentials stay in use; a 437 fails the client.
    ///
    /// What a server takes is bounded by RFC 8656 §5: every request on an allocation must carry the
    /// username it was made with, or be refused with 441 (Wrong Credentials).
    /// - **RFC 7635 access tokens** swap: a Refresh with a new token moves the allocation to the
    ///   token's session key (RFC 7635 §6.2), so the allocation outlives the first token.
    /// - **REST credentials** (`expiry:user`) cannot: a new set is a new username, and switchback,
    ///   like any RFC 8656 server, answers 441. Such an allocation lives as long as its first
    ///   credential: after its expiry switchback refuses its refreshes (401, the client fails with
    ///   [`LostReason::Refused`](super::LostReason::Refused)) or, with `strict-expiry`, deletes it
    ///   (the client fails with [`LostReason::Gone`](super::LostReason::Gone)). Allocate anew with
    ///   the fresh set before the old one expires.
    /// - **A new password under the same username**: RFC 8656 allows it; switchback holds an
    ///   allocation to its key as well and answers 441.
    pub async fn set_credentials(&self, creds: Credentials) -> Result<(), ClientError> {
        self.inner.health.check()?;
        let creds = Arc::new(creds);
        self.inner.refresh_as(self.lifetime, Some(&creds)).await?;
        self.inner.creds.store(creds);
        Ok(())
    }
}

/// What to retry with after the error response `m` (RFC 8489 §9.2.5), [`challenge`] with the
/// client's errors.
pub(super) fn reauth(creds: &Arc<Credentials>, realm: Option<&str>, m: &Message<'_>) -> Result<Auth, ClientError> {
    Ok(challenge(creds, realm, m)?)
}

impl From<RequestError> for ClientError {
    fn from(e: RequestError) -> Self {
        match e {
            // The core's own timeout is RFC 8489's Ti; the tokio client times its requests itself.
            RequestError::Timeout => ClientError::Timeout(Duration::from_millis(39_500)),
            RequestError::Encode(e) => ClientError::Encode(e),
            RequestError::ErrorResponse { code, reason } => ClientError::ErrorResponse { code, reason },
            RequestError::AuthDowngrade => ClientError::AuthDowngrade,
            RequestError::Password(e) => ClientError::Password(e),
            RequestError::BadResponse => ClientError::BadFrame,
        }
    }
}
