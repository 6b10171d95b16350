//! The XDP fast path for ChannelData (issue #19, feature `xdp`), end to end: two network
//! namespaces of the test's own joined by a veth pair (addresses from 198.18.0.0/15, RFC 2544's
//! benchmarking range, which exist only inside them), the daemon in one with `fast-path = "xdp"` on
//! its veth end, a raw TURN client and a peer in the other. The program rewrites and returns the
//! packets with XDP_TX; the other end runs an XDP_PASS program (a veth takes XDP_TX frames only
//! when its peer runs XDP).
//!
//! Needs root and a kernel that loads the program: without them each test prints SKIP (and fails
//! under CI=true).
#![cfg(target_os = "linux")]

#[path = "support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use support::{Daemon, RawTurn, run_with_timeout};
use switchback::proto::stun::{
    AddressFamily, ChannelNumber, Lifetime, Message, Method, RequestedAddressFamily, RequestedTransport,
    XorPeerAddress, XorRelayedAddress,
};
use tokio::net::UdpSocket;

const SERVER_IP: &str = "198.18.0.1";
const CLIENT_IP: &str = "198.18.0.2";
const PEER_IP: &str = "198.18.0.3";
// IPv6: 2001:2::/48, RFC 5180's benchmarking range.
const SERVER_IP6: &str = "2001:2::1";
const CLIENT_IP6: &str = "2001:2::2";
const PEER_IP6: &str = "2001:2::3";
const CHANNEL: u16 = 0x4000;
/// How long a datagram that should not arrive is waited for.
const QUIET: Duration = Duration::from_millis(700);
const WAIT: Duration = Duration::from_secs(10);

static NEXT: AtomicU32 = AtomicU32::new(0);

