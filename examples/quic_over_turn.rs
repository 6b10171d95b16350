//! QUIC over a TURN relay — the custom-transport story in one file (issue #18).
//!
//! ```text
//! cargo run --example quic_over_turn
//! ```
//!
//! 1. switchback starts in process on 127.0.0.1 (a port the OS picks), with one static user and
//!    loopback peers allowed (everything here is on 127.0.0.1);
//! 2. two TURN clients allocate a relayed address each, A and B;
//! 3. a quinn server endpoint runs over A's relayed socket, a quinn client endpoint over B's
//!    (`client::quic`: quinn's `AsyncUdpSocket` over `RelayedSocket`); each side permits the
//!    other's relayed address (RFC 8656 §9), so A takes B's first datagram;
//! 4. the client connects to A's *relayed* address, opens a bidirectional stream and sends
//!    `hello over TURN`; the server echoes it back; every QUIC datagram went client → server →
//!    relay socket → peer and back;
//! 5. the client prints `quic echo: hello over TURN`, both sides close, and the relay stops.
//!
//! The whole run is bounded (20 s); it exits non-zero on any failure.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::client::quic::{self, quinn};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::io::{self, ListenPlan, UdpRelay};
use switchback::server::ServerOptions;

use quinn::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const MESSAGE: &[u8] = b"hello over TURN";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tokio::time::timeout(Duration::from_secs(20), run()).await.map_err(|_| "timed out after 20 s")?
}

async fn run() -> Result<(), Box<dyn Error>> {
    // 1. An embedded switchback with one static user.
    let mut auth = AuthConfig::new("example.org");
    auth.users.insert("ann".into(), StaticCredential::Password("s3cret".into()));
    let mut nonce_key = [0u8; 32];
    getrandom::fill(&mut nonce_key)?;
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let server = UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
    let running = io::bind(ListenPlan::new(&["127.0.0.1".parse()?], 0), server).await?;
    let turn = running.local_addrs()[0].addr;

    // 2. Two allocations.
    let creds = Credentials::new("ann", "s3cret");
    let a = TurnClient::allocate(turn, creds.clone()).await?.into_socket();
    let b = TurnClient::allocate(turn, creds).await?.into_socket();
    let (a_addr, b_addr) = (a.relayed_addr(), b.relayed_addr());
    println!("relayed addresses: server {a_addr}, client {b_addr}");
    a.permit(b_addr).await?;
    b.permit(a_addr).await?;

    // 3. A self-signed certificate for the QUIC server; the client trusts just that one.
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
    let cert: CertificateDer<'static> = cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    let server_config = quinn::ServerConfig::with_single_cert(vec![cert.clone()], key)?;
    let mut roots = quinn::rustls::RootCertStore::empty();
    roots.add(cert)?;
    let client_config = quinn::ClientConfig::with_root_certificates(Arc::new(roots))?;

    let server = quic::endpoint(a, Some(server_config))?;
    let mut client = quic::endpoint(b, None)?;
    client.set_default_client_config(client_config);

    // The echo server: one connection, one stream.
    let echo = tokio::spawn(async move {
        let incoming = server.accept().await.ok_or("the server endpoint closed")?;
        let connection = incoming.await?;
        let (mut send, mut recv) = connection.accept_bi().await?;
        let data = recv.read_to_end(1024).await?;
        send.write_all(&data).await?;
        send.finish()?;
        // Wait for the client to close the connection once it has read the echo.
        connection.closed().await;
        server.wait_idle().await;
        Ok::<_, Box<dyn Error + Send + Sync>>(())
    });

    // 4. The client, through B's relayed socket to A's relayed address.
    let connection = client.connect(a_addr, "localhost")?.await?;
    let (mut send, mut recv) = connection.open_bi().await?;
    send.write_all(MESSAGE).await?;
    send.finish()?;
    let echoed = recv.read_to_end(1024).await?;

    // 5. Done: print, close both sides.
    println!("quic echo: {}", String::from_utf8_lossy(&echoed));
    connection.close(0u32.into(), b"done");
    client.wait_idle().await;
    echo.await?.map_err(|e| e.to_string())?;
    running.shutdown().await;
    if echoed != MESSAGE {
        return Err("the echo differs from what was sent".into());
    }
    Ok(())
}
