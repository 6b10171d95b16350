//! The relayed socket (issue #18 §4, `client/turn/socket.rs`) and the addresses people have (§5,
//! `client/url.rs`): a first send installs the permission itself, concurrent first sends share one
//! CreatePermission, a channel follows for a flow, a peer past the cap is refused before anything
//! reaches the server; an allocation on a UDP socket the application shares; a `turn:` URL with a
//! host name.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::{RECV_TIMEOUT, TURN_USER, TurnFixture, bounded, eventually, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{ClientOptions, Credentials, RelayedSocket, SocketOptions, TurnClient};
use switchback::client::url::IceUrl;
use switchback::server::{Event, EventSink, Transport};
use tokio::net::UdpSocket;

/// A datagram and its source.
type Datagram = (Vec<u8>, SocketAddr);

/// Counts the CreatePermissions and ChannelBinds the server took.
#[derive(Default)]
struct Requests {
    permissions: AtomicUsize,
    channels: AtomicUsize,
}

impl EventSink for Requests {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Permission { .. } => self.permissions.fetch_add(1, Ordering::SeqCst),
            Event::Channel { .. } => self.channels.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
}

async fn fixture() -> (TurnFixture, Arc<Requests>) {
    let fixture = TurnFixture::loopback().await;
    let requests = Arc::new(Requests::default());
    assert!(fixture.server.set_events(requests.clone()));
    (fixture, requests)
}

fn creds() -> Credentials {
    Credentials::new(TURN_USER.0, TURN_USER.1)
}

async fn socket(fixture: &TurnFixture, options: SocketOptions) -> RelayedSocket {
    let client = fixture.allocate(Transport::Udp, creds()).await.expect("allocate");
    RelayedSocket::new(client, options)
}

/// Receives one datagram on `socket` within [`RECV_TIMEOUT`].
async fn recv(socket: &RelayedSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(RECV_TIMEOUT, socket.recv_from(&mut buf))
        .await
        .expect("a datagram in time")
        .expect("recv_from");
    (buf[..n].to_vec(), from)
}

#[tokio::test]
async fn a_first_send_installs_the_permission_and_a_flow_gets_a_channel() {
    bounded(async {
        let (fixture, requests) = fixture().await;
        let (peer, _echo) = udp_echo_peer().await;
        let socket = socket(&fixture, SocketOptions::default().with_channel_after(Some(3))).await;
        // No create_permission: the send does it, and the peer's echo comes back.
        assert_eq!(socket.send_to(b"first", peer).await.expect("send"), 5);
        assert_eq!(recv(&socket).await, (b"first".to_vec(), peer));
        assert_eq!(requests.permissions.load(Ordering::SeqCst), 1);
        assert!(!socket.has_channel(peer), "a channel after the third datagram, not the first");
        for i in 0..3u8 {
            socket.send_to(&[i], peer).await.expect("send");
            assert_eq!(recv(&socket).await, (vec![i], peer));
        }
        eventually("the channel is bound", || socket.has_channel(peer)).await;
        assert_eq!(requests.channels.load(Ordering::SeqCst), 1);
        // Data keeps flowing on the channel, both ways.
        socket.send_to(b"on the channel", peer).await.expect("send");
        assert_eq!(recv(&socket).await, (b"on the channel".to_vec(), peer));
        assert_eq!(requests.permissions.load(Ordering::SeqCst), 1, "no second CreatePermission");
        assert!(socket.client().peer_failures().is_empty());
    })
    .await;
}

#[tokio::test]
async fn concurrent_first_sends_share_one_create_permission() {
    bounded(async {
        let (fixture, requests) = fixture().await;
        let mut peers = Vec::new();
        for _ in 0..8 {
            peers.push(udp_echo_peer().await);
        }
        let socket = socket(&fixture, SocketOptions::default().with_channel_after(None)).await;
        // Eight first sends at once, to eight ports of one IP: one permission (RFC 8656 §9.1).
        let sends: Vec<_> = peers
            .iter()
            .map(|(peer, _)| {
                let (socket, peer) = (socket.clone(), *peer);
                tokio::spawn(async move { socket.send_to(b"hi", peer).await })
            })
            .collect();
        for send in sends {
            send.await.expect("task").expect("send");
        }
        let mut echoed: Vec<SocketAddr> = Vec::new();
        for _ in 0..peers.len() {
            echoed.push(recv(&socket).await.1);
        }
        echoed.sort();
        let mut expected: Vec<SocketAddr> = peers.iter().map(|(p, _)| *p).collect();
        expected.sort();
        assert_eq!(echoed, expected, "every peer got its datagram");
        assert_eq!(requests.permissions.load(Ordering::SeqCst), 1, "one CreatePermission for eight first sends");
        assert_eq!(requests.channels.load(Ordering::SeqCst), 0);
    })
    .await;
}

