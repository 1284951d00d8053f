//! DICOM over TLS (PS3.15 Annex B, the secure transport connection profiles): the
//! rustls configurations of both sides, built from PEM files, and what a handshake
//! failure means in words a user can act on.
//!
//! - [`TlsClientOptions`] makes the client configuration of every SCU role (the
//!   sender, the C-FIND client, the simulator's forwarding): the CA bundle that
//!   verifies the peer, an optional client certificate (mutual TLS), the server name
//!   to verify, the protocol versions allowed.
//! - [`TlsServerOptions`] makes the configuration of a listener (the simulator, the
//!   sink): its certificate chain and key, and optionally the CAs whose client
//!   certificates it accepts or requires.
//! - [`TlsVersions`] defaults to TLS 1.2 and 1.3, as BCP 195 asks; rustls offers
//!   nothing older.
//! - [`TlsSession`] is what was negotiated (protocol version, cipher suite), for
//!   reports and logs.
//! - [`TlsFailure`] classifies a failed handshake (unknown CA, expired certificate,
//!   host name mismatch, no common version, a plaintext peer, ...).
//!
//! Every configuration uses the `ring` provider explicitly: nothing depends on a
//! process-wide default provider being installed.
//!
//! ```no_run
//! use dimse::tls::{TlsClientOptions, TlsVersions};
//!
//! let config = TlsClientOptions::new()
//!     .ca_bundle("/etc/dicom/ca.pem")
//!     .client_certificate("/etc/dicom/client.pem", "/etc/dicom/client.key")
//!     .versions(TlsVersions::TLS13_ONLY)
//!     .client_config()?;
//! # let _ = config;
//! # Ok::<(), dimse::tls::TlsError>(())
//! ```

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
    ServerConfig, SignatureScheme, SupportedProtocolVersion,
};
use serde::Serialize;

/// Where Debian, Ubuntu, Alpine (and, second, Fedora/RHEL) keep the system's CA
/// bundle: the verifying roots when no bundle is given.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// The TLS protocol versions an endpoint allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsVersions {
    tls12: bool,
    tls13: bool,
}

impl TlsVersions {
    /// TLS 1.2 and 1.3: BCP 195's recommendation, and the default.
    pub const BCP_195: TlsVersions = TlsVersions {
        tls12: true,
        tls13: true,
    };
    /// TLS 1.3 only.
    pub const TLS13_ONLY: TlsVersions = TlsVersions {
        tls12: false,
        tls13: true,
    };
    /// TLS 1.2 only (peers that cannot do 1.3).
    pub const TLS12_ONLY: TlsVersions = TlsVersions {
        tls12: true,
        tls13: false,
    };

    fn protocol_versions(self) -> Vec<&'static SupportedProtocolVersion> {
        let mut versions = Vec::with_capacity(2);
        if self.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        versions
    }
}

impl Default for TlsVersions {
    fn default() -> Self {
        TlsVersions::BCP_195
    }
}

impl fmt::Display for TlsVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.tls12, self.tls13) {
            (true, true) => f.write_str("1.2,1.3"),
            (true, false) => f.write_str("1.2"),
            (false, true) => f.write_str("1.3"),
            // Not constructible: parsing refuses an empty list.
            (false, false) => f.write_str("none"),
        }
    }
}

impl Serialize for TlsVersions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A list of TLS versions that is not `1.2`, `1.3` or both.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a list of TLS versions: expected 1.2 and/or 1.3, comma-separated (older versions are not allowed by BCP 195)"
)]
pub struct TlsVersionsError {
    text: String,
}

impl FromStr for TlsVersions {
    type Err = TlsVersionsError;

    /// `1.2`, `1.3`, `1.2,1.3` (also `TLSv1.2`, spaces ignored).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || TlsVersionsError { text: text.into() };
        let mut versions = TlsVersions {
            tls12: false,
            tls13: false,
        };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let number = part
                .strip_prefix("TLSv")
                .or_else(|| part.strip_prefix("tlsv"))
                .unwrap_or(part);
            match number {
                "1.2" => versions.tls12 = true,
                "1.3" => versions.tls13 = true,
                _ => return Err(error()),
            }
        }
        if versions.tls12 || versions.tls13 {
            Ok(versions)
        } else {
            Err(error())
        }
    }
}

