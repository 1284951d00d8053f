//! The typed sections besides the endpoint: C-FIND, destination sink, load, thresholds,
//! dataset, network, sending, integration tests and reports.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::defaults;
use crate::endpoint::Endpoint;
use crate::parse::{self, Reader};
use crate::sources::BaseDirs;
use crate::{AeTitle, AssociationStrategy, Target, UidStrategy};
use dimse::serde_duration::{millis, seconds};

/// Delivery verification by C-FIND: where to query and how long to poll.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CFindSettings {
    /// `CFIND_HOST`, else the endpoint's host.
    pub host: String,
    /// `CFIND_PORT`, else the endpoint's port.
    pub port: u16,
    /// `CFIND_AE_TITLE`, else `COMPASS_AE_TITLE` (as in the old suite), else the endpoint's
    /// called AE title (the selected route's).
    pub called_ae_title: AeTitle,
    /// The endpoint's calling AE title: queries come from the same AE as the stores.
    pub calling_ae_title: AeTitle,
    /// `CFIND_VERIFY`: whether tests verify delivery after sending.
    pub verify: bool,
    /// `CFIND_INITIAL_DELAY`: wait before the first query.
    #[serde(rename = "initial_delay_seconds", serialize_with = "seconds")]
    pub initial_delay: Duration,
    /// `CFIND_TIMEOUT`: give up polling after this long.
    #[serde(rename = "timeout_seconds", serialize_with = "seconds")]
    pub timeout: Duration,
    /// `CFIND_POLL_INTERVAL`: wait between queries.
    #[serde(rename = "poll_interval_seconds", serialize_with = "seconds")]
    pub poll_interval: Duration,
    #[serde(skip)]
    host_follows_endpoint: bool,
    #[serde(skip)]
    port_follows_endpoint: bool,
}

impl CFindSettings {
    /// Where the query SCP listens.
    pub fn peer_address(&self) -> dimse::PeerAddress {
        dimse::PeerAddress::new(self.host.as_str(), self.port)
    }

    /// `host:port` of the query SCP (IPv6 in brackets).
    pub fn address(&self) -> String {
        self.peer_address().to_string()
    }

    pub(crate) fn read(reader: &mut Reader<'_>, endpoint: &Endpoint) -> Self {
        let embedded = endpoint.target.is_embedded();
        let host = reader.value("CFIND_HOST", parse::host);
        let port = reader.value("CFIND_PORT", parse::port);
        let called_ae_title = reader
            .value("CFIND_AE_TITLE", parse::ae_title)
            // A bad COMPASS_AE_TITLE has been reported with the endpoint already.
            .or_else(|| {
                reader
                    .raw("COMPASS_AE_TITLE")
                    .and_then(|raw| AeTitle::new(raw).ok())
            })
            .unwrap_or_else(|| endpoint.called_ae_title.clone());
        Self {
            host_follows_endpoint: host.is_none(),
            port_follows_endpoint: port.is_none(),
            host: host.unwrap_or_else(|| endpoint.host.clone()),
            port: port.unwrap_or(endpoint.port),
            called_ae_title,
            calling_ae_title: endpoint.calling_ae_title.clone(),
            verify: reader.value_or("CFIND_VERIFY", true, parse::boolean),
            initial_delay: reader.value_or(
                "CFIND_INITIAL_DELAY",
                by_target(
                    embedded,
                    defaults::CFIND_INITIAL_DELAY_EMBEDDED,
                    defaults::CFIND_INITIAL_DELAY,
                ),
                parse::seconds_non_negative,
            ),
            timeout: reader.value_or(
                "CFIND_TIMEOUT",
                defaults::CFIND_TIMEOUT,
                parse::seconds_positive,
            ),
            poll_interval: reader.value_or(
                "CFIND_POLL_INTERVAL",
                by_target(
                    embedded,
                    defaults::CFIND_POLL_INTERVAL_EMBEDDED,
                    defaults::CFIND_POLL_INTERVAL,
                ),
                parse::seconds_positive,
            ),
        }
    }

    /// Follows the endpoint to a new address, except where `CFIND_HOST`/`CFIND_PORT` say otherwise.
    pub(crate) fn follow(&mut self, endpoint: &Endpoint) {
        if self.host_follows_endpoint {
            self.host.clone_from(&endpoint.host);
        }
        if self.port_follows_endpoint {
            self.port = endpoint.port;
        }
    }
}

/// Where a run verifies delivery (`VERIFY_AT`): any of C-FIND, the destination sink,
/// retrieval from the destination archive, and its Storage Commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyAt {
    /// `cfind`: query the destination by C-FIND ([`CFindSettings`]).
    pub cfind: bool,
    /// `sink`: count what reaches the destination sink ([`SinkSettings`]) the run starts.
    pub sink: bool,
    /// `retrieve`: get the delivered studies back from the destination archive (the
    /// C-FIND peer) by C-GET or C-MOVE ([`RetrieveSettings`]) and compare every
    /// instance with its send.
    pub retrieve: bool,
    /// `commit`: ask the destination archive for Storage Commitment of every delivered
    /// instance ([`CommitSettings`]).
    pub commit: bool,
}

impl VerifyAt {
    /// By C-FIND only.
    pub const CFIND: VerifyAt = VerifyAt {
        cfind: true,
        sink: false,
        retrieve: false,
        commit: false,
    };
    /// At the sink only.
    pub const SINK: VerifyAt = VerifyAt {
        cfind: false,
        sink: true,
        retrieve: false,
        commit: false,
    };
    /// `both`: at the sink and by C-FIND.
    pub const BOTH: VerifyAt = VerifyAt {
        cfind: true,
        sink: true,
        retrieve: false,
        commit: false,
    };

    /// The words `VERIFY_AT` takes, each alone or in a comma-separated list.
    pub const WORDS: [&'static str; 5] = ["cfind", "sink", "retrieve", "commit", "both"];

    /// Reads `cfind`, `sink`, `retrieve`, `commit` or `both` (= `cfind,sink`), alone
    /// or as a list separated by commas, `+` or spaces, in any case.
    ///
    /// # Errors
    /// What is expected, for the configuration's error message.
    pub fn parse(raw: &str) -> Result<VerifyAt, String> {
        let mut at = VerifyAt {
            cfind: false,
            sink: false,
            retrieve: false,
            commit: false,
        };
        let expected = || {
            "cfind, sink, retrieve, commit or both (= cfind,sink), or a comma-separated list of them"
                .to_string()
        };
        let mut any = false;
        for word in raw
            .split([',', '+', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty())
        {
            any = true;
            match word.to_ascii_lowercase().as_str() {
                "cfind" => at.cfind = true,
                "sink" => at.sink = true,
                "retrieve" => at.retrieve = true,
                "commit" => at.commit = true,
                "both" => {
                    at.cfind = true;
                    at.sink = true;
                }
                _ => return Err(expected()),
            }
        }
        if any { Ok(at) } else { Err(expected()) }
    }

    /// Whether delivery is verified by C-FIND.
    pub fn uses_cfind(self) -> bool {
        self.cfind
    }

    /// Whether delivery is verified at the destination sink.
    pub fn uses_sink(self) -> bool {
        self.sink
    }

    /// Whether delivered studies are retrieved from the destination archive.
    pub fn uses_retrieve(self) -> bool {
        self.retrieve
    }

    /// Whether the destination archive is asked for Storage Commitment.
    pub fn uses_commit(self) -> bool {
        self.commit
    }
}

impl fmt::Display for VerifyAt {
    /// `both` for C-FIND and the sink alone (the historical word), else the list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == VerifyAt::BOTH {
            return f.write_str("both");
        }
        let words: Vec<&str> = [
            (self.cfind, "cfind"),
            (self.sink, "sink"),
            (self.retrieve, "retrieve"),
            (self.commit, "commit"),
        ]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
        .collect();
        f.write_str(&words.join(","))
    }
}

