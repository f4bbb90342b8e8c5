//! Raw results in blocks of one (probe, agent) and one UTC hour. A batch's results are
//! merged into the hour's newest block that holds fewer than `BLOCK_MAX` results,
//! so an hour is usually one key however the results were batched (an agent sending a
//! result per probe every second would otherwise make a key per result). Readers go hour
//! by hour: all blocks starting in an hour hold only results of that hour, so sorting
//! one hour's entries gives time order even when late batches overlap earlier ones.

use std::collections::{HashMap, VecDeque};

use super::StoreError;
use super::tree::Tree;
use crate::keys::{self, BlockEntry, HOUR_MS, Num};

/// The start of the UTC hour holding `t` (saturating at the ends of time, which only
/// open-ended scans use).
pub fn hour_of(t: i64) -> i64 {
    t.saturating_sub(t.rem_euclid(HOUR_MS))
}

/// A block takes in new results while it holds fewer than this many: an hour of a
/// 10-second probe fits in one, and rewriting one costs a few kilobytes at most.
pub const BLOCK_MAX: usize = 256;

/// What storing a pair's accepted results changes in `raw`: blocks to remove (merged into
/// new ones) and blocks to insert. Applied together, in the ingest transaction.
#[derive(Default)]
pub struct BlockWrites {
    pub remove: Vec<sled::IVec>,
    pub insert: Vec<([u8; 24], Vec<u8>)>,
}

/// Encodes a pair's accepted results as blocks, one per UTC hour, each merged with the
/// hour's newest stored block that has room. The caller holds the agent's lock, so
/// nothing else writes this pair's blocks meanwhile.
pub fn blocks(raw: &Tree, p: Num, a: Num, entries: &mut [BlockEntry], out: &mut BlockWrites) -> Result<(), StoreError> {
    entries.sort_by_key(|e| (e.at, e.seq));
    for chunk in entries.chunk_by(|x, y| hour_of(x.at) == hour_of(y.at)) {
        let hour = hour_of(chunk[0].at);
        let mut merged = chunk.to_vec();
        let mut replaced = None;
        // Newest first; an hour holds a handful of blocks at most.
        for kv in raw.range(keys::raw_key(p, a, hour, 0)..keys::raw_key(p, a, hour.saturating_add(HOUR_MS), 0)).rev() {
            let (k, v) = kv?;
            let len = keys::block_len(&v).ok_or(StoreError::Corrupt { tree: "raw" })?;
            if len >= BLOCK_MAX as u64 {
                continue;
            }
            let (_, _, first_at, first_seq) = keys::decode_raw_key(&k);
            let mut old = Vec::new();
            keys::decode_block(first_at, first_seq, &v, &mut old).ok_or(StoreError::Corrupt { tree: "raw" })?;
            merged.extend(old);
            merged.sort_by_key(|e| (e.at, e.seq));
            replaced = Some(k);
            break;
        }
        let key = keys::raw_key(p, a, merged[0].at, merged[0].seq);
        // Another instance's full block may start at the same (at, seq): merge into it
        // rather than overwrite it.
        if replaced.as_ref().is_none_or(|k| k.as_ref() != key)
            && let Some(v) = raw.get(key)?
        {
            keys::decode_block(merged[0].at, merged[0].seq, &v, &mut merged)
                .ok_or(StoreError::Corrupt { tree: "raw" })?;
            merged.sort_by_key(|e| (e.at, e.seq));
        }
        // The merged block keeps the old key when the old block's first result is still
        // the first: then the insert overwrites it.
        if let Some(k) = replaced.filter(|k| k.as_ref() != key) {
            out.remove.push(k);
        }
        let mut value = Vec::with_capacity(2 + merged.len() * 6);
        keys::encode_block(&merged, &mut value);
        out.insert.push((key, value));
    }
    Ok(())
}

