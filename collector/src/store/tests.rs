//! Store tests on a real sled database in a temporary directory: timelines against the
//! canonical definition under random insertion orders, dedup across reopen, seq gaps,
//! histograms and rollups, raw streaming, retention, schema refusal.

use probity_config::wire::{ErrorKind, ProbeResult, ResultError};

use super::*;
use crate::keys::{DAY_MS, HOUR_MS, MINUTE_MS};
use crate::runs::{Observation, runs_from_observations};

fn open(dir: &tempfile::TempDir) -> Store {
    Store::open_waiting(&dir.path().join("db"), &StoreOptions { cache_capacity: 8 << 20 })
}

fn result(seq: u64, probe: &str, at: i64, down: Option<ErrorKind>, duration_us: u64) -> ProbeResult {
    ProbeResult {
        seq,
        probe: probe.into(),
        at,
        duration_us,
        ok: down.is_none(),
        status: None,
        phases: None,
        error: down.map(|kind| ResultError { kind, message: "x".into() }),
        cert_not_after: None,
    }
}

fn accept_all(interval_ms: i64) -> impl Fn(&ProbeResult) -> Result<i64, String> {
    move |_| Ok(interval_ms)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn stored_runs_equal_the_canonical_runs_for_any_insertion_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for case in 0..150 {
        let interval = 10 + rng.below(3) as i64 * 10;
        let probe = format!("p{case}");
        let agent = format!("a{case}");
        let n = 1 + rng.below(40) as usize;
        // Results with collisions on `at`, gaps beyond 2·interval, and three outcomes.
        let mut results: Vec<ProbeResult> = Vec::new();
        let mut at = rng.below(100) as i64 - 50;
        for seq in 1..=n as u64 {
            at += [0, 1, 5, 10, 15, 25, 60][rng.below(7) as usize];
            let down = [None, None, Some(ErrorKind::Timeout), Some(ErrorKind::Dns)][rng.below(4) as usize];
            results.push(result(seq, &probe, at, down, 1000));
        }
        // Shuffle, then send in random batches.
        let mut order = results.clone();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut i = 0;
        while i < order.len() {
            let take = 1 + rng.below(6) as usize;
            let end = (i + take).min(order.len());
            store.ingest(&agent, None, &order[i..end], accept_all(interval)).unwrap();
            i = end;
        }
        let mut sorted = results.clone();
        sorted.sort_by_key(|r| (r.at, r.seq));
        let observations: Vec<Observation> =
            sorted.iter().map(|r| Observation { at: r.at, down: r.error.as_ref().map(|e| e.kind) }).collect();
        let expected = runs_from_observations(&observations, interval);
        let stored = store.view_runs(&probe, &agent, i64::MIN, i64::MAX).unwrap();
        assert_eq!(
            stored,
            expected,
            "case {case}: interval {interval}, insertion order {:?}",
            order.iter().map(|r| r.seq).collect::<Vec<_>>()
        );
    }
}

#[test]
fn view_runs_are_clipped_to_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let rs: Vec<ProbeResult> = (0..10).map(|i| result(i + 1, "p", i as i64 * 10, None, 5)).collect();
    store.ingest("a", None, &rs, accept_all(10)).unwrap();
    assert_eq!(store.view_runs("p", "a", 15, 35).unwrap(), vec![ViewRun { start: 15, end: 35, down: None }]);
    assert_eq!(store.view_runs("p", "a", 200, 300).unwrap(), vec![]);
    assert_eq!(store.view_runs("p", "nobody", 0, 300).unwrap(), vec![]);
}

#[test]
fn duplicates_are_found_after_a_reopen_and_gaps_count_as_lost() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        let rs: Vec<ProbeResult> = [1, 2, 3, 7, 8].iter().map(|&s| result(s, "p", s as i64 * 1000, None, 5)).collect();
        let s = store.ingest("a", None, &rs, accept_all(1000)).unwrap();
        assert_eq!((s.accepted, s.duplicates), (5, 0));
        store.flush().unwrap();
    }
    let store = open(&dir);
    let again: Vec<ProbeResult> = [2, 3, 4, 9].iter().map(|&s| result(s, "p", s as i64 * 1000, None, 5)).collect();
    let s = store.ingest("a", None, &again, accept_all(1000)).unwrap();
    assert_eq!((s.accepted, s.duplicates), (2, 2));
    assert_eq!(s.seq, SeqSummary { highest: 9, received: 7, lost: 2, largest_gap: 2 });
    assert_eq!(store.seq_summary("a").unwrap(), Some(s.seq));
    assert_eq!(store.seq_summaries().unwrap(), vec![("a".to_string(), s.seq)]);
    assert_eq!(store.raw_results("p", i64::MIN, i64::MAX).unwrap().count(), 7);
}

