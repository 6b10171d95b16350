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

use std::net::{SocketAddr, SocketAddrV4, UdpSocket as StdUdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use support::{Daemon, RawTurn, run_with_timeout};
use switchback::proto::stun::{
    AddressFamily, ChannelNumber, Lifetime, Message, Method, MobilityTicket, RequestedAddressFamily,
    RequestedTransport, XorPeerAddress, XorRelayedAddress,
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

/// What the client's veth does with the UDP checksum of what its namespace sends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TxChecksum {
    /// Computed in software (`ethtool -K tx off`): the complete checksum, as a NIC's frames from a
    /// wire carry it.
    Software,
    /// Offloaded (`tx on`, a veth's default): the sender hands on CHECKSUM_PARTIAL, whose field
    /// holds only the pseudo-header's sum — what local containers on a bridge send.
    Offloaded,
}

/// Two namespaces and a veth pair, removed on drop.
struct Net {
    client_ns: String,
    server_ns: String,
    server_if: String,
}

impl Net {
    /// Creates them, or says why not.
    fn new(tx: TxChecksum) -> Result<Net, String> {
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
        // With TX checksum offload a veth hands on the sender's UDP checksum half done (only the
        // pseudo-header's sum is in the field); without it the field holds the complete checksum,
        // as a NIC's frames from a wire do. The program must relay both (it cannot tell them apart
        // by metadata), so each test says which one its client side sends.
        let on = if tx == TxChecksum::Offloaded { "on" } else { "off" };
        let out = run_with_timeout(
            Command::new("ip").args(["netns", "exec", c, "ethtool", "-K", &client_if, "tx", on]),
            Duration::from_secs(10),
        );
        if !out.status.success() {
            return Err(format!("ethtool -K tx {on}: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let out = run_with_timeout(
            Command::new("ip").args(["netns", "exec", c, "ethtool", "-k", &client_if]),
            Duration::from_secs(10),
        );
        let features = String::from_utf8_lossy(&out.stdout);
        assert!(
            features.lines().any(|l| l.trim().starts_with(&format!("tx-checksumming: {on}"))),
            "tx-checksumming should be {on} on {client_if}: {features}"
        );
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
/// kernel that loads the program); the client side computes its checksums in software.
fn setup(extra: &[&str]) -> Option<(Net, Daemon)> {
    setup_with(TxChecksum::Software, extra)
}

/// [`setup`] with the client side's checksums done as `tx` says.
fn setup_with(tx: TxChecksum, extra: &[&str]) -> Option<(Net, Daemon)> {
    if support::tools::require("ip").is_none() || support::tools::require("ethtool").is_none() {
        return None;
    }
    let net = match Net::new(tx) {
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
    assert_all_in_kernel(&net, metrics, to_peer, to_client);

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
    assert_all_in_kernel(&net, metrics, to_peer, to_client);
}

/// The fast path's counters reach 5 datagrams each way, which the relayed totals equal (user space
/// relayed none), and its byte counters `to_peer` and `to_client`.
fn assert_all_in_kernel(net: &Net, metrics: SocketAddr, to_peer: u64, to_client: u64) {
    let m = wait_fast_packets(net, metrics, 5);
    for dir in ["to_peer", "to_client"] {
        assert_eq!(packets(&m, dir), (5, 5), "{dir}: user space relayed none: {m}");
    }
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_peer\"}"), to_peer, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_client\"}"), to_client, "{m}");
}

/// A client and a peer whose veth offloads the UDP checksum (a local container on a bridge): the
/// program gets fields holding only the pseudo-header's sum and must send complete checksums —
/// the receivers' stacks verify them and would drop the datagrams otherwise. The same bytes both
/// ways as with software checksums, all relayed in the kernel; IPv4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_with_checksum_offload_relays_in_the_kernel() {
    let Some((net, daemon)) = setup_with(TxChecksum::Offloaded, &[]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP);
    let (mut raw, relayed) = allocate(&net).await;
    bind_channel(&mut raw, peer.local_addr().unwrap()).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    let (to_peer, to_client) = exchange(&raw, &peer, relayed).await;
    assert_all_in_kernel(&net, metrics, to_peer, to_client);
}

/// [`a_sender_with_checksum_offload_relays_in_the_kernel`] over IPv6, where the UDP checksum is
/// mandatory (RFC 8200 §8.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_a_sender_with_checksum_offload_relays_in_the_kernel() {
    let Some((net, daemon)) = setup_with(TxChecksum::Offloaded, &[]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP6);
    let (mut raw, relayed) = allocate_on(&net, CLIENT_IP6, SERVER_IP6).await;
    bind_channel(&mut raw, peer.local_addr().unwrap()).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    let (to_peer, to_client) = exchange(&raw, &peer, relayed).await;
    assert_all_in_kernel(&net, metrics, to_peer, to_client);
}

/// The UDP checksum field a hand-made datagram carries.
#[derive(Clone, Copy, Debug)]
enum Check {
    /// None (0, RFC 768: legal over IPv4).
    Zero,
    /// Neither the right checksum nor the pseudo-header's sum a checksum-offloading sender leaves:
    /// a datagram corrupted on the way.
    Wrong,
}

/// The RFC 1071 sum of `bytes` (an odd last byte padded with zero) added to `sum`, folded.
fn ones_sum(bytes: &[u8], mut sum: u32) -> u16 {
    for pair in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// An IPv4 UDP datagram (header and `payload`) from `from` to `to` with checksum field `check`.
fn udp4(from: SocketAddrV4, to: SocketAddrV4, payload: &[u8], check: Check) -> Vec<u8> {
    let len = u16::try_from(8 + payload.len()).unwrap();
    let mut out = from.port().to_be_bytes().to_vec();
    out.extend_from_slice(&to.port().to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(payload);
    let mut pseudo = from.ip().octets().to_vec();
    pseudo.extend_from_slice(&to.ip().octets());
    pseudo.extend_from_slice(&[0, 17]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    let pseudo_sum = ones_sum(&pseudo, 0);
    let right = !ones_sum(&out, u32::from(pseudo_sum));
    let field = match check {
        Check::Zero => 0,
        Check::Wrong => (1..).map(|d| right.wrapping_add(d)).find(|c| ![0, right, pseudo_sum].contains(c)).unwrap(),
    };
    out[6..8].copy_from_slice(&field.to_be_bytes());
    out
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(a) => panic!("{a}: IPv4 expected"),
    }
}

/// Sends `datagram` (UDP header included, checksum as it is) from `from`'s address to `to` through a
/// raw socket in the client namespace: the kernel adds only the IPv4 header.
fn send_raw(net: &Net, from: SocketAddrV4, to: SocketAddrV4, datagram: Vec<u8>) {
    use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn};
    Net::inside(&net.client_ns, move || {
        let fd = nix::sys::socket::socket(AddressFamily::Inet, SockType::Raw, SockFlag::empty(), SockProtocol::Udp)
            .expect("a raw socket");
        nix::sys::socket::bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(*from.ip(), 0)))
            .expect("bind the raw socket");
        let to = SockaddrIn::from(SocketAddrV4::new(*to.ip(), 0));
        let sent = nix::sys::socket::sendto(fd.as_raw_fd(), &datagram, &to, MsgFlags::empty()).expect("sendto");
        assert_eq!(sent, datagram.len());
    });
}

