//! Reading the A-ASSOCIATE-RQ within the ARTIM deadline, and the refusals PS3.8
//! itself calls for.

use std::io::{self, Read};
use std::time::Instant;

use dicom_ul::Pdu;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceUserReason, AssociationRJSource,
    AssociationRQ,
};

use super::error::ScpError;
use super::pdu_reader::{PDU_HEADER_LEN, decode};
use super::stream::ScpStream;

/// The largest A-ASSOCIATE-RQ read (its body): 128 presentation contexts with long
/// UIDs and a large user identity fit in well under this.
pub const MAX_ASSOCIATE_RQ_LEN: u32 = 1 << 16;

/// The DICOM application context name (PS3.7 A.2.1).
pub const DICOM_APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// First byte of a TLS handshake record: what a TLS client's ClientHello starts with.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// PDU type of A-ASSOCIATE-RQ.
const A_ASSOCIATE_RQ: u8 = 0x01;

/// Reads the A-ASSOCIATE-RQ that opens an association, giving up at `deadline` (the
/// ARTIM timer of PS3.8). The socket's read timeout is restored afterwards.
///
/// # Errors
/// - [`ScpError::TlsClientOnPlainPort`] when, on a plain connection, the first byte
///   is a TLS handshake record's (0x16): answer nothing and close;
/// - [`ScpError::NotAnAssociateRequest`] when another PDU type comes first, and
///   [`ScpError::Malformed`] or [`ScpError::PduTooLong`] (above
///   [`MAX_ASSOCIATE_RQ_LEN`]) for a request that cannot be decoded: answer with
///   the A-ABORT of [`ScpError::abort_source`];
/// - [`ScpError::Timeout`] or [`ScpError::Closed`]: nobody to answer.
pub fn read_associate_request(
    stream: &mut ScpStream,
    deadline: Instant,
) -> Result<AssociationRQ, ScpError> {
    let saved = stream.tcp().read_timeout();
    let result = read_request(stream, deadline);
    if let Ok(timeout) = saved {
        let _ = stream.tcp().set_read_timeout(timeout);
    }
    result
}

fn read_request(stream: &mut ScpStream, deadline: Instant) -> Result<AssociationRQ, ScpError> {
    let mut header = [0u8; PDU_HEADER_LEN];
    read_by(stream, &mut header[..1], deadline)?;
    if header[0] == TLS_HANDSHAKE_RECORD && !stream.is_tls() {
        return Err(ScpError::TlsClientOnPlainPort);
    }
    read_by(stream, &mut header[1..], deadline)?;
    if header[0] != A_ASSOCIATE_RQ {
        return Err(ScpError::NotAnAssociateRequest {
            pdu_type: header[0],
        });
    }
    let length = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    if length > MAX_ASSOCIATE_RQ_LEN {
        return Err(ScpError::PduTooLong {
            length,
            max: MAX_ASSOCIATE_RQ_LEN,
        });
    }
    let mut bytes = vec![0u8; PDU_HEADER_LEN + length as usize];
    bytes[..PDU_HEADER_LEN].copy_from_slice(&header);
    read_by(stream, &mut bytes[PDU_HEADER_LEN..], deadline)?;
    match decode(&bytes)? {
        Pdu::AssociationRQ(request) => Ok(request),
        _ => Err(ScpError::Malformed("not an A-ASSOCIATE-RQ".into())),
    }
}

/// Fills `buf` before `deadline`, each read bounded by the time left.
fn read_by(stream: &mut ScpStream, buf: &mut [u8], deadline: Instant) -> Result<(), ScpError> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ScpError::Timeout);
        }
        stream
            .tcp()
            .set_read_timeout(Some(left))
            .map_err(ScpError::from_io)?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(ScpError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ScpError::from_io(e)),
        }
    }
    Ok(())
}

/// The A-ASSOCIATE-RJ PS3.8 calls for when `request` is not a DICOM association
/// request at all: protocol version without bit 0 (permanent, service user, no
/// reason given), or another application context than DICOM's (permanent, service
/// user, application context name not supported). `None` for a DICOM request.
pub fn standard_refusal(request: &AssociationRQ) -> Option<AssociationRJ> {
    let reason = if request.protocol_version & 1 == 0 {
        AssociationRJServiceUserReason::NoReasonGiven
    } else if request
        .application_context_name
        .trim_end_matches(['\0', ' '])
        != DICOM_APPLICATION_CONTEXT
    {
        AssociationRJServiceUserReason::ApplicationContextNameNotSupported
    } else {
        return None;
    };
    Some(AssociationRJ {
        result: AssociationRJResult::Permanent,
        source: AssociationRJSource::ServiceUser(reason),
    })
}
