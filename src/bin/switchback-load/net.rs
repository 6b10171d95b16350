//! Batched UDP for the load tool and the bare forwarder: `recvmmsg` (with GRO) through quinn-udp,
//! `sendmmsg` through rustix, readiness through epoll. Sockets bind to 127.0.0.2 and up so they
//! never take a port of the server's relay range on 127.0.0.1.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};

use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use rustix::event::epoll;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};

/// Datagrams per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 32;
/// Buffer per received datagram (GRO may coalesce several of one size into one).
const SLOT: usize = 64 * 1024;

/// A nonblocking UDP socket with 4 MiB buffers (the kernel caps at `net.core.*mem_max`).
pub fn udp(bind: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(bind), socket2::Type::DGRAM, None)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

/// A receive batch: `BATCH` buffers and their metadata, reused.
pub struct Batch {
    bufs: Vec<Vec<u8>>,
    meta: Vec<RecvMeta>,
}

impl Batch {
    pub fn new() -> Self {
        Batch { bufs: (0..BATCH).map(|_| vec![0u8; SLOT]).collect(), meta: vec![RecvMeta::default(); BATCH] }
    }

    /// One `recvmmsg`; calls `f(source, datagram)` for each datagram (GRO segments split).
    /// Returns how many datagrams, 0 when nothing was waiting.
    pub fn recv(&mut self, state: &UdpSocketState, socket: &UdpSocket, mut f: impl FnMut(SocketAddr, &[u8])) -> usize {
        let n = {
            let mut slices: Vec<IoSliceMut<'_>> = self.bufs.iter_mut().map(|b| IoSliceMut::new(b)).collect();
            match state.recv(UdpSockRef::from(socket), &mut slices, &mut self.meta) {
                Ok(n) => n,
                Err(_) => return 0,
            }
        };
        let mut count = 0;
        for (meta, buf) in self.meta.iter().zip(&self.bufs).take(n) {
            let Some(data) = buf.get(..meta.len) else { continue };
            let stride = meta.stride.max(1);
            for segment in data.chunks(stride) {
                f(meta.addr, segment);
                count += 1;
            }
        }
        count
    }
}

/// quinn-udp's per-socket state (GRO on).
pub fn state(socket: &UdpSocket) -> std::io::Result<UdpSocketState> {
    UdpSocketState::new(UdpSockRef::from(socket))
}

/// Datagrams queued for one `sendmmsg`: `(destination, bytes)`, the bytes in one arena.
#[derive(Default)]
pub struct SendQueue {
    arena: Vec<u8>,
    items: Vec<(Option<SocketAddrAny>, usize, usize)>,
}

impl SendQueue {
    pub fn push(&mut self, to: Option<SocketAddr>, data: &[u8]) {
        let start = self.arena.len();
        self.arena.extend_from_slice(data);
        self.items.push((to.map(SocketAddrAny::from), start, data.len()));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Sends everything queued in `sendmmsg` batches; returns how many the kernel took (a full
    /// socket drops the rest, as the lost count will show).
    pub fn flush(&mut self, socket: &UdpSocket) -> usize {
        let mut sent = 0;
        for chunk in self.items.chunks(BATCH) {
            let iovs: Vec<[std::io::IoSlice<'_>; 1]> = chunk
                .iter()
                .map(|(_, start, len)| [std::io::IoSlice::new(self.arena.get(*start..start + len).unwrap_or_default())])
                .collect();
            let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> =
                chunk.iter().map(|_| SendAncillaryBuffer::default()).collect();
            let mut msgs: Vec<MMsgHdr<'_>> = chunk
                .iter()
                .zip(&iovs)
                .zip(controls.iter_mut())
                .map(|(((to, _, _), iov), control)| match to {
                    Some(addr) => MMsgHdr::new_with_addr(addr, iov, control),
                    None => MMsgHdr::new(iov, control),
                })
                .collect();
            let mut done = 0;
            while done < msgs.len() {
                match rustix::net::sendmmsg(
                    socket.as_fd(),
                    msgs.get_mut(done..).unwrap_or_default(),
                    SendFlags::DONTWAIT,
                ) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => done += k,
                }
            }
            sent += done;
        }
        self.arena.clear();
        self.items.clear();
        sent
    }
}

/// An epoll set of sockets, each registered with its index as the key (level-triggered).
pub struct Poller {
    fd: OwnedFd,
    events: Vec<epoll::Event>,
}

impl Poller {
    pub fn new<'a>(sockets: impl IntoIterator<Item = std::os::fd::BorrowedFd<'a>>) -> std::io::Result<Self> {
        let fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        for (i, s) in sockets.into_iter().enumerate() {
            epoll::add(&fd, s, epoll::EventData::new_u64(i as u64), epoll::EventFlags::IN)?;
        }
        Ok(Poller { fd, events: Vec::with_capacity(1024) })
    }

    /// Waits up to `timeout_ms` and calls `f(index)` for each readable socket.
    pub fn wait(&mut self, timeout_ms: i32, mut f: impl FnMut(usize)) {
        self.events.clear();
        let timeout = rustix::event::Timespec {
            tv_sec: i64::from(timeout_ms / 1000),
            tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
        };
        if epoll::wait(&self.fd, rustix::buffer::spare_capacity(&mut self.events), Some(&timeout)).is_err() {
            return;
        }
        for e in &self.events {
            let data = e.data;
            f(data.u64() as usize);
        }
    }
}
