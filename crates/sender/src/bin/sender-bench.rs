//! `sender-bench`: throughput, bandwidth, schedule accuracy, CPU and memory of the
//! sender, side by side with DCMTK's storescu, against DCMTK's `storescp --ignore`
//! and (with `--features bench-simulator`) the simulator in load mode.
//!
//! ```text
//! cargo run --release -p sender --bin sender-bench
//! cargo run --release -p sender --features bench-simulator --bin sender-bench
//! cargo run --release -p sender --features bench-tls --bin sender-bench -- --tls-only
//! ```
//!
//! With `bench-tls`, a TLS section compares, in one run, our small-image throughput
//! over TLS with our plaintext throughput and with DCMTK's `storescu +tla` as parallel
//! processes, all into `storescp --fork --ignore` (`+tls` for the TLS runs, with a
//! throwaway CA made at start), and measures large-image MB/s over TLS.
//!
//! Prints figures; asserts nothing (speed goals are checked by reading them).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use loader::synth::{ImageGeometry, InstanceBuilder, Modality};
use sender::{AssociationStrategy, UidStrategy};
use sender::{
    DicomSender, LoadPlan, LoadReport, NoObserver, PreparedInstance, StopAfter, run_load,
};

#[derive(Parser, Debug)]
#[command(
    name = "sender-bench",
    about = "Benchmarks of the sender against DCMTK (and the simulator)"
)]
struct Args {
    /// Seconds of each closed-loop throughput run.
    #[arg(long, default_value_t = 10.0)]
    closed_seconds: f64,
    /// Seconds of the open-loop run.
    #[arg(long, default_value_t = 30.0)]
    open_seconds: f64,
    /// Rate of the open-loop run, images per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Associations (and storescu processes) in the throughput runs.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Images each storescu process sends.
    #[arg(long, default_value_t = 1500)]
    storescu_images: usize,
    /// Skip the runs that need DCMTK (storescp, storescu): with `--features
    /// bench-simulator`, the simulator's closed-loop runs and an open-loop run against
    /// it remain.
    #[arg(long)]
    without_dcmtk: bool,
    /// Only the TLS section (needs the `bench-tls` feature).
    #[arg(long)]
    tls_only: bool,
    /// Only the Nagle-on section.
    #[arg(long)]
    nagle_only: bool,
    /// Small images sent in the Nagle-on section (split over the associations).
    #[arg(long, default_value_t = 1000)]
    nagle_images: usize,
    /// Only the large-set section: whole `sender load` processes (the binary beside
    /// this one: `cargo build --release -p sender --bins`) on 201 MB, 1 GB and a sparse
    /// set, beside storescu.
    #[arg(long)]
    large_only: bool,
    /// Runs of each large-set configuration; the best is kept.
    #[arg(long, default_value_t = 3)]
    large_runs: usize,
    /// Size of the sparse set, in files of 10.5 MB (1,000: about 10 GB).
    #[arg(long, default_value_t = 1000)]
    sparse_files: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("sender-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = bench(&args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn bench(args: &Args, dir: &Path) -> Result<()> {
    println!(
        "sender-bench: {} cores",
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    if args.large_only {
        return large::bench(args, dir);
    }
    let small = write_files(dir, "small", 32, ImageGeometry::mono16(160, 160, 12))?;
    let large = write_files(dir, "large", 2, ImageGeometry::mono16(2240, 2240, 12))?;
    let small_instances = prepare(&small)?;
    let large_instances = prepare(&large)?;
    println!(
        "data: {} small instances of {} bytes, {} large of {} bytes; VmHWM after loading {} MB",
        small_instances.len(),
        small_instances[0].encoded_len(),
        large_instances.len(),
        large_instances[0].encoded_len(),
        vm_hwm_mb()
    );
    let closed = Duration::from_secs_f64(args.closed_seconds);
    let n = args.concurrency;

    #[cfg(feature = "bench-tls")]
    if !args.without_dcmtk {
        tls::bench(args, &small, &small_instances, &large_instances)?;
    }
    if args.tls_only {
        return Ok(());
    }
    if !args.without_dcmtk {
        nagle(args, &small, &small_instances)?;
    }
    if args.nagle_only {
        return Ok(());
    }

    if !args.without_dcmtk {
        // 1. ~50 KB instances, closed loop, against storescp --fork --ignore.
        println!(
            "\n== ~50 KB instances, closed loop, {n} associations, DCMTK storescp --fork --ignore =="
        );
        let scp = StoreScp::start(&["--fork", "--ignore"])?;
        let sender = sender_for(&scp.address)?;
        let persistent = closed_loop(
            &sender,
            &small_instances,
            n,
            closed,
            AssociationStrategy::Persistent,
        )?;
        print_run("sender, persistent pool", &persistent);
        let per_image = closed_loop(
            &sender,
            &small_instances,
            n,
            closed,
            AssociationStrategy::PerImage,
        )?;
        print_run(
            "sender, one association per image (old pattern)",
            &per_image,
        );
        let storescu_rate = storescu_parallel(&scp.address, &small, n, args.storescu_images)?;
        let ours = persistent.metrics.images_per_s.unwrap_or(0.0);
        println!(
            "ratios: persistent / storescu x{n} = {:.2}; persistent / per-image = {:.2}",
            ours / storescu_rate,
            ours / per_image.metrics.images_per_s.unwrap_or(f64::NAN)
        );
        drop(scp);
    }

    #[cfg(feature = "bench-simulator")]
    {
        println!(
            "\n== ~50 KB instances, closed loop, {n} associations, simulator in load mode (same process) =="
        );
        let sim = simulator::Simulator::start(simulator::SimulatorConfig {
            store_mode: simulator::StoreMode::Load,
            ..simulator::SimulatorConfig::default()
        })?;
        let sim_sender = DicomSender::builder(sim.addr().to_string())
            .called_ae_title("LB-HTM-OPH")
            .build()?;
        for (label, strategy) in [
            (
                "sender -> simulator, persistent pool",
                AssociationStrategy::Persistent,
            ),
            (
                "sender -> simulator, one association per image",
                AssociationStrategy::PerImage,
            ),
        ] {
            let report = closed_loop(&sim_sender, &small_instances, n, closed, strategy)?;
            print_run(label, &report);
        }
        if args.without_dcmtk {
            println!(
                "\n== open loop {} images/s for {} s, {n} persistent associations, simulator in load mode ==",
                args.rate, args.open_seconds
            );
            open_loop(&sim_sender, &small_instances, args)?;
        }
        let _ = sim.shutdown();
    }

    if !args.without_dcmtk {
        // 2. ~10 MB instances vs loopback TCP bandwidth.
        println!("\n== ~10 MB instances, 1 association, storescp --ignore -pdu 131072 ==");
        let tcp = loopback_bandwidth(Duration::from_secs(3))?;
        println!("loopback TCP (one writer, one reader, 64 KiB writes): {tcp:.0} MB/s");
        let scp = StoreScp::start(&["--ignore", "-pdu", "131072"])?;
        let sender = sender_for(&scp.address)?;
        let big = run_load(
            &sender,
            &LoadPlan::new(large_instances.clone()).stop_after(StopAfter::Count(60)),
            &NoObserver,
        )?;
        print_run("sender, 10 MB instances", &big);
        let mbs = big.metrics.mb_per_s.unwrap_or(0.0);
        println!("sender / loopback TCP = {:.0} %", 100.0 * mbs / tcp);
        drop(scp);

        // 3. Open loop at a fixed rate: schedule accuracy and generator CPU.
        println!(
            "\n== open loop {} images/s for {} s, {n} persistent associations, storescp --fork --ignore ==",
            args.rate, args.open_seconds
        );
        let scp = StoreScp::start(&["--fork", "--ignore"])?;
        let sender = sender_for(&scp.address)?;
        open_loop(&sender, &small_instances, args)?;
        drop(scp);
    }
    println!(
        "\npeak memory (VmHWM) of the bench process: {} MB",
        vm_hwm_mb()
    );
    // Last: its in-memory floor holds the 201 MB set, which would hide the peak above.
    if !args.without_dcmtk {
        large::bench(args, dir)?;
    }
    Ok(())
}

/// Against a sink that leaves Nagle's algorithm on (storescp as Debian ships it, no
/// TCP_NODELAY): each response waits for the client's delayed ACK unless the client
/// acknowledges at once. Ours with quick ACK on and off, and storescu as shipped.
fn nagle(args: &Args, small: &[PathBuf], small_instances: &[Arc<PreparedInstance>]) -> Result<()> {
    let n = args.concurrency;
    let images = args.nagle_images;
    println!(
        "\n== Nagle on at the sink: {images} ~50 KB instances, {n} associations, storescp --fork --ignore without TCP_NODELAY =="
    );
    let scp = StoreScp::start_with_nagle(&["--fork", "--ignore"])?;
    let mut rates = Vec::new();
    for quick_ack in [true, false] {
        let sender = DicomSender::builder(&scp.address)
            .called_ae_title("SINK")
            .quick_ack(quick_ack)
            .build()?;
        let plan = LoadPlan::new(small_instances.to_vec())
            .concurrency(n)
            .stop_after(StopAfter::Count(images as u64))
            .association(AssociationStrategy::Persistent);
        let started = Instant::now();
        let report = run_load(&sender, &plan, &NoObserver)?;
        let seconds = started.elapsed().as_secs_f64();
        print_run(
            &format!("sender, quick ACK {}", if quick_ack { "on" } else { "off" }),
            &report,
        );
        println!("  {images} images in {seconds:.2} s (associations included)");
        rates.push(images as f64 / seconds);
    }
    let storescu = storescu_parallel_as_shipped(&scp.address, small, n, images.div_ceil(n))?;
    println!(
        "ratios: quick ACK on / storescu x{n} as shipped = {:.1} (goal >= 10); quick ACK on / off = {:.1}",
        rates[0] / storescu,
        rates[0] / rates[1]
    );
    Ok(())
}

/// An open-loop run at `--rate` for `--open-seconds`: schedule accuracy and the
/// generator's CPU.
fn open_loop(sender: &DicomSender, instances: &[Arc<PreparedInstance>], args: &Args) -> Result<()> {
    let n = args.concurrency;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let open = run_load(
        sender,
        &LoadPlan::new(instances.to_vec())
            .concurrency(n)
            .rate(Some(args.rate))
            .stop_after(StopAfter::Duration(Duration::from_secs_f64(
                args.open_seconds,
            ))),
        &NoObserver,
    )?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    print_run("sender, open loop", &open);
    let achieved = open.achieved_send_rate.unwrap_or(0.0);
    println!(
        "achieved send rate {achieved:.2}/s vs target {:.0}/s ({:+.3} %); generator CPU {:.3} s over {wall:.1} s = {:.3} cores",
        args.rate,
        100.0 * (achieved - args.rate) / args.rate,
        cpu,
        cpu / wall
    );
    Ok(())
}

fn closed_loop(
    sender: &DicomSender,
    instances: &[Arc<PreparedInstance>],
    workers: usize,
    duration: Duration,
    strategy: AssociationStrategy,
) -> Result<LoadReport> {
    let plan = LoadPlan::new(instances.to_vec())
        .concurrency(workers)
        .stop_after(StopAfter::Duration(duration))
        .association(strategy);
    Ok(run_load(sender, &plan, &NoObserver)?)
}

fn write_files(
    dir: &Path,
    prefix: &str,
    n: usize,
    geometry: ImageGeometry,
) -> Result<Vec<PathBuf>> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("{prefix}{i:03}.dcm"));
            InstanceBuilder::new(Modality::Ct)
                .geometry(geometry)
                .seed(i as u64 + 1)
                .write_to(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        })
        .collect()
}

