//! The stateful fuzz target: a TURN server with credentials and a fake relay driver, driven by a
//! sequence of operations decoded from the fuzz input, with the server's promises checked after
//! every one of them.
//!
//! The input is a configuration byte and then operations ([`Op`]): fake time moving on, raw
//! datagrams from a handful of clients, *well-formed signed requests* built from fuzz-chosen fields
//! (the harness does the 401 round trip and follows 438 answers, so the fuzzer gets past
//! authentication), Send indications and ChannelData, peer datagrams into allocations, sweeps,
//! retransmissions, relay-socket failures. After each operation:
//!
//! * every answer is STUN for the request it answers, and a signed one verifies with the key of the
//!   request's USERNAME; a success is always signed; a 401/438 never is;
//! * the fake driver's relay sockets: every allocation in the table holds a started, unstopped
//!   socket, every other started socket was stopped exactly once, and the sockets bound but never
//!   started are exactly the port reservations the model expects (EVEN-PORT R tokens seen in
//!   answers, minus those used by an Allocate or expired by a sweep); no two live sockets share an
//!   address;
//! * `allocations_created − allocations_deleted` equals the table size; every handled input is
//!   counted once in the stats; quotas hold;
//! * nothing is sent to a peer the policy refuses, or without a permission the model allows
//!   (permissions and channels are learnt from success answers, an over-approximation), and what
//!   is sent is exactly the client's data;
//! * a peer datagram without a permission produces nothing; one that produces a Data indication or
//!   ChannelData carries exactly the peer's bytes (the receive buffer is reused and keeps older,
//!   larger datagrams: a leak of stale bytes shows).
//!
//! [`server_stateful_seeds`] builds the named seeds committed in `fuzz/corpus/server_stateful/`.

mod checks;
mod driver;
mod ledger;
mod ops;
mod requests;
mod seeds;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::alloc::{Allocation, FiveTuple, Millis};
use crate::auth::{AuthConfig, Authenticator, RestCredentials, Secret, StaticCredential};
use crate::policy::PeerPolicy;
use crate::proto::channel_data::ChannelData;
use crate::proto::stun::{
    AddressFamily, ChannelNumber, Class, Data, DontFragment, ErrorCode, EvenPort, IntegrityKey, Lifetime, Message,
    MessageType, MessageWriter, Method, Nonce, Realm, RequestedAddressFamily, RequestedTransport, ReservationToken,
    Software, TransactionId, Username, XorPeerAddress, codes, long_term_key_md5, types,
};
use crate::server::{HEADROOM, Outcome, Received, RelayAddress, Server, ServerOptions, Transport};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use checks::Model;
use driver::{FakeDriver, FakeSocket};
use ops::Input;
pub use ops::{Op, ScenarioConfig, allocate, encode, flags};

pub use seeds::server_stateful_seeds;

const REALM: &str = "fuzz.realm";
const SECRET: &str = "fuzz-secret";
const EPOCH_UNIX: u64 = 1_800_000_000;
/// A small relay range, so that ports run out and collide.
const MIN_PORT: u16 = 50000;
const MAX_PORT: u16 = 50007;
/// RFC 8656 §7.2: a reserved port is held about 30 s (`allocate::RESERVATION_MS`).
const RESERVATION_MS: Millis = 30_000;
/// Operations per input: bounds the time one input takes.
const MAX_OPS: usize = 256;
/// Largest client data the harness builds (Send indications, ChannelData).
const MAX_CLIENT_DATA: usize = 4096;

// ---------------------------------------------------------------------------------------------
// The world around the server: clients, peers, users.

const V4_LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 0, 0, 2)), 3478);
const V6_LOCAL: SocketAddr = SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2600, 0, 0, 0, 0, 0, 0, 2)), 3478);
const LOOPBACK_LOCAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3478);
const RELAY_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(11, 0, 0, 3));
const RELAY_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2600, 0, 0, 0, 0, 0, 0, 3));

/// The clients: (transport, address, the server address they talk to).
const CLIENTS: [(Transport, SocketAddr, SocketAddr); 8] = [
    (Transport::Udp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 1)), 40000), V4_LOCAL),
    (Transport::Udp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 1)), 40001), V4_LOCAL),
    (Transport::Udp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 2)), 5000), V4_LOCAL),
    (Transport::Udp, SocketAddr::new(IpAddr::V6(Ipv6Addr::new(0x2600, 1, 0, 0, 0, 0, 0, 1)), 40000), V6_LOCAL),
    // Same address as client 0, another transport: another 5-tuple.
    (Transport::Tcp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 1)), 40000), V4_LOCAL),
    (Transport::Udp, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000), LOOPBACK_LOCAL),
    // Fresh TCP connections for RFC 6062 ConnectionBind, from the control connection's address and
    // from another one.
    (Transport::Tcp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 1)), 40020), V4_LOCAL),
    (Transport::Tcp, SocketAddr::new(IpAddr::V4(Ipv4Addr::new(11, 1, 0, 3)), 40021), V4_LOCAL),
];

