//! What the TLS keys mean: the port of the TLS listeners and whether they run.

use super::Config;

/// The TLS port when `tls-listening-port` is not set (RFC 8656 §6.1, the `turns` default).
pub const DEFAULT_TLS_PORT: u16 = 5349;

impl Config {
    /// The TLS listeners' port: `tls-listening-port`, else [`DEFAULT_TLS_PORT`] — or 0 (the OS
    /// chooses) when `listening-port` is 0, so that a server asked for OS-chosen ports binds no fixed
    /// one.
    pub fn tls_port(&self) -> u16 {
        match self.tls_listening_port {
            Some(port) => port,
            None if self.listening_port == 0 => 0,
            None => DEFAULT_TLS_PORT,
        }
    }

    /// RFC 5780's alternate TLS port (for `stun.nat-discovery`, RFC 7443): the TLS port + 1, or 0
    /// (the OS picks) when that is 0.
    pub fn alt_tls_port(&self) -> u16 {
        match self.tls_port() {
            0 => 0,
            port => port.saturating_add(1),
        }
    }

    /// RFC 5780's alternate port (§6): `alt-listening-port`, else `listening-port` + 1 — or 0 (the
    /// OS chooses) when `listening-port` is 0.
    pub fn alt_port(&self) -> u16 {
        match self.alt_listening_port {
            Some(port) => port,
            None if self.listening_port == 0 => 0,
            None => self.listening_port.saturating_add(1),
        }
    }

    /// Whether `cert` and `pkey` are set and TLS is not switched off: the TLS listeners run with
    /// them.
    pub fn has_tls_certificate(&self) -> bool {
        self.cert.is_some() && self.pkey.is_some() && !self.no_tls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_port_follows_listening_port_zero() {
        assert_eq!(Config::default().tls_port(), DEFAULT_TLS_PORT);
        assert_eq!(Config { listening_port: 0, ..Config::default() }.tls_port(), 0);
        let c = Config { listening_port: 0, tls_listening_port: Some(443), ..Config::default() };
        assert_eq!(c.tls_port(), 443);
    }

    #[test]
    fn certificate_needs_both_keys_and_tls_on() {
        let mut c = Config { cert: Some("c.pem".into()), ..Config::default() };
        assert!(!c.has_tls_certificate());
        c.pkey = Some("k.pem".into());
        assert!(c.has_tls_certificate());
        c.no_tls = true;
        assert!(!c.has_tls_certificate());
    }
}
