//! Synthetic, realistic DICOM instances for tests and for the committed sample set.
//!
//! Nothing here is random unless asked: every generator takes a seed, pixel patterns use integer
//! arithmetic only (no `sin`/`exp`, whose last bits differ between platforms' libm), and UIDs are
//! drawn from the seeded generator, so the same seed writes the same bytes on every machine with
//! this `Cargo.lock`.
//!
//! - [`InstanceBuilder`] makes one instance of a [`Modality`] in an [`Encoding`], with any
//!   attribute overridden; it is what the suite's `test_dicom_with_attributes` fixture uses.
//! - [`Patient`], [`Study`], [`Series`] hold the hierarchy so many instances can share a study.
//! - [`write_sample_set`] writes the committed `dicom_samples/` set (or `count` random instances),
//!   and [`ensure_large_sample`] writes a file above 10 MB on demand.
//! - [`reference_pixels`] regenerates the exact native pixels an instance was built from, so
//!   decoders can be checked against a reference that does not come from a decoder.
//! - [`rle_encode_frame`] is a PackBits RLE Lossless encoder (PS3.5 Annex G): dicom-rs has an RLE
//!   decoder but no encoder.

pub mod dciodvfy;
mod hierarchy;
mod instance;
mod pixels;
mod rle;
mod sample_set;
mod uid;

pub use dciodvfy::{DCIODVFY, dciodvfy_available, dciodvfy_errors};
pub use hierarchy::{Patient, Series, Study};
pub use instance::InstanceBuilder;
pub use pixels::{ImageGeometry, reference_pixels};
pub use rle::rle_encode_frame;
pub use sample_set::{
    LARGE_SAMPLE_FILE_NAME, SampleSetOptions, WrittenFile, ensure_large_sample, write_sample_set,
};
pub use uid::UidGenerator;

use std::fmt;
use std::path::PathBuf;

use dicom_dictionary_std::uids;

/// The modalities the generator knows, each with its storage SOP class and realistic defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Modality {
    /// Computed Tomography, CT Image Storage, 16-bit.
    Ct,
    /// Magnetic Resonance, MR Image Storage, 16-bit.
    Mr,
    /// Ophthalmic Visual Field Static Perimetry Measurements: a measurement object, no pixels.
    Opv,
    /// Ophthalmic Tomography (OCT), multi-frame 8-bit.
    Opt,
    /// Ophthalmic Photography 8 Bit (fundus photo), RGB.
    Op,
    /// Endoscopy, VL Endoscopic Image Storage, RGB.
    Es,
    /// Digital Radiography, Digital X-Ray Image Storage - For Presentation, 16-bit.
    Dx,
    /// Computed Radiography, 16-bit.
    Cr,
    /// Ultrasound, 8-bit (Ultrasound Multi-frame Image Storage when it has several frames).
    Us,
}

impl Modality {
    /// Every modality, in the order the sample set lists them.
    pub const ALL: [Modality; 9] = [
        Self::Ct,
        Self::Mr,
        Self::Opv,
        Self::Opt,
        Self::Op,
        Self::Es,
        Self::Dx,
        Self::Cr,
        Self::Us,
    ];

    /// The Modality (0008,0060) defined term.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ct => "CT",
            Self::Mr => "MR",
            Self::Opv => "OPV",
            Self::Opt => "OPT",
            Self::Op => "OP",
            Self::Es => "ES",
            Self::Dx => "DX",
            Self::Cr => "CR",
            Self::Us => "US",
        }
    }

    /// Parses a Modality defined term (`"CT"`, `"opv"`...), case-insensitively.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.code().eq_ignore_ascii_case(code.trim()))
    }

    /// The storage SOP class of a single-frame instance (multi-frame US uses another class, see
    /// [`InstanceBuilder`]).
    pub fn sop_class_uid(self) -> &'static str {
        match self {
            Self::Ct => uids::CT_IMAGE_STORAGE,
            Self::Mr => uids::MR_IMAGE_STORAGE,
            Self::Opv => uids::OPHTHALMIC_VISUAL_FIELD_STATIC_PERIMETRY_MEASUREMENTS_STORAGE,
            Self::Opt => uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE,
            Self::Op => uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
            Self::Es => uids::VL_ENDOSCOPIC_IMAGE_STORAGE,
            Self::Dx => uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
            Self::Cr => uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
            Self::Us => uids::ULTRASOUND_IMAGE_STORAGE,
        }
    }

    /// Whether instances of this modality carry Pixel Data (all but OPV).
    pub fn has_pixels(self) -> bool {
        self != Self::Opv
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// How an instance is written: its transfer syntax, and for compressed ones, the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Encoding {
    /// Explicit VR Little Endian (1.2.840.10008.1.2.1), native pixels.
    ExplicitVrLittleEndian,
    /// Implicit VR Little Endian (1.2.840.10008.1.2), native pixels.
    ImplicitVrLittleEndian,
    /// RLE Lossless (1.2.840.10008.1.2.5), encoded by [`rle_encode_frame`].
    RleLossless,
    /// JPEG Baseline 8-bit (1.2.840.10008.1.2.4.50), lossy, encoded by dicom-pixeldata
    /// (jpeg-encoder, quality 85). 8-bit images only.
    JpegBaseline,
}

