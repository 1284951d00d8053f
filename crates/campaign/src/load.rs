//! The load step and its verification: a target sized for load, one run of the plan,
//! and the C-FIND check of every study it delivered to.

use std::path::PathBuf;

use cfind::{CFindClient, Delivery, SentStudy, VerificationReport};
use config::{TestConfig, UidStrategy};
use report::{Figure, LoadResult, TransitTimes};
use sender::{DicomSender, LoadObserver, LoadPlan, LoadReport, PreparedFiles, StudyRecord};
use simulator::{SimulatorHandle, StoreMode};

use crate::CampaignError;
use crate::commitment::{CommitmentCheck, CommitmentReport};
use crate::delivery::{DeliverySink, LedgerWatch, forward_to, policy_for};
use crate::embedded::start_simulator;
use crate::retrieval::{RetrievalCheck, RetrievalReport};
use sink::DeliveryReport;

/// Where a load run sends: the configured router, or, on the embedded target, a
/// simulator of its own in load mode (index entries only, so a long run holds memory
/// bounded and does not crowd a functional test's simulator).
#[derive(Debug)]
pub struct LoadTarget {
    /// The configuration pointed at the target.
    pub config: TestConfig,
    /// The private simulator, on the embedded target.
    pub simulator: Option<SimulatorHandle>,
    /// The destination sink, when `VERIFY_AT` verifies there (on the embedded target
    /// the simulator's route forwards to it).
    pub sink: Option<DeliverySink>,
    /// Retrieval from the destination archive, when `VERIFY_AT` says `retrieve` (on
    /// the embedded target the simulator is the archive: it keeps every instance in
    /// a spool folder and moves to the check's destination).
    pub retrieval: Option<RetrievalCheck>,
    /// Storage Commitment with the destination archive, when `VERIFY_AT` says
    /// `commit` (on the embedded target the simulator reports on a new association to
    /// the check's listener).
    pub commitment: Option<CommitmentCheck>,
    /// The embedded simulator's spool folder, kept for as long as the target (its
    /// drop removes it, after the simulator has stopped).
    _spool: Option<tempfile::TempDir>,
}

impl LoadTarget {
    /// The target for one load run of `config`.
    ///
    /// # Errors
    /// [`CampaignError::Simulator`] when the embedded simulator cannot start.
    pub fn new(config: &TestConfig) -> Result<Self, CampaignError> {
        let route = config.endpoint.called_ae_title.as_str();
        let uses_sink = config.sink.verify_at.uses_sink();
        if !config.endpoint.target.is_embedded() {
            if uses_sink && config.sink.port == 0 {
                return Err(CampaignError::Sink(sink::SinkError::InvalidOption {
                    name: "SINK_PORT",
                    value: "0".into(),
                    expected: format!(
                        "the fixed port the router delivers to (VERIFY_AT={} verifies at the sink of a real router, which must be told where it listens)",
                        config.sink.verify_at
                    ),
                }));
            }
            if config.sink.verify_at.uses_retrieve()
                && config.retrieve.method == config::RetrieveMethod::Move
                && config.retrieve.port == 0
            {
                return Err(CampaignError::Sink(sink::SinkError::InvalidOption {
                    name: "RETRIEVE_PORT",
                    value: "0".into(),
                    expected: "the fixed port the archive moves to (RETRIEVE_METHOD=move: the archive must know RETRIEVE_AE_TITLE at this address)".into(),
                }));
            }
            if config.sink.verify_at.uses_commit() && config.commit.port == 0 {
                return Err(CampaignError::Sink(sink::SinkError::InvalidOption {
                    name: "COMMIT_PORT",
                    value: "0".into(),
                    expected: "the fixed port the archive sends its Storage Commitment reports to (VERIFY_AT=commit: the archive must know LOCAL_AE_TITLE at this address)".into(),
                }));
            }
            let sink = uses_sink
                .then(|| DeliverySink::start(config, route, policy_for(config, route)?))
                .transpose()?;
            let retrieval = config
                .sink
                .verify_at
                .uses_retrieve()
                .then(|| RetrievalCheck::start(config, route, policy_for(config, route)?))
                .transpose()?;
            let commitment = start_commitment(config, sink.is_none() && retrieval.is_none())?;
            return Ok(LoadTarget {
                config: config.clone(),
                simulator: None,
                sink,
                retrieval,
                commitment,
                _spool: None,
            });
        }
        let sink = uses_sink
            .then(|| DeliverySink::start(config, route, policy_for(config, route)?))
            .transpose()?;
        let retrieval = config
            .sink
            .verify_at
            .uses_retrieve()
            .then(|| RetrievalCheck::start(config, route, policy_for(config, route)?))
            .transpose()?;
        let commitment = start_commitment(config, sink.is_none() && retrieval.is_none())?;
        let spool = retrieval
            .is_some()
            .then(|| {
                tempfile::Builder::new()
                    .prefix("dicom-auto-spool-")
                    .tempdir()
                    .map_err(|e| CampaignError::Samples {
                        root: std::env::temp_dir(),
                        detail: format!("cannot make the embedded archive's spool folder: {e}"),
                    })
            })
            .transpose()?;
        let concurrency = config.load.concurrency;
        let (handle, config) = start_simulator(config, |simulator| {
            simulator.store_mode = StoreMode::Load;
            simulator.spool_dir = spool.as_ref().map(|dir| dir.path().to_path_buf());
            if let Some((ae_title, addr)) = retrieval.as_ref().and_then(RetrievalCheck::destination)
            {
                simulator
                    .rules
                    .move_destinations
                    .push(simulator::rules::MoveDestination {
                        ae_title: ae_title.to_string(),
                        host: dimse::socket::reachable_address(addr).ip().to_string(),
                        port: addr.port(),
                    });
            }
            if let Some(check) = &commitment {
                // Reports on an association of their own, as most archives send them.
                let (ae_title, addr) = check.listener();
                simulator.rules.settings.commitment_report =
                    simulator::CommitmentReport::NewAssociation;
                simulator
                    .rules
                    .move_destinations
                    .push(simulator::rules::MoveDestination {
                        ae_title: ae_title.to_string(),
                        host: dimse::socket::reachable_address(addr).ip().to_string(),
                        port: addr.port(),
                    });
            }
            simulator.max_associations = simulator.max_associations.max(concurrency * 2);
            if let Some(sink) = &sink
                && let Some(route) = simulator
                    .rules
                    .routes
                    .iter_mut()
                    .find(|r| r.called_ae_title == route)
            {
                forward_to(route, sink);
            }
        })?;
        Ok(LoadTarget {
            config,
            simulator: Some(handle),
            sink,
            retrieval,
            commitment,
            _spool: spool,
        })
    }

