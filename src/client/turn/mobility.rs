//! RFC 8016 mobility from the client's side: the MOBILITY-TICKET an Allocate asked for (§3.1) and
//! every Refresh answer may renew (§3.2), and [`TurnClient::move_to`], which takes the allocation
//! to a new local UDP socket (a phone going from Wi-Fi to LTE) with a Refresh carrying the ticket.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::UdpSocket;

use super::reader::read_loop;
use super::{Reader, TurnClient, lock};
use crate::client::ClientError;
use crate::proto::stun::{Lifetime, Message, Method, MobilityTicket, codes};

/// The allocation's latest MOBILITY-TICKET, or why it has none.
#[derive(Debug, Default)]
pub(super) struct Mobility {
    /// The ticket of the latest answer that carried one (RFC 8016 §3.2: a newer one replaces it).
    ticket: Option<Vec<u8>>,
    /// The server answered the Allocate's empty MOBILITY-TICKET with 405 (RFC 8016 §3.4).
    forbidden: bool,
}

impl Mobility {
    /// Keeps the MOBILITY-TICKET of the Allocate or Refresh answer `m`, if it carries one
    /// (RFC 8016 §3.1, §3.2).
    pub(super) fn keep(&mut self, m: &Message<'_>) {
        if let Ok(MobilityTicket(ticket)) = m.get::<MobilityTicket>()
            && !ticket.is_empty()
        {
            self.ticket = Some(ticket.to_vec());
        }
    }

    /// RFC 8016 §3.4: the server forbids mobility; no ticket will come.
    pub(super) fn forbid(&mut self) {
        self.forbidden = true;
    }

    /// The ticket a move presents, or why there is none.
    fn for_move(&self) -> Result<Vec<u8>, ClientError> {
        match (&self.ticket, self.forbidden) {
            (Some(ticket), _) => Ok(ticket.clone()),
            (None, true) => Err(ClientError::MobilityForbidden),
            (None, false) => Err(ClientError::NoMobilityTicket),
        }
    }
}

/// What a refused move returns: 405 and 400 by name (RFC 8016 §3.4, §3.2), others as they came.
fn refused(e: ClientError) -> ClientError {
    match e {
        ClientError::ErrorResponse { code: codes::MOBILITY_FORBIDDEN, .. } => ClientError::MobilityForbidden,
        ClientError::ErrorResponse { code: codes::BAD_REQUEST, reason } => ClientError::TicketRefused(reason),
        e => e,
    }
}

impl TurnClient {
    /// The MOBILITY-TICKET a move would present now (RFC 8016 §3.3; opaque), `None` when the
    /// allocation did not ask for mobility or the server forbids it.
    pub fn mobility_ticket(&self) -> Option<Vec<u8>> {
        lock(&self.inner.mobility).ticket.clone()
    }

