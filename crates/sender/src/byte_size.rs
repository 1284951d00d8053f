//! [`ByteSize`]: a number of bytes as people write it (`512MiB`, `2GiB`, `800MB`).

use std::fmt;
use std::str::FromStr;

/// A number of bytes, parsed from a whole number of bytes or a number with a unit:
/// KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000), in any
/// case, with or without a space. Shown in the largest binary unit that divides it.
///
/// ```
/// use sender::ByteSize;
///
/// let budget: ByteSize = "1.5GiB".parse().unwrap();
/// assert_eq!(budget.bytes(), 3 << 29);
/// assert_eq!(budget.to_string(), "1536MiB");
/// assert_eq!("800 MB".parse::<ByteSize>().unwrap().bytes(), 800_000_000);
/// assert!("lots".parse::<ByteSize>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// What a size must look like, for error messages.
pub const BYTE_SIZE_FORMS: &str = "e.g. 512MiB, 2GiB, 800MB or a number of bytes";

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, String> {
        let expected = || format!("a size, {BYTE_SIZE_FORMS}");
        let text = raw.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            _ => return Err(expected()),
        };
        let value = number
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(expected)?;
        let bytes = value * multiplier as f64;
        if bytes >= u64::MAX as f64 {
            return Err(expected());
        }
        Ok(ByteSize(bytes as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}
