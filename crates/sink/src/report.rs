//! What the sink found: the per-instance accounting ([`DeliveryCounts`]), the
//! instances that went wrong ([`InstanceProblem`]) and the transit times
//! ([`DeliveryReport`]).

use metrics::{LatencyHistogram, LatencySummary};
use serde::Serialize;

use crate::compare::Difference;

/// Detailed problems kept per report; the counts stay exact beyond it.
pub const MAX_PROBLEMS_KEPT: usize = 500;

/// Every send and every arrival, each in exactly one place.
///
/// Per send: `sent = refused + delivered + undelivered + in_transit`
/// ([`is_consistent`](Self::is_consistent)). Arrivals beyond the sends that produced
/// them are counted apart: duplicates, deliveries of refused sends, arrivals nobody
/// sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    /// Sends tracked (whatever their outcome).
    pub sent: u64,
    /// Sends the router refused (failure status, or never sent): not expected at the
    /// destination.
    pub refused: u64,
    /// Sends whose instance arrived. The sends of a file sent as it is, again and
    /// again, carry the same SOP Instance UID and cannot be told apart: one copy at
    /// the destination delivers them all (as a router keeping the first copy does).
    pub delivered: u64,
    /// Of the delivered, those whose instance arrived with a difference the route does
    /// not allow (corrupt deliveries included).
    pub altered: u64,
    /// Of the altered, those whose data set could not even be parsed.
    pub corrupt: u64,
    /// Sends the router took (success, warning or an unknown outcome) whose instance
    /// did not arrive within the delivery timeout.
    pub undelivered: u64,
    /// Of the undelivered, those whose outcome at the router was unknown (the
    /// association broke before its answer): maybe never stored.
    pub undelivered_outcome_unknown: u64,
    /// Sends still expected (a report taken before the delivery timeout ran out).
    pub in_transit: u64,
    /// Instances that arrived more than once per send.
    pub duplicated_instances: u64,
    /// Arrivals beyond one per send (the extra copies).
    pub duplicate_arrivals: u64,
    /// Arrivals of an instance every send of which the router refused.
    pub refused_but_delivered: u64,
    /// Arrivals matching no send.
    pub unexpected: u64,
    /// A sink that tracks no sends ([`LedgerOptions::observe`](crate::LedgerOptions::observe)):
    /// arrivals, whatever they are.
    pub observed: u64,
    /// Of the observed, copies of a SOP Instance UID that had already arrived.
    pub observed_duplicates: u64,
    /// Of the observed, data sets that do not parse.
    pub observed_corrupt: u64,
    /// Arrivals without the trace attribute (matched by SOP Instance UID instead, when
    /// that still found the send).
    pub trace_stripped: u64,
    /// Arrivals before the router's answer to the send (transit not measurable: the
    /// router forwards before it answers).
    pub arrived_before_response: u64,
}

impl DeliveryCounts {
    /// Whether `sent = refused + delivered + undelivered + in_transit`.
    pub fn is_consistent(&self) -> bool {
        self.sent == self.refused + self.delivered + self.undelivered + self.in_transit
    }

    /// Whether nothing went wrong: every send the router took arrived once, unaltered
    /// (its trace kept, when matching by trace), and nothing else arrived.
    pub fn is_clean(&self) -> bool {
        self.undelivered == 0
            && self.in_transit == 0
            && self.trace_stripped == 0
            && self.observed_duplicates == 0
            && self.observed_corrupt == 0
            && self.altered == 0
            && self.duplicate_arrivals == 0
            && self.refused_but_delivered == 0
            && self.unexpected == 0
    }

    /// The invariant in words, e.g. `sent 10 = refused 1 + delivered 8 + undelivered 1 + in transit 0`.
    pub fn invariant(&self) -> String {
        format!(
            "sent {} {} refused {} + delivered {} + undelivered {} + in transit {}",
            self.sent,
            if self.is_consistent() { "=" } else { "!=" },
            self.refused,
            self.delivered,
            self.undelivered,
            self.in_transit
        )
    }
}

