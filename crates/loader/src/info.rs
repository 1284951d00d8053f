//! Cheap per-file metadata ([`FileInfo`]) and the selections test fixtures make from it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{InMemDicomObject, OpenFileOptions};
use rayon::prelude::*;

use crate::LoadError;

/// One megabyte as the size categories count it: 1 MB = 1,000,000 bytes (SI), not 1 MiB.
pub const MEGABYTE: u64 = 1_000_000;

/// What a test needs to know about a file without decoding it: read up to, not including,
/// Pixel Data, so it costs a few kilobytes of I/O even for a 100 MB file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Where the file is.
    pub path: PathBuf,
    /// File size in bytes, as on disk.
    pub size_bytes: u64,
    /// Media Storage SOP Class UID from the file meta group.
    pub sop_class_uid: String,
    /// Media Storage SOP Instance UID from the file meta group.
    pub sop_instance_uid: String,
    /// Transfer Syntax UID from the file meta group.
    pub transfer_syntax_uid: String,
    /// Modality (0008,0060), e.g. `CT`, `OPV`.
    pub modality: Option<String>,
    /// Study Instance UID (0020,000D).
    pub study_instance_uid: Option<String>,
    /// Series Instance UID (0020,000E).
    pub series_instance_uid: Option<String>,
    /// Patient ID (0010,0020).
    pub patient_id: Option<String>,
    /// Accession Number (0008,0050).
    pub accession_number: Option<String>,
    /// Study Description (0008,1030).
    pub study_description: Option<String>,
    /// Series Description (0008,103E); routing rules match on it (e.g. "GPA").
    pub series_description: Option<String>,
}

impl FileInfo {
    /// The size category of this file.
    pub fn size_category(&self) -> SizeCategory {
        SizeCategory::of(self.size_bytes)
    }

    /// Whether the Modality attribute equals `modality` (trailing padding ignored, case-sensitive
    /// as the standard's defined terms are upper case).
    pub fn has_modality(&self, modality: &str) -> bool {
        self.modality.as_deref() == Some(modality)
    }
}

/// File size classes used by the load tests' fixtures, in SI megabytes ([`MEGABYTE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SizeCategory {
    /// Below 1 MB.
    Small,
    /// From 1 MB to 10 MB, both included.
    Medium,
    /// Above 10 MB.
    Large,
}

impl SizeCategory {
    /// All categories, smallest first.
    pub const ALL: [SizeCategory; 3] = [Self::Small, Self::Medium, Self::Large];

    /// The category of a file of `size_bytes` bytes.
    pub fn of(size_bytes: u64) -> Self {
        if size_bytes < MEGABYTE {
            Self::Small
        } else if size_bytes <= 10 * MEGABYTE {
            Self::Medium
        } else {
            Self::Large
        }
    }

    /// Lower-case name, as used in fixture names and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
            Self::Large => "large",
        }
    }
}

