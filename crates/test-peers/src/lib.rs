//! Whether a test may start a real DICOM peer here.
//!
//! DCMTK's `storescp` and `dcmqrscp`, and Orthanc, have no option to listen on
//! loopback alone: started on a machine with a network, they answer anyone who can
//! reach it. A test may start one only inside a network namespace that holds nothing
//! but loopback, which is how `scripts/test-all` runs every test
//! (`unshare -n`, then `ip link set lo up`).
//!
//! A test that needs such a peer asks [`may_start`] first and, when it may not, says
//! why and skips:
//!
//! ```
//! if let Err(why) = test_peers::may_start(&["/usr/bin/storescp"]) {
//!     eprintln!("skipped: {why}");
//!     return;
//! }
//! // start /usr/bin/storescp on a free loopback port ...
//! ```

use std::path::Path;

use thiserror::Error;

/// Why a peer cannot be started here.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unavailable {
    /// The program is not installed.
    #[error("{program} is not installed (scripts/peers/install, or apt-get install dcmtk orthanc)")]
    Missing {
        /// Its path.
        program: String,
    },
    /// This network namespace reaches beyond loopback.
    #[error(
        "the peer would listen on every interface, and this network namespace has {}: run the \
         tests inside one that holds only loopback, as scripts/test-all does \
         (unshare -rn sh -c 'ip link set lo up && exec cargo test --offline ...')",
        interfaces.join(", ")
    )]
    Reachable {
        /// The interfaces other than loopback.
        interfaces: Vec<String>,
    },
}

/// `Ok` when every one of `programs` (full paths: `/usr/bin/...`, never one found on
/// `PATH`) is installed and this network namespace holds only loopback.
///
/// # Errors
/// The first program missing, or the interfaces that make a listening peer reachable.
pub fn may_start(programs: &[&str]) -> Result<(), Unavailable> {
    installed(programs)?;
    loopback_only()
}

/// `Ok` when every one of `programs` (full paths) is installed: enough for a client
/// (echoscu, storescu, getscu), which listens nowhere.
///
/// # Errors
/// The first program missing.
pub fn installed(programs: &[&str]) -> Result<(), Unavailable> {
    match programs.iter().find(|p| !Path::new(p).exists()) {
        Some(program) => Err(Unavailable::Missing {
            program: (*program).to_string(),
        }),
        None => Ok(()),
    }
}

/// `Ok` when this network namespace holds no interface but loopback (`lo`).
///
/// # Errors
/// The other interfaces, by name.
pub fn loopback_only() -> Result<(), Unavailable> {
    // /proc/self/net shows the namespace this process is in; /sys/class/net shows the
    // one sysfs was mounted in, which `unshare -n` does not change.
    let interfaces = match std::fs::read_to_string("/proc/self/net/dev") {
        Ok(table) => interface_names(&table)
            .filter(|name| *name != "lo")
            .map(str::to_string)
            .collect(),
        // Unknown interfaces: reachable, to be safe.
        Err(e) => vec![format!("unknown ones (/proc/self/net/dev: {e})")],
    };
    outside_loopback(interfaces)
}

/// The interface names of a `/proc/net/dev` table (two header lines, then `name: counters`).
fn interface_names(table: &str) -> impl Iterator<Item = &str> {
    table
        .lines()
        .skip(2)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.trim())
}

fn outside_loopback(mut interfaces: Vec<String>) -> Result<(), Unavailable> {
    if interfaces.is_empty() {
        return Ok(());
    }
    interfaces.sort();
    Err(Unavailable::Reachable { interfaces })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_program_is_named_with_how_to_install_it() {
        let error = may_start(&["/usr/bin/no-such-dicom-peer"]).unwrap_err();
        assert_eq!(
            error,
            Unavailable::Missing {
                program: "/usr/bin/no-such-dicom-peer".into()
            }
        );
        assert!(
            error.to_string().contains("scripts/peers/install"),
            "{error}"
        );
    }

    #[test]
    fn interfaces_are_read_from_the_proc_table() {
        let table = "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n    \
                     lo:  981 3 0 0\n  eth0: 1766 2 0 0\n";
        assert_eq!(interface_names(table).collect::<Vec<_>>(), ["lo", "eth0"]);
    }

    #[test]
    fn only_loopback_is_safe_and_any_other_interface_is_named() {
        assert_eq!(outside_loopback(Vec::new()), Ok(()));
        let error = outside_loopback(vec!["eth0".into(), "docker0".into()]).unwrap_err();
        assert!(error.to_string().contains("docker0, eth0"), "{error}");
        assert!(error.to_string().contains("unshare -rn"), "{error}");
    }
}
