//! Fault injection: the ways a misbehaving router hurts its senders, on demand.
//!
//! A [`FaultPlan`] comes from the rules file's `[faults]` table and can be replaced
//! at run time through [`SimulatorHandle::set_faults`](crate::SimulatorHandle::set_faults).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dimse::{Attribute, InformationModel, Status};
use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How long to wait before each DIMSE response.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseDelay {
    /// The same delay every time.
    Fixed(Duration),
    /// A delay drawn uniformly from `min..=max` (seeded: see [`FaultPlan::seed`]).
    Random {
        /// Shortest delay.
        min: Duration,
        /// Longest delay.
        max: Duration,
    },
}

/// Which C-STOREs a status override hits.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreSelection {
    /// The Nth, 2Nth, 3Nth... C-STORE the simulator receives (counted across all
    /// associations and routes).
    EveryNth(u64),
    /// Each C-STORE with this probability (0.0..=1.0).
    Fraction(f64),
}

/// Answer some C-STOREs with a given status instead of processing them normally.
///
/// A failure status means the instance is discarded (not stored, not forwarded);
/// a success or warning status means it is processed as usual and the response
/// carries this status.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusOverride {
    /// The status to answer.
    pub status: Status,
    /// Which stores get it.
    pub selection: StoreSelection,
}

/// Answer C-FINDs on some information models with a refusal instead of matches,
/// as PACS that support only one model do (`0xA900` identifier does not match SOP
/// class, `0xC000` unable to process, or any other status).
#[derive(Clone, Debug, PartialEq)]
pub struct FindRefusal {
    /// The models refused; empty refuses every C-FIND.
    pub models: Vec<InformationModel>,
    /// The status of the (only) C-FIND-RSP.
    pub status: Status,
}

impl FindRefusal {
    /// Whether a C-FIND on `model` is refused.
    pub fn refuses(&self, model: InformationModel) -> bool {
        self.models.is_empty() || self.models.contains(&model)
    }
}

/// Change or remove one top-level attribute of some forwarded instances.
#[derive(Clone, Debug, PartialEq)]
pub struct AttributeAlteration {
    /// The Nth, 2Nth... instance handed to the forwarders (over all routes) is altered.
    pub every_nth: u64,
    /// The attribute.
    pub attribute: Attribute,
    /// The new value (written as text, the element keeping the VR it arrived with);
    /// `None` removes the attribute.
    pub value: Option<String>,
}

