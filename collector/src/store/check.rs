//! `db check` and `db rebuild` in the store. `verify_records` reads every stored record
//! back through its decoder (and its checksum, where it has one), naming each one that
//! does not read. `check_derived` compares derived data with a fresh derivation from raw
//! results (also the property tests' oracle): for every (probe, agent) with raw results,
//! the runs from its first raw result on, the minute histograms and (where rolled up and
//! not pending) the hour rollup of every hour holding raw results, and `last`.
//! `rebuild_derived` writes all of that again from raw. Each pair is checked or rebuilt
//! under its agent's lock, so a running collector's ingest never shows half a batch.

use hdrhistogram::Histogram;

use super::derive::minutes_from_entries;
use super::latency::decode_growable;
use super::raw::{PairCursor, hour_of};
use super::{Store, StoreError, timeline};
use crate::keys::{self, BlockEntry, HOUR_MS, LEVEL_HOUR, MinuteHist, Num};
use crate::runs::{Observation, runs_from_observations};

impl Store {
    /// What differs between derived data and a fresh derivation from raw results, one
    /// line each naming the record (at most `limit` lines; empty: everything agrees).
    pub fn check_derived(&self, limit: usize) -> Result<Vec<String>, StoreError> {
        self.settle_all()?;
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
        let label = self.pair_label(p, a)?;
        let state = self.agent_state(a)?;
        let _ingest_waits = state.lock().unwrap_or_else(|e| e.into_inner());
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
        let hours: std::collections::BTreeSet<i64> = observations.iter().map(|o| hour_of(o.at)).collect();
        for (tree, name) in [(&self.hist_minutes, "hist_minutes"), (&self.hist_hour, "hist_hour")] {
            let first = keys::pair_time_key(p, a, hour_of(observations[0].at));
            for k in tree.range_keys(first..=keys::pair_time_key(p, a, i64::MAX)) {
                let k = k?;
                let t = keys::decode_pair_time_key(&k).2;
                if !hours.contains(&t) {
                    out.push(format!("{name} of {label}, hour {}: stored for an hour without raw results", instant(t)));
                }
            }
        }
        if let Some(interval_ms) = self.interval_of(p)? {
            let expected = runs_from_observations(&observations, interval_ms);
            let from = observations[0].at;
            let stored = timeline::view_runs(&self.runs, p, a, from, i64::MAX)?;
            if stored != expected {
                let i =
                    stored.iter().zip(&expected).position(|(s, e)| s != e).unwrap_or(stored.len().min(expected.len()));
                let at = stored.get(i).or(expected.get(i)).map_or(from, |r| r.start);
                out.push(format!(
                    "runs of {label}, hour {}: {} runs stored from {}, {} from the raw results; first difference at run {i}: stored {:?}, raw gives {:?}",
                    instant(hour_of(at)),
                    stored.len(),
                    instant(from),
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
                "last of {label}, hour {}: stored {}, raw gives at {} seq {}",
                instant(hour_of(newest.at)),
                match other.flatten() {
                    Some(l) => format!("at {} seq {}", instant(l.at), l.seq),
                    None => "nothing".into(),
                },
                instant(newest.at),
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
                "hist_minutes of {label}, hour {}: {} results in the stored minutes, {} raw results{}",
                instant(hour),
                counts(&stored),
                counts(&expected),
                if counts(&stored) == counts(&expected) { " (latencies differ)" } else { "" }
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
                    "hist_hour of {label}, hour {}: {total} results in the rollup, {} raw results{}",
                    instant(hour),
                    entries.len(),
                    if total == entries.len() as u64 { " (latencies differ)" } else { "" }
                ));
            }
        }
        Ok(())
    }

