//! RFC 6062 TCP relaying: Connect (§5.2) and its late answer, peer connections announced with
//! ConnectionAttempt (§5.3), and ConnectionBind (§5.4).
//!
//! A Connect cannot be answered at once: the driver opens the TCP connection to the peer. The
//! handler records the attempt, asks the driver ([`RelayDriver::connect`]) and stays silent; the
//! driver later calls [`Server::connect_completed`], which writes the answer (CONNECTION-ID or
//! 447) for the driver to queue on the client's control connection.

use std::net::SocketAddr;
use std::time::Instant;

use subtle::ConstantTimeEq as _;

use super::request::{Request, same_credentials};
use super::response::Trailer;
use super::{Outcome, RelayDriver, Server};
use crate::alloc::{AddConnectionError, Allocation, BindingLimits, ConnectionState, FiveTuple, Millis, TcpConnection};
use crate::proto::stun::{Class, ConnectionId, ErrorCode, MessageType, MessageWriter, Method, XorPeerAddress, codes};

/// RFC 6062 §5.2–§5.4: a connection attempt may take 30 s, and a connection not bound within
/// 30 s is closed.
pub const CONNECTION_TIMEOUT_MS: Millis = 30_000;

/// Slack after which an attempt the driver never reported is forgotten.
const CONNECT_SLACK_MS: Millis = 5_000;

/// Most connections (being made, waiting for ConnectionBind, or bound) per allocation.
pub const MAX_CONNECTIONS_PER_ALLOCATION: usize = 128;

/// Connect, RFC 6062 §5.2.
pub(super) fn handle<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let server = req.server;
    let Some(allocation) = &req.allocation else {
        return req.error(out, codes::ALLOCATION_MISMATCH);
    };
    if !allocation.is_tcp_relay() {
        return req.error(out, codes::BAD_REQUEST);
    }
    let Ok(XorPeerAddress(peer)) = req.msg.get::<XorPeerAddress>() else {
        return req.error(out, codes::BAD_REQUEST);
    };
    if peer.is_ipv4() != allocation.info().relay_addr.is_ipv4() {
        return req.error(out, codes::PEER_ADDRESS_FAMILY_MISMATCH);
    }
    if !server.peer_allowed(allocation, peer, super::PeerRequest::Connect) {
        return req.peer_denied(allocation, peer.ip(), out);
    }
    let connection = TcpConnection {
        allocation: allocation.info().five_tuple,
        peer,
        state: ConnectionState::Connecting {
            transaction_id: req.msg.transaction_id(),
            fingerprint: req.msg.has_fingerprint(),
            deadline: req.now + CONNECTION_TIMEOUT_MS + CONNECT_SLACK_MS,
        },
    };
    let id = match server
        .connections
        .add(connection, true, MAX_CONNECTIONS_PER_ALLOCATION, || server.random_connection_id())
    {
        Ok(id) => id,
        Err(AddConnectionError::Exists) => return req.error(out, codes::CONNECTION_ALREADY_EXISTS),
        Err(AddConnectionError::Capacity) => return req.error(out, codes::INSUFFICIENT_CAPACITY),
    };
    // The peer may now send on this connection: it has a permission (RFC 6062 §5.2).
    let o = &server.options;
    let expires = req.now + u64::from(o.permission_lifetime) * 1000;
    let limits = BindingLimits { permissions: o.max_permissions, channels: o.max_channels };
    if allocation.add_permissions(&[peer.ip()], expires, req.now, limits).is_err() {
        server.connections.remove(id);
        return req.error(out, codes::INSUFFICIENT_CAPACITY);
    }
    server.stats.tcp_connect();
    server.driver.connect(allocation, id, peer);
    Outcome::Silent
}

