//! RFC 6062 TCP connections between a TCP allocation's relayed address and its peers, by
//! CONNECTION-ID. Only their state lives here (control path, under one mutex); the sockets are the
//! driver's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use super::{FiveTuple, Millis};
use crate::proto::stun::TransactionId;

/// Where a peer data connection stands (RFC 6062 §5.2–§5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// The driver is connecting to the peer for a Connect request; its answer is owed.
    Connecting {
        /// The Connect request's transaction ID (the answer reuses it).
        transaction_id: TransactionId,
        /// Whether the request carried FINGERPRINT (so does the answer).
        fingerprint: bool,
        /// When the record is dropped if the driver never reported (it must within 30 s).
        deadline: Millis,
    },
    /// Connected, waiting for the client's ConnectionBind until `deadline` (30 s).
    Unbound {
        /// When the peer connection is closed if still unbound.
        deadline: Millis,
    },
    /// Bound to a client data connection: bytes flow until either side closes.
    Bound {
        /// The client data connection.
        data: FiveTuple,
    },
}

/// One peer data connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpConnection {
    /// The 5-tuple of the allocation's control connection.
    pub allocation: FiveTuple,
    /// The peer.
    pub peer: SocketAddr,
    /// Where it stands.
    pub state: ConnectionState,
}

/// Why a connection could not be added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddConnectionError {
    /// The allocation has a connection to this peer, made or being made (RFC 6062 §5.2: 446).
    Exists,
    /// The allocation holds as many connections as it may (508).
    Capacity,
}

/// The most RFC 6062 connections on a server (being made, waiting for ConnectionBind, or bound):
/// each holds a peer socket, so this bounds what all TCP allocations together take in descriptors
/// (`total-quota` × 128 per allocation would not). Beyond it Connect and peers connecting get 508 /
/// are refused.
pub const MAX_CONNECTIONS: usize = 16_384;

/// Every RFC 6062 connection of a server, by CONNECTION-ID.
#[derive(Debug, Default)]
pub struct Connections {
    map: Mutex<HashMap<u32, TcpConnection>>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, TcpConnection>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `c` under a fresh ID drawn from `ids` (tried until one is free). With
    /// `exclusive_peer`, another connection of the allocation to the same peer address is an error
    /// (Connect); at most `max_per_allocation` connections per allocation (0: no limit) and
    /// [`MAX_CONNECTIONS`] on the server.
    pub fn add(
        &self,
        c: TcpConnection,
        exclusive_peer: bool,
        max_per_allocation: usize,
        ids: impl FnMut() -> u32,
    ) -> Result<u32, AddConnectionError> {
        self.add_within(c, exclusive_peer, max_per_allocation, MAX_CONNECTIONS, ids)
    }

    /// [`Connections::add`] with the server-wide cap given.
    fn add_within(
        &self,
        c: TcpConnection,
        exclusive_peer: bool,
        max_per_allocation: usize,
        max_total: usize,
        mut ids: impl FnMut() -> u32,
    ) -> Result<u32, AddConnectionError> {
        let mut map = self.lock();
        if map.len() >= max_total {
            return Err(AddConnectionError::Capacity);
        }
        let mut count = 0usize;
        for other in map.values().filter(|o| o.allocation == c.allocation) {
            if exclusive_peer && other.peer == c.peer {
                return Err(AddConnectionError::Exists);
            }
            count += 1;
        }
        if max_per_allocation != 0 && count >= max_per_allocation {
            return Err(AddConnectionError::Capacity);
        }
        loop {
            let id = ids();
            if id != 0
                && let std::collections::hash_map::Entry::Vacant(v) = map.entry(id)
            {
                v.insert(c);
                return Ok(id);
            }
        }
    }

    /// The connection `id`.
    pub fn get(&self, id: u32) -> Option<TcpConnection> {
        self.lock().get(&id).copied()
    }

    /// Sets the state of `id` when it is `from` (compare and set); whether it was.
    pub fn transition(&self, id: u32, from: impl FnOnce(&ConnectionState) -> bool, to: ConnectionState) -> bool {
        let mut map = self.lock();
        match map.get_mut(&id) {
            Some(c) if from(&c.state) => {
                c.state = to;
                true
            }
            _ => false,
        }
    }

    /// Removes `id`.
    pub fn remove(&self, id: u32) -> Option<TcpConnection> {
        self.lock().remove(&id)
    }

    /// How many connections there are (any state).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes the connections not bound by their deadline, and the unbound ones whose allocation
    /// is gone (`live` says which allocations remain); returns their IDs so the driver closes them.
    /// Bound connections end when their streams do.
    pub fn sweep(&self, now: Millis, live: impl Fn(&FiveTuple) -> bool) -> Vec<u32> {
        let mut map = self.lock();
        let stale: Vec<u32> = map
            .iter()
            .filter(|(_, c)| match c.state {
                ConnectionState::Connecting { deadline, .. } | ConnectionState::Unbound { deadline } => {
                    deadline <= now || !live(&c.allocation)
                }
                ConnectionState::Bound { .. } => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &stale {
            map.remove(id);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(client_port: u16) -> TcpConnection {
        let server: std::net::SocketAddr = "192.0.2.1:3478".parse().unwrap();
        let client = std::net::SocketAddr::new("198.51.100.1".parse().unwrap(), client_port);
        TcpConnection {
            allocation: crate::alloc::FiveTuple { transport: crate::alloc::Transport::Tcp, client, server },
            peer: "203.0.113.9:80".parse().unwrap(),
            state: ConnectionState::Unbound { deadline: 1 },
        }
    }

    /// One server holds at most [`MAX_CONNECTIONS`] whatever the allocations: the next is refused.
    #[test]
    fn the_server_wide_cap_holds() {
        let c = Connections::default();
        let mut next = 0u32;
        for i in 0..300 {
            let owner = connection(1000 + (i / 100) as u16);
            c.add_within(owner, false, 128, 300, || {
                next += 1;
                next
            })
            .unwrap();
        }
        let more = c.add_within(connection(60_000), false, 128, 300, || {
            next += 1;
            next
        });
        assert_eq!(more, Err(AddConnectionError::Capacity));
    }
}
