//! The `simulator` command line: its flags ([`Args`]) and what it does ([`run`]),
//! in the library so that another binary (`dicom-auto simulate`) offers the same
//! flags without defining them twice.
//!
//! ```text
//! cargo run -p simulator -- [--rules FILE] [--port N] [--bind ADDR] [--load-mode] [--spool DIR]
//!     [--tls-port N --tls-cert PEM --tls-key PEM [--tls-client-ca PEM
//!     [--tls-require-client-cert]] [--tls-versions 1.2,1.3]]
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use dimse::tls::{TlsServerOptions, TlsVersions};

use crate::{Rules, Simulator, SimulatorConfig, StoreMode, TlsListener, TransferSyntaxPolicy};

/// An embedded DICOM router standing in for Laurel Bridge Compass.
#[derive(Clone, Debug, Parser)]
#[command(version)]
pub struct Args {
    /// Rules file (TOML). Without it, the built-in rules (routes LB-HTM-GI,
    /// LB-HTM-OPH, LB-HTM-ORTHO and the query AE LB-QUERY).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// TCP port (0: any free port).
    #[arg(long, default_value_t = 11112)]
    pub port: u16,
    /// Address to listen on. Loopback unless you say otherwise.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Keep only index entries, not data sets (for long load runs).
    #[arg(long)]
    pub load_mode: bool,
    /// Write each stored instance to this folder as a DICOM file and serve C-MOVE
    /// and C-GET from there (memory stays bounded in load mode).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    /// Accept uncompressed transfer syntaxes only (senders must transcode).
    #[arg(long)]
    pub uncompressed_only: bool,
    /// Maximum concurrent associations.
    #[arg(long, default_value_t = 64)]
    pub max_associations: usize,
    /// Print the counters every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    pub stats_every: u64,
    /// Also listen for DICOM over TLS on this port (0: any free port), on the same
    /// address and with the same routes. Needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    pub tls_port: Option<u16>,
    /// The TLS listener's certificate chain (PEM, leaf first).
    #[arg(long, requires = "tls_port")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS listener's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_port")]
    pub tls_key: Option<PathBuf>,
    /// Accept client certificates signed by these CAs (PEM).
    #[arg(long, requires = "tls_port")]
    pub tls_client_ca: Option<PathBuf>,
    /// Refuse TLS clients without a certificate signed by --tls-client-ca.
    #[arg(long, requires = "tls_client_ca")]
    pub tls_require_client_cert: bool,
    /// TLS versions allowed: 1.2, 1.3 or 1.2,1.3 (the default, BCP 195).
    #[arg(long, requires = "tls_port")]
    pub tls_versions: Option<TlsVersions>,
}

impl Args {
    /// The TLS listener the flags ask for, if any.
    pub fn tls_listener(&self) -> Option<TlsListener> {
        let port = self.tls_port?;
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return None;
        };
        let mut options = TlsServerOptions::new(cert, key)
            .require_client_certificate(self.tls_require_client_cert)
            .versions(self.tls_versions.unwrap_or_default());
        if let Some(ca) = &self.tls_client_ca {
            options = options.client_ca_bundle(ca);
        }
        Some(TlsListener {
            bind: SocketAddr::new(self.bind, port),
            options,
        })
    }
}

