//! The DIMSE message layer that dicom-ul leaves to its users, shared by dicom-auto's
//! SCU side (`sender`, `cfind`) and SCP side (`simulator`).
//!
//! dicom-ul negotiates associations and moves PDUs; it has no notion of a C-STORE.
//! This crate adds the three things both sides of a DIMSE exchange need:
//!
//! - [`status`]: DIMSE status codes and their classes (success, warning, failure,
//!   cancel, pending): the one status table of the workspace.
//! - [`command`]: typed command sets ([`Command`]) with constructors for the
//!   C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET and C-CANCEL messages, the N-ACTION and
//!   N-EVENT-REPORT of Storage Commitment, and their responses (with the
//!   sub-operation counts of a retrieve, [`SubOperations`]), encoded in Implicit VR
//!   Little Endian as PS3.7 requires.
//! - [`message`]: reassembly of a command and its data set from P-DATA PDVs
//!   ([`MessageReader`]), and sending messages fragmented to the peer's maximum
//!   PDU length ([`send_message`]), with errors that say whether the peer timed out,
//!   closed the connection or broke the protocol ([`DimseError`]).
//!
//! On top of them sits the one SCU association of the workspace ([`scu`]:
//! [`ScuOptions`] and [`ScuAssociation`]), every wait bounded ([`Timeouts`]) and
//! TCP_NODELAY on, with the vocabulary both sides share: AE titles ([`AeTitle`]),
//! peer addresses ([`PeerAddress`]), the Query/Retrieve models, services and levels
//! ([`qr`]), SCP/SCU role selection for a C-GET ([`ScuOptions::offer_scp_role`]),
//! padding rules ([`trim_value`]) and error display ([`ErrorChain`]).
//! Association rejections are named in words by [`describe_rejection`].
//!
//! The acceptor side is [`scp`]: dicom-auto's own reading and answering of an
//! A-ASSOCIATE-RQ over plain TCP or TLS ([`scp::ScpStream`]), so that an SCP can
//! route, refuse and check user identities as a router does, and an
//! [`scp::ScpAssociation`] the message layer runs over like any other.
//!
//! # Example
//!
//! ```
//! use dimse::{Command, Priority, Status, StatusClass};
//!
//! let request = Command::c_store_rq(1, "1.2.840.10008.5.1.4.1.1.2", "2.25.1", Priority::Medium);
//! let response = Command::response_to(&request, Status(0xB000), false).unwrap();
//! let decoded = Command::decode(&response.encode()).unwrap();
//! assert_eq!(decoded.status.unwrap().class(), StatusClass::Warning);
//! assert_eq!(decoded.message_id_being_responded_to, Some(1));
//! ```
//!
//! Sending and receiving work on any dicom-ul synchronous association, client or
//! server:
//!
//! ```no_run
//! # fn demo(association: &mut dicom_ul::ClientAssociation<std::net::TcpStream>) -> Result<(), dimse::DimseError> {
//! use dimse::{Command, Incoming, MessageReader};
//!
//! dimse::send_message(association, 1, &Command::c_echo_rq(1), None)?;
//! match MessageReader::new().receive(association)? {
//!     Incoming::Message(message) => println!("{:?}", message.command.status),
//!     other => println!("association ended: {other:?}"),
//! }
//! # Ok(()) }
//! ```

mod ae_title;
mod attribute;
#[cfg(feature = "cli")]
pub mod cli;
pub mod command;
pub mod identity;
pub mod message;
mod peer;
pub mod qr;
pub mod scp;
pub mod scu;
pub mod serde_duration;
pub mod socket;
pub mod status;
mod text;
mod timeouts;
pub mod tls;
pub mod trace;
mod uid;
mod value;

pub use ae_title::{AE_TITLE_MAX_LEN, AeTitle, AeTitleError};
pub use attribute::{Attribute, AttributeError};
pub use command::{Command, CommandError, CommandField, Priority, SubOperations};
pub use identity::{IdentityKind, IdentityKindError, IdentitySummary, UserIdentity};
pub use message::{
    DimseError, Incoming, Message, MessageReader, Patch, PduChannel, PduStream, STREAM_CHUNK,
    max_pdv_payload, pdu_name, send_command, send_data, send_data_patched, send_message,
    write_fragments, write_fragments_from, write_fragments_patched,
};
pub use peer::{PeerAddress, PeerAddressError};
pub use qr::{InformationModel, QrService, QueryLevel};
pub use scu::{
    AssociateError, DEFAULT_MAX_PDU_LENGTH, Response, ScuAssociation, ScuOptions, Security,
};
pub use socket::SocketTuning;
pub use status::{Status, StatusClass};
pub use text::{ErrorChain, trim_value};
pub use timeouts::Timeouts;
pub use uid::{
    UUID_UID_ROOT, is_standard_sop_class, is_storage_sop_class, new_uid, uid_from_bits,
    uid_from_rng,
};
pub use value::{
    ValueError, VrCheck, check_uid, is_single_valued_text_vr, is_text_vr, text_to_value,
};

use dicom_ul::pdu::{AssociationRJ, AssociationRJResult};

/// An association rejection in words: result, source and reason, e.g.
/// `permanent rejection by the service user: called AE title not recognized`.
pub fn describe_rejection(rejection: &AssociationRJ) -> String {
    use dicom_ul::pdu::AssociationRJSource as Source;
    let result = match rejection.result {
        AssociationRJResult::Permanent => "permanent",
        AssociationRJResult::Transient => "transient",
    };
    let (source, reason) = match &rejection.source {
        Source::ServiceUser(reason) => ("the service user", reason.to_string()),
        Source::ServiceProviderASCE(reason) => ("the service provider (ACSE)", reason.to_string()),
        Source::ServiceProviderPresentation(reason) => {
            ("the service provider (presentation)", reason.to_string())
        }
    };
    format!("{result} rejection by {source}: {reason}")
}
