//! Test fixtures: a tiny SCP with fault injection (dicom-ul + dimse), DCMTK's storescp
//! when installed, and synthetic DICOM files.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use dicom_dictionary_std::uids;
use dicom_ul::pdu::{AbortRQSource, PDataValueType};
use dicom_ul::{Pdu, ServerAssociationOptions};
use dimse::Timeouts;
use dimse::{Command, Incoming, MessageReader, Status};
use loader::synth::{Encoding, ImageGeometry, InstanceBuilder, Modality, Patient, Series, Study};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sender::{DicomSender, SenderOptions};

/// How the test SCP treats what it receives.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Answer every request with this status.
    Answer(Status),
    /// Answer with success after this delay (a slow router).
    AnswerAfter(Duration),
    /// Accept associations, read requests, never answer.
    Silent,
    /// Send an A-ABORT as soon as the first data set fragment of a C-STORE arrives
    /// (data sets must span several PDUs).
    AbortMidDataSet,
    /// Answer with success, then close any association idle for this long, without
    /// a release.
    CloseWhenIdle(Duration),
    /// Reject the first `n` associations (called AE title not recognized), then
    /// answer with success.
    RejectFirst(usize),
}

/// A loopback SCP on a free port, stopped when dropped.
pub struct TestScp {
    pub address: String,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl TestScp {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, accepted, received) = (stop.clone(), accepted.clone(), received.clone());
            thread::spawn(move || {
                let mut connections = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let n = accepted.fetch_add(1, Ordering::SeqCst);
                            let (stop, received) = (stop.clone(), received.clone());
                            connections.push(thread::spawn(move || {
                                serve(stream, n, behaviour, &stop, &received);
                            }));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
                for c in connections {
                    let _ = c.join();
                }
            })
        };
        TestScp {
            address,
            stop,
            accepted,
            received,
            handle: Some(handle),
        }
    }

    /// Associations the SCP saw (accepted or rejected).
    pub fn associations(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Data sets received completely.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.received.lock().clone()
    }
}

impl Drop for TestScp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    index: usize,
    behaviour: Behaviour,
    stop: &AtomicBool,
    received: &Mutex<Vec<Vec<u8>>>,
) {
    stream.set_nonblocking(false).unwrap();
    let idle = match behaviour {
        Behaviour::CloseWhenIdle(d) => d,
        _ => Duration::from_millis(200),
    };
    let mut options = ServerAssociationOptions::new()
        .ae_title("TEST-SCP")
        .with_abstract_syntax(uids::VERIFICATION)
        .with_abstract_syntax(uids::CT_IMAGE_STORAGE)
        .with_abstract_syntax(uids::MR_IMAGE_STORAGE)
        .with_transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .with_transfer_syntax(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .max_pdu_length(16_384)
        .read_timeout(idle);
    let association = if let Behaviour::RejectFirst(n) = behaviour
        && index < n
    {
        options.accept_called_ae_title().establish(stream)
    } else {
        options = options.clone();
        options.accept_any().establish(stream)
    };
    let Ok(mut association) = association else {
        return;
    };
    let mut reader = MessageReader::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Behaviour::AbortMidDataSet = behaviour {
            match association.receive() {
                Ok(Pdu::PData { data }) => {
                    if data
                        .iter()
                        .any(|pdv| pdv.value_type == PDataValueType::Data && !pdv.is_last)
                    {
                        let _ = association.send(&Pdu::AbortRQ {
                            source: AbortRQSource::ServiceUser,
                        });
                        return;
                    }
                    continue;
                }
                Ok(Pdu::ReleaseRQ) => {
                    let _ = association.send(&Pdu::ReleaseRP);
                    return;
                }
                Ok(_) => return,
                Err(_) => continue,
            }
        }
        match reader.receive(&mut association) {
            Ok(Incoming::Message(message)) => match behaviour {
                Behaviour::Silent => {}
                _ => {
                    if let Behaviour::AnswerAfter(delay) = behaviour {
                        thread::sleep(delay);
                    }
                    let status = match behaviour {
                        Behaviour::Answer(s) => s,
                        _ => Status::SUCCESS,
                    };
                    if let Some(data) = message.data {
                        received.lock().push(data);
                    }
                    let rsp = Command::response_to(&message.command, status, false).unwrap();
                    if dimse::send_message(
                        &mut association,
                        message.presentation_context_id,
                        &rsp,
                        None,
                    )
                    .is_err()
                    {
                        return;
                    }
                }
            },
            Ok(Incoming::ReleaseRequested) => {
                let _ = association.send(&Pdu::ReleaseRP);
                return;
            }
            Ok(_) => return,
            Err(e) if e.is_timeout() => {
                if let Behaviour::CloseWhenIdle(_) = behaviour {
                    // Close without a release, as routers do to idle associations.
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// Options for a loopback peer, with short timeouts so that fault tests end quickly.
pub fn options(address: &str) -> SenderOptions {
    DicomSender::builder(address)
        .called_ae_title("TEST-SCP")
        .timeouts(Timeouts {
            connect: Duration::from_secs(5),
            acse: Duration::from_secs(5),
            dimse: Duration::from_secs(2),
            write: Duration::from_secs(5),
        })
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

/// Stores one synthetic ~50 KB CT file (in `encoding`) to a test SCP behaving as
/// told, with the default test options: the SCP (to inspect) and the outcome.
pub fn store_one(
    behaviour: Behaviour,
    encoding: Encoding,
) -> (TestScp, sender::SendOutcome, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let files = ct_files(dir.path(), 1, encoding);
    let scp = TestScp::start(behaviour);
    let outcome = options(&scp.address)
        .build()
        .unwrap()
        .send_file(&files[0])
        .unwrap();
    (scp, outcome, files[0].clone(), dir)
}

/// DCMTK's storescp, when installed.
pub fn storescp_binary() -> Option<&'static str> {
    let path = "/usr/bin/storescp";
    Path::new(path).exists().then_some(path)
}

/// A running DCMTK storescp, killed when dropped.
pub struct StoreScp {
    pub address: String,
    child: Child,
}

impl StoreScp {
    /// Starts storescp with `args` on a free loopback port and waits until it answers
    /// a C-ECHO. `None` (with the reason printed) when DCMTK is not installed.
    pub fn start(args: &[&str]) -> Option<Self> {
        let Some(binary) = storescp_binary() else {
            eprintln!("skipped: DCMTK storescp is not installed (apt-get install dcmtk)");
            return None;
        };
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Process::new(binary)
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
