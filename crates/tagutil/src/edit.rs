//! Edits (set, add, remove, new UIDs) checked up front and applied to one DICOM object.

use std::fmt;

use dicom_core::chrono::NaiveDate;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use crate::error::EditError;
use crate::uid::{UidMap, uid_values};
use dimse::Attribute;
use dimse::{VrCheck, text_to_value};

/// The instance UIDs that `--new-uids` regenerates. References to them anywhere in a file
/// (e.g. ReferencedSOPInstanceUID inside a sequence) follow.
pub const REGENERATED_UIDS: [Tag; 4] = [
    tags::STUDY_INSTANCE_UID,
    tags::SERIES_INSTANCE_UID,
    tags::SOP_INSTANCE_UID,
    tags::FRAME_OF_REFERENCE_UID,
];

/// One change to one attribute, checked against the attribute's VR when it was built.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Edit {
    /// Give the attribute this value, adding it if absent.
    Set {
        /// The attribute.
        attribute: Attribute,
        /// The VR the value was checked against and is written with.
        vr: VR,
        /// The value as given (`\` separates multiple values).
        value: String,
    },
    /// Add the attribute with this value only if the file does not have it.
    Add {
        /// The attribute.
        attribute: Attribute,
        /// The VR the value was checked against and is written with.
        vr: VR,
        /// The value as given.
        value: String,
    },
    /// Remove the attribute if present.
    Remove {
        /// The attribute.
        attribute: Attribute,
    },
}

impl Edit {
    /// `Set` from an attribute name or number and a value, checked against the attribute's VR.
    pub fn set(attribute: &str, value: &str) -> Result<Self, EditError> {
        let (attribute, vr) = settable(attribute, value)?;
        Ok(Edit::Set {
            attribute,
            vr,
            value: value.to_owned(),
        })
    }

    /// `Add` from an attribute name or number and a value, checked against the attribute's VR.
    pub fn add(attribute: &str, value: &str) -> Result<Self, EditError> {
        let (attribute, vr) = settable(attribute, value)?;
        Ok(Edit::Add {
            attribute,
            vr,
            value: value.to_owned(),
        })
    }

    /// `Remove` from an attribute name or number.
    pub fn remove(attribute: &str) -> Result<Self, EditError> {
        let parsed = Attribute::parse(attribute).map_err(|source| EditError::Attribute {
            edit: format!("remove {attribute}"),
            source,
        })?;
        if parsed.is_file_meta() {
            return Err(EditError::FileMetaAttribute {
                attribute: parsed.to_string(),
            });
        }
        Ok(Edit::Remove { attribute: parsed })
    }

    /// Splits `TAG=VALUE` (as given to `--set`) at the first `=`.
    pub fn split_assignment(text: &str) -> Result<(&str, &str), EditError> {
        text.split_once('=')
            .ok_or_else(|| EditError::MissingEquals {
                edit: text.to_owned(),
            })
    }

    /// The attribute this edit touches.
    pub fn attribute(&self) -> Attribute {
        match self {
            Edit::Set { attribute, .. }
            | Edit::Add { attribute, .. }
            | Edit::Remove { attribute } => *attribute,
        }
    }
}

impl fmt::Display for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Set {
                attribute, value, ..
            } => write!(f, "set {attribute}={value}"),
            Edit::Add {
                attribute, value, ..
            } => write!(f, "add {attribute}={value}"),
            Edit::Remove { attribute } => write!(f, "remove {attribute}"),
        }
    }
}

fn settable(attribute: &str, value: &str) -> Result<(Attribute, VR), EditError> {
    let parsed = Attribute::parse(attribute).map_err(|source| EditError::Attribute {
        edit: format!("{attribute}={value}"),
        source,
    })?;
    if parsed.is_file_meta() {
        return Err(EditError::FileMetaAttribute {
            attribute: parsed.to_string(),
        });
    }
    let vr = parsed.vr.ok_or_else(|| EditError::NoValueRepresentation {
        attribute: parsed.to_string(),
    })?;
    text_to_value(vr, value, VrCheck::Checked).map_err(|error| EditError::InvalidValue {
        attribute: parsed.to_string(),
        value: value.to_owned(),
        vr: vr.to_string().to_owned(),
        reason: match error {
            dimse::ValueError::NotText { .. } => {
                format!("{error}; tagutil can only remove such attributes")
            }
            other => other.to_string(),
        },
    })?;
    Ok((parsed, vr))
}

