//! The client's requests (RFC 8656 §7–§12 from the client's side): signed with the long-term
//! credential or a token's session key, the 401/438 dance (RFC 8489 §9.2), retransmitted over UDP
//! (RFC 8489 §6.2.1) and sent once on a stream (§6.2.2), each waiting for its answer from the
//! reader (`reader.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::credentials::{Auth, Credentials, reauth};
use super::{Inner, lock};
use crate::client::{ClientError, new_transaction_id};
use crate::proto::stun::{
    AccessToken, ChannelNumber, Class, EncodeError, Lifetime, Message, MessageType, MessageWriter, Method, Nonce,
    PasswordAlgorithm, PasswordAlgorithms, Realm, TransactionId, Userhash, Username, XorPeerAddress, codes,
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
        for _ in 0..3 {
            let creds = creds.map_or_else(|| self.creds.load_full(), Arc::clone);
            // Swapped credentials sign with the realm and nonce we have (RFC 8489 §9.2.4).
            if let Some(a) = auth.as_ref().filter(|a| !Arc::ptr_eq(&a.creds, &creds)) {
                let rekeyed = a.rekey(&creds)?;
                self.keep_auth(&rekeyed);
                auth = Some(rekeyed);
            }
            let tid = new_transaction_id()?;
            let mut buf = vec![0u8; 1500];
            let n = {
                let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid)?;
                body(&mut w)?;
                if let Some(a) = auth.as_ref() {
                    // RFC 7635 §6.2: the token goes with Allocate and Refresh.
                    if let Some(token) = a.creds.token_bytes()
                        && (method == Method::ALLOCATE || method == Method::REFRESH)
                    {
                        w.add(&AccessToken(token))?;
                    }
                    match a.userhash {
                        Some(h) => w.add(&Userhash(h))?,
                        None => w.add(&Username(&a.creds.username))?,
                    }
                    w.add(&Realm(&a.realm))?;
                    w.add(&Nonce(&a.nonce))?;
                    if let Some((list, chosen)) = &a.algorithms {
                        let list = PasswordAlgorithms::from_raw(list).map_err(|_| ClientError::BadFrame)?;
                        w.add(&list)?;
                        w.add(&PasswordAlgorithm { algorithm: *chosen, params: &[] })?;
                    }
                    match &a.key_sha256 {
                        Some(k) => w.add_message_integrity_sha256(k)?,
                        None => w.add_message_integrity(&a.key)?,
                    }
                }
                w.add_fingerprint()?;
                w.finish()
            };
            let resp = self.request(tid, buf.get(..n).unwrap_or_default(), via).await?;
            let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
            if m.message_type().class == Class::SuccessResponse {
                return Ok(resp);
            }
            let retry = reauth(&creds, auth.as_ref().map(|a| a.realm.as_str()), &m)?;
            self.keep_auth(&retry);
            auth = Some(retry);
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

    /// Sends a request and waits for its response until the timeout passes: over UDP with
    /// RFC 8489 §6.2.1 retransmissions (RTO 500 ms, doubling), over a stream once (§6.2.2).
    async fn request(
        &self,
        tid: TransactionId,
        bytes: &[u8],
        via: Option<&tokio::net::UdpSocket>,
    ) -> Result<Vec<u8>, ClientError> {
        let (tx, mut rx) = oneshot::channel();
        lock(&self.pending).as_mut().ok_or(ClientError::Closed)?.insert(tid, tx);
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut rto = if self.link.is_stream() && via.is_none() { self.timeout } else { Duration::from_millis(500) };
        let result = loop {
            let sent = match via {
                Some(socket) => socket.send_to(bytes, self.server).await.map(|_| ()).map_err(ClientError::from),
                None => self.link.send(bytes).await,
            };
            if let Err(e) = sent {
                break Err(e);
            }
            let wait = rto.min(deadline.saturating_duration_since(tokio::time::Instant::now()));
            match tokio::time::timeout(wait, &mut rx).await {
                Ok(Ok(resp)) => break Ok(resp),
                // Dropped from a map that is still there: for ICMP port unreachable (Inner::refused).
                Ok(Err(_)) if lock(&self.pending).is_some() => {
                    break Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into());
                }
                Ok(Err(_)) => break Err(ClientError::Closed),
                Err(_) if tokio::time::Instant::now() >= deadline => break Err(ClientError::Timeout(self.timeout)),
                Err(_) => rto *= 2,
            }
        };
        if let Some(pending) = lock(&self.pending).as_mut() {
            pending.remove(&tid);
        }
        result
    }
}
