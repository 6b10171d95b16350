//! The token service (/v1) on the daemon.

mod common;