/// Everything to do to each file of a run. Build it fully (every edit checked) before touching
/// any file, so a bad edit stops the run with nothing changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EditPlan {
    edits: Vec<Edit>,
    new_uids: bool,
}

impl EditPlan {
    /// A plan that does nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an edit; two edits of one attribute are a conflict.
    pub fn push(&mut self, edit: Edit) -> Result<(), EditError> {
        let attribute = edit.attribute();
        if let Some(first) = self
            .edits
            .iter()
            .find(|e| e.attribute().tag == attribute.tag)
        {
            return Err(EditError::Conflict {
                attribute: attribute.to_string(),
                first: first.to_string(),
                second: edit.to_string(),
            });
        }
        if self.new_uids && REGENERATED_UIDS.contains(&attribute.tag) {
            return Err(new_uids_conflict(&edit));
        }
        self.edits.push(edit);
        Ok(())
    }

    /// Regenerates StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID and FrameOfReferenceUID
    /// through a [`UidMap`] shared by the whole run.
    pub fn regenerate_uids(&mut self) -> Result<(), EditError> {
        if let Some(edit) = self
            .edits
            .iter()
            .find(|e| REGENERATED_UIDS.contains(&e.attribute().tag))
        {
            return Err(new_uids_conflict(edit));
        }
        self.new_uids = true;
        Ok(())
    }

    /// Sets StudyDate and SeriesDate to `today` (the caller reads the clock).
    pub fn set_dates_to(&mut self, today: NaiveDate) -> Result<(), EditError> {
        let date = today.format("%Y%m%d").to_string();
        self.push(Edit::set("StudyDate", &date)?)?;
        self.push(Edit::set("SeriesDate", &date)?)
    }

    /// The attribute edits, in order.
    pub fn edits(&self) -> &[Edit] {
        &self.edits
    }

    /// Whether instance UIDs are regenerated.
    pub fn regenerates_uids(&self) -> bool {
        self.new_uids
    }

    /// Whether the plan would change nothing.
    pub fn is_empty(&self) -> bool {
        self.edits.is_empty() && !self.new_uids
    }
}

fn new_uids_conflict(edit: &Edit) -> EditError {
    EditError::Conflict {
        attribute: edit.attribute().to_string(),
        first: "--new-uids".to_owned(),
        second: edit.to_string(),
    }
}

/// Where a changed attribute sits: its own tag, inside zero or more sequence items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The enclosing sequences, outermost first, each with the 0-based item index.
    pub within: Vec<(Attribute, usize)>,
    /// The attribute itself.
    pub attribute: Attribute,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (sequence, item) in &self.within {
            write!(f, "{sequence}[{item}] > ")?;
        }
        write!(f, "{}", self.attribute)
    }
}

/// One attribute changed in one file: `old -> new`, `None` meaning absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Which attribute.
    pub location: Location,
    /// The value before, as text.
    pub old: Option<String>,
    /// The value after, as text.
    pub new: Option<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<String>| match v {
            Some(v) => format!("{v:?}"),
            None => "(absent)".to_owned(),
        };
        write!(
            f,
            "{}: {} -> {}",
            self.location,
            show(&self.old),
            show(&self.new)
        )
    }
}

/// Text of a value for change reports.
pub(crate) fn describe(
    value: &Value<InMemDicomObject, dicom_object::mem::InMemFragment>,
) -> String {
    match value {
        Value::Primitive(p) => p.to_str().trim_end_matches(['\0', ' ']).to_owned(),
        Value::Sequence(seq) => format!("<sequence of {} items>", seq.items().len()),
        Value::PixelSequence(seq) => {
            format!(
                "<encapsulated pixel data, {} fragments>",
                seq.fragments().len()
            )
        }
    }
}

/// Collects the UIDs `--new-uids` will regenerate from one file into `uids`. Call it on every
/// file before applying the plan, so a reference to an instance in a later file is renamed too.
pub fn collect_instance_uids(obj: &InMemDicomObject, uids: &mut UidMap) {
    for tag in REGENERATED_UIDS {
        if let Some(element) = obj.get(tag) {
            for uid in uid_values(element.value()) {
                if !uids.is_issued(&uid) {
                    uids.map(&uid);
                }
            }
        }
    }
}

/// Applies `plan` to `file` and returns what changed. UIDs are renamed only where the original
/// is already in `uids` (filled by [`collect_instance_uids`]). The file meta table follows
/// SOPInstanceUID and SOPClassUID.
pub fn apply(plan: &EditPlan, file: &mut DefaultDicomObject, uids: &UidMap) -> Vec<Change> {
    let mut changes = Vec::new();
    if plan.new_uids {
        rename_uids(file, uids, &mut Vec::new(), &mut changes);
    }
    for edit in &plan.edits {
        apply_edit(edit, file, &mut changes);
    }
    sync_meta(file, &mut changes);
    changes
}

