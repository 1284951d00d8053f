//! How a [`CFindClient`] is configured: its [`CFindClientBuilder`], the defaults,
//! and the verification settings ([`Polling`], [`BatchLimits`]).

use std::time::Duration;

use dimse::qr::InformationModel;
use dimse::{AeTitle, PeerAddress, Security, Timeouts};
use serde::Serialize;

use crate::client::CFindClient;
use crate::error::CFindError;

/// Default number of StudyInstanceUIDs in one verification query.
pub const DEFAULT_MAX_UIDS_PER_QUERY: usize = 200;
/// Default limit on the bytes of one UID-list value: below the 64 KiB a UI element can
/// hold in Explicit VR, with room to spare for peers with smaller buffers.
pub const DEFAULT_MAX_UID_LIST_BYTES: usize = 16 * 1024;
/// Default called AE title (the query SCP's) when none is given.
pub const DEFAULT_CALLED_AE_TITLE: &str = "ANY-SCP";
/// Default calling AE title (ours) when none is given.
pub const DEFAULT_CALLING_AE_TITLE: &str = "DICOM-AUTO";

/// How verification polls: wait before the first query, between queries, and how
/// long to keep trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Polling {
    /// Wait before the first query.
    pub initial_delay: Duration,
    /// Wait between two queries.
    pub poll_interval: Duration,
    /// Stop polling this long after the first query.
    pub timeout: Duration,
}

impl Polling {
    /// 5 s before the first query, 5 s between queries, 60 s in all: a router that
    /// forwards to a real PACS, which indexes studies in seconds, not milliseconds.
    pub const DEFAULT: Polling = Polling {
        initial_delay: Duration::from_secs(5),
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
    };
}

impl Default for Polling {
    fn default() -> Self {
        Polling::DEFAULT
    }
}

/// How verification cuts a list of StudyInstanceUIDs into queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BatchLimits {
    /// At most this many UIDs per query.
    pub max_uids_per_query: usize,
    /// At most this many bytes in the UID-list value of one query.
    pub max_uid_list_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_uids_per_query: DEFAULT_MAX_UIDS_PER_QUERY,
            max_uid_list_bytes: DEFAULT_MAX_UID_LIST_BYTES,
        }
    }
}

/// What the builder and the client share: everything but the AE titles, which the
/// builder holds as text until it checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub(crate) peer: PeerAddress,
    pub(crate) models: Vec<InformationModel>,
    /// Every wait of an association; `write` bounds each socket write.
    pub(crate) timeouts: Timeouts,
    /// Deadline of one whole query, however many responses it gets.
    pub(crate) query_timeout: Duration,
    pub(crate) max_pdu_length: u32,
    pub(crate) polling: Polling,
    pub(crate) batch: BatchLimits,
    pub(crate) security: Security,
    pub(crate) quick_ack: bool,
}

/// Builds a [`CFindClient`]; every setting has a default except the address.
#[derive(Clone, Debug)]
pub struct CFindClientBuilder {
    settings: Settings,
    called_ae_title: String,
    calling_ae_title: String,
}

impl CFindClientBuilder {
    /// A builder for the SCP at `peer` with the defaults: called AE `ANY-SCP`, calling
    /// AE `DICOM-AUTO`, Study Root then Patient Root, [`Timeouts::DEFAULT`],
    /// [`Polling::DEFAULT`] and a query timeout equal to the polling timeout.
    pub fn new(peer: PeerAddress) -> Self {
        let polling = Polling::DEFAULT;
        CFindClientBuilder {
            settings: Settings {
                peer,
                models: InformationModel::DEFAULT_PREFERENCE.to_vec(),
                timeouts: Timeouts::DEFAULT,
                query_timeout: polling.timeout,
                max_pdu_length: dimse::DEFAULT_MAX_PDU_LENGTH,
                polling,
                batch: BatchLimits::default(),
                security: Security::default(),
                quick_ack: true,
            },
            called_ae_title: DEFAULT_CALLED_AE_TITLE.into(),
            calling_ae_title: DEFAULT_CALLING_AE_TITLE.into(),
        }
    }

    /// TLS and user identity of the query associations (default: plaintext, no
    /// identity).
    pub fn security(mut self, security: Security) -> Self {
        self.settings.security = security;
        self
    }

    /// The TLS and user identity set so far, for a caller that changes only part.
    pub fn current_security(&self) -> &Security {
        &self.settings.security
    }

    /// Acknowledge at once (Linux TCP_QUICKACK, default on); see
    /// [`dimse::ScuOptions::quick_ack`].
    pub fn quick_ack(mut self, on: bool) -> Self {
        self.settings.quick_ack = on;
        self
    }

    /// The query SCP's address.
    pub fn peer_address(mut self, peer: PeerAddress) -> Self {
        self.settings.peer = peer;
        self
    }

    /// The query SCP's host and port.
    pub fn address(self, host: impl Into<String>, port: u16) -> Self {
        self.peer_address(PeerAddress::new(host, port))
    }

    /// The query SCP's host.
    pub fn host(self, host: impl Into<String>) -> Self {
        let port = self.settings.peer.port();
        self.address(host, port)
    }

    /// The query SCP's port.
    pub fn port(self, port: u16) -> Self {
        let host = self.settings.peer.host().to_string();
        self.address(host, port)
    }

    /// The called AE title (the query SCP's), checked by [`build`](Self::build).
    pub fn called_ae_title(mut self, title: impl Into<String>) -> Self {
        self.called_ae_title = title.into();
        self
    }

    /// The calling AE title (ours), checked by [`build`](Self::build).
    pub fn calling_ae_title(mut self, title: impl Into<String>) -> Self {
        self.calling_ae_title = title.into();
        self
    }

