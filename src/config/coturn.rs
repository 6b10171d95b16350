//! `switchback import-coturn`: coturn's `turnserver.conf` turned into `turn.toml` text.
//!
//! The converter is pure: text in, TOML text and a list of [`ImportNote`]s out; the daemon's
//! subcommand reads the file, prints the notes and checks the result with
//! [`Config::from_toml_str`](super::Config::from_toml_str).
//!
//! coturn's file is one option a line, `name=value`, `name value` or a bare `name` for a switch
//! (`#` starts a comment line). The common options map one to one, mostly under the same name
//! (switchback's flags follow coturn's names); every other option becomes a note naming it.

use std::fmt;
use std::net::IpAddr;

use toml::Value;

use super::{ExternalIp, PeerRule, keys};

/// Why an option was not carried over unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// The option (or this value of it) has no switchback equivalent and was left out.
    CannotMap,
    /// The option was carried over, but switchback reads it a little differently.
    Differs,
}

/// One remark about one line of the coturn file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportNote {
    /// 1-based line number in the coturn file.
    pub line: usize,
    /// The coturn option name.
    pub option: String,
    /// Left out, or carried over with a difference.
    pub kind: NoteKind,
    /// What happened and why.
    pub message: String,
}

impl fmt::Display for ImportNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NoteKind::CannotMap => "cannot map",
            NoteKind::Differs => "differs",
        };
        write!(f, "line {}: {kind}: `{}`: {}", self.line, self.option, self.message)
    }
}

/// The result of [`import_coturn`].
#[derive(Clone, Debug, PartialEq)]
pub struct CoturnImport {
    /// The `turn.toml` keys, in [`keys()`] order.
    pub table: toml::Table,
    /// One note per option left out or changed, in file order.
    pub notes: Vec<ImportNote>,
}

