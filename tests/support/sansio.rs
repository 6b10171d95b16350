//! A relay driver for the sans-IO server that binds nothing: the crate's own
//! (`switchback::testing`), shared with the benchmarks.

pub use switchback::testing::{FakeRelay, Sent};