/// Peers: public ones, every kind the policy must refuse, the server's own address. Indices past
/// the list name the relayed address of client `index - PEERS.len()`'s allocation.
const PEERS: [&str; 14] = [
    "8.8.8.8:53",
    "93.184.216.34:9000",
    "93.184.216.34:9001",
    "[2606:4700::1111]:443",
    "127.0.0.1:9000",
    "10.0.0.1:80",
    "0.0.0.0:9",
    "[::ffff:127.0.0.1]:9000",
    "[::1]:9000",
    "169.254.169.254:80",
    "[64:ff9b::7f00:1]:80",
    "11.0.0.2:3478",
    "192.168.1.1:80",
    "[fe80::1]:80",
];

/// A user the harness signs as.
struct User {
    name: String,
    password: String,
    key: IntegrityKey,
}

fn users() -> Vec<User> {
    let rest = RestCredentials::new(vec![Secret::new(SECRET)]);
    let mut list = vec![("alice".to_string(), "wonderland".to_string())];
    list.extend(rest.mint("bob", 2 * 3600, EPOCH_UNIX));
    // Expires a minute in: REST expiry on live allocations.
    list.extend(rest.mint("carol", 60, EPOCH_UNIX));
    list.push(("mallory".to_string(), "nobody".to_string()));
    list.into_iter()
        .map(|(name, password)| {
            let key = IntegrityKey::new(&long_term_key_md5(&name, REALM, &password));
            User { name, password, key }
        })
        .collect()
}

fn auth() -> Authenticator {
    let mut c = AuthConfig::new(REALM);
    c.rest = Some(RestCredentials::new(vec![Secret::new(SECRET)]));
    c.users.insert("alice".into(), StaticCredential::Password("wonderland".into()));
    Authenticator::new(c, [7; 32])
}

/// The policy the server enforces, built from the same options (the server keeps its own).
fn policy(options: &ServerOptions) -> PeerPolicy {
    crate::server::peer_policy(options)
}

/// Loopback or unspecified, in any IPv6 spelling of an IPv4 address: never a peer unless loopback
/// peers are allowed, whatever else the policy grows into.
fn never_a_peer(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4() {
            Some(v4) if !v6.is_loopback() && !v6.is_unspecified() => IpAddr::V4(v4),
            _ => ip,
        },
        v4 => v4,
    };
    ip.is_loopback() || ip.is_unspecified() || matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 0)
}

