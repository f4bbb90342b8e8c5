//! `probity-collector --config FILE`: opens the store, listens (HTTP, or HTTPS with rustls
//! when `tls_cert`/`tls_key` are set; the accept loop and its limits are `connections.rs`),
//! runs the background jobs and the disk watch (`disk.rs`), reloads on SIGHUP, and drains
//! on SIGTERM/SIGINT: within [`SHUTDOWN_DEADLINE`] whatever is still running (a wedged
//! disk, a stuck client, a long download), since SPEC §15 bounds it at 10 s.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use probity_config::{CollectorConfig, LoadError};
use rustls::pki_types::pem::{Error as PemError, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::connections::{ConnectionLimits, serve_connections};
use crate::embedded::EmbeddedError;
use crate::evidence::signing::KeyError;
use crate::jobs;
use crate::state::{AppState, Limits, StateSpec};
use crate::store::{Store, StoreError, StoreOptions};

/// Why the collector could not start or stopped badly. Each message names what failed
/// and keeps its cause as `source()`, so a printed chain (`{:#}`) says each thing once.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] LoadError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create data_dir {}", path.display())]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(
        "cannot make data_dir {} private (0700, files 0600): the collector may not change it; give the user it \
         runs as ownership of data_dir, or remount its filesystem read-write; this is not corruption, so do not \
         move the database aside",
        path.display()
    )]
    DataDirMode { path: PathBuf, source: std::io::Error },
    #[error("cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    SigningKey(#[from] KeyError),
    #[error("cannot install signal handlers")]
    Signal(#[source] std::io::Error),
    #[error("embedded agent")]
    Embedded(#[from] EmbeddedError),
    #[error("catalogue version: {0}")]
    History(#[from] crate::history::HistoryError),
    #[error("maintenance records: {0}")]
    Maintenance(#[from] crate::maintenance::MaintenanceError),
    #[error("a blocking storage task panicked")]
    Blocking(#[from] tokio::task::JoinError),
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error(
        "the database {db} holds less than this collector acknowledged to agents (ledger {ledger}): {missing}. \
         It was damaged, truncated, emptied, removed or replaced by an older copy. Either put back a good \
         copy of {db} (from your backups) and start again, or start with --accept-loss to go on and record \
         the missing results as lost (they show as lost results in completeness)"
    )]
    LedgerAhead { db: String, ledger: String, missing: String },
}

/// Why `tls_cert` / `tls_key` cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no readable PEM private key", path.display())]
    Key { path: PathBuf, source: PemError },
    #[error("{} is not a readable PEM certificate chain", path.display())]
    Certificate { path: PathBuf, source: PemError },
    #[error("{} and {} do not make a usable TLS identity", cert.display(), key.display())]
    Identity { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// SIGTERM ends the process within this, whatever still runs: each shutdown step has a
/// share of it, and a watchdog thread exits the process when it has passed (the next start
/// then repairs what an unclean close leaves, as after a crash).
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(9);
/// The embedded agent's share: delivering what it holds to our own listener.
const EMBEDDED_STOP: Duration = Duration::from_secs(3);
/// Connections' share: requests in flight finish or are dropped.
const DRAIN: Duration = Duration::from_secs(3);
/// The background jobs' share, and the final flush's.
const JOBS_STOP: Duration = Duration::from_secs(1);
const CLOSE: Duration = Duration::from_millis(1500);

/// Exits the process once [`SHUTDOWN_DEADLINE`] has passed from now. A plain thread, so
/// it fires even when every runtime worker is stuck in a blocking call.
fn start_shutdown_deadline() {
    let spawned = std::thread::Builder::new().name("shutdown-deadline".into()).spawn(|| {
        std::thread::sleep(SHUTDOWN_DEADLINE);
        tracing::error!(
            deadline_s = SHUTDOWN_DEADLINE.as_secs(),
            "shutdown did not finish in time; exiting now (the next start repairs what was left open)"
        );
        std::process::exit(1);
    });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the shutdown deadline thread");
    }
}

/// SIGTERM and SIGINT heard on a plain thread of their own, so a runtime whose workers
/// are all stuck in blocking calls still hears them: the first starts the shutdown (and
/// its deadline), a second exits at once.
#[derive(Clone, Debug)]
pub struct Termination(watch::Receiver<bool>);

impl Termination {
    /// Blocks SIGTERM and SIGINT in the calling thread and in every thread it starts from
    /// now on, and waits for them on a new thread. Call it first in `main`, before the
    /// runtime starts its threads.
    pub fn listen() -> std::io::Result<Termination> {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set.thread_block().map_err(std::io::Error::from)?;
        let (tx, rx) = watch::channel(false);
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            let mut heard = 0;
            while let Ok(signal) = set.wait() {
                heard += 1;
                if heard > 1 {
                    tracing::warn!(%signal, "second termination signal; exiting now");
                    std::process::exit(1);
                }
                start_shutdown_deadline();
                let _ = tx.send(true);
            }
        })?;
        Ok(Termination(rx))
    }

    async fn requested(&mut self) {
        let _ = self.0.wait_for(|asked| *asked).await;
    }
}

/// What `serve` needs besides the configuration.
#[derive(Clone, Debug, Default)]
pub struct ServeSpec {
    /// The file SIGHUP reloads.
    pub config_path: Option<PathBuf>,
    pub limits: Limits,
    pub store: StoreOptions,
    /// Timeouts per connection; `max_connections` is taken from the config.
    pub connections: ConnectionLimits,
    /// Start even when the database holds less than the acknowledged ledger, recording
    /// the missing results as lost (`--accept-loss`).
    pub accept_loss: bool,
    /// Where SIGTERM/SIGINT are heard (the binary's [`Termination::listen`]); `None`: the
    /// runtime's own signal handlers (tests that serve in-process).
    pub termination: Option<Termination>,
}

/// Loads the config file and serves until SIGTERM/SIGINT.
pub async fn run(config_path: &Path, accept_loss: bool, termination: Termination) -> Result<(), ServeError> {
    let config = probity_config::load_collector_config(config_path)?;
    let spec = ServeSpec {
        config_path: Some(config_path.to_path_buf()),
        accept_loss,
        termination: Some(termination),
        ..ServeSpec::default()
    };
    serve(config, spec).await
}

/// Compares the database with the acknowledged ledger: refuses one that holds less, or
/// (`accept_loss`) records what it lacks as lost; then writes the ledger afresh.
fn check_ledger(store: &Store, ledger_path: &Path, accept_loss: bool) -> Result<(), ServeError> {
    let ledger = crate::ledger::Ledger::new(ledger_path.to_path_buf());
    if let Some(entries) = ledger.read()? {
        let short = store.held_less_than(&entries);
        if !short.is_empty() && !accept_loss {
            let described: Vec<String> = short
                .iter()
                .take(5)
                .map(|(e, missing)| {
                    let count: u64 = missing.iter().map(|(lo, hi)| hi - lo + 1).sum();
                    let ranges: Vec<String> = missing.iter().take(3).map(|(lo, hi)| format!("{lo}-{hi}")).collect();
                    format!(
                        "{}: {count} of {} acknowledged results missing (seqs {}{})",
                        e.label(),
                        e.count(),
                        ranges.join(", "),
                        if missing.len() > 3 { ", …" } else { "" }
                    )
                })
                .collect();
            let more =
                if short.len() > 5 { format!("; and {} more instances", short.len() - 5) } else { String::new() };
            return Err(ServeError::LedgerAhead {
                db: store.path().display().to_string(),
                ledger: ledger_path.display().to_string(),
                missing: described.join("; ") + &more,
            });
        }
        for (e, missing) in &short {
            let count: u64 = missing.iter().map(|(lo, hi)| hi - lo + 1).sum();
            warn!(agent = %e.agent, instance = e.instance.as_deref().unwrap_or("legacy"), lost = count, "--accept-loss: acknowledged results missing from the database recorded as lost");
            store.record_loss(&e.agent, e.instance.as_deref(), missing)?;
        }
    }
    ledger.write(store.acknowledged())?;
    Ok(())
}

/// Serves `config` until SIGTERM/SIGINT, then drains connections and flushes the store.
pub async fn serve(config: CollectorConfig, spec: ServeSpec) -> Result<(), ServeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data_dir = config.server.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| ServeError::DataDir { path: data_dir.clone(), source })?;
    // Raw results and the signing key are nobody else's: data_dir 0700, its files 0600.
    probity_agent::hardening::make_private(&data_dir)
        .map_err(|source| ServeError::DataDirMode { path: data_dir.clone(), source })?;
    let db_path = data_dir.join("db");
    let options = spec.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&db_path, &options)).await??;
    let store = Arc::new(store);
    let ledger_path = data_dir.join("ledger");
    let (checked, checked_path, accept_loss) = (store.clone(), ledger_path.clone(), spec.accept_loss);
    tokio::task::spawn_blocking(move || check_ledger(&checked, &checked_path, accept_loss)).await??;
    let signing_key = crate::evidence::signing::load_or_generate(config.evidence.signing_key.as_deref(), &data_dir)?;
    let tls = match &config.server.tls {
        Some(files) => Some(tls_acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let embedded = config.catalogue.agents.iter().find(|a| a.embedded).map(|a| a.id.to_string());
    let embedded_token = embedded.as_ref().map(|_| crate::embedded::new_token()).transpose()?;
    let state = AppState::new(
        config.clone(),
        store.clone(),
        StateSpec {
            config_path: spec.config_path.clone(),
            limits: spec.limits,
            embedded_token: embedded_token.as_ref().map(|t| probity_config::token_sha256(t)),
            signing_key: Some(signing_key),
            ledger: Some(ledger_path),
        },
    );
    // The catalogue in force is a stored version before anything is measured against it.
    let version = crate::history::record_catalogue(&state, crate::history::versions::Source::File).await?;
    info!(catalogue_version = version, "catalogue version in force");
    // The file's maintenance windows are records before any report reads them.
    crate::maintenance::sync_catalogue(&state, state.config().catalogue.clone()).await?;
    jobs::sync_intervals(&state).await;

    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: config.server.listen, source })?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind { addr: config.server.listen, source })?;
    info!(addr = %local, tls = tls.is_some(), db = %store.path().display(), "listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = vec![tokio::spawn(jobs::run(state.clone(), stop_rx.clone()))];
    background.push(tokio::spawn(reload_on_sighup(state.clone(), stop_rx.clone())));
    // `db check` and `db backup` while running (sled's lock keeps other processes out).
    background.extend(crate::db::admin::spawn(store.clone(), &data_dir, stop_rx.clone()));
    background.push(tokio::spawn(crate::disk::watch(state.clone(), stop_rx.clone())));
    let embedded_task = match (embedded, embedded_token) {
        (Some(id), Some(token)) => Some(crate::embedded::spawn(&config, &id, token, local, stop_rx.clone())?),
        _ => None,
    };

    let mut signals = match spec.termination.clone() {
        Some(t) => Err(t),
        None => Ok((
            signal(SignalKind::terminate()).map_err(ServeError::Signal)?,
            signal(SignalKind::interrupt()).map_err(ServeError::Signal)?,
        )),
    };
    // On a signal: stop the jobs and the embedded agent first, while still serving, so the
    // embedded agent can deliver what it holds; then stop accepting.
    let shutdown = async {
        match &mut signals {
            Err(termination) => termination.requested().await,
            Ok((terminate, interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
                start_shutdown_deadline();
            }
        }
        info!(deadline_s = SHUTDOWN_DEADLINE.as_secs(), "shutting down");
        let _ = stop_tx.send(true);
        if let Some(task) = embedded_task
            && tokio::time::timeout(EMBEDDED_STOP, task).await.is_err()
        {
            warn!(
                after_s = EMBEDDED_STOP.as_secs(),
                "the embedded agent did not stop in time; what it holds stays in its spool"
            );
        }
    };
    let app = crate::api::app(state.clone());
    let limits = ConnectionLimits { max_connections: config.server.max_connections, ..spec.connections };
    let graceful = serve_connections(listener, app, tls, limits, shutdown).await;
    info!("draining connections");
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        warn!(after_s = DRAIN.as_secs(), "connections still open; closing them");
    }
    let jobs = futures_join(background);
    if tokio::time::timeout(JOBS_STOP, jobs).await.is_err() {
        warn!("background work still running; leaving it");
    }
    let flushed = store.clone();
    match tokio::time::timeout(CLOSE, tokio::task::spawn_blocking(move || flushed.close())).await {
        Ok(closed) => closed??,
        // A wedged disk: the next start repairs the hours left pending, as after a crash.
        Err(_) => warn!("the database did not close in time; the next start repairs it"),
    }
    info!("stopped");
    Ok(())
}

/// Waits for every task (each one's own outcome is its business).
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

async fn reload_on_sighup(state: AppState, mut stop: watch::Receiver<bool>) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; reload is off");
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {
                let _ = crate::reload::reload(&state).await;
            }
            _ = stop.changed() => return,
        }
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.to_path_buf(), source });
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Certificate { path: cert.to_path_buf(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_path_buf() });
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| TlsError::Key { path: key.to_path_buf(), source })?;
    let identity = |source| TlsError::Identity { cert: cert.to_path_buf(), key: key.to_path_buf(), source };
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(identity)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(identity)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
