//! Every record's checksum verified, tree by tree (`db check`'s first half; the second,
//! derived data against raw, is `check.rs`). The name `Store::check_checksums` and its
//! report are what `db check` builds on: keep them stable (ARCHITECTURE.md).

use super::{Store, StoreError, tree};
use crate::keys;

/// What `Store::check_checksums` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChecksumReport {
    /// Records read, over every tree.
    pub records: u64,
    /// Records whose checksum does not hold, in tree and key order (at most the limit).
    pub damaged: Vec<DamagedRecord>,
    /// Damaged records found, including those past the limit.
    pub damaged_total: u64,
}

/// One record whose stored bytes changed since they were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DamagedRecord {
    pub tree: String,
    /// Which record, from its key: probe, agent, hour, … (`keys::describe_record`).
    pub record: String,
}

impl std::fmt::Display for DamagedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "checksum mismatch in tree {}: {}", self.tree, self.record)
    }
}

impl Store {
    /// Reads every record of every tree and checks its checksum; lists up to `limit` of
    /// the damaged ones. An `Err` is a storage failure that stopped the walk, not damage.
    pub fn check_checksums(&self, limit: usize) -> Result<ChecksumReport, StoreError> {
        let mut report = ChecksumReport::default();
        let names = self.db.open_tree("names")?;
        let mut trees: Vec<sled::IVec> =
            self.db.tree_names().into_iter().filter(|n| n.as_ref() != b"__sled__default").collect();
        trees.sort();
        for name in trees {
            let shown = String::from_utf8_lossy(&name).into_owned();
            for kv in self.db.open_tree(&name)?.iter() {
                let (k, v) = kv?;
                report.records += 1;
                if keys::unseal(&k, &v).is_none() {
                    report.damaged_total += 1;
                    if report.damaged.len() < limit {
                        let record = tree::describe(&names, &shown, &k);
                        report.damaged.push(DamagedRecord { tree: shown.clone(), record });
                    }
                }
            }
        }
        Ok(report)
    }
}