impl CoturnImport {
    /// The `turn.toml` text: a header, then one `key = value` line per key in [`keys()`] order.
    pub fn to_toml(&self) -> String {
        let mut out = String::from(
            "# turn.toml imported from coturn's turnserver.conf by `switchback import-coturn`.\n\
             # Check it with: switchback -c turn.toml --check-config\n",
        );
        if !self.notes.is_empty() {
            out.push_str("#\n# Not carried over as it was:\n");
            for note in &self.notes {
                out.push_str(&format!("#   {note}\n"));
            }
        }
        out.push('\n');
        for key in keys() {
            if let Some(value) = self.table.get(*key) {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }
}

/// How a mapped coturn option's value becomes a `turn.toml` value.
#[derive(Clone, Copy)]
enum Kind {
    /// A switch; `name`, `name=true|yes|on|1` set it, `false|no|off|0` leave it out.
    Switch,
    /// An integer from 0 to the bound.
    Int(u64),
    /// A string.
    Text,
    /// A single character.
    Char,
    /// An IP address, repeatable: a list.
    IpList,
    /// A peer rule (IP, IP-IP or CIDR), repeatable: a list.
    RuleList,
    /// A string, repeatable: a list.
    TextList,
    /// `PUBLIC[/PRIVATE]`, repeatable: a list.
    ExternalIp,
}

/// coturn option → (switchback key, kind). The names that differ: `stale-nonce`,
/// `max-allocate-lifetime`, `rest-api-separator`.
const MAPPED: &[(&str, &str, Kind)] = &[
    ("listening-ip", "listening-ip", Kind::IpList),
    ("listening-port", "listening-port", Kind::Int(u16::MAX as u64)),
    ("tls-listening-port", "tls-listening-port", Kind::Int(u16::MAX as u64)),
    ("relay-ip", "relay-ip", Kind::IpList),
    ("external-ip", "external-ip", Kind::ExternalIp),
    ("min-port", "min-port", Kind::Int(u16::MAX as u64)),
    ("max-port", "max-port", Kind::Int(u16::MAX as u64)),
    ("realm", "realm", Kind::Text),
    ("use-auth-secret", "use-auth-secret", Kind::Switch),
    ("static-auth-secret", "static-auth-secret", Kind::TextList),
    ("rest-api-separator", "rest-separator", Kind::Char),
    ("stale-nonce", "nonce-lifetime", Kind::Int(i64::MAX as u64)),
    ("max-allocate-lifetime", "max-lifetime", Kind::Int(u32::MAX as u64)),
    ("user-quota", "user-quota", Kind::Int(u32::MAX as u64)),
    ("total-quota", "total-quota", Kind::Int(u32::MAX as u64)),
    ("max-bps", "max-bps", Kind::Int(i64::MAX as u64)),
    ("bps-capacity", "bps-capacity", Kind::Int(i64::MAX as u64)),
    ("allowed-peer-ip", "allowed-peer-ip", Kind::RuleList),
    ("denied-peer-ip", "denied-peer-ip", Kind::RuleList),
    ("allow-loopback-peers", "allow-loopback-peers", Kind::Switch),
    ("cert", "cert", Kind::Text),
    ("pkey", "pkey", Kind::Text),
    ("no-udp", "no-udp", Kind::Switch),
    ("no-tcp", "no-tcp", Kind::Switch),
    ("no-tls", "no-tls", Kind::Switch),
    ("no-tcp-relay", "no-tcp-relay", Kind::Switch),
];

/// coturn's `stale-nonce` without a value: its default nonce lifetime, seconds.
const COTURN_STALE_NONCE_DEFAULT: i64 = 600;

/// Options with nothing to carry over because switchback already behaves that way.
const IMPLIED: &[(&str, &str)] = &[
    ("lt-cred-mech", "long-term credentials are on whenever users or a secret are configured"),
    ("fingerprint", "switchback answers with FINGERPRINT whenever the request carries one"),
    ("no-dtls", "switchback has no DTLS listener"),
    ("no-multicast-peers", "multicast peers are in switchback's default deny list"),
];

/// Why some well-known options cannot be mapped; any other unknown option gets a generic note.
const REASONS: &[(&str, &str)] = &[
    ("syslog", "switchback logs to stderr (journald under systemd); see log-format"),
    ("log-file", "switchback logs to stderr (journald under systemd); see log-format"),
    ("simple-log", "switchback logs to stderr (journald under systemd)"),
    ("new-log-timestamp", "switchback logs to stderr (journald under systemd)"),
    ("no-rfc5780", "switchback does not implement RFC 5780 NAT behaviour discovery; nothing to turn off"),
    ("rfc5780", "switchback does not implement RFC 5780 NAT behaviour discovery"),
    (
        "response-origin-only-with-rfc5780",
        "switchback sends no RESPONSE-ORIGIN or OTHER-ADDRESS (no RFC 5780); nothing to turn off",
    ),
    ("no-stun-backward-compatibility", "switchback answers RFC 3489 Binding requests (RFC 8489 §11); no switch"),
    ("no-auth", "switchback serves TURN only with credentials (STUN Binding needs none)"),
    ("userdb", "no user database: list users under `users` or in users-file"),
    ("psql-userdb", "no user database: list users under `users` or in users-file"),
    ("mysql-userdb", "no user database: list users under `users` or in users-file"),
    ("mongo-userdb", "no user database: list users under `users` or in users-file"),
    ("redis-userdb", "no user database: list users under `users` or in users-file"),
    ("listening-device", "bind to an address with listening-ip instead"),
    ("relay-device", "bind to an address with relay-ip instead"),
    ("alt-listening-port", "no RFC 5780 alternate port"),
    ("alt-tls-listening-port", "no RFC 5780 alternate port"),
    ("cli-ip", "no telnet CLI"),
    ("cli-port", "no telnet CLI"),
    ("cli-password", "no telnet CLI"),
    ("no-cli", "no telnet CLI; nothing to turn off"),
    ("pidfile", "run under systemd (contrib/switchback.service) instead of a pid file"),
    ("proc-user", "let systemd or the container choose the user"),
    ("proc-group", "let systemd or the container choose the group"),
    ("server-name", "no equivalent"),
    ("oauth", "no third-party authorization (RFC 7635) import"),
    ("prometheus", "no coturn-style Prometheus exporter option"),
    ("cipher-list", "rustls chooses its cipher suites"),
    ("dh-file", "rustls has no finite-field Diffie-Hellman"),
    ("ec-curve-name", "rustls chooses its curves"),
    ("no-tlsv1", "rustls never speaks TLS 1.0"),
    ("no-tlsv1_1", "rustls never speaks TLS 1.1"),
    ("no-tlsv1_2", "no switch to turn TLS 1.2 off"),
    ("ca-file", "no client certificates"),
    ("secure-stun", "no authenticated Binding"),
    ("mobility", "no ICE mobility (MOBILITY-TICKET)"),
    ("no-software-attribute", "switchback sends SOFTWARE only when `software` is set"),
    ("keep-address-family", "RFC 8656 address families are always kept"),
    ("allocation-default-address-family", "the default address family is the request's"),
];

/// Converts coturn's `turnserver.conf` text. Never fails: what cannot be converted becomes a note.
pub fn import_coturn(text: &str) -> CoturnImport {
    let mut import = Import::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.trim_start_matches('-');
        let (name, value) = match line.find(|c: char| c == '=' || c.is_whitespace()) {
            Some(at) => {
                let (name, rest) = line.split_at(at);
                let rest = rest.trim_start();
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                (name, Some(unquote(rest.trim())))
            }
            None => (line, None),
        };
        if name.is_empty() {
            import.cannot(i + 1, line, "not an option");
            continue;
        }
        import.option(i + 1, name, value.filter(|v| !v.is_empty()));
    }
    import.finish();
    CoturnImport { table: import.table, notes: import.notes }
}

/// `"x"` → `x` (coturn's own examples quote some values).
fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

#[derive(Default)]
struct Import {
    table: toml::Table,
    notes: Vec<ImportNote>,
    /// The line of the first `static-auth-secret`, for [`Import::finish`].
    secret_line: Option<usize>,
}

impl Import {
    /// Notes on what the file means as a whole.
    fn finish(&mut self) {
        if let Some(line) = self.secret_line
            && !self.table.contains_key("use-auth-secret")
        {
            let message = "coturn uses it only with use-auth-secret; switchback turns REST credentials on whenever a \
                           secret is given";
            self.note(line, "static-auth-secret", NoteKind::Differs, message);
        }
    }

