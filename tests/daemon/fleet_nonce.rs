//! `nonce-secret-file` (issue #16 §6): two daemons sharing the secret accept each other's nonces,
//! so a client whose Allocate reaches another node of the fleet after a balancer change is not
//! challenged again; without it the other node answers 438 Stale Nonce (RFC 8489 §9.2.4).

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::support::{Daemon, TempFile};
use switchback::proto::stun::{ErrorCode, Message, Method, Nonce, RequestedTransport};
use switchback::testing::{Signer, signed};

/// One request and its answer over UDP.
fn exchange(socket: &UdpSocket, server: SocketAddr, request: &[u8]) -> Vec<u8> {
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).expect("an answer");
    buf[..n].to_vec()
}

/// The nonce `server` hands out in its 401, and the code `other` answers an Allocate signed with it
/// from the same client address (the nonce is bound to it).
fn code_of_a_nonce_from_another_node(server: SocketAddr, other: SocketAddr) -> Option<u16> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let udp = |w: &mut switchback::proto::stun::MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
    let challenge = exchange(&socket, server, &signed(Method::ALLOCATE, 1, None, udp));
    let m = Message::parse(&challenge).unwrap();
    assert_eq!(m.get::<ErrorCode>().unwrap().code, 401);
    let nonce = m.get::<Nonce>().unwrap().0.to_owned();
    let signer = Signer::password("u", "r", "pw", &nonce);
    let answer = exchange(&socket, other, &signed(Method::ALLOCATE, 2, Some(&signer), udp));
    Message::parse(&answer).unwrap().get::<ErrorCode>().ok().map(|e| e.code)
}

#[test]
fn nodes_sharing_the_nonce_secret_accept_each_others_nonces() {
    let secret = TempFile::new("fleet-nonce-secret", "# the fleet's\nfleet-nonce-secret-0123456789\n");
    let path = secret.as_str();
    let a = Daemon::start_loopback(&["--nonce-secret-file", path]);
    let b = Daemon::start_loopback(&["--nonce-secret-file", path]);
    assert_eq!(code_of_a_nonce_from_another_node(a.udp[0], b.udp[0]), None, "B allocates with A's nonce");
    // Without the shared secret each node has a key of its own: 438.
    let c = Daemon::start_loopback(&[]);
    assert_eq!(code_of_a_nonce_from_another_node(a.udp[0], c.udp[0]), Some(438));
}
