//! A TURN client over UDP, TCP or TLS (RFC 8656 §7–§12 from the client's side): allocate with
//! long-term credentials (the 401/438 dance handled here), keep the allocation, its permissions and
//! channels refreshed in the background, send to peers and receive from them. Over TCP and TLS
//! (RFC 8656 §3.1) one connection carries everything and closing it deletes the allocation.
//! [`TcpAllocation`] holds a TCP relayed address instead (RFC 6062, `turn/tcp.rs`). With
//! [`ClientOptions::mobility`] an allocation held over UDP can move to a new local socket and keep
//! its relayed address (RFC 8016, [`TurnClient::move_to`], `turn/mobility.rs`).
//!
//! ```no_run
//! use switchback::client::turn::{ClientOptions, Credentials, TurnTransport, TurnClient};
//!
//! # async fn run(tls: switchback::client::TlsClient) -> Result<(), switchback::client::ClientError> {
//! let server = "127.0.0.1:3478".parse().unwrap();
//! let creds = Credentials::new("1700000000:alice", "base64-password");
//! let client = TurnClient::allocate(server, creds.clone()).await?; // over UDP
//! // Or over TLS (`turns:`), or `TurnTransport::Tcp`:
//! let options = ClientOptions { transport: TurnTransport::Tls(tls), ..ClientOptions::default() };
//! let client = TurnClient::allocate_with("127.0.0.1:5349".parse().unwrap(), creds, options).await?;
//! println!("peers can reach us at {}", client.relayed_addr());
//! let peer = "198.51.100.7:5000".parse().unwrap();
//! client.create_permission(peer).await?;
//! client.bind_channel(peer).await?; // optional: 4-byte ChannelData headers instead of 36
//! client.send_to(b"hello", peer).await?;
//! let mut buf = [0u8; 1500];
//! let (n, from) = client.recv_from(&mut buf).await?;
//! println!("{from} says {:?}", &buf[..n]);
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! A phone going from Wi-Fi to LTE takes its allocation along (RFC 8016; UDP to UDP only):
//!
//! ```no_run
//! use switchback::client::turn::{ClientOptions, Credentials, TurnClient};
//!
//! # async fn run() -> Result<(), switchback::client::ClientError> {
//! let options = ClientOptions { mobility: true, ..ClientOptions::default() }; // RFC 8016 §3.1
//! let creds = Credentials::new("1700000000:alice", "base64-password");
//! let client = TurnClient::allocate_with("192.0.2.1:3478".parse().unwrap(), creds, options).await?;
//! let relayed = client.relayed_addr();
//! // The Wi-Fi is gone: a Refresh with the MOBILITY-TICKET from a socket on the new network
//! // (RFC 8016 §3.2); send_to, recv_from, permissions, channels and refreshes follow it.
//! client.rebind("203.0.113.5:0".parse().unwrap()).await?;
//! assert_eq!(client.relayed_addr(), relayed);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{ClientError, new_transaction_id};
use crate::auth::{KeyAlgorithm, LongTermKey, SecurityFeatures, opaque_string};
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{
    AccessToken, AddressFamily, ChannelNumber, Class, ConnectionId, Data, EncodeError, ErrorCode, IntegrityKey,
    IntegrityKeySha256, Lifetime, Message, MessageType, MessageWriter, Method, MobilityTicket, Nonce,
    PasswordAlgorithm, PasswordAlgorithms, Realm, RequestedAddressFamily, RequestedTransport, TransactionId, Userhash,
    Username, XorMappedAddress, XorPeerAddress, XorRelayedAddress, codes, long_term_key_md5, password_algorithm,
};

mod mobility;
mod peer_stream;
mod tcp;
mod transport;

use mobility::Mobility;
pub use peer_stream::PeerStream;
pub use tcp::TcpAllocation;
pub use transport::TurnTransport;
use transport::{Link, Reader};

/// A username and password for the long-term credential mechanism (RFC 8489 §9.2); with REST
/// credentials the username is `expiry:user` and the password the base64 HMAC.
#[derive(Clone)]
pub struct Credentials {
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
    /// An RFC 7635 access token instead of the password.
    token: Option<Arc<TokenCredential>>,
    /// Use the SHA-256 password algorithm when the server offers it (RFC 8489 §9.2.5).
    prefer_sha256: bool,
    /// Send USERHASH instead of USERNAME when the server offers username anonymity (RFC 8489 §9.2.5).
    userhash: bool,
}

