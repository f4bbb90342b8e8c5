//! Report and evidence benchmark over a real sled store:
//!
//! 1. a quarter report for one agreement on a service with 2 probes x 3 agents at 30 s
//!    (about 1.6 M results stored), warm (goal <= 100 ms);
//! 2. compliance for 500 agreements over a month (100 services, 5 agreements each; goal <= 2 s);
//! 3. the evidence bundle for that quarter, exported in a fresh process so its peak RSS is
//!    its own (goal <= 10 s and <= 200 MB);
//!    then the history layer on it: sealing that quarter as revision 1, reading it back
//!    as a closed period (from the stored revision), the restatement job's idle pass and
//!    its recomputation of the quarter once marked;
//! 4. the evidence bundle over 2,025 years (0001-01-01 to the quarter's end) on the same
//!    store, also in a fresh process: memory must not grow with the period's length.
//!
//! `cargo bench -p probity-collector --bench reports` (add `-- --quick` for a smaller run).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use probity_collector::period::PeriodQuery;
use probity_collector::report::{self, ResolvedAgreement};
use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::{ErrorKind, ProbeResult, ResultError};
use probity_config::{Catalogue, parse_collector_config};

const TOKEN_HASH: &str = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a";
/// 2026-07-01T00:00:00Z and 2026-10-01T00:00:00Z: the quarter 2026-Q3 in UTC.
const Q3_FROM: i64 = 1_782_864_000_000;
const Q3_TO: i64 = 1_790_812_800_000;
/// 2026-09-01T00:00:00Z.
const SEP_FROM: i64 = 1_788_220_800_000;
/// "Now" for every report: well after the data, so periods are complete.
const NOW: i64 = 1_795_000_000_000;

fn agents_toml(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[agents]]\nid = \"a{i}\"\ntoken_sha256 = \"{}\"\n\n",
                TOKEN_HASH.replace('d', &format!("{}", i % 10))
            )
        })
        .collect()
}

fn quarter_config() -> String {
    format!(
        r#"{agents}
[calendars.uk]
timezone = "Europe/London"
hours = ["mon-fri 08:00-18:00"]
holidays = ["2026-08-31"]

[[services]]
id = "payments"
min_outage = "60s"
  [[services.probes]]
  id = "p0"
  kind = "http"
  url = "http://127.0.0.1:9/health"
  interval = "30s"
  timeout = "10s"
  [[services.probes]]
  id = "p1"
  kind = "tcp"
  target = "127.0.0.1:9"
  interval = "30s"
  timeout = "10s"

[[agreements]]
id = "payments-sla"
kind = "sla"
service = "payments"
calendar = "uk"
period = "quarter"
availability = 99.9
latency = {{ percentile = 95, max = "300ms" }}
"#,
        agents = agents_toml(3)
    )
}

fn compliance_config(services: usize) -> String {
    let mut s = agents_toml(2);
    s += "[calendars.uk]\ntimezone = \"Europe/London\"\nhours = [\"mon-fri 08:00-18:00\"]\n\n";
    s += "[calendars.ny]\ntimezone = \"America/New_York\"\nhours = [\"mon-fri 09:00-17:00\", \"sat 10:00-14:00\"]\n\n";
    for i in 0..services {
        s += &format!(
            "[[services]]\nid = \"s{i}\"\n  [[services.probes]]\n  id = \"s{i}-p\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"5m\"\n  timeout = \"10s\"\n\n"
        );
        for (j, (kind, cal, unknown)) in [
            ("sla", "uk", "exclude"),
            ("ola", "24x7", "up"),
            ("uc", "ny", "down"),
            ("sla", "24x7", "exclude"),
            ("ola", "uk", "exclude"),
        ]
        .iter()
        .enumerate()
        {
            let latency = if j % 2 == 0 { "latency = { percentile = 95, max = \"300ms\" }\n" } else { "" };
            s += &format!(
                "[[agreements]]\nid = \"s{i}-{j}\"\nkind = \"{kind}\"\nservice = \"s{i}\"\ncalendar = \"{cal}\"\navailability = 99.5\nunknown = \"{unknown}\"\n{latency}\n"
            );
        }
    }
    s
}

