//! [`SenderOptions`]: where to send, as whom, and how long to wait for anything.

use std::time::Duration;

/// Every wait of a DICOM client, each bounded.
///
/// The defaults are pynetdicom's: 30 s to connect, 30 s for ACSE (association
/// negotiation and release), 30 s for a DIMSE response, 60 s for any single socket
/// write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connection establishment.
    pub connect: Duration,
    /// Waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    pub acse: Duration,
    /// Waiting for a DIMSE response (C-STORE-RSP, C-ECHO-RSP), per PDU.
    pub dimse: Duration,
    /// Longest a single socket write may block.
    pub network: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            acse: Duration::from_secs(30),
            dimse: Duration::from_secs(30),
            network: Duration::from_secs(60),
        }
    }
}

/// Default calling AE title.
pub const DEFAULT_CALLING_AE_TITLE: &str = "DICOM-AUTO";
/// Default called AE title.
pub const DEFAULT_CALLED_AE_TITLE: &str = "ANY-SCP";
/// Default largest PDU we accept (what DCMTK's storescp accepts at most).
pub const DEFAULT_MAX_PDU_LENGTH: u32 = 131_072;

/// How a [`DicomSender`](crate::DicomSender) reaches its peer.
///
/// A builder: start from [`SenderOptions::new`] (or [`DicomSender::builder`](crate::DicomSender::builder))
/// and chain the setters; [`SenderOptions::build`] checks the AE titles and makes the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderOptions {
    pub(crate) address: String,
    pub(crate) calling_ae_title: String,
    pub(crate) called_ae_title: String,
    pub(crate) timeouts: Timeouts,
    pub(crate) max_pdu_length: u32,
    pub(crate) priority: dimse::Priority,
}

impl SenderOptions {
    /// Options for a peer at `address` (`host:port`), with the default AE titles
    /// (`DICOM-AUTO` calling `ANY-SCP`), timeouts and maximum PDU length.
    pub fn new(address: impl Into<String>) -> Self {
        SenderOptions {
            address: address.into(),
            calling_ae_title: DEFAULT_CALLING_AE_TITLE.to_string(),
            called_ae_title: DEFAULT_CALLED_AE_TITLE.to_string(),
            timeouts: Timeouts::default(),
            max_pdu_length: DEFAULT_MAX_PDU_LENGTH,
            priority: dimse::Priority::Medium,
        }
    }

    /// Our AE title (the calling AE title).
    pub fn calling_ae_title(mut self, title: impl Into<String>) -> Self {
        self.calling_ae_title = title.into();
        self
    }

    /// The peer's AE title (the called AE title); routers often route by it.
    pub fn called_ae_title(mut self, title: impl Into<String>) -> Self {
        self.called_ae_title = title.into();
        self
    }

    /// All timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// TCP connection timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Association negotiation and release timeout.
    pub fn acse_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.acse = timeout;
        self
    }

    /// DIMSE response timeout.
    pub fn dimse_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.dimse = timeout;
        self
    }

    /// Socket write timeout.
    pub fn network_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.network = timeout;
        self
    }

    /// The largest PDU we accept, advertised in the A-ASSOCIATE-RQ (what we *send* is
    /// bounded by the peer's maximum, not this).
    pub fn max_pdu_length(mut self, length: u32) -> Self {
        self.max_pdu_length = length;
        self
    }

    /// Priority of C-STORE requests.
    pub fn priority(mut self, priority: dimse::Priority) -> Self {
        self.priority = priority;
        self
    }

    /// The peer address, `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Our AE title.
    pub fn calling_ae(&self) -> &str {
        &self.calling_ae_title
    }

    /// The peer's AE title.
    pub fn called_ae(&self) -> &str {
        &self.called_ae_title
    }

    /// The timeouts in force.
    pub fn current_timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Options from the configuration: the selected endpoint's address and AE titles,
    /// the network timeouts and the maximum PDU length.
    pub fn from_config(config: &config::TestConfig) -> Self {
        let network = &config.network;
        SenderOptions::new(config.endpoint.address())
            .calling_ae_title(config.endpoint.calling_ae_title.as_str())
            .called_ae_title(config.endpoint.called_ae_title.as_str())
            .timeouts(Timeouts {
                connect: network.connect_timeout,
                acse: network.acse_timeout,
                dimse: network.dimse_timeout,
                network: network.network_timeout,
            })
            .max_pdu_length(network.max_pdu_length)
    }

    /// Checks the options and makes the sender.
    ///
    /// # Errors
    /// [`SenderError::InvalidAeTitle`](crate::SenderError::InvalidAeTitle) for an AE
    /// title that breaks PS3.5's rules (see [`config::AeTitle`]); [`SenderError::InvalidOption`](crate::SenderError::InvalidOption)
    /// for a maximum PDU length dicom-ul cannot use.
    pub fn build(self) -> Result<crate::DicomSender, crate::SenderError> {
        crate::DicomSender::new(self)
    }

    pub(crate) fn validate(&self) -> Result<(), crate::SenderError> {
        for (role, title) in [
            ("calling", &self.calling_ae_title),
            ("called", &self.called_ae_title),
        ] {
            config::AeTitle::new(title).map_err(|source| crate::SenderError::InvalidAeTitle {
                role,
                title: title.clone(),
                source,
            })?;
        }
        let min = dicom_ul::pdu::MINIMUM_PDU_SIZE;
        let max = dicom_ul::pdu::MAXIMUM_PDU_SIZE;
        if !(min..=max).contains(&self.max_pdu_length) {
            return Err(crate::SenderError::InvalidOption {
                name: "max_pdu_length",
                value: self.max_pdu_length.to_string(),
                expected: format!("from {min} to {max} bytes"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SenderError;

    #[test]
    fn defaults_bound_every_wait() {
        let t = Timeouts::default();
        assert_eq!(t.connect, Duration::from_secs(30));
        assert_eq!(t.acse, Duration::from_secs(30));
        assert_eq!(t.dimse, Duration::from_secs(30));
        assert_eq!(t.network, Duration::from_secs(60));
    }

    #[test]
    fn an_overlong_called_ae_title_is_refused_with_its_value() {
        let err = SenderOptions::new("127.0.0.1:104")
            .called_ae_title("A_TITLE_LONGER_THAN_16")
            .build()
            .unwrap_err();
        match err {
            SenderError::InvalidAeTitle { role, title, .. } => {
                assert_eq!(role, "called");
                assert_eq!(title, "A_TITLE_LONGER_THAN_16");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn a_blank_calling_ae_title_is_refused() {
        let err = SenderOptions::new("127.0.0.1:104")
            .calling_ae_title("   ")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("calling AE title"), "{err}");
    }

    #[test]
    fn options_from_config_take_the_endpoint_and_network_settings() {
        let config = config::TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("COMPASS_PORT", "4242"),
            ("COMPASS_AE_TITLE", "ROUTER"),
            ("LOCAL_AE_TITLE", "MODALITY"),
            ("DICOM_DIMSE_TIMEOUT", "7"),
        ])
        .unwrap();
        let options = SenderOptions::from_config(&config);
        assert_eq!(options.address(), "10.1.2.3:4242");
        assert_eq!(options.called_ae(), "ROUTER");
        assert_eq!(options.calling_ae(), "MODALITY");
        assert_eq!(options.current_timeouts().dimse, Duration::from_secs(7));
    }

    #[test]
    fn a_max_pdu_below_the_standard_minimum_is_refused() {
        let err = SenderOptions::new("127.0.0.1:104")
            .max_pdu_length(512)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("max_pdu_length"), "{err}");
    }
}
