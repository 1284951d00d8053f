//! `DICOM_TLS*` and the user identity variables: how every association of a run is
//! secured (DICOM over TLS, PS3.15 Annex B; user identity, PS3.7 D.3.3.7).
//!
//! | Variable | Meaning | Default |
//! |---|---|---|
//! | `DICOM_TLS` | DICOM over TLS for every association (C-STORE, C-FIND) | `false` |
//! | `DICOM_TLS_CA_FILE` | PEM bundle of the CAs that sign the router's certificate | the system's CAs |
//! | `DICOM_TLS_CERT_FILE`, `DICOM_TLS_KEY_FILE` | our certificate chain and key (mutual TLS), both or neither | none |
//! | `DICOM_TLS_SERVER_NAME` | the name the router's certificate must carry | the host connected to |
//! | `DICOM_TLS_VERSIONS` | versions allowed, e.g. `1.2,1.3` or `1.3` | `1.2,1.3` (BCP 195) |
//! | `DICOM_TLS_INSECURE_SKIP_VERIFY` | accept any router certificate: encrypted, not authenticated | `false` |
//! | `DICOM_USER_IDENTITY` | `username`, `username-passcode`, `kerberos`, `saml` or `jwt` | from the two below |
//! | `DICOM_USERNAME`, `DICOM_PASSCODE` | the user name, and its passcode | none |
//! | `DICOM_IDENTITY_TOKEN` | the Kerberos ticket, SAML assertion or JWT, sent as given | none |
//!
//! Passcodes and tokens are never printed: not in errors, not in the report.

use std::path::PathBuf;

use dimse::tls::{TlsClientOptions, TlsVersions};
use dimse::{IdentityKind, IdentitySummary, UserIdentity};
use serde::{Serialize, Serializer};

use crate::parse::{self, Reader};
use crate::{BaseDirs, ConfigError, Dataset};

/// How associations are secured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SecuritySettings {
    /// `DICOM_TLS` and its companions; `None`: plaintext DICOM.
    pub tls: Option<TlsSettings>,
    /// The user identity sent, if any (shown as its kind and user name only).
    #[serde(serialize_with = "identity_summary")]
    pub identity: Option<UserIdentity>,
}

/// The TLS settings of `DICOM_TLS=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    /// `DICOM_TLS_CA_FILE`; `None`: the system's CA bundle.
    pub ca_file: Option<PathBuf>,
    /// `DICOM_TLS_CERT_FILE`.
    pub certificate_file: Option<PathBuf>,
    /// `DICOM_TLS_KEY_FILE`.
    pub key_file: Option<PathBuf>,
    /// `DICOM_TLS_SERVER_NAME`.
    pub server_name: Option<String>,
    /// `DICOM_TLS_VERSIONS`.
    pub versions: TlsVersions,
    /// `DICOM_TLS_INSECURE_SKIP_VERIFY`.
    pub insecure_skip_verify: bool,
}

impl TlsSettings {
    /// The client options these settings stand for (files are read when they are
    /// built: [`TlsClientOptions::build`]).
    pub fn client_options(&self) -> TlsClientOptions {
        let mut options = TlsClientOptions::new()
            .versions(self.versions)
            .accept_invalid_certificates(self.insecure_skip_verify);
        if let Some(ca) = &self.ca_file {
            options = options.ca_bundle(ca);
        }
        if let (Some(certificate), Some(key)) = (&self.certificate_file, &self.key_file) {
            options = options.client_certificate(certificate, key);
        }
        if let Some(name) = &self.server_name {
            options = options.server_name(name);
        }
        options
    }
}

fn identity_summary<S: Serializer>(
    identity: &Option<UserIdentity>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    identity
        .as_ref()
        .map(UserIdentity::summary)
        .serialize(serializer)
}

