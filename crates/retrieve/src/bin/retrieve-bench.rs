//! `retrieve-bench`: how fast our C-GET and C-MOVE bring a whole study back, side by
//! side with DCMTK's `getscu` and `movescu`, from two archives.
//!
//! ```text
//! cargo run --release -p retrieve --features bench --bin retrieve-bench [-- --quick]
//! cargo run --release -p retrieve --features bench --bin retrieve-bench -- \
//!     --small-count 1000 --large-count 20 --runs 3
//! ```
//!
//! Two studies are synthesised (`loader::synth`, CT, Explicit VR Little Endian): a
//! small one of `--small-count` instances of ~50 KB and a large one of
//! `--large-count` instances of ~10 MB. Each is stored by C-STORE (our `dimse` SCU,
//! one association per archive, one instance at a time, never kept in memory) into:
//!
//! 1. **the simulator**, in process on loopback, in *load mode with a spool folder*
//!    (each instance a file in a tmpfs folder under `/dev/shm`, read back per
//!    sub-operation, as dcmqrscp reads its own storage);
//! 2. **DCMTK `dcmqrscp`**, spawned with a generated `dcmqrscp.cfg` (storage under
//!    `/dev/shm` too, a HostTable entry for the move destination, any calling AE).
//!
//! From each, each study is retrieved whole, best of `--runs`:
//!
//! - ours by C-GET into [`retrieve::Discard`] (nothing kept) beside
//!   `getscu --ignore` (received, not stored), both announcing the same maximum PDU,
//!   `--get-pdu` (default 64 KiB, ours by default; getscu's own default is 16 KiB);
//! - ours by C-MOVE beside `movescu`, both to the same destination: DCMTK
//!   `storescp -v --ignore` (spawned here; `-v` logs one line per C-STORE, which is
//!   how arrivals are counted).
//!
//! Wall time covers the association (ours: connect, retrieve, release; DCMTK: the
//! whole process). Every retrieve is checked: ours by its outcome (complete, and
//! completed sub-operations, and for C-GET instances received, equal to the study's
//! instances), DCMTK's by its exit status and (getscu) the completed/failed
//! sub-operation counts of its final response (`-v` output; movescu prints none);
//! every C-MOVE, ours or movescu, also by the instances that reached storescp (its
//! log). A figure of a retrieve that fell short
//! is printed `INCOMPLETE`. Ratios are ours / DCMTK in images per second (above 1:
//! ours is faster).
//!
//! Loopback only from our side, every port found by binding port 0, every process
//! spawned killed on drop (also on error). `dcmqrscp` and `storescp` listen on all
//! interfaces (DCMTK has no bind option): acceptable for a bench, not for a test.
//! DCMTK processes get `TCP_NODELAY=1`, as our sockets have it.
//!
//! Prints figures; asserts nothing.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use dicom_dictionary_std::uids;
use dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN;
use dimse::{AeTitle, CommandField, PeerAddress, Priority, ScuAssociation, ScuOptions, Status};
use loader::synth::{ImageGeometry, InstanceBuilder, Modality, Patient, Series, Study};
use retrieve::{Discard, Method, RetrieveOptions, RetrieveOutcome, RetrieveRequest, Retriever};

#[derive(Parser, Debug)]
#[command(
    name = "retrieve-bench",
    about = "Our C-GET/C-MOVE beside DCMTK getscu/movescu, from the simulator and dcmqrscp"
)]
struct Args {
    /// Instances of ~50 KB in the small study.
    #[arg(long, default_value_t = 1000)]
    small_count: usize,
    /// Instances of ~10 MB in the large study.
    #[arg(long, default_value_t = 20)]
    large_count: usize,
    /// Runs of each retrieve; the fastest is kept.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// A short run: 200 small, 5 large, 1 run each (overrides the three above).
    #[arg(long)]
    quick: bool,
    /// The maximum PDU both C-GET SCUs announce (ours: `ScuOptions::max_pdu_length`,
    /// getscu: `-pdu`); DCMTK allows 4096..131072.
    #[arg(long, default_value_t = dimse::DEFAULT_MAX_PDU_LENGTH)]
    get_pdu: u32,
    /// Skip the dcmqrscp archive.
    #[arg(long)]
    without_dcmqrscp: bool,
}

