//! The command line of `switchback-load`: the subcommands and their options (clap), and the
//! overview `--help` prints. `main.rs` turns them into runs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::creds::Credentials;

/// The operator's overview: `switchback-load --help`.
pub(crate) const LONG_ABOUT: &str = "\
Load for a TURN server, and a bare forwarder that sets the ceiling.

WARNING: this generates real load. Against a production deployment, run `alloc` with a small
--count and a --rate, at a quiet hour, with credentials made for the test; every allocation made
is deleted (Refresh LIFETIME 0) when the run ends.

Modes and what they measure:
  alloc      Allocations per second, and with --server-pid (server on this machine) the server's
             CPU and memory per held allocation. Each client makes one Allocate (with the 401 round
             trip of a fresh client) and holds it to the end. No peer, no data: the only traffic
             goes to --server, so this is the mode for a remote deployment.
  relay      Relayed messages per second, loss and round-trip times through the server. The echo
             peer runs inside this tool on --client-ip (loopback), so the server must be on this
             machine and allow loopback peers (allow-loopback-peers); the tool refuses other
             addresses. --netns-addresses: the addresses are in network namespaces this run
             created (198.18.0.0/15, 2001:2::/48 only; never point it at a real network).
             Reported too: the whole machine's busy CPU (/proc/stat) over the measured window.
             --tcp and --tls reach the server over TCP or TLS. --call is the call model: every
             allocation sends --pps messages a second (default 50, 160-byte payloads, audio-like)
             on a fixed schedule, echoed back by the peer; reported are the round trip's
             p50/p99/p999, jitter (RFC 3550) and loss.
  forwarder  A bare recvmmsg/sendmmsg UDP forwarder on loopback (no TURN): the ceiling.
  table      Medians of benches/compare.sh's rows, and the SVG chart.

Credentials (alloc, relay): exactly one of
  --secret SECRET          the server's static-auth-secret; REST credentials are minted per client
                           (one username each, so per-user limits do not apply);
  --user NAME:PASSWORD     a static user of the server; repeat it or give --users-file (one
                           NAME:PASSWORD a line) to spread the clients over several users in turn.

Server-side limits a run meets (switchback's defaults): rate-limit-unauth 20/s:300 per source
address (beyond it requests go unanswered; every fresh allocation costs one unauthenticated 401),
rate-limit-allocate 10/s:20 per user and user-quota 32 (486), total-quota 10000 and the relay port
range (508). The tool names the limit it met; pace with --rate or use more users.

Examples:
  switchback-load alloc --server turn.example.com:3478 --secret \"$SECRET\" --count 200 --rate 10
  switchback-load alloc --server turn.example.com:3478 --user load1:PW1 --user load2:PW2 --count 40 --rate 5
  switchback-load relay --server 127.0.0.1:3478 --secret S --server-pid \"$(pidof switchback)\"

The last stdout line is `result key=value ...` for scripts.";

#[derive(Parser)]
#[command(name = "switchback-load", version, about = "Load for a TURN server, and a bare forwarder", long_about = LONG_ABOUT)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// No progress display.
    #[arg(long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
    /// ChannelData (RFC 8656 §12).
    Channel,
    /// Send and Data indications (RFC 8656 §11).
    Send,
}

/// The credentials options of `alloc` and `relay`: exactly one source ([`Credentials::from_args`]).
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct CredArgs {
    /// The server's REST shared secret (static-auth-secret): one minted username per client.
    #[arg(long)]
    pub(crate) secret: Option<String>,
    /// A static user NAME:PASSWORD of the server; repeat to spread the clients over several.
    #[arg(long = "user", value_name = "NAME:PASSWORD")]
    pub(crate) users: Vec<String>,
    /// Static users, one NAME:PASSWORD a line (# comments); with --user, all of them.
    #[arg(long, value_name = "PATH")]
    pub(crate) users_file: Option<PathBuf>,
}

