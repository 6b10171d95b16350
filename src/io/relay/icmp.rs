//! ICMP errors for relayed datagrams, RFC 8656 §11.5, on Linux: relay sockets have IP_RECVERR
//! (IPV6_RECVERR), so the kernel queues each ICMP error a datagram to a peer drew on the socket's
//! error queue and reports the socket in error; the peer task reads the queue (`MSG_ERRQUEUE`) and
//! hands each error to [`crate::server::Server::icmp_from_peer`].
//!
//! Each entry carries the original datagram's destination as its address (the peer, RFC 8656
//! §11.5's "destination IP address and UDP port in the ICMP payload") and a `sock_extended_err`
//! control message with the ICMP type, code and info (the next-hop MTU). nix reads both safely.

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};

use nix::libc::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, sock_extended_err};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};

use crate::proto::stun::Icmp;

/// Room for one IP_RECVERR control message: its header, `sock_extended_err` and the offender's
/// `sockaddr_in6`; aligned for `cmsghdr`.
#[repr(align(8))]
struct ControlBuf([u8; 128]);

/// Turns on IP_RECVERR (IPV6_RECVERR for an IPv6 socket): ICMP errors for datagrams the socket
/// sent are queued on it (Linux reports them for unconnected UDP sockets only with it).
pub(super) fn enable(socket: &impl AsFd, ipv6: bool) -> std::io::Result<()> {
    let set = if ipv6 {
        setsockopt(socket, sockopt::Ipv6RecvErr, &true)
    } else {
        setsockopt(socket, sockopt::Ipv4RecvErr, &true)
    };
    set.map_err(std::io::Error::from)
}

/// Reads one entry of the error queue without blocking: the peer the failed datagram went to and
/// the ICMP error; `Ok(None)` for an entry that is no ICMP error (a local one, say).
/// `WouldBlock` once the queue is empty.
pub(super) fn recv(socket: &impl AsRawFd) -> std::io::Result<Option<(SocketAddr, Icmp)>> {
    // The quoted datagram's payload is not needed: one byte, truncated.
    let mut payload = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut payload)];
    let mut control = ControlBuf([0; 128]);
    let flags = MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT;
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut control.0), flags)
        .map_err(std::io::Error::from)?;
    let Some(peer) = msg.address.as_ref().and_then(socket_addr) else { return Ok(None) };
    let icmp = msg.cmsgs().map_err(std::io::Error::from)?.find_map(|c| match c {
        ControlMessageOwned::Ipv4RecvErr(e, _) | ControlMessageOwned::Ipv6RecvErr(e, _) => icmp_of(&e),
        _ => None,
    });
    Ok(icmp.map(|icmp| (peer, icmp)))
}

/// The ICMP attribute's fields of a `sock_extended_err` that came from an ICMP or ICMPv6 message.
fn icmp_of(e: &sock_extended_err) -> Option<Icmp> {
    let icmp = e.ee_origin == SO_EE_ORIGIN_ICMP || e.ee_origin == SO_EE_ORIGIN_ICMP6;
    icmp.then_some(Icmp { icmp_type: e.ee_type, icmp_code: e.ee_code, error_data: e.ee_info })
}

fn socket_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_icmp_origins_become_icmp_attributes() {
        let mut e = sock_extended_err {
            ee_errno: 111,
            ee_origin: SO_EE_ORIGIN_ICMP,
            ee_type: 3,
            ee_code: 3,
            ee_pad: 0,
            ee_info: 0,
            ee_data: 0,
        };
        assert_eq!(icmp_of(&e), Some(Icmp { icmp_type: 3, icmp_code: 3, error_data: 0 }));
        e.ee_origin = 1; // SO_EE_ORIGIN_LOCAL
        assert_eq!(icmp_of(&e), None);
    }
}
