//! The admin API on `admin-listen`: Bearer key, listing allocations, ending one (the client's
//! Refresh then gets 437) or all of a user's, reload; the `switchback admin` / `switchback reload`
//! client; and the status page at `/`, rendered by headless Chromium with numbers that move while
//! traffic flows.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Daemon, PROCESS_TIMEOUT, TempFile, http_request, run_with_timeout, udp_echo_peer};
use switchback::client::ClientError;
use switchback::client::turn::{Credentials, TurnClient};

const KEY: &str = "test-admin-key-0123456789";
const STEP: Duration = Duration::from_secs(5);

struct Admin {
    daemon: Daemon,
    key_file: TempFile,
}

impl Admin {
    fn start(name: &str) -> Admin {
        let key_file = TempFile::new(&format!("{name}-admin.key"), &format!("{KEY}\n"));
        let daemon = Daemon::start(&[
            "--realm",
            "r",
            "--user",
            "u:pw",
            "--user",
            "v:pw2",
            "--allow-loopback-peers",
            "--listening-port",
            "0",
            "--no-tls",
            "--admin-listen",
            "127.0.0.1:0",
            "--admin-key-file",
            key_file.as_str(),
        ]);
        Admin { daemon, key_file }
    }

    fn addr(&self) -> SocketAddr {
        self.daemon.http_addr("admin")
    }

    fn get(&self, path: &str, key: Option<&str>) -> crate::support::HttpResponse {
        let auth = key.map(|k| format!("Bearer {k}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        http_request(self.addr(), "GET", path, &headers, "")
    }

    /// `switchback <args> --admin-listen ADDR --admin-key-file FILE`.
    fn cli(&self, args: &[&str]) -> Output {
        let addr = self.addr().to_string();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
        cmd.args(args).args(["--admin-listen", &addr, "--admin-key-file", self.key_file.as_str()]);
        run_with_timeout(&mut cmd, PROCESS_TIMEOUT)
    }
}

async fn allocate(udp: SocketAddr, user: &str, password: &str) -> TurnClient {
    tokio::time::timeout(STEP, TurnClient::allocate(udp, Credentials::new(user, password))).await.unwrap().unwrap()
}

#[test]
fn the_admin_api_lists_and_ends_allocations() {
    let admin = Admin::start("api");
    let udp = admin.daemon.udp[0];
    // No key, a wrong key: 401, nothing shown.
    for key in [None, Some("wrong-key-wrong-key")] {
        let r = admin.get("/admin/allocations", key);
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "unauthorized");
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b, c) = rt.block_on(async {
        (allocate(udp, "u", "pw").await, allocate(udp, "v", "pw2").await, allocate(udp, "v", "pw2").await)
    });
    let list = admin.get("/admin/allocations", Some(KEY));
    assert_eq!(list.status, 200, "{}", list.body);
    let list = list.json();
    assert_eq!(list["count"], 3, "{list}");
    let entry = list["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relay"] == a.relayed_addr().to_string())
        .unwrap_or_else(|| panic!("{} not listed: {list}", a.relayed_addr()));
    assert_eq!(entry["user"], "u");
    assert_eq!(entry["client"], a.mapped_addr().to_string());
    assert_eq!(entry["transport"], "udp");
    assert!(entry["age_secs"].is_u64() && entry["to_peer_bytes"].is_u64(), "{entry}");

    let only_v = admin.get("/admin/allocations?user=v&limit=1", Some(KEY)).json();
    assert_eq!((only_v["count"].as_u64(), only_v["truncated"].as_bool()), (Some(2), Some(true)), "{only_v}");
    assert_eq!(only_v["allocations"].as_array().unwrap().len(), 1);
    assert_eq!(only_v["allocations"][0]["user"], "v");

    // The CLI client sees the same: the JSON with --json, a table without.
    let out = admin.cli(&["admin", "list", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["count"], 3);
    let out = admin.cli(&["admin", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 5, "a header, three rows, a count: {table}");
    assert!(lines[0].starts_with("RELAY ") && lines[0].ends_with("TO CLIENT"), "{table}");
    assert_eq!(lines[4], "3 allocations");
    let row = lines.iter().find(|l| l.starts_with(&a.relayed_addr().to_string())).expect("a's row");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..4], [a.relayed_addr().to_string().as_str(), "u", "udp", &a.mapped_addr().to_string()], "{row}");

    // End one allocation: its client's next Refresh gets 437 (RFC 8656 §7), the others go on.
    let out = admin.cli(&["admin", "end", &a.relayed_addr().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = rt.block_on(a.refresh(600)).unwrap_err();
    assert!(matches!(err, ClientError::ErrorResponse { code: 437, .. }), "{err}");
    assert_eq!(rt.block_on(b.refresh(600)).unwrap(), 600);

    // End every allocation of user v.
    let out = admin.cli(&["admin", "end-user", "v"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ended: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ended["ended"], 2);
    for client in [&b, &c] {
        let err = rt.block_on(client.refresh(600)).unwrap_err();
        assert!(matches!(err, ClientError::ErrorResponse { code: 437, .. }), "{err}");
    }
    assert_eq!(admin.get("/admin/allocations", Some(KEY)).json()["count"], 0);
    // Nothing left to end: 404; a bad address: 400.
    let out = admin.cli(&["admin", "end", &a.relayed_addr().to_string()]);
    assert!(!out.status.success());
    let r = http_request(
        admin.addr(),
        "DELETE",
        "/admin/allocations?relay=nonsense",
        &[("Authorization", &format!("Bearer {KEY}"))],
        "",
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // switchback reload: the same as SIGHUP.
    let out = admin.cli(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"reloaded\":true"));

    let (status, err) = admin.daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("admin: allocation ended"), "{err}");
    assert!(err.contains("configuration reloaded") && err.contains("admin API"), "{err}");
}

#[test]
fn the_admin_face_refuses_to_start_without_a_key() {
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_switchback")).args(["--listening-port", "0", "--admin-listen", "127.0.0.1:0"]),
        PROCESS_TIMEOUT,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("admin-listen") && err.contains("admin-key"), "{err}");
}

/// The text of the element with `id` in a DOM dump (`<tag id="ID" ...>TEXT<`).
fn element_text<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let rest = &dom[start..];
    let open_end = rest.find('>')?;
    let text = &rest[open_end + 1..];
    Some(&text[..text.find('<')?])
}