const SIM_STORE_AE: &str = "LB-R";
const SIM_QUERY_AE: &str = "LB-QUERY";
const QRSCP_AE: &str = "QRSCP";
const DEST_AE: &str = "STORESCP";
const OUR_AE: &str = "RBENCH";

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.small_count = 200;
        args.large_count = 5;
        args.runs = 1;
    }
    args.runs = args.runs.max(1);
    for tool in ["getscu", "movescu", "storescp", "dcmqrscp"] {
        let path = format!("/usr/bin/{tool}");
        if !Path::new(&path).exists() {
            bail!("{path} is missing (apt-get install dcmtk)");
        }
    }
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("retrieve-bench-")
        .tempdir_in(&base)
        .context("creating the bench folder")?;
    println!(
        "retrieve-bench: {} cores; archives' storage in {} ({})",
        thread::available_parallelism().map_or(0, |n| n.get()),
        dir.path().display(),
        if base == shm { "tmpfs" } else { "temp dir" }
    );
    bench(&args, dir.path())
}

/// One synthesised study as it was stored.
struct StudySet {
    label: String,
    study_uid: String,
    instances: usize,
    bytes: u64,
}

fn bench(args: &Args, dir: &Path) -> Result<()> {
    // The move destination of every C-MOVE, ours and DCMTK's.
    let dest_port = free_port()?;
    let dest_log = dir.join("storescp.log");
    let _dest = Spawned::start_logged(
        "storescp",
        Command::new("/usr/bin/storescp")
            .args(["-v", "-aet", DEST_AE, "--ignore", "-pdu", "131072"])
            .arg(dest_port.to_string()),
        &dest_log,
    )?;
    wait_for_echo(dest_port, DEST_AE, "storescp")?;
    let dest = Destination { log: dest_log };

    let spool = dir.join("spool");
    let toml = format!(
        "[settings]\nquery_ae_title = \"{SIM_QUERY_AE}\"\n\n[[route]]\nname = \"R\"\ncalled_ae_title = \"{SIM_STORE_AE}\"\n\n[[move_destination]]\nae_title = \"{DEST_AE}\"\nhost = \"127.0.0.1\"\nport = {dest_port}\n"
    );
    let sim = simulator::Simulator::start(simulator::SimulatorConfig {
        store_mode: simulator::StoreMode::Load,
        spool_dir: Some(spool),
        ..simulator::SimulatorConfig::with_rules(simulator::Rules::from_toml_str(
            &toml,
            "retrieve-bench.toml",
        )?)
    })?;
    let sim_port = sim.addr().port();

    let qrscp = if args.without_dcmqrscp {
        None
    } else {
        Some(Dcmqrscp::start(dir, dest_port)?)
    };

    let started = Instant::now();
    let mut targets = vec![(sim_port, SIM_STORE_AE)];
    if let Some(q) = &qrscp {
        targets.push((q.port, QRSCP_AE));
    }
    let small = load_study(
        "small",
        1,
        args.small_count,
        ImageGeometry::mono16(160, 160, 12),
        &targets,
    )?;
    let large = load_study(
        "large",
        2,
        args.large_count,
        ImageGeometry::mono16(2240, 2240, 12),
        &targets,
    )?;
    println!(
        "loaded by C-STORE into {} archive(s) in {:.1} s: {} x {:.1} KB and {} x {:.1} MB; VmHWM {} MB",
        targets.len(),
        started.elapsed().as_secs_f64(),
        small.instances,
        small.bytes as f64 / small.instances.max(1) as f64 / 1e3,
        large.instances,
        large.bytes as f64 / large.instances.max(1) as f64 / 1e6,
        vm_hwm_kib() >> 10
    );
    println!(
        "each figure: best of {} run(s); C-GET max PDU {} (both); ratio = ours / DCMTK images/s (> 1: ours faster)",
        args.runs, args.get_pdu
    );

    let mut summary = String::new();
    section(
        "simulator (in process, load mode + tmpfs spool)",
        &dest,
        sim_port,
        SIM_QUERY_AE,
        &[&small, &large],
        args,
        &mut summary,
    )?;
    if let Some(q) = &qrscp {
        section(
            "DCMTK dcmqrscp",
            &dest,
            q.port,
            QRSCP_AE,
            &[&small, &large],
            args,
            &mut summary,
        )?;
    }
    let stats = sim.shutdown();
    println!(
        "\nsimulator retrieve stats: {} C-GET, {} C-MOVE requests, {} sub-operations completed, {} failed",
        stats.retrieves.get_requests,
        stats.retrieves.move_requests,
        stats.retrieves.sub_operations_completed,
        stats.retrieves.sub_operations_failed
    );
    println!("\n== summary ==\n{summary}");
    println!(
        "peak RSS of the bench process (VmHWM): {} MB",
        vm_hwm_kib() >> 10
    );
    Ok(())
}

