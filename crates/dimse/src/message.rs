//! DIMSE messages over P-DATA: reassembling a command and its data set from PDVs,
//! and sending them back out as PDUs that respect the peer's maximum length.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};

use dicom_ul::association::{CloseSocket, SyncAssociation};
use dicom_ul::pdu::{AbortRQSource, PDataValue, PDataValueType};
use dicom_ul::{ClientAssociation, Pdu, ServerAssociation};

use crate::command::{Command, CommandError};

/// Bytes of a P-DATA-TF PDU header: type, reserved, 4-byte length.
const PDU_HEADER_LEN: usize = 6;
/// Bytes of a PDV item header: 4-byte length, context ID, message control header.
const PDV_HEADER_LEN: usize = 6;
/// Largest data set accepted by default: big enough for any multi-frame study
/// instance in practice, small enough that a hostile stream cannot exhaust memory.
pub const DEFAULT_MAX_DATA_SET_LEN: usize = 2 << 30;

/// One complete DIMSE message: a command and, when the command says so, its data set
/// (still encoded in the presentation context's transfer syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The presentation context the message travelled on.
    pub presentation_context_id: u8,
    /// The decoded command set.
    pub command: Command,
    /// The encoded data set or identifier, when one followed.
    pub data: Option<Vec<u8>>,
}

/// What arrived on an association when a message was expected.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// A complete message.
    Message(Message),
    /// The peer asked to release the association (A-RELEASE-RQ): answer with
    /// `Pdu::ReleaseRP` and close.
    ReleaseRequested,
    /// The peer aborted the association (A-ABORT).
    Aborted(AbortRQSource),
}

/// Why a message could not be received or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DimseError {
    /// The peer said nothing within the configured timeout.
    #[error("timed out waiting for the peer")]
    Timeout,
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    ConnectionClosed,
    /// A network error other than a timeout or a close.
    #[error("network error: {0}")]
    Io(#[source] io::Error),
    /// dicom-ul reported an error below the DIMSE layer (malformed PDU, PDU too long...).
    #[error("association error: {0}")]
    Association(#[source] Box<dicom_ul::association::Error>),
    /// The peer broke the DIMSE message rules.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The command set could not be decoded.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The peer aborted the association (A-ABORT) while we waited for a message.
    #[error("association aborted by the peer ({0})")]
    PeerAborted(String),
    /// The peer asked to release the association instead of answering.
    #[error("the peer released the association instead of answering")]
    PeerReleased,
    /// The association has no accepted presentation context for what was asked.
    #[error("the peer did not accept {abstract_syntax} on this association")]
    ContextNotAccepted {
        /// The abstract syntax (SOP class UID).
        abstract_syntax: String,
    },
    /// The data set is larger than the reader accepts.
    #[error("data set larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl DimseError {
    /// Whether this error is a timeout (the peer may still be working).
    pub fn is_timeout(&self) -> bool {
        matches!(self, DimseError::Timeout)
    }

    /// Classifies an error from dicom-ul. Timeouts on sync sockets surface as
    /// `WouldBlock`/`TimedOut` I/O errors deep in the chain, not as `Error::Timeout`,
    /// so the whole source chain is searched.
    pub fn from_association(err: dicom_ul::association::Error) -> Self {
        if let dicom_ul::association::Error::ConnectionClosed { .. } = err {
            return DimseError::ConnectionClosed;
        }
        if let dicom_ul::association::Error::Timeout { .. } = err {
            return DimseError::Timeout;
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = source {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                match io.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        return DimseError::Timeout;
                    }
                    io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => return DimseError::ConnectionClosed,
                    _ => {}
                }
            }
            source = e.source();
        }
        DimseError::Association(Box::new(err))
    }

    fn from_io(err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => DimseError::Timeout,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => DimseError::ConnectionClosed,
            _ => DimseError::Io(err),
        }
    }
}

