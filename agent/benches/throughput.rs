//! Agent throughput bench (`cargo bench -p probity-agent --bench throughput`): the
//! release `probity-agent` binary runs N HTTP probes per second against a local target
//! with a fixed 20 ms delay and ships them to a fake collector; the same target is
//! then probed at the same rate through `prometheus-blackbox-exporter`'s `/probe`
//! endpoint. Reports sustained probes/s, CPU seconds per 1,000 probes, RSS with 1,000
//! and 10,000 probes assigned, and timing overhead (measured minus the true 20 ms).
//!
//! Knobs: `BENCH_SECS` (measurement window per phase, default 20), `BENCH_RATE`
//! (probes/s for the comparison, default 500), `BENCH_AGENT_CPUS` (pin the measured agent or
//! blackbox_exporter to these CPUs; run the bench itself under `taskset -c 0`). Loopback
//! only; every loop is bounded.

#[path = "../tests/support/mod.rs"]
mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::FakeCollector;
use tokio::net::TcpListener;

const DELAY: Duration = Duration::from_millis(20);

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and a
    // three-minute run has no place in a test run.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: skipped (run it with `cargo bench -p probity-agent --bench throughput`)");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(bench());
}

struct Figures {
    probes_per_s: f64,
    cpu_per_1000: f64,
    rss_mb: f64,
    overhead_p50_us: f64,
    overhead_p99_us: f64,
    failures: usize,
    skipped: u64,
    /// Agent-side share of the overhead: duration minus connect and first byte (p50, p99).
    own_us: (f64, f64),
    /// Measured minus the time the target itself took (p50, p99).
    versus_target_us: (f64, f64),
}

async fn bench() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let rate: u64 = std::env::var("BENCH_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(500);
    let window = Duration::from_secs(secs);
    let served: Served = Default::default();
    let target = delay_target(served.clone()).await;
    let url = format!("http://{target}/delay");
    println!("target http://{target}/delay answers after exactly {DELAY:?}; window {secs}s per phase");

    // 1,000 probes at `rate`/s.
    let a = run_agent(&served, &url, 1000, rate, window).await;
    report(&format!("probity-agent, 1,000 probes at {rate}/s"), &a);
    // 10,000 probes assigned, same rate (interval ×10).
    let b = run_agent(&served, &url, 10_000, rate, window).await;
    report(&format!("probity-agent, 10,000 probes at {rate}/s"), &b);
    // Light load: 100 probes at 50/s, where scheduling noise is least.
    let light = run_agent(&served, &url, 100, 50, window).await;
    report("probity-agent, 100 probes at 50/s", &light);
    // Sustained: 1,000 probes at 4× the rate.
    let c = run_agent(&served, &url, 1000, rate * 4, window).await;
    report(&format!("probity-agent, 1,000 probes at {}/s offered", rate * 4), &c);

    match blackbox(&url, rate, window).await {
        Some(bb) => {
            report(&format!("blackbox_exporter at {rate}/s"), &bb);
            println!(
                "\nratio CPU per probe probity/blackbox: {:.2}x   (goal <= 0.5x)",
                a.cpu_per_1000 / bb.cpu_per_1000
            );
        }
        None => println!("\nprometheus-blackbox-exporter not found: apt-get install -y prometheus-blackbox-exporter"),
    }
    println!(
        "goals: RSS with 10,000 assigned {:.1} MB (<= 24), overhead p99 {:.0} us at {rate}/s, {:.0} us at 50/s (<= 1000)",
        b.rss_mb, a.overhead_p99_us, light.overhead_p99_us
    );
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name:<45} {:>7.1} probes/s  {:>6.3} CPU s/1000  RSS {:>5.1} MB  overhead p50 {:>5.0} us p99 {:>5.0} us  \
         (vs target p50 {:>4.0} p99 {:>5.0}; after first byte p50 {:>3.0} p99 {:>4.0})  failures {}  skipped {}",
        f.probes_per_s,
        f.cpu_per_1000,
        f.rss_mb,
        f.overhead_p50_us,
        f.overhead_p99_us,
        f.versus_target_us.0,
        f.versus_target_us.1,
        f.own_us.0,
        f.own_us.1,
        f.failures,
        f.skipped
    );
}

