//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay test: each takes arbitrary
//! bytes and must never panic. Not a stable API.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use crate::proto::channel_data::ChannelData;
use crate::proto::demux::{Frame, stream_frame};
use crate::proto::stun::{IntegrityKey, Message, MessageWriter};
use crate::server::{Received, Server, ServerOptions, Transport};

/// Decodes a STUN message, every attribute, the integrity checks, and re-encodes what decoded.
pub fn stun_decode(data: &[u8]) {
    let Ok(msg) = Message::parse(data) else { return };
    let key = IntegrityKey::new(b"fuzz");
    let _ = msg.verify_integrity(&key);
    let _ = msg.verify_fingerprint();
    let _ = msg.unknown_comprehension_required(crate::proto::stun::is_known);
    let mut out = [0u8; 2048];
    let Ok(mut w) = MessageWriter::new(&mut out, msg.message_type(), msg.transaction_id()) else { return };
    for a in msg.decoded().flatten() {
        let _ = w.add_raw(a.typ(), &[]);
        let mut tmp = [0u8; 1024];
        if let Some(v) = tmp.get_mut(..a.value_len()) {
            let _ = a.encode_value(&msg.transaction_id(), v);
        }
    }
}

/// Parses ChannelData and re-encodes it for both transports.
pub fn channel_data(data: &[u8]) {
    if let Ok(cd) = ChannelData::parse(data) {
        let mut out = vec![0u8; cd.wire_len(true)];
        let _ = cd.encode(true, &mut out);
        let _ = cd.encode(false, &mut out);
    }
}

/// Cuts a byte stream into frames the way the TCP driver does and feeds each to the server.
pub fn stream_framing(data: &[u8]) {
    let server = Server::new(ServerOptions::default());
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
    let mut rest = data;
    let mut out = [0u8; 1500];
    while let Frame::Complete(n) = stream_frame(rest, false) {
        let Some((frame, tail)) = rest.split_at_checked(n) else { return };
        let rx = Received { transport: Transport::Tcp, source: addr, local: addr, data: frame };
        let _ = server.handle(Instant::now(), &rx, &mut out);
        rest = tail;
    }
}

/// Feeds one datagram to a server.
pub fn server_datagram(data: &[u8]) {
    let server = Server::new(ServerOptions::default());
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1);
    let rx = Received { transport: Transport::Udp, source: addr, local: addr, data };
    let mut out = [0u8; 1500];
    let _ = server.handle(Instant::now(), &rx, &mut out);
}
