//! The relay pollers (`io/relay/poller.rs`): one epoll set per worker serves every UDP relay
//! socket, and single answers to UDP clients leave together in `sendmmsg` batches. A burst that
//! makes more relay sockets ready at once than one `epoll_wait` returns (256), and more answers in a
//! pass than one `sendmmsg` carries (32), still brings each client its own datagram, once.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use switchback::client::turn::{ClientOptions, Credentials, TurnClient};

/// More than a poller's events per `epoll_wait` (256).
const CLIENTS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_to_300_relayed_addresses_reaches_each_client_once() {
    tokio::time::timeout(Duration::from_secs(60), async {
        // One worker: one poller holds every relay socket, so one pass sees the whole burst.
        let (server, running, addr, rest) = crate::support::fixture::rest_udp_server(1).await;

        let peer = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let (user, pass) = rest.mint(&format!("u{i}"), 3600, unix).unwrap();
            let options = ClientOptions::default().with(|o| o.bind = Some("127.0.0.1:0".parse().unwrap()));
            let client = TurnClient::allocate_with(addr, Credentials::new(user, pass), options).await.unwrap();
            client.create_permission(peer_addr).await.unwrap();
            clients.push(client);
        }
        let relayed: HashSet<SocketAddr> = clients.iter().map(|c| c.relayed_addr()).collect();
        assert_eq!(relayed.len(), CLIENTS, "a relayed address each");

        // The burst: one datagram to every relayed address, back to back, before any is read.
        for (i, client) in clients.iter().enumerate() {
            peer.send_to(format!("to {i}").as_bytes(), client.relayed_addr()).unwrap();
        }
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 100];
            let (n, from) = tokio::time::timeout(Duration::from_secs(10), client.recv_from(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("client {i} never got its datagram"))
                .unwrap();
            assert_eq!((&buf[..n], from), (format!("to {i}").as_bytes(), peer_addr), "client {i}");
        }
        // Once: nothing else waits for any of them.
        for (i, client) in clients.iter().enumerate() {
            let mut buf = [0u8; 100];
            let extra = tokio::time::timeout(Duration::from_millis(5), client.recv_from(&mut buf)).await;
            assert!(extra.is_err(), "client {i} got a second datagram: {extra:?}");
        }
        let stats = server.stats().snapshot();
        assert_eq!(stats.relayed_to_client, CLIENTS as u64, "{stats:?}");
        assert_eq!(server.driver().client_send_failures.load(std::sync::atomic::Ordering::Relaxed), 0);
        running.shutdown().await;
    })
    .await
    .expect("the test did not finish in time");
}
