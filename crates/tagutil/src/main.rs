//! `tagutil`: edit DICOM attributes across a folder in place, or de-identify a folder into
//! another one. See `tagutil --help`; the flags are [`tagutil::cli`]'s.

use std::process::ExitCode;

use clap::Parser;
use tagutil::cli::{Command, UpdateArgs, exit_code, run_anonymize, run_update};

#[derive(Debug, Parser)]
#[command(
    name = "tagutil",
    version,
    about = "Edit DICOM attributes across a folder in place, or de-identify a folder (PS3.15 Basic Profile)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:\n  \
        tagutil --verbose --dry-run --set StudyDescription='LOAD TEST' --new-uids samples/\n  \
        tagutil --today --remove InstitutionName --set '(0008,103E)=AXIAL' samples/\n  \
        tagutil --rules refresh.toml samples/\n  \
        tagutil anonymize --keep-descriptions samples/ samples-anon/"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    update: UpdateArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    exit_code(match cli.command {
        Some(Command::Anonymize(args)) => run_anonymize(&args),
        None => run_update(&cli.update),
    })
}
