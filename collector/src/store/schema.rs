//! The schema version in `meta` and the migrations of older databases, each safe to
//! interrupt: a rerun finishes what the last one began. 1 → 2 packs an hour's minute
//! histograms into one value; 2 → 3 adds the checksum every record carries since
//! (`keys::seal`), rewriting every record of every tree once.

use std::ops::Bound;

use sled::Transactional;

use super::StoreError;
use crate::keys;

/// `meta` key of an interrupted 2 → 3 migration: the tree being rewritten, a 0 byte, and
/// the last key rewritten (tree names hold no 0 byte). Written only while migrating.
const CHECKSUM_PROGRESS_KEY: &[u8] = b"migrate_checksums";

/// Records rewritten per transaction while adding checksums.
const MIGRATION_CHUNK: usize = 512;

/// The schema version `meta` records, if any: a plain `u32` up to schema 2, a sealed one
/// from 3 on (so a damaged version is refused rather than taken for an older schema and
/// migrated twice).
pub(super) fn stored_version(meta: &sled::Tree) -> Result<Option<u32>, StoreError> {
    let Some(v) = meta.get(keys::SCHEMA_VERSION_KEY)? else { return Ok(None) };
    if let Ok(legacy) = <[u8; 4]>::try_from(v.as_ref()) {
        return Ok(Some(u32::from_be_bytes(legacy)));
    }
    keys::unseal(keys::SCHEMA_VERSION_KEY, &v)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(|b| Some(u32::from_be_bytes(b)))
        .ok_or_else(|| StoreError::Damaged { tree: "meta", record: "schema_version".into() })
}

/// Brings a database of schema `found` (1 or 2) to the current one.
pub(super) fn migrate(db: &sled::Db, found: u32) -> Result<(), StoreError> {
    if found == 1 {
        migrate_v1_minutes(db)?;
        db.open_tree("meta")?.insert(keys::SCHEMA_VERSION_KEY, &2u32.to_be_bytes())?;
        db.flush()?;
    }
    migrate_v2_checksums(db)?;
    db.flush()?;
    Ok(())
}

/// Schema 1 → 2: one `hist_min` key per minute becomes one `hist_minutes` key per hour.
/// Safe to interrupt: the old tree is dropped only once every hour is written, and the
/// schema key says 2 only after that; a rerun rewrites the same hours.
fn migrate_v1_minutes(db: &sled::Db) -> Result<(), StoreError> {
    let old = db.open_tree("hist_min")?;
    let new = db.open_tree("hist_minutes")?;
    let mut hour: Option<([u8; 16], Vec<keys::MinuteHist>)> = None;
    let mut buf = Vec::new();
    let mut write = |key: [u8; 16], minutes: &[keys::MinuteHist]| -> Result<(), StoreError> {
        buf.clear();
        keys::encode_minutes(minutes, &mut buf);
        new.insert(key, buf.as_slice())?;
        Ok(())
    };
    for kv in old.iter() {
        let (k, v) = kv?;
        let (p, a, minute) = keys::decode_pair_time_key(&k);
        let start = minute.div_euclid(keys::HOUR_MS) * keys::HOUR_MS;
        let (total, hist) = keys::decode_hist_value(&v).ok_or(StoreError::Corrupt { tree: "hist_min" })?;
        let key = keys::pair_time_key(p, a, start);
        if let Some((k, minutes)) = hour.take_if(|(k, _)| *k != key) {
            write(k, &minutes)?;
        }
        let minutes = &mut hour.get_or_insert_with(|| (key, Vec::new())).1;
        let of_hour = ((minute - start) / keys::MINUTE_MS) as u8;
        minutes.push(keys::MinuteHist { minute: of_hour, total, hist: hist.to_vec() });
    }
    if let Some((k, minutes)) = hour {
        write(k, &minutes)?;
    }
    new.flush()?;
    db.drop_tree("hist_min")?;
    Ok(())
}

/// Schema 2 → 3: every record of every tree gets its checksum. Trees go in name order,
/// `meta` last; each chunk of records is rewritten in one transaction with the progress
/// key, so a rerun starts after the last chunk written and never seals a record twice.
/// `meta` is rewritten in one atomic batch that also writes version 3.
fn migrate_v2_checksums(db: &sled::Db) -> Result<(), StoreError> {
    let meta = db.open_tree("meta")?;
    let (mut resume_tree, mut resume_key) = match meta.get(CHECKSUM_PROGRESS_KEY)? {
        Some(v) => {
            let at = v.iter().position(|&b| b == 0).ok_or(StoreError::Corrupt { tree: "meta" })?;
            (Some(v[..at].to_vec()), Some(v[at + 1..].to_vec()))
        }
        None => (None, None),
    };
    let mut names: Vec<sled::IVec> =
        db.tree_names().into_iter().filter(|n| n.as_ref() != b"meta" && n.as_ref() != b"__sled__default").collect();
    names.sort();
    for name in names {
        if let Some(resume) = &resume_tree {
            if name.as_ref() < resume.as_slice() {
                continue;
            }
            if name.as_ref() > resume.as_slice() {
                resume_key = None;
            }
            resume_tree = None;
        }
        let tree = db.open_tree(&name)?;
        let mut after = resume_key.take();
        loop {
            let from = match &after {
                Some(k) => Bound::Excluded(k.clone()),
                None => Bound::Unbounded,
            };
            let chunk: Vec<(sled::IVec, sled::IVec)> =
                tree.range::<Vec<u8>, _>((from, Bound::Unbounded)).take(MIGRATION_CHUNK).collect::<Result<_, _>>()?;
            let Some((last, _)) = chunk.last() else { break };
            let mut progress = name.to_vec();
            progress.push(0);
            progress.extend_from_slice(last);
            let sealed: Vec<Vec<u8>> = chunk.iter().map(|(k, v)| keys::sealed(k, v)).collect();
            (&tree, &meta)
                .transaction(|(t, m)| {
                    for ((k, _), v) in chunk.iter().zip(&sealed) {
                        t.insert(k, v.as_slice())?;
                    }
                    m.insert(CHECKSUM_PROGRESS_KEY, progress.as_slice())?;
                    Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                })
                .map_err(|e| match e {
                    sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                    sled::transaction::TransactionError::Abort(()) => StoreError::Corrupt { tree: "meta" },
                })?;
            after = Some(last.to_vec());
        }
    }
    let mut batch = sled::Batch::default();
    for kv in meta.iter() {
        let (k, v) = kv?;
        if k.as_ref() != CHECKSUM_PROGRESS_KEY && k.as_ref() != keys::SCHEMA_VERSION_KEY {
            batch.insert(k.as_ref(), keys::sealed(&k, &v));
        }
    }
    batch.remove(CHECKSUM_PROGRESS_KEY);
    batch.insert(keys::SCHEMA_VERSION_KEY, keys::sealed(keys::SCHEMA_VERSION_KEY, &keys::SCHEMA_VERSION.to_be_bytes()));
    meta.apply_batch(batch)?;
    Ok(())
}
