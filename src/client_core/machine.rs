//! One allocation on one server from the client's side (RFC 8656 §7–§12), sans-IO: Allocate
//! through the credential dance (RFC 8489 §9.2), the Refresh schedule (§8), permissions (§9) and
//! channel bindings (§12) renewed before they lapse, Send indications and ChannelData out, Data
//! indications and ChannelData in, and what it cannot keep as [`Event`]s.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::credentials::{Auth, Credentials, Dance, Step, sign};
use super::inbound::Inbound;
use super::schedule::RefreshSchedule;
use super::transaction::{Outcome, RetransmitConfig, Transaction};
use super::{LostReason, RequestError, new_transaction_id};
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{
    AddressFamily, ChannelNumber, Class, Data, EncodeError, ErrorCode, Lifetime, Message, MessageType, MessageWriter,
    Method, RequestedAddressFamily, RequestedTransport, XorMappedAddress, XorPeerAddress, XorRelayedAddress, codes,
};

/// Permission refresh period: RFC 8656 §9 permissions last 300 s.
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// Channel refresh period: RFC 8656 §12 channel bindings last 600 s.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(480);
/// The channel numbers a client may bind (RFC 8656 §12).
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;

/// Settings of a [`ClientAllocation`]. `#[non_exhaustive]`: outside the crate, start from
/// `default()` and use [`ClientConfig::with`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// LIFETIME to ask for (RFC 8656 §7.1).
    pub lifetime: u32,
    /// REQUESTED-ADDRESS-FAMILY (RFC 8656 §7.1); `None` asks for none (IPv4).
    pub family: Option<AddressFamily>,
    /// How often to refresh; `None`: [`refresh_period`](super::refresh_period) of the granted lifetime.
    pub refresh_interval: Option<Duration>,
    /// Over TCP or TLS: requests are sent once (RFC 8489 §6.2.2), ChannelData padded (RFC 8656 §12.5).
    pub reliable: bool,
    /// Retransmission parameters (RFC 8489 §6.2.1).
    pub retransmit: RetransmitConfig,
    /// A bound on each request, retransmissions included, shorter than RFC 8489's 39.5 s.
    pub request_timeout: Option<Duration>,
}

impl ClientConfig {
    /// This configuration after `set` has changed it, in one expression (a struct literal cannot
    /// be used outside the crate).
    #[must_use]
    pub fn with(mut self, set: impl FnOnce(&mut Self)) -> Self {
        set(&mut self);
        self
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            lifetime: 600,
            family: None,
            refresh_interval: None,
            reliable: false,
            retransmit: RetransmitConfig::default(),
            request_timeout: None,
        }
    }
}

/// Bytes to send to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The server's address.
    pub destination: SocketAddr,
    /// A STUN message or a ChannelData message (framed for a stream when reliable).
    pub bytes: Vec<u8>,
}

/// What happened to the allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The Allocate succeeded (RFC 8656 §7.3).
    Allocated {
        /// XOR-RELAYED-ADDRESS: where peers send.
        relayed: SocketAddr,
        /// XOR-MAPPED-ADDRESS: us as the server sees us.
        mapped: SocketAddr,
        /// The granted LIFETIME, seconds.
        lifetime: u32,
    },
    /// The Allocate failed; nothing more happens.
    AllocateFailed(RequestError),
    /// A Refresh succeeded (RFC 8656 §8.3) with this LIFETIME.
    Refreshed {
        /// Seconds.
        lifetime: u32,
    },
    /// A permission was installed or renewed (RFC 8656 §9.3).
    PermissionCreated {
        /// The peer's IP.
        peer: IpAddr,
    },
    /// A channel was bound or rebound (RFC 8656 §12.3).
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        number: u16,
    },
    /// A permission (`channel: None`) or channel binding could not be made or renewed; it is
    /// tried again at the next period. The allocation lives on.
    PeerFailed {
        /// The peer (port 0 for a permission).
        peer: SocketAddr,
        /// The channel number, for a channel binding.
        channel: Option<u16>,
        /// What the request got.
        error: RequestError,
    },
    /// A peer sent data to the relayed address (RFC 8656 §11.6 Data indication, §12.6 ChannelData).
    Data {
        /// The peer.
        peer: SocketAddr,
        /// Its bytes.
        bytes: Vec<u8>,
    },
    /// The allocation is lost for good (RFC 8656 §8.3: 437 to a Refresh, another refusal, or no
    /// answer before it expired).
    AllocationLost(LostReason),
    /// The allocation was deleted (a Refresh with LIFETIME 0, RFC 8656 §8.1).
    Deleted,
}

