//! Loading: TOML text or a file, with the flags laid over it, checked key by key so that an error
//! names the key, then the credential files read and the whole validated.

use std::path::Path;

use serde::Deserialize;

use super::{Config, ConfigError, SecretText, SourceTable, parse_secrets, parse_users, secret_files, suggest, values};

/// Keys whose value is a path: relative ones in a file are relative to the file's directory.
const PATH_KEYS: &[&str] = &[
    "static-auth-secret-file",
    "users-file",
    "cert",
    "pkey",
    "revocation-file",
    "admin-key-file",
    "api-key-file",
    "token-key-file",
    "usage-file",
    "redis-url-file",
    "redis-userdb-file",
    "log-file",
];

/// Every key of [`Config`] in `turn.toml` spelling, in the struct's order: the field names serde
/// derives (`kebab-case`), so a key is spelled once, on its field.
pub fn keys() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
    use std::cell::Cell;

    /// A deserializer that only records the field names it is asked for.
    struct Capture<'a>(&'a Cell<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for Capture<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(fields);
            Err(de::Error::custom("captured"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let cell = Cell::new(&[][..]);
    let _ = Config::deserialize(Capture(&cell));
    cell.get()
}

impl Config {
    /// Parses and validates `turn.toml` text.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        Config::from_table(parse_table(text)?)
    }

    /// Reads, parses and validates a `turn.toml` file; errors name the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_sources(Some(path), toml::Table::new())
    }

    /// Checks the keys and values of a table, builds the configuration, reads its credential files
    /// and validates it. A single value where a list is expected is a one-element list.
    pub fn from_table(mut table: toml::Table) -> Result<Config, ConfigError> {
        values::lists_from_single_values(&mut table);
        check_table(&table)?;
        let source = SourceTable(Some(table.clone()));
        let mut config: Config =
            table.try_into().map_err(|e: toml::de::Error| ConfigError::invalid("config", e.message()))?;
        config.source = source;
        config.read_secret_files()?;
        config.validate()?;
        // The revocation file must be readable at start (SIGHUP re-reads it).
        config.revocation_list()?;
        Ok(config)
    }

    /// The daemon's merge: the file at `path` (if any), with `overrides` (the environment and the
    /// flags, same keys) laid over it key by key. Errors about a key of the file name the file and
    /// the key's line; relative paths in the file are relative to the file's directory.
    pub fn from_sources(path: Option<&Path>, overrides: toml::Table) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            check_table(&overrides)?;
            return Config::from_table(overrides);
        };
        let file = ConfigFile::read(path)?;
        let mut table = file.table()?;
        resolve_paths(&mut table, path.parent().unwrap_or(Path::new("")));
        check_table(&overrides)?;
        // A key's error is the file's when the value in force came from it.
        let from_file: Vec<String> = table.keys().filter(|k| !overrides.contains_key(*k)).cloned().collect();
        table.extend(overrides);
        Config::from_table(table).map_err(|e| match e.key() {
            Some(key) if from_file.iter().any(|k| k == key) => file.error(e),
            _ => e,
        })
    }

    /// Reads `static-auth-secret-file` (its secrets go after those of `static-auth-secret`) and
    /// `users-file` (its users join `users`). [`Config::from_table`] calls it; reading twice adds
    /// nothing. Errors name the key and the file, never a secret.
    pub fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.static_auth_secret_file {
            let key = "static-auth-secret-file";
            let secrets = parse_secrets(&secret_files::read(key, path)?);
            if secrets.is_empty() {
                return Err(ConfigError::invalid(key, format!("{} holds no secret", path.display())));
            }
            for secret in secrets {
                if !self.static_auth_secret.contains(&secret) {
                    self.static_auth_secret.push(secret);
                }
            }
        }
        self.read_redis_url_file()?;
        self.read_redis_userdb()?;
        if let Some(path) = &self.admin_key_file {
            let key = "admin-key-file";
            let text = secret_files::read(key, path)?;
            match text.lines().map(str::trim).find(|l| !l.is_empty()) {
                Some(line) => self.admin_key = Some(SecretText(line.to_owned())),
                None => return Err(ConfigError::invalid(key, format!("{} holds no key", path.display()))),
            }
        }
        if let Some(path) = &self.nonce_secret_file {
            let key = "nonce-secret-file";
            // The first line that is neither blank nor a `#` comment.
            match parse_secrets(&secret_files::read(key, path)?).into_iter().next() {
                Some(secret) => self.nonce_secret = Some(secret),
                None => return Err(ConfigError::invalid(key, format!("{} holds no secret", path.display()))),
            }
        }
        if let Some(path) = &self.users_file {
            let key = "users-file";
            let users = parse_users(&secret_files::read(key, path)?)
                .map_err(|m| ConfigError::invalid(key, format!("{}: {m}", path.display())))?;
            for (name, password) in users {
                match self.users.get(&name) {
                    Some(known) if *known == password => {}
                    Some(_) => return Err(ConfigError::invalid(key, format!("user `{name}` is defined twice"))),
                    None => {
                        self.users.insert(name, password);
                    }
                }
            }
        }
        self.read_api_files()
    }
}

