//! Delivery truth for a campaign: the sink the router delivers to (`SINK_*`), the
//! ledger every send of a load is shown to before it goes out, and what the report
//! shows of what arrived.
//!
//! On the embedded target the simulator's route forwards to the sink; against a
//! real router, the router must be told to deliver to `SINK_BIND`:`SINK_PORT` under
//! `SINK_AE_TITLE` (README, "Verifying at the destination").

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::TestConfig;
use report::{DifferenceRow, Figure, ProblemRow, SinkDelivery};
use sender::{PlannedSend, PreparedInstance, SendOutcome, SendWatch, WatchToken};
use simulator::Route;
use simulator::rules::ForwardDestination;
use sink::{
    AllowedChange, AttributePath, DeliveryReport, ExpectedSend, Ledger, LedgerOptions, MatchBy,
    OriginalId, OriginalSource, ProblemKind, RoutePolicy, SentInstance, Sink, SinkOptions,
    Substitution, Ticket, TraceAttribute,
};

use crate::CampaignError;

/// Differences listed in the report's table.
const DIFFERENCES_SHOWN: usize = 20;

/// Problems named in the report.
const PROBLEMS_SHOWN: usize = 50;

/// The sink of one load run, with its ledger.
#[derive(Debug)]
pub struct DeliverySink {
    sink: Sink,
    delivery_timeout: Duration,
}

impl DeliverySink {
    /// Starts the sink `config.sink` describes; what the route may change is `policy`.
    ///
    /// # Errors
    /// [`CampaignError::Sink`] when it cannot listen (port taken, say).
    pub fn start(
        config: &TestConfig,
        route: &str,
        policy: RoutePolicy,
    ) -> Result<Self, CampaignError> {
        let settings = &config.sink;
        let mut options = LedgerOptions::new().route_policy(route, policy);
        if settings.match_by == config::DeliveryMatch::Trace {
            options = options.match_by(MatchBy::Trace(TraceAttribute::dicom_auto()));
        }
        let ledger = Ledger::new(options);
        let sink = Sink::start(sink_options(config), ledger).map_err(CampaignError::Sink)?;
        Ok(DeliverySink {
            sink,
            delivery_timeout: settings.delivery_timeout,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.sink.local_addr()
    }

    /// The AE title it answers to.
    pub fn ae_title(&self) -> &dimse::AeTitle {
        self.sink.ae_title()
    }

    /// Its ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        self.sink.ledger()
    }

    /// Waits for what is still in transit (at most `DELIVERY_TIMEOUT` after the last
    /// answer of the router) and reports.
    pub fn settle(&self) -> DeliveryReport {
        self.sink.ledger().settle(self.delivery_timeout)
    }

    /// What its listener saw.
    pub fn stats(&self) -> sink::SinkStats {
        self.sink.stats()
    }
}

/// `instances` carrying dicom-auto's trace element, for `DELIVERY_MATCH_BY=trace`.
///
/// # Errors
/// [`CampaignError::Sender`] when UIDs are sent as they are (`SEND_UID_STRATEGY=asis`:
/// the trace is each send's fresh SOP Instance UID) or an encoding cannot be made again.
pub fn traced(
    config: &TestConfig,
    instances: Vec<Arc<PreparedInstance>>,
) -> Result<Vec<Arc<PreparedInstance>>, CampaignError> {
    if config.sending.uid_strategy != config::UidStrategy::Fresh {
        return Err(CampaignError::from(sender::SenderError::InvalidOption {
            name: "DELIVERY_MATCH_BY",
            value: "trace".into(),
            expected:
                "SEND_UID_STRATEGY=fresh as well (the trace is each send's own SOP Instance UID)"
                    .into(),
        }));
    }
    instances
        .into_iter()
        .map(|instance| {
            let owned = Arc::try_unwrap(instance).unwrap_or_else(|shared| {
                unreachable!(
                    "freshly prepared, not yet shared: {}",
                    shared.sop_instance_uid()
                )
            });
            owned.traced().map(Arc::new).map_err(CampaignError::from)
        })
        .collect()
}

/// The sink's options from the configuration: `SINK_BIND`:`SINK_PORT`, `SINK_AE_TITLE`,
/// and the network timeouts and PDU length every association of the run has.
pub fn sink_options(config: &TestConfig) -> SinkOptions {
    let settings = &config.sink;
    SinkOptions::new().listen(crate::options::listen_options(
        config,
        SocketAddr::new(settings.bind, settings.port),
        settings.ae_title.clone(),
    ))
}

/// Where the sink reads the original of a prepared instance: its file, or (made in
/// memory) its encoding.
fn original_source(instance: &PreparedInstance) -> OriginalSource {
    let sop_instance_uid = instance.sop_instance_uid().to_string();
    if let Some(path) = instance.path() {
        return OriginalSource::File {
            path: path.to_path_buf(),
            sop_class_uid: instance.sop_class_uid().to_string(),
            sop_instance_uid,
            study_instance_uid: instance.study_instance_uid().map(str::to_string),
        };
    }
    match instance.primary().map_err(|e| e.to_string()).and_then(|v| {
        SentInstance::from_data_set(v.bytes(), v.transfer_syntax()).map_err(|e| e.to_string())
    }) {
        Ok(original) => OriginalSource::Loaded(original),
        // Then every arrival of it is reported as not comparable, naming why.
        Err(detail) => OriginalSource::File {
            path: format!("(in memory: {detail})").into(),
            sop_class_uid: instance.sop_class_uid().to_string(),
            sop_instance_uid,
            study_instance_uid: instance.study_instance_uid().map(str::to_string),
        },
    }
}

/// Shows each send of a load run to one or two ledgers (the sink's, and the
/// retrieval's): expected before it goes out, then answered.
pub struct LedgerWatch {
    ledgers: Vec<(Arc<Ledger>, Vec<OriginalId>)>,
    route: Arc<str>,
}

/// A ledger's ticket is 32 bits: a send's token carries the first ledger's in its low
/// half and the second's in its high half; all ones is "no ticket".
const NO_TICKET: u64 = u32::MAX as u64;

impl LedgerWatch {
    /// A watch showing every send of a run of `instances` to `route` to each of
    /// `ledgers` (at most two).
    ///
    /// # Panics
    /// With more than two ledgers (a send's token holds two tickets).
    pub fn new(ledgers: &[&Arc<Ledger>], instances: &[Arc<PreparedInstance>], route: &str) -> Self {
        assert!(ledgers.len() <= 2, "a send's token holds two tickets");
        LedgerWatch {
            ledgers: ledgers
                .iter()
                .map(|&ledger| {
                    let originals = instances
                        .iter()
                        .map(|instance| ledger.add_original(original_source(instance)))
                        .collect();
                    (ledger.clone(), originals)
                })
                .collect(),
            route: Arc::from(route),
        }
    }
}

impl std::fmt::Debug for LedgerWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerWatch")
            .field("ledgers", &self.ledgers.len())
            .field("route", &self.route)
            .finish()
    }
}

