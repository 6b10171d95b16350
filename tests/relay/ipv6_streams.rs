//! Our TURN client over UDP, TCP and TLS to a server listening on ::1 (RFC 6156): the client's leg
//! is IPv6, the relayed address IPv6 when asked for (REQUESTED-ADDRESS-FAMILY), and data reaches an
//! IPv6 echo peer through it.
#![cfg(feature = "runtime")]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::client::TlsClient;
use switchback::client::turn::{ClientOptions, Credentials, TurnClient, TurnTransport as Leg};
use switchback::config::Config;
use switchback::io::{self, Limits, ReloadableTls, TlsIdentity, UdpRelay};
use switchback::proto::stun::AddressFamily;
use switchback::server::Transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_relay_to_an_ipv6_peer_over_udp_tcp_and_tls() {
    if !crate::support::tools::require_ipv6_loopback() {
        return;
    }
    let config = Config {
        listening_ip: vec!["::1".parse().unwrap()],
        listening_port: 0,
        tls_listening_port: Some(0),
        allow_loopback_peers: true,
        ..Config::default()
    };
    let mut auth = AuthConfig::new("test.realm");
    auth.users.insert("alice".into(), StaticCredential::Password("pw".into()));
    let server = UdpRelay::server(config.server_options(), Some(Authenticator::new(auth, [5; 32])));
    let identity = TlsIdentity::self_signed(&["::1"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(identity.end_entity().clone()).unwrap();
    let running = io::bind_with_tls(&config, server.clone(), Limits::default(), Some(ReloadableTls::new(identity)))
        .await
        .unwrap();

    let peer = tokio::net::UdpSocket::bind("[::1]:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = peer.recv_from(&mut buf).await {
            let _ = peer.send_to(&buf[..n], from).await;
        }
    });

    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let addr = running.local_addr(transport).unwrap();
        assert!(addr.is_ipv6());
        let leg = match transport {
            Transport::Udp => Leg::Udp,
            Transport::Tcp => Leg::Tcp,
            Transport::Tls => Leg::Tls(TlsClient::new("::1", roots.clone()).unwrap()),
        };
        let options = ClientOptions::default().with(|o| {
            o.transport = leg;
            o.family = Some(AddressFamily::V6);
        });
        let client = TurnClient::allocate_with(addr, Credentials::new("alice", "pw"), options).await.unwrap();
        assert_eq!(client.relayed_addr().ip(), "::1".parse::<IpAddr>().unwrap(), "{transport:?}");
        client.bind_channel(peer_addr).await.unwrap();
        for i in 0..10u8 {
            client.send_to(&[i; 48], peer_addr).await.unwrap();
            let mut buf = [0u8; 64];
            let (n, from): (usize, SocketAddr) =
                tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!((&buf[..n], from), (&[i; 48][..], peer_addr), "{transport:?}");
        }
        client.close().await.unwrap();
    }
    running.shutdown().await;
}