#[test]
fn rejected_results_are_not_stored_and_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let rs = [result(1, "p", 1000, None, 5), result(2, "bad", 2000, None, 5), result(3, "p", 3000, None, 5)];
    let s = store
        .ingest("a", None, &rs, |r: &ProbeResult| if r.probe == "bad" { Err("unknown probe") } else { Ok(1000) })
        .unwrap();
    assert_eq!(s.accepted, 2);
    assert_eq!(s.rejected, vec![(2, "unknown probe")]);
    assert_eq!(s.seq.lost, 0);
    assert_eq!(store.agents_of("bad").unwrap(), Vec::<String>::new());
}

#[test]
fn raw_results_stream_in_time_order_across_agents_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .ingest("b", None, &[result(1, "p", 10, None, 1), result(2, "p", 30, Some(ErrorKind::Tls), 2)], accept_all(10))
        .unwrap();
    store
        .ingest(
            "a",
            None,
            &[result(1, "p", 20, None, 3), result(2, "p", 40, None, 4), result(3, "q", 25, None, 4)],
            accept_all(10),
        )
        .unwrap();
    let rows: Vec<(i64, String, bool)> = store
        .raw_results("p", 10, 40)
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.at, r.agent.to_string(), r.ok))
        .collect();
    assert_eq!(rows, vec![(10, "b".into(), true), (20, "a".into(), true), (30, "b".into(), false)]);
    let last = store.raw_results("p", 30, 31).unwrap().next().unwrap().unwrap();
    assert_eq!((last.error_kind, last.duration_us, &*last.probe), (Some(ErrorKind::Tls), 2, "p"));
}

#[test]
fn latency_merges_minutes_hours_and_days_the_same_before_and_after_rollup() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let day0 = 1_763_769_600_000i64; // a UTC midnight
    let mut rs = Vec::new();
    // Every 10 minutes over three days, durations 1000..=1999 µs, every fifth one failed.
    for i in 0..(3 * 144) {
        let down = if i % 5 == 0 { Some(ErrorKind::Connect) } else { None };
        rs.push(result(i as u64 + 1, "p", day0 + i as i64 * 600_000 + 17, down, 1000 + (i as u64 % 1000)));
    }
    store.ingest("a", None, &rs, accept_all(600_000)).unwrap();
    let windows: Vec<Vec<(i64, i64)>> = vec![
        vec![(day0, day0 + 3 * DAY_MS)],
        vec![(day0 + 30 * MINUTE_MS + 1, day0 + 2 * DAY_MS + 5 * HOUR_MS)],
        vec![(day0, day0 + HOUR_MS), (day0 + DAY_MS + 8 * HOUR_MS, day0 + DAY_MS + 18 * HOUR_MS)],
    ];
    let before: Vec<(u64, u64, u64)> = windows
        .iter()
        .map(|w| {
            let l = store.latency("p", w).unwrap();
            (l.results, l.histogram.len(), l.histogram.value_at_quantile(0.95))
        })
        .collect();
    assert_eq!(before[0].0, 432);
    assert_eq!(before[0].1, 432 - 87);
    assert!(store.roll_up(day0 + 3 * DAY_MS).unwrap() > 0);
    let after: Vec<(u64, u64, u64)> = windows
        .iter()
        .map(|w| {
            let l = store.latency("p", w).unwrap();
            (l.results, l.histogram.len(), l.histogram.value_at_quantile(0.95))
        })
        .collect();
    assert_eq!(before, after);
    // A late result in a rolled-up hour is counted at once.
    store.ingest("a", None, &[result(10_000, "p", day0 + 5 * MINUTE_MS, None, 7)], accept_all(600_000)).unwrap();
    assert_eq!(store.latency("p", &windows[0]).unwrap().results, 433);
    assert_eq!(store.received("p", "a", day0, day0 + HOUR_MS).unwrap(), 7);
    store.roll_up(day0 + 3 * DAY_MS).unwrap();
    assert_eq!(store.latency("p", &windows[0]).unwrap().results, 433);
    // A stored minute that is not the cached one is read back and added to.
    store.ingest("a", None, &[result(10_001, "p", day0 + 18, None, 3_000_000)], accept_all(600_000)).unwrap();
    let first_minute = store.latency("p", &[(day0, day0 + MINUTE_MS)]).unwrap();
    assert_eq!((first_minute.results, first_minute.histogram.len()), (2, 1), "the first result failed");
    assert!(first_minute.histogram.equivalent(first_minute.histogram.max(), 3_000_000));
    // Minutes count when their start lies in the interval.
    assert_eq!(store.received("p", "a", day0 + 1, day0 + 10 * MINUTE_MS).unwrap(), 1, "the late one at minute 5");
    assert_eq!(store.received("p", "a", day0 + 1, day0 + 10 * MINUTE_MS + 1).unwrap(), 2, "and minute 10");
}

