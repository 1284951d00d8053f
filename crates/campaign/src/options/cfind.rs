//! The configuration's C-FIND and network settings as a [`CFindClient`].

use cfind::{CFindClient, CFindClientBuilder, Polling};
use config::TestConfig;

use crate::CampaignError;

/// A builder holding the configuration's C-FIND and network settings, to change some
/// of them (a command line's `--host`, say) before building.
///
/// `CFIND_HOST`/`CFIND_PORT`/`CFIND_AE_TITLE` name the peer, the endpoint's calling
/// AE title is ours (queries come from the AE that stores), `DICOM_*` give the
/// timeouts (`DICOM_NETWORK_TIMEOUT` bounds each socket write) and the PDU size, and
/// `CFIND_INITIAL_DELAY`/`CFIND_POLL_INTERVAL`/`CFIND_TIMEOUT` the polling. The query
/// timeout is `CFIND_TIMEOUT`: one query never outlasts the polling it is part of.
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn cfind_client_builder(config: &TestConfig) -> Result<CFindClientBuilder, CampaignError> {
    let cfind = &config.cfind;
    let network = &config.network;
    Ok(CFindClientBuilder::new(cfind.peer_address())
        .called_ae_title(cfind.called_ae_title.as_str())
        .calling_ae_title(cfind.calling_ae_title.as_str())
        .timeouts(network.timeouts())
        .max_pdu_length(network.max_pdu_length)
        .query_timeout(cfind.timeout)
        .polling(Polling {
            initial_delay: cfind.initial_delay,
            poll_interval: cfind.poll_interval,
            timeout: cfind.timeout,
        })
        .quick_ack(network.quick_ack)
        .security(super::security(config)?))
}

/// The client the configuration describes ([`cfind_client_builder`], built).
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file cannot be used;
/// [`CampaignError::Verification`] for settings the builder refuses, which the
/// `config` crate never produces (only a hand-made [`TestConfig`] can).
pub fn cfind_client(config: &TestConfig) -> Result<CFindClient, CampaignError> {
    cfind_client_builder(config)?
        .build()
        .map_err(|error| CampaignError::Verification(Box::new(error)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_config_gives_address_titles_timeouts_and_polling() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("CFIND_PORT", "4242"),
            ("CFIND_AE_TITLE", "ORTHANC"),
            ("LOCAL_AE_TITLE", "QA-SCU"),
            ("CFIND_POLL_INTERVAL", "2"),
            ("CFIND_TIMEOUT", "30"),
            ("DICOM_DIMSE_TIMEOUT", "7"),
            ("DICOM_NETWORK_TIMEOUT", "9"),
        ])
        .unwrap();
        let client = cfind_client(&config).unwrap();
        assert_eq!(client.peer(), "ORTHANC@10.1.2.3:4242");
        assert_eq!(client.calling_ae_title().as_str(), "QA-SCU");
        assert_eq!(client.polling().poll_interval, Duration::from_secs(2));
        assert_eq!(client.query_timeout(), Duration::from_secs(30));
        assert_eq!(client.timeouts().dimse, Duration::from_secs(7));
        assert_eq!(client.timeouts().write, Duration::from_secs(9));
        let built = cfind_client_builder(&config).unwrap().build().unwrap();
        assert_eq!(built, client);
    }

    #[test]
    fn without_settings_the_defaults_match_cfinds_own() {
        let config = TestConfig::from_map::<[(&str, &str); 0], _, _>([]).unwrap();
        let client = cfind_client(&config).unwrap();
        assert_eq!(client.timeouts(), dimse::Timeouts::DEFAULT);
        assert_eq!(client.max_pdu_length(), dimse::DEFAULT_MAX_PDU_LENGTH);
        if !config.endpoint.target.is_embedded() {
            assert_eq!(client.polling(), Polling::DEFAULT);
        }
    }
}
