//! Shared fixtures for the dicom-auto test suite.
//!
//! Not built yet: see the tests-suite and report issue.
