//! What the converter says about the coturn options it does not carry over as values: the ones
//! switchback already behaves like (silently, or with a note), and why the others cannot map.

/// Options with nothing to carry over and nothing worth saying: switchback already behaves that way.
pub(super) const IMPLIED: &[(&str, &str)] = &[
    ("lt-cred-mech", "long-term credentials are on whenever users or a secret are configured"),
    ("fingerprint", "switchback answers with FINGERPRINT whenever the request carries one"),
    ("no-dtls", "switchback has no DTLS listener"),
];

/// Options that ask for what is already switchback's default (and cannot be turned off): a note
/// says so, so that nobody looks for the key.
pub(super) const ALREADY: &[(&str, &str)] = &[
    (
        "no-loopback-peers",
        "loopback peers (127.0.0.0/8, ::1) are denied by default; only allow-loopback-peers lets them in",
    ),
    (
        "no-multicast-peers",
        "multicast and broadcast peers are in switchback's default deny list (docs/security-peer-policy.md)",
    ),
    ("no-tlsv1", "switchback's TLS (rustls) speaks only TLS 1.2 and 1.3; TLS 1.0 is never offered"),
    ("no-tlsv1_1", "switchback's TLS (rustls) speaks only TLS 1.2 and 1.3; TLS 1.1 is never offered"),
    ("no-software-attribute", "switchback sends SOFTWARE only when the `software` key is set"),
    (
        "simple-log",
        "switchback writes log-file under the exact name given (no date added); rotate it with logrotate and \
         SIGUSR1",
    ),
];

/// Why some well-known options cannot be mapped; any other unknown option gets a generic note.
pub(super) const REASONS: &[(&str, &str)] = &[
    ("syslog", "switchback logs to stderr; journald keeps it under systemd (and forwards it to syslog if set up)"),
    ("no-stdout-log", "switchback logs to stderr only (never to stdout)"),
    ("new-log-timestamp", "switchback's timestamps are fixed (log-format: human or json)"),
    ("no-rfc5780", "switchback's rfc5780 is off by default; nothing to turn off"),
    ("no-cli", "no telnet CLI; nothing to turn off"),
    (
        "response-origin-only-with-rfc5780",
        "switchback sends RESPONSE-ORIGIN and OTHER-ADDRESS only with rfc5780 on; nothing to turn off",
    ),
    ("no-stun-backward-compatibility", "switchback answers RFC 3489 Binding requests (RFC 8489 §11); no switch"),
    ("no-auth", "switchback serves TURN only with credentials (STUN Binding needs none)"),
    ("stun-only", "leave out users and static-auth-secret: without credentials switchback serves STUN only"),
    ("userdb", "no user database: list users under `users` or in users-file"),
    ("db", "no user database: list users under `users` or in users-file"),
    ("psql-userdb", "no user database: list users under `users` or in users-file"),
    ("sql-userdb", "no user database: list users under `users` or in users-file"),
    ("mysql-userdb", "no user database: list users under `users` or in users-file"),
    ("mongo-userdb", "no user database: list users under `users` or in users-file"),
    ("secret-key-file", "it decrypts passwords of coturn's database; switchback has no database"),
    ("listening-device", "bind to an address with listening-ip instead"),
    ("relay-device", "bind to an address with relay-ip instead"),
    ("alt-tls-listening-port", "RFC 5780 runs on UDP only: no alternate TLS port"),
    (
        "tcp-proxy-port",
        "no separate PROXY-protocol port: set proxy-protocol = true and proxy-protocol-from = the balancers' \
         addresses (it then applies to every TCP and TLS listener)",
    ),
    ("tls-alternate-server", "no separate alternate server for TLS clients"),
    ("cli-ip", "no telnet CLI; see admin-listen for the admin API"),
    ("cli-port", "no telnet CLI; see admin-listen for the admin API"),
    ("cli-password", "no telnet CLI; see admin-listen and admin-key for the admin API"),
    ("web-admin", "no web admin: see admin-listen and admin-key (HTTP admin API and status page)"),
    ("web-admin-ip", "no web admin: see admin-listen and admin-key (HTTP admin API and status page)"),
    ("web-admin-port", "no web admin: see admin-listen and admin-key (HTTP admin API and status page)"),
    (
        "pidfile",
        "switchback writes no pid file (there is no pid-file key): run it under systemd \
         (contrib/switchback.service; `systemctl show -p MainPID switchback`) or a container",
    ),
    ("daemon", "switchback stays in the foreground: run it under systemd (contrib/switchback.service)"),
    ("proc-user", "let systemd or the container choose the user"),
    ("proc-group", "let systemd or the container choose the group"),
    (
        "cipher-list",
        "switchback's TLS (rustls) offers only TLS 1.3 and 1.2 with its own safe cipher suites (AES-GCM and \
         ChaCha20-Poly1305 with ECDHE forward secrecy); the list cannot be changed",
    ),
    ("dh-file", "rustls has no finite-field Diffie-Hellman (ECDHE only)"),
    ("dh566", "rustls has no finite-field Diffie-Hellman (ECDHE only)"),
    ("dh1066", "rustls has no finite-field Diffie-Hellman (ECDHE only)"),
    ("ec-curve-name", "rustls chooses its key exchange groups (X25519, P-256, P-384)"),
    ("no-tlsv1_2", "switchback offers TLS 1.2 beside 1.3 (rustls); there is no switch to turn 1.2 off"),
    ("pkey-pwd", "switchback reads unencrypted keys only: decrypt the key (mode 0600) instead"),
    ("ca-file", "no client certificates"),
    ("secure-stun", "no authenticated Binding"),
    ("no-udp-relay", "no switch to refuse UDP relays"),
    ("channel-lifetime", "channel bindings last RFC 8656's fixed 600 s"),
    ("permission-lifetime", "permissions last RFC 8656's fixed 300 s"),
    ("prometheus-username-labels", "switchback's metrics carry no per-user labels"),
    ("keep-address-family", "RFC 8656 address families are always kept"),
    ("allocation-default-address-family", "the default address family is the request's"),
];
