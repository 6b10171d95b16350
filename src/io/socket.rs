//! Creating listener sockets with socket2 (options tokio does not expose), then handing them to tokio.

use std::net::{IpAddr, SocketAddr};

use quinn_udp::{EcnCodepoint, Transmit, UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Backlog of pending TCP connections.
const TCP_BACKLOG: i32 = 1024;

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    // TCP: rebind at once after a restart (TIME_WAIT). Never on UDP, where SO_REUSEADDR would let
    // another process bind the same address and take a share of the clients.
    if ty == Type::STREAM {
        socket.set_reuse_address(true)?;
    }
    if addr.is_ipv6() {
        // `::` and `0.0.0.0` can then both be listening addresses.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// The first UDP socket of a listening address, for a group of `workers` sockets that share it
/// with SO_REUSEPORT: it fails when another process already has the address, SO_REUSEPORT or not.
/// SO_REUSEPORT admits any socket of the same user that sets it, so a second `switchback` would
/// silently take a share of the clients; a socket without it is refused by any holder, so one is
/// bound first (and closed) to claim the address, then the group binds.
pub(super) fn udp_group_first(
    addr: SocketAddr,
    workers: usize,
    buffer: usize,
) -> std::io::Result<(UdpSocket, SocketAddr)> {
    if workers <= 1 {
        return udp(addr, false, buffer);
    }
    // Port 0: the OS hands out a port nobody holds, nothing to claim (and a probe's port could be
    // taken by someone else before the group binds it).
    if addr.port() != 0 {
        let probe = socket(addr, Type::DGRAM, Protocol::UDP)?;
        probe.bind(&addr.into())?;
        drop(probe);
    }
    udp(addr, true, buffer)
}

/// A bound UDP socket and its actual local address. `reuse_port` lets the other workers' sockets
/// share the address (SO_REUSEPORT: the kernel spreads clients over them by 4-tuple hash);
/// `buffer` is asked for as receive and send buffer (0 = the kernel's default).
pub(super) fn udp(addr: SocketAddr, reuse_port: bool, buffer: usize) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let socket = socket(addr, Type::DGRAM, Protocol::UDP)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    set_buffers(&socket, buffer);
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let local = socket.local_addr()?;
    Ok((socket, local))
}

/// A listening TCP socket and its actual local address.
pub(super) fn tcp(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let socket = socket(addr, Type::STREAM, Protocol::TCP)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    let listener = TcpListener::from_std(socket.into())?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Asks for `buffer` bytes of receive and send buffer (0: leave the kernel's default). A bigger
/// buffer absorbs bursts; not getting it is no reason to fail, but the kernel silently caps it at
/// `net.core.rmem_max` / `wmem_max`, so this says so once per process.
pub(super) fn set_buffers(socket: &Socket, buffer: usize) {
    if buffer == 0 {
        return;
    }
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    // Linux reports twice the granted size (the doubled value includes its bookkeeping).
    let got = socket.recv_buffer_size().unwrap_or(0).min(socket.send_buffer_size().unwrap_or(0));
    if got < buffer.saturating_mul(2) {
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                asked = buffer,
                got = got / 2,
                "socket-buffer capped by the kernel; raise net.core.rmem_max and net.core.wmem_max"
            );
        });
    }
}

/// A non-blocking `sendto(2)` on a UDP socket (a tokio one, or a relay socket); false when the datagram was dropped (a full
/// send buffer, or an error). Unlike `UdpSocket::try_send_to` it does not first ask tokio whether
/// the socket is writable: tokio only learns that on a turn of its driver, so a relay socket bound
/// a moment ago would drop its first datagrams although the kernel has room for them.
#[inline]
pub(super) fn send_now(socket: &impl std::os::fd::AsFd, data: &[u8], to: SocketAddr) -> bool {
    try_send_now(socket, data, to).is_ok()
}

/// [`send_now`] with the error.
#[inline]
pub(super) fn try_send_now(socket: &impl std::os::fd::AsFd, data: &[u8], to: SocketAddr) -> std::io::Result<()> {
    socket2::SockRef::from(socket).send_to(data, &to.into()).map(drop)
}

/// A non-blocking `sendmsg(2)` of one datagram from source address `src` (IP_PKTINFO /
/// IPV6_PKTINFO: a socket bound to a wildcard answers from the address it was reached at) with
/// the ECN codepoint `ecn` (IP_TOS / IPV6_TCLASS, RFC 8656 §14); false when the datagram was
/// dropped. With neither, or without a quinn-udp `state`, it is [`send_now`]: the plain `sendto`
/// stays the path of every datagram that needs no control message.
#[inline]
pub(super) fn send_with(
    state: Option<&UdpSocketState>,
    socket: &impl std::os::fd::AsFd,
    data: &[u8],
    to: SocketAddr,
    src: Option<IpAddr>,
    ecn: Option<EcnCodepoint>,
) -> bool {
    try_send_with(state, socket, data, to, src, ecn).is_ok()
}

/// [`send_with`] with the error.
#[inline]
pub(super) fn try_send_with(
    state: Option<&UdpSocketState>,
    socket: &impl std::os::fd::AsFd,
    data: &[u8],
    to: SocketAddr,
    src: Option<IpAddr>,
    ecn: Option<EcnCodepoint>,
) -> std::io::Result<()> {
    match state {
        Some(state) if src.is_some() || ecn.is_some() => {
            let transmit = Transmit { destination: to, ecn, contents: data, segment_size: None, src_ip: src };
            state.try_send(UdpSockRef::from(socket), &transmit)
        }
        _ => try_send_now(socket, data, to),
    }
}

/// quinn-udp's reading of a datagram's ECN field as the core's codepoint (none: Not-ECT).
#[inline]
pub(super) fn ecn_from(codepoint: Option<EcnCodepoint>) -> crate::server::Ecn {
    codepoint.map_or(crate::server::Ecn::NotEct, |c| crate::server::Ecn::from_bits(c as u8))
}

/// The core's codepoint for quinn-udp (Not-ECT: none, so the datagram takes the plain `sendto`).
#[inline]
pub(super) fn ecn_to(ecn: crate::server::Ecn) -> Option<EcnCodepoint> {
    EcnCodepoint::from_bits(ecn as u8)
}

/// Turns on IP_RECVTOS (IPV6_RECVTCLASS for an IPv6 socket), so that quinn-udp's `recv` reports
/// each datagram's ECN field (RFC 8656 §14: copied to the other leg). Listener sockets get it from
/// `UdpSocketState::new`; relay sockets, which share one quinn-udp handle, set it here.
pub(super) fn enable_recv_ecn(socket: &impl std::os::fd::AsFd, ipv6: bool) -> std::io::Result<()> {
    if ipv6 {
        rustix::net::sockopt::set_ipv6_recvtclass(socket, true)?;
    } else {
        rustix::net::sockopt::set_ip_recvtos(socket, true)?;
    }
    Ok(())
}