fn prepare(paths: &[PathBuf]) -> Result<Vec<Arc<PreparedInstance>>> {
    paths
        .iter()
        .map(|p| Ok(Arc::new(PreparedInstance::from_file(p, UidStrategy::AsIs)?)))
        .collect()
}

fn sender_for(address: &str) -> Result<DicomSender> {
    Ok(DicomSender::builder(address)
        .called_ae_title("SINK")
        .build()?)
}

fn print_run(label: &str, report: &LoadReport) {
    let s = report.summary();
    let l = s.latency_ms;
    println!(
        "{label}: {} attempted, {} ok, {} failed, {} unknown; {:.0} images/s, {:.1} MB/s; latency p50 {:.3} ms p95 {:.3} ms p99 {:.3} ms max {:.3} ms; {} associations opened",
        s.attempted,
        s.succeeded + s.warnings,
        s.failed,
        s.unknown,
        s.images_per_s.unwrap_or(0.0),
        s.mb_per_s.unwrap_or(0.0),
        l.map_or(0.0, |l| l.p50_ms),
        l.map_or(0.0, |l| l.p95_ms),
        l.map_or(0.0, |l| l.p99_ms),
        l.map_or(0.0, |l| l.max_ms),
        report.associations.opened,
    );
}

/// DCMTK's storescu as `processes` parallel processes, each sending `per_process`
/// images (the files cycled) on one association. Returns images per second.
fn storescu_parallel(
    address: &str,
    files: &[PathBuf],
    processes: usize,
    per_process: usize,
) -> Result<f64> {
    storescu_parallel_with(address, files, processes, per_process, &[])
}