/// An RFC 7635 self-contained token and the session key it carries.
struct TokenCredential {
    token: Vec<u8>,
    mac_key: Vec<u8>,
}

impl Credentials {
    /// Credentials from a username and a password.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
            token: None,
            prefer_sha256: false,
            userhash: false,
        }
    }

    /// RFC 8489 §9.2.5: when the server's nonce announces password algorithms and its
    /// PASSWORD-ALGORITHMS lists SHA-256, key with SHA-256(username ":" realm ":" OpaqueString(password))
    /// and sign with MESSAGE-INTEGRITY-SHA256, echoing PASSWORD-ALGORITHMS. Without it (or without
    /// the offer) requests are RFC 5389 ones: MD5 and MESSAGE-INTEGRITY.
    pub fn prefer_sha256(mut self) -> Self {
        self.prefer_sha256 = true;
        self
    }

    /// RFC 8489 §9.2.5, §14.4: when the server's nonce announces username anonymity, send USERHASH
    /// instead of USERNAME (for a username that is an ASCII OpaqueString; others go as they are).
    pub fn with_userhash(mut self) -> Self {
        self.userhash = true;
        self
    }

    /// RFC 7635 third-party authorization: `token` is the ACCESS-TOKEN an authorization server
    /// issued under the key `kid`, `mac_key` the session key it carries (20 bytes: MESSAGE-INTEGRITY
    /// with HMAC-SHA1; 32 bytes: MESSAGE-INTEGRITY-SHA256). Allocate and Refresh carry the token;
    /// every request carries USERNAME `kid` and is signed with `mac_key` (RFC 7635 §6.2).
    pub fn access_token(kid: impl Into<String>, token: impl Into<Vec<u8>>, mac_key: impl Into<Vec<u8>>) -> Self {
        let token = TokenCredential { token: token.into(), mac_key: mac_key.into() };
        Credentials {
            username: kid.into(),
            password: String::new(),
            token: Some(Arc::new(token)),
            prefer_sha256: false,
            userhash: false,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// How to reach the server: UDP (the default), TCP or TLS.
    pub transport: TurnTransport,
    /// LIFETIME to ask for (RFC 8656 §7.1); the server may grant another.
    pub lifetime: u32,
    /// REQUESTED-ADDRESS-FAMILY of the relayed address (RFC 8656 §7.1); `None` asks for none (IPv4).
    pub family: Option<AddressFamily>,
    /// How long one request may take, retransmissions included; also bounds the TCP connect and
    /// the TLS handshake.
    pub request_timeout: Duration,
    /// The local address to bind (default: the unspecified address of the server's family).
    pub bind: Option<SocketAddr>,
    /// How many received datagrams may wait for [`TurnClient::recv_from`] before new ones are dropped.
    pub queue: usize,
    /// Ask for mobility (RFC 8016 §3.1): the Allocate carries an empty MOBILITY-TICKET and the
    /// ticket the server answers with lets [`TurnClient::move_to`] take the allocation to a new
    /// socket. A server that forbids mobility (405, §3.4) is asked again without: the allocation
    /// is made, and moves return [`ClientError::MobilityForbidden`].
    pub mobility: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            transport: TurnTransport::Udp,
            lifetime: 600,
            family: None,
            request_timeout: Duration::from_secs(10),
            bind: None,
            queue: 1024,
            mobility: false,
        }
    }
}

/// Permission refresh period: RFC 8656 §9 permissions last 300 s.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channel refresh period: RFC 8656 §12 channels last 600 s.
const CHANNEL_REFRESH: Duration = Duration::from_secs(480);

#[derive(Clone)]
struct Auth {
    realm: String,
    nonce: String,
    key: IntegrityKey,
    /// MESSAGE-INTEGRITY-SHA256 instead: an RFC 7635 session key of 32 bytes, or a SHA-256
    /// long-term key (RFC 8489 §9.2.5).
    key_sha256: Option<IntegrityKeySha256>,
    /// The server's PASSWORD-ALGORITHMS (raw, echoed as it came) and the one we chose, when we
    /// choose one (RFC 8489 §9.2.5).
    algorithms: Option<(Vec<u8>, u16)>,
    /// USERHASH to send instead of USERNAME (RFC 8489 §14.4).
    userhash: Option<[u8; 32]>,
}

