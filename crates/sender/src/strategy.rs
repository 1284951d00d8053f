//! How a run uses associations ([`AssociationStrategy`]) and which UIDs its sends
//! carry ([`UidStrategy`]): the sender's two choices of method, which the
//! configuration reads from `ASSOCIATION_STRATEGY` and `SEND_UID_STRATEGY`.

use serde::Serialize;

/// How associations are used when sending many images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssociationStrategy {
    /// `per-image`: open, store one image, release (the old suite's pattern).
    PerImage,
    /// `per-study`: one association per study's images.
    PerStudy,
    /// `persistent`: one association per worker, reused, re-established when lost.
    Persistent,
}

impl AssociationStrategy {
    /// The word used in `ASSOCIATION_STRATEGY` and on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            AssociationStrategy::PerImage => "per-image",
            AssociationStrategy::PerStudy => "per-study",
            AssociationStrategy::Persistent => "persistent",
        }
    }
}

/// Which UIDs a sent instance carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UidStrategy {
    /// `asis`: files are sent as they are, so repeated sends are duplicates to the router.
    #[serde(rename = "asis")]
    AsIs,
    /// `fresh`: every send gets new SOP Instance (and study/series) UIDs, so the router sees
    /// unique traffic and C-FIND can tell what arrived.
    Fresh,
}

impl UidStrategy {
    /// The word used in `SEND_UID_STRATEGY`.
    pub fn as_str(self) -> &'static str {
        match self {
            UidStrategy::AsIs => "asis",
            UidStrategy::Fresh => "fresh",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_serialize_as_their_configuration_words() {
        for s in [
            AssociationStrategy::PerImage,
            AssociationStrategy::PerStudy,
            AssociationStrategy::Persistent,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for s in [UidStrategy::AsIs, UidStrategy::Fresh] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
    }
}
