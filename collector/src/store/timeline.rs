//! Stored view runs: the `runs` tree keeps, per (probe, agent), the canonical runs of
//! `runs::runs_from_observations` (maximal stretches of one known outcome). A new result
//! changes the view only over its own extent `[at, min(next at, at + 2·interval))`, so
//! inserting results in any order is "paint that extent", touching a few keys.

use probity_config::wire::ErrorKind;

use crate::keys::{self, Num};
use crate::runs::{Observation, ViewRun, runs_from_observations};
use crate::store::StoreError;
use crate::store::raw::{PairCursor, RawLookup};
use crate::store::tree::Tree;

/// One new observation of a (probe, agent), as the timeline needs it.
#[derive(Clone, Copy, Debug)]
pub struct NewObservation {
    pub at: i64,
    pub seq: u64,
    pub down: Option<ErrorKind>,
}

/// Applies a batch's new observations of `(probe, agent)` to its runs. `raw` answers for
/// the results stored before this batch (the batch itself is not in `raw` yet).
/// `newest_before` is the (at, seq) of the latest of those: results after it extend the
/// timeline from memory alone; earlier ones look up their successor.
pub fn apply(
    runs: &Tree,
    raw: &mut RawLookup<'_>,
    probe: Num,
    agent: Num,
    interval_ms: i64,
    newest_before: Option<(i64, u64)>,
    mut observations: Vec<NewObservation>,
) -> Result<(), StoreError> {
    observations.sort_by_key(|o| (o.at, o.seq));
    let stale_after = 2 * interval_ms;
    let split = observations.partition_point(|o| newest_before.is_some_and(|(at, _)| o.at <= at));
    let mut extents: Vec<ViewRun> = Vec::new();
    for (i, o) in observations[..split].iter().enumerate() {
        let in_batch_later = observations.get(i + 1).is_some_and(|n| n.at == o.at);
        if in_batch_later || raw.superseded(o.at, o.seq)? {
            continue;
        }
        let batch_next = observations[i + 1..].iter().map(|n| n.at).find(|&at| at > o.at);
        let next_at = match (batch_next, raw.next_after(o.at)?) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        let end = next_at.map_or(o.at + stale_after, |n| n.min(o.at + stale_after));
        extents.push(ViewRun { start: o.at, end, down: o.down });
    }
    let tail: Vec<Observation> = observations[split..].iter().map(|o| Observation { at: o.at, down: o.down }).collect();
    extents.extend(runs_from_observations(&tail, interval_ms));
    for e in extents {
        paint(runs, probe, agent, e)?;
    }
    Ok(())
}

/// Sets the view to `run.down` over `[run.start, run.end)`, keeping the stored runs canonical
/// (no overlap, touching runs of one outcome merged).
pub fn paint(runs: &Tree, probe: Num, agent: Num, run: ViewRun) -> Result<(), StoreError> {
    let mut affected: Vec<ViewRun> = Vec::new();
    let lo = keys::pair_time_key(probe, agent, run.start);
    if let Some((k, v)) = runs.range(keys::pair_time_key(probe, agent, i64::MIN)..lo).next_back().transpose()? {
        let r = decode_run(&k, &v)?;
        if r.end >= run.start {
            affected.push(r);
        }
    }
    for kv in runs.range(lo..=keys::pair_time_key(probe, agent, run.end)) {
        let (k, v) = kv?;
        affected.push(decode_run(&k, &v)?);
    }
    let mut pieces: Vec<ViewRun> = Vec::with_capacity(affected.len() + 1);
    for r in &affected {
        if r.start < run.start {
            pieces.push(ViewRun { start: r.start, end: r.end.min(run.start), down: r.down });
        }
        if r.end > run.end {
            pieces.push(ViewRun { start: r.start.max(run.end), end: r.end, down: r.down });
        }
    }
    pieces.push(run);
    pieces.sort_by_key(|p| p.start);
    let mut merged: Vec<ViewRun> = Vec::with_capacity(pieces.len());
    for p in pieces {
        match merged.last_mut() {
            Some(last) if last.end == p.start && last.down == p.down => last.end = p.end,
            _ => merged.push(p),
        }
    }
    for r in &affected {
        if !merged.iter().any(|m| m.start == r.start) {
            runs.remove(keys::pair_time_key(probe, agent, r.start))?;
        }
    }
    for m in &merged {
        if !affected.contains(m) {
            runs.insert(keys::pair_time_key(probe, agent, m.start), keys::encode_run_value(m.end, m.down))?;
        }
    }
    Ok(())
}