#[derive(Default)]
struct Peers {
    permissions: Vec<IpAddr>,
    channels: HashMap<SocketAddr, u16>,
    by_channel: HashMap<u16, SocketAddr>,
    next_channel: u16,
}

/// Requests waiting for their response; `None` once the stream to the server has closed.
type Pending = Option<HashMap<TransactionId, oneshot::Sender<Vec<u8>>>>;

/// A ConnectionAttempt indication (RFC 6062 §4.4): the CONNECTION-ID and the peer's address.
type Attempt = (u32, SocketAddr);

struct Inner {
    link: Link,
    server: SocketAddr,
    creds: Credentials,
    timeout: Duration,
    auth: Mutex<Option<Auth>>,
    pending: Mutex<Pending>,
    peers: Mutex<Peers>,
    /// Where ConnectionAttempt indications go, for a TCP allocation; `None` once the stream to
    /// the server has closed.
    attempts: Mutex<Option<mpsc::Sender<Attempt>>>,
    /// The latest MOBILITY-TICKET, or why there is none (RFC 8016).
    mobility: Mutex<Mobility>,
}

/// A TURN allocation held by this client. Dropping it stops the background tasks (over UDP the
/// allocation then expires on the server; over TCP or TLS the connection closes, which deletes it);
/// [`TurnClient::close`] deletes it at once.
pub struct TurnClient {
    inner: Arc<Inner>,
    relayed: SocketAddr,
    mapped: SocketAddr,
    lifetime: u32,
    inbound: tokio::sync::Mutex<mpsc::Receiver<(SocketAddr, Vec<u8>)>>,
    /// The inbound queue's sending end, for the reader of a socket an RFC 8016 move tries (weak:
    /// the queue still closes when the stream's reader ends).
    inbound_tx: mpsc::WeakSender<(SocketAddr, Vec<u8>)>,
    /// The task reading the leg; held across an RFC 8016 move, which replaces it, so that moves
    /// run one at a time.
    reader: tokio::sync::Mutex<JoinHandle<()>>,
    /// The task refreshing the allocation, permissions and channels.
    keeper: JoinHandle<()>,
}

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient").field("server", &self.inner.server).field("relayed", &self.relayed).finish()
    }
}

