//! The collector's storage: sled (pinned `=0.34.7`) behind one `Store`. Ingest writes raw
//! results, view runs, minute histograms, the latest result and the agent's seq state;
//! reports read runs and histograms without rescanning raw results; evidence streams
//! raw results. Every call here blocks: async callers use `spawn_blocking`.
//! Layout: `keys.rs` and ARCHITECTURE.md ("collector storage layout").

mod acks;
mod backup;
mod check;
mod checksums;
mod derive;
mod history;
mod ingest;
mod journal;
mod latency;
mod maintenance;
mod raw;
mod schema;
mod seqs;
mod timeline;
mod tree;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};

use probity_config::wire::{ErrorKind, ProbeResult};
use sled::Transactional;

use crate::keys::{self, BlockEntry, LastResult, Num, RawValue};
use crate::runs::ViewRun;

pub use backup::{BackupError, BackupSummary, RestoreSummary, verify_backup, write_failure};
pub use check::{RebuildSummary, RecordCheck};
pub use checksums::{ChecksumReport, DamagedRecord};
pub use latency::{Latency, new_histogram};
pub use seqs::{AgentInstances, SeqSet, SeqSummary};
pub use timeline::NewObservation;
pub use tree::Faults;
use tree::Tree;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the database at {path}: {reason}; if it is corrupt, stop the collector, move it aside \
         (mv {path} {path}.corrupt) and start again: agents re-send the results they still hold"
    )]
    Open { path: String, reason: String },
    #[error(
        "cannot open the database at {path}: the collector may not write there; give the user it runs as read \
         and write access to data_dir (owner and mode), or remount its filesystem read-write; this is not \
         corruption, so do not move the database aside"
    )]
    Access { path: String, source: std::io::Error },
    #[error(
        "the database at {path} has schema version {found}, this collector knows only version {known}; \
         run the collector version that wrote it, or move the database aside"
    )]
    UnknownSchema { path: String, found: u32, known: u32 },
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt value in tree {tree}")]
    Corrupt { tree: &'static str },
    /// A record whose checksum does not hold: its bytes changed since they were written.
    #[error(
        "damaged record in tree {tree} ({record}): its checksum does not match what was written; \
         `probity-collector db check` lists every damaged record"
    )]
    Damaged { tree: &'static str, record: String },
    #[error("histogram: {0}")]
    Histogram(String),
    #[error("a record in tree {tree} already exists and is never rewritten")]
    RecordExists { tree: &'static str },
    #[error("injected write failure (write {write}, tree {tree})")]
    Injected { tree: &'static str, write: u64 },
}

/// Tuning that tests and the benchmark change.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// sled page cache, bytes.
    pub cache_capacity: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { cache_capacity: 64 << 20 }
    }
}

/// The database and its in-memory indexes.
pub struct Store {
    db: sled::Db,
    path: PathBuf,
    meta: Tree,
    names: Tree,
    raw: Tree,
    runs: Tree,
    last: Tree,
    agents: Tree,
    hist_minutes: Tree,
    hist_hour: Tree,
    hist_day: Tree,
    pending: Tree,
    journal: Tree,
    /// Results in the agents' journals, not yet merged into raw blocks and derived data.
    journaled: AtomicU64,
    /// An agent's journal is merged once it holds this many results.
    journal_limit: AtomicUsize,
    catalogue_versions: Tree,
    revisions: Tree,
    /// Closed periods touched since their latest revision (history/restatements.rs).
    restatements: Tree,
    maintenance: Tree,
    interned: RwLock<HashMap<(u8, String), Num>>,
    intern_lock: Mutex<()>,
    agent_states: Mutex<HashMap<Num, Arc<Mutex<AgentState>>>>,
    /// Interval (ms) of each probe's stored runs, as `meta` records it.
    intervals: RwLock<HashMap<Num, i64>>,
    /// Every instance's seqs as last committed to sled, for the acknowledged ledger.
    committed: Mutex<BTreeMap<InstanceId, Vec<(u64, u64)>>>,
    faults: Arc<Faults>,
}

/// An agent instance by ids: agent, instance (`None`: legacy).
type InstanceId = (String, Option<String>);

/// The result of one ingest call; `R` is the caller's reject reason.
#[derive(Debug)]
pub struct IngestSummary<R> {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: Vec<(u64, R)>,
    /// The seq state of the request's agent instance.
    pub seq: SeqSummary,
    /// The request came from an instance never seen before of an agent that had another:
    /// an agent reset (SPEC §15).
    pub reset: bool,
    /// The newest stored result of each probe this call touched.
    pub latest: Vec<(String, LastResult)>,
}

