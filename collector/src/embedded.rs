//! The embedded agent (`[embedded_agent] enabled = true`): the agent crate run inside the
//! collector process, talking to the collector's own listener with a token made at start,
//! so its results take the same authenticated, validated, durable ingest path as any
//! agent's. Its spool lives in `data_dir/embedded-agent`.
//! With TLS it connects to `https://127.0.0.1:PORT` trusting the collector's own
//! certificate (`ca_file = tls_cert`), so that certificate must name 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use probity_config::agent::DEFAULT_SPOOL_MAX;
use probity_config::{AgentConfig, CollectorConfig, Id, TokenSource};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Why the embedded agent cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    // getrandom's error is no `std::error::Error` without its `std` feature.
    #[error("no randomness for its token: {0}")]
    Random(getrandom::Error),
    #[error("cannot make its collector url")]
    Url(#[source] url::ParseError),
    #[error("its id {0}")]
    Id(String),
}

/// A fresh random token for the embedded agent.
pub fn new_token() -> Result<String, EmbeddedError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(EmbeddedError::Random)?;
    Ok(format!("{}{}", probity_config::TOKEN_PREFIX, hex::encode(bytes)))
}

/// The agent configuration of the embedded agent of a collector listening on `bound`.
pub fn agent_config(
    config: &CollectorConfig,
    id: &str,
    token: String,
    bound: SocketAddr,
) -> Result<AgentConfig, EmbeddedError> {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.server.tls.is_some() { "https" } else { "http" };
    let url =
        url::Url::parse(&format!("{scheme}://{}", SocketAddr::new(ip, bound.port()))).map_err(EmbeddedError::Url)?;
    Ok(AgentConfig {
        id: Id::new(id).map_err(EmbeddedError::Id)?,
        collector: url,
        token: TokenSource::Inline(token),
        spool_dir: config.server.data_dir.join("embedded-agent"),
        spool_max: DEFAULT_SPOOL_MAX,
        ca_file: config.server.tls.as_ref().map(|t| t.cert.clone()),
    })
}

/// Starts the embedded agent; it delivers what it holds and stops when `stop` turns true.
pub fn spawn(
    config: &CollectorConfig,
    id: &str,
    token: String,
    bound: SocketAddr,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, EmbeddedError> {
    let agent = agent_config(config, id, token, bound)?;
    tracing::info!(agent = id, collector = %agent.collector, "embedded agent starting");
    let shutdown = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    Ok(tokio::spawn(async move {
        if let Err(e) = probity_agent::run(agent, probity_agent::RunOptions::default(), shutdown).await {
            tracing::error!(error = %e, "embedded agent stopped");
        }
    }))
}