impl Drop for TurnClient {
    fn drop(&mut self) {
        self.reader.get_mut().abort();
        self.keeper.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TurnClient {
    /// Allocates a UDP relayed address on `server`, talking to it over UDP, with default options.
    pub async fn allocate(server: SocketAddr, creds: Credentials) -> Result<Self, ClientError> {
        Self::allocate_with(server, creds, ClientOptions::default()).await
    }

    /// Allocates a UDP relayed address on `server` (RFC 8656 §7.1), talking to it over
    /// `options.transport`.
    pub async fn allocate_with(
        server: SocketAddr,
        creds: Credentials,
        options: ClientOptions,
    ) -> Result<Self, ClientError> {
        Self::allocate_relay(server, creds, &options, RequestedTransport::UDP, None).await
    }

    /// Allocates a relayed address of transport `relay`; ConnectionAttempt indications go to
    /// `attempts` (RFC 6062).
    async fn allocate_relay(
        server: SocketAddr,
        creds: Credentials,
        options: &ClientOptions,
        relay: RequestedTransport,
        attempts: Option<mpsc::Sender<Attempt>>,
    ) -> Result<Self, ClientError> {
        let (link, reader) = Link::connect(&options.transport, server, options.bind, options.request_timeout).await?;
        let inner = Arc::new(Inner {
            link,
            server,
            creds,
            timeout: options.request_timeout,
            auth: Mutex::new(None),
            pending: Mutex::new(Some(HashMap::new())),
            peers: Mutex::new(Peers { next_channel: 0x4000, ..Peers::default() }),
            attempts: Mutex::new(attempts),
            mobility: Mutex::new(Mobility::default()),
        });
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        let inbound_tx = tx.downgrade();
        let reader = tokio::spawn(read_loop(Arc::clone(&inner), reader, tx));
        let (lifetime, family) = (options.lifetime, options.family);
        // RFC 8016 §3.4: mobility forbidden (405), the allocation is asked for again without.
        let mut mobile = options.mobility;
        let resp = loop {
            let resp = inner
                .transact(Method::ALLOCATE, &|w| {
                    w.add(&relay)?;
                    if let Some(family) = family {
                        w.add(&RequestedAddressFamily(family))?;
                    }
                    if mobile {
                        // RFC 8016 §3.1: an empty MOBILITY-TICKET asks for mobility.
                        w.add(&MobilityTicket(&[]))?;
                    }
                    w.add(&Lifetime(lifetime))
                })
                .await;
            match resp {
                Err(ClientError::ErrorResponse { code: codes::MOBILITY_FORBIDDEN, .. }) if mobile => {
                    lock(&inner.mobility).forbid();
                    mobile = false;
                }
                resp => break resp,
            }
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                reader.abort();
                return Err(e);
            }
        };
        let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
        let relayed = m.get::<XorRelayedAddress>().map_err(|_| ClientError::NoMappedAddress)?.0;
        let mapped = m.get::<XorMappedAddress>().map(|a| a.0).unwrap_or(relayed);
        let granted = m.get::<Lifetime>().map(|l| l.0).unwrap_or(lifetime);
        lock(&inner.mobility).keep(&m);
        let keeper = tokio::spawn(keep_alive(Arc::downgrade(&inner), granted));
        Ok(TurnClient {
            inner,
            relayed,
            mapped,
            lifetime: granted,
            inbound: tokio::sync::Mutex::new(rx),
            inbound_tx,
            reader: tokio::sync::Mutex::new(reader),
            keeper,
        })
    }

    /// The relayed transport address peers send to (XOR-RELAYED-ADDRESS).
    pub fn relayed_addr(&self) -> SocketAddr {
        self.relayed
    }

    /// Our address as the server sees it (XOR-MAPPED-ADDRESS).
    pub fn mapped_addr(&self) -> SocketAddr {
        self.mapped
    }

    /// Our local socket address (of the UDP socket, or of the TCP connection).
    pub fn local_addr(&self) -> Result<SocketAddr, ClientError> {
        Ok(self.inner.link.local_addr()?)
    }

    /// The lifetime the server granted, seconds.
    pub fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// Installs a permission for `peer`'s IP (RFC 8656 §10.1); refreshed in the background.
    pub async fn create_permission(&self, peer: SocketAddr) -> Result<(), ClientError> {
        self.inner.create_permission(peer).await?;
        let mut peers = lock(&self.inner.peers);
        if !peers.permissions.contains(&peer.ip()) {
            peers.permissions.push(peer.ip());
        }
        Ok(())
    }

    /// Binds a channel to `peer` (RFC 8656 §12.1) and returns its number; data to that peer then
    /// goes as ChannelData. Rebound in the background.
    pub async fn bind_channel(&self, peer: SocketAddr) -> Result<u16, ClientError> {
        let number = {
            let mut peers = lock(&self.inner.peers);
            match peers.channels.get(&peer) {
                Some(n) => *n,
                None => {
                    let n = peers.next_channel;
                    peers.next_channel = if n >= 0x4FFF { 0x4000 } else { n + 1 };
                    n
                }
            }
        };
        self.inner.channel_bind(number, peer).await?;
        let mut peers = lock(&self.inner.peers);
        peers.channels.insert(peer, number);
        peers.by_channel.insert(number, peer);
        if !peers.permissions.contains(&peer.ip()) {
            peers.permissions.push(peer.ip());
        }
        Ok(number)
    }

    /// Sends `data` to `peer` through the relay: ChannelData when a channel is bound (padded to 4
    /// bytes on a stream, RFC 8656 §12.5), else a Send indication (RFC 8656 §11.1). The peer needs a
    /// permission.
    pub async fn send_to(&self, data: &[u8], peer: SocketAddr) -> Result<(), ClientError> {
        let channel = lock(&self.inner.peers).channels.get(&peer).copied();
        let mut buf = vec![0u8; data.len() + 64];
        let stream = self.inner.link.is_stream();
        let n = match channel {
            Some(c) => ChannelData { channel: c, data }.encode(stream, &mut buf).ok_or(EncodeError::TooLong)?,
            None => {
                let ty = MessageType::new(Method::SEND, Class::Indication);
                let mut w = MessageWriter::new(&mut buf, ty, new_transaction_id()?)?;
                w.add(&XorPeerAddress(peer))?;
                w.add(&Data(data))?;
                w.finish()
            }
        };
        self.inner.link.send(buf.get(..n).unwrap_or_default()).await
    }

    /// Receives the next datagram a peer sent to our relayed address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), ClientError> {
        let (peer, data) = self.inbound.lock().await.recv().await.ok_or(ClientError::Closed)?;
        let n = data.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..n), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        Ok((n, peer))
    }

    /// Refreshes the allocation (RFC 8656 §8.1) and returns the granted lifetime.
    pub async fn refresh(&self, lifetime: u32) -> Result<u32, ClientError> {
        self.inner.refresh(lifetime).await
    }

    /// Deletes the allocation (Refresh with LIFETIME 0), closes the stream to the server if there
    /// is one, and stops the background tasks.
    pub async fn close(self) -> Result<(), ClientError> {
        let deleted = match self.inner.refresh(0).await {
            // RFC 8656 §8.3: 437 to a deleting Refresh means it is gone already; RFC 8656 §3.1:
            // so it is when the server closed the stream.
            Ok(_)
            | Err(ClientError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. })
            | Err(ClientError::Closed) => Ok(()),
            Err(e) => Err(e),
        };
        self.inner.link.shutdown().await;
        deleted
    }
}

