//! Presentation contexts: what to propose for a set of instances, and which accepted
//! context (and which encoding) to send each instance on.
//!
//! Like DCMTK's and dicom-rs's storescu, every (SOP class, transfer syntax) pair gets a
//! context of its own with that single syntax: a peer picks the first syntax it
//! supports in each context, so one syntax per context is the only way to learn
//! exactly which ones it takes. Each SOP class is proposed with the instances' own
//! syntaxes plus Explicit and Implicit VR Little Endian as fallbacks.

use dicom_dictionary_std::uids;
use dicom_ul::pdu::PresentationContextNegotiated;

use crate::SenderError;
use crate::instance::is_encapsulated;
use loader::can_decompress;

/// Most presentation contexts one association can carry: context IDs are odd bytes
/// (1..=255), and dicom-ul silently wraps them beyond 128.
pub const MAX_PRESENTATION_CONTEXTS: usize = 128;

/// Presentation contexts to propose: (abstract syntax, one transfer syntax) each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Proposal {
    contexts: Vec<(String, String)>,
}

impl Proposal {
    /// Verification (C-ECHO) only, in Implicit VR Little Endian (every SCP takes it).
    pub fn verification() -> Self {
        Proposal {
            contexts: vec![(
                uids::VERIFICATION.to_string(),
                uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
            )],
        }
    }

    /// Contexts for instances of the given (SOP class, transfer syntax) pairs, each
    /// SOP class also with Explicit and Implicit VR Little Endian.
    ///
    /// # Errors
    /// [`SenderError::TooManyPresentationContexts`] beyond
    /// [`MAX_PRESENTATION_CONTEXTS`].
    pub fn for_instances<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, SenderError> {
        let mut by_class: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (class, ts) in pairs {
            let list = by_class.entry(class.to_string()).or_default();
            if !list.iter().any(|t| t == ts) {
                list.push(ts.to_string());
            }
        }
        let mut contexts = Vec::new();
        for (class, mut syntaxes) in by_class {
            for fallback in [
                uids::EXPLICIT_VR_LITTLE_ENDIAN,
                uids::IMPLICIT_VR_LITTLE_ENDIAN,
            ] {
                if !syntaxes.iter().any(|t| t == fallback) {
                    syntaxes.push(fallback.to_string());
                }
            }
            for ts in syntaxes {
                contexts.push((class.clone(), ts));
            }
        }
        if contexts.len() > MAX_PRESENTATION_CONTEXTS {
            return Err(SenderError::TooManyPresentationContexts {
                needed: contexts.len(),
            });
        }
        Ok(Proposal { contexts })
    }

    /// Adds Verification, so the association can also carry C-ECHO (when there is room).
    pub fn with_verification(mut self) -> Self {
        let verification = Proposal::verification().contexts.remove(0);
        if self.contexts.len() < MAX_PRESENTATION_CONTEXTS && !self.contexts.contains(&verification)
        {
            self.contexts.push(verification);
        }
        self
    }

    /// The (abstract syntax, transfer syntax) pairs, in proposal order.
    pub fn contexts(&self) -> &[(String, String)] {
        &self.contexts
    }
}

/// How an instance goes over an accepted context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextChoice {
    /// The presentation context ID.
    pub id: u8,
    /// The transfer syntax to encode the data set in.
    pub transfer_syntax: String,
    /// How the encoding relates to the instance's own.
    pub conversion: Conversion,
}

/// What has to be done to an instance's data set to send it on a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// Sent as encoded: the peer accepted the instance's own transfer syntax.
    None,
    /// Re-encoded from one uncompressed syntax into another (no pixel decoding).
    Reencode,
    /// Pixel data decompressed and sent in an uncompressed syntax.
    Decompress,
}

