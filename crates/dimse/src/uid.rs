//! New UIDs under the `2.25.` root: PS3.5 §B.2 lets a UUID written as one decimal integer
//! stand as a UID, so no organisation root has to be registered.
//!
//! 128 random bits make collisions negligible; the UID is at most 44 bytes (well under the
//! 64-byte limit) and its last component never has a leading zero.

use rand::Rng;

/// The root PS3.5 §B.2 gives UUID-derived UIDs.
pub const UUID_UID_ROOT: &str = "2.25.";

/// A fresh `2.25.<128 random bits in decimal>` UID, different on every call.
///
/// ```
/// let uid = dimse::new_uid();
/// assert!(uid.starts_with("2.25.") && uid.len() <= 44);
/// assert_ne!(uid, dimse::new_uid());
/// ```
pub fn new_uid() -> String {
    uid_from_rng(&mut rand::rng())
}

/// A `2.25.` UID drawn from `rng`: a seeded generator gives the same UIDs on every run (the
/// committed sample files depend on this exact draw).
pub fn uid_from_rng(rng: &mut impl Rng) -> String {
    uid_from_bits(rng.random_range(1..=u128::MAX))
}

/// The `2.25.` UID of 128 given bits (e.g. a hash, for a UID derived from another by a fixed
/// rule). Zero, which would print as the one short UID `2.25.0`, becomes one.
pub fn uid_from_bits(bits: u128) -> String {
    format!("{UUID_UID_ROOT}{}", bits.max(1))
}

/// Whether `uid` is a storage SOP class of the standard registry (not Storage
/// Commitment, not the Media Storage Directory): what an SCP that stores accepts.
///
/// ```
/// assert!(dimse::is_storage_sop_class("1.2.840.10008.5.1.4.1.1.2"));
/// assert!(!dimse::is_storage_sop_class("1.2.840.10008.1.20.1"));
/// assert!(!dimse::is_storage_sop_class("1.2.840.10008.1.1"));
/// ```
pub fn is_storage_sop_class(uid: &str) -> bool {
    use dicom_core::dictionary::UidDictionary;
    dicom_dictionary_std::StandardSopClassDictionary
        .by_uid(crate::trim_value(uid))
        .is_some_and(|e| {
            e.alias.contains("Storage")
                && !e.alias.starts_with("StorageCommitment")
                && e.alias != "MediaStorageDirectoryStorage"
                && e.alias != "Storage"
        })
}

/// Whether the standard registry knows `uid` as a SOP class at all (a private SOP
/// class, such as a vendor's non-image storage, is not known).
pub fn is_standard_sop_class(uid: &str) -> bool {
    use dicom_core::dictionary::UidDictionary;
    dicom_dictionary_std::StandardSopClassDictionary
        .by_uid(crate::trim_value(uid))
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uids_are_under_2_25_digits_only_and_fit_64_characters() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let uids: Vec<String> = (0..1000).map(|_| uid_from_rng(&mut rng)).collect();
        for uid in &uids {
            let tail = uid.strip_prefix("2.25.").expect("2.25 root");
            assert!(tail.bytes().all(|b| b.is_ascii_digit()), "{uid}");
            assert!(!tail.starts_with('0'), "{uid}");
            assert!(uid.len() <= 44, "{uid}");
            crate::check_uid(uid).unwrap();
        }
        let distinct: std::collections::HashSet<_> = uids.iter().collect();
        assert_eq!(distinct.len(), uids.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_uid() {
        let draw = || uid_from_rng(&mut rand::rngs::StdRng::seed_from_u64(9));
        assert_eq!(draw(), draw());
    }

    #[test]
    fn unseeded_uids_are_valid_and_differ() {
        for _ in 0..200 {
            let uid = new_uid();
            assert!(uid.starts_with("2.25."), "{uid}");
            crate::check_uid(&uid).unwrap();
        }
        assert_ne!(new_uid(), new_uid());
    }
}
