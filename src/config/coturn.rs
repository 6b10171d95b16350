//! `switchback import-coturn`: coturn's `turnserver.conf` turned into `turn.toml` text.
//!
//! The converter is pure: text in, TOML text and a list of [`ImportNote`]s out; the daemon's
//! subcommand reads the file, prints the notes and checks the result with
//! [`Config::from_toml_str`](super::Config::from_toml_str).
//!
//! coturn's file is one option a line, `name=value`, `name value` or a bare `name` for a switch
//! (`#` starts a comment line). The common options map one to one, mostly under the same name
//! (switchback's flags follow coturn's names); every other option becomes a note naming it.
//!
//! Some meaning lies in what a file leaves out: without `listening-ip` coturn listens on every
//! interface, so the import listens on `0.0.0.0` and `::`; `Import::finish` (in `coturn/whole.rs`)
//! adds what follows from the file as a whole (the relay addresses this gives, the Prometheus
//! exporter's address).

mod tables;
mod whole;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use toml::Value;

use super::{ExternalIp, PeerRule, keys};

/// Why an option was not carried over unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteKind {
    /// The option (or this value of it) has no switchback equivalent and was left out.
    CannotMap,
    /// The option was carried over, but switchback reads it a little differently.
    Differs,
    /// The option asks for what switchback does anyway (and cannot be turned off): nothing to carry.
    AlreadyDefault,
}

/// One remark about one line of the coturn file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportNote {
    /// 1-based line number in the coturn file; 0 for a note on an option the file leaves out.
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
            NoteKind::AlreadyDefault => "already the default",
        };
        match self.line {
            0 => write!(f, "not in the file: {kind}: `{}`: {}", self.option, self.message),
            line => write!(f, "line {line}: {kind}: `{}`: {}", self.option, self.message),
        }
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
    /// An integer from 1 to the bound.
    Positive(u64),
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
/// `max-allocate-lifetime`, `rest-api-separator`, `max-allocate-timeout` (`tcp-auth-timeout`: a
/// UDP client holds no state before its allocation, so only TCP and TLS connections wait).
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
    ("mobility", "mobility", Kind::Switch),
    ("rfc5780", "rfc5780", Kind::Switch),
    ("alt-listening-port", "alt-listening-port", Kind::Int(u16::MAX as u64)),
    ("server-name", "server-name", Kind::Text),
    ("max-allocate-timeout", "tcp-auth-timeout", Kind::Positive(i64::MAX as u64)),
    ("log-file", "log-file", Kind::Text),
];

/// coturn's `stale-nonce` without a value: its default nonce lifetime, seconds.
const COTURN_STALE_NONCE_DEFAULT: i64 = 600;

/// coturn's port for an `alternate-server` given without one.
const COTURN_ALTERNATE_PORT: u16 = 3478;

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

/// coturn's `alternate-server` value: `IP:PORT`, `[IPv6]:PORT`, or an address alone (port 3478).
fn parse_alternate(value: &str) -> Option<SocketAddr> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, COTURN_ALTERNATE_PORT))
}

/// `"x"` → `x` (coturn's own examples quote some values).
fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

/// The conversion under way: the table so far, the notes, and what [`Import::finish`] needs.
#[derive(Default)]
struct Import {
    table: toml::Table,
    notes: Vec<ImportNote>,
    /// The first line of each option seen, for the notes of [`Import::finish`].
    lines: BTreeMap<String, usize>,
    /// `prometheus-port`, kept for [`Import::finish`] (it means something only with `prometheus`).
    prometheus_port: Option<u16>,
    /// `prometheus-address` (coturn 4.7), likewise.
    prometheus_address: Option<IpAddr>,
}

impl Import {
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