    /// `plan`, with every send shown to the sink's ledger and the retrieval's, when
    /// the target has them.
    pub fn watched(&self, plan: LoadPlan) -> LoadPlan {
        let ledgers: Vec<&std::sync::Arc<sink::Ledger>> = self
            .sink
            .iter()
            .map(DeliverySink::ledger)
            .chain(self.retrieval.iter().map(RetrievalCheck::ledger))
            .chain(
                self.commitment
                    .iter()
                    .filter_map(CommitmentCheck::own_ledger),
            )
            .collect();
        if let Some(retrieval) = &self.retrieval {
            retrieval.sends_sop_classes(
                plan.instances()
                    .iter()
                    .map(|i| i.sop_class_uid().to_string()),
            );
        }
        if ledgers.is_empty() {
            return plan;
        }
        let watch = LedgerWatch::new(
            &ledgers,
            plan.instances(),
            self.config.endpoint.called_ae_title.as_str(),
        );
        plan.watch_sends(std::sync::Arc::new(watch))
    }

    /// Retrieves the studies `load` delivered to from the destination archive and
    /// judges what comes back, when `VERIFY_AT` says `retrieve` and something was
    /// delivered. Call it once the delivery has settled, for a plan that was
    /// [`watched`](Self::watched).
    ///
    /// # Errors
    /// As [`RetrievalCheck::verify`].
    pub fn verify_retrieval(
        &self,
        load: &LoadReport,
    ) -> Result<Option<RetrievalReport>, CampaignError> {
        let Some(retrieval) = &self.retrieval else {
            return Ok(None);
        };
        if load.studies.iter().all(|s| s.counts.delivered() == 0) {
            return Ok(None);
        }
        retrieval.verify(&self.config, &load.studies).map(Some)
    }

    /// Asks the destination archive to commit every instance `load` had the router
    /// take, when `VERIFY_AT` says `commit` and something was taken. Call it once the
    /// delivery has settled and before [`verify_retrieval`](Self::verify_retrieval),
    /// for a plan that was [`watched`](Self::watched).
    ///
    /// # Errors
    /// As [`CommitmentCheck::verify`].
    pub fn verify_commitment(
        &self,
        load: &LoadReport,
    ) -> Result<Option<CommitmentReport>, CampaignError> {
        let Some(check) = &self.commitment else {
            return Ok(None);
        };
        if load.studies.iter().all(|s| s.counts.delivered() == 0) {
            return Ok(None);
        }
        let sends = check
            .own_ledger()
            .or_else(|| self.sink.as_ref().map(DeliverySink::ledger))
            .or_else(|| self.retrieval.as_ref().map(RetrievalCheck::ledger))
            .expect("a commitment check without a ledger of its own shares another");
        check.verify(&self.config, sends).map(Some)
    }

