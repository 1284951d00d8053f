//! Interop tests: the project against real DICOM software nobody here wrote (DCMTK and
//! Orthanc), behind the `interop` feature.
//!
//! Run them with `scripts/test-all` (installs the peers, then runs these inside a
//! private network namespace holding only loopback), or by hand:
//! `cargo test -p tests-suite --features interop --test interop`. Each test starts its
//! own peers on free ports ([`tests_suite::peers::Peer`]) and stops them on drop, also
//! when it fails. Without the peers installed, the tests fail and say how to install
//! them: they are opt-in, never silently passed.

mod cfind_against_archives;
mod commitment_with_orthanc;
mod common;
mod dcmtk_clients_against_simulator;
mod orthanc_as_router;
mod retrieve_from_archives;
mod sender_against_peers;
mod tls_against_dcmtk;
