//! The setup side of a load run: a blocking, minimal TURN client over UDP (RFC 8656 §7 Allocate
//! with the 401 dance of RFC 8489 §9.2, §10 CreatePermission, §12 ChannelBind) on a socket the data
//! loop then drives raw. REST credentials (draft-uberti-behave-turn-rest) are minted from the
//! shared secret.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::diagnose::{CredentialsRefused, ErrorAnswer, NoAnswer};
use anyhow::{Context as _, Result};
use switchback::auth::{RestAlgorithm, Secret, rest_password};
use switchback::client::new_transaction_id;
use switchback::proto::stun::{
    ChannelNumber, Class, ErrorCode, IntegrityKey, Lifetime, Message, MessageType, MessageWriter, Method, Nonce, Realm,
    RequestedTransport, Username, XorPeerAddress, XorRelayedAddress, codes, long_term_key_md5,
};

/// REST credentials valid for a day: `expiry:user` and `base64(HMAC-SHA1(secret, username))`.
pub fn rest_credentials(secret: &str, user: &str) -> (String, String) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let username = format!("{}:{user}", now + 86_400);
    let password = rest_password(&Secret::new(secret.as_bytes().to_vec()), &username, RestAlgorithm::Sha1);
    (username, password.as_str().to_string())
}

/// What a request needs to be authenticated (after the first 401).
struct Auth {
    realm: String,
    nonce: String,
    key: IntegrityKey,
}

/// One client's allocation, set up over a connected UDP socket.
pub struct Session {
    username: String,
    password: String,
    auth: Option<Auth>,
    /// The relayed transport address (XOR-RELAYED-ADDRESS).
    pub relayed: SocketAddr,
    /// Requests sent (retransmissions included), for the per-allocation cost.
    pub requests: u32,
}