/// [`storescu_parallel`] with further storescu options (`+tla +cf CA` for TLS).
fn storescu_parallel_with(
    address: &str,
    files: &[PathBuf],
    processes: usize,
    per_process: usize,
    options: &[&str],
) -> Result<f64> {
    storescu_processes(address, files, processes, per_process, options, true)
}

/// storescu as Debian ships it: Nagle on (no TCP_NODELAY).
fn storescu_parallel_as_shipped(
    address: &str,
    files: &[PathBuf],
    processes: usize,
    per_process: usize,
) -> Result<f64> {
    storescu_processes(address, files, processes, per_process, &[], false)
}

fn storescu_processes(
    address: &str,
    files: &[PathBuf],
    processes: usize,
    per_process: usize,
    options: &[&str],
    nodelay: bool,
) -> Result<f64> {
    let (host, port) = address.rsplit_once(':').context("address host:port")?;
    let list: Vec<&PathBuf> = files.iter().cycle().take(per_process).collect();
    let started = Instant::now();
    let children: Vec<Child> = (0..processes)
        .map(|_| {
            let mut command = Command::new("/usr/bin/storescu");
            if nodelay {
                command.env("TCP_NODELAY", "1");
            } else {
                command.env_remove("TCP_NODELAY");
            }
            command
                .args(options)
                .args(["-aec", "SINK", host, port])
                .args(&list)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting /usr/bin/storescu (apt-get install dcmtk)")
        })
        .collect::<Result<_>>()?;
    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let images = processes * per_process;
    let rate = images as f64 / seconds;
    let tls = match (options.is_empty(), nodelay) {
        (false, _) => " (TLS)",
        (true, false) => " (as shipped: Nagle on)",
        (true, true) => "",
    };
    println!(
        "DCMTK storescu{tls} x{processes} processes: {images} images in {seconds:.2} s = {rate:.0} images/s ({failed} processes failed)"
    );
    if failed > 0 {
        bail!("{failed} storescu processes failed");
    }
    Ok(rate)
}

