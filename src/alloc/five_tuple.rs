//! The 5-tuple that names an allocation, RFC 8656 §2 ("5-tuple") and §7.

use std::net::SocketAddr;

use crate::server::Transport;

/// Client address, server address and transport: the key of an allocation (RFC 8656 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    /// The transport between client and server.
    pub transport: Transport,
    /// The client's address as the server sees it (its server-reflexive address).
    pub client: SocketAddr,
    /// The server address the client talks to.
    pub server: SocketAddr,
}
