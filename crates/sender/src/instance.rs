//! [`PreparedInstance`]: a DICOM instance encoded once, ready to be stored many times.
//!
//! A load run sends the same files thousands of times. Parsing and encoding each time
//! would make the generator, not the router, the bottleneck, so an instance is turned
//! into bytes once:
//!
//! - as is ([`UidStrategy::AsIs`]): the data set bytes are taken from the file
//!   verbatim (everything after the meta group), never re-encoded;
//! - with fresh UIDs ([`UidStrategy::Fresh`]): the data set is encoded once with
//!   placeholder Study, Series and SOP Instance UIDs of [`FRESH_UID_LEN`]
//!   characters; their byte offsets are recorded and every send writes its own UIDs
//!   over them on the way to the wire ([`dimse::Patch`]).
//!
//! When the peer does not accept the instance's transfer syntax, the other encodings
//! ([`Variant`]s: another uncompressed syntax, or decompressed pixel data) are made on
//! first use and kept, so a file is decompressed once per run, not once per send.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::UidStrategy;
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTable;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use parking_lot::RwLock;

use crate::SenderError;
use crate::uid::{FRESH_UID_LEN, FreshUid, UidLevel, UidRoot};
use dimse::ErrorChain;

/// Where an instance came from, to make other encodings of it on demand.
#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    Object(Arc<DefaultDicomObject>),
    /// Encoded for one transfer syntax only; no other can be made.
    Encoded,
}

/// Byte offsets of the three fresh-UID values in an encoded data set, and of the
/// trace value (the send's SOP Instance UID again) when the instance is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UidSlots {
    pub study: usize,
    pub series: usize,
    pub instance: usize,
    pub trace: Option<usize>,
}

/// One encoding of an instance's data set.
#[derive(Debug)]
pub struct Variant {
    transfer_syntax: String,
    bytes: Vec<u8>,
    slots: Option<UidSlots>,
    /// Set for a data set left in its file (a load run's streamed send of a file as
    /// it is): `bytes` is then empty, and the send reads the file as it goes out.
    in_file: Option<FileBody>,
}

/// A data set that is a file's bytes from `start`, `len` of them: sent straight from
/// the file (page cache), in chunks, never held whole in memory.
#[derive(Debug)]
pub(crate) struct FileBody {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) start: u64,
    pub(crate) len: u64,
}

impl FileBody {
    /// A reader of the data set, from its start (positioned reads: the file's own
    /// position is not touched).
    pub(crate) fn reader(&self) -> impl Read + '_ {
        FileBodyReader {
            file: &self.file,
            at: self.start,
            end: self.start + self.len,
        }
    }
}

struct FileBodyReader<'f> {
    file: &'f File,
    at: u64,
    end: u64,
}

impl Read for FileBodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Variant {
    /// The transfer syntax the bytes are encoded in.
    pub fn transfer_syntax(&self) -> &str {
        &self.transfer_syntax
    }

    /// The encoded data set (with placeholder UIDs when prepared for fresh UIDs).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The data set's length in bytes, in memory or in its file.
    pub fn len(&self) -> u64 {
        self.in_file
            .as_ref()
            .map_or(self.bytes.len() as u64, |body| body.len)
    }

    /// Whether the data set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn slots(&self) -> Option<UidSlots> {
        self.slots
    }

    /// The data set left in its file, when it is.
    pub(crate) fn in_file(&self) -> Option<&FileBody> {
        self.in_file.as_ref()
    }
}

/// The UIDs one send of a fresh-UID instance carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceUids {
    /// Study Instance UID.
    pub study: FreshUid,
    /// Series Instance UID.
    pub series: FreshUid,
    /// SOP Instance UID.
    pub instance: FreshUid,
}

/// Where the primary encoding is.
#[derive(Debug)]
enum Primary {
    /// In memory, made when the instance was prepared.
    Resident(Arc<Variant>),
    /// In the file, from `body_start`: read (and with fresh UIDs encoded) on demand.
    OnDisk {
        transfer_syntax: String,
        body_start: u64,
        /// The file's length when inspected: a file changed since is refused.
        file_len: u64,
    },
}

/// The first bytes of a file read by [`PreparedInstance::inspect`]: the preamble,
/// the meta group and, for most instances, every attribute before Pixel Data.
const HEAD_LEN: usize = 64 * 1024;

/// An encoding made on demand, or why it could not be made.
type VariantResult = Result<Arc<Variant>, String>;

