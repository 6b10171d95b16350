//! `switchback-load`: load for any TURN server over loopback, and the bare forwarder that sets the
//! ceiling. See `docs/performance.md` and `benches/compare.sh`.
//!
//! ```text
//! switchback-load relay --server 127.0.0.1:3478 --secret S --mode channel --size 100 --server-pid PID
//! switchback-load relay --forwarder 127.0.0.1:P,127.0.0.1:Q     # against `switchback-load forwarder`
//! switchback-load forwarder --duration 60
//! switchback-load alloc --server 127.0.0.1:3478 --secret S --count 2000 --server-pid PID
//! switchback-load table --input results.csv --svg docs/performance.svg
//! ```
//!
//! Every run is bounded in time and count; traffic goes to loopback only (the tool refuses other
//! addresses). The last line on stdout is `result key=value …` for scripts.

mod alloc;
mod forwarder;
mod net;
mod procfs;
mod progress;
mod relay;
mod stun;
mod table;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "switchback-load", version, about = "Load and a bare forwarder for TURN servers on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress display.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    /// ChannelData (RFC 8656 §12).
    Channel,
    /// Send and Data indications (RFC 8656 §11).
    Send,
}

#[derive(Subcommand)]
enum Command {
    /// Relays messages through the server to an echo peer run here and measures them.
    Relay {
        /// TURN server (UDP).
        #[arg(long, required_unless_present = "forwarder")]
        server: Option<SocketAddr>,
        /// REST shared secret of the server.
        #[arg(long, default_value = "")]
        secret: String,
        /// Drive the bare forwarder at FRONT,BACK instead of a TURN server.
        #[arg(long, value_name = "FRONT,BACK", conflicts_with = "server")]
        forwarder: Option<String>,
        #[arg(long, value_enum, default_value = "channel")]
        mode: Mode,
        /// Reach the server over TCP (RFC 8656 §3.1) instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// Allocations (clients), each with its own socket.
        #[arg(long, default_value_t = 8)]
        allocations: usize,
        /// Payload bytes per message (at least 16).
        #[arg(long, default_value_t = 100)]
        size: usize,
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
        /// First local address of the clients and the peer (127.0.0.2 and up).
        #[arg(long, default_value = "127.0.0.2")]
        client_ip: Ipv4Addr,
    },
    /// Allocation rate and memory per held allocation.
    Alloc {
        #[arg(long)]
        server: SocketAddr,
        #[arg(long)]
        secret: String,
        /// Allocations to make and hold.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Allocations in progress at once (threads, each allocating one after another).
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        #[arg(long)]
        server_pid: Option<u32>,
        #[arg(long, default_value = "127.0.0.2")]
        client_ip: Ipv4Addr,
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

fn loopback(addr: SocketAddr) -> Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        bail!("{addr}: the load tool only talks to loopback addresses");
    }
    Ok(addr)
}

