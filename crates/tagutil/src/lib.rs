//! Editing DICOM attributes across a folder, and de-identifying with the PS3.15 Basic Profile,
//! without ever leaving a half-written file.
//!
//! Test campaigns start by refreshing a sample set (new UIDs so the router sees new studies,
//! today's dates, a description the routing rules match) and, for routers outside the hospital
//! network, by de-identifying it. This crate does both, as a library and as the `tagutil` CLI.
//!
//! # Editing
//!
//! 1. Name attributes by keyword or number: [`Attribute::parse`] accepts `StudyDescription`,
//!    `(0008,1030)`, `0008,1030` and `00081030`.
//! 2. Build an [`EditPlan`] from [`Edit`]s. Every value is checked against the attribute's VR
//!    (calendar dates, times, UIDs, lengths, CS alphabet...) *when the edit is built*, so a bad
//!    value stops the run before any file is touched.
//! 3. Run it with [`update_folder`] (or [`update_file`] / [`apply`] for one file). Files are
//!    found by their `DICM` magic ([`scan_folder`], [`get_dcm_files`]); other files are reported
//!    as skipped. A changed file is replaced atomically ([`write_file_atomically`]): temporary file
//!    in the same folder, flushed and synced, renamed over the original. The transfer syntax,
//!    encapsulated pixel data and the 128-byte preamble are written back as they were, and the
//!    file meta table follows SOPInstanceUID / SOPClassUID.
//!
//! # De-identifying
//!
//! [`deid::anonymize`] applies PS3.15 Table E.1-1 (edition [`deid::STANDARD_EDITION`], bundled
//! as data with its source) to one file in memory; [`deid::anonymize_folder`] mirrors a folder
//! into another. A [`deid::Deidentifier`] holds one run's UID map, so studies stay together.
//!
//! # Known limits
//!
//! - dicom-rs treats an end of file that falls between two elements (or inside the closing
//!   delimiters) as a normal end, so a file cut exactly there looks complete and is edited. A cut
//!   inside a value fails to parse, and a cut inside encapsulated pixel data (which dicom-rs does
//!   accept) is caught here: both count as failed and the file is left alone.
//! - Only the Basic Profile and two retain options are implemented (see [`deid`]); pixel data is
//!   never cleaned of burned-in text.
//! - File discovery is this crate's own ([`scan_folder`]) rather than the `loader` crate's: it
//!   has rules that only matter when files are replaced in place (symbolic links are not
//!   followed, leftover temporary files are reported). The magic check and the atomic
//!   replacement are `loader`'s, used without its `codecs` feature, so no pixel-data codec is
//!   linked into this tool. Values are checked by [`dimse::text_to_value`].
//!
//! # Example
//!
//! ```
//! use dicom_core::{DataElement, PrimitiveValue, VR};
//! use dicom_dictionary_std::{tags, uids};
//! use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
//! use tagutil::{Edit, EditPlan, UidMap, apply};
//! use tagutil::deid::{anonymize, DeidOptions, Deidentifier};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut obj = InMemDicomObject::new_empty();
//! obj.put(DataElement::new(tags::SOP_CLASS_UID, VR::UI, PrimitiveValue::from(uids::CT_IMAGE_STORAGE)));
//! obj.put(DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4")));
//! obj.put(DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("DOE^JANE")));
//! obj.put(DataElement::new(tags::STUDY_DESCRIPTION, VR::LO, PrimitiveValue::from("CT HEAD")));
//! let mut file = obj.with_meta(
//!     FileMetaTableBuilder::new().transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN),
//! )?;
//!
//! // Edits are checked when built: a 13th month is refused before any file is read.
//! assert!(Edit::set("StudyDate", "20241301").is_err());
//!
//! let mut plan = EditPlan::new();
//! plan.push(Edit::set("(0008,1030)", "LOAD TEST")?)?;
//! let changes = apply(&plan, &mut file, &UidMap::new());
//! assert_eq!(changes.len(), 1);
//! println!("{}", changes[0]); // (0008,1030) StudyDescription: "CT HEAD" -> "LOAD TEST"
//!
//! // De-identify, keeping the description that routing rules read.
//! let mut deid = Deidentifier::new(DeidOptions { keep_descriptions: true, ..Default::default() });
//! anonymize(&mut file, &mut deid);
//! assert_eq!(file.element(tags::PATIENT_NAME)?.to_str()?, "");
//! assert_eq!(file.element(tags::STUDY_DESCRIPTION)?.to_str()?, "LOAD TEST");
//! assert_eq!(file.element(tags::PATIENT_IDENTITY_REMOVED)?.to_str()?, "YES");
//! let new_uid = file.element(tags::SOP_INSTANCE_UID)?.to_str()?.to_string();
//! assert!(new_uid.starts_with("2.25."));
//! assert_eq!(file.meta().media_storage_sop_instance_uid(), new_uid);
//! # Ok(())
//! # }
//! ```

pub mod cli;
pub mod deid;
mod edit;
mod error;
mod files;
mod rules;
mod uid;
mod update;
mod write;

pub use dimse::Attribute;
pub use edit::{Change, Edit, EditPlan, Location, REGENERATED_UIDS, apply, collect_instance_uids};
pub use error::{
    AttributeError, DeidError, EditError, EncodeError, FileError, RulesError, ScanError, WriteError,
};
pub use files::{Candidate, SkipReason, get_dcm_files, scan_folder};
pub use rules::Rules;
pub use uid::UidMap;
pub use update::{
    FileOutcome, FileReport, RunSummary, UpdateOptions, update_file, update_folder,
    update_folder_with_hook,
};
pub use write::write_file_atomically;