/// A DICOM instance encoded once, ready to be sent many times.
///
/// Cheap to share between workers (`Arc<PreparedInstance>`): the encodings are
/// immutable; only the cache of other encodings takes a lock, once per new syntax.
#[derive(Debug)]
pub struct PreparedInstance {
    origin: Origin,
    sop_class_uid: String,
    sop_instance_uid: String,
    study_instance_uid: Option<String>,
    series_instance_uid: Option<String>,
    patient_id: Option<String>,
    fresh_uids: bool,
    /// Each send carries dicom-auto's trace element ([`dimse::trace`]) with its SOP
    /// Instance UID, so a sink matches it through a router that replaces UIDs.
    traced: bool,
    primary: Primary,
    /// Length of the primary encoding: exact once encoded, and for an inspected file
    /// as is; for an inspected file with fresh UIDs, its data set's length (the
    /// encoding differs by the lengths of three UIDs).
    primary_len: usize,
    /// Other encodings made on demand: (transfer syntax, result). A failure is kept
    /// too, so a file that cannot be decompressed is tried once, not once per send.
    others: RwLock<Vec<(String, VariantResult)>>,
    /// C-STORE-RQ command sets, one per priority (low, medium, high), made on first use.
    commands: [OnceLock<CommandTemplate>; 3],
}