/// The client side's TLS configuration, as a builder.
///
/// By default the peer is verified against the system's CA bundle
/// ([`SYSTEM_CA_BUNDLES`]), no client certificate is presented, and TLS 1.2 and 1.3
/// are allowed. The name verified in the peer's certificate is the one given to
/// [`TlsClientOptions::server_name`], or by default the host connected to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsClientOptions {
    ca_bundle: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
    versions: TlsVersions,
    accept_invalid_certificates: bool,
}

impl TlsClientOptions {
    /// Verify against the system's CAs, no client certificate, TLS 1.2 and 1.3.
    pub fn new() -> Self {
        TlsClientOptions::default()
    }

    /// The PEM file of the CAs that sign the peers' certificates.
    pub fn ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_bundle = Some(path.into());
        self
    }

    /// Present this certificate chain (PEM, leaf first) and private key (PEM:
    /// PKCS#8, PKCS#1 or SEC1) to the peer: mutual TLS.
    pub fn client_certificate(
        mut self,
        certificate_chain: impl Into<PathBuf>,
        private_key: impl Into<PathBuf>,
    ) -> Self {
        self.client_certificate = Some((certificate_chain.into(), private_key.into()));
        self
    }

    /// The name the peer's certificate must carry, when it is not the host
    /// connected to (e.g. a router reached by IP address whose certificate names
    /// its DNS name).
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The protocol versions allowed.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// **Insecure**: accept any certificate from the peer (unknown CA, expired, other
    /// name). The connection is still encrypted but not authenticated: anyone on the
    /// path can impersonate the router. For a first test of a router whose CA is not
    /// at hand, never for a sign-off.
    pub fn accept_invalid_certificates(mut self, accept: bool) -> Self {
        self.accept_invalid_certificates = accept;
        self
    }

    /// The explicit server name, if one was set.
    pub fn current_server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The versions allowed.
    pub fn current_versions(&self) -> TlsVersions {
        self.versions
    }

    /// Whether the peer's certificate is verified.
    pub fn verifies_peer(&self) -> bool {
        !self.accept_invalid_certificates
    }

    /// Whether a client certificate is presented.
    pub fn presents_certificate(&self) -> bool {
        self.client_certificate.is_some()
    }

    /// Reads the files and builds the rustls configuration.
    ///
    /// # Errors
    /// [`TlsError`] naming the file that is missing, unreadable or holds no usable
    /// certificate or key, or a key that does not match its certificate.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions.protocol_versions())
            .map_err(|source| TlsError::Config { source })?;
        let builder = if self.accept_invalid_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate {
                    algorithms: provider.signature_verification_algorithms,
                }))
        } else {
            let roots = match &self.ca_bundle {
                Some(path) => root_store(path, "CA bundle")?,
                None => system_root_store()?,
            };
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_certificate {
            Some((chain, key)) => builder
                .with_client_auth_cert(
                    load_certificates(chain, "client certificate")?,
                    load_private_key(key, "client key")?,
                )
                .map_err(|source| TlsError::KeyMismatch {
                    certificate: chain.clone(),
                    key: key.clone(),
                    source,
                })?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// A client TLS configuration read and checked once ([`TlsClientOptions::build`]),
/// shared by every association that uses it.
#[derive(Clone)]
pub struct TlsClient {
    options: TlsClientOptions,
    config: Arc<ClientConfig>,
}

impl TlsClientOptions {
    /// Reads the files once and keeps the configuration with its options.
    ///
    /// # Errors
    /// As [`TlsClientOptions::client_config`].
    pub fn build(&self) -> Result<TlsClient, TlsError> {
        Ok(TlsClient {
            config: self.client_config()?,
            options: self.clone(),
        })
    }
}

impl TlsClient {
    /// The options it was built from.
    pub fn options(&self) -> &TlsClientOptions {
        &self.options
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The name verified in the certificate of a peer reached at `host`: the
    /// explicit server name, or the host itself.
    pub fn server_name_for<'a>(&'a self, host: &'a str) -> &'a str {
        self.options.current_server_name().unwrap_or(host)
    }
}

impl PartialEq for TlsClient {
    fn eq(&self, other: &Self) -> bool {
        self.options == other.options
    }
}

impl Eq for TlsClient {}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TlsClient").field(&self.options).finish()
    }
}

/// The server side's TLS configuration, as a builder: a certificate chain and its
/// key, and optionally the CAs whose client certificates are accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsServerOptions {
    certificate_chain: PathBuf,
    private_key: PathBuf,
    client_ca_bundle: Option<PathBuf>,
    require_client_certificate: bool,
    versions: TlsVersions,
}

