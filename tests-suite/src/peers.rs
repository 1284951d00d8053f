//! Real DICOM peers for the interop tests: DCMTK `storescp` and `dcmqrscp`, and
//! Orthanc, each started on a free port and stopped when its [`Peer`] is dropped.
//!
//! The peers are started by the project's scripts (`scripts/peers/<peer>/start`), so
//! the tests exercise exactly what a user runs by hand: the configuration templates
//! kept in the repository, `TCP_NODELAY=1`, readiness by polling C-ECHO (not a
//! sleep), the check that the port belongs to the started PID, and the retry on a
//! port taken under our feet. A [`Peer`] keeps the facts the script printed (port,
//! PID, folder) and stops the peer's process group on drop, which also runs when the
//! test panics: nothing is left running, and the peer's temporary folder is removed.
//!
//! Every wait is bounded: a start script that does not finish in time is terminated
//! (its trap stops the peer it started), and a stop falls back to `kill -KILL`.
//!
//! ```no_run
//! use tests_suite::peers::{Peer, StorescpOptions};
//!
//! let sink = Peer::storescp(&StorescpOptions::default())?;
//! println!("storescp {} on {}", sink.ae_title(), sink.addr());
//! // ... send to sink.addr(), then look at sink.received_dir() ...
//! drop(sink); // stopped, its folder removed
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! The peers listen on every interface (DCMTK servers and Orthanc have no bind option):
//! `scripts/test-all` runs the interop tests inside a private network namespace that
//! holds only loopback.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

/// The folder of the peer scripts: `scripts/peers` of the workspace.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("peers")
}

/// Whether the peers' programs are installed (`scripts/peers/install` puts them in
/// place): the tests fail with this message rather than pass without them.
pub fn check_installed() -> anyhow::Result<()> {
    let missing: Vec<&str> = [
        "/usr/bin/storescp",
        "/usr/bin/storescu",
        "/usr/bin/echoscu",
        "/usr/bin/findscu",
        "/usr/bin/dcmqrscp",
        "/usr/sbin/Orthanc",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        bail!(
            "not installed: {} (run scripts/peers/install as root)",
            missing.join(", ")
        )
    }
}

/// How to start DCMTK `storescp`.
#[derive(Clone, Debug)]
pub struct StorescpOptions {
    /// Its AE title (any called AE title is accepted anyway).
    pub ae_title: String,
    /// Receive and answer success but write nothing.
    pub ignore: bool,
    /// Accept compressed transfer syntaxes too; by default only uncompressed ones, so a
    /// sender with compressed files must transcode.
    pub accept_all: bool,
    /// DICOM over TLS (`+tls`), when given.
    pub tls: Option<StorescpTls>,
    /// Further storescp options: `--abort-during`, `--sleep-during 5`, `--refuse`...
    pub extra_args: Vec<String>,
}

/// The TLS side of a storescp peer: its certificate, and the CA of the client
/// certificates it requires, if any.
#[derive(Clone, Debug)]
pub struct StorescpTls {
    /// Its private key (PEM).
    pub key: PathBuf,
    /// Its certificate (PEM).
    pub certificate: PathBuf,
    /// Require a client certificate signed by this CA; `None`: ask for none.
    pub client_ca: Option<PathBuf>,
    /// The key and certificate the start script's readiness C-ECHO presents (needed
    /// with `client_ca`).
    pub probe: Option<(PathBuf, PathBuf)>,
    /// DCMTK's TLS profile (`+py`, the default, `+px`, `+pz`).
    pub profile: Option<String>,
}

impl Default for StorescpOptions {
    fn default() -> Self {
        StorescpOptions {
            ae_title: "SINK".into(),
            ignore: false,
            accept_all: false,
            tls: None,
            extra_args: Vec::new(),
        }
    }
}

impl StorescpOptions {
    /// The defaults with these storescp options added (`["--sleep-during", "5"]`).
    pub fn with_args<S: AsRef<str>>(args: &[S]) -> Self {
        StorescpOptions {
            extra_args: args.iter().map(|s| s.as_ref().to_string()).collect(),
            ..StorescpOptions::default()
        }
    }
}

/// How to start DCMTK `dcmqrscp`.
#[derive(Clone, Debug)]
pub struct DcmqrscpOptions {
    /// Its AE title, the only called AE title it answers.
    pub ae_title: String,
    /// The C-MOVE destinations it knows, (AE title, address), put in its HostTable
    /// (`--move-destination AE=HOST:PORT`; IPv4 only). Any peer may move there; a move
    /// to another AE title is refused with 0xA801. C-GET needs none.
    pub move_destinations: Vec<(String, SocketAddr)>,
    /// Files and folders stored into it once it is up (decoded to uncompressed first:
    /// dcmqrscp takes nothing else).
    pub load: Vec<PathBuf>,
}

