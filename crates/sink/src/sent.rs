//! What was sent: the original instance, decoded once and shared by every send of it
//! ([`SentInstance`]), and what each send changed in it ([`Substitution`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_encoding::transfer_syntax::TransferSyntax;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use crate::error::SinkError;
use crate::pixels::{self, Pixels};

/// The registry as a static, so that the syntaxes it hands out live as long as the
/// program and a tracked send can point at one (8 bytes) instead of copying its UID.
static REGISTRY: TransferSyntaxRegistry = TransferSyntaxRegistry;

/// The transfer syntax of `uid` (padding ignored), if this build knows it.
pub(crate) fn transfer_syntax(uid: &str) -> Option<&'static TransferSyntax> {
    REGISTRY.get(dimse::trim_value(uid))
}

/// One original instance, as every send of it started out.
///
/// Shared (`Arc`) by all the sends made of it, so tracking a send costs its key and
/// substitutions, not a copy of the data set. The decoded pixel samples are made on
/// first need (an arrival whose pixel data is not byte-identical) and kept.
pub struct SentInstance {
    object: DefaultDicomObject,
    sop_instance_uid: Arc<str>,
    transfer_syntax: &'static TransferSyntax,
    pixels: OnceLock<Result<Pixels, String>>,
}

impl std::fmt::Debug for SentInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentInstance")
            .field("sop_instance_uid", &self.sop_instance_uid)
            .field("transfer_syntax", &self.transfer_syntax.uid())
            .field("pixels_decoded", &self.pixels.get().is_some())
            .finish_non_exhaustive()
    }
}

impl SentInstance {
    /// Tracks an in-memory instance (its meta group names the transfer syntax).
    ///
    /// # Errors
    /// [`SinkError::BadOriginal`] when it has no SOP Instance UID or its transfer
    /// syntax is unknown to this build.
    pub fn from_object(object: DefaultDicomObject) -> Result<Arc<Self>, SinkError> {
        let uid = dimse::trim_value(object.meta().transfer_syntax()).to_string();
        let transfer_syntax = transfer_syntax(&uid).ok_or_else(|| SinkError::BadOriginal {
            detail: format!("unknown transfer syntax {uid}"),
        })?;
        let sop_instance_uid = object
            .get(tags::SOP_INSTANCE_UID)
            .and_then(|e| e.to_str().ok())
            .map(|s| dimse::trim_value(&s).to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SinkError::BadOriginal {
                detail: "no SOP Instance UID (0008,0018)".into(),
            })?;
        Ok(Arc::new(SentInstance {
            object,
            sop_instance_uid: sop_instance_uid.into(),
            transfer_syntax,
            pixels: OnceLock::new(),
        }))
    }

    /// Tracks an encoded data set (no file meta group), in transfer syntax `ts_uid`:
    /// what a sender holds for an instance made in memory.
    ///
    /// # Errors
    /// [`SinkError::BadOriginal`] when the transfer syntax is unknown, the bytes are not
    /// a data set, or it lacks what [`from_object`](Self::from_object) needs.
    pub fn from_data_set(bytes: &[u8], ts_uid: &str) -> Result<Arc<Self>, SinkError> {
        let bad = |detail: String| SinkError::BadOriginal { detail };
        let ts_uid = dimse::trim_value(ts_uid);
        let ts = transfer_syntax(ts_uid)
            .ok_or_else(|| bad(format!("unknown transfer syntax {ts_uid}")))?;
        let object = parse_data_set(bytes, ts).map_err(bad)?;
        let text = |tag| {
            object
                .get(tag)
                .and_then(|e: &dicom_object::mem::InMemElement| e.to_str().ok())
                .map(|s| dimse::trim_value(&s).to_string())
                .unwrap_or_default()
        };
        let (class, instance) = (text(tags::SOP_CLASS_UID), text(tags::SOP_INSTANCE_UID));
        let meta = dicom_object::meta::FileMetaTableBuilder::new()
            .transfer_syntax(ts_uid)
            .media_storage_sop_class_uid(if class.is_empty() { "1.2.3" } else { &class })
            .media_storage_sop_instance_uid(if instance.is_empty() {
                "1.2.3"
            } else {
                &instance
            })
            .build()
            .map_err(|e| bad(dimse::ErrorChain(&e).to_string()))?;
        Self::from_object(object.with_exact_meta(meta))
    }