/// `ip ARGS`, bounded; whether it succeeded, and its stderr.
fn ip(args: &[&str]) -> (bool, String) {
    let out = run_with_timeout(Command::new("ip").args(args), Duration::from_secs(10));
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Two namespaces and a veth pair, removed on drop.
struct Net {
    client_ns: String,
    server_ns: String,
    server_if: String,
}

impl Net {
    /// Creates them, or says why not.
    fn new() -> Result<Net, String> {
        let n = format!("{}x{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let net = Net { client_ns: format!("sbc{n}"), server_ns: format!("sbs{n}"), server_if: format!("vs{n}") };
        let client_if = format!("vc{n}");
        let (c, s) = (net.client_ns.as_str(), net.server_ns.as_str());
        let obj = concat!(env!("OUT_DIR"), "/channel_relay.o");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", c],
            vec!["netns", "add", s],
            vec!["link", "add", &client_if, "netns", c, "type", "veth", "peer", "name", &net.server_if, "netns", s],
            vec!["-n", c, "addr", "add", "198.18.0.2/24", "dev", &client_if],
            vec!["-n", c, "addr", "add", "198.18.0.3/24", "dev", &client_if],
            vec!["-n", s, "addr", "add", "198.18.0.1/24", "dev", &net.server_if],
            vec!["-n", c, "addr", "add", "2001:2::2/64", "dev", &client_if, "nodad"],
            vec!["-n", c, "addr", "add", "2001:2::3/64", "dev", &client_if, "nodad"],
            vec!["-n", s, "addr", "add", "2001:2::1/64", "dev", &net.server_if, "nodad"],
            vec!["-n", c, "link", "set", "lo", "up"],
            vec!["-n", s, "link", "set", "lo", "up"],
            vec!["-n", c, "link", "set", &client_if, "up"],
            vec!["-n", s, "link", "set", &net.server_if, "up"],
            vec!["-n", c, "link", "set", "dev", &client_if, "xdp", "obj", obj, "sec", "xdp", "program", "pass_all"],
        ];
        for step in steps {
            let (ok, err) = ip(&step);
            if !ok {
                return Err(format!("ip {}: {err}", step.join(" ")));
            }
        }
        // A veth hands on the sender's UDP checksum half done (TX checksum offload: only the
        // pseudo-header's sum is in the field). A NIC's frames carry a complete one, which the
        // program updates; so the client side computes it in software here, as a wire would deliver.
        let out = run_with_timeout(
            Command::new("ip").args(["netns", "exec", c, "ethtool", "-K", &client_if, "tx", "off"]),
            Duration::from_secs(10),
        );
        if !out.status.success() {
            return Err(format!("ethtool -K tx off: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(net)
    }

    /// Runs `f` on a thread that entered namespace `ns` (sockets made there stay in it).
    fn inside<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("the namespace file");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("the namespace thread")
    }

    /// A UDP socket on `ip` in the client namespace, for tokio.
    fn udp_in_client(&self, ip: &'static str) -> UdpSocket {
        let socket = Net::inside(&self.client_ns, move || StdUdpSocket::bind((ip, 0)).expect("bind in the namespace"));
        socket.set_nonblocking(true).unwrap();
        UdpSocket::from_std(socket).unwrap()
    }

    /// `/metrics` of the daemon at `addr` (in the server namespace).
    fn metrics(&self, addr: SocketAddr) -> String {
        Net::inside(&self.server_ns, move || support::http_request(addr, "GET", "/metrics", &[], "").body)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.client_ns]);
        let _ = ip(&["netns", "del", &self.server_ns]);
    }
}

/// The value of the sample `name` (with its labels, as printed) in a `/metrics` text.
fn sample(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The namespaces and the daemon with the fast path on, or `None` after SKIP (root, `ip`, a
/// kernel that loads the program).
fn setup(extra: &[&str]) -> Option<(Net, Daemon)> {
    if support::tools::require("ip").is_none() || support::tools::require("ethtool").is_none() {
        return None;
    }
    let net = match Net::new() {
        Ok(net) => net,
        Err(why) => {
            support::tools::skip("network namespaces", &why);
            return None;
        }
    };
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &net.server_ns, env!("CARGO_BIN_EXE_switchback")]);
    cmd.args(["--realm", "r", "--user", "u:pw", "--no-tls", "--no-tcp", "--listening-ip", SERVER_IP]);
    cmd.args(["--listening-ip", SERVER_IP6, "--relay-ip", SERVER_IP6, "--allowed-peer-ip", PEER_IP6]);
    cmd.args(["--listening-port", "3478", "--relay-ip", SERVER_IP, "--allowed-peer-ip", PEER_IP]);
    cmd.args(["--metrics-listen", "198.18.0.1:0", "--fast-path", "xdp", "--xdp-interface", &net.server_if]);
    cmd.args(extra);
    let daemon = Daemon::start_command(cmd);
    let deadline = Instant::now() + WAIT;
    loop {
        let log = daemon.log();
        if log.contains("XDP program attached") {
            return Some((net, daemon));
        }
        if log.contains("fast path off") {
            support::tools::skip("a kernel that attaches the XDP program", &log);
            return None;
        }
        assert!(Instant::now() < deadline, "no fast path line in the log: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw client with an allocation; its relayed address.
async fn allocate(net: &Net) -> (RawTurn, SocketAddr) {
    allocate_on(net, CLIENT_IP, SERVER_IP).await
}

/// [`allocate`] from `client_ip` to `server_ip` (an IPv6 one asks for an IPv6 relayed address).
async fn allocate_on(net: &Net, client_ip: &'static str, server_ip: &str) -> (RawTurn, SocketAddr) {
    let server = SocketAddr::new(server_ip.parse().unwrap(), 3478);
    let mut raw = RawTurn::from_socket(net.udp_in_client(client_ip), server, "u", "pw");
    let v6 = server.is_ipv6();
    let answer = raw
        .request(Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            if v6 {
                w.add(&RequestedAddressFamily(AddressFamily::V6))?;
            }
            Ok(())
        })
        .await;
    assert!(answer.success, "allocate: {}", answer.code);
    let relayed = Message::parse(&answer.bytes).unwrap().get::<XorRelayedAddress>().unwrap().0;
    (raw, relayed)
}

async fn bind_channel(raw: &mut RawTurn, peer: SocketAddr) {
    let answer = raw
        .request(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(CHANNEL))?;
            w.add(&XorPeerAddress(peer))
        })
        .await;
    assert!(answer.success, "channel bind: {}", answer.code);
}

/// ChannelData on `CHANNEL` with `pad` bytes of padding after the payload.
fn channel_data(payload: &[u8], pad: usize) -> Vec<u8> {
    let mut out = CHANNEL.to_be_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend(std::iter::repeat_n(0xEEu8, pad));
    out
}

/// The next datagram on `socket` within `within`.
async fn recv(socket: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    match tokio::time::timeout(within, socket.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
        _ => None,
    }
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

/// Waits until `/metrics` shows `name` at `want` or more; returns the last text.
fn wait_metric(net: &Net, addr: SocketAddr, name: &str, want: u64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = net.metrics(addr);
        if sample(&m, name) >= want {
            return m;
        }
        assert!(Instant::now() < deadline, "{name} stayed below {want}: {m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ChannelData of 1, 100, 1200 and odd lengths with padding from the client and the peer's
/// answers, each checked byte for byte; the application bytes sent each way.
async fn exchange(raw: &RawTurn, peer: &UdpSocket, relayed: SocketAddr) -> (u64, u64) {
    let (mut to_peer, mut to_client) = (0u64, 0u64);
    for (len, pad) in [(1, 0), (100, 0), (1200, 0), (101, 3), (7, 1)] {
        let data = payload(len, len as u8);
        raw.socket.send_to(&channel_data(&data, pad), raw.server).await.unwrap();
        let (got, from) = recv(peer, WAIT).await.unwrap_or_else(|| panic!("{len} bytes never reached the peer"));
        assert_eq!(from, relayed, "from the relayed address");
        assert_eq!(got, data, "{len} bytes (+{pad} padding) to the peer");
        to_peer += len as u64;

        let back = payload(len, 0x80 ^ len as u8);
        peer.send_to(&back, relayed).await.unwrap();
        let (got, from) =
            recv(&raw.socket, WAIT).await.unwrap_or_else(|| panic!("{len} bytes never reached the client"));
        assert_eq!(from, raw.server, "from the server's address");
        assert_eq!(got, channel_data(&back, 0), "{len} bytes to the client as ChannelData");
        to_client += len as u64;
    }
    (to_peer, to_client)
}

/// The whole life of an offloaded channel: nothing relays without a permission; once bound,
/// ChannelData of 1, 100, 1200 and an odd length with padding reach the peer as exactly the
/// payload from the relayed address, and the peer's answers reach the client as exactly the
/// ChannelData user space sends over UDP (4-byte header, no padding); the kernel relayed them (the
/// fast path's counters equal the relayed totals: user space relayed none); the usage of the
/// deletion counts them; and a Refresh with LIFETIME 0 stops the kernel at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_channels_relay_in_the_kernel_and_stop_with_the_allocation() {
    let Some((net, daemon)) = setup(&[]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP);
    let peer_addr = peer.local_addr().unwrap();
    let (mut raw, relayed) = allocate(&net).await;
    assert_eq!(relayed.ip().to_string(), SERVER_IP);

    // No permission: the peer's datagram reaches nobody, the client's ChannelData is unknown.
    peer.send_to(b"unpermitted", relayed).await.unwrap();
    assert!(recv(&raw.socket, QUIET).await.is_none(), "a datagram from a peer without permission");
    raw.socket.send_to(&channel_data(b"unbound", 1), raw.server).await.unwrap();
    assert!(recv(&peer, QUIET).await.is_none(), "ChannelData on an unbound channel");
    let m = net.metrics(metrics);
    assert_eq!(sample(&m, "switchback_fastpath_channels"), 0, "{m}");

    bind_channel(&mut raw, peer_addr).await;
    let m = wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    assert_eq!(sample(&m, "switchback_fastpath_enabled"), 1, "{m}");

    let (to_peer, to_client) = exchange(&raw, &peer, relayed).await;

    // The kernel relayed all of it: the fast path's counters (folded once a second) reach the
    // relayed totals, which they are part of, and the totals are no larger.
    let m = wait_metric(&net, metrics, "switchback_fastpath_packets_total{direction=\"to_peer\"}", 5);
    let m = if sample(&m, "switchback_fastpath_packets_total{direction=\"to_client\"}") < 5 {
        wait_metric(&net, metrics, "switchback_fastpath_packets_total{direction=\"to_client\"}", 5)
    } else {
        m
    };
    for dir in ["to_peer", "to_client"] {
        let fast = sample(&m, &format!("switchback_fastpath_packets_total{{direction=\"{dir}\"}}"));
        let all = sample(&m, &format!("switchback_relayed_packets_total{{direction=\"{dir}\"}}"));
        assert_eq!((fast, all), (5, 5), "{dir}: user space relayed none: {m}");
    }
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_peer\"}"), to_peer, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_client\"}"), to_client, "{m}");

    // Deleting the allocation stops the kernel at once, and its usage counts what the kernel did.
    let answer = raw.request(Method::REFRESH, &|w| w.add(&Lifetime(0))).await;
    assert!(answer.success, "refresh 0: {}", answer.code);
    peer.send_to(b"after the end", relayed).await.unwrap();
    assert!(recv(&raw.socket, QUIET).await.is_none(), "relayed after the allocation ended");
    raw.socket.send_to(&channel_data(b"after the end", 3), raw.server).await.unwrap();
    assert!(recv(&peer, QUIET).await.is_none(), "relayed after the allocation ended");
    let m = net.metrics(metrics);
    assert_eq!(sample(&m, "switchback_fastpath_channels"), 0, "{m}");
    daemon.wait_for_log("allocation deleted", 1);
    let log = daemon.log();
    let deleted = log.lines().find(|l| l.contains("allocation deleted")).unwrap();
    for want in [
        format!("to_peer_bytes={to_peer}"),
        format!("to_client_bytes={to_client}"),
        "to_peer_packets=5".into(),
        "to_client_packets=5".into(),
    ] {
        assert!(deleted.contains(&want), "{want} in {deleted}");
    }
}

