//! Keeping the assignment: fetched at start and every 30 s with `If-None-Match`, cached
//! in `spool_dir/assignment.json`, and read from that cache at start so the agent keeps
//! probing while the collector is away.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use probity_config::wire::Assignment;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::client::{AssignmentFetch, CallError, Collector};
use crate::metrics::Metrics;

#[derive(Serialize, Deserialize)]
struct Cached {
    etag: Option<String>,
    assignment: Assignment,
}

pub struct Keeper {
    pub collector: Arc<Collector>,
    pub cache: PathBuf,
    pub interval: Duration,
    pub auth_retry: Duration,
    pub metrics: Arc<Metrics>,
}

/// The first wait after the collector refuses the token; it doubles up to `auth_retry`.
const AUTH_RETRY_FIRST: Duration = Duration::from_secs(5);

/// What the agent does meanwhile, as the log says it.
fn holding(tx: &watch::Sender<Option<Arc<Assignment>>>) -> &'static str {
    if tx.borrow().is_some() {
        "probing from the cached assignment"
    } else {
        "no cached assignment, so nothing is probed until the collector answers"
    }
}

/// Reads the cached assignment, if there is a readable one.
fn load(path: &Path) -> Option<Cached> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cached assignment unreadable");
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(c) => Some(c),
        Err(e) => {
            warn!(path = %path.display(), error = %e, "cached assignment unreadable; waiting for the collector");
            None
        }
    }
}

impl Keeper {
    /// Publishes the cached assignment, then keeps it current until the sender closes.
    pub async fn run(self, tx: watch::Sender<Option<Arc<Assignment>>>) {
        let mut etag = None;
        if let Some(cached) = load(&self.cache) {
            info!(probes = cached.assignment.probes.len(), "using the cached assignment until the collector answers");
            self.metrics.assigned_probes.store(cached.assignment.probes.len() as u64, Relaxed);
            etag = cached.etag;
            tx.send_replace(Some(Arc::new(cached.assignment)));
        }
        // Until a first assignment arrives, retry sooner than the normal interval.
        let mut quick = Duration::from_millis(500);
        let first_auth_wait = AUTH_RETRY_FIRST.min(self.auth_retry);
        let mut auth_wait = first_auth_wait;
        loop {
            let fetched = self.collector.fetch_assignment(etag.as_deref()).await;
            if fetched.is_ok() {
                auth_wait = first_auth_wait;
            }
            let wait = match fetched {
                Ok(AssignmentFetch::NotModified) => self.interval,
                Ok(AssignmentFetch::Changed { assignment, etag: new_etag }) => {
                    if assignment.agent != self.collector.agent {
                        warn!(got = %assignment.agent, agent = %self.collector.agent, "assignment names another agent");
                    }
                    let changed = tx.borrow().as_deref() != Some(&assignment);
                    let cached = Cached { etag: new_etag.clone(), assignment };
                    let bytes = serde_json::to_vec_pretty(&cached).expect("an assignment serialises");
                    if let Err(e) = crate::spool::write_durably(&self.cache, &bytes) {
                        warn!(path = %self.cache.display(), error = %e, "cannot cache the assignment");
                    }
                    if changed {
                        info!(probes = cached.assignment.probes.len(), "assignment received");
                        self.metrics.assigned_probes.store(cached.assignment.probes.len() as u64, Relaxed);
                        tx.send_replace(Some(Arc::new(cached.assignment)));
                    }
                    etag = new_etag;
                    self.interval
                }
                Err(e @ CallError::Auth { .. }) => {
                    // A token being fixed is retried soon; a wrong one is not hammered.
                    let wait = auth_wait;
                    auth_wait = (auth_wait * 2).min(self.auth_retry);
                    error!(error = %e, retry_in = ?wait, "assignment refused; {}", holding(&tx));
                    wait
                }
                Err(e) => {
                    warn!(error = %e, "cannot fetch the assignment; {}", holding(&tx));
                    if tx.borrow().is_none() {
                        quick = (quick * 2).min(self.interval);
                        quick
                    } else {
                        self.interval
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = tx.closed() => return,
            }
        }
    }
}
