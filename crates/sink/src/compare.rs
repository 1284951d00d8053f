//! What arrived against what was sent, element by element: sequences recursively,
//! private elements included, pixel data after decoding.
//!
//! Not differences (purely syntactic): the file meta group (0002,xxxx), group lengths
//! (gggg,0000), Data Set Trailing Padding, explicit or implicit VR, defined or
//! undefined lengths, value padding ([`crate::values`]), the offset table and fragment
//! boundaries of encapsulated pixel data, and, when the transfer syntax changed, the
//! attributes that describe the encoding (Planar Configuration, a YBR/RGB Photometric
//! Interpretation, Lossy Image Compression and its ratio and method).

use dicom_core::header::Header as _;
use dicom_core::value::Value;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::transfer_syntax::TransferSyntax;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{InMemDicomObject, mem::InMemElement};
use serde::Serialize;

use crate::pixels::{self, PixelVerdict};
use crate::policy::{ExpectedValue, RoutePolicy};
use crate::sent::{SentInstance, Substitution};
use crate::values;

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DifferenceKind {
    /// The value changed.
    Changed,
    /// The attribute was sent and did not arrive.
    Removed,
    /// The attribute arrived and was not sent.
    Added,
    /// A sequence arrived with another number of items.
    ItemCount,
    /// An allowed change whose value is known arrived with another value (or without
    /// the attribute, or with it when it should have been removed).
    NotAsExpected,
    /// Decoded pixel samples differ in a lossless transfer syntax: corruption.
    PixelData,
    /// Decoded pixel samples differ and the instance arrived in a lossy syntax: flagged,
    /// never silent, with its PSNR.
    LossyPixels,
    /// The image changed shape (rows, columns, frames, samples, bits).
    PixelGeometry,
    /// Pixel data could not be decoded on one side, so it could not be checked.
    PixelsNotDecodable,
    /// The transfer syntax changed (losslessly) on a route that forbids it.
    TransferSyntaxChanged,
}

/// One difference between what was sent and what arrived.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// Where: `StudyDescription`, `(0009,1001)`,
    /// `ReferencedStudySequence[0].ReferencedSOPInstanceUID`, `PixelData`.
    pub path: String,
    /// The innermost attribute's tag, `(gggg,eeee)`.
    pub tag: String,
    /// Its keyword, when the standard dictionary knows it.
    pub keyword: Option<&'static str>,
    /// What kind of difference.
    pub kind: DifferenceKind,
    /// The value sent (shortened), if the attribute was sent.
    pub sent: Option<String>,
    /// The value received (shortened), if it arrived.
    pub received: Option<String>,
    /// The value the route's allowed change expects, for [`DifferenceKind::NotAsExpected`].
    pub expected: Option<String>,
    /// Peak signal-to-noise ratio of the pixel samples, for pixel differences.
    pub psnr_db: Option<f64>,
}

/// The comparison of one delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Comparison {
    pub differences: Vec<Difference>,
    /// Arrived in a lossy syntax with pixels that differ: the PSNR.
    pub lossy_psnr_db: Option<f64>,
}

/// What a send carried: the shared original plus this send's own values.
#[derive(Clone, Copy)]
pub(crate) struct Sent<'a> {
    pub original: &'a SentInstance,
    pub substitutions: &'a [Substitution],
    pub transfer_syntax: &'static TransferSyntax,
}

impl std::fmt::Debug for Sent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sent")
            .field("original", &self.original.sop_instance_uid())
            .field("substitutions", &self.substitutions)
            .field("transfer_syntax", &self.transfer_syntax.uid())
            .finish()
    }
}

/// A concrete place in a data set: the tag of each step and, for steps that go into a
/// sequence, the item index.
type Place = Vec<(Tag, Option<u32>)>;

