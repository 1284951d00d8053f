//! Test fixtures: the simulator as the peer (started in-test on a free loopback port,
//! with the fault a test needs), DCMTK's storescp when installed, and synthetic
//! DICOM files.

#![allow(dead_code)]

use std::fmt::Display;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::Timeouts;
use loader::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality, Patient, Series, Study};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sender::{DEFAULT_CALLED_AE_TITLE, DicomSender, SenderOptions};
use simulator::{
    FaultPlan, Route, Rules, Simulator, SimulatorConfig, SimulatorHandle, TransferSyntaxPolicy,
};

/// The called AE title of [`options`]; the simulator also answers the sender's
/// default one, for command lines without `--aec`.
pub const CALLED_AE_TITLE: &str = "TEST-SCP";

/// A simulator on a free loopback port that stores what it receives as it is (no
/// checks, no morphing), takes only uncompressed transfer syntaxes, answers
/// [`CALLED_AE_TITLE`] and the sender's default called AE title, and injects `faults`.
/// Shut down when dropped.
pub fn simulator(faults: FaultPlan) -> SimulatorHandle {
    let rules = Rules {
        settings: Default::default(),
        faults,
        move_destinations: Vec::new(),
        routes: vec![
            Route::store_only("TEST", CALLED_AE_TITLE),
            Route::store_only("DEFAULT", DEFAULT_CALLED_AE_TITLE),
        ],
    };
    let config = SimulatorConfig {
        transfer_syntaxes: TransferSyntaxPolicy::UncompressedOnly,
        ..SimulatorConfig::with_rules(rules)
    };
    Simulator::start(config).unwrap()
}

/// Associations the simulator saw, accepted or rejected.
pub fn associations(sim: &SimulatorHandle) -> u64 {
    let a = sim.stats().associations;
    a.accepted + a.rejected_total()
}

/// The data sets the simulator stored, study by study.
pub fn stored_data_sets(sim: &SimulatorHandle) -> Vec<Arc<InMemDicomObject>> {
    sim.stored_instances()
        .into_iter()
        .map(|i| i.dataset.expect("the simulator keeps whole data sets"))
        .collect()
}

/// The stored data sets encoded again in Explicit VR Little Endian (the transfer
/// syntax of the files the tests send): with the byte count the simulator read
/// (`stats().stores.bytes`), what a test comparing bytes checks.
pub fn stored_bytes(sim: &SimulatorHandle) -> Vec<Vec<u8>> {
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    stored_data_sets(sim)
        .iter()
        .map(|object| {
            let mut bytes = Vec::new();
            object.write_dataset_with_ts(&mut bytes, &ts).unwrap();
            bytes
        })
        .collect()
}

/// Options for a loopback peer, with short timeouts so that fault tests end quickly.
pub fn options(address: impl Display) -> SenderOptions {
    DicomSender::builder(address.to_string())
        .called_ae_title(CALLED_AE_TITLE)
        .timeouts(Timeouts {
            connect: Duration::from_secs(5),
            acse: Duration::from_secs(5),
            dimse: Duration::from_secs(2),
            write: Duration::from_secs(5),
        })
}

/// Asserts that what `started` measures ended before `limit`.
pub fn assert_ended_within(started: Instant, limit: Duration) {
    let elapsed = started.elapsed();
    assert!(elapsed < limit, "took {elapsed:?}, limit {limit:?}");
}

/// Writes `n` synthetic CT files of about 50 KB (160 x 160 x 16 bit) into `dir`.
pub fn ct_files(dir: &Path, n: usize, encoding: Encoding) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("CT{i:04}.dcm"));
            InstanceBuilder::new(Modality::Ct)
                .geometry(ImageGeometry::mono16(160, 160, 12))
                .encoding(encoding)
                .seed(i as u64 + 1)
                .write_to(&path)
                .unwrap();
            path
        })
        .collect()
}

/// One original study for [`study_files`]: whose it is and how many instances each
/// of its series has.
pub struct OriginalStudy {
    /// Studies with the same number belong to the same patient.
    pub patient: u64,
    /// Instances per series.
    pub series: &'static [usize],
}