impl SecuritySettings {
    /// TLS in words, for the report: `off`, or the versions, how the router is
    /// verified and whether we present a certificate.
    pub fn tls_text(&self) -> String {
        let Some(tls) = &self.tls else {
            return "off".to_owned();
        };
        let verified = if tls.insecure_skip_verify {
            "router NOT verified (DICOM_TLS_INSECURE_SKIP_VERIFY)".to_owned()
        } else {
            let by = tls.ca_file.as_ref().map_or_else(
                || "the system's CAs".to_owned(),
                |ca| ca.display().to_string(),
            );
            match &tls.server_name {
                Some(name) => format!("router verified against {by} as {name}"),
                None => format!("router verified against {by}"),
            }
        };
        let client = match &tls.certificate_file {
            Some(certificate) => format!("client certificate {}", certificate.display()),
            None => "no client certificate".to_owned(),
        };
        format!("on: TLS {}; {verified}; {client}", tls.versions)
    }

    /// The identity's summary (kind and user name), if an identity is sent.
    pub fn identity_summary(&self) -> Option<IdentitySummary> {
        self.identity.as_ref().map(UserIdentity::summary)
    }

    pub(crate) fn read(reader: &mut Reader<'_>, dirs: Option<&BaseDirs>) -> Self {
        Self {
            tls: read_tls(reader, dirs),
            identity: read_identity(reader),
        }
    }
}

fn read_tls(reader: &mut Reader<'_>, dirs: Option<&BaseDirs>) -> Option<TlsSettings> {
    let on = reader.value_or("DICOM_TLS", false, parse::boolean);
    let file = |reader: &mut Reader<'_>, name: &str| {
        reader.value(name, parse::path).map(|path| match dirs {
            Some(dirs) => Dataset::resolve(&path, dirs),
            None => path,
        })
    };
    let ca_file = file(reader, "DICOM_TLS_CA_FILE");
    let certificate_file = file(reader, "DICOM_TLS_CERT_FILE");
    let key_file = file(reader, "DICOM_TLS_KEY_FILE");
    let server_name = reader.value("DICOM_TLS_SERVER_NAME", parse::host);
    let versions = reader.value_or("DICOM_TLS_VERSIONS", TlsVersions::BCP_195, |raw| {
        raw.parse::<TlsVersions>().map_err(|e| e.to_string())
    });
    let insecure_skip_verify =
        reader.value_or("DICOM_TLS_INSECURE_SKIP_VERIFY", false, parse::boolean);
    for (present, missing, value) in [
        ("DICOM_TLS_CERT_FILE", "DICOM_TLS_KEY_FILE", &key_file),
        (
            "DICOM_TLS_KEY_FILE",
            "DICOM_TLS_CERT_FILE",
            &certificate_file,
        ),
    ] {
        if reader.raw(present).is_some() && value.is_none() && reader.raw(missing).is_none() {
            reader.push(ConfigError::Requires {
                variable: present.into(),
                needs: format!("{missing} is not"),
                why: "a client certificate (mutual TLS) needs both its chain and its key".into(),
            });
        }
    }
    if insecure_skip_verify && ca_file.is_some() && on {
        reader.push(ConfigError::Requires {
            variable: "DICOM_TLS_INSECURE_SKIP_VERIFY".into(),
            needs: "so is DICOM_TLS_CA_FILE".into(),
            why: "a CA bundle is pointless when no certificate is verified: drop one of them"
                .into(),
        });
    }
    on.then_some(TlsSettings {
        ca_file,
        certificate_file,
        key_file,
        server_name,
        versions,
        insecure_skip_verify,
    })
}

