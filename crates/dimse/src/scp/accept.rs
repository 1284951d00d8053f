//! Accepting an association: the A-ASSOCIATE-AC built from one decision per
//! proposed presentation context.

use std::io::Write;

use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AssociationAC, AssociationRQ, MAXIMUM_PDU_SIZE, PresentationContextNegotiated,
    PresentationContextProposed, PresentationContextResult, PresentationContextResultReason,
    RequestorRoles, UserVariableItem,
};

use super::association::ScpAssociation;
use super::error::ScpError;
use super::stream::ScpStream;
use crate::identity::UserIdentity;

/// dicom-auto's implementation class UID (under the UUID root `2.25`).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.214962981440478315338402497406839574917";

/// What the acceptor announces in its A-ASSOCIATE-AC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptOptions {
    max_pdu_length: u32,
    implementation_class_uid: String,
    implementation_version_name: Option<String>,
    identity_response: Option<Vec<u8>>,
    grant_requested_roles: bool,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        AcceptOptions::new()
    }
}

/// The PDU length assumed for a requestor that announces none (dicom-ul's
/// default).
const DEFAULT_PEER_MAX_PDU_LENGTH: u32 = dicom_ul::pdu::DEFAULT_MAX_PDU;

impl AcceptOptions {
    /// A maximum PDU length of 16 KiB, dicom-auto's implementation class UID and
    /// version name, no identity response.
    pub fn new() -> Self {
        AcceptOptions {
            max_pdu_length: 16_384,
            implementation_class_uid: IMPLEMENTATION_CLASS_UID.into(),
            implementation_version_name: Some(format!("DICOM-AUTO-{}", env!("CARGO_PKG_VERSION")))
                .map(|name| name.chars().take(16).collect()),
            identity_response: None,
            grant_requested_roles: false,
        }
    }

    /// The largest PDU we receive (announced in the AC; a longer PDU is refused by
    /// [`ScpAssociation`]'s reads). Clamped to dicom-ul's limits.
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.max_pdu_length = length.clamp(dicom_ul::pdu::MINIMUM_PDU_SIZE, MAXIMUM_PDU_SIZE);
        self
    }

    /// The implementation class UID announced.
    pub fn implementation_class_uid(mut self, uid: impl Into<String>) -> Self {
        self.implementation_class_uid = uid.into();
        self
    }

    /// The implementation version name announced (at most 16 characters; `None`
    /// leaves the item out).
    pub fn implementation_version_name(mut self, name: Option<String>) -> Self {
        self.implementation_version_name = name;
        self
    }

    /// Grants the roles the requestor asks for in its SCP/SCU Role Selection items,
    /// for every SOP class whose presentation context is accepted: a C-GET SCU then
    /// takes the C-STORE sub-operations as SCP, and a Storage Commitment SCP opening
    /// an association to send its N-EVENT-REPORT acts as SCP. Without it no role item
    /// is answered, which leaves the default roles (the requestor is SCU only).
    pub fn grant_requested_roles(mut self) -> Self {
        self.grant_requested_roles = true;
        self
    }

    /// The requestor's user identity was accepted: when it asked for a positive
    /// response, the AC carries the User Identity server response item (type 0x59,
    /// PS3.7 D.3.3.7.2) with `server_response` (empty for the user-name kinds; a
    /// Kerberos server ticket, SAML response or JWT for the others).
    pub fn identity_accepted(mut self, server_response: Vec<u8>) -> Self {
        self.identity_response = Some(server_response);
        self
    }
}

/// What to do with one proposed presentation context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextDecision {
    /// Accept it with this transfer syntax (one of those proposed).
    Accept {
        /// The transfer syntax UID.
        transfer_syntax: String,
    },
    /// Refuse it for this reason (anything but `Acceptance`).
    Refuse(PresentationContextResultReason),
}

