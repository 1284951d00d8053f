//! UIDs under the `2.25.` root (ISO/IEC 9834-8: a UUID as one decimal integer).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Makes UIDs of the form `2.25.<random 128-bit integer in decimal>`.
///
/// PS3.5 §B.2 allows a UUID-derived UID under `2.25`; any 128-bit value is fine as long as it is
/// unique, and 128 random bits make collisions negligible. At most 44 characters, under the
/// 64-character UID limit, with no leading zero in the last component.
#[derive(Debug, Clone)]
pub struct UidGenerator {
    rng: StdRng,
}

impl UidGenerator {
    /// A generator whose sequence is fixed by `seed` (for the committed samples).
    pub fn seeded(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A generator seeded from the operating system: different UIDs on every run.
    pub fn from_entropy() -> Self {
        Self {
            rng: StdRng::from_os_rng(),
        }
    }

    /// The next UID.
    pub fn next_uid(&mut self) -> String {
        uid_from(&mut self.rng)
    }
}

/// A `2.25.` UID drawn from `rng`.
pub(crate) fn uid_from(rng: &mut impl Rng) -> String {
    // Zero would print as "2.25.0", valid but the one short UID; skip it.
    let value: u128 = rng.random_range(1..=u128::MAX);
    format!("2.25.{value}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_under_2_25_digits_only_and_fit_64_characters() {
        let mut generator = UidGenerator::seeded(3);
        let uids: Vec<String> = (0..1000).map(|_| generator.next_uid()).collect();
        for uid in &uids {
            let tail = uid.strip_prefix("2.25.").expect("2.25 root");
            assert!(tail.bytes().all(|b| b.is_ascii_digit()), "{uid}");
            assert!(!tail.starts_with('0'), "{uid}");
            assert!(uid.len() <= 64, "{uid}");
        }
        let distinct: std::collections::HashSet<_> = uids.iter().collect();
        assert_eq!(distinct.len(), uids.len());
    }

    #[test]
    fn a_seeded_generator_repeats_its_sequence() {
        let first: Vec<_> = (0..3).map(|_| UidGenerator::seeded(9).next_uid()).collect();
        assert!(first.windows(2).all(|w| w[0] == w[1]));
    }
}
