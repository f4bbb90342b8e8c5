//! `/metrics` benchmark over a real sled store (issue 17): 1,000 probes × 3 agents on 100
//! services, 500 agreements (5 per service: SLA/OLA/UC on 24x7, Europe/London and
//! America/New_York calendars), results every 30 s over the last 2 hours of a running month.
//!
//! 1. the scrape: `Metrics::render` as `GET /metrics` calls it (goal <= 50 ms), and the size
//!    of the exposition;
//! 2. the background refresh that the scrape reads from (`Metrics::refresh`: every service's
//!    state and every agreement's running-period report, through `report`), which is the
//!    baseline: what each scrape would cost if it computed the figures itself;
//! 3. the state `metrics` keeps in memory for it.
//!
//! `cargo bench -p probity-collector --bench metrics` (add `-- --quick` for 20 minutes of
//! results instead of 2 hours).

use std::time::Instant;

use probity_collector::metrics::Metrics;
use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::{ErrorKind, ProbeResult, ResultError};
use probity_config::{Catalogue, CollectorConfig, parse_collector_config};

/// 2026-12-10T12:00:00Z: "now", inside the running month 2026-12.
const NOW: i64 = 1_796_904_000_000;

#[path = "shared/big_catalogue.rs"]
mod big_catalogue;
use big_catalogue::{AGENTS, Rng, config};

/// Every result of every (probe, agent) over `[from, to)` at 30 s, through `Store::ingest`
/// and `Metrics::record_latest` as the ingest handler does; a few down, with phases, status
/// and a certificate.
fn fill(store: &Store, metrics: &Metrics, catalogue: &Catalogue, from: i64, to: i64) -> u64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let probes: Vec<String> = catalogue.probes().map(|(_, p)| p.id.to_string()).collect();
    let mut total = 0;
    for agent in &catalogue.agents {
        let mut seq = 0u64;
        let mut t = from;
        while t < to {
            let mut batch = Vec::with_capacity(probes.len());
            for p in &probes {
                seq += 1;
                let down = rng.next().is_multiple_of(500);
                let duration_us = 20_000 + rng.next() % 80_000;
                batch.push(ProbeResult {
                    seq,
                    probe: p.clone(),
                    at: t + (rng.next() % 1000) as i64,
                    duration_us,
                    ok: !down,
                    status: Some(if down { 503 } else { 200 }),
                    phases: Some(probity_config::wire::Phases {
                        dns_us: Some(800),
                        connect_us: Some(1_500),
                        tls_us: Some(9_000),
                        first_byte_us: Some(duration_us - 1_000),
                    }),
                    error: down.then(|| ResultError { kind: ErrorKind::Status, message: "503".into() }),
                    cert_not_after: Some(1_800_000_000),
                });
            }
            for chunk in batch.chunks(1000) {
                let summary = store.ingest(agent.id.as_str(), None, chunk, |_| Ok::<i64, String>(30_000)).unwrap();
                metrics.record_latest(agent.id.as_str(), &summary.latest, chunk);
                total += summary.accepted;
            }
            t += 30_000;
        }
    }
    store.flush().unwrap();
    store.roll_up(NOW).unwrap();
    store.flush().unwrap();
    total
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let minutes = if quick { 20 } else { 120 };
    let config: CollectorConfig = parse_collector_config("metrics.toml", &config()).unwrap();
    let catalogue = &config.catalogue;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap();
    let metrics = Metrics::default();
    let writes = probity_collector::disk::Writes::new();
    let t = Instant::now();
    let n = fill(&store, &metrics, catalogue, NOW - minutes * 60_000, NOW);
    println!(
        "dataset: {} probes x {AGENTS} agents, {} agreements, {n} results over the last {minutes} min, stored in {:.1} s",
        catalogue.probes().count(),
        catalogue.agreements.len(),
        t.elapsed().as_secs_f64()
    );

    // 2. The refresh (and, done per scrape, the baseline).
    let mut refreshes = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        metrics.refresh(&store, catalogue, NOW).unwrap();
        refreshes.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let snapshot = metrics.snapshot();
    assert_eq!(snapshot.agreements.len(), 500, "every agreement has figures");
    println!(
        "refresh (every service's state + 500 running-period reports): median {:.0} ms, min {:.0} ms",
        median(refreshes.clone()),
        refreshes.iter().cloned().fold(f64::MAX, f64::min)
    );

    // 1. The scrape, just after the last result (every view known).
    let now = NOW + 1_000;
    let text = metrics.render(&store, &writes, &config, now).unwrap();
    let mut scrapes = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let again = metrics.render(&store, &writes, &config, now).unwrap();
        scrapes.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(again.len(), text.len());
    }
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    let success = text.lines().filter(|l| l.starts_with("probity_probe_success{")).count();
    assert_eq!(success, 3000, "every (probe, agent) view is known");
    let dns = text
        .lines()
        .filter(|l| l.starts_with("probity_probe_duration_seconds{") && l.contains("phase=\"dns\""))
        .count();
    assert_eq!(dns, 3000, "every view's phases are shown");
    println!(
        "scrape: median {:.1} ms, min {:.1} ms, max {:.1} ms; {} bytes, {series} series ({success} probe views)",
        median(scrapes.clone()),
        scrapes.iter().cloned().fold(f64::MAX, f64::min),
        scrapes.iter().cloned().fold(0.0, f64::max),
        text.len()
    );
    let stale = metrics.render(&store, &writes, &config, NOW + 3_600_000).unwrap();
    println!(
        "scrape an hour later (every view stale): {} bytes, {} probe views",
        stale.len(),
        stale.lines().filter(|l| l.starts_with("probity_probe_success{")).count()
    );

    // 3. What metrics holds in memory for it.
    println!("state held by metrics: ~{} bytes", metrics.approximate_state_bytes());
}
