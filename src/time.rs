//! The sans-IO core's clock unit. The core never reads a clock: drivers pass `now` in, as
//! milliseconds since an epoch of their choosing (the server's start), so allocation lifetimes,
//! nonces, rate-limit buckets and bandwidth meters all count in the same unit.

/// Milliseconds since the server's epoch: the core's clock unit (time comes in from the driver).
pub type Millis = u64;
