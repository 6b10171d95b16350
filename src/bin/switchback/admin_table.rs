//! `switchback admin list` as a table for people (`--json` keeps the admin API's JSON for scripts):
//! one row per allocation of `GET /admin/allocations` (see `switchback::http::admin`), each column
//! as wide as its widest cell, numbers right-aligned, and a count line.

use serde_json::Value;

/// A column: its header, whether it is right-aligned, and the cell of an allocation.
struct Column {
    header: &'static str,
    right: bool,
    cell: fn(&Value) -> String,
}

/// The columns, in order: the relayed address first (what `admin end` takes).
const COLUMNS: &[Column] = &[
    Column { header: "RELAY", right: false, cell: relay },
    Column { header: "USER", right: false, cell: |a| text(a, "user") },
    Column { header: "TRANSPORT", right: false, cell: transport },
    Column { header: "CLIENT", right: false, cell: |a| text(a, "client") },
    Column { header: "AGE", right: true, cell: |a| duration(a, "age_secs") },
    Column { header: "EXPIRES IN", right: true, cell: |a| duration(a, "expires_in_secs") },
    Column { header: "TO PEER", right: true, cell: |a| bytes(a, "to_peer_bytes") },
    Column { header: "TO CLIENT", right: true, cell: |a| bytes(a, "to_client_bytes") },
];

/// The table of a `GET /admin/allocations` answer, or `None` when `answer` is not one.
pub fn allocations_table(answer: &Value) -> Option<String> {
    let allocations = answer.get("allocations")?.as_array()?;
    let count = answer.get("count").and_then(Value::as_u64)?;
    let rows: Vec<Vec<String>> = allocations.iter().map(|a| COLUMNS.iter().map(|c| (c.cell)(a)).collect()).collect();
    let headers: Vec<String> = COLUMNS.iter().map(|c| c.header.to_owned()).collect();
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| std::iter::once(&headers).chain(&rows).filter_map(|r| r.get(i)).map(|c| c.chars().count()).max())
        .map(|w| w.unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&headers).chain(&rows) {
        out.push_str(&line(row, &widths));
    }
    let noun = if count == 1 { "allocation" } else { "allocations" };
    match allocations.len() {
        listed if u64::try_from(listed).is_ok_and(|l| l < count) => {
            out.push_str(&format!("{count} {noun}, the first {listed} listed\n"));
        }
        _ => out.push_str(&format!("{count} {noun}\n")),
    }
    Some(out)
}

/// One row, cells padded to `widths`, two spaces apart, without trailing blanks.
fn line(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> = COLUMNS
        .iter()
        .zip(cells.iter().zip(widths))
        .map(|(column, (cell, &width))| match column.right {
            true => format!("{cell:>width$}"),
            false => format!("{cell:<width$}"),
        })
        .collect();
    format!("{}\n", padded.join("  ").trim_end())
}

/// A string field, `-` when absent.
fn text(a: &Value, key: &str) -> String {
    a.get(key).and_then(Value::as_str).unwrap_or("-").to_owned()
}

/// The relayed address, and the second one of a dual allocation.
fn relay(a: &Value) -> String {
    match a.get("relay_extra").and_then(Value::as_str) {
        Some(extra) => format!("{},{extra}", text(a, "relay")),
        None => text(a, "relay"),
    }
}

/// The client's transport, with `+tcp-relay` for an RFC 6062 allocation.
fn transport(a: &Value) -> String {
    let tcp_relay = a.get("tcp_relay").and_then(Value::as_bool).unwrap_or(false);
    format!("{}{}", text(a, "transport"), if tcp_relay { "+tcp-relay" } else { "" })
}

/// Seconds as `45s`, `12m05s`, `3h07m` or `2d04h`.
fn duration(a: &Value, key: &str) -> String {
    let Some(secs) = a.get(key).and_then(Value::as_u64) else { return "-".to_owned() };
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

/// Bytes as `512 B`, `1.5 KiB`, `20.0 MiB`…
fn bytes(a: &Value, key: &str) -> String {
    let Some(n) = a.get(key).and_then(Value::as_u64) else { return "-".to_owned() };
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    for unit in ["KiB", "MiB", "GiB", "TiB"] {
        if value < 1024.0 {
            return format!("{value:.1} {unit}");
        }
        value /= 1024.0;
    }
    format!("{value:.1} PiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn allocation(relay: &str, user: &str, age: u64, to_peer: u64) -> Value {
        json!({
            "user": user, "username": user, "transport": "udp", "client": "127.0.0.1:50000",
            "server": "127.0.0.1:3478", "relay": relay, "relay_local": relay, "relay_extra": null,
            "tcp_relay": false, "age_secs": age, "expires_in_secs": 600, "to_peer_bytes": to_peer,
            "to_client_bytes": 0, "to_peer_packets": 1, "to_client_packets": 0,
        })
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut long = allocation("[2001:db8::1]:49160", "a-much-longer-user-name", 3725, 1536);
        long["relay_extra"] = json!("192.0.2.1:49161");
        long["tcp_relay"] = json!(true);
        let answer = json!({
            "count": 2, "truncated": false,
            "allocations": [allocation("192.0.2.1:49152", "u", 5, 12), long],
        });
        let table = allocations_table(&answer).unwrap();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "RELAY                                USER                     TRANSPORT      CLIENT             \
                 AGE  EXPIRES IN  TO PEER  TO CLIENT",
                "192.0.2.1:49152                      u                        udp            127.0.0.1:50000     \
                 5s      10m00s     12 B        0 B",
                "[2001:db8::1]:49160,192.0.2.1:49161  a-much-longer-user-name  udp+tcp-relay  127.0.0.1:50000  \
                 1h02m      10m00s  1.5 KiB        0 B",
                "2 allocations",
            ]
        );
    }

    #[test]
    fn empty_truncated_and_not_a_listing() {
        let empty = allocations_table(&json!({"count": 0, "truncated": false, "allocations": []})).unwrap();
        assert_eq!(empty, "RELAY  USER  TRANSPORT  CLIENT  AGE  EXPIRES IN  TO PEER  TO CLIENT\n0 allocations\n");
        let one = json!({"count": 3, "truncated": true, "allocations": [allocation("192.0.2.1:1", "u", 0, 0)]});
        assert!(allocations_table(&one).unwrap().ends_with("3 allocations, the first 1 listed\n"));
        assert_eq!(allocations_table(&json!({"ended": 2})), None);
        assert_eq!(bytes(&json!({"b": 5u64 << 30}), "b"), "5.0 GiB");
        assert_eq!(duration(&json!({"d": 180_000}), "d"), "2d02h");
    }
}
