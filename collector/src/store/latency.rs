//! Latency and result counts per (probe, agent): minute HDR histograms of successful
//! results' `duration_us` (3 significant digits, V2; an hour's minutes deflated together
//! in one value) with hourly and daily rollups (V2+deflate). Ingest rewrites the hour of
//! the minutes it touches (its raw transaction marked the hour pending); `roll_up` derives
//! each complete pending hour once more from raw (`derive.rs`) and builds the rollups of
//! complete hours and days; a query uses a rollup only when nothing is pending under it,
//! so a late result is never missed.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use super::tree::Tree;
use super::{PairState, Store, StoreError};
use crate::keys::{self, BlockEntry, DAY_MS, HOUR_MS, LEVEL_DAY, LEVEL_HOUR, MINUTE_MS, MinuteHist, Num};

/// Merged latency of a probe over some minutes.
#[derive(Clone, Debug)]
pub struct Latency {
    /// Durations of successful results, µs.
    pub histogram: Histogram<u64>,
    /// Every result counted (ok or not).
    pub results: u64,
}

/// An empty auto-resizing histogram with the product's precision.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

impl Store {
    pub(super) fn add_to_minutes(
        &self,
        p: Num,
        a: Num,
        pair: &mut PairState,
        items: &[BlockEntry],
    ) -> Result<(), StoreError> {
        // hour → minute of the hour → (results, durations of the successful ones)
        let mut by_hour: BTreeMap<i64, BTreeMap<u8, (u64, Vec<u64>)>> = BTreeMap::new();
        for e in items {
            let minute = e.at.div_euclid(MINUTE_MS) * MINUTE_MS;
            let hour = minute.div_euclid(HOUR_MS) * HOUR_MS;
            let of_hour = ((minute - hour) / MINUTE_MS) as u8;
            let m = by_hour.entry(hour).or_default().entry(of_hour).or_default();
            m.0 += 1;
            if e.value.down.is_none() {
                m.1.push(e.value.duration_us);
            }
        }
        let mut buf = Vec::new();
        for (hour, updates) in by_hour {
            // Taken, not borrowed: should a step below fail, the cached hour is dropped
            // rather than left ahead of what is stored.
            let mut minutes = match pair.hour.take() {
                Some((h, minutes)) if h == hour => minutes,
                other => {
                    pair.hour = other;
                    self.read_minutes(p, a, hour)?
                }
            };
            for (minute, (count, durations)) in updates {
                let i = match minutes.binary_search_by_key(&minute, |m| m.minute) {
                    Ok(i) => i,
                    Err(i) => {
                        minutes.insert(i, MinuteHist { minute, total: 0, hist: Vec::new() });
                        i
                    }
                };
                let m = &mut minutes[i];
                m.total += count;
                if !durations.is_empty() {
                    let mut hist = decode_growable(&m.hist)?;
                    for d in durations {
                        // `record` grows the auto-resizing histogram; `saturating_record` would
                        // clamp every value to its current top (2 µs for a fresh one).
                        hist.record(d).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
                    }
                    m.hist.clear();
                    serialize_v2(&hist, &mut m.hist)?;
                }
            }
            buf.clear();
            keys::encode_minutes(&minutes, &mut buf);
            self.hist_minutes.insert(keys::pair_time_key(p, a, hour), buf.as_slice())?;
            if pair.hour.as_ref().is_none_or(|(h, _)| *h <= hour) {
                pair.hour = Some((hour, minutes));
            }
        }
        Ok(())
    }

