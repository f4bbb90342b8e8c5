//! Agent throughput bench (`cargo bench -p probity-agent --bench throughput`): the
//! release `probity-agent` binary runs N HTTP probes per second against a local target
//! with a fixed 20 ms delay and ships them to a fake collector; the same target is
//! then probed at the same rate through `prometheus-blackbox-exporter`'s `/probe`
//! endpoint. Reports sustained probes/s, CPU seconds per 1,000 probes, RSS with 1,000
//! and 10,000 probes assigned, and timing overhead: measured minus the time the target
//! really took (its own kernel-stamped request arrival to its response write), and
//! minus the nominal 20 ms. A blocking `std` client on plain threads gives the machine's
//! floor for the same figures.
//!
//! Then, per probe kind (http, tcp, dns, icmp, grpc), 1,000 probes of that kind at the
//! same rate against a local target of that kind (a TCP listener that accepts and
//! closes, a UDP DNS responder, 127.0.0.1 for ICMP, tonic's health server for gRPC),
//! and blackbox_exporter's prober of the same kind at the same rate: CPU per 1,000
//! probes and RSS of each, side by side.
//!
//! Knobs: `BENCH_SECS` (measurement window per phase, default 20), `BENCH_RATE`
//! (probes/s for the comparison, default 500), `BENCH_AGENT_CPUS` (pin the measured agent or
//! blackbox_exporter to these CPUs; run the bench itself under `taskset -c 0`),
//! `BENCH_KINDS` (the per-kind section's kinds, default `http,tcp,dns,icmp,grpc`; `none`
//! skips it), `BENCH_KINDS_ONLY=1` (only the per-kind section). Loopback only; every loop
//! is bounded.

use probity_tests as support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::json;
use support::FakeCollector;

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
    /// After the first byte: duration minus `first_byte_us` (p50, p99).
    own_us: (f64, f64),
    /// Measured minus the time the target itself took (p50, p99).
    versus_target_us: (f64, f64),
    /// Where that goes: `connect_us`, and from connected to the first byte minus the
    /// target's time (p50, p99).
    connect_us: (f64, f64),
    first_byte_us: (f64, f64),
}

async fn bench() {
    let secs: u64 = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let rate: u64 = std::env::var("BENCH_RATE").ok().and_then(|s| s.parse().ok()).unwrap_or(500);
    let window = Duration::from_secs(secs);
    let served: Served = Default::default();
    let target = delay_target(served.clone()).await;
    let url = format!("http://{target}/delay");
    println!("target http://{target}/delay answers after exactly {DELAY:?}; window {secs}s per phase");
    if std::env::var("BENCH_KINDS_ONLY").is_ok_and(|v| v == "1") {
        per_kind(&served, &url, rate, window).await;
        return;
    }

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

    // The machine's floor: the simplest client there is, timed the simplest way.
    let floor_light = floor(&served, target, 50, window).await;
    report("floor: blocking std client at 50/s", &floor_light);
    let floor_rate = floor(&served, target, rate, window).await;
    report(&format!("floor: blocking std client at {rate}/s"), &floor_rate);

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
        "goals: RSS with 10,000 assigned {:.1} MB (<= 24); overhead p99 against the target's own time {:.0} us at \
         {rate}/s, {:.0} us at 50/s (<= 1000); against the nominal 20 ms {:.0} us and {:.0} us",
        b.rss_mb, a.versus_target_us.1, light.versus_target_us.1, a.overhead_p99_us, light.overhead_p99_us
    );
    per_kind(&served, &url, rate, window).await;
}