    /// Derives every derived record of every (probe, agent) with raw results again from
    /// them: runs from the first raw result on, the minutes and `last`, then the hour and
    /// day rollups of complete hours (end <= `now_ms`), exactly as ingest and the rollup
    /// job would have written them. What lies before a pair's first raw result (past raw
    /// retention) is left as it is: nothing remains to derive it from.
    pub fn rebuild_derived(&self, now_ms: i64) -> Result<RebuildSummary, StoreError> {
        self.settle_all()?;
        let mut summary = RebuildSummary::default();
        for (p, a) in self.raw_pairs()? {
            let state = self.agent_state(a)?;
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            let mut hours = std::collections::BTreeSet::new();
            for e in PairCursor::new(&self.raw, p, a, i64::MIN, i64::MAX) {
                let e = e?;
                summary.results += 1;
                hours.insert(hour_of(e.at));
            }
            let Some(&first) = hours.first() else { continue };
            if let Some(interval_ms) = self.interval_of(p)? {
                timeline::rebuild(&self.runs, &self.raw, p, a, interval_ms)?;
            }
            // Minutes or rollups of an hour without raw results in the span raw covers
            // come from nowhere: gone.
            for tree in [&self.hist_minutes, &self.hist_hour] {
                let doomed: Vec<sled::IVec> = tree
                    .range_keys(keys::pair_time_key(p, a, first)..=keys::pair_time_key(p, a, i64::MAX))
                    .collect::<Result<_, _>>()?;
                for k in doomed {
                    if !hours.contains(&keys::decode_pair_time_key(&k).2) {
                        tree.remove(k)?;
                    }
                }
            }
            self.last.remove(keys::pair_prefix(p, a))?;
            let marker = keys::encode_u64(self.db.generate_id()?);
            for &hour in &hours {
                // Pending, so the rollup below derives the complete ones once more and rolls
                // them up, and the open one stays pending as ingest leaves it.
                self.pending.insert(keys::pending_key(LEVEL_HOUR, p, a, hour), marker)?;
                if hour + HOUR_MS > now_ms {
                    self.derive_hour(p, a, hour)?;
                }
            }
            summary.pairs += 1;
            summary.hours += hours.len() as u64;
            state.pairs.remove(&p);
        }
        self.roll_up(now_ms)?;
        self.db.flush()?;
        Ok(summary)
    }

    /// Reads every record of every tree back through its decoder, as its readers do: the
    /// records read and the results among them, and a line naming each record whose
    /// checksum holds but whose content does not decode (at most `limit`). Records whose
    /// checksum does not hold are `check_checksums`' findings and skipped here.
    pub fn verify_records(&self, limit: usize) -> Result<RecordCheck, StoreError> {
        let mut check = RecordCheck::default();
        let trees = [
            ("meta", &self.meta),
            ("names", &self.names),
            ("raw", &self.raw),
            ("runs", &self.runs),
            ("last", &self.last),
            ("agents", &self.agents),
            ("hist_minutes", &self.hist_minutes),
            ("hist_hour", &self.hist_hour),
            ("hist_day", &self.hist_day),
            ("rollup_pending", &self.pending),
            ("catalogue_versions", &self.catalogue_versions),
            ("revisions", &self.revisions),
        ];
        let mut entries = Vec::new();
        for (name, tree) in trees {
            for kv in tree.sled().iter() {
                let (k, stored) = kv?;
                check.records += 1;
                let Some(v) = keys::unseal(&k, &stored) else { continue };
                let problem = match name {
                    "raw" if k.len() == 24 => {
                        let (_, _, at, seq) = keys::decode_raw_key(&k);
                        entries.clear();
                        match keys::decode_block(at, seq, v, &mut entries) {
                            Some(()) if entries.iter().all(|e| hour_of(e.at) == hour_of(at)) => {
                                check.results += entries.len() as u64;
                                None
                            }
                            Some(()) => Some("a block holding results of another hour"),
                            None => Some("a block that does not decode"),
                        }
                    }
                    "runs" if k.len() == 16 => {
                        keys::decode_run_value(v).is_none().then_some("a run that does not decode")
                    }
                    "last" if k.len() == 8 => keys::decode_last(v).is_none().then_some("a result that does not decode"),
                    "agents" => (keys::decode_seq_key(&k).is_none() || keys::decode_seq_ranges(v).is_none())
                        .then_some("seq state that does not decode"),
                    "hist_minutes" if k.len() == 16 => match keys::decode_minutes(v) {
                        Some(minutes) if minutes.iter().all(|m| decode_growable(&m.hist).is_ok()) => None,
                        _ => Some("minutes that do not decode"),
                    },
                    "hist_hour" | "hist_day" if k.len() == 16 => match keys::decode_hist_value(v) {
                        Some((_, h)) if decode_growable(h).is_ok() => None,
                        _ => Some("a rollup that does not decode"),
                    },
                    "rollup_pending" => (k.len() != 17).then_some("a pending mark with a malformed key"),
                    "catalogue_versions" | "revisions" => {
                        keys::decode_record(v).is_none().then_some("a record whose checksum does not match")
                    }
                    "names" => std::str::from_utf8(v).is_err().then_some("a name that is not UTF-8"),
                    "meta" => None,
                    _ => Some("a key of the wrong length"),
                };
                if let Some(problem) = problem
                    && check.problems.len() < limit
                {
                    check.problems.push(format!("{name}, {}: {problem}", self.describe_key(name, &k)?));
                }
            }
        }
        Ok(check)
    }

