//! `switchback-load table`: the medians of `benches/compare.sh`'s result rows as a Markdown table,
//! and the chart as SVG (plotters).
//!
//! Input rows (CSV, no header): `case,server,rep,msgs_per_cpu_s,loss_pct,rtt_p50_us,rtt_p99_us,
//! msgs_per_s,cpu_us_per_alloc,kib_per_alloc`; empty fields where a case has no such figure.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, Result};
use plotters::prelude::*;

const COLUMNS: usize = 7;

/// Medians per (case, server), in first-seen order.
struct Rows {
    order: Vec<(String, String)>,
    values: BTreeMap<(String, String), Vec<[Option<f64>; COLUMNS]>>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        None
    } else if n % 2 == 1 {
        v.get(n / 2).copied()
    } else {
        Some((v.get(n / 2 - 1)? + v.get(n / 2)?) / 2.0)
    }
}

impl Rows {
    fn parse(text: &str) -> Rows {
        let mut rows = Rows { order: Vec::new(), values: BTreeMap::new() };
        for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let (Some(case), Some(server)) = (f.first(), f.get(1)) else { continue };
            let mut cols = [None; COLUMNS];
            for (i, c) in cols.iter_mut().enumerate() {
                *c = f.get(3 + i).and_then(|v| v.parse().ok());
            }
            let key = (case.to_string(), server.to_string());
            if !rows.values.contains_key(&key) {
                rows.order.push(key.clone());
            }
            rows.values.entry(key).or_default().push(cols);
        }
        rows
    }

    fn get(&self, case: &str, server: &str, col: usize) -> Option<f64> {
        let runs = self.values.get(&(case.to_string(), server.to_string()))?;
        median(runs.iter().filter_map(|r| r.get(col).copied().flatten()).collect())
    }

    fn cases(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (c, _) in &self.order {
            if !out.contains(c) {
                out.push(c.clone());
            }
        }
        out
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_else(|| "–".into())
}

/// Prints the tables; writes the chart when `svg` is given.
pub fn run(input: &Path, svg: Option<&Path>) -> Result<()> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let rows = Rows::parse(&text);
    println!(
        "| case | server | msgs / server CPU-s | server CPU µs / msg | × coturn | × forwarder | loss % | RTT p50 µs | RTT p99 µs | msgs/s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let cases = rows.cases();
    for case in cases.iter().filter(|c| !c.starts_with("alloc") && !c.starts_with("scale-")) {
        for (c, server) in rows.order.iter().filter(|(c, _)| c == case) {
            let eff = rows.get(c, server, 0);
            let coturn = rows.get(c, "coturn", 0);
            let fwd = rows.get(c, "forwarder", 0);
            println!(
                "| {c} | {server} | {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(eff, 0),
                fmt(eff.map(|e| 1e6 / e), 2),
                fmt(eff.zip(coturn).map(|(a, b)| a / b), 2),
                fmt(eff.zip(fwd).map(|(a, b)| a / b), 2),
                fmt(rows.get(c, server, 1), 3),
                fmt(rows.get(c, server, 2), 0),
                fmt(rows.get(c, server, 3), 0),
                fmt(rows.get(c, server, 4), 0),
            );
        }
    }
    if cases.iter().any(|c| c.starts_with("alloc")) {
        println!();
        println!(
            "| case | server | allocations/s | server CPU µs / allocation | × coturn (CPU) | RSS KiB / allocation |"
        );
        println!("|---|---|---:|---:|---:|---:|");
        for (c, server) in rows.order.iter().filter(|(c, _)| c.starts_with("alloc")) {
            let cpu = rows.get(c, server, 5);
            let coturn = rows.get(c, "coturn", 5);
            println!(
                "| {c} | {server} | {} | {} | {} | {} |",
                fmt(rows.get(c, server, 4), 0),
                fmt(cpu, 1),
                fmt(cpu.zip(coturn).map(|(a, b)| b / a), 2),
                // Memory growth only means something on the fresh server of the first (`alloc`) run.
                if c == "alloc" { fmt(rows.get(c, server, 6), 2) } else { "–".into() },
            );
        }
    }
    let scale = scale_points(&rows);
    if !scale.is_empty() {
        println!();
        println!(
            "| allocations | server | msgs / server CPU-s | × coturn | × forwarder | loss % | RTT p50 µs | RTT p99 µs | msgs/s |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for (n, case) in &scale {
            for server in SERVERS.iter().filter(|s| rows.values.contains_key(&(case.clone(), s.to_string()))) {
                let eff = rows.get(case, server, 0);
                println!(
                    "| {n} | {server} | {} | {} | {} | {} | {} | {} | {} |",
                    fmt(eff, 0),
                    fmt(eff.zip(rows.get(case, "coturn", 0)).map(|(a, b)| a / b), 2),
                    fmt(eff.zip(rows.get(case, "forwarder", 0)).map(|(a, b)| a / b), 2),
                    fmt(rows.get(case, server, 1), 3),
                    fmt(rows.get(case, server, 2), 0),
                    fmt(rows.get(case, server, 3), 0),
                    fmt(rows.get(case, server, 4), 0),
                );
            }
        }
    }
    if let Some(path) = svg {
        chart(&rows, path)?;
        eprintln!("chart written to {}", path.display());
        if !scale.is_empty() {
            let scale_path = path.with_file_name(format!(
                "{}-scale.svg",
                path.file_stem().map_or_else(|| "performance".into(), |s| s.to_string_lossy())
            ));
            scale_chart(&rows, &scale, &scale_path)?;
            eprintln!("scaling chart written to {}", scale_path.display());
        }
    }
    Ok(())
}