#[tokio::test]
async fn a_peer_past_the_cap_is_refused_before_the_server_hears_of_it() {
    bounded(async {
        let (fixture, requests) = fixture().await;
        let (a, _ea) = udp_echo_peer().await;
        let (b, _eb) = udp_echo_peer().await;
        let (c, _ec) = udp_echo_peer().await;
        let socket = socket(&fixture, SocketOptions::default().with_max_peers(2).with_channel_after(None)).await;
        socket.send_to(b"a", a).await.expect("first peer");
        socket.permit(b).await.expect("second peer");
        let refused = socket.send_to(b"c", c).await.expect_err("a third peer");
        assert!(matches!(refused, ClientError::TooManyPeers { max: 2 }), "{refused:?}");
        assert!(refused.to_string().contains("most peers (2)"), "{refused}");
        assert!(socket.permit(c).await.is_err());
        let mut peers = socket.peers();
        peers.sort();
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(peers, expected);
        // The two it has still work.
        assert_eq!(recv(&socket).await, (b"a".to_vec(), a));
        socket.send_to(b"b", b).await.expect("second peer");
        assert_eq!(recv(&socket).await, (b"b".to_vec(), b));
        assert_eq!(requests.permissions.load(Ordering::SeqCst), 1, "one IP, one permission, none for c");
    })
    .await;
}

#[tokio::test]
async fn an_allocation_on_a_socket_the_application_shares() {
    bounded(async {
        let (fixture, _requests) = fixture().await;
        let (peer, _echo) = udp_echo_peer().await;
        let shared = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let others: Arc<Mutex<Vec<Datagram>>> = Arc::default();
        let sink = others.clone();
        let client = TurnClient::allocate_on(
            shared.clone(),
            fixture.udp,
            creds(),
            ClientOptions::default(),
            Some(Arc::new(move |data: &[u8], from| sink.lock().unwrap().push((data.to_vec(), from)))),
        )
        .await
        .expect("allocate on the shared socket");
        assert_eq!(client.local_addr().expect("local"), shared.local_addr().expect("local"));
        // The application talks to someone else on the same socket, and hears back through the
        // callback; TURN goes on beside it.
        let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        shared.send_to(b"app to stranger", stranger.local_addr().unwrap()).await.expect("send");
        let mut buf = [0u8; 64];
        let (n, from) = stranger.recv_from(&mut buf).await.expect("recv");
        assert_eq!((&buf[..n], from), (&b"app to stranger"[..], shared.local_addr().unwrap()));
        stranger.send_to(b"stranger to app", from).await.expect("send");
        let socket = client.into_socket();
        socket.send_to(b"through the relay", peer).await.expect("send");
        assert_eq!(recv(&socket).await, (b"through the relay".to_vec(), peer));
        let stranger_addr = stranger.local_addr().unwrap();
        eventually("the stranger's datagram reaches the callback", || {
            others.lock().unwrap().iter().any(|(d, f)| d == b"stranger to app" && *f == stranger_addr)
        })
        .await;
        assert!(
            others.lock().unwrap().iter().all(|(_, f)| *f != fixture.udp),
            "nothing from the server reaches the callback"
        );
    })
    .await;
}

#[tokio::test]
async fn a_turn_url_with_a_host_name() {
    bounded(async {
        let (fixture, _requests) = fixture().await;
        let (peer, _echo) = udp_echo_peer().await;
        // `localhost` may resolve to ::1 first, where nothing listens: the next address answers.
        let url: IceUrl = format!("turn:localhost:{}?transport=udp", fixture.udp.port()).parse().expect("url");
        let client = TurnClient::allocate_url(&url, creds(), ClientOptions::default()).await.expect("allocate");
        assert_eq!(client.relayed_addr().ip(), fixture.udp.ip());
        let socket = client.into_socket();
        socket.send_to(b"by name", peer).await.expect("send");
        assert_eq!(recv(&socket).await, (b"by name".to_vec(), peer));
        // Over TCP, from the same URL with ?transport=tcp.
        let tcp = fixture.addr(Transport::Tcp);
        let url: IceUrl = format!("turn:127.0.0.1:{}?transport=tcp", tcp.port()).parse().expect("url");
        let client = TurnClient::allocate_url(&url, creds(), ClientOptions::default()).await.expect("over TCP");
        assert_eq!(client.local_addr().expect("local").ip(), tcp.ip());
        client.close().await.expect("close");
    })
    .await;
}
