//! The validated profile: what a hospital's modalities send, and when.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use dimse::AeTitle;
use loader::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality};

/// The seed used when a profile gives none, so that two runs of the same profile send the same
/// schedule.
pub const DEFAULT_SEED: u64 = 1;

/// A validated workload profile; read one with [`Profile::from_file`] or
/// [`Profile::from_toml_str`], turn it into a [`Schedule`](crate::Schedule) with
/// [`Profile::schedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// The `[run]` table.
    pub run: RunSettings,
    /// The `[[modality]]` entries, in file order (the order of groups in reports).
    pub modalities: Vec<ModalityProfile>,
    /// The `[[burst]]` entries, in file order.
    pub bursts: Vec<Burst>,
}

/// The `[run]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSettings {
    /// `duration_seconds`: the run length the profile was written for (a command line may
    /// override it).
    pub duration: Option<Duration>,
    /// `seed`, or [`DEFAULT_SEED`].
    pub seed: u64,
    /// `daily_curve`, if any: without it every hour has factor 1.0.
    pub daily_curve: Option<DailyCurve>,
}

/// Twenty-four hourly factors applied to every modality's `studies_per_hour`, the whole day
/// compressed into the run: with a 600-second run, "hour" `h` of the curve covers seconds
/// `25 h .. 25 (h + 1)`. The curve is a step function (each factor holds for its whole hour, no
/// interpolation), which is what "hourly factors" says and keeps the expected count of each hour
/// exact: `studies_per_hour × factor × run_hours / 24`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DailyCurve {
    factors: [f64; 24],
}

impl DailyCurve {
    /// A curve from 24 factors, each finite and non-negative, not all zero.
    ///
    /// # Errors
    /// What is wrong with the factors, as text.
    pub fn new(factors: [f64; 24]) -> Result<Self, String> {
        if let Some((hour, f)) = factors
            .iter()
            .enumerate()
            .find(|(_, f)| !f.is_finite() || **f < 0.0)
        {
            return Err(format!(
                "factor of hour {hour} is {f}: expected a non-negative number"
            ));
        }
        if factors.iter().all(|f| *f == 0.0) {
            return Err("every factor is 0: expected at least one positive factor".into());
        }
        Ok(Self { factors })
    }

    /// The 24 factors, hour 0 first.
    pub fn factors(&self) -> &[f64; 24] {
        &self.factors
    }

    /// The factor at `fraction` of the day (0.0 = midnight, 0.5 = noon); fractions outside
    /// `0..1` are clamped.
    pub fn factor_at(&self, fraction: f64) -> f64 {
        let hour = (fraction.clamp(0.0, 1.0) * 24.0) as usize;
        self.factors[hour.min(23)]
    }

    /// The largest factor (the envelope of the thinning).
    pub fn peak(&self) -> f64 {
        self.factors.iter().copied().fold(0.0, f64::max)
    }

    /// The mean factor over the day.
    pub fn mean(&self) -> f64 {
        self.factors.iter().sum::<f64>() / 24.0
    }
}

/// One `[[modality]]` entry: a group of devices of one modality that send studies of one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModalityProfile {
    /// `name`: the group's name in reports, unique in the profile.
    pub name: String,
    /// `modality`: what the synthetic instances are.
    pub modality: Modality,
    /// `calling_ae_titles`: the devices; each study is sent by one of them.
    pub calling_ae_titles: Vec<AeTitle>,
    /// `calling_ae_title_order`: how a study picks its device.
    pub calling_ae_title_order: AeTitleOrder,
    /// `called_ae_title`: the router's AE title for this group; `None` means the run's route.
    pub called_ae_title: Option<AeTitle>,
    /// `studies_per_hour`: the Poisson rate at curve factor 1.0, per hour of the run.
    pub studies_per_hour: f64,
    /// `series`: series per study.
    pub series: CountRange,
    /// `images_per_series`: images in each series (drawn per series).
    pub images_per_series: CountRange,
    /// `image_interval_ms`: the time between two images of a study.
    pub image_interval: Duration,
    /// What the images are: synthetic (`size`, `geometry`, `transfer_syntax`) or `folder`.
    pub images: ImageSource,
}

/// How a study picks its calling AE title among a group's `calling_ae_titles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AeTitleOrder {
    /// `"round-robin"` (the default): in arrival order, bursts included.
    #[default]
    RoundRobin,
    /// `"random"`: drawn uniformly with the schedule's seed.
    Random,
}

