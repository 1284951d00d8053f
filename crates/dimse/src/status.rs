//! DIMSE status codes and their classes (PS3.7 Annex C, PS3.4 service annexes).
//!
//! This is the one table of status codes in the workspace: the SCU side uses it
//! to classify responses, the simulator uses its constants to answer.

use std::fmt;

/// The class of a DIMSE status code, as PS3.7 C.1 groups them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StatusClass {
    /// The operation completed (`0000`).
    Success,
    /// The operation completed with a reservation: coercion, elements discarded... (`B000`,
    /// `B006`, `B007`, `0001`, `0107`, `0116`).
    Warning,
    /// The operation failed: refused, error, or a code this table does not know.
    Failure,
    /// The operation was cancelled at the requester's request (`FE00`).
    Cancel,
    /// More responses follow (`FF00`, `FF01`): C-FIND matches.
    Pending,
}

impl StatusClass {
    /// A short lowercase word for tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusClass::Success => "success",
            StatusClass::Warning => "warning",
            StatusClass::Failure => "failure",
            StatusClass::Cancel => "cancel",
            StatusClass::Pending => "pending",
        }
    }
}

impl fmt::Display for StatusClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A DIMSE status code (tag (0000,0900)).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Status(pub u16);

impl Status {
    /// `0000`: success.
    pub const SUCCESS: Status = Status(0x0000);
    /// `FF00`: pending, more matches follow.
    pub const PENDING: Status = Status(0xFF00);
    /// `FF01`: pending, some optional keys were not supported for matching.
    pub const PENDING_WARNING: Status = Status(0xFF01);
    /// `FE00`: matching terminated by a C-CANCEL.
    pub const CANCEL: Status = Status(0xFE00);
    /// `B000`: C-STORE warning, coercion of data elements.
    pub const COERCION_OF_DATA_ELEMENTS: Status = Status(0xB000);
    /// `B006`: C-STORE warning, elements discarded.
    pub const ELEMENTS_DISCARDED: Status = Status(0xB006);
    /// `B007`: C-STORE warning, data set does not match SOP class.
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS_WARNING: Status = Status(0xB007);
    /// `A700`: refused, out of resources.
    pub const OUT_OF_RESOURCES: Status = Status(0xA700);
    /// `A900`: error, data set or identifier does not match SOP class.
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: Status = Status(0xA900);
    /// `C000`: error, cannot understand.
    pub const CANNOT_UNDERSTAND: Status = Status(0xC000);
    /// `0110`: processing failure.
    pub const PROCESSING_FAILURE: Status = Status(0x0110);
    /// `0111`: duplicate SOP instance.
    pub const DUPLICATE_SOP_INSTANCE: Status = Status(0x0111);
    /// `0112`: no such SOP instance (an N-service on an instance the SCP does not
    /// have; as a Storage Commitment failure reason, no such object instance).
    pub const NO_SUCH_SOP_INSTANCE: Status = Status(0x0112);
    /// `0113`: no such event type (an N-EVENT-REPORT's Event Type ID).
    pub const NO_SUCH_EVENT_TYPE: Status = Status(0x0113);
    /// `0115`: invalid argument value (an N-ACTION's action information).
    pub const INVALID_ARGUMENT_VALUE: Status = Status(0x0115);
    /// `0118`: no such SOP class.
    pub const NO_SUCH_SOP_CLASS: Status = Status(0x0118);
    /// `0119`: class-instance conflict.
    pub const CLASS_INSTANCE_CONFLICT: Status = Status(0x0119);
    /// `0122`: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: Status = Status(0x0122);
    /// `0123`: no such action (an N-ACTION's Action Type ID).
    pub const NO_SUCH_ACTION: Status = Status(0x0123);
    /// `0131`: duplicate transaction UID (a Storage Commitment failure reason).
    pub const DUPLICATE_TRANSACTION_UID: Status = Status(0x0131);
    /// `0213`: resource limitation.
    pub const RESOURCE_LIMITATION: Status = Status(0x0213);
    /// `0211`: unrecognized operation.
    pub const UNRECOGNIZED_OPERATION: Status = Status(0x0211);