/// What went wrong with one instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Taken by the router, never arrived within the delivery timeout.
    Undelivered {
        /// Sends of it that did not arrive.
        sends: u64,
        /// Whether the router's answer to (one of) them was unknown.
        outcome_unknown: bool,
    },
    /// Arrived more often than it was sent.
    Duplicated {
        /// Sends of it the router took.
        sends: u64,
        /// Arrivals.
        arrivals: u64,
    },
    /// Arrived with differences the route does not allow.
    Altered {
        /// Each difference: where, the value sent, the value received.
        differences: Vec<Difference>,
    },
    /// Arrived as bytes that are not a data set.
    Corrupt {
        /// The parse error.
        error: String,
    },
    /// The router refused every send of it, and it arrived anyway.
    RefusedButDelivered {
        /// Arrivals.
        arrivals: u64,
    },
    /// Arrived, matching no send.
    Unexpected {
        /// The calling AE title of the association it came on.
        calling_ae_title: String,
    },
    /// Arrived without the trace attribute the sender wrote.
    TraceStripped,
}

/// One instance that went wrong, named.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceProblem {
    /// SOP Instance UID as sent (for an unexpected arrival: as received).
    pub sop_instance_uid: String,
    /// SOP Instance UID of the original file, when the send carried fresh UIDs.
    pub original_sop_instance_uid: Option<String>,
    /// The route the send went to (the called AE title), when known.
    pub route: Option<String>,
    /// What went wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

/// One second of arrivals (by when they arrived).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransitSecond {
    /// Seconds since the ledger was made.
    pub second: u64,
    /// Arrivals in this second (duplicates and unexpected ones included).
    pub arrivals: u64,
    /// Mean transit of the arrivals with a measurable transit, milliseconds.
    pub mean_transit_ms: Option<f64>,
    /// Longest such transit, milliseconds.
    pub max_transit_ms: Option<f64>,
}

/// The sink's verdict on a run.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryReport {
    /// The accounting.
    pub counts: DeliveryCounts,
    /// Whether `sent = refused + delivered + undelivered + in_transit` holds.
    pub consistent: bool,
    /// Whether nothing went wrong.
    pub clean: bool,
    /// Transit (the router's answer to the arrival at the sink) of each send's first
    /// arrival, summarised.
    pub transit_ms: Option<LatencySummary>,
    /// The same, as an HDR histogram (merge these, never the summaries).
    pub transit_histogram: LatencyHistogram,
    /// Arrivals per second, with their transit.
    pub timeline: Vec<TransitSecond>,
    /// The first [`MAX_PROBLEMS_KEPT`] problems, named.
    pub problems: Vec<InstanceProblem>,
    /// Problems in all (beyond those kept).
    pub problems_total: u64,
}

impl DeliveryReport {
    /// The first differences of altered instances, as `(SOP Instance UID, difference)`.
    pub fn first_differences(&self, limit: usize) -> Vec<(&str, &Difference)> {
        self.problems
            .iter()
            .filter_map(|p| match &p.kind {
                ProblemKind::Altered { differences } => Some(
                    differences
                        .iter()
                        .map(move |d| (p.sop_instance_uid.as_str(), d)),
                ),
                _ => None,
            })
            .flatten()
            .take(limit)
            .collect()
    }

    /// The problems of one kind (by its serde name: `undelivered`, `duplicated`,
    /// `altered`, `corrupt`, `refused_but_delivered`, `unexpected`, `trace_stripped`).
    pub fn problems_named(&self, kind: &str) -> Vec<&InstanceProblem> {
        self.problems
            .iter()
            .filter(|p| p.kind.name() == kind)
            .collect()
    }
}

impl ProblemKind {
    /// Its name, as in the JSON.
    pub fn name(&self) -> &'static str {
        match self {
            ProblemKind::Undelivered { .. } => "undelivered",
            ProblemKind::Duplicated { .. } => "duplicated",
            ProblemKind::Altered { .. } => "altered",
            ProblemKind::Corrupt { .. } => "corrupt",
            ProblemKind::RefusedButDelivered { .. } => "refused_but_delivered",
            ProblemKind::Unexpected { .. } => "unexpected",
            ProblemKind::TraceStripped => "trace_stripped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invariant_reads_as_a_sum_and_says_when_it_breaks() {
        let mut counts = DeliveryCounts {
            sent: 10,
            refused: 1,
            delivered: 8,
            undelivered: 1,
            ..DeliveryCounts::default()
        };
        assert!(counts.is_consistent());
        assert_eq!(
            counts.invariant(),
            "sent 10 = refused 1 + delivered 8 + undelivered 1 + in transit 0"
        );
        assert!(!counts.is_clean(), "an undelivered send is not clean");
        counts.delivered = 7;
        assert!(!counts.is_consistent());
        assert!(counts.invariant().contains("!="));
    }
}
