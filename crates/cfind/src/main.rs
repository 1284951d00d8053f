//! `cfind`: query a C-FIND SCP from the command line.
//!
//! The options are [`cfind::cli::Args`]; without them the binary queries `ANY-SCP` at
//! 127.0.0.1:11112 as `DICOM-AUTO` ([`cfind::cli::builtin_defaults`]). It reads no
//! `.env`: `dicom-auto find` is the same command with the configuration's defaults.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cfind::cli::Args::parse();
    let mut out = std::io::stdout().lock();
    match cfind::cli::run(&args, cfind::cli::builtin_defaults(), &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cfind: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