    /// Reads and tracks a DICOM file.
    ///
    /// # Errors
    /// [`SinkError::Original`] naming the file when it cannot be read or lacks what
    /// [`from_object`](Self::from_object) needs.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<Self>, SinkError> {
        let path = path.as_ref();
        let object = OpenFileOptions::new()
            .open_file(path)
            .map_err(|e| SinkError::Original {
                path: path.to_path_buf(),
                detail: dimse::ErrorChain(&e).to_string(),
            })?;
        Self::from_object(object).map_err(|e| SinkError::Original {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// The data set as it was before any send changed it.
    pub fn data_set(&self) -> &InMemDicomObject {
        &self.object
    }

    /// Its SOP Instance UID (each send may carry another: see [`Substitution`]).
    pub fn sop_instance_uid(&self) -> &str {
        &self.sop_instance_uid
    }

    /// The transfer syntax the original is encoded in.
    pub fn transfer_syntax(&self) -> &'static TransferSyntax {
        self.transfer_syntax
    }

    /// The decoded pixel samples, made on first call.
    pub(crate) fn pixels(&self) -> &Result<Pixels, String> {
        self.pixels.get_or_init(|| pixels::decode(&self.object))
    }
}

/// One value a send carried instead of the original's: a fresh Study, Series or SOP
/// Instance UID (what `sender` writes per send with fresh UIDs), or any other
/// top-level attribute a sender sets per send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    /// The top-level attribute.
    pub tag: Tag,
    /// The value sent, as text (several values separated by `\`).
    pub value: Arc<str>,
}

impl Substitution {
    /// `tag` was sent as `value`.
    pub fn new(tag: Tag, value: impl Into<Arc<str>>) -> Self {
        Substitution {
            tag,
            value: value.into(),
        }
    }

    /// The three substitutions of a fresh-UID send: Study, Series and SOP Instance UID.
    pub fn fresh_uids(study: &str, series: &str, instance: &str) -> [Substitution; 3] {
        [
            Substitution::new(tags::STUDY_INSTANCE_UID, study),
            Substitution::new(tags::SERIES_INSTANCE_UID, series),
            Substitution::new(tags::SOP_INSTANCE_UID, instance),
        ]
    }
}

/// Reads `bytes` as a data set in `ts`.
pub(crate) fn parse_data_set(
    bytes: &[u8],
    ts: &TransferSyntax,
) -> Result<InMemDicomObject, String> {
    check_lengths(bytes, ts)?;
    // A parser is third-party code fed with bytes from the network: a panic in it must
    // become a corrupt delivery, never a dead sink.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        InMemDicomObject::read_dataset_with_ts(bytes, ts)
    }));
    match outcome {
        Ok(Ok(object)) => Ok(object),
        Ok(Err(e)) => Err(dimse::ErrorChain(&e).to_string()),
        Err(_) => Err("the data set parser panicked on these bytes".into()),
    }
}

