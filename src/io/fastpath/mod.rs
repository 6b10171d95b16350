//! The kernel fast path for ChannelData (issue #19, cargo feature `xdp`, `fast-path = "xdp"`).
//!
//! An XDP program (`bpf/channel_relay.c`, built by `build.rs` with clang and embedded here) sits on
//! `xdp-interface` and relays the bound channels user space hands it: ChannelData from a client's
//! 5-tuple (RFC 8656 §12.4) leaves as the peer's UDP datagram from the relayed address, and the
//! peer's datagrams to the relayed address leave as ChannelData to the client (§12.5, no padding
//! over UDP). IPv4 and IPv6, one family end to end. Everything else — STUN, Send/Data indications,
//! unbound or expired channels, IPv4 options or fragments, IPv6 extension headers — goes on to
//! user space as before (XDP_PASS).
//!
//! User space keeps every decision. [`FastPath`] is an [`EventSink`] and a hook of the relay driver:
//! a ChannelBind (§12.2), CreatePermission (§9) or Refresh (§8) of an eligible allocation writes its
//! live channels into the two maps with a deadline (`expiry_ns`, the earliest of the channel's,
//! its permission's and the allocation's expiry, on CLOCK_MONOTONIC like `bpf_ktime_get_ns`), so
//! the kernel stops relaying at the same moment user space would even if nothing else happens;
//! the allocation's end or move (RFC 8016) removes its entries at once, and a sweep once a second
//! removes the expired ones. Per entry the program counts packets and application bytes in an
//! array slot; user space folds them into the allocation's counters (once a second and at its
//! end, before the core reads them), so `Deleted` usage, usage records and the
//! `switchback_relayed_*` metrics include what the kernel relayed.
//!
//! Eligible: a UDP client, a UDP relay (not RFC 6062), a single family (not a dual allocation),
//! client, server, relayed and peer addresses of one family, and no bandwidth limit on the allocation or its
//! user (`max-bps`, `user-max-bps`): a limited allocation needs user space to see every packet. The
//! daemon does not start the fast path at all with `bps-capacity`.
//!
//! When the kernel or the privileges refuse the program, [`FastPath::attach`] logs one warning and
//! the server runs on the user-space path; `switchback_fastpath_enabled` says which.

use std::collections::HashMap as StdHashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use aya::Ebpf;
use aya::maps::{Array, HashMap, MapData};
use aya::programs::{Xdp, XdpFlags};

use super::offload::{FastPathStats, Offload};
use super::relay::{RelaySocket, TurnServer};
use crate::alloc::{Allocation, AllocationId};
use crate::policy::bandwidth::Direction;
use crate::server::{Event, EventSink, Transport};
use crate::time::Millis;

mod entry;

use entry::totals;
pub use entry::{Counter, Key, Key6, Value, Value6, destination, expiry_ns};

/// The program, as `build.rs` compiled it.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/channel_relay.o"));

/// Entries of each map (`MAX_CHANNELS` in the program); counter slots are twice as many.
pub const MAX_CHANNELS: u32 = 32768;

/// How often the counters are folded into the allocations and expired entries removed.
pub const SWEEP: Duration = Duration::from_secs(1);

/// Why the program could not be attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FastPathError {
    /// Loading the object or the program into the kernel failed.
    #[error("loading the XDP program: {0}")]
    Load(#[from] aya::EbpfError),
    /// Verifying, loading or attaching the program failed.
    #[error("attaching the XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    /// A map operation failed.
    #[error("BPF map: {0}")]
    Map(#[from] aya::maps::MapError),
    /// The object lacks a program or map this code expects.
    #[error("the XDP object has no {0}")]
    Missing(&'static str),
}

/// A channel's two map keys (client → peer, peer → client), of its family's maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    V4(Key, Key),
    V6(Key6, Key6),
}

/// The addresses of an allocation's side of the fast path, all of one family and specified.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    client: SocketAddr,
    listener: SocketAddr,
    relay: SocketAddr,
}

