//! The read-only status page at `/` on `admin-listen`: plain HTML, CSS and JavaScript in one
//! string, no build step. The page itself holds no data; it asks for the admin key (or takes it
//! from the URL fragment `#key=…`, which browsers never send to the server), keeps it in
//! `sessionStorage` and polls `GET /admin/status` with it as a Bearer header: live allocation count,
//! relayed throughput over the last five minutes as an SVG chart, and the top users by bytes.

use axum::http::header;
use axum::response::IntoResponse;

/// `GET /`.
pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // Everything is inline; nothing is loaded from elsewhere.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        PAGE,
    )
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>switchback status</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.3em; }
.cards { display: flex; gap: 1em; }
.card { border: 1px solid #ccc; border-radius: 6px; padding: .8em 1.2em; min-width: 10em; }
.card b { display: block; font-size: 1.6em; }
svg { border: 1px solid #ccc; margin-top: 1em; }
table { border-collapse: collapse; margin-top: 1em; }
td, th { padding: .2em .8em; border-bottom: 1px solid #eee; text-align: left; }
#error { color: #b00; }
</style>
</head>
<body>
<h1>switchback status</h1>
<form id="login" hidden>
  <label>Admin key <input id="key" type="password" autocomplete="off"></label>
  <button>Show</button>
</form>
<p id="error"></p>
<div class="cards">
  <div class="card">Allocations<b id="allocations">–</b></div>
  <div class="card">Relayed now<b id="throughput">–</b></div>
  <div class="card">Relayed in total<b id="total-bytes">–</b></div>
  <div class="card">State<b id="state">–</b></div>
</div>
<svg id="chart" width="600" height="150" viewBox="0 0 600 150" role="img" aria-label="throughput">
  <polyline id="line" fill="none" stroke="#2a6" stroke-width="2" points=""></polyline>
  <text id="peak" x="4" y="14" font-size="11">peak –</text>
</svg>
<h2>Top users by bytes</h2>
<table><thead><tr><th>User</th><th>Allocations</th><th>Bytes</th></tr></thead><tbody id="users"></tbody></table>
<p id="updated" data-polls="0"></p>
<script>
"use strict";
const params = new URLSearchParams(location.hash.slice(1));
const interval = Math.max(200, Number(params.get("interval")) || 1000);
const samples = [];          // [time ms, total bytes]
const WINDOW_MS = 5 * 60 * 1000;
let key = params.get("key") || sessionStorage.getItem("switchback-admin-key") || "";
if (params.get("key")) { history.replaceState(null, "", location.pathname); }

function human(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
}

function draw() {
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i][0] - samples[i - 1][0]) / 1000;
    rates.push([samples[i][0], dt > 0 ? (samples[i][1] - samples[i - 1][1]) / dt : 0]);
  }
  const peak = Math.max(1, ...rates.map(r => r[1]));
  const now = Date.now();
  document.getElementById("line").setAttribute("points", rates.map(([t, r]) =>
    (600 - (now - t) / WINDOW_MS * 600).toFixed(1) + "," + (145 - r / peak * 125).toFixed(1)).join(" "));
  document.getElementById("peak").textContent = "peak " + human(peak) + "/s";
  const last = rates.length ? rates[rates.length - 1][1] : 0;
  document.getElementById("throughput").textContent = human(last) + "/s";
}

async function poll() {
  if (!key) { document.getElementById("login").hidden = false; return; }
  try {
    const r = await fetch("/admin/status", { headers: { "Authorization": "Bearer " + key } });
    if (r.status === 401) {
      sessionStorage.removeItem("switchback-admin-key");
      key = "";
      document.getElementById("error").textContent = "wrong admin key";
      document.getElementById("login").hidden = false;
      return;
    }
    const s = await r.json();
    sessionStorage.setItem("switchback-admin-key", key);
    document.getElementById("error").textContent = "";
    document.getElementById("login").hidden = true;
    const total = s.to_peer_bytes + s.to_client_bytes;
    samples.push([Date.now(), total]);
    while (samples.length && samples[0][0] < Date.now() - WINDOW_MS) samples.shift();
    document.getElementById("allocations").textContent = String(s.allocations);
    document.getElementById("total-bytes").textContent = human(total);
    document.getElementById("total-bytes").dataset.bytes = String(total);
    document.getElementById("state").textContent = s.draining ? "draining" : "serving";
    const body = document.getElementById("users");
    body.replaceChildren(...s.top_users.map(u => {
      const tr = document.createElement("tr");
      for (const v of [u.user, String(u.allocations), human(u.bytes)]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      return tr;
    }));
    draw();
    const updated = document.getElementById("updated");
    updated.dataset.polls = String(Number(updated.dataset.polls) + 1);
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the server: " + e;
  }
  setTimeout(poll, interval);
}

document.getElementById("login").addEventListener("submit", ev => {
  ev.preventDefault();
  key = document.getElementById("key").value.trim();
  poll();
});
poll();
</script>
</body>
</html>
"##;