impl PreparedInstance {
    /// Reads a DICOM file and prepares it, the data set kept in memory.
    ///
    /// With [`UidStrategy::AsIs`] the data set bytes are the file's, verbatim; only the
    /// part before Pixel Data is parsed (for the UIDs and the Patient ID).
    ///
    /// # Errors
    /// [`SenderError::File`] for an unreadable, non-DICOM or truncated file;
    /// [`SenderError::Prepare`] when the file lacks its SOP Class or Instance UID.
    pub fn from_file(path: impl AsRef<Path>, uids: UidStrategy) -> Result<Self, SenderError> {
        // One read of the whole file, parsed from memory: going through `inspect` and
        // then reading the data set would open, read and parse the head twice.
        let path = path.as_ref();
        let file_error = |detail: String| SenderError::File {
            path: path.to_path_buf(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
        if !loader::Head::of(&bytes).is_dicom() {
            return Err(file_error(
                "not a DICOM file (no DICM marker at byte 128)".into(),
            ));
        }
        let mut cursor = Cursor::new(&bytes[loader::MAGIC_OFFSET..]);
        let meta = FileMetaTable::from_reader(&mut cursor)
            .map_err(|e| file_error(format!("bad file meta group: {}", ErrorChain(&e))))?;
        let body_start = loader::MAGIC_OFFSET + cursor.position() as usize;
        let what = || path.display().to_string();
        let origin = Origin::File(path.to_path_buf());
        let (identity, fresh, variant) = match uids {
            UidStrategy::AsIs => {
                // Parse only up to Pixel Data: enough for the UIDs, and it checks that
                // the body is a readable data set before it is sent thousands of times.
                let head = OpenFileOptions::new()
                    .read_preamble(ReadPreamble::Always)
                    .read_until(tags::PIXEL_DATA)
                    .from_reader(&bytes[..])
                    .map_err(|e| file_error(ErrorChain(&e).to_string()))?;
                let identity = Identity::of(&head, &what)?;
                let mut body = bytes;
                body.drain(..body_start);
                let variant = Variant {
                    transfer_syntax: meta_ts(&meta),
                    bytes: body,
                    slots: None,
                    in_file: None,
                };
                (identity, false, variant)
            }
            UidStrategy::Fresh => {
                let object = OpenFileOptions::new()
                    .read_preamble(ReadPreamble::Always)
                    .from_reader(&bytes[..])
                    .map_err(|e| file_error(ErrorChain(&e).to_string()))?;
                let expected_len = bytes.len() - body_start;
                drop(bytes);
                let identity = Identity::of(&object, &what)?;
                let ts = fresh_uid_syntax(&meta_ts(&meta));
                let variant = encode(&object, &ts, true, false, expected_len, &what)?;
                (identity, true, variant)
            }
        };
        Ok(Self::assemble(
            origin,
            identity,
            fresh,
            Primary::Resident(Arc::new(variant)),
        ))
    }

    /// Inspects a DICOM file without reading its data set: the meta group and the
    /// attributes before Pixel Data (at most a few kilobytes) give its identity, syntax
    /// and size. The data set is read (and, with fresh UIDs, encoded) when a send needs
    /// it: a load run keeps it in its memory budget or streams it ([`run_load`]).
    ///
    /// [`run_load`]: crate::run_load
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file), for what the head of the file shows.
    pub fn inspect(path: impl AsRef<Path>, uids: UidStrategy) -> Result<Self, SenderError> {
        let path = path.as_ref();
        let file_error = |detail: String| SenderError::File {
            path: path.to_path_buf(),
            detail,
        };
        let mut file = File::open(path).map_err(|e| file_error(e.to_string()))?;
        let file_len = file
            .metadata()
            .map_err(|e| file_error(e.to_string()))?
            .len();
        let mut head = Vec::with_capacity(HEAD_LEN);
        (&mut file)
            .take(HEAD_LEN as u64)
            .read_to_end(&mut head)
            .map_err(|e| file_error(e.to_string()))?;
        if !loader::Head::of(&head).is_dicom() {
            return Err(file_error(
                "not a DICOM file (no DICM marker at byte 128)".into(),
            ));
        }
        // A meta group is a few hundred bytes: it lies within the head.
        let mut in_head = Cursor::new(&head[loader::MAGIC_OFFSET..]);
        let meta = FileMetaTable::from_reader(&mut in_head)
            .map_err(|e| file_error(format!("bad file meta group: {}", ErrorChain(&e))))?;
        let body_start = loader::MAGIC_OFFSET as u64 + in_head.position();
        // Parse only up to Pixel Data: enough for the UIDs, and it checks that the body
        // is a readable data set before it is sent thousands of times.
        file.seek(SeekFrom::Start(head.len() as u64))
            .map_err(|e| file_error(e.to_string()))?;
        let rest = BufReader::with_capacity(HEAD_LEN, &mut file);
        let header = OpenFileOptions::new()
            .read_preamble(ReadPreamble::Always)
            .read_until(tags::PIXEL_DATA)
            .from_reader(Cursor::new(&head[..]).chain(rest))
            .map_err(|e| file_error(ErrorChain(&e).to_string()))?;
        let identity = Identity::of(&header, &|| path.display().to_string())?;
        let file_ts = meta_ts(&meta);
        let (fresh, transfer_syntax) = match uids {
            UidStrategy::AsIs => (false, file_ts),
            UidStrategy::Fresh => (true, fresh_uid_syntax(&file_ts)),
        };
        let mut instance = Self::assemble(
            Origin::File(path.to_path_buf()),
            identity,
            fresh,
            Primary::OnDisk {
                transfer_syntax,
                body_start,
                file_len,
            },
        );
        instance.primary_len = usize::try_from(file_len.saturating_sub(body_start))
            .map_err(|_| file_error("too large for this machine's address space".into()))?;
        Ok(instance)
    }

    /// Opens an inspected file, found at `path` with `file_len` bytes as when it was
    /// inspected.
    fn open_inspected(&self, file_len: u64) -> Result<(&PathBuf, File), SenderError> {
        let Origin::File(path) = &self.origin else {
            unreachable!("only files are inspected")
        };
        let file_error = |detail: String| SenderError::File {
            path: path.clone(),
            detail,
        };
        let file = File::open(path).map_err(|e| file_error(e.to_string()))?;
        let now_len = file
            .metadata()
            .map_err(|e| file_error(e.to_string()))?
            .len();
        if now_len != file_len {
            return Err(file_error(format!(
                "changed since it was inspected ({file_len} bytes then, {now_len} now)"
            )));
        }
        Ok((path, file))
    }

    /// Reads the data set of an inspected file, left at `body_start` in a file of
    /// `file_len` bytes (with fresh UIDs: parses and encodes it).
    fn read_from_disk(
        &self,
        transfer_syntax: &str,
        body_start: u64,
        file_len: u64,
    ) -> Result<Variant, SenderError> {
        let (path, mut file) = self.open_inspected(file_len)?;
        let file_error = |detail: String| SenderError::File {
            path: path.clone(),
            detail,
        };
        if self.fresh_uids {
            let mut bytes = Vec::with_capacity(self.primary_len + loader::MAGIC_OFFSET + 1024);
            file.read_to_end(&mut bytes)
                .map_err(|e| file_error(e.to_string()))?;
            let object = OpenFileOptions::new()
                .read_preamble(ReadPreamble::Always)
                .from_reader(&bytes[..])
                .map_err(|e| file_error(ErrorChain(&e).to_string()))?;
            drop(bytes);
            let what = || path.display().to_string();
            return encode(
                &object,
                transfer_syntax,
                true,
                self.traced,
                self.primary_len,
                &what,
            );
        }
        // As is: the data set verbatim, in one read (no parse, no copy).
        file.seek(SeekFrom::Start(body_start))
            .map_err(|e| file_error(e.to_string()))?;
        let mut bytes = Vec::with_capacity(self.primary_len);
        file.take(self.primary_len as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| file_error(e.to_string()))?;
        if bytes.len() != self.primary_len {
            return Err(file_error(format!(
                "truncated while reading: {} of {} data set bytes",
                bytes.len(),
                self.primary_len
            )));
        }
        Ok(Variant {
            transfer_syntax: transfer_syntax.to_string(),
            bytes,
            slots: None,
            in_file: None,
        })
    }

    /// Prepares an in-memory object, encoded in its meta group's transfer syntax.
    ///
    /// A copy of the object is kept, to make other encodings if the peer needs them.
    ///
    /// # Errors
    /// [`SenderError::Prepare`] when the object lacks its SOP Class or Instance UID,
    /// or cannot be encoded in its transfer syntax.
    pub fn from_object(
        object: &DefaultDicomObject,
        uids: UidStrategy,
    ) -> Result<Self, SenderError> {
        let identity = Identity::of(object, &|| "data set".to_string())?;
        let what = || format!("data set {}", identity.sop_instance_uid);
        let fresh = uids == UidStrategy::Fresh;
        let ts = meta_ts(object.meta());
        let ts = if fresh { fresh_uid_syntax(&ts) } else { ts };
        let variant = encode(object, &ts, fresh, false, 0, &what)?;
        Ok(Self::assemble(
            Origin::Object(Arc::new(object.clone())),
            identity,
            fresh,
            Primary::Resident(Arc::new(variant)),
        ))
    }

    /// Prepares an object for exactly one transfer syntax (what a single
    /// `send_dataset` needs): no copy of the object is kept.
    pub(crate) fn for_syntax(
        object: &DefaultDicomObject,
        ts: &str,
        decompress: bool,
    ) -> Result<Self, SenderError> {
        let identity = Identity::of(object, &|| "data set".to_string())?;
        let what = || format!("data set {}", identity.sop_instance_uid);
        let variant = if decompress {
            let mut copy = object.clone();
            decode_pixel_data(&mut copy, &what)?;
            encode(&copy, ts, false, false, 0, &what)?
        } else {
            encode(object, ts, false, false, 0, &what)?
        };
        Ok(Self::assemble(
            Origin::Encoded,
            identity,
            false,
            Primary::Resident(Arc::new(variant)),
        ))
    }

    fn assemble(origin: Origin, identity: Identity, fresh_uids: bool, primary: Primary) -> Self {
        let primary_len = match &primary {
            Primary::Resident(v) => v.bytes.len(),
            Primary::OnDisk { .. } => 0,
        };
        PreparedInstance {
            primary_len,
            origin,
            sop_class_uid: identity.sop_class_uid,
            sop_instance_uid: identity.sop_instance_uid,
            study_instance_uid: identity.study_instance_uid,
            series_instance_uid: identity.series_instance_uid,
            patient_id: identity.patient_id,
            fresh_uids,
            traced: false,
            primary,
            others: RwLock::new(Vec::new()),
            commands: Default::default(),
        }
    }

    /// SOP Class UID (the presentation context's abstract syntax).
    pub fn sop_class_uid(&self) -> &str {
        &self.sop_class_uid
    }

    /// SOP Instance UID as prepared (the file's; with fresh UIDs each send has its own).
    pub fn sop_instance_uid(&self) -> &str {
        &self.sop_instance_uid
    }

    /// The file's Study Instance UID, if it has one.
    pub fn study_instance_uid(&self) -> Option<&str> {
        self.study_instance_uid.as_deref()
    }

    /// The file's Series Instance UID, if it has one.
    pub fn series_instance_uid(&self) -> Option<&str> {
        self.series_instance_uid.as_deref()
    }

    /// The file's Patient ID, if it has one: with fresh UIDs, a load run puts only
    /// instances of one patient and one original study into each fresh study.
    pub fn patient_id(&self) -> Option<&str> {
        self.patient_id.as_deref()
    }

    /// The transfer syntax of the primary encoding (the file's, except that fresh UIDs
    /// turn a deflated file into Explicit VR Little Endian: compressed bytes cannot be
    /// patched).
    pub fn transfer_syntax(&self) -> &str {
        match &self.primary {
            Primary::Resident(v) => &v.transfer_syntax,
            Primary::OnDisk {
                transfer_syntax, ..
            } => transfer_syntax,
        }
    }

    /// Whether each send writes fresh UIDs into the data set.
    pub fn has_fresh_uids(&self) -> bool {
        self.fresh_uids
    }

    /// Each send also carries dicom-auto's trace element ([`dimse::trace`]: creator
    /// `DICOM-AUTO TRACE`, (0099,xx01), LO) holding its SOP Instance UID, so that the
    /// destination sink matches it to its send through a router that replaces UIDs.
    ///
    /// # Errors
    /// [`SenderError::InvalidOption`] for an instance sent as it is (its bytes are the
    /// file's, verbatim: there is nothing to trace it by but its own UID);
    /// [`SenderError::Prepare`] when the encoding cannot be made again.
    pub fn traced(mut self) -> Result<Self, SenderError> {
        if !self.fresh_uids {
            return Err(SenderError::InvalidOption {
                name: "trace",
                value: self.sop_instance_uid.clone(),
                expected: "an instance prepared with fresh UIDs (the trace value is each send's own SOP Instance UID)".into(),
            });
        }
        self.traced = true;
        if let Primary::Resident(variant) = &self.primary {
            let what = || format!("data set {}", self.sop_instance_uid);
            let fail = |detail: String| SenderError::Prepare {
                what: what(),
                detail,
            };
            let ts = TransferSyntaxRegistry
                .get(&variant.transfer_syntax)
                .ok_or_else(|| {
                    fail(format!(
                        "unknown transfer syntax {}",
                        variant.transfer_syntax
                    ))
                })?;
            let object = InMemDicomObject::read_dataset_with_ts(&variant.bytes[..], ts)
                .map_err(|e| fail(ErrorChain(&e).to_string()))?;
            let ts = variant.transfer_syntax.clone();
            let traced = encode(&object, &ts, true, true, variant.bytes.len(), &what)?;
            self.primary_len = traced.bytes.len();
            self.primary = Primary::Resident(Arc::new(traced));
        }
        Ok(self)
    }

    /// Whether each send carries the trace element ([`traced`](Self::traced)).
    pub fn is_traced(&self) -> bool {
        self.traced
    }

    /// Size of the primary encoding in bytes (for an [inspected](Self::inspect) file
    /// with fresh UIDs, its data set's: the encoding differs by three UIDs' lengths).
    pub fn encoded_len(&self) -> usize {
        self.primary_len
    }

    /// Whether the primary encoding is held in memory (prepared from an object, or
    /// read by [`from_file`](Self::from_file)) rather than left in its file
    /// ([`inspect`](Self::inspect)).
    pub fn is_resident(&self) -> bool {
        matches!(self.primary, Primary::Resident(_))
    }

    /// The file this instance was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(p) => Some(p),
            _ => None,
        }
    }

    /// The primary encoding: the one in memory, or for an [inspected](Self::inspect)
    /// file, read from it now (and not kept).
    ///
    /// # Errors
    /// [`SenderError::File`] when the file cannot be read again or has changed;
    /// [`SenderError::Prepare`] when it cannot be encoded with fresh UIDs.
    pub fn primary(&self) -> Result<Arc<Variant>, SenderError> {
        match &self.primary {
            Primary::Resident(v) => Ok(v.clone()),
            Primary::OnDisk {
                transfer_syntax,
                body_start,
                file_len,
            } => self
                .read_from_disk(transfer_syntax, *body_start, *file_len)
                .map(Arc::new),
        }
    }

    /// [`primary`](Self::primary) for a send made once: an inspected file sent as it
    /// is stays in its file, opened (and its length checked) here and read as the send
    /// goes out ([`dimse::write_fragments_from`]), so no copy of a large data set is
    /// held in memory; anything else as [`primary`](Self::primary).
    pub(crate) fn primary_streamed(&self) -> Result<Arc<Variant>, SenderError> {
        match &self.primary {
            Primary::OnDisk {
                transfer_syntax,
                body_start,
                file_len,
            } if !self.fresh_uids => {
                let (path, file) = self.open_inspected(*file_len)?;
                Ok(Arc::new(Variant {
                    transfer_syntax: transfer_syntax.clone(),
                    bytes: Vec::new(),
                    slots: None,
                    in_file: Some(FileBody {
                        path: path.clone(),
                        file,
                        start: *body_start,
                        len: self.primary_len as u64,
                    }),
                }))
            }
            _ => self.primary(),
        }
    }

    /// The encoding in `ts`, made (and kept) on first request: a re-encoding for
    /// another uncompressed syntax, or a decompression when the primary syntax is
    /// compressed and `ts` is not.
    ///
    /// # Errors
    /// The reason, as text, when the syntax is unknown, the codec is missing or the
    /// file cannot be read again; the same error is returned on every later request.
    pub fn variant(&self, ts: &str) -> Result<Arc<Variant>, String> {
        if ts == self.transfer_syntax() {
            return self.primary().map_err(|e| e.to_string());
        }
        if let Some((_, found)) = self.others.read().iter().find(|(t, _)| t == ts) {
            return found.clone();
        }
        let mut others = self.others.write();
        if let Some((_, found)) = others.iter().find(|(t, _)| t == ts) {
            return found.clone();
        }
        let made = self.make_variant(ts).map(Arc::new);
        others.push((ts.to_string(), made.clone()));
        made
    }

    fn make_variant(&self, ts: &str) -> Result<Variant, String> {
        let what = || match &self.origin {
            Origin::File(p) => p.display().to_string(),
            _ => format!("data set {}", self.sop_instance_uid),
        };
        let mut object = match &self.origin {
            Origin::Encoded => return Err("prepared for one transfer syntax only".into()),
            Origin::File(p) => OpenFileOptions::new()
                .open_file(p)
                .map_err(|e| format!("cannot read {} again: {}", p.display(), ErrorChain(&e)))?,
            Origin::Object(o) => (**o).clone(),
        };
        let source_ts = meta_ts(object.meta());
        if is_encapsulated(&source_ts) && !is_encapsulated(ts) {
            decode_pixel_data(&mut object, &what).map_err(|e| e.to_string())?;
        }
        encode(
            &object,
            ts,
            self.fresh_uids,
            self.traced,
            self.primary_len,
            &what,
        )
        .map_err(|e| e.to_string())
    }

    /// The command set of a C-STORE-RQ for this instance, with the fields that change
    /// per send at known offsets.
    pub(crate) fn command_template(&self, priority: dimse::Priority) -> &CommandTemplate {
        let slot = match priority {
            dimse::Priority::Low => 0,
            dimse::Priority::Medium => 1,
            dimse::Priority::High => 2,
        };
        self.commands[slot].get_or_init(|| {
            let uid = if self.fresh_uids {
                UidRoot::placeholder()
                    .uid(UidLevel::Instance, 0)
                    .as_str()
                    .to_string()
            } else {
                self.sop_instance_uid.clone()
            };
            CommandTemplate::new(&self.sop_class_uid, &uid, priority, self.fresh_uids)
        })
    }
}

