//! Thin tokio drivers that feed the sans-IO [`Server`](crate::server::Server): a UDP, a TCP and a TLS listener per
//! configured address, and the relay sockets.
//!
//! This is also the embeddable face of the daemon: bind what a [`ListenPlan`] (or a
//! configuration, which converts to one) asks for, learn the addresses the OS gave, shut down.
//!
//! ```no_run
//!
//! use switchback::{config::Config, io::{self, UdpRelay}};
//!
//! # async fn run() -> Result<(), io::IoError> {
//! let config = Config { listening_port: 0, ..Config::default() };
//! let server = UdpRelay::server(config.server_options(), None);
//! let running = io::bind(&config, server).await?;
//! for listener in running.local_addrs() {
//!     println!("listening {} {}", listener.transport_name(), listener.addr);
//! }
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Drivers never panic on network input: errors are logged at `debug`, counted in [`IoStats`] and
//! the listener goes on.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[cfg(feature = "xdp")]
pub mod fastpath;
mod offload;
mod plan;
mod proxy;
mod relay;
mod socket;
mod stats;
mod stream_queue;
mod tcp;
pub mod tls;
mod udp;
mod worker_stats;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::{NatDiscovery, Transport};

pub use offload::{FastPathStats, Offload};
pub use plan::ListenPlan;
pub use proxy::PROXY_HEADER_TIMEOUT;
pub use relay::lease;
pub use relay::{BoundConnection, RelaySocket, STREAM_QUEUE, StreamSink, TurnServer, UdpRelay};
pub use stats::{IoStats, IoStatsSnapshot};
pub use stream_queue::{STREAM_QUEUE_BYTES, STREAM_QUEUE_TOTAL_BYTES, queued_total};
pub use tls::{HttpConnection, HttpHandoff, ReloadableTls, TlsError, TlsIdentity};
pub use udp::UdpWorker;
pub use worker_stats::{WorkerStats, WorkerStatsSnapshot};

/// How long a TCP connection without an allocation may stay silent before the server closes it
/// (RFC 8656 leaves this to the server; coturn also uses minutes). A connection that owns a live
/// allocation is never closed for idleness (RFC 8489 §6.2.2). `tcp-idle-timeout` in the daemon.
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a write to a TCP/TLS client may stall before the connection is closed: a client that
/// stops reading pins its relay queue and its socket buffers until then.
pub const TCP_WRITE_TIMEOUT: Duration = Duration::from_secs(20);

/// The most TCP connections one listener keeps open at once; further connections are accepted and
/// closed at once (counted in [`IoStatsSnapshot::tcp_rejected`]). An idle connection costs a 4 KiB
/// read buffer (it grows to about 68 KiB only while a large frame arrives) plus a socket; answers are
/// written through one scratch buffer per worker thread.
pub const MAX_TCP_CONNECTIONS: usize = 10_000;

/// The most TCP/TLS connections one source (an IPv4 address, an IPv6 /64) keeps open on one
/// listener before they authenticate; further ones are closed at once (counted in
/// [`IoStatsSnapshot::tcp_rejected`], logged). A connection that made an allocation gives its slot
/// back: the user's quota counts it from then on. `tcp-connections-per-source` in the daemon.
pub const MAX_TCP_CONNECTIONS_PER_SOURCE: usize = 64;

