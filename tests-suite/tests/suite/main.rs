//! The dicom-auto suite: one module per file of the old pytest suite, named as the file
//! without `test_`, so `cargo test routing_transformations` runs exactly that group.
//!
//! Every test takes the `report` fixture, which records its outcome in
//! `test_report.html`, `test_report.json` and `test_report.xml`.

mod anonymize_and_send;
mod calling_aet_routing;
#[cfg(feature = "load")]
mod capacity_search;
mod commitment_truth;
mod data_selection_examples;
mod data_validation;
mod delivery_truth;
mod failure_modes;
#[cfg(feature = "load")]
mod load_stability;
mod retrieval_truth;
#[cfg(feature = "load")]
mod routing_throughput;
mod routing_transformations;
mod update_dicom_tags;
#[cfg(feature = "load")]
mod workload_profiles;