/// A client's last signed request and, if it created an allocation, that allocation's socket id and
/// the answer (a retransmission must get the same bytes while it lives).
#[derive(Clone, Debug)]
struct LastRequest {
    bytes: Vec<u8>,
    created: Option<(usize, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct ClientState {
    nonce: Option<String>,
    last: Option<LastRequest>,
}

struct Harness {
    server: Server<FakeDriver>,
    driver: FakeDriver,
    options: ServerOptions,
    policy: PeerPolicy,
    users: Vec<User>,
    epoch: Instant,
    elapsed: Duration,
    clients: Vec<ClientState>,
    model: Model,
    /// Allocations the harness saw in the table, kept after deletion (as a relay poller would until it sees the deletion).
    seen: Vec<Arc<Allocation<FakeSocket>>>,
    tid: u32,
    handled: u64,
    /// `SWITCHBACK_FUZZ_TRACE` set: print every operation and outcome (to read a crash input).
    trace: bool,
    out: Vec<u8>,
    peer_buf: Vec<u8>,
    /// The server's event sink: which allocations the events say are live.
    ledger: Arc<ledger::Ledger>,
}

/// What one input did, for the seed tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Allocations created.
    pub allocations: u64,
    /// Client data relayed to peers.
    pub to_peers: u64,
    /// Peer data relayed to clients.
    pub to_clients: u64,
    /// Error answers.
    pub errors: u64,
}

/// Runs the operations of `data` against a fresh server and checks the invariants after each.
pub fn server_stateful(data: &[u8]) {
    let _ = run(data);
}

/// [`server_stateful`], returning what happened.
pub fn run(data: &[u8]) -> Summary {
    let mut input = Input(data);
    let mut h = Harness::new(ScenarioConfig::decode(input.u8()));
    let mut ops = 0;
    while !input.is_empty() && ops < MAX_OPS {
        let op = Op::decode(&mut input);
        if h.trace {
            eprintln!("{op:?}");
        }
        h.step(&op);
        h.check();
        ops += 1;
    }
    let s = h.server.stats().snapshot();
    Summary {
        allocations: s.allocations_created,
        to_peers: s.relayed_to_peer,
        to_clients: s.relayed_to_client,
        errors: s.errors_sent,
    }
}

fn pattern(len: usize, fill: u8) -> Vec<u8> {
    (0..len).map(|i| fill.wrapping_add(i as u8)).collect()
}

fn channel_number(sel: u8) -> u16 {
    match sel % 8 {
        0..=3 => 0x4000 + u16::from(sel % 4),
        4 => 0x4FFF,
        5 => 0x5000,
        6 => 0x7FFF,
        _ => 0x3FFF,
    }
}

impl Harness {
    fn new(config: ScenarioConfig) -> Self {
        let options = ServerOptions {
            software: config.software.then(|| "fuzz".to_string()),
            strict_rfc8656: config.strict,
            relay_addresses: if config.relay_addresses {
                vec![
                    RelayAddress { local: RELAY_V4, advertised: RELAY_V4 },
                    RelayAddress { local: RELAY_V6, advertised: RELAY_V6 },
                ]
            } else {
                Vec::new()
            },
            min_port: MIN_PORT,
            max_port: MAX_PORT,
            allow_loopback_peers: config.allow_loopback,
            user_quota: u32::from(config.user_quota),
            total_quota: u32::from(config.total_quota),
            ..ServerOptions::default()
        };
        let driver = FakeDriver::default();
        let epoch = Instant::now();
        let server = Server::with_relay(options.clone(), Some(auth()), driver.clone(), epoch, EPOCH_UNIX);
        let ledger = Arc::new(ledger::Ledger::default());
        server.set_events(ledger.clone());
        Harness {
            server,
            driver,
            policy: policy(&options),
            options,
            users: users(),
            epoch,
            elapsed: Duration::ZERO,
            clients: CLIENTS.iter().map(|_| ClientState::default()).collect(),
            model: Model::default(),
            seen: Vec::new(),
            tid: 0,
            handled: 0,
            trace: std::env::var_os("SWITCHBACK_FUZZ_TRACE").is_some(),
            out: vec![0; 1500],
            // Like the relay driver's buffer; it keeps every older datagram's bytes.
            peer_buf: vec![0xEE; HEADROOM + 65536 + 4],
            ledger,
        }
    }

    fn now(&self) -> Instant {
        self.epoch + self.elapsed
    }

    fn now_ms(&self) -> Millis {
        self.elapsed.as_millis() as Millis
    }

    fn client(c: u8) -> usize {
        usize::from(c) % CLIENTS.len()
    }

    fn five_tuple(c: usize) -> FiveTuple {
        let (transport, client, server) = CLIENTS[c];
        FiveTuple { transport, client, server }
    }

    fn allocation(&self, c: usize) -> Option<Arc<Allocation<FakeSocket>>> {
        self.server.allocations().get(&Self::five_tuple(c))
    }

    fn peer(&self, p: u8) -> SocketAddr {
        let p = usize::from(p) % (PEERS.len() + CLIENTS.len());
        match PEERS.get(p) {
            Some(s) => s.parse().expect("a peer address"),
            None => self
                .allocation(p - PEERS.len())
                .map_or_else(|| PEERS[0].parse().expect("a peer address"), |a| a.info().advertised_addr),
        }
    }

    fn next_tid(&mut self) -> TransactionId {
        self.tid += 1;
        let mut t = [0x5A; 12];
        t[8..].copy_from_slice(&self.tid.to_be_bytes());
        TransactionId(t)
    }

