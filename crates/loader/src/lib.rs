//! DICOM file discovery, cheap per-file metadata, loading with decompression, and synthetic
//! sample data for dicom-auto.
//!
//! The load tests send whatever DICOM files a user points them at, so this crate answers three
//! questions about a folder, from cheapest to dearest:
//!
//! 1. **Which files are DICOM?** [`find_dicom_files`] walks a tree and keeps files with `DICM` at
//!    byte 128, whatever their names; it reports what it skipped and why ([`Scan::skipped`]).
//! 2. **What is in them?** [`read_file_info`] / [`scan_infos`] read each file only up to Pixel
//!    Data and return a [`FileInfo`] (size, SOP class, transfer syntax, modality, UIDs,
//!    descriptions). [`by_modality`], [`by_size_category`], [`smallest`]... make the selections the
//!    test fixtures need.
//! 3. **The whole object**, [`load_dataset`], optionally decompressed to Explicit VR Little Endian
//!    ([`LoadOptions::decompress`]).
//!
//! Errors are one [`LoadError`] type whose variants all name the file concerned.
//!
//! Two small rules every user of DICOM files shares live here too: the magic check
//! ([`Head`], [`read_head`]) and replacing a file atomically ([`AtomicFile`]).
//!
//! # Features
//!
//! `codecs` (on by default) brings the pixel-data codecs: decompression
//! ([`LoadOptions::decompress`], [`decompress_in_place`]) and the [`synth`] module. Without it
//! the crate finds, reads and writes files and needs no C library.
//!
//! The [`synth`] module writes realistic synthetic instances (patient/study/series hierarchy,
//! `2.25.` UIDs, nine modalities, four encodings); the `gen-samples` binary wraps it, and the
//! committed `dicom_samples/` folder was made by it.
//!
//! # Example
//!
//! ```
//! use loader::{LoadOptions, SizeCategory, by_modality, find_dicom_files, load_dataset, scan_infos};
//! use loader::synth::{Encoding, InstanceBuilder, Modality};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("loader-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! // A synthetic RLE-compressed MR image, written without a .dcm extension.
//! InstanceBuilder::new(Modality::Mr)
//!     .encoding(Encoding::RleLossless)
//!     .seed(7)
//!     .write_to(dir.join("IM0001"))?;
//! std::fs::write(dir.join("notes.txt"), "not DICOM")?;
//!
//! let scan = find_dicom_files(&dir)?;
//! assert_eq!(scan.files.len(), 1);
//! assert_eq!(scan.skipped.len(), 1); // notes.txt, with the reason
//!
//! let infos = scan_infos(&scan.files).infos;
//! assert_eq!(infos[0].modality.as_deref(), Some("MR"));
//! assert_eq!(infos[0].size_category(), SizeCategory::Small);
//! assert_eq!(by_modality(&infos)["MR"].len(), 1);
//!
//! let object = load_dataset(&scan.files[0], &LoadOptions::new().decompress(true))?;
//! assert_eq!(object.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

mod atomic;
#[cfg(feature = "codecs")]
mod decompress;
mod error;
mod info;
mod load;
mod magic;
mod part10;
mod scan;
#[cfg(feature = "codecs")]
pub mod synth;

pub use atomic::{AtomicFile, AtomicWriteError};
#[cfg(feature = "codecs")]
pub use decompress::{DecompressError, can_decompress, decompress_in_place};
pub use error::LoadError;
pub use info::{
    FileInfo, InfoScan, MEGABYTE, SizeCategory, by_modality, by_size_category, in_size_category,
    largest, read_file_info, scan_infos, smallest, with_modality,
};
pub use load::{LoadOptions, SEQUENCE_DELIMITER, ends_with_sequence_delimiter, load_dataset};
pub use magic::{Head, MAGIC, MAGIC_OFFSET, MIN_DICOM_LEN, read_head};
pub use part10::part10_bytes;
pub use scan::{Scan, SkipReason, Skipped, check_magic, find_dicom_files};
