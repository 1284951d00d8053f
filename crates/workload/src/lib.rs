//! Hospital workload profiles: what a hospital's modalities send and when, written in TOML,
//! validated with `FILE:LINE:COLUMN` errors, and turned into a deterministic, seeded
//! [`Schedule`] that a sender runs.
//!
//! This crate sends nothing. It answers one question: *given this hospital, which studies arrive
//! during a run of this length, from which devices, with which images, at which intended times?*
//!
//! # Writing a profile
//!
//! A profile has one optional `[run]` table, one `[[modality]]` table per group of devices, and
//! any number of `[[burst]]` tables. Unknown fields are refused.
//!
//! ```toml
//! [run]
//! duration_seconds = 600   # optional: the run length the profile is written for
//! seed = 42                # optional (default 1): the same seed gives the same schedule
//! # optional: 24 hourly factors (hour 0 first), the whole day compressed into the run
//! daily_curve = [0.2, 0.2, 0.2, 0.2, 0.3, 0.5, 0.8, 1.2, 1.6, 1.8, 1.7, 1.5,
//!                1.3, 1.4, 1.6, 1.5, 1.2, 0.9, 0.7, 0.5, 0.4, 0.3, 0.3, 0.2]
//!
//! [[modality]]
//! name = "CT"                          # the group's name in reports (unique)
//! modality = "CT"                      # CT, MR, DX, CR, US, OP, OPT, OPV or ES
//! calling_ae_titles = ["CT_SCANNER_1", "CT_SCANNER_2"]
//! calling_ae_title_order = "round-robin"  # optional: or "random"
//! called_ae_title = "COMPASS"          # optional: else the run's route
//! studies_per_hour = 40                # Poisson rate at curve factor 1.0 (> 0)
//! series = { min = 1, max = 4 }        # optional (default 1): a number or { min, max }
//! images_per_series = 150              # a number or { min, max }
//! image_interval_ms = 20               # optional (default 0): gap between a study's images
//! size = "ct-512"                      # optional: a SizeProfile name; or geometry / folder
//! transfer_syntax = "explicit-le"      # optional: explicit-le, implicit-le, rle, jpeg-baseline
//!
//! [[burst]]
//! at_seconds = 120      # arrival, from the start of the run (below duration_seconds)
//! modality = "CT"       # the name of the [[modality]] entry it uses
//! images = 2000         # one study of this many images
//! series = 4            # optional: else drawn from the group's series range
//! ```
//!
//! Field by field:
//!
//! - `[run] duration_seconds` (number > 0, optional): the run length; a command line may
//!   override it, [`Profile::schedule`] takes the length as an argument. A burst must arrive
//!   before it.
//! - `[run] seed` (whole number, optional, default [`DEFAULT_SEED`]).
//! - `[run] daily_curve` (24 non-negative numbers, not all 0, optional): hour `h`'s factor
//!   multiplies every group's rate during the `h`-th twenty-fourth of the run (a step function,
//!   see [`DailyCurve`]). Without it the rate is constant.
//! - `name` (text): the group; unique, used by reports and by `[[burst]] modality`.
//! - `modality` (text): a [`loader::synth::Modality`] code, case-insensitive.
//! - `calling_ae_titles` (list of AE titles, at least one): the devices. Each study is sent by
//!   one, taken in turn (`calling_ae_title_order = "round-robin"`, the default, in arrival
//!   order) or at random (`"random"`).
//! - `called_ae_title` (AE title, optional): the router AE the group sends to.
//! - `studies_per_hour` (number > 0): the group's arrival rate per hour **of the run** at curve
//!   factor 1.0. A 600-second run at 60 studies per hour has about 10 studies (times the curve's
//!   mean); to replay a whole day's volume in a short run, multiply the rate by
//!   `86400 / duration_seconds`.
//! - `series`, `images_per_series` (whole number >= 1, or `{ min = N, max = M }` with
//!   `N <= M`): drawn uniformly per study, and per series.
//! - `image_interval_ms` (number >= 0, default 0): how fast the modality sends a study's images,
//!   one after the other.
//! - At most one of:
//!   - `size` (text): a named [`SizeProfile`] (`ct-512`, `mr-256`, `cr-2k`, `dx-3k`,
//!     `mammo-4k`, `us`, `us-multiframe`, `op`, `opt`, `opv`; the table there gives the sizes);
//!   - `geometry = { rows, columns, bits_allocated = 16, bits_stored = 12 (8 for 8-bit),
//!     samples_per_pixel = 1, frames = 1 }` (defaults shown);
//!   - `folder` (path, relative to the profile file): real DICOM files, sent in turn instead of
//!     synthetic ones; it must hold at least one DICOM file ([`loader::find_dicom_files`]).
//!
//!   With none of them the group uses the modality's default size
//!   ([`loader::synth::InstanceBuilder::default_geometry`]). Multi-frame images are for OPT and
//!   US only; OPV has no pixel data.
//! - `transfer_syntax` (text, default `explicit-le`): `explicit-le`, `implicit-le`, `rle`
//!   (RLE Lossless) or `jpeg-baseline` (8-bit images only); not with `folder` (real files go as
//!   they are).
//! - `[[burst]]`: `at_seconds` (number >= 0), `modality` (a group's `name`), `images` (>= 1),
//!   `series` (optional, 1 to `images`): one large study (a 2,000-image CT) on top of the
//!   Poisson traffic, with the group's devices, image source and interval; its images are
//!   split evenly over its series.
//!
//! Every mistake is reported as `FILE:LINE:COLUMN: message`, the message naming the field, the
//! value and what was expected ([`WorkloadError::Invalid`]).
//!
//! # What the schedule means
//!
//! [`Profile::schedule`] draws, for each group, a Poisson process of study arrivals (thinning
//! for the daily curve), each study's shape, and its device; then adds the bursts. Each
//! [`PlannedStudy`] is one association: it starts at its `arrival`, and its k-th image is due at
//! `arrival + k × image_interval`. Those intended times are what latency is measured from, so a
//! slow router cannot hide its backlog by slowing the sender (open loop, no coordinated
//! omission).
//!
//! The random draws use ChaCha8 streams seeded from the seed, one per group and purpose, so the
//! same profile, duration and seed give the same schedule, and adding a burst does not move any
//! group's arrivals. (Exponential gaps use `f64::ln`; a platform whose `ln` rounds a last bit
//! differently could, very rarely, keep or drop a different candidate.)
//!
//! # How a sender uses it
//!
//! 1. Build each [`Template`] once ([`Template::build`]): synthetic templates are one per group
//!    and series number (a 2,000-image CT of 4 series needs 4, not 2,000); a folder's templates
//!    are its files, which the images cycle through.
//! 2. At each study's `arrival`, open an association from its `calling_ae_title` to its
//!    `called_ae_title` (or the run's route), and send each image at its intended time from
//!    its template, with a fresh SOP Instance UID, a fresh Series Instance UID per
//!    [`PlannedImage::series`] and a fresh Study Instance UID per study.
//! 3. Measure each image's latency from `arrival + offset`.
//!
//! [`Schedule::summary`] says what the schedule offers per group (studies, images, bytes,
//! images per second); the schedule and summary serialise to JSON.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use workload::Profile;
//!
//! let profile = Profile::from_toml_str(
//!     r#"
//!     [run]
//!     seed = 7
//!
//!     [[modality]]
//!     name = "CT"
//!     modality = "CT"
//!     calling_ae_titles = ["CT_1", "CT_2"]
//!     studies_per_hour = 120
//!     series = { min = 1, max = 3 }
//!     images_per_series = 50
//!     image_interval_ms = 20
//!     size = "ct-512"
//!
//!     [[burst]]
//!     at_seconds = 60
//!     modality = "CT"
//!     images = 2000
//!     series = 4
//!     "#,
//!     "example.toml",
//! )?;
//! let schedule = profile.schedule(Duration::from_secs(600));
//! assert_eq!(schedule.studies, profile.schedule(Duration::from_secs(600)).studies);
//!
//! let burst = schedule.studies.iter().find(|s| s.burst).unwrap();
//! assert_eq!(burst.arrival, Duration::from_secs(60));
//! assert_eq!(burst.images.len(), 2000);
//! assert_eq!(burst.images[1].offset, Duration::from_millis(20));
//! assert_eq!(schedule.templates.len(), 4); // one per series number
//!
//! let summary = schedule.summary();
//! assert_eq!(summary.groups[0].group, "CT");
//!
//! let err = Profile::from_toml_str("[[modality]]\nname = 1\n", "bad.toml").unwrap_err();
//! assert!(err.to_string().starts_with("bad.toml:2:8: "));
//! # Ok::<(), workload::WorkloadError>(())
//! ```

mod error;
mod file;
mod profile;
mod schedule;

pub use error::WorkloadError;
pub use profile::{
    AeTitleOrder, Burst, CountRange, DEFAULT_SEED, DailyCurve, ImageSource, ModalityProfile,
    Profile, RunSettings, SizeProfile,
};
pub use schedule::{
    GroupSummary, PlannedImage, PlannedStudy, Schedule, Summary, Template, TemplateSource,
};
