//! What no single key can check: something to listen on, ranges, lengths, credentials, and what
//! serving needs on top.

use super::{Config, ConfigError, LogLevel, relay};

/// The longest SOFTWARE value, RFC 8489 §14.14 ("fewer than 128 characters").
const MAX_SOFTWARE_CHARS: usize = 127;

impl Config {
    /// What serving needs beyond [`Config::validate`], checked by the daemon before it binds
    /// (`development_default`: no file and no credentials, so it generates a secret).
    ///
    /// The token service hands out REST credentials, so `api-listen` (and `api-on-tls`) needs a
    /// secret. A wildcard listener needs nothing more: the UDP driver reads each datagram's
    /// destination (IP_PKTINFO) and the TCP driver each connection's local address, so without
    /// `relay-ip` relay sockets open on the address each Allocate arrived on (RFC 8656 §7.2) and
    /// answers leave from it.
    pub fn validate_serving(&self, development_default: bool) -> Result<(), ConfigError> {
        if let Some(key) = self.api_face_key()
            && !development_default
            && self.rest_credentials().is_none()
        {
            return Err(ConfigError::Serving {
                key,
                message: "the token service hands out REST credentials: it needs static-auth-secret",
            });
        }
        Ok(())
    }

    /// Checks what no single key can: something to listen on, ranges, lengths, credentials.
    /// RFC 5780 §6 needs two addresses of one family (the first two `listening-ip`) and two ports.
    /// `fast-path = "xdp"` needs the `xdp` build feature and `xdp-interface`.
    fn validate_fast_path(&self) -> Result<(), ConfigError> {
        if self.fast_path == super::FastPath::Off {
            return Ok(());
        }
        if !cfg!(feature = "xdp") {
            return Err(ConfigError::invalid("fast-path", "this build has no XDP fast path (cargo feature `xdp`)"));
        }
        if self.xdp_interface.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid("fast-path", "\"xdp\" needs xdp-interface"));
        }
        Ok(())
    }

    fn validate_rfc5780(&self) -> Result<(), ConfigError> {
        if !self.rfc5780 {
            return Ok(());
        }
        match self.listening_ip.as_slice() {
            [a, b, ..] if a.is_ipv4() == b.is_ipv4() && a != b => {}
            _ => {
                let message = "needs two listening-ip addresses of one family (the first two)";
                return Err(ConfigError::invalid("rfc5780", message));
            }
        }
        if self.no_udp {
            return Err(ConfigError::invalid("rfc5780", "works on UDP only, and no-udp is set"));
        }
        if self.listening_port != 0 && self.alt_port() == self.listening_port {
            return Err(ConfigError::invalid("alt-listening-port", "must differ from listening-port"));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.listening_ip.is_empty() {
            return Err(ConfigError::invalid("listening-ip", "at least one address is needed"));
        }
        if self.no_udp && self.no_tcp && !self.has_tls_certificate() {
            return Err(ConfigError::invalid("no-tcp", "with no-udp too (and no TLS) there is nothing to listen on"));
        }
        if let Some(software) = &self.software
            && software.chars().count() > MAX_SOFTWARE_CHARS
        {
            return Err(ConfigError::invalid("software", "longer than 127 characters (RFC 8489 §14.14)"));
        }
        if self.min_port == 0 {
            return Err(ConfigError::invalid("min-port", "must be at least 1"));
        }
        if self.min_port > self.max_port {
            let message = format!("{} is above max-port ({})", self.min_port, self.max_port);
            return Err(ConfigError::invalid("min-port", message));
        }
        relay::check(&self.relay_ip, &self.listening_ip, &self.external_ip)?;
        self.check_ports_outside_the_relay_range()?;
        if self.default_lifetime == 0 || self.default_lifetime > self.max_lifetime {
            return Err(ConfigError::invalid("default-lifetime", "must be between 1 and max-lifetime"));
        }
        if self.tcp_connections_per_source == 0 {
            return Err(ConfigError::invalid("tcp-connections-per-source", "must be at least 1"));
        }
        if self.tcp_auth_timeout == 0 {
            return Err(ConfigError::invalid("tcp-auth-timeout", "must be at least 1 second"));
        }
        if self.tcp_idle_timeout == 0 {
            return Err(ConfigError::invalid("tcp-idle-timeout", "must be at least 1 second"));
        }
        if self.nonce_lifetime == 0 {
            return Err(ConfigError::invalid("nonce-lifetime", "must be at least 1 second"));
        }
        self.validate_credentials()?;
        self.validate_oauth()?;
        if !self.proxy_protocol_from.is_empty() && !self.proxy_protocol {
            return Err(ConfigError::invalid("proxy-protocol-from", "is set but proxy-protocol is not"));
        }
        // A PROXY header names the client: whoever may send one may claim any address (and its
        // allocations). So the balancers must be named; there is no "anyone".
        if self.proxy_protocol && self.proxy_protocol_from.is_empty() {
            return Err(ConfigError::invalid(
                "proxy-protocol-from",
                "proxy-protocol needs the load balancers allowed to send PROXY headers (IP, IP-IP or CIDR)",
            ));
        }
        if self.admin_listen.is_some() && self.admin_key.as_ref().is_none_or(|k| k.0.is_empty()) {
            return Err(ConfigError::invalid("admin-listen", "needs admin-key or admin-key-file (Bearer auth)"));
        }
        if self.nonce_secret.as_ref().is_some_and(|k| k.0.len() < 16) {
            return Err(ConfigError::invalid("nonce-secret", "at least 16 characters"));
        }
        if self.admin_key.as_ref().is_some_and(|k| k.0.len() < 16) {
            return Err(ConfigError::invalid("admin-key", "at least 16 characters"));
        }
        self.validate_rfc5780()?;
        self.validate_fast_path()?;
        // In fleet mode the live siblings are the alternates (the static list is the fallback).
        if self.alternate_threshold != 0 && self.alternate_server.is_empty() && self.redis_url.is_none() {
            return Err(ConfigError::invalid(
                "alternate-threshold",
                "needs alternate-server (or redis-url: fleet mode)",
            ));
        }
        self.validate_fleet()?;
        for family in [true, false] {
            if self.alternate_server.iter().filter(|a| a.is_ipv4() == family).count() > 1 {
                return Err(ConfigError::invalid("alternate-server", "at most one address per family"));
            }
        }
        self.validate_api()?;
        self.validate_public_host()?;
        match (&self.cert, &self.pkey) {
            (Some(_), None) => return Err(ConfigError::invalid("pkey", "cert is set but pkey is not: give both")),
            (None, Some(_)) => return Err(ConfigError::invalid("cert", "pkey is set but cert is not: give both")),
            _ => {}
        }
        Ok(())
    }

    /// The log level after `verbose` is applied.
    pub fn effective_log_level(&self) -> LogLevel {
        self.log_level.raised(self.verbose)
    }

    /// Warnings for the daemon's start: secret files that group or others can read (the secrets of
    /// `static-auth-secret-file`, `users-file`, `admin-key-file`, `redis-url-file`, `api-key-file`,
    /// `token-key-file` and the TLS key `pkey`).
    pub fn file_warnings(&self) -> Vec<String> {
        let files = [
            ("static-auth-secret-file", &self.static_auth_secret_file),
            ("users-file", &self.users_file),
            ("admin-key-file", &self.admin_key_file),
            ("nonce-secret-file", &self.nonce_secret_file),
            ("redis-url-file", &self.redis_url_file),
            ("redis-userdb-file", &self.redis_userdb_file),
            ("api-key-file", &self.api_key_file),
            ("token-key-file", &self.token_key_file),
            ("pkey", &self.pkey),
        ];
        files.iter().filter_map(|(key, path)| super::secret_files::permission_warning(key, path.as_deref()?)).collect()
    }

    /// A listening port inside the relay port range would be handed out as a relayed address (or
    /// block one), and a peer could be told to send to the server's own listener: refused, naming
    /// the key and the range. Port 0 (the OS chooses) is not checked.
    fn check_ports_outside_the_relay_range(&self) -> Result<(), ConfigError> {
        let range = self.min_port..=self.max_port;
        let http = [
            ("api-listen", self.api_listen),
            ("metrics-listen", self.metrics_listen),
            ("admin-listen", self.admin_listen),
        ];
        let tls = (!self.no_tls && self.has_tls_certificate()).then(|| self.tls_port());
        let alt = self.rfc5780.then(|| self.alt_port());
        let ports = [("listening-port", Some(self.listening_port)), ("tls-listening-port", tls)]
            .into_iter()
            .chain([("alt-listening-port", alt)])
            .chain(http.into_iter().map(|(key, addr)| (key, addr.map(|a| a.port()))));
        for (key, port) in ports {
            if let Some(port) = port.filter(|p| *p != 0 && range.contains(p)) {
                let message = format!(
                    "port {port} is inside the relay port range (min-port {} to max-port {}): move one of them",
                    self.min_port, self.max_port
                );
                return Err(ConfigError::invalid(key, message));
            }
        }
        Ok(())
    }
}