/// Deterministic xorshift, so every run stores the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Fills the store with every result of every (probe, agent) of `catalogue` over
/// `[from, to)`: mostly up with realistic latencies, a 10-minute outage seen by every
/// agent of a probe every ~3 days, and some agent-local failures. Returns the count.
fn fill(store: &Store, catalogue: &Catalogue, from: i64, to: i64) -> u64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut total = 0;
    for agent in &catalogue.agents {
        let probes: Vec<_> =
            catalogue.probes().filter(|(_, p)| p.agents.contains(&agent.id)).map(|(_, p)| p.clone()).collect();
        let mut seq = 0u64;
        let mut batch: Vec<ProbeResult> = Vec::with_capacity(1000);
        let interval = probes.iter().map(|p| p.interval.as_millis() as i64).min().unwrap_or(30_000);
        let mut t = from;
        while t < to {
            for p in &probes {
                let step = p.interval.as_millis() as i64;
                if (t - from) % step != 0 {
                    continue;
                }
                seq += 1;
                // Ten minutes from 10:00 UTC every third day (inside UK business hours on weekdays).
                let in_outage = (t / 60_000 + 14 * 60) % (3 * 1440) < 10;
                let local_failure = rng.next().is_multiple_of(5000);
                let down = in_outage || local_failure;
                batch.push(ProbeResult {
                    seq,
                    probe: p.id.to_string(),
                    at: t + (rng.next() % 1000) as i64,
                    duration_us: 20_000 + rng.next() % 80_000,
                    ok: !down,
                    status: (!down).then_some(200),
                    phases: None,
                    error: down.then(|| ResultError { kind: ErrorKind::Timeout, message: "no answer".into() }),
                    cert_not_after: None,
                });
                if batch.len() == 1000 {
                    total += store
                        .ingest(agent.id.as_str(), None, &batch, |r| interval_of(catalogue, &r.probe))
                        .unwrap()
                        .accepted;
                    batch.clear();
                }
            }
            t += interval;
        }
        if !batch.is_empty() {
            total +=
                store.ingest(agent.id.as_str(), None, &batch, |r| interval_of(catalogue, &r.probe)).unwrap().accepted;
        }
    }
    store.flush().unwrap();
    store.roll_up(NOW).unwrap();
    store.flush().unwrap();
    total
}

fn interval_of(c: &Catalogue, probe: &str) -> Result<i64, String> {
    c.probe(probe).map(|(_, p)| p.interval.as_millis() as i64).ok_or_else(|| "unknown".to_string())
}

