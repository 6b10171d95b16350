//! Revoked credentials (the "revocation list … behind small traits"): a user or a username
//! on the list gets 403 Forbidden on every request (its credentials are valid, policy refuses them:
//! RFC 8656 §7.2 and §9, "administratively prohibited"), and its live allocations are torn down
//! ([`Server::revoke_now`](crate::server::Server::revoke_now), and at every sweep).
//!
//! The core asks through [`Revocations`], so a fleet-wide store (Redis) can stand behind it later;
//! the daemon uses the in-memory [`RevocationList`] built from `revoked-users` and
//! `revocation-file`, and replaces it at run time (SIGHUP) with
//! [`Server::set_revocations`](crate::server::Server::set_revocations).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::HashSet;

/// Who is revoked. Called on the control path only (after a request authenticated, and by the
/// sweep for each live allocation), never per relayed packet; it must not block.
pub trait Revocations: Send + Sync {
    /// Whether `user` (the REST user part, or the static user's name) or `username` (the full
    /// USERNAME, `<expiry>:<user>` for REST) is revoked.
    fn is_revoked(&self, user: &str, username: &str) -> bool;

    /// Whether anything at all may be revoked; `false` lets the sweep skip its walk over the
    /// allocations. The default is a conservative `true`.
    fn may_revoke(&self) -> bool {
        true
    }
}

/// The in-memory list: exact user names and usernames, one set. Immutable once built; reloading
/// builds a new one and swaps it into the server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    entries: HashSet<Box<str>>,
}

impl RevocationList {
    /// A list of these entries (each a user or a full username), trimmed; empty ones are skipped.
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries.into_iter().filter_map(|e| {
            let e = e.as_ref().trim();
            (!e.is_empty()).then(|| Box::from(e))
        });
        RevocationList { entries: entries.collect() }
    }

    /// The entries of a revocation file: one user or username a line; blank lines and lines
    /// starting with `#` are skipped, each line is trimmed.
    pub fn parse(text: &str) -> Self {
        RevocationList::new(text.lines().map(str::trim).filter(|l| !l.starts_with('#')))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds the entries of `other`.
    pub fn extend(&mut self, other: RevocationList) {
        self.entries.extend(other.entries);
    }
}

impl Revocations for RevocationList {
    fn is_revoked(&self, user: &str, username: &str) -> bool {
        !self.entries.is_empty() && (self.entries.contains(user) || self.entries.contains(username))
    }

    fn may_revoke(&self) -> bool {
        !self.entries.is_empty()
    }
}

impl<T: Revocations + ?Sized> Revocations for std::sync::Arc<T> {
    fn is_revoked(&self, user: &str, username: &str) -> bool {
        (**self).is_revoked(user, username)
    }

    fn may_revoke(&self) -> bool {
        (**self).may_revoke()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_usernames() {
        let list = RevocationList::parse("# revoked\nmallory\n\n  1800000000:eve  \r\n#bob\n");
        assert_eq!(list.len(), 2);
        assert!(list.is_revoked("mallory", "1800007200:mallory"));
        assert!(list.is_revoked("eve", "1800000000:eve"));
        // Another credential of eve's (another expiry) is not on the list.
        assert!(!list.is_revoked("eve", "1800003600:eve"));
        assert!(!list.is_revoked("bob", "bob"));
        assert!(list.may_revoke());
        assert!(!RevocationList::default().may_revoke());
        assert!(!RevocationList::new(["", "  "]).may_revoke());
        let mut more = RevocationList::new(["bob"]);
        more.extend(list);
        assert!(more.is_revoked("bob", "bob") && more.is_revoked("mallory", "mallory"));
    }
}
