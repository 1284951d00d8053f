//! The schedule: every study a run sends, when, from which device, with which images.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use dicom_object::DefaultDicomObject;
use dimse::AeTitle;
use dimse::serde_duration;
use loader::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality, Series};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::WorkloadError;
use crate::profile::{AeTitleOrder, CountRange, ImageSource, ModalityProfile, Profile};

/// Header and attribute bytes of a synthetic instance on top of its pixel data, for the byte
/// estimates of [`Schedule::summary`] (a measured CT of 512 × 512 is about 1.5 KB above its pixels;
/// OPV's visual field points make it a few KB).
const SYNTHETIC_OVERHEAD_BYTES: u64 = 2_048;
const OPV_BYTES: u64 = 8_192;

/// Everything a run sends: studies in arrival order, and the templates their images are made
/// from. Made by [`Profile::schedule`]; the same profile, duration and seed always give the same
/// schedule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// The run length the schedule covers (no study arrives at or after it).
    #[serde(
        rename = "duration_seconds",
        serialize_with = "serde_duration::seconds"
    )]
    pub duration: Duration,
    /// The seed it was drawn with.
    pub seed: u64,
    /// The studies, sorted by arrival (ties in profile order).
    pub studies: Vec<PlannedStudy>,
    /// What the images are made of; [`PlannedImage::template`] indexes this list.
    pub templates: Vec<Template>,
}

/// One study: sent on its own association, like a modality does, starting at `arrival`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedStudy {
    /// When the study arrives, from the start of the run: the intended time of its first image.
    #[serde(rename = "arrival_seconds", serialize_with = "serde_duration::seconds")]
    pub arrival: Duration,
    /// The group (`[[modality]]` name) it belongs to.
    pub group: String,
    /// Whether it is a `[[burst]]` rather than a Poisson arrival.
    pub burst: bool,
    /// The device that sends it.
    pub calling_ae_title: AeTitle,
    /// The router AE title it is sent to; `None` means the run's route.
    pub called_ae_title: Option<AeTitle>,
    /// Its images, in sending order.
    pub images: Vec<PlannedImage>,
}

impl PlannedStudy {
    /// The intended send time of each image, from the start of the run: arrival + offset.
    pub fn intended_times(&self) -> impl Iterator<Item = Duration> + '_ {
        self.images.iter().map(|i| self.arrival + i.offset)
    }
}

/// One image of a study.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PlannedImage {
    /// Its intended send time from the study's arrival: `k × image_interval` for the k-th image
    /// (from 0). A sender measures its latency from `arrival + offset`, not from when it
    /// actually got round to sending it (no coordinated omission).
    #[serde(rename = "offset_ms", serialize_with = "serde_duration::millis")]
    pub offset: Duration,
    /// Index into [`Schedule::templates`].
    pub template: usize,
    /// Series number within the study, from 1: images with the same number share a fresh Series
    /// Instance UID.
    pub series: u32,
}

/// What a sender prepares once and re-sends with fresh UIDs for each image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Template {
    /// The group (`[[modality]]` name) it belongs to.
    pub group: String,
    /// For a synthetic template, the series number it was made for (its Series Number and
    /// description); 0 for a real file.
    pub series: u32,
    /// The seed [`Template::build`] uses, so a template is the same instance on every run.
    pub seed: u64,
    /// Estimated bytes of one instance (native pixel size plus attributes for synthetic
    /// templates, so an upper bound for compressed syntaxes; the file size for real files).
    pub estimated_bytes: u64,
    /// Where the instance comes from.
    pub source: TemplateSource,
}

/// Where a [`Template`]'s instance comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// Made by [`loader::synth::InstanceBuilder`].
    Synthetic {
        /// The modality.
        #[serde(serialize_with = "serialize_modality")]
        modality: Modality,
        /// The image geometry; `None` without pixel data (OPV).
        #[serde(serialize_with = "serialize_geometry")]
        geometry: Option<ImageGeometry>,
        /// The encoding.
        #[serde(serialize_with = "serialize_encoding")]
        transfer_syntax: Encoding,
    },
    /// A real DICOM file, sent as it is apart from its UIDs.
    File(PathBuf),
}

