//! The configuration turned into each library's options: one function per library
//! type, so a variable's meaning is decided in one place.

pub mod cfind;
pub mod commitment;
pub mod retrieve;
pub mod security;
pub mod sender;

pub use security::security;

use std::net::SocketAddr;

use config::TestConfig;
use dimse::scp::ListenOptions;
use dimse::{AeTitle, ScuOptions};

use crate::CampaignError;

/// An association with the destination archive, the peer C-FIND verifies against
/// (`CFIND_HOST`/`CFIND_PORT`/`CFIND_AE_TITLE`) under our calling AE title, with the
/// `DICOM_*` timeouts, PDU size and TCP acknowledgement and the TLS and identity
/// settings of every association: what retrieval and Storage Commitment open.
///
/// # Errors
/// [`CampaignError::Tls`] when a TLS file of the configuration cannot be used.
pub fn archive_scu(config: &TestConfig) -> Result<ScuOptions, CampaignError> {
    let (cfind, network) = (&config.cfind, &config.network);
    Ok(ScuOptions::new(
        cfind.peer_address(),
        cfind.calling_ae_title.clone(),
        cfind.called_ae_title.clone(),
    )
    .timeouts(network.timeouts())
    .max_pdu_length(network.max_pdu_length)
    .quick_ack(network.quick_ack)
    .security(security(config)?))
}

/// How one of our listeners (the sink, the Storage Commitment report listener) listens
/// at `bind` as `ae_title`: ARTIM from `DICOM_ACSE_TIMEOUT`, silence allowed for the
/// longer of `DICOM_DIMSE_TIMEOUT` and `DICOM_NETWORK_TIMEOUT`, writes bounded by the
/// latter, PDUs up to `DICOM_MAX_PDU`.
pub fn listen_options(config: &TestConfig, bind: SocketAddr, ae_title: AeTitle) -> ListenOptions {
    let network = &config.network;
    let mut listen = ListenOptions::new(ae_title);
    listen.bind = bind;
    listen.artim_timeout = network.acse_timeout;
    listen.read_timeout = network.dimse_timeout.max(network.network_timeout);
    listen.write_timeout = network.network_timeout;
    listen.max_pdu_length = network.max_pdu_length;
    listen
}
