//! The fake relay driver: binds nothing and sends nothing, records what the core asks, and fails
//! on request.

use std::io::{Error, ErrorKind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{MAX_PORT, MIN_PORT};
use crate::alloc::Allocation;
use crate::server::{BindOptions, RelayDriver};

/// What happened to one relay socket.
#[derive(Debug, Default)]
pub(super) struct SocketFlags {
    pub(super) started: AtomicBool,
    pub(super) stops: AtomicU32,
    pub(super) dropped: AtomicBool,
}

impl SocketFlags {
    /// Bound and neither stopped nor closed: it holds its port.
    pub(super) fn live(&self) -> bool {
        self.stops.load(SeqCst) == 0 && !self.dropped.load(SeqCst)
    }
}

/// A relay socket of the fake driver; dropping it is closing it.
#[derive(Debug)]
pub(super) struct FakeSocket {
    pub(super) id: usize,
    pub(super) addr: SocketAddr,
    pub(super) flags: Arc<SocketFlags>,
}

impl Drop for FakeSocket {
    fn drop(&mut self) {
        self.flags.dropped.store(true, SeqCst);
    }
}

/// One datagram the core handed to the driver for a peer.
#[derive(Debug)]
pub(super) struct Sent {
    pub(super) socket: usize,
    pub(super) peer: SocketAddr,
    pub(super) data: Vec<u8>,
}

#[derive(Debug, Default)]
pub(super) struct DriverState {
    pub(super) sockets: Vec<(SocketAddr, Arc<SocketFlags>)>,
    /// Ports of the range that another process holds (bit `port - MIN_PORT`).
    pub(super) busy: u8,
    /// The next this many binds fail; `bind_error` says how.
    pub(super) fail_binds: u8,
    pub(super) bind_error: u8,
    pub(super) fail_sends: bool,
    pub(super) sent: Vec<Sent>,
    /// RFC 6062 connections the core asked for: (CONNECTION-ID, peer).
    pub(super) connects: Vec<(u32, SocketAddr)>,
}

/// Binds nothing and sends nothing: records what the core asks, refuses a port that a live socket
/// holds the way the OS would, and fails on request.
#[derive(Clone, Debug, Default)]
pub(super) struct FakeDriver(Arc<Mutex<DriverState>>);

impl FakeDriver {
    pub(super) fn state(&self) -> MutexGuard<'_, DriverState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl RelayDriver for FakeDriver {
    type Socket = FakeSocket;

    fn bind(&self, addr: SocketAddr, _: BindOptions) -> std::io::Result<FakeSocket> {
        let mut s = self.state();
        assert!((MIN_PORT..=MAX_PORT).contains(&addr.port()), "bind outside the relay range: {addr}");
        if s.fail_binds > 0 {
            s.fail_binds -= 1;
            return Err(Error::from(match s.bind_error {
                0 => ErrorKind::Other,
                1 => ErrorKind::PermissionDenied,
                2 => ErrorKind::AddrNotAvailable,
                _ => ErrorKind::AddrInUse,
            }));
        }
        if s.busy & (1 << (addr.port() - MIN_PORT)) != 0 || s.sockets.iter().any(|(a, f)| *a == addr && f.live()) {
            return Err(Error::from(ErrorKind::AddrInUse));
        }
        let flags = Arc::new(SocketFlags::default());
        s.sockets.push((addr, Arc::clone(&flags)));
        Ok(FakeSocket { id: s.sockets.len() - 1, addr, flags })
    }

    fn start(&self, a: &Arc<Allocation<FakeSocket>>) {
        let f = &a.socket.flags;
        assert!(!f.started.swap(true, SeqCst), "relay socket {} started twice", a.socket.addr);
        assert!(f.live(), "start of a stopped or closed relay socket {}", a.socket.addr);
        assert_eq!(a.info().relay_addr, a.socket.addr, "the allocation's relay address is its socket's");
    }

    fn stop(&self, a: &Allocation<FakeSocket>) {
        a.socket.flags.stops.fetch_add(1, SeqCst);
    }

    fn connect(&self, _: &Arc<Allocation<FakeSocket>>, connection_id: u32, peer: SocketAddr) {
        self.state().connects.push((connection_id, peer));
    }

    fn send_to_peer(&self, socket: &FakeSocket, peer: SocketAddr, data: &[u8]) -> bool {
        let mut s = self.state();
        s.sent.push(Sent { socket: socket.id, peer, data: data.to_vec() });
        !s.fail_sends
    }
}