/// Compares one arrival with its send. `skip` are top-level tags left out (the trace
/// attribute, which the matching reports on).
pub(crate) fn compare(
    sent: Sent<'_>,
    received: InMemDicomObject,
    received_ts: &'static TransferSyntax,
    policy: &RoutePolicy,
    skip: &[Tag],
) -> Comparison {
    let syntax_changed = sent.transfer_syntax.uid() != received_ts.uid();
    let mut walk = Walk {
        policy,
        skip,
        syntax_changed,
        differences: Vec::new(),
        place: Vec::new(),
    };
    walk.data_sets(
        sent.original.data_set(),
        sent.substitutions,
        &received,
        true,
    );
    check_expected(sent, &received, policy, &mut walk.differences);
    let mut comparison = Comparison {
        differences: walk.differences,
        lossy_psnr_db: None,
    };
    if syntax_changed
        && !is_lossy_capable(received_ts.uid())
        && !policy.transfer_syntax.lossless_change_allowed
    {
        comparison.differences.push(Difference {
            path: "TransferSyntaxUID".into(),
            tag: "(0002,0010)".into(),
            keyword: Some("TransferSyntaxUID"),
            kind: DifferenceKind::TransferSyntaxChanged,
            sent: Some(sent.transfer_syntax.uid().to_string()),
            received: Some(received_ts.uid().to_string()),
            expected: None,
            psnr_db: None,
        });
    }
    compare_pixels(sent, received, received_ts, policy, &mut comparison);
    comparison
}

struct Walk<'p> {
    policy: &'p RoutePolicy,
    skip: &'p [Tag],
    syntax_changed: bool,
    differences: Vec<Difference>,
    place: Place,
}

impl Walk<'_> {
    fn data_sets(
        &mut self,
        sent: &InMemDicomObject,
        substitutions: &[Substitution],
        received: &InMemDicomObject,
        top: bool,
    ) {
        let mut a = sent.iter().peekable();
        let mut b = received.iter().peekable();
        loop {
            let (ta, tb) = (a.peek().map(|e| e.tag()), b.peek().map(|e| e.tag()));
            let (sent_element, received_element, tag) = match (ta, tb) {
                (None, None) => break,
                (Some(x), Some(y)) if x == y => (a.next(), b.next(), x),
                (Some(x), Some(y)) if x < y => (a.next(), None, x),
                (Some(x), None) => (a.next(), None, x),
                (_, Some(y)) => (None, b.next(), y),
            };
            if self.ignored(tag, top) {
                continue;
            }
            let substitution = if top {
                substitutions.iter().find(|s| s.tag == tag)
            } else {
                None
            };
            self.place.push((tag, None));
            match (substitution, sent_element, received_element) {
                (Some(sub), _, received) => self.against_text(sub, received),
                (None, Some(x), Some(y)) => self.elements(x, y),
                (None, Some(x), None) => self.report(DifferenceKind::Removed, Some(shown(x)), None),
                (None, None, Some(y)) => self.report(DifferenceKind::Added, None, Some(shown(y))),
                (None, None, None) => {}
            }
            self.place.pop();
        }
        // Substituted attributes the original did not have at all.
        if top {
            for sub in substitutions {
                if sent.get(sub.tag).is_none() && received.get(sub.tag).is_none() {
                    self.place.push((sub.tag, None));
                    self.report(DifferenceKind::Removed, Some(sub.value.to_string()), None);
                    self.place.pop();
                }
            }
        }
    }

    fn ignored(&self, tag: Tag, top: bool) -> bool {
        tag.group() == 0x0002
            || tag.element() == 0x0000
            || tag == tags::DATA_SET_TRAILING_PADDING
            || (top && (tag == tags::PIXEL_DATA || self.skip.contains(&tag)))
            || (self.syntax_changed && top && is_encoding_attribute(tag))
    }

    fn against_text(&mut self, sub: &Substitution, received: Option<&InMemElement>) {
        let Some(received) = received else {
            self.report(DifferenceKind::Removed, Some(sub.value.to_string()), None);
            return;
        };
        let same = received
            .value()
            .primitive()
            .is_some_and(|v| values::equals_text(received.vr(), v, &sub.value));
        if !same {
            self.report(
                DifferenceKind::Changed,
                Some(values::shorten(sub.value.to_string())),
                Some(shown(received)),
            );
        }
    }

    fn elements(&mut self, sent: &InMemElement, received: &InMemElement) {
        match (sent.value(), received.value()) {
            (Value::Primitive(x), Value::Primitive(y)) => {
                if !values::same_value(sent.vr(), x, received.vr(), y) {
                    self.report(
                        DifferenceKind::Changed,
                        Some(shown(sent)),
                        Some(shown(received)),
                    );
                }
            }
            (Value::Sequence(x), Value::Sequence(y)) => self.items(x.items(), y.items()),
            // A private sequence arrives as UN bytes in Implicit VR when its length was defined.
            (Value::Sequence(x), Value::Primitive(y)) if received.vr() == VR::UN => {
                match items_from_un(&y.to_bytes()) {
                    Some(items) => self.items(x.items(), &items),
                    None => self.report(
                        DifferenceKind::Changed,
                        Some(shown(sent)),
                        Some(shown(received)),
                    ),
                }
            }
            (Value::Primitive(x), Value::Sequence(y)) if sent.vr() == VR::UN => {
                match items_from_un(&x.to_bytes()) {
                    Some(items) => self.items(&items, y.items()),
                    None => self.report(
                        DifferenceKind::Changed,
                        Some(shown(sent)),
                        Some(shown(received)),
                    ),
                }
            }
            (Value::PixelSequence(x), Value::PixelSequence(y)) => {
                if !x
                    .fragments()
                    .iter()
                    .flatten()
                    .eq(y.fragments().iter().flatten())
                {
                    self.report(
                        DifferenceKind::Changed,
                        Some(shown(sent)),
                        Some(shown(received)),
                    );
                }
            }
            _ => self.report(
                DifferenceKind::Changed,
                Some(shown(sent)),
                Some(shown(received)),
            ),
        }
    }

    fn items(&mut self, sent: &[InMemDicomObject], received: &[InMemDicomObject]) {
        if sent.len() != received.len() {
            self.report(
                DifferenceKind::ItemCount,
                Some(format!("{} item(s)", sent.len())),
                Some(format!("{} item(s)", received.len())),
            );
        }
        for (i, (x, y)) in sent.iter().zip(received).enumerate() {
            if let Some(last) = self.place.last_mut() {
                last.1 = Some(i as u32);
            }
            self.data_sets(x, &[], y, false);
        }
        if let Some(last) = self.place.last_mut() {
            last.1 = None;
        }
    }

    fn report(&mut self, kind: DifferenceKind, sent: Option<String>, received: Option<String>) {
        if self.policy.allows(&self.place) {
            return;
        }
        self.differences
            .push(difference_at(&self.place, kind, sent, received));
    }
}