/// How long a TCP/TLS connection may go without an allocation (or an RFC 6062 ConnectionBind):
/// coturn's `max-allocate-timeout` default. A slot held by a client that never authenticates costs
/// a descriptor and a buffer; Binding-only clients reconnect.
pub const TCP_AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a TLS client has from its TCP connection to a finished handshake. The connection counts
/// against [`MAX_TCP_CONNECTIONS`] meanwhile.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Limits of the drivers. [`Limits::default`] uses [`TCP_IDLE_TIMEOUT`], [`MAX_TCP_CONNECTIONS`] and
/// [`TLS_HANDSHAKE_TIMEOUT`]; TLS listeners share the TCP limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Close a TCP connection without a live allocation after this long without a byte from the
    /// client; also the bound of a stuck write (at most [`TCP_WRITE_TIMEOUT`]).
    pub tcp_idle_timeout: Duration,
    /// TCP connections per listener.
    pub max_tcp_connections: usize,
    /// TCP connections per listener from one source (IPv4 address or IPv6 /64).
    pub max_tcp_connections_per_source: usize,
    /// From a TLS client's connection to its finished handshake.
    pub tls_handshake_timeout: Duration,
    /// From a TCP/TLS connection to its allocation (or ConnectionBind); closed after.
    pub tcp_auth_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            tcp_idle_timeout: TCP_IDLE_TIMEOUT,
            max_tcp_connections: MAX_TCP_CONNECTIONS,
            max_tcp_connections_per_source: MAX_TCP_CONNECTIONS_PER_SOURCE,
            tls_handshake_timeout: TLS_HANDSHAKE_TIMEOUT,
            tcp_auth_timeout: TCP_AUTH_TIMEOUT,
        }
    }
}

/// Why the listeners could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// A socket could not be created, configured or bound (address in use, no permission…).
    #[error("cannot listen on {transport} {addr}: {}", in_use_hint(error))]
    Bind {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error, said in the message (not a `source`: a report of the chain would say it
        /// twice).
        error: std::io::Error,
    },
    /// The configuration disables every transport.
    #[error("nothing to listen on (UDP and TCP are disabled, and TLS is disabled or has no certificate)")]
    NoListener,
    /// The `cert` / `pkey` files of the configuration cannot be used.
    #[error("{}: {source}", source.key())]
    Tls {
        /// What is wrong with them.
        #[from]
        source: TlsError,
    },
}

/// One bound listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    /// Its transport.
    pub transport: Transport,
    /// The address it is bound to (with the OS-chosen port when port 0 was asked for).
    pub addr: SocketAddr,
}

impl Listener {
    /// `udp`, `tcp` or `tls`, as printed in the daemon's banner.
    pub fn transport_name(&self) -> &'static str {
        transport_name(self.transport)
    }
}

/// `udp`, `tcp` or `tls`.
pub fn transport_name(transport: Transport) -> &'static str {
    match transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

/// Listeners that are up and serving. Dropping it stops them too (without waiting);
/// [`Running::shutdown`] stops them and waits until every task has ended.
#[derive(Debug)]
pub struct Running {
    listeners: Vec<Listener>,
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    stats: Arc<IoStats>,
    tls: Option<ReloadableTls>,
    /// One per UDP listener socket (workers × listening addresses).
    workers: Vec<Arc<WorkerStats>>,
}

/// The live counters of the drivers: shared by every listener, plus one set per UDP worker
/// socket, summed when read.
#[derive(Clone, Debug)]
pub struct IoStatsHandle {
    stats: Arc<IoStats>,
    workers: Vec<Arc<WorkerStats>>,
}

impl IoStatsHandle {
    /// The drivers' counters now (the UDP workers' receive errors and dropped sends included).
    pub fn snapshot(&self) -> IoStatsSnapshot {
        let mut s = self.stats.snapshot();
        let udp = self.udp();
        s.udp_recv_errors += udp.recv_errors;
        s.udp_send_errors += udp.send_dropped;
        s
    }

    /// The UDP workers' counters, summed.
    pub fn udp(&self) -> WorkerStatsSnapshot {
        self.workers.iter().map(|w| w.snapshot()).fold(WorkerStatsSnapshot::default(), |a, b| a + b)
    }
}

impl Running {
    /// The bound addresses, UDP listeners first, in `listening-ip` order.
    pub fn local_addrs(&self) -> &[Listener] {
        &self.listeners
    }