#[test]
fn retention_removes_raw_results_but_keeps_runs_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let rs: Vec<ProbeResult> = (0..100).map(|i| result(i + 1, "p", i as i64 * 60_000, None, 100)).collect();
    store.ingest("a", None, &rs, accept_all(60_000)).unwrap();
    let runs_before = store.view_runs("p", "a", i64::MIN, i64::MAX).unwrap();
    // Whole hours only: the cutoff at minute 90 removes the first hour.
    assert_eq!(store.remove_raw_before(90 * 60_000).unwrap(), 60);
    assert_eq!(store.raw_results("p", i64::MIN, i64::MAX).unwrap().count(), 40);
    assert_eq!(store.view_runs("p", "a", i64::MIN, i64::MAX).unwrap(), runs_before);
    assert_eq!(store.latency("p", &[(0, 100 * 60_000)]).unwrap().histogram.len(), 100);
}

#[test]
fn a_changed_interval_rebuilds_runs_from_raw_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    assert_eq!(store.sync_intervals(&[("p".into(), 10)]).unwrap(), Vec::<String>::new());
    let rs: Vec<ProbeResult> =
        [0, 10, 50].iter().enumerate().map(|(i, &at)| result(i as u64 + 1, "p", at, None, 1)).collect();
    store.ingest("a", None, &rs, accept_all(10)).unwrap();
    assert_eq!(store.view_runs("p", "a", i64::MIN, i64::MAX).unwrap().len(), 2);
    assert_eq!(store.sync_intervals(&[("p".into(), 30)]).unwrap(), vec!["p".to_string()]);
    assert_eq!(
        store.view_runs("p", "a", i64::MIN, i64::MAX).unwrap(),
        vec![ViewRun { start: 0, end: 110, down: None }]
    );
}

#[test]
fn an_unknown_schema_version_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store.meta.insert(keys::SCHEMA_VERSION_KEY, 99u32.to_be_bytes()).unwrap();
        store.flush().unwrap();
    }
    let err = Store::open(&dir.path().join("db"), &StoreOptions::default()).err().unwrap().to_string();
    assert!(err.contains("schema version 99") && err.contains(&dir.path().join("db").display().to_string()), "{err}");
}

#[test]
fn last_results_follow_the_newest_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.ingest("a", None, &[result(2, "p", 2000, Some(ErrorKind::Status), 9)], accept_all(1000)).unwrap();
    store.ingest("a", None, &[result(1, "p", 1000, None, 9)], accept_all(1000)).unwrap();
    let last = store.last_result("p", "a").unwrap().unwrap();
    assert_eq!((last.at, last.value.down), (2000, Some(ErrorKind::Status)));
    assert_eq!(store.last_results().unwrap().len(), 1);
}

#[test]
fn latency_histograms_keep_the_recorded_durations() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let rs: Vec<ProbeResult> =
        (0..120).map(|i| result(i + 1, "p", i as i64 * 10_000, None, 20_000 + (i % 2) * 20_000)).collect();
    store.ingest("a", None, &rs, accept_all(10_000)).unwrap();
    let l = store.latency("p", &[(0, 20 * MINUTE_MS)]).unwrap();
    assert_eq!(l.histogram.len(), 120);
    assert_eq!(l.histogram.lowest_equivalent(l.histogram.min()), 20_000);
    assert_eq!(l.histogram.highest_equivalent(l.histogram.value_at_quantile(0.25)), 20_015);
    assert!(l.histogram.value_at_quantile(0.99) >= 40_000);
}

