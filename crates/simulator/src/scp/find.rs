//! The C-FIND service: parse the identifier, match it against the store, send one
//! pending response per match (watching for C-CANCEL), then the final status.

use std::time::Instant;

use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
use dicom_ul::association::SyncAssociation;
use dimse::{CommandField, DimseError, Incoming, Message, MessageReader, Status};

use super::{Association, Shared, respond};
use crate::query::{MatchOptions, Query};
use dimse::InformationModel;

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
    let Some(ts) = TransferSyntaxRegistry.get(ts_uid) else {
        return fail(
            shared,
            association,
            Status::CANNOT_UNDERSTAND,
            "unknown transfer syntax",
        );
    };
    let identifier = match message
        .data
        .as_deref()
        .map(|d| InMemDicomObject::read_dataset_with_ts(d, ts))
    {
        Some(Ok(obj)) => obj,
        Some(Err(_)) | None => {
            return fail(
                shared,
                association,
                Status::DATA_SET_DOES_NOT_MATCH_SOP_CLASS,
                "cannot parse the identifier",
            );
        }
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
    for identifier in &matches.identifiers {
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

/// Whether a C-CANCEL for `message_id` arrived while C-FIND responses are going out.
/// Looks at dicom-ul's read buffer and the socket without blocking.
pub(super) fn cancel_requested(
    association: &mut Association,
    reader: &mut MessageReader,
    message_id: Option<u16>,
) -> Result<bool, DimseError> {
    let waiting = {
        let (socket, buffer) = SyncAssociation::get_mut(association);
        if !buffer.is_empty() {
            true
        } else {
            let mut probe = [0u8; 1];
            let _ = socket.set_nonblocking(true);
            let peeked = socket.peek(&mut probe);
            let _ = socket.set_nonblocking(false);
            matches!(peeked, Ok(n) if n > 0)
        }
    };
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