/// Every retrieve of every study from one archive, with the ratios.
fn section(
    name: &str,
    dest: &Destination,
    port: u16,
    called: &str,
    studies: &[&StudySet],
    args: &Args,
    summary: &mut String,
) -> Result<()> {
    let (runs, get_pdu) = (args.runs, args.get_pdu);
    println!("\n== archive: {name}, 127.0.0.1:{port} ({called}) ==");
    for study in studies {
        let get_ours = best(runs, || ours(port, called, study, Method::Get, get_pdu))?;
        let get_dcmtk = best(runs, || getscu(port, called, study, get_pdu))?;
        let move_method = Method::Move {
            destination: DEST_AE.parse()?,
        };
        let move_ours = best(runs, || {
            dest.counting(study, || {
                ours(port, called, study, move_method.clone(), get_pdu)
            })
        })?;
        let move_dcmtk = best(runs, || {
            dest.counting(study, || movescu(port, called, study))
        })?;
        for (label, run) in [
            ("ours C-GET (Discard)", &get_ours),
            ("getscu --ignore", &get_dcmtk),
            ("ours C-MOVE -> storescp", &move_ours),
            ("movescu -> storescp", &move_dcmtk),
        ] {
            println!("  {:<7} {label:<26} {}", study.label, run.line(study));
        }
        let get_ratio = get_ours.rate(study) / get_dcmtk.rate(study);
        let move_ratio = move_ours.rate(study) / move_dcmtk.rate(study);
        println!(
            "  {:<7} ratio C-GET ours/getscu = {get_ratio:.2}{}; C-MOVE ours/movescu = {move_ratio:.2}{}",
            study.label,
            flag(&[&get_ours, &get_dcmtk]),
            flag(&[&move_ours, &move_dcmtk]),
        );
        let _ = writeln!(
            summary,
            "{name}, {}: C-GET {:.0} vs {:.0} img/s ({:.1} vs {:.1} MB/s) = x{get_ratio:.2}{}; C-MOVE {:.0} vs {:.0} img/s ({:.1} vs {:.1} MB/s) = x{move_ratio:.2}{}",
            study.label,
            get_ours.rate(study),
            get_dcmtk.rate(study),
            get_ours.mb_per_s(study),
            get_dcmtk.mb_per_s(study),
            flag(&[&get_ours, &get_dcmtk]),
            move_ours.rate(study),
            move_dcmtk.rate(study),
            move_ours.mb_per_s(study),
            move_dcmtk.mb_per_s(study),
            flag(&[&move_ours, &move_dcmtk]),
        );
    }
    Ok(())
}

fn flag(runs: &[&Best]) -> &'static str {
    if runs.iter().all(|r| r.complete) {
        ""
    } else {
        " (INCOMPLETE)"
    }
}

/// One retrieve run: its wall time and whether everything came back.
struct Run {
    wall: Duration,
    complete: bool,
    note: String,
}

/// The fastest of several runs; complete only when every run was.
struct Best {
    wall: Duration,
    complete: bool,
    notes: Vec<String>,
}

impl Best {
    fn rate(&self, study: &StudySet) -> f64 {
        study.instances as f64 / self.wall.as_secs_f64()
    }

