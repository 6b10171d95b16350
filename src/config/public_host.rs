//! `public-host`: the one name for this server in generated URLs (the `iceServers` of
//! `/v1/relay-configuration`, `switchback credentials` and the banner), and `api-url-host`, its old
//! name, still read with a warning.
//!
//! `external-ip` is a different knob: it maps relay and listening *addresses* (1:1 NAT) and is
//! what clients are told in XOR-RELAYED-ADDRESS. In URLs `public-host` wins; without it the URLs
//! carry the listening addresses mapped through `external-ip`.

use std::net::Ipv6Addr;

use super::{Config, ConfigError};

impl Config {
    /// The host of generated URLs: `public-host`, else the deprecated `api-url-host`; `None` means
    /// the listening addresses (mapped through `external-ip`).
    pub fn public_host(&self) -> Option<&str> {
        self.public_host.as_deref().or(self.api_url_host.as_deref())
    }

    /// Warnings for deprecated keys in use: `api-url-host` (and which value wins when
    /// `public-host` is set too).
    pub fn deprecation_warnings(&self) -> Vec<String> {
        let Some(old) = &self.api_url_host else { return Vec::new() };
        let warning = match &self.public_host {
            Some(new) if new != old => {
                format!("api-url-host is deprecated and ignored: public-host ({new}) names the host in generated URLs")
            }
            _ => "api-url-host is deprecated: rename it public-host (it names the host in every generated URL)".into(),
        };
        vec![warning]
    }

    /// `public-host` and `api-url-host` must each be a bare host: a DNS name or an IP address,
    /// without scheme, port or path.
    pub(super) fn validate_public_host(&self) -> Result<(), ConfigError> {
        let hosts = [("public-host", &self.public_host), ("api-url-host", &self.api_url_host)];
        for (key, value) in hosts {
            if let Some(host) = value
                && let Err(message) = check_host(host)
            {
                return Err(ConfigError::invalid(key, format!("`{host}`: {message}")));
            }
        }
        if let Some(domain) = &self.alternate_domain {
            check_domain(domain).map_err(|m| ConfigError::invalid("alternate-domain", format!("`{domain}`: {m}")))?;
        }
        Ok(())
    }
}

/// Why `domain` is not a DNS name a certificate can be checked against (RFC 8489 §14.16: the
/// ALTERNATE-DOMAIN value, under 256 bytes in §10's use), if it is not.
fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.len() > 253 || domain.is_empty() {
        return Err("a DNS name of 1 to 253 characters");
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !domain.trim_end_matches('.').split('.').all(label_ok) || domain.parse::<std::net::IpAddr>().is_ok() {
        return Err(
            "a DNS name (letters, digits, hyphens, dots), not an address: the name on the alternate's certificate",
        );
    }
    Ok(())
}

/// Why `host` is not a bare host name or address, if it is not.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("empty");
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c)) {
        return Err("a host name or address only, without scheme, path or spaces");
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.contains(':') && bare.parse::<Ipv6Addr>().is_err() {
        return Err("a host name or address only, without a port (the listeners' ports are used)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_host_wins_over_its_old_name() {
        let config = Config::from_toml_str("api-url-host = \"old.example\"\n").unwrap();
        assert_eq!(config.public_host(), Some("old.example"));
        assert_eq!(config.deprecation_warnings().len(), 1);
        assert!(config.deprecation_warnings()[0].contains("rename it public-host"));
        let both = "api-url-host = \"old.example\"\npublic-host = \"new.example\"\n";
        let config = Config::from_toml_str(both).unwrap();
        assert_eq!(config.public_host(), Some("new.example"));
        assert!(config.deprecation_warnings()[0].contains("ignored"), "{:?}", config.deprecation_warnings());
        let config = Config::from_toml_str("public-host = \"new.example\"\n").unwrap();
        assert_eq!((config.public_host(), config.deprecation_warnings()), (Some("new.example"), vec![]));
        assert_eq!(Config::default().public_host(), None);
    }

    #[test]
    fn public_host_is_a_bare_host() {
        for good in ["turn.example.org", "203.0.113.7", "2001:db8::1", "[2001:db8::1]"] {
            Config::from_toml_str(&format!("public-host = \"{good}\"\n")).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["", "turn.example.org:3478", "turns://turn.example.org", "a b", "[::1]:5"] {
            let e = Config::from_toml_str(&format!("public-host = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.key(), Some("public-host"), "{bad}: {e}");
        }
        let e = Config::from_toml_str("api-url-host = \"h:1\"\n").unwrap_err();
        assert_eq!(e.key(), Some("api-url-host"), "{e}");
    }

    #[test]
    fn alternate_domain_is_a_dns_name() {
        let config = Config::from_toml_str("alternate-domain = \"turn2.example.net\"\n").unwrap();
        assert_eq!(config.alternate_domain.as_deref(), Some("turn2.example.net"));
        assert_eq!(config.server_options().alternate_domain.as_deref(), Some("turn2.example.net"));
        for bad in ["", "https://turn2.example.net", "192.0.2.1", "turn2.example.net:5349", "-bad.example", "a b"] {
            let e = Config::from_toml_str(&format!("alternate-domain = \"{bad}\"\n")).unwrap_err();
            assert_eq!(e.key(), Some("alternate-domain"), "{bad}: {e}");
        }
    }
}
