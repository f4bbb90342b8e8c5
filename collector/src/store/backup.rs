//! `db backup` and `db restore`: one file holding every tree of the database, the records
//! (raw results and seq state) copied consistently while the collector runs, and the
//! acknowledged ledger those records make. Restore loads it into a fresh database and
//! derives everything derivable again from the raw results, so a restored database passes
//! `db check` by construction.
//!
//! Consistency: an agent's journal records and seq state are written by one transaction
//! under the agent's lock (`ingest.rs`); the backup merges the agent's journal into raw
//! blocks and copies them and the seq state under that same lock, so each
//! agent instance's seqs in the backup are exactly the results the backup holds: no
//! acknowledged result missing (the restored collector would take its re-send for a
//! duplicate), none without its seq (its re-send would be stored twice). Agents first
//! seen after the copy began are left out whole. Every other tree is copied as it stands:
//! names and `meta` only grow, history records are written once, and derived data is
//! rebuilt on restore for the span raw results cover (what lies before it, past raw
//! retention, no longer changes).
//!
//! Records are copied as stored, each with its checksum (`keys::sealed`), and loaded back
//! as they were. Format: `probity backup 1\n`, then frames, each a tag byte:
//! `T` tree number `u8`, name length `u8`, name; `R` tree number, key length `u32`, key,
//! value length `u32`, value; `L` length `u32`, the ledger text (`ledger.rs`);
//! `X` length `u32`, a message (the collector failed mid-way); `E` records `u64`,
//! results `u64`, then the sha256 of every byte before it. Integers big-endian. A file
//! without its `E` frame, or whose sha256 differs, is damaged and refused whole.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::{Store, StoreError};
use crate::keys::{self, Num};
use crate::ledger::LedgerEntry;

const MAGIC: &[u8] = b"probity backup 1\n";

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup was made by a collector with schema version {found}; this one reads version {known}")]
    Schema { found: u32, known: u32 },
    #[error("the collector could not finish the backup: {0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a backup holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackupSummary {
    /// Keys copied, over every tree.
    pub records: u64,
    /// Raw results among them.
    pub results: u64,
    /// Bytes of the backup.
    pub bytes: u64,
}

/// Frames written with their running sha256.
struct FrameWriter<W: Write> {
    out: W,
    hash: Sha256,
    summary: BackupSummary,
}

impl<W: Write> FrameWriter<W> {
    fn new(out: W) -> io::Result<FrameWriter<W>> {
        let mut w = FrameWriter { out, hash: Sha256::new(), summary: BackupSummary::default() };
        w.put(MAGIC)?;
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.summary.bytes += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn tree(&mut self, id: u8, name: &[u8]) -> io::Result<()> {
        let len = u8::try_from(name.len()).map_err(|_| io::Error::other("a tree name longer than 255 bytes"))?;
        self.put(&[b'T', id, len])?;
        self.put(name)
    }

    fn record(&mut self, id: u8, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.put(&[b'R', id])?;
        self.put(&(key.len() as u32).to_be_bytes())?;
        self.put(key)?;
        self.put(&(value.len() as u32).to_be_bytes())?;
        self.put(value)?;
        self.summary.records += 1;
        Ok(())
    }

    fn ledger(&mut self, text: &str) -> io::Result<()> {
        self.put(b"L")?;
        self.put(&(text.len() as u32).to_be_bytes())?;
        self.put(text.as_bytes())
    }

    fn finish(mut self) -> io::Result<(W, BackupSummary)> {
        self.put(b"E")?;
        let (records, results) = (self.summary.records, self.summary.results);
        self.put(&records.to_be_bytes())?;
        self.put(&results.to_be_bytes())?;
        let sum: [u8; 32] = self.hash.finalize_reset().into();
        self.out.write_all(&sum)?;
        self.summary.bytes += 32;
        self.out.flush()?;
        Ok((self.out, self.summary))
    }
}

/// Writes the frame that tells a reader the collector failed mid-way (the end of a stream
/// that will get no `E` frame).
pub fn write_failure(out: &mut impl Write, message: &str) -> io::Result<()> {
    out.write_all(b"X")?;
    out.write_all(&(message.len() as u32).to_be_bytes())?;
    out.write_all(message.as_bytes())?;
    out.flush()
}

/// One frame read back.
enum Frame {
    Tree(u8, String),
    Record(u8, Vec<u8>, Vec<u8>),
    Ledger(String),
    End(BackupSummary),
}

/// Frames read with their running sha256; the `E` frame is checked against it.
struct FrameReader<R: Read> {
    inp: R,
    hash: Sha256,
    summary: BackupSummary,
}

impl<R: Read> FrameReader<R> {
    fn new(inp: R) -> Result<FrameReader<R>, BackupError> {
        let mut r = FrameReader { inp, hash: Sha256::new(), summary: BackupSummary::default() };
        let magic = r.take(MAGIC.len())?;
        if magic != MAGIC {
            return Err(BackupError::Damaged("it does not start as a probity backup does".into()));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<Vec<u8>, BackupError> {
        let mut buf = vec![0u8; n];
        self.inp.read_exact(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                BackupError::Damaged(format!("it ends after {} bytes, before its end mark", self.summary.bytes))
            }
            _ => BackupError::Io(e),
        })?;
        self.hash.update(&buf);
        self.summary.bytes += n as u64;
        Ok(buf)
    }

