//! [`Timeouts`]: every wait of one association, each bounded.

use std::time::Duration;

use serde::Serialize;

/// Every wait of one association, client or server side.
///
/// The defaults are the configuration's documented ones (`DICOM_CONNECT_TIMEOUT`,
/// `DICOM_ACSE_TIMEOUT`, `DICOM_DIMSE_TIMEOUT`, `DICOM_NETWORK_TIMEOUT`): 30 s to
/// connect, 30 s for association negotiation and release, 60 s for each DIMSE
/// response, 60 s for any single socket write. None may be zero: a zero socket
/// timeout means "wait forever" to the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timeouts {
    /// TCP connection establishment.
    #[serde(serialize_with = "crate::serde_duration::seconds")]
    pub connect: Duration,
    /// Waiting for A-ASSOCIATE-AC/RJ and A-RELEASE-RP.
    #[serde(serialize_with = "crate::serde_duration::seconds")]
    pub acse: Duration,
    /// Waiting for each DIMSE message (a response, or the next PDU of one).
    #[serde(serialize_with = "crate::serde_duration::seconds")]
    pub dimse: Duration,
    /// Longest a single socket write may block (a peer that stops reading).
    #[serde(serialize_with = "crate::serde_duration::seconds")]
    pub write: Duration,
}

impl Timeouts {
    /// The configuration's defaults, as a constant.
    pub const DEFAULT: Timeouts = Timeouts {
        connect: Duration::from_secs(30),
        acse: Duration::from_secs(30),
        dimse: Duration::from_secs(60),
        write: Duration::from_secs(60),
    };

    /// Every wait set to `wait`: handy for tests and tools that want one knob.
    pub const fn all(wait: Duration) -> Timeouts {
        Timeouts {
            connect: wait,
            acse: wait,
            dimse: wait,
            write: wait,
        }
    }

    /// The name of the first zero wait, if any (a zero socket timeout blocks forever).
    pub fn first_zero(&self) -> Option<&'static str> {
        [
            ("connect", self.connect),
            ("acse", self.acse),
            ("dimse", self.dimse),
            ("write", self.write),
        ]
        .into_iter()
        .find(|(_, wait)| wait.is_zero())
        .map(|(name, _)| name)
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_bound_every_wait() {
        assert_eq!(Timeouts::default().first_zero(), None);
        assert_eq!(Timeouts::default().dimse, Duration::from_secs(60));
    }

    #[test]
    fn a_zero_wait_is_named() {
        let t = Timeouts {
            acse: Duration::ZERO,
            ..Timeouts::default()
        };
        assert_eq!(t.first_zero(), Some("acse"));
    }
}
