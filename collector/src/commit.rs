//! Group commit: an ingest answers 200 only after its writes are on disk, and every
//! request waiting at the same moment shares one sled flush (`flush_async`, an fsync)
//! and then one rewrite of the acknowledged ledger (`ledger.rs`), so the ledger never
//! claims more than the flushed database holds, and holds everything a 200 answered.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::ledger::Ledger;
use crate::store::Store;

/// Why a flush failed (shared by every request that waited on it).
#[derive(Clone, Debug, thiserror::Error)]
#[error("flushing the database: {0}")]
pub struct CommitError(Arc<str>);

type Waiter = oneshot::Sender<Result<(), CommitError>>;

/// Handle to the flusher task; cheap to clone.
#[derive(Clone)]
pub struct GroupCommit {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl GroupCommit {
    /// Starts the flusher task on the current tokio runtime; `ledger`: the acknowledged
    /// ledger to keep (none in tests that do not need one).
    pub fn start(store: Arc<Store>, ledger: Option<Arc<Ledger>>) -> GroupCommit {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Everyone who asked before this flush starts is covered by it: their
                // writes happened before they asked.
                let mut waiters = vec![first];
                while let Ok(w) = rx.try_recv() {
                    waiters.push(w);
                }
                // Taken before the flush: everything it holds was written before the flush began.
                let acknowledged = ledger.as_ref().map(|_| store.acknowledged());
                let mut result =
                    store.db().flush_async().await.map(|_| ()).map_err(|e| CommitError(Arc::from(e.to_string())));
                if let (Ok(()), Some(ledger), Some(entries)) = (&result, &ledger, acknowledged) {
                    let ledger = ledger.clone();
                    result = match tokio::task::spawn_blocking(move || ledger.write(entries)).await {
                        Ok(written) => written.map_err(|e| CommitError(Arc::from(e.to_string()))),
                        Err(e) => Err(CommitError(Arc::from(e.to_string()))),
                    };
                }
                for w in waiters {
                    let _ = w.send(result.clone());
                }
            }
        });
        GroupCommit { tx }
    }

    /// Returns once everything written before the call is durable.
    pub async fn commit(&self) -> Result<(), CommitError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| CommitError(Arc::from("the flusher has stopped")))?;
        rx.await.map_err(|_| CommitError(Arc::from("the flusher has stopped")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_commits_all_complete_and_the_ledger_holds_what_they_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db"), &Default::default()).unwrap());
        let ledger = Arc::new(Ledger::new(dir.path().join("ledger")));
        let commit = GroupCommit::start(store.clone(), Some(ledger.clone()));
        let mut tasks = Vec::new();
        for i in 0u64..50 {
            let (store, commit) = (store.clone(), commit.clone());
            tasks.push(tokio::spawn(async move {
                let r = probity_config::wire::ProbeResult {
                    seq: i + 1,
                    probe: "p".into(),
                    at: 1_000 * i as i64,
                    duration_us: 5,
                    ok: true,
                    status: None,
                    phases: None,
                    error: None,
                    cert_not_after: None,
                };
                let agent = format!("a{}", i % 5);
                store.ingest(&agent, Some("i1"), &[r], |_| Ok::<i64, ()>(1000)).unwrap();
                commit.commit().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let written = ledger.read().unwrap().unwrap();
        assert_eq!(written.len(), 5);
        assert_eq!(written.iter().map(|e| e.count()).sum::<u64>(), 50);
        assert_eq!(written, store.acknowledged());
    }
}
