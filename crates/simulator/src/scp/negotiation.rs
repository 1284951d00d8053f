//! Admission of an association: which of the proposed presentation contexts a
//! route accepts, with which transfer syntax, and the A-ASSOCIATE-RJ each refusal
//! of the simulator stands for. (Reading the request and answering it is
//! `dimse::scp`'s.)

use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::pdu::{AssociationRJ, PresentationContextProposed, PresentationContextResultReason};
use dimse::InformationModel;
use dimse::qr::QrService;
use dimse::scp::{ContextDecision, ScpStream};

use super::{Shared, Target};
use crate::config::{SimulatorConfig, StorageSopClasses, TransferSyntaxPolicy};
use crate::stats::RejectionReason;

/// Counts the refusal and answers with the A-ASSOCIATE-RJ that `reason` stands for.
pub(super) fn refuse(shared: &Shared, stream: ScpStream, reason: RejectionReason) {
    shared.counters.lock().reject(reason);
    dimse::scp::reject(stream, rejection(reason));
}

/// The A-ASSOCIATE-RJ of each refusal.
pub(super) fn rejection(reason: RejectionReason) -> AssociationRJ {
    use dimse::scp::Refusal;
    match reason {
        RejectionReason::CalledAeTitleNotRecognized | RejectionReason::RejectedByFault => {
            Refusal::CalledAeTitleNotRecognized
        }
        RejectionReason::CallingAeTitleNotRecognized => Refusal::CallingAeTitleNotRecognized,
        RejectionReason::RefusedByFault => Refusal::TemporaryCongestion,
        RejectionReason::LocalLimitExceeded => Refusal::LocalLimitExceeded,
        // An identity the acceptor does not accept; and a bad request, which is not
        // refused through here (it is aborted, or gets the refusal PS3.8 names,
        // `dimse::scp::standard_refusal`): this is the RJ that would say so.
        RejectionReason::IdentityRefused | RejectionReason::BadRequest => Refusal::NotAuthorized,
    }
    .rejection()
}

/// Whether `uid` is a Query/Retrieve SOP class (FIND, MOVE or GET of a model).
pub(super) fn is_query_retrieve(uid: &str) -> bool {
    InformationModel::service_of(uid).is_some()
}

/// Whether the request proposes a C-GET SOP class: its storage contexts are then
/// for the C-STORE sub-operations too (on the query AE title, for those only).
pub(super) fn proposes_get(contexts: &[PresentationContextProposed]) -> bool {
    contexts.iter().any(|pc| {
        matches!(
            InformationModel::service_of(&pc.abstract_syntax),
            Some((_, QrService::Get))
        )
    })
}

/// Whether a proposed abstract syntax is accepted: Verification and the Storage
/// Commitment Push Model always, the FIND
/// models unless a fault withholds them, MOVE and GET of both models, storage on
/// routes (and on any association that proposes C-GET, for its sub-operations).
pub(super) fn abstract_syntax_allowed(
    config: &SimulatorConfig,
    target: Target,
    uid: &str,
    withheld_models: &[InformationModel],
    get_association: bool,
) -> bool {
    if uid == uids::VERIFICATION || uid == uids::STORAGE_COMMITMENT_PUSH_MODEL {
        return true;
    }
    if let Some(model) = InformationModel::from_sop_class_uid(uid) {
        return !withheld_models.contains(&model);
    }
    if is_query_retrieve(uid) {
        return true;
    }
    match (target, config.storage_sop_classes) {
        (Target::QueryOnly, _) if !get_association => false,
        (_, StorageSopClasses::Standard) => dimse::is_storage_sop_class(uid),
        (_, StorageSopClasses::Any) => true,
    }
}

/// The result of one proposed presentation context: its abstract syntax must be
/// allowed, and the first of its transfer syntaxes (in the requestor's order) that
/// the policy allows and the transfer syntax registry can parse is chosen.
///
/// A storage context on an association that proposes C-GET prefers Explicit VR
/// Little Endian, then Implicit VR Little Endian (what every native instance can be
/// sent in), then the first the registry can parse (for instances stored in it); on
/// the query AE title, where nothing is received, the receive policy does not apply.
pub(super) fn decide(
    config: &SimulatorConfig,
    target: Target,
    withheld_models: &[InformationModel],
    get_association: bool,
    pc: &PresentationContextProposed,
) -> ContextDecision {
    let uid = trim_uid(&pc.abstract_syntax);
    if !abstract_syntax_allowed(config, target, uid, withheld_models, get_association) {
        return ContextDecision::Refuse(
            PresentationContextResultReason::AbstractSyntaxNotSupported,
        );
    }
    let usable: Vec<&str> = pc
        .transfer_syntaxes
        .iter()
        .map(|ts| trim_uid(ts))
        .filter(|ts| {
            registry_supports(ts)
                && (target == Target::QueryOnly || policy_allows(&config.transfer_syntaxes, ts))
        })
        .collect();
    if uid == uids::STORAGE_COMMITMENT_PUSH_MODEL {
        // Explicit or Implicit VR Little Endian, in the requestor's order, whatever
        // the receive policy (it is about instances, not commitment requests).
        return pc
            .transfer_syntaxes
            .iter()
            .map(|ts| trim_uid(ts))
            .find(|ts| {
                *ts == uids::EXPLICIT_VR_LITTLE_ENDIAN || *ts == uids::IMPLICIT_VR_LITTLE_ENDIAN
            })
            .map_or(
                ContextDecision::Refuse(
                    PresentationContextResultReason::TransferSyntaxesNotSupported,
                ),
                |ts| ContextDecision::Accept {
                    transfer_syntax: ts.to_string(),
                },
            );
    }
    let storage = uid != uids::VERIFICATION && !is_query_retrieve(uid);
    let chosen = if get_association && storage {
        [
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            uids::IMPLICIT_VR_LITTLE_ENDIAN,
        ]
        .into_iter()
        .find(|native| usable.contains(native))
        .or_else(|| usable.first().copied())
    } else {
        usable.first().copied()
    };
    chosen.map_or(
        ContextDecision::Refuse(PresentationContextResultReason::TransferSyntaxesNotSupported),
        |ts| ContextDecision::Accept {
            transfer_syntax: ts.to_string(),
        },
    )
}

