//! JUnit XML, the format CI servers (Jenkins, GitLab, Azure DevOps) read.

use std::fmt::Write;

use crate::model::{RunReport, TestOutcome};

/// Renders the report as a JUnit `<testsuites>` document, one `<testsuite>` per group.
pub fn render_junit(report: &RunReport) -> String {
    let mut groups: Vec<&str> = report.tests.iter().map(|t| t.group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    let totals = report.totals();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
        escape(&report.title),
        totals.total,
        totals.failed,
        totals.skipped,
        report.duration_s()
    );
    for group in groups {
        let tests: Vec<_> = report.tests.iter().filter(|t| t.group == group).collect();
        let failures = tests
            .iter()
            .filter(|t| t.outcome == TestOutcome::Failed)
            .count();
        let skipped = tests
            .iter()
            .filter(|t| t.outcome == TestOutcome::Skipped)
            .count();
        let time: f64 = tests.iter().map(|t| t.duration_ms).sum::<f64>() / 1000.0;
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            escape(group),
            tests.len(),
            failures,
            skipped,
            time
        );
        for test in tests {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(group),
                escape(&test.name),
                test.duration_ms / 1000.0
            );
            let message = test.message.as_deref().unwrap_or_default();
            match test.outcome {
                TestOutcome::Passed => xml.push_str("/>\n"),
                TestOutcome::Failed => {
                    let first_line = message.lines().next().unwrap_or_default();
                    let _ = write!(
                        xml,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                        escape(first_line),
                        escape(message)
                    );
                }
                TestOutcome::Skipped => {
                    let _ = write!(
                        xml,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        escape(message)
                    );
                }
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// Escapes text for an XML attribute or element, dropping characters XML 1.0 forbids
/// (a panic message can carry any control character).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}