    fn len(&mut self) -> Result<usize, BackupError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b[..].try_into().expect("4 bytes")) as usize)
    }

    fn u64(&mut self) -> Result<u64, BackupError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b[..].try_into().expect("8 bytes")))
    }

    fn next(&mut self) -> Result<Frame, BackupError> {
        let tag = self.take(1)?[0];
        match tag {
            b'T' => {
                let head = self.take(2)?;
                let name = self.take(usize::from(head[1]))?;
                let name =
                    String::from_utf8(name).map_err(|_| BackupError::Damaged("a tree name is not UTF-8".into()))?;
                Ok(Frame::Tree(head[0], name))
            }
            b'R' => {
                let id = self.take(1)?[0];
                let klen = self.len()?;
                let key = self.take(klen)?;
                let vlen = self.len()?;
                let value = self.take(vlen)?;
                self.summary.records += 1;
                Ok(Frame::Record(id, key, value))
            }
            b'L' => {
                let len = self.len()?;
                let text = String::from_utf8(self.take(len)?)
                    .map_err(|_| BackupError::Damaged("its ledger is not UTF-8".into()))?;
                Ok(Frame::Ledger(text))
            }
            b'X' => {
                let len = self.len()?;
                let text = self.take(len)?;
                Err(BackupError::Failed(String::from_utf8_lossy(&text).into_owned()))
            }
            b'E' => {
                let records = self.u64()?;
                let results = self.u64()?;
                let expected: [u8; 32] = self.hash.finalize_reset().into();
                let mut sum = [0u8; 32];
                self.inp.read_exact(&mut sum).map_err(|_| BackupError::Damaged("its checksum is cut off".into()))?;
                self.summary.bytes += 32;
                if sum != expected {
                    return Err(BackupError::Damaged("its sha256 does not match its content".into()));
                }
                if records != self.summary.records {
                    return Err(BackupError::Damaged(format!(
                        "it says {records} records and holds {}",
                        self.summary.records
                    )));
                }
                let mut rest = [0u8; 1];
                if self.inp.read(&mut rest)? != 0 {
                    return Err(BackupError::Damaged("bytes follow its end mark".into()));
                }
                Ok(Frame::End(BackupSummary { records, results, bytes: self.summary.bytes }))
            }
            other => Err(BackupError::Damaged(format!(
                "an unknown frame (byte {other:#04x}) at offset {}",
                self.summary.bytes - 1
            ))),
        }
    }
}