impl Default for DcmqrscpOptions {
    fn default() -> Self {
        DcmqrscpOptions {
            ae_title: "QRSCP".into(),
            move_destinations: Vec::new(),
            load: Vec::new(),
        }
    }
}

/// How to start Orthanc.
#[derive(Clone, Debug)]
pub struct OrthancOptions {
    /// Its AE title; it accepts any called AE title.
    pub ae_title: String,
    /// A second copy of a SOP instance replaces the first (else the first is kept).
    pub overwrite: bool,
    /// Act as the router under test (`scripts/peers/orthanc/router.lua`), forwarding
    /// to this destination: (AE title, address).
    pub router_destination: Option<(String, SocketAddr)>,
    /// The modalities it knows, (AE title, address), in its `DicomModalities`
    /// (`--modality AE=HOST:PORT`), each allowed every service: C-MOVE destinations (a
    /// move to another AE title fails with 0xC000), and the AE titles whose Storage
    /// Commitment requests it accepts (it sends the N-EVENT-REPORT later, on a new
    /// association to that address, proposing the Push Model with itself as SCP).
    pub modalities: Vec<(String, SocketAddr)>,
    /// Files and folders stored into it once it is up, in their own transfer syntaxes.
    pub load: Vec<PathBuf>,
}

impl Default for OrthancOptions {
    fn default() -> Self {
        OrthancOptions {
            ae_title: "ORTHANC".into(),
            overwrite: false,
            router_destination: None,
            modalities: Vec::new(),
            load: Vec::new(),
        }
    }
}

/// Which program a [`Peer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerKind {
    /// DCMTK storescp.
    Storescp,
    /// DCMTK dcmqrscp.
    Dcmqrscp,
    /// Orthanc.
    Orthanc,
}

impl PeerKind {
    fn script(self) -> &'static str {
        match self {
            PeerKind::Storescp => "storescp",
            PeerKind::Dcmqrscp => "dcmqrscp",
            PeerKind::Orthanc => "orthanc",
        }
    }
}

/// How long a start script may take, loading included, before it is terminated.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a stop script may take (Orthanc's own grace is 15 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A running peer, stopped on drop.
#[derive(Debug)]
pub struct Peer {
    kind: PeerKind,
    facts: BTreeMap<String, String>,
    port: u16,
    pid: u32,
    dir: PathBuf,
    stopped: bool,
}

impl Peer {
    /// Starts DCMTK storescp on a free port.
    pub fn storescp(options: &StorescpOptions) -> anyhow::Result<Peer> {
        let mut args = vec!["--aet".to_string(), options.ae_title.clone()];
        if options.ignore {
            args.push("--ignore".into());
        }
        if options.accept_all {
            args.push("--accept-all".into());
        }
        if let Some(tls) = &options.tls {
            let path = |p: &PathBuf| p.display().to_string();
            args.extend(["--tls".into(), path(&tls.key), path(&tls.certificate)]);
            if let Some(ca) = &tls.client_ca {
                args.extend(["--tls-client-ca".into(), path(ca)]);
            }
            if let Some((key, certificate)) = &tls.probe {
                args.extend(["--tls-probe".into(), path(key), path(certificate)]);
            }
            if let Some(profile) = &tls.profile {
                args.extend(["--tls-profile".into(), profile.clone()]);
            }
        }
        if !options.extra_args.is_empty() {
            args.push("--".into());
            args.extend(options.extra_args.iter().cloned());
        }
        Peer::start(PeerKind::Storescp, &args)
    }

    /// Starts DCMTK dcmqrscp on a free port and stores `options.load` into it.
    pub fn dcmqrscp(options: &DcmqrscpOptions) -> anyhow::Result<Peer> {
        let mut args = vec!["--aet".to_string(), options.ae_title.clone()];
        for (ae_title, addr) in &options.move_destinations {
            args.push("--move-destination".into());
            args.push(format!("{ae_title}={addr}"));
        }
        args.extend(options.load.iter().map(|p| p.display().to_string()));
        Peer::start(PeerKind::Dcmqrscp, &args)
    }

    /// Starts Orthanc on free DICOM and HTTP ports and stores `options.load` into it.
    pub fn orthanc(options: &OrthancOptions) -> anyhow::Result<Peer> {
        let mut args = vec!["--aet".to_string(), options.ae_title.clone()];
        if options.overwrite {
            args.push("--overwrite".into());
        }
        if let Some((ae_title, addr)) = &options.router_destination {
            args.push("--router".into());
            args.push(format!("{ae_title}@{}:{}", addr.ip(), addr.port()));
        }
        for (ae_title, addr) in &options.modalities {
            args.push("--modality".into());
            args.push(format!("{ae_title}={}:{}", addr.ip(), addr.port()));
        }
        args.extend(options.load.iter().map(|p| p.display().to_string()));
        Peer::start(PeerKind::Orthanc, &args)
    }

