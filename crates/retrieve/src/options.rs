//! How to retrieve: whom to ask, by which method, and when to give up.

use std::time::Duration;

use dicom_dictionary_std::uids;
use dimse::{AeTitle, InformationModel, Priority, QrService, ScuOptions};
use serde::Serialize;

/// Where the retrieved instances go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// C-MOVE: the SCP opens its own association to this AE title (which it must
    /// know, with its address) and stores the instances there.
    Move {
        /// The move destination.
        destination: AeTitle,
    },
    /// C-GET: the SCP sends the instances back on our association, as C-STORE
    /// sub-operations we answer.
    Get,
}

impl Method {
    /// The Q/R service the method uses.
    pub fn service(&self) -> QrService {
        match self {
            Method::Move { .. } => QrService::Move,
            Method::Get => QrService::Get,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Method::Move { destination } => write!(f, "C-MOVE to {destination}"),
            Method::Get => f.write_str("C-GET"),
        }
    }
}

/// The storage SOP classes a C-GET proposes by default: the image and document
/// classes a router's modalities send. A C-GET can only bring back instances of the
/// classes it proposed (PS3.4 C.4.3.1), so callers that know what was sent should
/// name those classes instead ([`RetrieveOptions::storage_sop_classes`]).
pub const COMMON_STORAGE_SOP_CLASSES: &[&str] = &[
    uids::CT_IMAGE_STORAGE,
    uids::ENHANCED_CT_IMAGE_STORAGE,
    uids::MR_IMAGE_STORAGE,
    uids::ENHANCED_MR_IMAGE_STORAGE,
    uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_MAMMOGRAPHY_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::BREAST_TOMOSYNTHESIS_IMAGE_STORAGE,
    uids::ULTRASOUND_IMAGE_STORAGE,
    uids::ULTRASOUND_MULTI_FRAME_IMAGE_STORAGE,
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::NUCLEAR_MEDICINE_IMAGE_STORAGE,
    uids::POSITRON_EMISSION_TOMOGRAPHY_IMAGE_STORAGE,
    uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE,
    uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE,
    uids::RT_IMAGE_STORAGE,
    uids::RT_DOSE_STORAGE,
    uids::RT_STRUCTURE_SET_STORAGE,
    uids::RT_PLAN_STORAGE,
    uids::VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    uids::VL_ENDOSCOPIC_IMAGE_STORAGE,
    uids::VL_MICROSCOPIC_IMAGE_STORAGE,
    uids::VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE,
    uids::OPHTHALMIC_PHOTOGRAPHY8_BIT_IMAGE_STORAGE,
    uids::OPHTHALMIC_PHOTOGRAPHY16_BIT_IMAGE_STORAGE,
    uids::OPHTHALMIC_TOMOGRAPHY_IMAGE_STORAGE,
    uids::OPHTHALMIC_VISUAL_FIELD_STATIC_PERIMETRY_MEASUREMENTS_STORAGE,
    uids::WIDE_FIELD_OPHTHALMIC_PHOTOGRAPHY_STEREOGRAPHIC_PROJECTION_IMAGE_STORAGE,
    uids::ENCAPSULATED_PDF_STORAGE,
    uids::BASIC_TEXT_SR_STORAGE,
    uids::ENHANCED_SR_STORAGE,
    uids::COMPREHENSIVE_SR_STORAGE,
    uids::KEY_OBJECT_SELECTION_DOCUMENT_STORAGE,
    uids::GRAYSCALE_SOFTCOPY_PRESENTATION_STATE_STORAGE,
    uids::RAW_DATA_STORAGE,
];

/// The transfer syntaxes a C-GET offers for each storage class, most wanted first:
/// the uncompressed ones every SCP can send, then the compressed ones dimse and the
/// sink can read, so that an archive holding compressed instances can send them as
/// they are instead of decompressing them.
pub const STORAGE_TRANSFER_SYNTAXES: &[&str] = &[
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::JPEG_LOSSLESS_SV1,
    uids::JPEG_LOSSLESS,
    uids::JPEG_BASELINE8_BIT,
    uids::JPEG_EXTENDED12_BIT,
    uids::RLE_LOSSLESS,
    uids::JPEG2000_LOSSLESS,
    uids::JPEG2000,
    uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    "1.2.840.10008.1.2.2", // Explicit VR Big Endian (retired, still sent by old archives)
];

