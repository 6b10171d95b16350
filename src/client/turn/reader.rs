//! The task reading the client's leg to the server (`transport.rs` moves the bytes; the core's
//! [`Inbound`] says what they are): responses to their waiting request, the payload of Data
//! indications and ChannelData to the inbound queue (RFC 8656 §11.4, §12.6; `inbound.rs`: copied
//! once into its ring, no allocation, no channel), ConnectionAttempt indications to a TCP
//! allocation (RFC 6062 §4.4); ICMP port unreachable to [`Inner::refused`](super::Inner::refused);
//! a closed stream fails the client.

use std::sync::Arc;

use super::inbound::InboundTx;
use super::state::LostReason;
use super::transport::Reader;
use super::{Inner, lock};
use crate::client_core::Inbound;

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

/// One datagram or frame from the server, as [`Inbound`] classifies it.
fn deliver(inner: &Inner, data: &[u8], tx: &InboundTx) {
    match Inbound::parse(data) {
        Inbound::Response(m) => {
            let waiter = lock(&inner.pending).as_mut().and_then(|p| p.remove(&m.transaction_id()));
            if let Some(waiter) = waiter {
                let _ = waiter.send(data.to_vec());
            }
        }
        Inbound::Data { peer, data } => tx.push(peer, data),
        Inbound::ConnectionAttempt { id, peer } => {
            if let Some(attempts) = lock(&inner.attempts).as_ref() {
                // A full queue drops the attempt; the server closes it after 30 s unbound.
                let _ = attempts.try_send((id, peer));
            }
        }
        Inbound::ChannelData { channel, data } => {
            let peer = lock(&inner.peers).by_channel.get(&channel).copied();
            if let Some(peer) = peer {
                tx.push(peer, data);
            }
        }
        Inbound::Ignored => {}
    }
}
