//! De-identification with the PS3.15 Annex E Basic Application Level Confidentiality Profile.
//!
//! Every attribute listed in Table E.1-1 (bundled as data, see [`BasicProfile`]) gets the
//! profile's action, at any depth inside sequences; private attributes are removed; new UIDs come
//! from one [`UidMap`] per [`Deidentifier`], so a study (and every study of a run) stays
//! internally consistent. PatientIdentityRemoved, DeidentificationMethod and
//! DeidentificationMethodCodeSequence record what was done.
//!
//! # How the combined action codes are resolved
//!
//! The profile leaves the choice inside Z/D, X/Z, X/D, X/Z/D and X/Z/U* to "what IOD
//! conformance requires", which depends on the IOD and module of each file. This implementation
//! does not model IODs; it always picks the choice that keeps a file valid whatever the
//! attribute's Type, and never keeps an original value:
//!
//! | code | non-sequence attribute | sequence |
//! |---|---|---|
//! | Z/D | D (dummy) | items de-identified in place |
//! | X/Z | Z (empty) | Z (no items) |
//! | X/D, X/Z/D | D (dummy) | X (removed) |
//! | X/Z/U* | U for UIDs, else Z | kept, items de-identified (their UIDs get U) |
//! | D | dummy per VR (UIDs: U; PatientID: a per-run pseudonym `ANON000001`...) | items de-identified in place |
//!
//! Z allows a dummy value (PS3.15 E.1.1), so D in place of Z is within the profile.
//!
//! Not done: the Clean Pixel Data, Clean Recognizable Visual Features, Clean Graphics and Clean
//! Structured Content options (burned-in text stays in pixel data); Retain Safe Private (all
//! private attributes go); Retain UIDs / Device / Institution / Patient Characteristics.
//! Attributes not in the table are kept, as the profile prescribes.

mod profile;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use dicom_core::value::{DataSetSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

pub use profile::{BasicProfile, ProfileAction, ProfileRow, STANDARD_EDITION, TagPattern};

use crate::edit::{Change, Location, describe, sync_meta};
use crate::error::{DeidError, FileError};
use crate::files::scan_folder;
use crate::uid::{UidMap, uid_values};
use crate::update::{FileOutcome, FileReport, RunSummary, open, process_candidates};
use crate::write::write_file_atomically;
use dimse::Attribute;

/// Code value and meaning (CID 7050) of the Basic Application Confidentiality Profile.
pub const BASIC_PROFILE_CODE: (&str, &str) =
    ("113100", "Basic Application Confidentiality Profile");
/// Code of the Clean Descriptors Option (CID 7050), recorded when descriptions are kept.
pub const CLEAN_DESCRIPTORS_CODE: (&str, &str) = ("113105", "Clean Descriptors Option");
/// Code of the Retain Longitudinal Temporal Information Full Dates Option (CID 7050).
pub const RETAIN_FULL_DATES_CODE: (&str, &str) = (
    "113106",
    "Retain Longitudinal Temporal Information Full Dates Option",
);

/// The profile options that matter to router testing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeidOptions {
    /// Keep StudyDescription and SeriesDescription verbatim (routing rules read them).
    ///
    /// Recorded as the Clean Descriptors Option (113105). The descriptions are *not* cleaned:
    /// keeping them is only right when the operator knows they carry no identifying text (as in
    /// generated test data). Every other descriptor still gets the Basic Profile's action.
    pub keep_descriptions: bool,
    /// Keep dates and times (every DA, DT and TM attribute of the table) as they are: Retain
    /// Longitudinal Temporal Information With Full Dates Option (113106).
    ///
    /// The option's column of Table E.1-1 is not in the bundled data; it is applied by VR,
    /// which is what that column expresses (K on the date and time attributes).
    pub keep_longitudinal_dates: bool,
}

/// Keeps the state of one de-identification run: the options, the UID map and the PatientID
/// pseudonyms, so every file de-identified through it is consistent with the others.
#[derive(Debug)]
pub struct Deidentifier {
    options: DeidOptions,
    profile: &'static BasicProfile,
    uids: UidMap,
    patient_ids: HashMap<String, String>,
}