/// A whole number drawn uniformly in `min..=max` (`min == max` for a fixed count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CountRange {
    /// The smallest count, at least 1.
    pub min: u32,
    /// The largest count, at least `min`.
    pub max: u32,
}

impl CountRange {
    /// A fixed count.
    pub fn fixed(n: u32) -> Self {
        Self { min: n, max: n }
    }

    /// The mean of the uniform draw.
    pub fn mean(&self) -> f64 {
        (f64::from(self.min) + f64::from(self.max)) / 2.0
    }
}

/// What a group's images are made of.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Synthetic instances from [`loader::synth::InstanceBuilder`].
    Synthetic {
        /// The image geometry; `None` for a modality without pixel data (OPV).
        geometry: Option<ImageGeometry>,
        /// How they are encoded.
        transfer_syntax: Encoding,
    },
    /// Real DICOM files, sent in turn (the study's images cycle through them).
    Folder {
        /// The folder, resolved against the profile file's folder.
        path: PathBuf,
        /// The DICOM files found in it ([`loader::find_dicom_files`]), sorted by path.
        files: Vec<PathBuf>,
    },
}

/// One `[[burst]]` entry: a single large study at a fixed time, on top of the Poisson traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Burst {
    /// `at_seconds`: its arrival, from the start of the run.
    pub at: Duration,
    /// `modality`: the name of the `[[modality]]` entry whose devices, image source and
    /// interval it uses.
    pub group: String,
    /// `images`: the study's image count.
    pub images: u32,
    /// `series`: how many series the images are split into; `None` draws from the group's
    /// `series` range.
    pub series: Option<u32>,
}

/// The named image sizes of `size = "..."`. Native (uncompressed) pixel data sizes, computed as
/// rows × columns × samples × bytes per sample × frames:
///
/// | name | geometry | pixel data |
/// |---|---|---|
/// | `ct-512` | 512 × 512, 16-bit (12 stored) | 512 KiB |
/// | `mr-256` | 256 × 256, 16-bit (12 stored) | 128 KiB |
/// | `cr-2k` | 2500 × 2048, 16-bit (12 stored) | 10.2 MB |
/// | `dx-3k` | 3000 × 3000, 16-bit (14 stored) | 18 MB |
/// | `mammo-4k` | 4096 × 3328, 16-bit (14 stored) | 27.3 MB |
/// | `us` | 480 × 640, 8-bit | 300 KiB |
/// | `us-multiframe` | 480 × 640, 8-bit, 60 frames (a 2-second clip) | 18.4 MB |
/// | `op` | 1536 × 2048 RGB, 8-bit (fundus photograph) | 9.4 MB |
/// | `opt` | 496 × 512, 8-bit, 49 frames (an OCT volume) | 12.4 MB |
/// | `opv` | no pixel data (visual field measurements) | a few KB |
///
/// There is no MG modality in [`loader::synth`], so `mammo-4k` is a mammography-sized image sent
/// as DX (`modality = "DX"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SizeProfile {
    /// `ct-512`.
    Ct512,
    /// `mr-256`.
    Mr256,
    /// `cr-2k`.
    Cr2k,
    /// `dx-3k`.
    Dx3k,
    /// `mammo-4k`.
    Mammo4k,
    /// `us`.
    Us,
    /// `us-multiframe`.
    UsMultiframe,
    /// `op`.
    Op,
    /// `opt`.
    Opt,
    /// `opv`.
    Opv,
}

impl SizeProfile {
    /// Every size profile, in the order of the table above.
    pub const ALL: [SizeProfile; 10] = [
        Self::Ct512,
        Self::Mr256,
        Self::Cr2k,
        Self::Dx3k,
        Self::Mammo4k,
        Self::Us,
        Self::UsMultiframe,
        Self::Op,
        Self::Opt,
        Self::Opv,
    ];

    /// The name written in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ct512 => "ct-512",
            Self::Mr256 => "mr-256",
            Self::Cr2k => "cr-2k",
            Self::Dx3k => "dx-3k",
            Self::Mammo4k => "mammo-4k",
            Self::Us => "us",
            Self::UsMultiframe => "us-multiframe",
            Self::Op => "op",
            Self::Opt => "opt",
            Self::Opv => "opv",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The geometry, `None` for `opv` (no pixel data).
    pub fn geometry(self) -> Option<ImageGeometry> {
        Some(match self {
            Self::Ct512 => ImageGeometry::mono16(512, 512, 12),
            Self::Mr256 => ImageGeometry::mono16(256, 256, 12),
            Self::Cr2k => ImageGeometry::mono16(2500, 2048, 12),
            Self::Dx3k => ImageGeometry::mono16(3000, 3000, 14),
            Self::Mammo4k => ImageGeometry::mono16(4096, 3328, 14),
            Self::Us => ImageGeometry::mono8(480, 640),
            Self::UsMultiframe => ImageGeometry::mono8(480, 640).with_frames(60),
            Self::Op => ImageGeometry::rgb8(1536, 2048),
            Self::Opt => ImageGeometry::mono8(496, 512).with_frames(49),
            Self::Opv => return None,
        })
    }
}

