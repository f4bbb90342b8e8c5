//! Collector metrics and the `/metrics` exposition (Prometheus text format 0.0.4, written
//! by `prometheus-client`: typed families, label escaping), blackbox-style names under a
//! `probity_` prefix. Three sources, each as cheap as a scrape of 500 agreements needs:
//! - counters and the ingest histogram, kept here as requests happen;
//! - each (probe, agent)'s newest result, kept in memory from ingest (seeded from the
//!   store's `last` tree), shown only while it decides the agent's view (`runs::view_at`,
//!   SPEC §7), so a stale series disappears instead of freezing;
//! - service states and every agreement's running-period figures (SPEC §14), computed
//!   through `report` by [`compute_snapshot`] every [`REFRESH_EVERY`] off the request path
//!   (`jobs.rs`) and served from that snapshot.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use probity_config::wire::{ErrorKind, Phases, ProbeResult};
use probity_config::{Catalogue, CollectorConfig};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric, MetricEncoder, prometheus_text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::availability::{BURN_WINDOWS, State, Verdict};
use crate::ingest::RejectReason;
use crate::keys::LastResult;
use crate::period::PeriodQuery;
use crate::report::{self, ReportSource};
use crate::runs::{Observation, view_at};
use crate::store::{AgentInstances, Store, StoreError};

/// How often the service and agreement figures are recomputed. A burn-rate alert's
/// shortest window is 5m, so 15 s keeps them well inside its resolution.
pub const REFRESH_EVERY: Duration = Duration::from_secs(15);
/// The longest wait between refreshes, however long one takes (`jobs.rs` waits ten times
/// the last refresh's duration, within these two bounds).
pub const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// Upper bounds (seconds) of the ingest latency histogram.
const INGEST_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

pub struct Metrics {
    results_ingested: Counter,
    duplicates: Counter,
    rejected: Family<ReasonLabel, Counter>,
    reloads: Counter,
    reload_failures: Counter,
    ingest_duration: Histogram,
    /// What each agent's latest ingest request said about it.
    agents: Mutex<BTreeMap<String, AgentSeen>>,
    /// The newest result of each (probe, agent).
    latest: Mutex<HashMap<(String, String), LatestResult>>,
    /// Whether `latest` has been merged with the store's `last` tree since start.
    latest_seeded: AtomicBool,
    snapshot: RwLock<Arc<Snapshot>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// An agent as its latest ingest request showed it (kept in memory: it is refreshed with
/// every request, so a restarted collector knows it again within one shipping interval).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSeen {
    /// Collector Unix ms of the latest ingest request.
    pub last_seen_ms: i64,
    /// The agent's clock minus ours, as it last reported it (SPEC §15).
    pub clock_offset_ms: Option<i64>,
    /// From its `User-Agent` (`probity-agent/0.1.0` → `0.1.0`).
    pub version: Option<String>,
}

/// How a request changed an agent's clock verdict, so the caller logs the change once
/// instead of on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockChange {
    Unchanged,
    /// |offset| went past the limit (or was past it on the first report).
    WentOff,
    /// |offset| came back within the limit.
    CameBack,
}

/// The newest result of one (probe, agent), with what the store does not keep (phases,
/// certificate expiry: known for results ingested since this process started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatestResult {
    pub at: i64,
    pub seq: u64,
    pub down: Option<ErrorKind>,
    pub duration_us: u64,
    pub status: Option<u16>,
    pub phases: Option<Phases>,
    /// Unix seconds.
    pub cert_not_after: Option<i64>,
}

impl LatestResult {
    fn from_last(l: &LastResult) -> LatestResult {
        LatestResult {
            at: l.at,
            seq: l.seq,
            down: l.value.down,
            duration_us: l.value.duration_us,
            status: l.value.status,
            phases: None,
            cert_not_after: None,
        }
    }
}

/// Service states and agreement figures at `computed_at_ms`.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// `None` until the first refresh finished.
    pub computed_at_ms: Option<i64>,
    pub took: Duration,
    pub services: Vec<(String, State)>,
    pub agreements: Vec<AgreementFigures>,
}

