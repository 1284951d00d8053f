//! One synthetic instance: attributes for its modality, pixels, encoding, overrides.

use std::path::Path;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::value::{DataSetSequence, PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, Length, Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, tags};
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};
use dicom_pixeldata::Transcode;
use dicom_transfer_syntax_registry::entries::JPEG_BASELINE;
use dimse::VrCheck;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::pixels::{ImageGeometry, reference_pixels};
use super::rle::rle_encode_frame;
use super::{Encoding, Modality, Patient, Series, Study, SynthError};

/// Implementation Class UID written in the meta group of every generated file (a fixed `2.25`
/// UID so regenerated samples are byte-identical).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.137886135233420939468410366930361412593";
/// Implementation Version Name written in the meta group.
pub const IMPLEMENTATION_VERSION_NAME: &str = "DICOM_AUTO_010";

#[derive(Debug, Clone)]
enum Key {
    Tag(Tag),
    Expr(String),
}

#[derive(Debug, Clone)]
enum Override {
    Set(Key, String),
    SetWithVr(Tag, VR, String),
    Remove(Key),
}

/// Builds one realistic synthetic instance.
///
/// Defaults: a small image for the modality (CT/MR 256x256 12-bit, DX/CR 512x512, OP/ES 640x480
/// RGB, US 640x480 grey, OPT 4 frames of 256x128, OPV no pixels), Explicit VR Little Endian, and
/// a random patient, study and series. Every default can be replaced; any attribute can be set or
/// removed last, so a test can make exactly the edge case it needs (blank Study Date, odd
/// Accession Number...).
///
/// ```
/// use loader::synth::{Encoding, InstanceBuilder, Modality};
///
/// let object = InstanceBuilder::new(Modality::Opv)
///     .seed(1)
///     .set_keyword("SeriesDescription", "SITA Standard 24-2 GPA")
///     .build()?;
/// assert_eq!(object.element_by_name("Modality")?.to_str()?, "OPV");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct InstanceBuilder {
    modality: Modality,
    encoding: Encoding,
    geometry: Option<ImageGeometry>,
    patient: Option<Patient>,
    study: Option<Study>,
    series: Option<Series>,
    instance_number: u32,
    sop_instance_uid: Option<String>,
    seed: Option<u64>,
    overrides: Vec<Override>,
}

impl InstanceBuilder {
    /// An instance of `modality` with the defaults above.
    pub fn new(modality: Modality) -> Self {
        Self {
            modality,
            encoding: Encoding::ExplicitVrLittleEndian,
            geometry: None,
            patient: None,
            study: None,
            series: None,
            instance_number: 1,
            sop_instance_uid: None,
            seed: None,
            overrides: Vec::new(),
        }
    }

    /// The modality's default image geometry, or `None` for OPV (no pixel data).
    pub fn default_geometry(modality: Modality) -> Option<ImageGeometry> {
        Some(match modality {
            Modality::Ct | Modality::Mr => ImageGeometry::mono16(256, 256, 12),
            Modality::Dx => ImageGeometry::mono16(512, 512, 14),
            Modality::Cr => ImageGeometry::mono16(512, 512, 12),
            Modality::Op | Modality::Es => ImageGeometry::rgb8(480, 640),
            Modality::Us => ImageGeometry::mono8(480, 640),
            Modality::Opt => ImageGeometry::mono8(128, 256).with_frames(4),
            Modality::Opv => return None,
        })
    }

    /// Transfer syntax and pixel encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Image size and sample format (ignored for OPV).
    pub fn geometry(mut self, geometry: ImageGeometry) -> Self {
        self.geometry = Some(geometry);
        self
    }

    /// Patient-level attributes (random if not given).
    pub fn patient(mut self, patient: Patient) -> Self {
        self.patient = Some(patient);
        self
    }

    /// Study-level attributes (random if not given).
    pub fn study(mut self, study: Study) -> Self {
        self.study = Some(study);
        self
    }

    /// Series-level attributes (random if not given). Its modality wins over the builder's.
    pub fn series(mut self, series: Series) -> Self {
        self.modality = series.modality;
        self.series = Some(series);
        self
    }

    /// Instance Number (0020,0013); 1 by default.
    pub fn instance_number(mut self, number: u32) -> Self {
        self.instance_number = number;
        self
    }

    /// SOP Instance UID (random `2.25.` UID if not given).
    pub fn sop_instance_uid(mut self, uid: impl Into<String>) -> Self {
        self.sop_instance_uid = Some(uid.into());
        self
    }

    /// Fixes every random choice (hierarchy not given, UIDs, pixel noise). Without a seed each
    /// build draws from the operating system's entropy.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets a standard attribute after all defaults; the VR comes from the dictionary, numbers
    /// are parsed for binary VRs, multiple values are separated by `\`.
    pub fn set(mut self, tag: Tag, value: impl Into<String>) -> Self {
        self.overrides
            .push(Override::Set(Key::Tag(tag), value.into()));
        self
    }

    /// Like [`set`](Self::set), naming the attribute by keyword (`"SeriesDescription"`) or tag
    /// expression (`"(0008,103E)"`). An unknown name fails [`build`](Self::build).
    pub fn set_keyword(mut self, keyword: &str, value: impl Into<String>) -> Self {
        self.overrides
            .push(Override::Set(Key::Expr(keyword.to_string()), value.into()));
        self
    }

    /// Sets an attribute with an explicit string VR (private tags, dictionary VR ambiguities).
    pub fn set_with_vr(mut self, tag: Tag, vr: VR, value: impl Into<String>) -> Self {
        self.overrides
            .push(Override::SetWithVr(tag, vr, value.into()));
        self
    }

    /// Removes an attribute after all defaults (e.g. a missing Study Date).
    pub fn remove(mut self, tag: Tag) -> Self {
        self.overrides.push(Override::Remove(Key::Tag(tag)));
        self
    }

    /// Removes an attribute named by keyword or tag expression.
    pub fn remove_keyword(mut self, keyword: &str) -> Self {
        self.overrides
            .push(Override::Remove(Key::Expr(keyword.to_string())));
        self
    }

    /// The native pixels the instance is built from, before encoding: `Some` only for a seeded
    /// builder of a modality with pixels. Tests compare decoded pixels with this.
    pub fn reference_pixels(&self) -> Option<Vec<u8>> {
        Some(reference_pixels(&self.effective_geometry()?, self.seed?))
    }

