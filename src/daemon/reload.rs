//! Reload without restart (SIGHUP, `POST /admin/reload`): re-read the configuration and swap in
//! what can change while running — credentials, peer policy, quotas, alternate server, revocation
//! list, drain timeout, the TLS certificate, and (through [`ReloadHook`]) the log level. The keys
//! that do are [`RELOADABLE`]; a change to any other key (ports, listeners, workers, limits…) is
//! named in a warning and in the answer as needing a restart, never reported as reloaded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::auth::hook::HookHandle;
use crate::config::{Config, SecretText};
use crate::io::{ReloadableTls, TurnServer};

/// Reads the configuration as it stands now (the same flags and file as at start); an error is
/// one line naming the problem.
pub type ConfigSource = Arc<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// The keys a reload applies. Every other key keeps the value it had at start until a restart.
pub const RELOADABLE: &[&str] = &[
    // Credentials (a new authenticator; live allocations keep the key they were made with).
    "realm",
    "static-auth-secret",
    "static-auth-secret-file",
    "use-auth-secret",
    "users",
    "users-file",
    "max-credential-lifetime",
    "rest-separator",
    "rest-algorithm",
    "nonce-lifetime",
    "require-sha256",
    "oauth",
    "oauth-key",
    "server-name",
    "redis-userdb",
    "redis-userdb-file",
    // Peer policy, quotas, redirection, revocation.
    "allow-loopback-peers",
    "allowed-peer-ip",
    "denied-peer-ip",
    "user-quota",
    "total-quota",
    "alternate-server",
    "alternate-threshold",
    "alternate-domain",
    "revoked-users",
    "revocation-file",
    // The HTTP faces' keys, the certificate, drain and logging.
    "api-key",
    "api-key-file",
    "token-key",
    "token-key-file",
    "token-public-key",
    "admin-key",
    "admin-key-file",
    "cert",
    "pkey",
    "drain-timeout",
    "log-level",
    "verbose",
];

/// Called with every configuration a reload applies.
pub type ReloadHook = Box<dyn Fn(&Config) + Send + Sync>;

/// Reloads the configuration into the running server.
pub struct Reloader {
    pub(super) source: ConfigSource,
    /// The development default's generated secret, kept across reloads.
    pub(super) dev_secret: Option<String>,
    pub(super) on_reload: Option<ReloadHook>,
    pub(super) server: Arc<TurnServer>,
    pub(super) tls: Option<ReloadableTls>,
    /// Kept so nonces handed out before a reload stay valid.
    pub(super) nonce_key: [u8; 32],
    /// `drain-timeout` of the configuration in force, seconds.
    pub(super) drain_timeout: AtomicU64,
    /// One reload at a time.
    pub(super) lock: Mutex<()>,
    /// The HTTP faces' keys, rotated with the rest.
    pub(super) keys: super::faces::FaceKeys,
    /// The revocation list's writer: a reload replaces the configuration's entries and keeps those
    /// revoked at run time.
    pub(super) revoker: Arc<super::Revoker>,
    /// The configuration the daemon started with: what the keys outside [`RELOADABLE`] still are.
    pub(super) started: Config,
    /// Fleet mode: the alternates combine a reload's static ones with the live siblings.
    pub(super) fleet: Option<Arc<super::fleet::Placement>>,
    /// coturn's user database (`redis-userdb`) as last read: kept while it cannot be read.
    pub(super) userdb: super::userdb::LastRead,
    /// The embedder's credential hook: in every authenticator a reload builds.
    pub(super) credentials: Option<HookHandle>,
}

impl Reloader {
    /// The configuration as the source says now.
    fn load(&self) -> Result<Config, String> {
        Ok(self.completed((self.source)()?))
    }

    /// `config` with what the daemon adds to every configuration it runs: the development secret,
    /// and the users of coturn's user database.
    fn completed(&self, config: Config) -> Config {
        let config = match &self.dev_secret {
            Some(secret) => config.with_dev_credentials(SecretText(secret.clone())),
            None => config,
        };
        // coturn's user database is read again: users and secrets added there since take effect.
        super::userdb::with_userdb_blocking(config, &self.userdb)
    }

