//! Fresh UIDs of one fixed length, so they can be written over placeholders in data
//! sets encoded once.

use std::fmt;
use std::str::FromStr;

use crate::SenderError;

/// Length in characters of every UID this module makes. Even, so the encoded value
/// needs no padding byte, and within the 64-character limit of the UI VR.
pub const FRESH_UID_LEN: usize = 60;

/// The level of the DICOM hierarchy a fresh UID identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UidLevel {
    /// Study Instance UID (0020,000D).
    Study,
    /// Series Instance UID (0020,000E).
    Series,
    /// SOP Instance UID (0008,0018).
    Instance,
}

impl UidLevel {
    fn digit(self) -> u8 {
        match self {
            UidLevel::Study => b'1',
            UidLevel::Series => b'2',
            UidLevel::Instance => b'3',
        }
    }
}

/// A UID of exactly [`FRESH_UID_LEN`] ASCII characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FreshUid([u8; FRESH_UID_LEN]);

impl FreshUid {
    /// The UID as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("made of ASCII digits and dots")
    }

    /// The UID as the bytes that go into an encoded UI value.
    pub fn as_bytes(&self) -> &[u8; FRESH_UID_LEN] {
        &self.0
    }
}

impl fmt::Debug for FreshUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FreshUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Digits of the serial component; the leading 1 keeps the length fixed and avoids a
/// leading zero, which PS3.5 9.1 forbids.
const SERIAL_DIGITS: usize = 13;
const SERIAL_BASE: u64 = 1_000_000_000_000;
/// Largest serial that still fits in the UID's fixed number of serial digits.
pub const MAX_SERIAL: u64 = 8_999_999_999_999;
/// Digits of the 128-bit root number (between 10^38 and 2^128, so always 39).
const ROOT_DIGITS: usize = 39;
const ROOT_MIN: u128 = 100_000_000_000_000_000_000_000_000_000_000_000_000;

/// A run's UID root: `2.25.<random 128-bit number>`, under which every UID is
/// `<root>.<level>.<serial>`, [`FRESH_UID_LEN`] characters long.
///
/// `2.25` is the root for UUID-derived UIDs (PS3.5 B.2); the random number makes two
/// runs (or two generator machines) collide with negligible probability.
#[derive(Clone, PartialEq, Eq)]
pub struct UidRoot {
    prefix: [u8; 5 + ROOT_DIGITS],
}

impl fmt::Debug for UidRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.prefix).unwrap_or("?"))
    }
}

impl UidRoot {
    /// A new random root.
    pub fn random() -> Self {
        loop {
            let n: u128 = rand::random();
            if n >= ROOT_MIN {
                return Self::from_number(n);
            }
        }
    }

    /// A new random root for `shard` of a run: its last six digits are the shard's
    /// index, so the roots (and so every UID) of two shards of one run never
    /// coincide, whatever the random part; the UIDs keep their fixed length. Of
    /// [`Shard::WHOLE`](crate::Shard::WHOLE), [`random`](Self::random).
    pub fn random_for_shard(shard: crate::Shard) -> Self {
        if shard.is_whole() {
            return Self::random();
        }
        const SHARD_DIGITS: u128 = 1_000_000;
        const _: () = assert!(crate::MAX_SHARDS as u128 <= SHARD_DIGITS);
        loop {
            let n: u128 = rand::random();
            // ROOT_MIN is a multiple of 10^6, so rounding down keeps 39 digits; near
            // 2^128 adding the index may overflow: draw again.
            if n >= ROOT_MIN
                && let Some(n) = (n - n % SHARD_DIGITS).checked_add(u128::from(shard.index()))
            {
                return Self::from_number(n);
            }
        }
    }

    /// The root for a given 128-bit number of 39 decimal digits.
    fn from_number(n: u128) -> Self {
        debug_assert!(n >= ROOT_MIN);
        let root = dimse::UUID_UID_ROOT.as_bytes();
        let mut prefix = [0u8; 5 + ROOT_DIGITS];
        prefix[..root.len()].copy_from_slice(root);
        write_digits(&mut prefix[root.len()..], n);
        UidRoot { prefix }
    }