    /// The geometry the instance will have (`None` for OPV).
    pub fn effective_geometry(&self) -> Option<ImageGeometry> {
        if !self.modality.has_pixels() {
            return None;
        }
        self.geometry
            .or_else(|| Self::default_geometry(self.modality))
    }

    /// Makes the object in memory.
    ///
    /// # Errors
    /// [`SynthError`] for an unknown keyword, a value that does not fit its VR, a geometry or
    /// encoding the modality cannot have, or an encoder failure.
    pub fn build(&self) -> Result<DefaultDicomObject, SynthError> {
        let mut rng = match self.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        // Draw in a fixed order so a seed always means the same instance.
        let patient = match &self.patient {
            Some(p) => p.clone(),
            None => Patient::random(&mut rng),
        };
        let study = match &self.study {
            Some(s) => s.clone(),
            None => Study::random(&mut rng, self.modality),
        };
        let series = match &self.series {
            Some(s) => s.clone(),
            None => Series::random(&mut rng, self.modality, 1),
        };
        let sop_instance_uid = match &self.sop_instance_uid {
            Some(uid) => uid.clone(),
            None => dimse::uid_from_rng(&mut rng),
        };
        // Pixels are seeded by the builder's seed itself so `reference_pixels(geometry, seed)`
        // reproduces them without replaying the draws above.
        let pixel_seed = self.seed.unwrap_or_else(|| rng.random());
        let geometry = self.checked_geometry()?;

        let modality = self.modality;
        let sop_class_uid = match geometry {
            Some(g) if modality == Modality::Us && g.frames > 1 => {
                dicom_dictionary_std::uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE
            }
            _ => modality.sop_class_uid(),
        };

        let mut object = InMemDicomObject::new_empty();
        let mut put = |tag: Tag, text: &str| -> Result<(), SynthError> {
            object.put(element_from_text(tag, text)?);
            Ok(())
        };
        put(tags::SPECIFIC_CHARACTER_SET, "ISO_IR 100")?;
        put(tags::IMAGE_TYPE, image_type(modality))?;
        put(tags::SOP_CLASS_UID, sop_class_uid)?;
        put(tags::SOP_INSTANCE_UID, &sop_instance_uid)?;
        put(tags::STUDY_DATE, &study.date)?;
        put(tags::SERIES_DATE, &study.date)?;
        put(tags::CONTENT_DATE, &study.date)?;
        put(tags::STUDY_TIME, &study.time)?;
        put(tags::SERIES_TIME, &study.time)?;
        put(tags::CONTENT_TIME, &study.time)?;
        put(tags::ACCESSION_NUMBER, &study.accession_number)?;
        put(tags::MODALITY, modality.code())?;
        let (manufacturer, model) = device(modality);
        put(tags::MANUFACTURER, manufacturer)?;
        put(tags::INSTITUTION_NAME, &study.institution)?;
        put(tags::REFERRING_PHYSICIAN_NAME, &study.referring_physician)?;
        put(tags::STUDY_DESCRIPTION, &study.description)?;
        put(tags::SERIES_DESCRIPTION, &series.description)?;
        put(tags::MANUFACTURER_MODEL_NAME, model)?;
        put(tags::PATIENT_NAME, &patient.name)?;
        put(tags::PATIENT_ID, &patient.id)?;
        put(tags::PATIENT_BIRTH_DATE, &patient.birth_date)?;
        put(tags::PATIENT_SEX, &patient.sex)?;
        put(tags::STUDY_INSTANCE_UID, &study.instance_uid)?;
        put(tags::SERIES_INSTANCE_UID, &series.instance_uid)?;
        put(tags::STUDY_ID, &study.id)?;
        put(tags::SERIES_NUMBER, &series.number.to_string())?;
        put(tags::INSTANCE_NUMBER, &self.instance_number.to_string())?;
        let laterality = if series.number % 2 == 1 { "R" } else { "L" };
        for (tag, text) in modality_attributes(modality, self.instance_number, laterality) {
            put(tag, &text)?;
        }
        for (tag, text) in anatomy_attributes(modality, &series.description, laterality) {
            put(tag, &text)?;
        }
        if modality == Modality::Op {
            // The Ophthalmic Photography IOD requires the date and time as one DateTime.
            put(
                tags::ACQUISITION_DATE_TIME,
                &format!("{}{}", study.date, study.time),
            )?;
            put(
                tags::SYNCHRONIZATION_FRAME_OF_REFERENCE_UID,
                &derived_uid(&series.instance_uid),
            )?;
        }
        if matches!(modality, Modality::Ct | Modality::Mr | Modality::Opt) {
            // One frame of reference per study: the series of a study share patient position.
            let frame_of_reference = derived_uid(&study.instance_uid);
            put(tags::FRAME_OF_REFERENCE_UID, &frame_of_reference)?;
        }
        for (tag, items) in modality_sequences(modality, &series.description) {
            object.put(DataElement::new(
                tag,
                VR::SQ,
                Value::from(DataSetSequence::from(items)),
            ));
        }
        if modality == Modality::Opv {
            put_visual_field_points(&mut object, &mut rng);
        }
        let acquisition_date_time = format!("{}{}", study.date, study.time);
        for element in ophthalmic_elements(
            modality,
            laterality,
            &acquisition_date_time,
            geometry.map_or(1, |g| g.frames),
            &sop_instance_uid,
        )? {
            object.put(element);
        }
        if let Some(g) = geometry {
            put_image_pixel(&mut object, &g, pixel_seed, modality)?;
        }
        self.apply_overrides(&mut object)?;

        let meta = FileMetaTableBuilder::new()
            .transfer_syntax(Encoding::ExplicitVrLittleEndian.transfer_syntax_uid())
            .media_storage_sop_class_uid(sop_class_uid)
            .media_storage_sop_instance_uid(sop_instance_uid.as_str())
            .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
            .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
        let mut file = object.with_meta(meta).map_err(|e| self.encode_error(&e))?;
        self.encode(&mut file, geometry)?;
        if self.encoding == Encoding::JpegBaseline {
            file.put(DataElement::new(
                tags::LOSSY_IMAGE_COMPRESSION_METHOD,
                VR::CS,
                PrimitiveValue::from("ISO_10918_1"),
            ));
        }
        // The JPEG encoder adds Number of Frames; single-frame IODs do not have it.
        if geometry.is_some_and(|g| g.frames == 1) && !multi_frame_iod(modality) {
            file.remove_element(tags::NUMBER_OF_FRAMES);
        }
        Ok(file)
    }