#[test]
fn a_schema_1_database_is_migrated_to_hourly_minute_values_on_open() {
    use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
    let dir = tempfile::tempdir().unwrap();
    let day0 = 1_763_769_600_000i64;
    let rs: Vec<ProbeResult> = (0..300)
        .map(|i| {
            let down = if i % 7 == 0 { Some(ErrorKind::Timeout) } else { None };
            result(i + 1, "p", day0 + i as i64 * 37_000, down, 1000 + i * 13)
        })
        .collect();
    let window = [(day0, day0 + DAY_MS)];
    let before = {
        let store = open(&dir);
        store.ingest("a", None, &rs, accept_all(37_000)).unwrap();
        let before = store.latency("p", &window).unwrap();
        // Rewrite what was stored the way schema 1 kept it: one key per minute, V2+deflate.
        let old = store.db.open_tree("hist_min").unwrap();
        for kv in store.hist_minutes.iter() {
            let (k, v) = kv.unwrap();
            let (p, a, hour) = keys::decode_pair_time_key(&k);
            for m in keys::decode_minutes(&v).unwrap() {
                let mut deflated = Vec::new();
                if !m.hist.is_empty() {
                    let h: hdrhistogram::Histogram<u64> = Deserializer::new().deserialize(&mut &m.hist[..]).unwrap();
                    V2DeflateSerializer::new().serialize(&h, &mut deflated).unwrap();
                }
                let minute = hour + i64::from(m.minute) * MINUTE_MS;
                old.insert(keys::pair_time_key(p, a, minute), keys::encode_hist_value(m.total, &deflated)).unwrap();
            }
        }
        store.hist_minutes.sled().clear().unwrap();
        downgrade_to_schema(&store, 1);
        assert_eq!(store.hist_minutes.len(), 0, "the new tree is empty now");
        before
    };
    let store = open(&dir);
    let after = store.latency("p", &window).unwrap();
    assert_eq!((after.results, after.histogram.len()), (300, 300 - 43));
    assert_eq!(after.histogram, before.histogram);
    assert!(!store.db.tree_names().iter().any(|n| n.as_ref() == b"hist_min"), "the old tree is gone");
    assert_eq!(schema::stored_version(store.meta.sled()).unwrap(), Some(keys::SCHEMA_VERSION));
    assert_eq!(store.check_checksums(10).unwrap().damaged, vec![], "every record got its checksum");
    // And new results land in the migrated hours.
    store.ingest("a", None, &[result(1000, "p", day0 + 5, None, 9)], accept_all(37_000)).unwrap();
    assert_eq!(store.latency("p", &window).unwrap().results, 301);
}

#[test]
fn results_sent_one_per_batch_share_their_hours_block_until_it_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    // Merged after every batch, the shape that once made a block per result.
    store.set_journal_limit(1);
    let hour0 = 1_763_769_600_000i64;
    // One result per batch, as an agent sends them in real time, one every 3 s for an hour
    // and a half; every 10th batch also carries a late result from half an hour earlier.
    let mut expected = Vec::new();
    let mut seq = 0;
    for i in 0..1800i64 {
        seq += 1;
        let mut batch = vec![result(seq, "p", hour0 + i * 3_000, None, i as u64)];
        expected.push((hour0 + i * 3_000, seq));
        if i % 10 == 0 && i >= 600 {
            seq += 1;
            batch.push(result(seq, "p", hour0 + (i - 600) * 3_000 + 1, Some(ErrorKind::Connect), 0));
            expected.push((hour0 + (i - 600) * 3_000 + 1, seq));
        }
        store.ingest("a", None, &batch, accept_all(3_000)).unwrap();
    }
    expected.sort();
    let rows: Vec<(i64, u64)> = store
        .raw_results("p", hour0, hour0 + 2 * HOUR_MS)
        .unwrap()
        .map(|r| r.unwrap())
        .map(|r| (r.at, r.seq))
        .collect();
    assert_eq!(rows, expected, "every result once, in time order");
    // 1,920 results in 1,800 batches end in a handful of blocks, none past its limit
    // (a block takes more while it holds fewer than BLOCK_MAX; batches here carry two).
    let mut sizes = Vec::new();
    for kv in store.raw.iter() {
        let (k, v) = kv.unwrap();
        let (_, _, first_at, first_seq) = keys::decode_raw_key(&k);
        let mut entries = Vec::new();
        keys::decode_block(first_at, first_seq, &v, &mut entries).unwrap();
        sizes.push(entries.len());
    }
    assert_eq!(sizes.iter().sum::<usize>(), 1920);
    assert!(sizes.iter().all(|&n| n <= raw::BLOCK_MAX + 1), "{sizes:?}");
    assert!(sizes.len() <= 2 * 1920 / raw::BLOCK_MAX + 2, "{} blocks: {sizes:?}", sizes.len());
}

