//! The open journal: each acknowledged batch is one `journal` record (its accepted
//! results, written in the acknowledging transaction with the seq state), and the agent
//! keeps the batches in memory until they hold `journal_limit` results or something reads
//! the store. Then they are merged, a pair at a time, into the raw blocks of their hours,
//! in one transaction that also removes their journal records, and the derived data of
//! every pair is brought up to date once. Real agents send one result per probe per batch,
//! so merging per batch rewrote each pair's hour block, runs, minutes and `last` for every
//! single result; merged per journal, a pair's hour block is rewritten a few times an hour.
//! A result is in exactly one place, the journal or a block, so a crash anywhere leaves
//! nothing counted twice: the journal left on disk is merged at the next open, and the
//! hours it touched are pending, so they are derived again from raw.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use sled::Transactional;

use super::{AgentState, ProbeBatch, Store, StoreError, raw};
use crate::keys::{self, BlockEntry, LastResult, Num};

/// Results an agent's journal holds before it is merged: with a thousand probes, a pair's
/// hour block is rewritten every ~130 results, and the journal is ~5 MB in memory.
pub const DEFAULT_LIMIT: usize = 131_072;

/// One agent's acknowledged batches not yet in raw blocks.
#[derive(Default)]
pub struct Journal {
    keys: Vec<[u8; 12]>,
    by_probe: BTreeMap<Num, JournalPair>,
    results: usize,
}

struct JournalPair {
    interval_ms: i64,
    items: Vec<BlockEntry>,
    newest: LastResult,
}

impl Journal {
    pub fn results(&self) -> usize {
        self.results
    }

    /// Adds a committed batch: its record's key and its accepted results.
    pub fn add(&mut self, key: [u8; 12], probes: &BTreeMap<Num, (i64, &str)>, accepted: Vec<(Num, BlockEntry)>) {
        self.keys.push(key);
        self.results += accepted.len();
        for (p, e) in accepted {
            let last = LastResult { at: e.at, seq: e.seq, value: e.value };
            let interval_ms = probes.get(&p).map_or(0, |(i, _)| *i);
            let pair =
                self.by_probe.entry(p).or_insert_with(|| JournalPair { interval_ms, items: Vec::new(), newest: last });
            pair.interval_ms = interval_ms;
            if (e.at, e.seq) > (pair.newest.at, pair.newest.seq) {
                pair.newest = last;
            }
            pair.items.push(e);
        }
    }

    /// The newest journaled result of probe `p`.
    pub fn newest(&self, p: Num) -> Option<LastResult> {
        self.by_probe.get(&p).map(|pair| pair.newest)
    }
}

/// An agent's journal records found at open, and their results by probe.
type StoredJournal = (Vec<[u8; 12]>, BTreeMap<Num, ProbeBatch>);

impl Store {
    /// Merges every agent's journal before a read, so what was acknowledged is what is
    /// read. When the merge cannot write (a full or failing disk), the read is still
    /// served (SPEC §15: reads keep working) from what is merged; the journal stays
    /// durable and is merged once writes succeed again.
    pub(super) fn settle_for_read(&self) {
        if let Err(e) = self.settle_all() {
            tracing::warn!(error = %e, "journal not merged before a read: serving what is merged");
        }
    }

    /// Merges every agent's journal (before a check, a rebuild, a shutdown).
    pub(super) fn settle_all(&self) -> Result<(), StoreError> {
        if self.journaled.load(Ordering::Relaxed) == 0 {
            return Ok(());
        }
        let states: Vec<_> = {
            let states = self.agent_states.lock().unwrap_or_else(|e| e.into_inner());
            states.iter().map(|(a, s)| (*a, s.clone())).collect()
        };
        for (a, state) in states {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            self.settle_locked(a, &mut state)?;
        }
        Ok(())
    }

    /// Merges one agent's journal into raw blocks, then derives what changed; the caller
    /// holds the agent's lock. A failed merge leaves the journal as it was; a failed
    /// derived write marks the agent for repair.
    pub(super) fn settle_locked(&self, a: Num, state: &mut AgentState) -> Result<(), StoreError> {
        if state.journal.keys.is_empty() {
            return Ok(());
        }
        let mut journal = std::mem::take(&mut state.journal);
        let mut by_probe: BTreeMap<Num, ProbeBatch> = BTreeMap::new();
        for (p, pair) in std::mem::take(&mut journal.by_probe) {
            by_probe.insert(p, (pair.interval_ms, pair.items));
        }
        let merged = self.merge_into_blocks(a, &journal.keys, &mut by_probe);
        if let Err(e) = merged {
            // Nothing was written: the journal stays, for the next merge.
            for (p, (interval_ms, items)) in by_probe {
                let newest = items.iter().max_by_key(|e| (e.at, e.seq)).map(|e| LastResult {
                    at: e.at,
                    seq: e.seq,
                    value: e.value,
                });
                if let Some(newest) = newest {
                    journal.by_probe.insert(p, JournalPair { interval_ms, items, newest });
                }
            }
            state.journal = journal;
            return Err(e);
        }
        self.journaled.fetch_sub(journal.results as u64, Ordering::Relaxed);
        if let Err(e) = self.derive_batch(a, &mut state.pairs, by_probe) {
            state.repair = true;
            return Err(e);
        }
        Ok(())
    }

    /// One transaction: every pair's results merged into its hours' blocks, and the
    /// journal records that held them removed.
    fn merge_into_blocks(
        &self,
        a: Num,
        journal_keys: &[[u8; 12]],
        by_probe: &mut BTreeMap<Num, ProbeBatch>,
    ) -> Result<(), StoreError> {
        let mut blocks = raw::BlockWrites::default();
        for (&p, (_, items)) in by_probe.iter_mut() {
            raw::blocks(&self.raw, p, a, items, &mut blocks)?;
        }
        let inserts: Vec<([u8; 24], Vec<u8>)> = blocks.insert.iter().map(|(k, v)| (*k, self.raw.seal(k, v))).collect();
        self.raw.will_write()?;
        (self.raw.sled(), self.journal.sled())
            .transaction(|(raw, journal)| {
                for k in &blocks.remove {
                    raw.remove(k)?;
                }
                for (k, v) in &inserts {
                    raw.insert(&k[..], v.as_slice())?;
                }
                for k in journal_keys {
                    journal.remove(&k[..])?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(()) => StoreError::Corrupt { tree: "raw" },
            })
    }

    /// At open: merges the journal records a previous run left (it stopped before merging
    /// them) into raw blocks; their hours are pending, so the repair that follows derives
    /// them. Returns how many records were merged.
    pub(super) fn merge_stored_journal(&self) -> Result<usize, StoreError> {
        let mut by_agent: BTreeMap<Num, StoredJournal> = BTreeMap::new();
        for kv in self.journal.iter() {
            let (k, v) = kv?;
            let (a, _) = keys::decode_journal_key(&k).ok_or(StoreError::Corrupt { tree: "journal" })?;
            let entries = keys::decode_journal(&v).ok_or(StoreError::Corrupt { tree: "journal" })?;
            let (record_keys, by_probe) = by_agent.entry(a).or_default();
            record_keys.push(k.as_ref().try_into().expect("decoded: 12 bytes"));
            for (p, e) in entries {
                by_probe.entry(p).or_insert_with(|| (0, Vec::new())).1.push(e);
            }
        }
        let mut merged = 0;
        for (a, (record_keys, mut by_probe)) in by_agent {
            self.merge_into_blocks(a, &record_keys, &mut by_probe)?;
            merged += record_keys.len();
        }
        Ok(merged)
    }
}
