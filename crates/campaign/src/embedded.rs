//! The embedded target: with no `COMPASS_HOST`, a campaign runs against an in-process
//! simulator on loopback, over real TCP.

use std::sync::OnceLock;

use config::TestConfig;
use dimse::tls::TlsServerOptions;
use simulator::{Route, Rules, Simulator, SimulatorConfig, SimulatorHandle, TlsListener};
use test_pki::TestPki;

use crate::CampaignError;

/// Rules for the embedded simulator: `SIMULATOR_RULES` when set, else its default rules
/// (the old suite's three routes), plus a plain store-only route for every called AE
/// title the configuration uses that the rules lack (`COMPASS_AE_TITLE` when no route
/// is selected, routes defined in `.env`), so a default run is never refused for a name
/// the user never chose.
///
/// # Errors
/// [`CampaignError::SimulatorRules`] when the `SIMULATOR_RULES` file is not valid (the
/// message names the file and line).
pub fn embedded_rules(config: &TestConfig) -> Result<Rules, CampaignError> {
    let mut rules = match &config.integration.simulator_rules {
        Some(path) => Rules::from_file(path).map_err(CampaignError::SimulatorRules)?,
        None => Rules::default_rules(),
    };
    let mut wanted: Vec<(String, String)> = config
        .routes
        .iter()
        .map(|r| (r.name.clone(), r.called_ae_title.as_str().to_string()))
        .collect();
    wanted.push((
        "DEFAULT".to_string(),
        config.endpoint.called_ae_title.as_str().to_string(),
    ));
    wanted.push((
        "QUERY".to_string(),
        config.cfind.called_ae_title.as_str().to_string(),
    ));
    for (name, called) in wanted {
        let known = rules.route_for(&called).is_some()
            || rules.settings.query_ae_title.as_deref() == Some(called.as_str());
        if !known {
            rules.routes.push(Route::store_only(name, called));
        }
    }
    Ok(rules)
}

/// Starts a simulator with [`embedded_rules`], adjusted by `adjust` (store mode,
/// limits), and returns it with `config` pointed at it (sender and C-FIND alike).
///
/// With `DICOM_TLS` on, the simulator also listens on a TLS port, with a certificate
/// from [`embedded_pki`] and requiring a client certificate from the same CA, and
/// `config` is pointed at that port, trusting that CA and presenting that client
/// certificate: the run goes over mutual TLS, in the versions `DICOM_TLS_VERSIONS`
/// allows.
///
/// # Errors
/// [`CampaignError::Simulator`] when it cannot start (no loopback port, say).
pub fn start_simulator(
    config: &TestConfig,
    adjust: impl FnOnce(&mut SimulatorConfig),
) -> Result<(SimulatorHandle, TestConfig), CampaignError> {
    let mut simulator_config = SimulatorConfig::with_rules(embedded_rules(config)?);
    let pki = match &config.security.tls {
        Some(tls) => {
            let pki = embedded_pki()?;
            let server = pki.server();
            simulator_config.tls = Some(TlsListener::on_free_port(
                TlsServerOptions::new(server.certificate, server.key)
                    .client_ca_bundle(pki.ca())
                    .require_client_certificate(true)
                    .versions(tls.versions),
            ));
            Some(pki)
        }
        None => None,
    };
    adjust(&mut simulator_config);
    let handle = Simulator::start(simulator_config).map_err(CampaignError::Simulator)?;
    let mut pointed = config.clone().with_router_address(handle.addr());
    if let (Some(pki), Some(tls_addr)) = (pki, handle.tls_addr()) {
        let client = pki.client();
        pointed = pointed.with_embedded_tls(tls_addr, pki.ca(), client.certificate, client.key);
    }
    Ok((handle, pointed))
}

/// The embedded router's throwaway CA and certificates, made once per process (a
/// few milliseconds) when a run asks for TLS without a real router. They vouch for
/// nothing but this process's own simulator; their folder stays in the temporary
/// directory when the process ends (a static is never dropped).
///
/// # Errors
/// [`CampaignError::EmbeddedPki`] when the certificates cannot be made or written.
pub fn embedded_pki() -> Result<&'static TestPki, CampaignError> {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    if let Some(pki) = PKI.get() {
        return Ok(pki);
    }
    let made = TestPki::new().map_err(CampaignError::EmbeddedPki)?;
    Ok(PKI.get_or_init(|| made))
}
