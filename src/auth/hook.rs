//! Credentials from the embedder (issue #18): a [`CredentialHook`] is asked for a username that is
//! neither a configured static user nor a REST username (`expiry:user` with REST on) — a
//! database of users, a tenant service.
//!
//! The core never waits: a hook answers from what it knows *now* ([`Lookup`]), and may answer
//! [`Lookup::Pending`] for a name it has to look up. The server then holds the request (no
//! answer), the driver runs [`CredentialHook::fetch`] off the packet path, and the request is run
//! again once the fetch is done (`Server::resume`), when the hook answers from its cache.
//! [`CachedCredentials`] is that hook for an async lookup function: answers (found, not found,
//! refused) are kept for a TTL, in a bounded cache.
//!
//! A credential found through a hook is keyed like a static user's (RFC 8489 §9.2.2), cached for
//! the allocation's lifetime as every key is (requests on an allocation never ask the hook
//! again). USERHASH (§9.2.2) is not offered for hook users: a hash cannot be turned into the name
//! to look up.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::StaticCredential;

/// What a hook is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CredentialQuery<'a> {
    /// The USERNAME of the request (RFC 8489 §14.3).
    pub username: &'a str,
    /// Our realm.
    pub realm: &'a str,
    /// The client's address (its 5-tuple's source); `None` when the caller has none (a key
    /// computed outside a request).
    pub client: Option<SocketAddr>,
    /// Seconds since the Unix epoch, on the server's clock.
    pub unix_now: u64,
}

/// A hook's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The user's password or key: the request's MAC is checked with it.
    Credential(StaticCredential),
    /// The user exists and is refused (401, counted as `refused`; the event names the reason).
    Refused,
    /// Not a user of this hook: REST credentials are tried next (401 `unknown_user` without).
    NotFound,
    /// Not known yet: hold the request, run [`CredentialHook::fetch`], ask again.
    Pending,
}

/// The future of a fetch.
pub type Fetch = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Credentials from the embedder, asked for names that are not static users (see the module).
pub trait CredentialHook: Send + Sync + 'static {
    /// The answer for `query`, now, without waiting (this runs on the packet path's worker).
    fn lookup(&self, query: &CredentialQuery<'_>) -> Lookup;

    /// Learns the answer for `username` so that the next [`CredentialHook::lookup`] has it; run by
    /// the driver on a task of its own after [`Lookup::Pending`]. The default does nothing (a hook
    /// that never answers `Pending`).
    fn fetch(&self, username: String, client: SocketAddr, unix_now: u64) -> Fetch {
        let _ = (username, client, unix_now);
        Box::pin(async {})
    }
}

/// A [`CredentialHook`] in an [`AuthConfig`](super::AuthConfig): `Debug` shows no more than that it is set.
#[derive(Clone)]
pub struct HookHandle(pub Arc<dyn CredentialHook>);

impl std::fmt::Debug for HookHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookHandle(..)")
    }
}

/// What an async lookup finds for a username.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The user's password or key.
    Credential(StaticCredential),
    /// The user is refused.
    Refused,
    /// No such user here.
    NotFound,
}

/// The async lookup of [`CachedCredentials`].
pub type LookupFn = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = Found> + Send>> + Send + Sync>;

/// A [`CredentialHook`] over an async lookup (a database, an HTTP service): answers are cached for
/// `ttl_secs` (found, refused and not found alike, so a flood of unknown names costs one lookup
/// each per TTL), at most `capacity` names (beyond, expired answers are dropped first, then the
/// oldest).
pub struct CachedCredentials {
    lookup: LookupFn,
    cache: Arc<Cache>,
}

/// The answers of a [`CachedCredentials`], shared with its fetches.
struct Cache {
    ttl_secs: u64,
    capacity: usize,
    answers: Mutex<HashMap<String, (Found, u64)>>,
}

impl Cache {
    fn answers(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Found, u64)>> {
        self.answers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `found` for `username` until `unix_now + ttl`, making room when full.
    fn store(&self, username: String, found: Found, unix_now: u64) {
        let mut cache = self.answers();
        if cache.len() >= self.capacity && !cache.contains_key(&username) {
            cache.retain(|_, (_, expires)| *expires > unix_now);
            if cache.len() >= self.capacity {
                let oldest = cache.iter().min_by_key(|(_, (_, expires))| *expires).map(|(k, _)| k.clone());
                if let Some(k) = oldest {
                    cache.remove(&k);
                }
            }
        }
        cache.insert(username, (found, unix_now.saturating_add(self.ttl_secs)));
    }
}

impl CachedCredentials {
    /// A hook asking `lookup`, keeping answers `ttl_secs`, for at most `capacity` names.
    pub fn new(lookup: LookupFn, ttl_secs: u64, capacity: usize) -> Self {
        let cache = Cache { ttl_secs, capacity: capacity.max(1), answers: Mutex::new(HashMap::new()) };
        CachedCredentials { lookup, cache: Arc::new(cache) }
    }

    /// How many names are cached.
    pub fn cached(&self) -> usize {
        self.cache.answers().len()
    }
}

impl CredentialHook for CachedCredentials {
    fn lookup(&self, query: &CredentialQuery<'_>) -> Lookup {
        match self.cache.answers().get(query.username) {
            Some((found, expires)) if *expires > query.unix_now => match found {
                Found::Credential(c) => Lookup::Credential(c.clone()),
                Found::Refused => Lookup::Refused,
                Found::NotFound => Lookup::NotFound,
            },
            _ => Lookup::Pending,
        }
    }

    fn fetch(&self, username: String, _client: SocketAddr, unix_now: u64) -> Fetch {
        let (lookup, cache) = (Arc::clone(&self.lookup), Arc::clone(&self.cache));
        Box::pin(async move {
            let found = lookup(username.clone()).await;
            cache.store(username, found, unix_now);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(username: &str, unix_now: u64) -> CredentialQuery<'_> {
        CredentialQuery { username, realm: "r", client: "127.0.0.1:1".parse().ok(), unix_now }
    }

    /// Polls a fetch that never waits (the lookup below answers at once) to its end.
    fn run(fetch: Fetch) {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fetch = fetch;
        assert!(fetch.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn answers_are_pending_until_fetched_then_cached_for_the_ttl_in_a_bounded_cache() {
        let lookup: LookupFn = Arc::new(|name: String| {
            Box::pin(async move {
                match name.as_str() {
                    "ann" => Found::Credential(StaticCredential::Password("pw".into())),
                    "eve" => Found::Refused,
                    _ => Found::NotFound,
                }
            })
        });
        let hook = CachedCredentials::new(lookup, 60, 2);
        assert_eq!(hook.lookup(&query("ann", 100)), Lookup::Pending);
        run(hook.fetch("ann".into(), "127.0.0.1:1".parse().unwrap(), 100));
        assert_eq!(hook.lookup(&query("ann", 159)), Lookup::Credential(StaticCredential::Password("pw".into())));
        assert_eq!(hook.lookup(&query("ann", 160)), Lookup::Pending, "expired after the TTL");
        run(hook.fetch("eve".into(), "127.0.0.1:1".parse().unwrap(), 100));
        assert_eq!(hook.lookup(&query("eve", 100)), Lookup::Refused);
        // A third name: the cache holds two; the oldest answer goes.
        run(hook.fetch("bob".into(), "127.0.0.1:1".parse().unwrap(), 130));
        assert_eq!(hook.lookup(&query("bob", 130)), Lookup::NotFound);
        assert_eq!(hook.cached(), 2);
    }
}