/// One raw result, as evidence exports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawRow {
    pub at: i64,
    pub agent: Arc<str>,
    pub probe: Arc<str>,
    pub seq: u64,
    pub ok: bool,
    pub duration_us: u64,
    pub error_kind: Option<ErrorKind>,
    pub status: Option<u16>,
}

/// One probe's share of a batch: its interval and the accepted results.
type ProbeBatch = (i64, Vec<BlockEntry>);

/// Per-agent state, loaded on first use; its mutex serialises one agent's ingests (every
/// instance's: they share the agent's runs and histograms).
#[derive(Default)]
struct AgentState {
    /// Seqs answered for, per instance (`keys::LEGACY_INSTANCE` for requests without one).
    instances: BTreeMap<Num, SeqSet>,
    pairs: HashMap<Num, PairState>,
    /// A derived write failed after raw results were stored: the agent's pending hours
    /// are rederived from raw before its next batch.
    repair: bool,
    /// Acknowledged batches not yet merged into raw blocks (`journal.rs`).
    journal: journal::Journal,
    /// The (probe, hour) pending marks this agent's batches wrote and no rollup cleared
    /// since: a batch need not write them again.
    marked: std::collections::HashSet<(Num, i64)>,
}

#[derive(Default)]
struct PairState {
    last: Option<LastResult>,
    /// The newest hour of minute histograms written, to spare a read and an inflate on
    /// the next batch.
    hour: Option<(i64, Vec<keys::MinuteHist>)>,
}

