//! Turns the expectation files into one test per case, so each case is its own line in
//! `cargo test`, in the report, and selectable by name, like pytest's parametrize ids.
//! Adding a case to a TOML file adds a test at the next build; nothing else to edit.

use std::fmt::Write;
use std::path::Path;

/// (test function name, case name) for every entry of `[[table]]`; `test_name` turns
/// the case name into the function name.
fn case_names(file: &str, table: &str, test_name: fn(&str) -> String) -> Vec<(String, String)> {
    let path = Path::new("expectations").join(file);
    println!("cargo::rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: toml::Table = toml::from_str(&text)
        .unwrap_or_else(|e| panic!("bad expectations file {}: {e}", path.display()));
    let Some(items) = value.get(table).and_then(|v| v.as_array()) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let name = item
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or_else(|| panic!("{}: every [[{table}]] needs a name", path.display()));
            let function = test_name(name);
            let valid = function
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase())
                && function
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            assert!(
                valid,
                "{}: name {name:?} must be snake_case letters and digits (it becomes a test name)",
                path.display()
            );
            (function, name.to_string())
        })
        .collect()
}

fn generate(file: &str, table: &str, test_name: fn(&str) -> String, runner: &str, out: &str) {
    let mut code = String::new();
    for (function, name) in case_names(file, table, test_name) {
        let _ = writeln!(
            code,
            "#[rstest::rstest]\nfn {function}(report: TestReport, perf_config: &'static config::TestConfig, cfind_client: cfind::CFindClient) {{\n    {runner}(report, perf_config, &cfind_client, {name:?});\n}}\n"
        );
    }
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    std::fs::write(Path::new(&out_dir).join(out), code).expect("write generated tests");
}

fn main() {
    let as_is: fn(&str) -> String = str::to_string;
    generate(
        "routing_transformations.toml",
        "case",
        as_is,
        "run_case",
        "routing_transformations_cases.rs",
    );
    generate(
        "data_validation.toml",
        "case",
        as_is,
        "run_case",
        "data_validation_cases.rs",
    );
    generate(
        "calling_aet_routing.toml",
        "route",
        |route| format!("route_{}_accepts_and_delivers", route.to_lowercase()),
        "run_route",
        "calling_aet_routing_cases.rs",
    );
}
