//! Self-metrics: counters the agent keeps about itself, and the Prometheus text
//! endpoint (`--metrics-listen`) that serves them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use tokio::net::TcpListener;
use tracing::debug;

use crate::spool::Spool;

const KINDS: [&str; ProbeSpec::KINDS.len()] = ProbeSpec::KINDS;

#[derive(Default)]
pub struct Metrics {
    probes_run: [AtomicU64; KINDS.len()],
    failures: [AtomicU64; ErrorKind::ALL.len()],
    pub skipped_ticks: AtomicU64,
    pub delivered: AtomicU64,
    pub rejected: AtomicU64,
    pub delivery_failures: AtomicU64,
    /// Age of the oldest undelivered result, milliseconds (0 when none wait).
    pub delivery_lag_ms: AtomicU64,
    pub assigned_probes: AtomicU64,
    pub spool_errors: AtomicU64,
}

impl Metrics {
    pub fn probe_ran(&self, kind: &str, failure: Option<ErrorKind>) {
        if let Some(i) = KINDS.iter().position(|k| *k == kind) {
            self.probes_run[i].fetch_add(1, Relaxed);
        }
        if let Some(kind) = failure {
            let i = ErrorKind::ALL.iter().position(|k| *k == kind).expect("ALL lists every kind");
            self.failures[i].fetch_add(1, Relaxed);
        }
    }

    pub fn probes_run_total(&self) -> u64 {
        self.probes_run.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self, spool: &Spool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP probity_agent_probes_run_total Probe runs completed, by probe kind.\n# TYPE probity_agent_probes_run_total counter"
        );
        for (i, k) in KINDS.iter().enumerate() {
            let _ =
                writeln!(out, "probity_agent_probes_run_total{{kind=\"{k}\"}} {}", self.probes_run[i].load(Relaxed));
        }
        let simple = |out: &mut String, name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let _ = writeln!(
            out,
            "# HELP probity_agent_probe_failures_total Failed probe runs, by error kind.\n# TYPE probity_agent_probe_failures_total counter"
        );
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            let _ =
                writeln!(out, "probity_agent_probe_failures_total{{kind=\"{k}\"}} {}", self.failures[i].load(Relaxed));
        }
        let stats = spool.stats();
        let load = |c: &AtomicU64| c.load(Relaxed).to_string();
        simple(
            &mut out,
            "probity_agent_skipped_ticks_total",
            "counter",
            "Scheduled runs skipped because the previous run of the probe was still going.",
            load(&self.skipped_ticks),
        );
        simple(
            &mut out,
            "probity_agent_spool_depth",
            "gauge",
            "Results spooled and not yet acknowledged.",
            stats.depth.to_string(),
        );
        simple(
            &mut out,
            "probity_agent_spool_bytes",
            "gauge",
            "Bytes of spool segment files on disk.",
            stats.bytes.to_string(),
        );
        simple(
            &mut out,
            "probity_agent_spool_dropped_results_total",
            "counter",
            "Undelivered results dropped because the spool reached spool_max.",
            stats.dropped.to_string(),
        );
        simple(
            &mut out,
            "probity_agent_spool_errors_total",
            "counter",
            "Spool writes that failed.",
            load(&self.spool_errors),
        );
        simple(
            &mut out,
            "probity_agent_results_delivered_total",
            "counter",
            "Results the collector acknowledged.",
            load(&self.delivered),
        );
        simple(
            &mut out,
            "probity_agent_results_rejected_total",
            "counter",
            "Results the collector acknowledged as rejected.",
            load(&self.rejected),
        );
        simple(
            &mut out,
            "probity_agent_delivery_failures_total",
            "counter",
            "Ingest requests that failed (network error or non-200).",
            load(&self.delivery_failures),
        );
        simple(
            &mut out,
            "probity_agent_delivery_lag_seconds",
            "gauge",
            "Age of the oldest result not yet acknowledged.",
            format!("{:.3}", self.delivery_lag_ms.load(Relaxed) as f64 / 1000.0),
        );
        simple(
            &mut out,
            "probity_agent_next_seq",
            "gauge",
            "The seq the next result will get.",
            spool.next_seq().to_string(),
        );
        simple(
            &mut out,
            "probity_agent_assigned_probes",
            "gauge",
            "Probes in the current assignment.",
            load(&self.assigned_probes),
        );
        out
    }
}

/// Serves `GET /metrics` (any path, in fact) until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, spool: Arc<Spool>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                debug!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, spool) = (metrics.clone(), spool.clone());
        tokio::spawn(async move {
            let service = service_fn(move |_req| {
                let body = metrics.render(&spool);
                async move {
                    let response = http::Response::builder()
                        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
                        .body(Full::new(Bytes::from(body)))
                        .expect("static headers");
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                debug!(%peer, error = %e, "metrics connection ended");
            }
        });
    }
}

/// Binds the metrics listener (so a bad address fails at start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