impl TlsServerOptions {
    /// Serve with this certificate chain (PEM, leaf first) and private key (PEM),
    /// TLS 1.2 and 1.3, asking no client certificate.
    pub fn new(certificate_chain: impl Into<PathBuf>, private_key: impl Into<PathBuf>) -> Self {
        TlsServerOptions {
            certificate_chain: certificate_chain.into(),
            private_key: private_key.into(),
            client_ca_bundle: None,
            require_client_certificate: false,
            versions: TlsVersions::default(),
        }
    }

    /// Accept client certificates signed by these CAs (PEM). A client without a
    /// certificate is still let in unless [`require_client_certificate`](Self::require_client_certificate).
    pub fn client_ca_bundle(mut self, path: impl Into<PathBuf>) -> Self {
        self.client_ca_bundle = Some(path.into());
        self
    }

    /// Refuse clients that present no certificate signed by the client CA bundle
    /// (which must then be given).
    pub fn require_client_certificate(mut self, require: bool) -> Self {
        self.require_client_certificate = require;
        self
    }

    /// The protocol versions allowed.
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// Reads the files and builds the rustls configuration.
    ///
    /// # Errors
    /// [`TlsError`] naming the file at fault, a key that does not match its
    /// certificate, or a client certificate required without a client CA bundle.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions.protocol_versions())
            .map_err(|source| TlsError::Config { source })?;
        let builder = match (&self.client_ca_bundle, self.require_client_certificate) {
            (None, true) => return Err(TlsError::ClientCaMissing),
            (None, false) => builder.with_no_client_auth(),
            (Some(path), require) => {
                let roots = Arc::new(root_store(path, "client CA bundle")?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if require {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| TlsError::Config {
                    source: rustls::Error::General(e.to_string()),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(
                load_certificates(&self.certificate_chain, "server certificate")?,
                load_private_key(&self.private_key, "server key")?,
            )
            .map_err(|source| TlsError::KeyMismatch {
                certificate: self.certificate_chain.clone(),
                key: self.private_key.clone(),
                source,
            })?;
        Ok(Arc::new(config))
    }
}

/// What a TLS handshake settled on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsSession {
    /// `TLSv1_3`, `TLSv1_2`.
    pub protocol_version: String,
    /// The IANA name, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
}

impl TlsSession {
    /// What `connection` negotiated (after its handshake).
    pub fn of(connection: &rustls::CommonState) -> TlsSession {
        let protocol_version = connection
            .protocol_version()
            .map(|v| v.as_str().map_or_else(|| format!("{v:?}"), str::to_string))
            .unwrap_or_else(|| "none".into());
        let cipher_suite = connection
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_string)
            })
            .unwrap_or_else(|| "none".into());
        TlsSession {
            protocol_version,
            cipher_suite,
        }
    }
}

impl fmt::Display for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.protocol_version, self.cipher_suite)
    }
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the {what} {}: {source}", path.display())]
    File {
        /// What the file is for (`CA bundle`, `client key`, ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds no PEM item of the expected kind, or a malformed one.
    #[error("the {what} {} holds no usable {expected} ({reason}); expected a PEM file", path.display())]
    Pem {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        expected: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No CA bundle was given and the system has none at the usual places.
    #[error(
        "no CA bundle was given and none of the system's ({}) exists: give the CA that signs the peer's certificate",
        SYSTEM_CA_BUNDLES.join(", ")
    )]
    NoSystemBundle,
    /// The private key does not belong to the certificate, or cannot be used.
    #[error("the key {} does not fit the certificate {}: {source}", key.display(), certificate.display())]
    KeyMismatch {
        /// The certificate chain file.
        certificate: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// Client certificates are required but no CA to verify them was given.
    #[error("client certificates are required but no client CA bundle was given to verify them")]
    ClientCaMissing,
    /// rustls refused the configuration.
    #[error("invalid TLS configuration: {source}")]
    Config {
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
}

impl TlsError {
    /// The file at fault and what it is for: `CA bundle`, `client certificate`,
    /// `client key`, `client CA bundle`, `server certificate` or `server key` (a key
    /// that does not fit its certificate counts as the key's fault).
    pub fn file(&self) -> Option<(&'static str, &Path)> {
        match self {
            TlsError::File { what, path, .. } | TlsError::Pem { what, path, .. } => {
                Some((what, path))
            }
            TlsError::KeyMismatch { key, .. } => Some(("key", key)),
            _ => None,
        }
    }
}

/// Why a TLS handshake failed, in the terms a user fixes it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The peer's certificate is signed by no CA we trust.
    UnknownIssuer,
    /// The peer's certificate has expired (or is not valid yet).
    CertificateExpired,
    /// The peer's certificate does not name the host (or server name) we asked for.
    NameMismatch,
    /// The peer's certificate was refused for another reason.
    BadCertificate(String),
    /// The two sides share no protocol version or cipher suite.
    NoCommonVersion,
    /// The peer refused our client certificate, or wanted one we did not send.
    ClientCertificateRefused(String),
    /// The peer answered with something that is not TLS: a plaintext port.
    NotTls,
    /// The peer closed the connection during the handshake.
    Closed,
    /// The handshake did not finish within the timeout.
    TimedOut,
    /// Anything else rustls or the socket reported.
    Other(String),
}

