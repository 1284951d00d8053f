//! Every committed sample and a fresh instance of every modality and encoding the generator
//! offers must be a valid IOD for David Clunie's `dciodvfy` (dicom3tools): no line starting
//! with `Error`. Warnings are allowed. Skipped, with a message on stderr, when
//! `/usr/bin/dciodvfy` is not installed.

use std::path::{Path, PathBuf};

use loader::synth::{Encoding, InstanceBuilder, Modality, SynthError};

use loader::synth::{DCIODVFY, dciodvfy_errors};

fn dciodvfy_available() -> bool {
    if loader::synth::dciodvfy_available() {
        return true;
    }
    eprintln!(
        "SKIPPED: {DCIODVFY} is not installed (package dicom3tools), so the generated IODs \
         were NOT validated"
    );
    false
}

fn errors(path: &Path, is_opt: bool) -> Vec<String> {
    dciodvfy_errors(path, is_opt)
        .unwrap_or_else(|e| panic!("cannot run {DCIODVFY} on {}: {e}", path.display()))
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
