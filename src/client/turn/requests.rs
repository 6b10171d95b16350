//! The client's requests (RFC 8656 §7–§12 from the client's side), driven on tokio: the sans-IO
//! core ([`crate::client_core`]) signs them ([`sign`]: the long-term credential or a token's
//! session key), walks the 401/438 dance ([`Dance`], RFC 8489 §9.2) and times their
//! retransmissions ([`Transaction`]: over UDP RFC 8489 §6.2.1, once on a stream §6.2.2); here they
//! are sent and wait for their answer from the reader (`reader.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::credentials::{Auth, Credentials};
use super::{Inner, lock};
use crate::client::{ClientError, new_transaction_id};
use crate::client_core::{Dance, MAX_AUTH_ATTEMPTS, Outcome, RetransmitConfig, Step, Transaction, sign};
use crate::proto::stun::{
    ChannelNumber, EncodeError, Lifetime, Message, MessageWriter, Method, TransactionId, XorPeerAddress, codes,
};

pub(super) type Body<'a> = &'a (dyn Fn(&mut MessageWriter<'_>) -> Result<(), EncodeError> + Sync);

impl Inner {
    pub(super) async fn create_permission(&self, peer: SocketAddr) -> Result<(), ClientError> {
        self.transact(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).await.map(|_| ())
    }

    pub(super) async fn channel_bind(&self, number: u16, peer: SocketAddr) -> Result<(), ClientError> {
        self.transact(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(number))?;
            w.add(&XorPeerAddress(peer))
        })
        .await
        .map(|_| ())
    }

    /// RFC 8656 §8.1; a MOBILITY-TICKET in the answer replaces ours (RFC 8016 §3.2). A 437 fails
    /// the client: the server has no allocation for us (§8.3).
    pub(super) async fn refresh(&self, lifetime: u32) -> Result<u32, ClientError> {
        self.refresh_as(lifetime, None).await
    }

    /// [`Inner::refresh`] signed with `creds` instead of the current credentials, when given.
    pub(super) async fn refresh_as(&self, lifetime: u32, creds: Option<&Arc<Credentials>>) -> Result<u32, ClientError> {
        let resp = self
            .transact_as(Method::REFRESH, &|w| w.add(&Lifetime(lifetime)), None, creds)
            .await
            .inspect_err(|e| self.health.judge(e))?;
        let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
        lock(&self.mobility).keep(&m);
        Ok(m.get::<Lifetime>().map(|l| l.0).unwrap_or(lifetime))
    }

    /// Sends an authenticated request and returns the success response. A 401 teaches us the realm
    /// and nonce, a 438 a fresh nonce; either is retried once with the new values.
    pub(super) async fn transact(&self, method: Method, body: Body<'_>) -> Result<Vec<u8>, ClientError> {
        self.transact_as(method, body, None, None).await
    }

    /// [`Inner::transact`] from `via` instead of the leg: the socket an RFC 8016 move tries (its
    /// answers come back through that socket's reader).
    pub(super) async fn transact_via(
        &self,
        method: Method,
        body: Body<'_>,
        via: Option<&tokio::net::UdpSocket>,
    ) -> Result<Vec<u8>, ClientError> {
        self.transact_as(method, body, via, None).await
    }

    /// [`Inner::transact_via`] signed with `creds` when given (a credential swap tries them before
    /// they become the client's), else with the current credentials. What a challenge teaches is
    /// kept for later requests only when it is keyed with the current credentials.
    async fn transact_as(
        &self,
        method: Method,
        body: Body<'_>,
        via: Option<&tokio::net::UdpSocket>,
        creds: Option<&Arc<Credentials>>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut auth = lock(&self.auth).clone();
        let mut dance = Dance::default();
        for _ in 0..MAX_AUTH_ATTEMPTS {
            let creds = creds.map_or_else(|| self.creds.load_full(), Arc::clone);
            // Swapped credentials sign with the realm and nonce we have (RFC 8489 §9.2.4).
            if let Some(a) = auth.as_ref().filter(|a| !Arc::ptr_eq(&a.creds, &creds)) {
                let rekeyed = a.rekey(&creds)?;
                self.keep_auth(&rekeyed);
                auth = Some(rekeyed);
            }
            let tid = new_transaction_id()?;
            let mut buf = vec![0u8; 1500];
            let n = sign(&mut buf, method, tid, auth.as_ref(), |w| body(w))?;
            dance.sent();
            let resp = self.request(tid, buf.get(..n).unwrap_or_default(), via).await?;
            let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
            match dance.on_response(&creds, auth.as_ref(), &m)? {
                Step::Done => return Ok(resp),
                Step::Retry(retry) => {
                    self.keep_auth(&retry);
                    auth = Some(*retry);
                }
            }
        }
        Err(ClientError::ErrorResponse { code: codes::UNAUTHENTICATED, reason: "authentication failed".into() })
    }

    /// Keeps `auth` for the requests to come, if it is keyed with the current credentials.
    fn keep_auth(&self, auth: &Auth) {
        if Arc::ptr_eq(&auth.creds, &self.creds.load()) {
            *lock(&self.auth) = Some(auth.clone());
        }
    }

    /// The reader saw ICMP port unreachable (ECONNREFUSED on the socket connected to the server):
    /// the waiting requests fail now with it instead of retransmitting into nothing, and the
    /// keeper refreshes at once to tell a gone server from a stray ICMP.
    pub(super) fn refused(&self) {
        if let Some(pending) = lock(&self.pending).as_mut() {
            pending.clear();
        }
        self.wake.notify_one();
    }

    /// Sends a request and waits for its response until the timeout passes, sending it again when
    /// its [`Transaction`] says (over UDP RFC 8489 §6.2.1: RTO 500 ms, doubling; over a stream
    /// once, §6.2.2).
    async fn request(
        &self,
        tid: TransactionId,
        bytes: &[u8],
        via: Option<&tokio::net::UdpSocket>,
    ) -> Result<Vec<u8>, ClientError> {
        let (tx, mut rx) = oneshot::channel();
        lock(&self.pending).as_mut().ok_or(ClientError::Closed)?.insert(tid, tx);
        let start = Instant::now();
        let reliable = self.link.is_stream() && via.is_none();
        let mut transaction =
            Transaction::new(start.into_std(), tid, bytes.to_vec(), reliable, RetransmitConfig::default())
                .with_deadline((start + self.timeout).into_std());
        let result = loop {
            let now = Instant::now().into_std();
            transaction.handle_timeout(now);
            if transaction.outcome() == Some(Outcome::Timeout) {
                break Err(ClientError::Timeout(self.timeout));
            }
            if let Some(bytes) = transaction.poll_transmit(now) {
                let sent = match via {
                    Some(socket) => socket.send_to(bytes, self.server).await.map(|_| ()).map_err(ClientError::from),
                    None => self.link.send(bytes).await,
                };
                match sent {
                    Ok(()) => continue,
                    Err(e) => break Err(e),
                }
            }
            let Some(wake) = transaction.poll_timeout() else { break Err(ClientError::Timeout(self.timeout)) };
            match tokio::time::timeout_at(Instant::from_std(wake), &mut rx).await {
                Ok(Ok(resp)) => break Ok(resp),
                // Dropped from a map that is still there: for ICMP port unreachable (Inner::refused).
                Ok(Err(_)) if lock(&self.pending).is_some() => {
                    break Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
                }
                Ok(Err(_)) => break Err(ClientError::Closed),
                Err(_) => {}
            }
        };
        if let Some(pending) = lock(&self.pending).as_mut() {
            pending.remove(&tid);
        }
        result
    }
}
