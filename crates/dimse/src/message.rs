//! DIMSE messages over P-DATA: reassembling a command and its data set from PDVs,
//! and sending them back out as PDUs that respect the peer's maximum length.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};

use bytes::{Buf, BytesMut};
use dicom_ul::association::{Association, CloseSocket, SyncAssociation};
use dicom_ul::pdu::{AbortRQSource, MAXIMUM_PDU_SIZE, PDataValue, PDataValueType};
use dicom_ul::{ClientAssociation, Pdu, ServerAssociation};

use crate::command::{Command, CommandError};

/// Bytes of a P-DATA-TF PDU header: type, reserved, 4-byte length.
const PDU_HEADER_LEN: usize = 6;
/// Bytes of a PDV item header: 4-byte length, context ID, message control header.
const PDV_HEADER_LEN: usize = 6;
/// The bytes before each fragment's payload: a PDU header and a PDV item header.
pub(crate) const FRAGMENT_HEADER_LEN: usize = PDU_HEADER_LEN + PDV_HEADER_LEN;
/// PDU type of P-DATA-TF.
const P_DATA_TF: u8 = 0x04;
/// Read-ahead of [`ReadAhead`]: PDU and PDV headers and small PDVs come through it,
/// larger reads go straight from the socket into the message's buffer.
const READ_AHEAD: usize = 4096;
/// Largest data set accepted by default: big enough for any multi-frame study
/// instance in practice, small enough that a hostile stream cannot exhaust memory.
pub const DEFAULT_MAX_DATA_SET_LEN: usize = 2 << 30;
/// Unused capacity above which a received data set's buffer is shrunk (the size
/// hint overshot).
const SHRINK_ABOVE: usize = 1 << 20;

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
    /// The data set being streamed could not be read from its source (a file): the
    /// message is cut short, so the association must not be used again.
    #[error("reading the data set to send failed: {0}")]
    Source(#[source] io::Error),
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

    /// The byte stream PDUs arrive on, for [`MessageReader`] to read P-DATA straight
    /// into a message's own buffers (no `Pdu`, no `Vec` per PDV). `None`, the
    /// default: every PDU comes through [`receive_pdu`](Self::receive_pdu).
    ///
    /// A channel that returns a stream once must return one every time: the reader
    /// keeps its place inside a P-DATA-TF PDU between messages.
    fn pdu_stream(&mut self) -> Option<PduStream<'_>> {
        None
    }
}

/// The stream a [`PduChannel`] lends [`MessageReader`] to read PDUs from.
pub struct PduStream<'a> {
    reader: Box<dyn Read + 'a>,
    max_pdu_length: u32,
}

impl std::fmt::Debug for PduStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PduStream")
            .field("max_pdu_length", &self.max_pdu_length)
            .finish_non_exhaustive()
    }
}

impl<'a> PduStream<'a> {
    /// PDUs read from `reader` (which must yield first any bytes the association
    /// read ahead), each refused when its body is longer than `max_pdu_length`.
    pub fn new(reader: Box<dyn Read + 'a>, max_pdu_length: u32) -> Self {
        PduStream {
            reader,
            max_pdu_length,
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), DimseError> {
        self.reader.read_exact(buf).map_err(DimseError::from_io)
    }
}

/// A dicom-ul sync association's stream read through the buffer dicom-ul reads
/// ahead into: bytes it left there come first, and bytes read ahead here stay
/// there, where its own `receive` (the release) finds them.
struct ReadAhead<'a, S> {
    stream: &'a mut S,
    ahead: &'a mut BytesMut,
}

