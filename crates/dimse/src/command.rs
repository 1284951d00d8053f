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
    /// Any other code (N-services, or garbage from a broken peer).
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

    /// C-CANCEL-RQ for an outstanding C-FIND (or C-GET/C-MOVE).
    pub fn c_cancel_rq(message_id_being_responded_to: u16) -> Self {
        Command {
            message_id_being_responded_to: Some(message_id_being_responded_to),
            ..Command::empty(CommandField::CCancelRq)
        }
    }

    /// The response to `request` with `status`. C-FIND pending responses carry an
    /// identifier (`has_data_set = true`); every other response carries none.
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
            _ => return None,
        };
        Some(Command {
            sop_class_uid: request.sop_class_uid.clone(),
            message_id_being_responded_to: request.message_id,
            has_data_set,
            status: Some(status),
            sop_instance_uid: match field {
                CommandField::CStoreRsp => request.sop_instance_uid.clone(),
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
        if let Some(uid) = &self.sop_class_uid {
            // A C-CANCEL-RQ has none; every other request names its SOP class here.
            push_str(tags::AFFECTED_SOP_CLASS_UID, VR::UI, uid);
        }
        if let Some(dest) = &self.move_destination {
            push_str(tags::MOVE_DESTINATION, VR::AE, dest);
        }
        if let Some(comment) = &self.error_comment {
            push_str(tags::ERROR_COMMENT, VR::LO, comment);
        }
        if let Some(uid) = &self.sop_instance_uid {
            push_str(tags::AFFECTED_SOP_INSTANCE_UID, VR::UI, uid);
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
    fn responses_exist_only_for_requests() {
        let rsp = Command::response_to(&Command::c_echo_rq(1), Status::SUCCESS, false).unwrap();
        assert_eq!(rsp.field, CommandField::CEchoRsp);
        assert!(Command::response_to(&rsp, Status::SUCCESS, false).is_none());
        assert!(Command::response_to(&Command::c_cancel_rq(1), Status::SUCCESS, false).is_none());
    }
}
