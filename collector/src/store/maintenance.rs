//! Maintenance records in sled (SPEC §11): every change of a window (its declaration, each
//! new end, its cancellation) is one record, written once by compare-and-swap against an
//! absent key and flushed before the call returns; nothing here updates or deletes one, so
//! a window's history is the list of its records. Each record carries the checksum of
//! `keys::encode_record`, checked on every read.

use super::{Store, StoreError};
use crate::keys;

const TREE: &str = "maintenance";

impl Store {
    /// Every stored change of every window as (window id, change number, payload), each
    /// window's changes together and in order.
    pub fn maintenance_changes(&self) -> Result<Vec<(String, u32, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.maintenance.iter() {
            let (k, v) = kv?;
            let (id, n) = keys::decode_maintenance_change_key(&k).ok_or(StoreError::Corrupt { tree: TREE })?;
            out.push((id, n, record(&v)?));
        }
        Ok(out)
    }

    /// The changes of one window, oldest first (empty: no such window).
    pub fn maintenance_window_changes(&self, id: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        for kv in self.maintenance.scan_prefix(keys::maintenance_prefix(id)) {
            let (_, v) = kv?;
            out.push(record(&v)?);
        }
        Ok(out)
    }

    /// Stores change `number` of window `id`; refused if it exists (a change is never
    /// rewritten, and two writers racing for the same number cannot both win).
    pub fn append_maintenance_change(&self, id: &str, number: u32, payload: &[u8]) -> Result<(), StoreError> {
        let key = keys::maintenance_change_key(id, number);
        let value = keys::encode_record(payload);
        match self.maintenance.compare_and_swap(&key, None as Option<&[u8]>, Some(value))? {
            true => {}
            false => return Err(StoreError::RecordExists { tree: TREE }),
        }
        self.db.flush()?;
        Ok(())
    }
}

fn record(v: &[u8]) -> Result<Vec<u8>, StoreError> {
    keys::decode_record(v).map(<[u8]>::to_vec).ok_or(StoreError::Corrupt { tree: TREE })
}

#[cfg(test)]
mod tests {
    use crate::store::{Store, StoreError, StoreOptions};

    #[test]
    fn maintenance_changes_are_written_once_kept_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
            store.append_maintenance_change("chg-1", 1, b"declared").unwrap();
            store.append_maintenance_change("chg-10", 1, b"other").unwrap();
            store.append_maintenance_change("chg-1", 2, b"ended early").unwrap();
            let again = store.append_maintenance_change("chg-1", 2, b"rewritten");
            assert!(matches!(again, Err(StoreError::RecordExists { tree: "maintenance" })), "{again:?}");
        }
        let store = Store::open_waiting(dir.path(), &StoreOptions::default());
        assert_eq!(
            store.maintenance_window_changes("chg-1").unwrap(),
            vec![b"declared".to_vec(), b"ended early".to_vec()]
        );
        assert_eq!(store.maintenance_window_changes("chg").unwrap(), Vec::<Vec<u8>>::new());
        let all: Vec<(String, u32)> =
            store.maintenance_changes().unwrap().into_iter().map(|(i, n, _)| (i, n)).collect();
        assert_eq!(all, vec![("chg-1".into(), 1), ("chg-1".into(), 2), ("chg-10".into(), 1)]);
    }

    #[test]
    fn a_damaged_maintenance_record_is_refused_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        store.append_maintenance_change("chg-1", 1, b"{\"end\":\"2026-11-11T02:00:00Z\"}").unwrap();
        let key = crate::keys::maintenance_change_key("chg-1", 1);
        let mut value = store.maintenance.get(&key).unwrap().unwrap().to_vec();
        let last = value.len() - 3;
        value[last] ^= 0x01;
        store.maintenance.insert(&key, value).unwrap();
        let read = store.maintenance_window_changes("chg-1");
        assert!(matches!(read, Err(StoreError::Corrupt { tree: "maintenance" })), "{read:?}");
        assert!(store.maintenance_changes().is_err());
    }
}
