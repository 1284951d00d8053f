//! Routing rules: which called AE titles the simulator answers, what it checks and
//! changes in each received instance, and where it delivers it.
//!
//! Rules come from a TOML file (see the crate README for the format) or from
//! [`Rules::default_rules`], the three routes modelled on the old suite's Compass.
//! Every mistake in a file is reported as `Bad rules file: FILE:LINE: what is wrong`.
//!
//! The module follows the rules' life: [`model`] is what a route is made of,
//! [`evaluate`](Route::process) is what a route does to an instance, and the file
//! format (TOML, with every value's line kept for errors) lives in `file`.

mod evaluate;
mod file;
mod identity;
pub mod model;

use std::time::Duration;

use dicom_core::Tag;
use dimse::Status;

use crate::faults::FaultPlan;

pub use evaluate::{Rejection, today_utc};
pub use identity::{IdentityPolicy, IdentityUser};
pub use model::{
    Action, Condition, Delivery, DuplicatePolicy, ForwardDestination, MorphRule, Route, Template,
    Test, Validation,
};

/// The rules shipped with the crate (see `rules/default.toml` and the README).
pub const DEFAULT_RULES_TOML: &str = include_str!("../../rules/default.toml");

/// Default status for a rejected instance: A900, "data set does not match SOP class".
pub const DEFAULT_REJECT_STATUS: Status = Status(0xA900);

/// A complete rules file: global settings, faults, and the routes.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Settings that apply to every route.
    pub settings: Settings,
    /// Faults injected from the start.
    pub faults: FaultPlan,
    /// The routes, in file order.
    pub routes: Vec<Route>,
    /// The AE titles a C-MOVE may name as its destination (`[[move_destination]]`).
    pub move_destinations: Vec<MoveDestination>,
}

/// A C-MOVE destination: the AE title a C-MOVE-RQ names (MoveDestination,
/// (0000,0600)) and where that AE listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveDestination {
    /// The AE title, as C-MOVE requests name it (also the called AE title of the
    /// association the simulator opens to it).
    pub ae_title: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// Settings that apply to every route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// An extra AE title that answers C-ECHO and C-FIND only (no storage).
    pub query_ae_title: Option<String>,
    /// Match person names (PN) ignoring case in C-FIND. The standard leaves this to
    /// the SCP; DCMTK and Orthanc differ, so it is a choice.
    pub person_name_case_insensitive: bool,
    /// Where the Storage Commitment N-EVENT-REPORT goes (`commitment_report`).
    pub commitment_report: CommitmentReport,
    /// How long after the N-ACTION-RSP the report is sent
    /// (`commitment_report_delay_ms`, default 0).
    pub commitment_report_delay: Duration,
}

/// Where the simulator sends the N-EVENT-REPORT of a Storage Commitment request
/// (PS3.4 J.3.3): the rules' `[settings] commitment_report`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitmentReport {
    /// `"same-association"` (default): on the N-ACTION's association, after the
    /// N-ACTION-RSP.
    #[default]
    SameAssociation,
    /// `"new-association"`: on an association the simulator opens to the
    /// requestor's AE title, looked up in `[[move_destination]]`.
    NewAssociation,
}

impl Rules {
    /// The C-MOVE destination with this AE title.
    pub fn move_destination(&self, ae_title: &str) -> Option<&MoveDestination> {
        self.move_destinations
            .iter()
            .find(|d| d.ae_title == ae_title)
    }

    /// The route whose called AE title is `called_ae_title`.
    pub fn route_for(&self, called_ae_title: &str) -> Option<&Route> {
        self.routes
            .iter()
            .find(|r| r.called_ae_title == called_ae_title)
    }
}

/// Tags a rules file can name, for callers that print them.
pub fn tag_name(tag: Tag) -> String {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(tag)
        .map(|e| e.alias().to_string())
        .unwrap_or_else(|| crate::values::tag_hex(tag))
}