/// Results of two probes of one agent over three hours, with collisions on `at`, stale
/// gaps, failures, in random order and random batches.
fn random_batches(rng: &mut Rng, day0: i64) -> (Vec<Vec<ProbeResult>>, usize) {
    let mut results = Vec::new();
    let mut seq = 0;
    for probe in ["p", "q"] {
        let mut at = day0 + rng.below(100_000) as i64;
        for _ in 0..(10 + rng.below(40)) {
            at += [0, 1_000, 60_000, 300_000, 600_000, 1_500_000][rng.below(6) as usize];
            let down = [None, None, Some(ErrorKind::Timeout), Some(ErrorKind::Dns)][rng.below(4) as usize];
            seq += 1;
            results.push(result(seq, probe, at, down, 1000 + rng.below(50_000)));
        }
    }
    for i in (1..results.len()).rev() {
        results.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let n = results.len();
    let mut batches = Vec::new();
    while !results.is_empty() {
        let take = (1 + rng.below(8) as usize).min(results.len());
        batches.push(results.drain(..take).collect());
    }
    (batches, n)
}

#[test]
fn derived_data_equals_a_fresh_derivation_from_raw_after_a_crash_or_a_write_error_anywhere() {
    let day0 = 1_763_769_600_000i64;
    let interval = 600_000;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..24 {
        let (batches, n) = random_batches(&mut rng, day0);
        // Journals merged after every batch, every few results, or only when read.
        let limit = [1, 5, journal::DEFAULT_LIMIT][case % 3];
        let open = |dir: &tempfile::TempDir| {
            let store = open(dir);
            store.set_journal_limit(limit);
            store
        };
        // How many writes a clean run makes, to pick the failing one among them.
        let writes = {
            let dir = tempfile::tempdir().unwrap();
            let store = open(&dir);
            let before = store.faults().writes();
            for b in &batches {
                store.ingest("a", None, b, accept_all(interval)).unwrap();
            }
            store.faults().writes() - before
        };
        let fail_at = 1 + rng.below(writes);
        let crash = rng.below(2) == 0;
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        if crash {
            // A crash at that write: it and every later one never happen.
            store.faults().fail_writes_from(fail_at);
            for b in &batches {
                if store.ingest("a", None, b, accept_all(interval)).is_err() {
                    break;
                }
            }
            drop(store);
        } else {
            // One storage error; the agent goes on (and re-sends below).
            store.faults().fail_nth_write(fail_at);
            for b in &batches {
                let _ = store.ingest("a", None, b, accept_all(interval));
            }
            drop(store);
        }
        let store = open(&dir);
        // The agent re-sends whatever was not acknowledged: here, all of it.
        for b in &batches {
            store.ingest("a", None, b, accept_all(interval)).unwrap();
        }
        let what = format!(
            "case {case} (journal limit {limit}): {} write {fail_at} of {writes}",
            if crash { "crash at" } else { "error at" }
        );
        assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new(), "{what}");
        let stored =
            ["p", "q"].iter().map(|p| store.raw_results(p, i64::MIN, i64::MAX).unwrap().count()).sum::<usize>();
        assert_eq!(stored, n, "{what}: every result stored once");
        let counted: u64 =
            ["p", "q"].iter().map(|p| store.latency(p, &[(day0 - DAY_MS, day0 + 3 * DAY_MS)]).unwrap().results).sum();
        assert_eq!(counted, n as u64, "{what}: every result counted once");
        store.roll_up(day0 + 2 * DAY_MS).unwrap();
        assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new(), "{what}, rolled up");
    }
}

#[test]
fn a_failed_derived_write_is_repaired_before_the_agents_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.set_journal_limit(1);
    let day0 = 1_763_769_600_000i64;
    let all: Vec<ProbeResult> = (1..=10)
        .map(|s| result(s, "p", day0 + s as i64 * 10_000, Some(ErrorKind::Dns).filter(|_| s > 5), 100))
        .collect();
    store.ingest("a", None, &all[..5], accept_all(10_000)).unwrap();
    // The ids are known now: write 1 of the next batch is its journal transaction, 2 its
    // merge into raw blocks, then derived ones.
    store.faults().fail_nth_write(3);
    assert!(matches!(store.ingest("a", None, &all[5..], accept_all(10_000)), Err(StoreError::Injected { .. })));
    assert!(!store.check_derived(10).unwrap().is_empty(), "the derived data is behind raw");
    let again = store.ingest("a", None, &all, accept_all(10_000)).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 10), "the raw results were stored: the retry is a duplicate");
    assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new());
    assert_eq!(store.latency("p", &[(day0, day0 + DAY_MS)]).unwrap().results, 10, "counted once");
}