fn difference_at(
    place: &[(Tag, Option<u32>)],
    kind: DifferenceKind,
    sent: Option<String>,
    received: Option<String>,
) -> Difference {
    let (tag, _) = place.last().copied().unwrap_or((Tag(0, 0), None));
    let attribute = dimse::Attribute::from_tag(tag);
    Difference {
        path: place_text(place),
        tag: format!("({:04X},{:04X})", tag.group(), tag.element()),
        keyword: attribute.keyword,
        kind,
        sent,
        received,
        expected: None,
        psnr_db: None,
    }
}

/// `ReferencedStudySequence[0].ReferencedSOPInstanceUID`; `(0009,1001)` for tags the
/// dictionary does not name.
fn place_text(place: &[(Tag, Option<u32>)]) -> String {
    let mut out = String::new();
    for (i, (tag, item)) in place.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match dimse::Attribute::from_tag(*tag).keyword {
            Some(keyword) => out.push_str(keyword),
            None => out.push_str(&format!("({:04X},{:04X})", tag.group(), tag.element())),
        }
        if let Some(n) = item {
            out.push_str(&format!("[{n}]"));
        }
    }
    out
}

/// An element as a report shows it.
fn shown(element: &InMemElement) -> String {
    match element.value() {
        Value::Primitive(v) => values::render(element.vr(), v),
        Value::Sequence(s) => format!("{} item(s)", s.items().len()),
        Value::PixelSequence(p) => format!(
            "<{} fragment(s), {} bytes>",
            p.fragments().len(),
            p.fragments().iter().map(Vec::len).sum::<usize>()
        ),
    }
}

/// Attributes that describe how pixel data is encoded: a transfer-syntax change may
/// change them without changing a pixel (decoded pixels are compared).
fn is_encoding_attribute(tag: Tag) -> bool {
    tag == tags::PLANAR_CONFIGURATION
        || tag == tags::PHOTOMETRIC_INTERPRETATION
        || tag == tags::LOSSY_IMAGE_COMPRESSION
        || tag == tags::LOSSY_IMAGE_COMPRESSION_RATIO
        || tag == tags::LOSSY_IMAGE_COMPRESSION_METHOD
}

