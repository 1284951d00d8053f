//! What to commit: a transaction UID and the instances it names.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::Serialize;

use crate::CommitmentError;

/// One instance named in a commitment: its SOP Class UID (0008,1150) and SOP
/// Instance UID (0008,1155), an item of the Referenced SOP Sequence.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ReferencedInstance {
    /// (0008,1150) Referenced SOP Class UID.
    pub sop_class_uid: String,
    /// (0008,1155) Referenced SOP Instance UID.
    pub sop_instance_uid: String,
}

impl ReferencedInstance {
    /// The instance `sop_instance_uid` of `sop_class_uid`.
    pub fn new(sop_class_uid: impl Into<String>, sop_instance_uid: impl Into<String>) -> Self {
        ReferencedInstance {
            sop_class_uid: sop_class_uid.into(),
            sop_instance_uid: sop_instance_uid.into(),
        }
    }

    /// The instance as a sequence item.
    pub(crate) fn item(&self) -> InMemDicomObject {
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::REFERENCED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(self.sop_class_uid.as_str()),
        ));
        item.put(DataElement::new(
            tags::REFERENCED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(self.sop_instance_uid.as_str()),
        ));
        item
    }
}

impl std::fmt::Display for ReferencedInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.sop_instance_uid, self.sop_class_uid)
    }
}

/// A Storage Commitment request (PS3.4 J.3.2): the N-ACTION of action type 1
/// ("Request Storage Commitment") on the well-known instance, whose action
/// information is a Transaction UID (0008,1195) and a Referenced SOP Sequence
/// (0008,1199) naming each instance the SCP is asked to commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitmentRequest {
    transaction_uid: String,
    instances: Vec<ReferencedInstance>,
}

impl CommitmentRequest {
    /// A request for `instances` under a fresh transaction UID.
    pub fn new(instances: impl IntoIterator<Item = ReferencedInstance>) -> Self {
        CommitmentRequest {
            transaction_uid: dimse::new_uid(),
            instances: instances.into_iter().collect(),
        }
    }

    /// Uses `uid` as the transaction UID instead of a fresh one (to repeat a
    /// transaction, or to test how the SCP takes a duplicate).
    pub fn with_transaction_uid(mut self, uid: impl Into<String>) -> Self {
        self.transaction_uid = uid.into();
        self
    }

    /// Adds one instance.
    pub fn with_instance(mut self, instance: ReferencedInstance) -> Self {
        self.instances.push(instance);
        self
    }

    /// The transaction UID the report will name.
    pub fn transaction_uid(&self) -> &str {
        &self.transaction_uid
    }

    /// The instances to commit, in request order.
    pub fn instances(&self) -> &[ReferencedInstance] {
        &self.instances
    }

    /// Checks the request: at least one instance, every UID valid, no instance named
    /// twice.
    ///
    /// # Errors
    /// [`CommitmentError::Request`] saying what is wrong.
    pub fn validate(&self) -> Result<(), CommitmentError> {
        let bad = |reason: String| Err(CommitmentError::Request(reason));
        dimse::check_uid(&self.transaction_uid).or_else(|e| {
            bad(format!(
                "transaction UID {:?} is not a valid UID: {e}",
                self.transaction_uid
            ))
        })?;
        if self.instances.is_empty() {
            return bad("a commitment request names at least one instance".into());
        }
        let mut seen = std::collections::HashSet::new();
        for instance in &self.instances {
            for (name, uid) in [
                ("SOP Class UID", &instance.sop_class_uid),
                ("SOP Instance UID", &instance.sop_instance_uid),
            ] {
                dimse::check_uid(uid)
                    .or_else(|e| bad(format!("{name} {uid:?} is not a valid UID: {e}")))?;
            }
            if !seen.insert(&instance.sop_instance_uid) {
                return bad(format!(
                    "instance {} is named twice",
                    instance.sop_instance_uid
                ));
            }
        }
        Ok(())
    }

    /// The N-ACTION information: Transaction UID and Referenced SOP Sequence.
    pub fn action_information(&self) -> InMemDicomObject {
        let mut object = InMemDicomObject::new_empty();
        object.put(DataElement::new(
            tags::TRANSACTION_UID,
            VR::UI,
            PrimitiveValue::from(self.transaction_uid.as_str()),
        ));
        object.put(DataElement::new(
            tags::REFERENCED_SOP_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(
                self.instances
                    .iter()
                    .map(ReferencedInstance::item)
                    .collect::<Vec<_>>(),
            ),
        ));
        object
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

    #[test]
    fn a_fresh_request_has_its_own_transaction_uid() {
        let a = CommitmentRequest::new([ReferencedInstance::new(CT, "1.2.3")]);
        let b = CommitmentRequest::new([ReferencedInstance::new(CT, "1.2.3")]);
        assert_ne!(a.transaction_uid(), b.transaction_uid());
        a.validate().unwrap();
    }

    #[test]
    fn empty_duplicate_and_invalid_requests_are_refused() {
        assert!(CommitmentRequest::new([]).validate().is_err());
        let twice = CommitmentRequest::new([
            ReferencedInstance::new(CT, "1.2.3"),
            ReferencedInstance::new(CT, "1.2.3"),
        ]);
        assert!(twice.validate().unwrap_err().to_string().contains("twice"));
        let bad = CommitmentRequest::new([ReferencedInstance::new(CT, "1.2.x")]);
        assert!(bad.validate().is_err());
    }

    #[test]
    fn the_action_information_carries_uid_and_sequence() {
        let request = CommitmentRequest::new([
            ReferencedInstance::new(CT, "1.2.3"),
            ReferencedInstance::new(CT, "1.2.4"),
        ])
        .with_transaction_uid("2.25.7");
        let info = request.action_information();
        assert_eq!(
            info.get(tags::TRANSACTION_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0'),
            "2.25.7"
        );
        let items = info
            .get(tags::REFERENCED_SOP_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(items.len(), 2);
    }
}
