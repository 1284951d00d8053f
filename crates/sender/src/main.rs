//! `sender`: C-ECHO, C-STORE and load runs from the command line, in the style of
//! DCMTK's storescu, with built-in defaults (see [`sender::cli`]).

use std::process::ExitCode;

use clap::Parser;
use sender::cli::{Cli, Defaults, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command, &Defaults::default()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
