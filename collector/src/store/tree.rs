//! One sled tree as the store uses it: reads pass through, every write first asks the
//! store's `Faults`, so a test can fail the N-th write (or every write from the N-th on,
//! which is what a crash at that point leaves: a prefix of the writes) without a
//! special build.

use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::IVec;

use super::StoreError;

/// Write-fault injection shared by every tree of a store: off unless a test arms it.
#[derive(Debug, Default)]
pub struct Faults {
    writes: AtomicU64,
    /// Fail the write with this number (1-based, counted from when it was armed); 0: none.
    fail_at: AtomicU64,
    /// Keep failing every write after `fail_at` (a dead disk or a crash) rather than one.
    sticky: AtomicU64,
}

impl Faults {
    /// Fails only the `n`-th write from now (a transient storage error).
    pub fn fail_nth_write(&self, n: u64) {
        self.arm(n, false);
    }

    /// Fails the `n`-th write from now and every one after it.
    pub fn fail_writes_from(&self, n: u64) {
        self.arm(n, true);
    }

    /// Stops failing writes.
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }

    /// Writes asked for since the store opened.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn arm(&self, n: u64, sticky: bool) {
        self.sticky.store(u64::from(sticky), Ordering::SeqCst);
        self.fail_at.store(self.writes() + n.max(1), Ordering::SeqCst);
    }

    /// Counts one write to `tree`; the injected error when it is one to fail.
    pub(super) fn write(&self, tree: &'static str) -> Result<(), StoreError> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.fail_at.load(Ordering::SeqCst);
        let fails = at != 0 && (n == at || (n > at && self.sticky.load(Ordering::SeqCst) == 1));
        if fails {
            return Err(StoreError::Injected { tree, write: n });
        }
        Ok(())
    }
}

/// A sled tree with its name (for errors) and the store's fault plan.
#[derive(Clone)]
pub struct Tree {
    inner: sled::Tree,
    name: &'static str,
    faults: Arc<Faults>,
}

impl Tree {
    pub fn open(db: &sled::Db, name: &'static str, faults: &Arc<Faults>) -> Result<Tree, StoreError> {
        Ok(Tree { inner: db.open_tree(name)?, name, faults: faults.clone() })
    }

    /// The sled tree, for a transaction (after `will_write`).
    pub fn sled(&self) -> &sled::Tree {
        &self.inner
    }

    /// Counts a write done through `sled()` (a transaction).
    pub fn will_write(&self) -> Result<(), StoreError> {
        self.faults.write(self.name)
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> sled::Result<Option<IVec>> {
        self.inner.get(key)
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> sled::Result<bool> {
        self.inner.contains_key(key)
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> sled::Iter {
        self.inner.range(range)
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> sled::Iter {
        self.inner.scan_prefix(prefix)
    }

    pub fn iter(&self) -> sled::Iter {
        self.inner.iter()
    }

    pub fn last(&self) -> sled::Result<Option<(IVec, IVec)>> {
        self.inner.last()
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl Into<IVec>) -> Result<(), StoreError> {
        self.faults.write(self.name)?;
        self.inner.insert(key, value)?;
        Ok(())
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.faults.write(self.name)?;
        self.inner.remove(key)?;
        Ok(())
    }

    /// Sets `key` to `new` if it holds `old`; false (nothing written) when it does not.
    pub fn compare_and_swap(
        &self,
        key: impl AsRef<[u8]>,
        old: Option<impl AsRef<[u8]>>,
        new: Option<impl Into<IVec>>,
    ) -> Result<bool, StoreError> {
        self.faults.write(self.name)?;
        Ok(self.inner.compare_and_swap(key, old, new)?.is_ok())
    }

    pub fn apply_batch(&self, batch: sled::Batch) -> Result<(), StoreError> {
        self.faults.write(self.name)?;
        self.inner.apply_batch(batch)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nth_write_fails_once_or_from_then_on() {
        let f = Faults::default();
        f.write("t").unwrap();
        f.fail_nth_write(2);
        f.write("t").unwrap();
        assert!(matches!(f.write("t"), Err(StoreError::Injected { tree: "t", write: 3 })));
        f.write("t").unwrap();
        f.fail_writes_from(1);
        assert!(f.write("t").is_err() && f.write("t").is_err());
        f.disarm();
        f.write("t").unwrap();
        assert_eq!(f.writes(), 7);
    }
}
