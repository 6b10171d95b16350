//! The TCP client path allocates nothing in steady state (issue #17): a whole server (listeners
//! bound by `io::bind`) on a current-thread runtime, one client over TCP with a channel to a
//! peer, then rounds of 8 ChannelData frames written at once — read by the connection, sent to the
//! peer as one GSO batch (`io/relay/batch.rs`) — and the peer's 8 answers back through the relay
//! socket's task and the connection's stream queue, after a warm-up, under a counting global
//! allocator.
//!
//! One test in this binary, so no other test thread allocates while the region is measured.

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::*;
use switchback::server::Transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[path = "support/mod.rs"]
mod support;

use support::{TURN_REALM, TURN_USER, TurnFixture, read_stream_frame, turn_request};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROUNDS: usize = 2_000;
const WARM_UP: usize = 200;
/// Frames per round, each way.
const BURST: usize = 8;

/// The next datagram on the non-blocking `socket`, yielding to the server's tasks meanwhile.
async fn recv_yielding(socket: &StdUdpSocket, buf: &mut [u8]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(buf) {
            return n;
        }
        tokio::task::yield_now().await;
    }
    panic!("nothing arrived at {:?}", socket.local_addr());
}

#[test]
fn the_tcp_client_path_allocates_nothing_in_steady_state() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let fixture = TurnFixture::loopback().await;
        let server = fixture.running.local_addr(Transport::Tcp).unwrap();
        let mut stream = TcpStream::connect(server).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let mut buf = Vec::new();
        let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
        stream.write_all(&turn_request(Method::ALLOCATE, 1, None, udp)).await.unwrap();
        let resp = read_stream_frame(&mut stream, &mut buf).await;
        let nonce = Message::parse(&resp).unwrap().get::<Nonce>().unwrap().0.to_string();
        let key = IntegrityKey::new(&long_term_key_md5(TURN_USER.0, TURN_REALM, TURN_USER.1));
        stream.write_all(&turn_request(Method::ALLOCATE, 2, Some((&nonce, &key)), udp)).await.unwrap();
        let resp = read_stream_frame(&mut stream, &mut buf).await;
        let m = Message::parse(&resp).unwrap();
        assert_eq!(m.message_type().class, Class::SuccessResponse, "{:?}", m.get::<ErrorCode>());
        let relayed: SocketAddr = m.get::<XorRelayedAddress>().unwrap().0;
        // Not 127.0.0.1: the server's own address is no peer outside the relay port range.
        let peer = StdUdpSocket::bind("127.0.0.2:0").unwrap();
        peer.set_nonblocking(true).unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let bind = |w: &mut MessageWriter<'_>| {
            w.add(&ChannelNumber(0x4000)).unwrap();
            w.add(&XorPeerAddress(peer_addr)).unwrap();
        };
        stream.write_all(&turn_request(Method::CHANNEL_BIND, 3, Some((&nonce, &key)), bind)).await.unwrap();
        let resp = read_stream_frame(&mut stream, &mut buf).await;
        assert_eq!(Message::parse(&resp).unwrap().message_type().class, Class::SuccessResponse);
        assert!(buf.is_empty());

        let payload = [0xABu8; 100];
        let mut frame = [0u8; 200];
        let frame_len = ChannelData { channel: 0x4000, data: &payload }.encode(true, &mut frame).unwrap();
        let frame = frame[..frame_len].to_vec();
        let burst: Vec<u8> = frame.iter().copied().cycle().take(frame_len * BURST).collect();
        let mut got = vec![0u8; burst.len()];
        let mut datagram = vec![0u8; 1500];
        let mut round = async || {
            // Client → peer: one write of 8 frames, one read (or a few) at the server.
            stream.write_all(&burst).await.unwrap();
            for _ in 0..BURST {
                let n = recv_yielding(&peer, &mut datagram).await;
                assert_eq!(&datagram[..n], &payload[..]);
            }
            // Peer → client: 8 datagrams through the relay task and the stream queue.
            for _ in 0..BURST {
                peer.send_to(&payload, relayed).unwrap();
            }
            tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut got)).await.unwrap().unwrap();
            assert_eq!(got, burst);
        };
        for _ in 0..WARM_UP {
            round().await;
        }
        let region = Region::new(GLOBAL);
        for _ in 0..ROUNDS {
            round().await;
        }
        let change = region.change();
        assert_eq!(
            (change.allocations, change.reallocations),
            (0, 0),
            "{ROUNDS} rounds of {BURST} frames each way over TCP allocated: {change:?}"
        );
        let s = fixture.stats();
        assert_eq!(s.relayed_to_client, ((ROUNDS + WARM_UP) * BURST) as u64);
    });
}
