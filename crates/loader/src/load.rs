//! Loading a whole DICOM object, optionally with its pixel data decompressed.

use std::path::Path;

use dicom_encoding::TransferSyntaxIndex;
use dicom_object::{DefaultDicomObject, OpenFileOptions};
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

use crate::LoadError;
use crate::error::error_chain;
use crate::scan::{Head, read_head};

/// How [`load_dataset`] treats the file it reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    decompress: bool,
}

impl LoadOptions {
    /// Load the object as stored (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// When `true`, objects with compressed (encapsulated) pixel data are decoded and returned in
    /// Explicit VR Little Endian with native pixel data. Objects already in a native transfer
    /// syntax (Implicit/Explicit VR Little Endian, Deflated...) are returned unchanged.
    ///
    /// This build decodes JPEG Baseline, Extended and Lossless (pure Rust), RLE Lossless (pure
    /// Rust) and JPEG 2000 (OpenJPEG). JPEG-LS, JPEG XL, HTJ2K and video fail with
    /// [`LoadError::UnsupportedTransferSyntax`].
    pub fn decompress(mut self, decompress: bool) -> Self {
        self.decompress = decompress;
        self
    }

    /// Whether compressed pixel data will be decoded.
    pub fn decompresses(&self) -> bool {
        self.decompress
    }
}

/// Read a whole DICOM file, meta group, data set and pixel data, into memory.
///
/// With [`LoadOptions::decompress`], compressed pixel data is decoded to native samples in
/// Explicit VR Little Endian (photometric interpretation becomes RGB for colour, as
/// dicom-pixeldata mandates, and 8-bit samples are stored as OW).
///
/// Never panics on bad input: truncated, corrupt and non-DICOM files give a [`LoadError`] naming
/// the path. A decoder that panics on a corrupt stream (dicom-rs 0.10.1's RLE reader indexes
/// past short segments) is caught and reported as [`LoadError::Decode`].
///
/// # Errors
/// [`LoadError::Io`], [`LoadError::TooShort`], [`LoadError::NotDicom`], [`LoadError::Parse`],
/// and with decompression [`LoadError::UnsupportedTransferSyntax`] or [`LoadError::Decode`].
pub fn load_dataset(
    path: impl AsRef<Path>,
    options: &LoadOptions,
) -> Result<DefaultDicomObject, LoadError> {
    let path = path.as_ref();
    ensure_dicom_magic(path)?;
    let mut object = OpenFileOptions::new()
        .open_file(path)
        .map_err(|e| LoadError::parse(path.to_path_buf(), e))?;
    if options.decompress {
        decompress_in_place(path, &mut object)?;
    }
    Ok(object)
}

fn decompress_in_place(path: &Path, object: &mut DefaultDicomObject) -> Result<(), LoadError> {
    let uid = object.meta().transfer_syntax().to_string();
    let unsupported = || LoadError::UnsupportedTransferSyntax {
        path: path.to_path_buf(),
        transfer_syntax: uid.clone(),
    };
    let ts = TransferSyntaxRegistry.get(&uid).ok_or_else(unsupported)?;
    if !ts.is_encapsulated_pixel_data() {
        return Ok(());
    }
    if !ts.can_decode_all() {
        return Err(unsupported());
    }
    let target = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    // Codecs are third-party code fed with untrusted bytes; a panic in one must become an error
    // for this file, not take down a load test that is halfway through its run.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| object.transcode(&target)));
    let detail = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => error_chain(&error),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("decoder panicked: {message}")
        }
    };
    Err(LoadError::Decode {
        path: path.to_path_buf(),
        transfer_syntax: uid,
        detail,
    })
}

/// The reader's version of the scan's magic check: same verdicts, as errors naming the file.
pub(crate) fn ensure_dicom_magic(path: &Path) -> Result<(), LoadError> {
    let path_buf = || path.to_path_buf();
    match read_head(path) {
        Ok(Head::Dicom) => Ok(()),
        Ok(Head::TooShort(len)) => Err(LoadError::TooShort {
            path: path_buf(),
            len,
        }),
        Ok(Head::NotDicom) => Err(LoadError::NotDicom { path: path_buf() }),
        Err(source) => Err(LoadError::Io {
            path: path_buf(),
            source,
        }),
    }
}