/// What the DIMSE message layer needs of an association: PDUs in and out, the
/// stream that fragments are written to, and the peer's maximum PDU length.
///
/// Implemented for dicom-ul's client and server associations over any stream (plain
/// TCP or TLS) and for dicom-auto's own acceptor association, so [`MessageReader`]
/// and the `send_*` functions serve every side of the workspace.
pub trait PduChannel {
    /// Receives the next PDU, waiting as long as the stream's read timeout allows.
    ///
    /// # Errors
    /// [`DimseError::Timeout`], [`DimseError::ConnectionClosed`], or a malformed PDU.
    fn receive_pdu(&mut self) -> Result<Pdu, DimseError>;

    /// Sends one PDU.
    ///
    /// # Errors
    /// The stream's error.
    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError>;

    /// The peer's maximum PDU length (0: no limit).
    fn peer_max_pdu_length(&self) -> u32;

    /// The byte stream under the association, which fragments are written to
    /// directly (without building a `Pdu` per fragment).
    fn stream(&mut self) -> &mut dyn Write;
}

impl<S: Read + Write + CloseSocket + 'static> PduChannel for ClientAssociation<S> {
    fn receive_pdu(&mut self) -> Result<Pdu, DimseError> {
        SyncAssociation::receive(self).map_err(DimseError::from_association)
    }

    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError> {
        SyncAssociation::send(self, pdu).map_err(DimseError::from_association)
    }

    fn peer_max_pdu_length(&self) -> u32 {
        dicom_ul::association::Association::peer_max_pdu_length(self)
    }

    fn stream(&mut self) -> &mut dyn Write {
        self.inner_stream()
    }
}

impl<S: Read + Write + CloseSocket + 'static> PduChannel for ServerAssociation<S> {
    fn receive_pdu(&mut self) -> Result<Pdu, DimseError> {
        SyncAssociation::receive(self).map_err(DimseError::from_association)
    }

    fn send_pdu(&mut self, pdu: &Pdu) -> Result<(), DimseError> {
        SyncAssociation::send(self, pdu).map_err(DimseError::from_association)
    }

    fn peer_max_pdu_length(&self) -> u32 {
        dicom_ul::association::Association::peer_max_pdu_length(self)
    }

    fn stream(&mut self) -> &mut dyn Write {
        self.inner_stream()
    }
}

/// Reassembles DIMSE messages from the PDUs of one association.
///
/// Keep one reader per association: a single P-DATA PDU may carry the end of one
/// message and the start of the next, and the reader keeps what it has not used yet.
/// It accepts a command and its data set in one PDU or in many, as PS3.8 allows.
#[derive(Debug)]
pub struct MessageReader {
    pending: VecDeque<PDataValue>,
    max_data_set_len: usize,
}

impl Default for MessageReader {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageReader {
    /// A reader accepting data sets up to [`DEFAULT_MAX_DATA_SET_LEN`].
    pub fn new() -> Self {
        MessageReader {
            pending: VecDeque::new(),
            max_data_set_len: DEFAULT_MAX_DATA_SET_LEN,
        }
    }

    /// Sets the largest data set this reader accepts before failing with
    /// [`DimseError::TooLarge`].
    pub fn with_max_data_set_len(mut self, limit: usize) -> Self {
        self.max_data_set_len = limit;
        self
    }

