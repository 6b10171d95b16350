//! The relay load: N clients with an allocation each (or raw sockets against the bare forwarder),
//! one echo peer run here, a window of messages in flight per client, bounded by `--duration` and
//! `--count`. One message is one round trip client → relay → peer → relay → client, so the server
//! does two receives and two sends per message, as the bare forwarder does.

use std::cell::RefCell;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    Class, Data, Message, MessageType, MessageWriter, Method, TransactionId, XorPeerAddress,
};

use crate::creds::Credentials;
use crate::net::{self, Batch, Poller, SendQueue};
use crate::procfs::CpuMeter;
use crate::progress::Progress;
use crate::stun::Session;
use crate::tls::StreamIo;

mod call;
use call::{call_due, send_calls};
use std::os::fd::AsFd as _;

/// What the clients talk to.
#[derive(Clone, Debug)]
pub enum Target {
    /// A TURN server, REST or static credentials; ChannelData or Send indications.
    Turn { server: SocketAddr, credentials: Credentials, send_indications: bool },
    /// The bare forwarder: client side `front`, peer side `back`.
    Bare { front: SocketAddr, back: SocketAddr },
}

/// The knobs of a run.
#[derive(Clone, Debug)]
pub struct Params {
    pub target: Target,
    pub allocations: usize,
    pub size: usize,
    pub window: usize,
    /// Messages per second over all clients; 0 = as fast as the window allows.
    pub rate: u64,
    pub warmup: Duration,
    pub duration: Duration,
    pub count: u64,
    pub server_pid: Option<u32>,
    /// First client address (127.0.0.2 and up).
    pub client_ip: std::net::Ipv4Addr,
    /// Clients reach the server over TCP (RFC 8656 §3.1) instead of UDP.
    pub tcp: bool,
    /// TLS over that TCP (RFC 8656 §3.1), with this client configuration; implies `tcp`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The call model: each allocation sends this many messages per second on a fixed schedule
    /// (open loop, `window` unused); 0 = the closed loop of `window` messages in flight.
    pub call_pps: u32,
}

/// What a run measured (the measured phase only, after the warm-up).
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub sent: u64,
    pub received: u64,
    pub seconds: f64,
    pub rtt_p50_us: f64,
    pub rtt_p99_us: f64,
    pub rtt_p999_us: f64,
    /// RFC 3550 §6.4.1 interarrival jitter of the round trips, per flow at the end: mean and p99 (µs).
    pub jitter_us: f64,
    pub jitter_p99_us: f64,
    /// Call model: the share of messages the tool sent more than 1 ms after their scheduled time
    /// (the tool not keeping up), in %.
    pub late_pct: f64,
    pub server_cpu_s: Option<f64>,
    pub server_rss_kib: Option<u64>,
    /// The whole machine's busy CPU seconds over the measured window (all CPUs, `/proc/stat`:
    /// user, nice, system, irq, softirq), this tool's included; and the softirq part of it.
    pub system_cpu_s: Option<f64>,
    pub softirq_cpu_s: Option<f64>,
    /// This tool's own CPU seconds over the measured window (the generator and the echo peer).
    pub load_cpu_s: Option<f64>,
    /// The kernel's `ksoftirqd` threads' CPU seconds over the measured window.
    pub ksoftirqd_cpu_s: f64,
}

impl Report {
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 { 0.0 } else { 100.0 * (self.sent.saturating_sub(self.received)) as f64 / self.sent as f64 }
    }
    pub fn msgs_per_s(&self) -> f64 {
        self.received as f64 / self.seconds.max(1e-9)
    }
}

/// Payload header: magic, client index, send time (ns since the run began).
// The first byte (0xb0) is neither STUN (0-3) nor ChannelData (0x40-0x7f), so bare echoes parse as raw.
const MAGIC: u32 = 0xb0a7_10ad;
const STAMP: usize = 16;

