//! How an arrival is matched to the send that produced it: by SOP Instance UID, or by
//! a trace attribute the sender writes into every instance ([`MatchBy`]).

use dicom_core::{Tag, VR};
use dicom_object::InMemDicomObject;
use serde::Serialize;

/// The private creator of dicom-auto's trace block (default trace attribute).
pub const TRACE_PRIVATE_CREATOR: &str = dimse::trace::PRIVATE_CREATOR;
/// The odd group of dicom-auto's trace block.
pub const TRACE_GROUP: u16 = dimse::trace::GROUP;
/// The element, within the reserved block, that holds the trace value (LO).
pub const TRACE_ELEMENT: u8 = dimse::trace::ELEMENT;
/// The block the sender reserves for the trace creator when the group is free:
/// creator at (0099,0010), value at (0099,1001).
pub const TRACE_BLOCK: u8 = dimse::trace::BLOCK;

/// An attribute whose value identifies one send, written by the sender into every
/// instance it sends, for routers that replace UIDs.
///
/// [`TraceAttribute::dicom_auto`] is the default: a private element, creator
/// [`TRACE_PRIVATE_CREATOR`] in group [`TRACE_GROUP`], element [`TRACE_ELEMENT`] of
/// whatever block the creator holds (a router may renumber private blocks), VR LO.
/// [`TraceAttribute::Standard`] names a public attribute instead (for routers that
/// strip every private element), such as Clinical Trial Subject ID or a free-text
/// comment the route leaves alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TraceAttribute {
    /// A private element found by its creator.
    Private {
        /// Odd group number.
        group: u16,
        /// The private creator (the value of (gggg,00xx)).
        creator: String,
        /// The element number within the creator's block (the low byte).
        element: u8,
    },
    /// A public attribute.
    Standard {
        /// Its tag.
        #[serde(serialize_with = "tag_text")]
        tag: Tag,
    },
}

impl TraceAttribute {
    /// dicom-auto's private trace element: (0099,xx01) of creator `DICOM-AUTO TRACE`.
    pub fn dicom_auto() -> Self {
        TraceAttribute::Private {
            group: TRACE_GROUP,
            creator: TRACE_PRIVATE_CREATOR.to_string(),
            element: TRACE_ELEMENT,
        }
    }

    /// The tag where the trace value sits in `object`, if the attribute is there.
    pub fn locate(&self, object: &InMemDicomObject) -> Option<Tag> {
        match self {
            TraceAttribute::Standard { tag } => object.get(*tag).map(|_| *tag),
            TraceAttribute::Private {
                group,
                creator,
                element,
            } => {
                let block = private_block(object, *group, creator)?;
                let tag = Tag(*group, (u16::from(block) << 8) | u16::from(*element));
                object.get(tag).map(|_| tag)
            }
        }
    }

    /// The trace value in `object`, trimmed; `None` when the attribute is absent or empty.
    pub fn value_in(&self, object: &InMemDicomObject) -> Option<String> {
        let tag = self.locate(object)?;
        let element = object.get(tag)?;
        let text = text_of(element.value().primitive()?);
        let trimmed = dimse::trim_value(&text);
        (!trimmed.is_empty()).then(|| trimmed.to_string())
    }

    /// Tags the trace occupies in `object` (the value and, for a private one, its
    /// creator): pass them as `skip` to [`compare_delivery`](crate::compare_delivery),
    /// since matching, not comparison, reports a stripped trace.
    pub fn tags_in(&self, object: &InMemDicomObject) -> Vec<Tag> {
        match self {
            TraceAttribute::Standard { tag } => vec![*tag],
            TraceAttribute::Private {
                group,
                creator,
                element,
            } => match private_block(object, *group, creator) {
                Some(block) => vec![
                    Tag(*group, u16::from(block)),
                    Tag(*group, (u16::from(block) << 8) | u16::from(*element)),
                ],
                None => Vec::new(),
            },
        }
    }

    /// Writes `value` as the trace into `object` (what the sender does; tests and
    /// benches use it too). A private trace takes the creator's block, reserving
    /// [`TRACE_BLOCK`] or the next free one.
    pub fn write(&self, object: &mut InMemDicomObject, value: &str) {
        match self {
            TraceAttribute::Standard { tag } => {
                let vr = dimse::Attribute::from_tag(*tag).vr_or(VR::LO);
                object.put_str(*tag, vr, value);
            }
            TraceAttribute::Private {
                group,
                creator,
                element,
            } => {
                dimse::trace::write_private(object, *group, creator, *element, value);
            }
        }
    }
}

impl std::fmt::Display for TraceAttribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceAttribute::Private {
                group,
                creator,
                element,
            } => write!(
                f,
                "({group:04X},xx{element:02X}) of private creator \"{creator}\""
            ),
            TraceAttribute::Standard { tag } => write!(f, "{}", dimse::Attribute::from_tag(*tag)),
        }
    }
}

fn tag_text<S: serde::Serializer>(tag: &Tag, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("({:04X},{:04X})", tag.group(), tag.element()))
}

use dimse::trace::{private_block, text_of};

/// How arrivals are matched to sends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MatchBy {
    /// By SOP Instance UID (0008,0018): right for routers that keep UIDs.
    #[default]
    SopInstanceUid,
    /// By a trace attribute the sender writes, for routers that replace UIDs. An
    /// arrival without it is reported as "trace stripped by the router" and matched by
    /// SOP Instance UID when that still finds its send.
    Trace(TraceAttribute),
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::PrimitiveValue;

    #[test]
    fn the_trace_is_found_by_its_creator_in_whatever_block_it_sits() {
        let trace = TraceAttribute::dicom_auto();
        let mut object = InMemDicomObject::new_empty();
        object.put_str(Tag(0x0099, 0x0010), VR::LO, "SOMEONE ELSE");
        trace.write(&mut object, "send-42");
        assert!(
            object.get(Tag(0x0099, 0x1101)).is_some(),
            "next free block used"
        );
        assert_eq!(trace.value_in(&object).as_deref(), Some("send-42"));
        assert_eq!(
            trace.tags_in(&object),
            vec![Tag(0x0099, 0x0011), Tag(0x0099, 0x1101)]
        );
    }

    #[test]
    fn a_missing_or_empty_trace_is_none() {
        let trace = TraceAttribute::dicom_auto();
        let mut object = InMemDicomObject::new_empty();
        assert_eq!(trace.value_in(&object), None);
        trace.write(&mut object, "");
        assert_eq!(trace.value_in(&object), None);
    }

    #[test]
    fn a_creator_read_as_un_still_names_its_block() {
        let trace = TraceAttribute::dicom_auto();
        let mut object = InMemDicomObject::new_empty();
        object.put(dicom_core::DataElement::new(
            Tag(0x0099, 0x0010),
            VR::UN,
            PrimitiveValue::U8(TRACE_PRIVATE_CREATOR.bytes().collect()),
        ));
        object.put(dicom_core::DataElement::new(
            Tag(0x0099, 0x1001),
            VR::UN,
            PrimitiveValue::U8(b"T-1 ".iter().copied().collect()),
        ));
        assert_eq!(trace.value_in(&object).as_deref(), Some("T-1"));
    }
}