/// Rewrites every record the way schemas 1 and 2 stored it, without a checksum, and the
/// version as a plain `u32`: an old database, for the migration tests.
fn downgrade_to_schema(store: &Store, version: u32) {
    for name in store.db.tree_names() {
        if name.as_ref() == b"__sled__default" {
            continue;
        }
        let tree = store.db.open_tree(&name).unwrap();
        for kv in tree.iter() {
            let (k, v) = kv.unwrap();
            let Some(plain) = keys::unseal(&k, &v).map(<[u8]>::to_vec) else { continue }; // hist_min: written plain
            tree.insert(k, plain).unwrap();
        }
    }
    store.meta.sled().insert(keys::SCHEMA_VERSION_KEY, &version.to_be_bytes()).unwrap();
    store.flush().unwrap();
}

/// A store with a bit of every record kind: two agents (one with two instances), two
/// probes, three hours of one day with failures, rolled up, a catalogue version, a
/// revision, a recorded loss, and a result of the next day still pending.
fn populated(dir: &tempfile::TempDir, day0: i64) -> Store {
    let store = open(dir);
    for (agent, instance) in [("lon-1", None), ("lon-1", Some("9f2c")), ("fra-1", Some("77ab"))] {
        let base = if instance == Some("9f2c") { 1000 } else { 0 };
        let rs: Vec<ProbeResult> = (0..400u64)
            .map(|i| {
                let down = (i % 9 == 4).then_some(ErrorKind::Timeout);
                let probe = if i % 2 == 0 { "web" } else { "api" };
                result(base + i + 1, probe, day0 + base as i64 * 11 + i as i64 * 20_000, down, 1000 + i * 7)
            })
            .collect();
        store.ingest(agent, instance, &rs, accept_all(20_000)).unwrap();
    }
    store.roll_up(day0 + DAY_MS + HOUR_MS).unwrap();
    store
        .ingest("lon-1", Some("9f2c"), &[result(5000, "web", day0 + DAY_MS + 5, None, 5)], accept_all(20_000))
        .unwrap();
    store.record_loss("fra-1", Some("77ab"), &[(900, 904)]).unwrap();
    store.append_catalogue_version(1, b"{\"v\":1}").unwrap();
    store.append_revision("web-sla", "2025-11", 1, b"{\"r\":1}").unwrap();
    store.last_results().unwrap(); // a read: the journal merged into raw
    store.flush().unwrap();
    store
}

/// Everything a reader of the store sees, as text, to compare two stores by.
fn readings(store: &Store, day0: i64) -> String {
    let mut out = String::new();
    for probe in ["web", "api"] {
        let raw: Vec<RawRow> = store.raw_results(probe, i64::MIN, i64::MAX).unwrap().map(Result::unwrap).collect();
        out += &format!("{probe} raw {raw:?}\n");
        for agent in store.agents_of(probe).unwrap() {
            out += &format!("{probe} {agent} runs {:?}\n", store.view_runs(probe, &agent, i64::MIN, i64::MAX).unwrap());
            out += &format!("{probe} {agent} last {:?}\n", store.last_result(probe, &agent).unwrap());
        }
        for window in [(day0, day0 + DAY_MS), (day0, day0 + HOUR_MS), (day0 + 600_000, day0 + 2 * DAY_MS)] {
            let l = store.latency(probe, &[window]).unwrap();
            out += &format!("{probe} latency {window:?} {} {:?}\n", l.results, l.histogram);
        }
    }
    out += &format!("{:?}\n{:?}\n", store.all_agent_instances().unwrap(), store.last_results().unwrap());
    out += &format!("{:?}\n", store.acknowledged());
    out += &format!("{:?} {:?}\n", store.catalogue_versions().unwrap(), store.revisions("web-sla", "2025-11").unwrap());
    out
}

#[test]
fn a_schema_2_database_gets_its_checksums_on_open_and_reads_the_same() {
    let day0 = 1_763_769_600_000i64;
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = populated(&dir, day0);
        let before = readings(&store, day0);
        downgrade_to_schema(&store, 2);
        assert!(store.check_checksums(1).unwrap().damaged_total > 100, "no record has a checksum now");
        before
    };
    let store = open(&dir);
    assert_eq!(schema::stored_version(store.meta.sled()).unwrap(), Some(keys::SCHEMA_VERSION));
    let report = store.check_checksums(10).unwrap();
    assert_eq!((report.damaged_total, report.damaged), (0, vec![]));
    assert!(report.records > 100);
    assert_eq!(readings(&store, day0), before);
    assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new());
}

