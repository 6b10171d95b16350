//! What a datagram or stream frame from the server is, to a client (RFC 7983 first-byte demux):
//! a response, a Data indication (RFC 8656 §11.6), ChannelData (§12.6), a ConnectionAttempt
//! indication (RFC 6062 §4.4), or something to ignore.

use std::net::SocketAddr;

use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{Class, ConnectionId, Data, Message, Method, XorPeerAddress};

/// One message from the server, parsed without copying.
#[derive(Clone, Debug)]
pub enum Inbound<'a> {
    /// A success or error response, to match with its request by transaction ID.
    Response(Message<'a>),
    /// A Data indication: `data` from `peer` (RFC 8656 §11.6).
    Data {
        /// XOR-PEER-ADDRESS.
        peer: SocketAddr,
        /// DATA.
        data: &'a [u8],
    },
    /// ChannelData on `channel` (RFC 8656 §12.6); the channel's peer is the client's to know.
    ChannelData {
        /// The channel number.
        channel: u16,
        /// The application data.
        data: &'a [u8],
    },
    /// A ConnectionAttempt indication (RFC 6062 §4.4).
    ConnectionAttempt {
        /// CONNECTION-ID.
        id: u32,
        /// XOR-PEER-ADDRESS.
        peer: SocketAddr,
    },
    /// Not STUN or ChannelData, malformed, a request, an indication without what it must carry or
    /// of another method.
    Ignored,
}

impl<'a> Inbound<'a> {
    /// Classifies `bytes` (RFC 7983: 0–3 STUN, 64–79 ChannelData, as RFC 8656 §12 numbers channels).
    pub fn parse(bytes: &'a [u8]) -> Self {
        match bytes.first() {
            Some(0x00..=0x03) => {
                let Ok(m) = Message::parse(bytes) else { return Inbound::Ignored };
                let ty = m.message_type();
                match ty.class {
                    Class::SuccessResponse | Class::ErrorResponse => Inbound::Response(m),
                    Class::Indication if ty.method == Method::DATA => {
                        match (m.get::<XorPeerAddress>(), m.get::<Data>()) {
                            (Ok(peer), Ok(data)) => Inbound::Data { peer: peer.0, data: data.0 },
                            _ => Inbound::Ignored,
                        }
                    }
                    Class::Indication if ty.method == Method::CONNECTION_ATTEMPT => {
                        match (m.get::<XorPeerAddress>(), m.get::<ConnectionId>()) {
                            (Ok(peer), Ok(id)) => Inbound::ConnectionAttempt { id: id.0, peer: peer.0 },
                            _ => Inbound::Ignored,
                        }
                    }
                    _ => Inbound::Ignored,
                }
            }
            Some(0x40..=0x7F) => match ChannelData::parse(bytes) {
                Ok(cd) => Inbound::ChannelData { channel: cd.channel, data: cd.data },
                Err(_) => Inbound::Ignored,
            },
            _ => Inbound::Ignored,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{MessageType, MessageWriter, TransactionId};

    fn message(method: Method, class: Class, peer: Option<SocketAddr>) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let mut w = MessageWriter::new(&mut buf, MessageType::new(method, class), TransactionId([3; 12])).unwrap();
        if let Some(peer) = peer {
            w.add(&XorPeerAddress(peer)).unwrap();
            w.add(&Data(b"payload")).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn each_kind_and_the_rest_ignored() {
        let peer: SocketAddr = "192.0.2.7:9".parse().unwrap();
        let data = message(Method::DATA, Class::Indication, Some(peer));
        assert!(matches!(Inbound::parse(&data), Inbound::Data { peer: p, data: b"payload" } if p == peer));
        let answer = message(Method::REFRESH, Class::ErrorResponse, None);
        assert!(
            matches!(Inbound::parse(&answer), Inbound::Response(m) if m.transaction_id() == TransactionId([3; 12]))
        );
        let channel = [0x40, 0x01, 0x00, 0x02, 7, 8, 0, 0];
        assert!(matches!(Inbound::parse(&channel), Inbound::ChannelData { channel: 0x4001, data: [7, 8] }));
        let request = message(Method::REFRESH, Class::Request, None);
        let bare = message(Method::DATA, Class::Indication, None);
        for ignored in [&request[..], &bare[..], &[], &[0xFF; 30], &data[..data.len() - 2], &channel[..3]] {
            assert!(matches!(Inbound::parse(ignored), Inbound::Ignored), "{ignored:?}");
        }
    }
}