/// The faults the simulator injects. The default injects none.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultPlan {
    /// Wait before every DIMSE response (C-ECHO, C-STORE, each C-FIND response).
    pub response_delay: Option<ResponseDelay>,
    /// Answer some C-STOREs with another status.
    pub status_override: Option<StatusOverride>,
    /// Abort (A-ABORT) each association right after its Nth C-STORE response.
    pub abort_after_stores: Option<u64>,
    /// Abort associations on which nothing arrives for this long.
    pub idle_timeout: Option<Duration>,
    /// Refuse new associations (A-ASSOCIATE-RJ transient, service provider,
    /// temporary congestion) for this long after the plan takes effect.
    pub refuse_associations_for: Option<Duration>,
    /// Reject (A-ASSOCIATE-RJ permanent, service user, called AE title not
    /// recognized) the first N associations after the plan takes effect, then accept
    /// as usual: a router that comes up without the route, or a retry test.
    pub reject_first_associations: Option<u64>,
    /// Read C-STORE requests and their data sets but never answer them (nothing
    /// is stored). C-ECHO and C-FIND are still answered.
    pub stall_stores: bool,
    /// A-ABORT an association as soon as more than this many bytes of one data set
    /// have arrived: the peer loses the association in the middle of a C-STORE it is
    /// still sending (choose a value below the data set size; the data set must span
    /// several PDUs for the sender to be still writing). Every data set counts, C-FIND
    /// identifiers too (a few hundred bytes: stay above that to leave queries alone).
    pub abort_mid_data_set: Option<usize>,
    /// Do not accept these Query/Retrieve models at negotiation (their presentation
    /// contexts are refused, abstract syntax not supported), as a PACS that offers
    /// only one model does.
    pub withheld_find_models: Vec<InformationModel>,
    /// Read C-FIND requests but never answer them (C-ECHO and C-STORE still answered).
    pub stall_finds: bool,
    /// Answer C-FIND on these models with a refusal status.
    pub refuse_find: Option<FindRefusal>,
    /// Leave NumberOfStudyRelatedSeries, NumberOfStudyRelatedInstances and
    /// NumberOfSeriesRelatedInstances out of C-FIND responses, as SCPs that do not
    /// compute counts do.
    pub omit_instance_counts: bool,
    /// Put the final status inside the last pending identifier ((0000,0900) = 0000)
    /// and send no final C-FIND-RSP, as some SCPs do (dicom-rs issue #434). A query
    /// with no match still gets its final response.
    pub status_in_last_identifier: bool,
    /// Silently discard the Nth, 2Nth... instance handed to the forwarders (counted
    /// over all routes): acknowledged to the sender, never sent to the destination.
    pub drop_forward_every_nth: Option<u64>,
    /// Send the Nth, 2Nth... forwarded instance to the destination twice.
    pub duplicate_forward_every_nth: Option<u64>,
    /// Flip bytes in the middle of the Pixel Data of the Nth, 2Nth... forwarded
    /// instance (of the first fragment when encapsulated; lengths unchanged).
    pub corrupt_pixels_every_nth: Option<u64>,
    /// Change or remove an attribute of some forwarded instances.
    pub alter_attribute: Option<AttributeAlteration>,
    /// Hold each instance in the forwarder this long after it is queued (the C-STORE
    /// response is not delayed).
    pub forward_delay: Option<ResponseDelay>,
    /// C-MOVE and C-GET answered with pending responses whose counts never change
    /// (every ~200 ms), no sub-operation ever made, until a C-CANCEL (then `FE00`)
    /// or the end of the association.
    pub retrieve_pending_forever: bool,
    /// Each C-MOVE and C-GET also sends one generated instance the identifier did
    /// not ask for (a new SOP Instance UID in the first match's series), counted in
    /// the sub-operations.
    pub retrieve_extra_instance: bool,
    /// The Nth, 2Nth... sub-operation of each C-MOVE and C-GET is not made and is
    /// reported failed (counted per retrieve).
    pub retrieve_fail_every_nth: Option<u64>,
    /// Storage Commitment: answer the N-ACTION with success and never send the
    /// N-EVENT-REPORT.
    pub commitment_never_report: bool,
    /// Storage Commitment: the Nth, 2Nth... referenced instance of each request is
    /// reported failed (0x0110 processing failure) even when it is stored.
    pub commitment_fail_every_nth: Option<u64>,
    /// Storage Commitment: the N-EVENT-REPORT carries a transaction UID other than
    /// the request's.
    pub commitment_unknown_transaction: bool,
    /// Seed for random delays and fractions, so a run can be replayed.
    pub seed: u64,
}

impl FaultPlan {
    /// Whether this plan injects nothing.
    pub fn is_empty(&self) -> bool {
        let FaultPlan {
            response_delay,
            status_override,
            abort_after_stores,
            idle_timeout,
            refuse_associations_for,
            stall_stores,
            reject_first_associations,
            abort_mid_data_set,
            withheld_find_models,
            stall_finds,
            refuse_find,
            omit_instance_counts,
            status_in_last_identifier,
            drop_forward_every_nth,
            duplicate_forward_every_nth,
            corrupt_pixels_every_nth,
            alter_attribute,
            forward_delay,
            retrieve_pending_forever,
            retrieve_extra_instance,
            retrieve_fail_every_nth,
            commitment_never_report,
            commitment_fail_every_nth,
            commitment_unknown_transaction,
            seed: _,
        } = self;
        response_delay.is_none()
            && status_override.is_none()
            && abort_after_stores.is_none()
            && idle_timeout.is_none()
            && refuse_associations_for.is_none()
            && !stall_stores
            && reject_first_associations.is_none()
            && abort_mid_data_set.is_none()
            && withheld_find_models.is_empty()
            && !stall_finds
            && refuse_find.is_none()
            && !omit_instance_counts
            && !status_in_last_identifier
            && drop_forward_every_nth.is_none()
            && duplicate_forward_every_nth.is_none()
            && corrupt_pixels_every_nth.is_none()
            && alter_attribute.is_none()
            && forward_delay.is_none()
            && !retrieve_pending_forever
            && !retrieve_extra_instance
            && retrieve_fail_every_nth.is_none()
            && !commitment_never_report
            && commitment_fail_every_nth.is_none()
            && !commitment_unknown_transaction
    }
}

