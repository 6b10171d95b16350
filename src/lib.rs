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
//! * `daemon` (feature `http`) — a whole server from a `Config`: listeners, faces, reload, drain.
//!
//! Build with `default-features = false` to get only the protocol core (no tokio), as `fuzz/` does.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod alloc;
pub mod auth;
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

#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod testing;

#[cfg(all(test, feature = "cli"))]
mod layering_tests;
