//! Arrival-driven runs: studies that arrive at given times, each sent by its modality
//! on an association of its own ([`StudyArrival`], [`LoadPlan::arrivals`]).
//!
//! The plan's studies are flattened once, before the clock starts, into one table of
//! sends ([`ArrivalTable`]): send number `k` is an image of a study, with its intended
//! start, its template and its study and series serials, so that the schedule, the
//! dispenser, the feed and the watch see the same send numbers as in any other run.
//!
//! [`LoadPlan::arrivals`]: super::LoadPlan::arrivals

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dimse::{AeTitle, ScuOptions};

use crate::contexts::Proposal;
use crate::options::SenderOptions;

/// One study as a modality sends it: when it arrives, under which AE titles, and its
/// images in send order.
///
/// A run sends each arrival as one fresh study (new Study Instance UID, a new Series
/// Instance UID per [`ImageArrival::series`], a new SOP Instance UID per image) on one
/// association opened with `calling_ae_title` when the study arrives (later when all
/// the run's associations are busy: its images are then late, and measured as late).
///
/// ```
/// use std::time::Duration;
/// use dimse::AeTitle;
/// use sender::{ImageArrival, StudyArrival};
///
/// let ct = StudyArrival::new(Duration::from_secs(3), AeTitle::new("CT01").unwrap(), "CT")
///     .called_ae_title(Some(AeTitle::new("ROUTER").unwrap()))
///     .image(ImageArrival::new(Duration::ZERO, 0, 1))
///     .image(ImageArrival::new(Duration::from_millis(40), 1, 1));
/// assert_eq!(ct.images.len(), 2);
/// assert_eq!(&*ct.group, "CT");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudyArrival {
    /// The study's arrival, from the run's start: its association opens then.
    pub at: Duration,
    /// The modality's AE title on its association.
    pub calling_ae_title: AeTitle,
    /// The called AE title of its association; `None` for the sender's own
    /// ([`SenderOptions::called_ae_title`]).
    pub called_ae_title: Option<AeTitle>,
    /// The group the report gives figures for (`"CT"`, a site, a modality model...).
    pub group: Arc<str>,
    /// Its images, in send order.
    pub images: Vec<ImageArrival>,
}

impl StudyArrival {
    /// A study of no images yet, arriving `at` from the run's start, sent by
    /// `calling_ae_title` to the sender's called AE title, counted in `group`.
    pub fn new(at: Duration, calling_ae_title: AeTitle, group: impl Into<Arc<str>>) -> Self {
        StudyArrival {
            at,
            calling_ae_title,
            called_ae_title: None,
            group: group.into(),
            images: Vec::new(),
        }
    }

    /// Sends the study to this called AE title (`None`: the sender's).
    pub fn called_ae_title(mut self, title: Option<AeTitle>) -> Self {
        self.called_ae_title = title;
        self
    }

    /// Adds an image after the ones already there.
    pub fn image(mut self, image: ImageArrival) -> Self {
        self.images.push(image);
        self
    }

    /// Its images, in send order, replacing any already there.
    pub fn images(mut self, images: Vec<ImageArrival>) -> Self {
        self.images = images;
        self
    }
}

/// One image of a [`StudyArrival`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageArrival {
    /// From the study's arrival: the image's intended start is the run's start +
    /// [`StudyArrival::at`] + `offset`. It never goes earlier; later when the
    /// association is still busy with the images before it (and measured from then).
    pub offset: Duration,
    /// The template it is a copy of: an index into
    /// [`LoadPlan::instances`](super::LoadPlan::instances), sent with fresh UIDs.
    pub instance: usize,
    /// Its series within the study: images of one study with the same number share
    /// one fresh Series Instance UID.
    pub series: u32,
}

impl ImageArrival {
    /// Image `instance` of the plan, `offset` after its study's arrival, in series
    /// `series` of the study.
    pub fn new(offset: Duration, instance: usize, series: u32) -> Self {
        ImageArrival {
            offset,
            instance,
            series,
        }
    }
}

/// One send of an arrival run.
#[derive(Debug, Clone, Copy)]
pub(super) struct ArrivalSend {
    /// Index of the template in the plan.
    pub(super) instance: usize,
    /// Index of its study in [`ArrivalTable::studies`] (the run's study number).
    pub(super) study: u64,
    /// The run's serial of its fresh series.
    pub(super) series: u64,
    /// Intended start from the run's start.
    pub(super) offset: Duration,
}

/// An arrival plan's studies in arrival order and every send they make, by send number.
#[derive(Debug)]
pub(super) struct ArrivalTable {
    /// In order of arrival (stable: studies arriving together keep the caller's order).
    pub(super) studies: Vec<StudyArrival>,
    pub(super) sends: Vec<ArrivalSend>,
    /// The distinct groups, in order of first arrival.
    pub(super) groups: Vec<Arc<str>>,
    /// Per study, the index of its group in `groups`.
    pub(super) study_group: Vec<usize>,
}

