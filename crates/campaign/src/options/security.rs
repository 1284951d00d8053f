//! The configuration's `DICOM_TLS*` and identity variables as the one
//! [`dimse::Security`] every SCU role uses.

use config::TestConfig;
use dimse::Security;

use crate::CampaignError;

/// TLS (its files read and checked now) and the user identity of the configuration.
///
/// # Errors
/// [`CampaignError::Tls`] naming the variable whose file is missing, unreadable, not
/// PEM, or a key that does not fit its certificate.
pub fn security(config: &TestConfig) -> Result<Security, CampaignError> {
    let settings = &config.security;
    let tls = match &settings.tls {
        None => None,
        Some(tls) => Some(tls.client_options().build().map_err(|source| {
            let variable = match source.file() {
                Some(("CA bundle", _)) => "DICOM_TLS_CA_FILE",
                Some(("client certificate", _)) => "DICOM_TLS_CERT_FILE",
                Some(("client key" | "key", _)) => "DICOM_TLS_KEY_FILE",
                _ => "DICOM_TLS",
            };
            CampaignError::Tls {
                variable,
                source: Box::new(source),
            }
        })?),
    };
    Ok(Security {
        tls,
        identity: settings.identity.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_tls_the_associations_are_plain() {
        let config = TestConfig::from_map([("DICOM_USERNAME", "tech")]).unwrap();
        let security = security(&config).unwrap();
        assert!(!security.uses_tls());
        assert_eq!(security.identity.unwrap().user_name(), Some("tech"));
    }

    #[test]
    fn a_missing_tls_file_names_its_variable_and_the_file() {
        let config = TestConfig::from_map([
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_CA_FILE", "/nonexistent/site-ca.pem"),
        ])
        .unwrap();
        let message = security(&config).unwrap_err().to_string();
        assert!(
            message.starts_with(
                "DICOM_TLS_CA_FILE: cannot read the CA bundle /nonexistent/site-ca.pem"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_key_file_that_is_not_a_key_names_the_key_variable() {
        let pki = test_pki::TestPki::new().unwrap();
        let certificate = pki.client().certificate;
        let certificate = certificate.to_str().unwrap();
        let config = TestConfig::from_map([
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_CA_FILE", pki.ca().to_str().unwrap()),
            ("DICOM_TLS_CERT_FILE", certificate),
            ("DICOM_TLS_KEY_FILE", certificate),
        ])
        .unwrap();
        let message = security(&config).unwrap_err().to_string();
        assert!(message.starts_with("DICOM_TLS_KEY_FILE: "), "{message}");
        assert!(message.contains(certificate), "{message}");
    }

    #[test]
    fn readable_files_make_a_tls_configuration() {
        let pki = test_pki::TestPki::new().unwrap();
        let config = TestConfig::from_map([
            ("DICOM_TLS", "true"),
            ("DICOM_TLS_CA_FILE", pki.ca().to_str().unwrap()),
            (
                "DICOM_TLS_CERT_FILE",
                pki.client().certificate.to_str().unwrap(),
            ),
            ("DICOM_TLS_KEY_FILE", pki.client().key.to_str().unwrap()),
        ])
        .unwrap();
        let tls = security(&config).unwrap().tls.unwrap();
        assert!(tls.options().presents_certificate());
        assert!(tls.options().verifies_peer());
    }
}
