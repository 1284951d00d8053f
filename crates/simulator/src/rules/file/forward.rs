//! A route's `[route.forward]` table: the destination, its retry policy, and how the
//! simulator secures the association it opens there (`[route.forward.tls]`,
//! `[route.forward.identity]`).
//!
//! The TLS files are read when the rules are loaded, once: a missing or unusable
//! certificate is a rules-file error naming the route, the key and the file, not a
//! forwarding failure found at the first instance.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dimse::tls::{TlsClientOptions, TlsVersions};
use dimse::{IdentityKind, Security, UserIdentity};
use serde::Deserialize;
use toml::Spanned;

use super::{Loader, Span};
use crate::error::RulesError;
use crate::rules::ForwardDestination;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForward {
    host: String,
    port: u16,
    called_ae_title: String,
    calling_ae_title: Option<String>,
    max_attempts: Option<u32>,
    retry_initial_ms: Option<u64>,
    retry_max_ms: Option<u64>,
    tls: Option<Spanned<RawForwardTls>>,
    identity: Option<Spanned<RawForwardIdentity>>,
}

/// Like the `DICOM_TLS_*` variables, for one destination.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwardTls {
    /// PEM bundle of the CAs that sign the destination's certificate (default: the
    /// system's).
    ca_file: Option<PathBuf>,
    /// Our certificate chain and key, for a destination that requires client
    /// certificates: both or neither.
    certificate_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    /// The name the destination's certificate must carry (default: `host`).
    server_name: Option<String>,
    /// `"1.2,1.3"` (the default), `"1.3"`, ...
    versions: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// Like `DICOM_USER_IDENTITY`, `DICOM_USERNAME`, `DICOM_PASSCODE` and
/// `DICOM_IDENTITY_TOKEN`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwardIdentity {
    kind: Option<String>,
    user: Option<String>,
    passcode: Option<String>,
    token: Option<String>,
}