impl SendWatch for LedgerWatch {
    fn before_send(&self, send: &PlannedSend<'_>) -> WatchToken {
        let substitutions = send.uids.map_or_else(Vec::new, |uids| {
            Substitution::fresh_uids(
                uids.study.as_str(),
                uids.series.as_str(),
                uids.instance.as_str(),
            )
            .to_vec()
        });
        // A traced send carries its own SOP Instance UID as the trace value.
        let trace = send
            .uids
            .filter(|_| send.instance.is_traced())
            .map(|uids| Arc::from(uids.instance.as_str()));
        let mut token = NO_TICKET | (NO_TICKET << 32);
        for (i, (ledger, originals)) in self.ledgers.iter().enumerate() {
            let expected = ExpectedSend {
                original: originals[send.instance_index],
                substitutions: substitutions.clone(),
                route: self.route.clone(),
                trace: trace.clone(),
            };
            // Never without a key: traced instances carry their trace, and matching
            // by trace is only chosen for them (`traced`).
            let ticket = ledger.expect(expected).map_or(NO_TICKET, Ticket::to_raw);
            let shift = 32 * i as u32;
            token = (token & !(NO_TICKET << shift)) | ((ticket & NO_TICKET) << shift);
        }
        WatchToken(token)
    }

    fn after_send(&self, token: WatchToken, outcome: &SendOutcome) {
        let end: Instant = outcome.started + outcome.latency;
        for (i, (ledger, _)) in self.ledgers.iter().enumerate() {
            let ticket = (token.0 >> (32 * i as u32)) & NO_TICKET;
            ledger.answered(Ticket::from_raw(ticket), outcome.outcome, end);
        }
    }
}

/// The file in `EXPECTATIONS_DIR` that says what each route may change on the way.
pub const DELIVERY_EXPECTATIONS: &str = "delivery.toml";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryExpectations {
    #[serde(default)]
    route: std::collections::BTreeMap<String, RoutePolicy>,
}

