//! A game-style client: small state datagrams at a fixed tick to a peer through a TURN relay,
//! with the peer's echoes read back (issue #18).
//!
//! ```text
//! cargo run --example game_client
//! ```
//!
//! switchback starts in process on 127.0.0.1 with one static user (loopback peers allowed); a UDP
//! "game server" peer echoes every datagram. The client allocates, takes the allocation as a
//! `RelayedSocket` and sends one 16-byte state update (tick number, position) every 20 ms for 20
//! ticks: the first send installs the permission for the peer (RFC 8656 §9), a channel is bound
//! after the third (§12: 4-byte ChannelData headers from then on instead of 36-byte Send
//! indications). It prints how many ticks came back, `20/20 ticks echoed`, and whether the
//! channel was in use. Bounded: 20 ticks, 2 s at most for the last echoes.

use std::error::Error;
use std::time::Duration;

use switchback::auth::{AuthConfig, Authenticator, StaticCredential};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::io::{self, ListenPlan, UdpRelay};
use switchback::server::ServerOptions;
use tokio::net::UdpSocket;

const TICKS: u32 = 20;
const TICK: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // The relay.
    let mut auth = AuthConfig::new("example.org");
    auth.users.insert("player1".into(), StaticCredential::Password("hunter2".into()));
    let mut nonce_key = [0u8; 32];
    getrandom::fill(&mut nonce_key)?;
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let server = UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
    let running = io::bind(ListenPlan::new(&["127.0.0.1".parse()?], 0), server).await?;
    let turn = running.local_addrs()[0].addr;

    // The peer: echoes every datagram to where it came from (the client's relayed address).
    let peer = UdpSocket::bind("127.0.0.1:0").await?;
    let peer_addr = peer.local_addr()?;
    let echo = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = peer.recv_from(&mut buf).await {
            let _ = peer.send_to(&buf[..n], from).await;
        }
    });

    let client = TurnClient::allocate(turn, Credentials::new("player1", "hunter2")).await?;
    let socket = client.into_socket();
    println!("playing from {} to {peer_addr}", socket.relayed_addr());

    // Send a tick's state on the tick; read echoes as they come.
    let receiver = socket.clone();
    let reading = tokio::spawn(async move {
        let mut seen = [false; TICKS as usize];
        let mut buf = [0u8; 64];
        while let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(2), receiver.recv_from(&mut buf)).await {
            let tick = buf.get(..n).and_then(|b| b.get(..4)).and_then(|t| <[u8; 4]>::try_from(t).ok());
            if let Some(slot) = tick.and_then(|t| seen.get_mut(u32::from_be_bytes(t) as usize)) {
                *slot = true;
            }
            if seen.iter().all(|s| *s) {
                break;
            }
        }
        seen.iter().filter(|s| **s).count()
    });
    let mut interval = tokio::time::interval(TICK);
    for tick in 0..TICKS {
        interval.tick().await;
        let (x, y) = (tick as f32 * 1.5, 100.0 - tick as f32);
        let mut state = [0u8; 16];
        state[..4].copy_from_slice(&tick.to_be_bytes());
        state[4..8].copy_from_slice(&x.to_be_bytes());
        state[8..12].copy_from_slice(&y.to_be_bytes());
        socket.send_to(&state, peer_addr).await?;
    }
    let echoed = reading.await?;
    println!("{echoed}/{TICKS} ticks echoed");
    println!("channel to the peer: {}", if socket.has_channel(peer_addr) { "bound" } else { "not bound" });
    echo.abort();
    running.shutdown().await;
    if echoed as u32 != TICKS {
        return Err(format!("only {echoed} of {TICKS} ticks came back").into());
    }
    Ok(())
}