/// The live fault state shared by all association threads.
#[derive(Debug)]
pub(crate) struct FaultState {
    plan: RwLock<FaultPlan>,
    refuse_until: Mutex<Option<Instant>>,
    stores_seen: AtomicU64,
    associations_seen: AtomicU64,
    forwards_seen: AtomicU64,
    rng: Mutex<StdRng>,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        let state = FaultState {
            plan: RwLock::new(FaultPlan::default()),
            refuse_until: Mutex::new(None),
            stores_seen: AtomicU64::new(0),
            associations_seen: AtomicU64::new(0),
            forwards_seen: AtomicU64::new(0),
            rng: Mutex::new(StdRng::seed_from_u64(plan.seed)),
        };
        state.set(plan);
        state
    }

    pub(crate) fn set(&self, plan: FaultPlan) {
        *self.refuse_until.lock() = plan.refuse_associations_for.map(|d| Instant::now() + d);
        *self.rng.lock() = StdRng::seed_from_u64(plan.seed);
        self.stores_seen.store(0, Ordering::Relaxed);
        self.associations_seen.store(0, Ordering::Relaxed);
        self.forwards_seen.store(0, Ordering::Relaxed);
        *self.plan.write() = plan;
    }

    pub(crate) fn plan(&self) -> FaultPlan {
        self.plan.read().clone()
    }

    pub(crate) fn refuse_for(&self, duration: Duration) {
        *self.refuse_until.lock() = Some(Instant::now() + duration);
    }

    pub(crate) fn refusing(&self) -> bool {
        let mut until = self.refuse_until.lock();
        match *until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                *until = None;
                false
            }
            None => false,
        }
    }

    pub(crate) fn response_delay(&self) -> Option<Duration> {
        let delay = self.plan.read().response_delay.clone()?;
        Some(self.draw(delay))
    }

    fn draw(&self, delay: ResponseDelay) -> Duration {
        match delay {
            ResponseDelay::Fixed(d) => d,
            ResponseDelay::Random { min, max } if max > min => {
                let nanos = self
                    .rng
                    .lock()
                    .random_range(min.as_nanos() as u64..=max.as_nanos() as u64);
                Duration::from_nanos(nanos)
            }
            ResponseDelay::Random { min, .. } => min,
        }
    }

    /// Counts one instance handed to a forwarder and says which silent faults it
    /// gets. Decided once, as it is queued, so that retries resend the same thing.
    pub(crate) fn forward_faults(&self) -> ForwardFaults {
        let plan = self.plan.read();
        if plan.drop_forward_every_nth.is_none()
            && plan.duplicate_forward_every_nth.is_none()
            && plan.corrupt_pixels_every_nth.is_none()
            && plan.alter_attribute.is_none()
            && plan.forward_delay.is_none()
        {
            return ForwardFaults::default();
        }
        let nth = self.forwards_seen.fetch_add(1, Ordering::Relaxed) + 1;
        let hits = |every: Option<u64>| every.is_some_and(|n| n > 0 && nth.is_multiple_of(n));
        ForwardFaults {
            drop: hits(plan.drop_forward_every_nth),
            duplicate: hits(plan.duplicate_forward_every_nth),
            corrupt_pixels: hits(plan.corrupt_pixels_every_nth),
            alter: plan
                .alter_attribute
                .as_ref()
                .filter(|a| hits(Some(a.every_nth)))
                .cloned(),
            delay: plan.forward_delay.clone().map(|d| self.draw(d)),
        }
    }

    /// Counts one C-STORE and says whether it gets an overridden status.
    pub(crate) fn store_override(&self) -> Option<Status> {
        let plan = self.plan.read();
        let rule = plan.status_override.as_ref()?;
        let hit = match rule.selection {
            StoreSelection::EveryNth(0) => false,
            StoreSelection::EveryNth(n) => {
                (self.stores_seen.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(n)
            }
            StoreSelection::Fraction(p) => self.rng.lock().random_bool(p.clamp(0.0, 1.0)),
        };
        hit.then_some(rule.status)
    }

    /// Counts one association request and says whether the plan rejects it.
    pub(crate) fn reject_this_association(&self) -> bool {
        let Some(first) = self.plan.read().reject_first_associations else {
            return false;
        };
        self.associations_seen.fetch_add(1, Ordering::Relaxed) < first
    }

    pub(crate) fn abort_after_stores(&self) -> Option<u64> {
        self.plan.read().abort_after_stores
    }

    pub(crate) fn idle_timeout(&self) -> Option<Duration> {
        self.plan.read().idle_timeout
    }

    pub(crate) fn stall_stores(&self) -> bool {
        self.plan.read().stall_stores
    }

    pub(crate) fn abort_mid_data_set(&self) -> Option<usize> {
        self.plan.read().abort_mid_data_set
    }

    pub(crate) fn withheld_find_models(&self) -> Vec<InformationModel> {
        self.plan.read().withheld_find_models.clone()
    }

    /// The C-MOVE/C-GET faults, read once per retrieve.
    pub(crate) fn retrieve_faults(&self) -> RetrieveFaults {
        let plan = self.plan.read();
        RetrieveFaults {
            pending_forever: plan.retrieve_pending_forever,
            extra_instance: plan.retrieve_extra_instance,
            fail_every_nth: plan.retrieve_fail_every_nth.filter(|&n| n > 0),
        }
    }

    /// The Storage Commitment faults, read once per request.
    pub(crate) fn commitment_faults(&self) -> CommitmentFaults {
        let plan = self.plan.read();
        CommitmentFaults {
            never_report: plan.commitment_never_report,
            fail_every_nth: plan.commitment_fail_every_nth.filter(|&n| n > 0),
            unknown_transaction: plan.commitment_unknown_transaction,
        }
    }

    /// The C-FIND faults, read once per query so that a plan replaced during a
    /// query does not change it half way.
    pub(crate) fn find_faults(&self) -> FindFaults {
        let plan = self.plan.read();
        FindFaults {
            stall: plan.stall_finds,
            refusal: plan.refuse_find.clone(),
            omit_instance_counts: plan.omit_instance_counts,
            status_in_last_identifier: plan.status_in_last_identifier,
        }
    }
}

