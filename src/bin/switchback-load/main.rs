//! `switchback-load`: load for a TURN server, and the bare forwarder that sets the ceiling. See
//! `docs/performance.md` and `benches/compare.sh`.
//!
//! ```text
//! switchback-load relay --server 127.0.0.1:3478 --secret S --mode channel --size 100 --server-pid PID
//! switchback-load relay --forwarder 127.0.0.1:P,127.0.0.1:Q     # against `switchback-load forwarder`
//! switchback-load relay --server 127.0.0.1:5349 --secret S --tls  # TURN over TLS
//! switchback-load relay --server 127.0.0.1:3478 --secret S --call --allocations 10000  # calls
//! switchback-load forwarder --duration 60
//! switchback-load alloc --server turn.example.com:3478 --secret S --count 200 --rate 10
//! switchback-load alloc --server turn.example.com:3478 --user load1:PW --user load2:PW --count 50
//! switchback-load table --input results.csv --svg docs/performance.svg
//! ```
//!
//! Every run is bounded in time and count. Traffic goes only to the addresses given: `alloc` talks
//! to `--server` alone; `relay` and `forwarder` stay on loopback (the tool refuses other addresses;
//! `relay --netns-addresses` also takes the benchmarking ranges of network namespaces the caller
//! made, benches/xdp.sh).
//! The last line on stdout is `result key=value …` for scripts.

mod addrs;
mod alloc;
mod cli;
mod creds;
mod diagnose;
mod forwarder;
mod net;
mod procfs;
mod progress;
mod relay;
mod stun;
mod table;
mod tls;

use addrs::{benchmarking, client_ip_for, loopback, relay_addr, resolve};
use cli::{Cli, Command, Mode};

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;

/// `s` seconds, clamped to `0..=max`.
fn seconds(s: f64, max: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() { s.clamp(0.0, max) } else { max })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut progress = progress::Progress::new(cli.quiet);
    match cli.command {
        command @ Command::Relay { .. } => run_relay(command, &mut progress),
        command @ Command::Alloc { .. } => run_alloc(command, &mut progress),
        Command::Forwarder { front, back, duration } => {
            forwarder::run(loopback(front)?, loopback(back)?, seconds(duration, 3600.0))
        }
        Command::Table { input, svg } => table::run(&input, svg.as_deref()),
    }
}

/// `relay`: the target and the knobs from the options.
fn relay_params(command: Command) -> Result<relay::Params> {
    let Command::Relay {
        server,
        creds,
        forwarder,
        mode,
        tcp,
        tls,
        tls_cert,
        call,
        pps,
        allocations,
        size,
        window,
        rate,
        warmup,
        duration,
        count,
        server_pid,
        client_ip,
        netns_addresses,
    } = command
    else {
        bail!("not the relay mode")
    };
    let client_allowed = client_ip.is_loopback() || (netns_addresses && benchmarking(IpAddr::V4(client_ip)));
    if !client_allowed {
        bail!(
            "--client-ip must be a loopback address (the echo peer binds it), or with --netns-addresses \
             one of 198.18.0.0/15"
        );
    }
    let check = |addr: SocketAddr| relay_addr(addr, netns_addresses);
    let target = match (server, forwarder) {
        (_, Some(_)) if tcp || tls => bail!("the bare forwarder is UDP only"),
        (_, Some(f)) => {
            let Some((a, b)) = f.split_once(',') else { bail!("--forwarder FRONT,BACK") };
            relay::Target::Bare { front: check(a.parse()?)?, back: check(b.parse()?)? }
        }
        (Some(s), None) => relay::Target::Turn {
            server: check(s)?,
            credentials: creds.credentials()?,
            send_indications: matches!(mode, Mode::Send),
        },
        (None, None) => bail!("--server or --forwarder"),
    };
    Ok(relay::Params {
        target,
        allocations: allocations.clamp(1, 16_000),
        size: size.unwrap_or(if call { 160 } else { 100 }).min(65_000),
        window: window.max(1),
        rate,
        warmup: seconds(warmup, 60.0),
        duration: seconds(duration, 600.0),
        count,
        server_pid,
        client_ip,
        tcp: tcp || tls,
        tls: if tls { Some(tls::client_config(tls_cert.as_deref())?) } else { None },
        call_pps: if call { pps.clamp(1, 10_000) } else { 0 },
    })
}