impl Serialize for VerifyAt {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// How the sink matches an arrival to its send: `DELIVERY_MATCH_BY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMatch {
    /// `sop-instance-uid`: by the SOP Instance UID sent (routers that keep UIDs).
    SopInstanceUid,
    /// `trace`: by dicom-auto's private trace element, which every send then carries
    /// (routers that replace UIDs; needs `SEND_UID_STRATEGY=fresh`).
    Trace,
}

impl DeliveryMatch {
    /// The word `DELIVERY_MATCH_BY` takes for this value.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMatch::SopInstanceUid => "sop-instance-uid",
            DeliveryMatch::Trace => "trace",
        }
    }
}

/// The destination sink: a storage SCP the run starts, which the router delivers to, and
/// where delivery is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkSettings {
    /// `SINK_PORT`: the port the sink listens on; 0 (the default) lets the operating
    /// system pick a free one, which the sink reports.
    pub port: u16,
    /// `SINK_AE_TITLE`: the sink's AE title, which the router calls.
    pub ae_title: AeTitle,
    /// `SINK_BIND`: the address the sink listens on.
    pub bind: IpAddr,
    /// `DELIVERY_TIMEOUT`: how long after the last send an instance not yet at the sink
    /// still counts as in transit; after that it is undelivered.
    #[serde(rename = "delivery_timeout_seconds", serialize_with = "seconds")]
    pub delivery_timeout: Duration,
    /// `VERIFY_AT`: where delivery is verified: by C-FIND, at the sink, by retrieval,
    /// by Storage Commitment, or several of them.
    pub verify_at: VerifyAt,
    /// `DELIVERY_MATCH_BY`: how an arrival is matched to its send.
    pub match_by: DeliveryMatch,
}

impl SinkSettings {
    pub(crate) fn read(reader: &mut Reader<'_>, target: &Target) -> Self {
        let default_verify_at = if target.is_embedded() {
            defaults::VERIFY_AT_EMBEDDED
        } else {
            defaults::VERIFY_AT_REMOTE
        };
        Self {
            port: reader.value_or("SINK_PORT", defaults::SINK_PORT, parse::port_or_any),
            ae_title: reader
                .value("SINK_AE_TITLE", parse::ae_title)
                .unwrap_or_else(|| {
                    AeTitle::new(defaults::SINK_AE_TITLE).expect("the default is a valid AE title")
                }),
            bind: reader.value_or("SINK_BIND", defaults::SINK_BIND, parse::ip_address),
            delivery_timeout: reader.value_or(
                "DELIVERY_TIMEOUT",
                defaults::DELIVERY_TIMEOUT,
                parse::seconds_positive,
            ),
            verify_at: reader.value_or("VERIFY_AT", default_verify_at, VerifyAt::parse),
            match_by: reader.value_or(
                "DELIVERY_MATCH_BY",
                DeliveryMatch::SopInstanceUid,
                parse::one_of(&[
                    ("sop-instance-uid", DeliveryMatch::SopInstanceUid),
                    ("trace", DeliveryMatch::Trace),
                ]),
            ),
        }
    }
}

/// How delivered studies are retrieved from the destination archive
/// (`VERIFY_AT=retrieve`). The archive is the C-FIND peer ([`CFindSettings`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetrieveSettings {
    /// `RETRIEVE_METHOD`: `get` (C-GET, the instances come back on our association)
    /// or `move` (C-MOVE to our `RETRIEVE_AE_TITLE`, which the archive must know).
    pub method: RetrieveMethod,
    /// `RETRIEVE_AE_TITLE`: our C-MOVE destination's AE title.
    pub ae_title: AeTitle,
    /// `RETRIEVE_PORT`: the port our C-MOVE destination listens on (at `SINK_BIND`);
    /// 0 picks a free one, which only the embedded archive can be told.
    pub port: u16,
    /// `RETRIEVE_STUDIES`: how many of the delivered studies are retrieved, spread
    /// evenly over the run; 0 retrieves every one.
    pub studies: u64,
    /// `RETRIEVE_TIMEOUT`: the longest one study's retrieve may take before it is
    /// cancelled.
    #[serde(rename = "timeout_seconds", serialize_with = "seconds")]
    pub timeout: Duration,
}

/// `RETRIEVE_METHOD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrieveMethod {
    /// C-GET.
    Get,
    /// C-MOVE.
    Move,
}

impl RetrieveMethod {
    /// The word `RETRIEVE_METHOD` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            RetrieveMethod::Get => "get",
            RetrieveMethod::Move => "move",
        }
    }
}

impl RetrieveSettings {
    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            method: reader.value_or(
                "RETRIEVE_METHOD",
                RetrieveMethod::Get,
                parse::one_of(&[("get", RetrieveMethod::Get), ("move", RetrieveMethod::Move)]),
            ),
            ae_title: reader
                .value("RETRIEVE_AE_TITLE", parse::ae_title)
                .unwrap_or_else(|| {
                    AeTitle::new(defaults::RETRIEVE_AE_TITLE)
                        .expect("the default is a valid AE title")
                }),
            port: reader.value_or("RETRIEVE_PORT", 0, parse::port_or_any),
            studies: reader.value_or("RETRIEVE_STUDIES", 0, parse::whole_number_at_least(0)),
            timeout: reader.value_or(
                "RETRIEVE_TIMEOUT",
                defaults::RETRIEVE_TIMEOUT,
                parse::seconds_positive,
            ),
        }
    }
}

/// How the destination archive is asked for Storage Commitment (`VERIFY_AT=commit`).
/// The archive is the C-FIND peer; it sends its report to our `LOCAL_AE_TITLE`, on
/// the N-ACTION's association or on one it opens to `SINK_BIND`:`COMMIT_PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitSettings {
    /// `COMMIT_PORT`: where we listen for the archive's N-EVENT-REPORT; 0 picks a
    /// free one, which only the embedded archive can be told.
    pub port: u16,
    /// `COMMIT_TIMEOUT`: how long the archive has to report.
    #[serde(rename = "timeout_seconds", serialize_with = "seconds")]
    pub timeout: Duration,
}

impl CommitSettings {
    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            port: reader.value_or("COMMIT_PORT", 0, parse::port_or_any),
            timeout: reader.value_or(
                "COMMIT_TIMEOUT",
                defaults::COMMIT_TIMEOUT,
                parse::seconds_positive,
            ),
        }
    }
}

fn by_target<T>(embedded: bool, embedded_value: T, remote_value: T) -> T {
    if embedded {
        embedded_value
    } else {
        remote_value
    }
}

