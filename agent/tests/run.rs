//! The agent's run loop in-process against a fake collector: delivery in seq order,
//! an outage of the collector (503) bridged by the spool, assignment changes applied
//! live, the cached assignment used when the token is refused, and self-metrics.

use probity_tests as support;

use std::path::Path;
use std::time::Duration;

use probity_agent::RunOptions;
use probity_config::AgentConfig;
use serde_json::json;
use support::FakeCollector;
use tokio::sync::oneshot;

fn config(collector: &FakeCollector, spool: &Path) -> AgentConfig {
    let text = format!(
        "id = \"lon-1\"\ncollector = \"{}\"\ntoken = \"{}\"\nspool_dir = \"{}\"\n",
        collector.url,
        support::TOKEN,
        spool.display()
    );
    probity_config::parse_agent_config("agent.toml", &text).unwrap()
}

fn fast() -> RunOptions {
    RunOptions {
        assignment_interval: Some(Duration::from_millis(200)),
        auth_retry: Some(Duration::from_millis(200)),
        retry_initial: Some(Duration::from_millis(100)),
        retry_max: Some(Duration::from_millis(400)),
        ..Default::default()
    }
}

/// Starts the agent; the returned sender stops it, the handle ends when it has.
fn start(
    config: AgentConfig,
    options: RunOptions,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), probity_agent::AgentError>>) {
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(probity_agent::run(config, options, async move {
        let _ = rx.await;
    }));
    (tx, handle)
}

