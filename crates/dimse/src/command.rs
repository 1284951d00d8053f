//! DIMSE command sets (PS3.7 section 9 and Annex E): the group-0000 elements that
//! open every DIMSE message, always encoded in Implicit VR Little Endian.

use std::fmt;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

use crate::status::Status;

/// `CommandDataSetType` value meaning "no data set follows" (PS3.7 E.1-1).
const NO_DATA_SET: u16 = 0x0101;
/// Any other value means a data set follows; 0x0000 is what everyone sends.
const DATA_SET_PRESENT: u16 = 0x0000;

/// The DIMSE operation a command carries (tag (0000,0100)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandField {
    /// C-STORE-RQ
    CStoreRq,
    /// C-STORE-RSP
    CStoreRsp,
    /// C-GET-RQ
    CGetRq,
    /// C-GET-RSP
    CGetRsp,
    /// C-FIND-RQ
    CFindRq,
    /// C-FIND-RSP
    CFindRsp,
    /// C-MOVE-RQ
    CMoveRq,
    /// C-MOVE-RSP
    CMoveRsp,
    /// C-ECHO-RQ
    CEchoRq,
    /// C-ECHO-RSP
    CEchoRsp,
    /// C-CANCEL-RQ
    CCancelRq,
    /// N-EVENT-REPORT-RQ
    NEventReportRq,
    /// N-EVENT-REPORT-RSP
    NEventReportRsp,
    /// N-ACTION-RQ
    NActionRq,
    /// N-ACTION-RSP
    NActionRsp,
    /// Any other code (the other N-services, or garbage from a broken peer).
    Other(u16),
}

impl CommandField {
    /// The code on the wire.
    pub fn code(self) -> u16 {
        match self {
            CommandField::CStoreRq => 0x0001,
            CommandField::CStoreRsp => 0x8001,
            CommandField::CGetRq => 0x0010,
            CommandField::CGetRsp => 0x8010,
            CommandField::CFindRq => 0x0020,
            CommandField::CFindRsp => 0x8020,
            CommandField::CMoveRq => 0x0021,
            CommandField::CMoveRsp => 0x8021,
            CommandField::CEchoRq => 0x0030,
            CommandField::CEchoRsp => 0x8030,
            CommandField::CCancelRq => 0x0FFF,
            CommandField::NEventReportRq => 0x0100,
            CommandField::NEventReportRsp => 0x8100,
            CommandField::NActionRq => 0x0130,
            CommandField::NActionRsp => 0x8130,
            CommandField::Other(code) => code,
        }
    }

    /// The field for a code read from the wire.
    pub fn from_code(code: u16) -> Self {
        match code {
            0x0001 => CommandField::CStoreRq,
            0x8001 => CommandField::CStoreRsp,
            0x0010 => CommandField::CGetRq,
            0x8010 => CommandField::CGetRsp,
            0x0020 => CommandField::CFindRq,
            0x8020 => CommandField::CFindRsp,
            0x0021 => CommandField::CMoveRq,
            0x8021 => CommandField::CMoveRsp,
            0x0030 => CommandField::CEchoRq,
            0x8030 => CommandField::CEchoRsp,
            0x0FFF => CommandField::CCancelRq,
            0x0100 => CommandField::NEventReportRq,
            0x8100 => CommandField::NEventReportRsp,
            0x0130 => CommandField::NActionRq,
            0x8130 => CommandField::NActionRsp,
            other => CommandField::Other(other),
        }
    }

    /// Whether this is a response (bit 15 set).
    pub fn is_response(self) -> bool {
        self.code() & 0x8000 != 0
    }
}