/// SOP class, SOP instance, series, study and patient of a data set.
struct Identity {
    sop_class_uid: String,
    sop_instance_uid: String,
    study_instance_uid: Option<String>,
    series_instance_uid: Option<String>,
    patient_id: Option<String>,
}

impl Identity {
    fn of(object: &DefaultDicomObject, what: &dyn Fn() -> String) -> Result<Self, SenderError> {
        let text = |tag: Tag| {
            object
                .get(tag)
                .and_then(|e| e.to_str().ok())
                .map(|s| dimse::trim_value(&s).to_string())
                .filter(|s| !s.is_empty())
        };
        let missing = |name: &str| SenderError::Prepare {
            what: what(),
            detail: format!("no {name}"),
        };
        let meta = object.meta();
        let sop_class_uid = text(tags::SOP_CLASS_UID)
            .or_else(|| {
                Some(meta.media_storage_sop_class_uid().to_string()).filter(|s| !s.is_empty())
            })
            .ok_or_else(|| missing("SOP Class UID (0008,0016)"))?;
        let sop_instance_uid = text(tags::SOP_INSTANCE_UID)
            .or_else(|| {
                Some(meta.media_storage_sop_instance_uid().to_string()).filter(|s| !s.is_empty())
            })
            .ok_or_else(|| missing("SOP Instance UID (0008,0018)"))?;
        Ok(Identity {
            sop_class_uid,
            sop_instance_uid,
            study_instance_uid: text(tags::STUDY_INSTANCE_UID),
            series_instance_uid: text(tags::SERIES_INSTANCE_UID),
            patient_id: text(tags::PATIENT_ID),
        })
    }
}

