//! quinn's `AsyncUdpSocket` over a relayed socket (issue #18 §4, `client/quic.rs`), below quinn:
//! a GSO transmit reaches the peer as its separate datagrams from the relayed address and their
//! echoes come back in one `poll_recv` with the peer as source; a stopped server ends a waiting
//! `poll_recv` with an error instead of leaving the endpoint waiting forever. The QUIC handshake and
//! streams through two allocations run in `tests/examples.rs` (examples/quic_over_turn.rs).

use std::io::IoSliceMut;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{RECV_TIMEOUT, TURN_USER, TurnFixture, bounded, udp_echo_peer};
use switchback::client::quic::QuicSocket;
use switchback::client::quic::quinn::AsyncUdpSocket;
use switchback::client::quic::quinn::udp::{RecvMeta, Transmit};
use switchback::client::turn::{ClientOptions, Credentials, TurnClient};
use switchback::server::Transport;

async fn quic_socket(fixture: &TurnFixture, options: ClientOptions) -> Arc<QuicSocket> {
    let client =
        TurnClient::allocate_with(fixture.addr(Transport::Udp), Credentials::new(TURN_USER.0, TURN_USER.1), options)
            .await
            .expect("allocate");
    Arc::new(QuicSocket::new(client.into_socket()))
}

/// Sends `transmit`, waiting on the socket's poller while it says `WouldBlock`.
async fn send(socket: &Arc<QuicSocket>, transmit: &Transmit<'_>) {
    let mut poller = Arc::clone(socket).create_io_poller();
    loop {
        match socket.try_send(transmit) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx)).await.expect("writable");
            }
            Err(e) => panic!("try_send: {e}"),
        }
    }
}

/// One `poll_recv` into `bufs`, waited for; the datagrams' (meta, bytes).
async fn recv(socket: &QuicSocket, slots: usize) -> std::io::Result<Vec<(RecvMeta, Vec<u8>)>> {
    let mut storage = vec![[0u8; 1500]; slots];
    let mut meta = vec![RecvMeta::default(); slots];
    let n = {
        let mut bufs: Vec<IoSliceMut<'_>> = storage.iter_mut().map(|b| IoSliceMut::new(&mut b[..])).collect();
        std::future::poll_fn(|cx| socket.poll_recv(cx, &mut bufs, &mut meta)).await?
    };
    Ok(meta.iter().zip(&storage).take(n).map(|(m, b)| (*m, b[..m.len].to_vec())).collect())
}

#[tokio::test]
async fn a_gso_transmit_goes_as_datagrams_and_the_echoes_come_back_from_the_peer() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let (peer, _echo) = udp_echo_peer().await;
        let socket = quic_socket(&fixture, ClientOptions::default()).await;
        assert_eq!(socket.local_addr().unwrap(), socket.relayed().relayed_addr(), "peers see the relayed address");
        // Three segments of 4 bytes and a short last one; the first send installs the permission.
        let contents = b"aaaabbbbccccdd";
        let transmit = Transmit { destination: peer, ecn: None, contents, segment_size: Some(4), src_ip: None };
        send(&socket, &transmit).await;
        let mut echoed = Vec::new();
        while echoed.len() < 4 {
            let got =
                tokio::time::timeout(RECV_TIMEOUT, recv(&socket, 8)).await.expect("echoes in time").expect("recv");
            for (meta, data) in got {
                assert_eq!((meta.addr, meta.stride, meta.len), (peer, data.len(), data.len()));
                echoed.push(data);
            }
        }
        echoed.sort();
        assert_eq!(echoed, vec![b"aaaa".to_vec(), b"bbbb".to_vec(), b"cccc".to_vec(), b"dd".to_vec()]);
        // Once the permission is in, a datagram goes on the spot and comes back the same way.
        send(&socket, &Transmit { destination: peer, ecn: None, contents: b"again", segment_size: None, src_ip: None })
            .await;
        let got = tokio::time::timeout(RECV_TIMEOUT, recv(&socket, 1)).await.expect("in time").expect("recv");
        assert_eq!(got.into_iter().map(|(m, d)| (m.addr, d)).collect::<Vec<_>>(), vec![(peer, b"again".to_vec())]);
    })
    .await;
}

#[tokio::test]
async fn a_stopped_server_ends_a_waiting_poll_recv() {
    bounded(async {
        let fixture = TurnFixture::loopback().await;
        let options = ClientOptions::default().with(|o| {
            o.refresh_interval = Some(Duration::from_millis(500));
            o.request_timeout = Duration::from_secs(1);
        });
        let socket = quic_socket(&fixture, options).await;
        let waiting = tokio::spawn({
            let socket = Arc::clone(&socket);
            async move { recv(&socket, 4).await }
        });
        // Nothing comes; the server goes: ICMP port unreachable, then the Refresh tells.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "poll_recv returned with nothing to receive");
        drop(fixture);
        let outcome = tokio::time::timeout(Duration::from_secs(8), waiting)
            .await
            .expect("poll_recv returns once the allocation is lost")
            .expect("task");
        let err = outcome.expect_err("an error, not data");
        assert_eq!(err.kind(), std::io::ErrorKind::NotConnected, "{err}");
        // Sending fails too now.
        let transmit = Transmit {
            destination: "127.0.0.1:9".parse().unwrap(),
            ecn: None,
            contents: b"x",
            segment_size: None,
            src_ip: None,
        };
        let mut failed = false;
        for _ in 0..100 {
            match socket.try_send(&transmit) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    failed = true;
                    break;
                }
                // The queue's task may not have seen the loss yet.
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        assert!(failed, "try_send keeps taking datagrams after the allocation is lost");
    })
    .await;
}