/// A client's leg to the server.
enum Conn {
    Udp { socket: UdpSocket, state: quinn_udp::UdpSocketState },
    Tcp(TcpConn),
}

/// A TCP or TLS client leg (RFC 8656 §3.1): frames written through `wbuf`, read through `rbuf`.
struct TcpConn {
    /// In a cell so that the blocking setup can use it as a [`crate::stun::Link`] through `&self`.
    io: RefCell<StreamIo>,
    rbuf: Vec<u8>,
    rlen: usize,
    wbuf: Vec<u8>,
}

impl TcpConn {
    /// Writes what is queued, as far as the socket takes it.
    fn flush(&mut self) {
        let io = self.io.get_mut();
        while !self.wbuf.is_empty() {
            match io.write(&self.wbuf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.wbuf.drain(..n);
                }
            }
        }
        // TLS records rustls still holds go out when the socket takes them.
        let _ = io.flush();
    }

    /// Reads what is there and calls `f` with each complete frame (without its stream padding).
    fn read_frames(&mut self, mut f: impl FnMut(&[u8])) {
        loop {
            if self.rlen == self.rbuf.len() {
                break;
            }
            match self.io.get_mut().read(self.rbuf.get_mut(self.rlen..).unwrap_or_default()) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.rlen += n,
            }
            let mut start = 0;
            while let Some(head) = self.rbuf.get(start..start + 4).filter(|_| start + 4 <= self.rlen) {
                let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
                let Some(total) = crate::stun::frame_len(head[0], len) else {
                    // Lost framing: drop what is buffered.
                    start = self.rlen;
                    break;
                };
                if start + total > self.rlen {
                    break;
                }
                let exact = if head[0] >= 0x40 { 4 + len } else { total };
                if let Some(frame) = self.rbuf.get(start..start + exact) {
                    f(frame);
                }
                start += total;
            }
            self.rbuf.copy_within(start..self.rlen, 0);
            self.rlen -= start;
        }
    }
}

impl Conn {
    fn fd(&mut self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd as _;
        match self {
            Conn::Udp { socket, .. } => (*socket).as_fd(),
            Conn::Tcp(t) => t.io.get_mut().tcp().as_fd(),
        }
    }

    fn link(&self) -> &dyn crate::stun::Link {
        match self {
            Conn::Udp { socket, .. } => socket,
            Conn::Tcp(t) => &t.io,
        }
    }
}

struct Client {
    conn: Conn,
    /// The datagram to send, with the payload at `offset`.
    template: Vec<u8>,
    offset: usize,
    in_flight: usize,
    last_progress: Instant,
    /// The allocation's credentials, to delete it at the end (the run is shorter than its lifetime).
    session: Option<Session>,
}

fn client_addr(base: std::net::Ipv4Addr, i: usize) -> SocketAddr {
    // 127.0.0.2 + i / 20000: a few thousand ports per address are plenty.
    let o = base.octets();
    let last = u16::from(o[3]) + (i / 20_000) as u16;
    SocketAddr::from(([o[0], o[1], o[2], last.min(254) as u8], 0))
}

fn template(target: &Target, channel: u16, peer: SocketAddr, size: usize, stream: bool) -> Result<(Vec<u8>, usize)> {
    let payload = vec![0x5au8; size];
    match target {
        Target::Bare { .. } => Ok((payload, 0)),
        Target::Turn { send_indications: false, .. } => {
            let mut buf = vec![0u8; size + 8];
            let n = ChannelData { channel, data: &payload }.encode(stream, &mut buf).context("ChannelData")?;
            buf.truncate(n);
            Ok((buf, 4))
        }
        Target::Turn { send_indications: true, .. } => {
            let mut buf = vec![0u8; size + 64];
            let ty = MessageType::new(Method::SEND, Class::Indication);
            let mut w = MessageWriter::new(&mut buf, ty, TransactionId([7; 12]))?;
            w.add(&XorPeerAddress(peer))?;
            w.add(&Data(&payload))?;
            let n = w.finish();
            buf.truncate(n);
            // DATA is the last attribute; its value ends at the padded end.
            Ok((buf, n - switchback::proto::stun::padded_len(size)))
        }
    }
}

