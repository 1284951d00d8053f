//! A consistent old-to-new mapping of UIDs; the new ones are [`dimse::new_uid`]'s, under the
//! `2.25.` root.

use std::collections::{HashMap, HashSet};

use dimse::new_uid;

/// Maps original UIDs to new ones, the same new UID every time an original UID is seen.
///
/// One map is kept for a whole run, so files of one study keep one StudyInstanceUID and
/// references between files (ReferencedSOPInstanceUID, FrameOfReferenceUID...) still point to
/// the right instance after renaming.
#[derive(Debug, Default, Clone)]
pub struct UidMap {
    map: HashMap<String, String>,
    issued: HashSet<String>,
}

impl UidMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The new UID for `original`, created on first sight.
    pub fn map(&mut self, original: &str) -> String {
        let key = normalize(original);
        if let Some(mapped) = self.map.get(key) {
            return mapped.clone();
        }
        let mut fresh = new_uid();
        while self.issued.contains(&fresh) || self.map.contains_key(&fresh) {
            fresh = new_uid();
        }
        self.issued.insert(fresh.clone());
        self.map.insert(key.to_owned(), fresh.clone());
        fresh
    }

    /// The new UID for `original` if it has been mapped already.
    pub fn get(&self, original: &str) -> Option<&str> {
        self.map.get(normalize(original)).map(String::as_str)
    }

    /// How many original UIDs are mapped.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no UID is mapped yet.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `uid` is one this map handed out (so it must not be mapped again).
    pub fn is_issued(&self, uid: &str) -> bool {
        self.issued.contains(normalize(uid))
    }
}

/// The UIDs held by an element's value, padding removed, empty values dropped.
pub(crate) fn uid_values<I: dicom_core::header::HasLength, P>(
    value: &dicom_core::value::Value<I, P>,
) -> Vec<String> {
    value
        .to_multi_str()
        .map(|values| {
            values
                .iter()
                .map(|v| normalize(v).to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// UIDs are padded to even length with NUL; the padding is not part of the UID.
pub(crate) fn normalize(uid: &str) -> &str {
    dimse::trim_value(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_original_maps_to_same_new_uid_ignoring_padding() {
        let mut map = UidMap::new();
        let a = map.map("1.2.3");
        let b = map.map("1.2.3\0");
        let c = map.map("1.2.4");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, "1.2.3");
        assert_eq!(map.len(), 2);
        assert!(map.is_issued(&a));
    }
}