    /// Builds the object and writes it to `path` atomically (temporary file in the same folder,
    /// then rename), creating parent folders. Returns the object written.
    ///
    /// # Errors
    /// As [`build`](Self::build), plus [`SynthError::Write`].
    pub fn write_to(&self, path: impl AsRef<Path>) -> Result<DefaultDicomObject, SynthError> {
        let object = self.build()?;
        write_atomically(&object, path.as_ref())?;
        Ok(object)
    }

    fn checked_geometry(&self) -> Result<Option<ImageGeometry>, SynthError> {
        let modality = self.modality;
        let unsupported = |reason| SynthError::UnsupportedEncoding {
            modality,
            encoding: self.encoding,
            reason,
        };
        let Some(geometry) = self.effective_geometry() else {
            return if self.encoding.is_compressed() {
                Err(unsupported("it has no pixel data to compress"))
            } else {
                Ok(None)
            };
        };
        geometry
            .validate()
            .map_err(|reason| SynthError::BadGeometry { modality, reason })?;
        if geometry.frames > 1 && !matches!(modality, Modality::Opt | Modality::Us) {
            return Err(SynthError::BadGeometry {
                modality,
                reason: format!(
                    "{} frames, but its storage SOP class is single-frame",
                    geometry.frames
                ),
            });
        }
        if self.encoding == Encoding::JpegBaseline && geometry.bits_allocated != 8 {
            return Err(unsupported("JPEG Baseline holds 8-bit samples only"));
        }
        Ok(Some(geometry))
    }

    fn apply_overrides(&self, object: &mut InMemDicomObject) -> Result<(), SynthError> {
        let resolve = |key: &Key| -> Result<Tag, SynthError> {
            match key {
                Key::Tag(tag) => Ok(*tag),
                Key::Expr(expr) => tag_of(expr),
            }
        };
        for change in &self.overrides {
            match change {
                Override::Set(key, value) => {
                    object.put(element_from_text(resolve(key)?, value)?);
                }
                Override::SetWithVr(tag, vr, value) => {
                    object.put(DataElement::new(
                        *tag,
                        *vr,
                        PrimitiveValue::from(value.as_str()),
                    ));
                }
                Override::Remove(key) => {
                    object.remove_element(resolve(key)?);
                }
            }
        }
        Ok(())
    }

    fn encode(
        &self,
        file: &mut DefaultDicomObject,
        geometry: Option<ImageGeometry>,
    ) -> Result<(), SynthError> {
        match self.encoding {
            Encoding::ExplicitVrLittleEndian => Ok(()),
            Encoding::ImplicitVrLittleEndian => {
                file.meta_mut().set_transfer_syntax(
                    &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN,
                );
                Ok(())
            }
            Encoding::JpegBaseline => file
                .transcode(&JPEG_BASELINE.erased())
                .map_err(|e| self.encode_error(&e)),
            Encoding::RleLossless => {
                let g = geometry.ok_or(SynthError::UnsupportedEncoding {
                    modality: self.modality,
                    encoding: self.encoding,
                    reason: "it has no pixel data to compress",
                })?;
                let native = file
                    .element(tags::PIXEL_DATA)
                    .map_err(|e| self.encode_error(&e))?
                    .to_bytes()
                    .map_err(|e| self.encode_error(&e))?
                    .into_owned();
                let frames: Vec<Vec<u8>> = native
                    .chunks_exact(g.frame_len())
                    .map(|frame| {
                        rle_encode_frame(
                            frame,
                            g.rows,
                            g.columns,
                            g.samples_per_pixel,
                            g.bits_allocated / 8,
                        )
                    })
                    .collect();
                // Basic Offset Table: where each frame's item starts, counted from the first
                // item; each item has an 8-byte header.
                let mut offsets = Vec::with_capacity(frames.len());
                let mut position = 0u32;
                for frame in &frames {
                    offsets.push(position);
                    position += 8 + frame.len() as u32;
                }
                file.put(DataElement::new_with_len(
                    tags::PIXEL_DATA,
                    VR::OB,
                    Length::UNDEFINED,
                    PixelFragmentSequence::new(offsets, frames),
                ));
                file.meta_mut()
                    .set_transfer_syntax(&dicom_transfer_syntax_registry::entries::RLE_LOSSLESS);
                Ok(())
            }
        }
    }

    fn encode_error(&self, error: &dyn std::error::Error) -> SynthError {
        SynthError::Encode {
            modality: self.modality,
            detail: dimse::ErrorChain(error).to_string(),
        }
    }
}

/// Writes `object` to `path` through a temporary sibling and a rename, so a reader never sees a
/// half-written file and an interrupted run leaves no truncated sample behind.
pub(crate) fn write_atomically(object: &DefaultDicomObject, path: &Path) -> Result<(), SynthError> {
    crate::AtomicFile::new(path)
        .create_parent_dirs(true)
        .write(|out| object.write_all(out).map_err(Box::new))
        .map_err(|e| SynthError::Write {
            path: path.to_path_buf(),
            detail: dimse::ErrorChain(&e).to_string(),
        })
}

/// Builds an element from text, taking the VR from the standard dictionary. The text is not
/// checked against the VR's rules (only numbers must parse), so a test can make exactly the
/// invalid value it needs.
fn element_from_text(tag: Tag, text: &str) -> Result<DataElement<InMemDicomObject>, SynthError> {
    let vr = StandardDataDictionary
        .by_tag(tag)
        .map(|entry| entry.vr().relaxed())
        .unwrap_or(VR::UN);
    let value = dimse::text_to_value(vr, text, VrCheck::Unchecked).map_err(|source| {
        SynthError::BadValue {
            tag: tag.to_string(),
            vr: String::from(vr.to_string()),
            value: text.to_string(),
            source,
        }
    })?;
    Ok(DataElement::new(tag, vr, value))
}