fn open(path: &Path) -> Store {
    Store::open(path, &StoreOptions::default()).unwrap()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The long period of measurement 4: from year 1 to the end of the quarter.
const LONG_FROM: &str = "0001-01-01T00:00:00Z";
const LONG_TO: &str = "2026-10-01T00:00:00Z";

/// Runs in a child process: exports the quarter's evidence (or, with `long`, the evidence
/// from year 1 on) and prints time, peak RSS and the bundle's size.
fn evidence_child(db: &Path, long: bool) {
    let catalogue = parse_collector_config("quarter.toml", &quarter_config()).unwrap().catalogue;
    let store = open(db);
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let out = tempfile::tempfile().unwrap();
    let t = Instant::now();
    let q = if long {
        PeriodQuery { period: None, from: Some(LONG_FROM), to: Some(LONG_TO), max_period: None }
    } else {
        PeriodQuery { period: Some("2026-Q3"), from: None, to: None, max_period: None }
    };
    let inputs = ResolvedAgreement::resolve(&catalogue, "payments-sla", q, NOW).unwrap();
    let file = probity_collector::evidence::export::export(
        std::io::BufWriter::new(out),
        &store,
        &inputs,
        None,
        &[],
        &key,
        NOW,
    )
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    let size = file.into_inner().unwrap().metadata().unwrap().len();
    println!("evidence {secs:.2} {:.1} {size}", peak_rss_mb());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--evidence-child") {
        evidence_child(Path::new(&args[i + 1]), args.get(i + 2).is_some_and(|a| a == "long"));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let dir = tempfile::tempdir().unwrap();

    // 1. Quarter report.
    let catalogue = parse_collector_config("quarter.toml", &quarter_config()).unwrap().catalogue;
    let db = dir.path().join("quarter");
    let (from, to) = if quick { (Q3_FROM, Q3_FROM + 14 * 86_400_000) } else { (Q3_FROM, Q3_TO) };
    let store = Arc::new(open(&db));
    let t = Instant::now();
    let n = fill(&store, &catalogue, from, to);
    let fill_s = t.elapsed().as_secs_f64();
    println!("quarter dataset: {n} results stored in {fill_s:.1} s ({:.0} results/s, in-process)", n as f64 / fill_s);
    let q = PeriodQuery { period: Some("2026-Q3"), from: None, to: None, max_period: None };
    let first = Instant::now();
    let inputs = ResolvedAgreement::resolve(&catalogue, "payments-sla", q, NOW).unwrap();
    let r = report::agreement_report(store.as_ref(), &inputs).unwrap();
    let cold_ms = first.elapsed().as_secs_f64() * 1000.0;
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let inputs = ResolvedAgreement::resolve(&catalogue, "payments-sla", q, NOW).unwrap();
        let again = report::agreement_report(store.as_ref(), &inputs).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(again.figures.downtime_seconds, r.figures.downtime_seconds);
    }
    println!(
        "quarter report: first {cold_ms:.1} ms, warm median {:.1} ms, min {:.1} ms (availability {:?}%, {} outages, latency samples {})",
        median(times.clone()),
        times.iter().cloned().fold(f64::MAX, f64::min),
        r.figures.availability_percent,
        r.figures.outages.len(),
        r.latency.as_ref().map_or(0, |l| l.samples)
    );
    // 1b. The history layer: sealing the closed quarter (revision 1, computed with the
    // catalogue version in force) and reading it back as a closed period.
    probity_collector::history::versions::record(
        &store,
        &catalogue,
        probity_collector::history::versions::Source::File,
        Q3_FROM,
    )
    .unwrap();
    let t = Instant::now();
    let sealed =
        probity_collector::history::periods::latest_or_seal(&store, store.as_ref(), "payments-sla", "2026-Q3", NOW)
            .unwrap();
    let seal_ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(sealed.number, 1);
    let mut reads = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let closed = probity_collector::history::periods::agreement_report(
            &store,
            store.as_ref(),
            &catalogue,
            "payments-sla",
            q,
            NOW,
        )
        .unwrap();
        reads.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(closed["revision"]["number"], 1);
    }
    println!(
        "history: sealing the quarter {seal_ms:.1} ms; closed-period read warm median {:.2} ms, min {:.2} ms",
        median(reads.clone()),
        reads.iter().cloned().fold(f64::MAX, f64::min)
    );
    // 1c. Restatement pending: a pass of the job with nothing marked (what it costs every
    // 5 s), then the quarter marked by a late result and recomputed once. (Every closed-period
    // read above already looks its mark up.)
    use probity_collector::history::restatements;
    let t = Instant::now();
    let idle = restatements::recompute_marked(&store, store.as_ref(), NOW).unwrap();
    let idle_us = t.elapsed().as_secs_f64() * 1e6;
    assert_eq!(idle, 0);
    let marked = restatements::mark_touched(
        &store,
        &catalogue,
        "payments",
        Q3_FROM + 86_400_000,
        Q3_FROM + 86_400_001,
        restatements::Reason::LateResults,
        NOW,
    )
    .unwrap();
    assert_eq!(marked, 1);
    let t = Instant::now();
    restatements::recompute_marked(&store, store.as_ref(), NOW).unwrap();
    let recompute_ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "restatements: job pass with nothing marked {idle_us:.0} µs; recomputing the marked quarter (and dropping the mark: nothing changed) {recompute_ms:.1} ms"
    );
    drop(store);

    // 3. Evidence for the quarter, and 4. from year 1 to the quarter's end, each in a fresh process.
    for (what, mode) in [("quarter evidence", "quarter"), ("evidence 0001-01-01 to 2026-10-01", "long")] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--evidence-child", db.to_str().unwrap(), mode])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(line) = text.lines().find(|l| l.starts_with("evidence ")) {
            let f: Vec<&str> = line.split_whitespace().collect();
            println!("{what}: {} s, peak RSS {} MB (whole process), bundle {} bytes", f[1], f[2], f[3]);
        } else {
            println!("{what}: child failed: {}{}", text, String::from_utf8_lossy(&out.stderr));
        }
    }

    // 2. Compliance for 500 agreements over a month.
    let services = if quick { 20 } else { 100 };
    let catalogue = parse_collector_config("compliance.toml", &compliance_config(services)).unwrap().catalogue;
    let store = open(&dir.path().join("compliance"));
    let n = fill(&store, &catalogue, SEP_FROM, SEP_FROM + 30 * 86_400_000);
    println!("compliance dataset: {} agreements, {n} results", catalogue.agreements.len());
    let q = PeriodQuery { period: Some("2026-09"), from: None, to: None, max_period: None };
    let _ = report::compliance(&store, &catalogue, q, NOW).unwrap();
    let mut times = Vec::new();
    let mut met = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let c = report::compliance(&store, &catalogue, q, NOW).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        met = c.met;
    }
    if std::env::var_os("PROBITY_BENCH_BREAKDOWN").is_some() {
        let t = Instant::now();
        for s in &catalogue.services {
            let _ = report::service_timeline(&store, s, SEP_FROM - 7 * 86_400_000, SEP_FROM + 37 * 86_400_000).unwrap();
        }
        println!("  timelines of {} services: {:.0} ms", catalogue.services.len(), t.elapsed().as_secs_f64() * 1000.0);
        let uk = catalogue.calendar("uk").unwrap();
        let base = uk.service_intervals(SEP_FROM, SEP_FROM + 30 * 86_400_000);
        let t = Instant::now();
        for s in &catalogue.services {
            let _ = report::service_latency_histogram(&store, s, &base).unwrap();
        }
        println!(
            "  uk-hours latency of {} services: {:.0} ms",
            catalogue.services.len(),
            t.elapsed().as_secs_f64() * 1000.0
        );
        let t = Instant::now();
        for _ in &catalogue.services {
            let _ = uk.service_intervals(SEP_FROM, SEP_FROM + 30 * 86_400_000);
        }
        println!("  uk calendar x{}: {:.0} ms", catalogue.services.len(), t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "compliance over a month: {} agreements in {:.0} ms warm median ({met} met)",
        catalogue.agreements.len(),
        median(times)
    );
}