/// MB/s (10^6 bytes) through a plain loopback TCP connection: one thread writing
/// 64 KiB buffers, one reading and discarding.
fn loopback_bandwidth(duration: Duration) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = thread::spawn(move || -> std::io::Result<u64> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let buf = vec![0x5Au8; 64 * 1024];
    let started = Instant::now();
    while started.elapsed() < duration {
        stream.write_all(&buf)?;
    }
    drop(stream);
    let total = reader.join().expect("reader thread")?;
    Ok(total as f64 / 1e6 / started.elapsed().as_secs_f64())
}

/// User plus system CPU time of this process, in seconds (/proc/self/stat).
fn cpu_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start after ") ".
    let rest = stat.rsplit_once(") ").context("/proc/self/stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Peak resident memory of this process in MB (VmHWM).
fn vm_hwm_mb() -> u64 {
    sender::cli::peak_rss_bytes().map_or(0, |bytes| bytes >> 20)
}

/// DCMTK storescp on a free loopback port, killed on drop.
struct StoreScp {
    address: String,
    child: Child,
}

impl StoreScp {
    fn start(args: &[&str]) -> Result<Self> {
        StoreScp::start_checked(args, sender_for)
    }

    /// storescp as Debian ships it: Nagle's algorithm on (no TCP_NODELAY).
    fn start_with_nagle(args: &[&str]) -> Result<Self> {
        StoreScp::launch(args, false, sender_for)
    }

    /// Starts storescp with `args` and waits until a sender made by `sender_for`
    /// (plaintext or TLS, as storescp speaks) gets a C-ECHO answered.
    fn start_checked(
        args: &[&str],
        sender_for: impl Fn(&str) -> Result<DicomSender>,
    ) -> Result<Self> {
        StoreScp::launch(args, true, sender_for)
    }

    fn launch(
        args: &[&str],
        nodelay: bool,
        sender_for: impl Fn(&str) -> Result<DicomSender>,
    ) -> Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new("/usr/bin/storescp");
        if nodelay {
            command.env("TCP_NODELAY", "1");
        } else {
            command.env_remove("TCP_NODELAY");
        }
        let child = command
            .args(["-aet", "SINK"])
            .args(args)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting /usr/bin/storescp (apt-get install dcmtk)")?;
        let scp = StoreScp {
            address: format!("127.0.0.1:{port}"),
            child,
        };
        let sender = sender_for(&scp.address)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while sender.ping().is_err() {
            if Instant::now() > deadline {
                bail!("storescp did not answer on {}", scp.address);
            }
            thread::sleep(Duration::from_millis(50));
        }
        Ok(scp)
    }
}