impl Template {
    /// Makes the template's instance: a valid IOD of its modality from
    /// [`loader::synth::InstanceBuilder`] (with this template's series number and seed), or the
    /// real file as loaded. The meta group holds the transfer syntax the data set is encoded in.
    ///
    /// # Errors
    /// [`WorkloadError::Synthesis`] when the generator refuses (cannot happen for a validated
    /// profile short of memory), [`WorkloadError::Load`] when the real file cannot be read.
    pub fn build(&self) -> Result<DefaultDicomObject, WorkloadError> {
        match &self.source {
            TemplateSource::Synthetic {
                modality,
                geometry,
                transfer_syntax,
            } => {
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                let mut builder = InstanceBuilder::new(*modality)
                    .encoding(*transfer_syntax)
                    .series(Series::random(&mut rng, *modality, self.series.max(1)))
                    .seed(self.seed);
                if let Some(g) = geometry {
                    builder = builder.geometry(*g);
                }
                builder.build().map_err(|source| WorkloadError::Synthesis {
                    group: self.group.clone(),
                    source: Box::new(source),
                })
            }
            TemplateSource::File(path) => loader::load_dataset(path, &loader::LoadOptions::new())
                .map_err(|source| WorkloadError::Load {
                    group: self.group.clone(),
                    source: Box::new(source),
                }),
        }
    }
}

/// Per-group totals of a schedule: what it offers the router.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The schedule's run length.
    #[serde(
        rename = "duration_seconds",
        serialize_with = "serde_duration::seconds"
    )]
    pub duration: Duration,
    /// One entry per group, in profile order.
    pub groups: Vec<GroupSummary>,
}

/// One group's totals in a [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupSummary {
    /// The group (`[[modality]]` name).
    pub group: String,
    /// Studies, bursts included.
    pub studies: usize,
    /// Of which bursts.
    pub bursts: usize,
    /// Images.
    pub images: usize,
    /// Estimated bytes of all images (see [`Template::estimated_bytes`]).
    pub estimated_bytes: u64,
    /// Images per second offered over the whole run.
    pub offered_images_per_second: f64,
}

impl Summary {
    /// All groups together: studies, images, bytes, offered images per second.
    pub fn total(&self) -> GroupSummary {
        GroupSummary {
            group: "total".into(),
            studies: self.groups.iter().map(|g| g.studies).sum(),
            bursts: self.groups.iter().map(|g| g.bursts).sum(),
            images: self.groups.iter().map(|g| g.images).sum(),
            estimated_bytes: self.groups.iter().map(|g| g.estimated_bytes).sum(),
            offered_images_per_second: self
                .groups
                .iter()
                .map(|g| g.offered_images_per_second)
                .sum(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<16} {:>8} {:>7} {:>9} {:>12} {:>9}",
            "group", "studies", "bursts", "images", "MB", "images/s"
        )?;
        for g in self.groups.iter().chain(std::iter::once(&self.total())) {
            writeln!(
                f,
                "{:<16} {:>8} {:>7} {:>9} {:>12.1} {:>9.2}",
                g.group,
                g.studies,
                g.bursts,
                g.images,
                g.estimated_bytes as f64 / 1e6,
                g.offered_images_per_second
            )?;
        }
        Ok(())
    }
}

impl Schedule {
    /// Per-group totals, groups in the order of their first template (profile order).
    pub fn summary(&self) -> Summary {
        let mut groups: Vec<GroupSummary> = Vec::new();
        for t in &self.templates {
            if !groups.iter().any(|g| g.group == t.group) {
                groups.push(GroupSummary {
                    group: t.group.clone(),
                    studies: 0,
                    bursts: 0,
                    images: 0,
                    estimated_bytes: 0,
                    offered_images_per_second: 0.0,
                });
            }
        }
        for study in &self.studies {
            let Some(g) = groups.iter_mut().find(|g| g.group == study.group) else {
                continue;
            };
            g.studies += 1;
            g.bursts += usize::from(study.burst);
            g.images += study.images.len();
            g.estimated_bytes += study
                .images
                .iter()
                .map(|i| self.templates[i.template].estimated_bytes)
                .sum::<u64>();
        }
        let seconds = self.duration.as_secs_f64();
        for g in &mut groups {
            g.offered_images_per_second = if seconds > 0.0 {
                g.images as f64 / seconds
            } else {
                0.0
            };
        }
        Summary {
            duration: self.duration,
            groups,
        }
    }