type Body<'a> = &'a dyn Fn(&mut MessageWriter<'_>) -> Result<(), switchback::proto::stun::EncodeError>;

impl Session {
    /// Allocates a UDP relay (RFC 8656 §7.1): once without credentials, then with the realm and
    /// nonce of the 401.
    pub fn allocate(socket: &dyn Link, username: &str, password: &str, lifetime: u32) -> Result<Session> {
        let mut s = Session {
            username: username.to_string(),
            password: password.to_string(),
            auth: None,
            relayed: SocketAddr::from(([0, 0, 0, 0], 0)),
            requests: 0,
        };
        let resp = s.transact(socket, Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&Lifetime(lifetime))
        })?;
        let m = Message::parse(&resp).map_err(|e| anyhow::anyhow!("bad Allocate answer: {e:?}"))?;
        s.relayed = m.get::<XorRelayedAddress>().map_err(|_| anyhow::anyhow!("no XOR-RELAYED-ADDRESS"))?.0;
        Ok(s)
    }

    /// RFC 8656 §10.1: a permission for `peer`'s IP.
    pub fn create_permission(&mut self, socket: &dyn Link, peer: SocketAddr) -> Result<()> {
        self.transact(socket, Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).map(|_| ())
    }

    /// RFC 8656 §12.1: binds `channel` to `peer` (which installs the permission too).
    pub fn bind_channel(&mut self, socket: &dyn Link, channel: u16, peer: SocketAddr) -> Result<()> {
        self.transact(socket, Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(channel))?;
            w.add(&XorPeerAddress(peer))
        })
        .map(|_| ())
    }

    /// An authenticated request with RFC 8489 §6.2.1 retransmissions (RTO 100 ms on loopback,
    /// doubling, 5 tries); a 401 or 438 teaches the realm and nonce and is retried.
    fn transact(&mut self, socket: &dyn Link, method: Method, body: Body<'_>) -> Result<Vec<u8>> {
        let mut buf = [0u8; 1500];
        let mut resp = [0u8; 1500];
        for _ in 0..3 {
            let tid = new_transaction_id()?;
            let n = {
                let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid)?;
                body(&mut w)?;
                if let Some(a) = &self.auth {
                    w.add(&Username(&self.username))?;
                    w.add(&Realm(&a.realm))?;
                    w.add(&Nonce(&a.nonce))?;
                    w.add_message_integrity(&a.key)?;
                }
                w.add_fingerprint()?;
                w.finish()
            };
            let request = buf.get(..n).context("request too long")?;
            let len = self.exchange(socket, request, tid.0, &mut resp)?;
            let data = resp.get(..len).context("bad length")?;
            let m = Message::parse(data).map_err(|e| anyhow::anyhow!("bad answer: {e:?}"))?;
            if m.message_type().class == Class::SuccessResponse {
                return Ok(data.to_vec());
            }
            let err = m.get::<ErrorCode>().map_err(|_| anyhow::anyhow!("error answer without ERROR-CODE"))?;
            let (realm, nonce) = match (err.code, m.get::<Realm>(), m.get::<Nonce>()) {
                (codes::UNAUTHENTICATED | codes::STALE_NONCE, Ok(r), Ok(n)) => (r.0.to_string(), n.0.to_string()),
                (codes::STALE_NONCE, Err(_), Ok(n)) => {
                    (self.auth.as_ref().map(|a| a.realm.clone()).unwrap_or_default(), n.0.to_string())
                }
                (code, ..) => {
                    let reason = err.reason.to_string();
                    return Err(ErrorAnswer { method: format!("{method:?}"), code, reason }.into());
                }
            };
            let key = IntegrityKey::new(&long_term_key_md5(&self.username, &realm, &self.password));
            self.auth = Some(Auth { realm, nonce, key });
        }
        Err(anyhow::Error::new(CredentialsRefused).context(format!("{method:?}")))
    }

    /// Sends `request` and waits for the answer with its transaction ID.
    fn exchange(&mut self, socket: &dyn Link, request: &[u8], tid: [u8; 12], resp: &mut [u8]) -> Result<usize> {
        let mut rto = Duration::from_millis(100);
        for _ in 0..5 {
            self.requests += 1;
            socket.send(request)?;
            // Over TCP one transmission (RFC 8489 §6.2.2), with the whole wait.
            if socket.is_stream() {
                rto = Duration::from_secs(5);
            }
            let deadline = std::time::Instant::now() + rto;
            while std::time::Instant::now() < deadline {
                match socket.recv_timeout(resp, rto) {
                    Ok(n) if n >= 20 && resp.get(8..20) == Some(&tid[..]) => return Ok(n),
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            rto *= 2;
        }
        Err(NoAnswer.into())
    }
}

impl Session {
    /// Deletes the allocation (RFC 8656 §8: Refresh with LIFETIME 0), without waiting for the answer.
    pub fn delete(&mut self, socket: &dyn Link) -> Result<()> {
        let Some(a) = &self.auth else { return Ok(()) };
        let mut buf = [0u8; 512];
        let mut w =
            MessageWriter::new(&mut buf, MessageType::new(Method::REFRESH, Class::Request), new_transaction_id()?)?;
        w.add(&Lifetime(0))?;
        w.add(&Username(&self.username))?;
        w.add(&Realm(&a.realm))?;
        w.add(&Nonce(&a.nonce))?;
        w.add_message_integrity(&a.key)?;
        w.add_fingerprint()?;
        let n = w.finish();
        socket.send(buf.get(..n).unwrap_or_default())?;
        Ok(())
    }
}

/// A blocking leg to the server for the setup: UDP datagrams or STUN frames on a TCP stream.
pub trait Link {
    fn send(&self, message: &[u8]) -> std::io::Result<usize>;
    /// One datagram or frame, waiting at most `timeout`.
    fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize>;
    fn is_stream(&self) -> bool;
}

impl Link for UdpSocket {
    fn send(&self, message: &[u8]) -> std::io::Result<usize> {
        UdpSocket::send(self, message)
    }
    fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        self.set_read_timeout(Some(timeout))?;
        self.recv(buf)
    }
    fn is_stream(&self) -> bool {
        false
    }
}

impl Link for std::cell::RefCell<crate::tls::StreamIo> {
    fn send(&self, message: &[u8]) -> std::io::Result<usize> {
        let mut s = self.borrow_mut();
        s.write_all(message)?;
        s.flush()?;
        Ok(message.len())
    }
    /// Reads one STUN message or ChannelData frame (RFC 8656 §12.5: padded to 4 on streams).
    fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        let mut s = self.borrow_mut();
        s.tcp().set_read_timeout(Some(timeout))?;
        let bad = || std::io::Error::from(std::io::ErrorKind::InvalidData);
        let head = buf.get_mut(..4).ok_or_else(bad)?;
        s.read_exact(head)?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let total = frame_len(head[0], len).ok_or_else(bad)?;
        s.read_exact(buf.get_mut(4..total).ok_or_else(bad)?)?;
        Ok(total)
    }
    fn is_stream(&self) -> bool {
        true
    }
}

/// The length of a stream frame from its first byte and its length field: a STUN message (20-byte
/// header) or ChannelData (4-byte header, padded to 4).
pub fn frame_len(first: u8, len: usize) -> Option<usize> {
    match first {
        0x00..=0x03 => Some(20 + len),
        0x40..=0x7f => Some(4 + len.div_ceil(4) * 4),
        _ => None,
    }
}