    fn mb_per_s(&self, study: &StudySet) -> f64 {
        study.bytes as f64 / 1e6 / self.wall.as_secs_f64()
    }

    fn line(&self, study: &StudySet) -> String {
        let mut line = format!(
            "{:>8.3} s {:>8.1} img/s {:>8.1} MB/s  {}",
            self.wall.as_secs_f64(),
            self.rate(study),
            self.mb_per_s(study),
            if self.complete {
                "complete"
            } else {
                "INCOMPLETE"
            }
        );
        for note in &self.notes {
            line.push_str("\n            ");
            line.push_str(note);
        }
        line
    }
}

fn best(runs: usize, mut run: impl FnMut() -> Result<Run>) -> Result<Best> {
    let mut best = Best {
        wall: Duration::MAX,
        complete: true,
        notes: Vec::new(),
    };
    for _ in 0..runs {
        let r = run()?;
        best.wall = best.wall.min(r.wall);
        if !r.complete {
            best.complete = false;
            best.notes.push(r.note);
        }
    }
    Ok(best)
}

/// Our retrieve of the whole study: connect, retrieve, release.
fn ours(port: u16, called: &str, study: &StudySet, method: Method, pdu: u32) -> Result<Run> {
    let scu = ScuOptions::new(
        PeerAddress::new("127.0.0.1", port),
        OUR_AE.parse()?,
        called.parse()?,
    )
    .max_pdu_length(pdu);
    let options = RetrieveOptions::new(scu).stall_timeout(Duration::from_secs(60));
    let is_get = method == Method::Get;
    let started = Instant::now();
    let mut retriever = Retriever::new(options, method);
    let outcome = retriever.retrieve(&RetrieveRequest::study(&study.study_uid), &mut Discard)?;
    retriever.release();
    let wall = started.elapsed();
    Ok(judge_ours(&outcome, study, is_get, wall))
}

fn judge_ours(outcome: &RetrieveOutcome, study: &StudySet, is_get: bool, wall: Duration) -> Run {
    let n = study.instances as u64;
    let complete = outcome.is_complete()
        && u64::from(outcome.reported_retrieved()) == n
        && (!is_get || outcome.received == n);
    Run {
        wall,
        complete,
        note: outcome.summary(),
    }
}

/// DCMTK getscu, receiving without storing (`--ignore`).
fn getscu(port: u16, called: &str, study: &StudySet, pdu: u32) -> Result<Run> {
    let pdu = pdu.to_string();
    dcmtk(
        "getscu",
        &[
            "-v", "-S", "-aet", "GETSCU", "-aec", called, "--ignore", "-pdu", &pdu,
        ],
        port,
        study,
    )
}

/// DCMTK movescu, to the same storescp as ours.
fn movescu(port: u16, called: &str, study: &StudySet) -> Result<Run> {
    dcmtk(
        "movescu",
        &[
            "-v", "-S", "-aet", "MOVESCU", "-aec", called, "-aem", DEST_AE,
        ],
        port,
        study,
    )
}

fn dcmtk(tool: &str, options: &[&str], port: u16, study: &StudySet) -> Result<Run> {
    let started = Instant::now();
    let output = Command::new(format!("/usr/bin/{tool}"))
        .env("TCP_NODELAY", "1")
        .args(options)
        .args(["-k", "QueryRetrieveLevel=STUDY", "-k"])
        .arg(format!("StudyInstanceUID={}", study.study_uid))
        .args(["127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running /usr/bin/{tool}"))?;
    let wall = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // getscu -v ends with its final counts; movescu -v prints none (the move
    // destination's count is checked instead, Destination::counting).
    let completed = last_count(&text, "Completed Suboperations");
    let failed = last_count(&text, "Failed Suboperations");
    let complete = output.status.success()
        && completed.is_none_or(|n| n == study.instances as u64)
        && (completed.is_some() || tool == "movescu")
        && failed.unwrap_or(0) == 0;
    let note = format!(
        "{tool}: {}, completed {}, failed {}{}",
        output.status,
        completed.map_or("?".into(), |n| n.to_string()),
        failed.map_or("?".into(), |n| n.to_string()),
        text.lines()
            .filter(|l| l.starts_with('E') || l.starts_with('F'))
            .take(3)
            .fold(String::new(), |acc, l| acc + "; " + l)
    );
    Ok(Run {
        wall,
        complete,
        note,
    })
}

