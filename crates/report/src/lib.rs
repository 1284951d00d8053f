//! HTML, JSON and JUnit reports of a test run.
//!
//! Not built yet: see the tests-suite and report issue.