/// Accepts the association `request` asked for: sends the A-ASSOCIATE-AC with one
/// result per proposed presentation context (`decide` is called once for each, in
/// order), the maximum PDU length, implementation class UID and version name of
/// `options`, and the identity server response when one applies.
///
/// The AC's AE title fields echo the request's, as PS3.8 9.3.3 asks.
///
/// # Errors
/// The AC cannot be encoded ([`ScpError::Malformed`]: an AE title or UID too long)
/// or sent.
pub fn accept(
    mut stream: ScpStream,
    request: &AssociationRQ,
    options: &AcceptOptions,
    mut decide: impl FnMut(&PresentationContextProposed) -> ContextDecision,
) -> Result<ScpAssociation, ScpError> {
    let contexts: Vec<PresentationContextNegotiated> = request
        .presentation_contexts
        .iter()
        .map(|pc| {
            let abstract_syntax = trim_uid(&pc.abstract_syntax).to_string();
            match decide(pc) {
                ContextDecision::Accept { transfer_syntax } => PresentationContextNegotiated {
                    id: pc.id,
                    reason: PresentationContextResultReason::Acceptance,
                    transfer_syntax: trim_uid(&transfer_syntax).to_string(),
                    abstract_syntax,
                },
                ContextDecision::Refuse(reason) => PresentationContextNegotiated {
                    id: pc.id,
                    reason,
                    // PS3.8 9.3.3.2: not significant when refused.
                    transfer_syntax: "1.2.840.10008.1.2".into(),
                    abstract_syntax,
                },
            }
        })
        .collect();
    let identity = UserIdentity::of_request(request);
    let mut user_variables = vec![
        UserVariableItem::MaxLength(options.max_pdu_length),
        UserVariableItem::ImplementationClassUID(options.implementation_class_uid.clone()),
    ];
    if let Some(name) = &options.implementation_version_name {
        user_variables.push(UserVariableItem::ImplementationVersionName(name.clone()));
    }
    let granted_roles: Vec<(String, RequestorRoles)> = if options.grant_requested_roles {
        request
            .user_variables
            .iter()
            .filter_map(|item| match item {
                UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) => {
                    let uid = trim_uid(uid);
                    contexts
                        .iter()
                        .any(|pc| {
                            pc.reason == PresentationContextResultReason::Acceptance
                                && pc.abstract_syntax == uid
                        })
                        .then(|| (uid.to_string(), *roles))
                }
                _ => None,
            })
            .collect()
    } else {
        Vec::new()
    };
    user_variables.extend(
        granted_roles
            .iter()
            .map(|(uid, roles)| UserVariableItem::ScuScpRoleSelectionSubItem(uid.clone(), *roles)),
    );
    if let (Some(response), Some(identity)) = (&options.identity_response, &identity)
        && identity.positive_response_requested()
    {
        user_variables.push(identity_server_response(response)?);
    }
    let ac = AssociationAC {
        protocol_version: 1,
        calling_ae_title: request.calling_ae_title.clone(),
        called_ae_title: request.called_ae_title.clone(),
        application_context_name: request.application_context_name.clone(),
        presentation_contexts: contexts
            .iter()
            .map(|pc| PresentationContextResult {
                id: pc.id,
                reason: pc.reason.clone(),
                transfer_syntax: pc.transfer_syntax.clone(),
            })
            .collect(),
        user_variables,
    };
    let mut out = Vec::with_capacity(512);
    dicom_ul::pdu::write_pdu(&mut out, &Pdu::AssociationAC(ac))
        .map_err(|e| ScpError::Malformed(format!("cannot encode the A-ASSOCIATE-AC: {e}")))?;
    stream.write_all(&out).map_err(ScpError::from_io)?;
    stream.flush().map_err(ScpError::from_io)?;
    let peer_max_pdu_length = request
        .user_variables
        .iter()
        .find_map(|item| match item {
            UserVariableItem::MaxLength(0) => Some(MAXIMUM_PDU_SIZE),
            UserVariableItem::MaxLength(length) => Some((*length).min(MAXIMUM_PDU_SIZE)),
            _ => None,
        })
        .unwrap_or(DEFAULT_PEER_MAX_PDU_LENGTH);
    Ok(ScpAssociation::new(
        stream,
        contexts,
        options.max_pdu_length,
        peer_max_pdu_length,
        trim_ae(&request.calling_ae_title),
        trim_ae(&request.called_ae_title),
        identity,
    )
    .with_requestor_scp_roles(
        granted_roles
            .into_iter()
            .filter(|(_, roles)| roles.scp)
            .map(|(uid, _)| uid)
            .collect(),
    ))
}

/// The User Identity server response sub-item (PS3.7 D.3.3.7.2): dicom-ul has no
/// variant for it, so it goes as an `Unknown` item of type 0x59 whose data is the
/// 2-byte server response length and the response.
fn identity_server_response(response: &[u8]) -> Result<UserVariableItem, ScpError> {
    let length = u16::try_from(response.len()).map_err(|_| {
        ScpError::Malformed(format!(
            "identity server response of {} bytes does not fit its 2-byte length",
            response.len()
        ))
    })?;
    let mut data = Vec::with_capacity(2 + response.len());
    data.extend_from_slice(&length.to_be_bytes());
    data.extend_from_slice(response);
    Ok(UserVariableItem::Unknown(0x59, data))
}

fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

fn trim_ae(title: &str) -> String {
    title.trim().to_string()
}
