//! `workers`: several SO_REUSEPORT UDP sockets on one listening address, all serving the one
//! `Server` (issue #7). Clients spread over them by the kernel's 4-tuple hash; each client's
//! allocation, channel and relayed data work whichever socket its datagrams land on.

use std::net::SocketAddr;
use std::time::Duration;

use switchback::client::turn::{ClientOptions, Credentials, TurnClient};
use tokio::net::UdpSocket;

const CLIENTS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_one_address_and_one_allocation_table() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let (server, running, addr, rest) = crate::support::fixture::rest_udp_server(3).await;
        assert_eq!(running.local_addrs().len(), 1, "one listening address, however many workers");
        assert_eq!(running.worker_stats().len(), 3, "a socket per worker");

        // An echo peer off 127.0.0.1 (the server's own address is no peer outside the relay range).
        let peer = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let peer_addr = peer.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            for _ in 0..CLIENTS {
                let (n, from) = peer.recv_from(&mut buf).await.unwrap();
                peer.send_to(&buf[..n], from).await.unwrap();
            }
        });

        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let (user, pass) = rest.mint(&format!("u{i}"), 3600, unix).unwrap();
            let options = ClientOptions::default().with(|o| o.bind = Some("127.0.0.1:0".parse().unwrap()));
            let client = TurnClient::allocate_with(addr, Credentials::new(user, pass), options).await.unwrap();
            client.bind_channel(peer_addr).await.unwrap();
            clients.push(client);
        }
        for (i, client) in clients.iter().enumerate() {
            let msg = format!("hello from {i}");
            client.send_to(msg.as_bytes(), peer_addr).await.unwrap();
            let mut buf = [0u8; 100];
            let (n, from): (usize, SocketAddr) =
                tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!((&buf[..n], from), (msg.as_bytes(), peer_addr));
        }
        echo.await.unwrap();
        assert_eq!(server.allocations().len(), CLIENTS);
        let per_worker = running.worker_stats();
        let total = running.udp_stats();
        assert_eq!(total.received, per_worker.iter().map(|w| w.received).sum::<u64>());
        // Per client at least: 401, Allocate, ChannelBind and one ChannelData.
        assert!(total.received >= (CLIENTS * 4) as u64, "{total:?}");
        assert!(total.batches > 0 && total.batches <= total.received, "{total:?}");
        running.shutdown().await;
    })
    .await
    .expect("the test did not finish in time");
}