fn meta_ts(meta: &FileMetaTable) -> String {
    dimse::trim_value(meta.transfer_syntax()).to_string()
}

/// The syntax fresh UIDs are encoded in: deflated bytes cannot be patched, so a
/// deflated instance is sent in Explicit VR Little Endian instead.
fn fresh_uid_syntax(ts: &str) -> String {
    if ts == dicom_dictionary_std::uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN {
        EXPLICIT_VR_LITTLE_ENDIAN.uid().to_string()
    } else {
        ts.to_string()
    }
}

/// Whether the syntax carries encapsulated (compressed) pixel data. Unknown syntaxes
/// count as encapsulated: nothing can be assumed about their pixel data.
pub(crate) fn is_encapsulated(ts: &str) -> bool {
    TransferSyntaxRegistry
        .get(ts)
        .is_none_or(|t| t.is_encapsulated_pixel_data())
}

/// Encodes the data set of `object` in `ts`; with `fresh`, Study, Series and SOP
/// Instance UIDs are placeholders whose offsets are recorded.
fn encode(
    object: &InMemDicomObject,
    ts: &str,
    fresh: bool,
    traced: bool,
    expected_len: usize,
    what: &dyn Fn() -> String,
) -> Result<Variant, SenderError> {
    let fail = |detail: String| SenderError::Prepare {
        what: what(),
        detail,
    };
    let syntax = TransferSyntaxRegistry
        .get(ts)
        .ok_or_else(|| fail(format!("unknown transfer syntax {ts}")))?;
    let placeholder = UidRoot::placeholder();
    let placeholders = [
        (
            tags::STUDY_INSTANCE_UID,
            placeholder.uid(UidLevel::Study, 0),
        ),
        (
            tags::SERIES_INSTANCE_UID,
            placeholder.uid(UidLevel::Series, 0),
        ),
        (
            tags::SOP_INSTANCE_UID,
            placeholder.uid(UidLevel::Instance, 0),
        ),
    ];
    // Sized for the data set at once: growing by doubling would hold up to twice a
    // large image while it is encoded.
    let mut bytes = Vec::with_capacity(expected_len.saturating_add(1024).max(64 * 1024));
    if fresh {
        let mut data: InMemDicomObject = object.clone();
        for (tag, uid) in &placeholders {
            data.put_str(*tag, VR::UI, uid.as_str());
        }
        if traced {
            dimse::trace::write(&mut data, placeholders[2].1.as_str());
        }
        data.write_dataset_with_ts(&mut bytes, syntax)
    } else {
        object.write_dataset_with_ts(&mut bytes, syntax)
    }
    .map_err(|e| fail(format!("cannot encode in {ts}: {}", ErrorChain(&e))))?;
    let slots = if fresh {
        let find = |uid: &FreshUid| {
            find_unique(&bytes, uid.as_bytes()).ok_or_else(|| {
                fail(format!(
                    "placeholder UID {uid} not found exactly once after encoding"
                ))
            })
        };
        let (instance, trace) = if traced {
            // The SOP Instance UID (0008,0018) comes first, the trace (0099,xx01) after.
            match find_all(&bytes, placeholders[2].1.as_bytes())[..] {
                [instance, trace] => (instance, Some(trace)),
                _ => {
                    return Err(fail(format!(
                        "placeholder UID {} not found exactly twice (SOP Instance UID and trace) after encoding",
                        placeholders[2].1
                    )));
                }
            }
        } else {
            (find(&placeholders[2].1)?, None)
        };
        Some(UidSlots {
            study: find(&placeholders[0].1)?,
            series: find(&placeholders[1].1)?,
            instance,
            trace,
        })
    } else {
        None
    };
    Ok(Variant {
        transfer_syntax: ts.to_string(),
        bytes,
        slots,
        in_file: None,
    })
}

