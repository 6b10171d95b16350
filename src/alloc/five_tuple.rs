//! The 5-tuple that names an allocation, RFC 8656 §2 ("5-tuple") and §7, and the transport of its
//! client-to-server leg.

use std::net::SocketAddr;

/// The transport a message arrived on (RFC 8656 §3.1: the client-to-server leg).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams.
    Udp,
    /// A TCP stream.
    Tcp,
    /// A TLS-over-TCP stream.
    Tls,
}

impl Transport {
    /// Whether the transport is a byte stream (framing and ChannelData padding apply).
    pub fn is_stream(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

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
