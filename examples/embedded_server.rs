//! An embedded TURN server (issue #18): `Relay::builder()`, users from your own store through the
//! credential hook (a `HashMap` standing in for a database; looked up off the packet path, answers
//! cached), and an event sink printing what each allocation relayed when it ends.
//!
//! ```text
//! cargo run --example embedded_server
//! ```
//!
//! It starts on a loopback port, prints its TURN URL, relays one datagram from an in-process
//! client to a peer, prints the usage and exits. docs/embedding.md says more.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use switchback::Relay;
use switchback::auth::StaticCredential;
use switchback::auth::hook::{CachedCredentials, Found, LookupFn};
use switchback::client::turn::{Credentials, TurnClient};
use switchback::server::{Event, EventSink};

/// Prints what each allocation relayed when it ends (where a billing hook would go).
struct PrintUsage;

impl EventSink for PrintUsage {
    fn event(&self, event: &Event<'_>) {
        if let Event::Deleted { session, usage, .. } = event {
            println!(
                "usage: {} sent {} bytes, received {}",
                session.username, usage.to_peer_bytes, usage.to_client_bytes
            );
        }
    }
}

/// Your user store: ann's password (a `HashMap` standing in for a database query). The lookup runs
/// off the packet path; answers are cached five minutes, for at most 10,000 names.
fn user_store() -> CachedCredentials {
    let users = Arc::new(HashMap::from([("ann".to_owned(), "s3cret".to_owned())]));
    let lookup: LookupFn = Arc::new(move |name: String| {
        let found =
            users.get(&name).map_or(Found::NotFound, |pw| Found::Credential(StaticCredential::Password(pw.clone())));
        Box::pin(async move { found })
    });
    CachedCredentials::new(lookup, 300, 10_000)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let relay = Relay::builder()
        .listen("127.0.0.1:0".parse()?)
        .allow_loopback_peers(true) // the peer below is on 127.0.0.1 too
        .credential_hook(user_store())
        .events(Arc::new(PrintUsage))
        .spawn()
        .await?;
    println!("TURN server at {}", relay.turn_urls().join(" "));

    // A client of yours relays a datagram to a peer through it.
    let client = TurnClient::allocate(relay.local_addrs()[0].addr, Credentials::new("ann", "s3cret")).await?;
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    client.create_permission(peer.local_addr()?).await?;
    client.send_to(b"hello", peer.local_addr()?).await?;
    let n = peer.recv_from(&mut [0u8; 64]).await?.0;
    println!("relayed {n} bytes from {} to {}", client.relayed_addr(), peer.local_addr()?);
    client.close().await?;
    relay.shutdown().await;
    Ok(())
}
