//! Allocations (RFC 8656 §2.2, §7–§12): their state, the concurrent table that finds them by
//! 5-tuple, and the relay port range. No sockets here: the relay socket is a type parameter that the
//! driver supplies.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod allocation;
mod bindings;
mod connections;
mod five_tuple;
mod ports;
mod table;

/// The core's clock unit, re-exported where allocations use it.
pub use crate::time::Millis;
pub use allocation::{
    Allocation, AllocationCounters, AllocationId, AllocationInfo, CachedResponse, ExtraRelay, RequestKey,
};
pub use bindings::{BindingLimits, Bindings, ChannelBindError, ChannelBinding, Permission, TooManyPermissions};
pub use connections::{AddConnectionError, ConnectionState, Connections, MAX_CONNECTIONS, TcpConnection};
pub use five_tuple::{FiveTuple, Transport};
pub use ports::PortRange;
pub use table::{InsertError, Table};
