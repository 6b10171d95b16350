//! The daemon's one revocation list. The TURN server holds the list in force (it refuses a revoked
//! user's requests with 403, RFC 8656 §7.2, and the token service asks it through
//! [`TurnServer::is_revoked_entry`]); the [`Revoker`] is the only writer: it builds that list from
//! the configuration's entries (`revoked-users`, `revocation-file`, re-read on reload) and the
//! entries revoked at run time (`POST /v1/revocations`, `POST /admin/revocations`).
//!
//! A run-time revocation is appended to `revocation-file` when one is configured (one entry a line,
//! the line ending written with it), so reloads and restarts keep it; without a file it is held in
//! memory, merged into every reloaded list, and lost at a restart.

use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::io::TurnServer;
use crate::policy::revocation::{RevocationList, RevokeError, RevokeOutcome, RevokeTarget};

/// The writer of the revocation list the TURN server and the HTTP faces read.
pub struct Revoker {
    server: Arc<TurnServer>,
    state: Mutex<State>,
    /// Fleet mode: revocations made here are published to every node.
    fleet: std::sync::OnceLock<Arc<super::fleet::Fleet>>,
}

/// What the list in force is made of.
struct State {
    /// From the configuration (and, through the file, run-time revocations saved there).
    config: RevocationList,
    /// Revoked at run time and not in the file (none configured, or it could not be written).
    memory: RevocationList,
    /// `revocation-file` of the configuration in force.
    file: Option<PathBuf>,
}

impl State {
    /// Puts `config` ∪ `memory` in force; returns its size.
    fn apply(&self, server: &TurnServer) -> usize {
        let mut list = self.config.clone();
        list.extend(self.memory.clone());
        let len = list.len();
        server.set_revocations(list);
        len
    }
}

/// The revoker held for a reload: it swaps in the configuration's entries under the same lock a
/// run-time revocation takes, so a revocation written to the file meanwhile is not lost.
pub(super) struct ReloadGuard<'a> {
    server: &'a TurnServer,
    state: MutexGuard<'a, State>,
}

impl ReloadGuard<'_> {
    /// The configuration's entries are `config` from now on (its `revocation-file` is `file`);
    /// returns the size of the list in force.
    pub(super) fn replace(mut self, config: RevocationList, file: Option<PathBuf>) -> usize {
        // What the file holds now needs no copy in memory (its line removed, it is lifted).
        let saved: Vec<String> =
            self.state.memory.entries().filter(|e| config.contains(e)).map(str::to_owned).collect();
        for entry in &saved {
            self.state.memory.remove(entry);
        }
        self.state.config = config;
        self.state.file = file;
        self.state.apply(self.server)
    }
}

impl Revoker {
    /// A revoker that puts `config` (the configuration's entries, `file` its `revocation-file`) in
    /// force on `server` now.
    pub fn new(server: Arc<TurnServer>, config: RevocationList, file: Option<PathBuf>) -> Revoker {
        let state = State { config, memory: RevocationList::default(), file };
        state.apply(&server);
        Revoker { server, state: Mutex::new(state), fleet: std::sync::OnceLock::new() }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Held by a reload from before it reads the revocation file until it swaps the list.
    pub(super) fn for_reload(&self) -> ReloadGuard<'_> {
        ReloadGuard { server: &self.server, state: self.lock() }
    }

    /// Revokes `target`: on the list at once (appended to `revocation-file` when configured), then
    /// the user's live allocations end (their relay sockets close). Blocking (file I/O).
    ///
    /// When the file cannot be written, the entry is revoked in memory all the same and the error
    /// says so.
    pub fn revoke(&self, target: &RevokeTarget) -> Result<RevokeOutcome, RevokeError> {
        target.check()?;
        let entry = target.entry();
        let saved = {
            let mut state = self.lock();
            let saved = if state.config.contains(entry) {
                Ok(true)
            } else if let Some(path) = state.file.clone() {
                match append_line(&path, entry) {
                    Ok(()) => {
                        state.config.insert(entry);
                        state.memory.remove(entry);
                        Ok(true)
                    }
                    Err(source) => {
                        state.memory.insert(entry);
                        Err(RevokeError::File { path, source })
                    }
                }
            } else {
                state.memory.insert(entry);
                Ok(false)
            };
            state.apply(&self.server);
            saved
        };
        let ended = self.server.revoke_now(Instant::now());
        if let Some(fleet) = self.fleet.get()
            && let Err(e) = fleet.publish_revocation(entry)
        {
            tracing::warn!(entry, error = %e, "revocation not published to the fleet: in force on this node only");
        }
        saved.map(|persisted| RevokeOutcome { persisted, ended })
    }

    /// Fleet mode: revocations made here go to `fleet` too.
    pub(super) fn set_fleet(&self, fleet: Arc<super::fleet::Fleet>) {
        let _ = self.fleet.set(fleet);
    }

