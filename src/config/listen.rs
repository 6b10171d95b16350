//! The listeners a configuration asks for, as the plan `io` binds from.

use std::net::SocketAddr;

use super::Config;
use crate::io::ListenPlan;

impl From<&Config> for ListenPlan {
    fn from(config: &Config) -> ListenPlan {
        let on = |port| config.listening_ip.iter().map(|&ip| SocketAddr::new(ip, port)).collect();
        ListenPlan {
            addrs: on(config.listening_port),
            tls_addrs: on(config.tls_port()),
            udp: !config.no_udp,
            tcp: !config.no_tcp,
            tls: !config.no_tls,
            certificate: config.cert.clone().zip(config.pkey.clone()),
            workers: config.worker_count(),
            socket_buffer: config.socket_buffer as usize,
            proxy_protocol: config.proxy_protocol,
            proxy_protocol_from: config.proxy_protocol_from.clone(),
            strict_rfc8656: config.strict_rfc8656,
            rfc5780_alt_port: config.rfc5780.then(|| config.alt_port()),
            rfc5780_tls_alt_port: config.rfc5780.then(|| config.alt_tls_port()),
        }
    }
}
