//! `probity-agent` as a library: the run loop the binary and the collector's embedded
//! agent share, and the probe runner end-to-end tests call directly.
//!
//! Data flow: `assignment` (pull, cache) → `schedule` (one heap, phase-spread ticks) →
//! `probe::run_spec` (one file per kind) → spool writer thread (`spool`: fsync, then
//! `seq`) → `ship` (batches, zstd, ack-then-delete) → collector.
//!
//! Invariants: a result exists once it is in the spool, and only the collector's 200
//! removes it; a `seq` is never handed out twice, across restarts and crashes included;
//! probes report failures as data (`probe::Failure`), never as `Err`; durations come
//! from `tokio::time::Instant` only. The agent knows nothing of sled, axum or reports.

pub mod adhoc;
mod assignment;
pub mod client;
pub mod hardening;
pub mod logging;
pub mod metrics;
pub mod probe;
pub mod schedule;
mod ship;
pub mod spool;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use probity_config::AgentConfig;
use tokio::sync::{Notify, mpsc, watch};
use tracing::{error, info, warn};

pub use client::Compression;

use crate::metrics::Metrics;
use crate::schedule::Finished;
use crate::spool::Spool;

/// Optional knobs for [`run`]; `Default` is what the binary uses.
#[derive(Debug, Default)]
pub struct RunOptions {
    /// Serve Prometheus self-metrics on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// How often the assignment is fetched (default 30 s).
    pub assignment_interval: Option<Duration>,
    /// Longest wait before fetching again after a 401/403 (default 60 s); the first is 5 s
    /// (or this, if shorter) and each refusal in a row doubles it.
    pub auth_retry: Option<Duration>,
    /// First delivery retry delay (default 1 s); it doubles up to `retry_max`.
    pub retry_initial: Option<Duration>,
    /// Longest delivery retry delay (default 60 s).
    pub retry_max: Option<Duration>,
    /// Most results in one ingest request (default 2000).
    pub batch_max: Option<usize>,
    /// How long shutdown may spend delivering what is spooled (default 10 s).
    pub flush_timeout: Option<Duration>,
    /// Request body compression (default zstd).
    pub compression: Compression,
    /// Told the metrics address actually bound (useful with port 0).
    pub metrics_bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
}
/// Why the agent could not run: our fault or the host's, never a probe's. Each message
/// carries its cause, so it reads whole wherever it is printed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("token file {}: {error}", path.display())]
    Token { path: std::path::PathBuf, error: std::io::Error },
    #[error("spool {}: {error}", path.display())]
    Spool { path: std::path::PathBuf, error: std::io::Error },
    #[error("collector client: {0}")]
    Client(String),
    #[error("ca_file {}: {error}", path.display())]
    CaFile { path: std::path::PathBuf, error: std::io::Error },
    #[error("metrics listener {addr}: {error}")]
    Metrics { addr: SocketAddr, error: std::io::Error },
}