impl Addrs {
    fn of(allocation: &Allocation<RelaySocket>) -> Option<Addrs> {
        let info = allocation.info();
        let (client, listener, relay) = (info.five_tuple.client, info.five_tuple.server, info.relay_addr);
        let v4 = client.is_ipv4();
        let usable = |a: SocketAddr| a.is_ipv4() == v4 && !a.ip().is_unspecified();
        (usable(client) && usable(listener) && usable(relay)).then_some(Addrs { client, listener, relay })
    }

    /// The keys of channel `number` to `peer`; `None` across families.
    fn keys(&self, number: u16, peer: SocketAddr) -> Option<Keys> {
        use SocketAddr::{V4, V6};
        match (self.client, self.listener, self.relay, peer) {
            (V4(c), V4(l), V4(r), V4(p)) => {
                Some(Keys::V4(entry::to_peer_key(c, l, number), entry::to_client_key(p, r)))
            }
            (V6(c), V6(l), V6(r), V6(p)) => {
                Some(Keys::V6(entry::to_peer_key6(c, l, number), entry::to_client_key6(p, r)))
            }
            _ => None,
        }
    }
}

/// One offloaded channel: its two map entries and their counter slots.
#[derive(Debug)]
struct Channel {
    number: u16,
    peer: SocketAddr,
    keys: Keys,
    /// Counter slots: client → peer, peer → client.
    slots: [u32; 2],
    /// What was already added to the allocation from each slot: packets, bytes.
    folded: [[u64; 2]; 2],
    /// The deadline written into the entries (the core's clock).
    expires: Millis,
}

#[derive(Debug)]
struct Offloaded {
    allocation: Weak<Allocation<RelaySocket>>,
    channels: Vec<Channel>,
}

struct State {
    /// Owns the program and its link: dropping it detaches the program.
    _ebpf: Ebpf,
    to_peer: HashMap<MapData, Key, Value>,
    to_client: HashMap<MapData, Key, Value>,
    to_peer6: HashMap<MapData, Key6, Value6>,
    to_client6: HashMap<MapData, Key6, Value6>,
    counters: Array<MapData, Counter>,
    free_slots: Vec<u32>,
    offloaded: StdHashMap<AllocationId, Offloaded>,
}

