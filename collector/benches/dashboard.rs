//! The dashboard overview's data load over a real sled store (issue 17): 1,000 probes × 3
//! agents on 100 services, 500 agreements (5 per service: SLA/OLA/UC on 24x7,
//! Europe/London and America/New_York calendars, the shape of the `metrics` bench's
//! catalogue), results every 30 s over the last hours before now.
//!
//! The overview's page makes two requests: `GET /api/v1/services` (every service's state
//! and since) and `GET /api/v1/compliance` (every agreement's running-period line). Both are
//! timed through the router (`probity_collector::app`, `oneshot`: token check, history
//! layer, views, JSON), warm, with their sizes; the baseline in the same run is
//! `report::compliance` called directly (the arithmetic alone, no history, no JSON).
//!
//! `cargo bench -p probity-collector --bench dashboard` (add `-- --quick` for 2 hours of
//! results instead of 6).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use probity_collector::period::PeriodQuery;
use probity_collector::report;
use probity_collector::state::{AppState, StateSpec};
use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::{ErrorKind, ProbeResult, ResultError};
use probity_config::{Catalogue, CollectorConfig, parse_collector_config};
use tower::ServiceExt;

#[path = "shared/big_catalogue.rs"]
mod big_catalogue;
use big_catalogue::{AGENTS, Rng, config};

/// Every result of every (probe, agent) over `[from, to)` at 30 s, one in 500 down.
fn fill(store: &Store, catalogue: &Catalogue, from: i64, to: i64, now: i64) -> u64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let probes: Vec<String> = catalogue.probes().map(|(_, p)| p.id.to_string()).collect();
    let mut total = 0;
    for agent in &catalogue.agents {
        let mut seq = 0u64;
        let mut t = from;
        while t < to {
            let batch: Vec<ProbeResult> = probes
                .iter()
                .map(|p| {
                    seq += 1;
                    let down = rng.next().is_multiple_of(500);
                    ProbeResult {
                        seq,
                        probe: p.clone(),
                        at: t + (rng.next() % 1000) as i64,
                        duration_us: 20_000 + rng.next() % 80_000,
                        ok: !down,
                        status: Some(if down { 503 } else { 200 }),
                        phases: None,
                        error: down.then(|| ResultError { kind: ErrorKind::Status, message: "503".into() }),
                        cert_not_after: None,
                    }
                })
                .collect();
            let summary = store.ingest(agent.id.as_str(), None, &batch, |_| Ok::<i64, String>(30_000)).unwrap();
            total += summary.accepted;
            t += 30_000;
        }
    }
    store.flush().unwrap();
    store.roll_up(now).unwrap();
    store.flush().unwrap();
    total
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Median, min and max of `runs` timings of `f` (ms).
fn time_it(runs: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (min, max) = (v.iter().cloned().fold(f64::MAX, f64::min), v.iter().cloned().fold(0.0, f64::max));
    (median(v), min, max)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let hours = if quick { 2 } else { 6 };
    let config: CollectorConfig = parse_collector_config("dashboard.toml", &config()).unwrap();
    let catalogue = config.catalogue.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions::default()).unwrap());
    // The API reads the wall clock: the results end just before it.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let t = Instant::now();
    let n = fill(&store, &catalogue, now - hours * 3_600_000, now - 5_000, now);
    println!(
        "dataset: {} probes x {AGENTS} agents, {} agreements, {n} results over the last {hours} h, stored in {:.1} s",
        catalogue.probes().count(),
        catalogue.agreements.len(),
        t.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let app =
        runtime.block_on(async { probity_collector::app(AppState::new(config, store.clone(), StateSpec::default())) });
    let get = |path: &'static str| {
        runtime.block_on(async {
            let resp = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            resp.into_body().collect().await.unwrap().to_bytes().len()
        })
    };
    // Warm: the first requests fill sled's cache (and store catalogue version 1).
    let (services_bytes, compliance_bytes) = (get("/api/v1/services"), get("/api/v1/compliance"));

    let services = time_it(10, || {
        get("/api/v1/services");
    });
    println!(
        "GET /api/v1/services (100 services' state and since): median {:.1} ms, min {:.1} ms, max {:.1} ms; {services_bytes} bytes",
        services.0, services.1, services.2
    );
    let compliance = time_it(5, || {
        get("/api/v1/compliance");
    });
    println!(
        "GET /api/v1/compliance (500 running-period lines): median {:.1} ms, min {:.1} ms, max {:.1} ms; {compliance_bytes} bytes",
        compliance.0, compliance.1, compliance.2
    );
    println!("overview data load (both requests, one after the other): median {:.1} ms", services.0 + compliance.0);
    let baseline = time_it(5, || {
        report::compliance(store.as_ref(), &catalogue, PeriodQuery::default(), now).unwrap();
    });
    println!(
        "baseline report::compliance (the arithmetic alone, no history or JSON): median {:.1} ms, min {:.1} ms, max {:.1} ms",
        baseline.0, baseline.1, baseline.2
    );
}
