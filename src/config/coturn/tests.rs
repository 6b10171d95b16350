//! The converter's unit tests: each mapping and each note.

use std::net::SocketAddr;

use super::*;
use crate::config::Config;
use crate::server::RelayAddress;

/// The import of `text` and its notes, without the note that the file sets no credentials (most
/// of these snippets set none; `a_file_without_credentials_is_noted_as_stun_only` checks it).
fn import(text: &str) -> (Config, Vec<ImportNote>) {
    let import = import_coturn(text);
    let config = Config::from_toml_str(&import.to_toml()).unwrap_or_else(|e| panic!("{e}\n{}", import.to_toml()));
    let notes = import.notes.into_iter().filter(|n| !is_no_credentials(n)).collect();
    (config, notes)
}

fn is_no_credentials(note: &ImportNote) -> bool {
    note.line == 0 && note.option == "lt-cred-mech"
}

#[test]
fn a_file_without_credentials_is_noted_as_stun_only() {
    let notes = import_coturn("realm=x\nlistening-port=3478\n").notes;
    let note = notes.iter().find(|n| is_no_credentials(n)).unwrap_or_else(|| panic!("{notes:?}"));
    assert_eq!(note.kind, NoteKind::Differs);
    assert!(note.message.contains("STUN only") && note.message.contains("relay for anyone"), "{note}");
    for with in ["static-auth-secret=s\nrelay-ip=10.0.0.1\n", "lt-cred-mech\nuser=a:b\nrelay-ip=10.0.0.1\n"] {
        assert!(!import_coturn(with).notes.iter().any(is_no_credentials), "{with}");
    }
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
            // Listening on every interface (no valid listening-ip), 1.2.3.4 alone: no IPv6 relays.
            (4, "external-ip", Differs),
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
    let (c, notes) =
        import("listening-ip=0.0.0.0\nexternal-ip=203.0.113.4/10.0.0.5\nexternal-ip=203.0.113.6/10.0.0.6\nrealm=x\n");
    assert_eq!(notes, vec![]);
    assert_eq!(c.external_ip.len(), 2);
    assert_eq!(c.server_options().relay_addresses.len(), 2);
}

#[test]
fn a_secret_without_use_auth_secret_is_noted() {
    let (c, notes) = import("realm=x\nrelay-ip=10.0.0.1\nstatic-auth-secret=s\n");
    assert_eq!(c.static_auth_secret.len(), 1);
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].line, notes[0].option.as_str(), notes[0].kind), (3, "static-auth-secret", NoteKind::Differs));
    let (_, notes) = import("use-auth-secret\nstatic-auth-secret=s\nrelay-ip=10.0.0.1\n");
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

