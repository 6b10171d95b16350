//! RFC 8656 §14 (preferred behaviour): the ECN field is copied between the legs of a UDP
//! allocation. A client's ChannelData and Send indication with ECT(0) reach the peer with ECT(0);
//! a peer's ECT(1) and CE reach the client with that codepoint (ChannelData and Data indication);
//! without ECN on the way in there is none on the way out. Both ends read the field with quinn-udp
//! (IP_RECVTOS, which `UdpSocketState::new` turns on).
#![cfg(feature = "runtime")]

use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::time::Duration;

use quinn_udp::{EcnCodepoint, RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;

use crate::support::{RECV_TIMEOUT, RawTurn, TURN_USER, TurnFixture, bounded, send_indication};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::{
    AddressFamily, ChannelNumber, Class, Data, Lifetime, Message, Method, RequestedAddressFamily, RequestedTransport,
    XorPeerAddress, XorRelayedAddress,
};

/// A UDP socket on 127.0.0.1 whose datagrams' ECN field quinn-udp reads and writes.
struct EcnSocket {
    socket: UdpSocket,
    state: UdpSocketState,
}

impl EcnSocket {
    fn new(socket: UdpSocket) -> EcnSocket {
        let state = UdpSocketState::new(UdpSockRef::from(&socket)).expect("quinn-udp on a test socket");
        // quinn-udp's 96-byte control buffer cannot hold the timestamp, GRO, PKTINFO and TOS
        // messages of a GRO read together: the TOS one is cut. No timestamps, as on the server.
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::ReceiveTimestampns, &false).unwrap();
        EcnSocket { socket, state }
    }

    async fn bind() -> EcnSocket {
        EcnSocket::bind_at("127.0.0.1:0").await
    }

    async fn bind_at(addr: &str) -> EcnSocket {
        EcnSocket::new(UdpSocket::bind(addr).await.unwrap())
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn send(&self, data: &[u8], to: SocketAddr, ecn: Option<EcnCodepoint>) {
        self.send_gso(data, None, to, ecn);
    }

    /// `data` as datagrams of `segment` bytes in one GSO send (one datagram: `None`).
    fn send_gso(&self, data: &[u8], segment: Option<usize>, to: SocketAddr, ecn: Option<EcnCodepoint>) {
        let transmit = Transmit { destination: to, ecn, contents: data, segment_size: segment, src_ip: None };
        self.state.try_send(UdpSockRef::from(&self.socket), &transmit).expect("send with an ECN codepoint");
    }

    /// The next datagram (within `wait`): its bytes, source and ECN codepoint.
    async fn recv(&self, wait: Duration) -> Option<(Vec<u8>, SocketAddr, Option<EcnCodepoint>)> {
        let (mut datagrams, from, ecn) = self.recv_many(wait).await?;
        assert_eq!(datagrams.len(), 1, "one datagram expected");
        Some((datagrams.remove(0), from, ecn))
    }

    /// The next read (within `wait`): its datagrams (GRO hands several of one source, size and
    /// codepoint at once), source and ECN codepoint.
    async fn recv_many(&self, wait: Duration) -> Option<(Vec<Vec<u8>>, SocketAddr, Option<EcnCodepoint>)> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65536];
        loop {
            tokio::time::timeout_at(deadline, self.socket.readable()).await.ok()?.unwrap();
            let mut meta = [RecvMeta::default()];
            let read = self.socket.try_io(Interest::READABLE, || {
                self.state.recv(UdpSockRef::from(&self.socket), &mut [IoSliceMut::new(&mut buf)], &mut meta)
            });
            if let Ok(1) = read {
                let [meta] = meta;
                let datagrams = buf[..meta.len].chunks(meta.stride.max(1)).map(<[u8]>::to_vec).collect();
                return Some((datagrams, meta.addr, meta.ecn));
            }
        }
    }
}