impl<D: RelayDriver> Server<D> {
    /// The driver's report on the connection it opened for a Connect (RFC 6062 §5.2): `connected`
    /// or not (failure or 30 s timeout). Writes the Connect answer into `out` — success with
    /// CONNECTION-ID, or 447 — and returns the client's control connection to queue it on, with
    /// its length. `None`: nothing to answer (the allocation is gone, or the attempt unknown);
    /// the driver then closes the peer connection.
    ///
    /// On success the driver must hold the peer connection under `connection_id` before it
    /// sends the answer: the client's ConnectionBind may follow at once.
    pub fn connect_completed(
        &self,
        now: Instant,
        connection_id: u32,
        connected: bool,
        out: &mut [u8],
    ) -> Option<(FiveTuple, usize)> {
        let now = self.millis(now);
        let c = self.connections.get(connection_id)?;
        let ConnectionState::Connecting { transaction_id, fingerprint, .. } = c.state else {
            return None;
        };
        let Some(allocation) = self.table.get(&c.allocation).filter(|a| a.is_live(now)) else {
            self.connections.remove(connection_id);
            return None;
        };
        let class = if connected {
            let unbound = ConnectionState::Unbound { deadline: now + CONNECTION_TIMEOUT_MS };
            if !self.connections.transition(connection_id, |s| matches!(s, ConnectionState::Connecting { .. }), unbound)
            {
                return None;
            }
            self.stats.tcp_connected();
            Class::SuccessResponse
        } else {
            self.connections.remove(connection_id);
            self.stats.tcp_connect_failed();
            self.stats.error_sent(codes::CONNECTION_TIMEOUT_OR_FAILURE);
            Class::ErrorResponse
        };
        // Signed with the allocation's key: the session key of its latest token for an allocation
        // made with an RFC 7635 ACCESS-TOKEN.
        let session = allocation.oauth();
        let (key, key_sha256) = match session.as_deref().map(|s| &s.key) {
            Some(crate::auth::MacKey::Sha1(k)) => (Some(k), None),
            Some(crate::auth::MacKey::Sha256(k)) => (None, Some(k)),
            None => (Some(allocation.key()), None),
        };
        let trailer = Trailer { software: self.options.software.as_deref(), key, key_sha256, fingerprint };
        let written = (|| {
            let mut w = MessageWriter::new(out, MessageType::new(Method::CONNECT, class), transaction_id)?;
            if connected {
                w.add(&ConnectionId(connection_id))?;
            } else {
                w.add(&ErrorCode::new(codes::CONNECTION_TIMEOUT_OR_FAILURE))?;
            }
            trailer.write(w)
        })();
        match written {
            Ok(n) => Some((c.allocation, n)),
            Err(_) => {
                self.connections.remove(connection_id);
                None
            }
        }
    }

