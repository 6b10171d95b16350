//! The task reading the client's leg to the server (`transport.rs` moves the bytes): responses to
//! their waiting request, the payload of Data indications and ChannelData to the inbound queue
//! (RFC 8656 §11.4, §12.6; `inbound.rs`: copied once into its ring, no allocation, no channel), ConnectionAttempt indications to a TCP allocation (RFC 6062 §4.4); ICMP port
//! unreachable to [`Inner::refused`](super::Inner::refused); a closed stream fails the client.

use std::sync::Arc;

use super::inbound::InboundTx;
use super::state::LostReason;
use super::transport::Reader;
use super::{Inner, lock};
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{Class, ConnectionId, Data, Message, Method, XorPeerAddress};

/// Reads the leg: responses go to their waiting request, peer data to the inbound queue. When the
/// stream closes the client fails ([`LostReason::ConnectionClosed`]): waiting and later requests
/// fail with [`ClientError::Closed`](crate::client::ClientError::Closed) or
/// [`AllocationLost`](crate::client::ClientError::AllocationLost), and so does
/// [`TurnClient::recv_from`](super::TurnClient::recv_from) once the queue is empty.
pub(super) async fn read_loop(inner: Arc<Inner>, reader: Reader, tx: InboundTx) {
    inner.link.receive(reader, |data| deliver(&inner, data, &tx), || inner.refused()).await;
    // RFC 8656 §3.1: the allocation goes with its stream.
    inner.health.fail(LostReason::ConnectionClosed);
    // Dropping the senders wakes every waiting request, and TcpAllocation::accept.
    lock(&inner.pending).take();
    lock(&inner.attempts).take();
}

/// One datagram or frame from the server.
fn deliver(inner: &Inner, data: &[u8], tx: &InboundTx) {
    match data.first() {
        Some(0x00..=0x03) => {
            let Ok(m) = Message::parse(data) else { return };
            match m.message_type().class {
                Class::SuccessResponse | Class::ErrorResponse => {
                    let waiter = lock(&inner.pending).as_mut().and_then(|p| p.remove(&m.transaction_id()));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(data.to_vec());
                    }
                }
                Class::Indication if m.message_type().method == Method::DATA => {
                    if let (Ok(peer), Ok(d)) = (m.get::<XorPeerAddress>(), m.get::<Data>()) {
                        tx.push(peer.0, d.0);
                    }
                }
                Class::Indication if m.message_type().method == Method::CONNECTION_ATTEMPT => {
                    if let (Some(attempts), Ok(peer), Ok(id)) =
                        (lock(&inner.attempts).as_ref(), m.get::<XorPeerAddress>(), m.get::<ConnectionId>())
                    {
                        // A full queue drops the attempt; the server closes it after 30 s unbound.
                        let _ = attempts.try_send((id.0, peer.0));
                    }
                }
                _ => {}
            }
        }
        Some(0x40..=0x7F) => {
            let Ok(cd) = ChannelData::parse(data) else { return };
            let peer = lock(&inner.peers).by_channel.get(&cd.channel).copied();
            if let Some(peer) = peer {
                tx.push(peer, cd.data);
            }
        }
        _ => {}
    }
}