/// A client allocation through `fixture` with a permission for 127.0.0.1 and channel 0x4000 bound
/// to `channel_peer`; the raw client's socket, wrapped for ECN, and the relayed address.
async fn allocation(fixture: &TurnFixture, channel_peer: SocketAddr) -> (EcnSocket, SocketAddr) {
    allocation_at("127.0.0.1:0", fixture.udp, AddressFamily::V4, channel_peer).await
}

/// [`allocation`] from a client socket on `bind` through the server at `server`, relayed address
/// of `family`.
async fn allocation_at(
    bind: &str,
    server: SocketAddr,
    family: AddressFamily,
    channel_peer: SocketAddr,
) -> (EcnSocket, SocketAddr) {
    let mut raw = RawTurn::new(bind.parse().unwrap(), server, TURN_USER.0, TURN_USER.1).await;
    let answer = raw
        .request(Method::ALLOCATE, &|w| {
            w.add(&RequestedTransport::UDP)?;
            w.add(&RequestedAddressFamily(family))?;
            w.add(&Lifetime(600))
        })
        .await;
    assert!(answer.success, "Allocate failed with {}", answer.code);
    let relayed = Message::parse(&answer.bytes).unwrap().get::<XorRelayedAddress>().unwrap().0;
    let bind = raw
        .request(Method::CHANNEL_BIND, &|w| {
            w.add(&ChannelNumber(0x4000))?;
            w.add(&XorPeerAddress(channel_peer))
        })
        .await;
    assert!(bind.success, "ChannelBind failed with {}", bind.code);
    (EcnSocket::new(raw.socket), relayed)
}

/// Sends `datagram` from `client` with `ecn` until `peer` receives something (the first datagram
/// through a fresh relay socket may be dropped); what the peer got.
async fn client_to_peer(
    client: &EcnSocket,
    server: SocketAddr,
    datagram: &[u8],
    ecn: Option<EcnCodepoint>,
    peer: &EcnSocket,
) -> (Vec<u8>, SocketAddr, Option<EcnCodepoint>) {
    for _ in 0..10 {
        client.send(datagram, server, ecn);
        if let Some(got) = peer.recv(Duration::from_millis(500)).await {
            return got;
        }
    }
    panic!("nothing reached the peer");
}

