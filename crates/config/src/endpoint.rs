//! The router under test: where it is, which AE titles to use, and the routes it offers.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

use crate::defaults;
use crate::parse::{self, Reader};
use crate::{AeTitle, ConfigError};

/// Where the router under test runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// No `COMPASS_HOST` anywhere: the suite starts the embedded simulator itself, on a free
    /// loopback port, and points the configuration at it with [`crate::TestConfig::with_router_address`].
    Embedded,
    /// `COMPASS_HOST` is set: a real router (or any SCP) at this address.
    Remote {
        /// `COMPASS_HOST`.
        host: String,
        /// `COMPASS_PORT`.
        port: u16,
    },
}

impl Target {
    /// `true` for [`Target::Embedded`].
    pub fn is_embedded(&self) -> bool {
        matches!(self, Target::Embedded)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Embedded => f.write_str("embedded simulator"),
            Target::Remote { host, port } => {
                write!(
                    f,
                    "remote {}",
                    dimse::PeerAddress::new(host.as_str(), *port)
                )
            }
        }
    }
}

/// The C-STORE destination: address and the AE titles of the selected route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Embedded simulator or remote router.
    pub target: Target,
    /// Host to connect to: `COMPASS_HOST`, or `127.0.0.1` for the embedded target until the
    /// simulator's real address is known.
    pub host: String,
    /// Port to connect to: `COMPASS_PORT`. The embedded simulator binds a free port instead, so
    /// for it this is a placeholder until [`crate::TestConfig::with_router_address`].
    pub port: u16,
    /// The AE title we call: the route's `REMOTE_AE_<NAME>`, else `COMPASS_AE_TITLE`.
    pub called_ae_title: AeTitle,
    /// Our own AE title: the route's `LOCAL_AE_<NAME>`, else `LOCAL_AE_TITLE`.
    pub calling_ae_title: AeTitle,
    /// The route selected by `COMPASS_ROUTE`, if any.
    pub route: Option<String>,
}

impl Endpoint {
    /// Where the router listens.
    pub fn peer_address(&self) -> dimse::PeerAddress {
        dimse::PeerAddress::new(self.host.as_str(), self.port)
    }

    /// `host:port`, with brackets around an IPv6 address, as errors and reports name it.
    pub fn address(&self) -> String {
        self.peer_address().to_string()
    }

    /// The same router reached through another route's AE titles: what a test that walks
    /// every route sends with.
    pub fn for_route(&self, route: &Route) -> Endpoint {
        Endpoint {
            called_ae_title: route.called_ae_title.clone(),
            calling_ae_title: route.calling_ae_title.clone(),
            route: Some(route.name.clone()),
            ..self.clone()
        }
    }

    pub(crate) fn point_at(&mut self, address: SocketAddr) {
        self.host = address.ip().to_string();
        self.port = address.port();
        if let Target::Remote { host, port } = &mut self.target {
            host.clone_from(&self.host);
            *port = self.port;
        }
    }
}

/// Whether a route came from the user's variables or from the embedded simulator's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteOrigin {
    /// Defined by a `REMOTE_AE_<NAME>`/`LOCAL_AE_<NAME>` pair.
    Configured,
    /// One of the simulator's default routes, present because the target is embedded and no
    /// route variable is set at all.
    BuiltIn,
}

/// A route through the router: the called AE title that selects it and the calling AE title
/// we present on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The `<NAME>` of `REMOTE_AE_<NAME>`, e.g. `HTM_GI`.
    pub name: String,
    /// `REMOTE_AE_<NAME>`: the router's AE title for this route.
    pub called_ae_title: AeTitle,
    /// `LOCAL_AE_<NAME>`: our AE title on this route.
    pub calling_ae_title: AeTitle,
    /// Configured or built in.
    pub origin: RouteOrigin,
}

