//! Reports of a test run: one record ([`RunReport`]), three renderings.
//!
//! - `test_report.html`: a self-contained page (Askama template, charts as inline SVG
//!   drawn by plotters, a few lines of inline script for the results filter; nothing is
//!   fetched from the network) with the summary dashboard, outcome donut, slowest-test
//!   bars, configuration, a filterable results table with failure details, and a
//!   performance panel per load test (latency histogram, throughput timeline, latency
//!   over time, C-FIND transit times).
//! - `test_report.json`: the record itself, metrics snapshots (with their histograms)
//!   included, for machines.
//! - `test_report.xml`: JUnit, for CI servers.
//!
//! Reports are shared with vendors: a [`Redactor`] loaded with the patient names, IDs and
//! birth dates of the data that was sent scrubs them from every free-text field.
//!
//! ```no_run
//! use report::{ReportPaths, RunReport, TestOutcome, TestRecord, write_reports};
//!
//! let mut run = RunReport { title: "dicom-auto".into(), ..RunReport::default() };
//! run.tests.push(TestRecord::new("failure_modes::duplicate_submission_is_stored_once", TestOutcome::Passed, 812.0));
//! write_reports(&run, &ReportPaths::in_dir(std::path::Path::new(".")))?;
//! # Ok::<(), report::ReportError>(())
//! ```

mod charts;
mod html;
mod junit;
mod model;
mod redact;
mod write;

pub use html::render_html;
pub use junit::render_junit;
pub use model::{
    ArchiveCommitment, ArchiveRetrieval, ArrivalSecond, CapacityCurve, CapacityStep, ConfigItem,
    DifferenceRow, Figure, GroupRow, LoadResult, OutcomeTotals, ProblemRow, RunReport,
    SinkDelivery, StudyCommitmentRow, StudyRetrievalRow, TestOutcome, TestRecord, TransitTimes,
};
pub use redact::{REDACTED, Redactor};
pub use write::{ReportPaths, write_atomically, write_reports};

use std::path::PathBuf;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The template or JSON encoder failed.
    #[error("could not render the report: {0}")]
    Render(String),
    /// The file could not be written.
    #[error("could not write {}: {source}", path.display())]
    Write {
        /// The report file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
