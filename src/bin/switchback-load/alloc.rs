//! Allocation rate and memory per held allocation: `count` clients each allocate (RFC 8656 §7,
//! with the 401 round trip a fresh client meets), one after another; all are held until the end,
//! then the server's RSS growth is divided among them. They are deleted (Refresh LIFETIME 0)
//! afterwards so a next run finds the port range free.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;

use crate::net;
use crate::procfs::Meter;
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
    pid: Option<u32>,
    client_ip: std::net::Ipv4Addr,
    progress: &mut Progress,
) -> Result<AllocReport> {
    let meter = Meter::start(pid)?;
    let t0 = Instant::now();
    let mut held = Vec::with_capacity(count);
    let mut requests = 0u64;
    let mut stopped = None;
    for i in 0..count {
        let o = client_ip.octets();
        let ip = [o[0], o[1], o[2], (usize::from(o[3]) + i / 20_000).min(254) as u8];
        let socket = net::udp(SocketAddr::from((ip, 0)))?;
        socket.connect(server)?;
        let (user, pass) = rest_credentials(secret, &format!("alloc{i}"));
        let s = match Session::allocate(&socket, &user, &pass, 600) {
            Ok(s) => s,
            Err(e) if i > 0 => {
                // Out of relay ports (508) and the like: report what was held.
                stopped = Some(format!("allocation {i}: {e:#}"));
                break;
            }
            Err(e) => return Err(e.context("the first allocation")),
        };
        requests += u64::from(s.requests);
        held.push((socket, s));
        if i % 256 == 0 {
            progress.update(t0.elapsed(), i as u64, i as u64, t0.elapsed().as_secs_f64());
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    let usage = meter.stop();
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