/// One agreement's running period, as `/metrics` shows it: ratios (0-1), not percentages.
#[derive(Clone, Debug, PartialEq)]
pub struct AgreementFigures {
    pub agreement: String,
    pub kind: &'static str,
    pub service: String,
    /// `None` while the report's figure is null.
    pub availability_ratio: Option<f64>,
    pub target_ratio: f64,
    pub coverage_ratio: Option<f64>,
    /// Remaining / budget; `None` without a budget (no agreed time yet, or a 100 % target).
    pub error_budget_remaining_ratio: Option<f64>,
    /// Over each of `availability::BURN_WINDOWS`, in its order.
    pub burn_rates: [Option<f64>; BURN_WINDOWS.len()],
    pub verdict: Verdict,
}

impl AgreementFigures {
    /// The figures of a report of the running period, as `report` computed them.
    pub fn of(r: &report::AgreementReport) -> AgreementFigures {
        let f = &r.figures;
        let error_budget_remaining_ratio = match (f.error_budget_remaining_seconds, f.error_budget_seconds) {
            (Some(remaining), Some(budget)) if budget > 0.0 => Some(remaining / budget),
            _ => None,
        };
        AgreementFigures {
            agreement: r.agreement.clone(),
            kind: r.kind.as_str(),
            service: r.service.clone(),
            availability_ratio: f.availability_percent.map(|p| p / 100.0),
            target_ratio: f.target_percent.unwrap_or(100.0) / 100.0,
            coverage_ratio: f.coverage_percent.map(|p| p / 100.0),
            error_budget_remaining_ratio,
            burn_rates: f.burn_rate.map_or([None; BURN_WINDOWS.len()], |b| b.windows),
            verdict: r.verdict,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let rejected = Family::<ReasonLabel, Counter>::default();
        for reason in RejectReason::LABELS {
            // Every reason is shown from the start, at 0, so a rate() over it never starts late.
            let _ = rejected.get_or_create(&ReasonLabel { reason });
        }
        Metrics {
            results_ingested: Counter::default(),
            duplicates: Counter::default(),
            rejected,
            reloads: Counter::default(),
            reload_failures: Counter::default(),
            ingest_duration: Histogram::new(INGEST_BUCKETS),
            agents: Mutex::default(),
            latest: Mutex::default(),
            latest_seeded: AtomicBool::new(false),
            snapshot: RwLock::default(),
        }
    }
}

impl Metrics {
    pub fn record_ingest(&self, accepted: u64, duplicates: u64, rejected: &[&RejectReason]) {
        self.results_ingested.inc_by(accepted);
        self.duplicates.inc_by(duplicates);
        for r in rejected {
            self.rejected.get_or_create(&ReasonLabel { reason: r.label() }).inc();
        }
    }

    /// Notes the newest stored result of each probe an ingest call touched (`latest`, from
    /// the store's answer), with the phases and certificate of the request's `results`.
    pub fn record_latest(&self, agent: &str, latest: &[(String, LastResult)], results: &[ProbeResult]) {
        let mut map = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        for (probe, last) in latest {
            let mut entry = LatestResult::from_last(last);
            if let Some(r) = results.iter().find(|r| r.seq == last.seq && r.probe == *probe && r.at == last.at) {
                entry.phases = r.phases.clone();
                entry.cert_not_after = r.cert_not_after;
            }
            keep_newest(&mut map, (probe.clone(), agent.to_string()), entry);
        }
    }