impl CredArgs {
    pub(crate) fn credentials(&self) -> anyhow::Result<Credentials> {
        Credentials::from_args(self.secret.as_deref(), &self.users, self.users_file.as_deref())
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Relays messages through a server on this machine to an echo peer run here and measures them.
    #[command(long_about = "Relays messages through a TURN server on this machine to an echo peer run by this \
        tool on --client-ip (loopback), and measures messages per second, loss and round-trip times. \
        The server must allow loopback peers (allow-loopback-peers). Bounded by --duration and --count. \
        With --netns-addresses the server, clients and peer may be in 198.18.0.0/15 or 2001:2::/48 \
        instead: the addresses are in network namespaces this run created; never point it at a real \
        network.")]
    Relay {
        /// TURN server (UDP), on loopback (or see --netns-addresses).
        #[arg(long, required_unless_present = "forwarder")]
        server: Option<SocketAddr>,
        #[command(flatten)]
        creds: CredArgs,
        /// Drive the bare forwarder at FRONT,BACK instead of a TURN server.
        #[arg(long, value_name = "FRONT,BACK", conflicts_with = "server")]
        forwarder: Option<String>,
        #[arg(long, value_enum, default_value = "channel")]
        mode: Mode,
        /// Reach the server over TCP (RFC 8656 §3.1) instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// Reach the server over TLS (RFC 8656 §3.1); without --tls-cert any certificate is taken
        /// (a development server's self-signed one).
        #[arg(long, conflicts_with = "tcp")]
        tls: bool,
        /// With --tls: trust only the certificates in this PEM file.
        #[arg(long, value_name = "PEM", requires = "tls")]
        tls_cert: Option<PathBuf>,
        /// The call model: each allocation sends --pps messages a second on a fixed schedule (open
        /// loop; --window unused); the default payload becomes 160 bytes.
        #[arg(long)]
        call: bool,
        /// With --call: messages per second per allocation (50: an audio call's packet rate).
        #[arg(long, default_value_t = 50, requires = "call")]
        pps: u32,
        /// Allocations (clients), each with its own socket.
        #[arg(long, default_value_t = 8)]
        allocations: usize,
        /// Payload bytes per message (at least 16); 100, or 160 with --call.
        #[arg(long)]
        size: Option<usize>,
        /// Messages in flight per allocation.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Messages per second in total; 0 = as many as the window lets through.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Seconds of warm-up, not measured.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Seconds measured (at most 600).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Messages measured at most.
        #[arg(long, default_value_t = 100_000_000)]
        count: u64,
        /// The server's PID: its CPU time and RSS come from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// First local address of the clients and the echo peer (127.0.0.2 and up).
        #[arg(long, default_value = "127.0.0.2")]
        client_ip: Ipv4Addr,
        /// The addresses are in network namespaces this run created; never point it at a real
        /// network. Also allows --server, --forwarder and --client-ip in the benchmarking ranges
        /// 198.18.0.0/15 (RFC 2544) and 2001:2::/48 (RFC 5180), and nothing else beyond loopback
        /// (benches/xdp.sh: a server behind a veth pair).
        #[arg(long)]
        netns_addresses: bool,
    },
    /// Allocation rate (and, with --server-pid, server CPU and memory per allocation); works remotely.
    #[command(long_about = "Makes --count allocations (each a fresh client: Allocate, 401, Allocate with \
        credentials), holds them all, then deletes them. Reports allocations per second and, with \
        --server-pid (server on this machine), the server's CPU time and RSS growth per allocation. \
        Sends only to --server: no permission, no peer, no data. Stops early, naming the server limit, \
        on 486 (rate-limit-allocate, user-quota), 508 (total-quota, relay ports) or silence \
        (rate-limit-unauth).")]
    Alloc {
        /// TURN server HOST:PORT (UDP); the only address the tool sends to.
        #[arg(long, value_name = "HOST:PORT")]
        server: String,
        #[command(flatten)]
        creds: CredArgs,
        /// Allocations to make and hold (at most 200,000; each holds a socket here, and one on the
        /// server: raise both processes' RLIMIT_NOFILE).
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Report per bucket of this many allocations (rate, server CPU and RSS per allocation);
        /// 0 = no buckets.
        #[arg(long, default_value_t = 0)]
        bucket: usize,
        /// Allocations in progress at once (threads, each allocating one after another).
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        /// Allocations started per second over all threads; 0 = as fast as the server answers.
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
        /// Seconds after which no more allocations start (at most 3600).
        #[arg(long, default_value_t = 600.0)]
        max_time: f64,
        /// The server's PID (server on this machine): its CPU time and RSS come from /proc.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Local address of the clients (default: 127.0.0.2 and up for a loopback server, any
        /// address otherwise).
        #[arg(long)]
        client_ip: Option<IpAddr>,
    },
    /// The bare forwarder (recvmmsg/sendmmsg, two sockets, no TURN); prints `listening FRONT BACK`.
    Forwarder {
        #[arg(long, default_value = "127.0.0.1:0")]
        front: SocketAddr,
        #[arg(long, default_value = "127.0.0.1:0")]
        back: SocketAddr,
        /// Seconds to serve (at most 3600).
        #[arg(long, default_value_t = 120.0)]
        duration: f64,
    },
    /// Medians of compare.sh's rows as a Markdown table, and the SVG chart.
    Table {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}
