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
    /// An error inside a named file.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
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
    #[error("unknown key `{key}`")]
    UnknownKey {
        /// The key as written.
        key: String,
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

    pub(super) fn in_file(path: &Path, e: ConfigError) -> Self {
        ConfigError::InFile { path: path.to_owned(), source: Box::new(e) }
    }
}
