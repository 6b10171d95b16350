//! Allocation rate and memory per held allocation: `count` clients each allocate (RFC 8656 §7,
//! with the 401 round trip a fresh client meets), one after another, optionally paced to `rate`
//! per second; all are held until the end, then the server's RSS growth is divided among them.
//! They are deleted (Refresh LIFETIME 0) afterwards so a next run finds the port range free.
//!
//! The only traffic is to `server`: no permission, no channel, no peer.
//!
//! With `bucket` set, the run is also cut into buckets of that many allocations (in the order they
//! complete): each bucket's rate, server CPU and RSS growth per allocation, so a cost that grows
//! with the number held (table lookup, port search) shows as a trend from the first to the last.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::creds::Credentials;
use crate::diagnose::{Stop, explain};
use crate::net;
use crate::procfs::{CpuMeter, Sample, sample};
use crate::progress::Progress;
use crate::stun::Session;

/// The knobs of an allocation run.
#[derive(Clone, Debug)]
pub struct Params {
    pub server: SocketAddr,
    pub credentials: Credentials,
    /// Allocations to make and hold.
    pub count: usize,
    /// Allocations in progress at once (threads).
    pub parallel: usize,
    /// Allocations started per second over all threads; 0 = as fast as answers come.
    pub rate: f64,
    /// The run stops starting allocations after this long.
    pub max_time: Duration,
    pub server_pid: Option<u32>,
    /// The clients' local address: a loopback address counts up every 20,000 clients.
    pub client_ip: IpAddr,
    /// Allocations per bucket of the per-bucket report; 0 = none.
    pub bucket: usize,
}

/// One bucket: allocations `from..to` (in completion order), their seconds, and the server's CPU
/// seconds and RSS growth over them (with a server PID).
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub from: u64,
    pub to: u64,
    pub seconds: f64,
    pub cpu_s: Option<f64>,
    pub rss_growth_kib: Option<i64>,
}

/// What an allocation run measured.
#[derive(Debug, Default)]
pub struct AllocReport {
    pub allocations: u64,
    pub seconds: f64,
    pub server_cpu_s: Option<f64>,
    pub rss_growth_kib: Option<i64>,
    pub requests: u64,
    /// Why the run stopped before `count`, if it did: the allocation and the reason.
    pub stopped: Option<(usize, Stop)>,
    pub buckets: Vec<Bucket>,
}

/// What the threads share: answers seen (to tell a rate limit from an unreachable server) and a
/// flag that stops them all once one has met a limit.
#[derive(Default)]
struct Shared {
    answered: AtomicU64,
    stop: AtomicBool,
    /// Bucket boundaries: (allocations done, when, the server then).
    marks: Mutex<Vec<(u64, Instant, Option<Sample>)>>,
}

impl Shared {
    /// Counts one answered allocation; at a bucket boundary, notes the time and the server.
    fn answered(&self, p: &Params) {
        let n = self.answered.fetch_add(1, Ordering::Relaxed) + 1;
        if p.bucket > 0 && n.is_multiple_of(p.bucket as u64) {
            let server = p.server_pid.and_then(|pid| sample(pid).ok());
            if let Ok(mut marks) = self.marks.lock() {
                marks.push((n, Instant::now(), server));
            }
        }
    }
}

/// The buckets between consecutive marks, the first from `start`.
fn buckets(start: (Instant, Option<Sample>), mut marks: Vec<(u64, Instant, Option<Sample>)>) -> Vec<Bucket> {
    marks.sort_by_key(|m| m.0);
    let mut prev = (0u64, start.0, start.1);
    let mut out = Vec::new();
    for m in marks {
        let both = prev.2.zip(m.2);
        out.push(Bucket {
            from: prev.0,
            to: m.0,
            seconds: m.1.saturating_duration_since(prev.1).as_secs_f64(),
            cpu_s: both.map(|(a, b)| b.cpu_s - a.cpu_s),
            rss_growth_kib: both.map(|(a, b)| b.rss_kib as i64 - a.rss_kib as i64),
        });
        prev = m;
    }
    out
}