    fn start(kind: PeerKind, args: &[String]) -> anyhow::Result<Peer> {
        let script = scripts_dir().join(kind.script()).join("start");
        let output = run_bounded(&script, args, START_TIMEOUT)
            .with_context(|| format!("starting {}", kind.script()))?;
        let facts: BTreeMap<String, String> = output
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let fact = |key: &str| {
            facts
                .get(key)
                .cloned()
                .ok_or_else(|| anyhow!("{} start printed no {key}=: {output}", kind.script()))
        };
        let port = fact("PORT")?.parse().context("PORT")?;
        let pid = fact("PID")?.parse().context("PID")?;
        let dir = PathBuf::from(fact("DIR")?);
        Ok(Peer {
            kind,
            facts,
            port,
            pid,
            dir,
            stopped: false,
        })
    }

    /// Which program runs.
    pub fn kind(&self) -> PeerKind {
        self.kind
    }

    /// Its DICOM port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its DICOM address on loopback.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Its AE title.
    pub fn ae_title(&self) -> &str {
        self.facts.get("AE").map(String::as_str).unwrap_or_default()
    }

    /// Its process ID (also its process group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its folder: configuration, log, storage.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Orthanc's HTTP port.
    pub fn http_port(&self) -> Option<u16> {
        self.facts.get("HTTP_PORT").and_then(|p| p.parse().ok())
    }

    /// Where storescp writes what it receives (`<modality>.<SOP Instance UID>`).
    pub fn received_dir(&self) -> Option<PathBuf> {
        self.facts.get("RECEIVED").map(PathBuf::from)
    }

    /// How many files the start script stored into it.
    pub fn loaded(&self) -> usize {
        self.facts
            .get("LOADED")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("peer.log")).unwrap_or_default()
    }

    /// Whether its process still runs.
    pub fn is_running(&self) -> bool {
        process_alive(self.pid)
    }

    /// Stops it (TERM to its process group, KILL after a grace period) and removes its
    /// folder. Dropping the peer does the same, ignoring errors.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> anyhow::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let script = scripts_dir().join("stop");
        let result = run_bounded(&script, &[self.dir.display().to_string()], STOP_TIMEOUT);
        if process_alive(self.pid) {
            // The script did not finish the job: no peer may outlive its test.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid)])
                .status();
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        result.map(|_| ()).with_context(|| {
            format!(
                "stopping {} (PID {}) in {}",
                self.kind.script(),
                self.pid,
                self.dir.display()
            )
        })
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.stop_now();
    }
}

/// Whether `pid` runs (a zombie counts as ended).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Runs a peer script with a deadline; returns its stdout, or its stderr in the error.
fn run_bounded(script: &Path, args: &[String], timeout: Duration) -> anyhow::Result<String> {
    let mut command_line = vec![script.display().to_string()];
    command_line.extend(args.iter().cloned());
    let run = run_tool("bash", &command_line, timeout)?;
    match run.status {
        Some(s) if s.success() => Ok(run.stdout),
        Some(s) => bail!("{} failed ({s}): {}", command_line.join(" "), run.stderr),
        None => bail!(
            "{} did not finish within {timeout:?}: {}",
            command_line.join(" "),
            run.stderr
        ),
    }
}

/// What a program run by [`run_tool`] did.
#[derive(Debug)]
pub struct ToolRun {
    /// Its exit status; `None` when it was killed at the deadline.
    pub status: Option<std::process::ExitStatus>,
    /// What it wrote on stdout.
    pub stdout: String,
    /// What it wrote on stderr.
    pub stderr: String,
}

impl ToolRun {
    /// Whether it ended by itself with exit status 0.
    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// stdout and stderr together (DCMTK tools print their results on stderr).
    pub fn output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `program` with `args` and `TCP_NODELAY=1` (DCMTK's network layer reads it),
/// within `timeout`: past it, its process group gets TERM (a peer script's trap stops
/// what it started), then KILL 20 s later.
pub fn run_tool<S: AsRef<std::ffi::OsStr>>(
    program: &str,
    args: &[S],
    timeout: Duration,
) -> anyhow::Result<ToolRun> {
    let mut child = Command::new(program)
        .args(args)
        .env("TCP_NODELAY", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("running {program}"))?;
    // Read both pipes on threads: a chatty program must not block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let grace = Instant::now() + Duration::from_secs(20);
            while Instant::now() < grace && child.try_wait()?.is_none() {
                thread::sleep(Duration::from_millis(50));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    Ok(ToolRun {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
