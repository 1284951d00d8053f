//! Errors of the simulator library.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Spawn {
        /// Which thread.
        what: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// The TLS listener's certificate, key or client CA bundle cannot be used.
    #[error("cannot start the TLS listener: {source} (check {flag})")]
    Tls {
        /// The command-line flag of the file or setting at fault (`--tls-key`...).
        flag: &'static str,
        /// What is wrong, naming the file.
        source: Box<dimse::tls::TlsError>,
    },
    /// A configuration value is out of range.
    #[error("invalid simulator setting {name} = {value}: {reason}")]
    InvalidSetting {
        /// The setting's name (the `SimulatorConfig` field).
        name: &'static str,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A rules file that cannot be used, with the place and the reason.
///
/// Displays as `Bad rules file: FILE:LINE: what is wrong`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("Bad rules file: {}: cannot read it: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file was read but its content is wrong.
    #[error("Bad rules file: {file}:{line}: {message}")]
    Invalid {
        /// The file name as given (or `<default rules>`).
        file: String,
        /// 1-based line of the offending item.
        line: usize,
        /// What is wrong, naming the key and the value.
        message: String,
    },
    /// A key names an attribute that is no keyword of the standard dictionary and
    /// no tag number.
    #[error("Bad rules file: {file}:{line}: {key} = \"{value}\": {source}")]
    Attribute {
        /// The file name as given (or `<default rules>`).
        file: String,
        /// 1-based line of the offending item.
        line: usize,
        /// The key (`tag`, `fill_from`, `set`...).
        key: String,
        /// The value as written.
        value: String,
        /// Why it names no attribute (says how to write one).
        #[source]
        source: dimse::AttributeError,
    },
    /// A forwarding destination's TLS configuration cannot be used (a file is
    /// missing, unreadable, or holds no usable certificate or key).
    #[error("Bad rules file: {file}:{line}: route \"{route}\": {key}: {source}")]
    ForwardTls {
        /// The file name as given.
        file: String,
        /// 1-based line of the `[route.forward.tls]` table.
        line: usize,
        /// The route.
        route: String,
        /// The key at fault (`forward.tls.key_file`, ...).
        key: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<dimse::tls::TlsError>,
    },
}

impl RulesError {
    /// The line the error points at, when the file was read.
    pub fn line(&self) -> Option<usize> {
        match self {
            RulesError::Invalid { line, .. }
            | RulesError::Attribute { line, .. }
            | RulesError::ForwardTls { line, .. } => Some(*line),
            RulesError::Read { .. } => None,
        }
    }
}