const REMOTE_PREFIX: &str = "REMOTE_AE_";
const LOCAL_PREFIX: &str = "LOCAL_AE_";
/// `LOCAL_AE_TITLE` is the fallback calling AE title, not a route called `TITLE`.
const RESERVED_ROUTE_NAME: &str = "TITLE";

/// Reads the endpoint and every route. Problems are recorded in `reader`.
pub(crate) fn read(reader: &mut Reader<'_>) -> (Endpoint, Vec<Route>) {
    let host = reader.value("COMPASS_HOST", parse::host);
    let port = reader.value_or("COMPASS_PORT", defaults::COMPASS_PORT, parse::port);
    let target = match &host {
        Some(host) => Target::Remote {
            host: host.clone(),
            port,
        },
        None => Target::Embedded,
    };
    let fallback_called = reader.value_or(
        "COMPASS_AE_TITLE",
        builtin_title(defaults::COMPASS_AE_TITLE),
        parse::ae_title,
    );
    let fallback_calling = reader.value_or(
        "LOCAL_AE_TITLE",
        builtin_title(defaults::LOCAL_AE_TITLE),
        parse::ae_title,
    );

    let (mut routes, any_route_variable) = read_routes(reader);
    if routes.is_empty() && !any_route_variable && target.is_embedded() {
        routes = defaults::BUILT_IN_ROUTES
            .iter()
            .map(|(name, called)| Route {
                name: (*name).to_owned(),
                called_ae_title: builtin_title(called),
                calling_ae_title: fallback_calling.clone(),
                origin: RouteOrigin::BuiltIn,
            })
            .collect();
    }

    let mut endpoint = Endpoint {
        target,
        host: host.unwrap_or_else(|| defaults::COMPASS_HOST.to_owned()),
        port,
        called_ae_title: fallback_called,
        calling_ae_title: fallback_calling,
        route: None,
    };
    if let Some(wanted) = reader.raw("COMPASS_ROUTE") {
        let wanted = wanted.trim();
        match select(&routes, wanted) {
            Some(route) => endpoint = endpoint.for_route(route),
            // A route whose own variables are broken has already been reported.
            None if any_route_named(reader, wanted) => {}
            None => reader.push(ConfigError::UnknownRoute {
                route: wanted.to_owned(),
                known: routes.iter().map(|r| r.name.clone()).collect(),
            }),
        }
    }
    (endpoint, routes)
}

fn builtin_title(title: &str) -> AeTitle {
    AeTitle::new(title).expect("built-in AE titles are valid")
}

/// An exact name match first; otherwise a case-insensitive one, if it is unambiguous.
fn select<'r>(routes: &'r [Route], wanted: &str) -> Option<&'r Route> {
    if let Some(route) = routes.iter().find(|r| r.name == wanted) {
        return Some(route);
    }
    let mut folded = routes
        .iter()
        .filter(|r| r.name.eq_ignore_ascii_case(wanted));
    match (folded.next(), folded.next()) {
        (Some(route), None) => Some(route),
        _ => None,
    }
}

fn any_route_named(reader: &Reader<'_>, wanted: &str) -> bool {
    let vars = reader.vars();
    [REMOTE_PREFIX, LOCAL_PREFIX].iter().any(|prefix| {
        vars.with_prefix(prefix)
            .any(|(name, _)| name.eq_ignore_ascii_case(wanted))
            || vars
                .unreadable_with_prefix(prefix)
                .any(|full| full[prefix.len()..].eq_ignore_ascii_case(wanted))
    })
}

