//! [`CFindClient`]: one query SCP, who we are and how long to wait; and its
//! connection check ([`ConnectionCheck`]).

use std::time::{Duration, Instant};

use dimse::qr::InformationModel;
use dimse::{AeTitle, PeerAddress, Security, Timeouts};
use serde::Serialize;

use crate::association::{self, OpenAssociation};
use crate::error::CFindError;
use crate::query::Query;
use crate::results::QueryResult;
use crate::session::Session;
use crate::settings::{BatchLimits, CFindClientBuilder, Polling, Settings};

/// A C-FIND client for one query SCP: where it is, who we are, and how long to wait.
///
/// Build it with [`CFindClient::builder`] (the `campaign` crate builds one from the
/// configuration). Each `find`/`test_connection` call on the client opens and
/// releases its own association; a [`Session`] ([`CFindClient::session`]) keeps one
/// association for many queries, which is what verification uses.
///
/// Every wait is bounded: the TCP connection by the connect timeout, association
/// negotiation and release by the ACSE timeout, each DIMSE response by the DIMSE
/// timeout, each socket write by the write timeout, and a whole query by the query
/// timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CFindClient {
    settings: Settings,
    called_ae_title: AeTitle,
    calling_ae_title: AeTitle,
}

impl CFindClient {
    pub(crate) fn new(
        settings: Settings,
        called_ae_title: AeTitle,
        calling_ae_title: AeTitle,
    ) -> Self {
        CFindClient {
            settings,
            called_ae_title,
            calling_ae_title,
        }
    }

    /// A builder for the SCP at `host:port`, with the defaults of
    /// [`CFindClientBuilder::new`]: called AE `ANY-SCP`, calling AE `DICOM-AUTO`, Study
    /// Root then Patient Root.
    pub fn builder(host: impl Into<String>, port: u16) -> CFindClientBuilder {
        CFindClientBuilder::new(PeerAddress::new(host, port))
    }

    /// The peer as `AE@host:port`, the way errors name it.
    pub fn peer(&self) -> String {
        format!("{}@{}", self.called_ae_title, self.settings.peer)
    }

    /// The query SCP's address.
    pub fn peer_address(&self) -> &PeerAddress {
        &self.settings.peer
    }

    /// The query SCP's AE title.
    pub fn called_ae_title(&self) -> &AeTitle {
        &self.called_ae_title
    }

    /// Our AE title.
    pub fn calling_ae_title(&self) -> &AeTitle {
        &self.calling_ae_title
    }

    /// Every wait of an association.
    pub fn timeouts(&self) -> Timeouts {
        self.settings.timeouts
    }

    /// The largest PDU we accept.
    pub fn max_pdu_length(&self) -> u32 {
        self.settings.max_pdu_length
    }

    /// Whether quick acknowledgements are on.
    pub fn has_quick_ack(&self) -> bool {
        self.settings.quick_ack
    }

    /// TLS and user identity of the query associations.
    pub fn security(&self) -> &Security {
        &self.settings.security
    }

    /// The polling settings verification uses.
    pub fn polling(&self) -> Polling {
        self.settings.polling
    }

    /// The batch limits verification uses.
    pub fn batch_limits(&self) -> BatchLimits {
        self.settings.batch
    }

    /// The information models in order of preference.
    pub fn models(&self) -> &[InformationModel] {
        &self.settings.models
    }

    /// The deadline of one query.
    pub fn query_timeout(&self) -> Duration {
        self.settings.query_timeout
    }

    /// A session: one association (opened on first use) for many exchanges.
    pub fn session(&self) -> Session {
        Session::new(self.clone())
    }

    /// Opens an association, sends a C-ECHO and releases: the `ping` of the command line.
    ///
    /// Succeeds when the peer answers the C-ECHO with success, even if it accepts no
    /// query model; [`ConnectionCheck::models_accepted`] says which it accepts.
    pub fn test_connection(&self) -> Result<ConnectionCheck, CFindError> {
        let started = Instant::now();
        let mut open = self.establish(&self.settings.models)?;
        let association_time = started.elapsed();
        let models_accepted = open.contexts.iter().map(|c| c.model).collect();
        let echo = open.echo(self);
        let release = open.release();
        let echo_rtt = echo?;
        Ok(ConnectionCheck {
            peer: self.peer(),
            association_time,
            echo_rtt,
            models_accepted,
            released: release.is_ok(),
        })
    }

    /// Runs one query on its own association (opened and released around it).
    pub fn find<Q: Query>(&self, query: &Q) -> Result<QueryResult<Q::Match>, CFindError> {
        let mut session = self.session();
        let result = session.find(query);
        session.close();
        result
    }

    /// Opens an association proposing `models` (plus Verification).
    pub(crate) fn establish(
        &self,
        models: &[InformationModel],
    ) -> Result<OpenAssociation, CFindError> {
        association::establish(self, models)
    }
}

/// What [`CFindClient::test_connection`] measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ConnectionCheck {
    /// `AE@host:port`.
    pub peer: String,
    /// TCP connection plus association negotiation.
    #[serde(serialize_with = "dimse::serde_duration::millis")]
    pub association_time: Duration,
    /// C-ECHO-RQ sent to C-ECHO-RSP received.
    #[serde(serialize_with = "dimse::serde_duration::millis")]
    pub echo_rtt: Duration,
    /// The query models the peer accepted, in order of preference.
    pub models_accepted: Vec<InformationModel>,
    /// Whether the association was released cleanly afterwards.
    pub released: bool,
}