/// The silent forwarding faults one instance gets.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ForwardFaults {
    pub(crate) drop: bool,
    pub(crate) duplicate: bool,
    pub(crate) corrupt_pixels: bool,
    pub(crate) alter: Option<AttributeAlteration>,
    pub(crate) delay: Option<Duration>,
}

/// The C-MOVE/C-GET part of a [`FaultPlan`], as one retrieve sees it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RetrieveFaults {
    pub(crate) pending_forever: bool,
    pub(crate) extra_instance: bool,
    pub(crate) fail_every_nth: Option<u64>,
}

/// The Storage Commitment part of a [`FaultPlan`], as one request sees it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CommitmentFaults {
    pub(crate) never_report: bool,
    pub(crate) fail_every_nth: Option<u64>,
    pub(crate) unknown_transaction: bool,
}

/// The C-FIND part of a [`FaultPlan`], as one query sees it.
#[derive(Clone, Debug, Default)]
pub(crate) struct FindFaults {
    pub(crate) stall: bool,
    pub(crate) refusal: Option<FindRefusal>,
    pub(crate) omit_instance_counts: bool,
    pub(crate) status_in_last_identifier: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_store_is_overridden() {
        let state = FaultState::new(FaultPlan {
            status_override: Some(StatusOverride {
                status: Status(0xA700),
                selection: StoreSelection::EveryNth(3),
            }),
            ..FaultPlan::default()
        });
        let hits: Vec<bool> = (0..9).map(|_| state.store_override().is_some()).collect();
        assert_eq!(
            hits,
            [false, false, true, false, false, true, false, false, true]
        );
    }

    #[test]
    fn a_seeded_fraction_is_reproducible_and_roughly_right() {
        let plan = FaultPlan {
            status_override: Some(StatusOverride {
                status: Status(0xC000),
                selection: StoreSelection::Fraction(0.25),
            }),
            seed: 7,
            ..FaultPlan::default()
        };
        let run = |plan: &FaultPlan| {
            let state = FaultState::new(plan.clone());
            (0..4000)
                .map(|_| state.store_override().is_some())
                .collect::<Vec<_>>()
        };
        let first = run(&plan);
        assert_eq!(first, run(&plan));
        let hits = first.iter().filter(|h| **h).count();
        assert!((800..1200).contains(&hits), "{hits} of 4000");
    }

