//! `db check`, `db backup` and `db restore` over a large store: builds a store of N
//! results in-process (8 agents × `--probes` probes, 10 s apart, batches of 1,000 as
//! agents send them, rolled up), closes it, then times, each on the reopened database:
//! a plain read of every record (the floor any check pays), the check `db check` runs
//! (`db::check_store`: checksums, decoding, derived data against raw, the ledger), a
//! copy of the database's files (the floor of any backup), the backup (MB/s), reading
//! the backup back to check it, and the restore (load and rebuild).
//!
//! `cargo bench -p probity-collector --bench db -- [--results 10000000] [--probes 100] [--dir DIR]`

use std::path::{Path, PathBuf};

use probity_collector::store::{Store, StoreOptions, verify_backup};
use probity_config::wire::{ErrorKind, ProbeResult, ResultError};
use tokio::time::Instant;

struct Args {
    results: u64,
    probes: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args { results: 10_000_000, probes: 100, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--results" => a.results = it.next().and_then(|v| v.replace('_', "").parse().ok()).expect("a number"),
            "--probes" => a.probes = it.next().and_then(|v| v.replace('_', "").parse().ok()).expect("a number"),
            "--dir" => a.dir = it.next().map(PathBuf::from),
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

const AGENTS: u64 = 8;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() { dir_bytes(&e.path()) } else { e.metadata().unwrap().len() }
        })
        .sum()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn main() {
    let args = parse_args();
    let temp = tempfile::tempdir().unwrap();
    let root = args.dir.clone().unwrap_or_else(|| temp.path().to_path_buf());
    let db = root.join("db");
    let options = StoreOptions::default();
    let per_pair = args.results / (AGENTS * args.probes);
    let total = per_pair * AGENTS * args.probes;
    let start = 1_700_000_000_000 / 3_600_000 * 3_600_000;
    let now = start + per_pair as i64 * 10_000 + 3_600_000;
    let t = Instant::now();
    {
        let store = Store::open(&db, &options).unwrap();
        let steps_per_batch = (1000 / args.probes).max(1);
        for agent in 0..AGENTS {
            let name = format!("b{agent}");
            let mut step = 0;
            while step < per_pair {
                let steps = steps_per_batch.min(per_pair - step);
                let mut batch = Vec::with_capacity((steps * args.probes) as usize);
                for s in step..step + steps {
                    for p in 0..args.probes {
                        let seq = s * args.probes + p + 1;
                        let down = seq.is_multiple_of(17).then_some(ErrorKind::Timeout);
                        batch.push(ProbeResult {
                            seq,
                            probe: format!("p{p}"),
                            at: start + s as i64 * 10_000 + p as i64,
                            duration_us: 800 + (seq * 7919) % 40_000,
                            ok: down.is_none(),
                            status: None,
                            phases: None,
                            error: down.map(|kind| ResultError { kind, message: "timeout".into() }),
                            cert_not_after: None,
                        });
                    }
                }
                store.ingest(&name, Some("bench"), &batch, |_| Ok::<i64, ()>(10_000)).unwrap();
                step += steps;
            }
        }
        store.roll_up(now).unwrap();
        store.close().unwrap();
        let ledger = probity_collector::ledger::Ledger::new(root.join("ledger"));
        ledger.write(store.acknowledged()).unwrap();
    }
    let built = t.elapsed().as_secs_f64();
    let db_bytes = dir_bytes(&db);
    println!(
        "store: {total} results ({AGENTS} agents x {} probes x {per_pair}), {:.1} MB on disk, built in {built:.1} s",
        args.probes,
        db_bytes as f64 / 1e6
    );
    // Let sled's background threads let go of the lock before reopening.
    std::thread::sleep(std::time::Duration::from_secs(2));

    let store = Store::open(&db, &options).unwrap();
    let t = Instant::now();
    let report = store.check_checksums(10).unwrap();
    let read = t.elapsed().as_secs_f64();
    println!("baseline, every record read once (check_checksums): {} records in {read:.1} s", report.records);

    let t = Instant::now();
    let mut out = Vec::new();
    let ok = probity_collector::db::check_store(&store, &root.join("ledger"), &mut out).unwrap();
    let check = t.elapsed().as_secs_f64();
    print!("db check: {}", String::from_utf8_lossy(&out));
    assert!(ok, "the bench's store checks clean");
    println!("db check of {total} results: {check:.1} s ({:.2} M results/s)", total as f64 / check / 1e6);

    let t = Instant::now();
    copy_dir(&db, &root.join("copy"));
    let copy = t.elapsed().as_secs_f64();
    println!(
        "baseline, copying the database's files: {:.1} MB in {copy:.1} s ({:.1} MB/s)",
        db_bytes as f64 / 1e6,
        db_bytes as f64 / 1e6 / copy
    );
    std::fs::remove_dir_all(root.join("copy")).unwrap();

    let backup_path = root.join("bench.backup");
    let t = Instant::now();
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&backup_path).unwrap());
    let (file, summary) = store.backup(file).unwrap();
    file.into_inner().unwrap().sync_all().unwrap();
    let backup = t.elapsed().as_secs_f64();
    let mb = summary.bytes as f64 / 1e6;
    println!("db backup: {} records, {mb:.1} MB in {backup:.1} s ({:.1} MB/s)", summary.records, mb / backup);
    let t = Instant::now();
    verify_backup(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&backup_path).unwrap())).unwrap();
    let verify = t.elapsed().as_secs_f64();
    println!("backup read back and checked: {verify:.1} s ({:.1} MB/s)", mb / verify);
    store.close().unwrap();
    drop(store);

    let t = Instant::now();
    let restored = Store::open(&root.join("restored"), &options).unwrap();
    let r = restored
        .restore_from(std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&backup_path).unwrap()), now)
        .unwrap();
    restored.close().unwrap();
    let restore = t.elapsed().as_secs_f64();
    println!(
        "db restore (load + rebuild of {} pairs, {} hours): {restore:.1} s ({:.1} MB/s)",
        r.rebuilt.pairs,
        r.rebuilt.hours,
        mb / restore
    );
}