    /// The raw code.
    pub fn code(self) -> u16 {
        self.0
    }

    /// The class of this code. Codes outside the standard's tables are failures:
    /// an SCU must not count an unexplained status as delivered.
    pub fn class(self) -> StatusClass {
        match self.0 {
            0x0000 => StatusClass::Success,
            0xFF00 | 0xFF01 => StatusClass::Pending,
            0xFE00 => StatusClass::Cancel,
            0x0001 | 0x0107 | 0x0116 => StatusClass::Warning,
            code if code & 0xF000 == 0xB000 => StatusClass::Warning,
            _ => StatusClass::Failure,
        }
    }

    /// C-MOVE/C-GET: refused, out of resources, unable to calculate the number of
    /// matches.
    pub const UNABLE_TO_CALCULATE_MATCHES: Status = Status(0xA701);
    /// C-MOVE/C-GET: refused, out of resources, unable to perform the sub-operations.
    pub const UNABLE_TO_PERFORM_SUB_OPERATIONS: Status = Status(0xA702);
    /// C-MOVE: refused, the move destination is unknown to the SCP.
    pub const MOVE_DESTINATION_UNKNOWN: Status = Status(0xA801);
    /// C-MOVE/C-GET final status: sub-operations complete, one or more failed or
    /// warned (the code of C-STORE's coercion warning, another meaning here).
    pub const SUB_OPERATIONS_FAILED_OR_WARNED: Status = Status(0xB000);

    /// `A7xx`: refused, out of resources. The peer may accept the same request later.
    pub fn is_out_of_resources(self) -> bool {
        self.0 & 0xFF00 == 0xA700
    }

    /// `A9xx`: the data set (or C-FIND identifier) does not match the SOP class.
    pub fn is_data_set_mismatch(self) -> bool {
        self.0 & 0xFF00 == 0xA900
    }

    /// `Cxxx`: the peer cannot understand (or, for C-FIND, cannot process) the request.
    pub fn is_cannot_understand(self) -> bool {
        self.0 & 0xF000 == 0xC000
    }

    /// Whether the operation took effect (success or warning).
    pub fn is_delivered(self) -> bool {
        matches!(self.class(), StatusClass::Success | StatusClass::Warning)
    }

    /// What the code means, in the standard's words.
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x0000 => "success",
            0x0001 => "requested optional attributes are not supported",
            0x0105 => "no such attribute",
            0x0106 => "invalid attribute value",
            0x0107 => "attribute list error",
            0x0110 => "processing failure",
            0x0111 => "duplicate SOP instance",
            0x0112 => "no such SOP instance",
            0x0113 => "no such event type",
            0x0115 => "invalid argument value",
            0x0116 => "attribute value out of range",
            0x0117 => "invalid object instance",
            0x0118 => "no such SOP class",
            0x0119 => "class-instance conflict",
            0x0120 => "missing attribute",
            0x0121 => "missing attribute value",
            0x0122 => "SOP class not supported",
            0x0123 => "no such action",
            0x0124 => "refused: not authorized",
            0x0131 => "duplicate transaction UID",
            0x0210 => "duplicate invocation",
            0x0211 => "unrecognized operation",
            0x0212 => "mistyped argument",
            0x0213 => "resource limitation",
            0xA801 => "refused: move destination unknown",
            0xFE00 => "cancelled",
            0xFF00 => "pending",
            0xFF01 => "pending: optional keys not supported",
            0xB000 => "warning: coercion of data elements",
            0xB006 => "warning: elements discarded",
            0xB007 => "warning: data set does not match SOP class",
            _ if self.is_out_of_resources() => "refused: out of resources",
            _ if self.is_data_set_mismatch() => "error: data set does not match SOP class",
            _ if self.is_cannot_understand() => "error: cannot understand",
            code if code & 0xF000 == 0xB000 => "warning",
            _ => "unrecognized status code",
        }
    }
}

