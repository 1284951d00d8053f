//! Which send goes where: send number *k* names an instance, its UIDs and its study
//! ([`Schedule`]), and workers take the numbers one claim at a time ([`Dispenser`]).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use parking_lot::Mutex;

use super::arrival::ArrivalTable;
use super::plan::{LoadPlan, StopAfter};
use crate::AssociationStrategy;
use crate::instance::InstanceUids;
use crate::layout::{OriginalKey, SendOrder};
use crate::uid::{UidLevel, UidRoot};

/// Where send number `k` goes.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendTarget {
    /// Index of the instance in the plan.
    pub(super) instance: usize,
    /// Fresh UIDs, for a fresh-UID run.
    pub(super) uids: Option<InstanceUids>,
    /// The run's number of the study.
    pub(super) study: u64,
}

/// Every send's instance, UIDs and study, fixed before the clock starts.
pub(super) struct Schedule<'a> {
    plan: &'a LoadPlan,
    /// Fresh UIDs: the run's root, and where each send number goes.
    fresh: Option<(UidRoot, SendOrder)>,
    /// As is: each study's UID and one of its instances, by study number.
    study_uids: Vec<(String, usize)>,
    /// As is: the study number of each instance.
    study_of_instance: Vec<u64>,
    /// An arrival plan: the run's root and its table of sends.
    arrivals: Option<(UidRoot, &'a ArrivalTable)>,
}

impl<'a> Schedule<'a> {
    pub(super) fn new(plan: &'a LoadPlan) -> Self {
        if let Some(table) = plan.arrival_table() {
            return Schedule {
                plan,
                fresh: None,
                study_uids: Vec::new(),
                study_of_instance: Vec::new(),
                arrivals: Some((UidRoot::random(), table)),
            };
        }
        let instances = plan.instances();
        let fresh = instances[0].has_fresh_uids().then(|| {
            let keys: Vec<OriginalKey<'_>> = instances
                .iter()
                .map(|i| OriginalKey {
                    patient_id: i.patient_id(),
                    study_instance_uid: i.study_instance_uid(),
                    series_instance_uid: i.series_instance_uid(),
                })
                .collect();
            (
                UidRoot::random_for_shard(plan.sharding()),
                SendOrder::new(&keys, plan.layout()),
            )
        });
        // As is: number the files' studies, so a send's study is a number, not a
        // string; with one instance of each, for the records.
        let mut study_uids: Vec<(String, usize)> = Vec::new();
        let mut study_of_instance: Vec<u64> = Vec::with_capacity(instances.len());
        if fresh.is_none() {
            let mut index: HashMap<&str, u64> = HashMap::new();
            for (i, instance) in instances.iter().enumerate() {
                let uid = instance
                    .study_instance_uid()
                    .unwrap_or("(no Study Instance UID)");
                let next = index.len() as u64;
                let id = *index.entry(uid).or_insert_with(|| {
                    study_uids.push((uid.to_string(), i));
                    next
                });
                study_of_instance.push(id);
            }
        }
        Schedule {
            plan,
            fresh,
            study_uids,
            study_of_instance,
            arrivals: None,
        }
    }

    fn as_is_instance(&self, k: u64) -> usize {
        (k % self.plan.instances().len() as u64) as usize
    }

    /// Where send `k` goes.
    pub(super) fn target(&self, k: u64) -> SendTarget {
        if let Some((root, table)) = &self.arrivals {
            let send = table.send(k);
            return SendTarget {
                instance: send.instance,
                uids: Some(InstanceUids {
                    study: root.uid(UidLevel::Study, send.study),
                    series: root.uid(UidLevel::Series, send.series),
                    instance: root.uid(UidLevel::Instance, k),
                }),
                study: send.study,
            };
        }
        match &self.fresh {
            Some((root, order)) => {
                let at = order.at(k);
                SendTarget {
                    instance: at.instance,
                    uids: Some(InstanceUids {
                        study: root.uid(UidLevel::Study, at.study),
                        series: root.uid(UidLevel::Series, at.series),
                        // Send numbers are unique in a run, so SOP Instance UIDs are.
                        instance: root.uid(UidLevel::Instance, k),
                    }),
                    study: at.study,
                }
            }
            None => SendTarget {
                instance: self.as_is_instance(k),
                uids: None,
                study: self.study_of(k),
            },
        }
    }

