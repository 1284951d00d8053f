//! Counters the handle reports: associations, stores by status and by route,
//! C-FIND, C-MOVE/C-GET, Storage Commitment, forwarding.

use std::collections::BTreeMap;

use dimse::tls::{TlsFailure, TlsSession};
use dimse::{IdentityKind, UserIdentity};
use dimse::{Status, StatusClass};

/// Why an association request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum RejectionReason {
    /// No route (or the query AE) has this called AE title: permanent, service
    /// user, reason 7.
    CalledAeTitleNotRecognized,
    /// The route's allow-list does not hold the calling AE title: permanent,
    /// service user, reason 3.
    CallingAeTitleNotRecognized,
    /// The maximum number of concurrent associations was reached: transient,
    /// service provider (presentation), reason 2.
    LocalLimitExceeded,
    /// Refused by fault injection: transient, service provider (presentation),
    /// reason 1 (temporary congestion).
    RefusedByFault,
    /// Rejected by the `reject_first_associations` fault: permanent, service user,
    /// reason 7 (called AE title not recognized), as a router not yet configured
    /// for the AE title answers.
    RejectedByFault,
    /// The first PDU was not a usable A-ASSOCIATE-RQ (answered with A-ABORT), or
    /// the request was not for DICOM (protocol version, application context).
    BadRequest,
    /// The route requires a user identity and none acceptable came: permanent,
    /// service user, no reason given (PS3.7 D.3.3.7.3).
    IdentityRefused,
}

impl RejectionReason {
    /// A short label for tables.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionReason::CalledAeTitleNotRecognized => "called AE title not recognized",
            RejectionReason::CallingAeTitleNotRecognized => "calling AE title not recognized",
            RejectionReason::LocalLimitExceeded => "local limit exceeded",
            RejectionReason::RefusedByFault => "refused (fault injection)",
            RejectionReason::RejectedByFault => "rejected (fault injection)",
            RejectionReason::BadRequest => "bad association request",
            RejectionReason::IdentityRefused => "user identity refused",
        }
    }
}

/// Association counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssociationStats {
    /// Associations accepted (A-ASSOCIATE-AC sent).
    pub accepted: u64,
    /// Associations open now.
    pub active: u64,
    /// Association requests refused, by reason.
    pub rejected: BTreeMap<RejectionReason, u64>,
    /// Ended by an A-RELEASE from the peer.
    pub released: u64,
    /// Ended by an A-ABORT from the peer.
    pub aborted_by_peer: u64,
    /// Ended because the peer closed the connection without release or abort.
    pub connection_lost: u64,
    /// Aborted by the simulator: fault injection (abort after N stores, idle timeout).
    pub aborted_by_fault: u64,
    /// Aborted by the simulator because the peer broke the protocol (malformed
    /// PDU, PDU larger than negotiated, bad command...).
    pub protocol_errors: u64,
    /// Aborted by the simulator because the peer was silent past the read timeout.
    pub timed_out: u64,
    /// Cut by the simulator's shutdown.
    pub closed_by_shutdown: u64,
    /// Association threads that panicked (always 0 unless the simulator has a bug;
    /// complete after shutdown).
    pub panicked: u64,
}

impl AssociationStats {
    /// All refused requests.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// C-STORE counters (for one route, or summed over all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// C-STORE requests whose data set was received completely.
    pub received: u64,
    /// Responses by status (counted as each response is sent).
    pub by_status: BTreeMap<Status, u64>,
    /// Data set bytes received.
    pub bytes: u64,
    /// New instances put into the built-in store.
    pub stored: u64,
    /// Duplicates answered with success and not stored (keep-first policy).
    pub duplicates_kept: u64,
    /// Duplicates that replaced the stored copy.
    pub overwritten: u64,
    /// Duplicates refused (reject policy).
    pub duplicates_refused: u64,
    /// Refused by a validation rule.
    pub rejected_by_rules: u64,
    /// Refused because the data set could not be parsed or indexed.
    pub unreadable: u64,
    /// Answered with a failure status by fault injection (discarded).
    pub failed_by_fault: u64,
    /// Read but never answered (stall fault).
    pub stalled: u64,
    /// Handed to the forwarding queue.
    pub forwarded: u64,
}

