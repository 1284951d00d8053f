//! Every committed sample and a fresh instance of every modality and encoding the generator
//! offers must be a valid IOD for David Clunie's `dciodvfy` (dicom3tools): no line starting
//! with `Error`. Warnings are allowed. Skipped, with a message on stderr, when
//! `/usr/bin/dciodvfy` is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use loader::synth::{Encoding, InstanceBuilder, Modality, SynthError};

const DCIODVFY: &str = "/usr/bin/dciodvfy";

/// The three errors dciodvfy (2022 tables) reports on every Ophthalmic Tomography image that
/// follows the standard. PS3.3 C.8.17.7 makes Concatenation Frame Offset Number, In-concatenation
/// Number and In-concatenation Total Number Type 1 with the Enumerated Values 0, 1 and 1, since
/// concatenations are not permitted in the OPT IOD (C.8.17.16.3); dciodvfy checks them a second
/// time against the generic Multi-frame Functional Groups module, where they are 1C on a
/// Concatenation UID and the total must exceed one. Without them it reports them missing
/// (Type 1) instead, so no OPT instance can have zero errors. Only these exact messages, and only
/// for OPT, are tolerated.
const OPT_CONCATENATION_DEFECTS: [&str; 3] = [
    "Error - Attribute present when condition unsatisfied (which may not be present otherwise) \
     Type 1C Conditional Element=<ConcatenationFrameOffsetNumber> \
     Module=<MultiFrameFunctionalGroupsCommon>",
    "Error - Attribute present when condition unsatisfied (which may not be present otherwise) \
     Type 1C Conditional Element=<InConcatenationNumber> Module=<MultiFrameFunctionalGroupsCommon>",
    "Error - Cannot be less than or equal to one since then not a Concatenation - attribute \
     <InConcatenationTotalNumber>",
];

fn dciodvfy_available() -> bool {
    if Path::new(DCIODVFY).is_file() {
        return true;
    }
    eprintln!(
        "SKIPPED: {DCIODVFY} is not installed (package dicom3tools), so the generated IODs \
         were NOT validated"
    );
    false
}

/// The `Error` lines dciodvfy prints for `path` (it writes its report on stderr).
fn errors(path: &Path, is_opt: bool) -> Vec<String> {
    let output = Command::new(DCIODVFY)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {DCIODVFY} on {}: {e}", path.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    report
        .lines()
        .filter(|line| line.starts_with("Error"))
        .filter(|line| !(is_opt && OPT_CONCATENATION_DEFECTS.contains(&line.trim_end())))
        .map(str::to_string)
        .collect()
}

fn assert_valid(files: &[(PathBuf, bool)]) {
    let mut failures = Vec::new();
    for (path, is_opt) in files {
        let errors = errors(path, *is_opt);
        if !errors.is_empty() {
            failures.push(format!("{}:\n  {}", path.display(), errors.join("\n  ")));
        }
    }
    assert!(
        failures.is_empty(),
        "dciodvfy reports errors in {} of {} files:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn committed_samples_are_valid_iods() {
    if !dciodvfy_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dicom_samples");
    let mut files: Vec<(PathBuf, bool)> = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .filter(|path| path.extension().is_some_and(|e| e == "dcm"))
        .map(|path| {
            let is_opt = path.to_string_lossy().contains("_OPT_");
            (path, is_opt)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 20,
        "only {} samples under {}",
        files.len(),
        root.display()
    );
    assert_valid(&files);
}

#[test]
fn fresh_instances_of_every_modality_and_encoding_are_valid_iods() {
    if !dciodvfy_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for modality in Modality::ALL {
        for encoding in Encoding::ALL {
            let path =
                dir.path()
                    .join(format!("{}_{}.dcm", modality.code(), encoding.short_name()));
            match InstanceBuilder::new(modality)
                .encoding(encoding)
                .seed(7)
                .write_to(&path)
            {
                Ok(_) => files.push((path, modality == Modality::Opt)),
                // Combinations the generator refuses (JPEG of 16-bit pixels, compressed OPV).
                Err(SynthError::UnsupportedEncoding { .. }) => {}
                Err(e) => panic!("{modality} {encoding}: {e}"),
            }
        }
    }
    assert!(files.len() >= Modality::ALL.len(), "{files:?}");
    assert_valid(&files);
}