impl fmt::Display for SizeCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Read the [`FileInfo`] of one file, parsing only the meta group and the attributes before
/// Pixel Data.
///
/// Damage inside the pixel data is not noticed here; [`load_dataset`](crate::load_dataset) reads
/// it all.
///
/// # Errors
/// [`LoadError::Io`], [`LoadError::TooShort`], [`LoadError::NotDicom`] or [`LoadError::Parse`],
/// each naming the file.
pub fn read_file_info(path: impl AsRef<Path>) -> Result<FileInfo, LoadError> {
    let path = path.as_ref();
    let size_bytes = std::fs::metadata(path)
        .map_err(|source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    crate::load::ensure_dicom_magic(path)?;
    let object = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
        .map_err(|e| LoadError::parse(path.to_path_buf(), e))?;
    let meta = object.meta();
    Ok(FileInfo {
        path: path.to_path_buf(),
        size_bytes,
        sop_class_uid: meta.media_storage_sop_class_uid().to_string(),
        sop_instance_uid: meta.media_storage_sop_instance_uid().to_string(),
        transfer_syntax_uid: meta.transfer_syntax().to_string(),
        modality: text(&object, tags::MODALITY),
        study_instance_uid: text(&object, tags::STUDY_INSTANCE_UID),
        series_instance_uid: text(&object, tags::SERIES_INSTANCE_UID),
        patient_id: text(&object, tags::PATIENT_ID),
        accession_number: text(&object, tags::ACCESSION_NUMBER),
        study_description: text(&object, tags::STUDY_DESCRIPTION),
        series_description: text(&object, tags::SERIES_DESCRIPTION),
    })
}

fn text(object: &InMemDicomObject, tag: Tag) -> Option<String> {
    let value = object.get(tag)?.to_str().ok()?;
    let value = value.trim_end_matches(['\0', ' ']);
    (!value.is_empty()).then(|| value.to_string())
}

/// The outcome of [`scan_infos`]: the files that could be read, and the errors of those that
/// could not.
#[derive(Debug, Default)]
pub struct InfoScan {
    /// Readable files, in the order of the input paths.
    pub infos: Vec<FileInfo>,
    /// One error per unreadable file (each names its path), in input order.
    pub failures: Vec<LoadError>,
}

/// Read the [`FileInfo`] of many files in parallel (rayon); one bad file does not stop the others.
pub fn scan_infos<P: AsRef<Path> + Sync>(paths: &[P]) -> InfoScan {
    let results: Vec<Result<FileInfo, LoadError>> = paths.par_iter().map(read_file_info).collect();
    let mut scan = InfoScan::default();
    for result in results {
        match result {
            Ok(info) => scan.infos.push(info),
            Err(error) => scan.failures.push(error),
        }
    }
    scan
}

/// Files grouped by Modality; files without one are under the empty string.
pub fn by_modality(infos: &[FileInfo]) -> BTreeMap<String, Vec<&FileInfo>> {
    let mut groups: BTreeMap<String, Vec<&FileInfo>> = BTreeMap::new();
    for info in infos {
        groups
            .entry(info.modality.clone().unwrap_or_default())
            .or_default()
            .push(info);
    }
    groups
}

/// Files grouped by [`SizeCategory`]; every category is present, possibly empty.
pub fn by_size_category(infos: &[FileInfo]) -> BTreeMap<SizeCategory, Vec<&FileInfo>> {
    let mut groups: BTreeMap<SizeCategory, Vec<&FileInfo>> =
        SizeCategory::ALL.iter().map(|c| (*c, Vec::new())).collect();
    for info in infos {
        groups.entry(info.size_category()).or_default().push(info);
    }
    groups
}

/// The files of one size category, in input order.
pub fn in_size_category(infos: &[FileInfo], category: SizeCategory) -> Vec<&FileInfo> {
    infos
        .iter()
        .filter(|i| i.size_category() == category)
        .collect()
}

/// The files of one modality, in input order.
pub fn with_modality<'a>(infos: &'a [FileInfo], modality: &str) -> Vec<&'a FileInfo> {
    infos.iter().filter(|i| i.has_modality(modality)).collect()
}

/// The `n` smallest files (fewer if there are fewer), smallest first; ties keep path order.
pub fn smallest(infos: &[FileInfo], n: usize) -> Vec<&FileInfo> {
    let mut sorted: Vec<&FileInfo> = infos.iter().collect();
    sorted.sort_by(|a, b| a.size_bytes.cmp(&b.size_bytes).then(a.path.cmp(&b.path)));
    sorted.truncate(n);
    sorted
}

/// The largest file, if any; ties go to the first path.
pub fn largest(infos: &[FileInfo]) -> Option<&FileInfo> {
    infos
        .iter()
        .max_by(|a, b| a.size_bytes.cmp(&b.size_bytes).then(b.path.cmp(&a.path)))
}