impl StoreStats {
    /// Stores answered with a success or warning status: the sender counts these
    /// as delivered.
    pub fn acknowledged(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| matches!(s.class(), StatusClass::Success | StatusClass::Warning))
            .map(|(_, n)| n)
            .sum()
    }

    /// Responses with this status.
    pub fn with_status(&self, status: Status) -> u64 {
        self.by_status.get(&status).copied().unwrap_or(0)
    }

    fn add(&mut self, other: &StoreStats) {
        self.received += other.received;
        for (s, n) in &other.by_status {
            *self.by_status.entry(*s).or_default() += n;
        }
        self.bytes += other.bytes;
        self.stored += other.stored;
        self.duplicates_kept += other.duplicates_kept;
        self.overwritten += other.overwritten;
        self.duplicates_refused += other.duplicates_refused;
        self.rejected_by_rules += other.rejected_by_rules;
        self.unreadable += other.unreadable;
        self.failed_by_fault += other.failed_by_fault;
        self.stalled += other.stalled;
        self.forwarded += other.forwarded;
    }
}

/// Forwarding counters (for one route, or summed over all).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardStats {
    /// Instances put in the queue since start.
    pub enqueued: u64,
    /// Delivered to the destination (success or warning status).
    pub delivered: u64,
    /// Given up after `max_attempts` (listed by `SimulatorHandle::failed_forwards`).
    pub failed: u64,
    /// Attempts that did not deliver (each is retried unless the item failed).
    pub failed_attempts: u64,
    /// Associations opened to the destination.
    pub associations: u64,
    /// Of those, the ones secured by TLS.
    pub tls_associations: u64,
    /// Discarded by the `drop_forward_every_nth` fault (neither delivered nor failed).
    pub dropped_by_fault: u64,
    /// Delivered, then sent a second time by the `duplicate_forward_every_nth` fault
    /// (counted once in `delivered`).
    pub duplicated_by_fault: u64,
    /// Delivered with pixel data corrupted by the `corrupt_pixels_every_nth` fault.
    pub corrupted_by_fault: u64,
    /// Delivered with an attribute changed or removed by the `alter_attribute` fault.
    pub altered_by_fault: u64,
}

impl ForwardStats {
    /// Instances still waiting: `enqueued - delivered - failed - dropped_by_fault`.
    pub fn queued(&self) -> u64 {
        self.enqueued - self.delivered - self.failed - self.dropped_by_fault
    }

    fn add(&mut self, other: &ForwardStats) {
        self.enqueued += other.enqueued;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.failed_attempts += other.failed_attempts;
        self.associations += other.associations;
        self.tls_associations += other.tls_associations;
        self.dropped_by_fault += other.dropped_by_fault;
        self.duplicated_by_fault += other.duplicated_by_fault;
        self.corrupted_by_fault += other.corrupted_by_fault;
        self.altered_by_fault += other.altered_by_fault;
    }
}

/// C-FIND counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FindStats {
    /// C-FIND requests.
    pub requests: u64,
    /// Pending responses sent (one per match).
    pub matches: u64,
    /// Requests ended by C-CANCEL (answered FE00).
    pub cancelled: u64,
    /// Requests answered with a failure status.
    pub failed: u64,
    /// Requests left unanswered by the `stall_finds` fault.
    pub stalled: u64,
}

/// C-MOVE and C-GET counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetrieveStats {
    /// C-MOVE requests.
    pub move_requests: u64,
    /// C-GET requests.
    pub get_requests: u64,
    /// C-STORE sub-operations answered with success.
    pub sub_operations_completed: u64,
    /// Sub-operations that failed (refused by the destination, no context, data
    /// set not kept, unreachable destination, `retrieve_fail_every_nth`).
    pub sub_operations_failed: u64,
    /// Sub-operations answered with a warning status.
    pub sub_operations_warning: u64,
    /// Retrieves ended by C-CANCEL (answered FE00).
    pub cancelled: u64,
    /// C-MOVEs naming a destination the rules do not know (answered A801).
    pub unknown_destinations: u64,
    /// Retrieves refused for a bad identifier (A900, C000).
    pub failed: u64,
    /// Retrieves answered by the `retrieve_pending_forever` fault.
    pub pending_forever_by_fault: u64,
    /// Instances sent that no identifier asked for (`retrieve_extra_instance`).
    pub extra_instances_by_fault: u64,
    /// Sub-operations reported failed by `retrieve_fail_every_nth`.
    pub failed_by_fault: u64,
}