    /// The information models to use, in order of preference; the client falls back
    /// to the next when the peer refuses one. Default: Study Root, then Patient Root.
    pub fn models(mut self, models: impl IntoIterator<Item = InformationModel>) -> Self {
        self.settings.models = Vec::new();
        for model in models {
            if !self.settings.models.contains(&model) {
                self.settings.models.push(model);
            }
        }
        self
    }

    /// Every wait of an association: TCP connect, negotiation and release, each DIMSE
    /// response, each socket write.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.settings.timeouts = timeouts;
        self
    }

    /// TCP connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeouts.connect = timeout;
        self
    }

    /// Wait for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    pub fn acse_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeouts.acse = timeout;
        self
    }

    /// Wait for each DIMSE response (each C-FIND-RSP, the C-ECHO-RSP).
    pub fn dimse_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeouts.dimse = timeout;
        self
    }

    /// Deadline of one whole query, however many responses it gets.
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.settings.query_timeout = timeout;
        self
    }

    /// The largest PDU we accept.
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.settings.max_pdu_length = length;
        self
    }

    /// How verification polls.
    pub fn polling(mut self, polling: Polling) -> Self {
        self.settings.polling = polling;
        self
    }

    /// How verification batches UIDs.
    pub fn batch_limits(mut self, batch: BatchLimits) -> Self {
        self.settings.batch = batch;
        self
    }

    /// Checks the settings and builds the client.
    ///
    /// # Errors
    /// [`CFindError::InvalidAeTitle`] for a bad AE title, [`CFindError::InvalidSetting`]
    /// for a zero timeout or batch size, an empty model list, an empty host or a
    /// maximum PDU length dicom-ul cannot use.
    pub fn build(self) -> Result<CFindClient, CFindError> {
        let ae = |role: &'static str, value: &str| {
            AeTitle::new(value).map_err(|source| CFindError::InvalidAeTitle {
                role,
                value: value.to_string(),
                source,
            })
        };
        let called_ae_title = ae("called", &self.called_ae_title)?;
        let calling_ae_title = ae("calling", &self.calling_ae_title)?;
        let settings = self.settings;
        let invalid = |name: &'static str, value: String, reason: &'static str| {
            Err(CFindError::InvalidSetting {
                name,
                value,
                reason,
            })
        };
        if settings.peer.host().is_empty() {
            return invalid("host", String::new(), "a host name or IP address");
        }
        if settings.peer.port() == 0 {
            return invalid("port", "0".into(), "a port from 1 to 65535");
        }
        if settings.models.is_empty() {
            return invalid("models", "[]".into(), "at least one information model");
        }
        let timeouts = settings.timeouts;
        for (name, value) in [
            ("connect_timeout", timeouts.connect),
            ("acse_timeout", timeouts.acse),
            ("dimse_timeout", timeouts.dimse),
            ("write_timeout", timeouts.write),
            ("query_timeout", settings.query_timeout),
            ("poll_interval", settings.polling.poll_interval),
            ("poll_timeout", settings.polling.timeout),
        ] {
            if value.is_zero() {
                return invalid(name, "0 s".into(), "a duration above zero");
            }
        }
        if settings.batch.max_uids_per_query == 0 || settings.batch.max_uid_list_bytes < 64 {
            return invalid(
                "batch_limits",
                format!("{:?}", settings.batch),
                "at least 1 UID and 64 bytes per query",
            );
        }
        let pdu_range = dicom_ul::pdu::MINIMUM_PDU_SIZE..=dicom_ul::pdu::MAXIMUM_PDU_SIZE;
        if !pdu_range.contains(&settings.max_pdu_length) {
            return invalid(
                "max_pdu_length",
                settings.max_pdu_length.to_string(),
                "from 1018 bytes (dicom-ul's minimum) to dicom-ul's maximum",
            );
        }
        Ok(CFindClient::new(
            settings,
            called_ae_title,
            calling_ae_title,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_names_the_bad_setting() {
        let err = CFindClient::builder("127.0.0.1", 104)
            .called_ae_title("THIS-TITLE-IS-FAR-TOO-LONG")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("called AE title"), "{err}");
        let err = CFindClient::builder("127.0.0.1", 104)
            .dimse_timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("dimse_timeout"), "{err}");
        let err = CFindClient::builder("127.0.0.1", 104)
            .models([])
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("models"), "{err}");
    }

    #[test]
    fn a_zero_write_timeout_or_an_oversized_pdu_is_refused() {
        let err = CFindClient::builder("127.0.0.1", 104)
            .timeouts(Timeouts {
                write: Duration::ZERO,
                ..Timeouts::DEFAULT
            })
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("write_timeout"), "{err}");
        let err = CFindClient::builder("127.0.0.1", 104)
            .max_pdu_length(u32::MAX)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_pdu_length"), "{err}");
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let client = CFindClient::builder("pacs", 104).build().unwrap();
        assert_eq!(client.peer(), "ANY-SCP@pacs:104");
        assert_eq!(client.calling_ae_title().as_str(), "DICOM-AUTO");
        assert_eq!(client.polling(), Polling::DEFAULT);
        assert_eq!(client.polling().initial_delay, Duration::from_secs(5));
        assert_eq!(client.query_timeout(), Duration::from_secs(60));
        assert_eq!(client.timeouts(), Timeouts::DEFAULT);
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let client = CFindClient::builder("::1", 104).build().unwrap();
        assert_eq!(client.peer(), "ANY-SCP@[::1]:104");
        let client = CFindClient::builder("pacs", 104).build().unwrap();
        assert_eq!(client.peer(), "ANY-SCP@pacs:104");
    }
}
