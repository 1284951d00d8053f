//! Decoding compressed (encapsulated) pixel data to native Explicit VR Little Endian, the one
//! copy both the file loader and the sender use.

use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;

/// Why an object's pixel data could not be decompressed. The object is then as it was, or
/// partly transcoded and not to be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecompressError {
    /// No codec in this build decodes the transfer syntax (JPEG-LS, JPEG XL, HTJ2K, MPEG
    /// video...), or the syntax is unknown.
    #[error("this build cannot decompress transfer syntax {transfer_syntax}")]
    Unsupported {
        /// The object's transfer syntax UID.
        transfer_syntax: String,
    },
    /// The codec failed on the pixel data (corrupt stream, attributes that contradict the
    /// stream...), or panicked.
    #[error("cannot decompress {transfer_syntax}: {detail}")]
    Decode {
        /// The object's transfer syntax UID.
        transfer_syntax: String,
        /// The whole chain of causes from dicom-pixeldata, on one line.
        detail: String,
    },
}

/// Whether `transfer_syntax` has encapsulated pixel data that this build can decode, every
/// frame of it.
pub fn can_decompress(transfer_syntax: &str) -> bool {
    TransferSyntaxRegistry
        .get(dimse::trim_value(transfer_syntax))
        .is_some_and(|ts| ts.is_encapsulated_pixel_data() && ts.can_decode_all())
}

/// Decodes `object`'s encapsulated pixel data and re-labels it Explicit VR Little Endian
/// (photometric interpretation becomes RGB for colour, as dicom-pixeldata mandates, and 8-bit
/// samples are stored as OW). An object already in a native syntax (Implicit/Explicit VR
/// Little Endian, Deflated...) is left unchanged.
///
/// A codec that panics on a corrupt stream (dicom-rs 0.10.1's RLE reader indexes past short
/// segments) is caught and reported as [`DecompressError::Decode`].
///
/// # Errors
/// [`DecompressError::Unsupported`] for a syntax this build does not know or cannot decode,
/// [`DecompressError::Decode`] when the codec fails.
pub fn decompress_in_place(object: &mut DefaultDicomObject) -> Result<(), DecompressError> {
    let uid = dimse::trim_value(object.meta().transfer_syntax()).to_owned();
    let Some(ts) = TransferSyntaxRegistry.get(&uid) else {
        return Err(DecompressError::Unsupported {
            transfer_syntax: uid,
        });
    };
    if !ts.is_encapsulated_pixel_data() {
        return Ok(());
    }
    if !ts.can_decode_all() {
        return Err(DecompressError::Unsupported {
            transfer_syntax: uid,
        });
    }
    let target = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    // Codecs are third-party code fed with untrusted bytes; a panic in one must become an error
    // for this object, not take down a load test that is halfway through its run.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| object.transcode(&target)));
    let detail = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(error)) => dimse::ErrorChain(&error).to_string(),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            format!("decoder panicked: {message}")
        }
    };
    Err(DecompressError::Decode {
        transfer_syntax: uid,
        detail,
    })
}
