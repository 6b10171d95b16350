//! The credentials a load run allocates with: REST credentials minted from the server's shared
//! secret (draft-uberti-behave-turn-rest; one fresh username per client, so per-user limits never
//! apply), or static users (`user = NAME:PASSWORD` on the server; the clients take them in turn, so
//! per-user limits apply to each).

use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::stun::rest_credentials;

/// Where the load's usernames and passwords come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The REST shared secret (`static-auth-secret` on the server).
    Rest { secret: String },
    /// Static users `(name, password)`, at least one; client `i` uses user `i % len`.
    Static { users: Vec<(String, String)> },
}

impl Credentials {
    /// Exactly one source: `--secret`, or `--user` (repeatable) and/or `--users-file`.
    pub fn from_args(secret: Option<&str>, users: &[String], users_file: Option<&Path>) -> Result<Credentials> {
        let mut statics = users.iter().map(|u| parse_user(u)).collect::<Result<Vec<_>>>()?;
        if let Some(path) = users_file {
            let text = std::fs::read_to_string(path).with_context(|| format!("--users-file {}", path.display()))?;
            statics.extend(parse_users_file(&text).with_context(|| format!("--users-file {}", path.display()))?);
        }
        match (secret, statics.is_empty()) {
            (Some(_), false) => bail!(
                "give either --secret (the server's REST shared secret) or --user/--users-file (static users), not both"
            ),
            (Some(secret), true) => Ok(Credentials::Rest { secret: secret.to_string() }),
            (None, false) => Ok(Credentials::Static { users: statics }),
            (None, true) => bail!(
                "no credentials: give --secret SECRET (the server's static-auth-secret, REST credentials) or \
                 --user NAME:PASSWORD (a static user; repeat it or use --users-file to spread the load over several)"
            ),
        }
    }

    /// The username and password of client `i`; `tag` names REST users (`alloc` gives `alloc7`).
    pub fn for_client(&self, tag: &str, i: usize) -> (String, String) {
        match self {
            Credentials::Rest { secret } => rest_credentials(secret, &format!("{tag}{i}")),
            Credentials::Static { users } => {
                users.get(i % users.len().max(1)).cloned().unwrap_or_else(|| (String::new(), String::new()))
            }
        }
    }

    /// How many distinct users the clients spread over (`None`: one per client, REST).
    pub fn user_count(&self) -> Option<usize> {
        match self {
            Credentials::Rest { .. } => None,
            Credentials::Static { users } => Some(users.len()),
        }
    }
}

/// `NAME:PASSWORD` (the password may hold colons; neither part may be empty).
pub fn parse_user(s: &str) -> Result<(String, String)> {
    match s.split_once(':') {
        Some((name, password)) if !name.is_empty() && !password.is_empty() => {
            Ok((name.to_string(), password.to_string()))
        }
        _ => bail!("a static user is NAME:PASSWORD, got {:?}", redact(s)),
    }
}

/// One `NAME:PASSWORD` a line; blank lines and lines starting with `#` are skipped.
pub fn parse_users_file(text: &str) -> Result<Vec<(String, String)>> {
    let mut users = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        users.push(parse_user(line).with_context(|| format!("line {}", n + 1))?);
    }
    if users.is_empty() {
        bail!("no NAME:PASSWORD line");
    }
    Ok(users)
}

/// The name part only, for error messages (a password never goes to the terminal).
fn redact(s: &str) -> String {
    match s.split_once(':') {
        Some((name, _)) => format!("{name}:…"),
        None if s.len() > 3 => "…".to_string(),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn exactly_one_source_of_credentials() {
        let err = Credentials::from_args(None, &[], None).unwrap_err().to_string();
        assert!(err.contains("--secret") && err.contains("--user"), "{err}");
        let err = Credentials::from_args(Some("s"), &users(&["a:b"]), None).unwrap_err().to_string();
        assert!(err.contains("not both"), "{err}");
        assert_eq!(Credentials::from_args(Some("s"), &[], None).unwrap(), Credentials::Rest { secret: "s".into() });
        let c = Credentials::from_args(None, &users(&["a:b", "c:d:e"]), None).unwrap();
        assert_eq!(c, Credentials::Static { users: vec![("a".into(), "b".into()), ("c".into(), "d:e".into())] });
    }

    #[test]
    fn a_bad_user_is_refused_without_echoing_its_password() {
        for bad in ["alice", ":pw", "alice:", ""] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
        let err = format!("{:#}", Credentials::from_args(None, &users(&["secretpassword"]), None).unwrap_err());
        assert!(err.contains("NAME:PASSWORD") && !err.contains("secretpassword"), "{err}");
    }

    #[test]
    fn static_users_are_taken_in_turn() {
        let c = Credentials::from_args(None, &users(&["a:1", "b:2"]), None).unwrap();
        let names: Vec<String> = (0..5).map(|i| c.for_client("alloc", i).0).collect();
        assert_eq!(names, ["a", "b", "a", "b", "a"]);
        assert_eq!(c.user_count(), Some(2));
    }

    #[test]
    fn rest_users_are_one_per_client() {
        let c = Credentials::Rest { secret: "s".into() };
        let (user, pass) = c.for_client("alloc", 7);
        assert!(user.ends_with(":alloc7"), "{user}");
        assert!(!pass.is_empty());
        assert_eq!(c.user_count(), None);
    }

    #[test]
    fn users_file_skips_comments_and_names_the_bad_line() {
        let got = parse_users_file("# load users\n\nu1:p1\n  u2:p2  \n").unwrap();
        assert_eq!(got, [("u1".to_string(), "p1".to_string()), ("u2".to_string(), "p2".to_string())]);
        let err = format!("{:#}", parse_users_file("u1:p1\nbroken\n").unwrap_err());
        assert!(err.contains("line 2"), "{err}");
        assert!(parse_users_file("# nothing\n").is_err());
    }
}