    /// Receives the next message, or the release or abort that ends the association.
    ///
    /// Waits as long as the association's read timeout allows per PDU.
    pub fn receive<A: PduChannel>(&mut self, association: &mut A) -> Result<Incoming, DimseError> {
        let mut context_id: Option<u8> = None;
        let mut command_bytes: Vec<u8> = Vec::new();
        let mut command: Option<Command> = None;
        let mut data: Vec<u8> = Vec::new();
        loop {
            while let Some(pdv) = self.pending.pop_front() {
                match context_id {
                    None => context_id = Some(pdv.presentation_context_id),
                    Some(id) if id != pdv.presentation_context_id => {
                        return Err(DimseError::Protocol(format!(
                            "message started on presentation context {id} continued on {}",
                            pdv.presentation_context_id
                        )));
                    }
                    Some(_) => {}
                }
                match pdv.value_type {
                    PDataValueType::Command => {
                        if command.is_some() {
                            return Err(DimseError::Protocol(
                                "a second command arrived before the data set of the first".into(),
                            ));
                        }
                        command_bytes.extend_from_slice(&pdv.data);
                        if pdv.is_last {
                            let decoded = Command::decode(&command_bytes)?;
                            if !decoded.has_data_set {
                                return Ok(Incoming::Message(Message {
                                    presentation_context_id: pdv.presentation_context_id,
                                    command: decoded,
                                    data: None,
                                }));
                            }
                            command = Some(decoded);
                        }
                    }
                    PDataValueType::Data => {
                        if command.is_none() {
                            return Err(DimseError::Protocol(
                                "data set fragment arrived before its command was complete".into(),
                            ));
                        }
                        if data.len() + pdv.data.len() > self.max_data_set_len {
                            return Err(DimseError::TooLarge {
                                limit: self.max_data_set_len,
                            });
                        }
                        if data.is_empty() {
                            // The first fragment's buffer becomes the data set: no copy for
                            // the common single-PDU case.
                            data = pdv.data;
                        } else {
                            data.extend_from_slice(&pdv.data);
                        }
                        if pdv.is_last {
                            return Ok(Incoming::Message(Message {
                                presentation_context_id: pdv.presentation_context_id,
                                command: command.take().expect("checked above"),
                                data: Some(data),
                            }));
                        }
                    }
                }
            }
            let pdu = association.receive_pdu()?;
            match pdu {
                Pdu::PData { data } => self.pending.extend(data),
                Pdu::ReleaseRQ if context_id.is_none() => return Ok(Incoming::ReleaseRequested),
                Pdu::ReleaseRQ => {
                    return Err(DimseError::Protocol(
                        "release requested in the middle of a message".into(),
                    ));
                }
                Pdu::AbortRQ { source } => return Ok(Incoming::Aborted(source)),
                other => {
                    return Err(DimseError::Protocol(format!(
                        "unexpected {} while waiting for a DIMSE message",
                        pdu_name(&other)
                    )));
                }
            }
        }
    }
}

/// A short name for a PDU, for error messages.
pub fn pdu_name(pdu: &Pdu) -> &'static str {
    match pdu {
        Pdu::AssociationRQ(_) => "A-ASSOCIATE-RQ",
        Pdu::AssociationAC(_) => "A-ASSOCIATE-AC",
        Pdu::AssociationRJ(_) => "A-ASSOCIATE-RJ",
        Pdu::PData { .. } => "P-DATA-TF",
        Pdu::ReleaseRQ => "A-RELEASE-RQ",
        Pdu::ReleaseRP => "A-RELEASE-RP",
        Pdu::AbortRQ { .. } => "A-ABORT",
        Pdu::Unknown { .. } => "unknown PDU",
    }
}

/// Sends a command set in one PDV, as DCMTK does: some SCPs mishandle a command
/// and its data set sharing a PDU.
pub fn send_command<A: PduChannel>(
    association: &mut A,
    presentation_context_id: u8,
    command: &Command,
) -> Result<(), DimseError> {
    send_fragments(
        association,
        presentation_context_id,
        PDataValueType::Command,
        &command.encode(),
        &[],
    )
}

/// Sends an encoded data set as P-DATA PDUs no larger than the peer accepts.
///
/// Writes straight to the socket from `data` through one reusable PDU buffer rather
/// than building a `Pdu` (which would copy every fragment into a new `Vec`), and
/// sidesteps `PDataWriter`'s `Ok(0)` quirk.
pub fn send_data<A: PduChannel>(
    association: &mut A,
    presentation_context_id: u8,
    data: &[u8],
) -> Result<(), DimseError> {
    send_data_patched(association, presentation_context_id, data, &[])
}

