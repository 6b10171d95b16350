//! Relaying end to end over loopback (`runtime`): Binding, TURN allocations and data over UDP, TCP
//! and TLS, RFC 6062 TCP relaying, IPv6 and dual allocations, several relay addresses, worker
//! sockets, the embedder's peer and relay-address hooks.

#[path = "../support/mod.rs"]
mod support;

mod binding;
mod client_failures;
mod dont_fragment;
mod dual_allocation;
mod ecn;
mod hooks;
mod icmp;
mod ipv6;
mod ipv6_streams;
mod leases;
mod mobility;
mod mobility_client;
mod pollers;
// quinn's AsyncUdpSocket over a relayed socket.
#[cfg(feature = "quic")]
mod quic_socket;
// Started through the daemon binary.
#[cfg(feature = "cli")]
mod relay_ips;
mod relayed_socket;
mod tcp_client;
mod tcp_relay;
mod tcp_relay_client;
mod tls;
mod turn;
mod wildcard;
mod workers;
