//! Recording each test's outcome into the run's report.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use report::{
    ConfigItem, Figure, LoadResult, Redactor, ReportPaths, RunReport, TestOutcome, TestRecord,
};

thread_local! {
    /// The message of the last panic on this thread, kept for the report.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The run's report, shared by every test thread of this process.
struct Run {
    report: RunReport,
    paths: ReportPaths,
    redactor: Redactor,
    /// Set when a report could not be written; said once on stderr, not per test.
    write_error_said: bool,
}

static RUN: OnceLock<Arc<Mutex<Run>>> = OnceLock::new();

/// What the report needs to know about the session before the first test ends.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Where the three report files go.
    pub paths: ReportPaths,
    /// The router under test, in words.
    pub target: String,
    /// The configuration summary.
    pub configuration: Vec<ConfigItem>,
    /// Patient-identifying values to keep out of the report.
    pub redactor: Redactor,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Starts the run record (once per process; later calls are ignored) and installs the
/// panic hook that keeps failure messages for the report.
pub fn init_run(context: impl FnOnce() -> RunContext) {
    RUN.get_or_init(|| {
        let context = context();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = match info.payload().downcast_ref::<&str>() {
                Some(s) => (*s).to_string(),
                None => match info.payload().downcast_ref::<String>() {
                    Some(s) => s.clone(),
                    None => "panic with a non-text payload".to_string(),
                },
            };
            let location = info
                .location()
                .map(|l| format!("\n  at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{location}")));
            previous(info);
        }));
        Arc::new(Mutex::new(Run {
            report: RunReport {
                title: "dicom-auto test report".into(),
                started_unix_ms: unix_ms(),
                finished_unix_ms: unix_ms(),
                target: context.target,
                configuration: context.configuration,
                tests: Vec::new(),
            },
            paths: context.paths,
            redactor: context.redactor,
            write_error_said: false,
        }))
    });
}

/// One test's entry in the report: take it as a fixture, and it records the test's
/// outcome when the test ends (passed, or failed with its panic message), or the
/// reason given to [`TestReport::skip`].
///
/// The test's name is libtest's own (the thread name), so the report lists tests
/// under exactly the names `cargo test` filters on.
#[derive(Debug)]
pub struct TestReport {
    name: String,
    started: Instant,
    skipped: Option<String>,
    figures: Vec<Figure>,
    load: Option<LoadResult>,
}

impl TestReport {
    /// Starts the entry for the test running on this thread.
    pub fn start() -> Self {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed test")
            .to_string();
        TestReport {
            name,
            started: Instant::now(),
            skipped: None,
            figures: Vec::new(),
            load: None,
        }
    }

    /// The test's full name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Marks the test skipped with `reason`, says so on stderr (past libtest's output
    /// capture, so the user sees it), and leaves it to the test to return.
    pub fn skip(&mut self, reason: impl Into<String>) {
        let reason = reason.into();
        let _ = writeln!(std::io::stderr(), "skipped {}: {reason}", self.name);
        self.skipped = Some(reason);
    }

    /// Adds a figure shown beside the test in the report (`instances sent: 12`).
    pub fn figure(&mut self, label: impl Into<String>, value: impl ToString) {
        self.figures.push(Figure {
            label: label.into(),
            value: value.to_string(),
        });
    }

    /// Attaches a load test's metrics (and transit times) for its performance panel.
    pub fn attach_load(&mut self, load: LoadResult) {
        self.load = Some(load);
    }
}

impl Drop for TestReport {
    fn drop(&mut self) {
        let Some(run) = RUN.get() else {
            // No session context: nothing to report into (a unit test of the harness).
            return;
        };
        let panicking = std::thread::panicking();
        let (outcome, message) = if panicking {
            let message = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| "the test panicked".into());
            (TestOutcome::Failed, Some(message))
        } else if let Some(reason) = self.skipped.take() {
            (TestOutcome::Skipped, Some(reason))
        } else {
            (TestOutcome::Passed, None)
        };
        let mut record = TestRecord::new(
            self.name.clone(),
            outcome,
            self.started.elapsed().as_secs_f64() * 1000.0,
        );
        record.message = message;
        record.figures = std::mem::take(&mut self.figures);
        record.load = self.load.take();

        let mut run = run.lock();
        run.report.finished_unix_ms = unix_ms();
        run.report.tests.push(record);
        let mut report = run.report.clone();
        run.redactor.redact_report(&mut report);
        if let Err(e) = report::write_reports(&report, &run.paths)
            && !run.write_error_said
        {
            run.write_error_said = true;
            let _ = writeln!(std::io::stderr(), "test report not written: {e}");
            // A report that cannot be written must fail the run, not vanish quietly;
            // but panicking inside Drop while unwinding would abort the process.
            if !panicking {
                drop(run);
                panic!("test report not written: {e}");
            }
        }
    }
}