/// A replacement of `bytes.len()` bytes at `offset` in a payload, applied while the
/// payload is cut into PDUs.
///
/// Lets a sender encode a data set once and still give every send its own UIDs:
/// values of fixed length are overwritten on their way into the PDU buffer, which
/// costs no copy of the whole data set per send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Patch<'a> {
    /// Where the replacement starts in the payload.
    pub offset: usize,
    /// The bytes written over the payload's from `offset`.
    pub bytes: &'a [u8],
}

/// Sends an encoded data set like [`send_data`], with `patches` applied to what goes
/// on the wire (the payload itself is not modified).
///
/// # Errors
/// [`DimseError::Protocol`] when a patch reaches past the end of the payload (nothing
/// is sent then); otherwise as [`send_data`].
pub fn send_data_patched<A: PduChannel>(
    association: &mut A,
    presentation_context_id: u8,
    data: &[u8],
    patches: &[Patch<'_>],
) -> Result<(), DimseError> {
    send_fragments(
        association,
        presentation_context_id,
        PDataValueType::Data,
        data,
        patches,
    )
}

fn send_fragments<A: PduChannel>(
    association: &mut A,
    presentation_context_id: u8,
    value_type: PDataValueType,
    payload: &[u8],
    patches: &[Patch<'_>],
) -> Result<(), DimseError> {
    let max = max_pdv_payload(association.peer_max_pdu_length());
    write_fragments_patched(
        association.stream(),
        presentation_context_id,
        value_type,
        payload,
        patches,
        max,
    )
}

/// Sends a command and, when given, its data set.
pub fn send_message<A: PduChannel>(
    association: &mut A,
    presentation_context_id: u8,
    command: &Command,
    data: Option<&[u8]>,
) -> Result<(), DimseError> {
    send_command(association, presentation_context_id, command)?;
    if let Some(data) = data {
        send_data(association, presentation_context_id, data)?;
    }
    Ok(())
}

/// The largest PDV payload within a peer's maximum PDU length (which counts the PDU
/// body, not its 6-byte header). 0 means "no limit"; dicom-ul never sends more than
/// its own maximum PDU size anyway.
pub fn max_pdv_payload(peer_max_pdu_length: u32) -> usize {
    let max = if peer_max_pdu_length == 0 {
        dicom_ul::pdu::MAXIMUM_PDU_SIZE
    } else {
        peer_max_pdu_length
    };
    (max as usize).saturating_sub(PDV_HEADER_LEN).max(1)
}

/// Writes `payload` as one or more P-DATA-TF PDUs of one PDV each, the last marked so.
pub fn write_fragments<W: Write + ?Sized>(
    stream: &mut W,
    presentation_context_id: u8,
    value_type: PDataValueType,
    payload: &[u8],
    max_pdv_payload: usize,
) -> Result<(), DimseError> {
    write_fragments_patched(
        stream,
        presentation_context_id,
        value_type,
        payload,
        &[],
        max_pdv_payload,
    )
}

/// [`write_fragments`] with [`Patch`]es applied to the bytes written.
///
/// # Errors
/// [`DimseError::Protocol`] when a patch reaches past the end of the payload (checked
/// before anything is written), or the stream's error.
pub fn write_fragments_patched<W: Write + ?Sized>(
    stream: &mut W,
    presentation_context_id: u8,
    value_type: PDataValueType,
    payload: &[u8],
    patches: &[Patch<'_>],
    max_pdv_payload: usize,
) -> Result<(), DimseError> {
    if let Some(bad) = patches.iter().find(|p| {
        p.offset
            .checked_add(p.bytes.len())
            .is_none_or(|end| end > payload.len())
    }) {
        return Err(DimseError::Protocol(format!(
            "patch of {} bytes at offset {} lies outside a payload of {} bytes",
            bad.bytes.len(),
            bad.offset,
            payload.len()
        )));
    }
    let control_base: u8 = match value_type {
        PDataValueType::Command => 0x01,
        PDataValueType::Data => 0x00,
    };
    let chunk_len = max_pdv_payload.max(1);
    if payload.is_empty() {
        // An empty data set is still one (empty) last fragment.
        let mut buffer = Vec::with_capacity(PDU_HEADER_LEN + PDV_HEADER_LEN);
        write_one(
            &mut buffer,
            presentation_context_id,
            control_base | 0x02,
            &[],
        );
        stream.write_all(&buffer).map_err(DimseError::from_io)?;
        return stream.flush().map_err(DimseError::from_io);
    }
    // Fragments go out straight from the payload, a header and a slice each, many per
    // system call: no copy of the data, and a few calls per megabyte whatever the
    // peer's PDU size. Only a fragment that a patch touches is copied, to patch it.
    let mut batch = FragmentBatch::new(presentation_context_id);
    let mut patched = Vec::new();
    let mut chunk_start = 0;
    let mut chunks = payload.chunks(chunk_len).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let control = control_base | if last { 0x02 } else { 0x00 };
        let chunk_end = chunk_start + chunk.len();
        let touched = patches
            .iter()
            .any(|p| p.offset < chunk_end && p.offset + p.bytes.len() > chunk_start);
        if touched {
            batch.write_to(stream)?;
            patched.clear();
            write_one(&mut patched, presentation_context_id, control, chunk);
            let chunk_in_buffer = patched.len() - chunk.len();
            apply_patches(&mut patched[chunk_in_buffer..], chunk_start, patches);
            stream.write_all(&patched).map_err(DimseError::from_io)?;
        } else {
            if batch.is_full() {
                batch.write_to(stream)?;
            }
            batch.push(control, chunk);
        }
        chunk_start = chunk_end;
    }
    batch.write_to(stream)?;
    // A TLS stream may hold the last record back until flushed; a TcpStream's flush
    // does nothing.
    stream.flush().map_err(DimseError::from_io)
}

/// P-DATA-TF fragments waiting to be written with one vectored write: each a PDU and
/// PDV header and a slice of the payload.
struct FragmentBatch<'p> {
    presentation_context_id: u8,
    headers: [[u8; PDU_HEADER_LEN + PDV_HEADER_LEN]; FragmentBatch::MAX],
    chunks: [&'p [u8]; FragmentBatch::MAX],
    len: usize,
}

impl<'p> FragmentBatch<'p> {
    /// Fragments per write: 32 of 16 KiB (DCMTK's default PDU) is half a megabyte.
    const MAX: usize = 32;

    fn new(presentation_context_id: u8) -> Self {
        FragmentBatch {
            presentation_context_id,
            headers: [[0; PDU_HEADER_LEN + PDV_HEADER_LEN]; FragmentBatch::MAX],
            chunks: [&[]; FragmentBatch::MAX],
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == FragmentBatch::MAX
    }

    fn push(&mut self, control: u8, chunk: &'p [u8]) {
        let item_len = (chunk.len() + 2) as u32;
        let pdu_len = item_len + 4;
        let header = &mut self.headers[self.len];
        header[..2].copy_from_slice(&[0x04, 0x00]);
        header[2..6].copy_from_slice(&pdu_len.to_be_bytes());
        header[6..10].copy_from_slice(&item_len.to_be_bytes());
        header[10] = self.presentation_context_id;
        header[11] = control;
        self.chunks[self.len] = chunk;
        self.len += 1;
    }

    /// Writes the waiting fragments, all of them, and empties the batch.
    fn write_to<W: Write + ?Sized>(&mut self, stream: &mut W) -> Result<(), DimseError> {
        let mut slices: [IoSlice<'_>; 2 * FragmentBatch::MAX] =
            [IoSlice::new(&[]); 2 * FragmentBatch::MAX];
        for i in 0..self.len {
            slices[2 * i] = IoSlice::new(&self.headers[i]);
            slices[2 * i + 1] = IoSlice::new(self.chunks[i]);
        }
        let mut pending = &mut slices[..2 * self.len];
        self.len = 0;
        while !pending.is_empty() {
            match stream.write_vectored(pending) {
                Ok(0) => {
                    return Err(DimseError::from_io(std::io::Error::from(
                        std::io::ErrorKind::WriteZero,
                    )));
                }
                Ok(written) => IoSlice::advance_slices(&mut pending, written),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DimseError::from_io(e)),
            }
        }
        Ok(())
    }
}

/// Overwrites the parts of `chunk` (which starts at `chunk_start` in the payload)
/// that the patches cover; a patch may straddle chunks.
fn apply_patches(chunk: &mut [u8], chunk_start: usize, patches: &[Patch<'_>]) {
    let chunk_end = chunk_start + chunk.len();
    for patch in patches {
        let patch_end = patch.offset + patch.bytes.len();
        let from = patch.offset.max(chunk_start);
        let to = patch_end.min(chunk_end);
        if from < to {
            chunk[from - chunk_start..to - chunk_start]
                .copy_from_slice(&patch.bytes[from - patch.offset..to - patch.offset]);
        }
    }
}

fn write_one(buffer: &mut Vec<u8>, presentation_context_id: u8, control: u8, chunk: &[u8]) {
    let item_len = (chunk.len() + 2) as u32;
    let pdu_len = item_len + 4;
    buffer.extend_from_slice(&[0x04, 0x00]);
    buffer.extend_from_slice(&pdu_len.to_be_bytes());
    buffer.extend_from_slice(&item_len.to_be_bytes());
    buffer.push(presentation_context_id);
    buffer.push(control);
    buffer.extend_from_slice(chunk);
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::read_pdu;
    use std::io::Cursor;

    fn parse_all(bytes: &[u8]) -> Vec<PDataValue> {
        let mut cursor = Cursor::new(bytes);
        let mut out = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            match read_pdu(&mut cursor, 1 << 20, true).unwrap().unwrap() {
                Pdu::PData { data } => out.extend(data),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    #[test]
    fn fragments_are_valid_pdus_that_dicom_ul_parses() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut wire = Vec::new();
        write_fragments(&mut wire, 3, PDataValueType::Data, &payload, 4090).unwrap();
        let pdvs = parse_all(&wire);
        assert_eq!(pdvs.len(), 3);
        assert!(pdvs.iter().all(|p| p.presentation_context_id == 3));
        assert_eq!(pdvs.iter().filter(|p| p.is_last).count(), 1);
        assert!(pdvs.last().unwrap().is_last);
        let joined: Vec<u8> = pdvs.into_iter().flat_map(|p| p.data).collect();
        assert_eq!(joined, payload);
    }

    #[test]
    fn no_pdu_exceeds_the_peer_maximum() {
        let peer_max = 16_384u32;
        let payload = vec![7u8; 100_000];
        let mut wire = Vec::new();
        write_fragments(
            &mut wire,
            1,
            PDataValueType::Data,
            &payload,
            max_pdv_payload(peer_max),
        )
        .unwrap();
        let mut offset = 0;
        while offset < wire.len() {
            let len = u32::from_be_bytes(wire[offset + 2..offset + 6].try_into().unwrap());
            assert!(len <= peer_max, "PDU body {len} > {peer_max}");
            offset += 6 + len as usize;
        }
    }

    #[test]
    fn command_fragments_carry_the_command_bit() {
        let mut wire = Vec::new();
        let cmd = Command::c_echo_rq(5).encode();
        write_fragments(&mut wire, 1, PDataValueType::Command, &cmd, 1000).unwrap();
        let pdvs = parse_all(&wire);
        assert_eq!(pdvs.len(), 1);
        assert_eq!(pdvs[0].value_type, PDataValueType::Command);
        assert!(pdvs[0].is_last);
        assert_eq!(
            Command::decode(&pdvs[0].data).unwrap(),
            Command::c_echo_rq(5)
        );
    }

    #[test]
    fn empty_payload_is_one_last_fragment() {
        let mut wire = Vec::new();
        write_fragments(&mut wire, 1, PDataValueType::Data, &[], 1000).unwrap();
        let pdvs = parse_all(&wire);
        assert_eq!(pdvs.len(), 1);
        assert!(pdvs[0].is_last && pdvs[0].data.is_empty());
    }

    #[test]
    fn patches_reach_the_wire_even_across_fragment_boundaries() {
        let payload: Vec<u8> = (0..1_000u32).map(|i| (i % 251) as u8).collect();
        let straddling = [0xEE; 20];
        let patches = [
            Patch {
                offset: 0,
                bytes: b"AB",
            },
            Patch {
                offset: 90,
                bytes: &straddling,
            }, // crosses the 100-byte boundary
            Patch {
                offset: 998,
                bytes: b"YZ",
            },
        ];
        let mut wire = Vec::new();
        write_fragments_patched(&mut wire, 1, PDataValueType::Data, &payload, &patches, 100)
            .unwrap();
        let mut expected = payload.clone();
        expected[0..2].copy_from_slice(b"AB");
        expected[90..110].copy_from_slice(&straddling);
        expected[998..1000].copy_from_slice(b"YZ");
        let joined: Vec<u8> = parse_all(&wire).into_iter().flat_map(|p| p.data).collect();
        assert_eq!(joined, expected);
        assert_eq!(payload[0], 0, "the payload itself is left untouched");
    }

    /// A stream taking at most 7 bytes per write, vectored or not, as a congested
    /// socket may.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut left = 7;
            for buf in bufs {
                let n = buf.len().min(left);
                self.0.extend_from_slice(&buf[..n]);
                left -= n;
                if left == 0 {
                    break;
                }
            }
            Ok(7 - left)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_vectored_writes_over_many_batches_still_give_every_byte_in_order() {
        // 100 fragments: several batches, a patch in the middle of one of them.
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let patches = [Patch {
            offset: 5_050,
            bytes: b"PATCH",
        }];
        let mut wire = Trickle(Vec::new());
        write_fragments_patched(&mut wire, 5, PDataValueType::Data, &payload, &patches, 100)
            .unwrap();
        let pdvs = parse_all(&wire.0);
        assert_eq!(pdvs.len(), 100);
        assert_eq!(pdvs.iter().filter(|p| p.is_last).count(), 1);
        assert!(pdvs.last().unwrap().is_last);
        let mut expected = payload.clone();
        expected[5_050..5_055].copy_from_slice(b"PATCH");
        let joined: Vec<u8> = pdvs.into_iter().flat_map(|p| p.data).collect();
        assert_eq!(joined, expected);
    }

    #[test]
    fn a_patch_past_the_end_is_refused_before_anything_is_written() {
        let mut wire = Vec::new();
        let patches = [Patch {
            offset: 9,
            bytes: b"xy",
        }];
        let err =
            write_fragments_patched(&mut wire, 1, PDataValueType::Data, &[0; 10], &patches, 4)
                .unwrap_err();
        assert!(matches!(err, DimseError::Protocol(_)), "{err}");
        assert!(wire.is_empty());
    }

    #[test]
    fn timeouts_are_recognised_deep_in_the_chain() {
        let err = DimseError::from_io(io::Error::from(io::ErrorKind::WouldBlock));
        assert!(err.is_timeout());
        let err = DimseError::from_io(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(matches!(err, DimseError::ConnectionClosed));
    }
}
