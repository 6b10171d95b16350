//! Lifecycle events: what the core tells an operator, a billing job or an embedder about sessions.
//!
//! The core calls one [`EventSink`] at each lifecycle edge of an allocation — created (RFC 8656
//! §7.2), refreshed and deleted (§8), a permission (§9) or channel (§12) installed, a peer refused
//! (§9.1 and §21.4's policy), an authentication refused (RFC 8489 §9.2.4) and an RFC 6062 peer
//! connection bound (§5.4) and closed (§5.5). Nothing is emitted per packet: the relayed totals already live on the
//! allocation ([`AllocationCounters`](crate::alloc::AllocationCounters)) and travel with the
//! deletion as [`Usage`]. Without a sink nothing is built at all.
//!
//! Events borrow from the core: a sink copies what it keeps. It runs on the thread that handled
//! the request (a worker), so it must be quick — hand anything slow (files, networks) to another
//! thread through a bounded queue, as the daemon's usage writer does.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use crate::alloc::{Allocation, AllocationCounters, AllocationId, FiveTuple};
use crate::auth::Reason;

/// Receives the core's lifecycle events (see the module documentation). Set one with
/// [`Server::set_events`](super::Server::set_events).
pub trait EventSink: Send + Sync + 'static {
    /// One event; called on the worker that caused it, so keep it short.
    fn event(&self, event: &Event<'_>);
}

/// How an allocation's client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthKind {
    /// REST credentials (`expiry:user`, draft-uberti-behave-turn-rest).
    Rest,
    /// A static user of the long-term credential mechanism (RFC 8489 §9.2).
    Static,
    /// An RFC 7635 ACCESS-TOKEN.
    Token,
}

impl AuthKind {
    /// A stable lower-case label for logs and records.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthKind::Rest => "rest",
            AuthKind::Static => "static",
            AuthKind::Token => "token",
        }
    }
}

/// Why an allocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// Its lifetime ran out without a Refresh (RFC 8656 §8).
    Expired,
    /// The client deleted it: a Refresh with LIFETIME 0 (RFC 8656 §8).
    Client,
    /// Its user or token was revoked.
    Revoked,
    /// Its REST credential expired (`strict-expiry`).
    CredentialExpired,
    /// Its TCP or TLS connection closed (RFC 8656 §3.1: the allocation lives and dies with it).
    ConnectionClosed,
    /// An operator deleted it through the admin API.
    Admin,
    /// The server shut down (after a drain, or at once).
    Shutdown,
}

impl EndReason {
    /// A stable snake_case label for logs, records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Expired => "expired",
            EndReason::Client => "client",
            EndReason::Revoked => "revoked",
            EndReason::CredentialExpired => "credential_expired",
            EndReason::ConnectionClosed => "connection_closed",
            EndReason::Admin => "admin",
            EndReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Relayed application data of one allocation: the peer datagrams' (or TCP bytes') sizes, TURN
/// framing not included, so a billing job can reason about them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Packets client → peer.
    pub to_peer_packets: u64,
    /// Bytes client → peer.
    pub to_peer_bytes: u64,
    /// Packets peer → client.
    pub to_client_packets: u64,
    /// Bytes peer → client.
    pub to_client_bytes: u64,
}

impl Usage {
    /// The totals an allocation has relayed so far.
    pub fn of(counters: &AllocationCounters) -> Usage {
        Usage {
            to_peer_packets: counters.to_peer_packets.load(Relaxed),
            to_peer_bytes: counters.to_peer_bytes.load(Relaxed),
            to_client_packets: counters.to_client_packets.load(Relaxed),
            to_client_bytes: counters.to_client_bytes.load(Relaxed),
        }
    }
}

/// The facts about one allocation that every event about it carries.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// Its id (random; 16 hex digits).
    pub id: AllocationId,
    /// The user its quota counts against: a REST username's user part, a static user, or an RFC
    /// 7635 token holder's identity.
    pub user: &'a str,
    /// The username the client authenticated with.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// How the client authenticated.
    pub auth: AuthKind,
    /// The client's 5-tuple.
    pub five_tuple: FiveTuple,
    /// The relayed address (as advertised), and a dual allocation's second one (RFC 8656 §7.2).
    pub relayed: [Option<SocketAddr>; 2],
    /// Whether it relays TCP (RFC 6062) rather than UDP.
    pub tcp_relay: bool,
    /// When it was made, milliseconds since the Unix epoch.
    pub started_ms: u64,
}