/// Why [`ClientAllocation::send`] sent nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// There is no allocation (not yet, lost or deleted).
    #[error("no allocation")]
    NotAllocated,
    /// The data does not fit in a message.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Allocating,
    /// Allocated, refreshed on this schedule.
    Live(RefreshSchedule),
    /// Failed, lost or deleted: nothing more is sent.
    Over,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Allocate,
    Refresh { lifetime: u32 },
    Permission { peer: IpAddr },
    ChannelBind { number: u16, peer: SocketAddr },
}

impl Kind {
    fn method(self) -> Method {
        match self {
            Kind::Allocate => Method::ALLOCATE,
            Kind::Refresh { .. } => Method::REFRESH,
            Kind::Permission { .. } => Method::CREATE_PERMISSION,
            Kind::ChannelBind { .. } => Method::CHANNEL_BIND,
        }
    }
}

/// A request in flight.
struct Pending {
    kind: Kind,
    dance: Dance,
    /// Whether it was signed (with the allocation's [`Auth`] of then).
    signed: bool,
    transaction: Transaction,
}

/// A TURN allocation held by a client, as a state machine (RFC 8656 §7–§12).
///
/// Feed it what the server sends ([`handle_input`](Self::handle_input)) and the time
/// ([`handle_timeout`](Self::handle_timeout) at [`poll_timeout`](Self::poll_timeout)); send what
/// [`poll_transmit`](Self::poll_transmit) gives; read [`poll_event`](Self::poll_event).
pub struct ClientAllocation {
    server: SocketAddr,
    config: ClientConfig,
    creds: Arc<Credentials>,
    /// The latest challenge's realm and nonce and the key (RFC 8489 §9.2).
    auth: Option<Auth>,
    phase: Phase,
    relayed: Option<SocketAddr>,
    pending: Vec<Pending>,
    /// Permissions and when each is renewed.
    permissions: HashMap<IpAddr, Instant>,
    /// Channels: the peer's number and when it is rebound.
    channels: HashMap<SocketAddr, (u16, Instant)>,
    by_channel: HashMap<u16, SocketAddr>,
    next_channel: u16,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    ignored: u64,
}