/// At most this many storage classes in one C-GET association: with the Q/R
/// contexts they stay within the 128 presentation contexts PS3.8 allows.
pub const MAX_STORAGE_SOP_CLASSES: usize = 120;

/// Presentation contexts one association may propose (PS3.8 9.3.2.2: odd IDs 1-255).
const MAX_CONTEXTS: usize = 128;

/// How a retrieve is run: the association, the models tried, and the limits that
/// end it with a C-CANCEL.
///
/// A builder: [`RetrieveOptions::new`] with the association's options (peer, AE
/// titles, timeouts, TLS and identity: no presentation context needed, the retrieve
/// proposes its own), then the setters.
#[derive(Clone, Debug)]
pub struct RetrieveOptions {
    pub(crate) scu: ScuOptions,
    pub(crate) models: Vec<InformationModel>,
    pub(crate) priority: Priority,
    pub(crate) stall_timeout: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) max_sub_operations: Option<u32>,
    pub(crate) cancel_grace: Duration,
    pub(crate) storage_sop_classes: Vec<String>,
    pub(crate) storage_transfer_syntaxes: Vec<String>,
}

impl RetrieveOptions {
    /// Study Root then Patient Root, medium priority, a stall timeout of 60 s, no
    /// deadline, no limit, 10 s for the SCP to answer a C-CANCEL, and the common
    /// storage classes for a C-GET.
    pub fn new(scu: ScuOptions) -> Self {
        RetrieveOptions {
            scu,
            models: InformationModel::DEFAULT_PREFERENCE.to_vec(),
            priority: Priority::Medium,
            stall_timeout: Duration::from_secs(60),
            deadline: None,
            max_sub_operations: None,
            cancel_grace: Duration::from_secs(10),
            storage_sop_classes: COMMON_STORAGE_SOP_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            storage_transfer_syntaxes: STORAGE_TRANSFER_SYNTAXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    /// The information models proposed, in order of preference; a request is sent
    /// under the first accepted one that can express it.
    pub fn models(mut self, models: impl IntoIterator<Item = InformationModel>) -> Self {
        self.models = models.into_iter().collect();
        self
    }

    /// The priority of the C-MOVE or C-GET request.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// How long the sub-operation counts may stay unchanged (and no instance
    /// arrive) before the retrieve is cancelled: what catches an SCP answering
    /// "pending" forever, which the DIMSE timeout alone would not.
    pub fn stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall_timeout = timeout;
        self
    }

    /// The longest a whole retrieve may take before it is cancelled.
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Cancel once this many sub-operations have been done (completed, failed or
    /// warned): a sample of a large study.
    pub fn max_sub_operations(mut self, limit: Option<u32>) -> Self {
        self.max_sub_operations = limit;
        self
    }

    /// How long the SCP has to send its final response after our C-CANCEL before
    /// the association is aborted.
    pub fn cancel_grace(mut self, grace: Duration) -> Self {
        self.cancel_grace = grace;
        self
    }

    /// The storage SOP classes a C-GET proposes (SCP role offered for each): the
    /// classes of what was sent, when known. At most [`MAX_STORAGE_SOP_CLASSES`].
    pub fn storage_sop_classes(mut self, classes: impl IntoIterator<Item = String>) -> Self {
        let mut unique: Vec<String> = Vec::new();
        for class in classes {
            let class = dimse::trim_value(&class).to_string();
            if !unique.contains(&class) {
                unique.push(class);
            }
        }
        self.storage_sop_classes = unique;
        self
    }

    /// The transfer syntaxes a C-GET offers for each storage class, most wanted
    /// first.
    pub fn storage_transfer_syntaxes(mut self, syntaxes: impl IntoIterator<Item = String>) -> Self {
        self.storage_transfer_syntaxes = syntaxes.into_iter().collect();
        self
    }

    /// The association options underneath.
    pub fn scu(&self) -> &ScuOptions {
        &self.scu
    }

    /// The stall timeout.
    pub fn current_stall_timeout(&self) -> Duration {
        self.stall_timeout
    }

    /// The association options for `method`: the Q/R contexts of every model, and
    /// for a C-GET each storage class with the SCP role offered.
    pub(crate) fn association_for(&self, method: &Method) -> ScuOptions {
        let ts = [
            uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
            uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
        ];
        let mut scu = self.scu.clone();
        for model in &self.models {
            scu = scu.propose(model.service_sop_class_uid(method.service()), ts.clone());
        }
        if *method == Method::Get {
            let classes: Vec<&String> = self
                .storage_sop_classes
                .iter()
                .take(MAX_STORAGE_SOP_CLASSES)
                .collect();
            for (class, syntaxes) in storage_contexts(
                &classes,
                &self.storage_transfer_syntaxes,
                MAX_CONTEXTS - self.models.len(),
            ) {
                scu = scu
                    .propose(class.clone(), syntaxes)
                    .offer_scp_role(class.clone());
            }
        }
        scu
    }
}

/// Whether `uid` is a native (uncompressed) transfer syntax.
fn is_native(uid: &str) -> bool {
    matches!(
        uid,
        uids::EXPLICIT_VR_LITTLE_ENDIAN | uids::IMPLICIT_VR_LITTLE_ENDIAN | "1.2.840.10008.1.2.2"
    )
}

/// The storage contexts of a C-GET within `budget` contexts. An SCP accepts one
/// transfer syntax per context and can only send an instance in a syntax it was
/// accepted in, so an archive holding compressed instances needs a context for their
/// syntax: each class gets a context of the native syntaxes, then, as the budget
/// allows, one context per compressed syntax (the archive sends each instance as it
/// holds it), else one context listing every compressed syntax.
fn storage_contexts(
    classes: &[&String],
    syntaxes: &[String],
    budget: usize,
) -> Vec<(String, Vec<String>)> {
    let native: Vec<String> = syntaxes.iter().filter(|s| is_native(s)).cloned().collect();
    let compressed: Vec<String> = syntaxes.iter().filter(|s| !is_native(s)).cloned().collect();
    let native_contexts = usize::from(!native.is_empty());
    let per_syntax = classes.len() * (native_contexts + compressed.len());
    let grouped = classes.len() * (native_contexts + usize::from(!compressed.is_empty()));
    let mut contexts = Vec::new();
    for class in classes {
        if !native.is_empty() {
            contexts.push(((*class).clone(), native.clone()));
        }
        if compressed.is_empty() {
            continue;
        }
        if per_syntax <= budget {
            contexts.extend(
                compressed
                    .iter()
                    .map(|ts| ((*class).clone(), vec![ts.clone()])),
            );
        } else if grouped <= budget {
            contexts.push(((*class).clone(), compressed.clone()));
        }
    }
    contexts.truncate(budget);
    contexts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn each_class_gets_a_native_context_and_its_compressed_syntaxes_as_the_budget_allows() {
        let syntaxes = owned(STORAGE_TRANSFER_SYNTAXES);
        let few = owned(&[uids::CT_IMAGE_STORAGE, uids::MR_IMAGE_STORAGE]);
        let few: Vec<&String> = few.iter().collect();
        let contexts = storage_contexts(&few, &syntaxes, 126);
        // The 3 native syntaxes in one context, each of the 8 compressed ones alone.
        assert_eq!(contexts.len(), 18);
        assert_eq!(contexts[0].1.len(), 3);
        assert!(contexts[1..9].iter().all(|(_, ts)| ts.len() == 1));
        let many = owned(COMMON_STORAGE_SOP_CLASSES);
        let many: Vec<&String> = many.iter().collect();
        let contexts = storage_contexts(&many, &syntaxes, 126);
        // 40 classes: a native and a compressed context each.
        assert_eq!(contexts.len(), 2 * many.len());
        // Too many for two each: the native ones only, never over the budget.
        let contexts = storage_contexts(&many, &syntaxes, 50);
        assert_eq!(contexts.len(), many.len());
        assert!(contexts.iter().all(|(_, ts)| ts.len() == 3));
        assert_eq!(storage_contexts(&many, &syntaxes, 30).len(), 30);
    }
}