/// Paints the view over the extents of one hour's stored results (`entries`, sorted by
/// (at, seq), all of `raw`'s results of that hour), the last one's cut at the next stored
/// result after the hour. Painting sets, never adds: doing it again changes nothing.
pub fn repaint_hour(
    runs: &Tree,
    raw: &Tree,
    probe: Num,
    agent: Num,
    interval_ms: i64,
    hour: i64,
    entries: &[crate::keys::BlockEntry],
) -> Result<(), StoreError> {
    let observations: Vec<Observation> = entries.iter().map(|e| Observation { at: e.at, down: e.value.down }).collect();
    let mut extents = runs_from_observations(&observations, interval_ms);
    let after = hour.saturating_add(keys::HOUR_MS);
    let next = raw
        .range(keys::raw_key(probe, agent, after, 0)..=keys::raw_key(probe, agent, i64::MAX, u64::MAX))
        .next()
        .transpose()?
        .map(|(k, _)| keys::decode_raw_key(&k).2);
    if let (Some(last), Some(next)) = (extents.last_mut(), next) {
        last.end = last.end.min(next);
    }
    for e in extents {
        paint(runs, probe, agent, e)?;
    }
    Ok(())
}

/// The runs of `(probe, agent)` overlapping `[from, to)`, clipped to it.
pub fn view_runs(runs: &Tree, probe: Num, agent: Num, from: i64, to: i64) -> Result<Vec<ViewRun>, StoreError> {
    let mut out = Vec::new();
    if from >= to {
        return Ok(out);
    }
    let lo = keys::pair_time_key(probe, agent, from);
    if let Some((k, v)) = runs.range(keys::pair_time_key(probe, agent, i64::MIN)..lo).next_back().transpose()? {
        let r = decode_run(&k, &v)?;
        if r.end > from {
            out.push(r);
        }
    }
    for kv in runs.range(lo..keys::pair_time_key(probe, agent, to)) {
        let (k, v) = kv?;
        out.push(decode_run(&k, &v)?);
    }
    for r in &mut out {
        r.start = r.start.max(from);
        r.end = r.end.min(to);
    }
    Ok(out)
}

/// Recomputes the runs of `(probe, agent)` from the raw results still held, for a probe
/// whose interval changed. Runs older than the oldest raw result keep the old interval.
pub fn rebuild(runs: &Tree, raw: &Tree, probe: Num, agent: Num, interval_ms: i64) -> Result<(), StoreError> {
    let mut observations = Vec::new();
    for e in PairCursor::new(raw, probe, agent, i64::MIN, i64::MAX) {
        let e = e?;
        observations.push(Observation { at: e.at, down: e.value.down });
    }
    let Some(from) = observations.first().map(|o| o.at) else { return Ok(()) };
    let doomed: Vec<ViewRun> = view_runs(runs, probe, agent, from, i64::MAX)?;
    for r in doomed {
        // `view_runs` clipped the first run to `from`; its stored key may start earlier.
        let stored_start = if r.start == from { start_of_run_covering(runs, probe, agent, from)? } else { r.start };
        runs.remove(keys::pair_time_key(probe, agent, stored_start))?;
        if stored_start < from {
            runs.insert(keys::pair_time_key(probe, agent, stored_start), keys::encode_run_value(from, r.down))?;
        }
    }
    for r in runs_from_observations(&observations, interval_ms) {
        paint(runs, probe, agent, r)?;
    }
    Ok(())
}

fn start_of_run_covering(runs: &Tree, probe: Num, agent: Num, t: i64) -> Result<i64, StoreError> {
    let found = runs
        .range(keys::pair_time_key(probe, agent, i64::MIN)..=keys::pair_time_key(probe, agent, t))
        .next_back()
        .transpose()?;
    Ok(found.map_or(t, |(k, _)| keys::decode_pair_time_key(&k).2))
}

fn decode_run(k: &[u8], v: &[u8]) -> Result<ViewRun, StoreError> {
    let (_, _, start) = keys::decode_pair_time_key(k);
    let (end, down) = keys::decode_run_value(v).ok_or(StoreError::Corrupt { tree: "runs" })?;
    Ok(ViewRun { start, end, down })
}
