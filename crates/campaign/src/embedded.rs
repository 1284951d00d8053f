//! The embedded target: with no `COMPASS_HOST`, a campaign runs against an in-process
//! simulator on loopback, over real TCP.

use config::TestConfig;
use simulator::{Route, Rules, Simulator, SimulatorConfig, SimulatorHandle};

use crate::CampaignError;

/// Rules for the embedded simulator: its default rules (the old suite's three routes),
/// plus a plain store-only route for every called AE title the configuration uses that
/// the rules lack (`COMPASS_AE_TITLE` when no route is selected, routes defined in
/// `.env`), so a default run is never refused for a name the user never chose.
pub fn embedded_rules(config: &TestConfig) -> Rules {
    let mut rules = Rules::default_rules();
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
    rules
}

/// Starts a simulator with [`embedded_rules`], adjusted by `adjust` (store mode,
/// limits), and returns it with `config` pointed at it (sender and C-FIND alike).
///
/// # Errors
/// [`CampaignError::Simulator`] when it cannot start (no loopback port, say).
pub fn start_simulator(
    config: &TestConfig,
    adjust: impl FnOnce(&mut SimulatorConfig),
) -> Result<(SimulatorHandle, TestConfig), CampaignError> {
    let mut simulator_config = SimulatorConfig::with_rules(embedded_rules(config));
    adjust(&mut simulator_config);
    let handle = Simulator::start(simulator_config).map_err(CampaignError::Simulator)?;
    let pointed = config.clone().with_router_address(handle.addr());
    Ok((handle, pointed))
}