    /// The UID of the `serial`th item of `level` under this root.
    ///
    /// # Panics
    /// When `serial` exceeds [`MAX_SERIAL`] (nine trillion: no run gets there).
    pub fn uid(&self, level: UidLevel, serial: u64) -> FreshUid {
        assert!(serial <= MAX_SERIAL, "UID serial {serial} out of range");
        let mut out = [0u8; FRESH_UID_LEN];
        let p = self.prefix.len();
        out[..p].copy_from_slice(&self.prefix);
        out[p] = b'.';
        out[p + 1] = level.digit();
        out[p + 2] = b'.';
        write_digits(&mut out[p + 3..], u128::from(SERIAL_BASE + serial));
        FreshUid(out)
    }

    /// The fixed root whose UIDs stand in for fresh ones in pre-encoded data sets.
    pub(crate) fn placeholder() -> Self {
        // Any fixed 39-digit number would do; this one is unlikely to be anyone's root.
        Self::from_number(271_828_182_845_904_523_536_028_747_135_266_249_775)
    }
}

impl FromStr for UidRoot {
    type Err = SenderError;

    /// Reads a root as a run's report prints it (`2.25.` and 39 digits), to name
    /// the UIDs that run sent.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix(dimse::UUID_UID_ROOT).unwrap_or("");
        match digits.parse::<u128>() {
            Ok(n) if digits.len() == ROOT_DIGITS && n >= ROOT_MIN => Ok(Self::from_number(n)),
            _ => Err(SenderError::InvalidOption {
                name: "uid_root",
                value: text.to_string(),
                expected: format!("{} followed by {ROOT_DIGITS} digits", dimse::UUID_UID_ROOT),
            }),
        }
    }
}

/// Writes `n` right-aligned into `out` as decimal digits (`out` must be exactly wide
/// enough: callers pass widths that their numbers always fill).
fn write_digits(out: &mut [u8], mut n: u128) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    debug_assert_eq!(n, 0);
}

const _: () = assert!(5 + ROOT_DIGITS + 3 + SERIAL_DIGITS == FRESH_UID_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    fn is_valid_uid(uid: &str) -> bool {
        uid.len() <= 64
            && uid.split('.').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| b.is_ascii_digit())
                    && (c == "0" || !c.starts_with('0'))
            })
    }

    #[test]
    fn fresh_uids_are_valid_and_all_of_one_length() {
        let root = UidRoot::random();
        for (level, serial) in [
            (UidLevel::Study, 0),
            (UidLevel::Series, 7),
            (UidLevel::Instance, MAX_SERIAL),
        ] {
            let uid = root.uid(level, serial);
            assert_eq!(uid.as_str().len(), FRESH_UID_LEN, "{uid}");
            assert!(is_valid_uid(uid.as_str()), "{uid}");
        }
    }

    #[test]
    fn levels_and_serials_give_distinct_uids() {
        let root = UidRoot::random();
        assert_ne!(root.uid(UidLevel::Study, 1), root.uid(UidLevel::Series, 1));
        assert_ne!(
            root.uid(UidLevel::Instance, 1),
            root.uid(UidLevel::Instance, 2)
        );
    }

    #[test]
    fn a_root_read_back_from_its_text_names_the_same_uids() {
        let root = UidRoot::random();
        let again: UidRoot = format!("{root:?}").parse().unwrap();
        assert_eq!(
            again.uid(UidLevel::Instance, 7),
            root.uid(UidLevel::Instance, 7)
        );
        for bad in [
            "",
            "2.25.12",
            "1.2.3",
            "2.25.+00000000000000000000000000000000000001",
        ] {
            assert!(bad.parse::<UidRoot>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_roots_end_in_the_shard_index_and_keep_the_uids_length() {
        let shard = crate::Shard::new(41, 100).unwrap();
        let root = UidRoot::random_for_shard(shard);
        let text = format!("{root:?}");
        assert!(text.ends_with("000041"), "{text}");
        let uid = root.uid(UidLevel::Instance, MAX_SERIAL);
        assert_eq!(uid.as_str().len(), FRESH_UID_LEN);
        assert!(is_valid_uid(uid.as_str()), "{uid}");
        assert_eq!(text.parse::<UidRoot>().unwrap(), root);
    }

    #[test]
    fn two_runs_have_different_roots() {
        assert_ne!(UidRoot::random(), UidRoot::random());
    }
}