/// Storage Commitment counters (Push Model, PS3.4 Annex J).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitmentStats {
    /// N-ACTION-RQs received on a Storage Commitment context.
    pub requests: u64,
    /// Of those, refused with a failure status (no data set, no Transaction UID,
    /// wrong instance, unknown action type...): no report follows.
    pub refused: u64,
    /// N-EVENT-REPORT-RQs sent on the N-ACTION's association.
    pub reports_same_association: u64,
    /// N-EVENT-REPORT-RQs sent on an association the simulator opened to the
    /// requestor.
    pub reports_new_association: u64,
    /// Reports the requestor answered with a status other than success.
    pub reports_refused: u64,
    /// Reports sent that got no N-EVENT-REPORT-RSP within the wait (or whose
    /// association was lost first).
    pub reports_unanswered: u64,
    /// Reports that could not be sent: the requestor's AE title is not in
    /// `[[move_destination]]`, or it could not be reached or accepted no Push
    /// Model context.
    pub undeliverable_reports: u64,
    /// Why the latest undeliverable report could not be sent.
    pub last_undeliverable: Option<String>,
    /// Referenced instances reported committed.
    pub instances_committed: u64,
    /// Referenced instances reported failed (faults included).
    pub instances_failed: u64,
    /// Requests answered with success and never reported (`commitment_never_report`).
    pub never_reported_by_fault: u64,
    /// Instances reported failed by `commitment_fail_every_nth`.
    pub failed_by_fault: u64,
    /// Reports sent with another transaction UID (`commitment_unknown_transaction`).
    pub unknown_transaction_by_fault: u64,
}

/// TLS counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsStats {
    /// Associations accepted over TLS (also counted in `associations.accepted`).
    pub associations: u64,
    /// Those associations by negotiated protocol version and cipher suite, e.g.
    /// `("TLSv1_3", "TLS13_AES_256_GCM_SHA384")`.
    pub sessions: BTreeMap<(String, String), u64>,
    /// Failed handshakes on the TLS port, by kind ([`tls_failure_kind`]).
    pub handshake_failures: BTreeMap<&'static str, u64>,
    /// Connections to the plain port that opened with a TLS ClientHello (closed
    /// unanswered).
    pub clients_on_plain_port: u64,
}

impl TlsStats {
    /// All failed handshakes.
    pub fn handshake_failures_total(&self) -> u64 {
        self.handshake_failures.values().sum()
    }
}

/// The kind of a handshake failure, as [`TlsStats::handshake_failures`] counts it:
/// `unknown_issuer`, `certificate_expired`, `name_mismatch`, `bad_certificate`,
/// `no_common_version`, `client_certificate_refused`, `not_tls`, `closed`,
/// `timed_out` or `other`.
pub fn tls_failure_kind(failure: &TlsFailure) -> &'static str {
    match failure {
        TlsFailure::UnknownIssuer => "unknown_issuer",
        TlsFailure::CertificateExpired => "certificate_expired",
        TlsFailure::NameMismatch => "name_mismatch",
        TlsFailure::BadCertificate(_) => "bad_certificate",
        TlsFailure::NoCommonVersion => "no_common_version",
        TlsFailure::ClientCertificateRefused(_) => "client_certificate_refused",
        TlsFailure::NotTls => "not_tls",
        TlsFailure::Closed => "closed",
        TlsFailure::TimedOut => "timed_out",
        _ => "other",
    }
}

/// How many distinct user names [`IdentityStats::by_user`] keeps; later ones are
/// counted under [`OTHER_USERS`].
pub const IDENTITY_USERS_KEPT: usize = 1000;
/// The [`IdentityStats::by_user`] key of the names past [`IDENTITY_USERS_KEPT`].
pub const OTHER_USERS: &str = "<other users>";

/// User identities seen in association requests that reached the identity check
/// (called and calling AE titles accepted), accepted or not; never their passcodes
/// or tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityStats {
    /// By kind.
    pub by_kind: BTreeMap<IdentityKind, u64>,
    /// By user name (the user-name kinds).
    pub by_user: BTreeMap<String, u64>,
}

/// Per-route counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteStats {
    /// C-STOREs received on this route.
    pub stores: StoreStats,
    /// Forwarding of this route's instances.
    pub forwarding: ForwardStats,
}