/// Makes and holds the allocations, then deletes them.
pub fn run(p: &Params, progress: &mut Progress) -> Result<AllocReport> {
    let meter = CpuMeter::start(p.server_pid)?;
    let t0 = Instant::now();
    let start = (t0, p.server_pid.and_then(|pid| sample(pid).ok()));
    let parallel = p.parallel.clamp(1, 256);
    let shared = Shared::default();
    // `parallel` threads, each allocating one after another: that many requests in flight.
    let results: Vec<Result<Held>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..parallel)
            .map(|t| {
                let shared = &shared;
                scope.spawn(move || allocate_some(p, shared, t0, (t..p.count).step_by(parallel)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a thread panicked")))).collect()
    });
    let seconds = t0.elapsed().as_secs_f64();
    let usage = meter.stop();
    progress.update(t0.elapsed(), p.count as u64, shared.answered.load(Ordering::Relaxed), seconds);
    let (mut held, mut requests, mut stopped) = (Vec::new(), 0u64, None::<(usize, Stop)>);
    for r in results {
        let h = r?;
        held.extend(h.sessions);
        requests += h.requests;
        // The earliest allocation that stopped a thread explains the run.
        if let Some(s) = h.stopped
            && stopped.as_ref().is_none_or(|(i, _)| s.0 < *i)
        {
            stopped = Some(s);
        }
    }
    for (socket, s) in &mut held {
        let _ = s.delete(socket);
    }
    let marks = shared.marks.into_inner().unwrap_or_default();
    Ok(AllocReport {
        buckets: buckets(start, marks),
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
    sessions: Vec<(UdpSocket, Session)>,
    requests: u64,
    stopped: Option<(usize, Stop)>,
}

/// Allocates `indices` one after another, each at its paced time, until a failure, the time limit
/// or another thread's stop. A failure of the run's first allocation is an error.
fn allocate_some(p: &Params, shared: &Shared, t0: Instant, indices: impl Iterator<Item = usize>) -> Result<Held> {
    let mut held = Held { sessions: Vec::new(), requests: 0, stopped: None };
    let deadline = t0 + p.max_time;
    for i in indices {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        if !wait_until(due(t0, i, p.rate), deadline) {
            let message = format!("the time limit (--max-time {} s) ran out", p.max_time.as_secs_f64());
            held.stopped = Some((i, Stop { key: "time", message }));
            break;
        }
        // Out of descriptors here (RLIMIT_NOFILE) ends the run like a server limit would.
        let socket = match net::udp(client_addr(p.client_ip, i)) {
            Ok(socket) => socket,
            Err(e) if i > 0 && e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error()) => {
                let message = format!("this tool cannot open another socket ({e}): raise its RLIMIT_NOFILE");
                held.stopped = Some((i, Stop { key: "local-fds", message }));
                shared.stop.store(true, Ordering::Relaxed);
                break;
            }
            Err(e) => return Err(e.into()),
        };
        socket.connect(p.server)?;
        let (user, pass) = p.credentials.for_client("alloc", i);
        match Session::allocate(&socket, &user, &pass, 600) {
            Ok(s) => {
                shared.answered(p);
                held.requests += u64::from(s.requests);
                held.sessions.push((socket, s));
            }
            Err(e) => {
                let mut stop = explain(&e, shared.answered.load(Ordering::Relaxed) > 0, p.server);
                if p.credentials.user_count().is_some() {
                    stop.message = format!("user {user}: {}", stop.message);
                }
                shared.stop.store(true, Ordering::Relaxed);
                if i == 0 {
                    anyhow::bail!("the first allocation failed: {}", stop.message);
                }
                held.stopped = Some((i, stop));
                break;
            }
        }
    }
    Ok(held)
}

/// When allocation `i` may start: `i / rate` seconds after `t0` (at once when `rate` is 0).
fn due(t0: Instant, i: usize, rate: f64) -> Instant {
    if rate > 0.0 { t0 + Duration::from_secs_f64((i as f64 / rate).min(1e6)) } else { t0 }
}

/// Sleeps until `at`; false (without sleeping) when `at` is past `deadline`.
fn wait_until(at: Instant, deadline: Instant) -> bool {
    if at > deadline {
        return false;
    }
    std::thread::sleep(at.saturating_duration_since(Instant::now()));
    Instant::now() <= deadline
}

/// Client `i`'s local address: on loopback 127.0.0.2 + i / 20,000 (the 5-tuples stay distinct and
/// clear of the server's relay ports on 127.0.0.1); elsewhere the address as given.
fn client_addr(ip: IpAddr, i: usize) -> SocketAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => {
            let o = v4.octets();
            let last = (usize::from(o[3]) + i / 20_000).min(254) as u8;
            SocketAddr::from(([o[0], o[1], o[2], last], 0))
        }
        other => SocketAddr::new(other, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_run_from_mark_to_mark() {
        let t0 = Instant::now();
        let s = |cpu_s, rss_kib| Some(Sample { cpu_s, rss_kib });
        let marks =
            vec![(20, t0 + Duration::from_secs(3), s(1.5, 1400)), (10, t0 + Duration::from_secs(1), s(0.5, 1200))];
        let b = buckets((t0, s(0.0, 1000)), marks);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].from, b[0].to, b[0].seconds), (0, 10, 1.0));
        assert_eq!((b[0].cpu_s, b[0].rss_growth_kib), (Some(0.5), Some(200)));
        assert_eq!((b[1].from, b[1].to, b[1].seconds), (10, 20, 2.0));
        assert_eq!((b[1].cpu_s, b[1].rss_growth_kib), (Some(1.0), Some(200)));
        // Without a server PID only the times.
        let b = buckets((t0, None), vec![(5, t0 + Duration::from_secs(1), None)]);
        assert_eq!((b[0].cpu_s, b[0].rss_growth_kib), (None, None));
    }

    #[test]
    fn pacing_spreads_the_allocations_over_time() {
        let t0 = Instant::now();
        assert_eq!(due(t0, 5, 0.0), t0);
        assert_eq!(due(t0, 10, 20.0), t0 + Duration::from_millis(500));
        assert_eq!(due(t0, 0, 20.0), t0);
    }

    #[test]
    fn a_start_past_the_deadline_is_refused_without_sleeping() {
        let now = Instant::now();
        let before = Instant::now();
        assert!(!wait_until(now + Duration::from_secs(3600), now + Duration::from_secs(1)));
        assert!(before.elapsed() < Duration::from_secs(1));
        assert!(wait_until(now, now + Duration::from_secs(60)));
    }

    #[test]
    fn loopback_clients_count_up_and_others_stay() {
        let lo = IpAddr::from([127, 0, 0, 2]);
        assert_eq!(client_addr(lo, 0), SocketAddr::from(([127, 0, 0, 2], 0)));
        assert_eq!(client_addr(lo, 45_000), SocketAddr::from(([127, 0, 0, 4], 0)));
        let any = IpAddr::from([0, 0, 0, 0]);
        assert_eq!(client_addr(any, 45_000), SocketAddr::from(([0, 0, 0, 0], 0)));
    }
}