/// What the route called `called_ae_title` may change: from `EXPECTATIONS_DIR`'s
/// [`DELIVERY_EXPECTATIONS`] when there is one (routes by their configured name,
/// `REMOTE_AE_<NAME>`, or `DEFAULT` for `COMPASS_AE_TITLE`), else on the embedded
/// target what its simulator route changes ([`route_policy`]), else nothing.
///
/// # Errors
/// [`CampaignError::Expectations`] naming the file: unreadable, not TOML of that shape
/// (with line and column), or naming a route the configuration does not have.
pub fn policy_for(
    config: &TestConfig,
    called_ae_title: &str,
) -> Result<RoutePolicy, CampaignError> {
    if let Some(dir) = &config.integration.expectations_dir {
        let path = dir.join(DELIVERY_EXPECTATIONS);
        if path.is_file() {
            let bad = |detail: String| CampaignError::Expectations {
                path: path.clone(),
                detail,
            };
            let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
            let parsed: DeliveryExpectations =
                toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let mut found = RoutePolicy::default();
            for (name, policy) in parsed.route {
                let called = if name == "DEFAULT" {
                    Some(config.endpoint.called_ae_title.as_str())
                } else {
                    config
                        .routes
                        .iter()
                        .find(|r| r.name == name)
                        .map(|r| r.called_ae_title.as_str())
                };
                match called {
                    Some(called) if called == called_ae_title => found = policy,
                    Some(_) => {}
                    None => {
                        return Err(bad(format!(
                            "route {name} is not configured (no REMOTE_AE_{name}); known: {}",
                            config
                                .routes
                                .iter()
                                .map(|r| r.name.as_str())
                                .chain(["DEFAULT"])
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
            }
            return Ok(found);
        }
    }
    if config.endpoint.target.is_embedded() {
        let rules = crate::embedded::embedded_rules(config)?;
        return Ok(route_policy(rules.route_for(called_ae_title)));
    }
    Ok(RoutePolicy::default())
}

/// What a route may change on the way, as the sink judges it: every attribute the
/// simulator route's checks fill or normalise and its morphing rules write (the
/// embedded target, or a router mirroring its rules); for no route, nothing.
pub fn route_policy(route: Option<&Route>) -> RoutePolicy {
    let Some(route) = route else {
        return RoutePolicy::default();
    };
    RoutePolicy::allowing(
        route
            .changed_attributes()
            .into_iter()
            .map(|tag| AllowedChange::any(AttributePath::top_level(tag))),
    )
}

/// The simulator route `route` delivering to `sink` too (kept in its own store, so
/// C-FIND still sees it).
pub fn forward_to(route: &mut Route, sink: &DeliverySink) {
    let addr = sink.local_addr();
    route.delivery.forward = Some(ForwardDestination {
        host: dimse::socket::reachable_address(addr).ip().to_string(),
        port: addr.port(),
        called_ae_title: sink.ae_title().as_str().to_string(),
        calling_ae_title: route.called_ae_title.clone(),
        max_attempts: Some(5),
        retry_initial: Duration::from_millis(100),
        retry_max: Duration::from_secs(2),
        security: dimse::Security::default(),
    });
}

/// The report's view of the sink's verdict.
pub fn sink_delivery(report: &DeliveryReport) -> SinkDelivery {
    let c = &report.counts;
    let row = |label: &str, value: u64| Figure {
        label: label.to_string(),
        value: value.to_string(),
    };
    let accounting = vec![
        row("sent", c.sent),
        row("refused by the router", c.refused),
        row("delivered", c.delivered),
        row("of which altered", c.altered),
        row("of which corrupt", c.corrupt),
        row("undelivered", c.undelivered),
        row("of which outcome unknown", c.undelivered_outcome_unknown),
        row("in transit", c.in_transit),
        row("duplicated instances", c.duplicated_instances),
        row("duplicate arrivals", c.duplicate_arrivals),
        row("refused but delivered", c.refused_but_delivered),
        row("arrived, never sent", c.unexpected),
        row(
            "arrived before the router answered",
            c.arrived_before_response,
        ),
    ];
    let differences = report
        .first_differences(DIFFERENCES_SHOWN)
        .into_iter()
        .map(|(uid, d)| DifferenceRow {
            sop_instance_uid: uid.to_string(),
            attribute: match d.keyword {
                Some(keyword) if d.path == keyword => format!("{keyword} {}", d.tag),
                _ => format!("{} {}", d.path, d.tag),
            },
            kind: format!("{:?}", d.kind),
            sent: d.sent.clone().unwrap_or_default(),
            received: d.received.clone().unwrap_or_default(),
        })
        .collect();
    let problems = report
        .problems
        .iter()
        .filter(|p| !matches!(p.kind, ProblemKind::Altered { .. }))
        .take(PROBLEMS_SHOWN)
        .map(|p| ProblemRow {
            sop_instance_uid: p.sop_instance_uid.clone(),
            kind: p.kind.name().to_string(),
            detail: problem_detail(&p.kind),
        })
        .collect();
    SinkDelivery {
        invariant: c.invariant(),
        consistent: report.consistent,
        clean: report.clean,
        accounting,
        transit: report.transit_ms,
        transit_buckets: report.transit_histogram.buckets(),
        timeline: report
            .timeline
            .iter()
            .map(|s| report::ArrivalSecond {
                second: s.second,
                arrivals: s.arrivals,
                mean_transit_ms: s.mean_transit_ms,
                max_transit_ms: s.max_transit_ms,
            })
            .collect(),
        differences,
        problems,
        problems_total: report.problems_total,
    }
}

fn problem_detail(kind: &ProblemKind) -> String {
    match kind {
        ProblemKind::Undelivered {
            sends,
            outcome_unknown,
        } => format!(
            "{sends} send(s) never arrived{}",
            if *outcome_unknown {
                " (the router's answer was unknown)"
            } else {
                " (the router answered success)"
            }
        ),
        ProblemKind::Duplicated { sends, arrivals } => {
            format!("{arrivals} arrivals for {sends} send(s)")
        }
        ProblemKind::Corrupt { error } => error.clone(),
        ProblemKind::RefusedButDelivered { arrivals } => {
            format!("refused by the router, yet arrived {arrivals} time(s)")
        }
        ProblemKind::Unexpected { calling_ae_title } => {
            format!("arrived from {calling_ae_title}, matching no send")
        }
        ProblemKind::TraceStripped => "the trace attribute was removed on the way".into(),
        ProblemKind::Altered { differences } => format!("{} difference(s)", differences.len()),
        _ => String::new(),
    }
}

/// The short figures of the sink's verdict beside a load run.
pub fn delivery_figures(report: &DeliveryReport) -> Vec<Figure> {
    let c = &report.counts;
    let mut figures = vec![Figure {
        label: "at the sink".into(),
        value: format!(
            "{}; {} altered, {} duplicated, {} arrived never sent",
            c.invariant(),
            c.altered,
            c.duplicated_instances,
            c.unexpected
        ),
    }];
    if let Some(t) = &report.transit_ms {
        figures.push(Figure {
            label: "transit to the sink (router's answer → arrival)".into(),
            value: format!(
                "p50 {:.1} ms · p95 {:.1} ms · p99 {:.1} ms · max {:.1} ms",
                t.p50_ms, t.p95_ms, t.p99_ms, t.max_ms
            ),
        });
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote_with(expectations: &str) -> (tempfile::TempDir, TestConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DELIVERY_EXPECTATIONS), expectations).unwrap();
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "192.0.2.1".to_string()),
            ("REMOTE_AE_HTM_GI", "LB-HTM-GI".to_string()),
            ("LOCAL_AE_HTM_GI", "DICOM-AUTO".to_string()),
            ("EXPECTATIONS_DIR", dir.path().display().to_string()),
        ])
        .unwrap();
        (dir, config)
    }

    #[test]
    fn a_routes_allowed_changes_are_read_from_the_expectations_folder_by_route_name() {
        let (_dir, config) = remote_with(
            r#"
[route.HTM_GI]
allowed_changes = [
  { attribute = "InstitutionalDepartmentName", expected = "Gastroenterology" },
  { attribute = "PatientComments", expected_absent = true },
  { attribute = "StationName" },
]
lossless_transfer_syntax_change = false
"#,
        );
        let policy = policy_for(&config, "LB-HTM-GI").unwrap();
        assert_eq!(policy.allowed_changes.len(), 3);
        assert!(!policy.transfer_syntax.lossless_change_allowed);
        // Another route of the router may change nothing.
        assert_eq!(
            policy_for(&config, "OTHER").unwrap(),
            RoutePolicy::default()
        );
    }

    #[test]
    fn a_bad_expectations_file_is_named_with_what_is_wrong() {
        let (_dir, config) = remote_with("[route.HTM_XX]\nallowed_changes = []\n");
        let error = policy_for(&config, "LB-HTM-GI").unwrap_err().to_string();
        assert!(error.contains("delivery.toml"), "{error}");
        assert!(error.contains("route HTM_XX is not configured"), "{error}");
        assert!(error.contains("HTM_GI"), "{error}");
        let (_dir, config) = remote_with("[route.HTM_GI]\nallowed_change = []\n");
        let error = policy_for(&config, "LB-HTM-GI").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn without_a_file_the_embedded_route_may_change_what_its_rules_touch() {
        let config = TestConfig::from_map(Vec::<(String, String)>::new()).unwrap();
        let policy = policy_for(&config, "LB-HTM-GI").unwrap();
        let touched: Vec<String> = policy
            .allowed_changes
            .iter()
            .map(|c| c.attribute.to_string())
            .collect();
        for keyword in [
            "StudyDate",
            "AccessionNumber",
            "InstitutionalDepartmentName",
        ] {
            assert!(
                touched.iter().any(|t| t == keyword),
                "{keyword}: {touched:?}"
            );
        }
        assert!(!touched.iter().any(|t| t == "PatientID"), "{touched:?}");
    }
}
