//! One worker: one association at a time, used by the plan's
//! [`AssociationStrategy`], sending the numbers it claims at their intended starts
//! and handing one [`SendEvent`] per send to its tallies.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use dimse::ScuOptions;

use super::arrival::{Endpoint, Endpoints};
use super::events::{SendEvent, WorkerTallies};
use super::feed::Feed;
use super::plan::LoadPlan;
use super::progress::Live;
use super::report::AssociationCounts;
use super::schedule::{Dispenser, Schedule};
use super::watch::PlannedSend;
use crate::association::Session;
use crate::instance::{InstanceUids, PreparedInstance, Variant};
use crate::outcome::{Outcome, SendOutcome};
use crate::{AssociationStrategy, DicomSender};

/// One worker's association and association events.
pub(super) struct Worker<'a> {
    pub(super) sender: &'a DicomSender,
    pub(super) plan: &'a LoadPlan,
    /// Made once per run: opening an association allocates nothing for its options.
    pub(super) scu: &'a ScuOptions,
    pub(super) live: &'a Live,
    pub(super) session: Option<Session>,
    pub(super) associations: AssociationCounts,
    /// An arrival run's association options, per study.
    pub(super) endpoints: Option<&'a Endpoints>,
    /// The options of the study being sent, in an arrival run.
    pub(super) endpoint: Option<&'a Endpoint>,
}

impl Worker<'_> {
    /// Sends every number it can claim, each at its intended start (open loop) or at
    /// once (closed loop), until the dispenser says the run is over.
    pub(super) fn run(
        &mut self,
        dispenser: &Dispenser<'_>,
        schedule: &Schedule<'_>,
        feed: &Feed<'_>,
        start: Instant,
        tallies: &mut WorkerTallies<'_>,
    ) {
        let plan = self.plan;
        while let Some(range) = dispenser.claim() {
            // An arrival run's claim is one study, sent under its own AE titles.
            self.endpoint = self
                .endpoints
                .map(|endpoints| endpoints.of(schedule.study_of(range.start)));
            for k in range {
                // Latency is measured from here, not from when the worker got to it:
                // a stalled peer shows as growing latency, not as a slower generator.
                let intended = plan.intended_offset(k).map(|o| start + o);
                if let Some(at) = intended {
                    let now = Instant::now();
                    if at > now {
                        thread::sleep(at - now);
                    }
                }
                let target = schedule.target(k);
                let asked = Instant::now();
                let lease = feed.take(k);
                // Waiting for the data set is the generator's delay, not the router's:
                // latency starts when both the send was due and its data was ready.
                let ready = lease.ready_at();
                let generator_lag = ready.checked_duration_since(intended.unwrap_or(asked));
                let instance = &plan.instances()[target.instance];
                let watched = plan.send_watch().map(|watch| {
                    let token = watch.before_send(&PlannedSend {
                        number: k,
                        instance,
                        instance_index: target.instance,
                        uids: target.uids.as_ref(),
                    });
                    (watch, token)
                });
                let outcome = match lease.variant() {
                    Ok(variant) => self.send(instance, Some(variant), target.uids.as_ref()),
                    Err(detail) => {
                        SendOutcome::not_sent(Outcome::Failure, detail.to_string(), Instant::now())
                    }
                };
                drop(lease);
                if let Some((watch, token)) = watched {
                    watch.after_send(token, &outcome);
                }
                tallies.record(SendEvent {
                    study: target.study,
                    group: schedule.group_of(target.study),
                    intended: intended.map(|at| at.max(ready)),
                    generator_lag: generator_lag.filter(|lag| !lag.is_zero()),
                    outcome,
                });
            }
            if plan.association_strategy() == AssociationStrategy::PerStudy {
                self.close();
            }
        }
        self.close();
    }

    /// Sends one instance on this worker's association, opening one if needed.
    fn send(
        &mut self,
        instance: &PreparedInstance,
        loaded: Option<&Arc<Variant>>,
        uids: Option<&InstanceUids>,
    ) -> SendOutcome {
        let started = Instant::now();
        if let Some(session) = self.session.as_mut() {
            let recycle = self
                .plan
                .max_ops()
                .is_some_and(|max| session.operations() >= u64::from(max.get()));
            if recycle {
                self.associations.recycled += 1;
                self.close();
            } else if !session.check_alive() {
                self.associations.found_closed += 1;
                self.close();
            }
        }
        if self.session.is_none() {
            let opened = match self.endpoint {
                Some(endpoint) => Session::establish(&endpoint.options, &endpoint.scu),
                None => self.sender.open_with(self.scu),
            };
            match opened {
                Ok(session) => {
                    self.associations.opened += 1;
                    if let Some(tls) = session.tls_session() {
                        self.associations.add_tls_session(tls, 1);
                    }
                    self.live.association(true);
                    self.session = Some(session);
                }
                Err(e) => {
                    self.associations.failed_to_open += 1;
                    return SendOutcome::not_sent(Outcome::Failure, e.to_string(), started);
                }
            }
        }
        let session = self.session.as_mut().expect("opened above");
        let mut outcome = session.store_loaded(instance, loaded, uids);
        // Time spent opening the association belongs to this send.
        outcome.latency = outcome.started.saturating_duration_since(started) + outcome.latency;
        outcome.started = started;
        if !session.is_usable() || self.plan.association_strategy() == AssociationStrategy::PerImage
        {
            self.close();
        }
        outcome
    }

    /// Releases (or drops, when broken) the current association.
    fn close(&mut self) {
        if let Some(session) = self.session.take() {
            self.live.association(false);
            if session.is_usable() {
                // The outcomes are known; a botched release changes none of them.
                let _ = session.release();
            }
        }
    }
}