/// Runs the simulator as the command line asked, until the process is stopped
/// (Ctrl-C): prints the address, the routes and, every `--stats-every` seconds, the
/// counters.
///
/// # Errors
/// The rules file cannot be used or the simulator cannot start (port taken...).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rules = match &args.rules {
        Some(path) => Rules::from_file(path)?,
        None => Rules::default_rules(),
    };
    let config = SimulatorConfig {
        bind: SocketAddr::new(args.bind, args.port),
        store_mode: if args.load_mode {
            StoreMode::Load
        } else {
            StoreMode::Full
        },
        transfer_syntaxes: if args.uncompressed_only {
            TransferSyntaxPolicy::UncompressedOnly
        } else {
            TransferSyntaxPolicy::All
        },
        max_associations: args.max_associations,
        tls: args.tls_listener(),
        spool_dir: args.spool.clone(),
        ..SimulatorConfig::with_rules(rules)
    };
    let handle = Simulator::start(config).context("cannot start the simulator")?;
    println!("simulator listening on {}", handle.addr());
    if let Some(tls) = handle.tls_addr() {
        println!("simulator listening for DICOM over TLS on {tls}");
    }
    for route in &handle.rules().routes {
        let mut delivery = Vec::new();
        if route.delivery.store {
            delivery.push("store".to_string());
        }
        if let Some(f) = &route.delivery.forward {
            delivery.push(format!(
                "forward to {}@{}:{}",
                f.called_ae_title, f.host, f.port
            ));
        }
        println!(
            "  route {:<12} called AE {:<16} {} validation rules, {} morph rules, delivers to {}",
            route.name,
            route.called_ae_title,
            route.validations.len(),
            route.morphs.len(),
            delivery.join(" and ")
        );
    }
    if let Some(q) = &handle.rules().settings.query_ae_title {
        println!("  query AE {q} (C-ECHO, C-FIND, C-MOVE, C-GET)");
    }
    for d in &handle.rules().move_destinations {
        println!("  move destination {} at {}:{}", d.ae_title, d.host, d.port);
    }
    let settings = &handle.rules().settings;
    println!(
        "  storage commitment reports: {:?}, after {} ms",
        settings.commitment_report,
        settings.commitment_report_delay.as_millis()
    );
    if let Some(dir) = &args.spool {
        println!("  spool {}", dir.display());
    }
    println!("Ctrl-C stops it (the store is in memory: nothing to save).");
    // Ctrl-C's default action ends the process; the OS closes the sockets.
    loop {
        if args.stats_every == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(Duration::from_secs(args.stats_every));
        let s = handle.stats();
        println!(
            "associations {} accepted / {} active / {} rejected; stores {} received, {} acknowledged, {} stored; finds {}; forward queue {}",
            s.associations.accepted,
            s.associations.active,
            s.associations.rejected_total(),
            s.stores.received,
            s.stores.acknowledged(),
            s.instances_in_store,
            s.finds.requests,
            s.forwarding.queued()
        );
        let r = &s.retrieves;
        if r.move_requests + r.get_requests > 0 {
            println!(
                "  retrieves: {} C-MOVE, {} C-GET; sub-operations {} completed, {} failed, {} warning; {} cancelled, {} unknown destinations",
                r.move_requests,
                r.get_requests,
                r.sub_operations_completed,
                r.sub_operations_failed,
                r.sub_operations_warning,
                r.cancelled,
                r.unknown_destinations
            );
        }
        let c = &s.commitments;
        if c.requests > 0 {
            println!(
                "  storage commitment: {} requests ({} refused); reports {} same / {} new association, {} unanswered, {} refused, {} undeliverable; instances {} committed, {} failed; faults: {} never reported, {} failed, {} unknown transaction",
                c.requests,
                c.refused,
                c.reports_same_association,
                c.reports_new_association,
                c.reports_unanswered,
                c.reports_refused,
                c.undeliverable_reports,
                c.instances_committed,
                c.instances_failed,
                c.never_reported_by_fault,
                c.failed_by_fault,
                c.unknown_transaction_by_fault
            );
            if let Some(why) = &c.last_undeliverable {
                println!("    last undeliverable report: {why}");
            }
        }
        if handle.tls_addr().is_some() || s.tls.clients_on_plain_port > 0 {
            println!(
                "  TLS: {} associations, {} failed handshakes {:?}, {} TLS clients on the plain port",
                s.tls.associations,
                s.tls.handshake_failures_total(),
                s.tls.handshake_failures,
                s.tls.clients_on_plain_port
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_flags_are_consistent_and_default_to_the_documented_port() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["simulator"]).unwrap();
        assert_eq!(args.port, 11112);
        assert_eq!(args.bind, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let args = Args::try_parse_from([
            "simulator",
            "--port",
            "0",
            "--load-mode",
            "--stats-every",
            "0",
        ])
        .unwrap();
        assert_eq!((args.port, args.load_mode, args.stats_every), (0, true, 0));
        assert!(args.tls_listener().is_none());
    }

    #[test]
    fn the_tls_flags_make_a_tls_listener_and_need_each_other() {
        let args = Args::try_parse_from([
            "simulator",
            "--tls-port",
            "2762",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-client-ca",
            "ca.pem",
            "--tls-require-client-cert",
            "--tls-versions",
            "1.3",
        ])
        .unwrap();
        let tls = args.tls_listener().unwrap();
        assert_eq!(tls.bind.port(), 2762);
        assert_eq!(
            tls.options,
            TlsServerOptions::new("c.pem", "k.pem")
                .client_ca_bundle("ca.pem")
                .require_client_certificate(true)
                .versions(TlsVersions::TLS13_ONLY)
        );
        assert!(Args::try_parse_from(["simulator", "--tls-port", "2762"]).is_err());
        assert!(Args::try_parse_from(["simulator", "--tls-cert", "c.pem"]).is_err());
        assert!(
            Args::try_parse_from(["simulator", "--tls-versions", "1.1", "--tls-port", "1"])
                .is_err()
        );
    }

    #[test]
    fn a_bad_key_file_names_the_file_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, "not a certificate\n").unwrap();
        let config = SimulatorConfig {
            tls: Some(TlsListener::on_free_port(TlsServerOptions::new(
                &cert,
                dir.path().join("missing.key"),
            ))),
            ..SimulatorConfig::default()
        };
        let error = Simulator::start(config).unwrap_err().to_string();
        assert!(
            error.contains("cert.pem") && error.contains("--tls-cert"),
            "{error}"
        );
        let pki = test_pki::TestPki::new().unwrap();
        let config = SimulatorConfig {
            tls: Some(TlsListener::on_free_port(TlsServerOptions::new(
                pki.server().certificate,
                dir.path().join("missing.key"),
            ))),
            ..SimulatorConfig::default()
        };
        let error = Simulator::start(config).unwrap_err().to_string();
        assert!(
            error.contains("missing.key") && error.contains("--tls-key"),
            "{error}"
        );
    }
}