/// An attribute of the element with `id`.
fn element_attr<'a>(dom: &'a str, id: &str, attr: &str) -> Option<&'a str> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag = &dom[start..start + dom[start..].find('>')?];
    let at = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
    Some(&tag[at..at + tag[at..].find('"')?])
}

/// Headless Chromium loads the status page (the key in the URL fragment, never sent to the server)
/// and its DOM after the page has polled a few times.
fn dump_status_page(addr: SocketAddr) -> String {
    let profile = std::env::temp_dir().join(format!("switchback-status-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let url = format!("http://{addr}/#key={KEY}&interval=200");
    let mut cmd = Command::new("chromium");
    cmd.args(crate::support::CHROMIUM_FLAGS)
        .args(["--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(&url)
        .stdin(Stdio::null());
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(dom.contains("switchback status"), "no page: {dom}\n{}", String::from_utf8_lossy(&out.stderr));
    dom
}

#[test]
fn the_status_page_renders_and_its_numbers_move_with_traffic() {
    if crate::support::tools::require("chromium").is_none() {
        return;
    }
    let admin = Admin::start("page");
    let udp = admin.daemon.udp[0];
    let before = dump_status_page(admin.addr());
    assert_eq!(element_text(&before, "allocations"), Some("0"), "{before}");
    assert_eq!(element_attr(&before, "total-bytes", "data-bytes"), Some("0"), "{before}");
    let polls: u32 = element_attr(&before, "updated", "data-polls").unwrap().parse().unwrap();
    assert!(polls >= 2, "the page polls: {polls}");
    assert_eq!(element_text(&before, "error"), Some(""), "{before}");

    // Traffic through one allocation of user v.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (peer, _echo) = rt.block_on(udp_echo_peer());
    let client = rt.block_on(async {
        let client = allocate(udp, "v", "pw2").await;
        client.create_permission(peer).await.unwrap();
        for _ in 0..20 {
            crate::support::echo_through(&client, peer, &[7u8; 500]).await;
        }
        client
    });
    let during = dump_status_page(admin.addr());
    assert_eq!(element_text(&during, "allocations"), Some("1"), "{during}");
    let bytes: u64 = element_attr(&during, "total-bytes", "data-bytes").unwrap().parse().unwrap();
    assert_eq!(bytes, 20_000, "500 bytes each way, 20 times");
    assert!(during.contains("<td>v</td>"), "top users lists v: {during}");
    assert!(element_attr(&during, "line", "points").is_some());

    // Without the key the page shows no numbers (and the API answers 401).
    let r = admin.get("/admin/status", None);
    assert_eq!(r.status, 401);
    let page = admin.get("/", None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("switchback status") && !page.body.contains(KEY));

    rt.block_on(async { client.close().await.unwrap() });
    let (status, err) = admin.daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
}

/// `switchback admin drain` (POST /admin/drain, a Kubernetes preStop hook): `/readyz` turns 503,
/// a new Allocate gets 508 (no alternate server), the live allocation keeps refreshing, and
/// `--wait` returns once it is gone (and fails while it lives). The daemon still serves until
/// SIGTERM, which then exits at once.
#[test]
fn admin_drain_refuses_new_allocations_and_waits_for_the_live_ones() {
    let key_file = TempFile::new("drain-admin.key", &format!("{KEY}\n"));
    #[rustfmt::skip]
    let daemon = Daemon::start(&[
        "--realm", "r", "--user", "u:pw", "--allow-loopback-peers", "--listening-port", "0", "--no-tls",
        "--admin-listen", "127.0.0.1:0", "--admin-key-file", key_file.as_str(),
        "--metrics-listen", "127.0.0.1:0",
    ]);
    let readyz = |d: &Daemon| http_request(d.http_addr("metrics"), "GET", "/readyz", &[], "").status;
    let admin = Admin { daemon, key_file };
    let udp = admin.daemon.udp[0];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let live = rt.block_on(allocate(udp, "u", "pw"));
    assert_eq!(readyz(&admin.daemon), 200);

    let out = admin.cli(&["admin", "drain"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["draining"].as_bool(), answer["allocations"].as_u64()), (Some(true), Some(1)), "{answer}");
    assert_eq!(readyz(&admin.daemon), 503);
    let refused = rt.block_on(TurnClient::allocate(udp, Credentials::new("u", "pw")));
    assert!(matches!(refused, Err(ClientError::ErrorResponse { code: 508, .. })), "{:?}", refused.err());
    assert_eq!(rt.block_on(live.refresh(600)).unwrap(), 600, "the live allocation carries on");

    let out = admin.cli(&["admin", "drain", "--wait", "1"]);
    assert!(!out.status.success(), "one allocation is still live");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 allocations still live"), "{out:?}");
    rt.block_on(live.close()).unwrap();
    let out = admin.cli(&["admin", "drain", "--wait", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let (status, err) = admin.daemon.stop_with("TERM");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("admin API: draining"), "{err}");
}