/// How hard the load tests push.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadProfile {
    /// `PEAK_IMAGES_PER_SECOND`: the site's observed peak rate.
    pub peak_images_per_second: f64,
    /// `LOAD_MULTIPLIER`: stress factor applied to the peak.
    pub multiplier: f64,
    /// `LOAD_CONCURRENCY`: concurrent associations (workers).
    pub concurrency: usize,
    /// `TEST_DURATION_SECONDS`: length of a load run.
    #[serde(rename = "duration_seconds", serialize_with = "seconds")]
    pub duration: Duration,
    /// `LOAD_RAMP_UP_SECONDS`: time over which the send rate rises linearly from zero to the
    /// target; zero starts at full rate.
    #[serde(rename = "ramp_up_seconds", serialize_with = "seconds")]
    pub ramp_up: Duration,
    /// `LOAD_MEMORY_BUDGET`: bytes of data sets a load run holds in memory; a larger
    /// set is streamed from disk.
    pub memory_budget: u64,
}

impl LoadProfile {
    /// Images per second the stress tests aim at: peak × multiplier.
    pub fn target_rate(&self) -> f64 {
        self.peak_images_per_second * self.multiplier
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            peak_images_per_second: reader.value_or(
                "PEAK_IMAGES_PER_SECOND",
                defaults::PEAK_IMAGES_PER_SECOND,
                parse::positive_number,
            ),
            multiplier: reader.value_or(
                "LOAD_MULTIPLIER",
                defaults::LOAD_MULTIPLIER,
                parse::positive_number,
            ),
            concurrency: reader.value_or("LOAD_CONCURRENCY", defaults::LOAD_CONCURRENCY, |raw| {
                let n = parse::whole_number_at_least(1)(raw)?;
                usize::try_from(n).map_err(|_| "a whole number >= 1".to_owned())
            }),
            duration: reader.value_or(
                "TEST_DURATION_SECONDS",
                defaults::TEST_DURATION,
                parse::seconds_positive,
            ),
            ramp_up: reader.value_or(
                "LOAD_RAMP_UP_SECONDS",
                Duration::ZERO,
                parse::seconds_non_negative,
            ),
            memory_budget: reader.value_or(
                "LOAD_MEMORY_BUDGET",
                defaults::LOAD_MEMORY_BUDGET,
                parse::byte_size_at_least(defaults::MIN_LOAD_MEMORY_BUDGET),
            ),
        }
    }
}

/// Pass/fail limits for the load tests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// `MAX_ERROR_RATE`: highest acceptable failed ÷ attempted, from 0 to 1.
    pub max_error_rate: f64,
    /// `MAX_P95_LATENCY_MS`: p95 latency limit for the stability tests.
    #[serde(rename = "max_p95_latency_ms", serialize_with = "millis")]
    pub max_p95_latency: Duration,
    /// `MAX_P95_LATENCY_MS_SHORT`: p95 latency limit for the throughput tests.
    #[serde(rename = "max_p95_latency_short_ms", serialize_with = "millis")]
    pub max_p95_latency_short: Duration,
}

impl Thresholds {
    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            max_error_rate: reader.value_or(
                "MAX_ERROR_RATE",
                defaults::MAX_ERROR_RATE,
                parse::fraction,
            ),
            max_p95_latency: reader.value_or(
                "MAX_P95_LATENCY_MS",
                defaults::MAX_P95_LATENCY,
                parse::milliseconds_positive,
            ),
            max_p95_latency_short: reader.value_or(
                "MAX_P95_LATENCY_MS_SHORT",
                defaults::MAX_P95_LATENCY_SHORT,
                parse::milliseconds_positive,
            ),
        }
    }
}

/// Where the sample DICOM files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dataset {
    /// `DICOM_ROOT_DIR`, resolved: see [`Dataset::resolve`].
    pub root_dir: PathBuf,
}

impl Dataset {
    /// Resolves a relative `DICOM_ROOT_DIR` against the current directory when it exists there,
    /// else against the workspace root when it exists there (so `cargo test`, which runs in
    /// each crate's folder, finds the workspace's `dicom_samples/`), else against the current
    /// directory, where the loader will report it missing.
    pub fn resolve(configured: &Path, dirs: &BaseDirs) -> PathBuf {
        if configured.is_absolute() {
            return configured.to_path_buf();
        }
        let in_cwd = dirs.cwd.join(configured);
        if in_cwd.exists() {
            return in_cwd;
        }
        dirs.workspace_root
            .as_ref()
            .map(|root| root.join(configured))
            .filter(|in_root| in_root.exists())
            .unwrap_or(in_cwd)
    }

    pub(crate) fn read(reader: &mut Reader<'_>, dirs: Option<&BaseDirs>) -> Self {
        let configured = reader.value_or(
            "DICOM_ROOT_DIR",
            PathBuf::from(defaults::DICOM_ROOT_DIR),
            parse::path,
        );
        Self {
            root_dir: match dirs {
                Some(dirs) => Self::resolve(&configured, dirs),
                None => configured,
            },
        }
    }
}

/// Association-level limits shared by every DICOM client and the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSettings {
    /// `DICOM_CONNECT_TIMEOUT`: TCP connection establishment.
    #[serde(rename = "connect_timeout_seconds", serialize_with = "seconds")]
    pub connect_timeout: Duration,
    /// `DICOM_ACSE_TIMEOUT`: waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    #[serde(rename = "acse_timeout_seconds", serialize_with = "seconds")]
    pub acse_timeout: Duration,
    /// `DICOM_DIMSE_TIMEOUT`: waiting for a DIMSE response (C-STORE-RSP, each C-FIND-RSP, C-ECHO-RSP).
    #[serde(rename = "dimse_timeout_seconds", serialize_with = "seconds")]
    pub dimse_timeout: Duration,
    /// `DICOM_NETWORK_TIMEOUT`: longest a single socket read or write may block, which also
    /// bounds an idle association on the SCP side.
    #[serde(rename = "network_timeout_seconds", serialize_with = "seconds")]
    pub network_timeout: Duration,
    /// `DICOM_MAX_PDU`: the largest PDU we accept, advertised in A-ASSOCIATE.
    pub max_pdu_length: u32,
    /// `DICOM_QUICK_ACK`: acknowledge at once (Linux TCP_QUICKACK), so a peer with
    /// Nagle on adds no delayed-ACK wait to each response; off imitates a plain
    /// modality.
    pub quick_ack: bool,
}

