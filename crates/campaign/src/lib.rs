//! A dicom-auto campaign: where the configuration (`.env` and the environment, read by
//! the `config` crate) meets the libraries.
//!
//! The libraries (`sender`, `cfind`, `simulator`, ...) take their own option types and
//! never see a `COMPASS_*` variable; this crate turns a [`config::TestConfig`] into
//! those options ([`options`]) and runs the steps of a campaign for the test suite
//! and for the `dicom-auto` command.

pub mod options;
