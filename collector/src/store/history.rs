//! History records in sled (SPEC §10): catalogue versions and the sealed revisions of
//! closed periods. Each is written once, by compare-and-swap against an absent key, and
//! flushed before the call returns; nothing here updates or deletes one. A record is one
//! key, so a crash leaves it whole or absent, and its checksum (keys.rs) is checked on read.
//!
//! Beside them, the `restatements` marks: one key per closed period touched (late results,
//! a maintenance change) since its latest revision, with what its recomputation found.
//! A mark is updated by compare-and-swap (it is bookkeeping, not a record a reader was
//! shown) and removed once the period is restated or found unchanged.

use super::tree::Tree;
use super::{Store, StoreError};
use crate::keys;

impl Store {
    /// Every catalogue version as (number, payload), oldest first.
    pub fn catalogue_versions(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.catalogue_versions.iter() {
            let (k, v) = kv?;
            let n = keys::decode_catalogue_version_key(&k).ok_or(StoreError::Corrupt { tree: "catalogue_versions" })?;
            out.push((n, record(&v, "catalogue_versions")?));
        }
        Ok(out)
    }

    pub fn catalogue_version(&self, n: u32) -> Result<Option<Vec<u8>>, StoreError> {
        self.catalogue_versions
            .get(keys::catalogue_version_key(n))?
            .map(|v| record(&v, "catalogue_versions"))
            .transpose()
    }

    /// The newest version as (number, payload).
    pub fn latest_catalogue_version(&self) -> Result<Option<(u32, Vec<u8>)>, StoreError> {
        match self.catalogue_versions.last()? {
            None => Ok(None),
            Some((k, v)) => {
                let n =
                    keys::decode_catalogue_version_key(&k).ok_or(StoreError::Corrupt { tree: "catalogue_versions" })?;
                Ok(Some((n, record(&v, "catalogue_versions")?)))
            }
        }
    }

    /// Stores version `n`; refused if `n` exists (a version is never rewritten).
    pub fn append_catalogue_version(&self, n: u32, payload: &[u8]) -> Result<(), StoreError> {
        let key = keys::catalogue_version_key(n);
        write_once(&self.catalogue_versions, &key, payload, "catalogue_versions")?;
        self.db.flush()?;
        Ok(())
    }

    /// Every revision of one agreement period, oldest first, as payloads.
    pub fn revisions(&self, agreement: &str, label: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for kv in self.revisions.scan_prefix(keys::revision_prefix(agreement, label)) {
            let (_, v) = kv?;
            out.push(record(&v, "revisions")?);
        }
        Ok(out)
    }

    /// How many revisions are stored, over every agreement period.
    pub fn revision_count(&self) -> usize {
        self.revisions.len()
    }

    /// Stores revision `number` of one agreement period; refused if it exists.
    pub fn append_revision(&self, agreement: &str, label: &str, number: u32, payload: &[u8]) -> Result<(), StoreError> {
        let key = keys::revision_key(agreement, label, number);
        write_once(&self.revisions, &key, payload, "revisions")?;
        self.db.flush()?;
        Ok(())
    }

    /// The restatement mark of one agreement period, as its payload.
    pub fn restatement(&self, agreement: &str, label: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.restatements.get(keys::revision_prefix(agreement, label))?.map(|v| record(&v, "restatements")).transpose()
    }

    /// Every restatement mark as (agreement, label, payload).
    pub fn restatements(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.restatements.iter() {
            let (k, v) = kv?;
            let (agreement, label) =
                keys::decode_revision_prefix(&k).ok_or(StoreError::Corrupt { tree: "restatements" })?;
            out.push((agreement, label, record(&v, "restatements")?));
        }
        Ok(out)
    }

    /// Replaces the mark of one agreement period with `new` (`None`: removes it) if it still
    /// holds `old` (`None`: absent); false when another writer changed it first. Flushed
    /// before it returns.
    pub fn swap_restatement(
        &self,
        agreement: &str,
        label: &str,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let key = keys::revision_prefix(agreement, label);
        // The stored bytes are compared, so `old` is encoded the way it was written.
        let (old, new) = (old.map(keys::encode_record), new.map(keys::encode_record));
        let swapped = self.restatements.compare_and_swap(&key, old, new)?;
        // Flushed like the records: a pending restatement shown once survives a crash.
        self.db.flush()?;
        Ok(swapped)
    }
}

fn record(v: &[u8], tree: &'static str) -> Result<Vec<u8>, StoreError> {
    keys::decode_record(v).map(<[u8]>::to_vec).ok_or(StoreError::Corrupt { tree })
}

fn write_once(tree: &Tree, key: &[u8], payload: &[u8], name: &'static str) -> Result<(), StoreError> {
    let value = keys::encode_record(payload);
    match tree.compare_and_swap(key, None as Option<&[u8]>, Some(value))? {
        true => Ok(()),
        false => Err(StoreError::RecordExists { tree: name }),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError, StoreOptions};

    #[test]
    fn history_records_are_written_once_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            store.append_catalogue_version(1, b"{\"a\":1}").unwrap();
            store.append_catalogue_version(2, b"{\"a\":2}").unwrap();
            let again = store.append_catalogue_version(2, b"{\"a\":3}");
            assert!(matches!(again, Err(StoreError::RecordExists { tree: "catalogue_versions" })), "{again:?}");
            store.append_revision("web-sla", "2026-11", 1, b"r1").unwrap();
            assert!(store.append_revision("web-sla", "2026-11", 1, b"other").is_err());
            store.append_revision("web-sla", "2026-11", 2, b"r2").unwrap();
            store.append_revision("web-sla", "2026-1", 1, b"x").unwrap();
        }
        let store = Store::open_waiting(dir.path(), &StoreOptions::default());
        assert_eq!(store.latest_catalogue_version().unwrap(), Some((2, b"{\"a\":2}".to_vec())));
        assert_eq!(store.catalogue_version(1).unwrap(), Some(b"{\"a\":1}".to_vec()));
        assert_eq!(store.catalogue_versions().unwrap().len(), 2);
        assert_eq!(store.revisions("web-sla", "2026-11").unwrap(), vec![b"r1".to_vec(), b"r2".to_vec()]);
        assert_eq!(store.revisions("web-sla", "2026-12").unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn restatement_marks_change_only_from_the_value_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        assert!(store.swap_restatement("web-sla", "2026-11", None, Some(b"m1")).unwrap());
        assert!(!store.swap_restatement("web-sla", "2026-11", None, Some(b"other")).unwrap());
        assert!(!store.swap_restatement("web-sla", "2026-11", Some(b"stale"), None).unwrap());
        assert!(store.swap_restatement("web-sla", "2026-11", Some(b"m1"), Some(b"m2")).unwrap());
        assert!(store.swap_restatement("web-sla", "2026-10", None, Some(b"x")).unwrap());
        assert_eq!(store.restatement("web-sla", "2026-11").unwrap(), Some(b"m2".to_vec()));
        let all = store.restatements().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1], ("web-sla".to_string(), "2026-11".to_string(), b"m2".to_vec()));
        assert!(store.swap_restatement("web-sla", "2026-11", Some(b"m2"), None).unwrap());
        assert_eq!(store.restatement("web-sla", "2026-11").unwrap(), None);
    }
}