impl NetworkSettings {
    /// The four waits as the clients take them: `DICOM_CONNECT_TIMEOUT`,
    /// `DICOM_ACSE_TIMEOUT`, `DICOM_DIMSE_TIMEOUT`, and `DICOM_NETWORK_TIMEOUT` as the
    /// longest a socket write may block.
    pub fn timeouts(&self) -> dimse::Timeouts {
        dimse::Timeouts {
            connect: self.connect_timeout,
            acse: self.acse_timeout,
            dimse: self.dimse_timeout,
            write: self.network_timeout,
        }
    }

    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        let timeout = |reader: &mut Reader<'_>, name: &str, default: Duration| {
            reader.value_or(name, default, parse::seconds_positive)
        };
        Self {
            connect_timeout: timeout(reader, "DICOM_CONNECT_TIMEOUT", defaults::CONNECT_TIMEOUT),
            acse_timeout: timeout(reader, "DICOM_ACSE_TIMEOUT", defaults::ACSE_TIMEOUT),
            dimse_timeout: timeout(reader, "DICOM_DIMSE_TIMEOUT", defaults::DIMSE_TIMEOUT),
            network_timeout: timeout(reader, "DICOM_NETWORK_TIMEOUT", defaults::NETWORK_TIMEOUT),
            max_pdu_length: reader.value_or("DICOM_MAX_PDU", defaults::MAX_PDU_LENGTH, |raw| {
                let expected = || {
                    format!(
                        "a whole number of bytes from {} to {}",
                        defaults::MIN_PDU_LENGTH,
                        defaults::MAX_PDU_LENGTH_LIMIT
                    )
                };
                raw.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| {
                        (defaults::MIN_PDU_LENGTH..=defaults::MAX_PDU_LENGTH_LIMIT).contains(n)
                    })
                    .ok_or_else(expected)
            }),
            quick_ack: reader.value_or("DICOM_QUICK_ACK", true, parse::boolean),
        }
    }
}

/// How the sender drives associations and identities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendSettings {
    /// `ASSOCIATION_STRATEGY`.
    pub association: AssociationStrategy,
    /// `MAX_OPS_PER_ASSOCIATION`: release and reopen an association after this many stores;
    /// `None` (unset) means no limit. Irrelevant to `per-image`.
    pub max_ops_per_association: Option<NonZeroU32>,
    /// `SEND_UID_STRATEGY`.
    pub uid_strategy: UidStrategy,
}

impl SendSettings {
    pub(crate) fn read(reader: &mut Reader<'_>) -> Self {
        Self {
            association: reader.value_or(
                "ASSOCIATION_STRATEGY",
                AssociationStrategy::Persistent,
                parse::one_of(&[
                    ("per-image", AssociationStrategy::PerImage),
                    ("per-study", AssociationStrategy::PerStudy),
                    ("persistent", AssociationStrategy::Persistent),
                ]),
            ),
            max_ops_per_association: reader.value("MAX_OPS_PER_ASSOCIATION", |raw| {
                raw.trim()
                    .parse::<NonZeroU32>()
                    .map_err(|_| format!("a whole number from 1 to {}", u32::MAX))
            }),
            uid_strategy: reader.value_or(
                "SEND_UID_STRATEGY",
                UidStrategy::AsIs,
                parse::one_of(&[
                    ("asis", UidStrategy::AsIs),
                    ("as-is", UidStrategy::AsIs),
                    ("fresh", UidStrategy::Fresh),
                ]),
            ),
        }
    }
}

/// Settings of the functional (integration) tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntegrationSettings {
    /// `FAILURE_PAUSE_SECONDS`: the pause between sends in the long-pause failure test. The
    /// old suite paused 2 minutes against a real router, long enough for idle timeouts to
    /// close associations; the embedded simulator's idle timeout is set from this, so a short
    /// pause exercises the same path there.
    #[serde(rename = "failure_pause_seconds", serialize_with = "seconds")]
    pub failure_pause: Duration,
    /// `EXPECTATIONS_DIR`: a folder of expectation files (`routing_transformations.toml`,
    /// `calling_aet_routing.toml`, `data_validation.toml`) saying what this router's rules
    /// do, in place of the suite's built-in `tests-suite/expectations/`; `None` (unset)
    /// means the built-in ones. Resolved like `DICOM_ROOT_DIR` (see [`Dataset::resolve`]).
    pub expectations_dir: Option<PathBuf>,
    /// `SIMULATOR_RULES`: a rules file (the simulator's TOML, `[faults]` included) for
    /// the embedded simulator in place of its default rules: rehearse a router that
    /// misbehaves (drops, duplicates, alters, delays) and see the run catch it. `None`:
    /// the default rules. Resolved like `DICOM_ROOT_DIR`; must be a file.
    pub simulator_rules: Option<PathBuf>,
}

impl IntegrationSettings {
    pub(crate) fn read(reader: &mut Reader<'_>, target: &Target, dirs: Option<&BaseDirs>) -> Self {
        Self {
            failure_pause: reader.value_or(
                "FAILURE_PAUSE_SECONDS",
                by_target(
                    target.is_embedded(),
                    defaults::FAILURE_PAUSE_EMBEDDED,
                    defaults::FAILURE_PAUSE,
                ),
                parse::seconds_positive,
            ),
            expectations_dir: reader.value("EXPECTATIONS_DIR", |raw| {
                let configured = parse::path(raw)?;
                let Some(dirs) = dirs else {
                    return Ok(configured);
                };
                // Checked here, not when the first test opens a file: every test of the
                // groups would fail on it, while this names the variable once.
                let resolved = Dataset::resolve(&configured, dirs);
                if resolved.is_dir() {
                    Ok(resolved)
                } else {
                    Err(format!(
                        "a folder of expectation files ({} is not a folder)",
                        resolved.display()
                    ))
                }
            }),
            simulator_rules: reader.value("SIMULATOR_RULES", |raw| {
                let configured = parse::path(raw)?;
                let Some(dirs) = dirs else {
                    return Ok(configured);
                };
                let resolved = Dataset::resolve(&configured, dirs);
                if resolved.is_file() {
                    Ok(resolved)
                } else {
                    Err(format!(
                        "a simulator rules file ({} is not a file)",
                        resolved.display()
                    ))
                }
            }),
        }
    }
}

/// Where the test reports are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportSettings {
    /// `REPORT_DIR`: the folder of `test_report.html`, `test_report.json` and `test_report.xml`.
    pub dir: PathBuf,
}

impl ReportSettings {
    /// The HTML report.
    pub fn html_path(&self) -> PathBuf {
        self.dir.join("test_report.html")
    }

    /// The machine-readable report.
    pub fn json_path(&self) -> PathBuf {
        self.dir.join("test_report.json")
    }

    /// The JUnit XML report for CI servers.
    pub fn junit_path(&self) -> PathBuf {
        self.dir.join("test_report.xml")
    }