    /// The sink's verdict once what is in transit has arrived (or `DELIVERY_TIMEOUT`
    /// has passed), when the target has a sink.
    pub fn settle_delivery(&self) -> Option<DeliveryReport> {
        self.sink.as_ref().map(DeliverySink::settle)
    }

    /// The router in words (see [`describe_target`]).
    pub fn describe(&self) -> String {
        describe_target(&self.config, self.simulator.as_ref())
    }

    /// A sender for the configured endpoint (route selected by `COMPASS_ROUTE`, else
    /// `COMPASS_AE_TITLE`).
    ///
    /// # Errors
    /// [`CampaignError::Sender`] for options the sender refuses.
    pub fn sender(&self) -> Result<DicomSender, CampaignError> {
        crate::options::sender::sender_options(&self.config)?
            .build()
            .map_err(CampaignError::from)
    }

    /// A C-FIND client for the verification peer (`CFIND_*`, else the router).
    ///
    /// # Errors
    /// As [`cfind_client`](crate::options::cfind::cfind_client).
    pub fn cfind(&self) -> Result<CFindClient, CampaignError> {
        crate::options::cfind::cfind_client(&self.config)
    }

    /// Checks that the router answers a C-ECHO before a run starts, so an unreachable
    /// or misnamed router fails within the connect timeout with what to set, instead
    /// of after a run of failed sends.
    ///
    /// # Errors
    /// [`CampaignError::Unreachable`] naming the peer and the variables to check.
    pub fn check_reachable(&self) -> Result<(), CampaignError> {
        let sender = self.sender()?;
        match sender.ping() {
            Ok(_) => Ok(()),
            Err(source) => Err(CampaignError::Unreachable {
                peer: format!(
                    "{}@{}",
                    self.config.endpoint.called_ae_title,
                    self.config.endpoint.address()
                ),
                variables: if self.config.endpoint.target.is_embedded() {
                    "none: this is the embedded simulator (report a bug)"
                } else {
                    "COMPASS_HOST and COMPASS_PORT (and the route's REMOTE_AE_<NAME>/LOCAL_AE_<NAME>, or COMPASS_AE_TITLE)"
                },
                source: Box::new(source),
            }),
        }
    }
}

/// The commitment check of `config`, when `VERIFY_AT` says `commit`, with a ledger of
/// its own when `own_ledger`.
fn start_commitment(
    config: &TestConfig,
    own_ledger: bool,
) -> Result<Option<CommitmentCheck>, CampaignError> {
    config
        .sink
        .verify_at
        .uses_commit()
        .then(|| CommitmentCheck::start(config, own_ledger))
        .transpose()
}

/// The router under test in words, as reports name it: `embedded simulator at
/// 127.0.0.1:40213`, or `remote router at host:port`.
pub fn describe_target(config: &TestConfig, simulator: Option<&SimulatorHandle>) -> String {
    match simulator {
        Some(handle) => format!("embedded simulator at {}", handle.addr()),
        None => format!("remote router at {}", config.endpoint.address()),
    }
}

/// Every file of `paths` prepared for sending with the configured UID strategy
/// (encoded once; carrying the trace element with `DELIVERY_MATCH_BY=trace`), with the
/// files left out and why.
///
/// # Errors
/// [`CampaignError::Sender`] when the files cannot be read, [`CampaignError::NoSamples`]
/// when none of them is sendable.
pub fn prepare(config: &TestConfig, paths: &[PathBuf]) -> Result<PreparedFiles, CampaignError> {
    let mut prepared =
        sender::prepare_paths(paths, config.sending.uid_strategy).map_err(CampaignError::from)?;
    if config.sink.match_by == config::DeliveryMatch::Trace && config.sink.verify_at.uses_sink() {
        prepared.instances = crate::delivery::traced(config, prepared.instances)?;
    }
    if prepared.instances.is_empty() {
        return Err(CampaignError::NoSamples {
            root: config.dataset.root_dir.clone(),
        });
    }
    Ok(prepared)
}

/// Runs `plan` against the target and checks the accounting invariant.
///
/// # Errors
/// [`CampaignError::Sender`] when the run cannot start; [`CampaignError::Accounting`]
/// when attempted != succeeded + warnings + failed + unknown (a bug: every send must
/// be accounted for).
pub fn run_load(
    target: &LoadTarget,
    plan: &LoadPlan,
    observer: &dyn LoadObserver,
) -> Result<LoadReport, CampaignError> {
    let sender = target.sender()?;
    let load = sender::run_load(&sender, plan, observer).map_err(CampaignError::from)?;
    if !load.is_consistent() {
        return Err(CampaignError::Accounting {
            detail: format!("{:?}", load.summary()),
        });
    }
    Ok(load)
}