    #[test]
    fn a_find_refusal_without_models_refuses_every_model() {
        let every = FindRefusal {
            models: Vec::new(),
            status: Status(0xC000),
        };
        assert!(every.refuses(InformationModel::PatientRoot));
        let study_root = FindRefusal {
            models: vec![InformationModel::StudyRoot],
            status: Status(0xA900),
        };
        assert!(study_root.refuses(InformationModel::StudyRoot));
        assert!(!study_root.refuses(InformationModel::PatientRoot));
    }

    #[test]
    fn each_new_fault_makes_the_plan_non_empty() {
        let plans = [
            FaultPlan {
                abort_mid_data_set: Some(0),
                ..FaultPlan::default()
            },
            FaultPlan {
                stall_finds: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                omit_instance_counts: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                status_in_last_identifier: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                drop_forward_every_nth: Some(2),
                ..FaultPlan::default()
            },
            FaultPlan {
                duplicate_forward_every_nth: Some(2),
                ..FaultPlan::default()
            },
            FaultPlan {
                corrupt_pixels_every_nth: Some(2),
                ..FaultPlan::default()
            },
            FaultPlan {
                alter_attribute: Some(AttributeAlteration {
                    every_nth: 1,
                    attribute: Attribute::parse("InstitutionName").unwrap(),
                    value: None,
                }),
                ..FaultPlan::default()
            },
            FaultPlan {
                forward_delay: Some(ResponseDelay::Fixed(Duration::from_millis(1))),
                ..FaultPlan::default()
            },
            FaultPlan {
                retrieve_pending_forever: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                retrieve_extra_instance: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                retrieve_fail_every_nth: Some(2),
                ..FaultPlan::default()
            },
            FaultPlan {
                commitment_never_report: true,
                ..FaultPlan::default()
            },
            FaultPlan {
                commitment_fail_every_nth: Some(2),
                ..FaultPlan::default()
            },
            FaultPlan {
                commitment_unknown_transaction: true,
                ..FaultPlan::default()
            },
        ];
        assert!(FaultPlan::default().is_empty());
        assert!(plans.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn forward_faults_pick_every_nth_instance_and_restart_with_a_new_plan() {
        let plan = FaultPlan {
            drop_forward_every_nth: Some(3),
            duplicate_forward_every_nth: Some(2),
            corrupt_pixels_every_nth: Some(4),
            ..FaultPlan::default()
        };
        let state = FaultState::new(plan.clone());
        let picks: Vec<(bool, bool, bool)> = (0..6)
            .map(|_| {
                let f = state.forward_faults();
                (f.drop, f.duplicate, f.corrupt_pixels)
            })
            .collect();
        assert_eq!(
            picks,
            [
                (false, false, false),
                (false, true, false),
                (true, false, false),
                (false, true, true),
                (false, false, false),
                (true, true, false),
            ]
        );
        state.set(plan);
        assert!(!state.forward_faults().drop);
        assert!(!state.forward_faults().drop);
        assert!(state.forward_faults().drop);
    }

    #[test]
    fn only_the_first_associations_are_rejected() {
        let state = FaultState::new(FaultPlan {
            reject_first_associations: Some(2),
            ..FaultPlan::default()
        });
        let rejected: Vec<bool> = (0..4).map(|_| state.reject_this_association()).collect();
        assert_eq!(rejected, [true, true, false, false]);
    }

    #[test]
    fn refusal_ends_by_itself() {
        let state = FaultState::new(FaultPlan::default());
        assert!(!state.refusing());
        state.refuse_for(Duration::from_millis(30));
        assert!(state.refusing());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!state.refusing());
    }

    #[test]
    fn random_delays_stay_in_range() {
        let state = FaultState::new(FaultPlan {
            response_delay: Some(ResponseDelay::Random {
                min: Duration::from_millis(5),
                max: Duration::from_millis(10),
            }),
            ..FaultPlan::default()
        });
        for _ in 0..100 {
            let d = state.response_delay().unwrap();
            assert!(d >= Duration::from_millis(5) && d <= Duration::from_millis(10));
        }
    }
}
