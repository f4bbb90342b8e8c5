//! One sled tree as the store uses it: every value is written with its checksum and read
//! back only if the checksum holds (a damaged record is an error naming it, never a
//! value), and every write first asks the store's `Faults`, so a test can fail the N-th
//! write (or every write from the N-th on, which is what a crash at that point leaves: a
//! prefix of the writes) without a special build.

use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sled::IVec;

use super::StoreError;
use crate::keys;

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

/// A sled tree with its name (for errors) and the store's fault plan. Every value written
/// through it is sealed with its checksum (`keys::sealed`) and every value read through
/// it is checked and returned without it; a mismatch is `StoreError::Damaged` naming the
/// record, never a value.
#[derive(Clone)]
pub struct Tree {
    inner: sled::Tree,
    name: &'static str,
    faults: Arc<Faults>,
    /// The `names` tree, to name the probe and agent of a damaged record.
    names: sled::Tree,
}

impl Tree {
    pub fn open(db: &sled::Db, name: &'static str, faults: &Arc<Faults>) -> Result<Tree, StoreError> {
        Ok(Tree { inner: db.open_tree(name)?, name, faults: faults.clone(), names: db.open_tree("names")? })
    }

    /// The sled tree, for a transaction (after `will_write`); values written through it
    /// must be `seal`ed.
    pub fn sled(&self) -> &sled::Tree {
        &self.inner
    }

    /// What a transaction stores for `value` under `key`.
    pub fn seal(&self, key: &[u8], value: &[u8]) -> Vec<u8> {
        keys::sealed(key, value)
    }

    /// Counts a write done through `sled()` (a transaction).
    pub fn will_write(&self) -> Result<(), StoreError> {
        self.faults.write(self.name)
    }

    /// The value of a stored record, its checksum checked and cut off.
    pub fn open_value(&self, key: &[u8], stored: IVec) -> Result<IVec, StoreError> {
        match keys::unseal(key, &stored) {
            Some(value) => Ok(stored.subslice(0, value.len())),
            None => Err(self.damaged(key)),
        }
    }

    /// The error for a record of this tree whose checksum does not hold.
    pub fn damaged(&self, key: &[u8]) -> StoreError {
        StoreError::Damaged { tree: self.name, record: describe(&self.names, self.name, key) }
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<IVec>, StoreError> {
        let key = key.as_ref();
        self.inner.get(key)?.map(|v| self.open_value(key, v)).transpose()
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, StoreError> {
        Ok(self.inner.contains_key(key)?)
    }

    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        Iter { inner: self.inner.range(range), tree: self.clone() }
    }

    /// The keys of a range, values neither read nor checked (a damaged record is found
    /// when it is read).
    pub fn range_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
    ) -> impl DoubleEndedIterator<Item = Result<IVec, StoreError>> {
        self.inner.range(range).keys().map(|k| k.map_err(StoreError::from))
    }

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        Iter { inner: self.inner.scan_prefix(prefix), tree: self.clone() }
    }

    pub fn iter(&self) -> Iter {
        Iter { inner: self.inner.iter(), tree: self.clone() }
    }

    pub fn last(&self) -> Result<Option<(IVec, IVec)>, StoreError> {
        match self.inner.last()? {
            Some((k, v)) => Ok(Some((k.clone(), self.open_value(&k, v)?))),
            None => Ok(None),
        }
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<(), StoreError> {
        self.faults.write(self.name)?;
        let key = key.as_ref();
        self.inner.insert(key, keys::sealed(key, value.as_ref()))?;
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
        new: Option<impl AsRef<[u8]>>,
    ) -> Result<bool, StoreError> {
        self.faults.write(self.name)?;
        let key = key.as_ref();
        let old = old.map(|v| keys::sealed(key, v.as_ref()));
        let new = new.map(|v| keys::sealed(key, v.as_ref()));
        Ok(self.inner.compare_and_swap(key, old, new)?.is_ok())
    }

    /// Applies the batch's removals atomically.
    pub fn apply_batch(&self, batch: Batch) -> Result<(), StoreError> {
        self.faults.write(self.name)?;
        self.inner.apply_batch(batch.0)?;
        Ok(())
    }
}

/// Removals applied together by `Tree::apply_batch`.
#[derive(Default)]
pub struct Batch(sled::Batch);

impl Batch {
    pub fn remove(&mut self, key: &[u8]) {
        self.0.remove(key);
    }
}

/// A range of a tree, each value checked and returned without its checksum.
pub struct Iter {
    inner: sled::Iter,
    tree: Tree,
}

impl Iter {
    fn open(&self, kv: sled::Result<(IVec, IVec)>) -> Result<(IVec, IVec), StoreError> {
        let (k, v) = kv?;
        let v = self.tree.open_value(&k, v)?;
        Ok((k, v))
    }
}

impl Iterator for Iter {
    type Item = Result<(IVec, IVec), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let kv = self.inner.next()?;
        Some(self.open(kv))
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let kv = self.inner.next_back()?;
        Some(self.open(kv))
    }
}

/// `keys::describe_record` with numbers named from the `names` tree (a damaged name
/// leaves the number unnamed).
pub fn describe(names: &sled::Tree, tree: &str, key: &[u8]) -> String {
    let name = |kind: u8, num: keys::Num| {
        let k = keys::num_key(kind, num);
        let v = names.get(k).ok()??;
        keys::unseal(&k, &v).map(|id| String::from_utf8_lossy(id).into_owned())
    };
    keys::describe_record(tree, key, &name)
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
