//! Derived data as a function of raw results (SPEC §15: raw results are the truth). An
//! hour of one (probe, agent) is derived from its raw results alone: its minute
//! histograms, the view over its results' extents, and `last` when one of them is newer.
//! Deriving overwrites (it never adds), so doing it twice, or after the incremental path
//! already did, changes nothing: that is what makes a crash or a storage error at any
//! point harmless. Ingest's raw transaction marks every hour it touches pending; the
//! marks say which hours to derive after a crash, after a failed derived write, and when a
//! complete hour is rolled up.

use std::collections::BTreeMap;

use super::{Store, StoreError, raw, timeline};
use crate::keys::{self, BlockEntry, HOUR_MS, LEVEL_HOUR, LastResult, MINUTE_MS, MinuteHist, Num};

impl Store {
    /// Derives every pending hour again from raw (at open after an unclean shutdown);
    /// returns how many hours.
    pub(super) fn repair_all_pending(&self) -> Result<usize, StoreError> {
        let hours = self.pending_hours(None)?;
        for &(p, a, hour) in &hours {
            self.derive_hour(p, a, hour)?;
        }
        self.db.flush()?;
        Ok(hours.len())
    }

    /// Derives one agent's pending hours again from raw (after a derived write of its
    /// failed); the caller holds the agent's lock.
    pub(super) fn repair_agent(&self, a: Num) -> Result<(), StoreError> {
        for (p, a, hour) in self.pending_hours(Some(a))? {
            self.derive_hour(p, a, hour)?;
        }
        Ok(())
    }

    fn pending_hours(&self, agent: Option<Num>) -> Result<Vec<(Num, Num, i64)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.pending.scan_prefix([LEVEL_HOUR]) {
            let (k, _) = kv?;
            let (_, p, a, hour) = keys::decode_pending_key(&k);
            if agent.is_none_or(|x| x == a) {
                out.push((p, a, hour));
            }
        }
        Ok(out)
    }

    /// Rewrites from the raw results of `(p, a)` in `hour` everything derived from them.
    /// An hour without raw results (gone past retention) is left as it is.
    pub(super) fn derive_hour(&self, p: Num, a: Num, hour: i64) -> Result<(), StoreError> {
        let entries = raw::hour_entries(&self.raw, p, a, hour)?;
        let Some(newest) = entries.last().copied() else { return Ok(()) };
        let mut buf = Vec::new();
        keys::encode_minutes(&minutes_from_entries(hour, &entries)?, &mut buf);
        self.hist_minutes.insert(keys::pair_time_key(p, a, hour), buf)?;
        if let Some(interval_ms) = self.interval_of(p)? {
            timeline::repaint_hour(&self.runs, &self.raw, p, a, interval_ms, hour, &entries)?;
        }
        let stored = match self.last.get(keys::pair_prefix(p, a))? {
            Some(v) => Some(keys::decode_last(&v).ok_or(StoreError::Corrupt { tree: "last" })?),
            None => None,
        };
        if stored.is_none_or(|l| (l.at, l.seq) < (newest.at, newest.seq)) {
            let l = LastResult { at: newest.at, seq: newest.seq, value: newest.value };
            self.last.insert(keys::pair_prefix(p, a), keys::encode_last(&l))?;
        }
        Ok(())
    }
}

/// The minute histograms of the hour starting at `hour` from its raw results: per minute,
/// every result counted and the successful ones' `duration_us` recorded.
pub(super) fn minutes_from_entries(hour: i64, entries: &[BlockEntry]) -> Result<Vec<MinuteHist>, StoreError> {
    let mut by_minute: BTreeMap<u8, (u64, hdrhistogram::Histogram<u64>)> = BTreeMap::new();
    for e in entries {
        debug_assert!(e.at >= hour && e.at < hour + HOUR_MS);
        let minute = ((e.at - hour) / MINUTE_MS) as u8;
        let (total, hist) = by_minute.entry(minute).or_insert_with(|| (0, super::new_histogram()));
        *total += 1;
        if e.value.down.is_none() {
            hist.record(e.value.duration_us).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
        }
    }
    let mut out = Vec::with_capacity(by_minute.len());
    for (minute, (total, hist)) in by_minute {
        let mut bytes = Vec::new();
        if !hist.is_empty() {
            super::latency::serialize_v2(&hist, &mut bytes)?;
        }
        out.push(MinuteHist { minute, total, hist: bytes });
    }
    Ok(out)
}
