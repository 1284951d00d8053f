//! The configuration's Q/R peer and network settings as [`RetrieveOptions`].

use config::TestConfig;
use retrieve::RetrieveOptions;

use crate::CampaignError;

/// Retrieval from the archive C-FIND verifies against: `CFIND_HOST`/`CFIND_PORT`/
/// `CFIND_AE_TITLE` name the peer (the destination's Q/R SCP), the calling AE title
/// is ours, `DICOM_*` give the timeouts, PDU size and TCP acknowledgement, and the
/// TLS and identity settings apply as to every association. The stall timeout is the
/// DIMSE timeout: an SCP may take that long per sub-operation, no longer.
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn retrieve_options(config: &TestConfig) -> Result<RetrieveOptions, CampaignError> {
    let scu = super::archive_scu(config)?;
    Ok(RetrieveOptions::new(scu).stall_timeout(config.network.dimse_timeout))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_qr_peer_and_network_settings_come_from_the_configuration() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("CFIND_PORT", "4242"),
            ("CFIND_AE_TITLE", "PACS"),
            ("LOCAL_AE_TITLE", "QA-SCU"),
            ("DICOM_DIMSE_TIMEOUT", "7"),
        ])
        .unwrap();
        let options = retrieve_options(&config).unwrap();
        assert_eq!(options.scu().peer(), "PACS@10.1.2.3:4242");
        assert_eq!(options.scu().calling_ae_title().as_str(), "QA-SCU");
        assert_eq!(
            options.scu().current_timeouts().dimse,
            Duration::from_secs(7)
        );
        assert_eq!(options.current_stall_timeout(), Duration::from_secs(7));
    }
}