fn read_identity(reader: &mut Reader<'_>) -> Option<UserIdentity> {
    let kind = reader.value("DICOM_USER_IDENTITY", |raw| {
        raw.parse::<IdentityKind>()
            .map_err(|_| "username, username-passcode, kerberos, saml or jwt".to_string())
    });
    // Secrets: read as they are, and never passed to `invalid`, which would print them.
    let username = reader.raw("DICOM_USERNAME").map(|u| u.trim().to_string());
    let passcode = reader.raw("DICOM_PASSCODE").map(str::to_string);
    let token = reader.raw("DICOM_IDENTITY_TOKEN").map(str::to_string);
    let kind = match kind {
        Some(kind) => kind,
        None if reader.raw("DICOM_USER_IDENTITY").is_some() => return None,
        None => match (&username, &passcode, &token) {
            (None, None, None) => return None,
            (Some(_), None, _) => IdentityKind::Username,
            (Some(_), Some(_), _) => IdentityKind::UsernamePasscode,
            (None, Some(_), _) => {
                reader.push(requires(
                    "DICOM_PASSCODE",
                    "DICOM_USERNAME is not",
                    "a passcode belongs to a user name",
                ));
                return None;
            }
            (None, None, Some(_)) => {
                reader.push(requires(
                    "DICOM_IDENTITY_TOKEN",
                    "DICOM_USER_IDENTITY is not",
                    "say which kind of token it is: kerberos, saml or jwt",
                ));
                return None;
            }
        },
    };
    let missing = |reader: &mut Reader<'_>, variable: &str| {
        reader.push(requires(
            "DICOM_USER_IDENTITY",
            &format!("{variable} is not"),
            &format!("a {kind} identity needs it"),
        ));
    };
    match kind {
        IdentityKind::Username => match username {
            Some(user) => Some(UserIdentity::username(user)),
            None => {
                missing(reader, "DICOM_USERNAME");
                None
            }
        },
        IdentityKind::UsernamePasscode => match (username, passcode) {
            (Some(user), Some(passcode)) => Some(UserIdentity::username_passcode(user, passcode)),
            (None, _) => {
                missing(reader, "DICOM_USERNAME");
                None
            }
            (_, None) => {
                missing(reader, "DICOM_PASSCODE");
                None
            }
        },
        token_kind => match token {
            Some(token) => UserIdentity::token(token_kind, token),
            None => {
                missing(reader, "DICOM_IDENTITY_TOKEN");
                None
            }
        },
    }
}