/// The number after the last `key ... : N` in DCMTK's verbose output.
fn last_count(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.contains(key))
        .filter_map(|l| l.rsplit(':').next()?.trim().parse().ok())
        .next_back()
}

/// Synthesises a study of `count` instances and stores each, as it is made, into
/// every archive (port, called AE title); nothing is kept.
fn load_study(
    label: &str,
    number: u32,
    count: usize,
    geometry: ImageGeometry,
    archives: &[(u16, &str)],
) -> Result<StudySet> {
    let study_uid = format!("1.2.826.0.1.3680043.10.1042.{number}");
    let series_uid = format!("{study_uid}.1");
    let patient = Patient {
        name: "BENCH^RETRIEVE".into(),
        id: format!("RB{number}"),
        birth_date: "19700101".into(),
        sex: "O".into(),
    };
    let study = Study {
        instance_uid: study_uid.clone(),
        id: format!("{number}"),
        date: "20261204".into(),
        time: "120000".into(),
        accession_number: format!("RB{number}"),
        description: format!("retrieve-bench {label}"),
        referring_physician: "NOBODY".into(),
        institution: "BENCH".into(),
    };
    let series = Series {
        instance_uid: series_uid.clone(),
        number: 1,
        description: label.into(),
        modality: Modality::Ct,
    };
    let mut associations = archives
        .iter()
        .map(|&(port, called)| store_association(port, called))
        .collect::<Result<Vec<_>>>()?;
    let ts = EXPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut bytes = 0u64;
    let mut data = Vec::new();
    for i in 0..count {
        let uid = format!("{series_uid}.{}", i + 1);
        let object = InstanceBuilder::new(Modality::Ct)
            .geometry(geometry)
            .patient(patient.clone())
            .study(study.clone())
            .series(series.clone())
            .instance_number(i as u32 + 1)
            .sop_instance_uid(&uid)
            .seed(u64::from(number) << 32 | i as u64)
            .build()
            .with_context(|| format!("synthesising {uid}"))?;
        data.clear();
        object
            .write_dataset_with_ts(&mut data, &ts)
            .context("encoding an instance")?;
        bytes += data.len() as u64;
        for (association, (_, called)) in associations.iter_mut().zip(archives) {
            store(association, uids::CT_IMAGE_STORAGE, &uid, &data)
                .with_context(|| format!("storing {uid} into {called}"))?;
        }
        if (i + 1) % 100 == 0 || i + 1 == count {
            print!("\r{label}: {} / {count} stored", i + 1);
            let _ = std::io::stdout().flush();
        }
    }
    println!();
    for association in associations {
        association.release()?;
    }
    Ok(StudySet {
        label: label.into(),
        study_uid,
        instances: count,
        bytes,
    })
}

fn store_association(port: u16, called: &str) -> Result<ScuAssociation> {
    let options = ScuOptions::new(
        PeerAddress::new("127.0.0.1", port),
        "RBENCH-LOAD".parse::<AeTitle>()?,
        called.parse()?,
    )
    .propose(
        uids::CT_IMAGE_STORAGE,
        vec![uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string()],
    );
    options
        .establish()
        .with_context(|| format!("associating with {called} on port {port}"))
}

fn store(association: &mut ScuAssociation, class: &str, uid: &str, data: &[u8]) -> Result<()> {
    let context = association
        .accepted_context(class)
        .context("CT Image Storage not accepted")?
        .id;
    let id = association.next_message_id();
    let command = dimse::Command::c_store_rq(id, class, uid, Priority::Medium);
    association.send(context, &command, Some(data))?;
    let response = association.expect_response(id, CommandField::CStoreRsp)?;
    if response.status != Status::SUCCESS {
        bail!("C-STORE answered {:04X}", response.status.0);
    }
    Ok(())
}

