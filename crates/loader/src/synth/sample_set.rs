//! The committed sample set, random sets of any size, and large files on demand.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use super::instance::InstanceBuilder;
use super::pixels::ImageGeometry;
use super::{Encoding, Modality, Patient, Series, Study, SynthError};

/// File name [`ensure_large_sample`] writes in the folder it is given.
pub const LARGE_SAMPLE_FILE_NAME: &str = "large_DX_explicit.dcm";

/// What [`write_sample_set`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSetOptions {
    /// Fixes every random choice; the committed set uses 42.
    pub seed: u64,
    /// `None`: the curated set (every modality and encoding, about 3 MB). `Some(n)`: `n` random
    /// instances grouped in random patients, studies and series.
    pub count: Option<usize>,
    /// Also write instances above 10 MB into `large/` (never committed).
    pub large: bool,
}

impl Default for SampleSetOptions {
    fn default() -> Self {
        Self {
            seed: 42,
            count: None,
            large: false,
        }
    }
}

/// One file written by [`write_sample_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its modality.
    pub modality: Modality,
    /// Its encoding.
    pub encoding: Encoding,
    /// Its Series Description.
    pub series_description: String,
    /// Size on disk in bytes.
    pub size_bytes: u64,
}

/// One series of the curated set.
struct CuratedSeries {
    study: usize,
    modality: Modality,
    description: &'static str,
    encoding: Encoding,
    geometry: Option<ImageGeometry>,
    instances: u32,
}

/// Studies of the curated set: (patient index, modality whose study descriptions it uses).
const CURATED_STUDIES: [(usize, Modality); 7] = [
    (0, Modality::Ct),
    (0, Modality::Mr),
    (1, Modality::Opv),
    (2, Modality::Es),
    (2, Modality::Us),
    (3, Modality::Dx),
    (3, Modality::Cr),
];

fn curated_series() -> Vec<CuratedSeries> {
    use Encoding::*;
    use Modality::*;
    let series = |study, modality, description, encoding, geometry, instances| CuratedSeries {
        study,
        modality,
        description,
        encoding,
        geometry,
        instances,
    };
    let mono16 = |r, c, b| Some(ImageGeometry::mono16(r, c, b));
    vec![
        // About 20 KB: the smallest realistic image, a CT localizer.
        series(
            0,
            Ct,
            "SCOUT",
            ExplicitVrLittleEndian,
            mono16(128, 80, 12),
            1,
        ),
        series(
            0,
            Ct,
            "AXIAL 5.0 MM",
            ExplicitVrLittleEndian,
            mono16(256, 256, 12),
            3,
        ),
        series(
            0,
            Ct,
            "AX 1.25MM STD",
            ImplicitVrLittleEndian,
            mono16(256, 256, 12),
            2,
        ),
        series(
            1,
            Mr,
            "AX T2 FLAIR",
            ImplicitVrLittleEndian,
            mono16(256, 256, 12),
            2,
        ),
        series(1, Mr, "SAG T1", RleLossless, mono16(256, 256, 12), 2),
        // Routing rules match OPV + "GPA" in the Series Description.
        series(
            2,
            Opv,
            "SITA Standard 24-2 GPA",
            ExplicitVrLittleEndian,
            None,
            1,
        ),
        series(
            2,
            Opv,
            "SITA Standard 24-2",
            ImplicitVrLittleEndian,
            None,
            1,
        ),
        series(
            2,
            Op,
            "Color Fundus",
            JpegBaseline,
            Some(ImageGeometry::rgb8(480, 640)),
            2,
        ),
        series(
            2,
            Op,
            "Red Free",
            RleLossless,
            Some(ImageGeometry::rgb8(240, 320)),
            1,
        ),
        series(
            2,
            Opt,
            "Macular Cube 512x128",
            ExplicitVrLittleEndian,
            Some(ImageGeometry::mono8(128, 256).with_frames(8)),
            1,
        ),
        series(
            3,
            Es,
            "Colonoscopy Images",
            JpegBaseline,
            Some(ImageGeometry::rgb8(480, 640)),
            2,
        ),
        series(
            4,
            Us,
            "Liver",
            JpegBaseline,
            Some(ImageGeometry::mono8(480, 640)),
            1,
        ),
        series(
            4,
            Us,
            "Kidney Right",
            ExplicitVrLittleEndian,
            Some(ImageGeometry::mono8(240, 320)),
            1,
        ),
        series(
            4,
            Us,
            "Thyroid Transverse",
            RleLossless,
            Some(ImageGeometry::mono8(240, 320)),
            1,
        ),
        // Just over 1 MB: the medium size category.
        series(5, Dx, "PA", ExplicitVrLittleEndian, mono16(740, 700, 14), 1),
        series(6, Cr, "HAND PA", RleLossless, mono16(512, 512, 12), 1),
    ]
}