#[tokio::test]
async fn ecn_is_copied_from_client_to_peer_and_back() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let (channel_peer, other_peer) = (EcnSocket::bind().await, EcnSocket::bind().await);
        let (client, relayed) = allocation(&fixture, channel_peer.addr()).await;
        let mut cd = [0u8; 64];
        let n = ChannelData { channel: 0x4000, data: b"cd" }.encode(false, &mut cd).unwrap();
        let channel_data = &cd[..n];

        // Client → peer: ChannelData and a Send indication, with ECT(0) and without.
        for ecn in [Some(EcnCodepoint::Ect0), Some(EcnCodepoint::Ce), None] {
            let got = client_to_peer(&client, fixture.udp, channel_data, ecn, &channel_peer).await;
            assert_eq!(got, (b"cd".to_vec(), relayed, ecn), "ChannelData sent with {ecn:?}");
            let send = send_indication(other_peer.addr(), b"send");
            let got = client_to_peer(&client, fixture.udp, &send, ecn, &other_peer).await;
            assert_eq!(got, (b"send".to_vec(), relayed, ecn), "a Send indication sent with {ecn:?}");
        }

        // A GSO burst of ChannelData with ECT(0): the listener reads it as one GRO batch, and
        // every datagram still reaches the peer with ECT(0).
        const BURST: usize = 8;
        let burst: Vec<u8> = channel_data.repeat(BURST);
        let mut seen = 0;
        let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
        while seen < BURST {
            if seen == 0 {
                client.send_gso(&burst, Some(channel_data.len()), fixture.udp, Some(EcnCodepoint::Ect0));
            }
            let wait = deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_millis(500));
            match channel_peer.recv_many(wait).await {
                Some((datagrams, _, ecn)) => {
                    assert_eq!(ecn, Some(EcnCodepoint::Ect0), "client data read in a GRO batch");
                    seen += datagrams.len();
                }
                None => assert!(tokio::time::Instant::now() < deadline, "{seen} of {BURST} reached the peer"),
            }
        }

        // Peer → client: as ChannelData from the channel's peer, as a Data indication from the other.
        for ecn in [Some(EcnCodepoint::Ect1), Some(EcnCodepoint::Ce), Some(EcnCodepoint::Ect0), None] {
            channel_peer.send(b"back", relayed, ecn);
            let (got, from, got_ecn) = client.recv(RECV_TIMEOUT).await.expect("ChannelData from the peer");
            assert_eq!(from, fixture.udp);
            let frame = ChannelData::parse(&got).expect("ChannelData");
            assert_eq!((frame.channel, frame.data, got_ecn), (0x4000, &b"back"[..], ecn), "peer sent {ecn:?}");

            other_peer.send(b"data", relayed, ecn);
            let (got, _, got_ecn) = client.recv(RECV_TIMEOUT).await.expect("a Data indication");
            let m = Message::parse(&got).expect("a Data indication");
            assert_eq!((m.message_type().method, m.message_type().class), (Method::DATA, Class::Indication));
            assert_eq!((m.get::<Data>().unwrap().0, got_ecn), (&b"data"[..], ecn), "peer sent {ecn:?}");
        }

        // A burst of equal datagrams (one recvmmsg at the relay, a GSO run to the client), in two
        // codepoints: each keeps its own.
        for ecn in [Some(EcnCodepoint::Ect1), None] {
            for _ in 0..BURST {
                channel_peer.send(b"burst!!!", relayed, ecn);
            }
        }
        let mut seen = Vec::new();
        while seen.len() < 2 * BURST {
            let (datagrams, _, got_ecn) = client.recv_many(RECV_TIMEOUT).await.expect("the burst");
            for d in datagrams {
                assert_eq!(ChannelData::parse(&d).expect("ChannelData").data, b"burst!!!");
                seen.push(got_ecn);
            }
        }
        let expected: Vec<_> = [Some(EcnCodepoint::Ect1), None].iter().flat_map(|e| [*e; BURST]).collect();
        assert_eq!(seen, expected);
    })
    .await;
}

/// The same over IPv6 (IPV6_TCLASS): a client on ::1 with an IPv6 relayed address.
#[tokio::test]
async fn ecn_is_copied_over_ipv6() {
    if !crate::support::tools::require_ipv6_loopback() {
        return;
    }
    bounded(async {
        let (_server, running, _, v6) = crate::support::dual_stack_server().await;
        let peer = EcnSocket::bind_at("[::1]:0").await;
        let (client, relayed) = allocation_at("[::1]:0", v6, AddressFamily::V6, peer.addr()).await;
        assert!(relayed.is_ipv6(), "{relayed}");
        let mut cd = [0u8; 64];
        let n = ChannelData { channel: 0x4000, data: b"six" }.encode(false, &mut cd).unwrap();
        for ecn in [Some(EcnCodepoint::Ect1), None] {
            let got = client_to_peer(&client, v6, &cd[..n], ecn, &peer).await;
            assert_eq!(got, (b"six".to_vec(), relayed, ecn), "ChannelData sent with {ecn:?}");
        }
        for ecn in [Some(EcnCodepoint::Ce), None] {
            peer.send(b"back", relayed, ecn);
            let (got, _, got_ecn) = client.recv(RECV_TIMEOUT).await.expect("ChannelData from the peer");
            assert_eq!((ChannelData::parse(&got).unwrap().data, got_ecn), (&b"back"[..], ecn), "peer sent {ecn:?}");
        }
        running.shutdown().await;
    })
    .await;
}
