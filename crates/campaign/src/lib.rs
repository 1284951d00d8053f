//! A dicom-auto campaign: where the configuration (`.env` and the environment, read by
//! the `config` crate) meets the libraries.
//!
//! The libraries (`sender`, `cfind`, `simulator`, ...) take their own option types and
//! never see a `COMPASS_*` variable; this crate turns a [`config::TestConfig`] into
//! those options ([`options`]) and runs the steps of a campaign, for the test suite
//! and for the `dicom-auto` command:
//!
//! 1. **prepare**: find the samples ([`Samples`]) and encode them once
//!    ([`load::prepare`]);
//! 2. **load**: send them at the configured rate to the router, or to an embedded
//!    simulator when no `COMPASS_HOST` is set ([`LoadTarget`], [`load::run_load`]);
//! 3. **verify**: find every delivered study at the destination by C-FIND
//!    ([`load::verify`]), and account for and compare every instance that reached the
//!    destination sink ([`delivery`]; `VERIFY_AT`), retrieve the delivered studies
//!    from the destination archive and judge every instance again ([`retrieval`]),
//!    and ask the archive to commit every instance the router took ([`commitment`]);
//! 4. **judge and report**: check the thresholds ([`checks::judge`]) and write the
//!    three reports ([`run()`]).
//!
//! Beside the campaign, [`capacity`] finds the highest rate the router sustains
//! (stepped open-loop runs until p95 latency or error rate crosses its threshold).
//!
//! ```no_run
//! let config = config::TestConfig::from_env()?;
//! let campaign = campaign::run(&config, &sender::NoObserver)?;
//! println!("{}: {}", campaign.target, if campaign.passed() { "passed" } else { "failed" });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod capacity;
pub mod checks;
pub mod commitment;
pub mod delivery;
pub mod embedded;
mod error;
pub mod load;
pub mod options;
pub mod profile;
pub mod retrieval;
mod run;
mod samples;

pub use error::CampaignError;
pub use load::LoadTarget;
pub use run::{
    CampaignRun, configuration_items, run, run_profile, run_with, tls_negotiated, tls_probe,
};
pub use samples::Samples;
