//! Admission of an association: the A-ASSOCIATE-RQ is read before dicom-ul sees it,
//! so that the simulator routes by called AE title and refuses as a router would
//! (unknown AE, calling AE not allowed, too many associations, a refusal fault), then
//! the presentation contexts a route offers.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread::{self};
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::pdu::{
    AbortRQSource, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceProviderPresentationReason as ProviderReason,
    AssociationRJServiceUserReason as UserReason, AssociationRJSource, AssociationRQ,
    MAXIMUM_PDU_SIZE,
};
use dicom_ul::{Pdu, ServerAssociationOptions};

use super::{Shared, Target};
use crate::config::{SimulatorConfig, StorageSopClasses, TransferSyntaxPolicy};
use crate::stats::RejectionReason;
use dimse::InformationModel;

/// The largest A-ASSOCIATE-RQ read: 128 presentation contexts with long UIDs fit
/// in well under this.
pub(super) const MAX_ASSOCIATE_RQ_LEN: usize = 1 << 16;

pub(super) enum PeekError {
    /// Closed, reset or silent: nobody to answer.
    Gone,
    NotAnAssociateRq,
    Malformed,
}

/// Reads the A-ASSOCIATE-RQ without consuming it, so that the simulator can route
/// or refuse by AE title (and refuse transiently, which dicom-ul's AccessControl
/// cannot) before handing the socket to dicom-ul.
pub(super) fn peek_associate_rq(
    stream: &TcpStream,
    timeout: Duration,
) -> Result<(usize, AssociationRQ), PeekError> {
    let deadline = Instant::now() + timeout;
    let header = peek_exact(stream, 6, deadline)?;
    if header[0] != 0x01 {
        return Err(PeekError::NotAnAssociateRq);
    }
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]) as usize;
    if len > MAX_ASSOCIATE_RQ_LEN {
        return Err(PeekError::Malformed);
    }
    let bytes = peek_exact(stream, 6 + len, deadline)?;
    match dicom_ul::pdu::read_pdu(&bytes[..], MAXIMUM_PDU_SIZE, false) {
        Ok(Some(Pdu::AssociationRQ(rq))) => Ok((6 + len, rq)),
        _ => Err(PeekError::Malformed),
    }
}

pub(super) fn peek_exact(
    stream: &TcpStream,
    n: usize,
    deadline: Instant,
) -> Result<Vec<u8>, PeekError> {
    let mut buf = vec![0u8; n];
    loop {
        match stream.peek(&mut buf) {
            Ok(0) => return Err(PeekError::Gone),
            Ok(k) if k >= n => return Ok(buf),
            Ok(_) => {
                if Instant::now() >= deadline {
                    return Err(PeekError::Gone);
                }
                // Part of the PDU is in: the rest is on its way.
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(PeekError::Gone),
        }
    }
}

/// Counts the refusal and answers the (peeked) A-ASSOCIATE-RQ with the
/// A-ASSOCIATE-RJ that `reason` stands for.
pub(super) fn refuse(
    shared: &Shared,
    stream: &mut TcpStream,
    rq_len: usize,
    reason: RejectionReason,
) {
    use AssociationRJResult::{Permanent, Transient};
    use AssociationRJSource::{ServiceProviderASCE, ServiceProviderPresentation, ServiceUser};
    shared.counters.lock().reject(reason);
    let (result, source) = match reason {
        RejectionReason::CalledAeTitleNotRecognized => (
            Permanent,
            ServiceUser(UserReason::CalledAETitleNotRecognized),
        ),
        RejectionReason::CallingAeTitleNotRecognized => (
            Permanent,
            ServiceUser(UserReason::CallingAETitleNotRecognized),
        ),
        RejectionReason::RejectedByFault => (
            Permanent,
            ServiceUser(UserReason::CalledAETitleNotRecognized),
        ),
        RejectionReason::RefusedByFault => (
            Transient,
            ServiceProviderPresentation(ProviderReason::TemporaryCongestion),
        ),
        RejectionReason::LocalLimitExceeded => (
            Transient,
            ServiceProviderPresentation(ProviderReason::LocalLimitExceeded),
        ),
        // Not refused through here (a bad request is aborted, or refused by
        // dicom-ul itself); this is the RJ that would say so.
        RejectionReason::BadRequest => (
            Permanent,
            ServiceProviderASCE(AssociationRJServiceProviderASCEReason::NoReasonGiven),
        ),
    };
    let mut rq = vec![0u8; rq_len];
    if stream.read_exact(&mut rq).is_err() {
        return;
    }
    let mut out = Vec::with_capacity(10);
    if dicom_ul::pdu::write_pdu(
        &mut out,
        &Pdu::AssociationRJ(AssociationRJ { result, source }),
    )
    .is_ok()
    {
        let _ = stream.write_all(&out);
    }
    linger_until_peer_closes(stream);
}

pub(super) fn abort_raw(stream: &mut TcpStream, source: AbortRQSource) {
    let mut out = Vec::with_capacity(10);
    if dicom_ul::pdu::write_pdu(&mut out, &Pdu::AbortRQ { source }).is_ok() {
        let _ = stream.write_all(&out);
    }
    linger_until_peer_closes(stream);
}

/// Closing a socket with unread input makes Linux send RST, which can destroy the
/// RJ or A-ABORT just written before the peer reads it: let the peer close first
/// (briefly, and reading at most a bounded amount).
pub(super) fn linger_until_peer_closes(stream: &mut TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while Instant::now() < deadline && total < (1 << 20) {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => total += n,
            _ => break,
        }
    }
}