/// Whether a transfer syntax may lose information: JPEG lossy processes, JPEG-LS
/// near-lossless, JPEG 2000 and HTJ2K that may be lossy, MPEG and HEVC video, JPEG XL.
pub(crate) fn is_lossy_capable(uid: &str) -> bool {
    const LOSSLESS_ONLY: [&str; 6] = [
        "1.2.840.10008.1.2.4.57",  // JPEG Lossless, non-hierarchical
        "1.2.840.10008.1.2.4.70",  // JPEG Lossless, first-order prediction
        "1.2.840.10008.1.2.4.80",  // JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  // JPEG 2000 Lossless Only
        "1.2.840.10008.1.2.4.201", // HTJ2K Lossless
        "1.2.840.10008.1.2.4.202", // HTJ2K Lossless RPCL
    ];
    let uid = dimse::trim_value(uid);
    uid.starts_with("1.2.840.10008.1.2.4.")
        && !LOSSLESS_ONLY.contains(&uid)
        && uid != "1.2.840.10008.1.2.4.110" // JPEG XL Lossless
}

/// Items of a sequence whose value arrived as UN bytes (Implicit VR Little Endian
/// items, each `(FFFE,E000)` with a defined length).
fn items_from_un(bytes: &[u8]) -> Option<Vec<InMemDicomObject>> {
    let implicit = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut items = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 8 {
        let group = u16::from_le_bytes([rest[0], rest[1]]);
        let element = u16::from_le_bytes([rest[2], rest[3]]);
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        if (group, element) != (0xFFFE, 0xE000) || len == 0xFFFF_FFFF || rest.len() < 8 + len {
            return None;
        }
        items.push(crate::sent::parse_data_set(&rest[8..8 + len], &implicit).ok()?);
        rest = &rest[8 + len..];
    }
    rest.is_empty().then_some(items)
}

/// The allowed changes whose value is known: the arrival must carry exactly it.
fn check_expected(
    sent: Sent<'_>,
    received: &InMemDicomObject,
    policy: &RoutePolicy,
    differences: &mut Vec<Difference>,
) {
    for change in &policy.allowed_changes {
        if change.expected == ExpectedValue::Any {
            continue;
        }
        let mut found = Vec::new();
        resolve(
            received,
            change.attribute.steps(),
            &mut Vec::new(),
            &mut found,
        );
        for (place, element) in found {
            let ok = match (&change.expected, element) {
                (ExpectedValue::Value(_), None) => false,
                (ExpectedValue::Value(want), Some(e)) => e
                    .value()
                    .primitive()
                    .is_some_and(|v| values::equals_text(e.vr(), v, want)),
                (ExpectedValue::Absent, e) => e.is_none(),
                (ExpectedValue::Any, _) => true,
            };
            if ok {
                continue;
            }
            let sent_value = sent_at(sent, &place);
            let mut difference = difference_at(
                &place,
                DifferenceKind::NotAsExpected,
                sent_value,
                element.map(shown),
            );
            difference.expected = Some(match &change.expected {
                ExpectedValue::Value(v) => values::shorten(v.clone()),
                _ => "(absent)".to_string(),
            });
            differences.push(difference);
        }
    }
}

/// Every place `steps` reaches in `object`, with the element there (`None` where the
/// path stops short: the attribute, or a sequence on the way, is missing).
fn resolve<'o>(
    object: &'o InMemDicomObject,
    steps: &[crate::policy::PathStep],
    place: &mut Place,
    out: &mut Vec<(Place, Option<&'o InMemElement>)>,
) {
    let Some((step, rest)) = steps.split_first() else {
        return;
    };
    let tag = step.attribute.tag;
    let element = object.get(tag);
    if rest.is_empty() {
        let mut here = place.clone();
        here.push((tag, None));
        out.push((here, element));
        return;
    }
    let items = element.and_then(|e| e.value().items());
    let Some(items) = items else {
        let mut here = place.clone();
        here.push((tag, None));
        out.push((here, None));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let wanted = match step.items {
            crate::policy::ItemSelector::Any => true,
            crate::policy::ItemSelector::Index(n) => n as usize == i,
        };
        if wanted {
            place.push((tag, Some(i as u32)));
            resolve(item, rest, place, out);
            place.pop();
        }
    }
}

