//! Keeping patient-identifying values out of reports that are shared with vendors.

use crate::model::RunReport;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Replaces known patient-identifying values (names, IDs, birth dates taken from the
/// data that was sent) wherever they appear in a report's text.
///
/// Reports only ever carry UIDs, statuses and figures by design; this is the second
/// line of defence for free text (panic messages, peer error comments, test figures).
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
}

impl Redactor {
    /// A redactor that changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value to hide. Values shorter than 3 characters are ignored: hiding every
    /// "M" or "1" would destroy the report and protect nobody. A person name in DICOM
    /// form (`DOE^JOHN`) is also hidden in its spaced (`DOE JOHN`) and
    /// separate-component forms.
    pub fn add(&mut self, value: &str) -> &mut Self {
        let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
        self.push(value);
        if value.contains('^') {
            self.push(&value.replace('^', " "));
            for part in value.split('^') {
                self.push(part.trim());
            }
        }
        self
    }

    fn push(&mut self, value: &str) {
        if value.chars().count() >= 3 && !self.values.iter().any(|v| v == value) {
            self.values.push(value.to_string());
            // Longest first, so a full name goes before one of its components.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        }
    }

    /// Whether any value is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// `text` with every known value replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }

    /// Applies [`Redactor::redact`] to every free-text field of a report.
    pub fn redact_report(&self, report: &mut RunReport) {
        if self.is_empty() {
            return;
        }
        report.title = self.redact(&report.title);
        report.target = self.redact(&report.target);
        for item in &mut report.configuration {
            item.value = self.redact(&item.value);
        }
        for test in &mut report.tests {
            test.name = self.redact(&test.name);
            if let Some(message) = &mut test.message {
                *message = self.redact(message);
            }
            for figure in &mut test.figures {
                figure.value = self.redact(&figure.value);
            }
            if let Some(load) = &mut test.load {
                for error in &mut load.metrics.errors {
                    error.message = self.redact(&error.message);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TestOutcome, TestRecord};

    #[test]
    fn person_names_are_hidden_in_every_form() {
        let mut redactor = Redactor::new();
        redactor.add("DOE^JOHN");
        assert_eq!(redactor.redact("got DOE^JOHN"), "got [redacted]");
        assert_eq!(redactor.redact("got DOE JOHN"), "got [redacted]");
        assert_eq!(redactor.redact("name JOHN"), "name [redacted]");
    }

    #[test]
    fn short_values_are_not_redacted() {
        let mut redactor = Redactor::new();
        redactor.add("M").add("12");
        assert!(redactor.is_empty());
        assert_eq!(redactor.redact("M 12"), "M 12");
    }

    #[test]
    fn failure_messages_lose_patient_ids() {
        let mut redactor = Redactor::new();
        redactor.add("PAT-000123");
        let mut report = RunReport::default();
        let mut test = TestRecord::new("g::t", TestOutcome::Failed, 1.0);
        test.message = Some("expected PAT-000123 at the destination".into());
        report.tests.push(test);
        redactor.redact_report(&mut report);
        assert_eq!(
            report.tests[0].message.as_deref(),
            Some("expected [redacted] at the destination")
        );
    }
}
