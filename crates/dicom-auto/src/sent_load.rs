//! The JSON a load run wrote (`dicom-auto load ... --json FILE`), as `verify`,
//! `retrieve` and `commit` read it.

use std::path::Path;

use anyhow::{Context, Result};
use sender::StudyRecord;
use serde::Deserialize;

/// What is read of a load's JSON: its studies, and whether it made fresh UIDs.
#[derive(Debug, Deserialize)]
pub struct SentLoad {
    /// Every study it sent to, with how the sends ended.
    pub studies: Vec<StudyRecord>,
    /// Set when the run made fresh UIDs: then every instance can be counted.
    pub uid_root: Option<String>,
}

impl SentLoad {
    /// Reads `path`, saying how to make one when it is not a load's JSON.
    pub fn read(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not the JSON of a load run (write one with `dicom-auto load ... --json FILE`)",
                path.display()
            )
        })
    }

    /// Whether each instance was sent once with its own UIDs, so counts can be
    /// compared instance by instance.
    pub fn counts_instances(&self) -> bool {
        self.uid_root.is_some()
    }

    /// The studies something was delivered to.
    pub fn delivered(&self) -> impl Iterator<Item = &StudyRecord> {
        self.studies.iter().filter(|s| s.counts.delivered() > 0)
    }
}
