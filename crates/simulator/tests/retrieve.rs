//! C-MOVE and C-GET against the simulator: a hand-made C-MOVE SCU over loopback
//! (statuses, counts, FailedSOPInstanceUIDList, C-CANCEL, faults) with a second
//! simulator as the move destination, and DCMTK's movescu (into storescp) and
//! getscu, skipped with a printed note when DCMTK is not installed.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use common::*;
use dicom_core::VR;
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::{Command, Incoming, Priority, Status, SubOperations};
use simulator::{FaultPlan, Rules, Simulator, SimulatorConfig, SimulatorHandle, StoreMode};

const STUDY: &str = "1.2.826.0.9.7";
const SERIES: &str = "1.2.826.0.9.7.1";
const MOVE: &str = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE;

/// Rules: one storing route, the query AE, and move destinations.
fn rules(destinations: &[(&str, u16)]) -> Rules {
    let mut toml = String::from(
        "[settings]\nquery_ae_title = \"LB-QUERY\"\n\n[[route]]\nname = \"R\"\ncalled_ae_title = \"LB-R\"\n",
    );
    for (ae, port) in destinations {
        toml.push_str(&format!(
            "\n[[move_destination]]\nae_title = \"{ae}\"\nhost = \"127.0.0.1\"\nport = {port}\n"
        ));
    }
    Rules::from_toml_str(&toml, "test.toml").unwrap()
}

fn start(config: SimulatorConfig, instances: usize) -> SimulatorHandle {
    let sim = Simulator::start(config).unwrap();
    let mut client = connect(sim.addr(), "LB-R").unwrap();
    for i in 1..=instances {
        let obj = instance(STUDY, SERIES, &format!("{SERIES}.{i}"), "OT", "retrieve me");
        assert_eq!(client.store(&obj).unwrap().0, Status::SUCCESS);
    }
    client.release();
    sim
}

/// A destination that stores whatever arrives (a second simulator: its route
/// `LB-DEST` stores everything).
fn destination() -> SimulatorHandle {
    let toml = "[[route]]\nname = \"DEST\"\ncalled_ae_title = \"LB-DEST\"\n";
    Simulator::start(SimulatorConfig::with_rules(
        Rules::from_toml_str(toml, "dest.toml").unwrap(),
    ))
    .unwrap()
}

struct Reply {
    status: Status,
    counts: SubOperations,
    comment: Option<String>,
    failed_uids: Vec<String>,
}

/// Sends a C-MOVE; returns every response (pending ones first, the final last).
/// With `cancel_after`, a C-CANCEL follows that many pending responses.
fn c_move(
    addr: SocketAddr,
    destination: &str,
    identifier: &InMemDicomObject,
    cancel_after: Option<usize>,
) -> Vec<Reply> {
    let rq = Command::c_move_rq(7, MOVE, destination, Priority::Medium);
    exchange(addr, MOVE, &rq, identifier, cancel_after)
}

/// Sends a C-MOVE or C-GET request on a context of `sop_class` (the association
/// proposes Secondary Capture storage without role selection: a C-GET's
/// sub-operations then have nowhere to go).
fn exchange(
    addr: SocketAddr,
    sop_class: &str,
    rq: &Command,
    identifier: &InMemDicomObject,
    cancel_after: Option<usize>,
) -> Vec<Reply> {
    let options = options("LB-QUERY", "MOVER")
        .with_presentation_context(sop_class, vec![uids::EXPLICIT_VR_LITTLE_ENDIAN]);
    let mut client = connect_with(addr, options).unwrap();
    let pc = client.context(sop_class).expect("retrieve accepted");
    dimse::send_message(&mut client.association, pc, rq, Some(&encode(identifier))).unwrap();
    let mut replies = Vec::new();
    loop {
        let Incoming::Message(m) = client.reader.receive(&mut client.association).unwrap() else {
            panic!("no response");
        };
        assert_eq!(m.command.message_id_being_responded_to, Some(7));
        let status = m.command.status.unwrap();
        let failed_uids = m
            .data
            .map(|d| {
                let obj = InMemDicomObject::read_dataset_with_ts(
                    &d[..],
                    &EXPLICIT_VR_LITTLE_ENDIAN.erased(),
                )
                .unwrap();
                obj.get(tags::FAILED_SOP_INSTANCE_UID_LIST)
                    .map(|e| e.to_multi_str().unwrap().to_vec())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        replies.push(Reply {
            status,
            counts: m.command.sub_operations,
            comment: m.command.error_comment,
            failed_uids,
        });
        if status.class() != dimse::StatusClass::Pending {
            break;
        }
        if cancel_after == Some(replies.len()) {
            let cancel = Command::c_cancel_rq(7);
            dimse::send_message(&mut client.association, pc, &cancel, None).unwrap();
        }
    }
    client.release();
    replies
}

fn study_level() -> InMemDicomObject {
    query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, STUDY)])
}

