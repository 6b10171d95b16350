//! The `process_*` series, read from /proc at scrape time.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::*;

/// `switchback_build_info` and the standard `process_*` series (Linux only; see [`ProcessStats`]).
pub(super) fn encode_process(e: &mut DescriptorEncoder<'_>) -> fmt::Result {
    let features = features();
    let labels = [("version", env!("CARGO_PKG_VERSION")), ("features", features.as_str())];
    family(
        e,
        "switchback_build_info",
        "The running build: version, Cargo features",
        MetricType::Gauge,
        &[(&labels, ConstGauge::new(1))],
    )?;
    let p = ProcessStats::read();
    if let Some(cpu) = p.cpu_seconds {
        family(
            e,
            "process_cpu_seconds",
            "User and system CPU time spent, seconds",
            MetricType::Counter,
            &[(&[], ConstCounter::new(cpu))],
        )?;
    }
    let gauges = [
        ("process_resident_memory_bytes", "Resident memory size, bytes", p.resident_bytes),
        ("process_open_fds", "Open file descriptors", p.open_fds),
        ("process_max_fds", "Most open file descriptors (the soft limit)", p.max_fds),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            gauge(e, name, help, v)?;
        }
    }
    if let Some(start) = p.start_time_seconds {
        family(
            e,
            "process_start_time_seconds",
            "Start of the process, Unix seconds",
            MetricType::Gauge,
            &[(&[], ConstGauge::new(start))],
        )?;
    }
    Ok(())
}
