//! Wire formats: pure, zero-copy, no I/O.
//!
//! Every function here takes bytes that came from the network and must never panic on them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod channel_data;
pub mod demux;
pub mod proxy;
pub mod stun;