/// Chooses the accepted context for an instance of `sop_class` in `ts`: the exact
/// syntax; else, for an uncompressed instance, another uncompressed syntax; else, for
/// a compressed instance this build can decode, Explicit (then Implicit) VR Little
/// Endian with the pixel data decompressed. `None` when nothing fits.
pub fn choose_context(
    accepted: &[PresentationContextNegotiated],
    sop_class: &str,
    ts: &str,
) -> Option<ContextChoice> {
    let of_class = || {
        accepted
            .iter()
            .filter(move |pc| dimse::trim_value(&pc.abstract_syntax) == sop_class)
    };
    if let Some(pc) = of_class().find(|pc| dimse::trim_value(&pc.transfer_syntax) == ts) {
        return Some(ContextChoice {
            id: pc.id,
            transfer_syntax: ts.to_string(),
            conversion: Conversion::None,
        });
    }
    let uncompressed_preference = [
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        uids::IMPLICIT_VR_LITTLE_ENDIAN,
    ];
    let conversion = if !is_encapsulated(ts) {
        Conversion::Reencode
    } else if can_decompress(ts) {
        Conversion::Decompress
    } else {
        return None;
    };
    let pick = |target: &str| {
        of_class()
            .find(|pc| dimse::trim_value(&pc.transfer_syntax) == target)
            .map(|pc| ContextChoice {
                id: pc.id,
                transfer_syntax: target.to_string(),
                conversion,
            })
    };
    if let Some(choice) = uncompressed_preference.iter().find_map(|t| pick(t)) {
        return Some(choice);
    }
    // Any other uncompressed syntax the peer took (Explicit VR Big Endian...) will do
    // for an uncompressed instance.
    if conversion == Conversion::Reencode {
        return of_class()
            .find(|pc| !is_encapsulated(dimse::trim_value(&pc.transfer_syntax)))
            .map(|pc| ContextChoice {
                id: pc.id,
                transfer_syntax: dimse::trim_value(&pc.transfer_syntax).to_string(),
                conversion,
            });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::PresentationContextResultReason;

    fn accepted(list: &[(u8, &str, &str)]) -> Vec<PresentationContextNegotiated> {
        list.iter()
            .map(|(id, a, t)| PresentationContextNegotiated {
                id: *id,
                reason: PresentationContextResultReason::Acceptance,
                abstract_syntax: a.to_string(),
                transfer_syntax: t.to_string(),
            })
            .collect()
    }

    const CT: &str = uids::CT_IMAGE_STORAGE;
    const JPEG: &str = uids::JPEG_BASELINE8_BIT;

    #[test]
    fn each_sop_class_gets_its_syntaxes_and_both_uncompressed_fallbacks() {
        let proposal = Proposal::for_instances([
            (CT, JPEG),
            (CT, JPEG),
            (CT, uids::EXPLICIT_VR_LITTLE_ENDIAN),
        ])
        .unwrap();
        assert_eq!(
            proposal.contexts(),
            &[
                (CT.to_string(), JPEG.to_string()),
                (CT.to_string(), uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()),
                (CT.to_string(), uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string()),
            ]
        );
    }

    #[test]
    fn more_than_128_contexts_are_refused_rather_than_wrapped() {
        let classes: Vec<String> = (0..43).map(|i| format!("1.2.3.{i}")).collect();
        let pairs = classes
            .iter()
            .map(|c| (c.as_str(), uids::EXPLICIT_VR_LITTLE_ENDIAN));
        // 43 classes x 2 syntaxes = 86: fine.
        assert!(Proposal::for_instances(pairs).is_ok());
        let pairs = classes.iter().map(|c| (c.as_str(), JPEG));
        // 43 x 3 = 129: refused.
        let err = Proposal::for_instances(pairs).unwrap_err();
        assert!(matches!(
            err,
            SenderError::TooManyPresentationContexts { needed: 129 }
        ));
    }

    #[test]
    fn the_exact_syntax_wins() {
        let acc = accepted(&[(1, CT, uids::EXPLICIT_VR_LITTLE_ENDIAN), (3, CT, JPEG)]);
        let choice = choose_context(&acc, CT, JPEG).unwrap();
        assert_eq!((choice.id, choice.conversion), (3, Conversion::None));
    }

    #[test]
    fn a_compressed_instance_is_decompressed_when_only_uncompressed_is_accepted() {
        let acc = accepted(&[
            (3, CT, uids::IMPLICIT_VR_LITTLE_ENDIAN),
            (5, CT, uids::EXPLICIT_VR_LITTLE_ENDIAN),
        ]);
        let choice = choose_context(&acc, CT, JPEG).unwrap();
        assert_eq!(choice.id, 5);
        assert_eq!(choice.transfer_syntax, uids::EXPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(choice.conversion, Conversion::Decompress);
    }

    #[test]
    fn uncompressed_syntaxes_are_interchangeable_without_decoding() {
        let acc = accepted(&[(1, CT, uids::IMPLICIT_VR_LITTLE_ENDIAN)]);
        let choice = choose_context(&acc, CT, uids::EXPLICIT_VR_LITTLE_ENDIAN).unwrap();
        assert_eq!((choice.id, choice.conversion), (1, Conversion::Reencode));
    }

    #[test]
    fn another_sop_class_context_is_never_used() {
        let acc = accepted(&[(1, uids::MR_IMAGE_STORAGE, uids::EXPLICIT_VR_LITTLE_ENDIAN)]);
        assert_eq!(
            choose_context(&acc, CT, uids::EXPLICIT_VR_LITTLE_ENDIAN),
            None
        );
    }

    #[test]
    fn a_compressed_instance_without_its_syntax_or_a_codec_has_no_context() {
        let acc = accepted(&[(1, CT, uids::EXPLICIT_VR_LITTLE_ENDIAN)]);
        // JPEG-LS: this build has no CharLS.
        assert_eq!(choose_context(&acc, CT, uids::JPEGLS_LOSSLESS), None);
    }
}
