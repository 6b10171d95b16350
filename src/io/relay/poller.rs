//! Peer → client for every UDP relay socket: a few relay pollers (one per tokio worker thread)
//! instead of a task per socket (issue #17).
//!
//! A relay poller is one epoll set holding the relay sockets of its share of the allocations
//! (level-triggered, keyed by a token), itself watched by tokio as one file descriptor. On a wake
//! it asks the set which relay sockets are ready (`epoll_wait` without waiting, up to
//! [`EVENTS`] at once), reads each with `recvmmsg` (`peer.rs`), and sends the answers that are one
//! datagram to a UDP client together, as one `sendmmsg` per listener socket (`Outbox`). So a
//! call-like load — thousands of allocations, a datagram every 20–500 ms each — costs per relayed
//! datagram one `recvmmsg` and a share of a `sendmmsg`, not a task wake-up, a `recvmmsg` and a
//! `sendto`; and an allocation costs an entry here (~150 bytes) instead of a tokio task and a
//! tokio registration.
//!
//! The relay sockets are plain non-blocking sockets, not registered with tokio. The poller holds
//! each registered socket (so a port stays bound while an entry has it) until the allocation is
//! stopped, a family of it is stopped, or the poller finds it deleted.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use rustix::event::epoll;
use tokio::io::unix::AsyncFd;

use crate::alloc::{Allocation, FiveTuple};

use super::peer::{self, ClientLeg, PEER_BUFS};
use super::{RelaySocket, RelayUdp, TurnServer};

/// Ready relay sockets one `epoll_wait` may report.
const EVENTS: usize = 256;

/// The token of the poller's own close signal (an eventfd in the set).
const CLOSE: u64 = 0;

/// What an allocation's relay socket is registered as.
pub(super) struct Entry {
    allocation: Arc<Allocation<RelaySocket>>,
    socket: Arc<RelayUdp>,
    /// The 5-tuple the answers go to and the way there; RFC 8016 moves change both. Only the
    /// poller locks it (uncontended), once per wake of the socket.
    route: Mutex<(FiveTuple, ClientLeg)>,
}

/// One epoll set of relay sockets and the task that serves it.
pub(super) struct Poller {
    epoll: AsyncFd<OwnedFd>,
    close: OwnedFd,
    entries: Mutex<HashMap<u64, Arc<Entry>>>,
    next: AtomicU64,
}

/// Where a relay socket is registered: its poller and token (held by the [`RelaySocket`]).
pub(super) type Registration = (Weak<Poller>, u64);

