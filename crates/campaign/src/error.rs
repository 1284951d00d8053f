//! Why a campaign could not run (as opposed to a run whose checks failed).

use std::path::PathBuf;

/// Why a campaign step could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// A TLS file of the configuration cannot be used.
    #[error("{variable}: {source}")]
    Tls {
        /// The variable that names the file (or `DICOM_TLS` for the system's CAs).
        variable: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<dimse::tls::TlsError>,
    },
    /// The embedded router's throwaway certificates could not be made.
    #[error("cannot make the embedded router's TLS certificates: {0}")]
    EmbeddedPki(#[source] test_pki::PkiError),
    /// The embedded simulator could not start.
    #[error("{}: {detail}", path.display())]
    Expectations {
        /// The expectations file (EXPECTATIONS_DIR).
        path: std::path::PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    #[error("cannot start the destination sink (SINK_BIND, SINK_PORT, SINK_AE_TITLE): {0}")]
    Sink(#[source] sink::SinkError),
    #[error(
        "cannot start the Storage Commitment report listener (SINK_BIND, COMMIT_PORT, LOCAL_AE_TITLE, COMMIT_TIMEOUT): {0}"
    )]
    Commitment(#[source] commitment::CommitmentError),
    #[error("workload profile: {0}")]
    Profile(#[source] Box<workload::WorkloadError>),
    #[error("SIMULATOR_RULES: {0}")]
    SimulatorRules(#[source] simulator::RulesError),
    #[error("cannot start the embedded simulator: {0}")]
    Simulator(#[source] simulator::SimulatorError),
    /// The sample folder could not be read.
    #[error("DICOM_ROOT_DIR {}: {detail}", root.display())]
    Samples {
        /// The folder.
        root: PathBuf,
        /// What failed.
        detail: String,
    },
    /// No sendable DICOM file in the sample folder.
    #[error("no sendable DICOM file under {} (DICOM_ROOT_DIR); point it at a folder of DICOM files", root.display())]
    NoSamples {
        /// The folder.
        root: PathBuf,
    },
    /// The router did not answer a C-ECHO before the run.
    #[error("the router {peer} does not answer a C-ECHO (check {variables})")]
    Unreachable {
        /// `CALLED@host:port`.
        peer: String,
        /// The variables that say where the router is.
        variables: &'static str,
        /// What failed.
        #[source]
        source: Box<sender::SenderError>,
    },
    /// The sender refused its options, its files, or could not start the run.
    #[error(transparent)]
    Sender(Box<sender::SenderError>),
    /// The load run's accounting does not add up: a bug, never a router's fault.
    #[error("accounting broken: attempted != succeeded + warnings + failed + unknown ({detail})")]
    Accounting {
        /// The counts.
        detail: String,
    },
    /// C-FIND verification could not run.
    #[error("C-FIND verification could not run: {0}")]
    Verification(#[source] Box<cfind::CFindError>),
    /// An option of a campaign step (a capacity search's rates, steps, thresholds) is
    /// out of range.
    #[error("{name} {value}: expected {expected}")]
    InvalidOption {
        /// The option, as its command-line flag says it.
        name: &'static str,
        /// The value given.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A report file could not be written.
    #[error("cannot write the report: {0}")]
    Report(#[source] report::ReportError),
}

impl From<sender::SenderError> for CampaignError {
    fn from(error: sender::SenderError) -> Self {
        CampaignError::Sender(Box::new(error))
    }
}
