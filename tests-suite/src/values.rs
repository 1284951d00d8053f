//! Comparing DICOM values as a user means them: the same value whatever its encoding.

use dicom_core::value::Value;
use dicom_object::mem::InMemElement;

/// Whether two elements hold the same value. Lengths are left out: a sequence read with
/// a defined length is written back with an undefined one, which changes no value.
pub fn same_value(a: Option<&InMemElement>, b: Option<&InMemElement>) -> bool {
    let (Some(a), Some(b)) = (a, b) else {
        return a.is_none() && b.is_none();
    };
    if a.vr() != b.vr() {
        return false;
    }
    match (a.value(), b.value()) {
        (Value::Primitive(x), Value::Primitive(y)) => x == y,
        (Value::Sequence(x), Value::Sequence(y)) => {
            x.items().len() == y.items().len()
                && x.items().iter().zip(y.items()).all(|(x, y)| {
                    x.tags().eq(y.tags()) && x.tags().all(|t| same_value(x.get(t), y.get(t)))
                })
        }
        (Value::PixelSequence(x), Value::PixelSequence(y)) => {
            x.offset_table() == y.offset_table() && x.fragments() == y.fragments()
        }
        _ => false,
    }
}
