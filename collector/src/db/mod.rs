//! `probity-collector db check|rebuild|backup DEST|restore SRC` (SPEC §15). sled locks its
//! database, so while a collector runs no other process can open it: `check` and
//! `backup` then ask the running collector through its admin socket (`admin.rs`,
//! `data_dir/admin.sock`), and `rebuild` and `restore` refuse. With no collector running
//! each command opens the database itself.

pub mod admin;

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use tokio::time::Instant;

use crate::ledger::{Ledger, LedgerEntry};
use crate::store::{BackupError, SeqSet, Store, StoreError, StoreOptions, verify_backup};

/// Where a data directory keeps what these commands touch.
#[derive(Clone, Debug)]
pub struct DbPaths {
    pub data_dir: PathBuf,
    pub db: PathBuf,
    pub ledger: PathBuf,
    pub socket: PathBuf,
}

impl DbPaths {
    pub fn new(data_dir: &Path) -> DbPaths {
        DbPaths {
            data_dir: data_dir.to_path_buf(),
            db: data_dir.join("db"),
            ledger: data_dir.join("ledger"),
            socket: admin::socket_path(data_dir),
        }
    }
}

/// Why a `db` command could not do its work. `exit_code` says how it ends.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "a collector is running on {data_dir} (it answers on {socket}); {what} needs it stopped: \
         systemctl stop probity-collector, then run this again"
    )]
    Running { data_dir: String, socket: String, what: &'static str },
    #[error(
        "the database {db} is locked by another process, which does not answer on {socket}; \
         stop that process, or run this as the collector's user so the socket can be reached"
    )]
    Locked { db: String, socket: String },
    #[error(
        "cannot reach the running collector at {socket}: {source}; run this as the collector's user (sudo -u probity …)"
    )]
    Unreachable { socket: String, source: io::Error },
    #[error("there is no database at {0}")]
    NoDatabase(String),
    #[error("{0} exists; give the backup a new name (or remove the old file first)")]
    Exists(String),
    #[error("{what} {path}: {source}")]
    Io { what: &'static str, path: String, source: io::Error },
    #[error("the database {db}: {source}")]
    Store { db: String, source: StoreError },
    #[error("backup {path}: {source}")]
    Backup { path: String, source: BackupError },
    #[error("the running collector stopped answering before the end of its answer")]
    CutOff,
}

