//! The embedded agent (`[embedded_agent] enabled = true`): the agent crate run inside the
//! collector process, talking to the collector's own listener with a token made at start,
//! so its results take the same authenticated, validated, durable ingest path.

use std::net::SocketAddr;

use probity_config::CollectorConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::serve::ServeError;

/// A fresh random token for the embedded agent.
pub fn new_token() -> Result<String, ServeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ServeError::Embedded(format!("no randomness for its token: {e}")))?;
    Ok(format!("{}{}", probity_config::TOKEN_PREFIX, hex::encode(bytes)))
}

/// Starts the embedded agent; it stops when `stop` turns true.
pub fn spawn(
    _config: &CollectorConfig,
    id: &str,
    _token: String,
    _collector: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, ServeError> {
    tracing::warn!(agent = id, "the embedded agent is not wired in yet");
    Ok(tokio::spawn(async move {
        let _ = stop.changed().await;
    }))
}
