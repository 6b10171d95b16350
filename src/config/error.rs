//! Why a configuration was refused: each error names the key (or the file) it is about.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why a configuration was refused. Each variant names the key (or the file) it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An error inside a named file, at a line when the key it is about was found there.
    #[error("{}{}: {source}", path.display(), at_line(*.line))]
    InFile {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the key the error is about, when known.
        line: Option<usize>,
        /// What is wrong in it.
        source: Box<ConfigError>,
    },
    /// Not valid TOML.
    #[error("TOML syntax error at line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key that is not part of the schema (a typo, or an option from another server).
    #[error("unknown key \"{key}\"{}", did_you_mean(.suggestion.as_deref(), "\""))]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The closest known key, if one is close.
        suggestion: Option<&'static str>,
    },
    /// A `SWITCHBACK_*` environment variable that names no key.
    #[error("unknown environment variable {name}{}", did_you_mean(.suggestion.as_deref(), ""))]
    UnknownEnv {
        /// The variable's name.
        name: String,
        /// The closest variable that names a key, if one is close.
        suggestion: Option<String>,
    },
    /// An error in the value of an environment variable.
    #[error("{name}: {source}")]
    InEnv {
        /// The variable's name.
        name: String,
        /// What is wrong with its value.
        source: Box<ConfigError>,
    },
    /// Keys that each are valid but together cannot serve (see [`Config::validate_serving`](super::Config::validate_serving)).
    #[error("{key}: {message}")]
    Serving {
        /// The key to change.
        key: &'static str,
        /// Why.
        message: &'static str,
    },
    /// A value of the wrong type or form.
    #[error("invalid value for `{key}`: {message}")]
    InvalidValue {
        /// The key.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

impl ConfigError {
    pub(super) fn invalid(key: &str, message: impl fmt::Display) -> Self {
        ConfigError::InvalidValue { key: key.to_owned(), message: message.to_string() }
    }

    pub(super) fn in_file(path: &Path, line: Option<usize>, e: ConfigError) -> Self {
        ConfigError::InFile { path: path.to_owned(), line, source: Box::new(e) }
    }

    /// The key the error is about, if it is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. } | ConfigError::InvalidValue { key, .. } => Some(key),
            ConfigError::Serving { key, .. } => Some(key),
            ConfigError::InFile { source, .. } | ConfigError::InEnv { source, .. } => source.key(),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } | ConfigError::UnknownEnv { .. } => None,
        }
    }
}

/// `:LINE` after a file name, or nothing.
fn at_line(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// ` (did you mean QUOTE SUGGESTION QUOTE?)`, or nothing.
fn did_you_mean(suggestion: Option<&str>, quote: &str) -> String {
    suggestion.map(|s| format!(" (did you mean {quote}{s}{quote}?)")).unwrap_or_default()
}
