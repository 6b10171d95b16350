//! A server's CPU time and resident memory from `/proc/PID` (proc(5)): `stat` fields 14 and 15
//! (utime, stime, in clock ticks) and `statm`'s resident pages.

use anyhow::{Context as _, Result};

/// One reading of a process.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// User plus system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Resident set, KiB.
    pub rss_kib: u64,
}

/// Reads `/proc/PID/stat` and `/proc/PID/statm`.
pub fn sample(pid: u32) -> Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("no process {pid}"))?;
    // The command name (field 2) may hold spaces: the fields after it start past the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).context("no utime")?;
    let sticks: u64 = fields.get(12).and_then(|f| f.parse().ok()).context("no stime")?;
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|f| f.parse().ok()).context("bad statm")?;
    let page_kib = rustix::param::page_size() as u64 / 1024;
    Ok(Sample { cpu_s: (ticks + sticks) as f64 / hz, rss_kib: pages * page_kib })
}

/// Server CPU seconds and RSS across a phase; `None` without a PID.
pub struct CpuMeter {
    pid: Option<u32>,
    start: Sample,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> Result<Self> {
        let start = match pid {
            Some(p) => sample(p)?,
            None => Sample::default(),
        };
        Ok(CpuMeter { pid, start })
    }

    /// CPU seconds used since `start`, and the RSS now (and at the start).
    pub fn stop(&self) -> Option<(f64, Sample, Sample)> {
        let pid = self.pid?;
        let end = sample(pid).ok()?;
        Some((end.cpu_s - self.start.cpu_s, self.start, end))
    }
}