#[test]
fn a_c_move_sends_every_match_with_pending_counts_then_success() {
    let dest = destination();
    let sim = start(
        SimulatorConfig::with_rules(rules(&[("LB-DEST", dest.addr().port())])),
        3,
    );
    let replies = c_move(sim.addr(), "LB-DEST", &study_level(), None);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.code()).collect();
    assert_eq!(statuses, [0xFF00, 0xFF00, 0xFF00, 0x0000]);
    assert_eq!(replies[0].counts, SubOperations::counts(2, 1, 0, 0));
    assert_eq!(replies[1].counts, SubOperations::counts(1, 2, 0, 0));
    assert_eq!(replies[2].counts, SubOperations::counts(0, 3, 0, 0));
    let last = replies.last().unwrap();
    assert_eq!(last.counts.completed, Some(3));
    assert_eq!(last.counts.remaining, None);
    assert_eq!(dest.stats().stores.stored, 3);
    let stats = sim.stats().retrieves;
    assert_eq!(
        (stats.move_requests, stats.sub_operations_completed),
        (1, 3)
    );

    // One instance by a UID list at the IMAGE level (one UID unknown).
    let image = query(
        "IMAGE",
        &[
            (tags::STUDY_INSTANCE_UID, VR::UI, STUDY),
            (tags::SERIES_INSTANCE_UID, VR::UI, SERIES),
            (tags::SOP_INSTANCE_UID, VR::UI, "1.2.826.0.9.7.1.2\\9.9.9"),
        ],
    );
    let replies = c_move(sim.addr(), "LB-DEST", &image, None);
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1].status, Status::SUCCESS);
    assert_eq!(replies[1].counts.completed, Some(1));
}

#[test]
fn no_match_unknown_destination_and_bad_identifiers_get_their_statuses() {
    let dest = destination();
    let sim = start(
        SimulatorConfig::with_rules(rules(&[("LB-DEST", dest.addr().port())])),
        1,
    );
    let none = query("STUDY", &[(tags::STUDY_INSTANCE_UID, VR::UI, "9.9")]);
    let replies = c_move(sim.addr(), "LB-DEST", &none, None);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status, Status::SUCCESS);
    assert_eq!(
        replies[0].counts,
        SubOperations::counts(0, 0, 0, 0).without_remaining()
    );

    let replies = c_move(sim.addr(), "NOBODY", &study_level(), None);
    assert_eq!(replies[0].status, Status(0xA801));
    assert!(replies[0].counts.is_empty());
    assert!(replies[0].comment.as_deref().unwrap().contains("NOBODY"));
    assert_eq!(sim.stats().retrieves.unknown_destinations, 1);

    let no_level = query("", &[(tags::STUDY_INSTANCE_UID, VR::UI, STUDY)]);
    let replies = c_move(sim.addr(), "LB-DEST", &no_level, None);
    assert_eq!(replies[0].status, Status(0xA900));
    let no_key = query("SERIES", &[(tags::STUDY_INSTANCE_UID, VR::UI, STUDY)]);
    let replies = c_move(sim.addr(), "LB-DEST", &no_key, None);
    assert_eq!(replies[0].status, Status(0xC000));
    assert!(
        replies[0]
            .comment
            .as_deref()
            .unwrap()
            .contains("SeriesInstanceUID")
    );
    assert_eq!(dest.stats().stores.received, 0);
}

trait NoRemaining {
    fn without_remaining(self) -> Self;
}

impl NoRemaining for SubOperations {
    fn without_remaining(mut self) -> Self {
        self.remaining = None;
        self
    }
}

#[test]
fn an_unreachable_destination_fails_every_sub_operation() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sim = start(SimulatorConfig::with_rules(rules(&[("GONE", port)])), 2);
    let replies = c_move(sim.addr(), "GONE", &study_level(), None);
    assert_eq!(replies.len(), 1);
    let last = &replies[0];
    assert_eq!(last.status, Status(0xA702));
    assert_eq!(last.counts.failed, Some(2));
    assert_eq!(last.failed_uids.len(), 2);
    assert!(last.comment.is_some());
}

