//! The banner: the bound addresses (the OS-chosen ports when port 0 was asked for), what TURN does,
//! and for the development default an `iceServers` JSON and commands to try it — on stdout.

use std::net::SocketAddr;

use switchback::config::Config;
use switchback::daemon::banner::turn_banner;
use switchback::daemon::{Daemon, unix_now};
use switchback::io::tls::DEV_CERTIFICATE_NAMES;
use switchback::server::Transport;
use tracing::info;

/// Prints the banner of a started daemon.
pub fn print_banner(daemon: &Daemon, config: &Config, dev_secret: Option<&str>) {
    let (running, http) = (daemon.running(), daemon.http());
    println!("switchback {} ready", env!("CARGO_PKG_VERSION"));
    for l in running.local_addrs() {
        println!("listening {} {}", l.transport_name(), l.addr);
        info!(transport = l.transport_name(), addr = %l.addr, "listening");
    }
    for l in http.local_addrs() {
        println!("listening http-{} {}", l.name, l.addr);
        info!(face = l.name, addr = %l.addr, "listening for HTTP");
    }
    if let Some(fingerprint) = daemon.self_signed_fingerprint().filter(|_| running.tls().is_some()) {
        let names = DEV_CERTIFICATE_NAMES.join(", ");
        println!("tls: self-signed development certificate for {names}, SHA-256 fingerprint {fingerprint}");
    }
    let of = |t: Transport| -> Vec<SocketAddr> {
        running.local_addrs().iter().filter(|l| l.transport == t).map(|l| l.addr).collect()
    };
    let (udp, tcp, tls) = (of(Transport::Udp), of(Transport::Tcp), of(Transport::Tls));
    for line in turn_banner(config, &udp, &tcp, &tls, dev_secret, unix_now()) {
        println!("{line}");
    }
}