impl DbError {
    /// 1: the database or backup is damaged; 2: the command could not run.
    pub fn exit_code(&self) -> u8 {
        match self {
            DbError::NoDatabase(_) => 1,
            DbError::Store { source: StoreError::Access { .. }, .. } => 2,
            DbError::Store { .. } => 1,
            DbError::Backup { source: BackupError::Damaged(_) | BackupError::Schema { .. }, .. } => 1,
            _ => 2,
        }
    }
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DbError {
    let path = path.display().to_string();
    move |source| DbError::Io { what, path, source }
}

/// `db check`: prints what differs, then a summary; `Ok(false)` when something does (exit 1).
pub fn check(paths: &DbPaths, out: &mut dyn Write) -> Result<bool, DbError> {
    if let Some(stream) = admin::connect(&paths.socket)? {
        return admin::ask_check(stream, out);
    }
    let store = match open_offline(paths, "db check") {
        Ok(store) => store,
        Err(e @ (DbError::NoDatabase(_) | DbError::Store { .. })) if e.exit_code() == 1 => {
            let _ = writeln!(out, "damaged: {e}");
            let _ = writeln!(out, "FAILED: the database cannot be read");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let ok = check_store(&store, &paths.ledger, out).map_err(io_error("writing the report to", Path::new("stdout")))?;
    store.close().map_err(|source| DbError::Store { db: paths.db.display().to_string(), source })?;
    Ok(ok)
}

/// The check itself, on an open store (the CLI's, or the running collector's): every
/// record read back, derived data compared with raw, the ledger compared with the seq
/// state. Writes a line per problem and a summary line; true when all agrees.
pub fn check_store(store: &Store, ledger_path: &Path, out: &mut dyn Write) -> io::Result<bool> {
    const LIMIT: usize = 100;
    let started = Instant::now();
    let mut problems = 0;
    match store.check_checksums(LIMIT) {
        Ok(report) => {
            for d in &report.damaged {
                writeln!(out, "damaged: {d}")?;
            }
            problems += report.damaged_total as usize;
        }
        Err(e) => {
            writeln!(out, "damaged: reading the records: {e}")?;
            writeln!(out, "FAILED: the database cannot be read")?;
            return Ok(false);
        }
    }
    let records = match store.verify_records(LIMIT) {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "damaged: reading the records: {e}")?;
            writeln!(out, "FAILED: the database cannot be read")?;
            return Ok(false);
        }
    };
    for p in &records.problems {
        writeln!(out, "damaged: {p}")?;
        problems += 1;
    }
    match store.check_derived(LIMIT) {
        Ok(lines) => {
            for l in &lines {
                writeln!(out, "differs: {l}")?;
            }
            problems += lines.len();
        }
        Err(e) => {
            writeln!(out, "damaged: deriving from raw results: {e}")?;
            problems += 1;
        }
    }
    match Ledger::new(ledger_path.to_path_buf()).read() {
        Ok(None) => {}
        Ok(Some(entries)) => {
            for (e, missing) in store.held_less_than(&entries) {
                writeln!(
                    out,
                    "ledger: {}: {} of {} acknowledged results missing from the database (seqs {})",
                    e.label(),
                    count(&missing),
                    e.count(),
                    ranges_text(&missing)
                )?;
                problems += 1;
            }
        }
        Err(e) => {
            writeln!(out, "ledger: {e}")?;
            problems += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if problems == 0 {
        writeln!(
            out,
            "ok: {} records checked, {} results, derived data equals the raw results, the ledger is covered, {seconds:.1} s",
            records.records, records.results
        )?;
        Ok(true)
    } else {
        let shown = if problems >= LIMIT { " (the first of each kind shown)" } else { "" };
        writeln!(
            out,
            "FAILED: {problems} problems{shown} in {} records, {} results, {seconds:.1} s",
            records.records, records.results
        )?;
        Ok(false)
    }
}

/// `db rebuild`: derives every derived record again from the raw results. Refuses while
/// a collector runs.
pub fn rebuild(paths: &DbPaths, out: &mut dyn Write) -> Result<(), DbError> {
    let store = open_offline(paths, "db rebuild")?;
    let started = Instant::now();
    let now = jiff::Timestamp::now().as_millisecond();
    let store_error = |source| DbError::Store { db: paths.db.display().to_string(), source };
    let summary = store.rebuild_derived(now).map_err(store_error)?;
    store.close().map_err(store_error)?;
    let _ = writeln!(
        out,
        "rebuilt: runs, minute histograms, rollups and last of {} probe/agent pairs ({} hours, {} results) from raw results, {:.1} s",
        summary.pairs,
        summary.hours,
        summary.results,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `db backup DEST`: a consistent copy, from the running collector or from the database
/// itself, written to `DEST.partial`, read back and checked, then renamed to `DEST`.
pub fn backup(paths: &DbPaths, dest: &Path, out: &mut dyn Write) -> Result<(), DbError> {
    if dest.exists() {
        return Err(DbError::Exists(dest.display().to_string()));
    }
    let started = Instant::now();
    let partial = PathBuf::from(format!("{}.partial", dest.display()));
    let file = File::create(&partial).map_err(io_error("cannot create", &partial))?;
    let written = write_backup(paths, BufWriter::with_capacity(1 << 20, file), &partial);
    let checked = written.and_then(|file| {
        file.sync_all().map_err(io_error("cannot write", &partial))?;
        let reread = File::open(&partial).map_err(io_error("cannot read", &partial))?;
        verify_backup(BufReader::with_capacity(1 << 20, reread))
            .map_err(|source| DbError::Backup { path: partial.display().to_string(), source })
    });
    let summary = match checked {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_file(&partial);
            return Err(e);
        }
    };
    fs::rename(&partial, dest).map_err(io_error("cannot rename to", dest))?;
    sync_parent(dest);
    let seconds = started.elapsed().as_secs_f64();
    let mb = summary.bytes as f64 / 1e6;
    let _ = writeln!(
        out,
        "backup {}: {} records, {} results, {mb:.1} MB in {seconds:.1} s ({:.1} MB/s), checked",
        dest.display(),
        summary.records,
        summary.results,
        mb / seconds.max(1e-6)
    );
    Ok(())
}

fn write_backup(paths: &DbPaths, mut to: BufWriter<File>, partial: &Path) -> Result<File, DbError> {
    if let Some(stream) = admin::connect(&paths.socket)? {
        admin::ask_backup(stream, &mut to, partial)?;
    } else {
        let store = open_offline(paths, "db backup")?;
        let backup_error = |source| DbError::Backup { path: partial.display().to_string(), source };
        let (w, _) = store.backup(&mut to).map_err(backup_error)?;
        w.flush().map_err(io_error("cannot write", partial))?;
        store.close().map_err(|source| DbError::Store { db: paths.db.display().to_string(), source })?;
    }
    to.into_inner().map_err(|e| io_error("cannot write", partial)(e.into_error()))
}

/// `db restore SRC`: loads a backup into a fresh database beside the current one, derives
/// everything again from its raw results, and only then puts it in place (the database it
/// replaces is kept aside). The data directory's ledger is kept, joined with the backup's:
/// results acknowledged after the backup was made stay claimed, so the next start shows
/// them missing instead of forgetting them. Refuses while a collector runs, and refuses a
/// damaged backup without changing anything.
pub fn restore(paths: &DbPaths, src: &Path, out: &mut dyn Write) -> Result<(), DbError> {
    refuse_if_running(paths, "db restore")?;
    let started = Instant::now();
    let staging = paths.data_dir.join("db.restoring");
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(io_error("cannot remove an interrupted restore's", &staging))?;
    }
    fs::create_dir_all(&paths.data_dir).map_err(io_error("cannot create", &paths.data_dir))?;
    let backup_error = |source| DbError::Backup { path: src.display().to_string(), source };
    let input = File::open(src).map_err(io_error("cannot open", src))?;
    let store_error = |source| DbError::Store { db: staging.display().to_string(), source };
    let loaded = Store::open(&staging, &StoreOptions::default()).map_err(store_error).and_then(|store| {
        let now = jiff::Timestamp::now().as_millisecond();
        let restored = store.restore_from(BufReader::with_capacity(1 << 20, input), now).map_err(backup_error)?;
        store.close().map_err(store_error)?;
        Ok((store, restored))
    });
    let (store, restored) = match loaded {
        Ok(x) => x,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The data directory's ledger joined with the backup's.
    let ledger = Ledger::new(paths.ledger.clone());
    let stamp = probity_config::time::rfc3339(jiff::Timestamp::now().as_millisecond()).replace(':', "-");
    let current = match ledger.read() {
        Ok(entries) => entries.unwrap_or_default(),
        Err(e) => {
            let aside = paths.data_dir.join(format!("ledger.replaced-{stamp}"));
            fs::rename(&paths.ledger, &aside).map_err(io_error("cannot move the damaged ledger to", &aside))?;
            let _ = writeln!(out, "warning: {e}; moved it to {} and kept the backup's", aside.display());
            Vec::new()
        }
    };
    let joined = join_ledgers(&current, &restored.ledger);
    let missing = store.held_less_than(&joined);
    drop(store);
    let mut replaced = None;
    if paths.db.exists() {
        let aside = paths.data_dir.join(format!("db.replaced-{stamp}"));
        fs::rename(&paths.db, &aside).map_err(io_error("cannot move the current database to", &aside))?;
        replaced = Some(aside);
    }
    fs::rename(&staging, &paths.db).map_err(io_error("cannot move the restored database to", &paths.db))?;
    sync_parent(&paths.db);
    ledger.write(joined).map_err(|e| DbError::Io {
        what: "cannot write the ledger",
        path: paths.ledger.display().to_string(),
        source: io::Error::other(e.to_string()),
    })?;
    let b = restored.backup;
    let _ = writeln!(
        out,
        "restored {} into {}: {} records, {} results; derived data rebuilt from them ({} probe/agent pairs, {} hours), {:.1} s",
        src.display(),
        paths.db.display(),
        b.records,
        b.results,
        restored.rebuilt.pairs,
        restored.rebuilt.hours,
        started.elapsed().as_secs_f64()
    );
    if let Some(aside) = replaced {
        let _ = writeln!(
            out,
            "the database it replaced is kept at {}; remove it once the restored one serves",
            aside.display()
        );
    }
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "warning: the ledger says the collector acknowledged results after this backup was made, which it lacks:"
        );
        for (e, m) in &missing {
            let _ = writeln!(out, "  {}: {} results (seqs {})", e.label(), count(m), ranges_text(m));
        }
        let _ = writeln!(
            out,
            "the collector refuses to start until you accept that loss (probity-collector --config FILE --accept-loss \
             records them as lost results), or restore a newer backup"
        );
    }
    Ok(())
}

/// Per agent instance, the seqs either ledger claims.
fn join_ledgers(a: &[LedgerEntry], b: &[LedgerEntry]) -> Vec<LedgerEntry> {
    let mut joined: std::collections::BTreeMap<(String, Option<String>), SeqSet> = Default::default();
    for e in a.iter().chain(b) {
        let set = joined.entry((e.agent.clone(), e.instance.clone())).or_default();
        for &(lo, hi) in &e.ranges {
            set.insert_range(lo, hi);
        }
    }
    joined
        .into_iter()
        .map(|((agent, instance), set)| LedgerEntry { agent, instance, ranges: set.ranges().to_vec() })
        .collect()
}

/// Opens the database when no collector runs on it; refuses one that runs.
fn open_offline(paths: &DbPaths, what: &'static str) -> Result<Store, DbError> {
    refuse_if_running(paths, what)?;
    if !paths.db.exists() {
        return Err(DbError::NoDatabase(paths.db.display().to_string()));
    }
    Store::open(&paths.db, &StoreOptions::default())
        .map_err(|source| DbError::Store { db: paths.db.display().to_string(), source })
}

fn refuse_if_running(paths: &DbPaths, what: &'static str) -> Result<(), DbError> {
    if admin::connect(&paths.socket)?.is_some() {
        return Err(DbError::Running {
            data_dir: paths.data_dir.display().to_string(),
            socket: paths.socket.display().to_string(),
            what,
        });
    }
    if locked(&paths.db) {
        return Err(DbError::Locked { db: paths.db.display().to_string(), socket: paths.socket.display().to_string() });
    }
    Ok(())
}

/// Whether another process holds sled's lock on the database: the exclusive lock sled
/// takes (through fs2, as here) on its `db` file.
fn locked(db: &Path) -> bool {
    use fs2::FileExt;
    let Ok(file) = File::options().read(true).write(true).open(db.join("db")) else { return false };
    match file.try_lock_exclusive() {
        Ok(()) => {
            let _ = FileExt::unlock(&file);
            false
        }
        Err(e) => e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(11),
    }
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

fn count(ranges: &[(u64, u64)]) -> u64 {
    ranges.iter().map(|(lo, hi)| hi - lo + 1).sum()
}

fn ranges_text(ranges: &[(u64, u64)]) -> String {
    let shown: Vec<String> = ranges.iter().take(3).map(|(lo, hi)| format!("{lo}-{hi}")).collect();
    shown.join(", ") + if ranges.len() > 3 { ", …" } else { "" }
}