/// A UID derived from another by a fixed rule, for attributes that must be shared by every
/// instance of a study without being stored in [`Study`].
fn derived_uid(base: &str) -> String {
    // FNV-1a over the base UID, twice with different offsets, gives 128 stable bits.
    let fnv = |offset: u64| {
        base.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    dimse::uid_from_bits(
        (u128::from(fnv(0xcbf2_9ce4_8422_2325)) << 64) | u128::from(fnv(0x6c62_272e_07bb_0142)),
    )
}

/// Whether the modality's IOD includes the Multi-frame module (Number of Frames even for one
/// frame).
fn multi_frame_iod(modality: Modality) -> bool {
    matches!(modality, Modality::Op | Modality::Opt)
}

/// One coded concept as a sequence item (Basic Code Sequence Macro).
fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from(scheme),
        ),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
    ])
}

/// Body Part Examined and, for a paired organ, Laterality: validators and strict archives
/// require Laterality exactly when the body part is paired.
fn anatomy_attributes(
    modality: Modality,
    description: &str,
    laterality: &str,
) -> Vec<(Tag, String)> {
    let side = if description.contains("Right") {
        "R"
    } else if description.contains("Left") {
        "L"
    } else {
        laterality
    };
    let (body_part, paired) = match modality {
        Modality::Cr => ("HAND", true),
        Modality::Es if description.contains("Gastro") => ("STOMACH", false),
        Modality::Es => ("COLON", false),
        Modality::Us if description.contains("Kidney") => ("KIDNEY", true),
        Modality::Us if description.contains("Thyroid") => ("THYROID", false),
        Modality::Us => ("ABDOMEN", false),
        _ => return Vec::new(),
    };
    let mut attributes = vec![(tags::BODY_PART_EXAMINED, body_part.to_string())];
    if paired {
        attributes.push((tags::LATERALITY, side.to_string()));
    }
    attributes
}

/// Sequences the modality's IOD requires (coded anatomy, views, device types); empty ones are
/// Type 2 sequences with nothing to say.
fn modality_sequences(modality: Modality, description: &str) -> Vec<(Tag, Vec<InMemDicomObject>)> {
    let sct = |value, meaning| vec![code_item(value, "SCT", meaning)];
    match modality {
        Modality::Dx => vec![
            (tags::ANATOMIC_REGION_SEQUENCE, sct("51185008", "Chest")),
            (
                tags::VIEW_CODE_SEQUENCE,
                sct("399066004", "postero-anterior"),
            ),
            (tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new()),
        ],
        Modality::Es => vec![
            (
                tags::ANATOMIC_REGION_SEQUENCE,
                if description.contains("Gastro") {
                    sct("69695003", "Stomach")
                } else {
                    sct("71854001", "Colon")
                },
            ),
            (tags::ACQUISITION_CONTEXT_SEQUENCE, Vec::new()),
        ],
        Modality::Op => vec![
            (tags::ANATOMIC_REGION_SEQUENCE, sct("81745001", "Eye")),
            (
                tags::ACQUISITION_DEVICE_TYPE_CODE_SEQUENCE,
                sct("409898007", "Fundus Camera"),
            ),
            (tags::REFRACTIVE_STATE_SEQUENCE, Vec::new()),
            (tags::ILLUMINATION_TYPE_CODE_SEQUENCE, Vec::new()),
            (tags::LIGHT_PATH_FILTER_TYPE_STACK_CODE_SEQUENCE, Vec::new()),
            (tags::IMAGE_PATH_FILTER_TYPE_STACK_CODE_SEQUENCE, Vec::new()),
            (tags::LENSES_CODE_SEQUENCE, Vec::new()),
        ],
        _ => Vec::new(),
    }
}

fn image_type(modality: Modality) -> &'static str {
    match modality {
        Modality::Ct => "ORIGINAL\\PRIMARY\\AXIAL",
        Modality::Mr => "ORIGINAL\\PRIMARY\\OTHER",
        _ => "ORIGINAL\\PRIMARY",
    }
}

fn device(modality: Modality) -> (&'static str, &'static str) {
    match modality {
        Modality::Ct => ("SIEMENS", "SOMATOM Definition AS"),
        Modality::Mr => ("GE MEDICAL SYSTEMS", "SIGNA Artist"),
        Modality::Opv => ("Carl Zeiss Meditec", "HFA3 840"),
        Modality::Opt => ("Carl Zeiss Meditec", "CIRRUS HD-OCT 5000"),
        Modality::Op => ("Topcon", "TRC-50DX"),
        Modality::Es => ("OLYMPUS", "CV-190"),
        Modality::Dx => ("Carestream Health", "DRX-Evolution Plus"),
        Modality::Cr => ("FUJIFILM Corporation", "FCR PROFECT CS"),
        Modality::Us => ("Philips", "EPIQ 7"),
    }
}

