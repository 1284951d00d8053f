//! A consumer of the run's sends that must see each one *before* it goes out: the
//! destination sink's ledger, which expects an instance before the router can
//! forward it ([`SendWatch`]).

use std::fmt;
use std::sync::Arc;

use crate::instance::{InstanceUids, PreparedInstance};
use crate::outcome::SendOutcome;

/// One send about to go out.
#[derive(Debug, Clone, Copy)]
pub struct PlannedSend<'a> {
    /// The run's send number (from 0).
    pub number: u64,
    /// The instance it carries, and its index in the plan.
    pub instance: &'a PreparedInstance,
    /// Index of `instance` in [`LoadPlan::instances`](crate::LoadPlan::instances).
    pub instance_index: usize,
    /// The fresh UIDs it carries instead of the file's, in a fresh-UID run.
    pub uids: Option<&'a InstanceUids>,
}

/// What a watch hands back for one send, to know it again with its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchToken(pub u64);

/// Sees every send of a run twice, on the worker that sends it: before it goes out
/// and with its outcome. Both calls are on the send's path: keep them short (no I/O).
pub trait SendWatch: Send + Sync {
    /// Send `send.number` is about to go out.
    fn before_send(&self, send: &PlannedSend<'_>) -> WatchToken;
    /// Its outcome (its end is `outcome.started + outcome.latency`).
    fn after_send(&self, token: WatchToken, outcome: &SendOutcome);
}

/// The watch of a plan, shared by its workers.
#[derive(Clone)]
pub(crate) struct Watch(pub(crate) Arc<dyn SendWatch>);

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendWatch")
    }
}
