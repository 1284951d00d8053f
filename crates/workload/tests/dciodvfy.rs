//! Every size profile a workload can name must be a valid IOD for `dciodvfy`
//! (dicom3tools), as the committed samples are: natively, and for the small sizes in every
//! compressed syntax the profile accepts (loader's own test validates every encoding of
//! every modality; the large sizes add only geometry, and compressing 10 to 27 MB images in
//! a debug build would take minutes). Skipped, with a message on stderr, when it is not
//! installed.

use std::time::Duration;

use loader::synth::{DCIODVFY, dciodvfy_available, dciodvfy_errors};
use workload::{Profile, SizeProfile, TemplateSource};

/// The modality a size profile stands for (`mammo-4k` is sent as DX).
fn modality_of(size: SizeProfile) -> &'static str {
    match size.name() {
        "ct-512" => "CT",
        "mr-256" => "MR",
        "cr-2k" => "CR",
        "dx-3k" | "mammo-4k" => "DX",
        "us" | "us-multiframe" => "US",
        "op" => "OP",
        "opt" => "OPT",
        "opv" => "OPV",
        other => panic!("a size profile this test does not know: {other}"),
    }
}

#[test]
fn every_size_profile_in_every_syntax_it_accepts_is_a_valid_iod() {
    if !dciodvfy_available() {
        eprintln!("SKIPPED: {DCIODVFY} is not installed (package dicom3tools)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for size in SizeProfile::ALL {
        let small = ["ct-512", "mr-256", "us", "opv"].contains(&size.name());
        let syntaxes: &[&str] = if small {
            &["explicit-le", "implicit-le", "rle", "jpeg-baseline"]
        } else {
            &["explicit-le"]
        };
        for syntax in syntaxes {
            let toml = format!(
                "[[modality]]\nname = \"G\"\nmodality = \"{}\"\ncalling_ae_titles = [\"M\"]\n\
                 studies_per_hour = 3600\nseries = 1\nimages_per_series = 1\n\
                 image_interval_ms = 10\nsize = \"{}\"\ntransfer_syntax = \"{syntax}\"\n",
                modality_of(size),
                size.name()
            );
            // Combinations a profile refuses (JPEG of 16-bit pixels, compressed OPV).
            let Ok(profile) = Profile::from_toml_str(&toml, "size.toml") else {
                continue;
            };
            let schedule = profile.schedule(Duration::from_secs(3600));
            let template = &schedule.templates[0];
            assert!(matches!(template.source, TemplateSource::Synthetic { .. }));
            let object = template
                .build()
                .unwrap_or_else(|e| panic!("{} {syntax}: {e}", size.name()));
            let path = dir.path().join(format!("{}-{syntax}.dcm", size.name()));
            object.write_to_file(&path).unwrap();
            let errors = dciodvfy_errors(&path, size.name() == "opt")
                .unwrap_or_else(|e| panic!("cannot run {DCIODVFY}: {e}"));
            if !errors.is_empty() {
                failures.push(format!(
                    "{} {syntax}:\n  {}",
                    size.name(),
                    errors.join("\n  ")
                ));
            }
            std::fs::remove_file(&path).unwrap();
            checked += 1;
        }
    }
    assert!(checked >= SizeProfile::ALL.len(), "only {checked} checked");
    assert!(
        failures.is_empty(),
        "dciodvfy reports errors in {} of {checked}:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