#[cfg(all(test, feature = "codecs"))]
mod tests {
    use super::*;
    use crate::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality};

    fn info(modality: &str, size_bytes: u64, name: &str) -> FileInfo {
        FileInfo {
            path: PathBuf::from(name),
            size_bytes,
            sop_class_uid: String::new(),
            sop_instance_uid: String::new(),
            transfer_syntax_uid: String::new(),
            modality: Some(modality.to_string()),
            study_instance_uid: None,
            series_instance_uid: None,
            patient_id: None,
            accession_number: None,
            study_description: None,
            series_description: None,
        }
    }

    #[test]
    fn file_info_reports_meta_and_selection_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("IM0001");
        let object = InstanceBuilder::new(Modality::Opv)
            .seed(3)
            .encoding(Encoding::ImplicitVrLittleEndian)
            .set(tags::SERIES_DESCRIPTION, "SITA Standard 24-2 GPA")
            .set(tags::ACCESSION_NUMBER, "A-1/2")
            .write_to(&path)
            .unwrap();
        let info = read_file_info(&path).unwrap();
        let attribute = |tag| Some(object.element(tag).unwrap().to_str().unwrap().to_string());
        assert_eq!(info.path, path);
        assert_eq!(info.size_bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(
            info.sop_class_uid, "1.2.840.10008.5.1.4.1.1.80.1",
            "Ophthalmic Visual Field Static Perimetry Measurements"
        );
        assert_eq!(
            Some(info.sop_instance_uid.clone()),
            attribute(tags::SOP_INSTANCE_UID)
        );
        assert_eq!(info.transfer_syntax_uid, "1.2.840.10008.1.2");
        assert_eq!(info.modality.as_deref(), Some("OPV"));
        assert_eq!(info.study_instance_uid, attribute(tags::STUDY_INSTANCE_UID));
        assert_eq!(
            info.series_instance_uid,
            attribute(tags::SERIES_INSTANCE_UID)
        );
        assert_eq!(info.patient_id, attribute(tags::PATIENT_ID));
        assert_eq!(info.accession_number.as_deref(), Some("A-1/2"));
        assert_eq!(info.study_description, attribute(tags::STUDY_DESCRIPTION));
        assert_eq!(
            info.series_description.as_deref(),
            Some("SITA Standard 24-2 GPA")
        );
    }

    #[test]
    fn file_info_stops_before_pixel_data_so_damage_there_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("IM0001.dcm");
        InstanceBuilder::new(Modality::Ct)
            .geometry(ImageGeometry::mono16(64, 64, 12))
            .seed(4)
            .write_to(&path)
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4000]).unwrap();
        assert_eq!(
            read_file_info(&path).unwrap().modality.as_deref(),
            Some("CT")
        );
        assert!(crate::load_dataset(&path, &crate::LoadOptions::new()).is_err());
    }

    #[test]
    fn size_categories_use_si_megabytes_and_medium_includes_both_bounds() {
        assert_eq!(SizeCategory::of(0), SizeCategory::Small);
        assert_eq!(SizeCategory::of(999_999), SizeCategory::Small);
        assert_eq!(SizeCategory::of(1_000_000), SizeCategory::Medium);
        assert_eq!(SizeCategory::of(10_000_000), SizeCategory::Medium);
        assert_eq!(SizeCategory::of(10_000_001), SizeCategory::Large);
        assert_eq!(SizeCategory::of(1_048_576), SizeCategory::Medium);
    }

    #[test]
    fn selections_group_and_order_files_as_fixtures_expect() {
        let infos = vec![
            info("CT", 2_000_000, "b"),
            info("MR", 500, "c"),
            info("CT", 500, "a"),
            info("DX", 12_000_000, "d"),
        ];
        let modalities = by_modality(&infos);
        assert_eq!(modalities.keys().collect::<Vec<_>>(), ["CT", "DX", "MR"]);
        assert_eq!(modalities["CT"].len(), 2);
        let sizes = by_size_category(&infos);
        assert_eq!(sizes[&SizeCategory::Small].len(), 2);
        assert_eq!(sizes[&SizeCategory::Medium][0].path, PathBuf::from("b"));
        assert_eq!(sizes[&SizeCategory::Large][0].path, PathBuf::from("d"));
        let small: Vec<_> = smallest(&infos, 3).iter().map(|i| i.path.clone()).collect();
        assert_eq!(
            small,
            [PathBuf::from("a"), PathBuf::from("c"), PathBuf::from("b")]
        );
        assert_eq!(largest(&infos).unwrap().path, PathBuf::from("d"));
        assert_eq!(with_modality(&infos, "MR").len(), 1);
        assert_eq!(in_size_category(&infos, SizeCategory::Medium).len(), 1);
        assert!(by_size_category(&[]).values().all(Vec::is_empty));
    }

    #[test]
    fn scan_infos_keeps_good_files_and_names_the_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        InstanceBuilder::new(Modality::Es)
            .geometry(ImageGeometry::rgb8(16, 16))
            .seed(5)
            .write_to(&good)
            .unwrap();
        let bad = dir.path().join("bad");
        let mut bytes = std::fs::read(&good).unwrap();
        bytes.truncate(140); // magic intact, meta group cut
        std::fs::write(&bad, bytes).unwrap();
        let scan = scan_infos(&[good.clone(), bad.clone(), dir.path().join("missing")]);
        assert_eq!(scan.infos.len(), 1);
        assert_eq!(scan.infos[0].path, good);
        assert_eq!(scan.failures.len(), 2);
        assert!(matches!(&scan.failures[0], LoadError::Parse { path, .. } if path == &bad));
        assert!(matches!(&scan.failures[1], LoadError::Io { .. }));
        assert!(scan.failures[1].to_string().contains("missing"));
    }
}