/// Installs rustls's ring provider as the process default. Idempotent.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // An error means another provider is already installed, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Runs the agent until `shutdown` resolves; then stops scheduling, lets in-flight
/// probes finish, flushes, returns.
pub async fn run(
    config: AgentConfig,
    mut options: RunOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AgentError> {
    install_crypto_provider();
    let stamps = tokio::task::spawn_blocking(probe::arm_receive_stamps).await.unwrap_or(false);
    if !stamps {
        warn!("the kernel gives no receive timestamps here: latencies include this host's scheduling delays");
    }
    for warning in hardening::warnings(&config) {
        warn!("{warning}");
    }
    let collector = Arc::new(client::Collector::new(&config, options.compression)?);
    let spool_error = |error| AgentError::Spool { path: config.spool_dir.clone(), error };
    let spool = Arc::new(Spool::open(&config.spool_dir, config.spool_max).map_err(spool_error)?);
    // Results and the cached assignment are the agent's own: 0700 / 0600.
    hardening::make_private(&config.spool_dir).map_err(spool_error)?;
    let metrics = Arc::new(Metrics::default());
    info!(
        agent = %config.id,
        collector = %config.collector,
        spool = %config.spool_dir.display(),
        next_seq = spool.next_seq(),
        "agent starting"
    );

    let metrics_server = match options.metrics_listen {
        Some(addr) => {
            let listener = metrics::bind(addr).await.map_err(|error| AgentError::Metrics { addr, error })?;
            let bound = listener.local_addr().map_err(|error| AgentError::Metrics { addr, error })?;
            info!(addr = %bound, "serving metrics");
            if let Some(tx) = options.metrics_bound.take() {
                let _ = tx.send(bound);
            }
            Some(tokio::spawn(metrics::serve(listener, metrics.clone(), spool.clone())))
        }
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let written = Arc::new(Notify::new());
    let (results_tx, results_rx) = mpsc::unbounded_channel::<Finished>();
    let writer = {
        let (spool, metrics, written) = (spool.clone(), metrics.clone(), written.clone());
        std::thread::Builder::new()
            .name("probity-spool".into())
            .spawn(move || write_results(results_rx, &spool, &metrics, &written))
            .expect("a thread can be started")
    };

    let (assign_tx, assign_rx) = watch::channel(None);
    let keeper = assignment::Keeper {
        collector: collector.clone(),
        cache: config.spool_dir.join("assignment.json"),
        interval: options.assignment_interval.unwrap_or(Duration::from_secs(30)),
        auth_retry: options.auth_retry.unwrap_or(Duration::from_secs(60)),
        metrics: metrics.clone(),
    };
    let keeper = tokio::spawn(keeper.run(assign_tx));
    let scheduler =
        tokio::spawn(schedule::run(config.id.as_str().to_string(), assign_rx, results_tx, metrics.clone(), stop_rx));
    let shipper = ship::Shipper {
        collector,
        spool: spool.clone(),
        metrics: metrics.clone(),
        written: written.clone(),
        batch_max: options.batch_max.unwrap_or(2000),
        linger: Duration::from_millis(200),
        retry_initial: options.retry_initial.unwrap_or(Duration::from_secs(1)),
        retry_max: options.retry_max.unwrap_or(Duration::from_secs(60)),
    };
    // The shipper drains only once the writer has spooled the last results.
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut shipper = tokio::spawn(shipper.run(drain_rx));

    shutdown.await;
    info!("shutting down: no new runs; waiting for runs in flight");
    // Stop fetching first: the scheduler then sees a closed assignment channel too.
    keeper.abort();
    let _ = stop_tx.send(true);
    if let Err(e) = scheduler.await {
        error!(error = %e, "scheduler ended abnormally");
    }
    // Every sender is gone once the scheduler and its runs are: the writer drains and ends.
    let joined = tokio::task::spawn_blocking(move || writer.join()).await;
    if !matches!(joined, Ok(Ok(()))) {
        error!("spool writer ended abnormally");
    }
    let _ = drain_tx.send(true);
    let flush = options.flush_timeout.unwrap_or(Duration::from_secs(10));
    if tokio::time::timeout(flush, &mut shipper).await.is_err() {
        shipper.abort();
        warn!(undelivered = spool.stats().depth, "flush timed out; results stay spooled for the next start");
    }
    if let Some(server) = metrics_server {
        server.abort();
    }
    let stats = spool.stats();
    info!(undelivered = stats.depth, next_seq = spool.next_seq(), "agent stopped");
    Ok(())
}

/// The spool writer (its own thread, since it fsyncs): takes every finished run that
/// is waiting, writes them all with one fsync, and wakes the shipper.
fn write_results(mut rx: mpsc::UnboundedReceiver<Finished>, spool: &Spool, metrics: &Metrics, written: &Notify) {
    let mut batch: Vec<Finished> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let append = |batch: &[Finished]| {
            spool.append(batch.len(), |i, seq| {
                let (id, outcome) = &batch[i];
                serde_json::to_vec(&outcome.to_result(id, seq)).expect("a result serialises")
            })
        };
        if let Err(e) = append(&batch) {
            metrics.spool_errors.fetch_add(1, Relaxed);
            error!(error = %e, results = batch.len(), "spool write failed; retrying once");
            std::thread::sleep(Duration::from_millis(200));
            if let Err(e) = append(&batch) {
                metrics.spool_errors.fetch_add(1, Relaxed);
                error!(error = %e, results = batch.len(), "spool write failed; these results are lost");
            }
        }
        batch.clear();
        written.notify_one();
    }
}
