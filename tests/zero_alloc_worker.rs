//! One worker-loop step allocates nothing (issue #7): 10,000 ChannelData messages client → peer
//! through [`UdpWorker::step`] (recvmmsg, the core, the relay socket's `sendto`), and 10,000 peer
//! datagrams → client through the relay socket's task, on a current-thread runtime over loopback,
//! after a warm-up, under a counting global allocator. Every other round both ends send with
//! ECT(0), so the ECN copying of RFC 8656 §14 (a `sendmsg` with IP_TOS each way) is measured too.
//!
//! One test in this binary, so no other test thread allocates while the region is measured.

use std::alloc::System;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::io::{UdpRelay, UdpWorker};
use switchback::proto::channel_data::ChannelData;
use switchback::proto::stun::*;
use switchback::server::ServerOptions;
use tokio::net::UdpSocket;

#[path = "support/mod.rs"]
mod support;

use support::Signer;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PACKETS: usize = 10_000;
const WARM_UP: usize = 1_000;

/// A request signed as alice/pw in realm `r` once `nonce` is known.
fn signed(method: Method, tid: u8, nonce: Option<&str>, body: impl FnOnce(&mut MessageWriter<'_>)) -> Vec<u8> {
    support::signed(method, tid, nonce.map(|n| Signer::password("alice", "r", "pw", n)).as_ref(), body)
}

/// Sends `request` from `client`, turns the worker until the answer is there, returns it.
async fn transact(worker: &mut UdpWorker, client: &StdUdpSocket, request: &[u8]) -> Vec<u8> {
    client.send(request).unwrap();
    let mut buf = vec![0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert!(Instant::now() < deadline, "no answer");
        tokio::time::timeout(Duration::from_millis(50), worker.readable()).await.ok();
        worker.step();
        if let Ok(n) = client.recv(&mut buf) {
            buf.truncate(n);
            return buf;
        }
    }
}

/// Receives one datagram on the nonblocking `socket`, yielding to the runtime (so the relay task
/// runs) until it arrives; bounded.
async fn recv_yielding(socket: &StdUdpSocket, buf: &mut [u8]) -> usize {
    for _ in 0..1_000_000 {
        if let Ok(n) = socket.recv(buf) {
            return n;
        }
        tokio::task::yield_now().await;
    }
    panic!("nothing arrived at {:?}", socket.local_addr());
}

#[test]
fn a_worker_step_and_the_relay_task_allocate_nothing() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut auth = AuthConfig::new("r");
        auth.users.insert("alice".into(), StaticCredential::Password("pw".into()));
        let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
        let server = UdpRelay::server(options, Some(Authenticator::new(auth, [1; 32])));
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let local = socket.local_addr().unwrap();
        server.driver().add_listener(local, Arc::clone(&socket));
        let mut worker = UdpWorker::new(socket, local, server.clone()).unwrap();

        let client = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        client.connect(local).unwrap();
        client.set_nonblocking(true).unwrap();
        // Not 127.0.0.1: the server's own address is no peer outside the relay port range.
        let peer = StdUdpSocket::bind("127.0.0.2:0").unwrap();
        peer.set_nonblocking(true).unwrap();
        let peer_addr = peer.local_addr().unwrap();

        // Control path: 401, Allocate, ChannelBind (which installs the permission).
        let udp = |w: &mut MessageWriter<'_>| w.add(&RequestedTransport::UDP).unwrap();
        let answer = transact(&mut worker, &client, &signed(Method::ALLOCATE, 1, None, udp)).await;
        let nonce = Message::parse(&answer).unwrap().get::<Nonce>().unwrap().0.to_string();
        let answer = transact(&mut worker, &client, &signed(Method::ALLOCATE, 2, Some(&nonce), udp)).await;
        let m = Message::parse(&answer).unwrap();
        assert_eq!(m.message_type().class, Class::SuccessResponse);
        let relayed: SocketAddr = m.get::<XorRelayedAddress>().unwrap().0;
        let bind = signed(Method::CHANNEL_BIND, 3, Some(&nonce), |w| {
            w.add(&ChannelNumber(0x4000)).unwrap();
            w.add(&XorPeerAddress(peer_addr)).unwrap();
        });
        let answer = transact(&mut worker, &client, &bind).await;
        assert_eq!(Message::parse(&answer).unwrap().message_type().class, Class::SuccessResponse);

        let payload = [0xABu8; 100];
        let mut cd = vec![0u8; 200];
        let cd_len = ChannelData { channel: 0x4000, data: &payload }.encode(false, &mut cd).unwrap();
        let cd = cd[..cd_len].to_vec();
        let mut buf = vec![0u8; 1500];
        let mut i = 0u32;
        let mut round = async |buf: &mut [u8]| {
            // IP_TOS on both ends: ECT(0) or Not-ECT, by turns.
            i += 1;
            let tos = if i.is_multiple_of(2) { 0b10 } else { 0 };
            rustix::net::sockopt::set_ip_tos(&client, tos).unwrap();
            rustix::net::sockopt::set_ip_tos(&peer, tos).unwrap();
            // Client → peer through one worker step.
            client.send(&cd).unwrap();
            let _ = worker.readable().await;
            assert!(worker.step());
            let n = recv_yielding(&peer, buf).await;
            assert_eq!(&buf[..n], &payload[..]);
            // Peer → client through the relay socket's task.
            peer.send_to(&payload, relayed).unwrap();
            let n = recv_yielding(&client, buf).await;
            assert_eq!(&buf[..n], &cd[..]);
        };
        for _ in 0..WARM_UP {
            round(&mut buf).await;
        }
        let region = Region::new(GLOBAL);
        for _ in 0..PACKETS {
            round(&mut buf).await;
        }
        let change = region.change();
        assert_eq!(
            (change.allocations, change.reallocations),
            (0, 0),
            "{PACKETS} round trips through the worker and the relay task allocated: {change:?}"
        );
        let s = server.stats().snapshot();
        assert_eq!(s.relayed_to_client, (PACKETS + WARM_UP) as u64);
    });
}
