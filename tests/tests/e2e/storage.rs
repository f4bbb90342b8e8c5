//! Storage you can trust (SPEC §15) with real processes: agent instances across a deleted
//! spool.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use probity_tests::{Collector, Reply, bin, blocking_client, wait_for};

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of an unlabelled or labelled metric line starting with `name`.
fn metric(c: &Collector, name: &str) -> Option<f64> {
    let text = c.get("/metrics").text();
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

fn start_agent(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(bin("probity-agent"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// The text without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// SIGTERM, then the seqs the run handed out (its "agent stopped … next_seq=N" line).
fn stop_agent(mut child: Child, log: &Path) -> u64 {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
    let text = strip_ansi(&std::fs::read_to_string(log).unwrap());
    let line = text.lines().rfind(|l| l.contains("agent stopped")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("undelivered=0"), "everything delivered at stop: {line}");
    let next: u64 = line.split("next_seq=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    next - 1
}

#[test]
fn an_agent_whose_spool_is_deleted_between_runs_keeps_every_result_and_counts_a_reset() {
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "probity_e2e-reset-1";
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

[[agents]]
id = "edge-1"
token_sha256 = "{}"

[[services]]
id = "web"
name = "Web"
  [[services.probes]]
  id = "web-tcp"
  kind = "tcp"
  target = "{}"
  interval = "1s"
  timeout = "1s"

[[agreements]]
id = "web-sla"
kind = "sla"
service = "web"
availability = 99.0
"#,
        hex(probity_config::token_sha256(token)),
        target.local_addr().unwrap()
    );
    let c = Collector::start(&config);
    let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let addr = c.addr;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let agent_config = dir.path().join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "id = \"edge-1\"\ncollector = \"http://{addr}\"\ntoken = \"{token}\"\nspool_dir = \"{}\"\n",
            spool.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");
    let stored = |c: &Collector| metric(c, "probity_results_ingested_total").unwrap_or(0.0) as u64;

    let first = start_agent(&agent_config, &log);
    wait_for("results of the first run", Duration::from_secs(60), || (stored(&c) >= 3).then_some(()));
    let first_run = stop_agent(first, &log);
    let instance = std::fs::read_to_string(spool.join("instance")).unwrap();
    std::fs::remove_dir_all(&spool).unwrap();

    let second = start_agent(&agent_config, &log);
    wait_for("results of the second run", Duration::from_secs(60), || (stored(&c) >= first_run + 3).then_some(()));
    let second_run = stop_agent(second, &log);
    assert_ne!(std::fs::read_to_string(spool.join("instance")).unwrap(), instance, "a new spool, a new instance");

    // Both runs numbered their results from seq 1; none was taken for a duplicate.
    assert_eq!(stored(&c), first_run + second_run);
    assert_eq!(metric(&c, "probity_results_duplicate_total"), Some(0.0));
    assert_eq!(metric(&c, "probity_agent_resets_total{agent=\"edge-1\"}"), Some(1.0));
    assert_eq!(metric(&c, "probity_agent_lost_results_total{agent=\"edge-1\"}"), Some(0.0));
    assert!(strip_ansi(&c.log()).contains("agent reset"), "{}", c.log());

    // Evidence completeness: the agent's figures once, on its own row, and a row per instance.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let (from, to) = (probity_config::time::rfc3339(started - 60_000), probity_config::time::rfc3339(now + 1_000));
    let bundle = c.get(&format!("/api/v1/agreements/web-sla/evidence?from={from}&to={to}"));
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bundle.body)).unwrap();
    let mut completeness = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("completeness.csv").unwrap(), &mut completeness).unwrap();
    let rows: Vec<Vec<&str>> = completeness.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(kinds, ["probe", "agent", "instance", "instance"], "{completeness}");
    assert_eq!((rows[0][1], rows[0][3], rows[0][5]), ("edge-1", "web-tcp", &*stored(&c).to_string()), "{completeness}");
    assert_eq!((rows[0][8], rows[0][9]), ("", ""), "no agent figure on the probe row: {completeness}");
    assert_eq!((rows[1][8], rows[1][9]), ("0", "1"), "lost and resets on the agent row: {completeness}");
    assert_eq!((rows[2][2], rows[2][8]), (instance.trim(), "0"), "{completeness}");
    assert_ne!(rows[3][2], rows[2][2], "{completeness}");
    drop(target);
}

/// One request with the harness's blocking client; `None` when nobody answers.
fn http(method: &str, addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<Reply> {
    let client = blocking_client(None);
    let mut req = client.request(method.parse().unwrap(), format!("http://{addr}{path}")).body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().ok().map(Reply::read)
}

/// A collector started on a data directory that may be refused: its address, or
/// `Err(log)` when it exits first.
fn start_or_refused(dir: &Path, extra: &[&str]) -> Result<(Child, std::net::SocketAddr), String> {
    let log_path = dir.join("collector.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(bin("probity-collector"))
        .arg("--config")
        .arg(dir.join("collector.toml"))
        .args(extra)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let addr = wait_for("the collector listening or gone", Duration::from_secs(60), || {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "a refusal exits non-zero");
            return Some(Err(strip_ansi(&std::fs::read_to_string(&log_path).unwrap())));
        }
        let log = strip_ansi(&std::fs::read_to_string(&log_path).unwrap_or_default());
        let line = log.lines().find(|l| l.contains("listening"))?;
        let addr: std::net::SocketAddr = line.split("addr=").nth(1)?.split_whitespace().next()?.parse().ok()?;
        http("GET", addr, "/readyz", &[], b"").filter(|r| r.status == 200).map(|_| Ok(addr))
    })?;
    Ok((child, addr))
}

/// A way to damage a copied data directory.
type Damage = fn(&Path);

fn stop(mut child: Child) {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_damaged_emptied_or_removed_database_is_refused_or_served_unchanged_and_accept_loss_records_the_loss() {
    let token = "probity_e2e-ledger-1";
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[[agents]]\nid = \"edge-1\"\ntoken_sha256 = \"{}\"\n\n\
         [[services]]\nid = \"web\"\nname = \"Web\"\n  [[services.probes]]\n  id = \"web-tcp\"\n  kind = \"tcp\"\n  \
         target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n",
        hex(probity_config::token_sha256(token))
    );
    let pristine = tempfile::tempdir().unwrap();
    std::fs::write(pristine.path().join("collector.toml"), &config).unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let start = now - 3 * 3_600_000;
    let (c, addr) = start_or_refused(pristine.path(), &[]).unwrap();
    for batch in 0..6u64 {
        let results: Vec<serde_json::Value> = (1..=100u64)
            .map(|i| {
                let seq = batch * 100 + i;
                let ok = seq % 13 != 0;
                let mut r = serde_json::json!({"seq": seq, "probe": "web-tcp", "at": start + seq as i64 * 10_000,
                    "duration_us": 1000 + seq * 7, "ok": ok});
                if !ok {
                    r["error"] = serde_json::json!({"kind": "connect", "message": "refused"});
                }
                r
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({"agent": "edge-1", "instance": "e2e1", "results": results}))
            .unwrap();
        let auth = format!("Bearer {token}");
        let reply = http(
            "POST",
            addr,
            "/api/v1/ingest",
            &[("Authorization", &auth), ("Content-Type", "application/json")],
            &body,
        )
        .unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let figures_path = format!(
        "/api/v1/services/web/availability?from={}&to={}",
        jiff::Timestamp::from_millisecond(start).unwrap(),
        jiff::Timestamp::from_millisecond(now).unwrap()
    );
    let figures = |addr: std::net::SocketAddr| http("GET", addr, &figures_path, &[], b"").unwrap();
    let original = figures(addr);
    assert_eq!(original.status, 200, "{}", original.text());
    stop(c);
    assert!(pristine.path().join("data/ledger").exists());

    let db_file = |dir: &Path| dir.join("data/db/db");
    let variants: [(&str, Damage); 4] = [
        ("db dir removed", |d| std::fs::remove_dir_all(d.join("data/db")).unwrap()),
        ("db file emptied", |d| std::fs::write(d.join("data/db/db"), b"").unwrap()),
        ("db file truncated to 90 %", |d| {
            let f = std::fs::OpenOptions::new().write(true).open(d.join("data/db/db")).unwrap();
            let len = f.metadata().unwrap().len();
            f.set_len(len * 9 / 10).unwrap();
        }),
        ("20 bytes flipped", |d| {
            let path = d.join("data/db/db");
            let mut bytes = std::fs::read(&path).unwrap();
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            for _ in 0..20 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x % bytes.len() as u64) as usize;
                bytes[i] ^= 0x5a;
            }
            std::fs::write(&path, bytes).unwrap();
        }),
    ];
    for (name, damage) in variants {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        assert!(name == "db dir removed" || db_file(dir.path()).exists());
        damage(dir.path());
        match start_or_refused(dir.path(), &[]) {
            Err(log) => {
                assert!(log.to_lowercase().contains("error"), "{name}: refused with a message: {log}");
                if name == "db dir removed" {
                    assert!(
                        log.contains("--accept-loss") && log.contains("600 of 600 acknowledged results missing"),
                        "{name}: {log}"
                    );
                }
            }
            Ok((child, addr)) => {
                assert!(name != "db dir removed", "{name}: must be refused");
                let now = figures(addr);
                // Reported (an error naming what is wrong) or the very same figures.
                assert!(
                    now.status != 200 || now.json() == original.json(),
                    "{name}: served different figures: {}",
                    now.text()
                );
                stop(child);
            }
        }
    }

    // Accepting the loss starts, and the loss is counted.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(pristine.path(), dir.path());
    std::fs::remove_dir_all(dir.path().join("data/db")).unwrap();
    let (child, addr) = start_or_refused(dir.path(), &["--accept-loss"]).unwrap();
    let metrics = http("GET", addr, "/metrics", &[], b"").unwrap().text();
    assert!(metrics.contains("probity_agent_lost_results_total{agent=\"edge-1\"} 600"), "{metrics}");
    stop(child);
    let (child, _) = start_or_refused(dir.path(), &[]).expect("the loss is recorded: the next start is not refused");
    stop(child);
}
