//! dicom-auto's own acceptor side of an association, over plain TCP or TLS.
//!
//! dicom-ul's `ServerAssociationOptions` reads the A-ASSOCIATE-RQ and answers it in
//! one call, which leaves no room for what a router does between the two (route by
//! called AE title, refuse transiently, check the user identity) and cannot run
//! behind a TLS handshake that dicom-auto classifies itself. This module uses
//! dicom-ul only to encode and decode PDUs and does the rest:
//!
//! 1. [`ScpStream`]: the connection, plain or TLS ([`ScpStream::accept_tls`] runs
//!    the handshake within a deadline and names a failure with
//!    [`TlsFailure`](crate::tls::TlsFailure)).
//! 2. [`read_associate_request`]: the A-ASSOCIATE-RQ, within the ARTIM deadline; a
//!    TLS client on a plain port is recognised by its first byte.
//! 3. An answer: [`reject`] (A-ASSOCIATE-RJ), [`abort`] (A-ABORT) or [`accept`]
//!    (A-ASSOCIATE-AC, with one [`ContextDecision`] per proposed presentation
//!    context and the [`AcceptOptions`]), which gives an [`ScpAssociation`].
//! 4. [`ScpAssociation`] implements [`PduChannel`](crate::PduChannel), so the
//!    DIMSE layer ([`MessageReader`](crate::MessageReader),
//!    [`send_message`](crate::send_message)) runs over it unchanged.
//!
//! A listening SCP of ours starts with a [`Gate`] ([`ListenOptions`]): it binds, and
//! for each connection does steps 1 and 2 and the checks every SCP makes, leaving
//! the SCP its own checks and the answer.
//!
//! The requestor's user identity is a [`UserIdentity`](crate::UserIdentity) whose `Debug` and
//! `Display` never show the passcode or token.
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::time::{Duration, Instant};
//! use dimse::scp::{self, AcceptOptions, ContextDecision, ScpStream};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let (tcp, _) = listener.accept()?;
//! let mut stream = ScpStream::Plain(tcp);
//! let request = scp::read_associate_request(&mut stream, Instant::now() + Duration::from_secs(10))?;
//! let association = scp::accept(stream, &request, &AcceptOptions::new(), |pc| {
//!     ContextDecision::Accept { transfer_syntax: pc.transfer_syntaxes[0].clone() }
//! })?;
//! # let _ = association;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod accept;
mod acceptor;
mod answer;
mod association;
mod error;
mod gate;
mod pdu_reader;
mod request;
mod stream;

pub use accept::{AcceptOptions, ContextDecision, accept};
pub use acceptor::Acceptor;
pub use answer::{Refusal, abort, linger_until_peer_closes, reject};
pub use association::ScpAssociation;
pub use error::ScpError;
pub use gate::{Admitted, Gate, ListenError, ListenOptions, NotAdmitted};
pub use pdu_reader::PduReader;
pub use request::{
    DICOM_APPLICATION_CONTEXT, MAX_ASSOCIATE_RQ_LEN, read_associate_request, standard_refusal,
};
pub use stream::ScpStream;

#[cfg(test)]
mod tests;