    fn note(&mut self, line: usize, option: &str, kind: NoteKind, message: impl Into<String>) {
        self.notes.push(ImportNote { line, option: option.to_owned(), kind, message: message.into() });
    }

    fn cannot(&mut self, line: usize, option: &str, message: impl Into<String>) {
        self.note(line, option, NoteKind::CannotMap, message);
    }

    fn push(&mut self, key: &str, value: Value) {
        match self.table.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(list) => {
                if !list.contains(&value) {
                    list.push(value);
                }
            }
            other => *other = Value::Array(vec![value]),
        }
    }

    fn option(&mut self, line: usize, name: &str, value: Option<&str>) {
        match name {
            "user" => return self.user(line, value),
            "verbose" | "Verbose" => {
                let steps = if name == "Verbose" { 2 } else { 1 };
                self.table.insert("verbose".to_owned(), Value::Integer(steps));
                return;
            }
            "stale-nonce" if value.is_none() => {
                self.table.insert("nonce-lifetime".to_owned(), Value::Integer(COTURN_STALE_NONCE_DEFAULT));
                return;
            }
            _ => {}
        }
        if name == "static-auth-secret" {
            self.secret_line.get_or_insert(line);
        }
        if let Some(&(_, key, kind)) = MAPPED.iter().find(|(n, _, _)| *n == name) {
            return self.mapped(line, name, key, kind, value);
        }
        if IMPLIED.iter().any(|(n, _)| *n == name) {
            return;
        }
        let reason = REASONS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        self.cannot(line, name, reason.unwrap_or("no switchback equivalent"));
    }