impl Deidentifier {
    /// A de-identifier using the bundled PS3.15 table.
    pub fn new(options: DeidOptions) -> Self {
        Self {
            options,
            profile: BasicProfile::standard(),
            uids: UidMap::new(),
            patient_ids: HashMap::new(),
        }
    }

    /// The options in force.
    pub fn options(&self) -> DeidOptions {
        self.options
    }

    /// Original-to-new UIDs handed out so far.
    pub fn uid_map(&self) -> &UidMap {
        &self.uids
    }

    fn effective_action(&self, tag: Tag, vr: VR) -> Option<ProfileAction> {
        let action = self.profile.action(tag)?;
        if self.options.keep_descriptions
            && (tag == tags::STUDY_DESCRIPTION || tag == tags::SERIES_DESCRIPTION)
        {
            return Some(ProfileAction::Clean);
        }
        if self.options.keep_longitudinal_dates && matches!(vr, VR::DA | VR::DT | VR::TM) {
            return Some(ProfileAction::Keep);
        }
        Some(action)
    }

    fn pseudonym(&mut self, original: &str) -> String {
        let next = self.patient_ids.len() + 1;
        self.patient_ids
            .entry(original.trim_end().to_owned())
            .or_insert_with(|| format!("ANON{next:06}"))
            .clone()
    }
}

/// What to do with one element, the combined codes already resolved (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep,
    Recurse,
    Remove,
    Empty,
    Dummy,
    NewUid,
}

fn resolve(action: ProfileAction, vr: VR) -> Step {
    use ProfileAction as A;
    let sequence = vr == VR::SQ;
    match action {
        A::Keep | A::Clean => {
            if sequence {
                Step::Recurse
            } else {
                Step::Keep
            }
        }
        A::Remove => Step::Remove,
        A::Zero | A::RemoveOrZero => Step::Empty,
        A::Dummy | A::ZeroOrDummy if sequence => Step::Recurse,
        A::Dummy | A::ZeroOrDummy => Step::Dummy,
        A::RemoveOrDummy | A::RemoveOrZeroOrDummy if sequence => Step::Remove,
        A::RemoveOrDummy | A::RemoveOrZeroOrDummy => Step::Dummy,
        A::Uid | A::RemoveOrZeroOrUidStar if vr == VR::UI => Step::NewUid,
        A::RemoveOrZeroOrUidStar if sequence => Step::Recurse,
        A::Uid | A::RemoveOrZeroOrUidStar => Step::Empty,
    }
}

/// De-identifies one file in memory with the Basic Profile and `deid`'s options, and returns
/// every change (for `--verbose`). The file meta table follows the new SOPInstanceUID.
pub fn anonymize(file: &mut DefaultDicomObject, deid: &mut Deidentifier) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut removed_overlay_groups = Vec::new();
    process(
        file,
        deid,
        &mut Vec::new(),
        &mut changes,
        &mut removed_overlay_groups,
    );
    // An overlay whose Overlay Data is gone is not a valid Overlay Plane module: drop the rest
    // of that repeating group as well.
    for group in removed_overlay_groups {
        let leftovers: Vec<Tag> = file.tags().filter(|t| t.group() == group).collect();
        for tag in leftovers {
            record_removal(file, tag, &[], &mut changes);
        }
    }
    add_method_attributes(file, deid.options, &mut changes);
    sync_meta(file, &mut changes);
    changes
}

fn record_removal(
    obj: &mut InMemDicomObject,
    tag: Tag,
    within: &[(Attribute, usize)],
    changes: &mut Vec<Change>,
) {
    if let Some(element) = obj.take(tag) {
        changes.push(Change {
            location: Location {
                within: within.to_vec(),
                attribute: Attribute::from_tag(tag),
            },
            old: Some(describe(element.value())),
            new: None,
        });
    }
}