    /// The first bound address of `transport`, if any.
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.listeners.iter().find(|l| l.transport == transport).map(|l| l.addr)
    }

    /// The drivers' counters.
    pub fn io_stats(&self) -> IoStatsSnapshot {
        self.io_stats_handle().snapshot()
    }

    /// The counters of each UDP listener socket (one per worker per listening address).
    pub fn worker_stats(&self) -> Vec<WorkerStatsSnapshot> {
        self.workers.iter().map(|w| w.snapshot()).collect()
    }

    /// [`Running::worker_stats`] summed.
    pub fn udp_stats(&self) -> WorkerStatsSnapshot {
        self.workers.iter().map(|w| w.snapshot()).fold(WorkerStatsSnapshot::default(), |a, b| a + b)
    }

    /// The drivers' live counters, the UDP workers' included, for a reader that outlives this
    /// borrow (the metrics face).
    pub fn io_stats_handle(&self) -> IoStatsHandle {
        IoStatsHandle { stats: self.stats.clone(), workers: self.workers.clone() }
    }

    /// The TLS listeners' certificate, to replace it while they run; `None` without TLS listeners.
    pub fn tls(&self) -> Option<&ReloadableTls> {
        self.tls.as_ref()
    }

    /// Stops every listener and connection and waits for their tasks to end.
    pub async fn shutdown(self) {
        // Receivers see the change (or the sender gone) and return.
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Binds every listener of `plan` — for a configuration (`&Config` converts): UDP and TCP on each
/// `listening-ip` at `listening-port`, unless `no-udp` / `no-tcp`, and TLS at the TLS port when
/// `cert` and `pkey` are set, unless `no-tls` — and starts serving them with `server`.
///
/// Either every listener is bound or none is. Port 0 lets the OS choose, per socket.
/// Must be called inside a tokio runtime.
pub async fn bind(plan: impl Into<ListenPlan>, server: Arc<TurnServer>) -> Result<Running, IoError> {
    bind_with_limits(plan, server, Limits::default()).await
}

/// [`bind`] with explicit [`Limits`].
pub async fn bind_with_limits(
    plan: impl Into<ListenPlan>,
    server: Arc<TurnServer>,
    limits: Limits,
) -> Result<Running, IoError> {
    let plan = plan.into();
    let tls = match &plan.certificate {
        Some((cert, pkey)) if plan.tls => Some(ReloadableTls::new(TlsIdentity::from_pem_files(cert, pkey)?)),
        _ => None,
    };
    bind_with_tls(plan, server, limits, tls).await
}

/// [`bind_with_limits`] with the TLS listeners' certificate given (loaded or generated by the
/// caller) instead of read from `cert` / `pkey`: TLS listeners run when `tls` is `Some`, unless
/// `no-tls`.
pub async fn bind_with_tls(
    plan: impl Into<ListenPlan>,
    server: Arc<TurnServer>,
    limits: Limits,
    tls: Option<ReloadableTls>,
) -> Result<Running, IoError> {
    let plan = plan.into();
    let tls = tls.filter(|_| plan.tls);
    let buffer = plan.socket_buffer;
    let (udp_sockets, grid) = if plan.udp { bind_udp_plan(&plan)? } else { (Vec::new(), None) };
    let mut tcp_listeners = Vec::new();
    if plan.tcp {
        for &addr in &plan.addrs {
            let listener = socket::tcp(addr).map_err(|error| IoError::Bind { transport: "tcp", addr, error })?;
            tcp_listeners.push(listener);
        }
    }
    let (tls_listeners, tls_grid) = match &tls {
        Some(_) => bind_tls_plan(&plan)?,
        None => (Vec::new(), None),
    };
    // RFC 7443: `stun.nat-discovery` is offered only where RFC 5780 answers over TLS.
    let tls = match tls_grid {
        Some(grid) if server.set_nat_discovery_tls(grid) => tls.map(ReloadableTls::with_nat_discovery),
        _ => tls,
    };
    if udp_sockets.is_empty() && tcp_listeners.is_empty() && tls_listeners.is_empty() {
        return Err(IoError::NoListener);
    }

    let (stop, _) = watch::channel(false);
    let stats = Arc::new(IoStats::default());
    let mut listeners = Vec::new();
    let mut tasks = Vec::new();
    let mut worker_stats = Vec::new();
    UdpRelay::attach(&server);
    server.driver().set_socket_buffer(buffer);
    let udp_sockets: Vec<(Vec<Arc<tokio::net::UdpSocket>>, SocketAddr)> =
        udp_sockets.into_iter().map(|(g, local)| (g.into_iter().map(Arc::new).collect(), local)).collect();
    let siblings = grid_siblings(&udp_sockets, grid);
    if let Some(grid) = grid {
        server.set_nat_discovery(grid);
    }
    for (group, local) in udp_sockets {
        listeners.push(Listener { transport: Transport::Udp, addr: local });
        for (i, socket) in group.into_iter().enumerate() {
            if i == 0 {
                // Peer data for allocations made through `local` leaves through this one.
                server.driver().add_listener(local, Arc::clone(&socket));
            }
            let stats = Arc::new(WorkerStats::default());
            worker_stats.push(Arc::clone(&stats));
            let worker = udp::UdpWorker::with_stats(socket, local, server.clone(), stats)
                .map_err(|error| IoError::Bind { transport: "udp", addr: local, error })?
                .with_siblings(siblings.clone());
            tasks.push(tokio::spawn(worker.run(stop.subscribe())));
        }
    }
    let proxy = Arc::new(proxy::ProxyProtocol { on: plan.proxy_protocol, trusted: plan.proxy_protocol_from.clone() });
    let stream_listeners =
        tcp_listeners.into_iter().map(|l| (l, None)).chain(tls_listeners.into_iter().map(|l| (l, tls.clone())));
    for ((listener, local), tls) in stream_listeners {
        let transport = if tls.is_some() { Transport::Tls } else { Transport::Tcp };
        listeners.push(Listener { transport, addr: local });
        let driver = tcp::TcpDriver {
            listener,
            local,
            server: server.clone(),
            stats: stats.clone(),
            limits,
            strict_rfc8656: plan.strict_rfc8656,
            tls,
            proxy: proxy.clone(),
            clients: Arc::default(),
        };
        tasks.push(tokio::spawn(driver.run(stop.subscribe())));
    }
    tasks.push(tokio::spawn(sweep(server, stop.subscribe())));
    Ok(Running { listeners, tasks, stop, stats, tls, workers: worker_stats })
}

/// The OS error of a bind, with what "in use" means here.
fn in_use_hint(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("{e} (another process, perhaps another switchback, has it)"),
        _ => e.to_string(),
    }
}

