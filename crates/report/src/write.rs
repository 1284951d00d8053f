//! Writing the three report files, each atomically (temporary file, then rename), so
//! a run stopped mid-write never leaves a half report where the last good one was.

use std::path::{Path, PathBuf};

use loader::{AtomicFile, AtomicWriteError};

use crate::ReportError;
use crate::html::render_html;
use crate::junit::render_junit;
use crate::model::RunReport;

/// Where the three renderings go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportPaths {
    /// `test_report.html`
    pub html: PathBuf,
    /// `test_report.json`
    pub json: PathBuf,
    /// `test_report.xml` (JUnit)
    pub junit: PathBuf,
}

impl ReportPaths {
    /// The usual three names in `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        ReportPaths {
            html: dir.join("test_report.html"),
            json: dir.join("test_report.json"),
            junit: dir.join("test_report.xml"),
        }
    }
}

/// Renders and writes the HTML, JSON and JUnit reports.
pub fn write_reports(report: &RunReport, paths: &ReportPaths) -> Result<(), ReportError> {
    let html = render_html(report).map_err(|e| ReportError::Render(e.to_string()))?;
    let json =
        serde_json::to_string_pretty(report).map_err(|e| ReportError::Render(e.to_string()))?;
    let junit = render_junit(report);
    write_atomically(&paths.html, html.as_bytes())?;
    write_atomically(&paths.json, json.as_bytes())?;
    write_atomically(&paths.junit, junit.as_bytes())?;
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder ([`AtomicFile`]),
/// creating the folder; a new report is readable by all (0644).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    AtomicFile::new(path)
        .create_parent_dirs(true)
        .write_bytes(bytes)
        .map_err(|error| ReportError::Write {
            path: path.to_path_buf(),
            source: match error {
                AtomicWriteError::TempFile { source, .. }
                | AtomicWriteError::Content { source, .. }
                | AtomicWriteError::Io { source, .. }
                | AtomicWriteError::Replace { source, .. } => source,
            },
        })
}