/// The notes as (line, option, kind), for comparing.
fn named(notes: &[ImportNote]) -> Vec<(usize, &str, NoteKind)> {
    notes.iter().map(|n| (n.line, n.option.as_str(), n.kind)).collect()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const REST: &str = "use-auth-secret\nstatic-auth-secret=s\nrealm=example.org\n";

#[test]
fn without_listening_ip_it_listens_on_every_interface() {
    let (c, notes) = import("realm=example.org\nlistening-port=3478\n");
    assert_eq!(notes, vec![]);
    assert_eq!(c.listening_ip, vec![ip("0.0.0.0"), ip("::")]);
    // An explicit listening-ip is kept as it is.
    let (c, _) = import("listening-ip=10.0.0.1\n");
    assert_eq!(c.listening_ip, vec![ip("10.0.0.1")]);
}

#[test]
fn external_ip_alone_relays_on_the_wildcard_and_advertises_it() {
    let (c, notes) = import(&format!("external-ip=203.0.113.7\n{REST}"));
    assert_eq!(c.listening_ip, vec![ip("0.0.0.0"), ip("::")]);
    c.validate_serving(false).unwrap();
    let relays = c.server_options().relay_addresses;
    assert!(relays.contains(&RelayAddress { local: ip("0.0.0.0"), advertised: ip("203.0.113.7") }), "{relays:?}");
    // IPv6 has nothing to advertise: noted on the external-ip line, with the relay-ip that fixes it.
    assert_eq!(named(&notes), vec![(1, "external-ip", NoteKind::Differs)]);
    let fix = "relay-ip = [\"0.0.0.0\", \"<this host's IPv6 address>\"]";
    assert!(notes[0].message.contains(fix), "{}", notes[0]);
    assert!(notes[0].message.contains("IPv6 relayed addresses are refused"), "{}", notes[0]);
    // The fix, with an address filled in, loads and relays both families.
    let fixed = import_coturn(&format!("external-ip=203.0.113.7\n{REST}")).to_toml()
        + "relay-ip = [\"0.0.0.0\", \"2001:db8::7\"]\n";
    let c = Config::from_toml_str(&fixed).unwrap();
    let relays = c.server_options().relay_addresses;
    assert!(relays.iter().all(|r| !r.advertised.is_unspecified()), "{relays:?}");
    assert_eq!(relays.len(), 2);
}

#[test]
fn a_private_mapping_on_every_interface_suggests_its_private_address() {
    let (c, notes) = import(&format!("external-ip=203.0.113.7/10.0.0.5\n{REST}"));
    c.validate_serving(false).unwrap();
    assert_eq!(named(&notes), vec![(1, "external-ip", NoteKind::Differs)]);
    assert!(notes[0].message.contains("relay-ip = [\"10.0.0.5\", \"<this host's IPv6 address>\"]"), "{}", notes[0]);
    // Listening on IPv4 only: nothing is lost, nothing to say.
    let (_, notes) = import(&format!("listening-ip=0.0.0.0\nexternal-ip=203.0.113.7\n{REST}"));
    assert_eq!(notes, vec![]);
}

#[test]
fn turn_on_every_interface_without_relay_or_external_ip_relays_on_the_arrival_address() {
    // coturn relays on each interface address; switchback on the address each Allocate arrived on
    // (IP_PKTINFO on the wildcard listener): nothing to note, and the daemon serves it.
    let imported = import_coturn(REST);
    assert_eq!(named(&imported.notes), vec![]);
    let c = Config::from_toml_str(&imported.to_toml()).unwrap();
    assert!(c.relay_ip.is_empty() && c.listening_ip.iter().all(|ip| ip.is_unspecified()), "{:?}", c.listening_ip);
    c.validate_serving(false).unwrap();
    assert!(c.server_options().relay_addresses.is_empty());
    let (c, notes) = import(&format!("relay-ip=10.0.0.5\n{REST}"));
    assert_eq!(notes, vec![]);
    c.validate_serving(false).unwrap();
}

#[test]
fn prometheus_listens_on_every_interface_on_9641() {
    let (c, notes) = import("realm=x\nprometheus\n");
    assert_eq!(c.metrics_listen, Some("0.0.0.0:9641".parse::<SocketAddr>().unwrap()));
    assert_eq!(named(&notes), vec![(2, "prometheus", NoteKind::Differs)]);
    assert!(notes[0].message.contains("prefer metrics-listen = \"127.0.0.1:9641\""), "{}", notes[0]);
    let (c, _) = import("prometheus-port=9100\nprometheus\n");
    assert_eq!(c.metrics_listen, Some("0.0.0.0:9100".parse().unwrap()));
    // An address given (coturn 4.7's prometheus-address): no advice to narrow it.
    let (c, notes) = import("prometheus\nprometheus-address=127.0.0.1\n");
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9641".parse().unwrap()));
    assert!(!notes[0].message.contains("prefer"), "{}", notes[0]);
    // Without prometheus the exporter is off.
    let (c, notes) = import("prometheus-port=9100\n");
    assert_eq!(c.metrics_listen, None);
    assert_eq!(named(&notes), vec![(1, "prometheus-port", NoteKind::CannotMap)]);
    let (_, notes) = import("prometheus\nprometheus-port=0\nprometheus-address=x\n");
    assert_eq!(
        named(&notes),
        vec![
            (1, "prometheus", NoteKind::Differs),
            (2, "prometheus-port", NoteKind::CannotMap),
            (3, "prometheus-address", NoteKind::CannotMap)
        ]
    );
}

#[test]
fn server_name_and_max_allocate_timeout_map() {
    let (c, notes) = import("server-name=turn.example.org\nmax-allocate-timeout=30\n");
    assert_eq!(notes, vec![]);
    assert_eq!(c.server_name.as_deref(), Some("turn.example.org"));
    assert_eq!(c.tcp_auth_timeout, 30);
    let (c, notes) = import("max-allocate-timeout=0\n");
    assert_eq!(named(&notes), vec![(1, "max-allocate-timeout", NoteKind::CannotMap)]);
    assert!(notes[0].message.contains("from 1 to"), "{}", notes[0]);
    assert_eq!(c.tcp_auth_timeout, Config::default().tcp_auth_timeout);
}

#[test]
fn relay_threads_become_workers() {
    let (c, notes) = import("relay-threads=4\n");
    assert_eq!((c.workers, notes), (4, vec![]));
    let (c, notes) = import("relay-threads=0\n");
    assert_eq!(c.workers, 1, "coturn's 0 is one thread, switchback's 0 one per core");
    assert_eq!(named(&notes), vec![(1, "relay-threads", NoteKind::Differs)]);
    let (c, notes) = import("relay-threads=-1\nrelay-threads\n");
    assert_eq!(c.workers, 0);
    assert_eq!(
        named(&notes),
        vec![(1, "relay-threads", NoteKind::CannotMap), (2, "relay-threads", NoteKind::CannotMap)]
    );
}

#[test]
fn one_alternate_server_per_family() {
    let (c, notes) = import(
        "alternate-server=192.0.2.1:5678\nalternate-server=192.0.2.2\nalternate-server=[2001:db8::1]:3479\n\
         alternate-server=2001:db8::2\nalternate-server=192.0.2.1:5678\nalternate-server=x\n",
    );
    let want: Vec<SocketAddr> = vec!["192.0.2.1:5678".parse().unwrap(), "[2001:db8::1]:3479".parse().unwrap()];
    assert_eq!(c.alternate_server, want);
    use NoteKind::*;
    let lines = named(&notes);
    assert_eq!(
        lines,
        vec![
            (1, "alternate-server", Differs),
            (2, "alternate-server", CannotMap),
            (4, "alternate-server", CannotMap),
            (6, "alternate-server", CannotMap)
        ]
    );
    assert!(notes[0].message.contains("alternate-threshold"), "{}", notes[0]);
    assert!(notes[1].message.contains("`192.0.2.2:3478` left out"), "{}", notes[1]);
    // Without a port: coturn's 3478.
    let (c, _) = import("alternate-server=[2001:db8::3]\nalternate-server=192.0.2.3\n");
    assert_eq!(c.alternate_server, vec!["[2001:db8::3]:3478".parse().unwrap(), "192.0.2.3:3478".parse().unwrap()]);
}

#[test]
fn oauth_needs_its_keys_by_hand() {
    let (c, notes) = import("oauth\nserver-name=turn.example.org\n");
    assert!(!c.oauth, "oauth without oauth-key would not load");
    assert_eq!(named(&notes), vec![(1, "oauth", NoteKind::CannotMap)]);
    assert!(notes[0].message.contains("oauth-key"), "{}", notes[0]);
}

#[test]
fn what_switchback_does_anyway_is_said_once() {
    let (c, notes) = import("no-loopback-peers\nno-multicast-peers\nno-tlsv1\nno-tlsv1_1\nno-software-attribute\n");
    assert!(!c.allow_loopback_peers);
    assert_eq!(notes.len(), 5);
    assert!(notes.iter().all(|n| n.kind == NoteKind::AlreadyDefault), "{notes:?}");
    let first = notes[0].to_string();
    assert!(first.starts_with("line 1: already the default: `no-loopback-peers`: "), "{first}");
    assert!(!first.contains("no switchback equivalent"), "{first}");
    assert!(notes[2].message.contains("TLS 1.2 and 1.3"), "{}", notes[2]);
}

#[test]
fn tls_logging_and_pid_file_say_what_to_use_instead() {
    let import = import_coturn(
        "cipher-list=\"DEFAULT\"\nno-tlsv1_2\nlog-file=/var/log/turn.log\npidfile=\"/var/run/turnserver.pid\"\n\
         syslog\ndh-file=/etc/dh.pem\n",
    );
    let notes: Vec<&ImportNote> = import.notes.iter().filter(|n| !is_no_credentials(n)).collect();
    let kinds: Vec<NoteKind> = notes.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, vec![NoteKind::CannotMap; 5]);
    let message = |i: usize| notes[i].message.as_str();
    assert!(message(0).contains("TLS 1.3 and 1.2") && message(0).contains("cipher suites"), "{}", message(0));
    assert!(message(1).contains("TLS 1.2"), "{}", message(1));
    // log-file maps to switchback's log-file.
    assert_eq!(import.table.get("log-file").and_then(|v| v.as_str()), Some("/var/log/turn.log"));
    assert!(message(2).contains("systemd") && message(2).contains("no pid-file key"), "{}", message(2));
    assert!(message(3).contains("stderr") && message(3).contains("journal"), "{}", message(3));
    assert!(import.notes.iter().all(|n| !n.message.contains("no switchback equivalent")));
}

