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

    /// The entries, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| &**e)
    }

    /// Whether `entry` itself is on the list.
    pub fn contains(&self, entry: &str) -> bool {
        self.entries.contains(entry)
    }

    /// Adds one entry (trimmed; an empty one is skipped); `false` when it was there already.
    pub fn insert(&mut self, entry: &str) -> bool {
        let entry = entry.trim();
        !entry.is_empty() && self.entries.insert(Box::from(entry))
    }

    /// Removes one entry; `false` when it was not there.
    pub fn remove(&mut self, entry: &str) -> bool {
        self.entries.remove(entry)
    }
}

/// The longest entry a revocation request may add, in bytes (a user name, as long as a token's
/// `sub` may be, or a token id).
pub const MAX_ENTRY_LEN: usize = 128;

/// What a run-time revocation (`POST /v1/revocations`, `POST /admin/revocations`,
/// `switchback admin revoke`) puts on the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeTarget {
    /// A user: the REST user part or a static user's name (every credential of that user), or the
    /// `sub` of access tokens.
    User(String),
    /// An access token's `jti`: that token is refused by the token service.
    TokenId(String),
}

impl RevokeTarget {
    /// The entry as the list holds it.
    pub fn entry(&self) -> &str {
        match self {
            RevokeTarget::User(e) | RevokeTarget::TokenId(e) => e,
        }
    }

    /// `user` or `jti`, as the request names it.
    pub fn kind(&self) -> &'static str {
        match self {
            RevokeTarget::User(_) => "user",
            RevokeTarget::TokenId(_) => "jti",
        }
    }

    /// `Ok` when the entry can stand on a line of the revocation file and be matched as given: 1 to
    /// [`MAX_ENTRY_LEN`] bytes, no control character (no line break), no leading or trailing white
    /// space (the file is read trimmed), not starting with `#` (a comment there).
    pub fn check(&self) -> Result<(), RevokeError> {
        let e = self.entry();
        let fits = !e.is_empty() && e.len() <= MAX_ENTRY_LEN;
        if !fits || e.chars().any(char::is_control) || e.trim() != e || e.starts_with('#') {
            return Err(RevokeError::BadEntry { kind: self.kind() });
        }
        Ok(())
    }
}

/// What a run-time revocation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RevokeOutcome {
    /// Written to `revocation-file` (or already there): it survives reload and restart. `false`:
    /// held in memory only (no file configured), it survives reloads but not a restart.
    pub persisted: bool,
    /// The live allocations of the user ended now.
    pub ended: usize,
}

/// Why a run-time revocation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    /// The entry cannot be put on the list (see [`RevokeTarget::check`]).
    #[error(
        "{kind} must be 1 to {MAX_ENTRY_LEN} bytes without control characters, surrounding white space or a leading '#'"
    )]
    BadEntry {
        /// `user` or `jti`.
        kind: &'static str,
    },
    /// The entry could not be appended to `revocation-file`. It is revoked in memory all the same
    /// (until a restart).
    #[error("cannot append to the revocation file {}: {source}; the revocation holds in memory only", path.display())]
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
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
        assert!(more.insert(" carol ") && !more.insert("carol") && more.contains("carol"));
        assert!(!more.insert("  "));
        assert!(more.remove("carol") && !more.contains("carol") && !more.remove("carol"));
    }

    #[test]
    fn revoke_targets_must_fit_a_line_of_the_file() {
        for ok in ["alice", "1800000000:eve", "a b", "jti-0123"] {
            assert!(RevokeTarget::User(ok.to_owned()).check().is_ok(), "{ok}");
        }
        let long = "x".repeat(MAX_ENTRY_LEN + 1);
        for bad in ["", " alice", "alice ", "a\nb", "a\u{0}b", "#alice", long.as_str()] {
            let e = RevokeTarget::TokenId(bad.to_owned()).check().unwrap_err();
            assert!(e.to_string().starts_with("jti must be"), "{bad:?}: {e}");
        }
    }
}