/// What to retry with after the error response `m` (RFC 8489 §9.2.5): a 401 teaches the realm and
/// nonce when we sent no credentials (`realm` is `None`), a 438 a fresh nonce. Any other error is
/// returned as [`ClientError::ErrorResponse`].
fn reauth(creds: &Credentials, realm: Option<&str>, m: &Message<'_>) -> Result<Auth, ClientError> {
    let err = m.get::<ErrorCode>().map_err(|_| ClientError::BadFrame)?;
    let (realm, nonce) = match (err.code, m.get::<Realm>(), m.get::<Nonce>()) {
        (codes::UNAUTHENTICATED, Ok(new), Ok(nonce)) if realm.is_none() => (new.0.to_string(), nonce.0),
        (codes::STALE_NONCE, new, Ok(nonce)) => {
            (new.map(|r| r.0.to_string()).ok().or_else(|| realm.map(str::to_string)).unwrap_or_default(), nonce.0)
        }
        _ => return Err(ClientError::ErrorResponse { code: err.code, reason: err.reason.to_string() }),
    };
    // RFC 7635 §6.2: a token's mac_key keys MESSAGE-INTEGRITY directly.
    if let Some(t) = &creds.token {
        let key_sha256 = (t.mac_key.len() == 32).then(|| IntegrityKeySha256::new(&t.mac_key));
        let key = IntegrityKey::new(&t.mac_key);
        return Ok(Auth { realm, nonce: nonce.to_string(), key, key_sha256, algorithms: None, userhash: None });
    }
    long_term_auth(creds, realm, nonce, m)
}

/// The long-term key and what goes with it, RFC 8489 §9.2.5: the nonce cookie's security features
/// say whether the server offers password algorithms (then PASSWORD-ALGORITHMS must be there: a
/// missing one is a bid-down) and username anonymity.
fn long_term_auth(creds: &Credentials, realm: String, nonce: &str, m: &Message<'_>) -> Result<Auth, ClientError> {
    let features = crate::auth::nonce_features(nonce).unwrap_or(SecurityFeatures::NONE);
    let userhash = (creds.userhash && features.contains(SecurityFeatures::USERNAME_ANONYMITY))
        .then(|| crate::auth::userhash(&creds.username, &realm).ok())
        .flatten();
    let offered = m.get::<PasswordAlgorithms>().ok();
    let sha256 = match (features.contains(SecurityFeatures::PASSWORD_ALGORITHMS), offered) {
        (true, None) => return Err(ClientError::AuthDowngrade),
        (true, Some(list))
            if creds.prefer_sha256
                && list.iter().any(|a| a.algorithm == password_algorithm::SHA256 && a.params.is_empty()) =>
        {
            Some(list.as_bytes().to_vec())
        }
        _ => None,
    };
    let Some(list) = sha256 else {
        let key = IntegrityKey::new(&long_term_key_md5(&creds.username, &realm, &creds.password));
        return Ok(Auth { realm, nonce: nonce.to_string(), key, key_sha256: None, algorithms: None, userhash });
    };
    opaque_string(&creds.password)?;
    let long_term = LongTermKey::derive(KeyAlgorithm::Sha256, &creds.username, &realm, &creds.password)
        .ok_or(ClientError::Password(crate::auth::OpaqueStringError::Empty))?;
    Ok(Auth {
        realm,
        nonce: nonce.to_string(),
        key: IntegrityKey::new(long_term.as_bytes()),
        key_sha256: Some(IntegrityKeySha256::new(long_term.as_bytes())),
        algorithms: Some((list, password_algorithm::SHA256)),
        userhash,
    })
}