impl StoreScp {
    /// CPU time of storescp's forked children that it has reaped so far (Linux
    /// `/proc/<pid>/stat` cutime + cstime). A C-ECHO first makes it fork once more
    /// and reap the children that ended before; the echo's own costs about a
    /// millisecond.
    fn children_cpu(&self) -> Result<Duration> {
        let _ = sender_for(&self.address)?.ping();
        thread::sleep(Duration::from_millis(50));
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the command's closing parenthesis; cutime and cstime are the
        // 16th and 17th of the whole line.
        let rest = stat.rsplit_once(')').context("a /proc stat line")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[13].parse::<u64>()? + fields[14].parse::<u64>()?;
        // /proc counts in USER_HZ, 100 per second on Linux.
        Ok(Duration::from_millis(ticks * 10))
    }
}

impl Drop for StoreScp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The TLS section: the same small-image closed loop in plaintext and over TLS, DCMTK's
/// storescu over TLS beside it, and large images over TLS.
#[cfg(feature = "bench-tls")]
mod tls {
    use super::*;
    use dimse::Security;
    use dimse::tls::TlsClientOptions;

    fn tls_sender(address: &str, pki: &test_pki::TestPki) -> Result<DicomSender> {
        let tls = TlsClientOptions::new().ca_bundle(pki.ca()).build()?;
        Ok(DicomSender::builder(address)
            .called_ae_title("SINK")
            .security(Security {
                tls: Some(tls),
                identity: None,
            })
            .build()?)
    }

    pub(super) fn bench(
        args: &Args,
        small: &[PathBuf],
        small_instances: &[Arc<PreparedInstance>],
        large_instances: &[Arc<PreparedInstance>],
    ) -> Result<()> {
        let n = args.concurrency;
        let closed = Duration::from_secs_f64(args.closed_seconds);
        let pki = test_pki::TestPki::new()?;
        let server = pki.server();
        let (key, certificate) = (
            server.key.display().to_string(),
            server.certificate.display().to_string(),
        );
        let ca = pki.ca().display().to_string();
        let tls_args = |more: &[&'static str]| -> Vec<String> {
            let mut all = vec![
                "+tls".to_string(),
                key.clone(),
                certificate.clone(),
                "-ic".into(),
            ];
            all.extend(more.iter().map(|s| s.to_string()));
            all
        };
        println!(
            "\n== TLS: ~50 KB instances, closed loop, {n} associations, storescp --fork --ignore, plaintext then +tls (DCMTK's default BCP 195 profile) =="
        );
        let plain_scp = StoreScp::start(&["--fork", "--ignore"])?;
        let plain = closed_loop(
            &sender_for(&plain_scp.address)?,
            small_instances,
            n,
            closed,
            AssociationStrategy::Persistent,
        )?;
        print_run("sender, plaintext, persistent pool", &plain);
        drop(plain_scp);

        let fork_args = tls_args(&["--fork", "--ignore"]);
        let fork_refs: Vec<&str> = fork_args.iter().map(String::as_str).collect();
        let scp = StoreScp::start_checked(&fork_refs, |a| tls_sender(a, &pki))?;
        let secured = closed_loop(
            &tls_sender(&scp.address, &pki)?,
            small_instances,
            n,
            closed,
            AssociationStrategy::Persistent,
        )?;
        print_run("sender, TLS, persistent pool", &secured);
        for count in &secured.associations.tls_sessions {
            println!(
                "  negotiated: {} on {} associations",
                count.session, count.associations
            );
        }
        let storescu = storescu_parallel_with(
            &scp.address,
            small,
            n,
            args.storescu_images,
            &["+tla", "+cf", &ca],
        )?;
        drop(scp);
        let ours_tls = secured.metrics.images_per_s.unwrap_or(0.0);
        let ours_plain = plain.metrics.images_per_s.unwrap_or(f64::NAN);
        println!(
            "ratios: TLS / plaintext = {:.0} % (goal >= 70 %); TLS / storescu +tls x{n} = {:.2} (goal >= 1.5)",
            100.0 * ours_tls / ours_plain,
            ours_tls / storescu
        );

        println!(
            "\n== TLS: ~10 MB instances, 1 association, storescp +tls --ignore -pdu 131072 =="
        );
        let big_args = tls_args(&["--ignore", "-pdu", "131072"]);
        let big_refs: Vec<&str> = big_args.iter().map(String::as_str).collect();
        let scp = StoreScp::start_checked(&big_refs, |a| tls_sender(a, &pki))?;
        let big = run_load(
            &tls_sender(&scp.address, &pki)?,
            &LoadPlan::new(large_instances.to_vec()).stop_after(StopAfter::Count(60)),
            &NoObserver,
        )?;
        print_run("sender, TLS, 10 MB instances", &big);
        drop(scp);
        Ok(())
    }
}