#[test]
fn load_mode_without_a_spool_fails_and_with_a_spool_retrieves() {
    let dest = destination();
    let port = dest.addr().port();
    let sim = start(
        SimulatorConfig {
            store_mode: StoreMode::Load,
            ..SimulatorConfig::with_rules(rules(&[("LB-DEST", port)]))
        },
        2,
    );
    let last = c_move(sim.addr(), "LB-DEST", &study_level(), None)
        .pop()
        .unwrap();
    assert_eq!(last.status, Status(0xA702));
    assert_eq!(last.failed_uids, ["1.2.826.0.9.7.1.1", "1.2.826.0.9.7.1.2"]);

    let spool = tempfile::tempdir().unwrap();
    let sim = start(
        SimulatorConfig {
            store_mode: StoreMode::Load,
            spool_dir: Some(spool.path().join("spool")),
            ..SimulatorConfig::with_rules(rules(&[("LB-DEST", port)]))
        },
        2,
    );
    let files = std::fs::read_dir(spool.path().join("spool"))
        .unwrap()
        .count();
    assert_eq!(files, 2);
    let last = c_move(sim.addr(), "LB-DEST", &study_level(), None)
        .pop()
        .unwrap();
    assert_eq!(last.status, Status::SUCCESS);
    assert_eq!(last.counts.completed, Some(2));
    assert_eq!(dest.stats().stores.stored, 2);
}

#[test]
fn faults_fail_every_nth_and_send_an_extra_instance() {
    let dest = destination();
    let sim = start(
        SimulatorConfig::with_rules(rules(&[("LB-DEST", dest.addr().port())])),
        3,
    );
    sim.set_faults(FaultPlan {
        retrieve_fail_every_nth: Some(2),
        retrieve_extra_instance: true,
        ..FaultPlan::default()
    });
    let last = c_move(sim.addr(), "LB-DEST", &study_level(), None)
        .pop()
        .unwrap();
    assert_eq!(last.status, Status(0xB000));
    // 3 asked for + 1 extra; the 2nd and 4th reported failed.
    assert_eq!(last.counts.completed, Some(2));
    assert_eq!(last.counts.failed, Some(2));
    assert_eq!(last.failed_uids.len(), 2);
    assert_eq!(last.failed_uids[0], "1.2.826.0.9.7.1.2");
    let stats = sim.stats().retrieves;
    assert_eq!(stats.failed_by_fault, 2);
    assert_eq!(stats.extra_instances_by_fault, 1);
}

