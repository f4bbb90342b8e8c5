//! Group commit: an ingest answers 200 only after its writes are on disk, and every
//! request waiting at the same moment shares one sled flush (`flush_async`, an fsync).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

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
    /// Starts the flusher task on the current tokio runtime.
    pub fn start(db: sled::Db) -> GroupCommit {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Everyone who asked before this flush starts is covered by it: their
                // writes happened before they asked.
                let mut waiters = vec![first];
                while let Ok(w) = rx.try_recv() {
                    waiters.push(w);
                }
                let result = db.flush_async().await.map(|_| ()).map_err(|e| CommitError(Arc::from(e.to_string())));
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
    async fn concurrent_commits_all_complete() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).flush_every_ms(None).open().unwrap();
        let commit = GroupCommit::start(db.clone());
        let mut tasks = Vec::new();
        for i in 0u32..50 {
            let (db, commit) = (db.clone(), commit.clone());
            tasks.push(tokio::spawn(async move {
                db.insert(i.to_be_bytes(), &[1]).unwrap();
                commit.commit().await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(db.len(), 50);
    }
}