/// Large sets, whole processes: `sender load` (the binary beside this one) and DCMTK
/// storescu into `storescp --fork --ignore`, wall time from spawn to exit, best of
/// `--large-runs`; our peak RSS and time to the first send from the JSON it writes.
mod large {
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant, SystemTime};

    use anyhow::{Context as _, Result, bail};
    use loader::synth::ImageGeometry;

    use sender::{LoadPlan, NoObserver, StopAfter, run_load};

    use super::{Args, StoreScp, prepare, sender_for, write_files};

    /// 2290 x 2290 x 16 bits: 10.5 MB of pixel data, as in the issue's measurements.
    const SIDE: u16 = 2290;

    /// One whole `sender load` process.
    #[derive(Debug, Clone, Copy)]
    struct OurRun {
        wall: Duration,
        attempted: u64,
        succeeded: u64,
        peak_rss_mb: f64,
        first_send_ms: f64,
        lagged_sends: u64,
    }

    impl OurRun {
        /// The faster of a best so far and another run.
        fn faster(best: Option<OurRun>, run: OurRun) -> OurRun {
            match best {
                Some(b) if b.wall <= run.wall => b,
                _ => run,
            }
        }
    }

    pub(super) fn bench(args: &Args, dir: &Path) -> Result<()> {
        let sender = std::env::current_exe()?
            .parent()
            .context("the bench's folder")?
            .join("sender");
        if !sender.is_file() {
            bail!(
                "{} not found: build it beside the bench (cargo build --release -p sender --bins)",
                sender.display()
            );
        }
        let set_201 = dir.join("set-201mb");
        std::fs::create_dir_all(&set_201)?;
        let geometry = ImageGeometry::mono16(SIDE, SIDE, 12);
        let files_201 = write_files(&set_201, "big", 20, geometry)?;
        let set_1g = dir.join("set-1gb");
        std::fs::create_dir_all(&set_1g)?;
        for copy in 0..5 {
            for file in &files_201 {
                let name = file.file_name().context("a file name")?.to_string_lossy();
                std::fs::copy(file, set_1g.join(format!("c{copy}-{name}")))?;
            }
        }
        let sparse = dir.join("set-sparse");
        std::fs::create_dir_all(&sparse)?;
        sparse_copies(&files_201[0], &sparse, args.sparse_files)?;
        let total_bytes = |folder: &Path| -> Result<u64> {
            let mut sum = 0;
            for entry in std::fs::read_dir(folder)? {
                sum += entry?.metadata()?.len();
            }
            Ok(sum)
        };
        let scp = StoreScp::start(&["--fork", "--ignore"])?;
        let (host, port) = scp.address.rsplit_once(':').context("host:port")?;
        println!(
            "\n== large sets, whole processes, storescp --fork --ignore (TCP_NODELAY=1), best of {} ==",
            args.large_runs
        );
        for (label, folder, with_dcmtk) in [
            ("201 MB: 20 x 10.5 MB", &set_201, true),
            ("1 GB: 100 x 10.5 MB", &set_1g, true),
            ("sparse set", &sparse, false),
        ] {
            let files = std::fs::read_dir(folder)?.count();
            let bytes = total_bytes(folder)?;
            println!("-- {label}: {files} files, {:.2} GB", bytes as f64 / 1e9);
            let mut best_ours: Option<OurRun> = None;
            for concurrency in [1, 2] {
                let mut best: Option<OurRun> = None;
                let sink_cpu_before = scp.children_cpu()?;
                for _ in 0..args.large_runs {
                    let run = ours(&sender, host, port, folder, concurrency, dir)?;
                    if run.attempted != files as u64 || run.succeeded != run.attempted {
                        bail!(
                            "sender -c {concurrency}: {} of {files} attempted, {} succeeded",
                            run.attempted,
                            run.succeeded
                        );
                    }
                    best = Some(OurRun::faster(best, run));
                }
                let best = best.context("at least one run")?;
                let sink_cpu = scp.children_cpu()?.saturating_sub(sink_cpu_before);
                println!(
                    "sender load -c {concurrency}: {:.3} s ({:.0} MB/s), peak RSS {:.0} MB, first send after {:.1} ms, {} sends waited for the disk; every send accounted for ({} of {}); storescp's receive: {:.0} ms of CPU per run",
                    best.wall.as_secs_f64(),
                    bytes as f64 / 1e6 / best.wall.as_secs_f64(),
                    best.peak_rss_mb,
                    best.first_send_ms,
                    best.lagged_sends,
                    best.succeeded,
                    best.attempted,
                    sink_cpu.as_secs_f64() * 1e3 / args.large_runs as f64
                );
                best_ours = Some(OurRun::faster(best_ours, best));
            }
            let ours = best_ours.context("a run")?;
            // What no sender can beat: this set already encoded in memory, sent from this
            // process (no spawn, no file read), so the time is the sink's receive alone.
            // The 1 GB set is five copies of the 201 MB set's files.
            let floor = if folder == &set_201 || folder == &set_1g {
                Some(in_memory_floor(args, &scp.address, &files_201, files)?)
            } else {
                None
            };
            if with_dcmtk {
                let mut best_dcmtk = f64::INFINITY;
                for processes in [1, 2] {
                    let mut best = f64::INFINITY;
                    let sink_cpu_before = scp.children_cpu()?;
                    for _ in 0..args.large_runs {
                        best = best.min(storescu(host, port, folder, processes)?);
                    }
                    let sink_cpu = scp.children_cpu()?.saturating_sub(sink_cpu_before);
                    println!(
                        "DCMTK storescu x{processes}: {best:.3} s ({:.0} MB/s); storescp's receive: {:.0} ms of CPU per run",
                        bytes as f64 / 1e6 / best,
                        sink_cpu.as_secs_f64() * 1e3 / args.large_runs as f64
                    );
                    best_dcmtk = best_dcmtk.min(best);
                }
                println!(
                    "ratio: DCMTK best / ours best = {:.2} (goal >= 1.5); our peak RSS {:.0} MB",
                    best_dcmtk / ours.wall.as_secs_f64(),
                    ours.peak_rss_mb
                );
                if let Some(floor) = floor {
                    println!(
                        "ceiling: DCMTK best / in-memory floor = {:.2} (the ratio of a sender that costs nothing but its writes: no process start, no file read); ours / floor = {:.2}",
                        best_dcmtk / floor,
                        ours.wall.as_secs_f64() / floor
                    );
                }
            } else {
                println!(
                    "our peak RSS {:.0} MB for {:.1} GB (goal <= budget 512 MiB + 100 MB)",
                    ours.peak_rss_mb,
                    bytes as f64 / 1e9
                );
            }
        }
        Ok(())
    }

    /// The best of `--large-runs` runs of `sends` sends of `files` (cycled), read into
    /// memory first, over 1 and 2 associations from this process, in seconds from the
    /// first association's request to the last release.
    fn in_memory_floor(args: &Args, address: &str, files: &[PathBuf], sends: usize) -> Result<f64> {
        let instances = prepare(files)?;
        let sender = sender_for(address)?;
        let bytes: usize = (0..sends)
            .map(|i| instances[i % instances.len()].encoded_len())
            .sum();
        let mut floor = f64::INFINITY;
        for concurrency in [1, 2] {
            let plan = LoadPlan::new(instances.clone())
                .concurrency(concurrency)
                .stop_after(StopAfter::Count(sends as u64));
            let mut best = f64::INFINITY;
            for _ in 0..args.large_runs {
                let started = Instant::now();
                let report = run_load(&sender, &plan, &NoObserver)?;
                let wall = started.elapsed().as_secs_f64();
                let summary = report.summary();
                if summary.succeeded != sends as u64 {
                    bail!(
                        "in-memory floor, {concurrency} associations: {} of {sends} succeeded",
                        summary.succeeded,
                    );
                }
                best = best.min(wall);
            }
            println!(
                "floor, from memory in this process, {concurrency} association(s): {best:.3} s ({:.0} MB/s)",
                bytes as f64 / 1e6 / best
            );
            floor = floor.min(best);
        }
        Ok(floor)
    }

    /// `count` files as big as `model`, holding its bytes up to the pixel data and
    /// holes after (sparse: no disk space, and reads cost no disk time).
    fn sparse_copies(model: &Path, folder: &Path, count: usize) -> Result<()> {
        let bytes = std::fs::read(model)?;
        let pixel_bytes = (SIDE as usize) * (SIDE as usize) * 2;
        let head = &bytes[..bytes.len() - pixel_bytes];
        for i in 0..count {
            let path = folder.join(format!("sparse{i:05}.dcm"));
            let file = std::fs::File::create(&path)?;
            std::io::Write::write_all(&mut &file, head)?;
            file.set_len(bytes.len() as u64)?;
        }
        Ok(())
    }

    fn ours(
        sender: &Path,
        host: &str,
        port: &str,
        folder: &Path,
        concurrency: usize,
        dir: &Path,
    ) -> Result<OurRun> {
        let json = dir.join("large-run.json");
        let spawned = SystemTime::now();
        let started = Instant::now();
        let status = Command::new(sender)
            .args(["load", host, port])
            .arg(folder)
            .args(["--aec", "SINK", "--quiet", "-c", &concurrency.to_string()])
            .arg("--json")
            .arg(&json)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running sender")?;
        let wall = started.elapsed();
        if !status.success() {
            bail!("sender load exited with {status}");
        }
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
        let number = |key: &str| {
            report[key]
                .as_u64()
                .with_context(|| format!("{key} in the JSON"))
        };
        let first_sent_us = report["studies"]
            .as_array()
            .context("studies")?
            .iter()
            .filter_map(|s| s["first_sent_unix_us"].as_i64())
            .min()
            .context("a first send")?;
        let spawned_us = spawned.duration_since(SystemTime::UNIX_EPOCH)?.as_micros() as i64;
        Ok(OurRun {
            wall,
            attempted: number("attempted")?,
            succeeded: number("succeeded")?,
            peak_rss_mb: number("peak_rss_bytes")? as f64 / 1e6,
            first_send_ms: (first_sent_us - spawned_us) as f64 / 1e3,
            lagged_sends: number("generator_lagged_sends")?,
        })
    }

    /// DCMTK storescu as `processes` processes sharing the folder's files; wall time
    /// from the first spawn to the last exit, in seconds.
    fn storescu(host: &str, port: &str, folder: &Path, processes: usize) -> Result<f64> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        files.sort();
        let per = files.len().div_ceil(processes);
        let started = Instant::now();
        let children = files
            .chunks(per)
            .map(|chunk| {
                Command::new("/usr/bin/storescu")
                    .env("TCP_NODELAY", "1")
                    .args(["-aec", "SINK", host, port])
                    .args(chunk)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .context("starting /usr/bin/storescu (apt-get install dcmtk)")
            })
            .collect::<Result<Vec<_>>>()?;
        for mut child in children {
            if !child.wait()?.success() {
                bail!("storescu failed");
            }
        }
        Ok(started.elapsed().as_secs_f64())
    }
}
