//! The HTTP faces a configuration turns on: metrics and health, admin, the token service.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::registry::Registry;
use tracing::info;

use super::banner::advertised;
use super::{Reloader, Revoker};
use crate::config::{Config, ConfigError};
use crate::http::api::{ApiKeys, ApiOptions, IceUrls, RestSource, SharedApiKeys, router};
use crate::http::health::{self, Readiness};
use crate::http::{Face, admin, metrics};
use crate::io::{Running, TurnServer};
use crate::server::Transport;

/// The registry behind `/metrics`: read at each scrape (and by [`super::Daemon::metrics_text`]).
pub(super) fn metrics_registry(
    server: &Arc<TurnServer>,
    running: &Running,
    fleet: Option<Arc<metrics::FleetStats>>,
) -> Arc<Registry> {
    let collector = metrics::TurnCollector::new(server.clone(), running.io_stats_handle())
        .with_listener_ips(running.local_addrs().iter().map(|l| l.addr.ip()));
    let collector = match fleet {
        Some(stats) => collector.with_fleet(stats),
        None => collector,
    };
    metrics::registry(collector)
}

/// The metrics face's routes: `/metrics`, `/healthz`, `/readyz`.
pub(super) fn metrics_router(readiness: &Readiness, registry: &Arc<Registry>) -> axum::Router {
    health::router(readiness.clone()).merge(metrics::router_of(registry.clone()))
}

/// The metrics and admin faces that `config` turns on, each on its configured address.
pub(super) fn http_faces(
    config: &Config,
    readiness: &Readiness,
    server: &Arc<TurnServer>,
    metrics_routes: &axum::Router,
    reloader: &Arc<Reloader>,
) -> Vec<Face> {
    let mut faces = Vec::new();
    if let Some(addr) = config.metrics_listen {
        faces.push(Face::new("metrics", addr, metrics_routes.clone()));
    }
    // Config::validate refuses admin-listen without a key.
    if let (Some(addr), Some(router)) = (config.admin_listen, admin_routes(readiness, server, reloader)) {
        faces.push(Face::new("admin", addr, router));
    }
    faces
}

/// The admin API (`/admin`) when an admin key is configured, listening or not (an embedder mounts
/// it into its own app).
pub(super) fn admin_routes(
    readiness: &Readiness,
    server: &Arc<TurnServer>,
    reloader: &Arc<Reloader>,
) -> Option<axum::Router> {
    let key = reloader.keys.admin.as_ref()?;
    let r = reloader.clone();
    let reload: admin::ReloadFn = Arc::new(move || r.reload("admin API"));
    let (drain_server, drain_readiness) = (server.clone(), readiness.clone());
    let drain: admin::DrainFn = Arc::new(move || {
        if !drain_server.admission().is_draining() {
            info!(allocations = drain_server.allocations().len(), "admin API: draining");
        }
        drain_readiness.set(false);
        drain_server.admission().set_draining(true);
    });
    let admin =
        admin::Admin::new(server.clone(), key.clone(), reload).with_revoke(reloader.revoker.as_fn()).with_drain(drain);
    Some(admin::router(admin))
}

/// The token service (`/v1`) for `api-listen` and `api-on-tls`: its urls are the bound TURN
/// listeners.
pub(super) fn api_router(
    config: &Config,
    running: &Running,
    server: &Arc<TurnServer>,
    keys: SharedApiKeys,
    revoker: &Arc<Revoker>,
    fleet: Option<&Arc<super::fleet::Fleet>>,
) -> Result<axum::Router, ConfigError> {
    let of = |t: Transport| -> Vec<SocketAddr> {
        running.local_addrs().iter().filter(|l| l.transport == t).map(|l| l.addr).collect()
    };
    if config.rest_credentials().is_none() {
        return Err(ConfigError::InvalidValue {
            key: config.api_face_key().unwrap_or("api-listen").to_owned(),
            message: "the token service needs static-auth-secret".to_owned(),
        });
    }
    // Read per request: a reload that rotates the secrets is followed at once.
    let auth = server.clone();
    let rest: RestSource = Arc::new(move || auth.authenticator().and_then(|a| a.rest().cloned()));
    let server = server.clone();
    let options = ApiOptions {
        keys,
        rest,
        // What clients are told, as in the banner and `switchback credentials`.
        urls: IceUrls {
            udp: advertised(config, &of(Transport::Udp)),
            tcp: advertised(config, &of(Transport::Tcp)),
            tls: advertised(config, &of(Transport::Tls)),
            host: config.public_host().map(str::to_owned),
        },
        fleet: fleet.map(|f| f.ice_urls()),
        max_ttl_secs: config.api_max_ttl,
        cors_origins: config.api_cors_origin.clone(),
        rate_per_source: config.api_rate_limit,
        rate_per_user: config.api_user_rate_limit,
        revoked: Arc::new(move |entry: &str| server.is_revoked_entry(entry)),
        revoke: Some(revoker.as_fn()),
        unix_now: super::unix_now,
    };
    let loaded = options.keys.load();
    info!(
        keys = loaded.tokens.keys().len(),
        minting = !loaded.api_keys.is_empty(),
        cors_origins = options.cors_origins.len(),
        "token service on"
    );
    drop(loaded);
    Ok(router(options))
}

/// The keys of the HTTP faces a reload rotates: the token service's (when `api-listen` or
/// `api-on-tls` is on) and the admin key (when `admin-listen` is on).
#[derive(Default)]
pub struct FaceKeys {
    /// `token-key`, `token-public-key`, `api-key`.
    pub api: Option<SharedApiKeys>,
    /// `admin-key`.
    pub admin: Option<admin::AdminKey>,
}

impl FaceKeys {
    /// The keys `config` gives the faces it turns on.
    pub(super) fn of(config: &Config) -> Result<FaceKeys, ConfigError> {
        // With a key but no listener the routes still exist: an embedder mounts them
        // (`RelayHandle::api_router`, `admin_router`).
        let api = match config.api_face_key().is_some() || !config.api_key.is_empty() {
            true => Some(Arc::new(arc_swap::ArcSwap::from_pointee(api_keys(config)?))),
            false => None,
        };
        let admin = config.admin_key.as_ref().map(|k| admin::AdminKey::new(&k.0));
        Ok(FaceKeys { api, admin })
    }

    /// Checks that `config` has every key the running faces need, then swaps them in; nothing is
    /// swapped when one is missing or does not load.
    pub(super) fn replace(&self, config: &Config) -> Result<(), ConfigError> {
        let api = self.api.as_ref().map(|_| api_keys(config)).transpose()?;
        let admin = match (&self.admin, &config.admin_key) {
            (Some(_), None) => {
                let message = "admin-listen runs: a reload cannot remove the admin key".to_owned();
                return Err(ConfigError::InvalidValue { key: "admin-key".to_owned(), message });
            }
            (Some(_), Some(key)) => Some(key.0.clone()),
            (None, _) => None,
        };
        if let (Some(shared), Some(api)) = (&self.api, api) {
            shared.store(Arc::new(api));
        }
        if let (Some(handle), Some(key)) = (&self.admin, admin) {
            handle.replace(&key);
        }
        Ok(())
    }
}

fn api_keys(config: &Config) -> Result<ApiKeys, ConfigError> {
    Ok(ApiKeys { tokens: config.token_keys()?, api_keys: config.api_key.iter().map(|s| s.0.clone()).collect() })
}