impl Store {
    /// Opens (or creates) the database in `path`; refuses a corrupt one or an unknown schema.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        // sled recovers a damaged log as an empty database; a non-empty log file without our
        // schema key below is how that shows.
        let had_data = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() > 0);
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_capacity)
            .mode(sled::Mode::LowSpace)
            .flush_every_ms(Some(1000));
        // sled panics on some kinds of damage instead of returning an error.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || config.open()));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(sled::Error::Io(source)))
                if matches!(
                    source.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Err(StoreError::Access { path: shown, source });
            }
            Ok(Err(e)) => return Err(StoreError::Open { path: shown, reason: e.to_string() }),

            Err(_) => return Err(StoreError::Open { path: shown, reason: "sled panicked while recovering it".into() }),
        };
        let faults = Arc::new(Faults::default());
        let tree = |name: &'static str| Tree::open(&db, name, &faults);
        let meta = tree("meta")?;
        match schema::stored_version(meta.sled())? {
            Some(found) if found == keys::SCHEMA_VERSION => {}
            Some(found @ (1 | 2)) => {
                tracing::info!(path = %shown, from = found, to = keys::SCHEMA_VERSION, "migrating the database");
                schema::migrate(&db, found)?;
            }
            Some(found) => {
                return Err(StoreError::UnknownSchema { path: shown, found, known: keys::SCHEMA_VERSION });
            }
            None if had_data => {
                return Err(StoreError::Open {
                    path: shown,
                    reason: "it holds data but no readable schema version (damaged, or not a probity database)".into(),
                });
            }
            None => {
                meta.insert(keys::SCHEMA_VERSION_KEY, keys::SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
        }
        let store = Store {
            names: tree("names")?,
            raw: tree("raw")?,
            runs: tree("runs")?,
            last: tree("last")?,
            agents: tree("agents")?,
            hist_minutes: tree("hist_minutes")?,
            hist_hour: tree("hist_hour")?,
            hist_day: tree("hist_day")?,
            pending: tree("rollup_pending")?,
            journal: tree("journal")?,
            journaled: AtomicU64::new(0),
            journal_limit: AtomicUsize::new(journal::DEFAULT_LIMIT),
            catalogue_versions: tree("catalogue_versions")?,
            revisions: tree("revisions")?,
            restatements: tree("restatements")?,
            maintenance: tree("maintenance")?,
            meta,
            db,
            path: path.to_path_buf(),
            interned: RwLock::default(),
            intern_lock: Mutex::default(),
            agent_states: Mutex::default(),
            intervals: RwLock::default(),
            committed: Mutex::default(),
            faults,
        };
        // Raw results and seq state are written (one transaction) before what is derived
        // from them, and the hours they touch are marked pending in that transaction; after
        // a crash, those hours are derived again from raw.
        // Batches acknowledged but not merged into raw blocks when the last run stopped.
        let merged = store.merge_stored_journal()?;
        if store.meta.contains_key(keys::OPEN_KEY)? || merged > 0 {
            let repaired = store.repair_all_pending()?;
            tracing::warn!(path = %shown, hours = repaired, "the database was not closed cleanly: derived data rebuilt from raw results for the hours written last");
        }
        store.meta.insert(keys::OPEN_KEY, [1u8])?;
        store.db.flush()?;
        store.load_committed()?;
        Ok(store)
    }

    /// Flushes and marks the database closed cleanly, so the next open skips the repair.
    pub fn close(&self) -> Result<(), StoreError> {
        self.settle_all()?;
        self.db.flush()?;
        self.meta.remove(keys::OPEN_KEY)?;
        self.db.flush()?;
        Ok(())
    }

    /// The write-fault plan (tests fail the N-th write with it).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sled handle, for the group commit (`flush_async`).
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }

    /// Per tree: name, keys, and bytes of keys plus values (before sled's own overhead).
    /// A full scan: for benchmarks and diagnostics.
    pub fn logical_sizes(&self) -> Result<Vec<(&'static str, u64, u64)>, StoreError> {
        self.settle_all()?;
        let trees = [
            ("raw", &self.raw),
            ("runs", &self.runs),
            ("last", &self.last),
            ("agents", &self.agents),
            ("hist_minutes", &self.hist_minutes),
            ("hist_hour", &self.hist_hour),
            ("hist_day", &self.hist_day),
            ("rollup_pending", &self.pending),
            ("journal", &self.journal),
        ];
        let mut out = Vec::new();
        for (name, tree) in trees {
            let (mut keys, mut bytes) = (0, 0);
            for kv in tree.iter() {
                let (k, v) = kv?;
                keys += 1;
                bytes += (k.len() + v.len()) as u64;
            }
            out.push((name, keys, bytes));
        }
        Ok(out)
    }

    /// A small write through the normal path (`meta` `write_probe`: the time it was made),
    /// which the disk watch makes before it lets ingest write again (`disk.rs`).
    pub fn write_probe(&self, now_ms: i64) -> Result<(), StoreError> {
        self.meta.insert(b"write_probe", keys::encode_u64(now_ms as u64))
    }

    /// Flushes everything to disk (blocking).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Records the interval a probe's runs are painted with, when `meta` has none yet.
    fn ensure_interval(&self, p: Num, interval_ms: i64) -> Result<(), StoreError> {
        if self.interval_of(p)?.is_none() {
            self.meta.insert(keys::interval_key(p), keys::encode_u64(interval_ms as u64))?;
            self.intervals.write().unwrap_or_else(|e| e.into_inner()).insert(p, interval_ms);
        }
        Ok(())
    }

    /// The interval (ms) of a probe's stored runs.
    fn interval_of(&self, p: Num) -> Result<Option<i64>, StoreError> {
        if let Some(i) = self.intervals.read().unwrap_or_else(|e| e.into_inner()).get(&p) {
            return Ok(Some(*i));
        }
        let stored = self.meta.get(keys::interval_key(p))?.and_then(|v| keys::decode_u64(&v)).map(|v| v as i64);
        if let Some(i) = stored {
            self.intervals.write().unwrap_or_else(|e| e.into_inner()).insert(p, i);
        }
        Ok(stored)
    }

    /// The view runs of `(probe, agent)` overlapping `[from, to)`, clipped to it: exactly
    /// `runs::runs_from_observations` over every result stored for the pair.
    pub fn view_runs(&self, probe: &str, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<ViewRun>, StoreError> {
        self.settle_for_read();
        let (Some(p), Some(a)) = (self.lookup(keys::KIND_PROBE, probe)?, self.lookup(keys::KIND_AGENT, agent)?) else {
            return Ok(Vec::new());
        };
        timeline::view_runs(&self.runs, p, a, from_ms, to_ms)
    }

    /// Agents that have stored results of `probe`.
    pub fn agents_of(&self, probe: &str) -> Result<Vec<String>, StoreError> {
        self.settle_for_read();
        let Some(p) = self.lookup(keys::KIND_PROBE, probe)? else { return Ok(Vec::new()) };
        self.agent_nums_of(p)?.into_iter().map(|(_, name)| Ok(name)).collect()
    }

    /// The latest result of `(probe, agent)`.
    pub fn last_result(&self, probe: &str, agent: &str) -> Result<Option<LastResult>, StoreError> {
        self.settle_for_read();
        let (Some(p), Some(a)) = (self.lookup(keys::KIND_PROBE, probe)?, self.lookup(keys::KIND_AGENT, agent)?) else {
            return Ok(None);
        };
        match self.last.get(keys::pair_prefix(p, a))? {
            Some(v) => Ok(Some(keys::decode_last(&v).ok_or(StoreError::Corrupt { tree: "last" })?)),
            None => Ok(None),
        }
    }

    /// Every (probe, agent, latest result), for current state and `/metrics`.
    pub fn last_results(&self) -> Result<Vec<(String, String, LastResult)>, StoreError> {
        self.settle_for_read();
        let mut out = Vec::new();
        for kv in self.last.iter() {
            let (k, v) = kv?;
            let (p, a) = keys::decode_pair(&k);
            let l = keys::decode_last(&v).ok_or(StoreError::Corrupt { tree: "last" })?;
            if let (Some(probe), Some(agent)) = (self.name_of(keys::KIND_PROBE, p)?, self.name_of(keys::KIND_AGENT, a)?)
            {
                out.push((probe, agent, l));
            }
        }
        Ok(out)
    }

    /// An agent's seq state over all its instances: highest seq (of the newest instance),
    /// lost results (gaps), largest gap.
    pub fn seq_summary(&self, agent: &str) -> Result<Option<SeqSummary>, StoreError> {
        Ok(self.agent_instances(agent)?.map(|i| i.summary()))
    }

    /// The highest seq an agent instance was answered for (0: none yet).
    pub fn instance_highest(&self, agent: &str, instance: Option<&str>) -> Result<u64, StoreError> {
        let Some(a) = self.lookup(keys::KIND_AGENT, agent)? else { return Ok(0) };
        let i = match instance {
            None => keys::LEGACY_INSTANCE,
            Some(name) => match self.lookup(keys::KIND_INSTANCE, &keys::instance_name(a, name))? {
                Some(i) => i,
                None => return Ok(0),
            },
        };
        let state = self.agent_state(a)?;
        let state = state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state.instances.get(&i).map_or(0, |s| s.summary().highest))
    }

    /// Every agent with a seq state, its instances summed up as `seq_summary` does.
    pub fn seq_summaries(&self) -> Result<Vec<(String, SeqSummary)>, StoreError> {
        Ok(self.all_agent_instances()?.into_iter().map(|i| (i.agent.clone(), i.summary())).collect())
    }

    /// An agent's instances with their seq state, and its resets (SPEC §15).
    pub fn agent_instances(&self, agent: &str) -> Result<Option<AgentInstances>, StoreError> {
        let Some(a) = self.lookup(keys::KIND_AGENT, agent)? else { return Ok(None) };
        let state = self.agent_state(a)?;
        let instances: Vec<(Num, SeqSet)> = {
            let state = state.lock().unwrap_or_else(|e| e.into_inner());
            state.instances.iter().map(|(i, s)| (*i, s.clone())).collect()
        };
        if instances.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.describe_instances(a, agent.to_string(), instances)?))
    }

    /// Every agent with a seq state: its instances and resets, in agent-number order.
    pub fn all_agent_instances(&self) -> Result<Vec<AgentInstances>, StoreError> {
        let mut by_agent: BTreeMap<Num, Vec<(Num, SeqSet)>> = BTreeMap::new();
        for kv in self.agents.iter() {
            let (k, v) = kv?;
            let (a, i) = keys::decode_seq_key(&k).ok_or(StoreError::Corrupt { tree: "agents" })?;
            let ranges = keys::decode_seq_ranges(&v).ok_or(StoreError::Corrupt { tree: "agents" })?;
            by_agent.entry(a).or_default().push((i, SeqSet::from_ranges(ranges)));
        }
        let mut out = Vec::new();
        for (a, instances) in by_agent {
            if let Some(name) = self.name_of(keys::KIND_AGENT, a)? {
                out.push(self.describe_instances(a, name, instances)?);
            }
        }
        Ok(out)
    }

    /// Names an agent's instances; `instances` in instance-number order, which is the order
    /// they were first seen in (the legacy instance, number 0, first).
    fn describe_instances(
        &self,
        a: Num,
        agent: String,
        instances: Vec<(Num, SeqSet)>,
    ) -> Result<AgentInstances, StoreError> {
        let mut named = Vec::with_capacity(instances.len());
        for (i, seqs) in instances {
            let mut summary = seqs.summary();
            summary.lost += self.recorded_loss(a, i)?;
            named.push((self.instance_id(i)?, summary));
        }
        Ok(AgentInstances { agent, instances: named })
    }

    /// The raw results of `probe` with `from_ms <= at < to_ms`, all agents merged in
    /// (at, agent) order, read lazily from sled.
    pub fn raw_results(&self, probe: &str, from_ms: i64, to_ms: i64) -> Result<RawResults, StoreError> {
        // Evidence is signed: results still in a journal that cannot be merged (a storage
        // error) make it an error, never a bundle that leaves acknowledged results out.
        self.settle_all()?;
        let Some(p) = self.lookup(keys::KIND_PROBE, probe)? else {
            return Ok(RawResults { streams: Vec::new(), probe: Arc::from(probe) });
        };
        let mut streams = Vec::new();
        for (a, name) in self.agent_nums_of(p)? {
            let cursor = raw::PairCursor::new(&self.raw, p, a, from_ms, to_ms);
            streams.push(RawStream { agent: Arc::from(name), cursor, head: None });
        }
        Ok(RawResults { streams, probe: Arc::from(probe) })
    }

    /// Removes raw results of the whole UTC hours before `cutoff_ms` (so up to an hour
    /// more than asked is kept); runs, histograms and seq state stay. Returns how many
    /// results were removed.
    pub fn remove_raw_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        self.settle_all()?;
        let cutoff = raw::hour_of(cutoff_ms);
        let mut removed = 0;
        for kv in self.last.iter() {
            let (k, _) = kv?;
            let (p, a) = keys::decode_pair(&k);
            loop {
                let doomed: Vec<(sled::IVec, sled::IVec)> = self
                    .raw
                    .range(keys::raw_key(p, a, i64::MIN, 0)..keys::raw_key(p, a, cutoff, 0))
                    .take(1000)
                    .collect::<Result<_, _>>()?;
                if doomed.is_empty() {
                    break;
                }
                let mut batch = tree::Batch::default();
                for (k, v) in &doomed {
                    let (_, _, at, seq) = keys::decode_raw_key(k);
                    let mut entries = Vec::new();
                    keys::decode_block(at, seq, v, &mut entries).ok_or(StoreError::Corrupt { tree: "raw" })?;
                    removed += entries.len() as u64;
                    batch.remove(k);
                }
                self.raw.apply_batch(batch)?;
            }
        }
        Ok(removed)
    }

    /// Records the interval each probe's runs use; for a probe whose interval changed,
    /// rebuilds its runs from the raw results still held. Returns the rebuilt probes.
    pub fn sync_intervals(&self, probes: &[(String, i64)]) -> Result<Vec<String>, StoreError> {
        self.settle_all()?;
        let mut rebuilt = Vec::new();
        for (probe, interval_ms) in probes {
            let p = self.intern(keys::KIND_PROBE, probe)?;
            let stored = self.meta.get(keys::interval_key(p))?.and_then(|v| keys::decode_u64(&v));
            if stored == Some(*interval_ms as u64) {
                continue;
            }
            if stored.is_some() {
                for (a, _) in self.agent_nums_of(p)? {
                    let state = self.agent_state(a)?;
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    self.settle_locked(a, &mut state)?;
                    timeline::rebuild(&self.runs, &self.raw, p, a, *interval_ms)?;
                }
                rebuilt.push(probe.clone());
            }
            self.meta.insert(keys::interval_key(p), keys::encode_u64(*interval_ms as u64))?;
            self.intervals.write().unwrap_or_else(|e| e.into_inner()).insert(p, *interval_ms);
        }
        self.db.flush()?;
        Ok(rebuilt)
    }

    fn agent_state(&self, a: Num) -> Result<Arc<Mutex<AgentState>>, StoreError> {
        let mut states = self.agent_states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = states.get(&a) {
            return Ok(s.clone());
        }
        let mut instances = BTreeMap::new();
        for kv in self.agents.scan_prefix(keys::encode_num(a)) {
            let (k, v) = kv?;
            let (_, i) = keys::decode_seq_key(&k).ok_or(StoreError::Corrupt { tree: "agents" })?;
            let ranges = keys::decode_seq_ranges(&v).ok_or(StoreError::Corrupt { tree: "agents" })?;
            instances.insert(i, SeqSet::from_ranges(ranges));
        }
        let s = Arc::new(Mutex::new(AgentState { instances, ..AgentState::default() }));
        states.insert(a, s.clone());
        Ok(s)
    }

    fn pair_state<'s>(
        &self,
        pairs: &'s mut HashMap<Num, PairState>,
        p: Num,
        a: Num,
    ) -> Result<&'s mut PairState, StoreError> {
        match pairs.entry(p) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                let last = match self.last.get(keys::pair_prefix(p, a))? {
                    Some(v) => Some(keys::decode_last(&v).ok_or(StoreError::Corrupt { tree: "last" })?),
                    None => None,
                };
                Ok(e.insert(PairState { last, hour: None }))
            }
        }
    }

    fn agent_nums_of(&self, p: Num) -> Result<Vec<(Num, String)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.last.scan_prefix(keys::probe_prefix(p)) {
            let (k, _) = kv?;
            let (_, a) = keys::decode_pair(&k);
            if let Some(name) = self.name_of(keys::KIND_AGENT, a)? {
                out.push((a, name));
            }
        }
        Ok(out)
    }

    /// The number of an id, allocating one on first sight.
    fn intern(&self, kind: u8, name: &str) -> Result<Num, StoreError> {
        if let Some(n) = self.lookup(kind, name)? {
            return Ok(n);
        }
        let _guard = self.intern_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = self.lookup(kind, name)? {
            return Ok(n);
        }
        let next = match self.meta.get(b"next_num")? {
            Some(v) => keys::decode_num(&v),
            None => 1,
        };
        self.names.insert(keys::num_key(kind, next), name.as_bytes())?;
        self.names.insert(keys::name_key(kind, name), keys::encode_num(next))?;
        self.meta.insert(b"next_num", keys::encode_num(next + 1))?;
        self.interned.write().unwrap_or_else(|e| e.into_inner()).insert((kind, name.to_string()), next);
        Ok(next)
    }

    fn lookup(&self, kind: u8, name: &str) -> Result<Option<Num>, StoreError> {
        if let Some(n) = self.interned.read().unwrap_or_else(|e| e.into_inner()).get(&(kind, name.to_string())) {
            return Ok(Some(*n));
        }
        match self.names.get(keys::name_key(kind, name))? {
            Some(v) => {
                let n = keys::decode_num(&v);
                self.interned.write().unwrap_or_else(|e| e.into_inner()).insert((kind, name.to_string()), n);
                Ok(Some(n))
            }
            None => Ok(None),
        }
    }

    fn name_of(&self, kind: u8, num: Num) -> Result<Option<String>, StoreError> {
        Ok(self.names.get(keys::num_key(kind, num))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
impl Store {
    /// Merges an agent's journal once it holds `n` results (1: after every batch).
    pub(crate) fn set_journal_limit(&self, n: usize) {
        self.journal_limit.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Opens in a test that reopens in the same process: sled lets go of its file lock from
    /// a background thread after the last handle is dropped, so a reopen can race it on a
    /// loaded machine.
    pub(crate) fn open_waiting(path: &Path, options: &StoreOptions) -> Store {
        for _ in 0..200 {
            match Store::open(path, options) {
                Err(e) if e.to_string().contains("could not acquire lock") => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                other => return other.unwrap(),
            }
        }
        panic!("the previous handle never released the database lock at {}", path.display())
    }
}

/// The raw results of one probe, merged across agents by (at, agent); see `Store::raw_results`.
pub struct RawResults {
    streams: Vec<RawStream>,
    probe: Arc<str>,
}

struct RawStream {
    agent: Arc<str>,
    cursor: raw::PairCursor,
    head: Option<BlockEntry>,
}

impl Iterator for RawResults {
    type Item = Result<RawRow, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        for s in &mut self.streams {
            if s.head.is_none() {
                match s.cursor.next() {
                    Some(Ok(e)) => s.head = Some(e),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
            }
        }
        let (i, _) = self
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.head.map(|e| (i, (e.at, e.seq))))
            .min_by_key(|&(i, key)| (key.0, i, key.1))?;
        let s = &mut self.streams[i];
        let e = s.head.take().expect("chosen for its head");
        Some(Ok(RawRow {
            at: e.at,
            agent: s.agent.clone(),
            probe: self.probe.clone(),
            seq: e.seq,
            ok: e.value.down.is_none(),
            duration_us: e.value.duration_us,
            error_kind: e.value.down,
            status: e.value.status,
        }))
    }
}

#[cfg(test)]
mod tests;