/// A snapshot of everything the simulator counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimulatorStats {
    /// Associations.
    pub associations: AssociationStats,
    /// C-STOREs summed over routes.
    pub stores: StoreStats,
    /// Forwarding summed over routes.
    pub forwarding: ForwardStats,
    /// C-FIND.
    pub finds: FindStats,
    /// C-MOVE and C-GET.
    pub retrieves: RetrieveStats,
    /// Storage Commitment.
    pub commitments: CommitmentStats,
    /// C-ECHO requests answered.
    pub echoes: u64,
    /// TLS: associations, sessions, failed handshakes, TLS clients on the plain port.
    pub tls: TlsStats,
    /// User identities seen.
    pub identities: IdentityStats,
    /// Per route, by route name.
    pub routes: BTreeMap<String, RouteStats>,
    /// Instances in the built-in store now.
    pub instances_in_store: u64,
    /// Studies in the built-in store now.
    pub studies_in_store: u64,
}

/// The live counters (behind one mutex: a few hundred nanoseconds per store is
/// nothing next to parsing the data set).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) associations: AssociationStats,
    pub(crate) finds: FindStats,
    pub(crate) retrieves: RetrieveStats,
    pub(crate) commitments: CommitmentStats,
    pub(crate) echoes: u64,
    pub(crate) tls: TlsStats,
    pub(crate) identities: IdentityStats,
    pub(crate) routes: Vec<RouteStats>,
}

impl Counters {
    pub(crate) fn new(routes: usize) -> Self {
        Counters {
            routes: vec![RouteStats::default(); routes],
            ..Counters::default()
        }
    }

    pub(crate) fn reject(&mut self, reason: RejectionReason) {
        *self.associations.rejected.entry(reason).or_default() += 1;
    }

    pub(crate) fn tls_handshake_failed(&mut self, failure: &TlsFailure) {
        *self
            .tls
            .handshake_failures
            .entry(tls_failure_kind(failure))
            .or_default() += 1;
    }

    pub(crate) fn tls_association(&mut self, session: &TlsSession) {
        self.tls.associations += 1;
        *self
            .tls
            .sessions
            .entry((
                session.protocol_version.clone(),
                session.cipher_suite.clone(),
            ))
            .or_default() += 1;
    }

    pub(crate) fn identity_seen(&mut self, identity: &UserIdentity) {
        *self.identities.by_kind.entry(identity.kind()).or_default() += 1;
        if let Some(user) = identity.user_name() {
            // Bounded: a requestor inventing names cannot grow this without end.
            let key = if self.identities.by_user.contains_key(user)
                || self.identities.by_user.len() < IDENTITY_USERS_KEPT
            {
                user.to_string()
            } else {
                OTHER_USERS.to_string()
            };
            *self.identities.by_user.entry(key).or_default() += 1;
        }
    }

    pub(crate) fn snapshot<'a>(
        &self,
        route_names: impl Iterator<Item = &'a str>,
    ) -> SimulatorStats {
        let mut out = SimulatorStats {
            associations: self.associations.clone(),
            finds: self.finds.clone(),
            retrieves: self.retrieves.clone(),
            commitments: self.commitments.clone(),
            echoes: self.echoes,
            tls: self.tls.clone(),
            identities: self.identities.clone(),
            ..SimulatorStats::default()
        };
        for (name, route) in route_names.zip(&self.routes) {
            out.stores.add(&route.stores);
            out.forwarding.add(&route.forwarding);
            out.routes.insert(name.to_string(), route.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_counts_successes_and_warnings_only() {
        let mut s = StoreStats::default();
        s.by_status.insert(Status::SUCCESS, 5);
        s.by_status.insert(Status(0xB000), 2);
        s.by_status.insert(Status(0xA700), 3);
        assert_eq!(s.acknowledged(), 7);
        assert_eq!(s.with_status(Status(0xA700)), 3);
    }

    #[test]
    fn totals_sum_the_routes() {
        let mut c = Counters::new(2);
        c.routes[0].stores.received = 2;
        c.routes[1].stores.received = 3;
        c.routes[1].forwarding.enqueued = 4;
        c.routes[1].forwarding.delivered = 1;
        c.routes[1].forwarding.dropped_by_fault = 1;
        c.routes[0].forwarding.duplicated_by_fault = 1;
        let snap = c.snapshot(["A", "B"].into_iter());
        assert_eq!(snap.stores.received, 5);
        assert_eq!(snap.forwarding.queued(), 2);
        assert_eq!(snap.forwarding.duplicated_by_fault, 1);
        assert_eq!(snap.routes["B"].stores.received, 3);
    }
}
