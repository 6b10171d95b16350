//! The Prometheus standard process metrics (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc/self` at scrape time. Linux only: elsewhere
//! [`ProcessStats::read`] gives nothing and the series are left out.
//!
//! The parsers take the files' text, so tests feed them fixtures.

/// The process's resources at one moment; a field is `None` when its file could not be read.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, seconds (`/proc/self/stat` utime + stime).
    pub cpu_seconds: Option<f64>,
    /// Resident set size, bytes (`/proc/self/status` VmRSS).
    pub resident_bytes: Option<u64>,
    /// Open file descriptors (entries of `/proc/self/fd`).
    pub open_fds: Option<u64>,
    /// The soft limit of open files (`/proc/self/limits`); `None` when unlimited.
    pub max_fds: Option<u64>,
    /// Start of the process, Unix seconds (`/proc/stat` btime + `/proc/self/stat` starttime).
    pub start_time_seconds: Option<f64>,
}

impl ProcessStats {
    /// Reads `/proc` now (a handful of small files and one directory listing).
    #[cfg(target_os = "linux")]
    pub fn read() -> ProcessStats {
        let file = |path: &str| std::fs::read_to_string(path).ok();
        let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
        let stat = file("/proc/self/stat").as_deref().and_then(parse_stat);
        let btime = file("/proc/stat").as_deref().and_then(parse_btime);
        ProcessStats {
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / ticks),
            resident_bytes: file("/proc/self/status").as_deref().and_then(parse_vm_rss),
            open_fds: std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64),
            max_fds: file("/proc/self/limits").as_deref().and_then(parse_max_open_files),
            start_time_seconds: stat.zip(btime).map(|(s, b)| b as f64 + s.starttime as f64 / ticks),
        }
    }

    /// Not Linux: nothing is known.
    #[cfg(not(target_os = "linux"))]
    pub fn read() -> ProcessStats {
        ProcessStats::default()
    }
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// CPU time in user mode (field 14).
    pub utime: u64,
    /// CPU time in kernel mode (field 15).
    pub stime: u64,
    /// Start after boot (field 22).
    pub starttime: u64,
}

/// Parses `/proc/[pid]/stat` (proc(5)). The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so the fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = text.get(text.rfind(')')? + 1..)?;
    // Field 3 (state) is the first after the name.
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime = fields.next()?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    let starttime = fields.nth(22 - 16)?.parse().ok()?;
    Some(Stat { utime, stime, starttime })
}

/// The `VmRSS:` line of `/proc/[pid]/status`, in bytes (the file says kB, meaning KiB).
pub fn parse_vm_rss(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut words = line.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// The boot time, Unix seconds: the `btime` line of `/proc/stat`.
pub fn parse_btime(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()
}

/// The soft limit of the `Max open files` line of `/proc/[pid]/limits`; `None` when unlimited.
pub fn parse_max_open_files(text: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real line, with a command name that holds a space and a parenthesis.
    const STAT: &str = "4242 (switch (back) x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 \
        250 75 0 0 20 0 9 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        assert_eq!(parse_stat(STAT), Some(Stat { utime: 250, stime: 75, starttime: 123456 }));
        assert_eq!(parse_stat("4242 (x) S 1 2 3"), None, "cut short");
        assert_eq!(parse_stat("no name at all"), None);
    }

    #[test]
    fn status_gives_the_resident_set_in_bytes() {
        let status = "Name:\tswitchback\nVmPeak:\t  900000 kB\nVmRSS:\t   20480 kB\nRssAnon:\t 1 kB\n";
        assert_eq!(parse_vm_rss(status), Some(20480 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None, "kernel threads have no VmRSS");
        assert_eq!(parse_vm_rss("VmRSS:\t 12 MB\n"), None, "an unknown unit is not guessed");
    }

    #[test]
    fn proc_stat_gives_the_boot_time() {
        let stat = "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 5\nctxt 99\nbtime 1700000000\nprocesses 10\n";
        assert_eq!(parse_btime(stat), Some(1_700_000_000));
        assert_eq!(parse_btime("cpu 1 2\n"), None);
    }

    #[test]
    fn limits_give_the_soft_limit_of_open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max cpu time              unlimited            unlimited            seconds   \n\
            Max open files            1024                 524288               files     \n\
            Max locked memory         8388608              8388608              bytes     \n";
        assert_eq!(parse_max_open_files(limits), Some(1024));
        let unlimited = "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_max_open_files(unlimited), None);
        assert_eq!(parse_max_open_files("Max processes 10 10 processes\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_sensibly() {
        let p = ProcessStats::read();
        let (open, max) = (p.open_fds.unwrap(), p.max_fds.unwrap());
        assert!(open > 0 && open <= max, "{open} of {max}");
        assert!(p.resident_bytes.unwrap() > 1 << 20, "{p:?}");
        assert!(p.cpu_seconds.unwrap() >= 0.0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        let started = p.start_time_seconds.unwrap();
        assert!(started <= now + 1.0 && started > now - 86_400.0, "started {started}, now {now}");
    }
}