    /// Every image's intended send time from the start of the run, sorted: the open-loop
    /// timetable a sender keeps to.
    pub fn intended_times(&self) -> Vec<Duration> {
        let mut times: Vec<Duration> = self
            .studies
            .iter()
            .flat_map(PlannedStudy::intended_times)
            .collect();
        times.sort_unstable();
        times
    }
}

/// Independent random streams, so that adding a burst or a group does not move the arrivals
/// of another group.
#[derive(Clone, Copy)]
enum Stream {
    Arrivals = 0,
    Shapes = 1,
    AeTitles = 2,
    Bursts = 3,
}

fn rng(seed: u64, group: usize, stream: Stream) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((group as u64) << 2) | stream as u64);
    rng
}

fn draw(rng: &mut ChaCha8Rng, range: CountRange) -> u32 {
    rng.random_range(range.min..=range.max)
}

impl Profile {
    /// The run length written in the profile (`[run] duration_seconds`), if any.
    pub fn duration(&self) -> Option<Duration> {
        self.run.duration
    }

    /// The group called `name`.
    pub fn group(&self, name: &str) -> Option<&ModalityProfile> {
        self.modalities.iter().find(|m| m.name == name)
    }

    /// The schedule of a run of `duration`, drawn with the profile's seed.
    pub fn schedule(&self, duration: Duration) -> Schedule {
        self.schedule_with_seed(duration, self.run.seed)
    }

    /// The schedule of a run of `duration`, drawn with `seed` instead of the profile's.
    ///
    /// For each group, study arrivals are a non-homogeneous Poisson process of rate
    /// `studies_per_hour × curve(t)` per hour of the run, drawn by thinning (candidates at the
    /// peak rate, each kept with probability `curve(t) / peak`); the daily curve is compressed
    /// into `duration`. Each study draws its series count and, per series, its image count
    /// uniformly from the ranges; its k-th image (from 0) is due at `arrival + k ×
    /// image_interval`. Bursts at or after `duration` are left out.
    pub fn schedule_with_seed(&self, duration: Duration, seed: u64) -> Schedule {
        let mut templates = Vec::new();
        let mut studies = Vec::new();
        let run_seconds = duration.as_secs_f64();
        for (index, group) in self.modalities.iter().enumerate() {
            let bursts: Vec<_> = self
                .bursts
                .iter()
                .enumerate()
                .filter(|(_, b)| b.group == group.name && b.at < duration)
                .collect();
            let max_series = bursts
                .iter()
                .filter_map(|(_, b)| b.series)
                .fold(group.series.max, u32::max);
            let first_template = templates.len();
            push_templates(&mut templates, group, index, max_series, seed);
            let mut images = ImagePicker {
                group,
                first_template,
                templates: templates.len() - first_template,
                cursor: 0,
            };

            let mut group_studies = Vec::new();
            let mut arrivals = rng(seed, index, Stream::Arrivals);
            let mut shapes = rng(seed, index, Stream::Shapes);
            for arrival in self.arrivals(group, run_seconds, &mut arrivals) {
                let shape: Vec<u32> = (0..draw(&mut shapes, group.series))
                    .map(|_| draw(&mut shapes, group.images_per_series))
                    .collect();
                group_studies.push((arrival, false, images.study(&shape)));
            }
            for (burst_index, burst) in bursts {
                let mut burst_rng = rng(seed, burst_index, Stream::Bursts);
                let series = burst
                    .series
                    .unwrap_or_else(|| draw(&mut burst_rng, group.series))
                    .min(burst.images);
                let (base, extra) = (burst.images / series, burst.images % series);
                let shape: Vec<u32> = (0..series).map(|s| base + u32::from(s < extra)).collect();
                group_studies.push((burst.at, true, images.study(&shape)));
            }
            group_studies.sort_by_key(|(arrival, _, _)| *arrival);

            let mut ae_rng = rng(seed, index, Stream::AeTitles);
            let titles = &group.calling_ae_titles;
            for (n, (arrival, burst, images)) in group_studies.into_iter().enumerate() {
                let pick = match group.calling_ae_title_order {
                    AeTitleOrder::RoundRobin => n % titles.len(),
                    AeTitleOrder::Random => ae_rng.random_range(0..titles.len()),
                };
                studies.push((
                    index,
                    PlannedStudy {
                        arrival,
                        group: group.name.clone(),
                        burst,
                        calling_ae_title: titles[pick].clone(),
                        called_ae_title: group.called_ae_title.clone(),
                        images,
                    },
                ));
            }
        }
        studies.sort_by_key(|(group, s)| (s.arrival, *group));
        Schedule {
            duration,
            seed,
            studies: studies.into_iter().map(|(_, s)| s).collect(),
            templates,
        }
    }

