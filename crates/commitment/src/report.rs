//! The N-EVENT-REPORT of a Storage Commitment (PS3.4 J.3.3): what the SCP says it
//! committed and what it could not, with the reason for each failure.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use serde::Serialize;

use crate::ReferencedInstance;

/// Event type 1: "Storage Commitment Request Successful", every instance committed.
pub const EVENT_ALL_COMMITTED: u16 = 1;
/// Event type 2: "Storage Commitment Request Complete - Failures Exist".
pub const EVENT_FAILURES_EXIST: u16 = 2;
/// Action type 1: "Request Storage Commitment".
pub const ACTION_REQUEST_COMMITMENT: u16 = 1;

/// A Failure Reason (0008,1197) of a Failed SOP Sequence item, with its meaning
/// (PS3.4 J.3.3.1.1 and C.14.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FailureReason {
    /// The code as sent.
    pub code: u16,
    /// What it means, in words.
    pub meaning: &'static str,
}

impl FailureReason {
    /// The reason for `code`.
    pub fn new(code: u16) -> Self {
        let meaning = match code {
            0x0110 => "processing failure",
            0x0112 => "no such object instance",
            0x0119 => "class-instance conflict",
            0x0122 => "referenced SOP class not supported",
            0x0131 => "duplicate transaction UID",
            0x0213 => "resource limitation",
            _ => "a reason the standard does not define",
        };
        FailureReason { code, meaning }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04X} ({})", self.code, self.meaning)
    }
}

/// An instance the SCP could not commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FailedInstance {
    /// The instance, as the report names it.
    pub instance: ReferencedInstance,
    /// Why, when the item carries a Failure Reason.
    pub reason: Option<FailureReason>,
}

/// A decoded N-EVENT-REPORT of the Storage Commitment Push Model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventReport {
    /// The Event Type ID: [`EVENT_ALL_COMMITTED`] or [`EVENT_FAILURES_EXIST`].
    pub event_type: u16,
    /// (0008,1195) Transaction UID: which request this reports on.
    pub transaction_uid: String,
    /// (0008,1199) Referenced SOP Sequence: the instances committed.
    pub committed: Vec<ReferencedInstance>,
    /// (0008,1198) Failed SOP Sequence: the instances not committed.
    pub failed: Vec<FailedInstance>,
    /// (0008,0054) Retrieve AE Title, when the SCP names where to get them back.
    pub retrieve_ae_title: Option<String>,
}

impl EventReport {
    /// Decodes the event information `data` (in transfer syntax `ts_uid`) of an
    /// N-EVENT-REPORT of `event_type`.
    ///
    /// # Errors
    /// What makes the report unusable, in words: an unknown event type, an unknown
    /// transfer syntax, a data set that cannot be read, no Transaction UID, an item
    /// without its UIDs.
    pub fn decode(event_type: Option<u16>, data: &[u8], ts_uid: &str) -> Result<Self, String> {
        let event_type = match event_type {
            Some(t @ (EVENT_ALL_COMMITTED | EVENT_FAILURES_EXIST)) => t,
            Some(other) => return Err(format!("event type {other} is neither 1 nor 2")),
            None => return Err("the N-EVENT-REPORT-RQ has no Event Type ID".into()),
        };
        let object = decode_data_set(data, ts_uid)?;
        let transaction_uid =
            text(&object, tags::TRANSACTION_UID).ok_or("the report has no Transaction UID")?;
        let committed = match object.get(tags::REFERENCED_SOP_SEQUENCE) {
            None => Vec::new(),
            Some(element) => element
                .items()
                .ok_or("the Referenced SOP Sequence is not a sequence")?
                .iter()
                .map(|item| instance_of(item, "Referenced SOP Sequence"))
                .collect::<Result<_, _>>()?,
        };
        let failed = match object.get(tags::FAILED_SOP_SEQUENCE) {
            None => Vec::new(),
            Some(element) => element
                .items()
                .ok_or("the Failed SOP Sequence is not a sequence")?
                .iter()
                .map(|item| {
                    Ok(FailedInstance {
                        instance: instance_of(item, "Failed SOP Sequence")?,
                        reason: item
                            .get(tags::FAILURE_REASON)
                            .and_then(|e| e.to_int::<u16>().ok())
                            .map(FailureReason::new),
                    })
                })
                .collect::<Result<_, String>>()?,
        };
        Ok(EventReport {
            event_type,
            transaction_uid,
            committed,
            failed,
            retrieve_ae_title: text(&object, tags::RETRIEVE_AE_TITLE),
        })
    }
}