/// Every complete route, sorted by name, and whether any route variable was set at all.
fn read_routes(reader: &mut Reader<'_>) -> (Vec<Route>, bool) {
    let vars = reader.vars();
    let mut names: Vec<&str> = Vec::new();
    for prefix in [REMOTE_PREFIX, LOCAL_PREFIX] {
        for (name, value) in vars.with_prefix(prefix) {
            if prefix == LOCAL_PREFIX && name == RESERVED_ROUTE_NAME {
                continue;
            }
            if value.trim().is_empty() {
                continue;
            }
            if name.is_empty() || name == RESERVED_ROUTE_NAME {
                reader.invalid(
                    &format!("{prefix}{name}"),
                    value,
                    format!(
                        "a route name after {prefix} other than {RESERVED_ROUTE_NAME} \
                         (COMPASS_AE_TITLE and LOCAL_AE_TITLE are the titles used without a route)"
                    ),
                );
                continue;
            }
            names.push(name);
        }
        // Reported (once) when the route's variables are read below.
        names.extend(
            vars.unreadable_with_prefix(prefix)
                .map(|full| &full[prefix.len()..])
                .filter(|name| !(prefix == LOCAL_PREFIX && *name == RESERVED_ROUTE_NAME)),
        );
    }
    names.sort_unstable();
    names.dedup();
    let any_route_variable = !names.is_empty();

    let mut routes = Vec::new();
    for name in names {
        let remote_var = format!("{REMOTE_PREFIX}{name}");
        let local_var = format!("{LOCAL_PREFIX}{name}");
        let unreadable = [&remote_var, &local_var]
            .iter()
            .filter(|var| vars.get(var).is_err())
            .count();
        let remote_set = reader.raw(&remote_var).is_some();
        let local_set = reader.raw(&local_var).is_some();
        if unreadable > 0 {
            continue;
        }
        if remote_set != local_set {
            let (present, missing) = if remote_set {
                (remote_var, local_var)
            } else {
                (local_var, remote_var)
            };
            reader.push(ConfigError::IncompleteRoute {
                route: name.to_owned(),
                present,
                missing,
            });
            continue;
        }
        let called = reader.value(&remote_var, parse::ae_title);
        let calling = reader.value(&local_var, parse::ae_title);
        if let (Some(called_ae_title), Some(calling_ae_title)) = (called, calling) {
            routes.push(Route {
                name: name.to_owned(),
                called_ae_title,
                calling_ae_title,
                origin: RouteOrigin::Configured,
            });
        }
    }
    (routes, any_route_variable)
}

#[cfg(test)]
mod tests {
    use crate::{ConfigError, RouteOrigin, Target, TestConfig};

    fn load(vars: &[(&str, &str)]) -> Result<TestConfig, ConfigError> {
        TestConfig::from_map(vars.iter().copied())
    }

