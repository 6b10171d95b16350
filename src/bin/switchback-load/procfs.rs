//! A server's CPU time and resident memory from `/proc/PID` (proc(5)): `stat` fields 14 and 15
//! (utime, stime, in clock ticks) and `statm`'s resident pages; and the whole machine's busy CPU
//! time from `/proc/stat`, which counts what no process is charged with (softirq: an XDP program's
//! work, the kernel's receive path).

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

/// The whole machine's CPU time (all CPUs), in clock ticks, from the first line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemTicks {
    /// user + nice + system + irq + softirq (guest time is part of user already).
    pub busy: u64,
    /// softirq alone (part of `busy`).
    pub softirq: u64,
}

impl SystemTicks {
    /// The `cpu` line of a `/proc/stat` text: user nice system idle iowait irq softirq steal ...
    pub fn parse(stat: &str) -> Option<SystemTicks> {
        let line = stat.lines().find(|l| l.split_whitespace().next() == Some("cpu"))?;
        let v: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
        if v.len() < 7 {
            return None;
        }
        // idle (3), iowait (4) and steal (7) are not busy.
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(SystemTicks { busy: at(0) + at(1) + at(2) + at(5) + at(6), softirq: at(6) })
    }

    /// Reads `/proc/stat`.
    pub fn read() -> Result<SystemTicks> {
        let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
        SystemTicks::parse(&stat).context("no cpu line in /proc/stat")
    }
}

/// The whole machine's CPU seconds across a phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemCpu {
    /// Busy CPU seconds over all CPUs (user, nice, system, irq, softirq).
    pub busy_s: f64,
    /// Of which softirq.
    pub softirq_s: f64,
}

/// The kernel's softirq threads (`ksoftirqd/N`): the receive work the kernel defers from the
/// context of the task that raised it (a veth's NAPI and XDP runs there under load).
fn softirq_threads() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.starts_with("ksoftirqd/")))
        .collect()
}

/// Server CPU seconds and RSS across a phase (`None` without a PID), this tool's own CPU seconds,
/// the kernel's softirq threads' and the whole machine's.
pub struct CpuMeter {
    pid: Option<u32>,
    start: Sample,
    own: Option<Sample>,
    softirqd: Vec<(u32, f64)>,
    system: Option<SystemTicks>,
}

impl CpuMeter {
    pub fn start(pid: Option<u32>) -> Result<Self> {
        let start = match pid {
            Some(p) => sample(p)?,
            None => Sample::default(),
        };
        let softirqd = softirq_threads().into_iter().filter_map(|t| Some((t, sample(t).ok()?.cpu_s))).collect();
        Ok(CpuMeter { pid, start, own: sample(std::process::id()).ok(), softirqd, system: SystemTicks::read().ok() })
    }

    /// CPU seconds used since `start`, and the RSS now (and at the start).
    pub fn stop(&self) -> Option<(f64, Sample, Sample)> {
        let pid = self.pid?;
        let end = sample(pid).ok()?;
        Some((end.cpu_s - self.start.cpu_s, self.start, end))
    }

    /// This process's CPU seconds since `start` (the generator's share of the machine's).
    pub fn own(&self) -> Option<f64> {
        let end = sample(std::process::id()).ok()?;
        Some(end.cpu_s - self.own?.cpu_s)
    }

    /// The CPU seconds of the `ksoftirqd` threads since `start` (the whole machine's deferred
    /// softirq work; with tick accounting the softirq work done in a task's context is that task's).
    pub fn softirqd(&self) -> f64 {
        self.softirqd.iter().filter_map(|(t, at)| Some(sample(*t).ok()?.cpu_s - at)).sum()
    }

    /// The whole machine's busy CPU seconds since `start`.
    pub fn system(&self) -> Option<SystemCpu> {
        let (start, end) = (self.system?, SystemTicks::read().ok()?);
        let hz = rustix::param::clock_ticks_per_second() as f64;
        Some(SystemCpu {
            busy_s: end.busy.saturating_sub(start.busy) as f64 / hz,
            softirq_s: end.softirq.saturating_sub(start.softirq) as f64 / hz,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_busy_time_leaves_out_idle_iowait_and_steal() {
        let stat = "cpu  100 2 30 5000 7 1 40 3 9 0\ncpu0 50 1 15 2500 3 1 20 1 9 0\nintr 1 2\n";
        let t = SystemTicks::parse(stat).unwrap();
        assert_eq!(t, SystemTicks { busy: 100 + 2 + 30 + 1 + 40, softirq: 40 });
        assert_eq!(SystemTicks::parse("cpu0 1 2 3 4 5 6 7\n"), None, "the per-CPU lines are not the total");
        assert_eq!(SystemTicks::parse("cpu  1 2 3\n"), None);
        assert!(SystemTicks::read().unwrap().busy > 0);
    }

    #[test]
    fn the_softirq_threads_are_found() {
        // Every Linux kernel runs one per CPU.
        assert!(!softirq_threads().is_empty());
        let meter = CpuMeter::start(None).unwrap();
        assert!(meter.softirqd() >= 0.0);
        assert_eq!(meter.softirqd.len(), softirq_threads().len());
    }
}
