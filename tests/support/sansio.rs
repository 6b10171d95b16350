//! A relay driver for the sans-IO server that binds nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use switchback::alloc::Allocation;
use switchback::server::{BindOptions, RelayDriver};

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
        self.sent.as_ref().expect("a recording FakeRelay").lock().unwrap().clone()
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
            sent.lock().unwrap().push((peer, data.to_vec()));
        }
        true
    }
}