impl<S: Read> Read for ReadAhead<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ahead.is_empty() {
            if buf.len() >= READ_AHEAD {
                return self.stream.read(buf);
            }
            self.ahead.resize(READ_AHEAD, 0);
            match self.stream.read(&mut self.ahead[..]) {
                Ok(n) => self.ahead.truncate(n),
                Err(e) => {
                    self.ahead.clear();
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(self.ahead.len());
        buf[..n].copy_from_slice(&self.ahead[..n]);
        self.ahead.advance(n);
        Ok(n)
    }
}

fn read_ahead<'a, S, A>(association: &'a mut A) -> PduStream<'a>
where
    S: Read + Write + CloseSocket + 'a,
    A: SyncAssociation<S> + Association,
{
    let max_pdu_length = Association::local_max_pdu_length(association);
    let (stream, ahead) = association.get_mut();
    PduStream::new(Box::new(ReadAhead { stream, ahead }), max_pdu_length)
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

    fn pdu_stream(&mut self) -> Option<PduStream<'_>> {
        Some(read_ahead(self))
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

    fn pdu_stream(&mut self) -> Option<PduStream<'_>> {
        Some(read_ahead(self))
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
    /// Bytes left of the P-DATA-TF PDU being read from a [`PduStream`].
    pdu_left: usize,
    /// The length of the last data set received: the next one's is reserved from it
    /// (the instances of a study are mostly of a size).
    size_hint: usize,
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
            pdu_left: 0,
            size_hint: 0,
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
        if self.pending.is_empty()
            && let Some(stream) = association.pdu_stream()
        {
            return self.receive_from(stream);
        }
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

    /// [`receive`](Self::receive) reading straight from the channel's stream: each
    /// PDV's header first, then its bytes into the command or the data set, which is
    /// reserved at the size of the last one.
    fn receive_from(&mut self, mut stream: PduStream<'_>) -> Result<Incoming, DimseError> {
        let mut context_id: Option<u8> = None;
        let mut command_bytes: Vec<u8> = Vec::new();
        let mut command: Option<Command> = None;
        let mut data: Vec<u8> = Vec::new();
        loop {
            if self.pdu_left == 0 {
                let mut header = [0u8; PDU_HEADER_LEN];
                stream.read_exact(&mut header)?;
                let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
                if length > stream.max_pdu_length {
                    return Err(DimseError::Protocol(format!(
                        "PDU of {length} bytes, over our maximum PDU length of {}",
                        stream.max_pdu_length
                    )));
                }
                if header[0] == P_DATA_TF {
                    self.pdu_left = length as usize;
                    continue;
                }
                let mut bytes = vec![0u8; PDU_HEADER_LEN + length as usize];
                bytes[..PDU_HEADER_LEN].copy_from_slice(&header);
                stream.read_exact(&mut bytes[PDU_HEADER_LEN..])?;
                let pdu = match dicom_ul::pdu::read_pdu(&bytes[..], MAXIMUM_PDU_SIZE, false) {
                    Ok(Some(pdu)) => pdu,
                    Ok(None) => {
                        return Err(DimseError::Protocol(
                            "a PDU ends before its announced length".into(),
                        ));
                    }
                    Err(e) => return Err(DimseError::Protocol(format!("malformed PDU: {e}"))),
                };
                match pdu {
                    Pdu::ReleaseRQ if context_id.is_none() => {
                        return Ok(Incoming::ReleaseRequested);
                    }
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
            if self.pdu_left < PDV_HEADER_LEN {
                return Err(DimseError::Protocol(format!(
                    "P-DATA-TF with {} stray bytes after its last PDV",
                    self.pdu_left
                )));
            }
            let mut item = [0u8; PDV_HEADER_LEN];
            stream.read_exact(&mut item)?;
            let item_length = u32::from_be_bytes([item[0], item[1], item[2], item[3]]) as usize;
            if item_length < 2 || item_length > self.pdu_left - 4 {
                return Err(DimseError::Protocol(format!(
                    "PDV item of {item_length} bytes in what is left of a P-DATA-TF ({} bytes)",
                    self.pdu_left
                )));
            }
            self.pdu_left -= 4 + item_length;
            let len = item_length - 2;
            let presentation_context_id = item[4];
            let is_command = item[5] & 0x01 != 0;
            let is_last = item[5] & 0x02 != 0;
            match context_id {
                None => context_id = Some(presentation_context_id),
                Some(id) if id != presentation_context_id => {
                    return Err(DimseError::Protocol(format!(
                        "message started on presentation context {id} continued on {presentation_context_id}"
                    )));
                }
                Some(_) => {}
            }
            if is_command {
                if command.is_some() {
                    return Err(DimseError::Protocol(
                        "a second command arrived before the data set of the first".into(),
                    ));
                }
                let start = command_bytes.len();
                command_bytes.resize(start + len, 0);
                stream.read_exact(&mut command_bytes[start..])?;
                if is_last {
                    let decoded = Command::decode(&command_bytes)?;
                    if !decoded.has_data_set {
                        return Ok(Incoming::Message(Message {
                            presentation_context_id,
                            command: decoded,
                            data: None,
                        }));
                    }
                    command = Some(decoded);
                }
            } else {
                if command.is_none() {
                    return Err(DimseError::Protocol(
                        "data set fragment arrived before its command was complete".into(),
                    ));
                }
                let start = data.len();
                if start + len > self.max_data_set_len {
                    return Err(DimseError::TooLarge {
                        limit: self.max_data_set_len,
                    });
                }
                if data.capacity() == 0 {
                    data.reserve(self.size_hint.clamp(len, self.max_data_set_len));
                }
                // Zeroed a PDV at a time, just before the socket fills it: no unsafe,
                // and the bytes are still in cache when the kernel copies into them.
                data.resize(start + len, 0);
                stream.read_exact(&mut data[start..])?;
                if is_last {
                    self.size_hint = data.len();
                    if data.capacity() - data.len() > SHRINK_ABOVE {
                        data.shrink_to_fit();
                    }
                    return Ok(Incoming::Message(Message {
                        presentation_context_id,
                        command: command.take().expect("checked above"),
                        data: Some(data),
                    }));
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

/// Bytes of a streamed payload read at a time by [`write_fragments_from`]: small enough
/// to stay in the CPU's cache between the read and the write (so the data crosses
/// memory once, not twice), large enough for few system calls per megabyte.
pub const STREAM_CHUNK: usize = 512 * 1024;

/// [`write_fragments`] for a payload of `len` bytes read from `source` rather than
/// held in memory: it is read [`STREAM_CHUNK`] bytes at a time (whole fragments when
/// the peer's PDUs are smaller) into `buffer`, reused from message to message, and
/// each chunk's fragments go out with one vectored write. A data set of any size thus
/// costs one small buffer, and no copy of it lives longer than a chunk.
///
/// # Errors
/// [`DimseError::Source`] when `source` fails or ends before `len` bytes (the
/// fragments written before it leave the message incomplete: the association is no
/// longer usable), or the stream's error.
pub fn write_fragments_from<W: Write + ?Sized, R: Read + ?Sized>(
    stream: &mut W,
    presentation_context_id: u8,
    value_type: PDataValueType,
    source: &mut R,
    len: u64,
    buffer: &mut Vec<u8>,
    max_pdv_payload: usize,
) -> Result<(), DimseError> {
    if len == 0 {
        return write_fragments(stream, presentation_context_id, value_type, &[], 1);
    }
    let control_base: u8 = match value_type {
        PDataValueType::Command => 0x01,
        PDataValueType::Data => 0x00,
    };
    let fragment = max_pdv_payload.max(1);
    // Whole fragments per chunk when they are small; a fragment larger than a chunk is
    // written as its header and then its body, chunk by chunk.
    let chunk_len = if fragment < STREAM_CHUNK {
        fragment * (STREAM_CHUNK / fragment).min(FragmentBatch::MAX)
    } else {
        STREAM_CHUNK
    };
    if buffer.len() < chunk_len {
        // Zeroed once: the buffer's later uses overwrite it.
        buffer.resize(chunk_len, 0);
    }
    let mut sent: u64 = 0;
    while sent < len {
        let left = len - sent;
        let mut n = usize::try_from(left).map_or(chunk_len, |left| left.min(chunk_len));
        if fragment >= STREAM_CHUNK {
            // A chunk never crosses the end of a large fragment.
            let to_boundary = fragment as u64 - sent % fragment as u64;
            n = n.min(usize::try_from(to_boundary).unwrap_or(n));
        }
        source
            .read_exact(&mut buffer[..n])
            .map_err(DimseError::Source)?;
        let chunk = &buffer[..n];
        let chunk_end = sent + n as u64;
        if fragment < STREAM_CHUNK {
            let mut batch = FragmentBatch::new(presentation_context_id);
            let mut pieces = chunk.chunks(fragment).peekable();
            while let Some(piece) = pieces.next() {
                let last = chunk_end == len && pieces.peek().is_none();
                batch.push(control_base | if last { 0x02 } else { 0x00 }, piece);
            }
            batch.write_to(stream)?;
        } else {
            if sent.is_multiple_of(fragment as u64) {
                // A fragment starts here: its header, then its body chunk by chunk.
                let body = left.min(fragment as u64);
                let last = body == left;
                let header = fragment_header(
                    presentation_context_id,
                    control_base | if last { 0x02 } else { 0x00 },
                    body as u32,
                );
                stream.write_all(&header).map_err(DimseError::from_io)?;
            }
            stream.write_all(chunk).map_err(DimseError::from_io)?;
        }
        sent = chunk_end;
    }
    stream.flush().map_err(DimseError::from_io)
}

/// P-DATA-TF fragments waiting to be written with one vectored write: each a PDU and
/// PDV header and a slice of the payload.
struct FragmentBatch<'p> {
    presentation_context_id: u8,
    headers: [[u8; FRAGMENT_HEADER_LEN]; FragmentBatch::MAX],
    chunks: [&'p [u8]; FragmentBatch::MAX],
    len: usize,
}

impl<'p> FragmentBatch<'p> {
    /// Fragments per write: 32 of 16 KiB (DCMTK's default PDU) is half a megabyte.
    const MAX: usize = 32;

    fn new(presentation_context_id: u8) -> Self {
        FragmentBatch {
            presentation_context_id,
            headers: [[0; FRAGMENT_HEADER_LEN]; FragmentBatch::MAX],
            chunks: [&[]; FragmentBatch::MAX],
            len: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.len == FragmentBatch::MAX
    }

    fn push(&mut self, control: u8, chunk: &'p [u8]) {
        self.headers[self.len] =
            fragment_header(self.presentation_context_id, control, chunk.len() as u32);
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
    buffer.extend_from_slice(&fragment_header(
        presentation_context_id,
        control,
        chunk.len() as u32,
    ));
    buffer.extend_from_slice(chunk);
}

/// The P-DATA-TF PDU header and PDV item header of a fragment of `body_len` bytes that
/// carries one PDV: what goes on the wire before the fragment's bytes.
pub(crate) fn fragment_header(
    presentation_context_id: u8,
    control: u8,
    body_len: u32,
) -> [u8; FRAGMENT_HEADER_LEN] {
    let item_len = body_len + 2;
    let mut header = [0u8; FRAGMENT_HEADER_LEN];
    header[..2].copy_from_slice(&[0x04, 0x00]);
    header[2..6].copy_from_slice(&(item_len + 4).to_be_bytes());
    header[6..10].copy_from_slice(&item_len.to_be_bytes());
    header[10] = presentation_context_id;
    header[11] = control;
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandField, Priority};
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
    fn a_payload_streamed_from_a_reader_goes_out_as_the_same_bytes_as_from_memory() {
        let mut buffer = Vec::new();
        // Small fragments (whole ones per chunk), fragments larger than a chunk, and
        // payloads ending on and off the boundaries.
        for (len, pdv) in [
            (0usize, 16_378usize),
            (1, 16_378),
            (16_378, 16_378),
            (1_000_003, 16_378),
            (2 * STREAM_CHUNK + 7, 100),
            (3 * STREAM_CHUNK + 11, STREAM_CHUNK + 5),
            (STREAM_CHUNK, STREAM_CHUNK),
        ] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
            let mut expected = Vec::new();
            write_fragments(&mut expected, 3, PDataValueType::Data, &payload, pdv).unwrap();
            let mut wire = Vec::new();
            write_fragments_from(
                &mut wire,
                3,
                PDataValueType::Data,
                &mut &payload[..],
                len as u64,
                &mut buffer,
                pdv,
            )
            .unwrap();
            assert!(wire == expected, "{len} bytes in fragments of {pdv}");
        }
        // A source shorter than announced fails as a source error.
        let mut wire = Vec::new();
        let short = vec![0u8; 1000];
        let e = write_fragments_from(
            &mut wire,
            3,
            PDataValueType::Data,
            &mut &short[..],
            2000,
            &mut buffer,
            100,
        )
        .unwrap_err();
        assert!(matches!(e, DimseError::Source(_)), "{e}");
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

    /// A channel over bytes in memory, read through a [`PduStream`] (`direct`) or
    /// PDU by PDU with dicom-ul's parser.
    struct Wire {
        bytes: Cursor<Vec<u8>>,
        direct: bool,
    }

    impl PduChannel for Wire {
        fn receive_pdu(&mut self) -> Result<Pdu, DimseError> {
            read_pdu(&mut self.bytes, 1 << 20, true)
                .map_err(|e| DimseError::Protocol(e.to_string()))?
                .ok_or(DimseError::ConnectionClosed)
        }
        fn send_pdu(&mut self, _: &Pdu) -> Result<(), DimseError> {
            unreachable!()
        }
        fn peer_max_pdu_length(&self) -> u32 {
            16_384
        }
        fn stream(&mut self) -> &mut dyn Write {
            unreachable!()
        }
        fn pdu_stream(&mut self) -> Option<PduStream<'_>> {
            self.direct
                .then(|| PduStream::new(Box::new(&mut self.bytes), 65_536))
        }
    }

    /// Three messages: an echo (command only), a store whose command and first data
    /// fragment share a PDU and whose last fragment shares one with the next
    /// command, then a release request.
    fn three_messages() -> (Vec<u8>, Vec<u8>) {
        let payload: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let echo = Command::c_echo_rq(1).encode();
        let store =
            Command::c_store_rq(2, "1.2.840.10008.5.1.4.1.1.2", "1.2.3", Priority::Medium).encode();
        let mut wire = Vec::new();
        write_fragments(&mut wire, 1, PDataValueType::Command, &echo, 1000).unwrap();
        let pdv = |value_type, is_last, data: &[u8]| PDataValue {
            presentation_context_id: 3,
            value_type,
            is_last,
            data: data.to_vec(),
        };
        let pdus = [
            vec![
                pdv(PDataValueType::Command, true, &store),
                pdv(PDataValueType::Data, false, &payload[..100]),
            ],
            vec![pdv(PDataValueType::Data, false, &payload[100..20_000])],
            vec![
                pdv(PDataValueType::Data, true, &payload[20_000..]),
                PDataValue {
                    presentation_context_id: 1,
                    ..pdv(PDataValueType::Command, true, &echo)
                },
            ],
        ];
        for data in pdus {
            dicom_ul::pdu::write_pdu(&mut wire, &Pdu::PData { data }).unwrap();
        }
        dicom_ul::pdu::write_pdu(&mut wire, &Pdu::ReleaseRQ).unwrap();
        (wire, payload)
    }

    #[test]
    fn direct_reading_gives_what_pdu_by_pdu_reading_gives() {
        let (wire, payload) = three_messages();
        for direct in [false, true] {
            let mut channel = Wire {
                bytes: Cursor::new(wire.clone()),
                direct,
            };
            let mut reader = MessageReader::new();
            let mut received = Vec::new();
            loop {
                match reader.receive(&mut channel).unwrap() {
                    Incoming::Message(m) => received.push(m),
                    Incoming::ReleaseRequested => break,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!(received.len(), 3, "direct: {direct}");
            assert_eq!(received[0].command.field, CommandField::CEchoRq);
            assert_eq!(received[0].data, None);
            assert_eq!(received[1].presentation_context_id, 3);
            assert_eq!(received[1].command.field, CommandField::CStoreRq);
            assert_eq!(received[1].data.as_deref(), Some(&payload[..]));
            assert_eq!(received[2].command.message_id, Some(1));
            assert_eq!(received[2].presentation_context_id, 1);
        }
    }

    #[test]
    fn direct_reading_refuses_what_dicom_ul_would() {
        let mut oversized = vec![0x04, 0x00];
        oversized.extend_from_slice(&70_000u32.to_be_bytes());
        let mut stray = vec![0x04, 0x00, 0, 0, 0, 3, 0, 0, 0];
        stray.extend_from_slice(&[0; 3]);
        let mut bad_item = vec![0x04, 0x00, 0, 0, 0, 10];
        bad_item.extend_from_slice(&100u32.to_be_bytes());
        bad_item.extend_from_slice(&[1, 0x02, 0, 0, 0, 0]);
        let mut data_first = Vec::new();
        write_fragments(&mut data_first, 1, PDataValueType::Data, &[1, 2], 1000).unwrap();
        for wire in [oversized, stray, bad_item, data_first] {
            let mut channel = Wire {
                bytes: Cursor::new(wire.clone()),
                direct: true,
            };
            let error = MessageReader::new().receive(&mut channel).unwrap_err();
            assert!(
                matches!(error, DimseError::Protocol(_)),
                "{wire:?}: {error}"
            );
        }
        let mut channel = Wire {
            bytes: Cursor::new(vec![0x04, 0x00, 0, 0]),
            direct: true,
        };
        let error = MessageReader::new().receive(&mut channel).unwrap_err();
        assert!(matches!(error, DimseError::ConnectionClosed), "{error}");
    }

    #[test]
    fn a_data_set_over_the_limit_is_refused_when_read_directly() {
        let (wire, _) = three_messages();
        let mut channel = Wire {
            bytes: Cursor::new(wire),
            direct: true,
        };
        let mut reader = MessageReader::new().with_max_data_set_len(30_000);
        assert!(matches!(
            reader.receive(&mut channel),
            Ok(Incoming::Message(_))
        ));
        assert!(matches!(
            reader.receive(&mut channel),
            Err(DimseError::TooLarge { limit: 30_000 })
        ));
    }

    #[test]
    fn read_ahead_leaves_what_it_did_not_use_for_dicom_ul() {
        let wire: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut source = &wire[..];
        let mut ahead = BytesMut::from(&[0xAA, 0xBB][..]);
        let mut reader = ReadAhead {
            stream: &mut source,
            ahead: &mut ahead,
        };
        let mut small = [0u8; 4];
        reader.read_exact(&mut small).unwrap();
        assert_eq!(small, [0xAA, 0xBB, 0, 1]);
        let mut large = vec![0u8; 5000];
        reader.read_exact(&mut large).unwrap();
        assert_eq!(large[..], wire[2..5002]);
        // What was read ahead and not used is where dicom-ul reads first.
        let used = 5002;
        let mut rest = ahead.to_vec();
        rest.extend_from_slice(source);
        assert_eq!(rest[..], wire[used..]);
    }
}