/// The studies a run delivered to, as C-FIND verification takes them. With fresh UIDs
/// every instance is counted; files sent as they are repeat their UIDs, so the router
/// keeps one copy and only each study's presence can be checked.
pub fn sent_studies(studies: &[StudyRecord], uids: UidStrategy) -> Vec<SentStudy> {
    studies
        .iter()
        .filter(|s| s.counts.delivered() > 0)
        .map(|s| {
            let instances = if uids == UidStrategy::Fresh {
                s.counts.delivered() as u32
            } else {
                1
            };
            SentStudy::with_wall_clock(s.study_instance_uid.clone(), instances, s.last_sent)
        })
        .collect()
}

/// Verifies by C-FIND every study the run delivered to, when `CFIND_VERIFY` is on,
/// `VERIFY_AT` is `cfind` or `both`, and something was delivered.
///
/// # Errors
/// [`CampaignError::Verification`] when the verification itself cannot run (the
/// query peer refuses or is unreachable); missing studies are a result, not an error.
pub fn verify(
    target: &LoadTarget,
    load: &LoadReport,
) -> Result<Option<VerificationReport>, CampaignError> {
    let sent = sent_studies(&load.studies, target.config.sending.uid_strategy);
    let config = &target.config;
    if !config.cfind.verify || !config.sink.verify_at.uses_cfind() || sent.is_empty() {
        return Ok(None);
    }
    target
        .cfind()?
        .verify_studies(&sent)
        .map(Some)
        .map_err(|e| CampaignError::Verification(Box::new(e)))
}

/// What the report's performance panel shows of a run and its verification.
pub fn load_result(
    load: &LoadReport,
    verification: Option<&VerificationReport>,
    delivery: Option<&DeliveryReport>,
) -> LoadResult {
    LoadResult {
        delivery: delivery.map(crate::delivery::sink_delivery),
        retrieval: None,
        commitment: None,
        capacity: None,
        groups: crate::profile::group_rows(load, verification),
        metrics: load.metrics.clone(),
        transit: verification.map(|v| TransitTimes {
            verified: v.count(Delivery::Complete) as u64,
            missing: (v.studies.len() - v.count(Delivery::Complete)) as u64,
            summary: v.transit.summary(),
            buckets: v.transit.buckets(),
        }),
    }
}

/// The short figures shown beside a load run in the report.
pub fn load_figures(
    load: &LoadReport,
    verification: Option<&VerificationReport>,
    delivery: Option<&DeliveryReport>,
) -> Vec<Figure> {
    let fmt = |value: Option<f64>| value.map_or_else(|| "n/a".into(), |v| format!("{v:.1}"));
    let summary = load.summary();
    let mut figures = vec![
        figure("attempted", summary.attempted.to_string()),
        figure(
            "target / achieved send rate",
            format!(
                "{} / {} per s",
                fmt(summary.target_rate),
                fmt(summary.achieved_send_rate)
            ),
        ),
        figure("delivered images/s", fmt(summary.images_per_s)),
    ];
    if let Some(latency) = summary.latency_ms {
        figures.push(figure("p95 latency", format!("{:.1} ms", latency.p95_ms)));
    }
    figures.push(generator_figure(&load.generator));
    figures.extend(verification.map(verification_figure));
    figures.extend(
        delivery
            .into_iter()
            .flat_map(crate::delivery::delivery_figures),
    );
    figures
}

/// What the generator itself cost: how the data sets were held and how long sends
/// waited for the disk (kept out of the router's latency, shown here instead).
pub fn generator_figure(generator: &sender::GeneratorReport) -> Figure {
    let held = if generator.streamed_instances == 0 {
        format!(
            "all {} data sets in memory ({:.1} MB)",
            generator.resident_instances,
            generator.resident_bytes as f64 / 1e6
        )
    } else {
        format!(
            "{} data sets streamed from disk ({:.1} MB read), {} kept in memory, within {}",
            generator.streamed_instances,
            generator.streamed_bytes as f64 / 1e6,
            generator.resident_instances,
            sender::ByteSize(generator.memory_budget_bytes)
        )
    };
    let lag = match generator.lag_ms {
        Some(lag) => format!(
            "{} sends waited for their data (p99 {:.1} ms, max {:.1} ms)",
            generator.lagged_sends, lag.p99_ms, lag.max_ms
        ),
        None => "no send waited for its data".to_string(),
    };
    figure("generator", format!("{held}; {lag}"))
}

/// How many delivered studies C-FIND found complete, of those sent.
pub fn verification_figure(verification: &VerificationReport) -> Figure {
    figure(
        "studies verified / sent",
        format!(
            "{} / {}",
            verification.count(Delivery::Complete),
            verification.studies.len()
        ),
    )
}

fn figure(label: &str, value: String) -> Figure {
    Figure {
        label: label.to_string(),
        value,
    }
}
