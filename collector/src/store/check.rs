//! Derived data checked against raw results (`db check`, and the property tests): for
//! every (probe, agent) with raw results, the runs from its first raw result on, the
//! minute histograms and (where rolled up and not pending) the hour rollup of every hour
//! holding raw results, and `last`, each compared with a fresh derivation from raw.

use hdrhistogram::Histogram;

use super::derive::minutes_from_entries;
use super::latency::decode_growable;
use super::raw::{PairCursor, hour_of};
use super::{Store, StoreError, timeline};
use crate::keys::{self, BlockEntry, LEVEL_HOUR, MinuteHist, Num};
use crate::runs::{Observation, runs_from_observations};

impl Store {
    /// What differs between derived data and a fresh derivation from raw results, one
    /// line each naming the record (at most `limit` lines; empty: everything agrees).
    pub fn check_derived(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (p, a) in self.raw_pairs()? {
            if out.len() >= limit {
                break;
            }
            // A damaged record is one finding; the other pairs are still checked.
            match self.check_pair(p, a, &mut out) {
                Err(e @ StoreError::Damaged { .. }) => out.push(e.to_string()),
                other => other?,
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    fn check_pair(&self, p: Num, a: Num, out: &mut Vec<String>) -> Result<(), StoreError> {
        let probe = self.name_of(keys::KIND_PROBE, p)?.unwrap_or_else(|| format!("#{p}"));
        let agent = self.name_of(keys::KIND_AGENT, a)?.unwrap_or_else(|| format!("#{a}"));
        let label = format!("probe {probe}, agent {agent}");
        let mut observations: Vec<Observation> = Vec::new();
        let mut hour: Vec<BlockEntry> = Vec::new();
        let mut newest: Option<BlockEntry> = None;
        for e in PairCursor::new(&self.raw, p, a, i64::MIN, i64::MAX) {
            let e = e?;
            if hour.first().is_some_and(|h| hour_of(h.at) != hour_of(e.at)) {
                self.check_hour(p, a, &hour, &label, out)?;
                hour.clear();
            }
            observations.push(Observation { at: e.at, down: e.value.down });
            newest = Some(e);
            hour.push(e);
        }
        if !hour.is_empty() {
            self.check_hour(p, a, &hour, &label, out)?;
        }
        let Some(newest) = newest else { return Ok(()) };
        if let Some(interval_ms) = self.interval_of(p)? {
            let expected = runs_from_observations(&observations, interval_ms);
            let from = observations[0].at;
            let stored = timeline::view_runs(&self.runs, p, a, from, i64::MAX)?;
            if stored != expected {
                let i =
                    stored.iter().zip(&expected).position(|(s, e)| s != e).unwrap_or(stored.len().min(expected.len()));
                out.push(format!(
                    "runs of {label}: {} stored from {from}, {} from the raw results; first difference at run {i}: stored {:?}, raw gives {:?}",
                    stored.len(),
                    expected.len(),
                    stored.get(i),
                    expected.get(i)
                ));
            }
        }
        let stored = self.last.get(keys::pair_prefix(p, a))?.map(|v| keys::decode_last(&v));
        let expected = (newest.at, newest.seq, newest.value);
        match stored {
            Some(Some(l)) if (l.at, l.seq, l.value) == expected => {}
            other => out.push(format!(
                "last of {label}: stored {:?}, raw gives at {} seq {}",
                other.flatten().map(|l| (l.at, l.seq)),
                newest.at,
                newest.seq
            )),
        }
        Ok(())
    }

    /// One hour's minutes (and its rollup) against its raw results.
    fn check_hour(
        &self,
        p: Num,
        a: Num,
        entries: &[BlockEntry],
        label: &str,
        out: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let hour = hour_of(entries[0].at);
        let expected = minutes_from_entries(hour, entries)?;
        let stored = self.read_minutes(p, a, hour)?;
        if canonical(&stored)? != canonical(&expected)? {
            let counts = |m: &[MinuteHist]| m.iter().map(|m| m.total).sum::<u64>();
            out.push(format!(
                "hist_minutes of {label}, hour {hour}: {} results in the stored minutes, {} raw results",
                counts(&stored),
                counts(&expected)
            ));
        }
        let pending = self.pending.contains_key(keys::pending_key(LEVEL_HOUR, p, a, hour))?;
        if !pending && let Some(v) = self.hist_hour.get(keys::pair_time_key(p, a, hour))? {
            let (total, bytes) = keys::decode_hist_value(&v).ok_or(StoreError::Corrupt { tree: "hist_hour" })?;
            let mut merged = super::new_histogram();
            for m in &expected {
                if !m.hist.is_empty() {
                    merged.add(decode_growable(&m.hist)?).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
                }
            }
            let stored_hist = decode_growable(bytes)?;
            if total != entries.len() as u64 || recorded(&stored_hist) != recorded(&merged) {
                out.push(format!(
                    "hist_hour of {label}, hour {hour}: {total} results in the rollup, {} raw results",
                    entries.len()
                ));
            }
        }
        Ok(())
    }

    /// Every (probe, agent) holding raw results, in key order.
    fn raw_pairs(&self) -> Result<Vec<(Num, Num)>, StoreError> {
        let mut out = Vec::new();
        let mut from = keys::pair_prefix(0, 0);
        loop {
            let first = self.raw.range_keys(&from[..]..).next().transpose()?;
            let Some(k) = first else { break };
            let (p, a) = keys::decode_pair(&k);
            out.push((p, a));
            from = match (a.checked_add(1), p.checked_add(1)) {
                (Some(next), _) => keys::pair_prefix(p, next),
                (None, Some(next)) => keys::pair_prefix(next, 0),
                (None, None) => break,
            };
        }
        Ok(out)
    }
}

/// One minute as comparable values: minute, results, recorded (value, count) pairs.
type CanonicalMinute = (u8, u64, Vec<(u64, u64)>);

fn canonical(minutes: &[MinuteHist]) -> Result<Vec<CanonicalMinute>, StoreError> {
    minutes.iter().map(|m| Ok((m.minute, m.total, recorded(&decode_growable(&m.hist)?)))).collect()
}

fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}
