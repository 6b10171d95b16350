//! What the TURN keys mean for the server: the one place where a [`Config`] becomes the
//! [`ServerOptions`] of the sans-IO core and the [`AuthConfig`] of the long-term credential
//! mechanism, with the checks on credentials and the embedded default's credentials.

use std::net::IpAddr;

use super::{Config, ConfigError, DEFAULT_REALM, SecretText, relay_addresses};
use crate::auth::{AuthConfig, RestCredentials, StaticCredential};
use crate::server::ServerOptions;

/// The longest REALM, RFC 8489 §14.9 ("fewer than 128 characters").
const MAX_REALM_CHARS: usize = 127;

impl Config {
    pub(super) fn validate_credentials(&self) -> Result<(), ConfigError> {
        if let Some(realm) = &self.realm
            && (realm.is_empty() || realm.chars().count() > MAX_REALM_CHARS)
        {
            return Err(ConfigError::invalid("realm", "must be 1 to 127 characters (RFC 8489 §14.9)"));
        }
        let sep = self.rest_separator;
        if sep.is_ascii_digit() || sep.is_whitespace() || sep.is_control() {
            return Err(ConfigError::invalid("rest-separator", "must not be a digit, a space or a control character"));
        }
        let secret_source = !self.static_auth_secret.is_empty()
            || self.static_auth_secret_file.is_some()
            || self.redis_userdb.is_some();
        if self.use_auth_secret && !secret_source {
            return Err(ConfigError::invalid(
                "use-auth-secret",
                "needs static-auth-secret, static-auth-secret-file or redis-userdb",
            ));
        }
        if self.static_auth_secret.iter().any(|s| s.0.is_empty()) {
            return Err(ConfigError::invalid("static-auth-secret", "a secret must not be empty"));
        }
        for (name, password) in &self.users {
            if name.is_empty() || name.contains(':') {
                return Err(ConfigError::invalid("users", format!("bad user name `{name}` (empty or with `:`)")));
            }
            if password.0.is_empty() {
                return Err(ConfigError::invalid("users", format!("user `{name}` has an empty password")));
            }
            let credential = StaticCredential::parse(&password.0)
                .map_err(|e| ConfigError::invalid("users", format!("user `{name}`: {e}")))?;
            if matches!(credential, StaticCredential::Key(_)) && self.realm.is_none() {
                let message = format!("user `{name}` has a 0x key, which is computed for one realm: set realm");
                return Err(ConfigError::invalid("realm", message));
            }
        }
        Ok(())
    }

    /// Whether any REST secret, user or RFC 7635 key is configured, or coturn's user database
    /// (`redis-userdb`) may hold some, that is whether the daemon serves TURN.
    pub fn has_credentials(&self) -> bool {
        !self.static_auth_secret.is_empty() || !self.users.is_empty() || self.oauth || self.redis_userdb.is_some()
    }

    /// Whether every listening and relay address is loopback, so that every peer a relay socket can
    /// reach is a loopback peer.
    pub fn loopback_only(&self) -> bool {
        self.external_ip.is_empty() && self.listening_ip.iter().chain(&self.relay_ip).all(IpAddr::is_loopback)
    }

    /// The embedded default's TURN side: realm [`DEFAULT_REALM`] (unless set), REST credentials with
    /// `secret` only, and loopback peers allowed when [`Config::loopback_only`] (a relay on loopback
    /// reaches nothing else).
    pub fn with_dev_credentials(mut self, secret: SecretText) -> Config {
        self.realm.get_or_insert_with(|| DEFAULT_REALM.to_owned());
        self.static_auth_secret = vec![secret];
        self.allow_loopback_peers |= self.loopback_only();
        self
    }