/// Attributes the modality's IOD requires beyond the common ones.
fn modality_attributes(modality: Modality, instance: u32, laterality: &str) -> Vec<(Tag, String)> {
    let s = |v: &str| v.to_string();
    let z = format!("{:.1}", -f64::from(instance) * 5.0);
    match modality {
        Modality::Ct => vec![
            (tags::BODY_PART_EXAMINED, s("CHEST")),
            (tags::KVP, s("120")),
            (tags::SLICE_THICKNESS, s("5.0")),
            (tags::PATIENT_POSITION, s("HFS")),
            (tags::IMAGE_POSITION_PATIENT, format!("-180.0\\-180.0\\{z}")),
            (tags::IMAGE_ORIENTATION_PATIENT, s("1\\0\\0\\0\\1\\0")),
            (tags::POSITION_REFERENCE_INDICATOR, s("")),
            (tags::SLICE_LOCATION, z),
            (tags::PIXEL_SPACING, s("0.703125\\0.703125")),
            (tags::WINDOW_CENTER, s("40")),
            (tags::WINDOW_WIDTH, s("400")),
            (tags::RESCALE_INTERCEPT, s("-1024")),
            (tags::RESCALE_SLOPE, s("1")),
            (tags::RESCALE_TYPE, s("HU")),
            (tags::ACQUISITION_NUMBER, s("1")),
        ],
        Modality::Mr => vec![
            (tags::BODY_PART_EXAMINED, s("BRAIN")),
            (tags::SCANNING_SEQUENCE, s("SE")),
            (tags::SEQUENCE_VARIANT, s("SK")),
            (tags::SCAN_OPTIONS, s("FS")),
            (tags::MR_ACQUISITION_TYPE, s("2D")),
            (tags::SLICE_THICKNESS, s("5.0")),
            (tags::REPETITION_TIME, s("9000")),
            (tags::ECHO_TIME, s("120")),
            (tags::ECHO_TRAIN_LENGTH, s("16")),
            (tags::MAGNETIC_FIELD_STRENGTH, s("1.5")),
            (tags::PATIENT_POSITION, s("HFS")),
            (tags::IMAGE_POSITION_PATIENT, format!("-120.0\\-120.0\\{z}")),
            (tags::IMAGE_ORIENTATION_PATIENT, s("1\\0\\0\\0\\1\\0")),
            (tags::POSITION_REFERENCE_INDICATOR, s("")),
            (tags::SLICE_LOCATION, z),
            (tags::PIXEL_SPACING, s("0.9375\\0.9375")),
        ],
        Modality::Dx | Modality::Cr => {
            let (body, view) = if modality == Modality::Dx {
                ("CHEST", "PA")
            } else {
                ("HAND", "PA")
            };
            let mut attributes = vec![
                (tags::BODY_PART_EXAMINED, s(body)),
                (tags::VIEW_POSITION, s(view)),
                (tags::PATIENT_ORIENTATION, s("L\\F")),
                (tags::IMAGER_PIXEL_SPACING, s("0.139\\0.139")),
                (tags::BURNED_IN_ANNOTATION, s("NO")),
                (tags::WINDOW_CENTER, s("2048")),
                (tags::WINDOW_WIDTH, s("4096")),
            ];
            if modality == Modality::Dx {
                attributes.extend([
                    (tags::PRESENTATION_INTENT_TYPE, s("FOR PRESENTATION")),
                    (tags::PIXEL_INTENSITY_RELATIONSHIP, s("LOG")),
                    (tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN, s("1")),
                    (tags::RESCALE_INTERCEPT, s("0")),
                    (tags::RESCALE_SLOPE, s("1")),
                    (tags::RESCALE_TYPE, s("US")),
                    (tags::LOSSY_IMAGE_COMPRESSION, s("00")),
                    (tags::IMAGE_LATERALITY, s("U")),
                    (tags::PRESENTATION_LUT_SHAPE, s("IDENTITY")),
                    (tags::DETECTOR_TYPE, s("SCINTILLATOR")),
                    (tags::POSITIONER_TYPE, s("")),
                ]);
            }
            attributes
        }
        Modality::Us => vec![
            (tags::BURNED_IN_ANNOTATION, s("YES")),
            (tags::PATIENT_ORIENTATION, s("")),
        ],
        Modality::Es => vec![
            (tags::BURNED_IN_ANNOTATION, s("NO")),
            (tags::PATIENT_ORIENTATION, s("")),
            // The JPEG transcoder replaces it with 01 (VL Image module, Type 2).
            (tags::LOSSY_IMAGE_COMPRESSION, s("00")),
        ],
        Modality::Op => vec![
            (tags::IMAGE_LATERALITY, s(laterality)),
            (tags::BURNED_IN_ANNOTATION, s("NO")),
            (tags::PATIENT_ORIENTATION, s("")),
            (tags::SYNCHRONIZATION_TRIGGER, s("NO TRIGGER")),
            (tags::ACQUISITION_TIME_SYNCHRONIZED, s("N")),
            (tags::LOSSY_IMAGE_COMPRESSION, s("00")),
            (tags::PATIENT_EYE_MOVEMENT_COMMANDED, s("NO")),
            (tags::HORIZONTAL_FIELD_OF_VIEW, s("45")),
            (tags::EMMETROPIC_MAGNIFICATION, s("")),
            (tags::INTRA_OCULAR_PRESSURE, s("")),
            (tags::PUPIL_DILATED, s("NO")),
            (tags::DETECTOR_TYPE, s("CCD")),
        ],
        Modality::Opt => vec![
            (tags::IMAGE_LATERALITY, s(laterality)),
            (tags::BURNED_IN_ANNOTATION, s("NO")),
            (tags::POSITION_REFERENCE_INDICATOR, s("")),
        ],
        Modality::Opv => vec![
            (tags::MEASUREMENT_LATERALITY, s(laterality)),
            (tags::VISUAL_FIELD_HORIZONTAL_EXTENT, s("27")),
            (tags::VISUAL_FIELD_VERTICAL_EXTENT, s("21")),
            (tags::VISUAL_FIELD_SHAPE, s("RECTANGLE")),
            (tags::BACKGROUND_LUMINANCE, s("10")),
            (tags::STIMULUS_AREA, s("0.43")),
            (tags::STIMULUS_PRESENTATION_TIME, s("200")),
            (tags::VISUAL_FIELD_TEST_DURATION, s("312")),
        ],
    }
}

/// The tag of a keyword of the standard dictionary.
fn tag_of(keyword: &str) -> Result<Tag, SynthError> {
    StandardDataDictionary
        .by_expr(keyword)
        .map(|entry| entry.tag_range().inner())
        .ok_or_else(|| SynthError::UnknownKeyword {
            keyword: keyword.to_string(),
        })
}

/// An element named by keyword, its VR from the dictionary, its value parsed from text.
fn kw(keyword: &str, text: &str) -> Result<DataElement<InMemDicomObject>, SynthError> {
    element_from_text(tag_of(keyword)?, text)
}

/// A sequence named by keyword.
fn kw_seq(
    keyword: &str,
    items: Vec<InMemDicomObject>,
) -> Result<DataElement<InMemDicomObject>, SynthError> {
    let tag = tag_of(keyword)?;
    Ok(DataElement::new(
        tag,
        VR::SQ,
        Value::from(DataSetSequence::from(items)),
    ))
}

/// One sequence item from its elements.
fn item(elements: Vec<DataElement<InMemDicomObject>>) -> InMemDicomObject {
    InMemDicomObject::from_element_iter(elements)
}

/// Attribute Tag element (pointers of the Multi-frame Dimension module).
fn at(tag: Tag, value: Tag) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::AT, PrimitiveValue::from(value))
}