    /// Feeds `data` from client `c`; checks and learns from the answer; returns the outcome and the
    /// answer's bytes.
    fn feed(&mut self, c: usize, data: &[u8]) -> (Outcome, Vec<u8>) {
        let (transport, source, local) = CLIENTS[c];
        let rx = Received { transport, source, local, data };
        self.out.fill(0xEE);
        let outcome = self.server.handle(self.now(), &rx, &mut self.out);
        self.handled += 1;
        let answer = match outcome {
            Outcome::Reply(n) => self.out.get(..n).expect("a reply fits the buffer").to_vec(),
            _ => Vec::new(),
        };
        if let Outcome::Reply(_) = outcome {
            self.check_answer(c, data, &answer);
        }
        // RFC 6062 §5.2: a Connect taken (answered later) installs a permission for its peer —
        // a retransmitted or mutated one too.
        if outcome == Outcome::Silent
            && let Ok(m) = Message::parse(data)
            && m.message_type() == MessageType::new(Method::CONNECT, Class::Request)
            && let (Ok(XorPeerAddress(peer)), Some(a)) = (m.get::<XorPeerAddress>(), self.allocation(c))
        {
            let expires = self.now_ms() + u64::from(self.options.permission_lifetime) * 1000;
            self.model.permissions.push((a.socket.id, peer.ip(), expires));
        }
        if self.trace {
            let code = Message::parse(&answer).ok().and_then(|m| m.get::<ErrorCode>().ok()).map(|e| e.code);
            eprintln!("  client {c}: {outcome:?} {}", code.map(|c| format!("error {c}")).unwrap_or_default());
        }
        self.check_sends(c, data, outcome);
        (outcome, answer)
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Advance { unit, amount } => {
                let unit = match unit % 4 {
                    0 => Duration::from_millis(10),
                    1 => Duration::from_secs(1),
                    2 => Duration::from_secs(60),
                    _ => Duration::from_secs(3600),
                };
                self.elapsed += unit * u32::from(*amount);
            }
            Op::Raw { client, bytes } => {
                self.feed(Self::client(*client), bytes);
            }
            Op::Allocate { client, user, flags, opts, lifetime, family, token } => {
                let token = self.pick_token(*token);
                let body = move |w: &mut MessageWriter<'_>| {
                    if opts & allocate::TRANSPORT != 0 {
                        let t =
                            if opts & allocate::TCP != 0 { RequestedTransport::TCP } else { RequestedTransport::UDP };
                        w.add(&t).expect("fits");
                    }
                    if opts & allocate::LIFETIME != 0 {
                        w.add(&Lifetime(*lifetime)).expect("fits");
                    }
                    if opts & allocate::EVEN_PORT != 0 {
                        w.add(&EvenPort { reserve_next: opts & allocate::RESERVE != 0 }).expect("fits");
                    }
                    if opts & allocate::TOKEN != 0 {
                        w.add(&ReservationToken(token)).expect("fits");
                    }
                    if opts & allocate::FAMILY != 0 {
                        match family {
                            0 => w.add(&RequestedAddressFamily(AddressFamily::V4)),
                            1 => w.add(&RequestedAddressFamily(AddressFamily::V6)),
                            f => w.add_raw(types::REQUESTED_ADDRESS_FAMILY, &[*f, 0, 0, 0]),
                        }
                        .expect("fits");
                    }
                    if opts & allocate::DONT_FRAGMENT != 0 {
                        w.add(&DontFragment).expect("fits");
                    }
                };
                self.signed(Self::client(*client), Method::ALLOCATE, *user, *flags, &body);
            }
            Op::Refresh { client, user, flags, sel, lifetime } => {
                let body = |w: &mut MessageWriter<'_>| match sel % 3 {
                    0 => {}
                    1 => w.add(&Lifetime(0)).expect("fits"),
                    _ => w.add(&Lifetime(*lifetime)).expect("fits"),
                };
                self.signed(Self::client(*client), Method::REFRESH, *user, *flags, &body);
            }
            Op::CreatePermission { client, user, flags, peers } => {
                let peers: Vec<SocketAddr> = peers.iter().map(|p| self.peer(*p)).collect();
                let body = |w: &mut MessageWriter<'_>| {
                    for p in &peers {
                        w.add(&XorPeerAddress(*p)).expect("fits");
                    }
                };
                self.signed(Self::client(*client), Method::CREATE_PERMISSION, *user, *flags, &body);
            }
            Op::ChannelBind { client, user, flags, channel, peer, omit } => {
                let peer = self.peer(*peer);
                let number = channel_number(*channel);
                let body = |w: &mut MessageWriter<'_>| {
                    if omit % 3 != 1 {
                        w.add(&ChannelNumber(number)).expect("fits");
                    }
                    if omit % 3 != 2 {
                        w.add(&XorPeerAddress(peer)).expect("fits");
                    }
                };
                self.signed(Self::client(*client), Method::CHANNEL_BIND, *user, *flags, &body);
            }
            Op::Send { client, peer, len, fill } => {
                let c = Self::client(*client);
                let peer = self.peer(*peer);
                let data = pattern(usize::from(*len) % (MAX_CLIENT_DATA + 1), *fill);
                let mut buf = vec![0u8; data.len() + 64];
                let tid = self.next_tid();
                let mut w =
                    MessageWriter::new(&mut buf, MessageType::new(Method::SEND, Class::Indication), tid).expect("fits");
                w.add(&XorPeerAddress(peer)).expect("fits");
                w.add(&Data(&data)).expect("fits");
                let n = w.finish();
                buf.truncate(n);
                self.feed(c, &buf);
            }
            Op::ChannelData { client, channel, len, fill } => {
                let c = Self::client(*client);
                let data = pattern(usize::from(*len) % (MAX_CLIENT_DATA + 1), *fill);
                let cd = ChannelData { channel: channel_number(*channel), data: &data };
                let stream = CLIENTS[c].0.is_stream();
                let mut buf = vec![0u8; cd.wire_len(stream)];
                let n = cd.encode(stream, &mut buf).expect("fits");
                buf.truncate(n);
                self.feed(c, &buf);
            }
            Op::Peer { client, peer, len, fill } => {
                let peer = self.peer(*peer);
                if let Some(a) = self.allocation(Self::client(*client)) {
                    self.peer_datagram(&a, peer, usize::from(*len), *fill);
                }
            }
            Op::Ghost { index, peer, len, fill } => {
                let gone: Vec<_> = self.seen.iter().filter(|a| a.is_deleted()).cloned().collect();
                if let Some(a) = gone.get(usize::from(*index) % gone.len().max(1)) {
                    let peer = self.peer(*peer);
                    let r = self.relay_from_peer(a, peer, usize::from(*len), *fill);
                    assert!(r.is_none(), "a deleted allocation relayed peer data");
                }
            }
            Op::Sweep => {
                self.server.sweep(self.now());
                let now = self.now_ms();
                self.model.reservations.retain(|r| r.expires > now);
            }
            Op::Knobs { busy, fail_binds, fail_sends } => {
                let mut s = self.driver.state();
                s.busy = *busy;
                s.fail_binds = fail_binds % 4;
                s.bind_error = fail_binds >> 2 & 3;
                s.fail_sends = *fail_sends;
            }
            Op::Retransmit { client } => {
                let c = Self::client(*client);
                if let Some(LastRequest { bytes: request, created: allocate }) = self.clients[c].last.clone() {
                    let (_, answer) = self.feed(c, &request);
                    if let Some((id, first)) = allocate
                        && self.allocation(c).is_some_and(|a| a.socket.id == id)
                    {
                        assert_eq!(answer, first, "a retransmitted Allocate gets the first answer (RFC 8656 §7.2)");
                    }
                }
            }
            Op::CloseAll => self.server.close_all(self.now()),
            Op::Connect { client, user, flags, peer } => {
                let (c, peer) = (Self::client(*client), self.peer(*peer));
                let before = self.driver.state().connects.len();
                self.signed(c, Method::CONNECT, *user, *flags, &|w| w.add(&XorPeerAddress(peer)).expect("fits"));
                let made = self.driver.state().connects.get(before).copied();
                if let (Some((id, _)), Some(a)) = (made, self.allocation(c)) {
                    let mut out = vec![0u8; 1500];
                    // The driver's connection to the peer succeeds at once: the late answer.
                    self.server.connect_completed(self.now(), id, true, &mut out);
                    self.model.connections.push((id, a.info().username.to_string()));
                }
            }
            Op::ConnectionBind { client, user, flags, conn } => {
                let id = match self.model.connections.len() {
                    0 => u32::from(*conn),
                    n if *conn < 0x80 => self.model.connections[usize::from(*conn) % n].0,
                    _ => u32::from(*conn) << 8,
                };
                let c = Self::client(*client);
                self.signed(c, Method::CONNECTION_BIND, *user, *flags, &|w| {
                    w.add(&crate::proto::stun::ConnectionId(id)).expect("fits")
                });
            }
            Op::Mutate { client, from, at, xor } => {
                if let Some(LastRequest { bytes: mut request, .. }) = self.clients[Self::client(*from)].last.clone() {
                    let i = usize::from(*at) % request.len().max(1);
                    if let Some(b) = request.get_mut(i) {
                        *b ^= xor;
                    }
                    self.feed(Self::client(*client), &request);
                }
            }
        }
    }
}
