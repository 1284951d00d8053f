//! Throwaway certificates for TLS tests, benches and the embedded router's TLS port,
//! made when they run: no private key is ever committed, and every file is removed
//! with its [`TestPki`]. They vouch for nothing outside the process that made them.
//!
//! One [`TestPki`] holds a CA and the certificates that the good and bad cases of a
//! DICOM TLS test need, as PEM files that rustls and OpenSSL (DCMTK's `+tls KEY CERT`,
//! `+cf CA`) both read:
//!
//! - [`TestPki::server`]: signed by the CA, for `localhost` and `127.0.0.1`;
//! - [`TestPki::client`]: signed by the CA, for mutual TLS;
//! - [`TestPki::expired_server`]: signed by the CA, valid only in the past;
//! - [`TestPki::other_name_server`]: signed by the CA, for a name that is not this host;
//! - [`TestPki::stranger_server`] and [`TestPki::stranger_client`]: signed by
//!   another CA ([`TestPki::stranger_ca`]), which the peer does not trust.
//!
//! ```
//! let pki = test_pki::TestPki::new()?;
//! assert!(pki.ca().exists());
//! assert!(pki.server().key.exists());
//! # Ok::<(), test_pki::PkiError>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, date_time_ymd,
};

/// A certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedKey {
    /// The certificate (PEM).
    pub certificate: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused a certificate.
    #[error("cannot make the test certificate {name}: {source}")]
    Certificate {
        /// Which certificate.
        name: &'static str,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// The files could not be written.
    #[error("cannot write the test certificates: {0}")]
    Io(#[from] std::io::Error),
}

/// A CA and the certificates of every TLS test case, in a temporary folder removed
/// on drop.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

const SERVER_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

impl TestPki {
    /// Makes the CAs and every certificate (a few milliseconds: ECDSA P-256 keys).
    ///
    /// # Errors
    /// [`PkiError`] when rcgen or the file system fails.
    pub fn new() -> Result<TestPki, PkiError> {
        let dir = tempfile::Builder::new().prefix("test-pki-").tempdir()?;
        let pki = TestPki { dir };
        let ca = pki.write_ca("ca", "dicom-auto test CA")?;
        let stranger = pki.write_ca("stranger-ca", "a CA nobody trusts")?;
        pki.write_leaf(
            "server",
            &ca,
            &SERVER_NAMES,
            Validity::Current,
            Role::Server,
        )?;
        pki.write_leaf(
            "client",
            &ca,
            &["DICOM-AUTO"],
            Validity::Current,
            Role::Client,
        )?;
        pki.write_leaf(
            "expired-server",
            &ca,
            &SERVER_NAMES,
            Validity::Past,
            Role::Server,
        )?;
        pki.write_leaf(
            "other-name-server",
            &ca,
            &["pacs.invalid"],
            Validity::Current,
            Role::Server,
        )?;
        pki.write_leaf(
            "stranger-server",
            &stranger,
            &SERVER_NAMES,
            Validity::Current,
            Role::Server,
        )?;
        pki.write_leaf(
            "stranger-client",
            &stranger,
            &["DICOM-AUTO"],
            Validity::Current,
            Role::Client,
        )?;
        Ok(pki)
    }

    /// The folder holding every file.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate that signs the server and client certificates (PEM).
    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }

    /// The CA's private key, for tests that must sign more.
    pub fn ca_key(&self) -> PathBuf {
        self.path("ca.key")
    }

    /// A CA that signed only the stranger certificates.
    pub fn stranger_ca(&self) -> PathBuf {
        self.path("stranger-ca.pem")
    }

    /// The server certificate for `localhost` and `127.0.0.1`, signed by [`ca`](Self::ca).
    pub fn server(&self) -> CertifiedKey {
        self.pair("server")
    }

    /// A client certificate (mutual TLS), signed by [`ca`](Self::ca).
    pub fn client(&self) -> CertifiedKey {
        self.pair("client")
    }

    /// A server certificate for this host that expired in 2001.
    pub fn expired_server(&self) -> CertifiedKey {
        self.pair("expired-server")
    }

    /// A server certificate for `pacs.invalid`: a host name mismatch here.
    pub fn other_name_server(&self) -> CertifiedKey {
        self.pair("other-name-server")
    }

    /// A server certificate for this host signed by [`stranger_ca`](Self::stranger_ca).
    pub fn stranger_server(&self) -> CertifiedKey {
        self.pair("stranger-server")
    }

    /// A client certificate signed by [`stranger_ca`](Self::stranger_ca).
    pub fn stranger_client(&self) -> CertifiedKey {
        self.pair("stranger-client")
    }

    /// The command-line flags (`dimse::cli`, as `sender` and `cfind` take them) for
    /// mutual TLS trusting [`ca`](Self::ca) and presenting [`client`](Self::client).
    pub fn mutual_tls_flags(&self) -> Vec<String> {
        let client = self.client();
        [
            ("--tls-ca", self.ca()),
            ("--tls-cert", client.certificate),
            ("--tls-key", client.key),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn pair(&self, name: &str) -> CertifiedKey {
        CertifiedKey {
            certificate: self.path(&format!("{name}.pem")),
            key: self.path(&format!("{name}.key")),
        }
    }

    fn write_ca(
        &self,
        name: &'static str,
        common_name: &str,
    ) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let failed = |source| PkiError::Certificate { name, source };
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(failed)?;
        let certificate = params.self_signed(&key).map_err(failed)?;
        fs::write(self.path(&format!("{name}.pem")), certificate.pem())?;
        fs::write(self.path(&format!("{name}.key")), key.serialize_pem())?;
        Ok(Issuer::new(params, key))
    }

    fn write_leaf(
        &self,
        name: &'static str,
        issuer: &Issuer<'static, KeyPair>,
        names: &[&str],
        validity: Validity,
        role: Role,
    ) -> Result<(), PkiError> {
        let failed = |source| PkiError::Certificate { name, source };
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, names[0].as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match role {
            Role::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Role::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        match validity {
            Validity::Current => {
                params.not_before = date_time_ymd(2020, 1, 1);
                params.not_after = date_time_ymd(2200, 1, 1);
            }
            Validity::Past => {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
        }
        let key = KeyPair::generate().map_err(failed)?;
        let certificate = params.signed_by(&key, issuer).map_err(failed)?;
        fs::write(self.path(&format!("{name}.pem")), certificate.pem())?;
        fs::write(self.path(&format!("{name}.key")), key.serialize_pem())?;
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Validity {
    Current,
    Past,
}

#[derive(Clone, Copy)]
enum Role {
    Server,
    Client,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_certificate_and_key_is_a_pem_file() {
        let pki = TestPki::new().unwrap();
        let pairs = [
            pki.server(),
            pki.client(),
            pki.expired_server(),
            pki.other_name_server(),
            pki.stranger_server(),
            pki.stranger_client(),
        ];
        for pair in pairs {
            let certificate = fs::read_to_string(&pair.certificate).unwrap();
            assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
            let key = fs::read_to_string(&pair.key).unwrap();
            assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        }
    }

    #[test]
    fn the_files_go_with_the_pki() {
        let pki = TestPki::new().unwrap();
        let dir = pki.dir().to_path_buf();
        drop(pki);
        assert!(!dir.exists());
    }
}