impl OriginalStudy {
    pub const fn new(patient: u64, series: &'static [usize]) -> Self {
        OriginalStudy { patient, series }
    }
}

/// Writes small synthetic CT files of these original studies into `dir`, the
/// studies' instances interleaved in file order (as a folder of several exams may
/// list them), each study with its own Accession Number. Returns the paths in file
/// order.
pub fn study_files(dir: &Path, studies: &[OriginalStudy]) -> Vec<PathBuf> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut queues: Vec<Vec<InstanceBuilder>> = studies
        .iter()
        .map(|original| {
            let patient = Patient::random(&mut StdRng::seed_from_u64(original.patient));
            let study = Study::random(&mut rng, Modality::Ct);
            let mut builders = Vec::new();
            for (s, &size) in original.series.iter().enumerate() {
                let series = Series::random(&mut rng, Modality::Ct, s as u32 + 1);
                for i in 0..size {
                    builders.push(
                        InstanceBuilder::new(Modality::Ct)
                            .geometry(ImageGeometry::mono16(16, 16, 12))
                            .patient(patient.clone())
                            .study(study.clone())
                            .series(series.clone())
                            .instance_number(i as u32 + 1)
                            .seed(rand::Rng::random(&mut rng)),
                    );
                }
            }
            builders.reverse();
            builders
        })
        .collect();
    let mut paths = Vec::new();
    while queues.iter().any(|q| !q.is_empty()) {
        for queue in &mut queues {
            if let Some(builder) = queue.pop() {
                let path = dir.join(format!("IM{:04}.dcm", paths.len()));
                builder.write_to(&path).unwrap();
                paths.push(path);
            }
        }
    }
    paths
}

/// Writes one large synthetic CT file (`side` x `side` x 16 bit) into `dir`: big
/// enough that its data set spans many PDUs and outruns the socket buffers.
pub fn large_ct_file(dir: &Path, side: u16) -> PathBuf {
    let path = dir.join("large.dcm");
    InstanceBuilder::new(Modality::Ct)
        .geometry(ImageGeometry::mono16(side, side, 12))
        .write_to(&path)
        .unwrap();
    path
}

/// Stores one synthetic ~50 KB CT file (in `encoding`) to a [`simulator`] injecting
/// `faults`, with the default test options: the simulator (to inspect) and the outcome.
pub fn store_one(
    faults: FaultPlan,
    encoding: Encoding,
) -> (
    SimulatorHandle,
    sender::SendOutcome,
    PathBuf,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), 1, encoding);
    let sim = simulator(faults);
    let outcome = options(sim.addr())
        .build()
        .unwrap()
        .send_file(&files[0])
        .unwrap();
    (sim, outcome, files[0].clone(), dir)
}

/// DCMTK's storescp.
const STORESCP: &str = "/usr/bin/storescp";

/// A running DCMTK storescp, killed when dropped.
pub struct StoreScp {
    pub address: String,
    child: Child,
}

impl StoreScp {
    /// Starts storescp with `args` on a free loopback port and waits until it answers
    /// a C-ECHO. `None` (with the reason printed) when DCMTK is not installed or this
    /// network namespace reaches beyond loopback.
    pub fn start(args: &[&str]) -> Option<Self> {
        if let Err(why) = test_peers::may_start(&[STORESCP]) {
            eprintln!("skipped: {why}");
            return None;
        }
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Process::new(STORESCP)
            .env("TCP_NODELAY", "1")
            .args(args)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let scp = StoreScp {
            address: format!("127.0.0.1:{port}"),
            child,
        };
        let sender = options(&scp.address).build().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        // Ready once it answers: a C-ECHO response, or a rejection under --refuse.
        while let Err(e) = sender.ping()
            && !matches!(e, sender::SenderError::Rejected { .. })
        {
            assert!(
                Instant::now() < deadline,
                "storescp did not start on {}",
                scp.address
            );
            thread::sleep(Duration::from_millis(50));
        }
        Some(scp)
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
