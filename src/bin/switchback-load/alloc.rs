//! Allocation rate and memory per held allocation: `count` clients each allocate (RFC 8656 §7,
//! with the 401 round trip a fresh client meets), one after another; all are held until the end,
//! then the server's RSS growth is divided among them. They are deleted (Refresh LIFETIME 0)
//! afterwards so a next run finds the port range free.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;

use crate::net;
use crate::procfs::CpuMeter;
use crate::progress::Progress;
use crate::stun::{Session, rest_credentials};

/// What an allocation run measured.
#[derive(Debug, Default)]
pub struct AllocReport {
    pub allocations: u64,
    pub seconds: f64,
    pub server_cpu_s: Option<f64>,
    pub rss_growth_kib: Option<i64>,
    pub requests: u64,
    /// Why the run stopped before `count`, if it did.
    pub stopped: Option<String>,
}

pub fn run(
    server: SocketAddr,
    secret: &str,
    count: usize,
    parallel: usize,
    pid: Option<u32>,
    client_ip: std::net::Ipv4Addr,
    progress: &mut Progress,
) -> Result<AllocReport> {
    let meter = CpuMeter::start(pid)?;
    let t0 = Instant::now();
    let parallel = parallel.clamp(1, 256);
    // `parallel` threads, each allocating one after another: that many requests in flight.
    let results: Vec<Result<Held>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|t| scope.spawn(move || allocate_some(server, secret, (t..count).step_by(parallel), client_ip)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a thread panicked")))).collect()
    });
    let seconds = t0.elapsed().as_secs_f64();
    let usage = meter.stop();
    progress.update(t0.elapsed(), count as u64, count as u64, seconds);
    let (mut held, mut requests, mut stopped) = (Vec::new(), 0u64, None);
    for r in results {
        let h = r?;
        held.extend(h.sessions);
        requests += h.requests;
        stopped = stopped.or(h.stopped);
    }
    for (socket, s) in &mut held {
        let _ = s.delete(socket);
    }
    Ok(AllocReport {
        allocations: held.len() as u64,
        stopped,
        seconds,
        server_cpu_s: usage.map(|u| u.0),
        rss_growth_kib: usage.map(|u| u.2.rss_kib as i64 - u.1.rss_kib as i64),
        requests,
    })
}

/// What one thread holds.
struct Held {
    sessions: Vec<(std::net::UdpSocket, Session)>,
    requests: u64,
    stopped: Option<String>,
}

fn allocate_some(
    server: SocketAddr,
    secret: &str,
    indices: impl Iterator<Item = usize>,
    client_ip: std::net::Ipv4Addr,
) -> Result<Held> {
    let mut held = Held { sessions: Vec::new(), requests: 0, stopped: None };
    for i in indices {
        let o = client_ip.octets();
        let ip = [o[0], o[1], o[2], (usize::from(o[3]) + i / 20_000).min(254) as u8];
        let socket = net::udp(SocketAddr::from((ip, 0)))?;
        socket.connect(server)?;
        let (user, pass) = rest_credentials(secret, &format!("alloc{i}"));
        let s = match Session::allocate(&socket, &user, &pass, 600) {
            Ok(s) => s,
            Err(e) if i > 0 => {
                // Out of relay ports (508) and the like: report what was held.
                held.stopped = Some(format!("allocation {i}: {e:#}"));
                break;
            }
            Err(e) => return Err(e.context("the first allocation")),
        };
        held.requests += u64::from(s.requests);
        held.sessions.push((socket, s));
    }
    Ok(held)
}