    /// The instance send `k` carries: [`target`](Self::target) without making its UIDs.
    pub(super) fn instance_of(&self, k: u64) -> usize {
        if let Some((_, table)) = &self.arrivals {
            return table.send(k).instance;
        }
        match &self.fresh {
            Some((_, order)) => order.at(k).instance,
            None => self.as_is_instance(k),
        }
    }

    /// The study of send `k`.
    pub(super) fn study_of(&self, k: u64) -> u64 {
        if let Some((_, table)) = &self.arrivals {
            return table.send(k).study;
        }
        match &self.fresh {
            Some((_, order)) => order.at(k).study,
            None => self.study_of_instance[self.as_is_instance(k)],
        }
    }

    /// Study `study`'s Study Instance UID as sent, and the index of an instance of
    /// the original study it comes from.
    pub(super) fn study_identity(&self, study: u64) -> (String, usize) {
        if let Some((root, table)) = &self.arrivals {
            let first = table.studies[study as usize].images[0].instance;
            return (root.uid(UidLevel::Study, study).to_string(), first);
        }
        match &self.fresh {
            Some((root, order)) => (
                root.uid(UidLevel::Study, study).to_string(),
                order.source_of_study(study),
            ),
            None => self.study_uids[study as usize].clone(),
        }
    }

    /// In an arrival run, the index of study `study`'s group in the arrival table.
    pub(super) fn group_of(&self, study: u64) -> Option<usize> {
        self.arrivals
            .as_ref()
            .map(|(_, table)| table.group_of_study(study))
    }

    /// The root of the fresh UIDs, in its `FromStr` form.
    pub(super) fn uid_root(&self) -> Option<String> {
        self.fresh
            .as_ref()
            .map(|(root, _)| root)
            .or(self.arrivals.as_ref().map(|(root, _)| root))
            .map(|root| format!("{root:?}"))
    }
}

/// Hands out send numbers to the workers.
pub(super) struct Dispenser<'a> {
    plan: &'a LoadPlan,
    next: Mutex<u64>,
    total: Option<u64>,
    deadline: Option<Instant>,
    start: Instant,
    schedule: &'a Schedule<'a>,
}

impl<'a> Dispenser<'a> {
    pub(super) fn new(plan: &'a LoadPlan, schedule: &'a Schedule<'a>, start: Instant) -> Self {
        Dispenser {
            plan,
            next: Mutex::new(0),
            total: plan.total(),
            deadline: match plan.stop() {
                StopAfter::Duration(d) => Some(start + d),
                _ => None,
            },
            start,
            schedule,
        }
    }

    /// The next send numbers for one worker: one, or a whole study's worth under the
    /// per-study strategy. `None` when the run is over.
    pub(super) fn claim(&self) -> Option<Range<u64>> {
        // A lock per claim, not an atomic counter: taking a number and checking that it
        // is still admitted (count, deadline) must be one step, or a worker could take
        // k, another take k + 1 and send it, and then k be refused at the deadline,
        // leaving a gap in the send numbers that UIDs and study records derive from.
        // Uncontended for tens of nanoseconds per send: far below a C-STORE's cost.
        let mut next = self.next.lock();
        let first = *next;
        if !self.admits(first) {
            return None;
        }
        let mut end = first + 1;
        // An arrival plan is per-study (checked by the plan).
        if self.plan.association_strategy() == AssociationStrategy::PerStudy {
            let study = self.schedule.study_of(first);
            while self.admits(end) && self.schedule.study_of(end) == study {
                end += 1;
            }
        }
        *next = end;
        Some(first..end)
    }

    fn admits(&self, k: u64) -> bool {
        if self.total.is_some_and(|total| k >= total) {
            return false;
        }
        match (self.deadline, self.plan.admission_offset(k)) {
            (Some(deadline), Some(offset)) => self.start + offset < deadline,
            (Some(deadline), None) => Instant::now() < deadline,
            (None, _) => true,
        }
    }
}