impl Loader<'_> {
    /// The destination of route `route`, which answers on `called_ae_title` (the
    /// default calling AE title of its forwarding).
    pub(super) fn forward(
        &self,
        route: &str,
        called_ae_title: &str,
        spanned: Spanned<RawForward>,
    ) -> Result<ForwardDestination, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let ae = |v: String, key| self.ae_title(&Spanned::new(span.clone(), v), key);
        let tls = match raw.tls {
            Some(tls) => Some(self.forward_tls(route, tls)?),
            None => None,
        };
        let identity = match raw.identity {
            Some(identity) => Some(self.forward_identity(route, identity)?),
            None => None,
        };
        Ok(ForwardDestination {
            host: raw.host,
            port: raw.port,
            called_ae_title: ae(raw.called_ae_title, "forward.called_ae_title")?,
            calling_ae_title: ae(
                raw.calling_ae_title
                    .unwrap_or_else(|| called_ae_title.to_string()),
                "forward.calling_ae_title",
            )?,
            max_attempts: raw.max_attempts,
            retry_initial: Duration::from_millis(raw.retry_initial_ms.unwrap_or(200)),
            retry_max: Duration::from_millis(raw.retry_max_ms.unwrap_or(10_000)),
            security: Security { tls, identity },
        })
    }

    fn forward_tls(
        &self,
        route: &str,
        spanned: Spanned<RawForwardTls>,
    ) -> Result<dimse::tls::TlsClient, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        let mut options = TlsClientOptions::new();
        if let Some(ca) = raw.ca_file {
            options = options.ca_bundle(self.relative(ca));
        }
        match (raw.certificate_file, raw.key_file) {
            (Some(certificate), Some(key)) => {
                options =
                    options.client_certificate(self.relative(certificate), self.relative(key));
            }
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(self.error(
                    &span,
                    format!(
                        "route \"{route}\": [route.forward.tls] needs certificate_file and key_file together (our certificate and its key), or neither"
                    ),
                ));
            }
        }
        if let Some(name) = raw.server_name {
            options = options.server_name(name);
        }
        if let Some(versions) = raw.versions {
            let parsed = versions.parse::<TlsVersions>().map_err(|e| {
                self.error(
                    &span,
                    format!("route \"{route}\": forward.tls.versions = \"{versions}\": {e}"),
                )
            })?;
            options = options.versions(parsed);
        }
        options = options.accept_invalid_certificates(raw.insecure_skip_verify);
        options
            .build()
            .map_err(|source| self.forward_tls_error(route, &span, source))
    }

    fn forward_tls_error(
        &self,
        route: &str,
        span: &Span,
        source: dimse::tls::TlsError,
    ) -> RulesError {
        let key = match source.file() {
            Some(("CA bundle", _)) => "forward.tls.ca_file",
            Some(("client certificate", _)) => "forward.tls.certificate_file",
            Some(("client key" | "key", _)) => "forward.tls.key_file",
            _ => "[route.forward.tls]",
        };
        RulesError::ForwardTls {
            file: self.file.to_string(),
            line: super::line_of(self.text, span.start),
            route: route.to_string(),
            key,
            source: Box::new(source),
        }
    }

    fn forward_identity(
        &self,
        route: &str,
        spanned: Spanned<RawForwardIdentity>,
    ) -> Result<UserIdentity, RulesError> {
        let span = spanned.span();
        let raw = spanned.into_inner();
        // Never put a passcode or token into a message: only which key is missing.
        let fail = |message: String| self.error(&span, format!("route \"{route}\": {message}"));
        let kind = match &raw.kind {
            Some(kind) => kind.parse::<IdentityKind>().map_err(|_| {
                fail(format!(
                    "forward.identity.kind = \"{kind}\": expected \"username\", \"username_passcode\", \"kerberos\", \"saml\" or \"jwt\""
                ))
            })?,
            None => match (&raw.user, &raw.passcode, &raw.token) {
                (Some(_), None, None) => IdentityKind::Username,
                (Some(_), Some(_), None) => IdentityKind::UsernamePasscode,
                (None, None, Some(_)) => {
                    return Err(fail(
                        "forward.identity.token needs kind = \"kerberos\", \"saml\" or \"jwt\" to say which kind of token it is".into(),
                    ));
                }
                _ => {
                    return Err(fail(
                        "[route.forward.identity] needs user (and passcode), or kind and token"
                            .into(),
                    ));
                }
            },
        };
        let needs = |key: &str| fail(format!("a {kind} identity needs forward.identity.{key}"));
        let stray = |key: &str| fail(format!("a {kind} identity has no forward.identity.{key}"));
        let identity = match kind {
            IdentityKind::Username | IdentityKind::UsernamePasscode => {
                if raw.token.is_some() {
                    return Err(stray("token"));
                }
                let user = raw.user.filter(|u| !u.trim().is_empty());
                let user = user.ok_or_else(|| needs("user"))?;
                match (kind, raw.passcode) {
                    (IdentityKind::Username, None) => UserIdentity::username(user),
                    (IdentityKind::Username, Some(_)) => return Err(stray("passcode")),
                    (_, Some(passcode)) => UserIdentity::username_passcode(user, passcode),
                    (_, None) => return Err(needs("passcode")),
                }
            }
            token_kind => {
                if raw.user.is_some() {
                    return Err(stray("user"));
                }
                if raw.passcode.is_some() {
                    return Err(stray("passcode"));
                }
                let token = raw.token.filter(|t| !t.is_empty());
                let token = token.ok_or_else(|| needs("token"))?;
                UserIdentity::token(token_kind, token).expect("a token kind")
            }
        };
        Ok(identity)
    }

    /// A path of the rules file: relative ones are relative to the file's folder.
    fn relative(&self, path: PathBuf) -> PathBuf {
        match self.dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    }
}