fn seconds(s: f64, max: f64) -> Duration {
    Duration::from_secs_f64(s.clamp(0.0, max))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut progress = progress::Progress::new(cli.quiet);
    match cli.command {
        Command::Relay {
            server,
            secret,
            forwarder,
            mode,
            tcp,
            allocations,
            size,
            window,
            rate,
            warmup,
            duration,
            count,
            server_pid,
            client_ip,
        } => {
            if !client_ip.is_loopback() {
                bail!("--client-ip must be a loopback address");
            }
            let target = match (server, forwarder) {
                (_, Some(_)) if tcp => bail!("the bare forwarder is UDP only"),
                (_, Some(f)) => {
                    let Some((a, b)) = f.split_once(',') else { bail!("--forwarder FRONT,BACK") };
                    relay::Target::Bare { front: loopback(a.parse()?)?, back: loopback(b.parse()?)? }
                }
                (Some(s), None) => {
                    relay::Target::Turn { server: loopback(s)?, secret, send_indications: matches!(mode, Mode::Send) }
                }
                (None, None) => bail!("--server or --forwarder"),
            };
            let params = relay::Params {
                target,
                allocations: allocations.clamp(1, 16_000),
                size: size.min(65_000),
                window: window.max(1),
                rate,
                warmup: seconds(warmup, 60.0),
                duration: seconds(duration, 600.0),
                count,
                server_pid,
                client_ip,
                tcp,
            };
            let r = relay::run(&params, &mut progress)?;
            progress.finish();
            let per_cpu = r.server_cpu_s.filter(|&c| c > 0.0).map(|c| r.received as f64 / c);
            eprintln!(
                "{} msgs in {:.2} s: {:.0} msgs/s, {:.1} Mbit/s payload each way, loss {:.3} %, RTT p50 {} µs p99 {} µs",
                r.received,
                r.seconds,
                r.msgs_per_s(),
                r.msgs_per_s() * (params.size * 8) as f64 / 1e6,
                r.loss_pct(),
                r.rtt_p50_us,
                r.rtt_p99_us
            );
            if let (Some(cpu), Some(e)) = (r.server_cpu_s, per_cpu) {
                eprintln!(
                    "server: {cpu:.2} CPU-s, {e:.0} msgs per CPU-s ({:.2} µs per msg), RSS {} KiB",
                    1e6 / e,
                    r.server_rss_kib.unwrap_or(0)
                );
            }
            println!(
                "result msgs={} sent={} seconds={:.3} msgs_per_s={:.0} mbit_s={:.2} loss_pct={:.4} rtt_p50_us={} rtt_p99_us={} server_cpu_s={} server_rss_kib={} msgs_per_cpu_s={}",
                r.received,
                r.sent,
                r.seconds,
                r.msgs_per_s(),
                r.msgs_per_s() * (params.size * 8) as f64 / 1e6,
                r.loss_pct(),
                r.rtt_p50_us,
                r.rtt_p99_us,
                r.server_cpu_s.map(|c| format!("{c:.3}")).unwrap_or_default(),
                r.server_rss_kib.map(|c| c.to_string()).unwrap_or_default(),
                per_cpu.map(|c| format!("{c:.0}")).unwrap_or_default(),
            );
        }
        Command::Alloc { server, secret, count, parallel, server_pid, client_ip } => {
            if !client_ip.is_loopback() {
                bail!("--client-ip must be a loopback address");
            }
            // Each held allocation keeps a socket open here.
            let _ = rlimit::increase_nofile_limit(count as u64 + 1024);
            let r = alloc::run(
                loopback(server)?,
                &secret,
                count.clamp(1, 30_000),
                parallel,
                server_pid,
                client_ip,
                &mut progress,
            )?;
            progress.finish();
            if let Some(why) = &r.stopped {
                eprintln!("stopped early: {why}");
            }
            let n = r.allocations as f64;
            let cpu_us = r.server_cpu_s.map(|c| c * 1e6 / n);
            let kib = r.rss_growth_kib.map(|k| k as f64 / n);
            eprintln!(
                "{} allocations in {:.2} s ({:.0}/s, {} requests); server {} µs CPU and {} KiB RSS per allocation",
                r.allocations,
                r.seconds,
                n / r.seconds.max(1e-9),
                r.requests,
                cpu_us.map(|c| format!("{c:.1}")).unwrap_or_else(|| "?".into()),
                kib.map(|k| format!("{k:.2}")).unwrap_or_else(|| "?".into()),
            );
            println!(
                "result allocations={} seconds={:.3} allocs_per_s={:.0} cpu_us_per_alloc={} kib_per_alloc={}",
                r.allocations,
                r.seconds,
                n / r.seconds.max(1e-9),
                cpu_us.map(|c| format!("{c:.1}")).unwrap_or_default(),
                kib.map(|k| format!("{k:.2}")).unwrap_or_default(),
            );
        }
        Command::Forwarder { front, back, duration } => {
            forwarder::run(loopback(front)?, loopback(back)?, seconds(duration, 3600.0))?;
        }
        Command::Table { input, svg } => table::run(&input, svg.as_deref())?,
    }
    Ok(())
}
