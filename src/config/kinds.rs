//! The small value types of the schema: secrets that never print, log level and format, what a
//! fleet node does without Redis.

use std::fmt;

use serde::Deserialize;

/// A secret (shared secret or password) whose `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// Log verbosity (`log-level`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// The default: start-up, shutdown, warnings.
    #[default]
    Info,
    /// Per-connection events, dropped packets, I/O errors.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    const ALL: [LogLevel; 5] = [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];

    /// The level `steps` above this one (each `-v`), capped at `trace`.
    pub fn raised(self, steps: u8) -> LogLevel {
        let i = (self as usize).saturating_add(usize::from(steps));
        Self::ALL.get(i).copied().unwrap_or(LogLevel::Trace)
    }

    /// The name as written in `turn.toml` and in `RUST_LOG`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// Log output format (`log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// The kernel fast path for ChannelData (`fast-path`, issue #19).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FastPath {
    /// Every datagram through user space (the default).
    #[default]
    Off,
    /// An XDP program on `xdp-interface` relays bound IPv4 channels (UDP client, UDP relay, no
    /// bandwidth limit) in the kernel; needs the `xdp` build feature, root (CAP_NET_ADMIN and
    /// CAP_BPF) and Linux. When the kernel refuses, the server logs once and runs without it.
    Xdp,
}

/// What a node does when the fleet's state backend cannot be asked (`redis-failure`, issue #16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedisFailure {
    /// The default: the node decides alone under its own quotas; live allocations carry on.
    #[default]
    Open,
    /// New allocations are refused with 508 until the backend answers again.
    Closed,
}