/// The modules of the OPV and OPT IODs that the other modalities do not have: Enhanced General
/// Equipment, the visual field test parameters, reliability, measurement and result flags and
/// the patient's clinical information for the eye tested (OPV); the multi-frame functional
/// groups, dimensions and ophthalmic tomography acquisition parameters (OPT).
fn ophthalmic_elements(
    modality: Modality,
    laterality: &str,
    acquisition_date_time: &str,
    frames: u32,
    sop_instance_uid: &str,
) -> Result<Vec<DataElement<InMemDicomObject>>, SynthError> {
    let code = |value: &str, scheme: &str, meaning: &str| vec![code_item(value, scheme, meaning)];
    match modality {
        Modality::Opv => {
            let white = || code("371251000", "SCT", "White color");
            let eye_sequence = if laterality == "R" {
                "OphthalmicPatientClinicalInformationRightEyeSequence"
            } else {
                "OphthalmicPatientClinicalInformationLeftEyeSequence"
            };
            Ok(vec![
                kw("DeviceSerialNumber", "840-4317")?,
                kw("SoftwareVersions", "1.5.5")?,
                // 10,000 asb (apostilbs) is the brightest Goldmann III stimulus of the HFA;
                // background 31.5 asb = 10 cd/m2.
                kw("MaximumStimulusLuminance", "3183.1")?,
                kw_seq("StimulusColorCodeSequence", white())?,
                kw_seq("BackgroundIlluminationColorCodeSequence", white())?,
                kw_seq(
                    "FixationSequence",
                    vec![item(vec![
                        kw_seq(
                            "FixationMonitoringCodeSequence",
                            code("111844", "DCM", "Blind Spot Monitoring"),
                        )?,
                        kw("FixationCheckedQuantity", "16")?,
                        kw("PatientNotProperlyFixatedQuantity", "1")?,
                        kw("ExcessiveFixationLossesDataFlag", "YES")?,
                        kw("ExcessiveFixationLosses", "NO")?,
                    ])],
                )?,
                kw_seq(
                    "VisualFieldCatchTrialSequence",
                    vec![item(vec![
                        kw("CatchTrialsDataFlag", "YES")?,
                        kw("NegativeCatchTrialsQuantity", "8")?,
                        kw("FalseNegativesQuantity", "0")?,
                        kw("FalseNegativesEstimateFlag", "YES")?,
                        kw("FalseNegativesEstimate", "0")?,
                        kw("ExcessiveFalseNegativesDataFlag", "YES")?,
                        kw("ExcessiveFalseNegatives", "NO")?,
                        kw("PositiveCatchTrialsQuantity", "12")?,
                        kw("FalsePositivesQuantity", "0")?,
                        kw("FalsePositivesEstimateFlag", "YES")?,
                        kw("FalsePositivesEstimate", "2")?,
                        kw("ExcessiveFalsePositivesDataFlag", "YES")?,
                        kw("ExcessiveFalsePositives", "NO")?,
                    ])],
                )?,
                kw("PresentedVisualStimuliDataFlag", "NO")?,
                kw("FovealSensitivityMeasured", "NO")?,
                kw("FovealPointNormativeDataFlag", "NO")?,
                kw("ScreeningBaselineMeasured", "NO")?,
                kw("BlindSpotLocalized", "NO")?,
                kw("MinimumSensitivityValue", "0")?,
                kw("TestPointNormalsDataFlag", "NO")?,
                kw("VisualFieldTestNormalsFlag", "NO")?,
                kw("ShortTermFluctuationCalculated", "NO")?,
                kw("ShortTermFluctuationProbabilityCalculated", "NO")?,
                kw("CorrectedLocalizedDeviationFromNormalCalculated", "NO")?,
                kw(
                    "CorrectedLocalizedDeviationFromNormalProbabilityCalculated",
                    "NO",
                )?,
                kw_seq(
                    eye_sequence,
                    vec![item(vec![
                        kw_seq("RefractiveParametersUsedOnPatientSequence", Vec::new())?,
                        kw("PupilSize", "")?,
                        kw("PupilDilated", "NO")?,
                    ])],
                )?,
            ])
        }
        Modality::Opt => {
            let dimension_organization = derived_uid(sop_instance_uid);
            let shared = item(vec![
                kw_seq(
                    "FrameAnatomySequence",
                    vec![item(vec![
                        kw_seq("AnatomicRegionSequence", code("81745001", "SCT", "Eye"))?,
                        kw("FrameLaterality", laterality)?,
                    ])],
                )?,
                kw_seq(
                    "PixelMeasuresSequence",
                    vec![item(vec![
                        kw("PixelSpacing", "0.0156\\0.0234")?,
                        kw("SliceThickness", "0.0469")?,
                    ])],
                )?,
                kw_seq(
                    "PlaneOrientationSequence",
                    vec![item(vec![kw(
                        "ImageOrientationPatient",
                        "1\\0\\0\\0\\0\\-1",
                    )?])],
                )?,
            ]);
            let mut per_frame = Vec::new();
            // The B-scans share the acquisition time evenly.
            let frame_ms = ACQUISITION_MS / frames.max(1);
            for frame in 1..=frames {
                let y = f64::from(frame - 1) * 0.0469 - 3.0;
                let frame_time = date_time_plus_ms(acquisition_date_time, (frame - 1) * frame_ms);
                per_frame.push(item(vec![
                    kw_seq(
                        "FrameContentSequence",
                        vec![item(vec![
                            kw("FrameReferenceDateTime", &frame_time)?,
                            kw("FrameAcquisitionDateTime", &frame_time)?,
                            kw("FrameAcquisitionDuration", &frame_ms.to_string())?,
                            kw("StackID", "1")?,
                            kw("InStackPositionNumber", &frame.to_string())?,
                            kw("DimensionIndexValues", &frame.to_string())?,
                        ])],
                    )?,
                    kw_seq(
                        "PlanePositionSequence",
                        vec![item(vec![kw(
                            "ImagePositionPatient",
                            &format!("-3.0\\{y:.4}\\1.0"),
                        )?])],
                    )?,
                ]));
            }
            Ok(vec![
                kw("DeviceSerialNumber", "5000-7815")?,
                kw("SoftwareVersions", "11.5.2")?,
                kw_seq("SharedFunctionalGroupsSequence", vec![shared])?,
                kw_seq("PerFrameFunctionalGroupsSequence", per_frame)?,
                kw_seq(
                    "DimensionOrganizationSequence",
                    vec![item(vec![kw(
                        "DimensionOrganizationUID",
                        &dimension_organization,
                    )?])],
                )?,
                kw_seq(
                    "DimensionIndexSequence",
                    vec![item(vec![
                        kw("DimensionOrganizationUID", &dimension_organization)?,
                        at(
                            tags::DIMENSION_INDEX_POINTER,
                            tags::IN_STACK_POSITION_NUMBER,
                        ),
                        at(tags::FUNCTIONAL_GROUP_POINTER, tags::FRAME_CONTENT_SEQUENCE),
                    ])],
                )?,
                kw_seq("AcquisitionContextSequence", Vec::new())?,
                kw("AcquisitionDateTime", acquisition_date_time)?,
                kw(
                    "AcquisitionDuration",
                    &format!("{:.1}", f64::from(ACQUISITION_MS) / 1000.0),
                )?,
                kw("AcquisitionNumber", "1")?,
                kw("PresentationLUTShape", "IDENTITY")?,
                kw("LossyImageCompression", "00")?,
                // PS3.3 C.8.17.7 makes these Type 1 with the Enumerated Values 0, 1 and 1: the
                // OPT IOD forbids concatenations. (dciodvfy 2022 applies the generic rule of the
                // Multi-frame Functional Groups module to them and reports 3 errors either way.)
                kw("ConcatenationFrameOffsetNumber", "0")?,
                kw("InConcatenationNumber", "1")?,
                kw("InConcatenationTotalNumber", "1")?,
                kw("AxialLengthOfTheEye", "")?,
                kw("HorizontalFieldOfView", "20")?,
                kw_seq("RefractiveStateSequence", Vec::new())?,
                kw("EmmetropicMagnification", "")?,
                kw("IntraOcularPressure", "")?,
                kw("PupilDilated", "NO")?,
                kw_seq(
                    "AcquisitionDeviceTypeCodeSequence",
                    code("392012008", "SCT", "Optical Coherence Tomography Scanner"),
                )?,
                kw_seq("LightPathFilterTypeStackCodeSequence", Vec::new())?,
                kw("DetectorType", "CCD")?,
                kw_seq("AnatomicRegionSequence", code("81745001", "SCT", "Eye"))?,
            ])
        }
        _ => Ok(Vec::new()),
    }
}

