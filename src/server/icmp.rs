//! Peer → client ICMP errors, RFC 8656 §11.5: an ICMP error the server received for a datagram it
//! relayed becomes a Data indication with XOR-PEER-ADDRESS and the ICMP attribute (§18.13), and
//! no DATA, for the client holding a permission for that peer.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use super::{RelayDriver, Server};
use crate::alloc::{Allocation, Millis};
use crate::proto::stun::{Class, Icmp, MessageType, MessageWriter, Method, XorPeerAddress};

/// At most this many ICMP errors per allocation and second reach its client (RFC 8656 §11.5 does
/// not bound them; a peer, or a path, that answers every datagram with an ICMP error would
/// otherwise double the traffic to the client). The rest are dropped and counted.
pub const ICMP_PER_SECOND: u64 = 10;

/// The largest Data indication [`Server::icmp_from_peer`] writes: the header (20),
/// XOR-PEER-ADDRESS for IPv6 (24) and ICMP (12).
pub const ICMP_INDICATION_LEN: usize = 20 + 24 + 12;

pub(super) fn from_peer<D: RelayDriver>(
    server: &Server<D>,
    now: Millis,
    a: &Allocation<D::Socket>,
    peer: SocketAddr,
    icmp: Icmp,
    out: &mut [u8],
) -> Option<usize> {
    if !a.is_live(now) || (a.extra.is_some() && !a.has_family_of(peer.ip(), now)) {
        return None;
    }
    // RFC 8656 §11.5: only the errors about the datagram's delivery, and only for a peer the client
    // holds a permission for.
    if !relayed_type(peer, icmp.icmp_type) || !a.bindings().permits(peer.ip(), now) || !admit(a, now) {
        server.stats.icmp_dropped();
        return None;
    }
    let len = indication(server, peer, icmp, out)?;
    server.stats.icmp_relayed();
    Some(len)
}

/// RFC 8656 §11.5: ICMPv4 types 3 (destination unreachable) and 11 (time exceeded); ICMPv6 types 1
/// (destination unreachable), 2 (packet too big) and 3 (time exceeded).
fn relayed_type(peer: SocketAddr, icmp_type: u8) -> bool {
    match peer {
        SocketAddr::V4(_) => matches!(icmp_type, 3 | 11),
        SocketAddr::V6(_) => matches!(icmp_type, 1..=3),
    }
}

/// RFC 8656 §18.13: Error Data carries the next-hop MTU of an ICMPv4 "fragmentation needed and DF
/// set" (type 3 code 4) or an ICMPv6 "packet too big" (type 2), and MUST be zero otherwise.
fn error_data(peer: SocketAddr, icmp: Icmp) -> u32 {
    let mtu = match peer {
        SocketAddr::V4(_) => icmp.icmp_type == 3 && icmp.icmp_code == 4,
        SocketAddr::V6(_) => icmp.icmp_type == 2,
    };
    if mtu { icmp.error_data } else { 0 }
}

/// The per-allocation rate limit, [`ICMP_PER_SECOND`] in each whole second of the core's clock.
fn admit<S>(a: &Allocation<S>, now: Millis) -> bool {
    let second = now / 1000;
    a.counters
        .icmp_window
        .fetch_update(Relaxed, Relaxed, |w| match (w >> 16 == second, w & 0xFFFF) {
            (true, n) if n >= ICMP_PER_SECOND => None,
            (true, _) => Some(w + 1),
            (false, _) => Some((second << 16) | 1),
        })
        .is_ok()
}

/// The Data indication of RFC 8656 §11.5: XOR-PEER-ADDRESS and ICMP, DATA absent.
fn indication<D: RelayDriver>(server: &Server<D>, peer: SocketAddr, icmp: Icmp, out: &mut [u8]) -> Option<usize> {
    let icmp = Icmp { error_data: error_data(peer, icmp), ..icmp };
    let ty = MessageType::new(Method::DATA, Class::Indication);
    let mut w = MessageWriter::new(out, ty, server.random_tid()).ok()?;
    w.add(&XorPeerAddress(peer)).ok()?;
    w.add(&icmp).ok()?;
    Some(w.finish())
}