/// `relay`: runs the load and prints the summary and the `result` line.
fn run_relay(command: Command, progress: &mut progress::Progress) -> Result<()> {
    let params = relay_params(command)?;
    // Each client keeps a socket open here.
    let _ = rlimit::increase_nofile_limit(params.allocations as u64 + 1024);
    let r = relay::run(&params, progress).map_err(|e| {
        let server = match &params.target {
            relay::Target::Turn { server, .. } => *server,
            relay::Target::Bare { front, .. } => *front,
        };
        let stop = diagnose::explain(&e, true, server);
        if stop.key == "error" { e } else { e.context(stop.message) }
    })?;
    progress.finish();
    let per_cpu = r.server_cpu_s.filter(|&c| c > 0.0).map(|c| r.received as f64 / c);
    let per_system_cpu = r.system_cpu_s.filter(|&c| c > 0.0).map(|c| r.received as f64 / c);
    let mbit_s = r.msgs_per_s() * (params.size * 8) as f64 / 1e6;
    eprintln!(
        "{} msgs in {:.2} s: {:.0} msgs/s, {mbit_s:.1} Mbit/s payload each way, loss {:.3} %, RTT p50 {} µs p99 {} µs",
        r.received,
        r.seconds,
        r.msgs_per_s(),
        r.loss_pct(),
        r.rtt_p50_us,
        r.rtt_p99_us
    );
    if params.call_pps > 0 {
        eprintln!(
            "calls: {} × {} msgs/s, {} B: RTT p999 {} µs, jitter {:.0} µs (p99 over flows {:.0} µs), {:.3} % sent late by the tool",
            params.allocations, params.call_pps, params.size, r.rtt_p999_us, r.jitter_us, r.jitter_p99_us, r.late_pct
        );
    }
    if let (Some(cpu), Some(e)) = (r.server_cpu_s, per_cpu) {
        eprintln!(
            "server: {cpu:.2} CPU-s, {e:.0} msgs per CPU-s ({:.2} µs per msg), RSS {} KiB",
            1e6 / e,
            r.server_rss_kib.unwrap_or(0)
        );
    }
    if let (Some(cpu), Some(e)) = (r.system_cpu_s, per_system_cpu) {
        eprintln!(
            "machine: {cpu:.2} busy CPU-s on all CPUs ({:.2} softirq, {:.2} this tool's, {:.2} ksoftirqd's), {e:.0} msgs per CPU-s",
            r.softirq_cpu_s.unwrap_or(0.0),
            r.load_cpu_s.unwrap_or(0.0),
            r.ksoftirqd_cpu_s
        );
    }
    println!(
        "result msgs={} sent={} seconds={:.3} msgs_per_s={:.0} mbit_s={mbit_s:.2} loss_pct={:.4} rtt_p50_us={} rtt_p99_us={} rtt_p999_us={} jitter_us={:.1} jitter_p99_us={:.1} late_pct={:.3} server_cpu_s={} server_rss_kib={} msgs_per_cpu_s={} system_cpu_s={} softirq_cpu_s={} load_cpu_s={} ksoftirqd_cpu_s={:.3} msgs_per_system_cpu_s={}",
        r.received,
        r.sent,
        r.seconds,
        r.msgs_per_s(),
        r.loss_pct(),
        r.rtt_p50_us,
        r.rtt_p99_us,
        r.rtt_p999_us,
        r.jitter_us,
        r.jitter_p99_us,
        r.late_pct,
        r.server_cpu_s.map(|c| format!("{c:.3}")).unwrap_or_default(),
        r.server_rss_kib.map(|c| c.to_string()).unwrap_or_default(),
        per_cpu.map(|c| format!("{c:.0}")).unwrap_or_default(),
        r.system_cpu_s.map(|c| format!("{c:.3}")).unwrap_or_default(),
        r.softirq_cpu_s.map(|c| format!("{c:.3}")).unwrap_or_default(),
        r.load_cpu_s.map(|c| format!("{c:.3}")).unwrap_or_default(),
        r.ksoftirqd_cpu_s,
        per_system_cpu.map(|c| format!("{c:.0}")).unwrap_or_default(),
    );
    Ok(())
}

/// `alloc`: the server, credentials and knobs from the options.
fn alloc_params(command: Command) -> Result<alloc::Params> {
    let Command::Alloc { server, creds, count, parallel, rate, max_time, server_pid, client_ip, bucket } = command
    else {
        bail!("not the alloc mode")
    };
    let credentials = creds.credentials()?;
    if !rate.is_finite() || rate < 0.0 {
        bail!("--rate must be a number of allocations per second, 0 or more");
    }
    let server = resolve(&server)?;
    Ok(alloc::Params {
        client_ip: client_ip_for(server, client_ip)?,
        server,
        credentials,
        count: count.clamp(1, 200_000),
        parallel,
        rate,
        max_time: seconds(max_time, 3600.0),
        server_pid,
        bucket,
    })
}