/// Writes a sample set under `out` as `<PatientID>/<AccessionNumber>/S<nn>_<MOD>_<encoding>/IM<nnnn>.dcm`.
///
/// The same options write the same bytes (see the module documentation). Existing files with the
/// same names are replaced atomically; other files in `out` are left alone.
///
/// # Errors
/// The first [`SynthError`]; files written before it stay.
pub fn write_sample_set(
    out: &Path,
    options: &SampleSetOptions,
) -> Result<Vec<WrittenFile>, SynthError> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut written = match options.count {
        None => write_curated(out, &mut rng)?,
        Some(count) => write_random(out, &mut rng, count)?,
    };
    if options.large {
        written.extend(write_large(&out.join("large"), &mut rng)?);
    }
    Ok(written)
}

fn write_curated(out: &Path, rng: &mut StdRng) -> Result<Vec<WrittenFile>, SynthError> {
    let patients: Vec<Patient> = (0..4).map(|_| Patient::random(rng)).collect();
    let studies: Vec<(usize, Study)> = CURATED_STUDIES
        .iter()
        .map(|&(patient, modality)| (patient, Study::random(rng, modality)))
        .collect();
    let mut next_series_number = vec![1u32; studies.len()];
    let mut written = Vec::new();
    for spec in curated_series() {
        let (patient, study) = &studies[spec.study];
        let number = next_series_number[spec.study];
        next_series_number[spec.study] += 1;
        let series = Series::random(rng, spec.modality, number).with_description(spec.description);
        for instance in 1..=spec.instances {
            let mut builder = InstanceBuilder::new(spec.modality)
                .patient(patients[*patient].clone())
                .study(study.clone())
                .series(series.clone())
                .instance_number(instance)
                .encoding(spec.encoding)
                .seed(rng.random());
            if let Some(geometry) = spec.geometry {
                builder = builder.geometry(geometry);
            }
            written.push(write_one(
                out,
                &builder,
                &patients[*patient],
                study,
                &series,
                instance,
                spec.encoding,
            )?);
        }
    }
    Ok(written)
}

fn write_random(
    out: &Path,
    rng: &mut StdRng,
    count: usize,
) -> Result<Vec<WrittenFile>, SynthError> {
    let mut patients: Vec<Patient> = Vec::new();
    let mut written = Vec::with_capacity(count);
    while written.len() < count {
        let modality = *Modality::ALL.choose(rng).unwrap_or(&Modality::Ct);
        // Returning patients are common: reuse one a third of the time.
        let patient = match patients.choose(rng) {
            Some(p) if rng.random_bool(0.33) => p.clone(),
            _ => {
                let p = Patient::random(rng);
                patients.push(p.clone());
                p
            }
        };
        let study = Study::random(rng, modality);
        let series_number = rng.random_range(1..=20);
        let series = Series::random(rng, modality, series_number);
        let geometry = random_geometry(rng, modality);
        let encoding = random_encoding(rng, geometry);
        let remaining = (count - written.len()) as u32;
        let instances = rng.random_range(1..=5).min(remaining);
        for instance in 1..=instances {
            let mut builder = InstanceBuilder::new(modality)
                .patient(patient.clone())
                .study(study.clone())
                .series(series.clone())
                .instance_number(instance)
                .encoding(encoding)
                .seed(rng.random());
            if let Some(g) = geometry {
                builder = builder.geometry(g);
            }
            written.push(write_one(
                out, &builder, &patient, &study, &series, instance, encoding,
            )?);
        }
    }
    Ok(written)
}

