//! `simulator`: runs the router simulator until Ctrl-C (flags: [`simulator::cli::Args`]).
//!
//! ```text
//! cargo run -p simulator -- [--rules FILE] [--port N] [--bind ADDR] [--load-mode]
//! ```

use std::process::ExitCode;

use clap::Parser;

fn main() -> anyhow::Result<ExitCode> {
    simulator::cli::run(simulator::cli::Args::parse())
}
