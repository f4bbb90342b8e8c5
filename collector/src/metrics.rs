//! Collector metrics and their Prometheus text exposition (`/metrics`), with
//! blackbox-style names under a `probity_` prefix. Counters live here; per-probe and
//! per-agent state is read from the store at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::ingest::RejectReason;
use crate::store::{Store, StoreError};

/// Upper bounds (seconds) of the ingest latency histogram.
const INGEST_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
pub struct Metrics {
    results_ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: [AtomicU64; RejectReason::LABELS.len()],
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    ingest: Mutex<IngestLatency>,
    /// What each agent's latest ingest request said about it.
    agents: Mutex<BTreeMap<String, AgentSeen>>,
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

#[derive(Default)]
struct IngestLatency {
    buckets: [u64; INGEST_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Metrics {
    pub fn record_ingest(&self, accepted: u64, duplicates: u64, rejected: &[&RejectReason]) {
        self.results_ingested.fetch_add(accepted, Ordering::Relaxed);
        self.duplicates.fetch_add(duplicates, Ordering::Relaxed);
        for r in rejected {
            let i = RejectReason::LABELS.iter().position(|l| *l == r.label()).expect("every label listed");
            self.rejected[i].fetch_add(1, Ordering::Relaxed);
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
        let s = d.as_secs_f64();
        let mut h = self.ingest.lock().unwrap_or_else(|e| e.into_inner());
        for (i, bound) in INGEST_BUCKETS.iter().enumerate() {
            if s <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum_seconds += s;
    }

    pub fn record_reload(&self, ok: bool) {
        let c = if ok { &self.reloads } else { &self.reload_failures };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn results_ingested(&self) -> u64 {
        self.results_ingested.load(Ordering::Relaxed)
    }

    /// The exposition text. Blocks on the store: call from `spawn_blocking`.
    pub fn render(&self, store: &Store) -> Result<String, StoreError> {
        let mut out = String::with_capacity(4096);
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter(
            &mut out,
            "probity_results_ingested_total",
            "Results stored.",
            self.results_ingested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "probity_results_duplicate_total",
            "Results acknowledged as already stored.",
            self.duplicates.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP probity_results_rejected_total Results refused, by reason.\n# TYPE probity_results_rejected_total counter"
        );
        for (label, c) in RejectReason::LABELS.iter().zip(&self.rejected) {
            let _ = writeln!(out, "probity_results_rejected_total{{reason=\"{label}\"}} {}", c.load(Ordering::Relaxed));
        }
        counter(
            &mut out,
            "probity_config_reloads_total",
            "Configuration reloads applied.",
            self.reloads.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "probity_config_reload_failures_total",
            "Configuration reloads refused.",
            self.reload_failures.load(Ordering::Relaxed),
        );

        {
            let h = self.ingest.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                out,
                "# HELP probity_ingest_duration_seconds Ingest requests, from body read to durable answer.\n# TYPE probity_ingest_duration_seconds histogram"
            );
            for (bound, n) in INGEST_BUCKETS.iter().zip(h.buckets) {
                let _ = writeln!(out, "probity_ingest_duration_seconds_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "probity_ingest_duration_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(
                out,
                "probity_ingest_duration_seconds_sum {}\nprobity_ingest_duration_seconds_count {}",
                h.sum_seconds, h.count
            );
        }

        let _ = writeln!(
            out,
            "# HELP probity_agent_last_seen_timestamp_seconds Last ingest request of each agent.\n# TYPE probity_agent_last_seen_timestamp_seconds gauge"
        );
        let agents = self.agents_seen();
        for (agent, seen) in &agents {
            let seconds = seen.last_seen_ms as f64 / 1000.0;
            let _ = writeln!(out, "probity_agent_last_seen_timestamp_seconds{{agent=\"{agent}\"}} {seconds}");
        }
        let _ = writeln!(
            out,
            "# HELP probity_agent_clock_offset_seconds The agent's clock minus the collector's, as the agent last estimated it.\n# TYPE probity_agent_clock_offset_seconds gauge"
        );
        for (agent, seen) in &agents {
            if let Some(ms) = seen.clock_offset_ms {
                let _ = writeln!(out, "probity_agent_clock_offset_seconds{{agent=\"{agent}\"}} {}", ms as f64 / 1000.0);
            }
        }
        let agents = store.all_agent_instances()?;
        let _ = writeln!(
            out,
            "# HELP probity_agent_resets_total Agent resets: new agent instances (a new or deleted spool) after the first.\n# TYPE probity_agent_resets_total counter"
        );
        for a in &agents {
            let _ = writeln!(out, "probity_agent_resets_total{{agent=\"{}\"}} {}", a.agent, a.resets());
        }
        let _ = writeln!(
            out,
            "# HELP probity_agent_lost_results_total Results missing from an agent's seqs (gaps), over all its instances.\n# TYPE probity_agent_lost_results_total counter"
        );
        for a in &agents {
            let _ = writeln!(out, "probity_agent_lost_results_total{{agent=\"{}\"}} {}", a.agent, a.lost());
        }
        let seqs: Vec<(String, crate::store::SeqSummary)> =
            agents.iter().map(|a| (a.agent.clone(), a.summary())).collect();
        let _ = writeln!(
            out,
            "# HELP probity_agent_lost_results Results missing from an agent's seq (gaps).\n# TYPE probity_agent_lost_results gauge"
        );
        for (agent, s) in &seqs {
            let _ = writeln!(out, "probity_agent_lost_results{{agent=\"{agent}\"}} {}", s.lost);
        }
        let _ = writeln!(
            out,
            "# HELP probity_agent_highest_seq Highest seq received from an agent.\n# TYPE probity_agent_highest_seq gauge"
        );
        for (agent, s) in &seqs {
            let _ = writeln!(out, "probity_agent_highest_seq{{agent=\"{agent}\"}} {}", s.highest);
        }

        let last = store.last_results()?;
        let _ = writeln!(
            out,
            "# HELP probity_probe_success Outcome of the latest result (1 up, 0 down).\n# TYPE probity_probe_success gauge"
        );
        for (probe, agent, l) in &last {
            let _ = writeln!(
                out,
                "probity_probe_success{{probe=\"{probe}\",agent=\"{agent}\"}} {}",
                u8::from(l.value.down.is_none())
            );
        }
        let _ = writeln!(
            out,
            "# HELP probity_probe_duration_seconds Duration of the latest result.\n# TYPE probity_probe_duration_seconds gauge"
        );
        for (probe, agent, l) in &last {
            let _ = writeln!(
                out,
                "probity_probe_duration_seconds{{probe=\"{probe}\",agent=\"{agent}\"}} {}",
                l.value.duration_us as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP probity_probe_last_result_timestamp_seconds Start of the latest result.\n# TYPE probity_probe_last_result_timestamp_seconds gauge"
        );
        for (probe, agent, l) in &last {
            let _ = writeln!(
                out,
                "probity_probe_last_result_timestamp_seconds{{probe=\"{probe}\",agent=\"{agent}\"}} {}",
                l.at as f64 / 1000.0
            );
        }
        let pending = crate::history::restatements::pending_count(store).map_err(|e| match e {
            crate::history::HistoryError::Store(e) => e,
            _ => StoreError::Corrupt { tree: "restatements" },
        })?;
        let _ = writeln!(
            out,
            "# HELP probity_restatements_pending Closed periods whose recomputation differs from their latest revision.\n# TYPE probity_restatements_pending gauge\nprobity_restatements_pending {pending}"
        );
        let _ = writeln!(
            out,
            "# HELP probity_storage_bytes Size of the database on disk.\n# TYPE probity_storage_bytes gauge\nprobity_storage_bytes {}",
            store.size_on_disk()?
        );
        Ok(out)
    }
}
