//! switchback — a standards-compliant STUN/TURN relay server and client.
//!
//! The crate is layered so that the protocol never touches a socket:
//!
//! * [`proto`] — wire formats (STUN RFC 8489, ChannelData RFC 8656 §12, demultiplexing RFC 7983),
//!   zero-copy views over `&[u8]` and encoders into a caller's buffer;
//! * [`server`] — the sans-IO core: `handle(now, received, out)` decides what to answer;
//! * `io` (feature `runtime`) — the tokio drivers: UDP, TCP and TLS listeners that feed the core;
//! * `client` (feature `runtime`) — a small client used by the tests and by embedders;
//! * `config` (feature `runtime`) — the one configuration schema behind `turn.toml` and the flags;
//! * `http` (feature `http`) — the HTTP faces: token service, metrics and health, admin API;
//! * `daemon` (feature `http`) — a whole server from a `Config`: listeners, faces, reload, drain;
//!   `Relay`, its builder for embedders.
//!
//! Build with `default-features = false` to get only the protocol core (no tokio), as `fuzz/` does.
//!
//! What is public, for whom, what is stable and what is `#[doc(hidden)]`: docs/api.md in the repository.
//!
//! # Three ways to use it
//!
//! * **The daemon**: `switchback` with a `turn.toml` and flags (see the README). The binary is a
//!   thin user of the embedded server below (`Relay::from_config`).
//! * **An embedded server**: `Relay::builder()` (feature `http`) runs the
//!   daemon's machine in your tokio runtime — listeners, auth, limits, reload, drain, metrics —
//!   with your users and your event handler; the `RelayHandle` it returns drains, reloads, shuts
//!   down and hands out the metrics routes to mount in your axum app. Below: users from your own
//!   store (a `HashMap` standing in for a database) through the credential hook, looked up off the
//!   packet path and cached; the relayed bytes of each ended allocation through an event sink.
//!   docs/embedding.md covers threading and the hooks. (Lower down, `io::bind` drives the
//!   [`server`] core alone, without the daemon's faces.)
//! * **A client**: `client::turn::TurnClient` (UDP, TCP, TLS; RFC 8016 moves; failures reported).
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use switchback::auth::StaticCredential;
//! use switchback::auth::hook::{CachedCredentials, Found, LookupFn};
//! use switchback::client::turn::{Credentials, TurnClient};
//! use switchback::server::{Event, EventSink};
//!
//! /// Counts the bytes of every allocation that ends (a billing hook, say).
//! #[derive(Default)]
//! struct Usage(AtomicU64);
//! impl EventSink for Usage {
//!     fn event(&self, event: &Event<'_>) {
//!         if let Event::Deleted { usage, .. } = event {
//!             self.0.fetch_add(usage.to_peer_bytes + usage.to_client_bytes, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let users: Arc<HashMap<String, String>> = Arc::new([("ann".to_owned(), "s3cret".to_owned())].into());
//! let lookup: LookupFn = Arc::new(move |name: String| {
//!     let users = users.clone();
//!     Box::pin(async move {
//!         users.get(&name).map_or(Found::NotFound, |pw| Found::Credential(StaticCredential::Password(pw.clone())))
//!     })
//! });
//! let usage = Arc::new(Usage::default());
//! let relay = switchback::Relay::builder()
//!     .listen("127.0.0.1:0".parse()?)
//!     .realm("example.org")
//!     .allow_loopback_peers(true)
//!     .credential_hook(CachedCredentials::new(lookup, 300, 10_000))
//!     .events(usage.clone())
//!     .spawn()
//!     .await?;
//!
//! // A client of yours relays a datagram to a peer.
//! let turn = relay.local_addrs()[0].addr;
//! let client = TurnClient::allocate(turn, Credentials::new("ann", "s3cret")).await?;
//! let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
//! client.create_permission(peer.local_addr()?).await?;
//! client.send_to(b"hello", peer.local_addr()?).await?;
//! let mut buf = [0u8; 64];
//! let (n, from) = peer.recv_from(&mut buf).await?;
//! assert_eq!((&buf[..n], from), (&b"hello"[..], client.relayed_addr()));
//! client.close().await?;
//! assert_eq!(usage.0.load(Ordering::Relaxed), 5, "the ended allocation's bytes reached the sink");
//! assert_eq!(relay.allocations(), 0);
//! relay.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alloc;
pub mod auth;
pub mod client_core;
pub mod policy;
pub mod proto;
pub mod random;
pub mod server;
pub mod time;

#[cfg(feature = "runtime")]
pub mod client;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "http")]
pub mod daemon;
#[cfg(feature = "http")]
pub mod fleet;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "runtime")]
pub mod io;
#[cfg(feature = "runtime")]
pub mod tls;

#[cfg(feature = "http")]
pub use daemon::{Relay, RelayBuilder, RelayHandle};

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod testing;

#[cfg(all(test, feature = "cli"))]
mod layering_tests;