impl ArrivalTable {
    pub(super) fn new(mut studies: Vec<StudyArrival>) -> Self {
        studies.sort_by_key(|s| s.at);
        let mut sends = Vec::with_capacity(studies.iter().map(|s| s.images.len()).sum());
        let mut groups: Vec<Arc<str>> = Vec::new();
        let mut study_group = Vec::with_capacity(studies.len());
        let mut next_series = 0u64;
        for (study, arrival) in studies.iter().enumerate() {
            let group = match groups.iter().position(|g| *g == arrival.group) {
                Some(i) => i,
                None => {
                    groups.push(arrival.group.clone());
                    groups.len() - 1
                }
            };
            study_group.push(group);
            let mut series: HashMap<u32, u64> = HashMap::new();
            for image in &arrival.images {
                let serial = *series.entry(image.series).or_insert_with(|| {
                    next_series += 1;
                    next_series - 1
                });
                sends.push(ArrivalSend {
                    instance: image.instance,
                    study: study as u64,
                    series: serial,
                    offset: arrival.at.saturating_add(image.offset),
                });
            }
        }
        ArrivalTable {
            studies,
            sends,
            groups,
            study_group,
        }
    }

    /// The send numbered `k`.
    pub(super) fn send(&self, k: u64) -> &ArrivalSend {
        &self.sends[k as usize]
    }

    /// The arrival of send `k`'s study, from the run's start.
    pub(super) fn arrival_of(&self, k: u64) -> Duration {
        self.studies[self.send(k).study as usize].at
    }

    /// The index of study `study`'s group.
    pub(super) fn group_of_study(&self, study: u64) -> usize {
        self.study_group[study as usize]
    }
}

/// Where one pair of AE titles' associations go: errors are named after `options`.
pub(super) struct Endpoint {
    pub(super) options: SenderOptions,
    pub(super) scu: ScuOptions,
}

/// The association options of every (calling, called) pair of the studies, made once
/// per run (not per study), and each study's pair.
pub(super) struct Endpoints {
    pub(super) endpoints: Vec<Endpoint>,
    pub(super) of_study: Vec<usize>,
}

impl Endpoints {
    pub(super) fn new(table: &ArrivalTable, options: &SenderOptions, proposal: &Proposal) -> Self {
        let mut index: HashMap<(&AeTitle, &AeTitle), usize> = HashMap::new();
        let mut endpoints = Vec::new();
        let of_study = table
            .studies
            .iter()
            .map(|study| {
                let called = study
                    .called_ae_title
                    .as_ref()
                    .unwrap_or(options.called_ae());
                *index
                    .entry((&study.calling_ae_title, called))
                    .or_insert_with(|| {
                        let options = options
                            .clone()
                            .calling_ae_title(study.calling_ae_title.as_str())
                            .called_ae_title(called.as_str());
                        let scu = options.scu_options(proposal);
                        endpoints.push(Endpoint { options, scu });
                        endpoints.len() - 1
                    })
            })
            .collect();
        Endpoints {
            endpoints,
            of_study,
        }
    }

    /// The endpoint of study `study`.
    pub(super) fn of(&self, study: u64) -> &Endpoint {
        &self.endpoints[self.of_study[study as usize]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn title(text: &str) -> AeTitle {
        AeTitle::new(text).unwrap()
    }

    #[test]
    fn the_table_numbers_sends_in_arrival_order_with_one_series_serial_per_study_and_series() {
        let ms = Duration::from_millis;
        let late = StudyArrival::new(ms(50), title("MR1"), "MR")
            .image(ImageArrival::new(ms(0), 1, 7))
            .image(ImageArrival::new(ms(5), 1, 7));
        let early = StudyArrival::new(ms(10), title("CT1"), "CT")
            .image(ImageArrival::new(ms(0), 0, 1))
            .image(ImageArrival::new(ms(3), 0, 2))
            .image(ImageArrival::new(ms(6), 0, 1));
        let table = ArrivalTable::new(vec![late, early]);
        let seen: Vec<_> = table
            .sends
            .iter()
            .map(|s| (s.instance, s.study, s.series, s.offset))
            .collect();
        assert_eq!(
            seen,
            [
                (0, 0, 0, ms(10)),
                (0, 0, 1, ms(13)),
                (0, 0, 0, ms(16)),
                (1, 1, 2, ms(50)),
                (1, 1, 2, ms(55)),
            ]
        );
        assert_eq!(table.groups, [Arc::from("CT"), Arc::from("MR")]);
        assert_eq!(table.group_of_study(1), 1);
        assert_eq!(table.arrival_of(4), ms(50));
    }
}