/// The payload of a datagram from the server: ChannelData, a Data indication, or raw (bare).
fn payload(data: &[u8]) -> Option<&[u8]> {
    match data.first()? {
        0x40..=0x7f => ChannelData::parse(data).ok().map(|c| c.data),
        0x00..=0x03 => Message::parse(data).ok()?.get::<Data>().ok().map(|d| d.0),
        _ => Some(data),
    }
}

fn stamp(buf: &mut [u8], client: usize, ns: u64) {
    if let Some(h) = buf.get_mut(..STAMP) {
        h[..4].copy_from_slice(&MAGIC.to_be_bytes());
        h[4..8].copy_from_slice(&(client as u32).to_be_bytes());
        h[8..16].copy_from_slice(&ns.to_be_bytes());
    }
}

fn read_stamp(p: &[u8]) -> Option<(usize, u64)> {
    let h = p.get(..STAMP)?;
    if h[..4] != MAGIC.to_be_bytes() {
        return None;
    }
    let client = u32::from_be_bytes(h[4..8].try_into().ok()?) as usize;
    let ns = u64::from_be_bytes(h[8..16].try_into().ok()?);
    Some((client, ns))
}

/// Client `i`: its leg to `server` (UDP or TCP) and, against a TURN server, an allocation with a
/// channel or a permission for the echo peer at `peer_addr`.
fn connect_client(
    p: &Params,
    i: usize,
    server: SocketAddr,
    creds: Option<&Credentials>,
    peer_addr: SocketAddr,
) -> Result<Client> {
    let mut conn = if p.tcp {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        socket.bind(&client_addr(p.client_ip, i).into())?;
        socket.connect_timeout(&server.into(), Duration::from_secs(5))?;
        let stream: TcpStream = socket.into();
        stream.set_nodelay(true)?;
        let io = match &p.tls {
            Some(config) => StreamIo::tls(stream, config.clone(), server.ip())?,
            None => StreamIo::Plain(stream),
        };
        Conn::Tcp(TcpConn { io: RefCell::new(io), rbuf: vec![0u8; 256 * 1024], rlen: 0, wbuf: Vec::new() })
    } else {
        let socket = net::udp(client_addr(p.client_ip, i))?;
        socket.connect(server)?;
        let state = net::state(&socket)?;
        // quinn-udp made it nonblocking; the setup below waits for its answers.
        socket.set_nonblocking(false)?;
        Conn::Udp { socket, state }
    };
    let channel = 0x4000 + (i % 0x1000) as u16;
    let session = match creds {
        Some(credentials) => {
            let (user, pass) = credentials.for_client("load", i);
            let link = conn.link();
            let mut s = Session::allocate(link, &user, &pass, 600).with_context(|| format!("allocation {i}"))?;
            if matches!(p.target, Target::Turn { send_indications: true, .. }) {
                s.create_permission(link, peer_addr)?;
            } else {
                s.bind_channel(link, channel, peer_addr)?;
            }
            Some(s)
        }
        None => None,
    };
    match &mut conn {
        Conn::Udp { socket, .. } => socket.set_nonblocking(true)?,
        Conn::Tcp(t) => t.io.get_mut().tcp().set_nonblocking(true)?,
    }
    let (template, offset) = template(&p.target, channel, peer_addr, p.size, p.tcp)?;
    Ok(Client { conn, template, offset, in_flight: 0, last_progress: Instant::now(), session })
}