type Body<'a> = &'a (dyn Fn(&mut MessageWriter<'_>) -> Result<(), EncodeError> + Sync);

impl Inner {
    async fn create_permission(&self, peer: SocketAddr) -> Result<(), ClientError> {
        self.transact(Method::CREATE_PERMISSION, &|w| w.add(&XorPeerAddress(peer))).await.map(|_| ())
    }

    async fn channel_bind(&self, number: u16, peer: SocketAddr) -> Result<(), ClientError> {
        self.transact(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(number))?;
            w.add(&XorPeerAddress(peer))
        })
        .await
        .map(|_| ())
    }

    /// RFC 8656 §8.1; a MOBILITY-TICKET in the answer replaces ours (RFC 8016 §3.2).
    async fn refresh(&self, lifetime: u32) -> Result<u32, ClientError> {
        let resp = self.transact(Method::REFRESH, &|w| w.add(&Lifetime(lifetime))).await?;
        let m = Message::parse(&resp).map_err(|_| ClientError::BadFrame)?;
        lock(&self.mobility).keep(&m);
        Ok(m.get::<Lifetime>().map(|l| l.0).unwrap_or(lifetime))
    }

    /// Sends an authenticated request and returns the success response. A 401 teaches us the realm
    /// and nonce, a 438 a fresh nonce; either is retried once with the new values.
    async fn transact(&self, method: Method, body: Body<'_>) -> Result<Vec<u8>, ClientError> {
        self.transact_via(method, body, None).await
    }

    /// [`Inner::transact`] from `via` instead of the leg: the socket an RFC 8016 move tries (its
    /// answers come back through that socket's reader).
    async fn transact_via(
        &self,
        method: Method,
        body: Body<'_>,
        via: Option<&tokio::net::UdpSocket>,
    ) -> Result<Vec<u8>, ClientError> {
        for _ in 0..3 {
            let tid = new_transaction_id()?;
            let mut buf = vec![0u8; 1500];
            let n = {
                let mut w = MessageWriter::new(&mut buf, MessageType::new(method, Class::Request), tid)?;
                body(&mut w)?;
                let auth = lock(&self.auth);
                if let Some(a) = auth.as_ref() {
                    // RFC 7635 §6.2: the token goes with Allocate and Refresh.
                    if let Some(t) = &self.creds.token
                        && (method == Method::ALLOCATE || method == Method::REFRESH)
                    {
                        w.add(&AccessToken(&t.token))?;
                    }
                    match a.userhash {
                        Some(h) => w.add(&Userhash(h))?,
                        None => w.add(&Username(&self.creds.username))?,
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
            let realm = lock(&self.auth).as_ref().map(|a| a.realm.clone());
            let auth = reauth(&self.creds, realm.as_deref(), &m)?;
            *lock(&self.auth) = Some(auth);
        }
        Err(ClientError::ErrorResponse { code: codes::UNAUTHENTICATED, reason: "authentication failed".into() })
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

/// Reads the leg: responses go to their waiting request, peer data to the inbound queue. When the
/// stream closes, waiting and later requests fail with [`ClientError::Closed`] and so does
/// [`TurnClient::recv_from`] once the queue is empty.
async fn read_loop(inner: Arc<Inner>, reader: Reader, tx: mpsc::Sender<(SocketAddr, Vec<u8>)>) {
    inner.link.receive(reader, |data| deliver(&inner, data, &tx)).await;
    // Dropping the senders wakes every waiting request, and TcpAllocation::accept.
    lock(&inner.pending).take();
    lock(&inner.attempts).take();
}

/// One datagram or frame from the server.
fn deliver(inner: &Inner, data: &[u8], tx: &mpsc::Sender<(SocketAddr, Vec<u8>)>) {
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
                        let _ = tx.try_send((peer.0, d.0.to_vec()));
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
                let _ = tx.try_send((peer, cd.data.to_vec()));
            }
        }
        _ => {}
    }
}

/// Refreshes the allocation before it expires, permissions every 4 minutes and channels every 8.
async fn keep_alive(inner: std::sync::Weak<Inner>, lifetime: u32) {
    let refresh_every = Duration::from_secs(u64::from(lifetime.max(60)) * 4 / 5);
    let start = tokio::time::Instant::now();
    let (mut next_refresh, mut next_perm, mut next_chan) =
        (start + refresh_every, start + PERMISSION_REFRESH, start + CHANNEL_REFRESH);
    loop {
        let wake = next_refresh.min(next_perm).min(next_chan);
        tokio::time::sleep_until(wake).await;
        let Some(inner) = inner.upgrade() else { return };
        let now = tokio::time::Instant::now();
        if now >= next_refresh {
            let _ = inner.refresh(lifetime).await;
            next_refresh = now + refresh_every;
        }
        if now >= next_chan {
            let channels: Vec<(SocketAddr, u16)> = lock(&inner.peers).channels.iter().map(|(p, n)| (*p, *n)).collect();
            for (peer, n) in channels {
                let _ = inner.channel_bind(n, peer).await;
            }
            next_chan = now + CHANNEL_REFRESH;
        }
        if now >= next_perm {
            let ips: Vec<IpAddr> = lock(&inner.peers).permissions.clone();
            for ip in ips {
                let _ = inner.create_permission(SocketAddr::new(ip, 0)).await;
            }
            next_perm = now + PERMISSION_REFRESH;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{NonceKey, userhash};

    /// A 401 with `nonce` and PASSWORD-ALGORITHMS `offer` when given.
    fn challenge(nonce: &str, offer: Option<PasswordAlgorithms<'_>>) -> Vec<u8> {
        let mut buf = vec![0u8; 512];
        let ty = MessageType::new(Method::ALLOCATE, Class::ErrorResponse);
        let mut w = MessageWriter::new(&mut buf, ty, TransactionId([1; 12])).unwrap();
        w.add(&ErrorCode::new(401)).unwrap();
        w.add(&Realm("example.org")).unwrap();
        w.add(&Nonce(nonce)).unwrap();
        if let Some(o) = offer {
            w.add(&o).unwrap();
        }
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    fn nonce(features: SecurityFeatures) -> String {
        NonceKey::new([1; 32]).nonce(1_800_000_000, "192.0.2.1:1".parse().unwrap(), features).to_string()
    }

    #[test]
    fn sha256_and_userhash_when_offered_and_asked_for() {
        let both = SecurityFeatures::PASSWORD_ALGORITHMS.union(SecurityFeatures::USERNAME_ANONYMITY);
        let bytes = challenge(&nonce(both), Some(PasswordAlgorithms::SHA256_AND_MD5));
        let m = Message::parse(&bytes).unwrap();
        let creds = Credentials::new("alice", "wonderland").prefer_sha256().with_userhash();
        let a = reauth(&creds, None, &m).unwrap();
        assert_eq!(a.algorithms, Some((PasswordAlgorithms::SHA256_AND_MD5.as_bytes().to_vec(), 2)));
        assert_eq!(a.userhash, Some(userhash("alice", "example.org").unwrap()));
        assert!(a.key_sha256.is_some());
        // Not asked for: an RFC 5389 request.
        let a = reauth(&Credentials::new("alice", "wonderland"), None, &m).unwrap();
        assert!(a.algorithms.is_none() && a.userhash.is_none() && a.key_sha256.is_none());
        // Username anonymity not offered: USERNAME.
        let bytes = challenge(&nonce(SecurityFeatures::PASSWORD_ALGORITHMS), Some(PasswordAlgorithms::SHA256_AND_MD5));
        let a = reauth(&creds, None, &Message::parse(&bytes).unwrap()).unwrap();
        assert!(a.userhash.is_none() && a.algorithms.is_some());
    }

    #[test]
    fn a_stripped_offer_is_a_bid_down() {
        let bytes = challenge(&nonce(SecurityFeatures::PASSWORD_ALGORITHMS), None);
        let creds = Credentials::new("alice", "wonderland").prefer_sha256();
        let err = reauth(&creds, None, &Message::parse(&bytes).unwrap()).map(|_| ()).unwrap_err();
        assert!(matches!(err, ClientError::AuthDowngrade), "{err:?}");
        // An RFC 5389 server (no cookie): MD5, nothing more.
        let bytes = challenge("0123456789abcdef", None);
        let a = reauth(&creds, None, &Message::parse(&bytes).unwrap()).unwrap();
        assert!(a.algorithms.is_none() && a.key_sha256.is_none());
    }
}