impl TlsFailure {
    /// Classifies the error a handshake (or the first read after it) ended with.
    pub fn classify(error: &io::Error) -> TlsFailure {
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return TlsFailure::from_rustls(tls);
        }
        match error.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TlsFailure::TimedOut,
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe => TlsFailure::Closed,
            _ => TlsFailure::Other(error.to_string()),
        }
    }

    /// Classifies a rustls error.
    pub fn from_rustls(error: &rustls::Error) -> TlsFailure {
        use rustls::Error as E;
        match error {
            E::InvalidCertificate(CertificateError::UnknownIssuer) => TlsFailure::UnknownIssuer,
            E::InvalidCertificate(
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. },
            ) => TlsFailure::CertificateExpired,
            E::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsFailure::NameMismatch,
            E::InvalidCertificate(other) => TlsFailure::BadCertificate(format!("{other:?}")),
            E::PeerIncompatible(_) => TlsFailure::NoCommonVersion,
            // Server side: the client sent no certificate where one is required.
            E::NoCertificatesPresented => {
                TlsFailure::ClientCertificateRefused("no client certificate presented".into())
            }
            E::AlertReceived(alert) => match alert {
                AlertDescription::ProtocolVersion | AlertDescription::InsufficientSecurity => {
                    TlsFailure::NoCommonVersion
                }
                AlertDescription::HandshakeFailure => TlsFailure::Other(
                    "the peer ended the handshake (handshake_failure): no common cipher suite or version, or it wanted a client certificate".into(),
                ),
                AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::AccessDenied => {
                    TlsFailure::ClientCertificateRefused(format!("{alert:?}"))
                }
                other => TlsFailure::Other(format!("the peer sent the alert {other:?}")),
            },
            E::InvalidMessage(_) | E::InappropriateMessage { .. } => TlsFailure::NotTls,
            other => TlsFailure::Other(other.to_string()),
        }
    }

    /// What to do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => {
                "give the CA that signed the peer's certificate as the CA bundle"
            }
            TlsFailure::CertificateExpired => {
                "the peer's certificate is outside its validity period: renew it (or check the clocks)"
            }
            TlsFailure::NameMismatch => {
                "set the TLS server name to the name the peer's certificate carries, or reissue the certificate for this host"
            }
            TlsFailure::BadCertificate(_) => "check the peer's certificate",
            TlsFailure::NoCommonVersion => {
                "allow a TLS version (and cipher suite) the peer supports"
            }
            TlsFailure::ClientCertificateRefused(_) => {
                "give a client certificate signed by a CA the peer trusts"
            }
            TlsFailure::NotTls => {
                "the port speaks plaintext DICOM: turn TLS off or use the TLS port"
            }
            TlsFailure::Closed => {
                "the peer closed the connection: it may not speak TLS on this port, or refused our certificate"
            }
            TlsFailure::TimedOut => "the peer did not complete the handshake: is it a TLS port?",
            TlsFailure::Other(_) => "check the peer's TLS settings",
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsFailure::UnknownIssuer => {
                f.write_str("the peer's certificate is signed by an unknown CA")
            }
            TlsFailure::CertificateExpired => {
                f.write_str("the peer's certificate has expired or is not valid yet")
            }
            TlsFailure::NameMismatch => f.write_str("the peer's certificate is for another name"),
            TlsFailure::BadCertificate(why) => {
                write!(f, "the peer's certificate was refused ({why})")
            }
            TlsFailure::NoCommonVersion => {
                f.write_str("no TLS version or cipher suite in common with the peer")
            }
            TlsFailure::ClientCertificateRefused(alert) => {
                write!(
                    f,
                    "the peer refused our client certificate or wanted one ({alert})"
                )
            }
            TlsFailure::NotTls => f.write_str("the peer did not answer in TLS"),
            TlsFailure::Closed => {
                f.write_str("the peer closed the connection during the TLS handshake")
            }
            TlsFailure::TimedOut => f.write_str("the TLS handshake timed out"),
            TlsFailure::Other(why) => write!(f, "the TLS handshake failed: {why}"),
        }?;
        write!(f, "; {}", self.advice())
    }
}

