//! The one error type of the loader: every variant names the file or folder it is about.

use std::path::PathBuf;

/// Why a folder could not be scanned or a file could not be read, parsed or decoded.
///
/// Every variant carries the path it concerns, so a message printed by a test fixture or a CLI
/// tells the user which file to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The folder given to [`find_dicom_files`](crate::find_dicom_files) does not exist.
    #[error("DICOM folder {path} does not exist (check DICOM_ROOT_DIR)")]
    RootNotFound {
        /// The folder that was asked for.
        path: PathBuf,
    },
    /// The folder exists but its metadata cannot be read (permissions, I/O error).
    #[error("cannot read DICOM folder {path}: {source}")]
    RootUnreadable {
        /// The folder that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file could not be opened or read.
    #[error("{path}: cannot read file: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is shorter than the 128-byte preamble plus the `DICM` magic.
    #[error("{path}: too short to be a DICOM file ({len} bytes; a DICOM file has at least 132)")]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
    },
    /// The file has no `DICM` magic at offset 128.
    #[error("{path}: not a DICOM file (no DICM magic at offset 128)")]
    NotDicom {
        /// The file.
        path: PathBuf,
    },
    /// The file starts like DICOM but its meta group or data set cannot be parsed (truncated,
    /// corrupt, or an unknown transfer syntax).
    #[error("{path}: cannot parse DICOM data: {detail}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The whole chain of causes from dicom-object, flattened into one line.
        detail: String,
        /// The error reported by dicom-object.
        source: Box<dicom_object::ReadError>,
    },
    /// The object's pixel data is missing or has fewer fragments than frames: almost always a
    /// file cut short inside the Pixel Data header or between fragments.
    #[error("{path}: {detail}; the file is probably truncated")]
    IncompletePixelData {
        /// The file.
        path: PathBuf,
        /// What is missing.
        detail: String,
    },
    /// Decompression was asked for but no codec in this build decodes the file's transfer syntax
    /// (JPEG-LS, JPEG XL, HTJ2K, MPEG video...).
    #[error("{path}: transfer syntax {transfer_syntax} cannot be decompressed by this build")]
    UnsupportedTransferSyntax {
        /// The file.
        path: PathBuf,
        /// Its transfer syntax UID.
        transfer_syntax: String,
    },
    /// The codec for the file's transfer syntax failed on its pixel data (corrupt stream,
    /// attributes that contradict the stream...).
    #[error("{path}: cannot decode pixel data ({transfer_syntax}): {detail}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// Its transfer syntax UID.
        transfer_syntax: String,
        /// The whole chain of causes from dicom-pixeldata, flattened into one line.
        detail: String,
    },
}

impl LoadError {
    /// The file or folder this error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            LoadError::RootNotFound { path }
            | LoadError::RootUnreadable { path, .. }
            | LoadError::Io { path, .. }
            | LoadError::TooShort { path, .. }
            | LoadError::NotDicom { path }
            | LoadError::Parse { path, .. }
            | LoadError::IncompletePixelData { path, .. }
            | LoadError::UnsupportedTransferSyntax { path, .. }
            | LoadError::Decode { path, .. } => path,
        }
    }

    pub(crate) fn parse(path: PathBuf, source: dicom_object::ReadError) -> Self {
        LoadError::Parse {
            path,
            // dicom-rs errors put the useful part ("unexpected end of file at ...") in their
            // sources while their own Display says only "Could not read data set token".
            detail: dimse::ErrorChain(&source).to_string(),
            source: Box::new(source),
        }
    }
}
