//! Helpers shared by the integration tests, one module per topic. Each test binary includes this
//! tree with `#[path = "../support/mod.rs"] mod support;` (the counting-allocator binaries, at the
//! top of `tests/`, with `#[path = "support/mod.rs"]`); everything is re-exported at the root, so a
//! test says `support::Daemon`, `support::eventually`, `support::tools::require`.
//!
//! - [`process`]: a child process killed on drop, running a command with a timeout, temp files.
//! - [`wait`]: `bounded` (a test under a timeout), `eventually` / `wait_until` (poll a condition
//!   until a deadline).
//! - [`tools`]: external tools and IPv6 loopback; `SKIP: …` without them, a failure under `CI=true`.
//! - [`stun`]: signed requests built by hand, reading a frame off a stream, the fixture's realm/users.
//! - [`sansio`]: a relay driver that binds nothing, for the sans-IO server.
//! - [`http`]: a minimal HTTP/1.1 client for the daemon's faces.
//! - [`daemon`] (`cli`): the `switchback` binary as a child, its banner and its log.
//! - [`fixture`] (`runtime`): an in-process TURN server, echo peers, a raw TURN client.
//! - [`coturn`], [`chromium`]: `turnutils_peer` / uclient totals, headless Chromium.
//! - [`rfc5769_vectors`]: the RFC 5769 test vectors.
//! - [`usage`] (`cli`): the usage writer on an in-process server, its records as JSON.
//! - [`redis_server`] (`fleet`): a `redis-server` of the test's own, on a free loopback port.
#![allow(dead_code, unused_imports)]

pub mod chromium;
pub mod coturn;
#[cfg(feature = "cli")]
pub mod daemon;
#[cfg(feature = "runtime")]
pub mod fixture;
pub mod http;
pub mod process;
#[cfg(feature = "fleet")]
pub mod redis_server;
pub mod rfc5769_vectors;
pub mod sansio;
pub mod stun;
pub mod tools;
#[cfg(feature = "cli")]
pub mod usage;
pub mod wait;

pub use chromium::*;
pub use coturn::*;
#[cfg(feature = "cli")]
pub use daemon::*;
#[cfg(feature = "runtime")]
pub use fixture::*;
pub use http::*;
pub use process::*;
#[cfg(feature = "fleet")]
pub use redis_server::*;
pub use sansio::*;
pub use stun::*;
#[cfg(feature = "cli")]
pub use usage::*;
pub use wait::*;
