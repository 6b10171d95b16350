//! A custom transport over a TURN relay: allocate a relayed address with [`TurnClient`], bind a
//! channel to a peer, and exchange datagrams with it through the relay (RFC 8656 §12).
//!
//! ```text
//! cargo run --example relay_echo                       # everything in process, on 127.0.0.1
//! cargo run --example relay_echo -- --server 192.0.2.1:3478 --user 1700000000:alice --password …
//! ```
//!
//! Without `--server` the example starts switchback in process on a loopback port (REST credentials
//! minted from a shared secret, loopback peers allowed since everything here is on 127.0.0.1). With
//! `--server` it talks to that server; the server must then be able to reach the echo peer, which
//! listens on the local address this machine uses to reach the server (a server that refuses
//! loopback or private peers answers 403, which the example reports).
//!
//! What happens, step by step:
//! 1. a UDP echo peer starts: it sends every datagram back to where it came from;
//! 2. the client allocates a relayed address on the server (the 401 / nonce dance is inside);
//! 3. it binds a channel to the peer, which also installs a permission for the peer's IP;
//! 4. each message goes client → server (ChannelData) → relay socket → peer, and back the same way;
//!    the peer sees the *relayed* address as the sender, never the client's own;
//! 5. the client deletes the allocation (Refresh with LIFETIME 0).

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use switchback::auth::{AuthConfig, Authenticator, RestCredentials, Secret};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::config::Config;
use switchback::io::{self, Running, UdpRelay};
use switchback::server::{ServerOptions, Transport};
use tokio::net::UdpSocket;

/// How many messages to echo.
const MESSAGES: usize = 5;
/// How long to wait for one echo.
const ECHO_TIMEOUT: Duration = Duration::from_secs(2);

/// Where to relay through, from the command line.
struct Args {
    /// `--server host:port`; `None`: start one in process.
    server: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

impl Args {
    fn parse() -> Result<Args, Box<dyn Error>> {
        let mut args = Args { server: None, user: None, password: None };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--server" => args.server = Some(value()?),
                "--user" => args.user = Some(value()?),
                "--password" => args.password = Some(value()?),
                "-h" | "--help" => {
                    println!("usage: relay_echo [--server HOST:PORT --user NAME --password PASSWORD]");
                    std::process::exit(0);
                }
                other => return Err(format!("unknown argument {other} (try --help)").into()),
            }
        }
        if args.server.is_some() && (args.user.is_none() || args.password.is_none()) {
            return Err("--server needs --user and --password".into());
        }
        Ok(args)
    }
}

/// Starts switchback on 127.0.0.1 (OS-chosen port) with a REST secret, and mints credentials.
async fn in_process_server() -> Result<(Running, SocketAddr, Credentials), Box<dyn Error>> {
    let rest = RestCredentials::new(vec![Secret::new("example-shared-secret")]);
    let mut auth = AuthConfig::new("example.org");
    auth.rest = Some(rest.clone());
    let mut nonce_key = [0u8; 32];
    getrandom::fill(&mut nonce_key)?;
    let options = ServerOptions::default().with(|o| o.allow_loopback_peers = true);
    let server = UdpRelay::server(options, Some(Authenticator::new(auth, nonce_key)));
    let config = Config { listening_port: 0, ..Config::default() };
    let running = io::bind(&config, server).await?;
    let addr = running.local_addr(Transport::Udp).ok_or("no UDP listener")?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let (username, password) = rest.mint("example", 600, now).ok_or("no secret to mint with")?;
    println!("started switchback on udp {addr}; REST username {username}");
    Ok((running, addr, Credentials::new(username, password)))
}

/// A UDP echo peer on `ip`, port chosen by the OS.
async fn echo_peer(ip: std::net::IpAddr) -> Result<SocketAddr, Box<dyn Error>> {
    let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
    let addr = socket.local_addr()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            println!("  peer: {n} bytes from {from}, echoing");
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    Ok(addr)
}

/// The local IP this machine uses to reach `server` (no packet is sent).
fn local_ip_towards(server: SocketAddr) -> Result<std::net::IpAddr, Box<dyn Error>> {
    let probe = std::net::UdpSocket::bind(SocketAddr::new(
        if server.is_ipv4() { [0, 0, 0, 0].into() } else { [0u16; 8].into() },
        0,
    ))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse()?;
    let (running, server, credentials) = match args.server {
        Some(name) => {
            let server =
                tokio::net::lookup_host(name.as_str()).await?.next().ok_or(format!("cannot resolve {name}"))?;
            let creds = Credentials::new(args.user.unwrap_or_default(), args.password.unwrap_or_default());
            (None, server, creds)
        }
        None => {
            let (running, server, creds) = in_process_server().await?;
            (Some(running), server, creds)
        }
    };

    let peer = echo_peer(local_ip_towards(server)?).await?;
    println!("echo peer listening on {peer}");

    let client = TurnClient::allocate(server, credentials).await?;
    println!(
        "allocated: relayed address {}, our address as the server sees it {}, lifetime {} s",
        client.relayed_addr(),
        client.mapped_addr(),
        client.lifetime()
    );

    let channel = client.bind_channel(peer).await?;
    println!("bound channel {channel:#06x} to {peer}");

    let mut buf = [0u8; 1500];
    for i in 0..MESSAGES {
        let message = format!("hello through the relay #{i}");
        let sent = Instant::now();
        client.send_to(message.as_bytes(), peer).await?;
        let (n, from) = tokio::time::timeout(ECHO_TIMEOUT, client.recv_from(&mut buf))
            .await
            .map_err(|_| format!("no echo of message {i} within {ECHO_TIMEOUT:?}"))??;
        let echo = String::from_utf8_lossy(&buf[..n]);
        if echo != message || from != peer {
            return Err(format!("unexpected echo {echo:?} from {from}").into());
        }
        println!("client: {echo:?} came back from {from} in {:?}", sent.elapsed());
    }

    client.close().await?;
    println!("allocation deleted");
    if let Some(running) = running {
        running.shutdown().await;
    }
    Ok(())
}
