//! Checking generated objects with David Clunie's `dciodvfy` (dicom3tools), the
//! validator the samples are held to: every `Error` line it prints, less the three it
//! reports on every standard Ophthalmic Tomography image.

use std::path::Path;
use std::process::Command;

/// Where Debian's `dicom3tools` installs the validator.
pub const DCIODVFY: &str = "/usr/bin/dciodvfy";

/// The three errors dciodvfy (2022 tables) reports on every Ophthalmic Tomography image that
/// follows the standard. PS3.3 C.8.17.7 makes Concatenation Frame Offset Number, In-concatenation
/// Number and In-concatenation Total Number Type 1 with the Enumerated Values 0, 1 and 1, since
/// concatenations are not permitted in the OPT IOD (C.8.17.16.3); dciodvfy checks them a second
/// time against the generic Multi-frame Functional Groups module, where they are 1C on a
/// Concatenation UID and the total must exceed one. Without them it reports them missing
/// (Type 1) instead, so no OPT instance can have zero errors. Only these exact messages, and only
/// for OPT, are tolerated.
pub const OPT_CONCATENATION_DEFECTS: [&str; 3] = [
    "Error - Attribute present when condition unsatisfied (which may not be present otherwise) \
     Type 1C Conditional Element=<ConcatenationFrameOffsetNumber> \
     Module=<MultiFrameFunctionalGroupsCommon>",
    "Error - Attribute present when condition unsatisfied (which may not be present otherwise) \
     Type 1C Conditional Element=<InConcatenationNumber> Module=<MultiFrameFunctionalGroupsCommon>",
    "Error - Cannot be less than or equal to one since then not a Concatenation - attribute \
     <InConcatenationTotalNumber>",
];

/// Whether the validator is installed.
pub fn dciodvfy_available() -> bool {
    Path::new(DCIODVFY).is_file()
}

/// The `Error` lines dciodvfy prints for the file at `path` (its report is on
/// stderr), without the known OPT defects when `is_opt`.
///
/// # Errors
/// The validator cannot be run (not installed: see [`dciodvfy_available`]).
pub fn dciodvfy_errors(path: &Path, is_opt: bool) -> std::io::Result<Vec<String>> {
    let output = Command::new(DCIODVFY).arg(path).output()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(report
        .lines()
        .filter(|line| line.starts_with("Error"))
        .filter(|line| !(is_opt && OPT_CONCATENATION_DEFECTS.contains(&line.trim_end())))
        .map(str::to_string)
        .collect())
}
