//! The relay driver's side of a kernel fast path (issue #19; the XDP one is `io/fastpath/`, feature
//! `xdp`): what the driver tells it about allocations, and the counters `/metrics` shows. Apart
//! from the fast path so the driver names no XDP type.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use crate::alloc::Allocation;

/// A fast path that relays some of an allocation's traffic outside user space; `S` is the relay
/// driver's socket type.
pub trait Offload<S>: Send + Sync + std::fmt::Debug + 'static {
    /// The allocation ended, moved (RFC 8016) or lost a family: drop its kernel state at once and
    /// add what was relayed for it to its counters (the core reads them right after).
    fn forget(&self, allocation: &Allocation<S>);
    /// The allocation's channels or permissions changed, or it moved: offload what is eligible now.
    fn sync(&self, allocation: &Arc<Allocation<S>>);
    /// Its counters.
    fn stats(&self) -> &FastPathStats;
}

/// A fast path's counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct FastPathStats {
    /// Whether the program is attached.
    pub enabled: AtomicBool,
    /// Channels offloaded now.
    pub channels: AtomicU64,
    /// Packets relayed in the kernel client → peer (as folded so far, once a second).
    pub to_peer_packets: AtomicU64,
    /// Bytes client → peer.
    pub to_peer_bytes: AtomicU64,
    /// Packets peer → client.
    pub to_client_packets: AtomicU64,
    /// Bytes peer → client.
    pub to_client_bytes: AtomicU64,
    /// Channels the kernel's maps could not take (full): they stay on the user-space path.
    pub map_errors: AtomicU64,
}
