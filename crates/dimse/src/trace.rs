//! dicom-auto's trace element: a private attribute whose value names one send, written
//! by the sender and read by the destination sink, so an arrival is matched to its
//! send even through a router that replaces UIDs.
//!
//! Creator [`PRIVATE_CREATOR`] in group [`GROUP`], value at element [`ELEMENT`] of the
//! creator's block (VR LO), the block [`BLOCK`] when free: (0099,0010) and (0099,1001).
//! A router may renumber private blocks: readers find the block by its creator
//! ([`private_block`]).

use std::borrow::Cow;

use dicom_core::{PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;

/// The private creator of dicom-auto's trace block.
pub const PRIVATE_CREATOR: &str = "DICOM-AUTO TRACE";
/// The odd group of the trace block. No vendor in the DICOM conformance statements
/// seen uses it, and a block is found by its creator anyway.
pub const GROUP: u16 = 0x0099;
/// The element, within the block, that holds the trace value (LO).
pub const ELEMENT: u8 = 0x01;
/// The block reserved for the creator when the group is free.
pub const BLOCK: u8 = 0x10;

/// The block number (0x10 to 0xFF) `creator` holds in `group` of `object`. Private
/// creators are LO, but arrive as UN in Implicit VR when the dictionary does not know
/// them.
pub fn private_block(object: &InMemDicomObject, group: u16, creator: &str) -> Option<u8> {
    (0x10u16..=0xFF).find_map(|element| {
        let found = object.get(Tag(group, element))?;
        let text = text_of(found.value().primitive()?);
        (crate::trim_value(&text) == creator).then_some(element as u8)
    })
}

/// Writes `value` at `element` of `creator`'s block in `group`, reserving [`BLOCK`] or
/// the next free block for the creator when it has none; returns the value's tag.
pub fn write_private(
    object: &mut InMemDicomObject,
    group: u16,
    creator: &str,
    element: u8,
    value: &str,
) -> Tag {
    let block = private_block(object, group, creator).unwrap_or_else(|| {
        let free = (BLOCK..=0xFF)
            .find(|b| object.get(Tag(group, u16::from(*b))).is_none())
            .unwrap_or(0xFF);
        object.put_str(Tag(group, u16::from(free)), VR::LO, creator);
        free
    });
    let tag = Tag(group, (u16::from(block) << 8) | u16::from(element));
    object.put_str(tag, VR::LO, value);
    tag
}

/// Writes dicom-auto's trace value into `object`; returns its tag.
///
/// ```
/// let mut object = dicom_object::InMemDicomObject::new_empty();
/// let tag = dimse::trace::write(&mut object, "2.25.1");
/// assert_eq!(tag, dicom_core::Tag(0x0099, 0x1001));
/// ```
pub fn write(object: &mut InMemDicomObject, value: &str) -> Tag {
    write_private(object, GROUP, PRIVATE_CREATOR, ELEMENT, value)
}

/// A primitive value as text (bytes of a UN value read as text).
pub fn text_of(value: &PrimitiveValue) -> Cow<'_, str> {
    match value {
        PrimitiveValue::U8(bytes) => String::from_utf8_lossy(bytes),
        other => other.to_str(),
    }
}