    /// The keys changed since start that a reload cannot apply, in key order (empty when the
    /// configurations were not loaded from sources).
    pub fn restart_needed(&self, config: &Config) -> Vec<&'static str> {
        let changed = self.started.changed_keys(config).unwrap_or_default();
        changed.into_iter().filter(|k| !RELOADABLE.contains(k)).collect()
    }

    /// `drain-timeout` of the configuration in force, seconds.
    pub fn current_drain_timeout(&self) -> u64 {
        self.drain_timeout.load(Ordering::Relaxed)
    }

    /// Re-reads everything and swaps in what can change while running; a configuration that does
    /// not load is refused as a whole (one warning naming the problem) and the old one stays.
    /// Returns a one-line summary of what is in force.
    pub fn reload(&self, trigger: &str) -> Result<String, String> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = match self.load() {
            Ok(c) => c,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: the configuration does not load; keeping the old one");
                return Err(e);
            }
        };
        self.apply(config, trigger)
    }

    /// Applies `config` as [`Reloader::reload`] applies what the source reads (an embedder's
    /// `RelayHandle::reload`): the same keys change, the same checks refuse it as a whole. The
    /// source is not changed: a later [`Reloader::reload`] reads it again. Blocking, as `reload`.
    pub fn reload_with(&self, config: Config, trigger: &str) -> Result<String, String> {
        let _one = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let config = self.completed(config);
        self.apply(config, trigger)
    }

    /// Swaps in what `config` changes (the lock is held).
    fn apply(&self, config: Config, trigger: &str) -> Result<String, String> {
        let auth = match super::auth_config(&config, self.credentials.as_ref()) {
            Ok(a) => a,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: keeping the old configuration");
                return Err(e.to_string());
            }
        };
        // Held from before the file is read until the list is swapped: a revocation appended to the
        // file meanwhile waits, then is read back.
        let revocation_guard = self.revoker.for_reload();
        let revoked = match config.revocation_list() {
            Ok(r) => r,
            Err(e) => {
                warn!(trigger, error = %e, "reload refused: revocation list; keeping the old configuration");
                return Err(e.to_string());
            }
        };
        // The faces' keys are checked now and swapped last, with the rest (never half a reload).
        if let Err(e) = self.keys.replace(&config) {
            warn!(trigger, error = %e, "reload refused: keeping the old configuration");
            return Err(e.to_string());
        }
        let (secrets, users) =
            auth.as_ref().map_or((0, 0), |a| (a.rest.as_ref().map_or(0, |r| r.secrets.len()), a.users.len()));
        let auth = auth.map(|a| Authenticator::new(a, self.nonce_key));
        self.server.reload(auth, &config.server_options());
        if let Some(placement) = &self.fleet {
            placement.set_static(&self.server, config.alternate_server.clone(), config.alternate_threshold);
        }
        let revocations = revocation_guard.replace(revoked, config.revocation_file.clone());
        let revoked_now = self.server.revoke_now(std::time::Instant::now());
        if let Some(hook) = &self.on_reload {
            hook(&config);
        }
        super::tls::reload_tls(&config, self.tls.as_ref());
        self.drain_timeout.store(config.drain_timeout, Ordering::Relaxed);
        let level = config.effective_log_level().as_str();
        let restart = self.restart_needed(&config).join(",");
        let mut summary = format!(
            "rest_secrets={secrets} users={users} revocations={revocations} allocations_revoked={revoked_now} \
             log_level={level}"
        );
        if !restart.is_empty() {
            summary.push_str(&format!(" restart_needed={restart}"));
            warn!(
                trigger,
                restart_needed = %restart,
                "reload: these options changed but only take effect after a restart; the old values stay in force"
            );
        }
        info!(
            trigger,
            rest_secrets = secrets,
            users,
            revocations,
            allocations_revoked = revoked_now,
            log_level = level,
            "configuration reloaded: credentials, peer policy, quotas, revocations, keys, certificate, log level (live allocations untouched)"
        );
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloadable_names_real_keys_and_changes_are_found_by_key() {
        for key in RELOADABLE {
            assert!(crate::config::keys().contains(key), "{key} is not a turn.toml key");
        }
        assert!(!crate::config::keys().contains(&"source"));
        let a = Config::from_toml_str("listening-port = 0\nuser-quota = 3\n").unwrap();
        let b = Config::from_toml_str("listening-port = 0\nuser-quota = 4\nworkers = 2\n").unwrap();
        assert_eq!(a.changed_keys(&b), Some(vec!["user-quota", "workers"]));
        assert_eq!(a.changed_keys(&a.clone()), Some(vec![]));
        assert_eq!(a.changed_keys(&Config::default()), None, "built in code: unknown");
    }
}