/// A short `max-lifetime`: once the allocation's lifetime runs out (no Refresh) the kernel stops
/// relaying — the entries' deadline says so, and the sweep removes them — and the client's
/// ChannelData no longer reaches the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_stops_when_the_lifetime_runs_out() {
    let Some((net, daemon)) = setup(&["--max-lifetime", "3", "--default-lifetime", "3"]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP);
    let (mut raw, relayed) = allocate(&net).await;
    bind_channel(&mut raw, peer.local_addr().unwrap()).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    raw.socket.send_to(&channel_data(b"live", 0), raw.server).await.unwrap();
    assert_eq!(recv(&peer, WAIT).await.map(|(d, _)| d), Some(b"live".to_vec()));
    let started = Instant::now();
    daemon.wait_for_log("allocation deleted", 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    peer.send_to(b"late", relayed).await.unwrap();
    assert!(recv(&raw.socket, QUIET).await.is_none(), "relayed after the lifetime ran out");
    raw.socket.send_to(&channel_data(b"late", 0), raw.server).await.unwrap();
    assert!(recv(&peer, QUIET).await.is_none(), "relayed after the lifetime ran out");
    let m = net.metrics(metrics);
    assert_eq!(sample(&m, "switchback_fastpath_channels"), 0, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_packets_total{direction=\"to_peer\"}"), 1, "{m}");
}

