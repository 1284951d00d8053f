//! Command-line flags for DICOM over TLS and the user identity, shared by the
//! workspace's binaries (feature `cli`): the same names and meanings in `sender` and
//! `cfind`, in the style of DCMTK's `+tls`, `+cf` and `--user`.
//!
//! The flags only build a [`Security`]; the libraries never see them.

use std::path::PathBuf;

use clap::Args;

use crate::{Security, UserIdentity};

/// DICOM over TLS and the user identity, like DCMTK's `+tls`, `+cf`, `--user`; given
/// at all, they replace the defaults' TLS (or identity) as a whole.
#[derive(Args, Debug, Default)]
pub struct SecurityArgs {
    /// DICOM over TLS, verifying the peer against the system's CAs (unless --tls-ca).
    #[arg(long, global = true)]
    tls: bool,
    /// PEM bundle of the CAs that sign the peer's certificate (implies --tls).
    #[arg(long, global = true, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Our certificate chain, for a peer that requires client certificates (implies --tls).
    #[arg(long, global = true, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The key of --tls-cert.
    #[arg(long, global = true, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The name the peer's certificate must carry (default: HOST).
    #[arg(long, global = true, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// TLS versions allowed: 1.2, 1.3 or 1.2,1.3 (the default).
    #[arg(long, global = true, value_name = "LIST")]
    tls_versions: Option<crate::tls::TlsVersions>,
    /// Insecure: accept any certificate the peer shows (implies --tls).
    #[arg(long, global = true)]
    tls_insecure_skip_verify: bool,
    /// Send this user name as user identity.
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
    /// With --user: the environment variable holding its passcode (never the passcode
    /// itself, which other users of the machine would see in the process list).
    #[arg(long, global = true, value_name = "VARIABLE", requires = "user")]
    passcode_env: Option<String>,
}

impl SecurityArgs {
    /// Whether any TLS flag was given.
    pub fn wants_tls(&self) -> bool {
        self.tls
            || self.tls_ca.is_some()
            || self.tls_cert.is_some()
            || self.tls_server_name.is_some()
            || self.tls_versions.is_some()
            || self.tls_insecure_skip_verify
    }

    /// The defaults' security with what these flags replace.
    pub fn apply(&self, defaults: &Security) -> Result<Security, SecurityArgsError> {
        let mut security = defaults.clone();
        if self.wants_tls() {
            let mut tls = crate::tls::TlsClientOptions::new()
                .accept_invalid_certificates(self.tls_insecure_skip_verify);
            if let Some(ca) = &self.tls_ca {
                tls = tls.ca_bundle(ca);
            }
            if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
                tls = tls.client_certificate(cert, key);
            }
            if let Some(name) = &self.tls_server_name {
                tls = tls.server_name(name);
            }
            if let Some(versions) = self.tls_versions {
                tls = tls.versions(versions);
            }
            let built = tls.build().map_err(|e| {
                let flag = match e.file() {
                    Some(("CA bundle", _)) => "--tls-ca",
                    Some(("client certificate", _)) => "--tls-cert",
                    Some(_) => "--tls-key",
                    None => "--tls",
                };
                SecurityArgsError {
                    flag,
                    detail: e.to_string(),
                }
            })?;
            security.tls = Some(built);
        }
        if let Some(user) = &self.user {
            security.identity = Some(match &self.passcode_env {
                None => UserIdentity::username(user),
                Some(variable) => {
                    let passcode = std::env::var(variable).map_err(|_| SecurityArgsError {
                        flag: "--passcode-env",
                        detail: format!(
                            "{variable} is not set (or not UTF-8): export the passcode in it"
                        ),
                    })?;
                    UserIdentity::username_passcode(user, passcode)
                }
            });
        }
        Ok(security)
    }
}

/// A flag whose value cannot be used: names the flag and why.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {detail}")]
pub struct SecurityArgsError {
    /// The flag at fault (`--tls-ca`, `--passcode-env`, ...).
    pub flag: &'static str,
    /// What is wrong, naming the file or variable.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        security: SecurityArgs,
    }

    fn parse(args: &[&str]) -> Result<SecurityArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("test").chain(args.iter().copied()))
            .map(|cli| cli.security)
    }

    #[test]
    fn no_flag_keeps_the_defaults_security() {
        let defaults = Security {
            tls: None,
            identity: Some(UserIdentity::username("from-defaults")),
        };
        let security = parse(&[]).unwrap().apply(&defaults).unwrap();
        assert_eq!(security, defaults);
    }

    #[test]
    fn tls_flags_build_one_client_configuration() {
        let pki = test_pki::TestPki::new().unwrap();
        let client = pki.client();
        let args = parse(&[
            "--tls-ca",
            pki.ca().to_str().unwrap(),
            "--tls-cert",
            client.certificate.to_str().unwrap(),
            "--tls-key",
            client.key.to_str().unwrap(),
            "--tls-server-name",
            "pacs.internal",
            "--tls-versions",
            "1.3",
            "--user",
            "modality1",
        ])
        .unwrap();
        let security = args.apply(&Security::plain()).unwrap();
        let tls = security.tls.expect("TLS on");
        assert!(tls.options().presents_certificate());
        assert!(tls.options().verifies_peer());
        assert_eq!(tls.options().current_server_name(), Some("pacs.internal"));
        assert_eq!(tls.options().current_versions().to_string(), "1.3");
        assert_eq!(security.identity, Some(UserIdentity::username("modality1")));
    }

    #[test]
    fn bad_flags_are_refused_naming_the_flag() {
        assert!(parse(&["--tls-cert", "a.pem"]).is_err());
        assert!(parse(&["--passcode-env", "X"]).is_err());
        assert!(parse(&["--tls-versions", "1.0"]).is_err());
        let err = parse(&["--tls-ca", "/nonexistent/ca.pem"])
            .unwrap()
            .apply(&Security::plain())
            .unwrap_err();
        assert_eq!(err.flag, "--tls-ca");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let err = parse(&["--user", "u", "--passcode-env", "DIMSE_TEST_UNSET_VARIABLE"])
            .unwrap()
            .apply(&Security::plain())
            .unwrap_err();
        assert!(
            err.to_string().contains("DIMSE_TEST_UNSET_VARIABLE"),
            "{err}"
        );
    }
}