    /// Records an agent's request at `now_ms`; an offset of `None` keeps the last one known.
    pub fn record_agent(
        &self,
        agent: &str,
        now_ms: i64,
        clock_offset_ms: Option<i64>,
        version: Option<&str>,
        max_clock_offset_ms: i64,
    ) -> ClockChange {
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        let seen = agents.entry(agent.to_string()).or_default();
        let was_off = seen.clock_offset_ms.map(|o| o.unsigned_abs() > max_clock_offset_ms.unsigned_abs());
        seen.last_seen_ms = now_ms;
        if clock_offset_ms.is_some() {
            seen.clock_offset_ms = clock_offset_ms;
        }
        if let Some(v) = version {
            seen.version = Some(v.to_string());
        }
        let is_off = seen.clock_offset_ms.map(|o| o.unsigned_abs() > max_clock_offset_ms.unsigned_abs());
        match (was_off, is_off) {
            (Some(false) | None, Some(true)) => ClockChange::WentOff,
            (Some(true), Some(false)) => ClockChange::CameBack,
            _ => ClockChange::Unchanged,
        }
    }

    /// Every agent seen since start.
    pub fn agents_seen(&self) -> BTreeMap<String, AgentSeen> {
        self.agents.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn observe_ingest_latency(&self, d: Duration) {
        self.ingest_duration.observe(d.as_secs_f64());
    }

    pub fn record_reload(&self, ok: bool) {
        let c = if ok { &self.reloads } else { &self.reload_failures };
        c.inc();
    }

    pub fn results_ingested(&self) -> u64 {
        self.results_ingested.get()
    }

    /// Roughly what the newest results and the snapshot occupy (entries, ids and label
    /// strings; allocator overhead and the hash table's spare capacity left out), for
    /// BENCHMARKS.md.
    pub fn approximate_state_bytes(&self) -> usize {
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let entries: usize = latest
            .keys()
            .map(|(p, a)| {
                std::mem::size_of::<((String, String), LatestResult)>()
                    + p.capacity()
                    + a.capacity()
                    + std::mem::size_of::<Phases>()
            })
            .sum();
        let snapshot = self.snapshot();
        let figures: usize = snapshot
            .agreements
            .iter()
            .map(|a| std::mem::size_of::<AgreementFigures>() + a.agreement.capacity() + a.service.capacity())
            .sum::<usize>()
            + snapshot
                .services
                .iter()
                .map(|(s, _)| std::mem::size_of::<(String, State)>() + s.capacity())
                .sum::<usize>();
        entries + figures
    }

    /// The snapshot the agreement and service families are served from.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Recomputes the snapshot (and, the first time, merges the store's newest results in).
    /// Blocks on the store: call from `spawn_blocking`.
    pub fn refresh(&self, store: &Store, catalogue: &Catalogue, now_ms: i64) -> Result<(), StoreError> {
        if !self.latest_seeded.load(Ordering::Relaxed) {
            let stored = store.last_results()?;
            let mut map = self.latest.lock().unwrap_or_else(|e| e.into_inner());
            for (probe, agent, last) in &stored {
                keep_newest(&mut map, (probe.clone(), agent.clone()), LatestResult::from_last(last));
            }
            self.latest_seeded.store(true, Ordering::Relaxed);
        }
        let snapshot = compute_snapshot(store, catalogue, now_ms);
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// The exposition text at `now_ms`. Reads the store's agent seq state (a few keys per
    /// agent) and its size; everything else is in memory. Call from `spawn_blocking`.
    pub fn render(
        &self,
        store: &Store,
        writes: &crate::disk::Writes,
        config: &CollectorConfig,
        now_ms: i64,
    ) -> Result<String, StoreError> {
        let scrape = Scrape {
            storage_writable: writes.is_writable(),
            storage_free_bytes: writes.free_bytes(),
            agents_seen: self.agents_seen(),
            instances: store.all_agent_instances()?,
            probes: self.probe_series(&config.catalogue, now_ms),
            snapshot: self.snapshot(),
            restatements_pending: restatements_pending(store)?,
            storage_bytes: store.size_on_disk()?,
        };
        Ok(self.encode(scrape))
    }

    fn encode(&self, scrape: Scrape) -> String {
        let mut registry = Registry::default();
        registry.register("probity_results_ingested", "Results stored", self.results_ingested.clone());
        registry.register(
            "probity_results_duplicate",
            "Results acknowledged as already stored",
            self.duplicates.clone(),
        );
        registry.register("probity_results_rejected", "Results refused, by reason", self.rejected.clone());
        registry.register("probity_config_reloads", "Configuration reloads applied", self.reloads.clone());
        registry.register(
            "probity_config_reload_failures",
            "Configuration reloads refused",
            self.reload_failures.clone(),
        );
        registry.register(
            "probity_ingest_duration_seconds",
            "Ingest requests, from body read to durable answer",
            self.ingest_duration.clone(),
        );
        registry.register_collector(Box::new(scrape));
        let mut out = String::with_capacity(64 * 1024);
        prometheus_text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }

    /// The probes whose agent's view is known at `now_ms`, with their service, sorted.
    fn probe_series(&self, catalogue: &Catalogue, now_ms: i64) -> Vec<ProbeSeries> {
        let mut probes: HashMap<&str, (&str, i64)> = HashMap::new();
        for s in &catalogue.services {
            for p in &s.probes {
                probes
                    .insert(p.id.as_str(), (s.id.as_str(), i64::try_from(p.interval.as_millis()).unwrap_or(i64::MAX)));
            }
        }
        let latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<ProbeSeries> = latest
            .iter()
            .filter_map(|((probe, agent), l)| {
                let &(service, interval_ms) = probes.get(probe.as_str())?;
                let view = view_at(Observation { at: l.at, down: l.down }, interval_ms, now_ms);
                Some(ProbeSeries {
                    probe: probe.clone(),
                    agent: agent.clone(),
                    service: service.to_string(),
                    view,
                    latest: l.clone(),
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.probe, &a.agent).cmp(&(&b.probe, &b.agent)));
        out
    }
}

/// Closed periods whose recomputation differs from their latest revision (SPEC §10): one
/// scan of the restatement marks, a few keys.
fn restatements_pending(store: &Store) -> Result<u64, StoreError> {
    let pending = crate::history::restatements::pending_count(store).map_err(|e| match e {
        crate::history::HistoryError::Store(e) => e,
        _ => StoreError::Corrupt { tree: "restatements" },
    })?;
    Ok(pending as u64)
}

/// Replaces the entry when `entry` is newer (a late or re-sent older result never hides a
/// newer one, and the store's copy of a result never replaces the one recorded at ingest,
/// which also holds its phases and certificate).
fn keep_newest(map: &mut HashMap<(String, String), LatestResult>, key: (String, String), entry: LatestResult) {
    match map.get(&key) {
        Some(held) if (held.at, held.seq) >= (entry.at, entry.seq) => {}
        _ => {
            map.insert(key, entry);
        }
    }
}

/// Service states and every agreement's running-period figures at `now_ms`, through
/// `report` (so through `availability`, like every other figure). A service or agreement
/// whose computation fails is left out and logged.
pub fn compute_snapshot(source: &(dyn ReportSource + Sync), catalogue: &Catalogue, now_ms: i64) -> Snapshot {
    let started = tokio::time::Instant::now();
    let mut services = Vec::with_capacity(catalogue.services.len());
    for s in &catalogue.services {
        match report::current_state(source, s, now_ms) {
            Ok((state, _since)) => services.push((s.id.to_string(), state)),
            Err(e) => tracing::warn!(service = %s.id, error = %e, "service state for /metrics failed"),
        }
    }
    let mut agreements = Vec::with_capacity(catalogue.agreements.len());
    for (a, r) in
        catalogue.agreements.iter().zip(report::agreement_reports(source, catalogue, PeriodQuery::default(), now_ms))
    {
        match r {
            Ok(r) => agreements.push(AgreementFigures::of(&r)),
            Err(e) => tracing::warn!(agreement = %a.id, error = %e, "agreement figures for /metrics failed"),
        }
    }
    Snapshot { computed_at_ms: Some(now_ms), took: started.elapsed(), services, agreements }
}

/// One (probe, agent) of the current catalogue with a newest result.
#[derive(Debug)]
struct ProbeSeries {
    probe: String,
    agent: String,
    service: String,
    /// `None`: unknown (stale), so only the last-result timestamp is shown.
    view: Option<Option<ErrorKind>>,
    latest: LatestResult,
}

/// What one scrape shows beside the registered counters, gathered before encoding.
#[derive(Debug)]
struct Scrape {
    agents_seen: BTreeMap<String, AgentSeen>,
    instances: Vec<AgentInstances>,
    probes: Vec<ProbeSeries>,
    snapshot: Arc<Snapshot>,
    restatements_pending: u64,
    storage_bytes: u64,
    storage_writable: bool,
    /// `None` before the first look at the filesystem.
    storage_free_bytes: Option<u64>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut encoder;
        self.encode_agents(e)?;
        self.encode_probes(e)?;
        self.encode_services_and_agreements(e)?;
        gauge(
            e,
            "probity_restatements_pending",
            "Closed periods whose recomputation differs from their latest revision",
            [(NO_LABELS, self.restatements_pending as i64)],
        )?;
        gauge(e, "probity_storage_bytes", "Size of the database on disk", [(NO_LABELS, self.storage_bytes as i64)])?;
        gauge(
            e,
            "probity_storage_writable",
            "1 while ingest takes writes, 0 while they are suspended (low disk space or a write error; /readyz says why)",
            [(NO_LABELS, i64::from(self.storage_writable))],
        )?;
        if let Some(free) = self.storage_free_bytes {
            gauge(
                e,
                "probity_storage_free_bytes",
                "Free space on data_dir's filesystem (for the collector's user)",
                [(NO_LABELS, free as i64)],
            )?;
        }
        Ok(())
    }
}

const NO_LABELS: [(&str, &str); 0] = [];

impl Scrape {
    fn encode_agents(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let seen = &self.agents_seen;
        gauge(
            e,
            "probity_agent_last_seen_timestamp_seconds",
            "Last ingest request of each agent (Unix seconds)",
            seen.iter().map(|(a, s)| ([("agent", a.as_str())], s.last_seen_ms as f64 / 1000.0)),
        )?;
        gauge(
            e,
            "probity_agent_clock_offset_seconds",
            "The agent's clock minus the collector's, as the agent last estimated it",
            seen.iter().filter_map(|(a, s)| s.clock_offset_ms.map(|ms| ([("agent", a.as_str())], ms as f64 / 1000.0))),
        )?;
        let agents = &self.instances;
        counter(
            e,
            "probity_agent_resets",
            "Agent resets: new agent instances (a new or deleted spool) after the first",
            agents.iter().map(|a| ([("agent", a.agent.as_str())], a.resets())),
        )?;
        counter(
            e,
            "probity_agent_lost_results",
            "Results missing from an agent's seqs (gaps), over all its instances",
            agents.iter().map(|a| ([("agent", a.agent.as_str())], a.lost())),
        )?;
        // The gauge of the first version, kept for the queries written against it.
        gauge(
            e,
            "probity_agent_lost_results",
            "Results missing from an agent's seq (gaps); prefer probity_agent_lost_results_total",
            agents.iter().map(|a| ([("agent", a.agent.as_str())], a.summary().lost as i64)),
        )?;
        gauge(
            e,
            "probity_agent_highest_seq",
            "Highest seq received from an agent",
            agents.iter().map(|a| ([("agent", a.agent.as_str())], a.summary().highest as i64)),
        )
    }

    fn encode_probes(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let labels = probe_labels;
        let known = || self.probes.iter().filter_map(|p| p.view.map(|down| (p, down)));
        gauge(
            e,
            "probity_probe_success",
            "The agent's current view of the probe (1 up, 0 down); absent while unknown (no result within 2 intervals)",
            known().map(|(p, down)| (labels(p), i64::from(down.is_none()))),
        )?;
        gauge(
            e,
            "probity_probe_duration_seconds",
            "Phases of the latest result, each from the probe's start (total: its duration); absent while unknown",
            known().flat_map(|(p, _)| {
                let l = &p.latest;
                let phases = l.phases.clone().unwrap_or_default();
                [
                    ("dns", phases.dns_us),
                    ("connect", phases.connect_us),
                    ("tls", phases.tls_us),
                    ("first_byte", phases.first_byte_us),
                    ("total", Some(l.duration_us)),
                ]
                .into_iter()
                .filter_map(move |(phase, us)| {
                    let [probe, agent, service] = labels(p);
                    us.map(|us| ([probe, agent, service, ("phase", phase)], us as f64 / 1e6))
                })
            }),
        )?;
        gauge(
            e,
            "probity_probe_http_status_code",
            "Status code of the latest result; absent while unknown",
            known().filter_map(|(p, _)| p.latest.status.map(|s| (labels(p), i64::from(s)))),
        )?;
        gauge(
            e,
            "probity_probe_ssl_earliest_cert_expiry",
            "Expiry of the earliest-expiring certificate of the latest result's chain (Unix seconds); absent while unknown",
            known().filter_map(|(p, _)| p.latest.cert_not_after.map(|s| (labels(p), s))),
        )?;
        gauge(
            e,
            "probity_probe_last_result_timestamp_seconds",
            "Start of the latest result (Unix seconds, agent clock), shown even once stale",
            self.probes.iter().map(|p| (labels(p), p.latest.at as f64 / 1000.0)),
        )
    }

    fn encode_services_and_agreements(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = &self.snapshot;
        gauge(
            e,
            "probity_service_state",
            "1 for the service's current state, 0 for the others",
            snap.services.iter().flat_map(|(service, state)| {
                [State::Up, State::Down, State::Unknown]
                    .map(|s| ([("service", service.as_str()), ("state", s.as_str())], i64::from(s == *state)))
            }),
        )?;
        let labels = agreement_labels;
        type Figure = fn(&AgreementFigures) -> Option<f64>;
        let ratios: [(&str, &str, Figure); 4] = [
            (
                "probity_agreement_availability_ratio",
                "Availability of the running period, as in its report; absent while null",
                |a| a.availability_ratio,
            ),
            ("probity_agreement_target_ratio", "The agreement's availability target", |a| Some(a.target_ratio)),
            (
                "probity_agreement_coverage_ratio",
                "Coverage of the running period (coverage_percent / 100); absent while null",
                |a| a.coverage_ratio,
            ),
            (
                "probity_agreement_error_budget_remaining_ratio",
                "Error budget remaining / error budget of the running period; absent without a budget",
                |a| a.error_budget_remaining_ratio,
            ),
        ];
        for (name, help, figure) in ratios {
            gauge(e, name, help, snap.agreements.iter().filter_map(|a| figure(a).map(|v| (labels(a), v))))?;
        }
        gauge(
            e,
            "probity_agreement_burn_rate",
            "Error budget consumed in the last window of agreed service time, relative to an even spend (1: the budget lasts the period exactly)",
            snap.agreements.iter().flat_map(|a| {
                BURN_WINDOWS.iter().zip(a.burn_rates).filter_map(move |((window, _), rate)| {
                    let [agreement, kind, service] = labels(a);
                    rate.map(|r| ([agreement, kind, service, ("window", *window)], r))
                })
            }),
        )?;
        gauge(
            e,
            "probity_agreement_verdict",
            "1 for the running period's verdict, 0 for the others",
            snap.agreements.iter().flat_map(|a| {
                [Verdict::Met, Verdict::Breached, Verdict::InsufficientData].map(|v| {
                    let [agreement, kind, service] = labels(a);
                    ([agreement, kind, service, ("verdict", v.as_str())], i64::from(v == a.verdict))
                })
            }),
        )?;
        let computed = snap.computed_at_ms.map(|ms| (NO_LABELS, ms as f64 / 1000.0));
        gauge(
            e,
            "probity_metrics_refresh_timestamp_seconds",
            "When the service and agreement figures were last computed (Unix seconds)",
            computed,
        )?;
        let took = snap.computed_at_ms.map(|_| (NO_LABELS, snap.took.as_secs_f64()));
        gauge(e, "probity_metrics_refresh_duration_seconds", "How long computing them took", took)
    }
}

/// A probe series' labels, borrowed (a scrape writes ~10 per probe and agent).
fn probe_labels(p: &ProbeSeries) -> [(&'static str, &str); 3] {
    [("probe", p.probe.as_str()), ("agent", p.agent.as_str()), ("service", p.service.as_str())]
}

fn agreement_labels(a: &AgreementFigures) -> [(&'static str, &str); 3] {
    [("agreement", a.agreement.as_str()), ("kind", a.kind), ("service", a.service.as_str())]
}

/// One gauge family: its HELP and TYPE, then a line per series.
fn gauge<L: EncodeLabelSet, V: EncodeGaugeValue>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        family.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

/// One counter family (`name` without `_total`: the encoder adds it).
fn counter<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family: MetricEncoder = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probity_config::wire::ResultError;

    const SERVICE_TOML: &str = "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"d\"\n\n[[agents]]\nid = \"a1\"\ntoken_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n\n[[services]]\nid = \"shop\"\nname = \"Shop\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"web\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n";

    fn catalogue() -> Catalogue {
        probity_config::parse_collector_config("test.toml", SERVICE_TOML).unwrap().catalogue
    }

    fn scrape(m: &Metrics, catalogue: &Catalogue, now_ms: i64) -> String {
        m.encode(Scrape {
            agents_seen: m.agents_seen(),
            instances: Vec::new(),
            probes: m.probe_series(catalogue, now_ms),
            snapshot: m.snapshot(),
            restatements_pending: 0,
            storage_bytes: 0,
            storage_writable: true,
            storage_free_bytes: None,
        })
    }

    fn stored(at: i64, seq: u64, down: Option<ErrorKind>) -> LastResult {
        LastResult { at, seq, value: crate::keys::RawValue { down, duration_us: 48_210, status: Some(503) } }
    }

    #[test]
    fn a_probe_series_shows_the_view_with_its_phases_and_disappears_once_stale() {
        let m = Metrics::default();
        let result = ProbeResult {
            seq: 7,
            probe: "web".into(),
            at: 100_000,
            duration_us: 48_210,
            ok: false,
            status: Some(503),
            phases: Some(Phases {
                dns_us: Some(812),
                connect_us: Some(1020),
                tls_us: None,
                first_byte_us: Some(47_000),
            }),
            error: Some(ResultError { kind: ErrorKind::Status, message: "503".into() }),
            cert_not_after: Some(1_800_000_000),
        };
        m.record_latest("a1", &[("web".into(), stored(100_000, 7, Some(ErrorKind::Status)))], &[result]);
        let labels = "probe=\"web\",agent=\"a1\",service=\"shop\"";
        let text = scrape(&m, &catalogue(), 119_999);
        for line in [
            format!("probity_probe_success{{{labels}}} 0"),
            format!("probity_probe_duration_seconds{{{labels},phase=\"dns\"}} 0.000812"),
            format!("probity_probe_duration_seconds{{{labels},phase=\"connect\"}} 0.00102"),
            format!("probity_probe_duration_seconds{{{labels},phase=\"first_byte\"}} 0.047"),
            format!("probity_probe_duration_seconds{{{labels},phase=\"total\"}} 0.04821"),
            format!("probity_probe_http_status_code{{{labels}}} 503"),
            format!("probity_probe_ssl_earliest_cert_expiry{{{labels}}} 1800000000"),
            format!("probity_probe_last_result_timestamp_seconds{{{labels}}} 100.0"),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("phase=\"tls\""), "a phase the result lacks is not shown:\n{text}");
        // Two intervals (20 s) after the result the view is unknown: every view series goes,
        // only the last result's timestamp stays.
        let stale = scrape(&m, &catalogue(), 120_000);
        for family in [
            "probity_probe_success{",
            "probity_probe_duration_seconds{",
            "probity_probe_http_status_code{",
            "probity_probe_ssl_earliest_cert_expiry{",
        ] {
            assert!(!stale.contains(family), "{family} still shown when stale:\n{stale}");
        }
        assert!(stale.contains(&format!("probity_probe_last_result_timestamp_seconds{{{labels}}} 100.0")), "{stale}");
    }

    #[test]
    fn an_older_result_never_hides_a_newer_one() {
        let m = Metrics::default();
        m.record_latest("a1", &[("web".into(), stored(100_000, 7, None))], &[]);
        m.record_latest("a1", &[("web".into(), stored(90_000, 3, Some(ErrorKind::Timeout)))], &[]);
        let text = scrape(&m, &catalogue(), 101_000);
        assert!(text.contains("probity_probe_success{probe=\"web\",agent=\"a1\",service=\"shop\"} 1"), "{text}");
    }

    #[test]
    fn regression_seeding_from_the_store_keeps_the_phases_recorded_at_ingest() {
        // The store's `last` tree holds no phases: merging it in at the first refresh must
        // not replace the same result as ingest recorded it (the bench showed every phase
        // series gone after the first refresh).
        let m = Metrics::default();
        let mut result = ProbeResult {
            seq: 7,
            probe: "web".into(),
            at: 100_000,
            duration_us: 48_210,
            ok: true,
            status: Some(200),
            phases: Some(Phases { dns_us: Some(812), ..Phases::default() }),
            error: None,
            cert_not_after: None,
        };
        m.record_latest("a1", &[("web".into(), stored(100_000, 7, None))], std::slice::from_ref(&result));
        let mut map = m.latest.lock().unwrap();
        keep_newest(&mut map, ("web".into(), "a1".into()), LatestResult::from_last(&stored(100_000, 7, None)));
        assert_eq!(map[&("web".to_string(), "a1".to_string())].phases, result.phases.take());
    }

    #[test]
    fn agreement_families_carry_their_labels_and_leave_null_figures_out() {
        let m = Metrics::default();
        let figures = AgreementFigures {
            agreement: "shop-sla".into(),
            kind: "sla",
            service: "shop".into(),
            availability_ratio: Some(0.995),
            target_ratio: 0.999,
            coverage_ratio: None,
            error_budget_remaining_ratio: Some(-4.0),
            burn_rates: [Some(40.0), Some(6.5), Some(3.25), None, None, Some(1.0)],
            verdict: Verdict::Breached,
        };
        *m.snapshot.write().unwrap() = Arc::new(Snapshot {
            computed_at_ms: Some(1_000),
            took: Duration::from_millis(3),
            services: vec![("shop".into(), State::Down)],
            agreements: vec![figures],
        });
        let text = scrape(&m, &catalogue(), 0);
        let labels = "agreement=\"shop-sla\",kind=\"sla\",service=\"shop\"";
        for line in [
            "probity_service_state{service=\"shop\",state=\"up\"} 0".to_string(),
            "probity_service_state{service=\"shop\",state=\"down\"} 1".to_string(),
            "probity_service_state{service=\"shop\",state=\"unknown\"} 0".to_string(),
            format!("probity_agreement_availability_ratio{{{labels}}} 0.995"),
            format!("probity_agreement_target_ratio{{{labels}}} 0.999"),
            format!("probity_agreement_error_budget_remaining_ratio{{{labels}}} -4.0"),
            format!("probity_agreement_burn_rate{{{labels},window=\"5m\"}} 40.0"),
            format!("probity_agreement_burn_rate{{{labels},window=\"30m\"}} 6.5"),
            format!("probity_agreement_burn_rate{{{labels},window=\"1h\"}} 3.25"),
            format!("probity_agreement_burn_rate{{{labels},window=\"3d\"}} 1.0"),
            format!("probity_agreement_verdict{{{labels},verdict=\"breached\"}} 1"),
            format!("probity_agreement_verdict{{{labels},verdict=\"met\"}} 0"),
            format!("probity_agreement_verdict{{{labels},verdict=\"insufficient_data\"}} 0"),
            "probity_metrics_refresh_timestamp_seconds 1.0".to_string(),
        ] {
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("probity_agreement_coverage_ratio{"), "a null coverage is absent:\n{text}");
        assert!(!text.contains("window=\"6h\""), "a null burn rate is absent:\n{text}");
    }
}