/// CPU per probe and RSS for each kind, the agent beside blackbox_exporter.
async fn per_kind(served: &Served, url: &str, rate: u64, window: Duration) {
    let kinds = std::env::var("BENCH_KINDS").unwrap_or_else(|_| "http,tcp,dns,icmp,grpc".into());
    if kinds == "none" {
        return;
    }
    let tcp = accept_and_close_target();
    let dns = support::dns_target().await;
    let grpc = grpc_health_target().await;
    println!("\nper kind: 1,000 probes at {rate}/s each; blackbox_exporter's prober of the kind at the same rate");
    let mut rows = Vec::new();
    for kind in kinds.split(',').map(str::trim) {
        let (keys, module, bb_target): (Box<dyn Fn(u64) -> serde_json::Value>, &str, String) = match kind {
            "http" => {
                let probed = url.to_string();
                (
                    Box::new(
                        move |i| json!({"kind": "http", "url": format!("{probed}?p={i}"), "expect_status": ["200"]}),
                    ),
                    "prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n",
                    url.to_string(),
                )
            }
            "tcp" => (
                Box::new(move |_| json!({"kind": "tcp", "target": tcp.to_string()})),
                "prober: tcp\n    timeout: 5s\n    tcp:\n      preferred_ip_protocol: ip4\n",
                tcp.to_string(),
            ),
            "dns" => (
                Box::new(
                    move |_| json!({"kind": "dns", "name": "ok.test", "server": dns.to_string(), "expect": ["192.0.2.1"]}),
                ),
                "prober: dns\n    timeout: 5s\n    dns:\n      query_name: ok.test\n      query_type: A\n      transport_protocol: udp\n      preferred_ip_protocol: ip4\n",
                dns.to_string(),
            ),
            "icmp" => (
                Box::new(|_| json!({"kind": "icmp", "target": "127.0.0.1"})),
                "prober: icmp\n    timeout: 5s\n    icmp:\n      preferred_ip_protocol: ip4\n",
                "127.0.0.1".to_string(),
            ),
            "grpc" => (
                Box::new(move |_| json!({"kind": "grpc", "target": grpc.to_string(), "tls": false})),
                "prober: grpc\n    timeout: 5s\n    grpc:\n      tls: false\n      preferred_ip_protocol: ip4\n",
                grpc.to_string(),
            ),
            other => {
                println!("unknown kind {other} in BENCH_KINDS");
                continue;
            }
        };
        let agent = run_agent_with(served, 1000, rate, window, &*keys).await;
        report(&format!("probity-agent {kind}, 1,000 probes at {rate}/s"), &agent);
        let bb = blackbox_module(module, &bb_target, rate, window).await;
        if let Some(bb) = &bb {
            report(&format!("blackbox_exporter {kind} at {rate}/s"), bb);
        }
        rows.push((kind.to_string(), agent, bb));
    }
    println!("\n| kind | probity CPU s / 1,000 | probity RSS | blackbox CPU s / 1,000 | blackbox RSS | CPU ratio |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (kind, a, bb) in rows {
        match bb {
            Some(bb) => println!(
                "| {kind} | {:.3} | {:.1} MB | {:.3} | {:.1} MB | {:.2}x |",
                a.cpu_per_1000,
                a.rss_mb,
                bb.cpu_per_1000,
                bb.rss_mb,
                a.cpu_per_1000 / bb.cpu_per_1000
            ),
            None => println!("| {kind} | {:.3} | {:.1} MB | – | – | – |", a.cpu_per_1000, a.rss_mb),
        }
    }
}

/// A TCP target for `tcp` probes: accepts and closes at once, on its own thread.
fn accept_and_close_target() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// tonic's own health server, in the clear, reporting the whole server SERVING.
async fn grpc_health_target() -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _reporter = reporter;
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    addr
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name:<45} {:>7.1} probes/s  {:>6.3} CPU s/1000  RSS {:>5.1} MB  overhead p50 {:>5.0} us p99 {:>5.0} us  \
         (vs target p50 {:>4.0} p99 {:>5.0} = connect p50 {:>3.0} p99 {:>4.0} + request − target p50 {:>3.0} p99 {:>4.0} \
         + body p50 {:>3.0} p99 {:>4.0})  failures {}  skipped {}",
        f.probes_per_s,
        f.cpu_per_1000,
        f.rss_mb,
        f.overhead_p50_us,
        f.overhead_p99_us,
        f.versus_target_us.0,
        f.versus_target_us.1,
        f.connect_us.0,
        f.connect_us.1,
        f.first_byte_us.0,
        f.first_byte_us.1,
        f.own_us.0,
        f.own_us.1,
        f.failures,
        f.skipped
    );
}

/// What the target saw of each request: probe id → (request arrived, response written),
/// wall-clock microseconds.
type Served = Arc<Mutex<std::collections::HashMap<String, Vec<(i64, i64)>>>>;