    /// One option of the file: a special case, a [`MAPPED`] one, or a note.
    fn option(&mut self, line: usize, name: &str, value: Option<&str>) {
        self.lines.entry(name.to_owned()).or_insert(line);
        if self.special(line, name, value) {
            return;
        }
        if let Some(&(_, key, kind)) = MAPPED.iter().find(|(n, _, _)| *n == name) {
            return self.mapped(line, name, key, kind, value);
        }
        if tables::IMPLIED.iter().any(|(n, _)| *n == name) {
            return;
        }
        if let Some((_, why)) = tables::ALREADY.iter().find(|(n, _)| *n == name) {
            return self.note(line, name, NoteKind::AlreadyDefault, *why);
        }
        let reason = tables::REASONS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r);
        self.cannot(line, name, reason.unwrap_or("no switchback equivalent"));
    }

    /// The options that are not one key to one key; `true` when `name` was one of them.
    fn special(&mut self, line: usize, name: &str, value: Option<&str>) -> bool {
        match name {
            "user" => self.user(line, value),
            "verbose" | "Verbose" => {
                let steps = if name == "Verbose" { 2 } else { 1 };
                self.table.insert("verbose".to_owned(), Value::Integer(steps));
            }
            "stale-nonce" if value.is_none() => {
                self.table.insert("nonce-lifetime".to_owned(), Value::Integer(COTURN_STALE_NONCE_DEFAULT));
            }
            "relay-threads" => self.relay_threads(line, value),
            "redis-userdb" => self.redis_userdb(line, value),
            "alternate-server" => self.alternate_server(line, value),
            "oauth" => self.cannot(
                line,
                name,
                "coturn keeps its oAuth keys in its database, which cannot be imported: set `oauth = true` with \
                 `oauth-key = [\"KID:BASE64KEY:ALG\"]` (ALG A256GCM or A128GCM) by hand",
            ),
            "prometheus" => {}
            "prometheus-port" => match value.and_then(|v| v.parse::<u16>().ok()).filter(|p| *p != 0) {
                Some(port) => self.prometheus_port = Some(port),
                None => self.cannot(line, name, "not a port from 1 to 65535"),
            },
            "prometheus-address" => match value.and_then(|v| v.parse::<IpAddr>().ok()) {
                Some(ip) => self.prometheus_address = Some(ip),
                None => self.cannot(line, name, "not an IP address"),
            },
            _ => return false,
        }
        true
    }

    /// `relay-threads=N`: `workers`. coturn's 0 means one relay thread (switchback's 0 means one
    /// per core).
    fn relay_threads(&mut self, line: usize, value: Option<&str>) {
        match value.map(str::parse::<u16>) {
            Some(Ok(0)) => {
                self.table.insert("workers".to_owned(), Value::Integer(1));
                let message = "coturn's 0 runs the relay in one thread: workers = 1 (switchback's workers = 0 means \
                               one per CPU core)";
                self.note(line, "relay-threads", NoteKind::Differs, message);
            }
            Some(Ok(n)) => {
                self.table.insert("workers".to_owned(), Value::Integer(i64::from(n)));
            }
            _ => self.cannot(line, "relay-threads", "not a number from 0 to 65535"),
        }
    }

    /// `alternate-server=IP[:PORT]` (`[IPv6]:PORT`; port 3478 when left out), repeatable: switchback
    /// takes one per family.
    fn alternate_server(&mut self, line: usize, value: Option<&str>) {
        let Some(addr) = value.and_then(parse_alternate) else {
            return self.cannot(line, "alternate-server", "expected IP, IP:PORT or [IPv6]:PORT");
        };
        let earlier: Vec<SocketAddr> = match self.table.get("alternate-server") {
            Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str()?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        if earlier.contains(&addr) {
            return;
        }
        if let Some(first) = earlier.iter().find(|a| a.is_ipv4() == addr.is_ipv4()) {
            let message = format!(
                "switchback takes one alternate server per family (a client is sent to the one of its own family); \
                 `{addr}` left out, `{first}` kept"
            );
            return self.cannot(line, "alternate-server", message);
        }
        if earlier.is_empty() {
            let message = "coturn sends every Allocate to its alternate servers (300, load balancing); switchback \
                           sends new allocations there only while it drains (SIGTERM) or, with alternate-threshold = N, \
                           from N live allocations on";
            self.note(line, "alternate-server", NoteKind::Differs, message);
        }
        self.push("alternate-server", Value::String(addr.to_string()));
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
            Kind::Int(max) | Kind::Positive(max) => match value.parse::<u64>() {
                Ok(n) if n <= max && (n > 0 || matches!(kind, Kind::Int(_))) => {
                    self.table.insert(key.to_owned(), Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)));
                }
                _ => {
                    let min = u8::from(matches!(kind, Kind::Positive(_)));
                    self.cannot(line, name, format!("`{value}` is not a number from {min} to {max}"))
                }
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

    /// `redis-userdb="ip=… dbname=… password=… port=…"` (or a URL): the same key, as a URL. The
    /// database's schema is coturn's, read as it is (users, REST secrets, the realm's quotas).
    fn redis_userdb(&mut self, line: usize, value: Option<&str>) {
        let Some(value) = value else { return self.cannot(line, "redis-userdb", "no value given") };
        let url = match super::userdb_url(value) {
            Ok(url) => url,
            Err(e) => return self.cannot(line, "redis-userdb", e),
        };
        let mut message = String::from(
            "switchback reads this realm's users, REST secrets and user-quota/total-quota/max-bps from it at start \
             and on reload (not admin users, origins, oAuth keys or peer lists)",
        );
        if url.contains('@') {
            message.push_str("; the URL carries the password: move it to redis-userdb-file (chmod 600)");
        }
        self.note(line, "redis-userdb", NoteKind::Differs, message);
        self.table.insert("redis-userdb".to_owned(), Value::String(url));
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
mod tests;