/// `max-bps` limits every allocation: user space must meter each packet, so no channel is
/// offloaded, and ChannelData still relays (through user space).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_limit_keeps_channels_in_user_space() {
    let Some((net, daemon)) = setup(&["--max-bps", "1000000"]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP);
    let (mut raw, relayed) = allocate(&net).await;
    bind_channel(&mut raw, peer.local_addr().unwrap()).await;
    raw.socket.send_to(&channel_data(b"metered", 1), raw.server).await.unwrap();
    assert_eq!(recv(&peer, WAIT).await, Some((b"metered".to_vec(), relayed)));
    let m = wait_metric(&net, metrics, "switchback_relayed_packets_total{direction=\"to_peer\"}", 1);
    assert_eq!(sample(&m, "switchback_fastpath_enabled"), 1, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_channels"), 0, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_packets_total{direction=\"to_peer\"}"), 0, "{m}");
}

/// An interface that does not exist: the daemon warns once, says so in `/metrics`, and serves on
/// the user-space path (no namespace or privilege needed).
#[test]
fn a_refused_attach_leaves_the_user_space_path() {
    let daemon = Daemon::start_loopback(&["--fast-path", "xdp", "--xdp-interface", "sb-no-such0"]);
    daemon.wait_for_log("fast path off", 1);
    assert_eq!(daemon.log().matches("fast path off").count(), 1, "{}", daemon.log());
    let m = support::http_request(daemon.http_addr("metrics"), "GET", "/metrics", &[], "").body;
    assert_eq!(sample(&m, "switchback_fastpath_enabled"), 0, "{m}");
    assert!(m.contains("switchback_fastpath_enabled 0"), "{m}");
    let (status, _) = daemon.stop_with("TERM");
    assert!(status.success());
}

/// IPv6 end to end: client, server, relayed address and peer in 2001:2::/48; the same bytes both
/// ways, all relayed in the kernel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_channels_relay_in_the_kernel() {
    let Some((net, daemon)) = setup(&[]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP6);
    let (mut raw, relayed) = allocate_on(&net, CLIENT_IP6, SERVER_IP6).await;
    assert_eq!(relayed.ip().to_string(), SERVER_IP6);
    bind_channel(&mut raw, peer.local_addr().unwrap()).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    let (to_peer, to_client) = exchange(&raw, &peer, relayed).await;
    let m = wait_metric(&net, metrics, "switchback_fastpath_packets_total{direction=\"to_client\"}", 5);
    let m = if sample(&m, "switchback_fastpath_packets_total{direction=\"to_peer\"}") < 5 {
        wait_metric(&net, metrics, "switchback_fastpath_packets_total{direction=\"to_peer\"}", 5)
    } else {
        m
    };
    for dir in ["to_peer", "to_client"] {
        let fast = sample(&m, &format!("switchback_fastpath_packets_total{{direction=\"{dir}\"}}"));
        let all = sample(&m, &format!("switchback_relayed_packets_total{{direction=\"{dir}\"}}"));
        assert_eq!((fast, all), (5, 5), "{dir}: user space relayed none: {m}");
    }
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_peer\"}"), to_peer, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_client\"}"), to_client, "{m}");
}
