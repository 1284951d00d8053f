//! The C-FIND service: parse the identifier, match it against the store, send one
//! pending response per match (watching for C-CANCEL), then the final status.

use std::borrow::Cow;
use std::time::Instant;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;

use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dimse::{CommandField, DimseError, Incoming, Message, MessageReader, Status};

use super::{Association, Shared, respond};
use crate::faults::FindFaults;
use crate::query::{MatchOptions, Query};
use dimse::InformationModel;

/// A C-FIND request as the simulator received it, kept so that tests of a C-FIND
/// client can check what it asked (which model, level and keys, how many UIDs a
/// list held), not only what it was answered.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceivedFind {
    /// The information model of the presentation context it came on.
    pub model: InformationModel,
    /// The identifier, as decoded (QueryRetrieveLevel and every key).
    pub identifier: InMemDicomObject,
}

/// How many received C-FIND requests the simulator keeps (the latest): enough for
/// any test, bounded for long load runs that poll with C-FIND.
pub(crate) const RECEIVED_FINDS_KEPT: usize = 1000;

pub(super) fn handle_find(
    shared: &Shared,
    association: &mut Association,
    reader: &mut MessageReader,
    message: &Message,
    model: InformationModel,
    ts_uid: &str,
) -> Result<(), DimseError> {
    let pc_id = message.presentation_context_id;
    let command = &message.command;
    shared.counters.lock().finds.requests += 1;
    let faults = shared.faults.find_faults();
    // Decoded before the faults apply, so that a stalled or refused query is
    // recorded too; an undecodable one is failed below, after them, as before.
    let ts = TransferSyntaxRegistry.get(ts_uid);
    let identifier =
        ts.and_then(|ts| InMemDicomObject::read_dataset_with_ts(message.data.as_deref()?, ts).ok());
    if let Some(identifier) = &identifier {
        shared.record_find(model, identifier);
    }
    if faults.stall {
        shared.counters.lock().finds.stalled += 1;
        return Ok(());
    }
    let fail = |shared: &Shared, association: &mut Association, status: Status, comment: &str| {
        shared.counters.lock().finds.failed += 1;
        respond(
            shared,
            association,
            pc_id,
            command,
            status,
            Some(comment),
            None,
        )
    };
    if let Some(refusal) = faults.refusal.as_ref().filter(|r| r.refuses(model)) {
        // No ErrorComment: a PACS that lacks a model says so with the status only.
        shared.counters.lock().finds.failed += 1;
        return respond(
            shared,
            association,
            pc_id,
            command,
            refusal.status,
            None,
            None,
        );
    }
    let Some(ts) = ts else {
        return fail(
            shared,
            association,
            Status::CANNOT_UNDERSTAND,
            "unknown transfer syntax",
        );
    };
    let Some(identifier) = identifier else {
        return fail(
            shared,
            association,
            Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
            "cannot parse the identifier",
        );
    };
    let query = match Query::parse(&identifier, model) {
        Ok(q) => q,
        Err(why) => {
            return fail(
                shared,
                association,
                Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                &why,
            );
        }
    };
    let options = MatchOptions {
        person_name_case_insensitive: shared.config.rules.settings.person_name_case_insensitive,
    };
    let matches = {
        let store = shared.store.read();
        query.run(&store, Instant::now(), options)
    };
    let pending = if matches.unsupported_keys {
        Status::PENDING_WARNING
    } else {
        Status::PENDING
    };
    let count = matches.identifiers.len();
    for (n, identifier) in matches.identifiers.iter().enumerate() {
        if cancel_requested(association, reader, command.message_id)? {
            shared.counters.lock().finds.cancelled += 1;
            return respond(
                shared,
                association,
                pc_id,
                command,
                Status::CANCEL,
                None,
                None,
            );
        }
        let last = n + 1 == count;
        let identifier = faulty_identifier(identifier, &faults, last);
        let mut bytes = Vec::with_capacity(512);
        identifier
            .write_dataset_with_ts(&mut bytes, ts)
            .map_err(|e| DimseError::Protocol(format!("cannot encode a C-FIND response: {e}")))?;
        shared.counters.lock().finds.matches += 1;
        respond(
            shared,
            association,
            pc_id,
            command,
            pending,
            None,
            Some(&bytes),
        )?;
        if last && faults.status_in_last_identifier {
            return Ok(());
        }
    }
    respond(
        shared,
        association,
        pc_id,
        command,
        Status::SUCCESS,
        None,
        None,
    )
}

/// The identifier as the C-FIND faults want it sent: without the counts, and
/// with the final status inside the last one. Borrowed when no fault applies (the
/// common case: no copy per match).
fn faulty_identifier<'a>(
    identifier: &'a InMemDicomObject,
    faults: &FindFaults,
    last: bool,
) -> Cow<'a, InMemDicomObject> {
    let status_inside = last && faults.status_in_last_identifier;
    if !faults.omit_instance_counts && !status_inside {
        return Cow::Borrowed(identifier);
    }
    let mut changed = identifier.clone();
    if faults.omit_instance_counts {
        for tag in INSTANCE_COUNTS {
            changed.remove_element(tag);
        }
    }
    if status_inside {
        changed.put(DataElement::new(
            tags::STATUS,
            VR::US,
            PrimitiveValue::from(Status::SUCCESS.code()),
        ));
    }
    Cow::Owned(changed)
}

/// The counts `omit_instance_counts` leaves out (ModalitiesInStudy stays: it is
/// an attribute of the study, not a count).
const INSTANCE_COUNTS: [Tag; 3] = [
    tags::NUMBER_OF_STUDY_RELATED_SERIES,
    tags::NUMBER_OF_STUDY_RELATED_INSTANCES,
    tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
];

/// Whether a C-CANCEL for `message_id` arrived while C-FIND responses are going out.
/// Looks at the association's read-ahead, TLS buffer and socket without blocking.
pub(super) fn cancel_requested(
    association: &mut Association,
    reader: &mut MessageReader,
    message_id: Option<u16>,
) -> Result<bool, DimseError> {
    let waiting = association.input_waiting();
    if !waiting {
        return Ok(false);
    }
    match reader.receive(association)? {
        Incoming::Message(m) if m.command.field == CommandField::CCancelRq => {
            Ok(m.command.message_id_being_responded_to == message_id
                || m.command.message_id_being_responded_to.is_none())
        }
        Incoming::Message(m) => Err(DimseError::Protocol(format!(
            "{} arrived while a C-FIND was outstanding",
            m.command.field
        ))),
        Incoming::Aborted(_) => Err(DimseError::ConnectionClosed),
        _ => Err(DimseError::Protocol(
            "release requested during a C-FIND".into(),
        )),
    }
}