#[test]
fn an_interrupted_checksum_migration_finishes_on_the_next_open() {
    let day0 = 1_763_769_600_000i64;
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = populated(&dir, day0);
        let before = readings(&store, day0);
        downgrade_to_schema(&store, 2);
        // What a migration stopped half-way through `raw` leaves: the trees before it in
        // name order sealed, `raw` up to some key, the progress key naming that key.
        let mut names = store.db.tree_names();
        names.sort();
        for name in names.iter().filter(|n| n.as_ref() < b"raw".as_slice() && n.as_ref() != b"meta") {
            let tree = store.db.open_tree(name).unwrap();
            for kv in tree.iter() {
                let (k, v) = kv.unwrap();
                tree.insert(&k, keys::sealed(&k, &v)).unwrap();
            }
        }
        let raw = store.raw.sled();
        let keys_in_raw: Vec<sled::IVec> = raw.iter().keys().map(Result::unwrap).collect();
        assert!(keys_in_raw.len() >= 4, "{} raw blocks", keys_in_raw.len());
        let half = &keys_in_raw[..keys_in_raw.len() / 2];
        for k in half {
            let v = raw.get(k).unwrap().unwrap();
            raw.insert(k, keys::sealed(k, &v)).unwrap();
        }
        let mut progress = b"raw".to_vec();
        progress.push(0);
        progress.extend_from_slice(half.last().unwrap());
        store.meta.sled().insert(b"migrate_checksums", progress).unwrap();
        store.flush().unwrap();
        before
    };
    let store = open(&dir);
    assert_eq!(store.check_checksums(10).unwrap().damaged, vec![], "each record sealed once");
    assert_eq!(readings(&store, day0), before);
    assert!(!store.meta.contains_key(b"migrate_checksums").unwrap());
}

#[test]
fn a_damaged_record_of_any_kind_is_an_error_naming_it_never_a_figure() {
    let day0 = 1_763_769_600_000i64;
    let hour = probity_config::time::rfc3339(day0);
    let day = probity_config::time::rfc3339(day0);
    type Read = fn(&Store, i64) -> Result<(), StoreError>;
    // Tree, the record to damage (the first one whose key starts so), what reads it, and
    // what the error must name.
    let cases: Vec<(&str, Vec<u8>, Read, Vec<String>)> = vec![
        (
            "raw",
            vec![],
            |s, _| s.raw_results("web", i64::MIN, i64::MAX)?.try_for_each(|r| r.map(drop)),
            vec![format!("hour {hour}")],
        ),
        ("runs", vec![], |s, _| s.view_runs("web", "lon-1", i64::MIN, i64::MAX).map(drop), vec![format!("run from")]),
        ("last", vec![], |s, _| s.last_result("web", "lon-1").map(drop), vec![]),
        ("agents", vec![], |s, _| s.seq_summaries().map(drop), vec!["legacy instance".into()]),
        (
            "hist_minutes",
            vec![],
            |s, day0| s.latency("web", &[(day0, day0 + 30 * MINUTE_MS)]).map(drop),
            vec![format!("hour {hour}")],
        ),
        (
            "hist_hour",
            vec![],
            |s, day0| s.latency("web", &[(day0, day0 + HOUR_MS)]).map(drop),
            vec![format!("hour {hour}")],
        ),
        (
            "hist_day",
            vec![],
            |s, day0| s.latency("web", &[(day0, day0 + DAY_MS)]).map(drop),
            vec![format!("day {day}")],
        ),
        ("names", b"#a".to_vec(), |s, _| s.agents_of("web").map(drop), vec!["the id of agent number 1".into()]),
        (
            "meta",
            b"interval".to_vec(),
            |s, _| s.sync_intervals(&[("web".into(), 20_000)]).map(drop),
            vec!["interval of probe web".into()],
        ),
        ("rollup_pending", vec![], |s, day0| s.roll_up(day0 + 3 * DAY_MS).map(drop), vec!["pending".into()]),
        (
            "catalogue_versions",
            vec![],
            |s, _| s.latest_catalogue_version().map(drop),
            vec!["catalogue version 1".into()],
        ),
        (
            "revisions",
            vec![],
            |s, _| s.revisions("web-sla", "2025-11").map(drop),
            vec!["agreement web-sla, period 2025-11, revision 1".into()],
        ),
    ];
    for (tree, prefix, read, names) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = populated(&dir, day0);
        let sled_tree = store.db.open_tree(tree).unwrap();
        // The first record of the kind: in the pair tables, probe web (interned second,
        // after agent lon-1) with agent lon-1.
        let (k, v) = sled_tree.scan_prefix(&prefix).next().unwrap().unwrap();
        let mut flipped = v.to_vec();
        flipped[v.len() / 2] ^= 0x10;
        sled_tree.insert(&k, flipped).unwrap();
        let err = read(&store, day0).err().unwrap_or_else(|| panic!("{tree}: the damaged record was read as data"));
        let StoreError::Damaged { tree: named, record } = &err else { panic!("{tree}: {err}") };
        assert_eq!(*named, tree);
        for name in &names {
            assert!(record.contains(name.as_str()), "{tree}: {err} does not name {name}");
        }
        if ["raw", "runs", "last", "hist_minutes", "hist_hour", "hist_day"].contains(&tree) {
            assert!(record.contains("probe web (#2), agent lon-1 (#1)"), "{tree}: {err}");
        }
        let report = store.check_checksums(10).unwrap();
        assert_eq!(report.damaged_total, 1, "{tree}: {:?}", report.damaged);
        assert_eq!((report.damaged[0].tree.as_str(), &report.damaged[0].record), (tree, record));
    }
}