impl Status {
    /// What the code means in a response of `field`: the standard gives some codes a
    /// meaning of their own per service (0xB000 is a coercion warning for C-STORE,
    /// "sub-operations complete, one or more failures or warnings" for C-MOVE and
    /// C-GET; 0xA900 an identifier that does not match the SOP class for a query).
    pub fn meaning_for(self, field: crate::CommandField) -> &'static str {
        use crate::CommandField::{CFindRsp, CGetRsp, CMoveRsp};
        match (field, self.0) {
            (CMoveRsp | CGetRsp, 0xB000) => {
                "warning: sub-operations complete, one or more failures or warnings"
            }
            (CMoveRsp | CGetRsp, 0xA701) => {
                "refused: out of resources, unable to calculate number of matches"
            }
            (CMoveRsp | CGetRsp, 0xA702) => {
                "refused: out of resources, unable to perform sub-operations"
            }
            (CMoveRsp | CGetRsp | CFindRsp, code) if code & 0xFF00 == 0xA900 => {
                "error: identifier does not match SOP class"
            }
            _ => self.meaning(),
        }
    }
}

impl From<u16> for Status {
    fn from(code: u16) -> Self {
        Status(code)
    }
}

impl fmt::Display for Status {
    /// `A700 (refused: out of resources)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieve_statuses_have_their_retrieve_meaning() {
        use crate::CommandField;
        assert_eq!(
            Status::MOVE_DESTINATION_UNKNOWN.meaning(),
            "refused: move destination unknown"
        );
        assert_eq!(
            Status::MOVE_DESTINATION_UNKNOWN.class(),
            StatusClass::Failure
        );
        assert_eq!(
            Status(0xB000).meaning_for(CommandField::CMoveRsp),
            "warning: sub-operations complete, one or more failures or warnings"
        );
        assert_eq!(
            Status(0xB000).meaning_for(CommandField::CStoreRsp),
            "warning: coercion of data elements"
        );
        assert_eq!(
            Status(0xA900).meaning_for(CommandField::CGetRsp),
            "error: identifier does not match SOP class"
        );
    }

    #[test]
    fn store_warnings_are_warnings() {
        for code in [0xB000, 0xB006, 0xB007, 0x0001, 0x0107, 0x0116] {
            assert_eq!(Status(code).class(), StatusClass::Warning, "{code:04X}");
            assert!(Status(code).is_delivered());
        }
    }

    #[test]
    fn refusals_and_errors_are_failures() {
        for code in [
            0xA700, 0xA7FF, 0xA900, 0xA9AB, 0xC000, 0xCFFF, 0x0117, 0x0122, 0x0112, 0x0124, 0x0210,
            0x0211, 0x0212, 0x0110,
        ] {
            assert_eq!(Status(code).class(), StatusClass::Failure, "{code:04X}");
            assert!(!Status(code).is_delivered());
        }
    }

    #[test]
    fn failure_families_cover_their_whole_ranges() {
        assert!(Status(0xA700).is_out_of_resources() && Status(0xA7FF).is_out_of_resources());
        assert!(!Status(0xA900).is_out_of_resources());
        assert!(Status(0xA900).is_data_set_mismatch() && Status(0xA9AB).is_data_set_mismatch());
        assert!(Status(0xC000).is_cannot_understand() && Status(0xCFFF).is_cannot_understand());
        assert!(!Status(0xB000).is_cannot_understand());
    }

    #[test]
    fn unknown_codes_count_as_failures_not_successes() {
        assert_eq!(Status(0x1234).class(), StatusClass::Failure);
        assert_eq!(Status(0x1234).meaning(), "unrecognized status code");
    }

    #[test]
    fn pending_cancel_and_success() {
        assert_eq!(Status(0xFF00).class(), StatusClass::Pending);
        assert_eq!(Status(0xFF01).class(), StatusClass::Pending);
        assert_eq!(Status(0xFE00).class(), StatusClass::Cancel);
        assert_eq!(Status(0).class(), StatusClass::Success);
    }

    #[test]
    fn display_shows_hex_and_meaning() {
        assert_eq!(
            Status(0xA701).to_string(),
            "A701 (refused: out of resources)"
        );
        assert_eq!(Status::SUCCESS.to_string(), "0000 (success)");
    }
}
