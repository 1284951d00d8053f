//! Writes synthetic DICOM sample sets (see `loader::synth`).
//!
//! ```text
//! cargo run -p loader --bin gen-samples -- --out dicom_samples            # the committed set
//! cargo run -p loader --bin gen-samples -- --out target/many --count 500  # random instances
//! cargo run -p loader --bin gen-samples -- --out target/samples --large   # + files over 10 MB
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use loader::synth::{SampleSetOptions, write_sample_set};

/// Write realistic synthetic DICOM instances (patient/study/series hierarchy, 2.25 UIDs,
/// CT MR OPV OPT OP ES DX CR US; Explicit/Implicit VR LE, RLE Lossless, JPEG Baseline).
#[derive(Debug, Parser)]
#[command(name = "gen-samples", version)]
struct Args {
    /// Folder to write into (created if missing; existing files of the same name are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Write N random instances instead of the curated set.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Also write files above 10 MB into OUT/large/ (about 25 MB; never commit them).
    #[arg(long)]
    large: bool,
    /// Seed for every random choice; the same seed writes the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one line per file written.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = SampleSetOptions {
        seed: args.seed,
        count: args.count.map(|n| n as usize),
        large: args.large,
    };
    let written = write_sample_set(&args.out, &options)
        .with_context(|| format!("writing samples into {}", args.out.display()))?;

    let mut by_kind: BTreeMap<(String, String), (usize, u64)> = BTreeMap::new();
    let mut total = 0u64;
    for file in &written {
        if args.verbose {
            println!(
                "{:>10}  {:<4} {:<9} {}",
                file.size_bytes,
                file.modality.code(),
                file.encoding.short_name(),
                file.path.display()
            );
        }
        let entry = by_kind
            .entry((
                file.modality.code().to_string(),
                file.encoding.short_name().to_string(),
            ))
            .or_default();
        entry.0 += 1;
        entry.1 += file.size_bytes;
        total += file.size_bytes;
    }
    println!(
        "{:<9} {:<9} {:>5} {:>12}",
        "modality", "encoding", "files", "bytes"
    );
    for ((modality, encoding), (files, bytes)) in &by_kind {
        println!("{modality:<9} {encoding:<9} {files:>5} {bytes:>12}");
    }
    println!(
        "{} files, {} bytes written to {}",
        written.len(),
        total,
        args.out.display()
    );
    Ok(())
}