/// Reads a whole backup and checks it (frames, record count, sha256) without loading it.
pub fn verify_backup(inp: impl Read) -> Result<BackupSummary, BackupError> {
    let mut r = FrameReader::new(inp)?;
    let mut results = 0;
    let mut trees: HashMap<u8, String> = HashMap::new();
    loop {
        match r.next()? {
            Frame::Tree(id, name) => {
                trees.insert(id, name);
            }
            Frame::Record(id, _, value) => match trees.get(&id).map(String::as_str) {
                Some("raw") => results += keys::block_len(&value).unwrap_or(0),
                Some(_) => {}
                None => return Err(BackupError::Damaged(format!("a record of undeclared tree {id}"))),
            },
            Frame::Ledger(text) => {
                crate::ledger::parse(&text).map_err(|e| BackupError::Damaged(format!("its ledger: {e}")))?;
            }
            Frame::End(summary) => {
                if summary.results != results {
                    return Err(BackupError::Damaged(format!(
                        "it says {} results and holds {results}",
                        summary.results
                    )));
                }
                return Ok(summary);
            }
        }
    }
}

/// What a restore loaded, and the ledger the backup carries.
#[derive(Debug)]
pub struct RestoreSummary {
    pub backup: BackupSummary,
    pub ledger: Vec<LedgerEntry>,
    pub rebuilt: super::check::RebuildSummary,
}

impl Store {
    /// Writes a consistent copy of the whole database to `out` (see the module doc); safe
    /// while the collector ingests. An agent's ingest waits while its raw results are copied.
    pub fn backup<W: Write>(&self, out: W) -> Result<(W, BackupSummary), BackupError> {
        let mut w = FrameWriter::new(out)?;
        let names: Vec<sled::IVec> = self.db.tree_names();
        let mut ids: HashMap<Vec<u8>, u8> = HashMap::new();
        for (id, name) in names.iter().enumerate() {
            let id = u8::try_from(id).map_err(|_| io::Error::other("more than 255 trees"))?;
            w.tree(id, name)?;
            ids.insert(name.to_vec(), id);
        }
        let id = |name: &str| ids.get(name.as_bytes()).copied().ok_or(StoreError::Corrupt { tree: "the tree list" });
        let (raw_id, agents_id) = (id("raw")?, id("agents")?);

        // Records are copied as stored, checksums included; the truth (raw results and seq
        // state) is checked on the way, so a backup never carries a damaged one.
        let mut agents: BTreeSet<Num> = BTreeSet::new();
        for k in self.agents.range_keys::<&[u8], _>(..) {
            let k = k?;
            agents.insert(keys::decode_seq_key(&k).ok_or(StoreError::Corrupt { tree: "agents" })?.0);
        }
        let mut ledger = Vec::new();
        for a in agents {
            let state = self.agent_state(a)?;
            let mut ingest_waits = state.lock().unwrap_or_else(|e| e.into_inner());
            // The agent's acknowledged batches still in its journal go into raw blocks
            // first, so raw holds every result its seq state claims.
            self.settle_locked(a, &mut ingest_waits)?;
            let agent = self.name_of(keys::KIND_AGENT, a)?.ok_or(StoreError::Corrupt { tree: "names" })?;
            for kv in self.agents.sled().scan_prefix(keys::encode_num(a)) {
                let (k, stored) = kv?;
                let v = keys::unseal(&k, &stored).ok_or_else(|| self.agents.damaged(&k))?;
                let (_, i) = keys::decode_seq_key(&k).ok_or(StoreError::Corrupt { tree: "agents" })?;
                let ranges = keys::decode_seq_ranges(v).ok_or(StoreError::Corrupt { tree: "agents" })?;
                ledger.push(LedgerEntry { agent: agent.clone(), instance: self.instance_id(i)?, ranges });
                w.record(agents_id, &k, &stored)?;
            }
            // Every probe this agent has results of is interned before its raw results are
            // written, under this lock.
            for k in self.names.sled().scan_prefix([b'#', keys::KIND_PROBE]).keys() {
                let p = keys::decode_num(&k?[2..]);
                for kv in self.raw.sled().scan_prefix(keys::pair_prefix(p, a)) {
                    let (k, stored) = kv?;
                    let v = keys::unseal(&k, &stored).ok_or_else(|| self.raw.damaged(&k))?;
                    w.summary.results += keys::block_len(v).ok_or(StoreError::Corrupt { tree: "raw" })?;
                    w.record(raw_id, &k, &stored)?;
                }
            }
        }
        for name in &names {
            // `journal` records are batches merged into raw above, or acknowledged after
            // their agent's copy: neither belongs in this backup.
            if name == b"raw" || name == b"agents" || name == b"journal" {
                continue;
            }
            let tree = self.db.open_tree(name)?;
            let tree_id = ids[&name.to_vec()];
            for kv in tree.iter() {
                let (k, v) = kv?;
                if name == b"meta" && k == keys::OPEN_KEY {
                    continue;
                }
                w.record(tree_id, &k, &v)?;
            }
        }
        ledger.sort_by(|x, y| (&x.agent, &x.instance).cmp(&(&y.agent, &y.instance)));
        w.ledger(&crate::ledger::render(&ledger))?;
        Ok(w.finish()?)
    }

