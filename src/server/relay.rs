//! Peer → client data, RFC 8656 §11.3 (Data indication) and §12.6 (ChannelData). Headers are
//! written in place in front of the received data, so nothing is copied.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::Ordering::Relaxed;

use super::{RelayDriver, Server};
use crate::alloc::{Allocation, Millis};
use crate::policy::bandwidth::Direction;
use crate::proto::channel_data;
use crate::proto::stun::{Class, MessageType, MessageWriter, Method, XorPeerAddress, types};

/// Bytes a driver leaves free in front of a peer datagram: a STUN header (20), XOR-PEER-ADDRESS
/// for IPv6 (24) and the DATA attribute header (4). Leave 3 more bytes after the data for padding.
pub const HEADROOM: usize = 48;

pub(super) fn from_peer<D: RelayDriver>(
    server: &Server<D>,
    now: Millis,
    a: &Allocation<D::Socket>,
    peer: SocketAddr,
    buf: &mut [u8],
    len: usize,
) -> Option<Range<usize>> {
    if !a.is_live(now) {
        return None;
    }
    // A dual allocation whose relayed address of the peer's family was deleted (RFC 8656 §8) relays
    // nothing from it, whether or not the driver stopped reading that socket.
    if a.extra.is_some() && !a.has_family_of(peer.ip(), now) {
        return None;
    }
    let bindings = a.bindings();
    // RFC 8656 §11.3/§12.6: data from a peer without a permission is discarded.
    if !bindings.permits(peer.ip(), now) {
        a.counters.dropped_no_permission.fetch_add(1, Relaxed);
        server.stats.peer_no_permission();
        return None;
    }
    if !server.bandwidth.admit(a.bandwidth(), Direction::ToClient, now, len) {
        a.counters.dropped_bandwidth.fetch_add(1, Relaxed);
        server.stats.peer_bandwidth_exceeded();
        return None;
    }
    let stream = a.is_stream();
    let range = match bindings.channel_for_peer(peer, now) {
        Some(c) => channel(buf, c.number, len, stream)?,
        None => data_indication(server, buf, peer, len)?,
    };
    a.counters.to_client_packets.fetch_add(1, Relaxed);
    a.counters.to_client_bytes.fetch_add(len as u64, Relaxed);
    server.stats.relayed_to_client();
    Some(range)
}

/// ChannelData: 4-byte header right before the data; padded to 4 on streams (RFC 8656 §12.5).
fn channel(buf: &mut [u8], number: u16, len: usize, stream: bool) -> Option<Range<usize>> {
    let start = HEADROOM - channel_data::HEADER_LEN;
    channel_data::write_header(buf.get_mut(start..HEADROOM)?, number, len)?;
    let end = start + channel_data::wire_len(len, stream);
    buf.get_mut(HEADROOM + len..end)?.fill(0);
    Some(start..end)
}

/// Data indication with XOR-PEER-ADDRESS and DATA, RFC 8656 §11.3, written around the data.
fn data_indication<D: RelayDriver>(
    server: &Server<D>,
    buf: &mut [u8],
    peer: SocketAddr,
    len: usize,
) -> Option<Range<usize>> {
    let addr_len = if peer.is_ipv4() { 8 } else { 20 };
    let start = HEADROOM - (20 + 4 + addr_len + 4);
    let end = HEADROOM + crate::proto::stun::padded_len(len);
    let ty = MessageType::new(Method::DATA, Class::Indication);
    let mut w = MessageWriter::new(buf.get_mut(start..end)?, ty, server.random_tid()).ok()?;
    w.add(&XorPeerAddress(peer)).ok()?;
    w.add_in_place(types::DATA, len).ok()?;
    Some(start..start + w.finish())
}
