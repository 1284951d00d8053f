//! The `simulator` command line: its flags ([`Args`]) and what it does ([`run`]),
//! in the library so that another binary (`dicom-auto simulate`) offers the same
//! flags without defining them twice.
//!
//! ```text
//! cargo run -p simulator -- [--rules FILE] [--port N] [--bind ADDR] [--load-mode]
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::{Rules, Simulator, SimulatorConfig, StoreMode, TransferSyntaxPolicy};

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
    /// Accept uncompressed transfer syntaxes only (senders must transcode).
    #[arg(long)]
    pub uncompressed_only: bool,
    /// Maximum concurrent associations.
    #[arg(long, default_value_t = 64)]
    pub max_associations: usize,
    /// Print the counters every this many seconds (0: never).
    #[arg(long, default_value_t = 10)]
    pub stats_every: u64,
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
        ..SimulatorConfig::with_rules(rules)
    };
    let handle = Simulator::start(config).context("cannot start the simulator")?;
    println!("simulator listening on {}", handle.addr());
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
        println!("  query AE {q} (C-ECHO, C-FIND)");
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
    }
}