fn random_geometry(rng: &mut StdRng, modality: Modality) -> Option<ImageGeometry> {
    let side = |rng: &mut StdRng, sides: &[u16]| *sides.choose(rng).unwrap_or(&256);
    Some(match modality {
        Modality::Opv => return None,
        Modality::Ct | Modality::Mr => {
            let n = side(rng, &[128, 256, 512]);
            ImageGeometry::mono16(n, n, 12)
        }
        Modality::Dx | Modality::Cr => {
            let n = side(rng, &[512, 1024, 1536]);
            ImageGeometry::mono16(n, n * 5 / 6, if modality == Modality::Dx { 14 } else { 12 })
        }
        Modality::Op | Modality::Es => {
            let n = side(rng, &[240, 480, 960]);
            ImageGeometry::rgb8(n, n * 4 / 3)
        }
        Modality::Us => {
            let frames = if rng.random_bool(0.25) {
                rng.random_range(2..=10)
            } else {
                1
            };
            ImageGeometry::mono8(480, 640).with_frames(frames)
        }
        Modality::Opt => ImageGeometry::mono8(128, 256).with_frames(rng.random_range(4..=32)),
    })
}

fn random_encoding(rng: &mut StdRng, geometry: Option<ImageGeometry>) -> Encoding {
    let choices: Vec<Encoding> = Encoding::ALL
        .into_iter()
        .filter(|e| match (e, geometry) {
            (e, None) => !e.is_compressed(),
            (Encoding::JpegBaseline, Some(g)) => g.bits_allocated == 8,
            _ => true,
        })
        .collect();
    *choices
        .choose(rng)
        .unwrap_or(&Encoding::ExplicitVrLittleEndian)
}

