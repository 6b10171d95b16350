//! `switchback admin list|end|end-user|revoke|reload` and `switchback reload`: a small client of
//! the admin API (plain HTTP/1.1 over a std `TcpStream`: the admin face belongs on loopback or a
//! private network).
//!
//! `admin revoke` goes through the admin face (`POST /admin/revocations`), not the token service's
//! `POST /v1/revocations`: it is the operator's tool and holds the operator's key, the admin key,
//! for the face already on loopback; the API key belongs to the application's backends, and the
//! token service may not run at all (or only over HTTPS). Both routes reach the same revocation list. The address and key come from flags, or from the `admin-listen` and `admin-key` /
//! `admin-key-file` keys of a `turn.toml` given with `-c`.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use switchback::config::Config;

/// How to reach the admin API.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The daemon's configuration: admin-listen and the admin key are read from it.
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The admin API address (instead of the file's admin-listen).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    admin_listen: Option<SocketAddr>,
    /// The admin key (shows in the process list; prefer --admin-key-file or the environment).
    #[arg(long, value_name = "KEY", env = "SWITCHBACK_ADMIN_KEY", hide_env_values = true, global = true)]
    admin_key: Option<String>,
    /// A file whose first line is the admin key.
    #[arg(long, value_name = "FILE", global = true)]
    admin_key_file: Option<PathBuf>,
}

/// `switchback admin`.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(subcommand)]
    pub action: Action,
}

/// What to ask the daemon.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// List the live allocations: a table (relayed address, user, transport, client, age, expiry,
    /// bytes each way), or with --json the admin API's JSON.
    List {
        /// Print the admin API's JSON answer instead of the table (for scripts).
        #[arg(long)]
        json: bool,
    },
    /// End the allocation on a relayed address.
    End {
        /// The relayed address, ADDR:PORT, as `list` shows it.
        relay: SocketAddr,
    },
    /// End every allocation of a user.
    EndUser {
        /// The user (the REST username's user part, or the static user name).
        user: String,
    },
    /// Revoke a user (or with --jti an access token): its requests get 403 and its live
    /// allocations end now; kept in the revocation-file when one is configured.
    Revoke {
        /// The user (the REST username's user part, the static user name, or a token's sub).
        #[arg(required_unless_present = "jti", conflicts_with = "jti")]
        user: Option<String>,
        /// Revoke the access token with this jti instead.
        #[arg(long, value_name = "ID")]
        jti: Option<String>,
    },
    /// Reload the configuration (like SIGHUP).
    Reload,
    /// Start a drain without stopping the daemon: /readyz turns 503, new allocations go to an
    /// alternate server (300) or get 508, live ones carry on (a Kubernetes preStop hook).
    Drain {
        /// Wait until no allocation is left, at most SECS seconds (exit 1 if some remain).
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
    },
}

/// Runs one action and prints the daemon's JSON answer (`list`: a table, unless `--json`); exit 1
/// on an error answer or no answer.
pub fn run(connect: &ConnectArgs, action: &Action) -> ExitCode {
    match call(connect, action).and_then(|body| shown(action, body)) {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What to print of an answer: the JSON as it came, but for `list` without `--json` a table.
fn shown(action: &Action, body: String) -> anyhow::Result<String> {
    if !matches!(action, Action::List { json: false }) {
        return Ok(body);
    }
    let answer: serde_json::Value = serde_json::from_str(&body).context("the allocation list is not JSON")?;
    crate::admin_table::allocations_table(&answer).context("the answer is not an allocation list")
}

/// Sends the action's request; the body of a 2xx answer.
fn call(connect: &ConnectArgs, action: &Action) -> anyhow::Result<String> {
    let (addr, key) = target(connect)?;
    let mut body = String::new();
    let (method, path) = match action {
        Action::List { .. } => ("GET", "/admin/allocations".to_owned()),
        Action::End { relay } => ("DELETE", format!("/admin/allocations?relay={}", encode(&relay.to_string()))),
        Action::EndUser { user } => ("DELETE", format!("/admin/users/{}/allocations", encode(user))),
        Action::Revoke { user, jti } => {
            body = match (user, jti) {
                (_, Some(jti)) => serde_json::json!({ "jti": jti }),
                (user, None) => serde_json::json!({ "user": user }),
            }
            .to_string();
            ("POST", "/admin/revocations".to_owned())
        }
        Action::Reload => ("POST", "/admin/reload".to_owned()),
        Action::Drain { .. } => ("POST", "/admin/drain".to_owned()),
    };
    let (status, body) = request(addr, method, &path, &key, &body)?;
    if !(200..300).contains(&status) {
        bail!("{method} {path}: HTTP {status}: {}", body.trim());
    }
    if let Action::Drain { wait: Some(secs) } = action {
        return wait_drained(addr, &key, Duration::from_secs(*secs));
    }
    Ok(body)
}

/// Polls `/admin/status` until no allocation is left (its last answer), or fails after `timeout`.
fn wait_drained(addr: SocketAddr, key: &str, timeout: Duration) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let (status, body) = request(addr, "GET", "/admin/status", key, "")?;
        if !(200..300).contains(&status) {
            bail!("GET /admin/status: HTTP {status}: {}", body.trim());
        }
        let answer: serde_json::Value = serde_json::from_str(&body).context("the status is not JSON")?;
        let left = answer.get("allocations").and_then(serde_json::Value::as_u64).context("no allocation count")?;
        if left == 0 {
            return Ok(body);
        }
        if std::time::Instant::now() >= deadline {
            bail!("{left} allocations still live after {} s", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The address and key: flags first, then the configuration file.
fn target(connect: &ConnectArgs) -> anyhow::Result<(SocketAddr, String)> {
    let config = match &connect.config {
        Some(path) => Some(Config::load(path).with_context(|| format!("cannot load {}", path.display()))?),
        None => None,
    };
    let addr = connect
        .admin_listen
        .or(config.as_ref().and_then(|c| c.admin_listen))
        .context("no admin address: give --admin-listen or -c with admin-listen set")?;
    let key = match (&connect.admin_key, &connect.admin_key_file) {
        (Some(k), _) => k.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
            .context("the admin key file is empty")?,
        (None, None) => config
            .and_then(|c| c.admin_key)
            .map(|k| k.0)
            .context("no admin key: give --admin-key-file, SWITCHBACK_ADMIN_KEY or -c")?,
    };
    Ok((addr, key))
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One request with `Connection: close` (and `body`, JSON, when not empty); returns the status and
/// the body.
fn request(addr: SocketAddr, method: &str, path: &str, key: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let timeout = Duration::from_secs(10);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let content_type = if body.is_empty() { "" } else { "Content-Type: application/json\r\n" };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\
         {content_type}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    let mut raw = Vec::new();
    stream.take(16 << 20).read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").context("no HTTP answer")?;
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

/// Decodes a chunked body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        let Some(chunk) = rest.get(..n) else { break };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        s = rest.get(n..).unwrap_or("").trim_start_matches("\r\n");
    }
    out
}