/// The value sent at `place`, as a report shows it.
fn sent_at(sent: Sent<'_>, place: &[(Tag, Option<u32>)]) -> Option<String> {
    if let [(tag, None)] = place
        && let Some(sub) = sent.substitutions.iter().find(|s| s.tag == *tag)
    {
        return Some(values::shorten(sub.value.to_string()));
    }
    let mut object = sent.original.data_set();
    for (i, (tag, item)) in place.iter().enumerate() {
        let element = object.get(*tag)?;
        if i + 1 == place.len() {
            return Some(shown(element));
        }
        object = element.value().items()?.get((*item)? as usize)?;
    }
    None
}

/// Pixel data after decoding (top level).
fn compare_pixels(
    sent: Sent<'_>,
    received: InMemDicomObject,
    received_ts: &'static TransferSyntax,
    policy: &RoutePolicy,
    comparison: &mut Comparison,
) {
    let place = [(tags::PIXEL_DATA, None)];
    let sent_pixels = sent.original.data_set().get(tags::PIXEL_DATA);
    let received_pixels = received.get(tags::PIXEL_DATA);
    let (sent_element, received_element) = match (sent_pixels, received_pixels) {
        (None, None) => return,
        (Some(x), None) => {
            if !policy.allows(&place) {
                comparison.differences.push(difference_at(
                    &place,
                    DifferenceKind::Removed,
                    Some(shown(x)),
                    None,
                ));
            }
            return;
        }
        (None, Some(y)) => {
            if !policy.allows(&place) {
                comparison.differences.push(difference_at(
                    &place,
                    DifferenceKind::Added,
                    None,
                    Some(shown(y)),
                ));
            }
            return;
        }
        (Some(x), Some(y)) => (shown(x), shown(y)),
    };
    if pixels::same_encoded(sent.original.data_set(), &received) {
        return;
    }
    let decoded = wrap(received, received_ts).and_then(|file| pixels::decode(&file));
    let verdict = pixels::compare(sent.original.pixels(), &decoded);
    let lossy = is_lossy_capable(received_ts.uid());
    let (kind, psnr_db, detail) = match verdict {
        PixelVerdict::Same => return,
        PixelVerdict::Different {
            psnr_db,
            differing_samples,
            first: (frame, row, column),
        } => {
            let kind = if lossy {
                comparison.lossy_psnr_db = Some(psnr_db);
                DifferenceKind::LossyPixels
            } else {
                DifferenceKind::PixelData
            };
            let detail = format!(
                "{differing_samples} sample(s) differ, first at frame {frame} row {row} column {column}"
            );
            (kind, Some(psnr_db), Some(detail))
        }
        PixelVerdict::Geometry { sent, received } => (
            DifferenceKind::PixelGeometry,
            None,
            Some(format!("sent {sent}, received {received}")),
        ),
        PixelVerdict::NotDecodable { side, error } => (
            DifferenceKind::PixelsNotDecodable,
            None,
            Some(values::shorten(format!("{side} pixel data: {error}"))),
        ),
    };
    // Lossy pixels are never allowed away; other pixel changes only by an allowed change.
    if kind != DifferenceKind::LossyPixels && policy.allows(&place) {
        return;
    }
    let mut difference = difference_at(&place, kind, Some(sent_element), Some(received_element));
    if let Some(detail) = detail {
        difference.received = Some(format!(
            "{} ({detail})",
            difference.received.unwrap_or_default()
        ));
    }
    difference.psnr_db = psnr_db;
    comparison.differences.push(difference);
}

/// The received data set as a file object in `ts`, which the pixel decoders need.
fn wrap(
    received: InMemDicomObject,
    ts: &'static TransferSyntax,
) -> Result<dicom_object::DefaultDicomObject, String> {
    // Placeholder UIDs: only the transfer syntax matters to decoding, and the arrival's
    // own UIDs may be malformed.
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(ts.uid())
        .media_storage_sop_class_uid("1.2.3")
        .media_storage_sop_instance_uid("1.2.3")
        .build()
        .map_err(|e| dimse::ErrorChain(&e).to_string())?;
    Ok(received.with_exact_meta(meta))
}