/// `alloc`: runs the allocations and prints the summary and the `result` line.
fn run_alloc(command: Command, progress: &mut progress::Progress) -> Result<()> {
    let params = alloc_params(command)?;
    // Each held allocation keeps a socket open here; as root the hard limit may be raised too.
    let want = params.count as u64 + 1024;
    if rlimit::increase_nofile_limit(want).unwrap_or(0) < want {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, want, want);
    }
    if let Some(users) = params.credentials.user_count() {
        eprintln!("{} allocations over {users} static user(s), to {}", params.count, params.server);
    }
    let r = alloc::run(&params, progress)?;
    progress.finish();
    if let Some((i, why)) = &r.stopped {
        eprintln!("stopped early at allocation {i} ({} held): {}", r.allocations, why.message);
    }
    for b in &r.buckets {
        let k = (b.to - b.from).max(1) as f64;
        let cpu_us = b.cpu_s.map(|c| format!("{:.1}", c * 1e6 / k)).unwrap_or_default();
        let kib = b.rss_growth_kib.map(|g| format!("{:.2}", g as f64 / k)).unwrap_or_default();
        println!(
            "bucket from={} to={} seconds={:.3} allocs_per_s={:.0} cpu_us_per_alloc={cpu_us} kib_per_alloc={kib}",
            b.from + 1,
            b.to,
            b.seconds,
            k / b.seconds.max(1e-9)
        );
    }
    let n = r.allocations as f64;
    let per_s = n / r.seconds.max(1e-9);
    let cpu_us = r.server_cpu_s.map(|c| format!("{:.1}", c * 1e6 / n.max(1.0)));
    let kib = r.rss_growth_kib.map(|k| format!("{:.2}", k as f64 / n.max(1.0)));
    eprintln!(
        "{} allocations in {:.2} s ({per_s:.0}/s, {} requests); server {} µs CPU and {} KiB RSS per allocation",
        r.allocations,
        r.seconds,
        r.requests,
        cpu_us.as_deref().unwrap_or("?"),
        kib.as_deref().unwrap_or("?"),
    );
    println!(
        "result allocations={} seconds={:.3} allocs_per_s={per_s:.0} cpu_us_per_alloc={} kib_per_alloc={} stopped={}",
        r.allocations,
        r.seconds,
        cpu_us.unwrap_or_default(),
        kib.unwrap_or_default(),
        r.stopped.as_ref().map(|(_, s)| s.key).unwrap_or_default(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("switchback-load").chain(args.iter().copied()))
    }

    fn alloc(args: &[&str]) -> Result<alloc::Params> {
        let mut all = vec!["alloc"];
        all.extend_from_slice(args);
        alloc_params(parse(&all).map_err(|e| anyhow::anyhow!("{e}"))?.command)
    }

    #[test]
    fn alloc_needs_exactly_one_kind_of_credentials() {
        let err = alloc(&["--server", "127.0.0.1:3478"]).unwrap_err().to_string();
        assert!(err.contains("no credentials"), "{err}");
        let err = alloc(&["--server", "127.0.0.1:3478", "--secret", "s", "--user", "u:p"]).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        let p = alloc(&["--server", "127.0.0.1:3478", "--user", "u:p", "--user", "v:q"]).unwrap();
        assert_eq!(p.credentials.user_count(), Some(2));
        let p = alloc(&["--server", "127.0.0.1:3478", "--secret", "s", "--rate", "5"]).unwrap();
        assert_eq!((p.credentials.user_count(), p.rate), (None, 5.0));
    }

    #[test]
    fn alloc_options_are_checked_and_bounded() {
        assert!(alloc(&["--server", "127.0.0.1:3478", "--secret", "s", "--rate", "-1"]).is_err());
        assert!(alloc(&["--server", "nonsense", "--secret", "s"]).is_err());
        let p =
            alloc(&["--server", "127.0.0.1:3478", "--secret", "s", "--count", "99999", "--max-time", "1e9"]).unwrap();
        assert_eq!((p.count, p.max_time), (99_999, Duration::from_secs(3600)));
        let p = alloc(&["--server", "127.0.0.1:3478", "--secret", "s", "--count", "999999"]).unwrap();
        assert_eq!(p.count, 200_000);
        assert_eq!(p.client_ip, IpAddr::from([127, 0, 0, 2]));
    }

    #[test]
    fn remote_servers_get_a_routable_client_address() {
        let remote = SocketAddr::from(([192, 0, 2, 10], 3478));
        assert_eq!(client_ip_for(remote, None).unwrap(), IpAddr::from([0, 0, 0, 0]));
        assert!(client_ip_for(remote, Some(IpAddr::from([127, 0, 0, 2]))).is_err());
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 3478));
        assert!(client_ip_for(v6, Some(IpAddr::from([127, 0, 0, 2]))).is_err());
        assert!(client_ip_for(v6, None).unwrap().is_loopback());
    }

    #[test]
    fn relay_stays_on_loopback_and_checks_credentials() {
        let relay = |args: &[&str]| {
            let mut all = vec!["relay"];
            all.extend_from_slice(args);
            relay_params(parse(&all).map_err(|e| anyhow::anyhow!("{e}"))?.command)
        };
        let err = relay(&["--server", "192.0.2.10:3478", "--secret", "s"]).unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(relay(&["--server", "127.0.0.1:3478"]).unwrap_err().to_string().contains("no credentials"));
        assert!(relay(&["--server", "127.0.0.1:3478", "--user", "u:p"]).is_ok());
        // The bare forwarder needs none.
        assert!(relay(&["--forwarder", "127.0.0.1:1,127.0.0.1:2"]).is_ok());
        // A benchmarking address needs the flag.
        let err = relay(&["--server", "198.18.0.1:3478", "--secret", "s"]).unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        let err = relay(&["--server", "127.0.0.1:3478", "--secret", "s", "--client-ip", "198.18.0.2"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--client-ip"), "{err}");
    }

    #[test]
    fn netns_addresses_allow_the_benchmarking_ranges_only() {
        let relay = |server: &str, client: &str| {
            let args = ["relay", "--netns-addresses", "--secret", "s", "--server", server, "--client-ip", client];
            relay_params(parse(&args).map_err(|e| anyhow::anyhow!("{e}"))?.command)
        };
        for server in ["198.18.0.1:3478", "198.19.255.254:3478", "[2001:2::1]:3478", "[2001:2:0:ffff::9]:3478"] {
            assert!(relay(server, "198.18.0.2").is_ok(), "{server}");
        }
        // Loopback stays allowed.
        assert!(relay("127.0.0.1:3478", "127.0.0.2").is_ok());
        // Private, shared, public, documentation and neighbouring addresses stay refused.
        for server in [
            "10.0.0.1:3478",
            "192.168.1.1:3478",
            "172.16.0.1:3478",
            "100.64.0.1:3478",
            "8.8.8.8:3478",
            "192.0.2.10:3478",
            "198.17.255.255:3478",
            "198.20.0.1:3478",
            "[2001:3::1]:3478",
            "[2001:2:1::1]:3478",
            "[fd00::1]:3478",
            "[2606:4700::1111]:3478",
            "0.0.0.0:3478",
        ] {
            let err = relay(server, "198.18.0.2").unwrap_err().to_string();
            assert!(err.contains("benchmarking ranges"), "{server}: {err}");
        }
        for client in ["10.1.2.3", "192.168.0.2", "8.8.4.4", "198.20.0.2"] {
            let err = relay("198.18.0.1:3478", client).unwrap_err().to_string();
            assert!(err.contains("--client-ip"), "{client}: {err}");
        }
        // The bare forwarder's addresses too.
        let forwarder = |f: &str| {
            let args = ["relay", "--netns-addresses", "--forwarder", f, "--client-ip", "198.18.0.2"];
            relay_params(parse(&args).map_err(|e| anyhow::anyhow!("{e}"))?.command)
        };
        assert!(forwarder("198.18.0.1:1,198.18.0.1:2").is_ok());
        assert!(forwarder("198.18.0.1:1,10.0.0.1:2").is_err());
    }

    #[test]
    fn help_speaks_to_the_operator() {
        let Err(help) = parse(&["--help"]) else { panic!("--help parsed") };
        let help = help.to_string();
        for needle in ["turn.example.com", "--user", "--secret", "real load", "peer", "rate-limit-unauth"] {
            assert!(help.contains(needle), "{needle} missing from --help");
        }
    }
}