impl std::fmt::Debug for ClientAllocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAllocation")
            .field("server", &self.server)
            .field("relayed", &self.relayed)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl ClientAllocation {
    /// Starts allocating on `server` at `now` (RFC 8656 §7.1): the Allocate goes without
    /// credentials; the server's 401 teaches the realm and nonce (RFC 8489 §9.2.5).
    pub fn new(now: Instant, server: SocketAddr, creds: Credentials, config: ClientConfig) -> Self {
        let mut machine = ClientAllocation {
            server,
            config,
            creds: Arc::new(creds),
            auth: None,
            phase: Phase::Allocating,
            relayed: None,
            pending: Vec::new(),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            by_channel: HashMap::new(),
            next_channel: FIRST_CHANNEL,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            ignored: 0,
        };
        machine.start(now, Kind::Allocate, Dance::default());
        machine
    }

    /// The relayed address, once allocated.
    pub fn relayed_addr(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// Whether the allocation is made and not lost.
    pub fn is_live(&self) -> bool {
        matches!(self.phase, Phase::Live(_))
    }

    /// How many datagrams from the server were ignored: not STUN or ChannelData, malformed, from
    /// elsewhere, answers to no request in flight (late duplicates), data on unknown channels.
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Swaps the credentials: later requests are signed with them, under the realm and nonce we
    /// have (RFC 8489 §9.2.4).
    pub fn set_credentials(&mut self, creds: Credentials) -> Result<(), RequestError> {
        let creds = Arc::new(creds);
        if let Some(auth) = &self.auth {
            self.auth = Some(auth.rekey(&creds)?);
        }
        self.creds = creds;
        Ok(())
    }

    /// Installs a permission for `peer` (RFC 8656 §9.1); it is renewed every [`PERMISSION_REFRESH`].
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) {
        if self.is_live() {
            self.start(now, Kind::Permission { peer }, Dance::default());
        }
    }

    /// Binds a channel to `peer` (RFC 8656 §12.1), rebound every [`CHANNEL_REFRESH`]; returns its
    /// number (the one it has, if bound), `None` when there is no allocation.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Option<u16> {
        if !self.is_live() {
            return None;
        }
        let number = match self.channels.get(&peer) {
            Some((n, _)) => *n,
            None => {
                let n = self.next_channel;
                self.next_channel = if n >= LAST_CHANNEL { FIRST_CHANNEL } else { n + 1 };
                n
            }
        };
        self.start(now, Kind::ChannelBind { number, peer }, Dance::default());
        Some(number)
    }

    /// Refreshes the allocation now with `lifetime` (RFC 8656 §8.1); 0 deletes it.
    pub fn refresh(&mut self, now: Instant, lifetime: u32) {
        if self.is_live() {
            self.pending.retain(|p| !matches!(p.kind, Kind::Refresh { .. }));
            self.start(now, Kind::Refresh { lifetime }, Dance::default());
        }
    }

    /// Sends `data` to `peer` through the relay: ChannelData when a channel is bound (RFC 8656
    /// §12.5), else a Send indication (§11.1). The peer needs a permission.
    pub fn send(&mut self, peer: SocketAddr, data: &[u8]) -> Result<(), SendError> {
        if !self.is_live() {
            return Err(SendError::NotAllocated);
        }
        let mut buf = vec![0u8; data.len() + 64];
        let n = match self.channels.get(&peer) {
            Some((channel, _)) => ChannelData { channel: *channel, data }
                .encode(self.config.reliable, &mut buf)
                .ok_or(EncodeError::TooLong)?,
            None => {
                let ty = MessageType::new(Method::SEND, Class::Indication);
                let mut w = MessageWriter::new(&mut buf, ty, new_transaction_id())?;
                w.add(&XorPeerAddress(peer))?;
                w.add(&Data(data))?;
                w.finish()
            }
        };
        buf.truncate(n);
        self.transmits.push_back(Transmit { destination: self.server, bytes: buf });
        Ok(())
    }

    /// The next bytes to send to the server at `now`: data, then requests due (first sends and
    /// RFC 8489 §6.2.1 retransmissions).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        let server = self.server;
        self.pending
            .iter_mut()
            .find_map(|p| p.transaction.poll_transmit(now).map(|b| Transmit { destination: server, bytes: b.to_vec() }))
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next: a retransmission or a request
    /// timing out, a refresh due, the allocation expiring. `None`: nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let requests = self.pending.iter().filter_map(|p| p.transaction.poll_timeout());
        let mut at = requests.min();
        let mut earliest = |t: Option<Instant>| {
            at = match (at, t) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        };
        if let Phase::Live(schedule) = self.phase {
            earliest(Some(schedule.expires()));
            if !self.refreshing() {
                earliest(Some(schedule.next()));
            }
            earliest(self.permissions.values().min().copied());
            earliest(self.channels.values().map(|(_, at)| *at).min());
        }
        at
    }

    /// Handles the passing of time up to `now`: requests time out (RFC 8489 §6.2.1), refreshes of
    /// the allocation, permissions and channels start when due, the allocation expires.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut timed_out = Vec::new();
        self.pending.retain_mut(|p| {
            p.transaction.handle_timeout(now);
            let over = p.transaction.outcome() == Some(Outcome::Timeout);
            if over {
                timed_out.push(p.kind);
            }
            !over
        });
        for kind in timed_out {
            self.failed(now, kind, RequestError::Timeout);
        }
        let Phase::Live(schedule) = self.phase else { return };
        if now >= schedule.expires() {
            return self.lose(LostReason::Expired);
        }
        if !self.refreshing() && schedule.next() <= now {
            self.start(now, Kind::Refresh { lifetime: schedule.granted() }, Dance::default());
        }
        let due: Vec<IpAddr> = self.permissions.iter().filter(|(_, at)| **at <= now).map(|(ip, _)| *ip).collect();
        for peer in due {
            self.permissions.insert(peer, now + PERMISSION_REFRESH);
            self.start(now, Kind::Permission { peer }, Dance::default());
        }
        let due: Vec<(SocketAddr, u16)> =
            self.channels.iter().filter(|(_, (_, at))| *at <= now).map(|(peer, (n, _))| (*peer, *n)).collect();
        for (peer, number) in due {
            self.channels.insert(peer, (number, now + CHANNEL_REFRESH));
            self.start(now, Kind::ChannelBind { number, peer }, Dance::default());
        }
    }

    /// Handles what arrived from `from` at `now`: a response to a request in flight, a Data
    /// indication or ChannelData (RFC 8656 §11.6, §12.6). Anything else is ignored and counted.
    pub fn handle_input(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        if from != self.server {
            self.ignored += 1;
            return;
        }
        match Inbound::parse(bytes) {
            Inbound::Response(m) => {
                let (tid, method) = (m.transaction_id(), m.message_type().method);
                let found = self
                    .pending
                    .iter()
                    .position(|p| p.transaction.transaction_id() == tid && p.kind.method() == method);
                match found {
                    Some(i) => {
                        let p = self.pending.swap_remove(i);
                        self.answered(now, p, &m);
                    }
                    // A duplicate of an answer we had, or garbage.
                    None => self.ignored += 1,
                }
            }
            Inbound::Data { peer, data } if self.is_live() => {
                self.events.push_back(Event::Data { peer, bytes: data.to_vec() });
            }
            Inbound::ChannelData { channel, data } if self.is_live() => match self.by_channel.get(&channel) {
                Some(peer) => self.events.push_back(Event::Data { peer: *peer, bytes: data.to_vec() }),
                None => self.ignored += 1,
            },
            _ => self.ignored += 1,
        }
    }

    fn answered(&mut self, now: Instant, mut p: Pending, m: &Message<'_>) {
        let auth = if p.signed { self.auth.as_ref() } else { None };
        let challenge = m.message_type().class == Class::ErrorResponse
            && m.get::<ErrorCode>().is_ok_and(|e| matches!(e.code, codes::UNAUTHENTICATED | codes::STALE_NONCE));
        if let Some(a) = auth
            && !challenge
            && !a.authenticates(m)
        {
            // RFC 8489 §9.2.5: discarded as if never received; over a stream the transaction ends.
            self.ignored += 1;
            if self.config.reliable {
                return self.failed(now, p.kind, RequestError::BadResponse);
            }
            self.pending.push(p);
            return;
        }
        match p.dance.on_response(&self.creds, auth, m) {
            Ok(Step::Done) => self.succeeded(now, p.kind, m),
            Ok(Step::Retry(auth)) => {
                self.auth = Some(*auth);
                self.start(now, p.kind, p.dance);
            }
            Err(e) => self.failed(now, p.kind, e),
        }
    }

    fn succeeded(&mut self, now: Instant, kind: Kind, m: &Message<'_>) {
        match kind {
            Kind::Allocate => {
                let Ok(relayed) = m.get::<XorRelayedAddress>().map(|a| a.0) else {
                    return self.failed(now, kind, RequestError::BadResponse);
                };
                let mapped = m.get::<XorMappedAddress>().map(|a| a.0).unwrap_or(relayed);
                let lifetime = m.get::<Lifetime>().map(|l| l.0).unwrap_or(self.config.lifetime);
                self.relayed = Some(relayed);
                self.live(now, lifetime);
                self.events.push_back(Event::Allocated { relayed, mapped, lifetime });
            }
            Kind::Refresh { lifetime: 0 } => self.deleted(),
            Kind::Refresh { lifetime } => {
                let lifetime = m.get::<Lifetime>().map(|l| l.0).unwrap_or(lifetime);
                self.live(now, lifetime);
                self.events.push_back(Event::Refreshed { lifetime });
            }
            Kind::Permission { peer } => {
                self.permissions.insert(peer, now + PERMISSION_REFRESH);
                self.events.push_back(Event::PermissionCreated { peer });
            }
            Kind::ChannelBind { number, peer } => {
                // RFC 8656 §12.2: a binding installs or refreshes the peer's permission too.
                self.permissions.insert(peer.ip(), now + PERMISSION_REFRESH);
                if let Some((old, _)) = self.channels.insert(peer, (number, now + CHANNEL_REFRESH))
                    && old != number
                {
                    self.by_channel.remove(&old);
                }
                self.by_channel.insert(number, peer);
                self.events.push_back(Event::ChannelBound { peer, number });
            }
        }
    }

    fn failed(&mut self, now: Instant, kind: Kind, error: RequestError) {
        if self.phase == Phase::Over {
            return;
        }
        let gone = matches!(error, RequestError::ErrorResponse { code: codes::ALLOCATION_MISMATCH, .. });
        match kind {
            Kind::Allocate => {
                self.phase = Phase::Over;
                self.pending.clear();
                self.events.push_back(Event::AllocateFailed(error));
            }
            // RFC 8656 §8.3: 437 to a deleting Refresh: it is gone already.
            Kind::Refresh { lifetime: 0 } if gone => self.deleted(),
            Kind::Refresh { .. } => match LostReason::of(&error) {
                Some(reason) => self.lose(reason),
                None => {
                    if let Phase::Live(schedule) = &mut self.phase
                        && let Err(reason) = schedule.unanswered(now)
                    {
                        self.lose(reason);
                    }
                }
            },
            _ if gone => self.lose(LostReason::Gone),
            Kind::Permission { peer } => {
                let peer = SocketAddr::new(peer, 0);
                self.events.push_back(Event::PeerFailed { peer, channel: None, error });
            }
            Kind::ChannelBind { number, peer } => {
                self.events.push_back(Event::PeerFailed { peer, channel: Some(number), error });
            }
        }
    }

    fn live(&mut self, now: Instant, granted: u32) {
        match &mut self.phase {
            Phase::Live(schedule) => schedule.refreshed(now, granted),
            _ => self.phase = Phase::Live(RefreshSchedule::new(now, granted, self.config.refresh_interval)),
        }
    }

    fn lose(&mut self, reason: LostReason) {
        self.over();
        self.events.push_back(Event::AllocationLost(reason));
    }

    fn deleted(&mut self) {
        self.over();
        self.events.push_back(Event::Deleted);
    }

    fn over(&mut self) {
        self.phase = Phase::Over;
        self.pending.clear();
        self.permissions.clear();
        self.channels.clear();
        self.by_channel.clear();
    }

    fn refreshing(&self) -> bool {
        self.pending.iter().any(|p| matches!(p.kind, Kind::Refresh { .. }))
    }

    /// Sends (again, after a challenge) the request `kind`, signed with what we know.
    fn start(&mut self, now: Instant, kind: Kind, mut dance: Dance) {
        let tid = new_transaction_id();
        let mut buf = vec![0u8; 1500];
        let (config, auth) = (&self.config, self.auth.as_ref());
        let written = sign(&mut buf, kind.method(), tid, auth, |w| match kind {
            Kind::Allocate => {
                w.add(&RequestedTransport::UDP)?;
                if let Some(family) = config.family {
                    w.add(&RequestedAddressFamily(family))?;
                }
                w.add(&Lifetime(config.lifetime))
            }
            Kind::Refresh { lifetime } => w.add(&Lifetime(lifetime)),
            Kind::Permission { peer } => w.add(&XorPeerAddress(SocketAddr::new(peer, 0))),
            Kind::ChannelBind { number, peer } => {
                w.add(&ChannelNumber(number))?;
                w.add(&XorPeerAddress(peer))
            }
        });
        let n = match written {
            Ok(n) => n,
            Err(e) => return self.failed(now, kind, e),
        };
        buf.truncate(n);
        dance.sent();
        let mut transaction = Transaction::new(now, tid, buf, self.config.reliable, self.config.retransmit);
        if let Some(timeout) = self.config.request_timeout {
            transaction = transaction.with_deadline(now + timeout);
        }
        let signed = self.auth.is_some();
        self.pending.push(Pending { kind, dance, signed, transaction });
    }
}
