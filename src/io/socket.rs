//! Creating listener sockets with socket2 (options tokio does not expose), then handing them to tokio.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Receive buffer asked for on UDP listeners; the kernel may cap it (`net.core.rmem_max`).
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Backlog of pending TCP connections.
const TCP_BACKLOG: i32 = 1024;

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    // Rebind at once after a restart (TCP TIME_WAIT).
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        // `::` and `0.0.0.0` can then both be listening addresses.
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A bound UDP socket and its actual local address.
pub(super) fn udp(addr: SocketAddr) -> std::io::Result<(UdpSocket, SocketAddr)> {
    let socket = socket(addr, Type::DGRAM, Protocol::UDP)?;
    // A bigger buffer absorbs bursts; not getting it is no reason to fail.
    let _ = socket.set_recv_buffer_size(UDP_RECV_BUFFER);
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
