//! The configuration as the sender's options: where and as whom to send
//! ([`sender_options`]), the load profile ([`load_plan`]) and the command line's
//! fallbacks ([`cli_defaults`]).

use std::sync::Arc;

use config::TestConfig;

use crate::CampaignError;
use sender::{LoadPlan, PreparedInstance, SenderOptions, StopAfter};

/// The sender's options for the selected endpoint: its address and the AE titles of
/// the selected route, the network timeouts, the maximum PDU length, and TLS and user
/// identity ([`security`](super::security())).
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn sender_options(config: &TestConfig) -> Result<SenderOptions, CampaignError> {
    Ok(SenderOptions::for_peer(config.endpoint.peer_address())
        .calling_ae_title(&config.endpoint.calling_ae_title)
        .called_ae_title(&config.endpoint.called_ae_title)
        .timeouts(config.network.timeouts())
        .max_pdu_length(config.network.max_pdu_length)
        .quick_ack(config.network.quick_ack)
        .security(super::security(config)?))
}

/// A load plan with the configuration's load profile (target rate = peak x
/// multiplier, concurrency, duration, ramp-up) and sending settings (association
/// strategy, operations per association).
pub fn load_plan(config: &TestConfig, instances: Vec<Arc<PreparedInstance>>) -> LoadPlan {
    LoadPlan::new(instances)
        .rate(Some(config.load.target_rate()))
        .ramp_up(config.load.ramp_up)
        .concurrency(config.load.concurrency)
        .stop_after(StopAfter::Duration(config.load.duration))
        .association(config.sending.association)
        .max_ops_per_association(config.sending.max_ops_per_association)
        .memory_budget(config.load.memory_budget)
}

/// What the sender's command line falls back to: the endpoint, its AE titles, the
/// network settings, the sending strategy, and TLS and user identity.
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn cli_defaults(config: &TestConfig) -> Result<sender::cli::Defaults, CampaignError> {
    Ok(sender::cli::Defaults {
        peer: config.endpoint.peer_address(),
        calling_ae_title: config.endpoint.calling_ae_title.clone(),
        called_ae_title: config.endpoint.called_ae_title.clone(),
        timeouts: config.network.timeouts(),
        max_pdu_length: config.network.max_pdu_length,
        association: config.sending.association,
        max_ops_per_association: config.sending.max_ops_per_association,
        security: super::security(config)?,
        quick_ack: config.network.quick_ack,
        memory_budget: config.load.memory_budget,
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use sender::AssociationStrategy;

    use super::*;

    #[test]
    fn options_from_config_take_the_endpoint_and_network_settings() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("COMPASS_PORT", "4242"),
            ("COMPASS_AE_TITLE", "ROUTER"),
            ("LOCAL_AE_TITLE", "MODALITY"),
            ("DICOM_DIMSE_TIMEOUT", "7"),
        ])
        .unwrap();
        let options = sender_options(&config).unwrap();
        assert_eq!(options.address().to_string(), "10.1.2.3:4242");
        assert_eq!(options.called_ae().as_str(), "ROUTER");
        assert_eq!(options.calling_ae().as_str(), "MODALITY");
        assert_eq!(options.current_timeouts().dimse, Duration::from_secs(7));
        assert!(options.has_quick_ack(), "quick ACK is on by default");
        assert!(options.build().is_ok());
    }

    #[test]
    fn dicom_quick_ack_false_imitates_a_plain_modality_for_sends_and_queries() {
        let config = TestConfig::from_map([("DICOM_QUICK_ACK", "false")]).unwrap();
        assert!(!sender_options(&config).unwrap().has_quick_ack());
        let cfind = crate::options::cfind::cfind_client(&config).unwrap();
        assert!(!cfind.has_quick_ack());
        let error = TestConfig::from_map([("DICOM_QUICK_ACK", "sometimes")]).unwrap_err();
        assert!(
            error.to_string().contains(r#"DICOM_QUICK_ACK="sometimes""#),
            "{error}"
        );
    }

    #[test]
    fn an_ipv6_endpoint_is_one_peer_address() {
        let config =
            TestConfig::from_map([("COMPASS_HOST", "::1"), ("COMPASS_PORT", "104")]).unwrap();
        assert_eq!(
            sender_options(&config).unwrap().address().to_string(),
            "[::1]:104"
        );
    }

    #[test]
    fn a_plan_from_the_configuration_takes_its_load_profile_and_strategy() {
        let config = TestConfig::from_map([
            ("PEAK_IMAGES_PER_SECOND", "40"),
            ("LOAD_MULTIPLIER", "2.5"),
            ("LOAD_CONCURRENCY", "12"),
            ("TEST_DURATION_SECONDS", "90"),
            ("ASSOCIATION_STRATEGY", "per-study"),
            ("MAX_OPS_PER_ASSOCIATION", "50"),
        ])
        .unwrap();
        let plan = load_plan(&config, Vec::new());
        assert_eq!(plan.target_rate(), Some(100.0));
        assert_eq!(plan.worker_count(), 12);
        assert_eq!(plan.stop(), StopAfter::Duration(Duration::from_secs(90)));
        assert_eq!(plan.association_strategy(), AssociationStrategy::PerStudy);
        assert_eq!(plan.max_ops(), NonZeroU32::new(50));
    }

    #[test]
    fn the_command_line_falls_back_to_the_configured_endpoint_and_strategy() {
        let config = TestConfig::from_map([
            ("COMPASS_HOST", "10.1.2.3"),
            ("COMPASS_PORT", "4242"),
            ("COMPASS_AE_TITLE", "ROUTER"),
            ("DICOM_MAX_PDU", "32768"),
            ("ASSOCIATION_STRATEGY", "per-image"),
        ])
        .unwrap();
        let defaults = cli_defaults(&config).unwrap();
        assert_eq!(defaults.peer, dimse::PeerAddress::new("10.1.2.3", 4242));
        assert_eq!(defaults.called_ae_title.as_str(), "ROUTER");
        assert_eq!(defaults.max_pdu_length, 32_768);
        assert_eq!(defaults.association, AssociationStrategy::PerImage);
        assert_eq!(defaults.timeouts, config.network.timeouts());
    }
}