fn process(
    obj: &mut InMemDicomObject,
    deid: &mut Deidentifier,
    within: &mut Vec<(Attribute, usize)>,
    changes: &mut Vec<Change>,
    removed_overlay_groups: &mut Vec<u16>,
) {
    let headers: Vec<(Tag, VR)> = obj
        .iter()
        .map(|e| (e.header().tag, e.header().vr))
        .collect();
    for (tag, vr) in headers {
        if tag.group() % 2 == 1 {
            record_removal(obj, tag, within, changes);
            continue;
        }
        let step = match deid.effective_action(tag, vr) {
            Some(action) => resolve(action, vr),
            None if vr == VR::SQ => Step::Recurse,
            None => Step::Keep,
        };
        let old = obj.get(tag).map(|e| describe(e.value()));
        match step {
            Step::Keep => continue,
            Step::Recurse => {
                obj.update_value(tag, |value| {
                    if let Some(items) = value.items_mut() {
                        for (index, item) in items.iter_mut().enumerate() {
                            within.push((Attribute::from_tag(tag), index));
                            process(item, deid, within, changes, removed_overlay_groups);
                            within.pop();
                        }
                    }
                });
                continue;
            }
            Step::Remove => {
                if within.is_empty()
                    && (0x6000..=0x601E).contains(&tag.group())
                    && tag.element() == 0x3000
                {
                    removed_overlay_groups.push(tag.group());
                }
                record_removal(obj, tag, within, changes);
                continue;
            }
            Step::Empty => {
                if vr == VR::SQ {
                    obj.put(DataElement::new(
                        tag,
                        VR::SQ,
                        Value::from(DataSetSequence::new(
                            Vec::<InMemDicomObject>::new(),
                            Length::UNDEFINED,
                        )),
                    ));
                } else {
                    obj.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
                }
            }
            Step::Dummy if tag == tags::PATIENT_ID => {
                let original = old.clone().unwrap_or_default();
                let pseudonym = deid.pseudonym(&original);
                obj.put(DataElement::new(tag, vr, PrimitiveValue::from(pseudonym)));
            }
            Step::Dummy if vr == VR::UI => new_uids(obj, tag, deid),
            Step::Dummy => {
                obj.put(DataElement::new(tag, vr, dummy(vr)));
            }
            Step::NewUid => new_uids(obj, tag, deid),
        }
        let new = obj.get(tag).map(|e| describe(e.value()));
        if new != old {
            changes.push(Change {
                location: Location {
                    within: within.clone(),
                    attribute: Attribute::from_tag(tag),
                },
                old,
                new,
            });
        }
    }
}

fn new_uids(obj: &mut InMemDicomObject, tag: Tag, deid: &mut Deidentifier) {
    let Some(element) = obj.get(tag) else { return };
    let mapped: Vec<String> = uid_values(element.value())
        .iter()
        .map(|uid| deid.uids.map(uid))
        .collect();
    let value = match mapped.len() {
        0 => PrimitiveValue::Empty,
        1 => PrimitiveValue::from(mapped[0].clone()),
        _ => PrimitiveValue::Strs(mapped.into_iter().collect()),
    };
    obj.put(DataElement::new(tag, VR::UI, value));
}

/// A dummy value of the VR that carries no information.
fn dummy(vr: VR) -> PrimitiveValue {
    match vr {
        VR::DA => PrimitiveValue::from("19000101"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::AS => PrimitiveValue::from("000Y"),
        VR::DS | VR::IS => PrimitiveValue::from("0"),
        VR::US => PrimitiveValue::from(0_u16),
        VR::SS => PrimitiveValue::from(0_i16),
        VR::UL => PrimitiveValue::from(0_u32),
        VR::SL => PrimitiveValue::from(0_i32),
        VR::UV => PrimitiveValue::from(0_u64),
        VR::SV => PrimitiveValue::from(0_i64),
        VR::FL => PrimitiveValue::from(0_f32),
        VR::FD => PrimitiveValue::from(0_f64),
        VR::OB | VR::UN => PrimitiveValue::U8([0_u8, 0].into_iter().collect()),
        VR::OW => PrimitiveValue::U16([0_u16].into_iter().collect()),
        VR::OL | VR::OF => PrimitiveValue::U32([0_u32].into_iter().collect()),
        VR::OD | VR::OV => PrimitiveValue::U64([0_u64].into_iter().collect()),
        VR::AT => PrimitiveValue::Tags([Tag(0, 0)].into_iter().collect()),
        // AE, CS, LO, LT, PN, SH, ST, UC, UR, UT: fits every length limit and the CS alphabet.
        _ => PrimitiveValue::from("ANONYMIZED"),
    }
}

fn code_item(code: (&str, &str)) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(code.0)),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from("DCM"),
        ),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(code.1)),
    ])
}

