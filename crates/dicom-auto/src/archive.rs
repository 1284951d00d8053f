//! The destination archive a subcommand talks to: the configuration's C-FIND peer,
//! unless the command line names another.

use clap::Args;
use config::TestConfig;

/// `--host`, `--port`, `--called`: the archive, over `CFIND_HOST`, `CFIND_PORT`,
/// `CFIND_AE_TITLE`.
#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// The archive's host (default CFIND_HOST).
    #[arg(long)]
    host: Option<String>,
    /// The archive's port (default CFIND_PORT).
    #[arg(long)]
    port: Option<u16>,
    /// The archive's AE title (default CFIND_AE_TITLE).
    #[arg(long, value_name = "AE")]
    called: Option<dimse::AeTitle>,
}

impl ArchiveArgs {
    /// `config` with the archive the command line names.
    pub fn apply(&self, config: &mut TestConfig) {
        if let Some(host) = &self.host {
            config.cfind.host = host.clone();
        }
        if let Some(port) = self.port {
            config.cfind.port = port;
        }
        if let Some(called) = &self.called {
            config.cfind.called_ae_title = called.clone();
        }
    }
}