/// A group of `workers` UDP sockets per address: the first learns the port (port 0 asks the OS),
/// the others share it with SO_REUSEPORT.
fn bind_udp(addrs: &[SocketAddr], workers: usize, buffer: usize) -> Result<Vec<UdpGroup>, IoError> {
    let mut groups = Vec::new();
    for &addr in addrs {
        let bind_error = |error| IoError::Bind { transport: "udp", addr, error };
        let (first, local) = socket::udp_group_first(addr, workers, buffer).map_err(bind_error)?;
        let mut group = vec![first];
        for _ in 1..workers {
            group.push(socket::udp(local, true, buffer).map_err(bind_error)?.0);
        }
        groups.push((group, local));
    }
    Ok(groups)
}

/// Binds the plan's UDP addresses; with `rfc5780` the first two also at the alternate port
/// (RFC 5780 §6: A:P, B:P, A:P', B:P'), returning the grid.
fn bind_udp_plan(plan: &ListenPlan) -> Result<(Vec<UdpGroup>, Option<NatDiscovery>), IoError> {
    let (workers, buffer) = (plan.workers.max(1), plan.socket_buffer);
    match (plan.rfc5780_alt_port, plan.addrs.as_slice()) {
        (Some(alt), [a, b, rest @ ..]) if a.is_ipv4() == b.is_ipv4() && a.ip() != b.ip() => {
            let (mut groups, grid) = bind_grid(*a, b.ip(), alt, workers, buffer)?;
            groups.extend(bind_udp(rest, workers, buffer)?);
            Ok((groups, Some(grid)))
        }
        _ => Ok((bind_udp(&plan.addrs, workers, buffer)?, None)),
    }
}