/// The one crypto provider of the workspace: `ring` (aws-lc needs cmake).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (leaf first for a chain).
///
/// # Errors
/// [`TlsError::File`] when the file cannot be read, [`TlsError::Pem`] when it holds
/// no certificate or a malformed one. `what` names the file's purpose in the message.
pub fn load_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path, what)?;
    let pem_error = |reason: String| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        expected: "certificate",
        reason,
    };
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(pem_error("no CERTIFICATE block".into()));
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// [`TlsError::File`] when the file cannot be read, [`TlsError::Pem`] when it holds
/// no private key.
pub fn load_private_key(
    path: &Path,
    what: &'static str,
) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path, what)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        what,
        path: path.to_path_buf(),
        expected: "private key",
        reason: e.to_string(),
    })
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn root_store(path: &Path, what: &'static str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in load_certificates(path, what)? {
        roots.add(certificate).map_err(|e| TlsError::Pem {
            what,
            path: path.to_path_buf(),
            expected: "certificate",
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn system_root_store() -> Result<RootCertStore, TlsError> {
    let path = SYSTEM_CA_BUNDLES
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or(TlsError::NoSystemBundle)?;
    let mut roots = RootCertStore::empty();
    // A system bundle may hold a certificate webpki cannot parse: skip it, as
    // every TLS client does, rather than refusing the whole bundle.
    roots.add_parsable_certificates(load_certificates(path, "system CA bundle")?);
    Ok(roots)
}

/// The verifier of [`TlsClientOptions::accept_invalid_certificates`]: it checks the
/// handshake's signatures (so the session is what the peer's key signed) but not
/// who the key belongs to.
#[derive(Debug)]
struct AcceptAnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_the_usual_spellings_and_refuse_old_ones() {
        assert_eq!("1.2,1.3".parse(), Ok(TlsVersions::BCP_195));
        assert_eq!(" TLSv1.3 ".parse(), Ok(TlsVersions::TLS13_ONLY));
        assert_eq!("1.2".parse(), Ok(TlsVersions::TLS12_ONLY));
        assert!("1.1".parse::<TlsVersions>().is_err());
        assert!("".parse::<TlsVersions>().is_err());
        assert_eq!(TlsVersions::default().to_string(), "1.2,1.3");
    }

    #[test]
    fn a_missing_file_is_named_with_its_purpose() {
        let error = TlsClientOptions::new()
            .ca_bundle("/nonexistent/ca.pem")
            .client_config()
            .unwrap_err();
        let text = error.to_string();
        assert!(text.contains("CA bundle /nonexistent/ca.pem"), "{text}");
    }

    #[test]
    fn a_file_without_certificates_says_so() {
        let dir = std::env::temp_dir().join(format!("dimse-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("not-a-cert.pem");
        std::fs::write(&path, "hello\n").unwrap();
        let error = load_certificates(&path, "CA bundle").unwrap_err();
        assert!(
            error.to_string().contains("no usable certificate"),
            "{error}"
        );
        let error = load_private_key(&path, "client key").unwrap_err();
        assert!(
            error.to_string().contains("no usable private key"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn requiring_client_certificates_needs_their_ca() {
        let error = TlsServerOptions::new("cert.pem", "key.pem")
            .require_client_certificate(true)
            .server_config()
            .unwrap_err();
        assert!(matches!(error, TlsError::ClientCaMissing));
    }

    #[test]
    fn handshake_errors_are_classified_by_what_to_fix() {
        let wrap = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            TlsFailure::classify(&wrap(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))),
            TlsFailure::UnknownIssuer
        );
        assert_eq!(
            TlsFailure::classify(&wrap(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))),
            TlsFailure::NoCommonVersion
        );
        assert_eq!(
            TlsFailure::classify(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            TlsFailure::Closed
        );
        assert!(TlsFailure::UnknownIssuer.to_string().contains("CA bundle"));
    }
}