/// The program checks the checksum field it replaces: a datagram whose field is neither a checksum
/// that verifies nor a checksum-offloading sender's pseudo-header sum is corrupt, and goes to user
/// space, where the kernel drops it as without the program — it reaches neither the peer nor the
/// client. An IPv4 datagram without a checksum (0) is relayed in the kernel, and leaves with one
/// the receiver's stack verifies (the bytes arrive).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_checksum_is_not_relayed_and_none_is_completed() {
    let Some((net, daemon)) = setup(&[]) else { return };
    let metrics = daemon.http_addr("metrics");
    let peer = net.udp_in_client(PEER_IP);
    let peer_addr = v4(peer.local_addr().unwrap());
    let (mut raw, relayed) = allocate(&net).await;
    bind_channel(&mut raw, peer_addr.into()).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    let (client, server, relayed) = (v4(raw.socket.local_addr().unwrap()), v4(raw.server), v4(relayed));
    assert_eq!(client.ip().to_string(), CLIENT_IP);

    let to_peer = channel_data(&payload(101, 1), 3);
    send_raw(&net, client, server, udp4(client, server, &to_peer, Check::Wrong));
    assert!(recv(&peer, QUIET).await.is_none(), "ChannelData with a corrupt checksum was relayed");
    let to_client = payload(99, 2);
    send_raw(&net, peer_addr, relayed, udp4(peer_addr, relayed, &to_client, Check::Wrong));
    assert!(recv(&raw.socket, QUIET).await.is_none(), "a peer's datagram with a corrupt checksum was relayed");

    send_raw(&net, client, server, udp4(client, server, &to_peer, Check::Zero));
    let got = recv(&peer, WAIT).await.expect("ChannelData without a checksum never reached the peer");
    assert_eq!(got, (payload(101, 1), SocketAddr::from(relayed)));
    send_raw(&net, peer_addr, relayed, udp4(peer_addr, relayed, &to_client, Check::Zero));
    let got = recv(&raw.socket, WAIT).await.expect("a datagram without a checksum never reached the client");
    assert_eq!(got, (channel_data(&to_client, 0), SocketAddr::from(server)));

    // The kernel relayed the two without a checksum; nobody relayed the corrupt ones.
    let m = wait_fast_packets(&net, metrics, 1);
    for dir in ["to_peer", "to_client"] {
        assert_eq!(packets(&m, dir), (1, 1), "{dir}: {m}");
    }
}