    /// Builds the rollups of complete hours and days (end <= `now_ms`) that have pending
    /// changes. A complete hour is first derived again from its raw results, so what a
    /// failed write or a crash left behind is gone before the hour is rolled up and its
    /// pending mark cleared. Returns how many rollups were written.
    pub fn roll_up(&self, now_ms: i64) -> Result<usize, StoreError> {
        let mut written = 0;
        let mut buf = Vec::new();
        let hours: Vec<(sled::IVec, sled::IVec)> = self.pending.scan_prefix([LEVEL_HOUR]).collect::<Result<_, _>>()?;
        for (k, marker) in hours {
            let (_, p, a, hour) = keys::decode_pending_key(&k);
            if hour + HOUR_MS > now_ms {
                continue;
            }
            // Under the agent's lock, so no batch of the pair is half applied meanwhile.
            let state = self.agent_state(a)?;
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            // The agent's journal may hold results of this hour: into raw first.
            self.settle_locked(a, &mut state)?;
            self.derive_hour(p, a, hour)?;
            state.pairs.remove(&p);
            // Cleared below (or kept by a newer marker): the next batch marks it again.
            state.marked.remove(&(p, hour));
            let (total, hist) = self.merge_hour(p, a, hour)?;
            if total == 0 {
                // No raw result in the hour (a mark copied by a backup beside raw blocks
                // taken before the results it marks arrived, or results since deleted):
                // a rollup would come from nowhere.
                self.hist_hour.remove(keys::pair_time_key(p, a, hour))?;
            } else {
                buf.clear();
                serialize(&hist, &mut buf)?;
                self.hist_hour.insert(keys::pair_time_key(p, a, hour), keys::encode_hist_value(total, &buf))?;
            }
            let day = hour.div_euclid(DAY_MS) * DAY_MS;
            self.pending.insert(keys::pending_key(LEVEL_DAY, p, a, day), &marker)?;
            // A minute written meanwhile changed the marker: the hour stays pending.
            let _ = self.pending.compare_and_swap(&k, Some(&marker), None as Option<&[u8]>)?;
            written += 1;
        }
        let days: Vec<(sled::IVec, sled::IVec)> = self.pending.scan_prefix([LEVEL_DAY]).collect::<Result<_, _>>()?;
        for (k, marker) in days {
            let (_, p, a, day) = keys::decode_pending_key(&k);
            if day + DAY_MS > now_ms || self.hours_pending(p, a, day)? {
                continue;
            }
            let (total, hist) = self.merge_range(&self.hist_hour, p, a, day, day + DAY_MS)?;
            buf.clear();
            serialize(&hist, &mut buf)?;
            self.hist_day.insert(keys::pair_time_key(p, a, day), keys::encode_hist_value(total, &buf))?;
            let _ = self.pending.compare_and_swap(&k, Some(&marker), None as Option<&[u8]>)?;
            written += 1;
        }
        Ok(written)
    }