/// The move destination, DCMTK `storescp -v --ignore`, whose log names each
/// C-STORE it received.
struct Destination {
    log: PathBuf,
}

impl Destination {
    fn received(&self) -> u64 {
        std::fs::read_to_string(&self.log)
            .map(|text| text.matches("Received Store Request").count() as u64)
            .unwrap_or(0)
    }

    /// Runs a C-MOVE and checks that the study's instances all reached the
    /// destination (its log may lag the final response a little: 2 s at most).
    fn counting(&self, study: &StudySet, run: impl FnOnce() -> Result<Run>) -> Result<Run> {
        let before = self.received();
        let mut run = run()?;
        let want = study.instances as u64;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut arrived = self.received() - before;
        while arrived < want && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
            arrived = self.received() - before;
        }
        if arrived != want {
            run.complete = false;
            run.note
                .push_str(&format!("; {arrived} of {want} reached storescp"));
        }
        Ok(run)
    }
}

/// A spawned process, killed and reaped on drop.
struct Spawned {
    name: &'static str,
    child: Child,
}

impl Spawned {
    fn start(name: &'static str, command: &mut Command) -> Result<Self> {
        Spawned::spawn(name, command.stdout(Stdio::null()).stderr(Stdio::null()))
    }

    /// With its standard output and error in `log`.
    fn start_logged(name: &'static str, command: &mut Command, log: &Path) -> Result<Self> {
        let file = std::fs::File::create(log)?;
        Spawned::spawn(name, command.stdout(file.try_clone()?).stderr(file))
    }

    fn spawn(name: &'static str, command: &mut Command) -> Result<Self> {
        let child = command
            .env("TCP_NODELAY", "1")
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Spawned { name, child })
    }

    fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited: {status}", self.name);
        }
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// DCMTK dcmqrscp with its configuration and storage in the bench folder.
struct Dcmqrscp {
    port: u16,
    _process: Spawned,
}

impl Dcmqrscp {
    /// Starts it on a free port, knowing the move destination on `dest_port`.
    fn start(dir: &Path, dest_port: u16) -> Result<Self> {
        let storage: PathBuf = dir.join("dcmqrscp");
        std::fs::create_dir_all(&storage)?;
        let port = free_port()?;
        // As scripts/peers/dcmqrscp/dcmqrscp.cfg.in: no UserName/GroupName (as root it
        // would switch users and fail to write), ANY peer, the move destination in the
        // HostTable; a quota of 10 studies of up to 4 GB each.
        let config = format!(
            "NetworkTCPPort  = {port}\nMaxPDUSize      = 131072\nMaxAssociations = 16\n\n\
             HostTable BEGIN\ndest1 = ({DEST_AE}, 127.0.0.1, {dest_port})\nHostTable END\n\n\
             VendorTable BEGIN\nVendorTable END\n\n\
             AETable BEGIN\n{QRSCP_AE} {} RW (10, 4096mb) ANY\nAETable END\n",
            storage.display()
        );
        let path = dir.join("dcmqrscp.cfg");
        std::fs::write(&path, config)?;
        let mut process = Spawned::start(
            "dcmqrscp",
            Command::new("/usr/bin/dcmqrscp").arg("-c").arg(&path),
        )?;
        thread::sleep(Duration::from_millis(100));
        process.check_running()?;
        wait_for_echo(port, QRSCP_AE, "dcmqrscp")?;
        Ok(Dcmqrscp {
            port,
            _process: process,
        })
    }
}

/// A free loopback port (bound to port 0, then released).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits (10 s at most) until the SCP on `port` answers a C-ECHO.
fn wait_for_echo(port: u16, called: &str, name: &str) -> Result<()> {
    let options = ScuOptions::new(
        PeerAddress::new("127.0.0.1", port),
        OUR_AE.parse()?,
        called.parse()?,
    )
    .propose_verification();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut association) = options.establish()
            && association.echo().is_ok()
        {
            let _ = association.release();
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not answer a C-ECHO on port {port}");
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Peak resident memory of this process (VmHWM), KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