    /// Loads a backup into this store, which must be freshly created (empty), then derives
    /// every derived record again from the raw results (`now_ms` decides which hours are
    /// complete). A damaged backup is an error; the caller throws the store away.
    pub fn restore_from(&self, inp: impl Read, now_ms: i64) -> Result<RestoreSummary, BackupError> {
        let mut r = FrameReader::new(inp)?;
        let mut trees: HashMap<u8, (String, sled::Tree, sled::Batch, usize)> = HashMap::new();
        let mut ledger_text = None;
        let mut results = 0;
        let summary = loop {
            match r.next()? {
                Frame::Tree(id, name) => {
                    let tree = self.db.open_tree(name.as_bytes())?;
                    trees.insert(id, (name, tree, sled::Batch::default(), 0));
                }
                Frame::Record(id, key, value) => {
                    let Some((name, tree, batch, pending)) = trees.get_mut(&id) else {
                        return Err(BackupError::Damaged(format!("a record of undeclared tree {id}")));
                    };
                    if name == "raw" {
                        results += keys::block_len(&value).unwrap_or(0);
                    }
                    if name == "meta" && key == keys::SCHEMA_VERSION_KEY {
                        let found = keys::unseal(&key, &value)
                            .and_then(|v| v.try_into().ok())
                            .map_or(u32::MAX, u32::from_be_bytes);
                        if found != keys::SCHEMA_VERSION {
                            return Err(BackupError::Schema { found, known: keys::SCHEMA_VERSION });
                        }
                    }
                    batch.insert(key, value);
                    *pending += 1;
                    if *pending >= 4096 {
                        tree.apply_batch(std::mem::take(batch))?;
                        *pending = 0;
                    }
                }
                Frame::Ledger(text) => ledger_text = Some(text),
                Frame::End(summary) => break summary,
            }
        };
        if summary.results != results {
            return Err(BackupError::Damaged(format!("it says {} results and holds {results}", summary.results)));
        }
        for (_, (_, tree, batch, _)) in trees.drain() {
            tree.apply_batch(batch)?;
        }
        let ledger = crate::ledger::parse(&ledger_text.ok_or(BackupError::Damaged("it holds no ledger".into()))?)
            .map_err(|e| BackupError::Damaged(format!("its ledger: {e}")))?;
        // Nothing was cached while the trees were written behind the store's back.
        self.interned.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.intervals.write().unwrap_or_else(|e| e.into_inner()).clear();
        self.agent_states.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.load_committed()?;
        if let Some((e, missing)) = self.held_less_than(&ledger).first() {
            return Err(BackupError::Damaged(format!(
                "its ledger claims seqs {missing:?} of {} that its records lack",
                e.label()
            )));
        }
        let rebuilt = self.rebuild_derived(now_ms)?;
        self.db.flush()?;
        Ok(RestoreSummary { backup: summary, ledger, rebuilt })
    }
}