/// The counters of a run: what was sent (in all, and measured) and what came back, with the RTTs.
struct Tally {
    t0: Instant,
    /// Since when, at which run-relative ns, and the server's meter: set when the warm-up ends.
    measuring: Option<(Instant, u64, CpuMeter)>,
    sent_total: u64,
    sent: u64,
    received: u64,
    /// Echoes of the warm-up too: the call model drains until every message sent came back.
    received_total: u64,
    rtts: Vec<u32>,
    /// Per client: the last measured round trip (µs) and the RFC 3550 §6.4.1 jitter estimate.
    jitter: Vec<(Option<u32>, f64)>,
    /// Call model: messages sent more than 1 ms after their scheduled time.
    late: u64,
}

impl Tally {
    /// Seconds measured by `now` (0 during the warm-up).
    fn measured_secs(&self, now: Instant) -> f64 {
        self.measuring.as_ref().map(|m| now.duration_since(m.0).as_secs_f64()).unwrap_or(0.0)
    }

    /// An echo stamped at `at` came back at `recv_ns`: counted when sent in the measured phase.
    fn record(&mut self, client: usize, at: u64, recv_ns: u64) {
        self.received_total += 1;
        if self.measuring.as_ref().is_some_and(|m| at >= m.1) {
            self.received += 1;
            let rtt = ((recv_ns.saturating_sub(at)) / 1000).min(u64::from(u32::MAX)) as u32;
            if self.rtts.len() < (8 << 20) {
                self.rtts.push(rtt);
            }
            if let Some((last, j)) = self.jitter.get_mut(client) {
                // RFC 3550 §6.4.1: J += (|D| - J) / 16, D the change in transit time.
                if let Some(prev) = *last {
                    let d = f64::from(rtt.abs_diff(prev));
                    *j += (d - *j) / 16.0;
                }
                *last = Some(rtt);
            }
        }
    }

    /// The mean and the p99 over the flows of their jitter estimates (µs), flows with two
    /// measured round trips or more.
    fn jitter_summary(&self) -> (f64, f64) {
        let mut js: Vec<f64> = self.jitter.iter().filter(|(l, j)| l.is_some() && *j > 0.0).map(|(_, j)| *j).collect();
        if js.is_empty() {
            return (0.0, 0.0);
        }
        js.sort_by(f64::total_cmp);
        let mean = js.iter().sum::<f64>() / js.len() as f64;
        let i = ((js.len() - 1) as f64 * 0.99).round() as usize;
        (mean, js.get(i).copied().unwrap_or(0.0))
    }

    /// The `q` quantile of the RTTs in µs (sorts them).
    fn rtt_quantile(&mut self, q: f64) -> f64 {
        self.rtts.sort_unstable();
        if self.rtts.is_empty() {
            return 0.0;
        }
        let i = ((self.rtts.len() - 1) as f64 * q).round() as usize;
        f64::from(self.rtts.get(i).copied().unwrap_or(0))
    }
}

/// The echo peer and its receive state.
struct Peer {
    socket: UdpSocket,
    state: quinn_udp::UdpSocketState,
}

/// Sets up the clients and the peer, runs the load, returns the report.
pub fn run(p: &Params, progress: &mut Progress) -> Result<Report> {
    if p.size < STAMP {
        bail!("--size must be at least {STAMP} bytes");
    }
    let (peer, mut clients) = setup(p)?;
    let mut tally = Tally {
        t0: Instant::now(),
        measuring: None,
        sent_total: 0,
        sent: 0,
        received: 0,
        received_total: 0,
        rtts: Vec::with_capacity(1 << 20),
        jitter: vec![(None, 0.0); clients.len()],
        late: 0,
    };
    let send_phase_secs = drive(p, &peer, &mut clients, &mut tally, progress)?;
    let Some((_, _, meter)) = tally.measuring.take() else { bail!("the run ended during the warm-up") };
    let usage = meter.stop();
    let system = meter.system();
    let load_cpu_s = meter.own();
    let ksoftirqd_cpu_s = meter.softirqd();
    // Free the 5-tuples: a later run may get the same client ports.
    for c in &mut clients {
        if let Some(s) = &mut c.session {
            let _ = s.delete(c.conn.link());
        }
    }
    let (jitter_us, jitter_p99_us) = tally.jitter_summary();
    Ok(Report {
        sent: tally.sent,
        received: tally.received,
        seconds: send_phase_secs,
        rtt_p50_us: tally.rtt_quantile(0.50),
        rtt_p99_us: tally.rtt_quantile(0.99),
        rtt_p999_us: tally.rtt_quantile(0.999),
        jitter_us,
        jitter_p99_us,
        late_pct: if tally.sent_total == 0 { 0.0 } else { 100.0 * tally.late as f64 / tally.sent_total as f64 },
        server_cpu_s: usage.map(|u| u.0),
        server_rss_kib: usage.map(|u| u.2.rss_kib),
        system_cpu_s: system.map(|s| s.busy_s),
        softirq_cpu_s: system.map(|s| s.softirq_s),
        load_cpu_s,
        ksoftirqd_cpu_s,
    })
}