    /// A key as an operator reads it: probe, agent and hour where the tree's key has them.
    fn describe_key(&self, tree: &str, k: &[u8]) -> Result<String, StoreError> {
        Ok(match tree {
            "raw" | "runs" | "hist_minutes" | "hist_hour" | "hist_day" if k.len() >= 16 => {
                let (p, a, t) = keys::decode_pair_time_key(&k[..16]);
                format!("{}, hour {}", self.pair_label(p, a)?, instant(hour_of(t)))
            }
            "last" if k.len() == 8 => {
                let (p, a) = keys::decode_pair(k);
                self.pair_label(p, a)?
            }
            "rollup_pending" if k.len() == 17 => {
                let (_, p, a, t) = keys::decode_pending_key(k);
                format!("{}, hour {}", self.pair_label(p, a)?, instant(t))
            }
            _ => format!("key {}", hex::encode(k)),
        })
    }

    fn pair_label(&self, p: Num, a: Num) -> Result<String, StoreError> {
        let probe = self.name_of(keys::KIND_PROBE, p)?.unwrap_or_else(|| format!("#{p}"));
        let agent = self.name_of(keys::KIND_AGENT, a)?.unwrap_or_else(|| format!("#{a}"));
        Ok(format!("probe {probe}, agent {agent}"))
    }

    /// Every (probe, agent) holding raw results, in key order.
    pub(super) fn raw_pairs(&self) -> Result<Vec<(Num, Num)>, StoreError> {
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

/// What `rebuild_derived` went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RebuildSummary {
    pub pairs: u64,
    pub hours: u64,
    pub results: u64,
}

/// What `verify_records` read.
#[derive(Clone, Debug, Default)]
pub struct RecordCheck {
    pub records: u64,
    /// Raw results in the blocks that read.
    pub results: u64,
    pub problems: Vec<String>,
}

fn instant(ms: i64) -> String {
    probity_config::time::rfc3339(ms)
}

/// One minute as comparable values: minute, results, recorded (value, count) pairs.
type CanonicalMinute = (u8, u64, Vec<(u64, u64)>);

fn canonical(minutes: &[MinuteHist]) -> Result<Vec<CanonicalMinute>, StoreError> {
    minutes.iter().map(|m| Ok((m.minute, m.total, recorded(&decode_growable(&m.hist)?)))).collect()
}

fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
}

#[cfg(test)]
mod tests {
    use probity_config::wire::ProbeResult;

    use super::*;
    use crate::store::StoreOptions;

    fn result(seq: u64, at: i64) -> ProbeResult {
        ProbeResult {
            seq,
            probe: "p".into(),
            at,
            duration_us: 500 + seq * 11,
            ok: true,
            status: None,
            phases: None,
            error: None,
            cert_not_after: None,
        }
    }

    /// Three hours of one pair, the first two rolled up.
    fn filled(dir: &tempfile::TempDir) -> (Store, i64, Num, Num) {
        let store = Store::open_waiting(&dir.path().join("db"), &StoreOptions { cache_capacity: 8 << 20 });
        let start = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
        let results: Vec<_> = (0..3 * 360).map(|n| result(n as u64 + 1, start + n * 10_000)).collect();
        for batch in results.chunks(50) {
            store.ingest("a", None, batch, |_| Ok::<i64, ()>(10_000)).unwrap();
        }
        let now = start + 2 * HOUR_MS + 5 * 60_000;
        store.roll_up(now).unwrap();
        let (p, a) = store.raw_pairs().unwrap()[0];
        (store, start, p, a)
    }