    fn mapped(&mut self, line: usize, name: &str, key: &str, kind: Kind, value: Option<&str>) {
        if let Kind::Switch = kind {
            match value.map(str::to_ascii_lowercase).as_deref() {
                None | Some("1" | "yes" | "true" | "on") => {
                    self.table.insert(key.to_owned(), Value::Boolean(true));
                }
                Some("0" | "no" | "false" | "off") => {}
                Some(other) => self.cannot(line, name, format!("`{other}` is not a yes/no value")),
            }
            return;
        }
        let Some(value) = value else {
            return self.cannot(line, name, "no value given");
        };
        match kind {
            Kind::Switch => {}
            Kind::Int(max) => match value.parse::<u64>() {
                Ok(n) if n <= max => {
                    self.table.insert(key.to_owned(), Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
                }
                _ => self.cannot(line, name, format!("`{value}` is not a number from 0 to {max}")),
            },
            Kind::Text => {
                self.table.insert(key.to_owned(), Value::String(value.to_owned()));
            }
            Kind::Char => {
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        self.table.insert(key.to_owned(), Value::String(c.to_string()));
                    }
                    _ => self.cannot(line, name, format!("`{value}` is not one character")),
                }
            }
            Kind::IpList => match value.parse::<IpAddr>() {
                Ok(ip) => self.push(key, Value::String(ip.to_string())),
                Err(_) => self.cannot(line, name, format!("`{value}` is not an IP address")),
            },
            Kind::RuleList => match value.parse::<PeerRule>() {
                Ok(_) => self.push(key, Value::String(value.to_owned())),
                Err(e) => self.cannot(line, name, format!("`{value}`: {e}")),
            },
            Kind::TextList => self.push(key, Value::String(value.to_owned())),
            Kind::ExternalIp => self.external_ip(line, name, key, value),
        }
    }

    /// `external-ip=PUBLIC[/PRIVATE]`, repeatable (one per private address): a list. An entry that
    /// maps the same addresses as an earlier one is left out.
    fn external_ip(&mut self, line: usize, name: &str, key: &str, value: &str) {
        let entry = match value.parse::<ExternalIp>() {
            Ok(entry) => entry,
            Err(e) => return self.cannot(line, name, format!("`{value}`: {e}")),
        };
        let earlier: Vec<ExternalIp> = match self.table.get(key) {
            Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str()?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        let clash = earlier.iter().find(|b| match (b.private, entry.private) {
            (Some(a), Some(b)) => a == b,
            (None, None) => b.public.is_ipv4() == entry.public.is_ipv4(),
            _ => false,
        });
        if let Some(b) = clash {
            return self.cannot(line, name, format!("`{value}` maps the same addresses as `{b}`; the first is kept"));
        }
        self.push(key, Value::String(value.to_owned()));
    }

    /// `user=NAME:PASSWORD` or `user=NAME:0xKEY`, repeatable: the `users` table.
    fn user(&mut self, line: usize, value: Option<&str>) {
        let Some((name, password)) = value.and_then(|v| v.split_once(':')) else {
            return self.cannot(line, "user", "expected NAME:PASSWORD");
        };
        let users = self.table.entry("users").or_insert_with(|| Value::Table(toml::Table::new()));
        let Value::Table(users) = users else { return };
        if users.insert(name.to_owned(), Value::String(password.to_owned())).is_some() {
            self.note(line, "user", NoteKind::Differs, format!("user `{name}` is defined again; the last one is kept"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn import(text: &str) -> (Config, Vec<ImportNote>) {
        let import = import_coturn(text);
        let config = Config::from_toml_str(&import.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", import.to_toml()));
        (config, import.notes)
    }

    #[test]
    fn the_common_options_map() {
        let (c, notes) = import(
            "# comment\nlistening-ip=10.0.0.1\nlistening-ip 2001:db8::1\nlistening-port=3479\n\
             relay-ip=10.0.0.1\nexternal-ip=203.0.113.1/10.0.0.1\nmin-port=50000\nmax-port=50100\n\
             realm=\"example.org\"\nlt-cred-mech\nuser=alice:pw\nuser=bob:0x0123456789abcdef0123456789abcdef\n\
             use-auth-secret\nstatic-auth-secret=s3cret\nuser-quota=3\ntotal-quota=100\nmax-bps=64000\n\
             denied-peer-ip=10.0.0.0-10.255.255.255\nallowed-peer-ip=10.1.2.3\nallow-loopback-peers\n\
             cert=/etc/c.pem\npkey=/etc/k.pem\nno-udp\nno-tls=true\nno-tcp-relay=no\nstale-nonce\nverbose\n",
        );
        assert_eq!(notes, vec![]);
        assert_eq!(c.listening_ip, vec!["10.0.0.1".parse::<IpAddr>().unwrap(), "2001:db8::1".parse().unwrap()]);
        assert_eq!((c.listening_port, c.min_port, c.max_port), (3479, 50000, 50100));
        assert_eq!(c.external_ip, vec!["203.0.113.1/10.0.0.1".parse().unwrap()]);
        assert_eq!(c.realm.as_deref(), Some("example.org"));
        assert_eq!(c.users.len(), 2);
        assert_eq!(c.static_auth_secret.len(), 1);
        assert!(c.use_auth_secret && c.allow_loopback_peers && c.no_udp && c.no_tls);
        assert!(!c.no_tcp && !c.no_tcp_relay);
        assert_eq!((c.user_quota, c.total_quota, c.max_bps), (3, 100, 64000));
        assert_eq!(c.denied_peer_ip.len(), 1);
        assert_eq!(c.allowed_peer_ip.len(), 1);
        assert_eq!(c.nonce_lifetime, 600);
        assert_eq!(c.verbose, 1);
        assert_eq!(c.cert.as_deref(), Some(std::path::Path::new("/etc/c.pem")));
    }

    #[test]
    fn what_cannot_map_is_named() {
        let import = import_coturn(
            "syslog\nlisten-port=3\nlistening-port=70000\nexternal-ip=1.2.3.4\nexternal-ip=1.2.3.5\n\
             listening-ip=host.example\nuser=nocolon\nuser=a:1\nuser=a:2\nno-udp=maybe\nrealm\n",
        );
        let named: Vec<(usize, &str, NoteKind)> =
            import.notes.iter().map(|n| (n.line, n.option.as_str(), n.kind)).collect();
        use NoteKind::*;
        assert_eq!(
            named,
            vec![
                (1, "syslog", CannotMap),
                (2, "listen-port", CannotMap),
                (3, "listening-port", CannotMap),
                (5, "external-ip", CannotMap),
                (6, "listening-ip", CannotMap),
                (7, "user", CannotMap),
                (9, "user", Differs),
                (10, "no-udp", CannotMap),
                (11, "realm", CannotMap),
            ]
        );
        assert!(import.notes[0].to_string().contains("line 1: cannot map: `syslog`"), "{}", import.notes[0]);
        let toml = import.to_toml();
        assert!(toml.contains("#   line 2: cannot map: `listen-port`"), "{toml}");
        assert!(toml.contains("external-ip = [\"1.2.3.4\"]\n"), "{toml}");
        assert!(toml.contains("a = \"2\""), "{toml}");
    }

    #[test]
    fn one_external_ip_per_private_address() {
        let (c, notes) = import(
            "listening-ip=0.0.0.0\nexternal-ip=203.0.113.4/10.0.0.5\nexternal-ip=203.0.113.6/10.0.0.6\nrealm=x\n",
        );
        assert_eq!(notes, vec![]);
        assert_eq!(c.external_ip.len(), 2);
        assert_eq!(c.server_options().relay_addresses.len(), 2);
    }

    #[test]
    fn a_secret_without_use_auth_secret_is_noted() {
        let (c, notes) = import("realm=x\n\nstatic-auth-secret=s\n");
        assert_eq!(c.static_auth_secret.len(), 1);
        assert_eq!(notes.len(), 1);
        assert_eq!(
            (notes[0].line, notes[0].option.as_str(), notes[0].kind),
            (3, "static-auth-secret", NoteKind::Differs)
        );
        let (_, notes) = import("use-auth-secret\nstatic-auth-secret=s\n");
        assert!(notes.is_empty());
    }

    #[test]
    fn no_tcp_and_capital_verbose() {
        let (c, notes) = import("no-tcp\nVerbose\n--realm=x\n");
        assert!(notes.is_empty());
        assert!(c.no_tcp);
        assert_eq!(c.verbose, 2);
        assert_eq!(c.realm.as_deref(), Some("x"));
    }

    #[test]
    fn arbitrary_text_never_panics() {
        for text in ["=", "==\n=x", "user=:", "\u{feff}x", "a\tb", "user=", "-", "#\n \n\t"] {
            let _ = import_coturn(text).to_toml();
        }
    }
}