impl Encoding {
    /// Every encoding the generator writes.
    pub const ALL: [Encoding; 4] = [
        Self::ExplicitVrLittleEndian,
        Self::ImplicitVrLittleEndian,
        Self::RleLossless,
        Self::JpegBaseline,
    ];

    /// Transfer Syntax UID.
    pub fn transfer_syntax_uid(self) -> &'static str {
        match self {
            Self::ExplicitVrLittleEndian => uids::EXPLICIT_VR_LITTLE_ENDIAN,
            Self::ImplicitVrLittleEndian => uids::IMPLICIT_VR_LITTLE_ENDIAN,
            Self::RleLossless => uids::RLE_LOSSLESS,
            Self::JpegBaseline => uids::JPEG_BASELINE8_BIT,
        }
    }

    /// Short name used in file names and on the command line.
    pub fn short_name(self) -> &'static str {
        match self {
            Self::ExplicitVrLittleEndian => "explicit",
            Self::ImplicitVrLittleEndian => "implicit",
            Self::RleLossless => "rle",
            Self::JpegBaseline => "jpeg",
        }
    }

    /// Parses [`short_name`](Self::short_name).
    pub fn from_short_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.short_name() == name)
    }

    /// Whether the pixel data is encapsulated (compressed).
    pub fn is_compressed(self) -> bool {
        matches!(self, Self::RleLossless | Self::JpegBaseline)
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// Why a synthetic instance could not be built or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SynthError {
    /// An attribute keyword given to [`InstanceBuilder::set_keyword`] is not in the standard
    /// dictionary.
    #[error("unknown DICOM attribute keyword {keyword:?}")]
    UnknownKeyword {
        /// The keyword as given.
        keyword: String,
    },
    /// An attribute value does not fit the attribute's VR.
    #[error("attribute {tag} ({vr}): value {value:?} is not valid: {source}")]
    BadValue {
        /// The attribute, as `(gggg,eeee)`.
        tag: String,
        /// Its value representation.
        vr: String,
        /// The value as given.
        value: String,
        /// Why the value does not fit.
        #[source]
        source: dimse::ValueError,
    },
    /// The encoding cannot represent this instance (JPEG Baseline of 16-bit samples, any
    /// compression of a modality without pixels...).
    #[error("cannot write a {modality} instance as {encoding}: {reason}")]
    UnsupportedEncoding {
        /// The modality.
        modality: Modality,
        /// The encoding asked for.
        encoding: Encoding,
        /// Why not.
        reason: &'static str,
    },
    /// The image geometry is not one the generator can make.
    #[error("invalid image geometry for {modality}: {reason}")]
    BadGeometry {
        /// The modality.
        modality: Modality,
        /// What is wrong.
        reason: String,
    },
    /// dicom-rs rejected the object (meta group or pixel encoding).
    #[error("cannot encode {modality} instance: {detail}")]
    Encode {
        /// The modality.
        modality: Modality,
        /// The error chain.
        detail: String,
    },
    /// Writing the file failed.
    #[error("cannot write {path}: {detail}")]
    Write {
        /// The destination.
        path: PathBuf,
        /// The error chain.
        detail: String,
    },
}