/// How long the OPT volume takes to scan, in milliseconds (a 512x128 macular cube takes about
/// 2.4 s on a CIRRUS).
const ACQUISITION_MS: u32 = 2400;

/// `YYYYMMDDHHMMSS` plus `ms` milliseconds as a DICOM DateTime with fractional seconds (within
/// the same day: the time saturates at 23:59:59.999).
fn date_time_plus_ms(date_time: &str, ms: u32) -> String {
    let (date, time) = date_time.split_at(date_time.len().min(8));
    let field = |range: std::ops::Range<usize>| -> u32 {
        time.get(range).and_then(|t| t.parse().ok()).unwrap_or(0)
    };
    let start = (field(0..2) * 3600 + field(2..4) * 60 + field(4..6)) * 1000;
    let total = (start + ms).min(86_399_999);
    format!(
        "{date}{:02}{:02}{:02}.{:03}",
        total / 3_600_000,
        total / 60_000 % 60,
        total / 1000 % 60,
        total % 1000
    )
}

/// The 24-2 grid: 6 degrees apart, offset 3 degrees from the meridians, 54 points.
fn put_visual_field_points(object: &mut InMemDicomObject, rng: &mut StdRng) {
    let mut items = Vec::new();
    let mut total = 0.0f32;
    for y in [-21i32, -15, -9, -3, 3, 9, 15, 21] {
        for x in [-27i32, -21, -15, -9, -3, 3, 9, 15, 21, 27] {
            // Half-width of each row of the 24-2 pattern; the two nasal points at 27 degrees
            // sit only on the rows next to the horizontal meridian.
            let row_width = match y.abs() {
                21 => 9,
                15 => 15,
                9 => 21,
                _ => 27,
            };
            if x.abs() > row_width || x == 27 {
                continue;
            }
            let eccentricity = ((x * x + y * y) as f32).sqrt();
            let sensitivity = (33.0 - eccentricity / 5.0 + rng.random_range(-3.0f32..3.0)).round();
            let sensitivity = sensitivity.max(0.0);
            total += sensitivity;
            items.push(InMemDicomObject::from_element_iter([
                DataElement::new(
                    tags::VISUAL_FIELD_TEST_POINT_X_COORDINATE,
                    VR::FL,
                    PrimitiveValue::from(x as f32),
                ),
                DataElement::new(
                    tags::VISUAL_FIELD_TEST_POINT_Y_COORDINATE,
                    VR::FL,
                    PrimitiveValue::from(y as f32),
                ),
                DataElement::new(
                    tags::STIMULUS_RESULTS,
                    VR::CS,
                    PrimitiveValue::from(if sensitivity > 0.0 {
                        "SEEN"
                    } else {
                        "NOT SEEN"
                    }),
                ),
                DataElement::new(
                    tags::SENSITIVITY_VALUE,
                    VR::FL,
                    PrimitiveValue::from(sensitivity),
                ),
            ]));
        }
    }
    let mean = total / items.len().max(1) as f32;
    object.put(DataElement::new(
        tags::VISUAL_FIELD_MEAN_SENSITIVITY,
        VR::FL,
        PrimitiveValue::from(mean),
    ));
    object.put(DataElement::new(
        tags::VISUAL_FIELD_TEST_POINT_SEQUENCE,
        VR::SQ,
        Value::from(DataSetSequence::from(items)),
    ));
}

