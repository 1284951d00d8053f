//! The tag updater's and de-identifier's command line, shared by the `tagutil` binary
//! and `dicom-auto tags` / `dicom-auto anonymize`, so no flag is defined twice.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::deid::{DeidOptions, Deidentifier, anonymize_folder};
use crate::{
    Edit, EditPlan, FileOutcome, FileReport, Rules, RunSummary, UpdateOptions, update_folder,
};

/// Exit status for a bad command line or bad edits (nothing was changed).
pub const USAGE_ERROR: u8 = 2;
/// Exit status when at least one file failed.
pub const FILES_FAILED: u8 = 1;

/// How a run of either command should end the process: 0, 1 when a file failed, 2
/// when nothing could be done (printing why).
pub fn exit_code(result: Result<RunSummary>) -> ExitCode {
    match result {
        Ok(summary) if summary.has_failures() => ExitCode::from(FILES_FAILED),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(USAGE_ERROR)
        }
    }
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Folder of DICOM files to edit in place (searched recursively; files are recognised by
    /// their DICM magic, not their name).
    #[arg(required = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print each change, per file: attribute: old -> new.
    #[arg(short, long)]
    pub verbose: bool,
    /// Show what would change; write nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Set an attribute (keyword, (gggg,eeee), gggg,eeee or ggggeeee), adding it if absent.
    /// Repeatable. Multiple values are separated by a backslash.
    #[arg(long = "set", value_name = "TAG=VALUE")]
    pub set: Vec<String>,
    /// Add an attribute only to files that lack it. Repeatable.
    #[arg(long = "add", value_name = "TAG=VALUE")]
    pub add: Vec<String>,
    /// Remove an attribute. Repeatable.
    #[arg(long = "remove", value_name = "TAG")]
    pub remove: Vec<String>,
    /// Regenerate Study, Series and SOP Instance UIDs and Frame of Reference UIDs under 2.25.,
    /// consistently across the folder (same old UID -> same new UID; references follow).
    #[arg(long)]
    pub new_uids: bool,
    /// Set StudyDate and SeriesDate to today's (local) date.
    #[arg(long)]
    pub today: bool,
    /// Read edits from a TOML file (keys: set, add, remove, new_uids, today).
    #[arg(long, value_name = "FILE")]
    pub rules: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// De-identify every DICOM file under IN into OUT (same folder structure) with the PS3.15
    /// Basic Application Level Confidentiality Profile. IN is never modified.
    Anonymize(AnonymizeArgs),
}

#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// Input folder (read only).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Output folder; created if missing; must not be inside IN.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Keep StudyDescription and SeriesDescription (routing rules read them); only for data
    /// whose descriptions carry no identifying text. Recorded as code 113105.
    #[arg(long)]
    pub keep_descriptions: bool,
    /// Keep dates and times (Retain Longitudinal Temporal Information, Full Dates: 113106).
    #[arg(long)]
    pub keep_dates: bool,
    /// Print each change, per file.
    #[arg(short, long)]
    pub verbose: bool,
}

fn build_plan(args: &UpdateArgs) -> Result<EditPlan> {
    let mut plan = EditPlan::new();
    let mut new_uids = args.new_uids;
    let mut today = args.today;
    if let Some(path) = &args.rules {
        let rules = Rules::from_file(path)?;
        for edit in rules.edits {
            plan.push(edit)?;
        }
        new_uids |= rules.new_uids;
        today |= rules.today;
    }
    for assignment in &args.set {
        let (tag, value) = Edit::split_assignment(assignment)?;
        plan.push(Edit::set(tag, value)?)?;
    }
    for assignment in &args.add {
        let (tag, value) = Edit::split_assignment(assignment)?;
        plan.push(Edit::add(tag, value)?)?;
    }
    for tag in &args.remove {
        plan.push(Edit::remove(tag)?)?;
    }
    if new_uids {
        plan.regenerate_uids()?;
    }
    if today {
        plan.set_dates_to(dicom_core::chrono::Local::now().date_naive())?;
    }
    if plan.is_empty() {
        bail!(
            "nothing to do: give at least one edit: --set TAG=VALUE, --add TAG=VALUE, --remove TAG, \
             --new-uids, --today or --rules FILE (add --dry-run to preview the changes), \
             or use `anonymize IN OUT` to de-identify"
        );
    }
    Ok(plan)
}

/// Edits every DICOM file under `args.dir` in place (or previews with `--dry-run`),
/// printing each file's changes and the summary.
///
/// # Errors
/// Bad edits or an unreadable folder: nothing was changed.
pub fn run_update(args: &UpdateArgs) -> Result<RunSummary> {
    let dir = args.dir.as_ref().context("missing DIR")?;
    let plan = build_plan(args)?;
    let options = UpdateOptions {
        dry_run: args.dry_run,
    };
    let summary = update_folder(dir, &plan, options, |report| {
        print_report(report, args.verbose, args.dry_run)
    })?;
    print_summary(&summary, args.dry_run);
    Ok(summary)
}

/// De-identifies every DICOM file under `args.input` into `args.output`.
///
/// # Errors
/// An unusable input or output folder.
pub fn run_anonymize(args: &AnonymizeArgs) -> Result<RunSummary> {
    let mut deid = Deidentifier::new(DeidOptions {
        keep_descriptions: args.keep_descriptions,
        keep_longitudinal_dates: args.keep_dates,
    });
    let summary = anonymize_folder(&args.input, &args.output, &mut deid, |report| {
        print_report(report, args.verbose, false)
    })?;
    print_summary(&summary, false);
    println!(
        "{} original UIDs replaced; output in {}",
        deid.uid_map().len(),
        args.output.display()
    );
    Ok(summary)
}

fn print_report(report: &FileReport, verbose: bool, dry_run: bool) {
    let path = report.path.display();
    match &report.outcome {
        FileOutcome::Changed(changes) if verbose => {
            let verb = if dry_run { "would change" } else { "changed" };
            println!("{path}: {verb} {} attribute(s)", changes.len());
            for change in changes {
                println!("  {change}");
            }
        }
        FileOutcome::Unchanged if verbose => println!("{path}: unchanged"),
        FileOutcome::Skipped(reason) => println!("{path}: skipped ({reason})"),
        FileOutcome::Failed(err) => eprintln!("{path}: FAILED: {}", dimse::ErrorChain(err)),
        _ => {}
    }
}

fn print_summary(summary: &RunSummary, dry_run: bool) {
    println!(
        "scanned {}, changed {}, unchanged {}, skipped {}, failed {}{}",
        summary.scanned,
        summary.changed,
        summary.unchanged,
        summary.skipped,
        summary.failed,
        if dry_run {
            " (dry run: nothing written)"
        } else {
            ""
        }
    );
}
