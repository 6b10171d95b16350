//! Test support shared by the crate's users of the sans-IO core — the integration tests
//! (`tests/support/` re-exports it), the benchmarks and the examples: a relay driver that binds
//! nothing, and requests signed by hand. Not part of the public API (hidden from the docs, like
//! [`fuzzing`](crate::fuzzing)); it may change with any release.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::alloc::{Allocation, FiveTuple};
use crate::proto::stun::{
    Class, IntegrityKey, MessageType, MessageWriter, Method, Nonce, Realm, TransactionId, Username, long_term_key_md5,
};
use crate::server::{BindOptions, Ecn, RelayDriver};

/// Datagrams handed to the driver: peer and bytes.
pub type Sent = Vec<(SocketAddr, Vec<u8>)>;

/// A relay driver that binds nothing (the relayed "socket" is the address asked for) and counts the
/// bytes sent to peers. Made with [`FakeRelay::recording`] it also records what the core asks —
/// binds, starts, stops, datagrams, RFC 6062 connections — and can be told to fail binds; made
/// with [`FakeRelay::counting`] it records nothing and so allocates nothing, for the
/// zero-allocation tests. Clones share their state.
#[derive(Clone, Default)]
pub struct FakeRelay(Arc<FakeRelayState>);

/// The state of a [`FakeRelay`] (what it recorded, and its failure knobs).
#[derive(Default)]
pub struct FakeRelayState {
    record: bool,
    bytes: AtomicU64,
    /// Ports whose bind fails with `AddrInUse`.
    pub busy_ports: Mutex<Vec<u16>>,
    /// Every bind fails with `AddrInUse`.
    pub all_busy: Mutex<bool>,
    /// Relay IPs whose every port fails to bind (an address that is gone).
    pub busy_ips: Mutex<Vec<IpAddr>>,
    /// Relay sockets bound.
    pub bound: Mutex<Vec<SocketAddr>>,
    /// Relay sockets started (allocations made).
    pub started: Mutex<Vec<SocketAddr>>,
    /// Relay sockets stopped.
    pub stopped: Mutex<Vec<SocketAddr>>,
    /// Datagrams to peers: relay socket, peer, bytes.
    pub sent: Mutex<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>,
    /// The ECN codepoint of each datagram to peers that had one (RFC 8656 §14), in order.
    pub sent_ecn: Mutex<Vec<Ecn>>,
    /// RFC 6062 connections asked for: CONNECTION-ID, peer.
    pub connects: Mutex<Vec<(u32, SocketAddr)>>,
    /// RFC 6062 connections bound: CONNECTION-ID, data connection.
    pub bound_connections: Mutex<Vec<(u32, FiveTuple)>>,
    /// RFC 6062 connections closed.
    pub closed_connections: Mutex<Vec<u32>>,
}

impl std::ops::Deref for FakeRelay {
    type Target = FakeRelayState;

    fn deref(&self) -> &FakeRelayState {
        &self.0
    }
}

/// A lock that a panicking test thread left poisoned is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeRelay {
    /// Counts bytes only.
    pub fn counting() -> FakeRelay {
        FakeRelay::default()
    }

    /// Counts bytes and records everything.
    pub fn recording() -> FakeRelay {
        FakeRelay(Arc::new(FakeRelayState { record: true, ..FakeRelayState::default() }))
    }

    /// Bytes sent to peers so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// The datagrams sent to peers so far, peer and bytes (a [`FakeRelay::recording`] driver).
    pub fn sent(&self) -> Sent {
        lock(&self.sent).iter().map(|(_, peer, data)| (*peer, data.clone())).collect()
    }
}

impl RelayDriver for FakeRelay {
    type Socket = SocketAddr;

    fn bind(&self, addr: SocketAddr, _: BindOptions) -> std::io::Result<SocketAddr> {
        if *lock(&self.all_busy) || lock(&self.busy_ports).contains(&addr.port()) {
            return Err(std::io::Error::from(std::io::ErrorKind::AddrInUse));
        }
        if lock(&self.busy_ips).contains(&addr.ip()) {
            return Err(std::io::Error::from(std::io::ErrorKind::AddrNotAvailable));
        }
        if self.record {
            lock(&self.bound).push(addr);
        }
        Ok(addr)
    }

    fn start(&self, a: &Arc<Allocation<SocketAddr>>) {
        if self.record {
            lock(&self.started).extend(a.sockets().copied());
        }
    }

    fn stop(&self, a: &Allocation<SocketAddr>) {
        if self.record {
            lock(&self.stopped).extend(a.sockets().copied());
        }
    }

    fn stop_relay(&self, _: &Allocation<SocketAddr>, socket: &SocketAddr) {
        if self.record {
            lock(&self.stopped).push(*socket);
        }
    }

    fn send_to_peer(&self, socket: &SocketAddr, peer: SocketAddr, data: &[u8]) -> bool {
        self.bytes.fetch_add(data.len() as u64, Relaxed);
        if self.record {
            lock(&self.sent).push((*socket, peer, data.to_vec()));
        }
        true
    }

    fn send_to_peer_ecn(&self, socket: &SocketAddr, peer: SocketAddr, data: &[u8], ecn: Ecn) -> bool {
        if self.record {
            lock(&self.sent_ecn).push(ecn);
        }
        self.send_to_peer(socket, peer, data)
    }

    fn connect(&self, _: &Arc<Allocation<SocketAddr>>, connection_id: u32, peer: SocketAddr) {
        lock(&self.connects).push((connection_id, peer));
    }

    fn connection_bound(&self, _: &Arc<Allocation<SocketAddr>>, connection_id: u32, data: FiveTuple) {
        lock(&self.bound_connections).push((connection_id, data));
    }

    fn close_connection(&self, connection_id: u32) {
        lock(&self.closed_connections).push(connection_id);
    }
}

/// What signs a request: USERNAME, REALM and NONCE attributes and the MESSAGE-INTEGRITY key.
pub struct Signer<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub key: IntegrityKey,
}

impl<'a> Signer<'a> {
    /// The long-term key of `username` / `password` in `realm` (MD5, RFC 8489 §9.2.2).
    pub fn password(username: &'a str, realm: &'a str, password: &str, nonce: &'a str) -> Signer<'a> {
        Signer { username, realm, nonce, key: IntegrityKey::new(&long_term_key_md5(username, realm, password)) }
    }
}

/// A request of `method` with transaction ID `[tid; 12]`, the attributes `body` adds, and signed by
/// `signer` when given (no FINGERPRINT).
pub fn signed(
    method: Method,
    tid: u8,
    signer: Option<&Signer<'_>>,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    signed_with(method, TransactionId([tid; 12]), signer, false, body)
}

/// [`signed`] with a whole transaction ID, and FINGERPRINT last when `fingerprint`.
pub fn signed_with(
    method: Method,
    tid: TransactionId,
    signer: Option<&Signer<'_>>,
    fingerprint: bool,
    body: impl FnOnce(&mut MessageWriter<'_>),
) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let ty = MessageType::new(method, Class::Request);
    let mut w = MessageWriter::new(&mut buf, ty, tid).expect("a request fits");
    body(&mut w);
    if let Some(s) = signer {
        w.add(&Username(s.username)).expect("fits");
        w.add(&Realm(s.realm)).expect("fits");
        w.add(&Nonce(s.nonce)).expect("fits");
        w.add_message_integrity(&s.key).expect("fits");
    }
    if fingerprint {
        w.add_fingerprint().expect("fits");
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}