/// Image Pixel module plus native Pixel Data.
fn put_image_pixel(
    object: &mut InMemDicomObject,
    g: &ImageGeometry,
    pixel_seed: u64,
    modality: Modality,
) -> Result<(), SynthError> {
    let colour = g.samples_per_pixel == 3;
    let mut put = |tag: Tag, text: String| -> Result<(), SynthError> {
        object.put(element_from_text(tag, &text)?);
        Ok(())
    };
    put(tags::SAMPLES_PER_PIXEL, g.samples_per_pixel.to_string())?;
    put(
        tags::PHOTOMETRIC_INTERPRETATION,
        if colour { "RGB" } else { "MONOCHROME2" }.to_string(),
    )?;
    if colour {
        put(tags::PLANAR_CONFIGURATION, "0".to_string())?;
    }
    if g.frames > 1 || multi_frame_iod(modality) {
        put(tags::NUMBER_OF_FRAMES, g.frames.to_string())?;
    }
    // The OP IOD's Multi-frame module points at Frame Time even for one still.
    let frame_time = match modality {
        Modality::Us if g.frames > 1 => Some("33.3"),
        Modality::Op => Some("0"),
        _ => None,
    };
    if let Some(frame_time) = frame_time {
        put(tags::FRAME_TIME, frame_time.to_string())?;
    }
    put(tags::ROWS, g.rows.to_string())?;
    put(tags::COLUMNS, g.columns.to_string())?;
    put(tags::BITS_ALLOCATED, g.bits_allocated.to_string())?;
    put(tags::BITS_STORED, g.bits_stored.to_string())?;
    put(tags::HIGH_BIT, (g.bits_stored - 1).to_string())?;
    put(tags::PIXEL_REPRESENTATION, "0".to_string())?;
    if frame_time.is_some() {
        object.put(DataElement::new(
            tags::FRAME_INCREMENT_POINTER,
            VR::AT,
            PrimitiveValue::from(tags::FRAME_TIME),
        ));
    }
    let pixels = reference_pixels(g, pixel_seed);
    let element = if g.bits_allocated == 16 {
        let words: Vec<u16> = pixels
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]))
            .collect();
        DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::U16(words.into()))
    } else {
        DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(pixels))
    };
    object.put(element);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LoadOptions, load_dataset};

    fn text(object: &InMemDicomObject, tag: Tag) -> String {
        object
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end()
            .to_string()
    }

    #[test]
    fn every_modality_writes_a_readable_instance_of_its_sop_class() {
        let dir = tempfile::tempdir().unwrap();
        for modality in Modality::ALL {
            let path = dir.path().join(modality.code());
            InstanceBuilder::new(modality)
                .seed(21)
                .write_to(&path)
                .unwrap();
            let object = load_dataset(&path, &LoadOptions::new()).unwrap();
            assert_eq!(text(&object, tags::MODALITY), modality.code());
            assert_eq!(text(&object, tags::SOP_CLASS_UID), modality.sop_class_uid());
            assert_eq!(
                object.meta().media_storage_sop_class_uid(),
                modality.sop_class_uid()
            );
            for tag in [
                tags::SOP_INSTANCE_UID,
                tags::STUDY_INSTANCE_UID,
                tags::SERIES_INSTANCE_UID,
            ] {
                assert!(text(&object, tag).starts_with("2.25."), "{modality} {tag}");
            }
            assert_eq!(
                object.get(tags::PIXEL_DATA).is_some(),
                modality.has_pixels()
            );
        }
    }

    #[test]
    fn opv_carries_the_54_points_of_a_24_2_field() {
        let object = InstanceBuilder::new(Modality::Opv).seed(2).build().unwrap();
        let points = object
            .element(tags::VISUAL_FIELD_TEST_POINT_SEQUENCE)
            .unwrap()
            .items()
            .unwrap()
            .len();
        assert_eq!(points, 54);
    }

    #[test]
    fn overrides_and_removals_apply_last() {
        let object = InstanceBuilder::new(Modality::Ct)
            .seed(3)
            .set_keyword("StudyDescription", "Visual Fields (VF) GPA")
            .set(tags::ACCESSION_NUMBER, "")
            .set_keyword("(0028,0030)", "0.5\\0.5")
            .remove_keyword("StudyDate")
            .build()
            .unwrap();
        assert_eq!(
            text(&object, tags::STUDY_DESCRIPTION),
            "Visual Fields (VF) GPA"
        );
        assert_eq!(text(&object, tags::ACCESSION_NUMBER), "");
        assert_eq!(text(&object, tags::PIXEL_SPACING), "0.5\\0.5");
        assert!(object.get(tags::STUDY_DATE).is_none());
    }

    #[test]
    fn an_unknown_keyword_or_a_bad_number_is_an_error_naming_it() {
        let error = InstanceBuilder::new(Modality::Ct)
            .set_keyword("StudyDescriptoin", "x")
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("StudyDescriptoin"), "{error}");
        let error = InstanceBuilder::new(Modality::Ct)
            .set(tags::ROWS, "many")
            .build()
            .unwrap_err();
        assert!(matches!(&error, SynthError::BadValue { value, .. } if value == "many"));
    }

    #[test]
    fn impossible_encodings_and_geometries_are_refused() {
        let jpeg_16_bit = InstanceBuilder::new(Modality::Ct)
            .encoding(Encoding::JpegBaseline)
            .build();
        assert!(matches!(
            jpeg_16_bit,
            Err(SynthError::UnsupportedEncoding { .. })
        ));
        let rle_without_pixels = InstanceBuilder::new(Modality::Opv)
            .encoding(Encoding::RleLossless)
            .build();
        assert!(matches!(
            rle_without_pixels,
            Err(SynthError::UnsupportedEncoding { .. })
        ));
        let multi_frame_ct = InstanceBuilder::new(Modality::Ct)
            .geometry(ImageGeometry::mono16(8, 8, 12).with_frames(2))
            .build();
        assert!(matches!(
            multi_frame_ct,
            Err(SynthError::BadGeometry { .. })
        ));
    }

    #[test]
    fn a_seed_makes_identical_bytes_and_no_seed_makes_new_uids() {
        let builder = InstanceBuilder::new(Modality::Us)
            .geometry(ImageGeometry::mono8(16, 16).with_frames(3))
            .encoding(Encoding::JpegBaseline)
            .seed(4);
        let bytes = |object: DefaultDicomObject| {
            let mut out = Vec::new();
            object.write_all(&mut out).unwrap();
            out
        };
        assert_eq!(
            bytes(builder.build().unwrap()),
            bytes(builder.build().unwrap())
        );
        let uid = |object: DefaultDicomObject| text(&object, tags::SOP_INSTANCE_UID);
        let unseeded = InstanceBuilder::new(Modality::Opv);
        assert_ne!(
            uid(unseeded.build().unwrap()),
            uid(unseeded.build().unwrap())
        );
        assert_eq!(
            text(&builder.build().unwrap(), tags::SOP_CLASS_UID),
            dicom_dictionary_std::uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE
        );
    }
}