fn apply_edit(edit: &Edit, obj: &mut InMemDicomObject, changes: &mut Vec<Change>) {
    let attribute = edit.attribute();
    let old = obj.get(attribute.tag).map(|e| describe(e.value()));
    let new = match edit {
        Edit::Remove { .. } => {
            obj.remove_element(attribute.tag);
            None
        }
        Edit::Add { .. } if old.is_some() => return,
        Edit::Set { vr, value, .. } | Edit::Add { vr, value, .. } => {
            let primitive = text_to_value(*vr, value, VrCheck::Checked)
                .unwrap_or_else(|_| PrimitiveValue::from(value.clone()));
            obj.put(DataElement::new(attribute.tag, *vr, primitive));
            obj.get(attribute.tag).map(|e| describe(e.value()))
        }
    };
    if old != new {
        changes.push(Change {
            location: Location {
                within: Vec::new(),
                attribute,
            },
            old,
            new,
        });
    }
}

/// Renames every UI value found in `uids`, recursing into sequences.
fn rename_uids(
    obj: &mut InMemDicomObject,
    uids: &UidMap,
    within: &mut Vec<(Attribute, usize)>,
    changes: &mut Vec<Change>,
) {
    let tags: Vec<(Tag, VR)> = obj
        .iter()
        .map(|e| (e.header().tag, e.header().vr))
        .collect();
    for (tag, vr) in tags {
        match vr {
            VR::UI => {
                let Some(element) = obj.get(tag) else {
                    continue;
                };
                let values = uid_values(element.value());
                let renamed: Vec<String> = values
                    .iter()
                    .map(|v| uids.get(v).unwrap_or(v).to_owned())
                    .collect();
                if renamed == values {
                    continue;
                }
                let old = describe(element.value());
                let value = if renamed.len() == 1 {
                    PrimitiveValue::from(renamed[0].clone())
                } else {
                    PrimitiveValue::Strs(renamed.into_iter().collect())
                };
                obj.put(DataElement::new(tag, VR::UI, value));
                changes.push(Change {
                    location: Location {
                        within: within.clone(),
                        attribute: Attribute::from_tag(tag),
                    },
                    old: Some(old),
                    new: obj.get(tag).map(|e| describe(e.value())),
                });
            }
            VR::SQ => {
                obj.update_value(tag, |value| {
                    if let Some(items) = value.items_mut() {
                        for (index, item) in items.iter_mut().enumerate() {
                            within.push((Attribute::from_tag(tag), index));
                            rename_uids(item, uids, within, changes);
                            within.pop();
                        }
                    }
                });
            }
            _ => {}
        }
    }
}

/// Keeps MediaStorageSOPInstanceUID / MediaStorageSOPClassUID equal to the data set's
/// SOPInstanceUID / SOPClassUID, and the meta group length right.
pub(crate) fn sync_meta(file: &mut DefaultDicomObject, changes: &mut Vec<Change>) {
    let pairs = [
        (tags::SOP_INSTANCE_UID, tags::MEDIA_STORAGE_SOP_INSTANCE_UID),
        (tags::SOP_CLASS_UID, tags::MEDIA_STORAGE_SOP_CLASS_UID),
    ];
    let mut touched = false;
    for (data_tag, meta_tag) in pairs {
        let Some(wanted) = file.get(data_tag).and_then(|e| {
            e.value()
                .to_str()
                .ok()
                .map(|s| crate::uid::normalize(&s).to_owned())
        }) else {
            continue;
        };
        if wanted.is_empty() {
            continue;
        }
        let meta = file.meta_mut();
        let slot = if meta_tag == tags::MEDIA_STORAGE_SOP_INSTANCE_UID {
            &mut meta.media_storage_sop_instance_uid
        } else {
            &mut meta.media_storage_sop_class_uid
        };
        let current = crate::uid::normalize(slot).to_owned();
        if current != wanted {
            changes.push(Change {
                location: Location {
                    within: Vec::new(),
                    attribute: Attribute::from_tag(meta_tag),
                },
                old: Some(current),
                new: Some(wanted.clone()),
            });
            *slot = wanted;
            touched = true;
        }
    }
    if touched {
        file.meta_mut().update_information_group_length();
    }
}