fn policy_allows(policy: &TransferSyntaxPolicy, ts: &str) -> bool {
    match policy {
        // No list: every transfer syntax the registry can parse, compressed included.
        TransferSyntaxPolicy::All => true,
        TransferSyntaxPolicy::UncompressedOnly => {
            ts == uids::EXPLICIT_VR_LITTLE_ENDIAN || ts == uids::IMPLICIT_VR_LITTLE_ENDIAN
        }
        TransferSyntaxPolicy::Only(list) => list.iter().any(|allowed| trim_uid(allowed) == ts),
    }
}

fn registry_supports(ts: &str) -> bool {
    TransferSyntaxRegistry
        .get(ts)
        .is_some_and(|ts| !ts.is_unsupported())
}

fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proposed(abstract_syntax: &str, transfer_syntaxes: &[&str]) -> PresentationContextProposed {
        PresentationContextProposed {
            id: 1,
            abstract_syntax: abstract_syntax.into(),
            transfer_syntaxes: transfer_syntaxes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_first_proposed_transfer_syntax_the_policy_allows_is_chosen() {
        let mut config = SimulatorConfig::default();
        let pc = proposed(
            uids::CT_IMAGE_STORAGE,
            &[uids::JPEG_BASELINE8_BIT, uids::EXPLICIT_VR_LITTLE_ENDIAN],
        );
        let route = Target::Route(0);
        assert_eq!(
            decide(&config, route, &[], false, &pc),
            ContextDecision::Accept {
                transfer_syntax: uids::JPEG_BASELINE8_BIT.into()
            }
        );
        config.transfer_syntaxes = TransferSyntaxPolicy::UncompressedOnly;
        assert_eq!(
            decide(&config, route, &[], false, &pc),
            ContextDecision::Accept {
                transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into()
            }
        );
        let jpeg_only = proposed(uids::CT_IMAGE_STORAGE, &[uids::JPEG_BASELINE8_BIT]);
        assert_eq!(
            decide(&config, route, &[], false, &jpeg_only),
            ContextDecision::Refuse(PresentationContextResultReason::TransferSyntaxesNotSupported)
        );
        assert_eq!(
            decide(&config, Target::QueryOnly, &[], false, &pc),
            ContextDecision::Refuse(PresentationContextResultReason::AbstractSyntaxNotSupported)
        );
    }

    #[test]
    fn move_and_get_are_accepted_and_a_get_association_takes_storage_on_the_query_ae() {
        let config = SimulatorConfig::default();
        for uid in [
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE,
            uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE,
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET,
            uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET,
        ] {
            let pc = proposed(uid, &[uids::IMPLICIT_VR_LITTLE_ENDIAN]);
            for target in [Target::QueryOnly, Target::Route(0)] {
                assert!(matches!(
                    decide(&config, target, &[], false, &pc),
                    ContextDecision::Accept { .. }
                ));
            }
        }
        let ct = proposed(
            uids::CT_IMAGE_STORAGE,
            &[
                uids::JPEG_BASELINE8_BIT,
                uids::IMPLICIT_VR_LITTLE_ENDIAN,
                uids::EXPLICIT_VR_LITTLE_ENDIAN,
            ],
        );
        assert_eq!(
            decide(&config, Target::QueryOnly, &[], true, &ct),
            ContextDecision::Accept {
                transfer_syntax: uids::EXPLICIT_VR_LITTLE_ENDIAN.into()
            }
        );
        let jpeg = proposed(uids::CT_IMAGE_STORAGE, &[uids::JPEG_BASELINE8_BIT]);
        assert_eq!(
            decide(&config, Target::QueryOnly, &[], true, &jpeg),
            ContextDecision::Accept {
                transfer_syntax: uids::JPEG_BASELINE8_BIT.into()
            }
        );
        let get = proposed(
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET,
            &[uids::IMPLICIT_VR_LITTLE_ENDIAN],
        );
        assert!(proposes_get(&[get, ct]));
        assert!(!proposes_get(&[jpeg]));
    }

    #[test]
    fn storage_commitment_is_accepted_everywhere_in_little_endian_only() {
        let config = SimulatorConfig {
            transfer_syntaxes: TransferSyntaxPolicy::Only(vec![uids::JPEG_BASELINE8_BIT.into()]),
            ..SimulatorConfig::default()
        };
        let pc = proposed(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            &[uids::JPEG_BASELINE8_BIT, uids::IMPLICIT_VR_LITTLE_ENDIAN],
        );
        for target in [Target::QueryOnly, Target::Route(0)] {
            assert_eq!(
                decide(&config, target, &[], false, &pc),
                ContextDecision::Accept {
                    transfer_syntax: uids::IMPLICIT_VR_LITTLE_ENDIAN.into()
                }
            );
        }
        let jpeg = proposed(
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            &[uids::JPEG_BASELINE8_BIT],
        );
        assert_eq!(
            decide(&config, Target::Route(0), &[], false, &jpeg),
            ContextDecision::Refuse(PresentationContextResultReason::TransferSyntaxesNotSupported)
        );
    }
}