impl fmt::Display for CommandField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            CommandField::CStoreRq => "C-STORE-RQ",
            CommandField::CStoreRsp => "C-STORE-RSP",
            CommandField::CGetRq => "C-GET-RQ",
            CommandField::CGetRsp => "C-GET-RSP",
            CommandField::CFindRq => "C-FIND-RQ",
            CommandField::CFindRsp => "C-FIND-RSP",
            CommandField::CMoveRq => "C-MOVE-RQ",
            CommandField::CMoveRsp => "C-MOVE-RSP",
            CommandField::CEchoRq => "C-ECHO-RQ",
            CommandField::CEchoRsp => "C-ECHO-RSP",
            CommandField::CCancelRq => "C-CANCEL-RQ",
            CommandField::NEventReportRq => "N-EVENT-REPORT-RQ",
            CommandField::NEventReportRsp => "N-EVENT-REPORT-RSP",
            CommandField::NActionRq => "N-ACTION-RQ",
            CommandField::NActionRsp => "N-ACTION-RSP",
            CommandField::Other(code) => return write!(f, "command {code:04X}"),
        };
        f.write_str(name)
    }
}

/// Request priority (tag (0000,0700)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Priority {
    /// 0x0002
    Low,
    /// 0x0000
    #[default]
    Medium,
    /// 0x0001
    High,
}

impl Priority {
    fn code(self) -> u16 {
        match self {
            Priority::Low => 0x0002,
            Priority::Medium => 0x0000,
            Priority::High => 0x0001,
        }
    }

    fn from_code(code: u16) -> Self {
        match code {
            0x0001 => Priority::High,
            0x0002 => Priority::Low,
            _ => Priority::Medium,
        }
    }
}

/// A decoded DIMSE command set.
///
/// One struct for every C-service: fields a command does not use are `None`.
/// Build requests and responses with the constructors (`Command::c_store_rq`, ...),
/// which set exactly the elements PS3.7 requires for that message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Command {
    /// (0000,0100) CommandField
    pub field: CommandField,
    /// (0000,0002) AffectedSOPClassUID, or (0000,0003) RequestedSOPClassUID when only that is present
    pub sop_class_uid: Option<String>,
    /// (0000,0110) MessageID
    pub message_id: Option<u16>,
    /// (0000,0120) MessageIDBeingRespondedTo
    pub message_id_being_responded_to: Option<u16>,
    /// (0000,0700) Priority
    pub priority: Option<Priority>,
    /// Whether a data set follows: (0000,0800) CommandDataSetType != 0x0101
    pub has_data_set: bool,
    /// (0000,0900) Status
    pub status: Option<Status>,
    /// (0000,1000) AffectedSOPInstanceUID
    pub sop_instance_uid: Option<String>,
    /// (0000,0600) MoveDestination
    pub move_destination: Option<String>,
    /// (0000,1030) MoveOriginatorApplicationEntityTitle
    pub move_originator_ae_title: Option<String>,
    /// (0000,1031) MoveOriginatorMessageID
    pub move_originator_message_id: Option<u16>,
    /// (0000,0902) ErrorComment: why a request failed, in the SCP's words
    pub error_comment: Option<String>,
    /// (0000,1020) to (0000,1023): the sub-operation counts of a C-MOVE or C-GET
    /// response
    pub sub_operations: SubOperations,
    /// (0000,1008) ActionTypeID of an N-ACTION
    pub action_type_id: Option<u16>,
    /// (0000,1002) EventTypeID of an N-EVENT-REPORT
    pub event_type_id: Option<u16>,
}

/// The sub-operation counts a C-MOVE or C-GET response carries (PS3.7 9.1.3, 9.1.4):
/// each is optional on the wire (a final response may leave out `remaining`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SubOperations {
    /// (0000,1020) NumberOfRemainingSuboperations
    pub remaining: Option<u16>,
    /// (0000,1021) NumberOfCompletedSuboperations
    pub completed: Option<u16>,
    /// (0000,1022) NumberOfFailedSuboperations
    pub failed: Option<u16>,
    /// (0000,1023) NumberOfWarningSuboperations
    pub warning: Option<u16>,
}

impl SubOperations {
    /// All four counts present.
    pub fn counts(remaining: u16, completed: u16, failed: u16, warning: u16) -> Self {
        SubOperations {
            remaining: Some(remaining),
            completed: Some(completed),
            failed: Some(failed),
            warning: Some(warning),
        }
    }

    /// Whether the response carries no count at all.
    pub fn is_empty(&self) -> bool {
        *self == SubOperations::default()
    }
}

