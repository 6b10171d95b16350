//! The TURN client's protocol core, sans-IO (like [`crate::server`], quinn-proto or str0m): no
//! sockets, no tasks, no clock reads. `now` is an input; the caller moves the bytes.
//!
//! - [`Transaction`]: one request's retransmissions (RFC 8489 §6.2.1 over UDP, §6.2.2 over TCP/TLS).
//! - [`Credentials`], [`Auth`], [`sign`], [`Dance`]: the long-term credential mechanism from the
//!   client's side (RFC 8489 §9.2: the 401 → credentials, 438 → fresh nonce dance, SHA-256 and
//!   USERHASH, §9.2.5) and RFC 7635 access tokens.
//! - [`Inbound`]: what the server sent (a response, Data indication, ChannelData,
//!   ConnectionAttempt).
//! - [`RefreshSchedule`]: when an allocation is refreshed and when it runs out (RFC 8656 §8).
//! - [`ClientAllocation`]: one allocation on one server (RFC 8656 §7–§12): Allocate, its Refresh
//!   schedule, permissions and channel bindings kept refreshed, data both ways, and what it cannot
//!   keep reported as [`Event`]s.
//!
//! The tokio client (`client::turn`, feature `runtime`) signs, retries and retransmits its requests with the
//! pieces here.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use switchback::client_core::{ClientAllocation, ClientConfig, Credentials, Event};
//!
//! let (start, server) = (Instant::now(), "192.0.2.1:3478".parse().unwrap());
//! let mut client = ClientAllocation::new(start, server, Credentials::new("alice", "pw"), ClientConfig::default());
//! // The Allocate goes at once (no credentials yet: the server's 401 teaches the realm and nonce)…
//! let transmit = client.poll_transmit(start).expect("the Allocate");
//! assert_eq!(transmit.destination, server);
//! // …and, unanswered, again after RTO = 500 ms (RFC 8489 §6.2.1).
//! assert_eq!(client.poll_timeout(), Some(start + Duration::from_millis(500)));
//! assert!(client.poll_transmit(start + Duration::from_millis(499)).is_none());
//! client.handle_timeout(start + Duration::from_millis(500));
//! assert!(client.poll_transmit(start + Duration::from_millis(500)).is_some());
//! // Answers go to client.handle_input(now, from, bytes); what they mean comes out here.
//! assert!(client.poll_event().is_none());
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod credentials;
mod inbound;
mod machine;
mod schedule;
mod transaction;

#[cfg(test)]
mod tests;

pub use credentials::{Auth, Credentials, Dance, MAX_AUTH_ATTEMPTS, Step, challenge, sign};
pub use inbound::Inbound;
pub use machine::{CHANNEL_REFRESH, ClientAllocation, ClientConfig, Event, PERMISSION_REFRESH, SendError, Transmit};
pub use schedule::{FIRST_BACKOFF, MAX_BACKOFF, RefreshSchedule, refresh_period};
pub use transaction::{Outcome, RetransmitConfig, Transaction};

use crate::proto::stun::{EncodeError, TransactionId};

/// Why a request failed, as the protocol core sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No answer (RFC 8489 §6.2.1: after Rc sends and Rm × RTO; §6.2.2: after Ti), or none before
    /// the caller's deadline.
    #[error("no answer to the request")]
    Timeout,
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    /// The server answered with an error response (after the RFC 8489 §9.2 dance, if it was one).
    #[error("error response {code} {reason}")]
    ErrorResponse {
        /// The ERROR-CODE number (300–699).
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A response the client cannot read: an error without ERROR-CODE, a success without what it
    /// must carry, a PASSWORD-ALGORITHMS that does not parse.
    #[error("a malformed response")]
    BadResponse,
    /// A challenge whose nonce announces password algorithms came without PASSWORD-ALGORITHMS: a
    /// bid-down on the way (RFC 8489 §9.2.5), so the request is not retried.
    #[error("the challenge lost its PASSWORD-ALGORITHMS (bid-down, RFC 8489 §9.2.5)")]
    AuthDowngrade,
    /// The password is not an OpaqueString this client can prepare for SHA-256 (RFC 8265 §4.2,
    /// ASCII only).
    #[error("the password cannot key SHA-256: {0}")]
    Password(#[from] crate::auth::OpaqueStringError),
}

/// Why a client's allocation is lost: what its refreshes (RFC 8656 §8) or its connection to the
/// server told it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LostReason {
    /// A Refresh (or a permission or channel request) was answered 437 Allocation Mismatch
    /// (RFC 8656 §8.3): the server has no allocation for our 5-tuple any more — an operator deleted
    /// it, it expired, or the server restarted and lost it.
    #[error("the server no longer has the allocation (437 Allocation Mismatch)")]
    Gone,
    /// A Refresh was answered with another error (RFC 8656 §8.3: the allocation is not refreshed):
    /// 401 once a REST credential has expired, 403 for a revoked user, 441 for other credentials…
    #[error("the server refused the refresh: {code} {reason}")]
    Refused {
        /// The ERROR-CODE number.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No Refresh was answered (each one retransmitted as RFC 8489 §6.2.1 says, retried with
    /// backoff) before the lifetime the server last granted ran out (RFC 8656 §8: it is deleted).
    #[error("no answer to the refreshes before the allocation's lifetime ran out")]
    Expired,
    /// The TCP or TLS connection to the server closed or lost its framing (RFC 8656 §3.1: the
    /// allocation goes with it).
    #[error("the connection to the server closed")]
    ConnectionClosed,
    /// Over UDP, the server's address answered with ICMP port unreachable (the socket reported
    /// ECONNREFUSED) and a Refresh drew the same: nothing listens there any more, so the allocation
    /// (held in that server's memory) is gone.
    #[error("the server's port is unreachable (ICMP: connection refused)")]
    Unreachable,
    /// A Refresh failed in this client (it could not be encoded, no randomness, the server's
    /// challenge was a bid-down, RFC 8489 §9.2.5).
    #[error("the refresh failed: {0}")]
    Local(String),
}

impl LostReason {
    /// What a failed Refresh means (RFC 8656 §8.3): `Some` reason to give up now, `None` to try
    /// again (no answer: the allocation may still live until its lifetime runs out).
    pub fn of(error: &RequestError) -> Option<LostReason> {
        Some(match error {
            RequestError::Timeout => return None,
            RequestError::ErrorResponse { code: crate::proto::stun::codes::ALLOCATION_MISMATCH, .. } => {
                LostReason::Gone
            }
            RequestError::ErrorResponse { code, reason } => LostReason::Refused { code: *code, reason: reason.clone() },
            other => LostReason::Local(other.to_string()),
        })
    }
}

/// A fresh transaction ID, cryptographically random as RFC 8489 §5 requires ([`crate::random`]).
pub fn new_transaction_id() -> TransactionId {
    let mut id = [0u8; 12];
    crate::random::fill(&mut id);
    TransactionId(id)
}