/// Judges the N-EVENT-REPORT-RQ `command` with its event information `data` on a
/// context of transfer syntax `ts_uid`: the report, or the failure status to
/// answer with and why.
pub(crate) fn judge(
    command: &dimse::Command,
    data: Option<&[u8]>,
    ts_uid: &str,
) -> Result<EventReport, (dimse::Status, String)> {
    if let Some(t) = command.event_type_id
        && t != EVENT_ALL_COMMITTED
        && t != EVENT_FAILURES_EXIST
    {
        // PS3.7 10.1.1.1.8: "no such event type".
        return Err((
            dimse::Status::NO_SUCH_EVENT_TYPE,
            format!("event type {t} is neither 1 nor 2"),
        ));
    }
    let Some(data) = data else {
        return Err((
            dimse::Status::PROCESSING_FAILURE,
            "the N-EVENT-REPORT-RQ carries no event information".into(),
        ));
    };
    EventReport::decode(command.event_type_id, data, ts_uid)
        .map_err(|problem| (dimse::Status::PROCESSING_FAILURE, problem))
}

fn instance_of(item: &InMemDicomObject, sequence: &str) -> Result<ReferencedInstance, String> {
    match (
        text(item, tags::REFERENCED_SOP_CLASS_UID),
        text(item, tags::REFERENCED_SOP_INSTANCE_UID),
    ) {
        (Some(class), Some(instance)) => Ok(ReferencedInstance::new(class, instance)),
        _ => Err(format!(
            "an item of the {sequence} lacks its Referenced SOP Class or Instance UID"
        )),
    }
}

fn text(object: &InMemDicomObject, tag: dicom_core::Tag) -> Option<String> {
    object
        .get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|v| dimse::trim_value(&v).trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reads a data set in the transfer syntax `ts_uid`.
pub(crate) fn decode_data_set(data: &[u8], ts_uid: &str) -> Result<InMemDicomObject, String> {
    let ts = TransferSyntaxRegistry
        .get(dimse::trim_value(ts_uid))
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    InMemDicomObject::read_dataset_with_ts(data, ts)
        .map_err(|e| format!("the data set cannot be read: {e}"))
}

/// Writes a data set in the transfer syntax `ts_uid`.
pub(crate) fn encode_data_set(object: &InMemDicomObject, ts_uid: &str) -> Result<Vec<u8>, String> {
    let ts = TransferSyntaxRegistry
        .get(dimse::trim_value(ts_uid))
        .ok_or_else(|| format!("the peer chose transfer syntax {ts_uid}, which we cannot write"))?;
    let mut bytes = Vec::with_capacity(512);
    object
        .write_dataset_with_ts(&mut bytes, ts)
        .map_err(|e| format!("cannot encode the data set: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommitmentRequest;
    use dicom_dictionary_std::uids;

    #[test]
    fn reasons_are_named() {
        assert_eq!(
            FailureReason::new(0x0112).meaning,
            "no such object instance"
        );
        assert_eq!(
            FailureReason::new(0x0131).to_string(),
            "0131 (duplicate transaction UID)"
        );
        assert!(FailureReason::new(0x9999).meaning.contains("not define"));
    }

    #[test]
    fn a_request_reads_back_as_an_all_committed_report() {
        let request =
            CommitmentRequest::new([ReferencedInstance::new(uids::CT_IMAGE_STORAGE, "1.2.3")]);
        let ts = uids::EXPLICIT_VR_LITTLE_ENDIAN;
        let bytes = encode_data_set(&request.action_information(), ts).unwrap();
        let report = EventReport::decode(Some(1), &bytes, ts).unwrap();
        assert_eq!(report.transaction_uid, request.transaction_uid());
        assert_eq!(report.committed, request.instances());
        assert!(report.failed.is_empty());
    }

    #[test]
    fn garbage_and_unknown_event_types_are_errors_not_panics() {
        let ts = uids::IMPLICIT_VR_LITTLE_ENDIAN;
        assert!(EventReport::decode(Some(1), &[0xFF; 7], ts).is_err());
        assert!(EventReport::decode(Some(3), &[], ts).is_err());
        assert!(EventReport::decode(None, &[], ts).is_err());
        assert!(
            EventReport::decode(Some(1), &[], ts)
                .unwrap_err()
                .contains("Transaction UID")
        );
    }
}
