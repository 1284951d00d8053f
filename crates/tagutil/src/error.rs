//! Typed errors. Each carries what a user needs to fix the input: the attribute, the value, the
//! path.

pub use dimse::AttributeError;
use std::io;
use std::path::PathBuf;

/// An edit that cannot be applied, found before any file is touched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The attribute part of an edit does not name an attribute.
    #[error("in edit `{edit}`")]
    Attribute {
        /// The edit as given.
        edit: String,
        /// Why the attribute is not recognised.
        #[source]
        source: AttributeError,
    },
    /// A `TAG=VALUE` assignment without `=`.
    #[error("edit `{edit}` needs the form TAG=VALUE, e.g. StudyDescription=CT CHEST")]
    MissingEquals {
        /// The edit as given.
        edit: String,
    },
    /// The value breaks the rules of the attribute's value representation.
    #[error("invalid value `{value}` for {attribute} (VR {vr}): {reason}")]
    InvalidValue {
        /// The attribute, as `(gggg,eeee) Keyword`.
        attribute: String,
        /// The value as given.
        value: String,
        /// The value representation the value was checked against.
        vr: String,
        /// Which rule the value breaks.
        reason: String,
    },
    /// The standard dictionary does not give a single VR for the attribute, so a value cannot be
    /// encoded safely (private tags, unknown tags, US-or-SS attributes).
    #[error(
        "cannot set {attribute}: the standard dictionary gives no single value representation \
         for it (private, unknown or context-dependent attribute); it can only be removed"
    )]
    NoValueRepresentation {
        /// The attribute, as `(gggg,eeee) Keyword`.
        attribute: String,
    },
    /// File meta attributes (group 0002) follow the data set; they are not edited directly.
    #[error(
        "{attribute} is in the file meta group (0002,xxxx), which tagutil keeps consistent with \
         the data set; edit the data set attribute instead (e.g. SOPInstanceUID)"
    )]
    FileMetaAttribute {
        /// The attribute, as `(gggg,eeee) Keyword`.
        attribute: String,
    },
    /// Two edits touch the same attribute.
    #[error("conflicting edits for {attribute}: `{first}` and `{second}`")]
    Conflict {
        /// The attribute, as `(gggg,eeee) Keyword`.
        attribute: String,
        /// The first edit.
        first: String,
        /// The second edit.
        second: String,
    },
}

/// A rules file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RulesError {
    /// The file could not be read.
    #[error("cannot read rules file {path}")]
    Read {
        /// The rules file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("rules file {path} is not valid")]
    Parse {
        /// The rules file.
        path: PathBuf,
        /// What the TOML parser found.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// An edit in the file is invalid.
    #[error("rules file {path}")]
    Edit {
        /// The rules file.
        path: PathBuf,
        /// The invalid edit.
        #[source]
        source: EditError,
    },
}

/// A folder that cannot be scanned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The path is not a readable directory.
    #[error("{path} is not a readable directory")]
    NotADirectory {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The new content of a DICOM file could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Writing the 128-byte preamble and the `DICM` magic failed.
    #[error("cannot write the preamble")]
    Preamble(#[source] io::Error),
    /// Encoding the DICOM object failed.
    #[error("cannot encode the DICOM object")]
    Dicom(#[source] Box<dicom_object::WriteError>),
}

/// Writing a file atomically failed; the original file, if any, is untouched: the one atomic
/// writer's error ([`loader::AtomicWriteError`]), naming the target, with the encoder's error
/// as its content error.
pub type WriteError = loader::AtomicWriteError<EncodeError>;

/// One file could not be processed. The file is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file starts like DICOM but cannot be parsed (truncated, corrupt).
    #[error("cannot read {path} as DICOM")]
    Open {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: Box<dicom_object::ReadError>,
    },
    /// The file parses, but its encapsulated pixel data ends without the sequence delimiter:
    /// the file was cut short (e.g. an interrupted copy).
    #[error(
        "{path} is truncated: its encapsulated pixel data has no end delimiter \
         (an interrupted copy?); the file was not modified"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing the result failed.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A de-identification run that cannot start, or a broken profile table.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeidError {
    /// A line of the bundled PS3.15 table could not be parsed.
    #[error("PS3.15 table line {line}: `{text}`: {reason}")]
    Table {
        /// 1-based line number in the data file.
        line: usize,
        /// The line's text.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The output folder is the input folder or lies inside it.
    #[error(
        "output folder {output} is inside (or the same as) the input folder {input}; \
         choose an output folder outside the input so the originals are never overwritten"
    )]
    OutputInsideInput {
        /// The input folder.
        input: PathBuf,
        /// The output folder.
        output: PathBuf,
    },
    /// The input folder cannot be scanned.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The output folder cannot be created.
    #[error("cannot create output folder {path}")]
    CreateOutput {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}