    #[test]
    fn every_tampered_derived_record_is_named_and_rebuild_puts_it_right() {
        type Tamper = fn(&Store, i64, Num, Num);
        let cases: [(&str, Tamper); 6] = [
            ("hist_minutes of probe p, agent a, hour ", |s, start, p, a| {
                // The minutes of the second hour stored as the first's.
                let second = s.hist_minutes.get(keys::pair_time_key(p, a, start + HOUR_MS)).unwrap().unwrap();
                s.hist_minutes.insert(keys::pair_time_key(p, a, start), second).unwrap();
            }),
            ("runs of probe p, agent a, hour ", |s, start, p, a| {
                let (k, _) = s.runs.range(keys::pair_time_key(p, a, start)..).next().unwrap().unwrap();
                s.runs.insert(k, keys::encode_run_value(start + 60_000, None)).unwrap();
            }),
            ("last of probe p, agent a", |s, start, p, a| {
                let mut l = keys::decode_last(&s.last.get(keys::pair_prefix(p, a)).unwrap().unwrap()).unwrap();
                l.at = start + 4 * HOUR_MS;
                s.last.insert(keys::pair_prefix(p, a), keys::encode_last(&l)).unwrap();
            }),
            ("hist_hour of probe p, agent a, hour ", |s, start, p, a| {
                let second = s.hist_hour.get(keys::pair_time_key(p, a, start + HOUR_MS)).unwrap().unwrap();
                let (_, hist) = keys::decode_hist_value(&second).unwrap();
                s.hist_hour.insert(keys::pair_time_key(p, a, start), keys::encode_hist_value(7, hist)).unwrap();
            }),
            ("hist_minutes of probe p, agent a, hour ", |s, start, p, a| {
                // Minutes for an hour no raw result accounts for.
                let first = s.hist_minutes.get(keys::pair_time_key(p, a, start)).unwrap().unwrap();
                s.hist_minutes.insert(keys::pair_time_key(p, a, start + 7 * HOUR_MS), first).unwrap();
            }),
            ("runs of probe p, agent a", |s, start, p, a| {
                // Every result is up: one run covers the three hours; it goes.
                let (k, _) = s.runs.range(keys::pair_time_key(p, a, start)..).next().unwrap().unwrap();
                s.runs.remove(k).unwrap();
            }),
        ];
        for (named, tamper) in cases {
            let dir = tempfile::tempdir().unwrap();
            let (store, start, p, a) = filled(&dir);
            assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new());
            tamper(&store, start, p, a);
            let found = store.check_derived(10).unwrap();
            assert!(found.iter().any(|l| l.starts_with(named)), "{named}: {found:?}");
            let before = store.verify_records(10).unwrap();
            assert!(before.problems.is_empty(), "a well-formed record reads: {:?}", before.problems);
            let rebuilt = store.rebuild_derived(start + 2 * HOUR_MS + 5 * 60_000).unwrap();
            assert_eq!((rebuilt.pairs, rebuilt.hours, rebuilt.results), (1, 3, 3 * 360));
            assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new(), "{named}: rebuilt");
        }
    }

    #[test]
    fn a_record_that_does_not_read_is_named_with_its_probe_agent_and_hour() {
        let dir = tempfile::tempdir().unwrap();
        let (store, start, p, a) = filled(&dir);
        let clean = store.verify_records(10).unwrap();
        assert!(clean.problems.is_empty(), "{:?}", clean.problems);
        assert_eq!(clean.results, 3 * 360);
        let (k, v) = store.raw.range(keys::raw_key(p, a, start + HOUR_MS, 0)..).next().unwrap().unwrap();
        store.raw.insert(&k, &v[..v.len() / 2]).unwrap();
        store.hist_minutes.insert(keys::pair_time_key(p, a, start), &b"\x01garbage"[..]).unwrap();
        let found = store.verify_records(10).unwrap().problems;
        let hour = |t: i64| instant(t);
        assert!(
            found.contains(&format!(
                "raw, probe p, agent a, hour {}: a block that does not decode",
                hour(start + HOUR_MS)
            )),
            "{found:?}"
        );
        assert!(
            found
                .contains(&format!("hist_minutes, probe p, agent a, hour {}: minutes that do not decode", hour(start))),
            "{found:?}"
        );
    }
}
