//! An accepted association: the negotiated contexts, the peer's limits and
//! identity, and PDUs in and out for the DIMSE layer.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};

use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AbortRQSource, PresentationContextNegotiated, PresentationContextResultReason,
};

use super::error::ScpError;
use super::pdu_reader::PduReader;
use super::stream::ScpStream;
use crate::identity::UserIdentity;
use crate::message::{DimseError, PduChannel};
use crate::tls::TlsSession;

/// Read-ahead of the buffered reader: PDU and PDV headers come from it; data
/// larger than this is read straight into its PDV's buffer.
const READ_AHEAD: usize = 16 * 1024;

/// An association accepted by [`accept`](super::accept).
///
/// Implements [`PduChannel`]: [`receive_pdu`](PduChannel::receive_pdu) refuses a
/// PDU longer than our maximum PDU length, sends are cut to the peer's.
#[derive(Debug)]
pub struct ScpAssociation {
    reader: BufReader<ScpStream>,
    pdus: PduReader,
    write_buffer: Vec<u8>,
    presentation_contexts: Vec<PresentationContextNegotiated>,
    peer_max_pdu_length: u32,
    calling_ae_title: String,
    called_ae_title: String,
    user_identity: Option<UserIdentity>,
    tls_session: Option<TlsSession>,
    requestor_scp_roles: Vec<String>,
}

impl ScpAssociation {
    pub(super) fn new(
        stream: ScpStream,
        presentation_contexts: Vec<PresentationContextNegotiated>,
        max_pdu_length: u32,
        peer_max_pdu_length: u32,
        calling_ae_title: String,
        called_ae_title: String,
        user_identity: Option<UserIdentity>,
    ) -> Self {
        let tls_session = stream.tls_session();
        ScpAssociation {
            reader: BufReader::with_capacity(READ_AHEAD, stream),
            pdus: PduReader::new(max_pdu_length),
            write_buffer: Vec::new(),
            presentation_contexts,
            peer_max_pdu_length,
            calling_ae_title,
            called_ae_title,
            user_identity,
            tls_session,
            requestor_scp_roles: Vec::new(),
        }
    }

    /// Every proposed presentation context with its result (accepted or not).
    pub fn presentation_contexts(&self) -> &[PresentationContextNegotiated] {
        &self.presentation_contexts
    }

    /// The accepted presentation context with this ID.
    pub fn accepted_context(&self, id: u8) -> Option<&PresentationContextNegotiated> {
        self.presentation_contexts
            .iter()
            .find(|pc| pc.id == id && pc.reason == PresentationContextResultReason::Acceptance)
    }

    /// The SOP classes for which the requestor was granted the SCP role.
    pub(super) fn with_requestor_scp_roles(mut self, sop_classes: Vec<String>) -> Self {
        self.requestor_scp_roles = sop_classes;
        self
    }

    /// Whether the requestor was granted the SCP role for `sop_class_uid` (see
    /// [`AcceptOptions::grant_requested_roles`](super::AcceptOptions::grant_requested_roles)):
    /// a C-GET's C-STORE sub-operations for that class may go to it.
    pub fn requestor_is_scp(&self, sop_class_uid: &str) -> bool {
        self.requestor_scp_roles
            .iter()
            .any(|uid| uid == sop_class_uid)
    }

    /// The requestor's AE title (trimmed).
    pub fn calling_ae_title(&self) -> &str {
        &self.calling_ae_title
    }

    /// The AE title the requestor called: ours (trimmed).
    pub fn called_ae_title(&self) -> &str {
        &self.called_ae_title
    }

    /// The requestor's user identity, if it sent one.
    pub fn user_identity(&self) -> Option<&UserIdentity> {
        self.user_identity.as_ref()
    }

    /// The largest PDU we receive.
    pub fn max_pdu_length(&self) -> u32 {
        self.pdus.max_pdu_length()
    }

    /// What the TLS handshake negotiated; `None` on plain TCP.
    pub fn tls_session(&self) -> Option<&TlsSession> {
        self.tls_session.as_ref()
    }

    /// The TCP socket (timeouts, shutdown, addresses).
    pub fn tcp(&self) -> &TcpStream {
        self.reader.get_ref().tcp()
    }

    /// Whether input is waiting (bytes already read ahead, decrypted TLS data, or
    /// data or a close on the socket), so that a receive will not block for long.
    /// Never blocks: for checking for a C-CANCEL between C-FIND responses.
    pub fn input_waiting(&mut self) -> bool {
        !self.reader.buffer().is_empty() || self.reader.get_mut().input_waiting()
    }

    /// Sends an A-ABORT and shuts the connection down (errors ignored: the peer
    /// may be gone).
    pub fn abort(&mut self, source: AbortRQSource) {
        let _ = self.send_pdu(&Pdu::AbortRQ { source });
        self.reader.get_mut().close_write();
        let _ = self.tcp().shutdown(Shutdown::Both);
    }

    /// Receives one PDU as [`ScpError`] (the [`PduChannel`] method gives
    /// [`DimseError`]).
    ///
    /// # Errors
    /// As [`PduReader::read`].
    pub fn receive(&mut self) -> Result<Pdu, ScpError> {
        self.pdus.read(&mut self.reader)
    }
}

impl PduChannel for ScpAssociation {
    fn receive_pdu(&mut self) -> Result<Pdu, DimseError> {
        self.receive().map_err(DimseError::from)
    }

    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError> {
        self.write_buffer.clear();
        dicom_ul::pdu::write_pdu(&mut self.write_buffer, pdu)
            .map_err(|e| DimseError::Protocol(format!("cannot encode a PDU: {e}")))?;
        let stream = self.reader.get_mut();
        stream
            .write_all(&self.write_buffer)
            .and_then(|()| stream.flush())
            .map_err(|e| DimseError::from(ScpError::from_io(e)))
    }

    fn peer_max_pdu_length(&self) -> u32 {
        self.peer_max_pdu_length
    }

    fn stream(&mut self) -> &mut dyn Write {
        self.reader.get_mut()
    }

    /// P-DATA read straight into the message's buffers through the read-ahead: what
    /// the stream leaves there is where [`receive`](Self::receive) looks first.
    fn pdu_stream(&mut self) -> Option<crate::message::PduStream<'_>> {
        let max_pdu_length = self.pdus.max_pdu_length();
        Some(crate::message::PduStream::new(
            Box::new(&mut self.reader),
            max_pdu_length,
        ))
    }
}
