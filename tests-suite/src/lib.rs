//! Fixtures and the run record of the dicom-auto test suite.
//!
//! The tests themselves live in `tests/suite/`, one module per file of the old pytest
//! suite (`routing_transformations`, `failure_modes`, ...), so `cargo test
//! routing_transformations` runs exactly that group. This library holds what they
//! share:
//!
//! - [`fixtures`]: rstest fixtures named as in the old `conftest.py` (`perf_config`,
//!   `dicom_files`, `small_dicom_files`, `dicom_by_modality`, ...). Session-wide ones are
//!   computed once per test process.
//! - [`record`]: the [`record::TestReport`] fixture every test takes. It notes how the
//!   test ended (passed, failed with its panic message, or skipped with a reason) and
//!   rewrites `test_report.html`, `.json` and `.xml` as each test finishes, so the
//!   reports always cover every test of the run that has ended, passing or failing, with
//!   no end-of-run hook (libtest has none).

pub mod expectations;
pub mod fixtures;
pub mod load;
#[cfg(feature = "interop")]
pub mod peers;
pub mod record;
pub mod routing;
pub mod values;
