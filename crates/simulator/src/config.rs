//! How a simulator instance runs: where it listens, which rules, what it accepts.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use dimse::tls::{TlsError, TlsServerOptions};

use crate::error::SimulatorError;
use crate::rules::Rules;
use crate::store::StoreMode;

/// Which transfer syntaxes the simulator accepts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TransferSyntaxPolicy {
    /// Explicit and Implicit VR Little Endian only: a sender with compressed files
    /// must transcode (or fail to associate).
    UncompressedOnly,
    /// Every transfer syntax dicom-rs can parse, compressed ones included (the
    /// pixel data is stored and forwarded as received, never decoded).
    #[default]
    All,
    /// Exactly these transfer syntax UIDs (each must be one dicom-rs can parse).
    Only(Vec<String>),
}

/// Which SOP classes are accepted for storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StorageSopClasses {
    /// Every storage SOP class of the standard's registry (dicom-dictionary-std).
    #[default]
    Standard,
    /// Any abstract syntax proposed (promiscuous), like a router that stores
    /// private SOP classes too.
    Any,
}

/// Everything [`Simulator::start`](crate::Simulator::start) needs.
///
/// `SimulatorConfig::default()` listens on `127.0.0.1:0` (a free port) with the
/// default rules in full mode.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// Address to listen on. Port 0 picks a free port; see
    /// [`SimulatorHandle::addr`](crate::SimulatorHandle::addr).
    pub bind: SocketAddr,
    /// Routes, settings and initial faults.
    pub rules: Rules,
    /// What the store keeps of each instance.
    pub store_mode: StoreMode,
    /// Accepted transfer syntaxes.
    pub transfer_syntaxes: TransferSyntaxPolicy,
    /// Accepted storage SOP classes.
    pub storage_sop_classes: StorageSopClasses,
    /// Concurrent associations allowed; one more is refused (transient, local limit
    /// exceeded).
    pub max_associations: usize,
    /// Largest PDU the simulator receives (announced in A-ASSOCIATE-AC); a larger
    /// PDU aborts the association.
    pub max_pdu_length: u32,
    /// How long an association may stay silent before it is aborted (also the
    /// time allowed for the A-ASSOCIATE-RQ to arrive).
    pub read_timeout: Duration,
    /// How long a new connection may take to send its A-ASSOCIATE-RQ (the ARTIM
    /// timer of PS3.8).
    pub artim_timeout: Duration,
    /// How long a write may block on a peer that does not read.
    pub write_timeout: Duration,
    /// Largest data set accepted in one C-STORE.
    pub max_data_set_len: usize,
    /// Timeout of forwarding associations and of the C-STORE sub-operations of
    /// C-MOVE and C-GET: negotiation, each response and each write wait this long; the TCP connect at most 5 s of it (a destination that
    /// is down fails the attempt fast and the retry backoff paces the queue).
    pub forward_timeout: Duration,
    /// A second listener speaking DICOM over TLS (PS3.15 Annex B), with the same
    /// routes; `None`: plain DICOM only.
    pub tls: Option<TlsListener>,
    /// A folder where each stored instance is written as a DICOM file (atomically)
    /// and read back for C-MOVE and C-GET; the store then keeps the file's path
    /// instead of the data set, in either mode. `None`: full mode keeps data sets in
    /// memory, load mode keeps none (its instances cannot be retrieved). Created
    /// when missing; the files are left there when the simulator stops.
    pub spool_dir: Option<PathBuf>,
}

/// The TLS listener of a simulator: where it listens and its certificate, key and
/// client certificate policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsListener {
    /// Address to listen on. Port 0 picks a free port; see
    /// [`SimulatorHandle::tls_addr`](crate::SimulatorHandle::tls_addr).
    pub bind: SocketAddr,
    /// The certificate chain, key, client CA bundle, client certificate policy and
    /// TLS versions.
    pub options: TlsServerOptions,
}

impl TlsListener {
    /// A TLS listener on `127.0.0.1` with a free port.
    pub fn on_free_port(options: TlsServerOptions) -> Self {
        TlsListener {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            options,
        }
    }
}

/// The command-line flag that sets what a TLS configuration error is about.
pub(crate) fn tls_flag(error: &TlsError) -> &'static str {
    match error {
        TlsError::File { what, .. } | TlsError::Pem { what, .. } => match *what {
            "server key" => "--tls-key",
            "client CA bundle" => "--tls-client-ca",
            _ => "--tls-cert",
        },
        TlsError::KeyMismatch { .. } => "--tls-cert/--tls-key",
        TlsError::ClientCaMissing => "--tls-client-ca",
        _ => "--tls-versions",
    }
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rules: Rules::default_rules(),
            store_mode: StoreMode::Full,
            transfer_syntaxes: TransferSyntaxPolicy::All,
            storage_sop_classes: StorageSopClasses::Standard,
            max_associations: 64,
            max_pdu_length: 131_072,
            read_timeout: Duration::from_secs(60),
            artim_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(30),
            max_data_set_len: 1 << 30,
            forward_timeout: Duration::from_secs(30),
            tls: None,
            spool_dir: None,
        }
    }
}

impl SimulatorConfig {
    /// The default configuration with these rules.
    pub fn with_rules(rules: Rules) -> Self {
        SimulatorConfig {
            rules,
            ..SimulatorConfig::default()
        }
    }

    pub(crate) fn check(&self) -> Result<(), SimulatorError> {
        use dicom_ul::pdu::{MAXIMUM_PDU_SIZE, MINIMUM_PDU_SIZE};
        let invalid = |name, value: String, reason: &str| {
            Err(SimulatorError::InvalidSetting {
                name,
                value,
                reason: reason.to_string(),
            })
        };
        if !(MINIMUM_PDU_SIZE..=MAXIMUM_PDU_SIZE).contains(&self.max_pdu_length) {
            return invalid(
                "max_pdu_length",
                self.max_pdu_length.to_string(),
                &format!("must be between {MINIMUM_PDU_SIZE} and {MAXIMUM_PDU_SIZE}"),
            );
        }
        if self.max_associations == 0 {
            return invalid("max_associations", "0".into(), "must be at least 1");
        }
        for (name, value) in [
            ("read_timeout", self.read_timeout),
            ("write_timeout", self.write_timeout),
            ("artim_timeout", self.artim_timeout),
            ("forward_timeout", self.forward_timeout),
        ] {
            if value.is_zero() {
                return invalid(name, format!("{value:?}"), "must be longer than zero");
            }
        }
        if let TransferSyntaxPolicy::Only(list) = &self.transfer_syntaxes {
            use dicom_transfer_syntax_registry::{TransferSyntaxIndex, TransferSyntaxRegistry};
            if list.is_empty() {
                return invalid(
                    "transfer_syntaxes",
                    "[]".into(),
                    "name at least one transfer syntax",
                );
            }
            for uid in list {
                if TransferSyntaxRegistry
                    .get(uid)
                    .is_none_or(|ts| ts.is_unsupported())
                {
                    return invalid(
                        "transfer_syntaxes",
                        uid.clone(),
                        "not a transfer syntax dicom-rs can parse",
                    );
                }
            }
        }
        Ok(())
    }
}