/// A target that answers `DELAY` after each request arrived and records how long it
/// really took. It runs on its own pool of threads (blocking I/O, a connection each),
/// not on the bench's runtime, so the fake collector's work cannot delay it. "Arrived"
/// is the kernel's receive stamp of the request (`SO_TIMESTAMPNS`), so the time this
/// thread took to wake up is the target's, not the prober's; "written" is taken just
/// before the response's `write`. The threads sleep with a 1 µs timer slack.
async fn delay_target(served: Served) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Set on the listener too, which lives as long as the bench: Linux enables receive
    // stamping lazily when the first socket asks, and would otherwise switch it off and
    // on again as connections come and go.
    nix::sys::socket::setsockopt(&listener, nix::sys::socket::sockopt::ReceiveTimestampns, &true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<std::net::TcpStream>();
    let rx = Arc::new(Mutex::new(rx));
    // 20 ms each at up to 8,000/s offered: 160 at once, and more for the stragglers.
    for _ in 0..256 {
        let (rx, served) = (rx.clone(), served.clone());
        std::thread::spawn(move || {
            let _ = nix::sys::prctl::set_timerslack(1_000);
            loop {
                let next = rx.lock().unwrap().recv();
                match next {
                    Ok(stream) => serve_delayed(stream, &served),
                    Err(_) => return,
                }
            }
        });
    }
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = tx.send(stream);
        }
    });
    addr
}

fn serve_delayed(mut stream: std::net::TcpStream, served: &Served) {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
    setsockopt(&stream, sockopt::ReceiveTimestampns, &true).unwrap();
    let _ = stream.set_nodelay(true);
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut arrived = None;
    loop {
        let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let Ok(msg) = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::empty()) else {
            return;
        };
        let n = msg.bytes;
        if n == 0 {
            return;
        }
        for cmsg in msg.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmTimestampns(ts) = cmsg {
                arrived = Some(SystemTime::UNIX_EPOCH + Duration::from(ts));
            }
        }
        pending.extend_from_slice(&buf[..n]);
        // One request per read loop: the probes send no body.
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).into_owned();
            pending.drain(..end + 4);
            let arrived = arrived.unwrap_or_else(SystemTime::now);
            if let Ok(left) = (arrived + DELAY).duration_since(SystemTime::now()) {
                std::thread::sleep(left);
            }
            let written = unix_us();
            if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                return;
            }
            let probe = head.split_whitespace().nth(1).and_then(|t| t.split_once("?p=")).map(|(_, p)| p.to_string());
            if let Some(p) = probe {
                let arrived_us = arrived.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as i64;
                served.lock().unwrap().entry(p).or_default().push((arrived_us, written));
            }
        }
    }
}

fn unix_us() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_micros() as i64
}

async fn run_agent(served: &Served, url: &str, probes: u64, rate: u64, window: Duration) -> Figures {
    let keys = |i: u64| json!({"kind": "http", "url": format!("{url}?p={i}"), "expect_status": ["200"]});
    run_agent_with(served, probes, rate, window, &keys).await
}

/// The agent with `probes` probes whose kind keys `keys(i)` gives, at `rate`/s in all.
async fn run_agent_with(
    served: &Served,
    probes: u64,
    rate: u64,
    window: Duration,
    keys: &dyn Fn(u64) -> serde_json::Value,
) -> Figures {
    let interval_ms = probes * 1000 / rate;
    let assigned =
        (0..probes).map(|i| support::probe(&format!("p{i}"), interval_ms, (interval_ms).min(5000), keys(i))).collect();
    let collector = FakeCollector::start("bench", assigned).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let metrics_addr = free_port();
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
        // Phases count from the start: the body's share is duration minus first byte.
        let own: Vec<i64> = in_window
            .iter()
            .filter(|r| r.ok)
            .filter_map(|r| Some(r.duration_us as i64 - r.phases.as_ref()?.first_byte_us? as i64))
            .collect();
        (ok, in_window.iter().filter(|r| !r.ok).count(), own)
    });
    let own_us = percentiles(own);
    // Against what the target itself took: measured minus (response written − request arrived).
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
                    let phases = r.phases.as_ref()?;
                    let took = seen.1 - seen.0;
                    let connect = phases.connect_us? as i64;
                    Some((r.duration_us as i64 - took, connect, phases.first_byte_us? as i64 - connect - took))
                })
                .collect::<Vec<_>>()
        })
    };
    let versus_target_us = percentiles(versus_target.iter().map(|v| v.0).collect());
    let connect_us = percentiles(versus_target.iter().map(|v| v.1).collect());
    let first_byte_us = percentiles(versus_target.iter().map(|v| v.2).collect());
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
        connect_us,
        first_byte_us,
    }
}