    /// The latency of `probe` (all agents merged) over the minutes whose start lies in one
    /// of `intervals` (`[from, to)`, ms), using rollups for whole hours and days.
    pub fn latency(&self, probe: &str, intervals: &[(i64, i64)]) -> Result<Latency, StoreError> {
        self.settle_for_read();
        let mut out = Latency { histogram: new_histogram(), results: 0 };
        let Some(p) = self.lookup(keys::KIND_PROBE, probe)? else { return Ok(out) };
        for (a, _) in self.agent_nums_of(p)? {
            for &(from, to) in intervals {
                self.add_window(p, a, from, to, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Results of `(probe, agent)` received in the minutes whose start lies in `[from, to)`.
    pub fn received(&self, probe: &str, agent: &str, from_ms: i64, to_ms: i64) -> Result<u64, StoreError> {
        self.settle_for_read();
        let (Some(p), Some(a)) = (self.lookup(keys::KIND_PROBE, probe)?, self.lookup(keys::KIND_AGENT, agent)?) else {
            return Ok(0);
        };
        let mut out = Latency { histogram: new_histogram(), results: 0 };
        self.add_window(p, a, from_ms, to_ms, &mut out)?;
        Ok(out.results)
    }

    fn add_window(&self, p: Num, a: Num, from: i64, to: i64, out: &mut Latency) -> Result<(), StoreError> {
        let mut t = from.div_euclid(MINUTE_MS) * MINUTE_MS;
        if t < from {
            t += MINUTE_MS;
        }
        while t < to {
            // A bucket counts whole when the start of its last minute lies before `to`.
            if t.rem_euclid(DAY_MS) == 0 && t + DAY_MS - MINUTE_MS < to && self.rollup_valid(LEVEL_DAY, p, a, t)? {
                self.add_bucket(&self.hist_day, p, a, t, out)?;
                t += DAY_MS;
                continue;
            }
            if t.rem_euclid(HOUR_MS) == 0 && t + HOUR_MS - MINUTE_MS < to && self.rollup_valid(LEVEL_HOUR, p, a, t)? {
                self.add_bucket(&self.hist_hour, p, a, t, out)?;
                t += HOUR_MS;
                continue;
            }
            let hour = t.div_euclid(HOUR_MS) * HOUR_MS;
            let end = (hour + HOUR_MS).min(to);
            for m in self.read_minutes(p, a, hour)? {
                let start = hour + i64::from(m.minute) * MINUTE_MS;
                if start >= t && start < end {
                    add_minute(&m, out)?;
                }
            }
            t = hour + HOUR_MS;
        }
        Ok(())
    }

    fn rollup_valid(&self, level: u8, p: Num, a: Num, t: i64) -> Result<bool, StoreError> {
        if self.pending.contains_key(keys::pending_key(level, p, a, t))? {
            return Ok(false);
        }
        if level == LEVEL_DAY && self.hours_pending(p, a, t)? {
            return Ok(false);
        }
        Ok(true)
    }

    fn hours_pending(&self, p: Num, a: Num, day: i64) -> Result<bool, StoreError> {
        let range = keys::pending_key(LEVEL_HOUR, p, a, day)..keys::pending_key(LEVEL_HOUR, p, a, day + DAY_MS);
        Ok(self.pending.range(range).next().transpose()?.is_some())
    }

    fn add_bucket(&self, tree: &Tree, p: Num, a: Num, t: i64, out: &mut Latency) -> Result<(), StoreError> {
        if let Some(v) = tree.get(keys::pair_time_key(p, a, t))? {
            add_value(&v, out)?;
        }
        Ok(())
    }

    fn merge_range(
        &self,
        tree: &Tree,
        p: Num,
        a: Num,
        from: i64,
        to: i64,
    ) -> Result<(u64, Histogram<u64>), StoreError> {
        let mut out = Latency { histogram: new_histogram(), results: 0 };
        for kv in tree.range(keys::pair_time_key(p, a, from)..keys::pair_time_key(p, a, to)) {
            let (_, v) = kv?;
            add_value(&v, &mut out)?;
        }
        Ok((out.results, out.histogram))
    }

    /// The minutes stored for `(p, a)` in `hour`, ascending; none when nothing is.
    pub(super) fn read_minutes(&self, p: Num, a: Num, hour: i64) -> Result<Vec<MinuteHist>, StoreError> {
        match self.hist_minutes.get(keys::pair_time_key(p, a, hour))? {
            Some(v) => keys::decode_minutes(&v).ok_or(StoreError::Corrupt { tree: "hist_minutes" }),
            None => Ok(Vec::new()),
        }
    }

    /// Every minute of an hour merged: results and latency.
    fn merge_hour(&self, p: Num, a: Num, hour: i64) -> Result<(u64, Histogram<u64>), StoreError> {
        let mut out = Latency { histogram: new_histogram(), results: 0 };
        for m in self.read_minutes(p, a, hour)? {
            add_minute(&m, &mut out)?;
        }
        Ok((out.results, out.histogram))
    }
}

fn add_minute(m: &MinuteHist, out: &mut Latency) -> Result<(), StoreError> {
    add_counted(m.total, &m.hist, out)
}

/// A stored histogram (any serialisation) decoded straight into one that can grow, or a
/// new one for none.
pub(super) fn decode_growable(bytes: &[u8]) -> Result<Histogram<u64>, StoreError> {
    if bytes.is_empty() {
        return Ok(new_histogram());
    }
    let mut h: Histogram<u64> =
        Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
    h.auto(true);
    Ok(h)
}

/// Plain V2 (no deflate of its own: an hour's minutes are deflated together).
pub(super) fn serialize_v2(h: &Histogram<u64>, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    thread_local! {
        static V2: std::cell::RefCell<V2Serializer> = std::cell::RefCell::new(V2Serializer::new());
    }
    V2.with(|v2| v2.borrow_mut().serialize(h, buf).map(drop).map_err(|e| StoreError::Histogram(format!("{e:?}"))))
}

fn add_value(v: &[u8], out: &mut Latency) -> Result<(), StoreError> {
    let (total, bytes) = keys::decode_hist_value(v).ok_or(StoreError::Corrupt { tree: "hist" })?;
    add_counted(total, bytes, out)
}

/// Adds `total` results and the serialised histogram `bytes` (none when empty) to `out`.
fn add_counted(total: u64, bytes: &[u8], out: &mut Latency) -> Result<(), StoreError> {
    out.results += total;
    if !bytes.is_empty() {
        let h: Histogram<u64> =
            Deserializer::new().deserialize(&mut &bytes[..]).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
        out.histogram.add(&h).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
    }
    Ok(())
}

/// V2 payloads up to this size (a minute's few values) go into a zlib stream as one
/// *stored* deflate block: deflating them saves a few bytes but costs a compressor reset
/// (zeroing its 100 kB of tables), which was the largest single cost of ingest.
const STORED_MAX: usize = 256;

/// A zlib stream (RFC 1950) holding `data` in one stored deflate block (RFC 1951 §3.2.4).
fn zlib_stored(data: &[u8], out: &mut Vec<u8>) {
    let len = data.len() as u16;
    out.extend_from_slice(&[0x78, 0x01, 0x01]);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
}

/// The V2+deflate cookie of the HdrHistogram serialisation format.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;

/// Serialises in hdrhistogram's V2+deflate format (what `V2DeflateSerializer` writes, and
/// byte for byte the same above `STORED_MAX`), with a per-thread zlib compressor that is
/// reset instead of re-allocated on every call.
fn serialize(h: &Histogram<u64>, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    thread_local! {
        static CODEC: std::cell::RefCell<(V2Serializer, Vec<u8>, flate2::Compress)> = std::cell::RefCell::new((
            V2Serializer::new(),
            Vec::new(),
            flate2::Compress::new(flate2::Compression::default(), true),
        ));
    }
    if h.is_empty() {
        return Ok(());
    }
    CODEC.with(|codec| {
        let (v2, plain, deflate) = &mut *codec.borrow_mut();
        plain.clear();
        v2.serialize(h, plain).map_err(|e| StoreError::Histogram(format!("{e:?}")))?;
        let start = buf.len();
        buf.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        if plain.len() <= STORED_MAX {
            zlib_stored(plain, buf);
            let compressed = (buf.len() - start - 8) as u32;
            buf[start + 4..start + 8].copy_from_slice(&compressed.to_be_bytes());
            return Ok(());
        }
        buf.reserve(plain.len() + 64);
        deflate.reset();
        loop {
            let status = deflate
                .compress_vec(&plain[deflate.total_in() as usize..], buf, flate2::FlushCompress::Finish)
                .map_err(|e| StoreError::Histogram(e.to_string()))?;
            match status {
                flate2::Status::StreamEnd => break,
                _ => buf.reserve(plain.len() + 64),
            }
        }
        let compressed = (buf.len() - start - 8) as u32;
        buf[start + 4..start + 8].copy_from_slice(&compressed.to_be_bytes());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use hdrhistogram::serialization::V2DeflateSerializer;

    use super::*;

    #[test]
    fn serialisation_reads_back_and_matches_the_v2_deflate_serializer_when_deflated() {
        for values in [vec![], vec![1u64], vec![48_210, 48_210, 5_000_000, 0, 7], (0..5000).map(|i| i * 977).collect()]
        {
            let mut h = new_histogram();
            for v in &values {
                h.record(*v).unwrap();
            }
            let mut ours = Vec::new();
            serialize(&h, &mut ours).unwrap();
            if values.is_empty() {
                assert!(ours.is_empty(), "an empty histogram is stored as nothing");
                continue;
            }
            let back: Histogram<u64> = Deserializer::new().deserialize(&mut &ours[..]).unwrap();
            assert_eq!(back, h);
            let mut plain = Vec::new();
            V2Serializer::new().serialize(&h, &mut plain).unwrap();
            if plain.len() > STORED_MAX {
                let mut theirs = Vec::new();
                V2DeflateSerializer::new().serialize(&h, &mut theirs).unwrap();
                assert_eq!(ours, theirs);
            } else {
                let mut inflated = Vec::new();
                std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&ours[8..]), &mut inflated).unwrap();
                assert_eq!(inflated, plain, "a valid zlib stream holding the V2 payload");
            }
        }
    }
}