/// The offsets of every occurrence of `needle` in `haystack`.
fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = haystack[from..].iter().position(|&b| b == needle[0]) {
        let at = from + rel;
        if haystack[at..].starts_with(needle) {
            found.push(at);
        }
        from = at + 1;
    }
    found
}

/// The offset of the only occurrence of `needle` in `haystack`.
fn find_unique(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut found = None;
    let first = needle[0];
    let mut from = 0;
    while let Some(rel) = haystack[from..].iter().position(|&b| b == first) {
        let at = from + rel;
        if haystack[at..].starts_with(needle) {
            if found.is_some() {
                return None;
            }
            found = Some(at);
        }
        from = at + 1;
    }
    found
}

/// Decodes encapsulated pixel data to native Explicit VR Little Endian (loader's one
/// decoder), naming the instance in the error.
fn decode_pixel_data(
    object: &mut DefaultDicomObject,
    what: &dyn Fn() -> String,
) -> Result<(), SenderError> {
    loader::decompress_in_place(object).map_err(|e| SenderError::Prepare {
        what: what(),
        detail: e.to_string(),
    })
}

/// A C-STORE-RQ command set encoded once, with the offsets of the values that change
/// per send (Message ID, and the Affected SOP Instance UID for fresh UIDs).
#[derive(Debug, Clone)]
pub(crate) struct CommandTemplate {
    bytes: Vec<u8>,
    message_id_at: usize,
    instance_uid_at: Option<usize>,
}