    /// Arrival times (seconds from the start) of one group's studies, by thinning.
    fn arrivals(
        &self,
        group: &ModalityProfile,
        run_seconds: f64,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Duration> {
        let curve = self.run.daily_curve.as_ref();
        let peak = curve.map_or(1.0, |c| c.peak());
        let peak_rate = group.studies_per_hour / 3600.0 * peak;
        let mut out = Vec::new();
        if !(peak_rate > 0.0 && run_seconds > 0.0) {
            return out;
        }
        let mut t = 0.0;
        loop {
            // Exponential gap at the peak rate; 1 - u is in (0, 1], so the logarithm is finite.
            let u: f64 = rng.random();
            t += -(1.0 - u).ln() / peak_rate;
            if t >= run_seconds {
                return out;
            }
            let factor = curve.map_or(1.0, |c| c.factor_at(t / run_seconds));
            let keep: f64 = rng.random();
            if keep * peak < factor {
                out.push(Duration::from_secs_f64(t));
            }
        }
    }
}

fn push_templates(
    templates: &mut Vec<Template>,
    group: &ModalityProfile,
    index: usize,
    max_series: u32,
    seed: u64,
) {
    match &group.images {
        ImageSource::Synthetic {
            geometry,
            transfer_syntax,
        } => {
            let estimated_bytes = match geometry {
                Some(g) => g.pixel_data_len() + SYNTHETIC_OVERHEAD_BYTES,
                None => OPV_BYTES,
            };
            for series in 1..=max_series {
                templates.push(Template {
                    group: group.name.clone(),
                    series,
                    seed: seed ^ ((index as u64) << 32) ^ u64::from(series),
                    estimated_bytes,
                    source: TemplateSource::Synthetic {
                        modality: group.modality,
                        geometry: *geometry,
                        transfer_syntax: *transfer_syntax,
                    },
                });
            }
        }
        ImageSource::Folder { files, .. } => {
            for file in files {
                templates.push(Template {
                    group: group.name.clone(),
                    series: 0,
                    seed: 0,
                    estimated_bytes: std::fs::metadata(file).map_or(0, |m| m.len()),
                    source: TemplateSource::File(file.clone()),
                });
            }
        }
    }
}

/// Which template each image of a group uses: its series' template for synthetic groups; the
/// group's files in turn (continuing from study to study) for a folder.
struct ImagePicker<'a> {
    group: &'a ModalityProfile,
    first_template: usize,
    templates: usize,
    cursor: usize,
}

impl ImagePicker<'_> {
    fn study(&mut self, images_per_series: &[u32]) -> Vec<PlannedImage> {
        let mut images = Vec::with_capacity(images_per_series.iter().sum::<u32>() as usize);
        for (series, count) in (1u32..).zip(images_per_series) {
            for _ in 0..*count {
                let template = match self.group.images {
                    ImageSource::Synthetic { .. } => series as usize - 1,
                    ImageSource::Folder { .. } => {
                        let t = self.cursor % self.templates;
                        self.cursor += 1;
                        t
                    }
                };
                images.push(PlannedImage {
                    offset: self
                        .group
                        .image_interval
                        .saturating_mul(images.len() as u32),
                    template: self.first_template + template,
                    series,
                });
            }
        }
        images
    }
}

fn serialize_modality<S: serde::Serializer>(m: &Modality, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.code())
}

fn serialize_encoding<S: serde::Serializer>(e: &Encoding, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(e.transfer_syntax_uid())
}

fn serialize_geometry<S: serde::Serializer>(
    g: &Option<ImageGeometry>,
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Geometry {
        rows: u16,
        columns: u16,
        frames: u32,
        samples_per_pixel: u16,
        bits_allocated: u16,
        bits_stored: u16,
    }
    g.map(|g| Geometry {
        rows: g.rows,
        columns: g.columns,
        frames: g.frames,
        samples_per_pixel: g.samples_per_pixel,
        bits_allocated: g.bits_allocated,
        bits_stored: g.bits_stored,
    })
    .serialize(s)
}