    /// Revocations heard from the fleet (or re-read from it): on the list (in memory — the fleet's
    /// store keeps them), then the users' live allocations end. Returns how many entries were new.
    pub fn apply_fleet(&self, entries: &[String]) -> usize {
        let mut added = 0;
        {
            let mut state = self.lock();
            for entry in entries {
                if RevokeTarget::User(entry.clone()).check().is_err() {
                    continue;
                }
                if !state.config.contains(entry) && state.memory.insert(entry) {
                    added += 1;
                }
            }
            if added > 0 {
                state.apply(&self.server);
            }
        }
        if added > 0 {
            let ended = self.server.revoke_now(Instant::now());
            tracing::info!(entries = added, ended, "fleet revocations applied");
        }
        added
    }

    /// [`Revoker::revoke`] as the HTTP faces call it.
    pub fn as_fn(self: &Arc<Self>) -> crate::http::revocations::RevokeFn {
        let revoker = self.clone();
        Arc::new(move |target| revoker.revoke(target))
    }
}

/// Appends `entry` as one line to `path` (created if missing): a line break first when the file
/// does not end with one, the entry and its line break in one write, then synced to disk.
fn append_line(path: &Path, entry: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().read(true).append(true).create(true).open(path)?;
    let len = file.metadata()?.len();
    let mut line = String::with_capacity(entry.len() + 2);
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last != [b'\n'] {
            line.push('\n');
        }
    }
    line.push_str(entry);
    line.push('\n');
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("switchback-revoke-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    #[test]
    fn lines_are_appended_whole_after_a_missing_line_break() {
        let dir = temp_dir("append");
        let path = dir.0.join("revoked");
        append_line(&path, "alice").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "alice\n");
        std::fs::write(&path, "# list\nbob").unwrap();
        append_line(&path, "carol").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# list\nbob\ncarol\n");
        let list = RevocationList::parse(&std::fs::read_to_string(&path).unwrap());
        assert!(list.contains("bob") && list.contains("carol") && list.len() == 2);
    }

    fn server() -> Arc<TurnServer> {
        crate::io::UdpRelay::server(crate::server::ServerOptions::default(), None)
    }

    #[test]
    fn memory_revocations_survive_a_reload_and_file_ones_are_read_back() {
        let dir = temp_dir("reload");
        let server = server();
        let revoker = Revoker::new(server.clone(), RevocationList::new(["mallory"]), None);
        assert!(server.is_revoked_entry("mallory"));
        let done = revoker.revoke(&RevokeTarget::User("eve".to_owned())).unwrap();
        assert_eq!(done, RevokeOutcome { persisted: false, ended: 0 });
        assert!(server.is_revoked_entry("eve"));
        // A reload with a new file: eve stays (memory), mallory goes (no longer configured).
        let path = dir.0.join("revoked");
        std::fs::write(&path, "trudy\n").unwrap();
        assert_eq!(revoker.for_reload().replace(RevocationList::new(["trudy"]), Some(path.clone())), 2);
        assert!(server.is_revoked_entry("eve") && server.is_revoked_entry("trudy"));
        assert!(!server.is_revoked_entry("mallory"));
        // With the file, a revocation goes there; a reload reading the file keeps it.
        let done = revoker.revoke(&RevokeTarget::TokenId("jti-1".to_owned())).unwrap();
        assert!(done.persisted);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "trudy\njti-1\n");
        assert_eq!(revoker.for_reload().replace(RevocationList::parse(&text), Some(path.clone())), 3);
        assert!(server.is_revoked_entry("jti-1"));
        // Already on the list: not written twice.
        assert!(revoker.revoke(&RevokeTarget::User("trudy".to_owned())).unwrap().persisted);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(revoker.revoke(&RevokeTarget::User("#x".to_owned())).is_err());
    }

    #[test]
    fn fleet_revocations_go_on_the_list_once_and_survive_a_reload() {
        let server = server();
        let revoker = Revoker::new(server.clone(), RevocationList::new(["mallory"]), None);
        let heard = ["eve".to_owned(), "mallory".to_owned(), "#x".to_owned(), "eve".to_owned()];
        // eve is new; mallory is configured already; "#x" is no valid entry.
        assert_eq!(revoker.apply_fleet(&heard), 1);
        assert!(server.is_revoked_entry("eve") && !server.is_revoked_entry("#x"));
        assert_eq!(revoker.apply_fleet(&heard), 0, "a re-read adds nothing");
        assert_eq!(revoker.for_reload().replace(RevocationList::default(), None), 1);
        assert!(server.is_revoked_entry("eve"), "kept across a reload");
    }

    #[test]
    fn an_unwritable_file_still_revokes_in_memory_and_says_so() {
        let dir = temp_dir("unwritable");
        let server = server();
        // A directory where the file should be: it cannot be opened for appending.
        let revoker = Revoker::new(server.clone(), RevocationList::default(), Some(dir.0.clone()));
        let err = revoker.revoke(&RevokeTarget::User("oscar".to_owned())).unwrap_err();
        assert!(matches!(err, RevokeError::File { .. }), "{err}");
        assert!(err.to_string().contains("in memory"), "{err}");
        assert!(server.is_revoked_entry("oscar"));
    }
}