/// The floor for this machine: blocking `std` sockets on plain threads (no runtime, no
/// HTTP library), timed with `Instant` around connect → request → whole response, at
/// `rate`/s against the same target. What it measures beyond the target's own time is
/// the host's (syscalls, wake-ups, loopback), which no user-space prober avoids.
async fn floor(served: &Served, target: SocketAddr, rate: u64, window: Duration) -> Figures {
    use std::io::{Read, Write};
    let samples = Arc::new(Mutex::new(Vec::new()));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    // Enough threads that a 20 ms answer never holds up the next request.
    let per_thread = rate / 40 + 3;
    let threads: Vec<_> = (0..per_thread)
        .map(|t| {
            let samples = samples.clone();
            std::thread::spawn(move || {
                let mut i = t;
                loop {
                    let due = start + Duration::from_micros(i * 1_000_000 / rate);
                    if due > start + window {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(tokio::time::Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let began = tokio::time::Instant::now();
                    let mut s = std::net::TcpStream::connect(target).unwrap();
                    let connected = began.elapsed();
                    s.set_nodelay(true).unwrap();
                    write!(s, "GET /delay?p=f{i} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
                    let mut got = Vec::new();
                    let mut buf = [0u8; 256];
                    while !got.ends_with(b"\r\n\r\nok") {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0, "the target closed early");
                        got.extend_from_slice(&buf[..n]);
                    }
                    samples.lock().unwrap().push((format!("f{i}"), began.elapsed(), connected));
                    i += per_thread;
                }
            })
        })
        .collect();
    let t0 = tokio::time::Instant::now();
    for t in threads {
        tokio::task::spawn_blocking(move || t.join().unwrap()).await.unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let served = std::mem::take(&mut *served.lock().unwrap());
    let mut versus = Vec::new();
    for (id, took, connected) in &samples {
        if let Some((arrived, written)) = served.get(id.as_str()).and_then(|v| v.first()) {
            versus.push((took.as_micros() as i64 - (written - arrived), connected.as_micros() as i64));
        }
    }
    let (p50, p99) = overhead(samples.iter().map(|s| s.1.as_micros() as i64).collect());
    Figures {
        probes_per_s: samples.len() as f64 / secs,
        cpu_per_1000: f64::NAN,
        rss_mb: f64::NAN,
        overhead_p50_us: p50,
        overhead_p99_us: p99,
        failures: 0,
        skipped: 0,
        own_us: (f64::NAN, f64::NAN),
        versus_target_us: percentiles(versus.iter().map(|v| v.0).collect()),
        connect_us: percentiles(versus.iter().map(|v| v.1).collect()),
        first_byte_us: (f64::NAN, f64::NAN),
    }
}

async fn blackbox(url: &str, rate: u64, window: Duration) -> Option<Figures> {
    blackbox_module("prober: http\n    timeout: 5s\n    http:\n      preferred_ip_protocol: ip4\n", url, rate, window)
        .await
}

/// blackbox_exporter with one module (`module`: its YAML body, indented for `modules.m:`),
/// driven at `rate`/s against `target` through `/probe`.
async fn blackbox_module(module: &str, target: &str, rate: u64, window: Duration) -> Option<Figures> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("blackbox.yml");
    std::fs::write(&config, format!("modules:\n  m:\n    {module}")).unwrap();
    let addr = free_port();
    let mut bb = measured_command("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let client = reqwest_client();
    let probe_url = format!("http://{addr}/probe?module=m&target={target}");
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
        connect_us: (f64::NAN, f64::NAN),
        first_byte_us: (f64::NAN, f64::NAN),
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

/// A port that was free a moment ago, for the programs this bench starts with a listen
/// address (the agent's metrics, blackbox_exporter). Bind-and-release can race with another
/// process taking the port; tests never do this (they listen on port 0 and read the bound
/// address), a bench run on a quiet machine can.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}