    /// The options of the sans-IO server that come from this configuration.
    pub fn server_options(&self) -> ServerOptions {
        ServerOptions {
            software: self.software.clone(),
            strict_rfc8656: self.strict_rfc8656,
            relay_addresses: relay_addresses(&self.relay_ip, &self.listening_ip, &self.external_ip),
            min_port: self.min_port,
            max_port: self.max_port,
            default_lifetime: self.default_lifetime,
            max_lifetime: self.max_lifetime,
            allow_loopback_peers: self.allow_loopback_peers,
            user_quota: self.user_quota,
            total_quota: self.total_quota,
            rate_limit_unauth: self.rate_limit_unauth,
            rate_limit_binding: self.rate_limit_binding,
            rate_limit_allocate: self.rate_limit_allocate,
            strict_expiry: self.strict_expiry,
            no_tcp_relay: self.no_tcp_relay,
            legacy_dual_allocation: !self.no_legacy_dual_allocation,
            mobility: self.mobility,
            rfc5780: self.rfc5780,
            allowed_peers: self.allowed_peer_ip.clone(),
            denied_peers: self.denied_peer_ip.clone(),
            own_addresses: self.own_addresses(),
            max_permissions: self.max_permissions,
            max_channels: self.max_channels,
            max_bps: self.max_bps,
            user_max_bps: self.user_max_bps,
            bps_capacity: self.bps_capacity,
            alternate_servers: self.alternate_server.clone(),
            alternate_threshold: self.alternate_threshold,
            alternate_domain: self.alternate_domain.clone(),
            lease_fail_closed: self.redis_failure == super::RedisFailure::Closed,
            redirect_all: self.fleet_front,
            ..ServerOptions::default()
        }
    }

    /// The server's own addresses for the peer policy: listening, relay, external (public and
    /// private) and the HTTP faces' addresses. Unspecified ones stay in the list; the policy ignores
    /// them.
    pub fn own_addresses(&self) -> Vec<IpAddr> {
        let external = self.external_ip.iter().flat_map(|e| std::iter::once(e.public).chain(e.private));
        let http = [self.api_listen, self.metrics_listen, self.admin_listen].into_iter().flatten().map(|a| a.ip());
        // A wildcard listener answers on every address of its family: each is this server's, so
        // the host's interface addresses join the rule (read at start and on reload).
        let wildcard = |v4: bool| self.listening_ip.iter().any(|ip| ip.is_unspecified() && ip.is_ipv4() == v4);
        let host = super::host_addrs::interface_addresses().into_iter().filter(|ip| wildcard(ip.is_ipv4()));
        let mut own: Vec<IpAddr> = Vec::new();
        for ip in self.listening_ip.iter().chain(&self.relay_ip).copied().chain(external).chain(http).chain(host) {
            if !own.contains(&ip) {
                own.push(ip);
            }
        }
        own
    }

    /// The REST credentials (`static-auth-secret` and its file, `rest-separator`, `rest-algorithm`,
    /// `max-credential-lifetime`), or `None` without a secret.
    pub fn rest_credentials(&self) -> Option<RestCredentials> {
        if self.static_auth_secret.is_empty() {
            return None;
        }
        Some(RestCredentials {
            secrets: self.static_auth_secret.iter().map(|s| crate::auth::Secret::from(s.0.as_str())).collect(),
            separator: self.rest_separator,
            algorithm: self.rest_algorithm,
            max_lifetime_secs: self.max_credential_lifetime,
        })
    }

    /// The long-term credential mechanism's configuration, or `None` (STUN only) when there is no
    /// REST secret and no user. The realm defaults to [`DEFAULT_REALM`].
    pub fn auth_config(&self) -> Result<Option<AuthConfig>, ConfigError> {
        if !self.has_credentials() {
            return Ok(None);
        }
        let mut auth = AuthConfig::new(self.realm.as_deref().unwrap_or(DEFAULT_REALM));
        auth.nonce_ttl_secs = self.nonce_lifetime;
        auth.require_sha256 = self.require_sha256;
        auth.rest = self.rest_credentials();
        for (name, password) in &self.users {
            let credential = StaticCredential::parse(&password.0)
                .map_err(|e| ConfigError::invalid("users", format!("user `{name}`: {e}")))?;
            auth.users.insert(name.clone(), credential);
        }
        auth.oauth = self.oauth_config()?;
        Ok(Some(auth))
    }
}