/// Parses TOML text into a table (syntax only).
pub fn parse_table(text: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |span| line_column(text, span.start));
        ConfigError::Syntax { line, column, message: e.message().trim().to_owned() }
    })
}

/// Every key known and supported, every value of the right type and form (a single value where a
/// list is expected counts as a one-element list), checked one key at a time so that the error names
/// the key. An unknown key's error names the closest known key when one is close.
pub fn check_table(table: &toml::Table) -> Result<(), ConfigError> {
    if let Some(key) = table.keys().find(|k| !keys().contains(&k.as_str())) {
        let suggestion = suggest::closest(key, keys().iter().copied());
        return Err(ConfigError::UnknownKey { key: key.clone(), suggestion });
    }
    for (key, value) in table {
        values::accepts(key, values::one_or_list(key, value.clone())).map_err(|m| ConfigError::invalid(key, m))?;
    }
    Ok(())
}

/// A configuration file's text, read once: its table, and the lines its keys are on for errors.
struct ConfigFile<'a> {
    path: &'a Path,
    text: String,
}

impl<'a> ConfigFile<'a> {
    /// Reads the file; an error names it.
    fn read(path: &'a Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Ok(ConfigFile { path, text })
    }

    /// The file's table, its keys and values checked; errors name the file and the line.
    fn table(&self) -> Result<toml::Table, ConfigError> {
        let mut table = parse_table(&self.text).map_err(|e| ConfigError::in_file(self.path, None, e))?;
        values::lists_from_single_values(&mut table);
        check_table(&table).map_err(|e| self.error(e))?;
        Ok(table)
    }

    /// `e` in this file, at the line of the key it is about when that key is in the file.
    fn error(&self, e: ConfigError) -> ConfigError {
        let line = e.key().and_then(|key| key_line(&self.text, key));
        ConfigError::in_file(self.path, line, e)
    }
}

/// The 1-based line where top-level `key` is defined in TOML `text` (its `key =` line, or its
/// `[key]` header), from the spans the parser keeps.
fn key_line(text: &str, key: &str) -> Option<usize> {
    let table = toml::de::DeTable::parse(text).ok()?;
    let (name, _) = table.get_ref().iter().find(|(name, _)| name.get_ref().as_ref() == key)?;
    Some(line_column(text, name.span().start).0)
}

/// Makes the relative paths of [`PATH_KEYS`] in a file's table relative to `base`.
fn resolve_paths(table: &mut toml::Table, base: &Path) {
    for key in PATH_KEYS {
        // `-` (stdout, for `usage-file`) is not a path.
        if let Some(toml::Value::String(p)) = table.get_mut(*key)
            && p != "-"
            && Path::new(p.as_str()).is_relative()
        {
            *p = base.join(p.as_str()).to_string_lossy().into_owned();
        }
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