#[test]
fn a_damaged_key_is_caught_like_a_damaged_value_and_check_derived_names_it() {
    let day0 = 1_763_769_600_000i64;
    let dir = tempfile::tempdir().unwrap();
    let store = populated(&dir, day0);
    let raw = store.raw.sled();
    let (k, v) = raw.iter().next().unwrap().unwrap();
    let mut moved = k.to_vec();
    moved[20] ^= 0x01; // the block's first seq
    raw.remove(&k).unwrap();
    raw.insert(moved, v).unwrap();
    let err = store.raw_results("web", i64::MIN, i64::MAX).unwrap().find_map(Result::err).unwrap();
    assert!(matches!(&err, StoreError::Damaged { tree: "raw", .. }), "{err}");
    let found = store.check_derived(10).unwrap();
    assert!(found.iter().any(|l| l.contains("damaged record in tree raw") && l.contains("agent lon-1")), "{found:?}");
}

#[test]
fn a_damaged_journal_record_left_by_a_crash_refuses_the_open_naming_it() {
    let day0 = 1_763_769_600_000i64;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir);
        store.ingest("lon-1", None, &[result(1, "web", day0, None, 5)], accept_all(20_000)).unwrap();
        store.flush().unwrap();
        // Killed before the journal was merged; then a byte of its record flipped.
        let journal = store.db.open_tree("journal").unwrap();
        let (k, v) = journal.iter().next().unwrap().unwrap();
        let mut flipped = v.to_vec();
        flipped[1] ^= 0x20;
        journal.insert(&k, flipped).unwrap();
        store.flush().unwrap();
    }
    let err = Store::open(&dir.path().join("db"), &StoreOptions::default()).err().expect("refused");
    assert!(
        matches!(&err, StoreError::Damaged { tree: "journal", record } if record.contains("agent lon-1 (#1), batch")),
        "{err}"
    );
}

#[test]
fn an_acknowledged_batch_left_in_the_journal_by_a_crash_is_merged_at_open() {
    let day0 = 1_763_769_600_000i64;
    let dir = tempfile::tempdir().unwrap();
    let rs: Vec<ProbeResult> = (0..50u64).map(|i| result(i + 1, "web", day0 + i as i64 * 20_000, None, 5)).collect();
    {
        let store = open(&dir);
        store.ingest("lon-1", None, &rs, accept_all(20_000)).unwrap();
        store.flush().unwrap();
        assert_eq!(store.journal.len(), 1, "acknowledged in the journal, not merged yet");
    } // dropped without close: what a kill leaves
    let store = open(&dir);
    assert_eq!(store.journal.len(), 0);
    assert_eq!(store.raw.len(), 1, "one block");
    assert_eq!(store.raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 50);
    assert_eq!(store.latency("web", &[(day0, day0 + DAY_MS)]).unwrap().results, 50);
    assert_eq!(store.check_derived(10).unwrap(), Vec::<String>::new());
    let again = store.ingest("lon-1", None, &rs, accept_all(20_000)).unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 50));
}
