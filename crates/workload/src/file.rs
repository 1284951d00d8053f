//! The profile file format: TOML read into `Raw*` mirrors with every value's position kept, then
//! checked and converted by a [`Loader`] that reports each mistake as
//! `FILE:LINE:COLUMN: field = value: expected ...`.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dimse::AeTitle;
use loader::synth::{Encoding, ImageGeometry, Modality};
use serde::Deserialize;
use toml::Spanned;

use crate::WorkloadError;
use crate::profile::{
    AeTitleOrder, Burst, CountRange, DEFAULT_SEED, DailyCurve, ImageSource, ModalityProfile,
    Profile, RunSettings, SizeProfile, TRANSFER_SYNTAXES, default_geometry, synthesis_problem,
};

impl Profile {
    /// Reads a profile file; a `folder` in it is relative to the file's folder.
    ///
    /// # Errors
    /// [`WorkloadError::Read`] when the file cannot be read, [`WorkloadError::Invalid`] for every
    /// mistake in it (the first one found).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Profile, WorkloadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        Profile::parse(&text, &path.display().to_string(), dir)
    }

    /// Parses a profile from TOML text; `file` names it in errors, and a `folder` in it is
    /// relative to the current folder.
    ///
    /// # Errors
    /// [`WorkloadError::Invalid`] for the first mistake found.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Profile, WorkloadError> {
        Profile::parse(text, file, Path::new(""))
    }

    fn parse(text: &str, file: &str, dir: &Path) -> Result<Profile, WorkloadError> {
        let loader = Loader { text, file, dir };
        let raw: RawProfile = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            loader.error(&span, e.message().trim())
        })?;
        loader.profile(raw)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    #[serde(default)]
    run: RawRun,
    #[serde(default, rename = "modality")]
    modalities: Vec<Spanned<RawModality>>,
    #[serde(default, rename = "burst")]
    bursts: Vec<Spanned<RawBurst>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRun {
    duration_seconds: Option<Spanned<Number>>,
    seed: Option<u64>,
    daily_curve: Option<Spanned<Vec<Spanned<Number>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModality {
    name: Spanned<String>,
    modality: Spanned<String>,
    calling_ae_titles: Spanned<Vec<Spanned<String>>>,
    calling_ae_title_order: Option<Spanned<String>>,
    called_ae_title: Option<Spanned<String>>,
    studies_per_hour: Spanned<Number>,
    series: Option<Spanned<toml::Value>>,
    images_per_series: Spanned<toml::Value>,
    image_interval_ms: Option<Spanned<Number>>,
    size: Option<Spanned<String>>,
    geometry: Option<Spanned<RawGeometry>>,
    folder: Option<Spanned<String>>,
    transfer_syntax: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeometry {
    rows: u16,
    columns: u16,
    bits_allocated: Option<u16>,
    bits_stored: Option<u16>,
    samples_per_pixel: Option<u16>,
    frames: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBurst {
    at_seconds: Spanned<Number>,
    modality: Spanned<String>,
    images: Spanned<i64>,
    series: Option<Spanned<i64>>,
}

/// A TOML integer or float, so that `studies_per_hour = 40` and `= 40.5` both read.
struct Number(f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

struct Loader<'a> {
    text: &'a str,
    file: &'a str,
    /// The profile's folder, for relative `folder` paths.
    dir: &'a Path,
}

type Span = Range<usize>;

/// The longest time a profile may name (about 31 years): far beyond any run, and small enough
/// that every time converts to a [`Duration`] and every image offset stays representable.
const MAX_SECONDS: f64 = 1e9;

impl Loader<'_> {
    fn error(&self, span: &Span, message: impl Into<String>) -> WorkloadError {
        let offset = span.start.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        WorkloadError::Invalid {
            file: self.file.to_string(),
            line,
            column: before[line_start..].chars().count() + 1,
            message: message.into(),
        }
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile, WorkloadError> {
        let run = self.run(raw.run)?;
        let mut modalities: Vec<ModalityProfile> = Vec::with_capacity(raw.modalities.len());
        let mut names = HashSet::new();
        for entry in raw.modalities {
            let name_span = entry.get_ref().name.span();
            let m = self.modality(entry.into_inner())?;
            if !names.insert(m.name.clone()) {
                return Err(self.error(
                    &name_span,
                    format!(
                        "name = {:?}: another [[modality]] has this name; expected a unique name per group",
                        m.name
                    ),
                ));
            }
            modalities.push(m);
        }
        let mut bursts = Vec::with_capacity(raw.bursts.len());
        for entry in raw.bursts {
            bursts.push(self.burst(entry.into_inner(), &run, &modalities)?);
        }
        Ok(Profile {
            run,
            modalities,
            bursts,
        })
    }

    fn run(&self, raw: RawRun) -> Result<RunSettings, WorkloadError> {
        let duration = match &raw.duration_seconds {
            Some(value) => {
                let seconds = value.get_ref().0;
                if !(seconds > 0.0 && seconds <= MAX_SECONDS) {
                    return Err(self.error(
                        &value.span(),
                        format!("duration_seconds = {seconds}: expected a run length > 0 seconds (at most {MAX_SECONDS:e})"),
                    ));
                }
                Some(Duration::from_secs_f64(seconds))
            }
            None => None,
        };
        let daily_curve = match &raw.daily_curve {
            Some(curve) => {
                let values = curve.get_ref();
                if values.len() != 24 {
                    return Err(self.error(
                        &curve.span(),
                        format!(
                            "daily_curve has {} values: expected 24 hourly factors (hour 0 to hour 23)",
                            values.len()
                        ),
                    ));
                }
                let mut factors = [0.0; 24];
                for (hour, (slot, value)) in factors.iter_mut().zip(values).enumerate() {
                    let f = value.get_ref().0;
                    if !(f.is_finite() && f >= 0.0) {
                        return Err(self.error(
                            &value.span(),
                            format!("daily_curve[{hour}] = {f}: expected a non-negative factor"),
                        ));
                    }
                    *slot = f;
                }
                Some(
                    DailyCurve::new(factors)
                        .map_err(|why| self.error(&curve.span(), format!("daily_curve: {why}")))?,
                )
            }
            None => None,
        };
        Ok(RunSettings {
            duration,
            seed: raw.seed.unwrap_or(DEFAULT_SEED),
            daily_curve,
        })
    }

    fn ae_title(&self, value: &Spanned<String>, key: &str) -> Result<AeTitle, WorkloadError> {
        AeTitle::new(value.get_ref()).map_err(|why| {
            self.error(
                &value.span(),
                format!(
                    "{key} = {:?}: {why}; expected a valid AE title",
                    value.get_ref()
                ),
            )
        })
    }

    fn count(
        &self,
        value: &Spanned<toml::Value>,
        key: &str,
        group: &str,
    ) -> Result<CountRange, WorkloadError> {
        let expected = "expected a whole number >= 1 or { min = N, max = M } with 1 <= N <= M";
        let bad = |shown: String| {
            self.error(
                &value.span(),
                format!("[[modality]] {group:?}: {key} = {shown}: {expected}"),
            )
        };
        let whole = |v: &toml::Value| match v {
            toml::Value::Integer(n) if *n >= 1 => u32::try_from(*n).ok(),
            _ => None,
        };
        match value.get_ref() {
            v @ toml::Value::Integer(_) => whole(v)
                .map(CountRange::fixed)
                .ok_or_else(|| bad(v.to_string())),
            toml::Value::Table(table) => {
                let shown = value.get_ref().to_string().trim().to_string();
                let shown = format!("{{ {} }}", shown.replace('\n', ", "));
                if let Some(other) = table.keys().find(|k| *k != "min" && *k != "max") {
                    return Err(self.error(
                        &value.span(),
                        format!(
                            "[[modality]] {group:?}: {key} has unknown field `{other}`: {expected}"
                        ),
                    ));
                }
                let (Some(min), Some(max)) = (
                    table.get("min").and_then(whole),
                    table.get("max").and_then(whole),
                ) else {
                    return Err(bad(shown));
                };
                if min > max {
                    return Err(self.error(
                        &value.span(),
                        format!(
                            "[[modality]] {group:?}: {key} = {shown}: min {min} is above max {max}; expected min <= max"
                        ),
                    ));
                }
                Ok(CountRange { min, max })
            }
            other => Err(bad(other.to_string())),
        }
    }

    fn modality(&self, raw: RawModality) -> Result<ModalityProfile, WorkloadError> {
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(self.error(
                &raw.name.span(),
                "name = \"\": expected a group name for reports",
            ));
        }
        let group = name.as_str();
        let modality = Modality::from_code(raw.modality.get_ref()).ok_or_else(|| {
            let codes: Vec<&str> = Modality::ALL.iter().map(|m| m.code()).collect();
            self.error(
                &raw.modality.span(),
                format!(
                    "[[modality]] {group:?}: modality = {:?}: expected one of {}",
                    raw.modality.get_ref(),
                    codes.join(", ")
                ),
            )
        })?;
        if raw.calling_ae_titles.get_ref().is_empty() {
            return Err(self.error(
                &raw.calling_ae_titles.span(),
                format!(
                    "[[modality]] {group:?}: calling_ae_titles = []: expected at least one AE title"
                ),
            ));
        }
        let calling_ae_titles = raw
            .calling_ae_titles
            .get_ref()
            .iter()
            .map(|ae| self.ae_title(ae, &format!("[[modality]] {group:?}: calling_ae_titles")))
            .collect::<Result<Vec<_>, _>>()?;
        let calling_ae_title_order = match &raw.calling_ae_title_order {
            None => AeTitleOrder::RoundRobin,
            Some(value) => match value.get_ref().as_str() {
                "round-robin" => AeTitleOrder::RoundRobin,
                "random" => AeTitleOrder::Random,
                other => {
                    return Err(self.error(
                        &value.span(),
                        format!(
                            "[[modality]] {group:?}: calling_ae_title_order = {other:?}: expected \"round-robin\" or \"random\""
                        ),
                    ));
                }
            },
        };
        let called_ae_title = raw
            .called_ae_title
            .as_ref()
            .map(|ae| self.ae_title(ae, &format!("[[modality]] {group:?}: called_ae_title")))
            .transpose()?;
        let rate = raw.studies_per_hour.get_ref().0;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(self.error(
                &raw.studies_per_hour.span(),
                format!(
                    "[[modality]] {group:?}: studies_per_hour = {rate}: expected a rate > 0 (studies per hour at curve factor 1.0)"
                ),
            ));
        }
        let series = match &raw.series {
            Some(value) => self.count(value, "series", group)?,
            None => CountRange::fixed(1),
        };
        let images_per_series = self.count(&raw.images_per_series, "images_per_series", group)?;
        let image_interval = match &raw.image_interval_ms {
            Some(value) => {
                let ms = value.get_ref().0;
                if !(ms >= 0.0 && ms / 1000.0 <= MAX_SECONDS) {
                    return Err(self.error(
                        &value.span(),
                        format!(
                            "[[modality]] {group:?}: image_interval_ms = {ms}: expected a non-negative number of milliseconds (at most {MAX_SECONDS:e} s)"
                        ),
                    ));
                }
                Duration::from_secs_f64(ms / 1000.0)
            }
            None => Duration::ZERO,
        };
        let images = self.image_source(&raw, group, modality)?;
        Ok(ModalityProfile {
            name,
            modality,
            calling_ae_titles,
            calling_ae_title_order,
            called_ae_title,
            studies_per_hour: rate,
            series,
            images_per_series,
            image_interval,
            images,
        })
    }

    fn image_source(
        &self,
        raw: &RawModality,
        group: &str,
        modality: Modality,
    ) -> Result<ImageSource, WorkloadError> {
        let given: Vec<(&str, Span)> = [
            ("size", raw.size.as_ref().map(Spanned::span)),
            ("geometry", raw.geometry.as_ref().map(Spanned::span)),
            ("folder", raw.folder.as_ref().map(Spanned::span)),
        ]
        .into_iter()
        .filter_map(|(k, s)| s.map(|s| (k, s)))
        .collect();
        if let [first, second, ..] = given.as_slice() {
            return Err(self.error(
                &second.1,
                format!(
                    "[[modality]] {group:?}: both {} and {} are given: expected at most one of size, geometry and folder",
                    first.0, second.0
                ),
            ));
        }
        if let Some(folder) = &raw.folder {
            if let Some(ts) = &raw.transfer_syntax {
                return Err(self.error(
                    &ts.span(),
                    format!(
                        "[[modality]] {group:?}: transfer_syntax = {:?} with a folder: real files are sent as they are; leave transfer_syntax out",
                        ts.get_ref()
                    ),
                ));
            }
            let path = self.dir.join(folder.get_ref());
            let scan = loader::find_dicom_files(&path).map_err(|e| {
                self.error(
                    &folder.span(),
                    format!(
                        "[[modality]] {group:?}: folder = {:?}: {e}; expected a folder of DICOM files (relative to the profile's folder)",
                        folder.get_ref()
                    ),
                )
            })?;
            if scan.files.is_empty() {
                return Err(self.error(
                    &folder.span(),
                    format!(
                        "[[modality]] {group:?}: folder = {:?} ({}) holds no DICOM files ({} other entries); expected at least one file with DICM at byte 128",
                        folder.get_ref(),
                        path.display(),
                        scan.skipped.len()
                    ),
                ));
            }
            return Ok(ImageSource::Folder {
                path: PathBuf::from(&path),
                files: scan.files,
            });
        }
        let transfer_syntax = match &raw.transfer_syntax {
            None => Encoding::ExplicitVrLittleEndian,
            Some(value) => TRANSFER_SYNTAXES
                .iter()
                .find(|(name, _)| name == value.get_ref())
                .map(|(_, e)| *e)
                .ok_or_else(|| {
                    let names: Vec<&str> = TRANSFER_SYNTAXES.iter().map(|(n, _)| *n).collect();
                    self.error(
                        &value.span(),
                        format!(
                            "[[modality]] {group:?}: transfer_syntax = {:?}: expected one of {}",
                            value.get_ref(),
                            names.join(", ")
                        ),
                    )
                })?,
        };
        let (geometry, span, key): (Option<ImageGeometry>, Span, String) =
            match (&raw.size, &raw.geometry) {
                (Some(size), _) => {
                    let profile = SizeProfile::from_name(size.get_ref()).ok_or_else(|| {
                        let names: Vec<&str> = SizeProfile::ALL.iter().map(|s| s.name()).collect();
                        self.error(
                            &size.span(),
                            format!(
                                "[[modality]] {group:?}: size = {:?}: expected one of {}",
                                size.get_ref(),
                                names.join(", ")
                            ),
                        )
                    })?;
                    (
                        profile.geometry(),
                        size.span(),
                        format!("size = {:?}", size.get_ref()),
                    )
                }
                (None, Some(g)) => {
                    let r = g.get_ref();
                    let bits_allocated = r.bits_allocated.unwrap_or(16);
                    let geometry = ImageGeometry {
                        rows: r.rows,
                        columns: r.columns,
                        frames: r.frames.unwrap_or(1),
                        samples_per_pixel: r.samples_per_pixel.unwrap_or(1),
                        bits_allocated,
                        bits_stored: r.bits_stored.unwrap_or(if bits_allocated == 16 {
                            12
                        } else {
                            8
                        }),
                    };
                    (Some(geometry), g.span(), "geometry".to_string())
                }
                (None, None) => (
                    default_geometry(modality),
                    raw.modality.span(),
                    format!("modality = {:?} (its default size)", raw.modality.get_ref()),
                ),
            };
        if let Some(problem) = synthesis_problem(modality, geometry, transfer_syntax) {
            let span = match (&raw.transfer_syntax, problem.contains("jpeg")) {
                (Some(ts), true) => ts.span(),
                _ => span,
            };
            return Err(self.error(
                &span,
                format!(
                    "[[modality]] {group:?}: {key} with transfer_syntax {}: {problem}",
                    raw.transfer_syntax
                        .as_ref()
                        .map_or("explicit-le", |t| t.get_ref().as_str())
                ),
            ));
        }
        Ok(ImageSource::Synthetic {
            geometry,
            transfer_syntax,
        })
    }

    fn burst(
        &self,
        raw: RawBurst,
        run: &RunSettings,
        modalities: &[ModalityProfile],
    ) -> Result<Burst, WorkloadError> {
        let at = raw.at_seconds.get_ref().0;
        if !(0.0..=MAX_SECONDS).contains(&at) {
            return Err(self.error(
                &raw.at_seconds.span(),
                format!(
                    "[[burst]] at_seconds = {at}: expected a non-negative offset from the start of the run (at most {MAX_SECONDS:e} s)"
                ),
            ));
        }
        if let Some(duration) = run.duration
            && at >= duration.as_secs_f64()
        {
            return Err(self.error(
                &raw.at_seconds.span(),
                format!(
                    "[[burst]] at_seconds = {at}: expected an offset below [run] duration_seconds = {}",
                    duration.as_secs_f64()
                ),
            ));
        }
        let group = raw.modality.get_ref();
        if !modalities.iter().any(|m| &m.name == group) {
            let names: Vec<&str> = modalities.iter().map(|m| m.name.as_str()).collect();
            return Err(self.error(
                &raw.modality.span(),
                format!(
                    "[[burst]] modality = {group:?}: no [[modality]] has this name; expected one of: {}",
                    names.join(", ")
                ),
            ));
        }
        let positive = |value: &Spanned<i64>, key: &str| {
            u32::try_from(*value.get_ref())
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    self.error(
                        &value.span(),
                        format!(
                            "[[burst]] {key} = {}: expected a whole number >= 1",
                            value.get_ref()
                        ),
                    )
                })
        };
        let images = positive(&raw.images, "images")?;
        let series = raw
            .series
            .as_ref()
            .map(|s| positive(s, "series"))
            .transpose()?;
        if let (Some(s), Some(n)) = (&raw.series, series)
            && n > images
        {
            return Err(self.error(
                &s.span(),
                format!(
                    "[[burst]] series = {n}: more series than its {images} images; expected series <= images"
                ),
            ));
        }
        Ok(Burst {
            at: Duration::from_secs_f64(at),
            group: group.clone(),
            images,
            series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(text: &str, offset: usize) -> (usize, usize) {
        let loader = Loader {
            text,
            file: "f",
            dir: Path::new(""),
        };
        match loader.error(&(offset..offset), "m") {
            WorkloadError::Invalid { line, column, .. } => (line, column),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn lines_and_columns_count_from_one_in_characters() {
        assert_eq!(position("abc", 0), (1, 1));
        assert_eq!(position("a\nbc", 3), (2, 2));
        // "é" is two bytes but one column.
        assert_eq!(position("x\n\u{e9}z", 4), (2, 2));
    }

    #[test]
    fn a_count_accepts_a_number_or_a_range() {
        let p = Profile::from_toml_str(
            "[[modality]]\nname = \"A\"\nmodality = \"MR\"\ncalling_ae_titles = [\"A\"]\nstudies_per_hour = 1.5\nseries = { min = 2, max = 5 }\nimages_per_series = 7\n",
            "f",
        )
        .unwrap();
        let m = &p.modalities[0];
        assert_eq!(m.series, CountRange { min: 2, max: 5 });
        assert_eq!(m.images_per_series, CountRange::fixed(7));
        assert_eq!(m.studies_per_hour, 1.5);
    }

    #[test]
    fn a_count_of_zero_or_text_is_refused() {
        for bad in [
            "0",
            "\"many\"",
            "{ min = 1 }",
            "{ min = 1, max = 2, mean = 1 }",
        ] {
            let text = format!(
                "[[modality]]\nname = \"A\"\nmodality = \"MR\"\ncalling_ae_titles = [\"A\"]\nstudies_per_hour = 1\nimages_per_series = {bad}\n"
            );
            let err = Profile::from_toml_str(&text, "f").unwrap_err().to_string();
            assert!(err.starts_with("f:6:21: "), "{bad}: {err}");
            assert!(err.contains("images_per_series"), "{bad}: {err}");
        }
    }
}