    /// Moves the allocation to `socket`, a new local UDP socket (RFC 8016 §3.2): a Refresh carrying
    /// the latest MOBILITY-TICKET and the same credentials goes from `socket` (a stale nonce, 438,
    /// is answered as usual); once the server takes it, requests, [`TurnClient::send_to`] and
    /// [`TurnClient::recv_from`], permissions, channels and refreshes all continue on `socket`,
    /// the relayed address stays the same, the ticket of the answer replaces the old one and the
    /// old socket is closed. Moves run one at a time.
    ///
    /// UDP to UDP only: an allocation held over TCP or TLS gets [`ClientError::NotUdp`] (a server
    /// answers 400 to a move across transports). An allocation made without
    /// [`ClientOptions::mobility`](super::ClientOptions::mobility) gets
    /// [`ClientError::NoMobilityTicket`]. When the server refuses — 405
    /// ([`ClientError::MobilityForbidden`], §3.4), 400 ([`ClientError::TicketRefused`]), any other
    /// error response, or no answer within the request timeout — the client stays on its old
    /// socket, which keeps working, and `socket` is dropped.
    pub async fn move_to(&self, socket: UdpSocket) -> Result<(), ClientError> {
        let mut reader = self.reader.lock().await;
        if self.inner.link.is_stream() {
            return Err(ClientError::NotUdp);
        }
        let ticket = lock(&self.inner.mobility).for_move()?;
        let inbound = self.inbound.writer().ok_or(ClientError::Closed)?;
        self.inner.health.check()?;
        // Connected like the first socket: ICMP port unreachable from the server is reported.
        socket.connect(self.inner.server).await?;
        let socket = Arc::new(socket);
        // The answer, and any data the server sends once it moved, arrive on the new socket.
        let trial = tokio::spawn(read_loop(Arc::clone(&self.inner), Reader::Udp(Arc::clone(&socket)), inbound));
        let before = lock(&self.inner.auth).clone();
        let lifetime = self.lifetime;
        let answer = self
            .inner
            .transact_via(
                Method::REFRESH,
                &|w| {
                    w.add(&Lifetime(lifetime))?;
                    w.add(&MobilityTicket(&ticket))
                },
                Some(&socket),
            )
            .await
            .and_then(|resp| {
                let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
                lock(&self.inner.mobility).keep(&m);
                Ok(())
            });
        let leaving = match answer {
            Ok(()) => {
                let _old_socket = self.inner.link.switch(socket);
                std::mem::replace(&mut *reader, trial)
            }
            Err(e) => {
                trial.abort();
                let _ = trial.await;
                // The nonce the new socket drew is bound to its address (RFC 8489 §9.2): the old
                // socket goes on with the one it had.
                *lock(&self.inner.auth) = before;
                return Err(refused(e));
            }
        };
        // The old reader holds the old socket: once it is gone, so is the socket.
        leaving.abort();
        let _ = leaving.await;
        Ok(())
    }

    /// [`TurnClient::move_to`] a new UDP socket bound to `local` (port 0: any).
    pub async fn rebind(&self, local: SocketAddr) -> Result<(), ClientError> {
        self.move_to(UdpSocket::bind(local).await?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::stun::{Class, MessageType, MessageWriter, TransactionId};

    fn refresh_answer(ticket: Option<&[u8]>) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let ty = MessageType::new(Method::REFRESH, Class::SuccessResponse);
        let mut w = MessageWriter::new(&mut buf, ty, TransactionId([7; 12])).unwrap();
        w.add(&Lifetime(600)).unwrap();
        if let Some(t) = ticket {
            w.add(&MobilityTicket(t)).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    #[test]
    fn the_latest_ticket_is_kept() {
        let mut mobility = Mobility::default();
        assert!(matches!(mobility.for_move(), Err(ClientError::NoMobilityTicket)));
        mobility.keep(&Message::parse(&refresh_answer(Some(&[1; 32]))).unwrap());
        assert_eq!(mobility.for_move().unwrap(), vec![1; 32]);
        // An answer without a ticket keeps the one we have; a new one replaces it (RFC 8016 §3.2).
        mobility.keep(&Message::parse(&refresh_answer(None)).unwrap());
        assert_eq!(mobility.for_move().unwrap(), vec![1; 32]);
        mobility.keep(&Message::parse(&refresh_answer(Some(&[2; 32]))).unwrap());
        assert_eq!(mobility.for_move().unwrap(), vec![2; 32]);
    }

    #[test]
    fn a_forbidden_mobility_is_named() {
        let mut mobility = Mobility::default();
        mobility.forbid();
        assert!(matches!(mobility.for_move(), Err(ClientError::MobilityForbidden)));
        let e = refused(ClientError::ErrorResponse { code: 405, reason: "Mobility Forbidden".into() });
        assert!(matches!(e, ClientError::MobilityForbidden), "{e:?}");
        let e = refused(ClientError::ErrorResponse { code: 400, reason: "Bad Request".into() });
        assert!(matches!(e, ClientError::TicketRefused(_)), "{e:?}");
        let e = refused(ClientError::ErrorResponse { code: 441, reason: "Wrong Credentials".into() });
        assert!(matches!(e, ClientError::ErrorResponse { code: 441, .. }), "{e:?}");
    }
}