impl CommandTemplate {
    fn new(
        sop_class_uid: &str,
        sop_instance_uid: &str,
        priority: dimse::Priority,
        fresh: bool,
    ) -> Self {
        let bytes =
            dimse::Command::c_store_rq(1, sop_class_uid, sop_instance_uid, priority).encode();
        let message_id_at = value_offset(&bytes, tags::MESSAGE_ID)
            .expect("a C-STORE-RQ always carries a Message ID");
        let instance_uid_at = fresh.then(|| {
            value_offset(&bytes, tags::AFFECTED_SOP_INSTANCE_UID)
                .expect("a C-STORE-RQ always carries an Affected SOP Instance UID")
        });
        CommandTemplate {
            bytes,
            message_id_at,
            instance_uid_at,
        }
    }

    /// Writes this send's command set into `out`.
    pub(crate) fn fill(&self, out: &mut Vec<u8>, message_id: u16, instance_uid: Option<&FreshUid>) {
        out.clear();
        out.extend_from_slice(&self.bytes);
        out[self.message_id_at..self.message_id_at + 2].copy_from_slice(&message_id.to_le_bytes());
        if let (Some(at), Some(uid)) = (self.instance_uid_at, instance_uid) {
            out[at..at + FRESH_UID_LEN].copy_from_slice(uid.as_bytes());
        }
    }
}