/// The folder of a rules file, against which its relative paths are read.
pub(super) fn folder_of(path: &Path) -> Option<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use dimse::IdentityKind;
    use test_pki::TestPki;

    use crate::rules::{ForwardDestination, Rules};

    const ROUTE: &str = "[[route]]\nname = \"R\"\ncalled_ae_title = \"ROUTER\"\ndeliver_to = \"forward\"\n\
        [route.forward]\nhost = \"pacs.example\"\nport = 2762\ncalled_ae_title = \"PACS\"\n";

    fn destination(extra: &str) -> Result<ForwardDestination, String> {
        let rules = Rules::from_toml_str(&format!("{ROUTE}{extra}"), "fwd.toml")
            .map_err(|e| e.to_string())?;
        Ok(rules.routes[0].delivery.forward.clone().unwrap())
    }

    fn error(extra: &str) -> String {
        destination(extra).expect_err("the rules should be refused")
    }

    #[test]
    fn without_tls_or_identity_tables_forwarding_is_plaintext_and_anonymous() {
        let forward = destination("").unwrap();
        assert!(!forward.security.uses_tls());
        assert_eq!(forward.security.identity, None);
    }

    #[test]
    fn the_tls_table_is_read_once_into_a_client_configuration() {
        let pki = TestPki::new().unwrap();
        let forward = destination(&format!(
            "[route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = {:?}\n\
             server_name = \"pacs.internal\"\nversions = \"1.3\"\n",
            pki.ca(),
            pki.client().certificate,
            pki.client().key
        ))
        .unwrap();
        let tls = forward.security.tls.expect("TLS on");
        let options = tls.options();
        assert!(options.verifies_peer());
        assert!(options.presents_certificate());
        assert_eq!(options.current_server_name(), Some("pacs.internal"));
        assert_eq!(options.current_versions().to_string(), "1.3");
    }

    #[test]
    fn relative_tls_files_are_found_beside_the_rules_file() {
        let pki = TestPki::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(pki.ca(), dir.path().join("pacs-ca.pem")).unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            format!("{ROUTE}[route.forward.tls]\nca_file = \"pacs-ca.pem\"\n"),
        )
        .unwrap();
        let rules = Rules::from_file(&path).unwrap();
        let forward = rules.routes[0].delivery.forward.as_ref().unwrap();
        assert!(forward.security.uses_tls());
    }

    #[test]
    fn a_missing_tls_file_names_the_route_the_key_the_file_and_the_line() {
        let pki = TestPki::new().unwrap();
        let err = error(&format!(
            "[route.forward.tls]\nca_file = {:?}\ncertificate_file = {:?}\nkey_file = \"/nonexistent/router.key\"\n",
            pki.ca(),
            pki.client().certificate,
        ));
        assert!(err.starts_with("Bad rules file: fwd.toml:"), "{err}");
        assert!(err.contains("route \"R\""), "{err}");
        assert!(err.contains("forward.tls.key_file"), "{err}");
        assert!(err.contains("/nonexistent/router.key"), "{err}");

        let err = error("[route.forward.tls]\nca_file = \"/nonexistent/ca.pem\"\n");
        assert!(err.contains("forward.tls.ca_file"), "{err}");
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn a_certificate_without_its_key_and_unknown_versions_are_refused() {
        let err = error("[route.forward.tls]\ncertificate_file = \"router.pem\"\n");
        assert!(
            err.contains("certificate_file and key_file together"),
            "{err}"
        );
        let err = error("[route.forward.tls]\nversions = \"1.1\"\n");
        assert!(err.contains("forward.tls.versions = \"1.1\""), "{err}");
        let err = error("[route.forward.tls]\nverify = false\n");
        assert!(err.contains("unknown field `verify`"), "{err}");
    }

    #[test]
    fn the_identity_kind_follows_from_the_keys_given_or_is_stated() {
        let kind = |extra: &str| {
            destination(&format!("[route.forward.identity]\n{extra}"))
                .unwrap()
                .security
                .identity
                .unwrap()
                .kind()
        };
        assert_eq!(kind("user = \"router\""), IdentityKind::Username);
        assert_eq!(
            kind("user = \"router\"\npasscode = \"p\""),
            IdentityKind::UsernamePasscode
        );
        assert_eq!(kind("kind = \"jwt\"\ntoken = \"eyJ\""), IdentityKind::Jwt);
        assert_eq!(
            kind("kind = \"saml\"\ntoken = \"<x/>\""),
            IdentityKind::SamlAssertion
        );
        assert_eq!(
            kind("kind = \"kerberos\"\ntoken = \"t\""),
            IdentityKind::KerberosTicket
        );
    }

    #[test]
    fn an_incomplete_identity_says_what_is_missing_and_never_shows_a_secret() {
        let cases = [
            ("token = \"T0KEN-SECRET\"", "needs kind"),
            ("kind = \"jwt\"", "needs forward.identity.token"),
            (
                "kind = \"username_passcode\"\nuser = \"router\"",
                "needs forward.identity.passcode",
            ),
            ("passcode = \"T0KEN-SECRET\"", "needs user"),
            (
                "kind = \"username\"\nuser = \"r\"\npasscode = \"T0KEN-SECRET\"",
                "has no forward.identity.passcode",
            ),
            (
                "kind = \"jwt\"\ntoken = \"T0KEN-SECRET\"\nuser = \"r\"",
                "has no forward.identity.user",
            ),
            (
                "kind = \"password\"\nuser = \"r\"",
                "forward.identity.kind = \"password\"",
            ),
        ];
        for (table, expected) in cases {
            let err = error(&format!("[route.forward.identity]\n{table}\n"));
            assert!(err.contains(expected), "{table}: {err}");
            assert!(err.contains("route \"R\""), "{err}");
            assert!(!err.contains("T0KEN-SECRET"), "{err}");
        }
        let forward = destination(
            "[route.forward.identity]\nuser = \"router\"\npasscode = \"T0KEN-SECRET\"\n",
        )
        .unwrap();
        assert!(!format!("{forward:?}").contains("T0KEN-SECRET"));
    }
}