/// The MOBILITY-TICKET of a response (RFC 8016 §3.1, §3.2).
fn ticket_of(bytes: &[u8]) -> Vec<u8> {
    Message::parse(bytes).unwrap().get::<MobilityTicket>().expect("a MOBILITY-TICKET").0.to_vec()
}

/// The sequence number a streamed datagram carries as ChannelData (4-byte header, 8 bytes).
fn streamed_seq(datagram: &[u8]) -> Option<u64> {
    datagram.get(4..12).filter(|_| datagram.get(..2) == Some(&CHANNEL.to_be_bytes()[..])).map(|b| {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(b);
        u64::from_be_bytes(seq)
    })
}

/// Polls `/metrics` until `ok` holds for it; returns that text.
fn wait_metrics(net: &Net, addr: SocketAddr, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = net.metrics(addr);
        if ok(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "{what} within {WAIT:?}: {m}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/metrics` until the fast path relayed at least `n` packets each way; returns that text
/// (its counters are folded in once a second).
fn wait_fast_packets(net: &Net, addr: SocketAddr, n: u64) -> String {
    wait_metrics(net, addr, &format!("{n} fast-path packets each way"), |m| {
        packets(m, "to_peer").0 >= n && packets(m, "to_client").0 >= n
    })
}

/// Packets relayed toward `dir`: by the fast path, and in all (user space's are the difference).
fn packets(m: &str, dir: &str) -> (u64, u64) {
    (
        sample(m, &format!("switchback_fastpath_packets_total{{direction=\"{dir}\"}}")),
        sample(m, &format!("switchback_relayed_packets_total{{direction=\"{dir}\"}}")),
    )
}

/// RFC 8016 mobility with the fast path on (`UdpRelay::moved`: forget, then sync): a client with
/// mobility relays through the kernel, then moves its allocation to a new local port (a new
/// 5-tuple, same address) with a Refresh carrying its ticket while the peer streams to it. The
/// stream follows to the new socket, and the old one gets nothing the peer sent well after the move
/// (what the relay had in hand when the move landed may still leave for it: in flight, not
/// misrouted); then the same bytes both ways on the new 5-tuple, all relayed in the kernel (its
/// counters rise with the relayed totals; user space relays none of them); the old 5-tuple's
/// ChannelData reaches nobody and nothing more reaches the old socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kernel_follows_a_mobility_move_to_a_new_five_tuple() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    let Some((net, daemon)) = setup(&["--mobility"]) else { return };
    let metrics = daemon.http_addr("metrics");
    // The peer's socket, and a clone of it a thread of the test streams from (no tokio timer: it
    // ticks by the millisecond, and a move takes less).
    let peer = Net::inside(&net.client_ns, || StdUdpSocket::bind((PEER_IP, 0)).expect("bind in the namespace"));
    let streamer = peer.try_clone().unwrap();
    peer.set_nonblocking(true).unwrap();
    let peer = UdpSocket::from_std(peer).unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let server = SocketAddr::new(SERVER_IP.parse().unwrap(), 3478);
    let mut old = RawTurn::from_socket(net.udp_in_client(CLIENT_IP), server, "u", "pw");
    let answer = old
        .request(Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&MobilityTicket(&[]))
        })
        .await;
    assert!(answer.success, "allocate: {}", answer.code);
    let relayed = Message::parse(&answer.bytes).unwrap().get::<XorRelayedAddress>().unwrap().0;
    let ticket = ticket_of(&answer.bytes);
    bind_channel(&mut old, peer_addr).await;
    wait_metric(&net, metrics, "switchback_fastpath_channels", 1);
    let (to_peer, to_client) = exchange(&old, &peer, relayed).await;
    assert_all_in_kernel(&net, metrics, to_peer, to_client);

    // The new socket: same address, a new port (made before the stream starts, which the blocking
    // setns thread would hold up).
    let mut moved = RawTurn::from_socket(net.udp_in_client(CLIENT_IP), server, "u", "pw");
    let (old_addr, new_addr) = (old.socket.local_addr().unwrap(), moved.socket.local_addr().unwrap());
    assert_eq!(old_addr.ip(), new_addr.ip());
    assert_ne!(old_addr, new_addr);

    // The peer streams numbered datagrams to the relayed address, one every 100 µs or so, and
    // the client moves meanwhile. `Stop` ends the stream when the test does, even in a panic.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    let (streaming, sent) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
    let stop = Stop(Arc::clone(&streaming));
    let stream = std::thread::spawn({
        let sent = Arc::clone(&sent);
        move || {
            // Bounded: the test stops it long before.
            for _ in 0..200_000 {
                if !streaming.load(Ordering::Relaxed) {
                    break;
                }
                let seq = sent.load(Ordering::Relaxed);
                // The descriptor is non-blocking (shared with the tokio socket): a full buffer
                // skips a number, counted as not sent.
                if streamer.send_to(&seq.to_be_bytes(), relayed).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    });
    let first = recv(&old.socket, WAIT).await.expect("the stream never reached the client");
    assert!(streamed_seq(&first.0).is_some(), "not streamed ChannelData: {first:?}");

    let t = ticket.clone();
    let refresh = moved.request(Method::REFRESH, &|w| w.add(&MobilityTicket(&t))).await;
    assert!(refresh.success, "the move: {}", refresh.code);
    let moved_at = sent.load(Ordering::Relaxed);
    assert_ne!(ticket_of(&refresh.bytes), ticket, "the move's answer carries a fresh ticket");

    // The stream follows to the new socket (for a thousand datagrams).
    let after = moved_at + 1000;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (got, from) = recv(&moved.socket, deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
            .unwrap_or_else(|| panic!("no streamed datagram numbered {after} or later on the new socket"));
        assert_eq!(from, server, "from the server's address");
        if streamed_seq(&got).is_some_and(|seq| seq >= after) {
            break;
        }
    }
    drop(stop);
    stream.join().unwrap();
    let sent = sent.load(Ordering::Relaxed);
    // Nothing the peer sent well after the move (more than 50 datagrams later: a few milliseconds
    // of the stream) reached the old socket.
    let mut buf = vec![0u8; 2048];
    while let Ok((n, _)) = old.socket.try_recv_from(&mut buf) {
        let seq = streamed_seq(buf.get(..n).unwrap_or_default());
        assert!(
            seq.is_some_and(|seq| seq <= moved_at + 50),
            "the old address received datagram {seq:?} (the move was done at {moved_at})"
        );
    }
    // Every streamed datagram was relayed once (by the kernel or, around the move, user space);
    // the channel is offloaded under the new 5-tuple.
    wait_metrics(&net, metrics, &format!("{} datagrams relayed to the client", 5 + sent), |m| {
        packets(m, "to_client").1 >= 5 + sent
    });
    // Read once more: a fold adds to the allocation a moment before the fast path's totals.
    let m = net.metrics(metrics);
    assert_eq!(packets(&m, "to_client").1, 5 + sent, "{m}");
    assert_eq!(sample(&m, "switchback_fastpath_channels"), 1, "{m}");
    let (fast_before, all_before) = packets(&m, "to_client");
    assert!(fast_before > 5, "the kernel relayed none of the stream: {m}");
    let in_user_space = all_before - fast_before;
    // Drain what the stream left on the new socket.
    while moved.socket.try_recv_from(&mut buf).is_ok() {}

    // The same bytes both ways on the new 5-tuple, all in the kernel: its counters rise by the
    // five each way and user space's share stays as it was.
    let (up, down) = exchange(&moved, &peer, relayed).await;
    let m = wait_metrics(&net, metrics, "the kernel's counters rising by 5 each way after the move", |m| {
        packets(m, "to_peer").0 >= 10 && packets(m, "to_client").0 >= fast_before + 5
    });
    assert_eq!(packets(&m, "to_peer"), (10, 10), "to_peer: user space relayed none: {m}");
    assert_eq!(packets(&m, "to_client"), (fast_before + 5, fast_before + 5 + in_user_space), "to_client: {m}");
    assert_eq!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_peer\"}"), to_peer + up, "{m}");
    assert!(sample(&m, "switchback_fastpath_bytes_total{direction=\"to_client\"}") >= to_client + down, "{m}");

    // The old 5-tuple is gone: its ChannelData reaches nobody, nothing reaches it.
    old.socket.send_to(&channel_data(b"from the old port", 1), server).await.unwrap();
    assert!(recv(&peer, QUIET).await.is_none(), "ChannelData from the old 5-tuple was relayed");
    peer.send_to(b"after the move", relayed).await.unwrap();
    assert_eq!(
        recv(&moved.socket, WAIT).await,
        Some((channel_data(b"after the move", 0), server)),
        "the peer's datagram after the move"
    );
    assert!(recv(&old.socket, QUIET).await.is_none(), "the old address received a datagram after the move");
    let m = net.metrics(metrics);
    assert_eq!(packets(&m, "to_peer").1, 10, "{m}");
}
