//! What the sans-IO core asks of its driver: relay sockets (RFC 8656 §7.2 "relayed transport
//! address"). The core decides *which* address and *when*; the driver binds, reads and writes.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::alloc::{Allocation, FiveTuple};

/// Options for a relay socket. `#[non_exhaustive]`: outside the crate, start from `default()`
/// and use [`BindOptions::with`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindOptions {
    /// DONT-FRAGMENT was requested (RFC 8656 §18.9): set the DF bit on packets to peers.
    pub dont_fragment: bool,
    /// An RFC 6062 TCP relay: a listening TCP socket at `addr`, from which the driver also opens
    /// connections to peers (so it must let those share the address).
    pub tcp: bool,
}

impl BindOptions {
    /// These options after `set` has changed them (a struct literal cannot be used outside the
    /// crate).
    #[must_use]
    pub fn with(mut self, set: impl FnOnce(&mut Self)) -> Self {
        set(&mut self);
        self
    }
}

/// The ECN codepoint of a datagram's IP header (RFC 3168 §5), which the relay copies from one leg
/// to the other (RFC 8656 §14, preferred behaviour). Over TCP and TLS there is none: `NotEct`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Ecn {
    /// Not ECN-capable transport (0b00).
    #[default]
    NotEct = 0b00,
    /// ECN-capable transport, ECT(1) (0b01; L4S).
    Ect1 = 0b01,
    /// ECN-capable transport, ECT(0) (0b10).
    Ect0 = 0b10,
    /// Congestion experienced (0b11).
    Ce = 0b11,
}

impl Ecn {
    /// The codepoint of the two low bits of a TOS / Traffic Class byte.
    #[inline]
    pub fn from_bits(bits: u8) -> Ecn {
        match bits & 0b11 {
            0b01 => Ecn::Ect1,
            0b10 => Ecn::Ect0,
            0b11 => Ecn::Ce,
            _ => Ecn::NotEct,
        }
    }
}

/// The driver side of relaying. All methods are synchronous and must not block: `bind` is a
/// `bind(2)`, `send_to_peer` a non-blocking `sendto(2)` that reports a full socket as `false`.
pub trait RelayDriver: Send + Sync + 'static {
    /// The driver's relay socket, stored in the allocation.
    type Socket: Send + Sync + 'static;

    /// Binds a relay socket at exactly `addr`. `ErrorKind::AddrInUse` makes the core try another
    /// port; other errors end the attempt with 508.
    fn bind(&self, addr: SocketAddr, options: BindOptions) -> std::io::Result<Self::Socket>;

    /// A new allocation exists: start relaying what its socket receives from peers (through
    /// [`super::Server::relay_from_peer`]).
    fn start(&self, allocation: &Arc<Allocation<Self::Socket>>);

    /// The allocation was deleted or expired: stop relaying for it and close its socket.
    fn stop(&self, allocation: &Allocation<Self::Socket>);

    /// A dual allocation lost one of its two relayed addresses (RFC 8656 §8: a Refresh with
    /// LIFETIME 0 and REQUESTED-ADDRESS-FAMILY, or that family's own lifetime ran out while the
    /// other's did not): stop reading `socket`. Called once per relayed address. The allocation
    /// keeps the socket (it owns it) until [`RelayDriver::stop`], so its port stays bound until the
    /// allocation ends: the core sends nothing through it any more and drops what it would relay
    /// from it. The default does nothing.
    fn stop_relay(&self, _allocation: &Allocation<Self::Socket>, _socket: &Self::Socket) {}

    /// Sets (or clears) DF on the datagrams `socket` sends to peers (RFC 8656 §18.9). The core asks
    /// it of a socket an EVEN-PORT reservation bound (§7.2, without DF) when the Allocate taking it
    /// with RESERVATION-TOKEN carries DONT-FRAGMENT. The default does nothing.
    fn set_dont_fragment(&self, _socket: &Self::Socket, _on: bool) -> std::io::Result<()> {
        Ok(())
    }

    /// RFC 8016 §3.2: a mobility Refresh moved `allocation` to a new 5-tuple (its
    /// [`info`](Allocation::info) has it already): from now on relay to the new client. The default
    /// stops every relay socket's loop and starts them again for the new 5-tuple; a driver whose
    /// loops read the 5-tuple per packet can override it with nothing.
    fn moved(&self, allocation: &std::sync::Arc<Allocation<Self::Socket>>) {
        for socket in allocation.sockets() {
            self.stop_relay(allocation, socket);
        }
        self.start(allocation);
    }

    /// Sends `data` from the relay socket to `peer`. Returns false when the datagram was dropped
    /// (full socket buffer or error); the core counts it.
    fn send_to_peer(&self, socket: &Self::Socket, peer: SocketAddr, data: &[u8]) -> bool;

    /// [`RelayDriver::send_to_peer`] for a client datagram that arrived with the ECN codepoint
    /// `ecn` (ECT(0), ECT(1) or CE; never `NotEct`, which takes `send_to_peer`): the datagram to
    /// the peer carries it too (RFC 8656 §14, preferred behaviour). The default drops the
    /// codepoint (§14's alternate behaviour, Not-ECT).
    fn send_to_peer_ecn(&self, socket: &Self::Socket, peer: SocketAddr, data: &[u8], _ecn: Ecn) -> bool {
        self.send_to_peer(socket, peer, data)
    }

    /// RFC 6062 §5.2: open a TCP connection from the TCP allocation's relayed address to `peer`,
    /// giving up after 30 s, and report the result with [`super::Server::connect_completed`]
    /// (which writes the Connect answer for the client's control connection). The default does
    /// nothing: the core drops the attempt at its deadline.
    fn connect(&self, _allocation: &Arc<Allocation<Self::Socket>>, _connection_id: u32, _peer: SocketAddr) {}

    /// RFC 6062 §5.4: the peer connection `connection_id` of `allocation` was bound to the client
    /// data connection `data`, whose answer is being written: from then on the two exchange raw
    /// bytes, until either closes or the allocation is deleted.
    fn connection_bound(&self, _allocation: &Arc<Allocation<Self::Socket>>, _connection_id: u32, _data: FiveTuple) {}

    /// Closes the peer connection `connection_id` (not bound within 30 s, or its allocation is
    /// gone).
    fn close_connection(&self, _connection_id: u32) {}
}

/// A driver for a STUN-only server: no relay sockets; every Allocate gets 508.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRelay;

impl RelayDriver for NoRelay {
    type Socket = ();

    fn bind(&self, _: SocketAddr, _: BindOptions) -> std::io::Result<()> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "relaying disabled"))
    }

    fn start(&self, _: &Arc<Allocation<()>>) {}

    fn stop(&self, _: &Allocation<()>) {}

    fn send_to_peer(&self, _: &(), _: SocketAddr, _: &[u8]) -> bool {
        false
    }
}
