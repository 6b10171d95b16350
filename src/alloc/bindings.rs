//! Permissions and channel bindings of one allocation (RFC 8656 §9, §12): the immutable snapshot the
//! control path swaps and the data path reads without a lock, and the limits on how many it holds.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::time::Millis;

/// A permission: an IP address the allocation may exchange data with, RFC 8656 §9.
#[derive(Debug)]
pub struct Permission {
    /// The peer IP (no port: RFC 8656 §9).
    pub ip: IpAddr,
    pub(super) expires: AtomicU64,
}

impl Permission {
    /// When it expires.
    pub fn expires(&self) -> Millis {
        self.expires.load(Relaxed)
    }
}

/// A channel binding: channel number ↔ peer transport address, RFC 8656 §12.
#[derive(Debug)]
pub struct ChannelBinding {
    /// The channel number.
    pub number: u16,
    /// The peer.
    pub peer: SocketAddr,
    pub(super) expires: AtomicU64,
}

impl ChannelBinding {
    /// When it expires.
    pub fn expires(&self) -> Millis {
        self.expires.load(Relaxed)
    }
}

/// Permissions and channels of one allocation at one moment.
#[derive(Debug, Default)]
pub struct Bindings {
    pub(super) permissions: Vec<Permission>,
    pub(super) channels: Vec<ChannelBinding>,
}

impl Bindings {
    /// Whether `ip` has a live permission at `now` (RFC 8656 §9).
    #[inline]
    pub fn permits(&self, ip: IpAddr, now: Millis) -> bool {
        self.permissions.iter().any(|p| p.ip == ip && p.expires() > now)
    }

    /// The live channel bound to `number`.
    #[inline]
    pub fn channel(&self, number: u16, now: Millis) -> Option<&ChannelBinding> {
        self.channels.iter().find(|c| c.number == number && c.expires() > now)
    }

    /// The live channel bound to `peer`.
    #[inline]
    pub fn channel_for_peer(&self, peer: SocketAddr, now: Millis) -> Option<&ChannelBinding> {
        self.channels.iter().find(|c| c.peer == peer && c.expires() > now)
    }

    /// How many permissions are live at `now`.
    pub fn live_permissions(&self, now: Millis) -> usize {
        self.permissions.iter().filter(|p| p.expires() > now).count()
    }

    /// The permissions (live or not yet swept).
    pub fn permissions(&self) -> &[Permission] {
        &self.permissions
    }

    /// The channel bindings (live or not yet swept).
    pub fn channels(&self) -> &[ChannelBinding] {
        &self.channels
    }
}

/// Why a channel cannot be bound, RFC 8656 §12.2 (the first two answer 400, the last 508).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelBindError {
    /// The channel is bound to another peer.
    ChannelTaken,
    /// The peer is bound to another channel.
    PeerTaken,
    /// A new channel, or the new permission it needs, would exceed the allocation's limits.
    Capacity,
}

/// Most live permissions and channel bindings one allocation may hold (`max-permissions`,
/// `max-channels`); 0 = no limit. Refreshing one that is live is always allowed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BindingLimits {
    /// Live permissions (peer IPs).
    pub permissions: u32,
    /// Live channel bindings.
    pub channels: u32,
}

impl BindingLimits {
    /// Whether `live + new` stays within `limit`.
    pub(super) fn room(limit: u32, live: usize, new: usize) -> bool {
        limit == 0 || new == 0 || live.saturating_add(new) <= limit as usize
    }
}

/// A CreatePermission would exceed [`BindingLimits::permissions`] (RFC 8656 §10.2: 508).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("too many permissions on the allocation")]
pub struct TooManyPermissions;