const SERVERS: [&str; 3] = ["forwarder", "coturn", "switchback"];
const COLORS: [RGBColor; 3] = [RGBColor(150, 150, 150), RGBColor(214, 120, 40), RGBColor(40, 110, 190)];

/// The `scale-N` cases (the same total message rate spread over N allocations), sorted by N.
fn scale_points(rows: &Rows) -> Vec<(u64, String)> {
    let mut points: Vec<(u64, String)> =
        rows.cases().into_iter().filter_map(|c| Some((c.strip_prefix("scale-")?.parse().ok()?, c.clone()))).collect();
    points.sort();
    points
}

/// Two panels against the allocation count (log scale): messages per server CPU-second, and the
/// round trip's p99 through the relay.
fn scale_chart(rows: &Rows, points: &[(u64, String)], path: &Path) -> Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    let root = SVGBackend::new(path, (900, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(380);
    let max_n = points.last().map_or(10, |(n, _)| *n).max(10) as f64;
    for (panel, col, caption, desc, scale) in [
        (&top, 0usize, "Messages per server CPU-second vs allocations (same total rate)", "k msgs / CPU-s", 1000.0),
        (&bottom, 3usize, "Round-trip p99 through the relay vs allocations", "p99 µs", 1.0),
    ] {
        let max = points
            .iter()
            .flat_map(|(_, c)| SERVERS.iter().filter_map(move |s| rows.get(c, s, col)))
            .fold(1.0f64, f64::max)
            / scale;
        let mut chart = ChartBuilder::on(panel)
            .caption(caption, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d((1.0f64..max_n * 1.5).log_scale(), 0.0..max * 1.2)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("allocations")
            .y_desc(desc)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| err(&e))?;
        for (server, color) in SERVERS.iter().zip(COLORS) {
            let line: Vec<(f64, f64)> = points
                .iter()
                .filter_map(|(n, c)| Some(((*n).max(1) as f64, rows.get(c, server, col)? / scale)))
                .collect();
            if line.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*server)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], color.stroke_width(2)));
            chart.draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled()))).map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.9))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Grouped bars: one group per relay case, one bar per server, in thousands of messages per
/// server CPU-second.
fn chart(rows: &Rows, path: &Path) -> Result<()> {
    let cases: Vec<String> =
        rows.cases().into_iter().filter(|c| !c.starts_with("alloc") && !c.starts_with("scale-")).collect();
    let servers = SERVERS;
    let colors = COLORS;
    let max =
        cases.iter().flat_map(|c| servers.iter().filter_map(|s| rows.get(c, s, 0))).fold(1.0f64, f64::max) / 1000.0;
    let root = SVGBackend::new(path, (900, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let n = cases.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Relayed messages per server CPU-second (thousands; higher is better)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..n, 0.0..max * 1.3)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let labels = cases.clone();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(cases.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 { labels.get(i).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc("k msgs / CPU-s")
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (si, server) in servers.iter().enumerate() {
        let color = colors.get(si).copied().unwrap_or(BLACK);
        let bars: Vec<Rectangle<(f64, f64)>> = cases
            .iter()
            .enumerate()
            .filter_map(|(ci, c)| {
                let v = rows.get(c, server, 0)? / 1000.0;
                let x0 = ci as f64 + 0.1 + si as f64 * 0.27;
                Some(Rectangle::new([(x0, 0.0), (x0 + 0.25, v)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label(*server)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
