//! Test support shared by the crate's users of the sans-IO core — the integration tests
//! (`tests/support/` re-exports it), the benchmarks and the examples: a relay driver that binds
//! nothing, and requests signed by hand. Not part of the public API (hidden from the docs, like
//! [`fuzzing`](crate::fuzzing)); it may change with any release.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::alloc::Allocation;
use crate::proto::stun::{
    Class, IntegrityKey, MessageType, MessageWriter, Method, Nonce, Realm, TransactionId, Username, long_term_key_md5,
};
use crate::server::{BindOptions, RelayDriver};

/// Datagrams handed to the driver: peer and bytes.
pub type Sent = Vec<(SocketAddr, Vec<u8>)>;

/// A relay driver that binds nothing (the relayed "socket" is the address asked for) and counts the
/// bytes sent to peers; made with [`FakeRelay::recording`] it also keeps every datagram. Counting
/// alone allocates nothing, for the zero-allocation tests.
#[derive(Clone, Default)]
pub struct FakeRelay {
    bytes: Arc<AtomicU64>,
    sent: Option<Arc<Mutex<Sent>>>,
}

impl FakeRelay {
    /// Counts bytes only.
    pub fn counting() -> FakeRelay {
        FakeRelay::default()
    }

    /// Counts bytes and keeps each datagram.
    pub fn recording() -> FakeRelay {
        FakeRelay { sent: Some(Arc::default()), ..FakeRelay::default() }
    }

    /// Bytes sent to peers so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// The datagrams sent to peers so far (a [`FakeRelay::recording`] driver).
    pub fn sent(&self) -> Sent {
        self.sent.as_ref().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone()).unwrap_or_default()
    }
}

impl RelayDriver for FakeRelay {
    type Socket = SocketAddr;
    fn bind(&self, addr: SocketAddr, _: BindOptions) -> std::io::Result<SocketAddr> {
        Ok(addr)
    }
    fn start(&self, _: &Arc<Allocation<SocketAddr>>) {}
    fn stop(&self, _: &Allocation<SocketAddr>) {}
    fn send_to_peer(&self, _: &SocketAddr, peer: SocketAddr, data: &[u8]) -> bool {
        self.bytes.fetch_add(data.len() as u64, Relaxed);
        if let Some(sent) = &self.sent {
            sent.lock().unwrap_or_else(|e| e.into_inner()).push((peer, data.to_vec()));
        }
        true
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
    let mut buf = vec![0u8; 1500];
    let ty = MessageType::new(method, Class::Request);
    let mut w = MessageWriter::new(&mut buf, ty, TransactionId([tid; 12])).expect("a request fits");
    body(&mut w);
    if let Some(s) = signer {
        w.add(&Username(s.username)).unwrap();
        w.add(&Realm(s.realm)).unwrap();
        w.add(&Nonce(s.nonce)).unwrap();
        w.add_message_integrity(&s.key).unwrap();
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}