/// Whether `uid` is a storage SOP class in the standard registry.
pub(crate) fn is_storage_sop_class(uid: &str) -> bool {
    use dicom_core::dictionary::UidDictionary;
    dicom_dictionary_std::StandardSopClassDictionary
        .by_uid(uid)
        .is_some_and(|e| {
            e.alias.contains("Storage")
                && !e.alias.starts_with("StorageCommitment")
                && e.alias != "MediaStorageDirectoryStorage"
                && e.alias != "Storage"
        })
}

pub(super) fn is_find_model(uid: &str) -> bool {
    InformationModel::from_sop_class_uid(uid).is_some()
}

/// Whether a proposed abstract syntax is accepted: Verification always, the FIND
/// models unless a fault withholds them, storage on routes only.
pub(super) fn abstract_syntax_allowed(
    config: &SimulatorConfig,
    target: Target,
    uid: &str,
    withheld_models: &[InformationModel],
) -> bool {
    if uid == uids::VERIFICATION {
        return true;
    }
    if let Some(model) = InformationModel::from_sop_class_uid(uid) {
        return !withheld_models.contains(&model);
    }
    match (target, config.storage_sop_classes) {
        (Target::QueryOnly, _) => false,
        (Target::Route(_), StorageSopClasses::Standard) => is_storage_sop_class(uid),
        (Target::Route(_), StorageSopClasses::Any) => true,
    }
}

pub(super) fn negotiation<'a>(
    config: &'a SimulatorConfig,
    rq: &AssociationRQ,
    target: Target,
    called: &str,
    withheld_models: &[InformationModel],
) -> ServerAssociationOptions<
    'a,
    dicom_ul::association::server::AcceptAny,
    dicom_ul::association::server::DefaultNegotiation,
> {
    let mut options = ServerAssociationOptions::new()
        .accept_any()
        .ae_title(called.to_string())
        .max_pdu_length(config.max_pdu_length)
        .strict(true)
        .read_timeout(config.read_timeout)
        .write_timeout(config.write_timeout);
    let mut offered = false;
    for pc in &rq.presentation_contexts {
        let uid = pc.abstract_syntax.trim_end_matches(['\0', ' ']);
        if abstract_syntax_allowed(config, target, uid, withheld_models) {
            options = options.with_abstract_syntax(uid.to_string());
            offered = true;
        }
    }
    if !offered {
        // dicom-ul needs one; every proposed context is then refused.
        options = options.with_abstract_syntax(uids::VERIFICATION);
    }
    match &config.transfer_syntaxes {
        // No list: every transfer syntax the registry can parse, compressed included.
        TransferSyntaxPolicy::All => options,
        TransferSyntaxPolicy::UncompressedOnly => options
            .with_transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
            .with_transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN),
        TransferSyntaxPolicy::Only(list) => list
            .iter()
            .fold(options, |o, ts| o.with_transfer_syntax(ts.as_str())),
    }
}