fn assert_contiguous(seqs: &[u64]) {
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, seqs[0] + i as u64, "seqs have a gap: {seqs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_survive_a_collector_outage_and_arrive_in_order() {
    let tcp = support::tcp_target().await;
    let closed = support::closed_port();
    let collector = FakeCollector::start(
        "lon-1",
        vec![
            support::probe("db", 50, 40, json!({"kind": "tcp", "target": tcp.to_string()})),
            support::probe("gone", 50, 40, json!({"kind": "tcp", "target": closed.to_string()})),
        ],
    )
    .await;
    collector.with(|s| s.unavailable = true);
    let spool = tempfile::tempdir().unwrap();
    let (stop, agent) = start(config(&collector, spool.path()), fast());
    collector.wait_until("three refused deliveries", |s| s.failed_ingests >= 3).await;
    collector.with(|s| s.unavailable = false);
    collector.wait_until("40 results delivered", |s| s.results.len() >= 40).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    let by_seq = collector.distinct_seqs();
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    assert_eq!(seqs[0], 1);
    assert_contiguous(&seqs);
    // First arrivals come in seq order.
    let arrivals: Vec<u64> = collector.with(|s| s.results.iter().map(|r| r.seq).collect());
    let mut firsts = Vec::new();
    for s in arrivals {
        if !firsts.contains(&s) {
            firsts.push(s);
        }
    }
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "{firsts:?}");
    let down: Vec<_> = by_seq.values().filter(|r| r.probe == "gone").collect();
    assert!(!down.is_empty());
    assert!(down.iter().all(|r| !r.ok && r.error.as_ref().unwrap().kind.as_str() == "connect"));
    assert!(by_seq.values().filter(|r| r.probe == "db").all(|r| r.ok));
    assert_eq!(collector.with(|s| s.encodings.keys().cloned().collect::<Vec<_>>()), ["zstd"]);

    // Shutdown flushed everything: nothing is left in the spool, and the next start
    // continues the seq.
    let reopened = probity_agent::spool::Spool::open(spool.path(), 1 << 30).unwrap();
    assert_eq!(reopened.stats().depth, 0);
    assert_eq!(reopened.next_seq(), seqs.last().unwrap() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_keeps_every_result_spooled_and_is_retried_no_sooner_than_the_hint() {
    let tcp = support::tcp_target().await;
    let collector = FakeCollector::start(
        "lon-1",
        vec![support::probe("db", 50, 40, json!({"kind": "tcp", "target": tcp.to_string()}))],
    )
    .await;
    // A collector with a full disk: 503, come back in 1 s (longer than the agent's own
    // retry_max of 400 ms here, so only the hint can explain the waits).
    collector.with(|s| {
        s.unavailable = true;
        s.retry_after = Some(1);
    });
    let spool = tempfile::tempdir().unwrap();
    let (stop, agent) = start(config(&collector, spool.path()), fast());
    collector.wait_until("three refused deliveries", |s| s.failed_ingests >= 3).await;
    let refused: Vec<_> = collector.with(|s| s.ingest_times.clone());
    for pair in refused.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::from_secs(1), "retried before Retry-After: {:?}", pair[1] - pair[0]);
    }
    collector.with(|s| s.unavailable = false);
    collector.wait_until("20 results delivered", |s| s.results.len() >= 20).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();

    // Nothing was dropped while refused: seqs 1.. all arrived, and the spool is empty.
    let seqs: Vec<u64> = collector.distinct_seqs().keys().copied().collect();
    assert_eq!(seqs[0], 1);
    assert_contiguous(&seqs);
    let reopened = probity_agent::spool::Spool::open(spool.path(), 1 << 30).unwrap();
    assert_eq!(reopened.stats().depth, 0);
    assert_eq!(reopened.next_seq(), seqs.last().unwrap() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignment_changes_apply_without_a_restart() {
    let tcp = support::tcp_target().await;
    let target = json!({"kind": "tcp", "target": tcp.to_string()});
    let collector = FakeCollector::start("lon-1", vec![support::probe("a", 50, 40, target.clone())]).await;
    let spool = tempfile::tempdir().unwrap();
    let options = RunOptions { compression: probity_agent::Compression::Gzip, ..fast() };
    let (stop, agent) = start(config(&collector, spool.path()), options);
    collector.wait_until("results of a", |s| s.results.iter().filter(|r| r.probe == "a").count() >= 3).await;

    collector.set_probes(vec![support::probe("b", 50, 40, target.clone())]);
    collector.wait_until("results of b", |s| s.results.iter().filter(|r| r.probe == "b").count() >= 3).await;
    let a_then = collector.with(|s| s.results.iter().filter(|r| r.probe == "a").count());
    collector.wait_until("more results of b", |s| s.results.iter().filter(|r| r.probe == "b").count() >= 10).await;
    let a_now = collector.with(|s| s.results.iter().filter(|r| r.probe == "a").count());
    assert!(a_now <= a_then + 1, "a kept running after removal: {a_then} -> {a_now}");
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    assert_eq!(collector.with(|s| s.encodings.keys().cloned().collect::<Vec<_>>()), ["gzip"]);
    let cached = std::fs::read_to_string(spool.path().join("assignment.json")).unwrap();
    assert!(cached.contains("\"b\"") && !cached.contains("\"a\""), "{cached}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_keeps_probing_from_the_cache_and_delivers_later() {
    let tcp = support::tcp_target().await;
    let collector = FakeCollector::start(
        "lon-1",
        vec![support::probe("db", 50, 40, json!({"kind": "tcp", "target": tcp.to_string()}))],
    )
    .await;
    let spool = tempfile::tempdir().unwrap();
    // First run: fetch and cache the assignment.
    let (stop, agent) = start(config(&collector, spool.path()), fast());
    collector.wait_until("first results", |s| !s.results.is_empty()).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    let delivered_before = collector.distinct_seqs().len() as u64;

    // Second run: the collector refuses the token; the agent probes from its cache.
    collector.with(|s| s.refuse_token = true);
    let (stop, agent) = start(config(&collector, spool.path()), fast());
    collector.wait_until("refused deliveries", |s| s.failed_ingests >= 2).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    let spooled = probity_agent::spool::Spool::open(spool.path(), 1 << 30).unwrap();
    let waiting = spooled.stats().depth;
    assert!(waiting > 0, "no results were produced while the token was refused");
    drop(spooled);

    // Third run: accepted again; the backlog arrives, seqs continuing without a gap.
    collector.with(|s| s.refuse_token = false);
    let (stop, agent) = start(config(&collector, spool.path()), fast());
    let want = delivered_before + waiting;
    collector.wait_until("the backlog", |s| s.results.iter().map(|r| r.seq).max().unwrap_or(0) >= want).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    let seqs: Vec<u64> = collector.distinct_seqs().keys().copied().collect();
    assert_eq!(seqs[0], 1);
    assert_contiguous(&seqs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_metrics_are_served_as_prometheus_text() {
    let closed = support::closed_port();
    let collector = FakeCollector::start(
        "lon-1",
        vec![support::probe("gone", 50, 40, json!({"kind": "tcp", "target": closed.to_string()}))],
    )
    .await;
    let spool = tempfile::tempdir().unwrap();
    let (bound_tx, bound_rx) = oneshot::channel();
    let options =
        RunOptions { metrics_listen: Some("127.0.0.1:0".parse().unwrap()), metrics_bound: Some(bound_tx), ..fast() };
    let (stop, agent) = start(config(&collector, spool.path()), options);
    let addr = bound_rx.await.unwrap();
    collector.wait_until("results", |s| s.results.len() >= 3).await;
    let text = http_get(&format!("http://{addr}/metrics")).await;
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    for needle in [
        "probity_agent_probes_run_total{kind=\"tcp\"}",
        "probity_agent_probe_failures_total{kind=\"connect\"}",
        "probity_agent_skipped_ticks_total",
        "probity_agent_spool_depth",
        "probity_agent_spool_bytes",
        "probity_agent_spool_dropped_results_total 0",
        "probity_agent_delivery_lag_seconds",
        "probity_agent_assigned_probes 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    // `http_get` returns the whole response; promtool reads the body.
    let body = text.split_once("\r\n\r\n").map_or(text.as_str(), |(_, body)| body);
    support::promtool::check_metrics(body);
    let failures: u64 = text
        .lines()
        .find(|l| l.starts_with("probity_agent_probe_failures_total{kind=\"connect\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 3);
}

async fn http_get(url: &str) -> String {
    // A plain HTTP/1.1 GET over a socket: the metrics endpoint needs nothing more.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://").split('/').next().unwrap().to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut out)).await.unwrap().unwrap();
    out
}