impl fmt::Display for SizeProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The transfer syntaxes a profile can name, as written in `transfer_syntax = "..."`.
pub(crate) const TRANSFER_SYNTAXES: [(&str, Encoding); 4] = [
    ("explicit-le", Encoding::ExplicitVrLittleEndian),
    ("implicit-le", Encoding::ImplicitVrLittleEndian),
    ("rle", Encoding::RleLossless),
    ("jpeg-baseline", Encoding::JpegBaseline),
];

/// Why `modality` cannot have `geometry` in `encoding`: the rules
/// [`InstanceBuilder::build`] applies, checked when the profile is read rather than minutes into
/// a run.
pub(crate) fn synthesis_problem(
    modality: Modality,
    geometry: Option<ImageGeometry>,
    encoding: Encoding,
) -> Option<String> {
    match geometry {
        None if modality.has_pixels() => Some(format!("{modality} images need pixel data")),
        None if encoding.is_compressed() => Some(format!(
            "{modality} has no pixel data to compress: expected explicit-le or implicit-le"
        )),
        None => None,
        Some(_) if !modality.has_pixels() => Some(format!(
            "{modality} instances have no pixel data: leave out size and geometry (or size = \"opv\")"
        )),
        Some(g) => {
            if let Err(reason) = g.validate() {
                return Some(reason);
            }
            if g.frames > 1 && !matches!(modality, Modality::Opt | Modality::Us) {
                return Some(format!(
                    "{} frames, but {modality}'s storage SOP class is single-frame (only OPT and US are multi-frame)",
                    g.frames
                ));
            }
            if encoding == Encoding::JpegBaseline && g.bits_allocated != 8 {
                return Some("jpeg-baseline holds 8-bit samples only".into());
            }
            None
        }
    }
}

/// The geometry a synthetic group uses when the profile names no size.
pub(crate) fn default_geometry(modality: Modality) -> Option<ImageGeometry> {
    InstanceBuilder::default_geometry(modality)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_a_step_function_of_the_fraction_of_the_day() {
        let mut factors = [1.0; 24];
        factors[12] = 3.0;
        let curve = DailyCurve::new(factors).unwrap();
        assert_eq!(curve.factor_at(12.0 / 24.0), 3.0);
        assert_eq!(curve.factor_at(12.99 / 24.0), 3.0);
        assert_eq!(curve.factor_at(13.0 / 24.0), 1.0);
        assert_eq!(curve.factor_at(1.0), 1.0);
        assert_eq!(curve.peak(), 3.0);
        assert!((curve.mean() - 26.0 / 24.0).abs() < 1e-12);
    }

    #[test]
    fn a_curve_of_zeros_or_negatives_is_refused() {
        assert!(DailyCurve::new([0.0; 24]).is_err());
        let mut factors = [1.0; 24];
        factors[5] = -0.5;
        assert!(DailyCurve::new(factors).unwrap_err().contains("hour 5"));
    }

    #[test]
    fn every_size_profile_is_a_geometry_the_generator_makes_for_its_modality() {
        let pairs = [
            (SizeProfile::Ct512, Modality::Ct),
            (SizeProfile::Mr256, Modality::Mr),
            (SizeProfile::Cr2k, Modality::Cr),
            (SizeProfile::Dx3k, Modality::Dx),
            (SizeProfile::Mammo4k, Modality::Dx),
            (SizeProfile::Us, Modality::Us),
            (SizeProfile::UsMultiframe, Modality::Us),
            (SizeProfile::Op, Modality::Op),
            (SizeProfile::Opt, Modality::Opt),
            (SizeProfile::Opv, Modality::Opv),
        ];
        for (size, modality) in pairs {
            assert_eq!(
                synthesis_problem(modality, size.geometry(), Encoding::ExplicitVrLittleEndian),
                None,
                "{size}"
            );
        }
    }

    #[test]
    fn opv_cannot_be_compressed() {
        let problem = synthesis_problem(Modality::Opv, None, Encoding::RleLossless).unwrap();
        assert!(problem.contains("no pixel data"), "{problem}");
    }
}