/// Checks, before parsing, that no element declares a value longer than the bytes
/// left: the parser allocates (and zero-fills) a value's declared length before it
/// reads it, so 512 garbage bytes declaring 2.6 GB would cost that much memory and
/// seconds of a comparator's time before failing. Walks element headers only,
/// entering sequences and items; a deflated data set is left to the parser.
fn check_lengths(bytes: &[u8], ts: &TransferSyntax) -> Result<(), String> {
    use dicom_encoding::transfer_syntax::{Codec, Endianness};
    if matches!(ts.codec(), Codec::Dataset(_)) {
        return Ok(());
    }
    let explicit = ts.uid() != dicom_dictionary_std::uids::IMPLICIT_VR_LITTLE_ENDIAN;
    let big = ts.endianness() == Endianness::Big;
    let u16_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1]];
        if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    };
    let u32_at = |at: usize| {
        let b = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut at = 0usize;
    // Inside encapsulated pixel data: its items are fragments of compressed bytes, not
    // data sets, and are skipped by their length until the sequence delimiter.
    let mut in_fragments = false;
    // Past the end of the data: the parser reports truncated headers itself.
    while at + 8 <= bytes.len() {
        let tag = Tag(u16_at(at), u16_at(at + 2));
        let (length, header, descend) = if tag.group() == 0xFFFE {
            if tag.element() == 0xE0DD {
                in_fragments = false;
            }
            // Item and delimiters: no VR; a data set item's content is walked in place.
            (u32_at(at + 4), 8, !in_fragments)
        } else if explicit {
            let vr = [bytes[at + 4], bytes[at + 5]];
            let short = matches!(
                &vr,
                b"AE"
                    | b"AS"
                    | b"AT"
                    | b"CS"
                    | b"DA"
                    | b"DS"
                    | b"DT"
                    | b"FL"
                    | b"FD"
                    | b"IS"
                    | b"LO"
                    | b"LT"
                    | b"PN"
                    | b"SH"
                    | b"SL"
                    | b"SS"
                    | b"ST"
                    | b"TM"
                    | b"UI"
                    | b"UL"
                    | b"US"
            );
            if short {
                (u32::from(u16_at(at + 6)), 8, false)
            } else if at + 12 <= bytes.len() {
                (u32_at(at + 8), 12, &vr == b"SQ")
            } else {
                break;
            }
        } else {
            use dicom_core::dictionary::DataDictionary;
            let sequence = dicom_dictionary_std::StandardDataDictionary
                .by_tag(tag)
                .is_some_and(|e| e.vr.relaxed() == dicom_core::VR::SQ);
            (u32_at(at + 4), 8, sequence)
        };
        at += header;
        if tag == dicom_dictionary_std::tags::PIXEL_DATA && length == u32::MAX {
            in_fragments = true;
        }
        if length == u32::MAX || descend {
            // Undefined length (sequence, encapsulated pixel data) or a sequence or
            // item whose content follows: walk into it.
            continue;
        }
        let left = bytes.len() - at;
        if length as usize > left {
            return Err(format!(
                "element {tag} at byte {} declares {length} bytes of value, only {left} remain",
                at - header
            ));
        }
        at += length as usize;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dicom_core::value::PixelFragmentSequence;
    use dicom_core::{DataElement, VR};
    use dicom_transfer_syntax_registry::entries::RLE_LOSSLESS;

    use super::*;

    #[test]
    fn compressed_bytes_inside_a_fragment_are_not_read_as_elements() {
        // A fragment whose bytes would read as an element declaring 2 GB of value.
        let fragment = vec![
            0, 0, 0, 0, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2, 3, 4,
        ];
        let mut object = InMemDicomObject::new_empty();
        object.put_str(tags::SOP_INSTANCE_UID, VR::UI, "2.25.7");
        object.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PixelFragmentSequence::new(vec![], vec![fragment]),
        ));
        let mut bytes = Vec::new();
        object
            .write_dataset_with_ts(&mut bytes, &RLE_LOSSLESS.erased())
            .unwrap();
        let parsed = parse_data_set(&bytes, &RLE_LOSSLESS.erased()).unwrap();
        assert!(parsed.get(tags::PIXEL_DATA).is_some());
        // Cut inside the fragment: now a length overruns, and it is said.
        let error = parse_data_set(&bytes[..bytes.len() - 12], &RLE_LOSSLESS.erased());
        assert!(error.is_err(), "{error:?}");
    }
}