#[test]
fn the_tables_agree_with_switchback_keys() {
    let keys = keys();
    for (name, key, _) in MAPPED {
        assert!(keys.contains(key), "{name} maps to {key}, not a switchback key");
    }
    for key in ["workers", "alternate-server", "metrics-listen", "users", "verbose", "nonce-lifetime"] {
        assert!(keys.contains(&key), "{key}");
    }
    // Each option is in one place only: a mapped one never also gets a note.
    let noted = tables::IMPLIED.iter().chain(tables::ALREADY).chain(tables::REASONS).map(|(n, _)| *n);
    let mut seen = std::collections::BTreeSet::new();
    for name in noted.chain(MAPPED.iter().map(|(n, _, _)| *n)) {
        assert!(seen.insert(name), "{name} is listed twice");
    }
    for special in ["user", "verbose", "relay-threads", "alternate-server", "oauth", "prometheus", "prometheus-port"] {
        assert!(!seen.contains(special), "{special} is handled on its own");
    }
}

#[test]
fn redis_userdb_becomes_the_same_key_as_a_url() {
    let text = "realm=north.gov\nuse-auth-secret\nredis-userdb=\"ip=127.0.0.1 dbname=2 password=turn port=6380 \
                connect_timeout=30\"\n";
    let import = import_coturn(text);
    assert!(!import.notes.iter().any(is_no_credentials), "the database holds the credentials: {:?}", import.notes);
    let (c, notes) = self::import(text);
    assert_eq!(c.redis_userdb.as_ref().map(|u| u.0.as_str()), Some("redis://:turn@127.0.0.1:6380/2"));
    let note = notes.iter().find(|n| n.option == "redis-userdb").unwrap_or_else(|| panic!("{notes:?}"));
    assert_eq!((note.line, note.kind), (3, NoteKind::Differs));
    assert!(note.message.contains("redis-userdb-file"), "{note}");
    let (c, notes) = self::import("redis-userdb=redis://127.0.0.1:6379/0\n");
    assert_eq!(c.redis_userdb.as_ref().map(|u| u.0.as_str()), Some("redis://127.0.0.1:6379/0"));
    assert!(notes.iter().all(|n| !n.message.contains("redis-userdb-file")), "{notes:?}");
    let (c, notes) = self::import("redis-userdb=\"ip=127.0.0.1 tls=true ca=/etc/ca.pem\"\n");
    assert_eq!(c.redis_userdb, None);
    assert!(notes.iter().any(|n| n.option == "redis-userdb" && n.kind == NoteKind::CannotMap), "{notes:?}");
}
