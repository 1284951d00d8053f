//! The one check of the PS3.10 file magic: `DICM` after a 128-byte preamble (PS3.10 §7.1).
//!
//! Every reader of DICOM files asks it first, on a byte head it already has
//! ([`Head::of`]) or straight from a file ([`read_head`]), so "is this DICOM?" has one answer
//! in the whole workspace whatever the file is named.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The four bytes that mark a PS3.10 file.
pub const MAGIC: &[u8; 4] = b"DICM";
/// Byte offset of the `DICM` magic: it follows the 128-byte preamble (PS3.10 §7.1).
pub const MAGIC_OFFSET: usize = 128;
/// Bytes a file needs before it can hold the magic.
pub const MIN_DICOM_LEN: usize = MAGIC_OFFSET + MAGIC.len();

/// What the first [`MIN_DICOM_LEN`] bytes of a file say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// `DICM` at offset 128.
    Dicom,
    /// Shorter than preamble and magic.
    TooShort {
        /// How many bytes there are.
        len: u64,
    },
    /// Long enough, but no `DICM` at offset 128.
    NotDicom,
}

impl Head {
    /// The verdict on a file's first bytes (more than [`MIN_DICOM_LEN`] is fine).
    ///
    /// ```
    /// let mut bytes = vec![0_u8; 128];
    /// bytes.extend_from_slice(b"DICM");
    /// assert_eq!(loader::Head::of(&bytes), loader::Head::Dicom);
    /// assert_eq!(loader::Head::of(b"DICM"), loader::Head::TooShort { len: 4 });
    /// ```
    pub fn of(bytes: &[u8]) -> Head {
        match bytes.get(MAGIC_OFFSET..MIN_DICOM_LEN) {
            None => Head::TooShort {
                len: bytes.len() as u64,
            },
            Some(magic) if magic == MAGIC => Head::Dicom,
            Some(_) => Head::NotDicom,
        }
    }

    /// Whether the head is a DICOM file's.
    pub fn is_dicom(self) -> bool {
        self == Head::Dicom
    }
}

/// Reads at most [`MIN_DICOM_LEN`] bytes of `path` and says whether it is a DICOM file.
///
/// # Errors
/// The I/O error from opening or reading the file.
pub fn read_head(path: &Path) -> std::io::Result<Head> {
    let file = File::open(path)?;
    let mut head = Vec::with_capacity(MIN_DICOM_LEN);
    file.take(MIN_DICOM_LEN as u64).read_to_end(&mut head)?;
    Ok(Head::of(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_must_sit_right_after_the_preamble() {
        let mut bytes = vec![0_u8; 127];
        bytes.extend_from_slice(b"DICM\0");
        assert_eq!(Head::of(&bytes), Head::NotDicom);
        assert_eq!(Head::of(&[]), Head::TooShort { len: 0 });
        bytes.insert(0, 0);
        assert!(Head::of(&bytes).is_dicom());
    }

    #[test]
    fn a_file_is_read_only_up_to_the_magic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let mut bytes = vec![0_u8; 128];
        bytes.extend_from_slice(b"DICM");
        bytes.extend_from_slice(&[7; 1000]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_head(&path).unwrap(), Head::Dicom);
        std::fs::write(&path, &bytes[..130]).unwrap();
        assert_eq!(read_head(&path).unwrap(), Head::TooShort { len: 130 });
    }
}
