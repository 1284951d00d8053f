//! UIDs under the `2.25.` root (ISO/IEC 9834-8: a UUID as one decimal integer).

use rand::SeedableRng;
use rand::rngs::StdRng;

/// Makes UIDs of the form `2.25.<random 128-bit integer in decimal>` ([`dimse::uid_from_rng`],
/// the workspace's one `2.25.` generator), from a seeded or an unseeded random source.
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
        dimse::uid_from_rng(&mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_generator_repeats_its_sequence() {
        let first: Vec<_> = (0..3).map(|_| UidGenerator::seeded(9).next_uid()).collect();
        assert!(first.windows(2).all(|w| w[0] == w[1]));
        let mut generator = UidGenerator::seeded(9);
        assert_ne!(generator.next_uid(), generator.next_uid());
        assert!(first[0].starts_with("2.25."), "{}", first[0]);
    }
}
