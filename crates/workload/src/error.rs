//! What can go wrong reading a profile or building a template, said so that the user knows which
//! line to fix.

use std::path::PathBuf;

/// A workload problem. Profile mistakes carry the file, line and column of the value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// The profile file could not be read.
    #[error("cannot read workload profile {path}: {source}", path = path.display())]
    Read {
        /// The profile file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The profile is not valid TOML, has an unknown field, or a value out of range. The message
    /// names the field, the value and what was expected.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The profile file as given (or a name for a profile read from text).
        file: String,
        /// 1-based line of the value at fault.
        line: usize,
        /// 1-based column (in characters) of the value at fault.
        column: usize,
        /// What is wrong and what would have been accepted.
        message: String,
    },
    /// A synthetic template could not be built.
    #[error("cannot build the template of group {group:?}: {source}")]
    Synthesis {
        /// The group (`[[modality]]` name) the template belongs to.
        group: String,
        /// The generator's error (boxed: it is large, and rare).
        #[source]
        source: Box<loader::synth::SynthError>,
    },
    /// A real file used as a template could not be loaded.
    #[error("cannot load the template of group {group:?}: {source}")]
    Load {
        /// The group (`[[modality]]` name) the template belongs to.
        group: String,
        /// The loader's error (it names the file; boxed: it is large, and rare).
        #[source]
        source: Box<loader::LoadError>,
    },
}