/// Offset of an element's value in an Implicit VR Little Endian command set.
fn value_offset(bytes: &[u8], tag: Tag) -> Option<usize> {
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        if Tag(group, element) == tag {
            return Some(pos + 8);
        }
        pos += 8 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use dimse::{Command, Priority};

    #[test]
    fn command_template_patches_give_the_same_bytes_as_encoding_afresh() {
        let placeholder = UidRoot::placeholder().uid(UidLevel::Instance, 0);
        let template = CommandTemplate::new(
            "1.2.840.10008.5.1.4.1.1.2",
            placeholder.as_str(),
            Priority::Medium,
            true,
        );
        let uid = UidRoot::random().uid(UidLevel::Instance, 42);
        let mut out = Vec::new();
        template.fill(&mut out, 513, Some(&uid));
        let expected = Command::c_store_rq(
            513,
            "1.2.840.10008.5.1.4.1.1.2",
            uid.as_str(),
            Priority::Medium,
        )
        .encode();
        assert_eq!(out, expected);
    }

    #[test]
    fn a_traced_instance_carries_its_send_uid_in_the_trace_element_at_a_patchable_slot() {
        let object = loader::synth::InstanceBuilder::new(loader::synth::Modality::Ct)
            .build()
            .unwrap();
        let plain = PreparedInstance::from_object(&object, UidStrategy::Fresh).unwrap();
        assert!(!plain.is_traced());
        let traced = plain.traced().unwrap();
        assert!(traced.is_traced());
        let variant = traced.primary().unwrap();
        let slots = variant.slots().unwrap();
        let trace = slots.trace.expect("a trace slot");
        let placeholder = UidRoot::placeholder().uid(UidLevel::Instance, 0);
        assert_eq!(
            &variant.bytes()[trace..trace + FRESH_UID_LEN],
            placeholder.as_bytes()
        );
        let ts = TransferSyntaxRegistry
            .get(variant.transfer_syntax())
            .unwrap();
        let parsed = InMemDicomObject::read_dataset_with_ts(variant.bytes(), ts).unwrap();
        let block = dimse::trace::private_block(
            &parsed,
            dimse::trace::GROUP,
            dimse::trace::PRIVATE_CREATOR,
        )
        .expect("the trace creator");
        let value = parsed
            .get(Tag(dimse::trace::GROUP, (u16::from(block) << 8) | 0x01))
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(value, placeholder.as_str());
        // As is, there is nothing to trace a send by but the file's own UID.
        let as_is = PreparedInstance::from_object(&object, UidStrategy::AsIs).unwrap();
        assert!(as_is.traced().is_err());
    }

    #[test]
    fn find_unique_refuses_ambiguous_placeholders() {
        assert_eq!(find_unique(b"xxabcxx", b"abc"), Some(2));
        assert_eq!(find_unique(b"abcabc", b"abc"), None);
        assert_eq!(find_unique(b"xyz", b"abc"), None);
    }
}
