//! Usage records of an in-process server: the daemon's usage writer attached to the fixture's
//! core, its records read back as JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchback::daemon::usage::UsageWriter;

/// A usage file in a fresh temp directory, written by a [`UsageWriter`] that is the server's
/// event sink.
pub struct UsageFile {
    dir: PathBuf,
    path: PathBuf,
    writer: Arc<UsageWriter>,
}

impl UsageFile {
    /// Attaches a usage writer to `server` (its only event sink).
    pub fn attach<D: switchback::server::RelayDriver>(server: &switchback::server::Server<D>) -> UsageFile {
        let dir = std::env::temp_dir().join(format!("switchback-usage-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("usage.jsonl");
        let writer = Arc::new(UsageWriter::start(&path, "test".into()).expect("usage writer"));
        assert!(server.set_events(writer.clone()), "the server had an event sink already");
        UsageFile { dir, path, writer }
    }

    /// The records written so far (after a flush).
    pub fn records(&self) -> Vec<serde_json::Value> {
        self.writer.flush(Duration::from_secs(5));
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a JSON record")).collect()
    }

    /// The final record of the allocation relayed at `relayed`.
    pub fn final_record(&self, relayed: &str) -> Option<serde_json::Value> {
        self.records()
            .into_iter()
            .find(|r| r["type"] == "final" && r["relayed"].as_array().is_some_and(|a| a.iter().any(|x| x == relayed)))
    }
}

impl Drop for UsageFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