impl fmt::Display for SubOperations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |n: Option<u16>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        write!(
            f,
            "remaining {}, completed {}, failed {}, warning {}",
            show(self.remaining),
            show(self.completed),
            show(self.failed),
            show(self.warning)
        )
    }
}

impl Command {
    fn empty(field: CommandField) -> Self {
        Command {
            field,
            sop_class_uid: None,
            message_id: None,
            message_id_being_responded_to: None,
            priority: None,
            has_data_set: false,
            status: None,
            sop_instance_uid: None,
            move_destination: None,
            move_originator_ae_title: None,
            move_originator_message_id: None,
            error_comment: None,
            sub_operations: SubOperations::default(),
            action_type_id: None,
            event_type_id: None,
        }
    }

    /// C-ECHO-RQ on the Verification SOP class.
    pub fn c_echo_rq(message_id: u16) -> Self {
        Command {
            sop_class_uid: Some(dicom_dictionary_std::uids::VERIFICATION.to_string()),
            message_id: Some(message_id),
            ..Command::empty(CommandField::CEchoRq)
        }
    }

    /// C-STORE-RQ for one instance; the data set follows.
    pub fn c_store_rq(
        message_id: u16,
        sop_class_uid: impl Into<String>,
        sop_instance_uid: impl Into<String>,
        priority: Priority,
    ) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            priority: Some(priority),
            has_data_set: true,
            sop_instance_uid: Some(sop_instance_uid.into()),
            ..Command::empty(CommandField::CStoreRq)
        }
    }

    /// C-FIND-RQ; the identifier follows.
    pub fn c_find_rq(
        message_id: u16,
        sop_class_uid: impl Into<String>,
        priority: Priority,
    ) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            priority: Some(priority),
            has_data_set: true,
            ..Command::empty(CommandField::CFindRq)
        }
    }

    /// C-MOVE-RQ: the SCP stores what the identifier (which follows) names to the AE
    /// title `move_destination`, on an association of its own.
    pub fn c_move_rq(
        message_id: u16,
        sop_class_uid: impl Into<String>,
        move_destination: impl Into<String>,
        priority: Priority,
    ) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            priority: Some(priority),
            has_data_set: true,
            move_destination: Some(move_destination.into()),
            ..Command::empty(CommandField::CMoveRq)
        }
    }

    /// C-GET-RQ: the SCP sends what the identifier (which follows) names back as
    /// C-STORE sub-operations on this association.
    pub fn c_get_rq(message_id: u16, sop_class_uid: impl Into<String>, priority: Priority) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            priority: Some(priority),
            has_data_set: true,
            ..Command::empty(CommandField::CGetRq)
        }
    }

    /// A C-STORE-RQ sent as a sub-operation of a C-MOVE: it names the AE title and
    /// message ID of the C-MOVE-RQ it serves.
    pub fn moved_by(mut self, originator_ae_title: impl Into<String>, message_id: u16) -> Self {
        self.move_originator_ae_title = Some(originator_ae_title.into());
        self.move_originator_message_id = Some(message_id);
        self
    }

    /// N-ACTION-RQ of `action_type_id` on the SOP instance `sop_instance_uid` of
    /// `sop_class_uid` (sent as the Requested SOP Class and Instance); the action
    /// information follows when `has_data_set`.
    pub fn n_action_rq(
        message_id: u16,
        sop_class_uid: impl Into<String>,
        sop_instance_uid: impl Into<String>,
        action_type_id: u16,
        has_data_set: bool,
    ) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            sop_instance_uid: Some(sop_instance_uid.into()),
            action_type_id: Some(action_type_id),
            has_data_set,
            ..Command::empty(CommandField::NActionRq)
        }
    }

    /// N-EVENT-REPORT-RQ of `event_type_id` about the SOP instance
    /// `sop_instance_uid` of `sop_class_uid`; the event information follows when
    /// `has_data_set`.
    pub fn n_event_report_rq(
        message_id: u16,
        sop_class_uid: impl Into<String>,
        sop_instance_uid: impl Into<String>,
        event_type_id: u16,
        has_data_set: bool,
    ) -> Self {
        Command {
            sop_class_uid: Some(sop_class_uid.into()),
            message_id: Some(message_id),
            sop_instance_uid: Some(sop_instance_uid.into()),
            event_type_id: Some(event_type_id),
            has_data_set,
            ..Command::empty(CommandField::NEventReportRq)
        }
    }

    /// Sets the sub-operation counts (C-MOVE and C-GET responses).
    pub fn with_sub_operations(mut self, counts: SubOperations) -> Self {
        self.sub_operations = counts;
        self
    }

    /// C-CANCEL-RQ for an outstanding C-FIND (or C-GET/C-MOVE).
    pub fn c_cancel_rq(message_id_being_responded_to: u16) -> Self {
        Command {
            message_id_being_responded_to: Some(message_id_being_responded_to),
            ..Command::empty(CommandField::CCancelRq)
        }
    }

    /// The response to `request` with `status`. C-FIND pending responses carry an
    /// identifier (`has_data_set = true`), as may C-MOVE and C-GET failures (the
    /// failed SOP instance UID list) and N-service responses.
    ///
    /// C-STORE and N-service responses name the affected SOP instance; N-ACTION and
    /// N-EVENT-REPORT responses echo the action or event type.
    ///
    /// Returns `None` when `request` is not a request that has a response (a response,
    /// or a C-CANCEL-RQ).
    pub fn response_to(request: &Command, status: Status, has_data_set: bool) -> Option<Self> {
        let field = match request.field {
            CommandField::CStoreRq => CommandField::CStoreRsp,
            CommandField::CFindRq => CommandField::CFindRsp,
            CommandField::CGetRq => CommandField::CGetRsp,
            CommandField::CMoveRq => CommandField::CMoveRsp,
            CommandField::CEchoRq => CommandField::CEchoRsp,
            CommandField::NActionRq => CommandField::NActionRsp,
            CommandField::NEventReportRq => CommandField::NEventReportRsp,
            _ => return None,
        };
        Some(Command {
            sop_class_uid: request.sop_class_uid.clone(),
            message_id_being_responded_to: request.message_id,
            has_data_set,
            status: Some(status),
            sop_instance_uid: match field {
                CommandField::CStoreRsp
                | CommandField::NActionRsp
                | CommandField::NEventReportRsp => request.sop_instance_uid.clone(),
                _ => None,
            },
            action_type_id: match field {
                CommandField::NActionRsp => request.action_type_id,
                _ => None,
            },
            event_type_id: match field {
                CommandField::NEventReportRsp => request.event_type_id,
                _ => None,
            },
            ..Command::empty(field)
        })
    }

    /// Adds an ErrorComment (at most 64 characters are kept, the element's limit).
    pub fn with_error_comment(mut self, comment: impl Into<String>) -> Self {
        let mut comment: String = comment.into();
        if let Some((cut, _)) = comment.char_indices().nth(64) {
            comment.truncate(cut);
        }
        self.error_comment = Some(comment);
        self
    }

    /// Encodes the command set in Implicit VR Little Endian, with its group length.
    pub fn encode(&self) -> Vec<u8> {
        let mut elements = Vec::with_capacity(10);
        let mut push_str = |tag: Tag, vr: VR, value: &str| {
            elements.push(DataElement::new(tag, vr, PrimitiveValue::from(value)));
        };
        // An N-ACTION-RQ names the instance it acts on as the *Requested* SOP class
        // and instance (PS3.7 10.1.4.1); every other message as the Affected ones.
        let (class_tag, instance_tag) = match self.field {
            CommandField::NActionRq => (
                tags::REQUESTED_SOP_CLASS_UID,
                tags::REQUESTED_SOP_INSTANCE_UID,
            ),
            _ => (
                tags::AFFECTED_SOP_CLASS_UID,
                tags::AFFECTED_SOP_INSTANCE_UID,
            ),
        };
        if let Some(uid) = &self.sop_class_uid {
            // A C-CANCEL-RQ has none; every other request names its SOP class here.
            push_str(class_tag, VR::UI, uid);
        }
        if let Some(dest) = &self.move_destination {
            push_str(tags::MOVE_DESTINATION, VR::AE, dest);
        }
        if let Some(comment) = &self.error_comment {
            push_str(tags::ERROR_COMMENT, VR::LO, comment);
        }
        if let Some(uid) = &self.sop_instance_uid {
            push_str(instance_tag, VR::UI, uid);
        }
        if let Some(ae) = &self.move_originator_ae_title {
            push_str(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE, VR::AE, ae);
        }
        let mut push_us = |tag: Tag, value: u16| {
            elements.push(DataElement::new(tag, VR::US, PrimitiveValue::from(value)));
        };
        push_us(tags::COMMAND_FIELD, self.field.code());
        if let Some(id) = self.message_id {
            push_us(tags::MESSAGE_ID, id);
        }
        if let Some(id) = self.message_id_being_responded_to {
            push_us(tags::MESSAGE_ID_BEING_RESPONDED_TO, id);
        }
        if let Some(priority) = self.priority {
            push_us(tags::PRIORITY, priority.code());
        }
        push_us(
            tags::COMMAND_DATA_SET_TYPE,
            if self.has_data_set {
                DATA_SET_PRESENT
            } else {
                NO_DATA_SET
            },
        );
        if let Some(status) = self.status {
            push_us(tags::STATUS, status.code());
        }
        if let Some(id) = self.event_type_id {
            push_us(tags::EVENT_TYPE_ID, id);
        }
        if let Some(id) = self.action_type_id {
            push_us(tags::ACTION_TYPE_ID, id);
        }
        let counts = &self.sub_operations;
        for (tag, count) in [
            (tags::NUMBER_OF_REMAINING_SUBOPERATIONS, counts.remaining),
            (tags::NUMBER_OF_COMPLETED_SUBOPERATIONS, counts.completed),
            (tags::NUMBER_OF_FAILED_SUBOPERATIONS, counts.failed),
            (tags::NUMBER_OF_WARNING_SUBOPERATIONS, counts.warning),
        ] {
            if let Some(count) = count {
                push_us(tag, count);
            }
        }
        if let Some(id) = self.move_originator_message_id {
            push_us(tags::MOVE_ORIGINATOR_MESSAGE_ID, id);
        }
        // command_from_element_iter sorts by tag and computes CommandGroupLength.
        let obj = InMemDicomObject::command_from_element_iter(elements);
        let mut bytes = Vec::with_capacity(256);
        obj.write_dataset_with_ts(&mut bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .expect("a command set of strings and US values always encodes into a Vec");
        bytes
    }

    /// Decodes a command set received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, CommandError> {
        let obj =
            InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .map_err(|e| CommandError::Malformed(e.to_string()))?;
        let us = |tag: Tag| -> Result<Option<u16>, CommandError> {
            match obj.get(tag) {
                None => Ok(None),
                Some(e) => e
                    .to_int::<u16>()
                    .map(Some)
                    .map_err(|_| CommandError::BadValue { tag }),
            }
        };
        let text = |tag: Tag| -> Option<String> {
            obj.get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_string())
        };
        let field = us(tags::COMMAND_FIELD)?.ok_or(CommandError::MissingCommandField)?;
        Ok(Command {
            field: CommandField::from_code(field),
            sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID)
                .or_else(|| text(tags::REQUESTED_SOP_CLASS_UID)),
            message_id: us(tags::MESSAGE_ID)?,
            message_id_being_responded_to: us(tags::MESSAGE_ID_BEING_RESPONDED_TO)?,
            priority: us(tags::PRIORITY)?.map(Priority::from_code),
            // Absent means no data set: a peer that omits it sends nothing after the command.
            has_data_set: us(tags::COMMAND_DATA_SET_TYPE)?.is_some_and(|t| t != NO_DATA_SET),
            status: us(tags::STATUS)?.map(Status),
            sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID)
                .or_else(|| text(tags::REQUESTED_SOP_INSTANCE_UID)),
            move_destination: text(tags::MOVE_DESTINATION),
            move_originator_ae_title: text(tags::MOVE_ORIGINATOR_APPLICATION_ENTITY_TITLE),
            move_originator_message_id: us(tags::MOVE_ORIGINATOR_MESSAGE_ID)?,
            error_comment: text(tags::ERROR_COMMENT),
            sub_operations: SubOperations {
                remaining: us(tags::NUMBER_OF_REMAINING_SUBOPERATIONS)?,
                completed: us(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS)?,
                failed: us(tags::NUMBER_OF_FAILED_SUBOPERATIONS)?,
                warning: us(tags::NUMBER_OF_WARNING_SUBOPERATIONS)?,
            },
            action_type_id: us(tags::ACTION_TYPE_ID)?,
            event_type_id: us(tags::EVENT_TYPE_ID)?,
        })
    }
}