/// What the target saw of each request: probe id → (request parsed, response ready),
/// wall-clock microseconds.
type Served = Arc<Mutex<std::collections::HashMap<String, Vec<(i64, i64)>>>>;

/// A target that answers after exactly `DELAY` (a blocking-pool sleep, accurate to tens
/// of microseconds, unlike a 1 ms-granular timer), and records how long it really took.
async fn delay_target(served: Served) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let served = served.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let served = served.clone();
                    async move {
                        let begun = unix_us();
                        tokio::task::spawn_blocking(|| std::thread::sleep(DELAY)).await.unwrap();
                        if let Some(p) = req.uri().query().and_then(|q| q.strip_prefix("p=")) {
                            served.lock().unwrap().entry(p.to_string()).or_default().push((begun, unix_us()));
                        }
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

fn unix_us() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as i64
}

async fn run_agent(served: &Served, url: &str, probes: u64, rate: u64, window: Duration) -> Figures {
    let interval_ms = probes * 1000 / rate;
    let assigned = (0..probes)
        .map(|i| {
            support::probe(
                &format!("p{i}"),
                interval_ms,
                (interval_ms).min(5000),
                json!({"kind": "http", "url": format!("{url}?p={i}"), "expect_status": ["200"]}),
            )
        })
        .collect();
    let collector = FakeCollector::start("bench", assigned).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let metrics_addr = support::closed_port();
    std::fs::write(
        &config,
        format!(
            "id = \"bench\"\ncollector = \"{}\"\ntoken = \"{}\"\nspool_dir = \"{}\"\n",
            collector.url,
            support::TOKEN,
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let mut agent = measured_command(env!("CARGO_BIN_EXE_probity-agent"))
        .arg("--config")
        .arg(&config)
        .arg("--metrics-listen")
        .arg(metrics_addr.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Warm up for one interval (every probe has fired once) plus a little.
    tokio::time::sleep(Duration::from_millis(interval_ms) + Duration::from_secs(2)).await;
    let skipped0 = skipped_ticks(metrics_addr).await;
    let (t0, cpu0) = (unix_ms(), cpu_seconds(agent.id()));
    tokio::time::sleep(window).await;
    let (t1, cpu1) = (unix_ms(), cpu_seconds(agent.id()));
    let rss = rss_mb(agent.id());
    let skipped = skipped_ticks(metrics_addr).await - skipped0;
    // Let the last results of the window arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop(&mut agent);
    let (durations, failures, own) = collector.with(|s| {
        let in_window: Vec<_> = s.results.iter().filter(|r| r.at >= t0 && r.at < t1).collect();
        let ok: Vec<i64> = in_window.iter().filter(|r| r.ok).map(|r| r.duration_us as i64).collect();
        let own: Vec<i64> = in_window
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| {
                let p = r.phases.as_ref()?;
                Some(r.duration_us as i64 - p.connect_us? as i64 - p.first_byte_us? as i64)
            })
            .collect();
        (ok, in_window.iter().filter(|r| !r.ok).count(), own)
    });
    let own_us = percentiles(own);
    // Against what the target itself saw: measured minus (response ready − request parsed).
    let versus_target = {
        let served = std::mem::take(&mut *served.lock().unwrap());
        collector.with(|s| {
            s.results
                .iter()
                .filter(|r| r.ok && r.at >= t0 && r.at < t1)
                .filter_map(|r| {
                    let start = r.at * 1000;
                    let end = start + 1000 + r.duration_us as i64;
                    let seen = served.get(&r.probe[1..])?.iter().find(|(b, _)| *b >= start - 1000 && *b <= end)?;
                    Some(r.duration_us as i64 - (seen.1 - seen.0))
                })
                .collect::<Vec<_>>()
        })
    };
    let versus_target_us = percentiles(versus_target);
    let done = durations.len() + failures;
    let (p50, p99) = overhead(durations);
    let secs = (t1 - t0) as f64 / 1000.0;
    Figures {
        probes_per_s: done as f64 / secs,
        cpu_per_1000: (cpu1 - cpu0) / done as f64 * 1000.0,
        rss_mb: rss,
        overhead_p50_us: p50,
        overhead_p99_us: p99,
        failures,
        skipped,
        own_us,
        versus_target_us,
    }
}

async fn blackbox(url: &str, rate: u64, window: Duration) -> Option<Figures> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("blackbox.yml");
    std::fs::write(
        &config,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n",
    )
    .unwrap();
    let addr = support::closed_port();
    let mut bb = measured_command("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let client = reqwest_client();
    let probe_url = format!("http://{addr}/probe?module=http_2xx&target={url}");
    // Wait for it to listen (bounded).
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let samples = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(0usize));
    let drive = |secs: Duration, record: bool| {
        let (client, probe_url, samples, failures) =
            (client.clone(), probe_url.clone(), samples.clone(), failures.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let end = tokio::time::Instant::now() + secs;
            let mut tasks = tokio::task::JoinSet::new();
            while tokio::time::Instant::now() < end {
                tick.tick().await;
                let (client, probe_url, samples, failures) =
                    (client.clone(), probe_url.clone(), samples.clone(), failures.clone());
                tasks.spawn(async move {
                    let Ok(resp) = client.get(&probe_url).send().await else { return };
                    let Ok(text) = resp.text().await else { return };
                    let value = |name: &str| {
                        text.lines()
                            .find(|l| l.starts_with(name))
                            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    };
                    if !record {
                        return;
                    }
                    match (value("probe_success "), value("probe_duration_seconds ")) {
                        (Some(1.0), Some(d)) => samples.lock().unwrap().push((d * 1e6) as i64),
                        _ => *failures.lock().unwrap() += 1,
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
            while tasks.join_next().await.is_some() {}
        }
    };
    drive(Duration::from_secs(3), false).await;
    let cpu0 = cpu_seconds(bb.id());
    let start = tokio::time::Instant::now();
    drive(window, true).await;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu_seconds(bb.id());
    let rss = rss_mb(bb.id());
    let _ = bb.kill();
    let _ = bb.wait();
    let durations = std::mem::take(&mut *samples.lock().unwrap());
    let failures = *failures.lock().unwrap();
    let done = durations.len() + failures;
    let (p50, p99) = overhead(durations);
    Some(Figures {
        probes_per_s: done as f64 / elapsed,
        cpu_per_1000: (cpu1 - cpu0) / done as f64 * 1000.0,
        rss_mb: rss,
        overhead_p50_us: p50,
        overhead_p99_us: p99,
        failures,
        skipped: 0,
        own_us: (f64::NAN, f64::NAN),
        versus_target_us: (f64::NAN, f64::NAN),
    })
}

fn reqwest_client() -> reqwest::Client {
    probity_agent::install_crypto_provider();
    reqwest::Client::builder().pool_max_idle_per_host(256).build().unwrap()
}

/// Median and p99 of measured minus true latency, microseconds.
fn overhead(durations_us: Vec<i64>) -> (f64, f64) {
    let true_us = DELAY.as_micros() as i64;
    percentiles(durations_us.into_iter().map(|d| d - true_us).collect())
}

fn percentiles(mut v: Vec<i64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64;
    (at(0.5), at(0.99))
}

fn stop(agent: &mut Child) {
    let _ = Command::new("sh").args(["-c", "kill -TERM \"$1\"", "sh"]).arg(agent.id().to_string()).status();
    let _ = agent.wait();
}

/// The measured program, pinned to the CPUs in `BENCH_AGENT_CPUS` (e.g. `1`) when set, so
/// that a run under `taskset -c 0` keeps the target and fake collector off its core.
/// `taskset` execs the program, so the child's pid (for `/proc` CPU and RSS) is the program's.
fn measured_command(program: &str) -> Command {
    match std::env::var("BENCH_AGENT_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpus, program]);
            c
        }
        _ => Command::new(program),
    }
}

fn unix_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// utime + stime of a process, seconds (from /proc; CLK_TCK taken as 100).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat; after the ")" they are at 11 and 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(Path::new(&format!("/proc/{pid}/status"))).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn skipped_ticks(addr: SocketAddr) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { return 0 };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    let mut text = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut text)).await;
    text.lines()
        .find(|l| l.starts_with("probity_agent_skipped_ticks_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}
