//! The banner: the bound addresses (the OS-chosen ports when port 0 was asked for), what TURN does,
//! and for the development default an `iceServers` JSON and commands to try it — on stdout, once:
//! as text, or with `log-format = "json"` as one JSON object (`"event": "ready"`), so stdout and
//! stderr then carry JSON only. The `listening` addresses also go to the log when it is not on
//! the terminal's other stream anyway: in JSON, or with `log-file`.

use std::net::SocketAddr;

use switchback::config::{Config, LogFormat};
use switchback::daemon::banner::turn_banner;
use switchback::daemon::{Daemon, unix_now};
use switchback::io::tls::DEV_CERTIFICATE_NAMES;
use switchback::server::Transport;
use tracing::info;

/// Prints the banner of a started daemon.
pub fn print_banner(daemon: &Daemon, config: &Config, dev_secret: Option<&str>) {
    let (running, http) = (daemon.running(), daemon.http());
    let json = config.log_format == LogFormat::Json;
    if json || config.log_file.is_some() {
        for l in running.local_addrs() {
            info!(transport = l.transport_name(), addr = %l.addr, "listening");
        }
        for l in http.local_addrs() {
            info!(face = l.name, addr = %l.addr, "listening for HTTP");
        }
    }
    let mut lines = Vec::new();
    if let Some(fingerprint) = daemon.self_signed_fingerprint().filter(|_| running.tls().is_some()) {
        let names = DEV_CERTIFICATE_NAMES.join(", ");
        lines.push(format!("tls: self-signed development certificate for {names}, SHA-256 fingerprint {fingerprint}"));
    }
    let of = |t: Transport| -> Vec<SocketAddr> {
        running.local_addrs().iter().filter(|l| l.transport == t).map(|l| l.addr).collect()
    };
    let (udp, tcp, tls) = (of(Transport::Udp), of(Transport::Tcp), of(Transport::Tls));
    lines.extend(turn_banner(config, &udp, &tcp, &tls, dev_secret, unix_now()));
    if json {
        let listening: Vec<_> = running
            .local_addrs()
            .iter()
            .map(|l| serde_json::json!({ "transport": l.transport_name(), "addr": l.addr.to_string() }))
            .collect();
        let faces: Vec<_> = http
            .local_addrs()
            .iter()
            .map(|l| serde_json::json!({ "face": l.name, "addr": l.addr.to_string() }))
            .collect();
        let ready = serde_json::json!({
            "event": "ready",
            "version": env!("CARGO_PKG_VERSION"),
            "listening": listening,
            "http": faces,
            "banner": lines,
        });
        println!("{ready}");
        return;
    }
    println!("switchback {} ready", env!("CARGO_PKG_VERSION"));
    for l in running.local_addrs() {
        println!("listening {} {}", l.transport_name(), l.addr);
    }
    for l in http.local_addrs() {
        println!("listening http-{} {}", l.name, l.addr);
    }
    for line in lines {
        println!("{line}");
    }
}