#[test]
fn pending_forever_repeats_its_counts_until_cancelled() {
    let dest = destination();
    let sim = start(
        SimulatorConfig::with_rules(rules(&[("LB-DEST", dest.addr().port())])),
        2,
    );
    sim.set_faults(FaultPlan {
        retrieve_pending_forever: true,
        ..FaultPlan::default()
    });
    let started = Instant::now();
    let replies = c_move(sim.addr(), "LB-DEST", &study_level(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(5));
    let last = replies.last().unwrap();
    assert_eq!(last.status, Status::CANCEL);
    assert_eq!(last.counts.remaining, Some(2));
    assert!(replies.len() >= 4);
    for pending in &replies[..replies.len() - 1] {
        assert_eq!(pending.counts, SubOperations::counts(2, 0, 0, 0));
    }
    assert_eq!(dest.stats().stores.received, 0);
    assert_eq!(sim.stats().retrieves.cancelled, 1);
}

// DCMTK ----------------------------------------------------------------------

fn getscu_installed() -> bool {
    test_peers::installed(&["/usr/bin/getscu"])
        .map_err(|why| eprintln!("skipped: {why}"))
        .is_ok()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed (by its own ID) when the test ends, however it ends.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run_bounded(tool: &str, args: &[&str]) -> std::process::Output {
    let mut child = Process::new(Path::new("/usr/bin").join(tool))
        .args(args)
        .env("TCP_NODELAY", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn dcm_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn dcmtk_movescu_moves_a_study_into_storescp() {
    // storescp listens on every interface: only where nothing but loopback is.
    if let Err(why) = test_peers::may_start(&["/usr/bin/movescu", "/usr/bin/storescp"]) {
        eprintln!("skipped: {why}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let port = free_port();
    let _storescp = Kill(
        Process::new("/usr/bin/storescp")
            .args(["-aet", "STORESCP", "-od"])
            .arg(out.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(eventually(
        || TcpStream::connect(("127.0.0.1", port)).is_ok()
    ));
    let sim = start(SimulatorConfig::with_rules(rules(&[("STORESCP", port)])), 3);
    let sim_port = sim.addr().port().to_string();
    let output = run_bounded(
        "movescu",
        &[
            "-S",
            "-aet",
            "MOVESCU",
            "-aec",
            "LB-QUERY",
            "-aem",
            "STORESCP",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={STUDY}"),
            "127.0.0.1",
            &sim_port,
        ],
    );
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        eventually(|| dcm_files(out.path()) == 3),
        "{} files",
        dcm_files(out.path())
    );
    assert_eq!(sim.stats().retrieves.sub_operations_completed, 3);
}

#[test]
fn dcmtk_getscu_gets_a_series_on_its_own_association() {
    if !getscu_installed() {
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let sim = start(SimulatorConfig::with_rules(rules(&[])), 2);
    let sim_port = sim.addr().port().to_string();
    let output = run_bounded(
        "getscu",
        &[
            "-S",
            "-aet",
            "GETSCU",
            "-aec",
            "LB-QUERY",
            "-od",
            &out.path().display().to_string(),
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            &format!("StudyInstanceUID={STUDY}"),
            "-k",
            &format!("SeriesInstanceUID={SERIES}"),
            "127.0.0.1",
            &sim_port,
        ],
    );
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dcm_files(out.path()), 2);
    let stats = sim.stats().retrieves;
    assert_eq!((stats.get_requests, stats.sub_operations_completed), (1, 2));

    // Every second sub-operation failed by the fault: one file, B000.
    sim.set_faults(FaultPlan {
        retrieve_fail_every_nth: Some(2),
        ..FaultPlan::default()
    });
    let again = tempfile::tempdir().unwrap();
    let output = run_bounded(
        "getscu",
        &[
            "-v",
            "-S",
            "-aec",
            "LB-QUERY",
            "-od",
            &again.path().display().to_string(),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &format!("StudyInstanceUID={STUDY}"),
            "127.0.0.1",
            &sim_port,
        ],
    );
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dcm_files(again.path()), 1, "{log}");
    assert!(
        log.contains("SubOperationsCompleteOneOrMoreFailures"),
        "{log}"
    );
}

#[test]
fn a_c_get_without_the_scp_role_fails_every_sub_operation() {
    let sim = start(SimulatorConfig::with_rules(rules(&[])), 2);
    let get = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET;
    let rq = Command::c_get_rq(7, get, Priority::Medium);
    let replies = exchange(sim.addr(), get, &rq, &study_level(), None);
    let last = replies.last().unwrap();
    assert_eq!(last.status, Status(0xA702));
    assert_eq!(last.counts.failed, Some(2));
    assert_eq!(last.failed_uids, ["1.2.826.0.9.7.1.1", "1.2.826.0.9.7.1.2"]);
    assert_eq!(sim.stats().retrieves.get_requests, 1);
}

#[test]
fn a_patient_root_c_move_takes_a_patient_and_refuses_patient_level_in_study_root() {
    let dest = destination();
    let sim = start(
        SimulatorConfig::with_rules(rules(&[("LB-DEST", dest.addr().port())])),
        2,
    );
    let patient_move = uids::PATIENT_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_MOVE;
    let rq = Command::c_move_rq(7, patient_move, "LB-DEST", Priority::Medium);
    let by_patient = query("PATIENT", &[(tags::PATIENT_ID, VR::LO, "PID001")]);
    let last = exchange(sim.addr(), patient_move, &rq, &by_patient, None)
        .pop()
        .unwrap();
    assert_eq!(last.status, Status::SUCCESS);
    assert_eq!(last.counts.completed, Some(2));
    let last = c_move(sim.addr(), "LB-DEST", &by_patient, None)
        .pop()
        .unwrap();
    assert_eq!(last.status, Status(0xA900));
}

#[test]
fn a_c_get_under_pending_forever_ends_with_its_cancel() {
    let sim = start(SimulatorConfig::with_rules(rules(&[])), 1);
    sim.set_faults(FaultPlan {
        retrieve_pending_forever: true,
        ..FaultPlan::default()
    });
    let get = uids::STUDY_ROOT_QUERY_RETRIEVE_INFORMATION_MODEL_GET;
    let rq = Command::c_get_rq(7, get, Priority::Medium);
    let replies = exchange(sim.addr(), get, &rq, &study_level(), Some(2));
    let last = replies.last().unwrap();
    assert_eq!(last.status, Status::CANCEL);
    assert_eq!(last.counts, SubOperations::counts(1, 0, 0, 0));
    assert_eq!(sim.stats().retrieves.pending_forever_by_fault, 1);
}
