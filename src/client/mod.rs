//! A client for our own tests, for tools and for embedders: Binding over UDP, TCP
//! ([`binding()`]) and TLS ([`binding_tls`]), and a TURN client over UDP, TCP and TLS ([`turn`]),
//! with TCP allocations (RFC 6062, [`turn::TcpAllocation`]) and mobility (RFC 8016,
//! [`turn::TurnClient::move_to`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use switchback::client::{self, ClientTransport};
//!
//! # async fn run() -> Result<(), client::ClientError> {
//! let server = "127.0.0.1:3478".parse().unwrap();
//! let mapped = client::binding(server, ClientTransport::Udp, Duration::from_secs(5)).await?;
//! println!("the server sees us as {mapped}");
//! # Ok(()) }
//! ```
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod binding;
#[cfg(feature = "quic")]
pub mod quic;
pub mod tls;
pub mod turn;
pub mod url;

use std::time::Duration;

use crate::proto::stun::{EncodeError, TransactionId};

pub use binding::{binding, binding_stream, binding_udp};
pub use tls::{TlsClient, binding_tls};

/// The transport to reach the server over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransport {
    /// UDP, with retransmissions (RFC 8489 §6.2.1).
    Udp,
    /// TCP, one connection per request.
    Tcp,
}

/// Why a client request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket error (including "connection refused").
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// No answer before the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The request could not be encoded.
    #[error("cannot encode the request: {0}")]
    Encode(#[from] EncodeError),
    /// The OS gave no randomness for the transaction ID.
    #[error("no randomness for a transaction id: {0}")]
    Random(#[from] getrandom::Error),
    /// The server answered with an error response.
    #[error("error response {code} {reason}")]
    ErrorResponse {
        /// The ERROR-CODE number (300–699).
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// A success response without (XOR-)MAPPED-ADDRESS.
    #[error("the response carries no mapped address")]
    NoMappedAddress,
    /// The server closed the stream before answering.
    #[error("the server closed the connection")]
    Closed,
    /// The server sent bytes on the stream that cannot be framed (RFC 8656 §3.1).
    #[error("the server sent an invalid stream frame")]
    BadFrame,
    /// A challenge whose nonce announces password algorithms came without PASSWORD-ALGORITHMS: a
    /// bid-down on the way (RFC 8489 §9.2.5), so the request is not retried.
    #[error("the challenge lost its PASSWORD-ALGORITHMS (bid-down, RFC 8489 §9.2.5)")]
    AuthDowngrade,
    /// The password is not an OpaqueString this client can prepare for SHA-256 (RFC 8265 §4.2,
    /// ASCII only).
    #[error("the password cannot key SHA-256: {0}")]
    Password(#[from] crate::auth::OpaqueStringError),
    /// A TLS client configuration could not be built.
    #[error("TLS: {0}")]
    Tls(String),
    /// Not a DNS name or an IP address, so no TLS server name.
    #[error("`{0}` is not a valid TLS server name")]
    ServerName(String),
    /// A Connect success response without CONNECTION-ID (RFC 6062 §4.3).
    #[error("the Connect response carries no CONNECTION-ID")]
    NoConnectionId,
    /// A TCP allocation (RFC 6062) needs a TCP or TLS connection to the server, not UDP.
    #[error("TCP allocations need a TCP or TLS connection to the server")]
    NotAStream,
    /// The server forbids mobility (RFC 8016 §3.4: 405 Mobility Forbidden), to the Allocate that
    /// asked for it or to a move; the allocation stays where it is.
    #[error("the server forbids mobility (405, RFC 8016 §3.4)")]
    MobilityForbidden,
    /// The server did not take the MOBILITY-TICKET of a move (RFC 8016 §3.2: 400, a ticket it did not
    /// issue or one a later move retired); the allocation stays where it is.
    #[error("the server refused the mobility ticket: {0}")]
    TicketRefused(String),
    /// A move without a MOBILITY-TICKET: the allocation was made without asking for mobility
    /// (RFC 8016 §3.1, [`turn::ClientOptions::mobility`]).
    #[error("the allocation has no mobility ticket (it did not ask for mobility)")]
    NoMobilityTicket,
    /// Only an allocation held over UDP moves to a new UDP socket (RFC 8016 §3.2 keeps the
    /// transport: a server answers 400 to a move across transports).
    #[error("only an allocation held over UDP can move to a new UDP socket")]
    NotUdp,
    /// A [`turn::RelayedSocket`] already sends to its most peers ([`turn::SocketOptions::max_peers`]);
    /// nothing was asked of the server for this one.
    #[error("the relayed socket already has its most peers ({max})")]
    TooManyPeers {
        /// The cap.
        max: usize,
    },
    /// A `stun:`/`turn:` URL or an `iceServers` document that cannot be used (RFC 7064, RFC 7065).
    #[error("{0}")]
    Url(#[from] url::UrlError),
    /// The TURN client's allocation is lost ([`turn::ClientState::Failed`]): its background
    /// refresh (RFC 8656 §8) was answered 437 or another error, went unanswered until the lifetime
    /// ran out, or the connection to the server closed. Every later call returns this; make a new
    /// allocation.
    #[error("the allocation is lost: {reason}")]
    AllocationLost {
        /// What the client saw.
        reason: turn::LostReason,
    },
}

/// A fresh transaction ID, cryptographically random as RFC 8489 §5 requires.
pub fn new_transaction_id() -> Result<TransactionId, ClientError> {
    let mut id = [0u8; 12];
    getrandom::fill(&mut id)?;
    Ok(TransactionId(id))
}