/// Compares one delivered data set (`received`, encoded in `received_ts`) with what a
/// send carried: `original` with `substitutions`, encoded in `sent_ts`, under `policy`.
/// Tags in `skip` (top level) are left out.
///
/// Returns every difference, pixel and transfer-syntax ones included.
///
/// # Errors
/// The received bytes are not a data set in `received_ts`, or `received_ts` is a
/// transfer syntax this build does not know: the text says why (a corrupt delivery).
pub fn compare_delivery(
    original: &SentInstance,
    substitutions: &[Substitution],
    sent_ts: &'static TransferSyntax,
    received: &[u8],
    received_ts: &str,
    policy: &RoutePolicy,
    skip: &[Tag],
) -> Result<Vec<Difference>, String> {
    let ts = crate::sent::transfer_syntax(received_ts)
        .ok_or_else(|| format!("unknown transfer syntax {received_ts}"))?;
    let object = crate::sent::parse_data_set(received, ts)?;
    let sent = Sent {
        original,
        substitutions,
        transfer_syntax: sent_ts,
    };
    Ok(compare(sent, object, ts, policy, skip).differences)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AllowedChange, AttributePath, TransferSyntaxPolicy};
    use dicom_core::{DataElement, PrimitiveValue};
    use dicom_dictionary_std::uids;
    use dicom_object::FileMetaTableBuilder;
    use dicom_transfer_syntax_registry::entries::{
        EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN,
    };

    /// A small CT-like instance with a sequence, a private element and 2x2 16-bit pixels.
    fn original() -> std::sync::Arc<SentInstance> {
        let mut object = InMemDicomObject::new_empty();
        object.put_str(tags::SOP_CLASS_UID, VR::UI, uids::CT_IMAGE_STORAGE);
        object.put_str(tags::SOP_INSTANCE_UID, VR::UI, "2.25.1");
        object.put_str(tags::STUDY_DESCRIPTION, VR::LO, "HEAD");
        object.put_str(tags::PATIENT_NAME, VR::PN, "Doe^Jane");
        let mut item = InMemDicomObject::new_empty();
        item.put_str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "2.25.9");
        object.put(DataElement::new(
            tags::REFERENCED_STUDY_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));
        object.put_str(Tag(0x0009, 0x0010), VR::LO, "ACME");
        object.put_str(Tag(0x0009, 0x1001), VR::LO, "private value");
        object.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(2u16),
        ));
        object.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(2u16),
        ));
        object.put(DataElement::new(
            tags::BITS_ALLOCATED,
            VR::US,
            PrimitiveValue::from(16u16),
        ));
        object.put(DataElement::new(
            tags::BITS_STORED,
            VR::US,
            PrimitiveValue::from(12u16),
        ));
        object.put(DataElement::new(
            tags::HIGH_BIT,
            VR::US,
            PrimitiveValue::from(11u16),
        ));
        object.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
        object.put(DataElement::new(
            tags::SAMPLES_PER_PIXEL,
            VR::US,
            PrimitiveValue::from(1u16),
        ));
        object.put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16([10u16, 20, 30, 40].into_iter().collect()),
        ));
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .media_storage_sop_class_uid(uids::CT_IMAGE_STORAGE)
            .media_storage_sop_instance_uid("2.25.1")
            .build()
            .unwrap();
        SentInstance::from_object(object.with_exact_meta(meta)).unwrap()
    }

    fn encoded(object: &InMemDicomObject, ts: &TransferSyntax) -> Vec<u8> {
        let mut bytes = Vec::new();
        object.write_dataset_with_ts(&mut bytes, ts).unwrap();
        bytes
    }

    fn differences(
        sent: &SentInstance,
        received: &InMemDicomObject,
        received_ts: &'static TransferSyntax,
        policy: &RoutePolicy,
    ) -> Vec<Difference> {
        compare_delivery(
            sent,
            &[],
            sent.transfer_syntax(),
            &encoded(received, received_ts),
            received_ts.uid(),
            policy,
            &[],
        )
        .unwrap()
    }

    fn explicit() -> &'static TransferSyntax {
        crate::sent::transfer_syntax(EXPLICIT_VR_LITTLE_ENDIAN.uid()).unwrap()
    }

    fn implicit() -> &'static TransferSyntax {
        crate::sent::transfer_syntax(IMPLICIT_VR_LITTLE_ENDIAN.uid()).unwrap()
    }

    #[test]
    fn a_delivery_in_implicit_vr_of_the_same_values_has_no_difference() {
        let sent = original();
        let found = differences(&sent, sent.data_set(), implicit(), &RoutePolicy::default());
        assert!(found.is_empty(), "{found:#?}");
    }

    #[test]
    fn a_changed_attribute_is_a_difference_with_both_values() {
        let sent = original();
        let mut received = sent.data_set().clone();
        received.put_str(tags::STUDY_DESCRIPTION, VR::LO, "CHEST");
        let found = differences(&sent, &received, explicit(), &RoutePolicy::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, DifferenceKind::Changed);
        assert_eq!(found[0].path, "StudyDescription");
        assert_eq!(found[0].sent.as_deref(), Some("HEAD"));
        assert_eq!(found[0].received.as_deref(), Some("CHEST"));
    }

    #[test]
    fn an_allowed_change_passes_with_the_expected_value_and_fails_with_another() {
        let sent = original();
        let path: AttributePath = "StudyDescription".parse().unwrap();
        let policy = RoutePolicy::allowing([AllowedChange::to_value(path, "HEAD CT")]);
        let mut received = sent.data_set().clone();
        received.put_str(tags::STUDY_DESCRIPTION, VR::LO, "HEAD CT");
        assert!(differences(&sent, &received, explicit(), &policy).is_empty());
        received.put_str(tags::STUDY_DESCRIPTION, VR::LO, "HEAD MR");
        let found = differences(&sent, &received, explicit(), &policy);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, DifferenceKind::NotAsExpected);
        assert_eq!(found[0].expected.as_deref(), Some("HEAD CT"));
        // Left unchanged when a value is expected: the rule was not applied.
        let unchanged = differences(&sent, sent.data_set(), explicit(), &policy);
        assert_eq!(unchanged.len(), 1, "{unchanged:#?}");
    }

    #[test]
    fn a_change_inside_a_sequence_item_names_the_item() {
        let sent = original();
        let mut received = sent.data_set().clone();
        let mut item = InMemDicomObject::new_empty();
        item.put_str(tags::REFERENCED_SOP_INSTANCE_UID, VR::UI, "2.25.8");
        received.put(DataElement::new(
            tags::REFERENCED_STUDY_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(vec![item]),
        ));
        let found = differences(&sent, &received, explicit(), &RoutePolicy::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            found[0].path,
            "ReferencedStudySequence[0].ReferencedSOPInstanceUID"
        );
    }

    #[test]
    fn a_private_element_change_is_a_difference_even_in_implicit_vr() {
        let sent = original();
        let mut received = sent.data_set().clone();
        received.put_str(Tag(0x0009, 0x1001), VR::LO, "rewritten");
        let found = differences(&sent, &received, implicit(), &RoutePolicy::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].path, "(0009,1001)");
    }

    #[test]
    fn one_flipped_pixel_sample_is_a_pixel_difference_with_psnr() {
        let sent = original();
        let mut received = sent.data_set().clone();
        received.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16([10u16, 20, 31, 40].into_iter().collect()),
        ));
        let found = differences(&sent, &received, explicit(), &RoutePolicy::default());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, DifferenceKind::PixelData);
        assert!(found[0].psnr_db.is_some_and(|p| p > 60.0), "{found:#?}");
    }

    #[test]
    fn a_lossless_syntax_change_is_allowed_or_forbidden_by_the_route() {
        let sent = original();
        let allowed = RoutePolicy::default();
        assert!(differences(&sent, sent.data_set(), implicit(), &allowed).is_empty());
        let forbidden = RoutePolicy::default().transfer_syntax(TransferSyntaxPolicy {
            lossless_change_allowed: false,
        });
        let found = differences(&sent, sent.data_set(), implicit(), &forbidden);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, DifferenceKind::TransferSyntaxChanged);
    }

    #[test]
    fn a_malformed_data_set_is_an_error_not_a_panic() {
        let sent = original();
        let garbage = [0x08u8, 0x00, 0x18, 0x00, b'U', b'I', 0xFF, 0x7F, b'1'];
        let result = compare_delivery(
            &sent,
            &[],
            sent.transfer_syntax(),
            &garbage,
            EXPLICIT_VR_LITTLE_ENDIAN.uid(),
            &RoutePolicy::default(),
            &[],
        );
        assert!(result.is_err());
    }
}