fn requires(variable: &str, needs: &str, why: &str) -> ConfigError {
    ConfigError::Requires {
        variable: variable.into(),
        needs: needs.into(),
        why: why.into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::TestConfig;
    use dimse::IdentityKind;
    use dimse::tls::TlsVersions;

    fn load(vars: &[(&str, &str)]) -> Result<TestConfig, crate::ConfigError> {
        TestConfig::from_map(vars.iter().copied())
    }

    #[test]
    fn without_tls_variables_nothing_is_secured() {
        let config = load(&[]).unwrap();
        assert_eq!(config.security.tls, None);
        assert_eq!(config.security.identity, None);
    }

    #[test]
    fn tls_settings_are_read_with_bcp_195_versions_and_verification_by_default() {
        let config = load(&[
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_CA_FILE", "/etc/dicom/ca.pem"),
            ("DICOM_TLS_CERT_FILE", "/etc/dicom/me.pem"),
            ("DICOM_TLS_KEY_FILE", "/etc/dicom/me.key"),
            ("DICOM_TLS_SERVER_NAME", "compass.example.org"),
        ])
        .unwrap();
        let tls = config.security.tls.unwrap();
        assert_eq!(tls.versions, TlsVersions::BCP_195);
        assert!(!tls.insecure_skip_verify);
        let options = tls.client_options();
        assert!(options.verifies_peer());
        assert!(options.presents_certificate());
        assert_eq!(options.current_server_name(), Some("compass.example.org"));
    }

    #[test]
    fn bad_tls_values_name_their_variable() {
        let error = load(&[("DICOM_TLS", "maybe"), ("DICOM_TLS_VERSIONS", "1.0")])
            .unwrap_err()
            .to_string();
        assert!(error.contains(r#"DICOM_TLS="maybe""#), "{error}");
        assert!(error.contains(r#"DICOM_TLS_VERSIONS="1.0""#), "{error}");
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let error = load(&[("DICOM_TLS", "1"), ("DICOM_TLS_CERT_FILE", "/x/me.pem")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("DICOM_TLS_CERT_FILE is set but DICOM_TLS_KEY_FILE is not"),
            "{error}"
        );
    }

    #[test]
    fn the_insecure_switch_is_read_and_turns_verification_off() {
        let config = load(&[
            ("DICOM_TLS", "yes"),
            ("DICOM_TLS_INSECURE_SKIP_VERIFY", "true"),
        ])
        .unwrap();
        assert!(
            !config
                .security
                .tls
                .unwrap()
                .client_options()
                .verifies_peer()
        );
    }

    #[test]
    fn a_user_name_and_passcode_make_that_identity_and_the_passcode_stays_hidden() {
        let config = load(&[
            ("DICOM_USERNAME", "modality1"),
            ("DICOM_PASSCODE", "hunter2"),
        ])
        .unwrap();
        let identity = config.security.identity.clone().unwrap();
        assert_eq!(identity.kind(), IdentityKind::UsernamePasscode);
        assert_eq!(identity.passcode(), Some("hunter2"));
        let shown = format!(
            "{config:?} {}",
            serde_json::to_string(&config.security).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("modality1"), "{shown}");
    }

    #[test]
    fn a_token_kind_needs_its_token_and_the_token_is_never_printed() {
        let error = load(&[("DICOM_USER_IDENTITY", "jwt")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("DICOM_USER_IDENTITY is set but DICOM_IDENTITY_TOKEN is not"),
            "{error}"
        );
        let config = load(&[
            ("DICOM_USER_IDENTITY", "jwt"),
            ("DICOM_IDENTITY_TOKEN", "eyJsecret"),
        ])
        .unwrap();
        assert_eq!(
            config.security.identity.as_ref().unwrap().kind(),
            IdentityKind::Jwt
        );
        assert!(!format!("{config:?}").contains("eyJsecret"));
        let error = load(&[("DICOM_IDENTITY_TOKEN", "eyJsecret")])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("eyJsecret"), "{error}");
        assert!(error.contains("DICOM_USER_IDENTITY is not"), "{error}");
    }

    fn summary_value(config: &TestConfig, key: &str) -> String {
        config
            .summary()
            .into_iter()
            .find(|row| row.section == "security" && row.key == key)
            .map(|row| row.value)
            .unwrap()
    }

    #[test]
    fn the_report_says_how_the_router_is_verified_and_who_we_are() {
        let plain = load(&[]).unwrap();
        assert_eq!(summary_value(&plain, "tls"), "off");
        assert_eq!(summary_value(&plain, "user_identity"), "none");
        let secured = load(&[
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_CA_FILE", "/etc/dicom/ca.pem"),
            ("DICOM_TLS_SERVER_NAME", "compass.example.org"),
            ("DICOM_TLS_VERSIONS", "1.3"),
            ("DICOM_USERNAME", "modality1"),
            ("DICOM_PASSCODE", "hunter2"),
        ])
        .unwrap();
        assert_eq!(
            summary_value(&secured, "tls"),
            "on: TLS 1.3; router verified against /etc/dicom/ca.pem as compass.example.org; no client certificate"
        );
        assert_eq!(
            summary_value(&secured, "user_identity"),
            "user name and passcode (modality1)"
        );
        let insecure = load(&[
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_INSECURE_SKIP_VERIFY", "1"),
        ])
        .unwrap();
        assert!(summary_value(&insecure, "tls").contains("router NOT verified"));
    }

    #[test]
    fn an_unknown_identity_kind_is_named() {
        let error = load(&[("DICOM_USER_IDENTITY", "password")])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(r#"DICOM_USER_IDENTITY="password""#),
            "{error}"
        );
        let error = load(&[("DICOM_PASSCODE", "x")]).unwrap_err().to_string();
        assert!(error.contains("DICOM_USERNAME is not"), "{error}");
    }
}
