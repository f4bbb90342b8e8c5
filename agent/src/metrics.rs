//! Self-metrics: counters the agent keeps about itself, and the Prometheus text
//! endpoint (`--metrics-listen`) that serves them. The counters are plain atomics (the
//! scheduler, shipper and spool bump them on their hot paths); a scrape reads them into one
//! `prometheus-client` collector, which writes the text format (0.0.4) with its escaping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::debug;

use crate::spool::{Spool, SpoolStats};

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
        let load = |c: &AtomicU64| c.load(Relaxed);
        let scrape = Scrape {
            probes_run: KINDS.iter().copied().zip(self.probes_run.iter().map(load)).collect(),
            failures: ErrorKind::ALL.iter().map(|k| k.as_str()).zip(self.failures.iter().map(load)).collect(),
            skipped_ticks: load(&self.skipped_ticks),
            delivered: load(&self.delivered),
            rejected: load(&self.rejected),
            delivery_failures: load(&self.delivery_failures),
            delivery_lag_seconds: load(&self.delivery_lag_ms) as f64 / 1000.0,
            assigned_probes: load(&self.assigned_probes),
            spool_errors: load(&self.spool_errors),
            spool: spool.stats(),
            next_seq: spool.next_seq(),
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(scrape));
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &registry).expect("writing to a String cannot fail");
        out
    }
}

/// The values of one scrape, read from the atomics and the spool before encoding.
#[derive(Debug)]
struct Scrape {
    probes_run: Vec<(&'static str, u64)>,
    failures: Vec<(&'static str, u64)>,
    skipped_ticks: u64,
    delivered: u64,
    rejected: u64,
    delivery_failures: u64,
    delivery_lag_seconds: f64,
    assigned_probes: u64,
    spool_errors: u64,
    spool: SpoolStats,
    next_seq: u64,
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let by_kind = |e: &mut DescriptorEncoder, name: &str, help: &str, values: &[(&str, u64)]| {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (kind, v) in values {
                ConstCounter::new(*v).encode(family.encode_family(&[("kind", *kind)])?)?;
            }
            Ok::<(), std::fmt::Error>(())
        };
        by_kind(&mut e, "probity_agent_probes_run", "Probe runs completed, by probe kind", &self.probes_run)?;
        by_kind(&mut e, "probity_agent_probe_failures", "Failed probe runs, by error kind", &self.failures)?;
        let counters = [
            (
                "probity_agent_skipped_ticks",
                "Scheduled runs skipped because the previous run of the probe was still going",
                self.skipped_ticks,
            ),
            (
                "probity_agent_spool_dropped_results",
                "Undelivered results dropped because the spool reached spool_max",
                self.spool.dropped,
            ),
            ("probity_agent_spool_errors", "Spool writes that failed", self.spool_errors),
            ("probity_agent_results_delivered", "Results the collector acknowledged", self.delivered),
            ("probity_agent_results_rejected", "Results the collector acknowledged as rejected", self.rejected),
            (
                "probity_agent_delivery_failures",
                "Ingest requests that failed (network error or non-200)",
                self.delivery_failures,
            ),
        ];
        for (name, help, v) in counters {
            ConstCounter::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let gauges = [
            ("probity_agent_spool_depth", "Results spooled and not yet acknowledged", self.spool.depth as i64),
            ("probity_agent_spool_bytes", "Bytes of spool segment files on disk", self.spool.bytes as i64),
            ("probity_agent_next_seq", "The seq the next result will get", self.next_seq as i64),
            ("probity_agent_assigned_probes", "Probes in the current assignment", self.assigned_probes as i64),
        ];
        for (name, help, v) in gauges {
            ConstGauge::new(v).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        ConstGauge::new(self.delivery_lag_seconds).encode(e.encode_descriptor(
            "probity_agent_delivery_lag_seconds",
            "Age of the oldest result not yet acknowledged",
            None,
            MetricType::Gauge,
        )?)
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