/// Every stored entry of `(p, a)` in the hour starting at `hour`, sorted by (at, seq).
pub fn hour_entries(raw: &Tree, p: Num, a: Num, hour: i64) -> Result<Vec<BlockEntry>, StoreError> {
    let mut out = Vec::new();
    for kv in raw.range(keys::raw_key(p, a, hour, 0)..keys::raw_key(p, a, hour.saturating_add(HOUR_MS), 0)) {
        let (k, v) = kv?;
        let (_, _, first_at, first_seq) = keys::decode_raw_key(&k);
        keys::decode_block(first_at, first_seq, &v, &mut out).ok_or(StoreError::Corrupt { tree: "raw" })?;
    }
    out.sort_by_key(|e| (e.at, e.seq));
    Ok(out)
}

/// The start of the first hour at or after `hour` holding a block of `(p, a)`.
fn next_hour_with_data(raw: &Tree, p: Num, a: Num, hour: i64, to: i64) -> Result<Option<i64>, StoreError> {
    if hour >= to {
        return Ok(None);
    }
    let first = raw.range(keys::raw_key(p, a, hour, 0)..keys::raw_key(p, a, to, 0)).next().transpose()?;
    Ok(first.map(|(k, _)| hour_of(keys::decode_raw_key(&k).2)))
}

/// The stored results of one (probe, agent) with `from <= at < to`, in (at, seq) order,
/// one hour in memory at a time.
pub struct PairCursor {
    raw: Tree,
    p: Num,
    a: Num,
    from: i64,
    to: i64,
    next_hour: Option<i64>,
    buf: VecDeque<BlockEntry>,
}

impl PairCursor {
    pub fn new(raw: &Tree, p: Num, a: Num, from: i64, to: i64) -> PairCursor {
        PairCursor { raw: raw.clone(), p, a, from, to, next_hour: Some(hour_of(from)), buf: VecDeque::new() }
    }
}

impl Iterator for PairCursor {
    type Item = Result<BlockEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buf.pop_front() {
                return Some(Ok(e));
            }
            let start = self.next_hour?;
            let hour = match next_hour_with_data(&self.raw, self.p, self.a, start, self.to) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    self.next_hour = None;
                    return None;
                }
                Err(e) => {
                    self.next_hour = None;
                    return Some(Err(e));
                }
            };
            self.next_hour = hour.checked_add(HOUR_MS);
            match hour_entries(&self.raw, self.p, self.a, hour) {
                Ok(entries) => self.buf.extend(entries.into_iter().filter(|e| e.at >= self.from && e.at < self.to)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Lookups the timeline needs for a late result: is it superseded at its instant, and
/// when is the next stored result. Caches decoded hours for one batch.
pub struct RawLookup<'t> {
    raw: &'t Tree,
    p: Num,
    a: Num,
    hours: HashMap<i64, Vec<BlockEntry>>,
}

impl<'t> RawLookup<'t> {
    pub fn new(raw: &'t Tree, p: Num, a: Num) -> RawLookup<'t> {
        RawLookup { raw, p, a, hours: HashMap::new() }
    }

    fn hour(&mut self, hour: i64) -> Result<&[BlockEntry], StoreError> {
        if !self.hours.contains_key(&hour) {
            let entries = hour_entries(self.raw, self.p, self.a, hour)?;
            self.hours.insert(hour, entries);
        }
        Ok(&self.hours[&hour])
    }

    /// A stored result at the same instant with a higher seq.
    pub fn superseded(&mut self, at: i64, seq: u64) -> Result<bool, StoreError> {
        Ok(self.hour(hour_of(at))?.iter().any(|e| e.at == at && e.seq > seq))
    }

    /// The earliest stored `at` after `at`.
    pub fn next_after(&mut self, at: i64) -> Result<Option<i64>, StoreError> {
        let h = hour_of(at);
        if let Some(e) = self.hour(h)?.iter().find(|e| e.at > at) {
            return Ok(Some(e.at));
        }
        let (p, a) = (self.p, self.a);
        let Some(next) = h.checked_add(HOUR_MS) else { return Ok(None) };
        let first = self
            .raw
            .range(keys::raw_key(p, a, next, 0)..=keys::raw_key(p, a, i64::MAX, u64::MAX))
            .next()
            .transpose()?;
        Ok(first.map(|(k, _)| keys::decode_raw_key(&k).2))
    }
}