/// Binds the plan's TLS addresses; with RFC 5780 over TLS the first two also at the alternate TLS
/// port (the grid of §6 for `stun.nat-discovery`, RFC 7443), returning the grid.
fn bind_tls_plan(plan: &ListenPlan) -> Result<(Vec<StreamListener>, Option<NatDiscovery>), IoError> {
    let bind = |addr: SocketAddr| socket::tcp(addr).map_err(|error| IoError::Bind { transport: "tls", addr, error });
    match (plan.rfc5780_tls_alt_port, plan.tls_addrs.as_slice()) {
        (Some(alt), [a, b, rest @ ..]) if a.is_ipv4() == b.is_ipv4() && a.ip() != b.ip() => {
            let primary = bind(*a)?;
            let port = primary.1.port();
            let other = bind(SocketAddr::new(b.ip(), port))?;
            let alternate = bind(SocketAddr::new(a.ip(), alt))?;
            let alt = alternate.1.port();
            let other_alternate = bind(SocketAddr::new(b.ip(), alt))?;
            let mut listeners = vec![primary, other, alternate, other_alternate];
            for &addr in rest {
                listeners.push(bind(addr)?);
            }
            Ok((listeners, Some(NatDiscovery { ips: [a.ip(), b.ip()], ports: [port, alt] })))
        }
        _ => Ok((plan.tls_addrs.iter().map(|&a| bind(a)).collect::<Result<_, _>>()?, None)),
    }
}

/// The four sockets of RFC 5780 §6: `a` and `b`'s IP at `a`'s port (as bound) and at `alt`
/// (0: the OS picks, then `b` follows).
fn bind_grid(
    a: SocketAddr,
    b: std::net::IpAddr,
    alt: u16,
    workers: usize,
    buffer: usize,
) -> Result<(Vec<UdpGroup>, NatDiscovery), IoError> {
    let primary = bind_udp(&[a], workers, buffer)?;
    let port = primary.first().map_or(a.port(), |g| g.1.port());
    let alternate = bind_udp(&[SocketAddr::new(a.ip(), alt)], workers, buffer)?;
    let alt = alternate.first().map_or(alt, |g| g.1.port());
    let others = bind_udp(&[SocketAddr::new(b, port), SocketAddr::new(b, alt)], workers, buffer)?;
    let mut others = others.into_iter();
    let groups = primary.into_iter().chain(others.next()).chain(alternate).chain(others).collect();
    Ok((groups, NatDiscovery { ips: [a.ip(), b], ports: [port, alt] }))
}

/// The first socket of each RFC 5780 address, for the workers to answer from (empty without it).
fn grid_siblings(
    groups: &[(Vec<Arc<tokio::net::UdpSocket>>, SocketAddr)],
    grid: Option<NatDiscovery>,
) -> udp::Siblings {
    let Some(grid) = grid else { return Arc::new([]) };
    let in_grid = |a: &SocketAddr| grid.ips.contains(&a.ip()) && grid.ports.contains(&a.port());
    groups
        .iter()
        .filter(|(_, local)| in_grid(local))
        .filter_map(|(g, local)| Some((*local, Arc::clone(g.first()?))))
        .collect()
}

/// A TCP listener and the address it is bound to.
type StreamListener = (tokio::net::TcpListener, SocketAddr);

/// The UDP sockets of one listening address and the address they share.
type UdpGroup = (Vec<tokio::net::UdpSocket>, SocketAddr);

/// Expires allocations, permissions and channels once a second (RFC 8656 §7–§12 timers); on stop,
/// deletes every allocation so relay sockets close.
async fn sweep(server: Arc<TurnServer>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => server.sweep(std::time::Instant::now()),
            () = stopped(&mut stop) => break,
        }
    }
    server.close_all(std::time::Instant::now());
}

/// Resolves when `stop` says so or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|&s| s).await;
}
