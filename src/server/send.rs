//! Client → peer data: Send indications (RFC 8656 §11.2) and ChannelData (§12.5). The data path:
//! one lock-free table lookup, a snapshot read, a non-blocking send; nothing allocated, nothing
//! copied, no `Arc` cloned.

use std::net::SocketAddr;
use std::time::Instant;

use super::{DropReason, Ecn, Outcome, Received, RelayDriver, Server};
use crate::alloc::{Allocation, Millis};
use crate::policy::bandwidth::Direction;
use crate::proto::channel_data::{ChannelData, is_channel_number};
use crate::proto::stun::{Data, Message, XorPeerAddress};

/// A Send indication: XOR-PEER-ADDRESS and DATA; dropped silently when anything is wrong.
///
/// DONT-FRAGMENT in a Send indication (RFC 8656 §11.2, §18.9) is accepted but does not change the
/// datagram: DF is the allocation's, set on its relay socket when its Allocate carried
/// DONT-FRAGMENT (an Allocate taking a reserved port with RESERVATION-TOKEN sets it on the reserved
/// socket), and then every datagram to peers carries it, ChannelData included. Per datagram it would
/// take a socket option change around each send (Linux has no per-datagram DF for IPv4), which
/// would race the other workers sending through the same socket.
pub(super) fn indication<D: RelayDriver>(
    server: &Server<D>,
    now: Instant,
    rx: &Received<'_>,
    msg: &Message<'_>,
    ecn: Ecn,
) -> Outcome {
    let (Ok(XorPeerAddress(peer)), Ok(Data(data))) = (msg.get::<XorPeerAddress>(), msg.get::<Data>()) else {
        return Outcome::Dropped(DropReason::BadData);
    };
    let now = server.millis(now);
    server
        .table
        .with(&rx.five_tuple(), |a| to_peer(server, now, a, peer, data, ecn))
        .unwrap_or(Outcome::Dropped(DropReason::NoAllocation))
}

/// ChannelData from the client: the bound peer gets the data.
pub(super) fn channel_data<D: RelayDriver>(server: &Server<D>, now: Instant, rx: &Received<'_>, ecn: Ecn) -> Outcome {
    let Ok(cd) = ChannelData::parse(rx.data) else {
        return Outcome::Dropped(DropReason::BadData);
    };
    if !is_channel_number(cd.channel, server.options.strict_rfc8656) {
        return Outcome::Dropped(DropReason::BadData);
    }
    let now = server.millis(now);
    server
        .table
        .with(&rx.five_tuple(), |a| {
            let bindings = a.bindings();
            match bindings.channel(cd.channel, now) {
                Some(c) => to_peer(server, now, a, c.peer, cd.data, ecn),
                None => Outcome::Dropped(DropReason::NoChannel),
            }
        })
        .unwrap_or(Outcome::Dropped(DropReason::NoAllocation))
}

#[inline]
fn to_peer<D: RelayDriver>(
    server: &Server<D>,
    now: Millis,
    a: &Allocation<D::Socket>,
    peer: SocketAddr,
    data: &[u8],
    ecn: Ecn,
) -> Outcome {
    if !a.is_live(now) {
        return Outcome::Dropped(DropReason::NoAllocation);
    }
    if !a.bindings().permits(peer.ip(), now) {
        return Outcome::Dropped(DropReason::NoPermission);
    }
    if server.policy.load().check_addr(peer).is_err() {
        return Outcome::Dropped(DropReason::PeerDenied);
    }
    use std::sync::atomic::Ordering::Relaxed;
    if !server.bandwidth.admit(a.bandwidth(), Direction::ToPeer, now, data.len()) {
        a.counters.dropped_bandwidth.fetch_add(1, Relaxed);
        return Outcome::Dropped(DropReason::BandwidthExceeded);
    }
    // The relay socket of the peer's family (a dual allocation has one per family). A permission
    // needs a relayed address of the peer's family, so this only fails for a racing deletion.
    let Some(socket) = a.socket_for(peer.ip(), now) else {
        return Outcome::Dropped(DropReason::NoPermission);
    };
    // RFC 8656 §14: the client's ECN codepoint goes on to the peer; Not-ECT keeps the plain send.
    let sent = match ecn {
        Ecn::NotEct => server.driver.send_to_peer(socket, peer, data),
        ecn => server.driver.send_to_peer_ecn(socket, peer, data, ecn),
    };
    if !sent {
        return Outcome::Dropped(DropReason::SendFailed);
    }
    a.counters.to_peer_packets.fetch_add(1, Relaxed);
    a.counters.to_peer_bytes.fetch_add(data.len() as u64, Relaxed);
    Outcome::Relayed
}