/// The echo peer on `client_ip` and the clients, each with its allocation against a TURN server.
fn setup(p: &Params) -> Result<(Peer, Vec<Client>)> {
    let peer = net::udp(SocketAddr::from((p.client_ip, 0)))?;
    let peer_addr = peer.local_addr()?;
    let (server, creds) = match &p.target {
        Target::Turn { server, credentials, .. } => (*server, Some(credentials)),
        Target::Bare { front, back } => {
            // The forwarder learns the peer from its first datagram on the back socket.
            peer.send_to(b"hello", back)?;
            (*front, None)
        }
    };
    let clients = (0..p.allocations).map(|i| connect_client(p, i, server, creds, peer_addr)).collect::<Result<_>>()?;
    peer.set_nonblocking(true)?;
    let state = net::state(&peer)?;
    Ok((Peer { socket: peer, state }, clients))
}

/// The event loop: warm-up, the measured phase, then up to a second of draining. Returns the
/// seconds of the measured send phase.
fn drive(p: &Params, peer: &Peer, clients: &mut [Client], tally: &mut Tally, progress: &mut Progress) -> Result<f64> {
    // Poller keys: 0 the peer, 1.. the clients.
    let mut poller = Poller::new(std::iter::once(peer.socket.as_fd()).chain(clients.iter_mut().map(|c| c.conn.fd())))?;
    let mut batch = Batch::new();
    let (mut echo, mut out) = (SendQueue::default(), SendQueue::default());
    let mut ready = Vec::with_capacity(256);
    let t0 = tally.t0;
    let warm_end = t0 + p.warmup;
    let send_end = warm_end + p.duration;
    let mut drain_start: Option<Instant> = None;
    let mut send_phase_secs = 0.0;
    let mut last_check = t0;
    let mut next_call = 0u64;
    loop {
        let now = Instant::now();
        let ns = now.duration_since(t0).as_nanos() as u64;
        if tally.measuring.is_none() && now >= warm_end {
            tally.measuring = Some((now, ns, CpuMeter::start(p.server_pid)?));
        }
        let sending = now < send_end && tally.sent < p.count;
        for c in clients.iter_mut() {
            if let Conn::Tcp(t) = &mut c.conn {
                t.flush();
            }
        }
        if sending && p.call_pps > 0 {
            send_calls(p, clients, tally, &mut next_call);
        } else if sending {
            send_windows(p, clients, &mut out, tally, now, ns);
        } else if drain_start.is_none() {
            drain_start = Some(now);
            send_phase_secs = tally.measured_secs(now);
        }
        let all_back = if p.call_pps > 0 {
            tally.received_total >= tally.sent_total
        } else {
            clients.iter().all(|c| c.in_flight == 0)
        };
        if let Some(d) = drain_start
            && (all_back || now.duration_since(d) > Duration::from_secs(1))
        {
            return Ok(send_phase_secs);
        }
        ready.clear();
        // The call model behind its schedule looks without waiting.
        let behind = p.call_pps > 0 && sending && call_due(p, clients.len(), next_call, tally.t0);
        poller.wait(
            if behind {
                0
            } else if sending {
                1
            } else {
                10
            },
            |k| ready.push(k),
        );
        for &k in &ready {
            if k == 0 {
                echo_all(peer, &mut batch, &mut echo);
            } else {
                receive(clients, k - 1, &mut batch, tally);
            }
        }
        let now = Instant::now();
        if now.duration_since(last_check) > Duration::from_millis(100) {
            last_check = now;
            reclaim_stalled(clients, now);
            progress.update(now.duration_since(t0), tally.sent, tally.received, tally.measured_secs(now));
        }
    }
}