impl<'a> Session<'a> {
    /// The session of `allocation`; `realm` is the server's, `started_ms` its creation in Unix ms.
    pub fn of<S>(allocation: &'a Allocation<S>, realm: &'a str, started_ms: u64) -> Session<'a> {
        let info = allocation.info();
        let auth = if allocation.is_oauth() {
            AuthKind::Token
        } else if info.rest_expiry.is_some() {
            AuthKind::Rest
        } else {
            AuthKind::Static
        };
        Session {
            id: allocation.id(),
            user: allocation.quota_user(),
            username: allocation.username(),
            realm,
            auth,
            five_tuple: info.five_tuple,
            relayed: [Some(info.advertised_addr), allocation.extra.as_ref().map(|e| e.advertised_addr)],
            tcp_relay: allocation.is_tcp_relay(),
            started_ms,
        }
    }

    /// The relayed addresses that exist.
    pub fn relayed(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.relayed.iter().flatten().copied()
    }
}

/// One lifecycle event. `at_ms` is its time in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// An Allocate succeeded (RFC 8656 §7.2).
    Allocated {
        /// The new allocation.
        session: Session<'a>,
        /// Its granted lifetime, seconds.
        lifetime_secs: u32,
    },
    /// A Refresh extended it (RFC 8656 §8).
    Refreshed {
        /// The allocation.
        session: Session<'a>,
        /// The new lifetime, seconds.
        lifetime_secs: u32,
        /// When.
        at_ms: u64,
    },
    /// It ended; `usage` is what it relayed over its whole life.
    Deleted {
        /// The allocation.
        session: Session<'a>,
        /// Why it ended.
        reason: EndReason,
        /// When.
        at_ms: u64,
        /// What it relayed.
        usage: Usage,
    },
    /// A CreatePermission installed or refreshed a permission (RFC 8656 §9).
    Permission {
        /// The allocation.
        session: Session<'a>,
        /// The peer IP.
        peer: IpAddr,
    },
    /// A ChannelBind bound or refreshed a channel, and so its peer's permission (RFC 8656 §12).
    Channel {
        /// The allocation.
        session: Session<'a>,
        /// The channel number.
        number: u16,
        /// The peer.
        peer: SocketAddr,
    },
    /// The peer policy refused a peer in a CreatePermission, ChannelBind or Connect (403).
    PeerDenied {
        /// The allocation.
        session: Session<'a>,
        /// The refused peer.
        peer: IpAddr,
    },
    /// A request was refused for its credentials (RFC 8489 §9.2.4: 400, 401 or 438 after the
    /// first challenge). A first request without credentials is a challenge, not a failure, and
    /// emits nothing.
    AuthFailed {
        /// The request's 5-tuple.
        five_tuple: FiveTuple,
        /// Its USERNAME, when it had one.
        username: Option<&'a str>,
        /// Why.
        reason: Reason,
    },
    /// An RFC 6062 peer connection was bound to a client data connection (ConnectionBind, §5.4).
    TcpConnectionBound {
        /// The allocation.
        session: Session<'a>,
        /// The CONNECTION-ID.
        connection_id: u32,
        /// The peer.
        peer: SocketAddr,
    },
    /// A bound RFC 6062 connection ended (either side closed, §5.5) while its allocation lives;
    /// its bytes are in the allocation's usage too.
    TcpConnectionClosed {
        /// The allocation.
        session: Session<'a>,
        /// The CONNECTION-ID.
        connection_id: u32,
        /// The peer.
        peer: SocketAddr,
        /// When.
        at_ms: u64,
        /// Bytes client → peer over this connection.
        to_peer_bytes: u64,
        /// Bytes peer → client over this connection.
        to_client_bytes: u64,
    },
}