#[cfg(test)]
mod tests {
    use probity_config::wire::{ErrorKind, ProbeResult, ResultError};

    use super::*;
    use crate::keys::{HOUR_MS, MINUTE_MS};
    use crate::store::StoreOptions;

    fn open(dir: &std::path::Path) -> Store {
        Store::open_waiting(dir, &StoreOptions { cache_capacity: 8 << 20 })
    }

    fn result(seq: u64, probe: &str, at: i64) -> ProbeResult {
        let down = seq.is_multiple_of(7).then_some(ErrorKind::Timeout);
        ProbeResult {
            seq,
            probe: probe.into(),
            at,
            duration_us: 1000 + seq * 37 % 5000,
            ok: down.is_none(),
            status: None,
            phases: None,
            error: down.map(|kind| ResultError { kind, message: "x".into() }),
            cert_not_after: None,
        }
    }

    /// Two agents (one with two instances), two probes, five hours of 10 s results, some
    /// sent late, rolled up except the last hour.
    fn filled(dir: &std::path::Path) -> (Store, i64) {
        let store = open(dir);
        let start = 1_700_000_000_000 / HOUR_MS * HOUR_MS;
        for (agent, instance) in [("a1", None), ("a2", Some("i1")), ("a2", Some("i2"))] {
            let mut seq = 0;
            let mut results = Vec::new();
            for n in 0..(5 * 360) {
                for probe in ["p1", "p2"] {
                    seq += 1;
                    results.push(result(seq, probe, start + n * 10_000 + i64::from(instance == Some("i2")) * 3));
                }
            }
            // A late batch: every 50th result sent at the end.
            let (late, timely): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.seq % 50 == 0);
            for batch in timely.chunks(97).chain(late.chunks(13)) {
                store.ingest(agent, instance, batch, |_| Ok::<i64, ()>(10_000)).unwrap();
            }
        }
        let now = start + 4 * HOUR_MS + 30 * MINUTE_MS;
        assert!(store.roll_up(now).unwrap() > 0);
        (store, now)
    }

    /// Everything a report or an export reads, for comparing two stores.
    fn figures(store: &Store, now: i64) -> Vec<String> {
        let (from, to) = (now - 2 * crate::keys::DAY_MS, now + HOUR_MS);
        let mut out = Vec::new();
        for probe in ["p1", "p2"] {
            for agent in ["a1", "a2"] {
                out.push(format!("{:?}", store.view_runs(probe, agent, i64::MIN, i64::MAX).unwrap()));
                out.push(format!("{:?}", store.last_result(probe, agent).unwrap()));
                out.push(format!("{:?}", store.received(probe, agent, from, to).unwrap()));
            }
            let l = store.latency(probe, &[(from, to)]).unwrap();
            out.push(format!("{} {} {}", l.results, l.histogram.len(), l.histogram.value_at_quantile(0.99)));
            let rows: Vec<_> = store.raw_results(probe, i64::MIN, i64::MAX).unwrap().map(Result::unwrap).collect();
            out.push(format!("{rows:?}"));
        }
        out.push(format!("{:?}", store.all_agent_instances().unwrap()));
        out
    }

    #[test]
    fn a_backup_restores_to_the_same_figures_seq_state_and_ledger_and_checks_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (store, now) = filled(&dir.path().join("db"));
        let (bytes, summary) = store.backup(Vec::new()).unwrap();
        assert_eq!(summary.results, 3 * 5 * 360 * 2);
        assert_eq!(summary.bytes, bytes.len() as u64);
        assert_eq!(verify_backup(&bytes[..]).unwrap(), summary);

        let restored = open(&dir.path().join("restored"));
        let r = restored.restore_from(&bytes[..], now).unwrap();
        assert_eq!(r.backup, summary);
        assert_eq!(r.ledger, store.acknowledged(), "the backup's ledger is the seq state it holds");
        assert_eq!(restored.acknowledged(), store.acknowledged());
        assert_eq!(figures(&restored, now), figures(&store, now));
        assert_eq!(restored.check_derived(10).unwrap(), Vec::<String>::new());
        let records = restored.verify_records(10).unwrap();
        assert!(records.problems.is_empty(), "{:?}", records.problems);
        assert_eq!(records.results, summary.results);
        // A restored store goes on ingesting: the next seq is new, an old one a duplicate.
        let s =
            restored.ingest("a1", None, &[result(3600, "p1", now), result(3601, "p1", now)], |_| Ok::<i64, ()>(10_000));
        assert_eq!((s.as_ref().unwrap().accepted, s.unwrap().duplicates), (1, 1));
    }

    #[test]
    fn a_damaged_or_cut_backup_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (store, now) = filled(&dir.path().join("db"));
        let (bytes, _) = store.backup(Vec::new()).unwrap();
        let mut variants: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), Vec::new()),
            ("cut to 90 %".into(), bytes[..bytes.len() * 9 / 10].to_vec()),
            ("cut before its checksum".into(), bytes[..bytes.len() - 20].to_vec()),
            ("a byte added".into(), [&bytes[..], b"x"].concat()),
        ];
        for at in [0, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x20;
            variants.push((format!("byte {at} flipped"), flipped));
        }
        for (i, (name, damaged)) in variants.iter().enumerate() {
            let err = verify_backup(&damaged[..]).unwrap_err();
            assert!(matches!(err, BackupError::Damaged(_)), "{name}: {err}");
            let fresh = open(&dir.path().join(format!("r{i}")));
            let err = fresh.restore_from(&damaged[..], now).unwrap_err();
            assert!(matches!(err, BackupError::Damaged(_)), "{name}: {err}");
        }
        // The collector failed at a frame boundary (where its writer stops).
        let mut failed = MAGIC.to_vec();
        write_failure(&mut failed, "disk full").unwrap();
        assert!(matches!(verify_backup(&failed[..]), Err(BackupError::Failed(m)) if m == "disk full"));
    }

    #[test]
    fn a_backup_taken_while_agents_ingest_holds_exactly_the_results_its_ledger_claims() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(open(&dir.path().join("db")));
        let start = 1_700_000_000_000;
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for b in 0..150u64 {
                        let batch: Vec<_> = (1..=20)
                            .map(|i| result(b * 20 + i, &format!("p{i}"), start + (b * 20 + i) as i64 * 1000))
                            .collect();
                        store.ingest(&format!("w{w}"), Some("x"), &batch, |_| Ok::<i64, ()>(1000)).unwrap();
                    }
                })
            })
            .collect();
        let mut backups = Vec::new();
        while backups.len() < 5 {
            backups.push(store.backup(Vec::new()).unwrap().0);
        }
        for w in writers {
            w.join().unwrap();
        }
        for (i, bytes) in backups.iter().enumerate() {
            let restored = open(&dir.path().join(format!("r{i}")));
            let r = restored.restore_from(&bytes[..], start).unwrap();
            // Every seq claimed has its raw result, and no raw result lacks its seq.
            for e in &r.ledger {
                let held: u64 = (1..=20)
                    .map(|p| {
                        restored
                            .raw_results(&format!("p{p}"), i64::MIN, i64::MAX)
                            .unwrap()
                            .filter(|row| *row.as_ref().unwrap().agent == *e.agent)
                            .count() as u64
                    })
                    .sum();
                assert_eq!(held, e.count(), "backup {i}, {}", e.label());
            }
            assert_eq!(restored.check_derived(10).unwrap(), Vec::<String>::new());
        }
    }
}
