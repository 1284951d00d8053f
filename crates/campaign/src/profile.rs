//! A load run from a hospital workload profile (`dicom-auto run --profile FILE`): the
//! `workload` crate's seeded schedule of study arrivals, sent by the sender's
//! arrival-driven mode.
//!
//! Each planned study becomes a [`StudyArrival`]: its own association, opened at its
//! arrival under its modality's calling AE title (and called AE title, when the
//! profile names one), its images at their intended times, every latency measured
//! from those times. Templates are prepared once with fresh UIDs (a synthetic image
//! per series of each group, or a folder's files) and re-sent as fresh studies.
//! `LOAD_CONCURRENCY` bounds the studies in flight; `LOAD_MEMORY_BUDGET` the data
//! sets held.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use config::TestConfig;
use sender::{ImageArrival, LoadPlan, LoadReport, PreparedInstance, StudyArrival, UidStrategy};
use workload::{Profile, Schedule, TemplateSource};

use crate::{CampaignError, Samples};

/// A profile's schedule made ready to send.
#[derive(Debug)]
pub struct ProfilePlan {
    /// The arrival-driven plan.
    pub plan: LoadPlan,
    /// What the profile draws for this run: per group, studies, images, bytes, rate.
    pub schedule: Schedule,
    /// The real files the profile's folders hold (for the report's scrubbing of
    /// identifying values); empty for a synthetic profile.
    pub samples: Samples,
}

/// Reads `path` as a workload profile.
///
/// # Errors
/// [`CampaignError::Profile`] with `FILE:LINE:COLUMN` and what is wrong.
pub fn read_profile(path: &Path) -> Result<Profile, CampaignError> {
    Profile::from_file(path).map_err(|e| CampaignError::Profile(Box::new(e)))
}

/// The run of `profile` for `duration` (the profile's own `duration_seconds` when
/// `None`, else `TEST_DURATION_SECONDS`): its schedule, the templates prepared with
/// fresh UIDs, one [`StudyArrival`] per planned study.
///
/// # Errors
/// [`CampaignError::Profile`] when a template cannot be made, [`CampaignError::Sender`]
/// when one cannot be prepared, [`CampaignError::NoSamples`] when the schedule holds
/// no study (a rate too low for so short a run).
pub fn profile_plan(
    config: &TestConfig,
    profile: &Profile,
    duration: Option<Duration>,
    profile_path: &Path,
) -> Result<ProfilePlan, CampaignError> {
    let duration = duration
        .or(profile.duration())
        .unwrap_or(config.load.duration);
    let schedule = profile.schedule(duration);
    if schedule.studies.is_empty() {
        return Err(CampaignError::NoSamples {
            root: profile_path.to_path_buf(),
        });
    }
    let mut instances: Vec<Arc<PreparedInstance>> = Vec::with_capacity(schedule.templates.len());
    let mut infos = Vec::new();
    for template in &schedule.templates {
        let prepared = match &template.source {
            TemplateSource::File(path) => {
                if let Ok(info) = loader::read_file_info(path) {
                    infos.push(info);
                }
                PreparedInstance::from_file(path, UidStrategy::Fresh)?
            }
            TemplateSource::Synthetic { .. } => {
                let object = template
                    .build()
                    .map_err(|e| CampaignError::Profile(Box::new(e)))?;
                PreparedInstance::from_object(&object, UidStrategy::Fresh)?
            }
        };
        instances.push(Arc::new(prepared));
    }
    let studies: Vec<StudyArrival> = schedule
        .studies
        .iter()
        .map(|study| {
            StudyArrival::new(
                study.arrival,
                study.calling_ae_title.clone(),
                study.group.as_str(),
            )
            .called_ae_title(study.called_ae_title.clone())
            .images(
                study
                    .images
                    .iter()
                    .map(|image| ImageArrival::new(image.offset, image.template, image.series))
                    .collect(),
            )
        })
        .collect();
    let plan = LoadPlan::arrivals(instances, studies)
        .concurrency(config.load.concurrency)
        .memory_budget(config.load.memory_budget);
    Ok(ProfilePlan {
        plan,
        schedule,
        samples: Samples {
            root: profile_path.to_path_buf(),
            infos,
            skipped: Vec::new(),
        },
    })
}

/// The report's rows of each group (modality) of an arrival-driven run, with the
/// studies C-FIND found complete when `verification` ran.
pub fn group_rows(
    load: &LoadReport,
    verification: Option<&cfind::VerificationReport>,
) -> Vec<report::GroupRow> {
    let complete: std::collections::HashSet<&str> = verification
        .iter()
        .flat_map(|v| v.studies.iter())
        .filter(|s| s.delivery == cfind::Delivery::Complete)
        .map(|s| s.study_instance_uid.as_str())
        .collect();
    load.groups
        .iter()
        .map(|group| {
            let m = &group.metrics;
            report::GroupRow {
                name: group.name.clone(),
                studies: group.studies,
                attempted: m.counts.attempted,
                not_delivered: m.counts.failed + m.counts.unknown,
                images_per_s: m.images_per_s,
                latency: m.latency_ms,
                studies_verified: verification.map(|_| {
                    load.studies
                        .iter()
                        .filter(|s| s.group.as_deref() == Some(group.name.as_str()))
                        .filter(|s| complete.contains(s.study_instance_uid.as_str()))
                        .count() as u64
                }),
            }
        })
        .collect()
}

/// The figures of each group (modality) of an arrival-driven run: studies, images
/// attempted and failed, delivered images per second, p95 latency from the
/// intended send time.
pub fn group_figures(load: &LoadReport) -> Vec<report::Figure> {
    load.groups
        .iter()
        .map(|group| {
            let m = &group.metrics;
            let c = &m.counts;
            let p95 = m
                .p95_latency_ms()
                .map_or_else(|| "n/a".to_string(), |p| format!("{p:.1} ms"));
            let rate = m
                .images_per_s
                .map_or_else(|| "n/a".to_string(), |r| format!("{r:.1}/s"));
            report::Figure {
                label: format!(
                    "{}: studies / images attempted / failed+unknown / delivered rate / p95",
                    group.name
                ),
                value: format!(
                    "{} / {} / {} / {rate} / {p95}",
                    group.studies,
                    c.attempted,
                    c.failed + c.unknown
                ),
            }
        })
        .collect()
}