/// Fills each client's window, within the `rate` budget and `count`.
fn send_windows(p: &Params, clients: &mut [Client], out: &mut SendQueue, tally: &mut Tally, now: Instant, ns: u64) {
    let budget = if p.rate == 0 {
        u64::MAX
    } else {
        ((p.rate as f64 * now.duration_since(tally.t0).as_secs_f64()) as u64).saturating_sub(tally.sent_total)
    };
    let mut allowed = budget.min(p.count.saturating_sub(tally.sent));
    for (i, c) in clients.iter_mut().enumerate() {
        let want = p.window.saturating_sub(c.in_flight).min(allowed.min(usize::MAX as u64) as usize);
        if want == 0 {
            continue;
        }
        for _ in 0..want {
            if let Some(pl) = c.template.get_mut(c.offset..) {
                stamp(pl, i, ns);
            }
            match &mut c.conn {
                Conn::Udp { .. } => out.push(None, &c.template),
                Conn::Tcp(t) => t.wbuf.extend_from_slice(&c.template),
            }
        }
        let took = match &mut c.conn {
            Conn::Udp { socket, .. } => out.flush(socket),
            Conn::Tcp(t) => {
                t.flush();
                want
            }
        };
        c.in_flight += took;
        tally.sent_total += took as u64;
        allowed = allowed.saturating_sub(took as u64);
        if tally.measuring.is_some() {
            tally.sent += took as u64;
        }
    }
}

/// The echo peer sends back what it has, to where it came from.
fn echo_all(peer: &Peer, batch: &mut Batch, echo: &mut SendQueue) {
    loop {
        let n = batch.recv(&peer.state, &peer.socket, |from, data| echo.push(Some(from), data));
        echo.flush(&peer.socket);
        if n == 0 {
            break;
        }
    }
}

/// Reads what client `index` has: each stamped echo ends a message of its sender's window.
fn receive(clients: &mut [Client], index: usize, batch: &mut Batch, tally: &mut Tally) {
    let Some(c) = clients.get_mut(index) else { return };
    let recv_ns = Instant::now().duration_since(tally.t0).as_nanos() as u64;
    let mut done: Vec<usize> = Vec::new();
    let mut on_payload = |data: &[u8]| {
        if let Some((who, at)) = payload(data).and_then(read_stamp) {
            done.push(who);
            tally.record(who, at, recv_ns);
        }
    };
    match &mut c.conn {
        // A full batch may leave more behind; otherwise the level-triggered poll calls again.
        Conn::Udp { socket, state } => while batch.recv(state, socket, |_, data| on_payload(data)) >= net::BATCH {},
        Conn::Tcp(t) => t.read_frames(on_payload),
    }
    let now = Instant::now();
    for who in done {
        if let Some(c) = clients.get_mut(who) {
            c.in_flight = c.in_flight.saturating_sub(1);
            c.last_progress = now;
        }
    }
}

/// A window whose messages were lost would stall: give it back after 300 ms of silence.
fn reclaim_stalled(clients: &mut [Client], now: Instant) {
    for c in clients {
        if c.in_flight > 0 && now.duration_since(c.last_progress) > Duration::from_millis(300) {
            c.in_flight = 0;
            c.last_progress = now;
        }
    }
}
