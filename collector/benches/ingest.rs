//! Ingest load generator: N agents post zstd batches of 1,000 results over loopback to a
//! real `probity-collector` process, each agent waiting for its durable 200 before the
//! next batch. Reports durable results/s, p50/p99 request latency, disk bytes per result
//! and the collector's peak RSS.
//!
//! `cargo bench -p probity-collector --bench ingest -- [--agents 8] [--results 1000000] [--probes 10]
//! [--collector PATH]`: `--collector` runs another build of the collector (a baseline copied
//! aside before a change) with the same load, so both are measured back to back.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use tokio::time::Instant;

use probity_config::wire::{ErrorKind, IngestRequest, ProbeResult, ResultError};

const BATCH: usize = 1000;

struct Args {
    agents: usize,
    results: usize,
    probes: usize,
    collector: String,
}

fn parse_args() -> Args {
    let mut a =
        Args { agents: 8, results: 1_000_000, probes: 10, collector: env!("CARGO_BIN_EXE_probity-collector").into() };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--collector" {
            a.collector = it.next().expect("a path after --collector");
            continue;
        }
        let mut value = || it.next().and_then(|v| v.replace('_', "").parse().ok()).expect("a number after the flag");
        match flag.as_str() {
            "--agents" => a.agents = value(),
            "--results" => a.results = value(),
            "--probes" => a.probes = value(),
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

fn token(agent: usize) -> String {
    format!("probity_bench-token-{agent}")
}

fn config(dir: &Path, args: &Args) -> String {
    let mut s = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nraw_retention = \"400d\"\n\n",
        dir.join("data").display()
    );
    for i in 0..args.agents {
        s += &format!(
            "[[agents]]\nid = \"b{i}\"\ntoken_sha256 = \"{}\"\n\n",
            hex::encode(probity_config::token_sha256(&token(i)))
        );
    }
    s += "[[services]]\nid = \"bench\"\nname = \"Bench\"\nowner = \"ops\"\n\n";
    for p in 0..args.probes {
        s += &format!(
            "  [[services.probes]]\n  id = \"p{p}\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n\n"
        );
    }
    s
}

/// Every agent's batches, JSON then zstd, built before the clock starts.
fn batches(args: &Args, start_ms: i64) -> Vec<Vec<Vec<u8>>> {
    let per_agent = args.results / args.agents / BATCH * BATCH;
    (0..args.agents)
        .map(|a| {
            let results: Vec<ProbeResult> = (0..per_agent)
                .map(|i| {
                    let seq = i as u64 + 1;
                    let down = (i % 97 == 13).then_some(ErrorKind::Timeout);
                    ProbeResult {
                        seq,
                        probe: format!("p{}", i % args.probes),
                        at: start_ms + (i / args.probes) as i64 * 10_000 + a as i64 * 37,
                        duration_us: 20_000 + (i as u64 * 7919) % 30_000,
                        ok: down.is_none(),
                        status: None,
                        phases: None,
                        error: down.map(|kind| ResultError { kind, message: "no answer within 5s".into() }),
                        cert_not_after: None,
                    }
                })
                .collect();
            results
                .chunks(BATCH)
                .map(|chunk| {
                    let req = IngestRequest {
                        agent: format!("b{a}"),
                        instance: Some(format!("bench{a}")),
                        results: chunk.to_vec(),
                        clock_offset_ms: None,
                    };
                    zstd::encode_all(&serde_json::to_vec(&req).unwrap()[..], 3).unwrap()
                })
                .collect()
        })
        .collect()
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args = parse_args();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config(dir.path(), &args)).unwrap();
    let start_ms = jiff::Timestamp::now().as_millisecond() - 20 * 86_400_000;
    eprintln!("building {} results for {} agents...", args.results, args.agents);
    let batches = batches(&args, start_ms);
    let total: usize = batches.iter().map(|b| b.len()).sum::<usize>() * BATCH;
    let wire: usize = batches.iter().flatten().map(|b| b.len()).sum();

    let mut child = Command::new(&args.collector)
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn,probity_collector::serve=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let addr = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "collector exited");
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in stderr.lines() {});
    let pid = child.id();
    // Stop the collector even when the load generator panics.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = Command::new("kill").arg("-KILL").arg(self.0.to_string()).status();
        }
    }
    let guard = KillOnDrop(pid);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (elapsed, mut latencies) = runtime.block_on(async {
        let client = reqwest::Client::builder().build().unwrap();
        let url = format!("http://{addr}/api/v1/ingest");
        let began = Instant::now();
        let mut tasks = Vec::new();
        for (a, agent_batches) in batches.into_iter().enumerate() {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::with_capacity(agent_batches.len());
                for body in agent_batches {
                    let t = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(token(a))
                        .header("content-encoding", "zstd")
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    let answer: serde_json::Value = resp.json().await.unwrap();
                    assert_eq!(answer["accepted"], BATCH as u64, "{answer}");
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        (began.elapsed(), all)
    });
    let rss_now = status_kb(pid, "VmRSS:");
    let rss_peak = status_kb(pid, "VmHWM:");
    let live_bytes = dir_size(&dir.path().join("data/db"));
    Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
    child.wait().unwrap();
    std::mem::forget(guard);
    let closed_bytes = dir_size(&dir.path().join("data/db"));

    let store = probity_collector::store::Store::open(&dir.path().join("data/db"), &Default::default()).unwrap();
    for (tree, keys, bytes) in store.logical_sizes().unwrap() {
        eprintln!("{tree:>15}: {keys:>9} keys {:>7.1} logical bytes/result", bytes as f64 / total as f64);
    }
    drop(store);

    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "| agents | probes | results | wire bytes/result | durable results/s | p50 ms | p99 ms | disk bytes/result (live / after shutdown) | collector RSS peak |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} / {:.1} | {} MB |",
        args.agents,
        args.probes,
        total,
        wire as f64 / total as f64,
        total as f64 / elapsed.as_secs_f64(),
        q(0.50),
        q(0.99),
        live_bytes as f64 / total as f64,
        closed_bytes as f64 / total as f64,
        rss_peak / 1024,
    );
    eprintln!("elapsed {:.2}s, rss now {} MB", elapsed.as_secs_f64(), rss_now / 1024);
}