    /// A relative `REPORT_DIR` is taken from the workspace root (where the old suite wrote its
    /// report), or from the current directory outside a workspace.
    pub(crate) fn read(reader: &mut Reader<'_>, dirs: Option<&BaseDirs>) -> Self {
        let configured = reader.value("REPORT_DIR", parse::path);
        let dir = match (configured, dirs) {
            (None, Some(dirs)) => dirs.anchor().to_path_buf(),
            (None, None) => PathBuf::from("."),
            (Some(dir), Some(dirs)) if dir.is_relative() => dirs.anchor().join(dir),
            (Some(dir), _) => dir,
        };
        Self { dir }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::num::NonZeroU32;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use crate::{
        AssociationStrategy, BaseDirs, ConfigError, Dataset, RetrieveMethod, TestConfig,
        UidStrategy, VerifyAt,
    };

    fn load(vars: &[(&str, &str)]) -> Result<TestConfig, ConfigError> {
        TestConfig::from_map(vars.iter().copied())
    }

    fn error_text(vars: &[(&str, &str)]) -> String {
        load(vars).unwrap_err().to_string()
    }

    const REMOTE: (&str, &str) = ("COMPASS_HOST", "compass.example.org");

    // ---- C-FIND

    #[test]
    fn cfind_follows_the_endpoint_unless_told_otherwise() {
        let config = load(&[REMOTE, ("COMPASS_PORT", "104")]).unwrap();
        assert_eq!(config.cfind.address(), "compass.example.org:104");
        assert_eq!(config.cfind.called_ae_title.as_str(), "COMPASS");
        assert_eq!(config.cfind.calling_ae_title.as_str(), "DICOM-AUTO");

        let config = load(&[
            REMOTE,
            ("CFIND_HOST", "pacs.example.org"),
            ("CFIND_PORT", "4242"),
            ("CFIND_AE_TITLE", "IMAGE-MANAGER"),
        ])
        .unwrap();
        assert_eq!(config.cfind.address(), "pacs.example.org:4242");
        assert_eq!(config.cfind.called_ae_title.as_str(), "IMAGE-MANAGER");
    }

    #[test]
    fn cfind_ae_title_falls_back_to_compass_ae_title_before_the_route() {
        let config = load(&[("COMPASS_ROUTE", "HTM_GI"), ("COMPASS_AE_TITLE", "ROUTER")]).unwrap();
        assert_eq!(config.cfind.called_ae_title.as_str(), "ROUTER");
        let config = load(&[("COMPASS_ROUTE", "HTM_GI")]).unwrap();
        assert_eq!(config.cfind.called_ae_title.as_str(), "LB-HTM-GI");
    }

    #[test]
    fn a_bad_compass_ae_title_is_reported_once_although_cfind_falls_back_to_it() {
        let error = load(&[("COMPASS_AE_TITLE", "A\\B")]).unwrap_err();
        assert_eq!(error.problems().len(), 1, "{error}");
    }

    #[test]
    fn cfind_polling_defaults_are_the_old_suites_for_a_remote_router() {
        let cfind = load(&[REMOTE]).unwrap().cfind;
        assert!(cfind.verify);
        assert_eq!(cfind.initial_delay, Duration::from_secs(5));
        assert_eq!(cfind.timeout, Duration::from_secs(60));
        assert_eq!(cfind.poll_interval, Duration::from_secs(5));
    }

    #[test]
    fn cfind_polls_quickly_against_the_embedded_simulator() {
        let cfind = load(&[]).unwrap().cfind;
        assert_eq!(cfind.initial_delay, Duration::ZERO);
        assert_eq!(cfind.poll_interval, Duration::from_millis(500));
        assert_eq!(cfind.timeout, Duration::from_secs(60));
    }

    #[test]
    fn cfind_settings_can_be_overridden() {
        let cfind = load(&[
            ("CFIND_VERIFY", "no"),
            ("CFIND_INITIAL_DELAY", "0"),
            ("CFIND_TIMEOUT", "120"),
            ("CFIND_POLL_INTERVAL", "2.5"),
        ])
        .unwrap()
        .cfind;
        assert!(!cfind.verify);
        assert_eq!(cfind.initial_delay, Duration::ZERO);
        assert_eq!(cfind.timeout, Duration::from_secs(120));
        assert_eq!(cfind.poll_interval, Duration::from_millis(2500));
    }

    #[test]
    fn bad_cfind_values_name_their_variable() {
        assert_eq!(
            error_text(&[("CFIND_VERIFY", "sometimes")]),
            r#"CFIND_VERIFY="sometimes": expected true or false (or 1/0, yes/no)"#
        );
        assert_eq!(
            error_text(&[("CFIND_TIMEOUT", "0")]),
            r#"CFIND_TIMEOUT="0": expected a number of seconds > 0"#
        );
        assert_eq!(
            error_text(&[("CFIND_INITIAL_DELAY", "-1")]),
            r#"CFIND_INITIAL_DELAY="-1": expected a number of seconds >= 0"#
        );
        assert_eq!(
            error_text(&[("CFIND_POLL_INTERVAL", "soon")]),
            r#"CFIND_POLL_INTERVAL="soon": expected a number of seconds > 0"#
        );
        assert!(error_text(&[("CFIND_PORT", "0")]).starts_with(r#"CFIND_PORT="0""#));
        assert!(error_text(&[("CFIND_HOST", "a b")]).starts_with(r#"CFIND_HOST="a b""#));
        assert!(error_text(&[("CFIND_AE_TITLE", "A\\B")]).starts_with(r#"CFIND_AE_TITLE="A\\B""#));
    }

    #[test]
    fn cfind_follows_a_moved_endpoint_but_not_an_explicit_host() {
        let addr = "127.0.0.1:40000".parse().unwrap();
        let config = load(&[]).unwrap().with_router_address(addr);
        assert_eq!(config.cfind.address(), "127.0.0.1:40000");

        let config = load(&[("CFIND_HOST", "pacs"), ("CFIND_PORT", "104")])
            .unwrap()
            .with_router_address(addr);
        assert_eq!(config.cfind.address(), "pacs:104");
        assert_eq!(config.endpoint.address(), "127.0.0.1:40000");
    }

    // ---- destination sink

    #[test]
    fn the_sink_defaults_to_any_loopback_port_and_verifies_at_both_ends_only_when_embedded() {
        let sink = load(&[]).unwrap().sink;
        assert_eq!(sink.port, 0);
        assert_eq!(sink.ae_title.as_str(), "DICOM_AUTO_SINK");
        assert_eq!(sink.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(sink.delivery_timeout, Duration::from_secs(30));
        assert_eq!(sink.verify_at, VerifyAt::BOTH);
        let remote = load(&[REMOTE]).unwrap().sink;
        assert_eq!(remote.verify_at, VerifyAt::CFIND);
        assert_eq!(
            super::SinkSettings {
                verify_at: VerifyAt::BOTH,
                ..remote
            },
            sink
        );
        let blank = load(&[
            ("SINK_PORT", ""),
            ("SINK_AE_TITLE", " "),
            ("SINK_BIND", ""),
            ("DELIVERY_TIMEOUT", ""),
            ("VERIFY_AT", ""),
        ])
        .unwrap()
        .sink;
        assert_eq!(blank, sink);
    }

    #[test]
    fn sink_settings_can_be_overridden() {
        let sink = load(&[
            ("SINK_PORT", "11113"),
            ("SINK_AE_TITLE", "PACS-SINK"),
            ("SINK_BIND", "0.0.0.0"),
            ("DELIVERY_TIMEOUT", "2.5"),
            ("VERIFY_AT", "both"),
        ])
        .unwrap()
        .sink;
        assert_eq!(sink.port, 11113);
        assert_eq!(sink.ae_title.as_str(), "PACS-SINK");
        assert_eq!(sink.bind, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(sink.delivery_timeout, Duration::from_millis(2500));
        assert_eq!(sink.verify_at, VerifyAt::BOTH);

        let sink = |name: &str, raw: &str| load(&[(name, raw)]).unwrap().sink;
        assert_eq!(sink("SINK_PORT", "0").port, 0);
        assert_eq!(sink("SINK_PORT", "65535").port, 65535);
        assert_eq!(
            sink("SINK_BIND", "::1").bind,
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            sink("SINK_BIND", "::").bind,
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        );
        assert_eq!(
            sink("SINK_AE_TITLE", "ABCDEFGHIJKLMNOP").ae_title.as_str(),
            "ABCDEFGHIJKLMNOP"
        );
        assert_eq!(
            sink("DELIVERY_TIMEOUT", "120").delivery_timeout,
            Duration::from_secs(120)
        );
        for (raw, verify_at) in [
            ("cfind", VerifyAt::CFIND),
            ("CFind", VerifyAt::CFIND),
            ("sink", VerifyAt::SINK),
            (" SINK ", VerifyAt::SINK),
            ("both", VerifyAt::BOTH),
            ("Both", VerifyAt::BOTH),
            ("sink,cfind", VerifyAt::BOTH),
            (
                "sink, retrieve",
                VerifyAt {
                    retrieve: true,
                    ..VerifyAt::SINK
                },
            ),
            (
                "both+commit",
                VerifyAt {
                    commit: true,
                    ..VerifyAt::BOTH
                },
            ),
        ] {
            assert_eq!(sink("VERIFY_AT", raw).verify_at, verify_at, "{raw}");
        }
    }

    #[test]
    fn retrieve_and_commit_settings_have_defaults_and_name_bad_values() {
        let config = load(&[]).unwrap();
        assert_eq!(config.retrieve.method, RetrieveMethod::Get);
        assert_eq!(config.retrieve.ae_title.as_str(), "DICOM_AUTO_RETRV");
        assert_eq!(config.retrieve.studies, 0);
        assert_eq!(config.retrieve.timeout, Duration::from_secs(300));
        assert_eq!(config.commit.timeout, Duration::from_secs(60));
        let config = load(&[
            ("RETRIEVE_METHOD", "Move"),
            ("RETRIEVE_PORT", "11120"),
            ("RETRIEVE_STUDIES", "5"),
            ("COMMIT_PORT", "11121"),
        ])
        .unwrap();
        assert_eq!(config.retrieve.method, RetrieveMethod::Move);
        assert_eq!(config.retrieve.port, 11120);
        assert_eq!(config.retrieve.studies, 5);
        assert_eq!(config.commit.port, 11121);
        assert_eq!(
            error_text(&[("RETRIEVE_METHOD", "fetch")]),
            "RETRIEVE_METHOD=\"fetch\": expected one of get, move"
        );
        assert!(error_text(&[("VERIFY_AT", "sink,pacs")]).starts_with(
            "VERIFY_AT=\"sink,pacs\": expected cfind, sink, retrieve, commit or both"
        ));
        assert!(error_text(&[("VERIFY_AT", " , ")]).starts_with("VERIFY_AT="));
    }

    #[test]
    fn verify_at_says_which_checks_run() {
        assert!(VerifyAt::CFIND.uses_cfind() && !VerifyAt::CFIND.uses_sink());
        assert!(!VerifyAt::SINK.uses_cfind() && VerifyAt::SINK.uses_sink());
        assert!(VerifyAt::BOTH.uses_cfind() && VerifyAt::BOTH.uses_sink());
        for verify_at in [VerifyAt::CFIND, VerifyAt::SINK, VerifyAt::BOTH] {
            let config = load(&[("VERIFY_AT", &verify_at.to_string())]).unwrap();
            assert_eq!(config.sink.verify_at, verify_at);
        }
    }

    #[test]
    fn bad_sink_values_name_their_variable_and_value() {
        for bad in ["65536", "-1", "any"] {
            assert_eq!(
                error_text(&[("SINK_PORT", bad)]),
                format!(
                    "SINK_PORT={bad:?}: expected a TCP port number from 0 to 65535 (0: any free port)"
                )
            );
        }
        for bad in ["localhost", "127.0.0.1:11113", "[::1]", "300.0.0.1"] {
            assert_eq!(
                error_text(&[("SINK_BIND", bad)]),
                format!(
                    "SINK_BIND={bad:?}: expected an IP address, e.g. 127.0.0.1, 0.0.0.0 or ::1"
                )
            );
        }
        for bad in ["ABCDEFGHIJKLMNOPQ", "A\\B"] {
            let text = error_text(&[("SINK_AE_TITLE", bad)]);
            assert!(
                text.starts_with(&format!(
                    "SINK_AE_TITLE={bad:?}: expected an AE title of 1 to 16 printable ASCII"
                )),
                "{text}"
            );
        }
        for bad in ["0", "-5", "soon", "30s"] {
            assert_eq!(
                error_text(&[("DELIVERY_TIMEOUT", bad)]),
                format!("DELIVERY_TIMEOUT={bad:?}: expected a number of seconds > 0")
            );
        }
        for bad in ["c-find", "router", "none"] {
            assert_eq!(
                error_text(&[("VERIFY_AT", bad)]),
                format!(
                    "VERIFY_AT={bad:?}: expected cfind, sink, retrieve, commit or both (= cfind,sink), or a comma-separated list of them"
                )
            );
        }
    }

    #[test]
    fn every_bad_sink_value_is_reported_at_once() {
        let error = load(&[
            ("SINK_PORT", "x"),
            ("SINK_AE_TITLE", ""),
            ("SINK_BIND", "y"),
            ("DELIVERY_TIMEOUT", "z"),
            ("VERIFY_AT", "w"),
        ])
        .unwrap_err();
        let variables: Vec<&str> = error
            .problems()
            .iter()
            .map(|p| match p {
                ConfigError::InvalidValue { variable, .. } => variable.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            variables,
            ["SINK_PORT", "SINK_BIND", "DELIVERY_TIMEOUT", "VERIFY_AT"]
        );
    }

    // ---- load profile

    #[test]
    fn the_load_profile_defaults_are_the_old_suites() {
        let load_profile = load(&[]).unwrap().load;
        assert_eq!(load_profile.peak_images_per_second, 50.0);
        assert_eq!(load_profile.multiplier, 3.0);
        assert_eq!(load_profile.concurrency, 8);
        assert_eq!(load_profile.duration, Duration::from_secs(300));
        assert_eq!(load_profile.ramp_up, Duration::ZERO);
        assert_eq!(load_profile.target_rate(), 150.0);
    }

    #[test]
    fn the_load_profile_can_be_overridden() {
        let load_profile = load(&[
            ("PEAK_IMAGES_PER_SECOND", "120"),
            ("LOAD_MULTIPLIER", "1.5"),
            ("LOAD_CONCURRENCY", "32"),
            ("TEST_DURATION_SECONDS", "10"),
            ("LOAD_RAMP_UP_SECONDS", "2.5"),
            ("LOAD_MEMORY_BUDGET", "1.5GiB"),
        ])
        .unwrap()
        .load;
        assert_eq!(load_profile.memory_budget, 3 << 29);
        assert_eq!(load_profile.target_rate(), 180.0);
        assert_eq!(load_profile.concurrency, 32);
        assert_eq!(load_profile.duration, Duration::from_secs(10));
        assert_eq!(load_profile.ramp_up, Duration::from_millis(2500));
    }

    #[test]
    fn bad_load_values_name_their_variable_and_expectation() {
        assert_eq!(
            error_text(&[("LOAD_CONCURRENCY", "eight")]),
            r#"LOAD_CONCURRENCY="eight": expected a whole number >= 1"#
        );
        assert_eq!(
            error_text(&[("LOAD_CONCURRENCY", "0")]),
            r#"LOAD_CONCURRENCY="0": expected a whole number >= 1"#
        );
        assert_eq!(
            error_text(&[("PEAK_IMAGES_PER_SECOND", "0")]),
            r#"PEAK_IMAGES_PER_SECOND="0": expected a number > 0"#
        );
        assert_eq!(
            error_text(&[("LOAD_MULTIPLIER", "-3")]),
            r#"LOAD_MULTIPLIER="-3": expected a number > 0"#
        );
        assert_eq!(
            error_text(&[("LOAD_MULTIPLIER", "inf")]),
            r#"LOAD_MULTIPLIER="inf": expected a number > 0"#
        );
        assert_eq!(
            error_text(&[("TEST_DURATION_SECONDS", "5m")]),
            r#"TEST_DURATION_SECONDS="5m": expected a number of seconds > 0"#
        );
        assert_eq!(
            error_text(&[("LOAD_RAMP_UP_SECONDS", "-2")]),
            r#"LOAD_RAMP_UP_SECONDS="-2": expected a number of seconds >= 0"#
        );
        for bad in ["lots", "512 parsecs", "-1GiB", "1000"] {
            assert_eq!(
                error_text(&[("LOAD_MEMORY_BUDGET", bad)]),
                format!(
                    "LOAD_MEMORY_BUDGET={bad:?}: expected a size of at least 16MiB, \
                     e.g. 512MiB, 2GiB, 800MB or a number of bytes"
                )
            );
        }
    }

    #[test]
    fn the_memory_budget_takes_binary_and_decimal_units() {
        let budget = |raw: &str| {
            load(&[("LOAD_MEMORY_BUDGET", raw)])
                .unwrap()
                .load
                .memory_budget
        };
        assert_eq!(load(&[]).unwrap().load.memory_budget, 512 << 20);
        assert_eq!(budget("256MiB"), 256 << 20);
        assert_eq!(budget("800 MB"), 800_000_000);
        assert_eq!(budget("2gib"), 2 << 30);
        assert_eq!(budget("33554432"), 32 << 20);
    }

    // ---- thresholds

    #[test]
    fn the_threshold_defaults_are_the_old_suites() {
        let thresholds = load(&[]).unwrap().thresholds;
        assert_eq!(thresholds.max_error_rate, 0.02);
        assert_eq!(thresholds.max_p95_latency, Duration::from_millis(2000));
        assert_eq!(
            thresholds.max_p95_latency_short,
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn thresholds_can_be_overridden() {
        let thresholds = load(&[
            ("MAX_ERROR_RATE", "0"),
            ("MAX_P95_LATENCY_MS", "250.5"),
            ("MAX_P95_LATENCY_MS_SHORT", "100"),
        ])
        .unwrap()
        .thresholds;
        assert_eq!(thresholds.max_error_rate, 0.0);
        assert_eq!(thresholds.max_p95_latency, Duration::from_micros(250_500));
        assert_eq!(thresholds.max_p95_latency_short, Duration::from_millis(100));
    }

    #[test]
    fn bad_thresholds_name_their_variable() {
        assert_eq!(
            error_text(&[("MAX_ERROR_RATE", "2")]),
            r#"MAX_ERROR_RATE="2": expected a fraction from 0 to 1 (0.02 means 2 %)"#
        );
        assert_eq!(
            error_text(&[("MAX_P95_LATENCY_MS", "0")]),
            r#"MAX_P95_LATENCY_MS="0": expected a number of milliseconds > 0"#
        );
        assert_eq!(
            error_text(&[("MAX_P95_LATENCY_MS_SHORT", "fast")]),
            r#"MAX_P95_LATENCY_MS_SHORT="fast": expected a number of milliseconds > 0"#
        );
    }

    // ---- dataset

    #[test]
    fn the_dataset_defaults_to_dicom_samples_as_written_when_no_directories_are_known() {
        let config = load(&[]).unwrap();
        assert_eq!(config.dataset.root_dir, PathBuf::from("./dicom_samples"));
        let config = load(&[("DICOM_ROOT_DIR", "/data/dicom")]).unwrap();
        assert_eq!(config.dataset.root_dir, PathBuf::from("/data/dicom"));
    }

    fn workspace_with_member() -> (tempfile::TempDir, BaseDirs) {
        let root = tempfile::tempdir().unwrap();
        let member = root.path().join("tests-suite");
        fs::create_dir_all(&member).unwrap();
        let dirs = BaseDirs {
            cwd: member,
            workspace_root: Some(root.path().to_path_buf()),
        };
        (root, dirs)
    }

    #[test]
    fn a_relative_dataset_dir_is_found_at_the_workspace_root() {
        let (root, dirs) = workspace_with_member();
        fs::create_dir_all(root.path().join("dicom_samples")).unwrap();
        let resolved = Dataset::resolve(Path::new("./dicom_samples"), &dirs);
        assert_eq!(resolved, root.path().join("./dicom_samples"));
    }

    #[test]
    fn a_relative_dataset_dir_in_the_current_directory_wins() {
        let (root, dirs) = workspace_with_member();
        fs::create_dir_all(root.path().join("dicom_samples")).unwrap();
        fs::create_dir_all(dirs.cwd.join("dicom_samples")).unwrap();
        let resolved = Dataset::resolve(Path::new("dicom_samples"), &dirs);
        assert_eq!(resolved, dirs.cwd.join("dicom_samples"));
    }

    #[test]
    fn a_missing_dataset_dir_resolves_to_the_current_directory_for_the_loader_to_report() {
        let (_root, dirs) = workspace_with_member();
        let resolved = Dataset::resolve(Path::new("nowhere"), &dirs);
        assert_eq!(resolved, dirs.cwd.join("nowhere"));
    }

    // ---- network

    #[test]
    fn network_defaults_are_pynetdicoms_timeouts_and_a_64_kib_pdu() {
        let network = load(&[]).unwrap().network;
        assert_eq!(network.connect_timeout, Duration::from_secs(30));
        assert_eq!(network.acse_timeout, Duration::from_secs(30));
        assert_eq!(network.dimse_timeout, Duration::from_secs(60));
        assert_eq!(network.network_timeout, Duration::from_secs(60));
        assert_eq!(network.max_pdu_length, 65_536);
    }

    #[test]
    fn network_settings_can_be_overridden() {
        let network = load(&[
            ("DICOM_CONNECT_TIMEOUT", "1"),
            ("DICOM_ACSE_TIMEOUT", "2"),
            ("DICOM_DIMSE_TIMEOUT", "3"),
            ("DICOM_NETWORK_TIMEOUT", "4"),
            ("DICOM_MAX_PDU", "16384"),
        ])
        .unwrap()
        .network;
        assert_eq!(network.connect_timeout, Duration::from_secs(1));
        assert_eq!(network.acse_timeout, Duration::from_secs(2));
        assert_eq!(network.dimse_timeout, Duration::from_secs(3));
        assert_eq!(network.network_timeout, Duration::from_secs(4));
        assert_eq!(network.max_pdu_length, 16_384);
    }

    #[test]
    fn the_max_pdu_must_be_within_what_peers_accept() {
        assert!(load(&[("DICOM_MAX_PDU", "1018")]).is_ok());
        assert!(load(&[("DICOM_MAX_PDU", "131072")]).is_ok());
        assert_eq!(
            error_text(&[("DICOM_MAX_PDU", "512")]),
            r#"DICOM_MAX_PDU="512": expected a whole number of bytes from 1018 to 131072"#
        );
        assert!(load(&[("DICOM_MAX_PDU", "131073")]).is_err());
    }

    #[test]
    fn bad_timeouts_name_their_variable() {
        for name in [
            "DICOM_CONNECT_TIMEOUT",
            "DICOM_ACSE_TIMEOUT",
            "DICOM_DIMSE_TIMEOUT",
            "DICOM_NETWORK_TIMEOUT",
        ] {
            assert_eq!(
                error_text(&[(name, "0")]),
                format!(r#"{name}="0": expected a number of seconds > 0"#)
            );
        }
    }

    // ---- sending

    #[test]
    fn sending_defaults_to_persistent_associations_without_limit_and_files_as_they_are() {
        let sending = load(&[]).unwrap().sending;
        assert_eq!(sending.association, AssociationStrategy::Persistent);
        assert_eq!(sending.max_ops_per_association, None);
        assert_eq!(sending.uid_strategy, UidStrategy::AsIs);
    }

    #[test]
    fn sending_settings_can_be_overridden() {
        let sending = load(&[
            ("ASSOCIATION_STRATEGY", "per-image"),
            ("MAX_OPS_PER_ASSOCIATION", "500"),
            ("SEND_UID_STRATEGY", "fresh"),
        ])
        .unwrap()
        .sending;
        assert_eq!(sending.association, AssociationStrategy::PerImage);
        assert_eq!(sending.max_ops_per_association, NonZeroU32::new(500));
        assert_eq!(sending.uid_strategy, UidStrategy::Fresh);
        let sending = load(&[("ASSOCIATION_STRATEGY", "Per-Study")])
            .unwrap()
            .sending;
        assert_eq!(sending.association, AssociationStrategy::PerStudy);
    }

    #[test]
    fn bad_sending_values_list_the_choices() {
        assert_eq!(
            error_text(&[("ASSOCIATION_STRATEGY", "pooled")]),
            r#"ASSOCIATION_STRATEGY="pooled": expected one of per-image, per-study, persistent"#
        );
        assert_eq!(
            error_text(&[("SEND_UID_STRATEGY", "new")]),
            r#"SEND_UID_STRATEGY="new": expected one of asis, as-is, fresh"#
        );
        assert!(
            error_text(&[("MAX_OPS_PER_ASSOCIATION", "0")])
                .starts_with(r#"MAX_OPS_PER_ASSOCIATION="0": expected a whole number from 1"#)
        );
    }

    // ---- integration

    #[test]
    fn the_failure_pause_is_two_minutes_remote_and_two_seconds_embedded() {
        assert_eq!(
            load(&[REMOTE]).unwrap().integration.failure_pause,
            Duration::from_secs(120)
        );
        assert_eq!(
            load(&[]).unwrap().integration.failure_pause,
            Duration::from_secs(2)
        );
        assert_eq!(
            load(&[("FAILURE_PAUSE_SECONDS", "30")])
                .unwrap()
                .integration
                .failure_pause,
            Duration::from_secs(30)
        );
        assert_eq!(
            error_text(&[("FAILURE_PAUSE_SECONDS", "0")]),
            r#"FAILURE_PAUSE_SECONDS="0": expected a number of seconds > 0"#
        );
    }

    #[test]
    fn expectations_default_to_the_suites_built_in_files() {
        assert_eq!(load(&[]).unwrap().integration.expectations_dir, None);
        assert_eq!(
            load(&[("EXPECTATIONS_DIR", "")])
                .unwrap()
                .integration
                .expectations_dir,
            None
        );
    }

    #[test]
    fn a_relative_expectations_dir_is_found_at_the_workspace_root() {
        let (root, dirs) = workspace_with_member();
        let orthanc = root.path().join("tests-suite/expectations/orthanc");
        fs::create_dir_all(&orthanc).unwrap();
        let config = TestConfig::from_map_in(
            [("EXPECTATIONS_DIR", "tests-suite/expectations/orthanc")],
            &dirs,
        )
        .unwrap();
        assert_eq!(config.integration.expectations_dir, Some(orthanc.clone()));
        // From the member crate's folder, its own relative path works too.
        let config =
            TestConfig::from_map_in([("EXPECTATIONS_DIR", "expectations/orthanc")], &dirs).unwrap();
        assert_eq!(config.integration.expectations_dir, Some(orthanc));
    }

    #[test]
    fn an_expectations_dir_that_is_not_a_folder_is_named_in_the_error() {
        let (root, dirs) = workspace_with_member();
        let file = root.path().join("rules.toml");
        fs::write(&file, "").unwrap();
        for bad in ["nowhere", file.to_str().unwrap()] {
            let error = TestConfig::from_map_in([("EXPECTATIONS_DIR", bad)], &dirs).unwrap_err();
            let text = error.to_string();
            assert!(
                text.starts_with(&format!(
                    r#"EXPECTATIONS_DIR="{bad}": expected a folder of expectation files ("#
                )),
                "{text}"
            );
        }
    }

    #[test]
    fn simulator_rules_name_a_file_found_like_the_dataset_or_the_error_says_so() {
        let (root, dirs) = workspace_with_member();
        assert_eq!(load(&[]).unwrap().integration.simulator_rules, None);
        let file = root.path().join("dropping.toml");
        fs::write(&file, "").unwrap();
        let config =
            TestConfig::from_map_in([("SIMULATOR_RULES", "dropping.toml")], &dirs).unwrap();
        assert_eq!(config.integration.simulator_rules, Some(file));
        for bad in ["nowhere.toml", root.path().to_str().unwrap()] {
            let text = TestConfig::from_map_in([("SIMULATOR_RULES", bad)], &dirs)
                .unwrap_err()
                .to_string();
            assert!(
                text.starts_with(&format!(
                    r#"SIMULATOR_RULES="{bad}": expected a simulator rules file ("#
                )),
                "{text}"
            );
        }
    }

    // ---- reports

    #[test]
    fn reports_are_named_like_the_old_suites() {
        let report = load(&[("REPORT_DIR", "/tmp/reports")]).unwrap().report;
        assert_eq!(
            report.html_path(),
            Path::new("/tmp/reports/test_report.html")
        );
        assert_eq!(
            report.json_path(),
            Path::new("/tmp/reports/test_report.json")
        );
        assert_eq!(
            report.junit_path(),
            Path::new("/tmp/reports/test_report.xml")
        );
    }

    #[test]
    fn reports_default_to_the_workspace_root_even_from_a_member_crate() {
        let (root, dirs) = workspace_with_member();
        let config = TestConfig::from_map_in([("A", "b")], &dirs).unwrap();
        assert_eq!(config.report.dir, root.path());
        let config = TestConfig::from_map_in([("REPORT_DIR", "out")], &dirs).unwrap();
        assert_eq!(config.report.dir, root.path().join("out"));
    }
}
