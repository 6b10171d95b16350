//! The subcommands that start no listener: `credentials`, `token`, `import-coturn`.

use std::net::SocketAddr;
use std::process::ExitCode;

use switchback::config::Config;
use switchback::config::duration::format_duration;
use switchback::config::{ConfigError, Overrides};
use switchback::daemon::unix_now;
use switchback::http::ice_servers::IceServers;

use crate::args::{CredentialsArgs, ImportCoturnArgs, TokenArgs};
use crate::config_error;

/// `switchback credentials`: mint with the first secret, print, exit.
pub fn credentials(args: &CredentialsArgs, flags: Result<Overrides, ConfigError>) -> ExitCode {
    let warnings = args.warnings();
    let config = match flags.and_then(|o| args.source.load(&args.overrides(o))) {
        Ok(config) => config,
        Err(e) => return config_error(&warnings, e),
    };
    let Some(rest) = config.rest_credentials() else {
        let e =
            "no REST secret: give static-auth-secret (in -c FILE), --static-auth-secret-file or --static-auth-secret";
        return config_error(&warnings, e);
    };
    for w in warnings.iter().map(|w| w.to_string()).chain(config.deprecation_warnings()) {
        eprintln!("warning: {w}");
    }
    if rest.max_lifetime_secs != 0 && args.ttl > rest.max_lifetime_secs {
        eprintln!(
            "warning: --ttl {} capped at max-credential-lifetime ({})",
            format_duration(args.ttl),
            format_duration(rest.max_lifetime_secs)
        );
    }
    let now = unix_now();
    let Some((username, password)) = rest.mint(&args.user, args.ttl, now) else {
        return config_error(&warnings, "no REST secret");
    };
    let expiry = rest.expiry(&username).unwrap_or(now);
    println!("username: {username}");
    println!("password: {password}");
    println!("expires: {expiry} (unix time, in {})", format_duration(expiry.saturating_sub(now)));
    println!("{}", ice_servers(&config, Some((&username, &password))));
    ExitCode::SUCCESS
}

/// The `iceServers` of the configured listeners (the ports configured, not bound: nothing listens
/// here), named as the daemon names them ([`switchback::daemon::banner::ice_servers`]).
fn ice_servers(config: &Config, credentials: Option<(&str, &str)>) -> IceServers {
    let at = |off: bool, port: u16| -> Vec<SocketAddr> {
        let ips = if off { &[][..] } else { &config.listening_ip[..] };
        ips.iter().map(|&ip| SocketAddr::new(ip, port)).collect()
    };
    let port = config.listening_port;
    let tls = at(!config.has_tls_certificate(), config.tls_port());
    switchback::daemon::banner::ice_servers(
        config,
        &at(config.no_udp, port),
        &at(config.no_tcp, port),
        &tls,
        credentials,
    )
}

/// `switchback import-coturn`: convert, print the notes, check, write.
pub fn import_coturn(args: &ImportCoturnArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(text) => text,
        Err(e) => return config_error(&[], format!("cannot read {}: {e}", args.file.display())),
    };
    let import = switchback::config::coturn::import_coturn(&text);
    for note in &import.notes {
        eprintln!("note: {note}");
    }
    let toml = import.to_toml();
    if let Err(e) = Config::from_toml_str(&toml) {
        return config_error(&[], format_args!("the imported configuration is not valid: {e}"));
    }
    let Some(path) = &args.output else {
        print!("{toml}");
        return ExitCode::SUCCESS;
    };
    match write_private(path, &toml) {
        Ok(()) => {
            eprintln!("wrote {} ({} notes)", path.display(), import.notes.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to `path` as a file only its owner can read (mode 0600 on Unix), safely in a
/// shared directory: a symbolic link at `path` is refused, not followed, and an existing file is
/// replaced, never written into or chmodded — the text goes to a fresh file made next to it with
/// O_EXCL (which does not follow links either), then renamed over `path`.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a symbolic link; refusing to follow it"));
    }
    let name =
        path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let temp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// `switchback token`: mint an access token with the first token-key, print it, exit.
pub fn token(args: &TokenArgs, flags: Result<Overrides, ConfigError>) -> ExitCode {
    let warnings: Vec<&str> = args.keys.warnings().into_iter().collect();
    let keys = flags
        .and_then(|o| Config::from_sources(args.config.as_deref(), o.into_table()))
        .and_then(|config| config.token_keys());
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => return config_error(&warnings, e),
    };
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let jti = match args.jti.clone().or_else(switchback::http::api::random_id) {
        Some(jti) => jti,
        None => return config_error(&[], "no randomness from the OS for the token id"),
    };
    match keys.mint(&args.user, args.ttl, unix_now(), &jti) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e @ switchback::auth::token::TokenError::BadSubject) => config_error(&[], format!("--user: {e}")),
        Err(e) => config_error(&[], format!("token-key: {e}")),
    }
}
