//! Why a retrieve could not be run at all (a retrieve that ran and failed is a
//! [`RetrieveOutcome`](crate::RetrieveOutcome), not an error).

use dimse::{AssociateError, DimseError, QrService};

/// Why a retrieve could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetrieveError {
    /// The request is malformed (a missing or invalid key).
    #[error("invalid retrieve request: {0}")]
    Request(String),
    /// The association could not be opened.
    #[error(transparent)]
    Associate(#[from] AssociateError),
    /// The peer accepted no model of the service that can express the request.
    #[error(
        "{peer} accepted no {service} context for a {level} retrieve (proposed: {proposed}); check the Q/R models the peer supports and that a Patient Root retrieve below the patient level names the PatientID"
    )]
    NoModel {
        /// `CALLED@host:port`.
        peer: String,
        /// C-MOVE or C-GET.
        service: QrService,
        /// The request's level.
        level: dimse::QueryLevel,
        /// The models proposed, in words.
        proposed: String,
    },
    /// A C-GET with none of the storage classes accepted with the SCP role: no
    /// instance could come back.
    #[error(
        "{peer} granted us the SCP role for none of the {proposed} storage classes proposed: a C-GET cannot bring anything back; use C-MOVE, or check the peer's role selection support"
    )]
    NoStorageRole {
        /// `CALLED@host:port`.
        peer: String,
        /// How many storage classes were proposed.
        proposed: usize,
    },
    /// Sending the request failed (the association is lost).
    #[error("cannot send the {service} request to {peer}: {source}")]
    Send {
        /// `CALLED@host:port`.
        peer: String,
        /// C-MOVE or C-GET.
        service: QrService,
        /// What went wrong.
        #[source]
        source: DimseError,
    },
}