fn add_method_attributes(
    obj: &mut InMemDicomObject,
    options: DeidOptions,
    changes: &mut Vec<Change>,
) {
    let mut codes = vec![BASIC_PROFILE_CODE];
    let mut methods = vec![format!("PS3.15 {STANDARD_EDITION} Basic Profile (tagutil)")];
    if options.keep_descriptions {
        codes.push(CLEAN_DESCRIPTORS_CODE);
        methods.push("Study/Series Description kept verbatim".to_owned());
    }
    if options.keep_longitudinal_dates {
        codes.push(RETAIN_FULL_DATES_CODE);
        methods.push("Dates and times kept".to_owned());
    }
    let temporal = if options.keep_longitudinal_dates {
        "UNMODIFIED"
    } else {
        "REMOVED"
    };
    let elements = [
        DataElement::new(
            tags::PATIENT_IDENTITY_REMOVED,
            VR::CS,
            PrimitiveValue::from("YES"),
        ),
        DataElement::new(
            tags::DEIDENTIFICATION_METHOD,
            VR::LO,
            PrimitiveValue::Strs(methods.into_iter().collect()),
        ),
        DataElement::new(
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            VR::SQ,
            Value::from(DataSetSequence::new(
                codes.into_iter().map(code_item).collect::<Vec<_>>(),
                Length::UNDEFINED,
            )),
        ),
        DataElement::new(
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
            VR::CS,
            PrimitiveValue::from(temporal),
        ),
    ];
    for element in elements {
        let tag = element.header().tag;
        let old = obj.get(tag).map(|e| describe(e.value()));
        obj.put(element);
        let new = obj.get(tag).map(|e| describe(e.value()));
        if old != new {
            changes.push(Change {
                location: Location {
                    within: Vec::new(),
                    attribute: Attribute::from_tag(tag),
                },
                old,
                new,
            });
        }
    }
}

/// De-identifies every DICOM file under `input` into `output`, mirroring the folder structure.
/// `input` is never written to; `output` may not be `input` or lie inside it. Non-DICOM files are
/// skipped (not copied) and reported.
pub fn anonymize_folder(
    input: &Path,
    output: &Path,
    deid: &mut Deidentifier,
    observer: impl FnMut(&FileReport),
) -> Result<RunSummary, DeidError> {
    let input_abs = resolve_path(input);
    let output_abs = resolve_path(output);
    if output_abs.starts_with(&input_abs) {
        return Err(DeidError::OutputInsideInput {
            input: input.to_owned(),
            output: output.to_owned(),
        });
    }
    let candidates = scan_folder(input)?;
    std::fs::create_dir_all(output).map_err(|source| DeidError::CreateOutput {
        path: output.to_owned(),
        source,
    })?;
    Ok(process_candidates(candidates, observer, |path| {
        let relative = path.strip_prefix(input).unwrap_or(path);
        match anonymize_file(path, &output.join(relative), deid) {
            Ok(changes) => FileOutcome::Changed(changes),
            Err(err) => FileOutcome::Failed(err),
        }
    }))
}

/// De-identifies one file into `target` (written atomically; parent folders created).
pub fn anonymize_file(
    source: &Path,
    target: &Path,
    deid: &mut Deidentifier,
) -> Result<Vec<Change>, FileError> {
    let mut file = open(source)?;
    let changes = anonymize(&mut file, deid);
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|source| FileError::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    write_file_atomically(&file, target)?;
    Ok(changes)
}

/// An absolute path with symlinks resolved as far as the path exists, so that "is the output
/// inside the input" cannot be fooled by `..` or a link.
fn resolve_path(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(canonical) = existing.canonicalize() {
            let mut resolved = canonical;
            for component in rest.iter().rev() {
                match component {
                    Component::ParentDir => {
                        resolved.pop();
                    }
                    Component::CurDir => {}
                    other => resolved.push(other.as_os_str()),
                }
            }
            return resolved;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}