impl Poller {
    /// A poller on the current tokio runtime, its task spawned; `None` (logged) when the kernel
    /// refuses an epoll set or an eventfd.
    fn spawn(server: Weak<TurnServer>) -> Option<Arc<Poller>> {
        let made = (|| -> std::io::Result<Poller> {
            let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
            let close = rustix::event::eventfd(
                0,
                rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
            )?;
            epoll::add(&fd, &close, epoll::EventData::new_u64(CLOSE), epoll::EventFlags::IN)?;
            // tokio 1.54 deprecates the safe constructors because a type's `as_raw_fd` could change
            // under tokio's registration; an `OwnedFd` owns one descriptor for its whole life,
            // which is the contract the unsafe `register_with_interest` asks for (and
            // `forbid(unsafe_code)` keeps us from calling that).
            #[allow(deprecated)]
            let epoll = AsyncFd::with_interest(fd, tokio::io::Interest::READABLE)?;
            Ok(Poller { epoll, close, entries: Mutex::new(HashMap::new()), next: AtomicU64::new(CLOSE + 1) })
        })();
        match made {
            Ok(poller) => {
                let poller = Arc::new(poller);
                tokio::spawn(run(Arc::clone(&poller), server));
                Some(poller)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot make a relay poller (epoll set)");
                None
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `socket` of `allocation` (its peer data going to `leg`); the token to remove it.
    fn add(
        &self,
        allocation: &Arc<Allocation<RelaySocket>>,
        socket: Arc<RelayUdp>,
        leg: ClientLeg,
    ) -> std::io::Result<u64> {
        let token = self.next.fetch_add(1, Relaxed);
        let five = allocation.info().five_tuple;
        // Readable, and EPOLLERR (always reported) for the ICMP error queue (RFC 8656 §11.5).
        epoll::add(self.epoll.get_ref(), &*socket, epoll::EventData::new_u64(token), epoll::EventFlags::IN)?;
        let entry = Entry { allocation: Arc::clone(allocation), socket, route: Mutex::new((five, leg)) };
        self.lock().insert(token, Arc::new(entry));
        Ok(token)
    }

    /// Forgets the socket of `token` (out of the set, and the poller's hold on it dropped).
    pub(super) fn remove(&self, token: u64) {
        let entry = {
            let mut entries = self.lock();
            let entry = entries.remove(&token);
            // After a peak (100,000 allocations, say) the table gives its memory back.
            if entries.capacity() > 1024 && entries.len() < entries.capacity() / 4 {
                let keep = entries.len() * 2;
                entries.shrink_to(keep);
            }
            entry
        };
        if let Some(entry) = entry {
            let _ = epoll::delete(self.epoll.get_ref(), &*entry.socket);
        }
    }

    /// How many relay sockets it holds.
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The pollers of a relay driver, made on the first allocation (one per tokio worker thread);
/// dropping them ends their tasks.
#[derive(Default)]
pub(super) struct Pollers {
    pollers: Mutex<Vec<Arc<Poller>>>,
    next: AtomicU64,
}

impl std::fmt::Debug for Pollers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pollers = self.pollers.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Pollers").field("sockets", &pollers.iter().map(|p| p.len()).collect::<Vec<_>>()).finish()
    }
}

impl Pollers {
    /// Registers the UDP relay socket `socket` of `allocation` with a poller (round robin) and
    /// records where in `socket`. False when it could not be (no poller, or epoll refused it): its
    /// peers' datagrams then do not reach the client.
    pub(super) fn register(
        &self,
        server: &Arc<TurnServer>,
        allocation: &Arc<Allocation<RelaySocket>>,
        socket: &RelaySocket,
        udp: Arc<RelayUdp>,
        leg: ClientLeg,
    ) -> bool {
        let Some(poller) = self.pick(server) else { return false };
        match poller.add(allocation, udp, leg) {
            Ok(token) => {
                let _ = socket.poll.set((Arc::downgrade(&poller), token));
                // Deleted meanwhile (its `stop` found no registration yet): let go of it now.
                if allocation.is_deleted() {
                    poller.remove(token);
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot add a relay socket to its poller");
                false
            }
        }
    }

    fn pick(&self, server: &Arc<TurnServer>) -> Option<Arc<Poller>> {
        let mut pollers = self.pollers.lock().unwrap_or_else(|e| e.into_inner());
        if pollers.is_empty() {
            // Outside a runtime there is nothing to serve a poller (and tokio would panic).
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                tracing::error!("an allocation started outside a tokio runtime: no relay poller");
                return None;
            };
            let workers = runtime.metrics().num_workers().max(1);
            pollers.extend((0..workers).filter_map(|_| Poller::spawn(Arc::downgrade(server))));
        }
        let n = pollers.len() as u64;
        if n == 0 {
            return None;
        }
        let i = self.next.fetch_add(1, Relaxed) % n;
        pollers.get(i as usize).cloned()
    }
}

impl Drop for Pollers {
    fn drop(&mut self) {
        let pollers = self.pollers.get_mut().unwrap_or_else(|e| e.into_inner());
        for poller in pollers.iter() {
            let _ = rustix::io::write(&poller.close, &1u64.to_ne_bytes());
        }
    }
}

/// Removes `socket`'s registration, if it has one.
pub(super) fn unregister(socket: &RelaySocket) {
    if let Some((poller, token)) = socket.poll.get()
        && let Some(poller) = poller.upgrade()
    {
        poller.remove(*token);
    }
}

/// The poller's task: on each wake of the set, serves the ready sockets until none is left, then
/// waits again. Ends when the driver drops its pollers or the server is gone.
async fn run(poller: Arc<Poller>, server: Weak<TurnServer>) {
    let mut ready: Vec<(Arc<Entry>, epoll::EventFlags)> = Vec::with_capacity(EVENTS);
    loop {
        let Ok(mut guard) = poller.epoll.readable().await else { return };
        loop {
            let more = match poller.ready(&mut ready) {
                Ready::Closed => return,
                Ready::Failed => {
                    guard.clear_ready();
                    break;
                }
                Ready::Some { more } => more,
            };
            let Some(server) = server.upgrade() else { return };
            let drained = serve(&server, &ready);
            ready.clear();
            drop(server);
            if more || !drained {
                // Level-triggered: what is left is reported again; others get the thread first.
                tokio::task::yield_now().await;
                continue;
            }
            // Everything read: tokio clears the readiness it saw; a datagram that came since
            // raised a new one.
            guard.clear_ready();
            break;
        }
    }
}

/// What one look at the epoll set found.
enum Ready {
    /// The driver dropped its pollers.
    Closed,
    /// `epoll_wait` failed (wait for the next readiness).
    Failed,
    /// The ready sockets are in the list; `more`: the set may hold more than one call returns.
    Some { more: bool },
}

thread_local! {
    /// The events of one `epoll_wait` (a raw-pointer union inside, so it cannot live in the
    /// task across an await: one buffer per thread).
    static EVENT_BUF: std::cell::RefCell<Vec<epoll::Event>> = std::cell::RefCell::new(Vec::with_capacity(EVENTS));
}

impl Poller {
    /// Asks the set, without waiting, which sockets are ready, and puts their entries in `ready`.
    fn ready(&self, ready: &mut Vec<(Arc<Entry>, epoll::EventFlags)>) -> Ready {
        let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
        EVENT_BUF
            .try_with(|cell| {
                let Ok(mut events) = cell.try_borrow_mut() else { return Ready::Failed };
                events.clear();
                if epoll::wait(self.epoll.get_ref(), rustix::buffer::spare_capacity(&mut *events), Some(&zero)).is_err()
                {
                    return Ready::Failed;
                }
                let entries = self.lock();
                for event in events.iter() {
                    let (token, flags) = (event.data.u64(), event.flags);
                    if token == CLOSE {
                        return Ready::Closed;
                    }
                    if let Some(entry) = entries.get(&token) {
                        ready.push((Arc::clone(entry), flags));
                    }
                }
                Ready::Some { more: events.len() >= EVENTS }
            })
            .unwrap_or(Ready::Failed)
    }
}

/// Serves the ready sockets through this thread's buffers; true when every one was drained.
fn serve(server: &TurnServer, ready: &[(Arc<Entry>, epoll::EventFlags)]) -> bool {
    PEER_BUFS
        .try_with(|cell| {
            let Ok(mut bufs) = cell.try_borrow_mut() else { return true };
            let mut drained = true;
            for (entry, flags) in ready {
                drained &= serve_one(server, entry, *flags, &mut bufs);
            }
            bufs.out.flush(server);
            drained
        })
        .unwrap_or(true)
}

/// One ready relay socket: follows a move (RFC 8016), relays ICMP errors (RFC 8656 §11.5) and
/// peers' datagrams; true when its queue is empty.
fn serve_one(server: &TurnServer, entry: &Entry, flags: epoll::EventFlags, bufs: &mut peer::PeerBufs) -> bool {
    let allocation = &entry.allocation;
    if allocation.is_deleted() {
        allocation.sockets().for_each(unregister);
        return true;
    }
    let mut route = entry.route.lock().unwrap_or_else(|e| e.into_inner());
    // RFC 8016: a mobility Refresh may have moved the allocation to a new 5-tuple: read it once
    // per wake (not per datagram) and follow it.
    let now = allocation.info().five_tuple;
    if now != route.0 {
        match server.driver().client_leg(&now) {
            Some(leg) => *route = (now, leg),
            // The client's connection is gone (its allocation goes with it).
            None => {
                drop(route);
                allocation.sockets().for_each(unregister);
                return true;
            }
        }
    }
    let (five, leg) = &*route;
    let mut drained = true;
    if flags.contains(epoll::EventFlags::ERR) {
        drained = peer::relay_icmp(server, allocation, &entry.socket, leg, five.client);
        // A pending socket error without a queue entry would keep EPOLLERR up.
        let _ = entry.socket.take_error();
    }
    if flags.intersects(epoll::EventFlags::IN | epoll::EventFlags::ERR) {
        drained &= peer::relay_burst(server, allocation, &entry.socket, leg, five.client, bufs);
    }
    drained
}