    /// A peer opened a TCP connection to `allocation`'s relayed address (RFC 6062 §5.3). With a
    /// permission for its IP, the connection is recorded (30 s to be bound) and the
    /// ConnectionAttempt indication for the client's control connection is written into `out`:
    /// returns its CONNECTION-ID and length. `None`: refused, close the connection.
    pub fn peer_connected(
        &self,
        now: Instant,
        allocation: &Allocation<D::Socket>,
        peer: SocketAddr,
        out: &mut [u8],
    ) -> Option<(u32, usize)> {
        let now = self.millis(now);
        if !allocation.is_live(now) || !allocation.is_tcp_relay() {
            return None;
        }
        if !allocation.bindings().permits(peer.ip(), now) {
            self.stats.peer_no_permission();
            return None;
        }
        let connection = TcpConnection {
            allocation: allocation.info().five_tuple,
            peer,
            state: ConnectionState::Unbound { deadline: now + CONNECTION_TIMEOUT_MS },
        };
        let id = self
            .connections
            .add(connection, false, MAX_CONNECTIONS_PER_ALLOCATION, || self.random_connection_id())
            .ok()?;
        let written = (|| {
            let ty = MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication);
            let mut w = MessageWriter::new(out, ty, self.random_tid())?;
            w.add(&ConnectionId(id))?;
            w.add(&XorPeerAddress(peer))?;
            Ok::<_, crate::proto::stun::EncodeError>(w.finish())
        })();
        match written {
            Ok(n) => {
                self.stats.tcp_connection_attempt();
                Some((id, n))
            }
            Err(_) => {
                self.connections.remove(id);
                None
            }
        }
    }

    /// The relay between a client data connection and the peer connection `connection_id` ended
    /// (either side closed) after relaying `(to_peer, to_client)` bytes: the peer may be connected
    /// to again, and the event sink hears of it while its allocation lives.
    pub fn connection_closed(&self, now: Instant, connection_id: u32, (to_peer_bytes, to_client_bytes): (u64, u64)) {
        let Some(c) = self.connections.remove(connection_id) else { return };
        if let Some(allocation) = self.has_events().then(|| self.table.get(&c.allocation)).flatten() {
            let at_ms = self.unix_ms(self.millis(now));
            self.emit(&allocation, |session| super::Event::TcpConnectionClosed {
                session,
                connection_id,
                peer: c.peer,
                at_ms,
                to_peer_bytes,
                to_client_bytes,
            });
        }
    }

    /// Closes the connections not bound in time, or whose allocation is gone.
    pub(super) fn sweep_connections(&self, now: Millis) {
        let live = |f: &FiveTuple| self.table.get(f).is_some_and(|a| a.is_live(now));
        for id in self.connections.sweep(now, live) {
            self.stats.tcp_connection_expired();
            self.driver.close_connection(id);
        }
    }
}

/// ConnectionBind, RFC 6062 §5.4: on a new client connection, with CONNECTION-ID of a connection
/// waiting to be bound and the credentials of its allocation.
pub(super) fn bind<D: RelayDriver>(req: &Request<'_, '_, D>, out: &mut [u8]) -> Outcome {
    let server = req.server;
    // A data connection is a fresh TCP/TLS connection, not the control one.
    if !req.rx.transport.is_stream() || req.allocation.is_some() {
        return req.error(out, codes::BAD_REQUEST);
    }
    let Ok(ConnectionId(id)) = req.msg.get::<ConnectionId>() else {
        return req.error(out, codes::BAD_REQUEST);
    };
    let Some(c) = server.connections.get(id) else {
        return req.error(out, codes::BAD_REQUEST);
    };
    if !matches!(c.state, ConnectionState::Unbound { deadline } if deadline > req.now) {
        return req.error(out, codes::BAD_REQUEST);
    }
    let Some(allocation) = server.table.get(&c.allocation).filter(|a| a.is_live(req.now)) else {
        return req.error(out, codes::BAD_REQUEST);
    };
    // RFC 8656 §6 applied to the data connection: the allocation's own credentials. For an
    // allocation made with an RFC 7635 token: a token of the same session — same kid and same
    // mac_key (every holder under one kid has its own) — not just any valid token.
    let same_session = match (allocation.oauth(), &req.auth.oauth) {
        (Some(ours), Some(theirs)) => ours.kid == theirs.kid && bool::from(ours.id.ct_eq(&theirs.id)),
        _ => true,
    };
    if !same_credentials(&allocation, req.auth) || !same_session {
        return req.error(out, codes::WRONG_CREDENTIALS);
    }
    let data = req.rx.five_tuple();
    let unbound = |s: &ConnectionState| matches!(s, ConnectionState::Unbound { .. });
    if !server.connections.transition(id, unbound, ConnectionState::Bound { data }) {
        return req.error(out, codes::BAD_REQUEST);
    }
    server.stats.tcp_connection_bound();
    server.driver.connection_bound(&allocation, id, data);
    let peer = c.peer;
    server.emit(&allocation, |session| super::Event::TcpConnectionBound { session, connection_id: id, peer });
    super::response::respond(req.msg, out, Class::SuccessResponse, req.trailer, |_| Ok(()))
}
