//! The configuration's archive and listener settings as [`CommitmentOptions`].

use std::net::SocketAddr;

use commitment::{CommitmentOptions, ListenerOptions};
use config::TestConfig;

use crate::CampaignError;

/// Storage Commitment with the archive C-FIND verifies against (`CFIND_HOST`/
/// `CFIND_PORT`/`CFIND_AE_TITLE`), asked under our `LOCAL_AE_TITLE`, the report
/// awaited `COMMIT_TIMEOUT` on a listener at `SINK_BIND`:`COMMIT_PORT` under the same
/// AE title (the archive reports to the AE title that asked), with the `DICOM_*`
/// timeouts and PDU size and the TLS and identity settings of every association. The
/// N-ACTION's association is released once answered: the report comes to the
/// listener ([`listener_options`]), as most archives send it.
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn commitment_options(config: &TestConfig) -> Result<CommitmentOptions, CampaignError> {
    let scu = super::archive_scu(config)?;
    Ok(CommitmentOptions::new(scu)
        .report_timeout(config.commit.timeout)
        .keep_association_open(false))
}

/// The report listener: `SINK_BIND`:`COMMIT_PORT`, called as our `LOCAL_AE_TITLE`,
/// the `DICOM_*` timeouts and PDU size (plain TCP: an archive that reports over TLS
/// is not supported yet).
pub fn listener_options(config: &TestConfig) -> ListenerOptions {
    ListenerOptions::new().listen(super::listen_options(
        config,
        SocketAddr::new(config.sink.bind, config.commit.port),
        config.cfind.calling_ae_title.clone(),
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_archive_the_listener_and_the_report_timeout_come_from_the_configuration() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("CFIND_PORT", "4242"),
            ("CFIND_AE_TITLE", "PACS"),
            ("LOCAL_AE_TITLE", "QA-SCU"),
            ("COMMIT_TIMEOUT", "9"),
            ("COMMIT_PORT", "11199"),
        ])
        .unwrap();
        let options = commitment_options(&config).unwrap();
        assert_eq!(options.scu().peer(), "PACS@10.1.2.3:4242");
        assert_eq!(options.scu().calling_ae_title().as_str(), "QA-SCU");
        assert_eq!(options.current_report_timeout(), Duration::from_secs(9));
        let listener = commitment::ReportListener::start(listener_options(&config)).unwrap();
        assert_eq!(listener.ae_title().as_str(), "QA-SCU");
    }
}