type LargeSample = (&'static str, Modality, Encoding, InstanceBuilder);

fn large_builders(rng: &mut StdRng) -> Vec<LargeSample> {
    vec![
        (
            LARGE_SAMPLE_FILE_NAME,
            Modality::Dx,
            Encoding::ExplicitVrLittleEndian,
            // 2800 x 2300 x 2 bytes = 12.9 MB: a full-size chest detector.
            InstanceBuilder::new(Modality::Dx)
                .geometry(ImageGeometry::mono16(2800, 2300, 14))
                .seed(rng.random()),
        ),
        (
            "large_US_cine_implicit.dcm",
            Modality::Us,
            Encoding::ImplicitVrLittleEndian,
            // 40 frames of 640 x 480: a 1.3-second cine loop, 12.3 MB.
            InstanceBuilder::new(Modality::Us)
                .geometry(ImageGeometry::mono8(480, 640).with_frames(40))
                .encoding(Encoding::ImplicitVrLittleEndian)
                .seed(rng.random()),
        ),
    ]
}

fn write_large(dir: &Path, rng: &mut StdRng) -> Result<Vec<WrittenFile>, SynthError> {
    let mut written = Vec::new();
    for (name, modality, encoding, builder) in large_builders(rng) {
        let path = dir.join(name);
        let object = builder.write_to(&path)?;
        written.push(describe(path, modality, encoding, &object)?);
    }
    Ok(written)
}

/// Makes sure `dir` holds a DICOM file above 10 MB and returns its path; writes it (about
/// 13 MB, a full-size DX) only when it is missing or not larger than 10 MB, so test fixtures can
/// call it every run. Use a folder under `target/` so it is never committed.
///
/// # Errors
/// [`SynthError`] when writing fails.
pub fn ensure_large_sample(dir: &Path) -> Result<PathBuf, SynthError> {
    let path = dir.join(LARGE_SAMPLE_FILE_NAME);
    let big_enough = std::fs::metadata(&path)
        .map(|m| m.len() > 10 * crate::MEGABYTE)
        .unwrap_or(false);
    if big_enough && crate::check_magic(&path).is_ok() {
        return Ok(path);
    }
    let mut rng = StdRng::seed_from_u64(SampleSetOptions::default().seed);
    let (_, _, _, builder) = large_builders(&mut rng).remove(0);
    builder.write_to(&path)?;
    Ok(path)
}

#[allow(clippy::too_many_arguments)]
fn write_one(
    out: &Path,
    builder: &InstanceBuilder,
    patient: &Patient,
    study: &Study,
    series: &Series,
    instance: u32,
    encoding: Encoding,
) -> Result<WrittenFile, SynthError> {
    let folder = format!(
        "S{:02}_{}_{}",
        series.number,
        series.modality.code(),
        encoding.short_name()
    );
    let path = out
        .join(&patient.id)
        .join(&study.accession_number)
        .join(folder)
        .join(format!("IM{instance:04}.dcm"));
    let object = builder.write_to(&path)?;
    describe(path, series.modality, encoding, &object)
}

fn describe(
    path: PathBuf,
    modality: Modality,
    encoding: Encoding,
    object: &dicom_object::DefaultDicomObject,
) -> Result<WrittenFile, SynthError> {
    let series_description = object
        .element(dicom_dictionary_std::tags::SERIES_DESCRIPTION)
        .ok()
        .and_then(|e| e.to_str().ok().map(|s| s.trim_end().to_string()))
        .unwrap_or_default();
    let size_bytes = std::fs::metadata(&path)
        .map_err(|e| SynthError::Write {
            path: path.clone(),
            detail: e.to_string(),
        })?
        .len();
    Ok(WrittenFile {
        path,
        modality,
        encoding,
        series_description,
        size_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SizeCategory, find_dicom_files, scan_infos};
    use std::collections::BTreeSet;

    fn relative_files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        find_dicom_files(root)
            .unwrap()
            .files
            .into_iter()
            .map(|p| {
                (
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn committed_sample_set_is_what_the_generator_writes() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples");
        let fresh = tempfile::tempdir().unwrap();
        write_sample_set(fresh.path(), &SampleSetOptions::default()).unwrap();
        let expected = relative_files(fresh.path());
        let actual = relative_files(&committed);
        assert_eq!(
            actual.iter().map(|f| &f.0).collect::<Vec<_>>(),
            expected.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "regenerate with: cargo run -p loader --bin gen-samples -- --out dicom_samples --seed 42"
        );
        for ((name, a), (_, b)) in actual.iter().zip(&expected) {
            assert!(
                a == b,
                "{} differs from the generator's output",
                name.display()
            );
        }
    }

    #[test]
    fn curated_set_covers_every_modality_and_encoding_under_5_mb() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_sample_set(dir.path(), &SampleSetOptions::default()).unwrap();
        let modalities: BTreeSet<_> = written.iter().map(|f| f.modality).collect();
        let encodings: BTreeSet<_> = written.iter().map(|f| f.encoding).collect();
        assert_eq!(modalities.len(), Modality::ALL.len());
        assert_eq!(encodings.len(), Encoding::ALL.len());
        let total: u64 = written.iter().map(|f| f.size_bytes).sum();
        assert!(total < 5 * crate::MEGABYTE, "{total} bytes");
        assert!(
            written
                .iter()
                .any(|f| f.modality == Modality::Opv && f.series_description.contains("GPA"))
        );
        let infos = scan_infos(&find_dicom_files(dir.path()).unwrap().files);
        assert!(infos.failures.is_empty(), "{:?}", infos.failures);
        let categories: BTreeSet<_> = infos.infos.iter().map(|i| i.size_category()).collect();
        assert_eq!(
            categories,
            BTreeSet::from([SizeCategory::Small, SizeCategory::Medium])
        );
        let smallest = infos
            .infos
            .iter()
            .filter(|i| i.has_modality("CT"))
            .map(|i| i.size_bytes)
            .min();
        assert!(smallest.unwrap() < 25_000, "a ~20 KB file is present");
    }

    #[test]
    fn random_sets_have_the_requested_count_and_unique_instances() {
        let dir = tempfile::tempdir().unwrap();
        let options = SampleSetOptions {
            seed: 7,
            count: Some(12),
            large: false,
        };
        let written = write_sample_set(dir.path(), &options).unwrap();
        assert_eq!(written.len(), 12);
        let infos = scan_infos(&find_dicom_files(dir.path()).unwrap().files).infos;
        let uids: BTreeSet<_> = infos.iter().map(|i| i.sop_instance_uid.clone()).collect();
        assert_eq!(uids.len(), 12);
    }

    #[test]
    fn ensure_large_sample_writes_a_large_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = ensure_large_sample(dir.path()).unwrap();
        let info = crate::read_file_info(&path).unwrap();
        assert_eq!(info.size_category(), SizeCategory::Large);
        assert_eq!(info.modality.as_deref(), Some("DX"));
        let written_at = std::fs::metadata(&path).unwrap().modified().unwrap();
        assert_eq!(ensure_large_sample(dir.path()).unwrap(), path);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written_at
        );
    }
}