/// Why a received command set could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The bytes are not an Implicit VR Little Endian data set.
    #[error("malformed command set: {0}")]
    Malformed(String),
    /// (0000,0100) CommandField is missing.
    #[error("command set has no CommandField (0000,0100)")]
    MissingCommandField,
    /// A US element holds something else.
    #[error("command element {tag} does not hold an unsigned short")]
    BadValue {
        /// The offending element.
        tag: Tag,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;

    #[test]
    fn store_request_round_trips() {
        let rq = Command::c_store_rq(7, uids::CT_IMAGE_STORAGE, "1.2.3.4", Priority::High);
        let back = Command::decode(&rq.encode()).unwrap();
        assert_eq!(back, rq);
        assert!(back.has_data_set);
    }

    #[test]
    fn odd_length_uids_come_back_without_padding() {
        let rq = Command::c_store_rq(1, "1.2.3", "1.2.345", Priority::Medium);
        let bytes = rq.encode();
        assert_eq!(bytes.len() % 2, 0);
        let back = Command::decode(&bytes).unwrap();
        assert_eq!(back.sop_class_uid.as_deref(), Some("1.2.3"));
        assert_eq!(back.sop_instance_uid.as_deref(), Some("1.2.345"));
    }

    #[test]
    fn store_response_echoes_request_identity() {
        let rq = Command::c_store_rq(9, uids::MR_IMAGE_STORAGE, "1.2.3.4", Priority::Medium);
        let rsp = Command::response_to(&rq, Status(0xB000), false)
            .unwrap()
            .with_error_comment("coerced");
        let back = Command::decode(&rsp.encode()).unwrap();
        assert_eq!(back.field, CommandField::CStoreRsp);
        assert_eq!(back.message_id_being_responded_to, Some(9));
        assert_eq!(back.status, Some(Status(0xB000)));
        assert_eq!(back.sop_instance_uid.as_deref(), Some("1.2.3.4"));
        assert_eq!(back.error_comment.as_deref(), Some("coerced"));
        assert!(!back.has_data_set);
    }

    #[test]
    fn group_length_is_first_and_correct() {
        let bytes = Command::c_echo_rq(1).encode();
        // (0000,0000) UL, length 4, then the value: the byte count that follows.
        assert_eq!(&bytes[0..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let group_len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        assert_eq!(group_len, bytes.len() - 12);
    }

    #[test]
    fn cancel_has_no_sop_class_and_no_data_set() {
        let back = Command::decode(&Command::c_cancel_rq(3).encode()).unwrap();
        assert_eq!(back.field, CommandField::CCancelRq);
        assert_eq!(back.message_id_being_responded_to, Some(3));
        assert_eq!(back.sop_class_uid, None);
        assert!(!back.has_data_set);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Command::decode(&[0xFF; 7]).is_err());
        assert!(Command::decode(&[]).is_err());
        // A valid data set without CommandField.
        let obj = InMemDicomObject::command_from_element_iter([DataElement::new(
            tags::MESSAGE_ID,
            VR::US,
            PrimitiveValue::from(1_u16),
        )]);
        let mut bytes = Vec::new();
        obj.write_dataset_with_ts(&mut bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .unwrap();
        assert_eq!(
            Command::decode(&bytes),
            Err(CommandError::MissingCommandField)
        );
    }

    #[test]
    fn move_request_and_its_counted_response_round_trip() {
        let rq = Command::c_move_rq(
            4,
            uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE,
            "SINK",
            Priority::Medium,
        );
        let back = Command::decode(&rq.encode()).unwrap();
        assert_eq!(back, rq);
        assert_eq!(back.move_destination.as_deref(), Some("SINK"));
        let rsp = Command::response_to(&rq, Status(0xFF00), false)
            .unwrap()
            .with_sub_operations(SubOperations::counts(3, 5, 1, 0));
        let back = Command::decode(&rsp.encode()).unwrap();
        assert_eq!(back.field, CommandField::CMoveRsp);
        assert_eq!(back.sub_operations, SubOperations::counts(3, 5, 1, 0));
        assert_eq!(
            back.sub_operations.to_string(),
            "remaining 3, completed 5, failed 1, warning 0"
        );
        // A final response may leave out the remaining count.
        let last = Command::response_to(&rq, Status::SUCCESS, false)
            .unwrap()
            .with_sub_operations(SubOperations {
                remaining: None,
                ..SubOperations::counts(0, 9, 0, 0)
            });
        let back = Command::decode(&last.encode()).unwrap();
        assert_eq!(back.sub_operations.remaining, None);
        assert_eq!(back.sub_operations.completed, Some(9));
    }

    #[test]
    fn a_store_sub_operation_names_the_move_it_serves() {
        let rq = Command::c_store_rq(11, uids::CT_IMAGE_STORAGE, "1.2.3", Priority::Medium)
            .moved_by("DICOM_AUTO", 4);
        let back = Command::decode(&rq.encode()).unwrap();
        assert_eq!(back.move_originator_ae_title.as_deref(), Some("DICOM_AUTO"));
        assert_eq!(back.move_originator_message_id, Some(4));
    }

    #[test]
    fn n_action_uses_the_requested_uids_and_its_response_the_affected_ones() {
        let rq = Command::n_action_rq(
            2,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
            1,
            true,
        );
        let bytes = rq.encode();
        let obj =
            InMemDicomObject::read_dataset_with_ts(&bytes[..], &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                .unwrap();
        assert!(obj.get(tags::REQUESTED_SOP_CLASS_UID).is_some());
        assert!(obj.get(tags::REQUESTED_SOP_INSTANCE_UID).is_some());
        assert!(obj.get(tags::AFFECTED_SOP_CLASS_UID).is_none());
        let back = Command::decode(&bytes).unwrap();
        assert_eq!(back, rq);
        let rsp = Command::response_to(&rq, Status::SUCCESS, false).unwrap();
        let back = Command::decode(&rsp.encode()).unwrap();
        assert_eq!(back.field, CommandField::NActionRsp);
        assert_eq!(back.action_type_id, Some(1));
        assert_eq!(
            back.sop_instance_uid.as_deref(),
            Some(uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE)
        );
    }

    #[test]
    fn an_event_report_round_trips_with_its_type() {
        let rq = Command::n_event_report_rq(
            7,
            uids::STORAGE_COMMITMENT_PUSH_MODEL,
            uids::STORAGE_COMMITMENT_PUSH_MODEL_INSTANCE,
            2,
            true,
        );
        let back = Command::decode(&rq.encode()).unwrap();
        assert_eq!(back, rq);
        let rsp = Command::response_to(&rq, Status::SUCCESS, false).unwrap();
        assert_eq!(rsp.field, CommandField::NEventReportRsp);
        assert_eq!(rsp.event_type_id, Some(2));
    }

    #[test]
    fn responses_exist_only_for_requests() {
        let rsp = Command::response_to(&Command::c_echo_rq(1), Status::SUCCESS, false).unwrap();
        assert_eq!(rsp.field, CommandField::CEchoRsp);
        assert!(Command::response_to(&rsp, Status::SUCCESS, false).is_none());
        assert!(Command::response_to(&Command::c_cancel_rq(1), Status::SUCCESS, false).is_none());
    }
}