/// The XDP fast path of one server (see the module documentation).
pub struct FastPath {
    state: Option<Mutex<State>>,
    server: Weak<TurnServer>,
    stats: FastPathStats,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath").field("enabled", &self.state.is_some()).finish_non_exhaustive()
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`.
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(t.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
}

impl FastPath {
    /// Loads the program, attaches it to `interface` and registers with `server`'s relay driver;
    /// on failure logs one warning and returns a fast path that does nothing. Spawns the sweep on
    /// the current tokio runtime.
    pub fn attach(interface: &str, server: &Arc<TurnServer>) -> Arc<FastPath> {
        let state = match load(interface) {
            Ok(state) => {
                tracing::info!(interface, "fast path: XDP program attached; bound channels relay in the kernel");
                Some(Mutex::new(state))
            }
            Err(e) => {
                tracing::warn!(interface, error = %e, "fast path off: the XDP program could not be attached; relaying in user space");
                None
            }
        };
        let stats = FastPathStats::default();
        stats.enabled.store(state.is_some(), Relaxed);
        let fast = Arc::new(FastPath { state, server: Arc::downgrade(server), stats });
        server.driver().set_offload(fast.clone());
        if fast.state.is_some() {
            let weak = Arc::downgrade(&fast);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SWEEP);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(fast) = weak.upgrade() else { return };
                    fast.sweep();
                }
            });
        }
        fast
    }

    /// Whether the program is attached.
    pub fn is_enabled(&self) -> bool {
        self.state.is_some()
    }

    fn lock(&self) -> Option<MutexGuard<'_, State>> {
        self.state.as_ref().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The channels of `allocation` the kernel should relay now, with their deadlines: empty when
    /// the allocation is not eligible (see the module documentation).
    fn wanted(allocation: &Allocation<RelaySocket>, now: Millis) -> Vec<(u16, SocketAddr, Millis)> {
        let Some(addrs) = Addrs::of(allocation) else { return Vec::new() };
        let info = allocation.info();
        let bandwidth = allocation.bandwidth();
        let unlimited = |m: &crate::policy::bandwidth::Meter| {
            m.bucket(Direction::ToPeer).is_unlimited() && m.bucket(Direction::ToClient).is_unlimited()
        };
        let eligible = info.five_tuple.transport == Transport::Udp
            && !allocation.is_tcp_relay()
            && allocation.extra.is_none()
            && !allocation.is_deleted()
            && unlimited(bandwidth.own())
            && bandwidth.user().is_none_or(unlimited);
        if !eligible {
            return Vec::new();
        }
        let bindings = allocation.bindings();
        let mut out = Vec::new();
        for c in bindings.channels() {
            if c.peer.is_ipv4() != addrs.relay.is_ipv4() {
                continue;
            }
            let permission =
                bindings.permissions().iter().filter(|p| p.ip == c.peer.ip()).map(|p| p.expires()).max().unwrap_or(0);
            let expires = c.expires().min(permission).min(allocation.expires());
            if expires > now {
                out.push((c.number, c.peer, expires));
            }
        }
        out
    }

    /// Makes the maps hold exactly the live channels of `allocation` (called on its ChannelBind,
    /// CreatePermission and Refresh).
    pub fn sync(&self, allocation: &Arc<Allocation<RelaySocket>>) {
        let Some(server) = self.server.upgrade() else { return };
        let Some(mut state) = self.lock() else { return };
        let now = server.millis(Instant::now());
        let mono = monotonic_ns();
        let wanted = FastPath::wanted(allocation, now);
        let addrs = Addrs::of(allocation);
        let id = allocation.id();
        let mut entry = state
            .offloaded
            .remove(&id)
            .unwrap_or(Offloaded { allocation: Arc::downgrade(allocation), channels: Vec::new() });
        // Channels no longer wanted (or bound elsewhere, or of an older 5-tuple) go first.
        let (keep, gone): (Vec<Channel>, Vec<Channel>) = entry.channels.drain(..).partition(|c| {
            wanted
                .iter()
                .any(|&(n, p, _)| n == c.number && p == c.peer && addrs.and_then(|a| a.keys(n, p)) == Some(c.keys))
        });
        for c in gone {
            state.remove_channel(c, allocation, &self.stats);
        }
        entry.channels = keep;
        for (number, peer, expires) in wanted {
            let Some(keys) = addrs.and_then(|a| a.keys(number, peer)) else { continue };
            let Some(addrs) = addrs else { continue };
            let expiry_ns = mono.saturating_add(expires.saturating_sub(now).saturating_mul(1_000_000));
            let existing = entry.channels.iter().position(|c| c.number == number);
            let slots = match existing.and_then(|i| entry.channels.get(i)) {
                Some(c) => c.slots,
                None => match state.take_slots() {
                    Some(slots) => slots,
                    None => {
                        self.stats.map_errors.fetch_add(1, Relaxed);
                        continue;
                    }
                },
            };
            match (state.write(keys, &addrs, number, peer, slots, expiry_ns), existing) {
                (Ok(()), Some(i)) => {
                    if let Some(c) = entry.channels.get_mut(i) {
                        c.expires = expires;
                    }
                }
                (Ok(()), None) => {
                    entry.channels.push(Channel { number, peer, keys, slots, folded: [[0; 2]; 2], expires });
                    self.stats.channels.fetch_add(1, Relaxed);
                }
                (Err(e), existing) => {
                    tracing::debug!(error = %e, "fast path: a channel stays in user space");
                    self.stats.map_errors.fetch_add(1, Relaxed);
                    if existing.is_none() {
                        state.remove_keys(keys);
                        state.free_slots.extend(slots);
                    }
                }
            }
        }
        if !entry.channels.is_empty() {
            state.offloaded.insert(id, entry);
        }
    }

    /// Removes every entry of `allocation` and adds what the kernel relayed for it to its counters
    /// (its end, a move, a family ended). The relay driver calls this before the core reads the
    /// counters for the `Deleted` usage.
    pub fn forget(&self, allocation: &Allocation<RelaySocket>) {
        let Some(mut state) = self.lock() else { return };
        let Some(entry) = state.offloaded.remove(&allocation.id()) else { return };
        for c in entry.channels {
            state.remove_channel(c, allocation, &self.stats);
        }
    }

    /// Folds every offloaded channel's counters into its allocation and drops the expired ones.
    pub fn sweep(&self) {
        let Some(server) = self.server.upgrade() else { return };
        let Some(mut state) = self.lock() else { return };
        let now = server.millis(Instant::now());
        let ids: Vec<AllocationId> = state.offloaded.keys().copied().collect();
        for id in ids {
            let Some(mut entry) = state.offloaded.remove(&id) else { continue };
            let Some(allocation) = entry.allocation.upgrade() else {
                for c in entry.channels {
                    state.drop_channel(c, &self.stats);
                }
                continue;
            };
            let (live, expired): (Vec<Channel>, Vec<Channel>) = entry.channels.drain(..).partition(|c| c.expires > now);
            for c in expired {
                state.remove_channel(c, &allocation, &self.stats);
            }
            entry.channels = live;
            for c in &mut entry.channels {
                state.fold(c, &allocation, &self.stats);
            }
            if !entry.channels.is_empty() {
                state.offloaded.insert(id, entry);
            }
        }
    }
}

/// Loads the object, attaches `channel_relay` to `interface` and takes the maps.
fn load(interface: &str) -> Result<State, FastPathError> {
    let mut ebpf = Ebpf::load(PROGRAM)?;
    let program: &mut Xdp =
        ebpf.program_mut("channel_relay").ok_or(FastPathError::Missing("program channel_relay"))?.try_into()?;
    program.load()?;
    program.attach(interface, XdpFlags::default())?;
    let to_peer = HashMap::try_from(ebpf.take_map("to_peer").ok_or(FastPathError::Missing("map to_peer"))?)?;
    let to_client = HashMap::try_from(ebpf.take_map("to_client").ok_or(FastPathError::Missing("map to_client"))?)?;
    let to_peer6 = HashMap::try_from(ebpf.take_map("to_peer6").ok_or(FastPathError::Missing("map to_peer6"))?)?;
    let to_client6 = HashMap::try_from(ebpf.take_map("to_client6").ok_or(FastPathError::Missing("map to_client6"))?)?;
    let counters = Array::try_from(ebpf.take_map("counters").ok_or(FastPathError::Missing("map counters"))?)?;
    let free_slots = (0..2 * MAX_CHANNELS).rev().collect();
    Ok(State {
        _ebpf: ebpf,
        to_peer,
        to_client,
        to_peer6,
        to_client6,
        counters,
        free_slots,
        offloaded: StdHashMap::new(),
    })
}

impl State {
    /// Writes a channel's two entries: the peer gets the relayed address's datagrams, the client
    /// the server's ChannelData.
    fn write(
        &mut self,
        keys: Keys,
        a: &Addrs,
        number: u16,
        peer: SocketAddr,
        slots: [u32; 2],
        expiry_ns: u64,
    ) -> Result<(), aya::maps::MapError> {
        use SocketAddr::{V4, V6};
        let [up, down] = slots;
        match (keys, a.client, a.listener, a.relay, peer) {
            (Keys::V4(to_peer, to_client), V4(c), V4(l), V4(r), V4(p)) => {
                self.to_peer.insert(to_peer, entry::value(r, p, number, up, expiry_ns), 0)?;
                self.to_client.insert(to_client, entry::value(l, c, number, down, expiry_ns), 0)
            }
            (Keys::V6(to_peer, to_client), V6(c), V6(l), V6(r), V6(p)) => {
                self.to_peer6.insert(to_peer, entry::value6(r, p, number, up, expiry_ns), 0)?;
                self.to_client6.insert(to_client, entry::value6(l, c, number, down, expiry_ns), 0)
            }
            _ => Ok(()),
        }
    }

    fn remove_keys(&mut self, keys: Keys) {
        match keys {
            Keys::V4(to_peer, to_client) => {
                let _ = self.to_peer.remove(&to_peer);
                let _ = self.to_client.remove(&to_client);
            }
            Keys::V6(to_peer, to_client) => {
                let _ = self.to_peer6.remove(&to_peer);
                let _ = self.to_client6.remove(&to_client);
            }
        }
    }

    /// Two zeroed counter slots.
    fn take_slots(&mut self) -> Option<[u32; 2]> {
        let a = self.free_slots.pop()?;
        let Some(b) = self.free_slots.pop() else {
            self.free_slots.push(a);
            return None;
        };
        for slot in [a, b] {
            if self.counters.set(slot, [0u8; 16], 0).is_err() {
                self.free_slots.extend([a, b]);
                return None;
            }
        }
        Some([a, b])
    }

    /// Adds what the kernel counted since the last fold to the allocation and the totals.
    fn fold(&self, c: &mut Channel, allocation: &Allocation<RelaySocket>, stats: &FastPathStats) {
        let k = &allocation.counters;
        let targets = [
            [(&k.to_peer_packets, &stats.to_peer_packets), (&k.to_peer_bytes, &stats.to_peer_bytes)],
            [(&k.to_client_packets, &stats.to_client_packets), (&k.to_client_bytes, &stats.to_client_bytes)],
        ];
        for ((slot, folded), targets) in c.slots.iter().zip(c.folded.iter_mut()).zip(targets) {
            let Ok(counter) = self.counters.get(slot, 0) else { continue };
            for ((now, done), (on_allocation, total)) in
                totals(&counter).into_iter().zip(folded.iter_mut()).zip(targets)
            {
                let delta = now.saturating_sub(*done);
                *done = now;
                on_allocation.fetch_add(delta, Relaxed);
                total.fetch_add(delta, Relaxed);
            }
        }
    }

    /// Removes a channel's entries, then folds its counters (after the removal, so no packet the
    /// kernel relays is left out, but a program run already past its lookup) and frees the slots.
    fn remove_channel(&mut self, mut c: Channel, allocation: &Allocation<RelaySocket>, stats: &FastPathStats) {
        self.remove_keys(c.keys);
        self.fold(&mut c, allocation, stats);
        self.free_slots.extend(c.slots);
        stats.channels.fetch_sub(1, Relaxed);
    }

    /// Removes a channel's entries whose allocation is gone.
    fn drop_channel(&mut self, c: Channel, stats: &FastPathStats) {
        self.remove_keys(c.keys);
        self.free_slots.extend(c.slots);
        stats.channels.fetch_sub(1, Relaxed);
    }
}

impl EventSink for FastPath {
    fn event(&self, event: &Event<'_>) {
        let session = match event {
            Event::Channel { session, .. } | Event::Permission { session, .. } | Event::Refreshed { session, .. } => {
                session
            }
            _ => return,
        };
        if self.state.is_none() || session.five_tuple.transport != Transport::Udp {
            return;
        }
        let Some(server) = self.server.upgrade() else { return };
        if let Some(allocation) = server.allocations().get(&session.five_tuple) {
            self.sync(&allocation);
        }
    }
}

impl Offload<RelaySocket> for FastPath {
    fn forget(&self, allocation: &Allocation<RelaySocket>) {
        FastPath::forget(self, allocation);
    }

    fn sync(&self, allocation: &Arc<Allocation<RelaySocket>>) {
        FastPath::sync(self, allocation);
    }

    fn stats(&self) -> &FastPathStats {
        &self.stats
    }
}
