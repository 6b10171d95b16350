//! The files that hold credentials, read when the configuration is loaded:
//! `static-auth-secret-file` (one shared secret a line) and `users-file` (`name:password` or
//! `name:0x<32 hex digits>` a line). In both, blank lines and lines starting with `#` are skipped and
//! each line is trimmed. Errors name the key, the file and the line number, never a secret.

use std::path::Path;

use super::{ConfigError, SecretText};

/// The text of a credential file, or an error naming `key`.
pub(super) fn read(key: &str, path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::invalid(key, format!("cannot read {}: {e}", path.display())))
}

/// A warning when the secret file `path` (of `key`) can be read by its group or by others: the
/// operator forgot a `chmod 600`, and every local account can read the secret.
pub(super) fn permission_warning(key: &str, path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0)
            .then(|| format!("{key} {}: readable by group or others (mode {mode:03o}); chmod 600 it", path.display()))
    }
    #[cfg(not(unix))]
    {
        let _ = (key, path);
        None
    }
}

impl super::Config {
    /// The nonce key from `nonce-secret` (issue #16: one key for the fleet): HMAC-SHA256 of a fixed
    /// label under the secret, so the secret itself is never the key. `None` without a secret (the
    /// daemon then draws a random key).
    pub fn nonce_key(&self) -> Option<[u8; 32]> {
        use hmac::Mac as _;
        let secret = self.nonce_secret.as_ref()?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.0.as_bytes()).ok()?;
        mac.update(b"switchback nonce key v1");
        Some(mac.finalize().into_bytes().into())
    }
}

/// The meaningful lines of a credential file, numbered from 1.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

/// The secrets of a `static-auth-secret-file`, in order (the first mints).
pub fn parse_secrets(text: &str) -> Vec<SecretText> {
    lines(text).map(|(_, l)| SecretText(l.to_owned())).collect()
}

/// The users of a `users-file`: `name:password` or `name:0x<key>` a line. The error message gives
/// the line number only.
pub fn parse_users(text: &str) -> Result<Vec<(String, SecretText)>, String> {
    lines(text)
        .map(|(n, l)| match l.split_once(':') {
            Some((name, password)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), SecretText(password.trim().to_owned())))
            }
            _ => Err(format!("line {n}: expected NAME:PASSWORD or NAME:0x<32 hex digits>")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_one_a_line() {
        let s = parse_secrets("# rotated 2025-01\nnew-secret\n\n  old-secret  \r\n#old\n");
        assert_eq!(s, vec![SecretText("new-secret".into()), SecretText("old-secret".into())]);
        assert!(parse_secrets("\n# nothing\n").is_empty());
    }

    #[test]
    fn users_name_colon_password() {
        let u = parse_users("alice:pw:with:colons\n# c\n bob : 0x97b37d1e83e546d3c2ac44283b33af08 \n").unwrap();
        assert_eq!(u[0], ("alice".into(), SecretText("pw:with:colons".into())));
        assert_eq!(u[1], ("bob".into(), SecretText("0x97b37d1e83e546d3c2ac44283b33af08".into())));
        let err = parse_users("alice:pw\nhunter2\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(!err.contains("hunter2"), "the line is not echoed: {err}");
        assert!(parse_users(":pw").is_err());
    }

    #[test]
    fn the_nonce_key_comes_from_the_secret_or_its_file() {
        use crate::config::Config;
        assert_eq!(Config::default().nonce_key(), None);
        let a = Config::from_toml_str("nonce-secret = \"fleet-nonce-secret-1\"\n").unwrap();
        let b = Config::from_toml_str("nonce-secret = \"fleet-nonce-secret-1\"\n").unwrap();
        let c = Config::from_toml_str("nonce-secret = \"fleet-nonce-secret-2\"\n").unwrap();
        let key = a.nonce_key().unwrap();
        assert_eq!(Some(key), b.nonce_key(), "one secret, one key");
        assert_ne!(Some(key), c.nonce_key());
        assert_ne!(&key[..20], &b"fleet-nonce-secret-1"[..], "derived, not the secret itself");
        let e = Config::from_toml_str("nonce-secret = \"short\"\n").unwrap_err();
        assert_eq!(e.key(), Some("nonce-secret"), "{e}");
        let dir = std::env::temp_dir().join(format!("sb-nonce-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nonce-secret");
        std::fs::write(&path, "# fleet\nfleet-nonce-secret-1\n").unwrap();
        let from_file =
            Config::from_toml_str(&format!("nonce-secret-file = {:?}\n", path.display().to_string())).unwrap();
        assert_eq!(from_file.nonce_key(), Some(key));
        std::fs::write(&path, "\n").unwrap();
        let e = Config::from_toml_str(&format!("nonce-secret-file = {:?}\n", path.display().to_string())).unwrap_err();
        assert_eq!(e.key(), Some("nonce-secret-file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