    fn names(config: &TestConfig) -> Vec<&str> {
        config.routes.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn without_compass_host_the_target_is_the_embedded_simulator() {
        let config = load(&[]).unwrap();
        assert_eq!(config.endpoint.target, Target::Embedded);
        assert_eq!(config.endpoint.host, "127.0.0.1");
        assert_eq!(config.endpoint.port, 11112);
    }

    #[test]
    fn a_blank_compass_host_also_means_embedded() {
        let config = load(&[("COMPASS_HOST", "  ")]).unwrap();
        assert_eq!(config.endpoint.target, Target::Embedded);
    }

    #[test]
    fn compass_host_and_port_make_the_target_remote() {
        let config = load(&[
            ("COMPASS_HOST", "compass.example.org"),
            ("COMPASS_PORT", "104"),
        ])
        .unwrap();
        assert_eq!(
            config.endpoint.target,
            Target::Remote {
                host: "compass.example.org".into(),
                port: 104
            }
        );
        assert_eq!(config.endpoint.address(), "compass.example.org:104");
    }

    #[test]
    fn an_ipv6_router_address_is_bracketed() {
        let config = load(&[("COMPASS_HOST", "::1")]).unwrap();
        assert_eq!(config.endpoint.address(), "[::1]:11112");
    }

    #[test]
    fn a_bad_port_or_host_names_the_variable() {
        let error = load(&[("COMPASS_PORT", "70000")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"COMPASS_PORT="70000": expected a TCP port number from 1 to 65535"#
        );
        let error = load(&[("COMPASS_HOST", "10.0.0.5:104")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"COMPASS_HOST="10.0.0.5:104": expected"#)
        );
    }

    #[test]
    fn without_a_route_the_fallback_ae_titles_are_used() {
        let config = load(&[]).unwrap();
        assert_eq!(config.endpoint.called_ae_title.as_str(), "COMPASS");
        assert_eq!(config.endpoint.calling_ae_title.as_str(), "DICOM-AUTO");
        assert_eq!(config.endpoint.route, None);

        let config = load(&[("COMPASS_AE_TITLE", "ROUTER"), ("LOCAL_AE_TITLE", "QA-SCU")]).unwrap();
        assert_eq!(config.endpoint.called_ae_title.as_str(), "ROUTER");
        assert_eq!(config.endpoint.calling_ae_title.as_str(), "QA-SCU");
    }

    #[test]
    fn a_bad_fallback_ae_title_names_the_variable_and_the_rule() {
        let error = load(&[("LOCAL_AE_TITLE", "A-VERY-LONG-AE-TITLE")]).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with(r#"LOCAL_AE_TITLE="A-VERY-LONG-AE-TITLE": expected an AE title"#));
        assert!(
            text.contains("at most 16 characters, this one has 20"),
            "{text}"
        );
    }

    #[test]
    fn the_embedded_target_offers_the_simulators_three_routes_out_of_the_box() {
        let config = load(&[("COMPASS_ROUTE", "HTM_GI")]).unwrap();
        assert_eq!(names(&config), ["HTM_GI", "HTM_OPH", "HTM_ORTHO"]);
        assert!(
            config
                .routes
                .iter()
                .all(|r| r.origin == RouteOrigin::BuiltIn)
        );
        assert_eq!(config.endpoint.called_ae_title.as_str(), "LB-HTM-GI");
        assert_eq!(config.endpoint.calling_ae_title.as_str(), "DICOM-AUTO");
        assert_eq!(config.endpoint.route.as_deref(), Some("HTM_GI"));
    }

    #[test]
    fn built_in_routes_call_with_local_ae_title() {
        let config = load(&[("LOCAL_AE_TITLE", "QA")]).unwrap();
        assert!(
            config
                .routes
                .iter()
                .all(|r| r.calling_ae_title.as_str() == "QA")
        );
    }

    #[test]
    fn a_remote_target_has_no_routes_unless_configured() {
        let config = load(&[("COMPASS_HOST", "pacs")]).unwrap();
        assert!(config.routes.is_empty());
        let error = load(&[("COMPASS_HOST", "pacs"), ("COMPASS_ROUTE", "HTM_GI")]).unwrap_err();
        assert!(matches!(
            &error,
            ConfigError::UnknownRoute { route, known } if route == "HTM_GI" && known.is_empty()
        ));
        assert!(error.to_string().contains("known routes: (none)"));
    }

    #[test]
    fn any_remote_and_local_pair_defines_a_route() {
        let config = load(&[
            ("COMPASS_HOST", "pacs"),
            ("REMOTE_AE_CARDIO", "LB-CARDIO"),
            ("LOCAL_AE_CARDIO", "CATH-LAB"),
            ("REMOTE_AE_HTM_GI", "LB-HTM-GI"),
            ("LOCAL_AE_HTM_GI", "ENDO-1"),
            ("COMPASS_ROUTE", "CARDIO"),
        ])
        .unwrap();
        assert_eq!(names(&config), ["CARDIO", "HTM_GI"]);
        assert!(
            config
                .routes
                .iter()
                .all(|r| r.origin == RouteOrigin::Configured)
        );
        assert_eq!(config.endpoint.called_ae_title.as_str(), "LB-CARDIO");
        assert_eq!(config.endpoint.calling_ae_title.as_str(), "CATH-LAB");
        let gi = config.route("HTM_GI").unwrap();
        assert_eq!(gi.calling_ae_title.as_str(), "ENDO-1");
    }

    #[test]
    fn configured_routes_replace_the_built_in_ones_on_the_embedded_target() {
        let config = load(&[("REMOTE_AE_CT", "CT-ROUTE"), ("LOCAL_AE_CT", "CT-SCU")]).unwrap();
        assert_eq!(names(&config), ["CT"]);
    }

    #[test]
    fn route_selection_ignores_case_when_unambiguous() {
        let config = load(&[("COMPASS_ROUTE", "htm_oph")]).unwrap();
        assert_eq!(config.endpoint.route.as_deref(), Some("HTM_OPH"));
        assert_eq!(config.endpoint.called_ae_title.as_str(), "LB-HTM-OPH");
    }

    #[test]
    fn a_route_beats_the_fallback_ae_titles() {
        let config = load(&[
            ("COMPASS_ROUTE", "HTM_ORTHO"),
            ("COMPASS_AE_TITLE", "ROUTER"),
            ("LOCAL_AE_TITLE", "QA"),
        ])
        .unwrap();
        assert_eq!(config.endpoint.called_ae_title.as_str(), "LB-HTM-ORTHO");
        assert_eq!(config.endpoint.calling_ae_title.as_str(), "QA");
    }

    #[test]
    fn an_unknown_route_is_an_error_listing_the_known_ones() {
        let error = load(&[("COMPASS_ROUTE", "CARDIO")]).unwrap_err();
        assert!(
            error.to_string().starts_with(
                r#"COMPASS_ROUTE="CARDIO": no such route; known routes: HTM_GI, HTM_OPH, HTM_ORTHO"#
            ),
            "{error}"
        );
    }

    #[test]
    fn half_a_route_is_an_error_naming_the_missing_variable() {
        let error = load(&[("REMOTE_AE_CARDIO", "LB-CARDIO")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "REMOTE_AE_CARDIO is set but LOCAL_AE_CARDIO is not: route CARDIO needs both"
        );
        let error = load(&[("LOCAL_AE_CARDIO", "CATH-LAB")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "LOCAL_AE_CARDIO is set but REMOTE_AE_CARDIO is not: route CARDIO needs both"
        );
    }

    #[test]
    fn selecting_a_half_route_reports_the_half_route_only() {
        let error = load(&[
            ("REMOTE_AE_CARDIO", "LB-CARDIO"),
            ("COMPASS_ROUTE", "CARDIO"),
        ])
        .unwrap_err();
        assert!(
            matches!(error, ConfigError::IncompleteRoute { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_bad_route_ae_title_names_its_variable() {
        let error = load(&[("REMOTE_AE_CT", "CT\\ROUTE"), ("LOCAL_AE_CT", "SCU")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"REMOTE_AE_CT="CT\\ROUTE": expected an AE title"#),
            "{error}"
        );
    }

    #[test]
    fn local_ae_title_is_not_a_route_but_remote_ae_title_is_refused() {
        let config = load(&[("LOCAL_AE_TITLE", "QA")]).unwrap();
        assert!(config.route("TITLE").is_none());
        let error = load(&[("REMOTE_AE_TITLE", "ROUTER")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with(r#"REMOTE_AE_TITLE="ROUTER": expected a route name"#),
            "{error}"
        );
    }

    #[test]
    fn blank_route_variables_count_as_unset() {
        let config = load(&[("REMOTE_AE_CT", ""), ("LOCAL_AE_CT", "")]).unwrap();
        assert_eq!(names(&config), ["HTM_GI", "HTM_OPH", "HTM_ORTHO"]);
    }

    #[test]
    fn for_route_keeps_the_address_and_takes_the_routes_titles() {
        let config = load(&[]).unwrap();
        let oph = config.route("HTM_OPH").unwrap();
        let endpoint = config.endpoint.for_route(oph);
        assert_eq!(endpoint.address(), config.endpoint.address());
        assert_eq!(endpoint.called_ae_title.as_str(), "LB-HTM-OPH");
        assert_eq!(endpoint.route.as_deref(), Some("HTM_OPH"));
    }
}
