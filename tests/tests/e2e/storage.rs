//! Storage you can trust (SPEC §15) with real processes: agent instances across a deleted
//! spool, damaged databases refused or reported, kill -9 during ingest, `db check`,
//! `db rebuild`, `db backup` while ingesting and `db restore`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use probity_tests::{Collector, CommandRun, Reply, bin, blocking_client, collector_command, wait_for};

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

/// One agent `edge-1` with `token`, one 10 s probe `web-tcp` of service `web`, data in `data`.
fn one_probe_config(token: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n[[agents]]\nid = \"edge-1\"\ntoken_sha256 = \"{}\"\n\n\
         [[services]]\nid = \"web\"\nname = \"Web\"\n  [[services.probes]]\n  id = \"web-tcp\"\n  kind = \"tcp\"\n  \
         target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n",
        hex(probity_config::token_sha256(token))
    )
}

/// An ingest body of `edge-1` instance `e2e1`: seqs `first..first + n`, result `seq` at
/// `start + seq · 10 s`, every 13th down.
fn results_body(first: u64, n: u64, start: i64) -> Vec<u8> {
    let results: Vec<serde_json::Value> = (first..first + n)
        .map(|seq| {
            let ok = seq % 13 != 0;
            let mut r = serde_json::json!({"seq": seq, "probe": "web-tcp", "at": start + seq as i64 * 10_000,
                "duration_us": 1000 + seq * 7, "ok": ok});
            if !ok {
                r["error"] = serde_json::json!({"kind": "connect", "message": "refused"});
            }
            r
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"agent": "edge-1", "instance": "e2e1", "results": results})).unwrap()
}

/// Posts an ingest body; the status, or `None` when nobody answers (a killed collector).
fn post_results(
    client: &reqwest::blocking::Client,
    addr: std::net::SocketAddr,
    token: &str,
    body: &[u8],
) -> Option<u16> {
    let sent = client
        .post(format!("http://{addr}/api/v1/ingest"))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body.to_vec())
        .timeout(Duration::from_secs(30))
        .send();
    sent.ok().map(|r| r.status().as_u16())
}

/// `probity-collector db ARGS` on the collector config in `dir`.
fn db(dir: &Path, args: &[&str]) -> CommandRun {
    let mut full = vec!["db"];
    full.extend_from_slice(args);
    collector_command(&dir.join("collector.toml"), &full)
}

#[test]
fn a_damaged_emptied_or_removed_database_is_refused_or_served_unchanged_and_accept_loss_records_the_loss() {
    let token = "probity_e2e-ledger-1";
    let pristine = tempfile::tempdir().unwrap();
    std::fs::write(pristine.path().join("collector.toml"), one_probe_config(token)).unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let start = now - 3 * 3_600_000;
    let (c, addr) = start_or_refused(pristine.path(), &[]).unwrap();
    let client = blocking_client(None);
    for batch in 0..6u64 {
        assert_eq!(post_results(&client, addr, token, &results_body(batch * 100 + 1, 100, start)), Some(200));
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
    let clean = db(pristine.path(), &["check"]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean.stdout.starts_with("ok: ") && clean.stdout.contains(" 600 results"), "{clean:?}");
    for (name, damage) in variants {
        // `db check` on one damaged copy, a start on another.
        let checked = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), checked.path());
        damage(checked.path());
        let check = db(checked.path(), &["check"]);
        assert!(check.code == 0 || check.code == 1, "{name}: db check ran: {check:?}");
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        assert!(name == "db dir removed" || db_file(dir.path()).exists());
        damage(dir.path());
        match start_or_refused(dir.path(), &[]) {
            Err(log) => {
                assert_eq!(check.code, 1, "{name}: refused at start, so db check reports it too: {check:?}");
                assert!(check.stdout.contains("FAILED"), "{name}: {check:?}");
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
                // Reported (an error naming what is wrong) or the very same figures; and
                // db check passes only a database serving them.
                assert!(
                    now.status != 200 || now.json() == original.json(),
                    "{name}: served different figures: {}",
                    now.text()
                );
                assert!(
                    check.code == 1 || now.status == 200,
                    "{name}: db check passed a database that errs: {check:?}"
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

/// A pseudo-random number below `n` (xorshift; the seed is printed by the test using it).
fn below(x: &mut u64, n: u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x % n
}

#[test]
fn sigkill_at_random_points_of_ingest_leaves_db_check_clean_and_every_acknowledged_result_stored_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    const BATCHES: u64 = 120;
    const SIZE: u64 = 25;
    let token = "probity_e2e-kill-1";
    let dir = tempfile::tempdir().unwrap();
    let config = probity_tests::write_file(dir.path(), "collector.toml", one_probe_config(token).as_bytes());
    let start = jiff::Timestamp::now().as_millisecond() - 10 * 3_600_000;
    let mut seed = jiff::Timestamp::now().as_nanosecond() as u64 | 1;
    println!("seed {seed}");
    // Batches acknowledged so far, in order: a batch not answered 200 is sent again, as an
    // agent's spool does.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let (mut kills, mut interrupted) = (0, 0);
    while acknowledged.load(Ordering::SeqCst) < BATCHES {
        let mut c = Collector::start_at(&config);
        let (addr, done) = (c.addr, acknowledged.clone());
        let poster = std::thread::spawn(move || {
            let client = blocking_client(None);
            loop {
                let b = done.load(Ordering::SeqCst);
                if b == BATCHES {
                    return;
                }
                match post_results(&client, addr, token, &results_body(b * SIZE + 1, SIZE, start)) {
                    Some(200) => done.fetch_add(1, Ordering::SeqCst),
                    Some(status) => panic!("batch {b}: status {status}"),
                    None => return,
                };
            }
        });
        if kills < 6 {
            // A random batch count, not a random time: ingest is fast enough on a quiet
            // machine to finish every batch before any fixed delay. Then up to 3 ms more,
            // so the kill lands somewhere in the next batch's handling.
            let acked = acknowledged.load(Ordering::SeqCst);
            let target = acked + 1 + below(&mut seed, ((BATCHES - acked) / 3).max(1));
            while acknowledged.load(Ordering::SeqCst) < target && !poster.is_finished() {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_micros(below(&mut seed, 3_000)));
            c.kill();
            kills += 1;
            poster.join().unwrap();
            interrupted += u32::from(acknowledged.load(Ordering::SeqCst) < BATCHES);
        } else {
            poster.join().unwrap();
            c.signal("TERM");
            assert!(c.child.wait().unwrap().success());
        }
    }
    assert!(interrupted > 0, "seed {seed}: some kill landed while batches were still being sent");
    let check = db(dir.path(), &["check"]);
    assert_eq!(check.code, 0, "seed {seed}: {check:?}");
    let total = BATCHES * SIZE;
    assert!(check.stdout.starts_with("ok: ") && check.stdout.contains(&format!(" {total} results")), "{check:?}");
    // Nothing lost, nothing counted twice, through the API too.
    let c = Collector::start_at(&config);
    let agents = c.get("/api/v1/agents").json();
    let edge = agents["agents"].as_array().unwrap().iter().find(|a| a["id"] == "edge-1").unwrap().clone();
    assert_eq!(edge["lost_results"], 0, "{edge}");
    // Whole minutes around the results (a minute counts when its start lies in the window).
    let window = format!(
        "from={}&to={}",
        jiff::Timestamp::from_millisecond(start - 120_000).unwrap(),
        jiff::Timestamp::from_millisecond(start + (total as i64 + 1) * 10_000 + 120_000).unwrap()
    );
    let latency = c.get(&format!("/api/v1/services/web/latency?{window}")).json();
    let succeeded = (1..=total).filter(|seq| seq % 13 != 0).count() as u64;
    assert_eq!(latency["count"].as_u64(), Some(succeeded), "{latency}");
}

#[test]
fn a_backup_taken_while_ingesting_restores_to_the_same_figures_and_an_older_one_shows_the_loss() {
    let token = "probity_e2e-backup-1";
    let original = tempfile::tempdir().unwrap();
    std::fs::write(original.path().join("collector.toml"), one_probe_config(token)).unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let start = now - 12 * 3_600_000;
    let (c, addr) = start_or_refused(original.path(), &[]).unwrap();
    let client = blocking_client(None);
    // Six hours, acknowledged before the backup starts…
    for b in 0..12u64 {
        assert_eq!(post_results(&client, addr, token, &results_body(b * 180 + 1, 180, start)), Some(200));
    }
    // …then more arriving while it is taken.
    let poster = std::thread::spawn(move || {
        let client = blocking_client(None);
        for b in 12..60u64 {
            assert_eq!(post_results(&client, addr, token, &results_body(b * 20 + 2000, 20, start)), Some(200));
        }
    });
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("collector.backup");
    let backup = db(original.path(), &["backup", dest.to_str().unwrap()]);
    assert_eq!(backup.code, 0, "{backup:?}");
    assert!(backup.stdout.contains("MB/s") && backup.stdout.contains("checked"), "{backup:?}");
    assert!(!backups.path().join("collector.backup.partial").exists());
    let again = db(original.path(), &["backup", dest.to_str().unwrap()]);
    assert_eq!(again.code, 2, "an existing backup is never overwritten: {again:?}");
    // A check while the collector runs is the collector's.
    let running = db(original.path(), &["check"]);
    assert_eq!(running.code, 0, "{running:?}");
    let refused = db(original.path(), &["restore", dest.to_str().unwrap()]);
    assert!(refused.code == 2 && refused.stderr.contains("a collector is running"), "{refused:?}");
    poster.join().unwrap();
    // Acknowledged after the backup, certainly.
    assert_eq!(post_results(&client, addr, token, &results_body(5000, 10, start)), Some(200));
    let period = format!(
        "from={}&to={}",
        jiff::Timestamp::from_millisecond(start).unwrap(),
        jiff::Timestamp::from_millisecond(start + 6 * 3_600_000).unwrap()
    );
    let paths =
        [format!("/api/v1/services/web/availability?{period}"), format!("/api/v1/services/web/latency?{period}")];
    let figures = |addr| paths.iter().map(|p| http("GET", addr, p, &[], b"").unwrap().json()).collect::<Vec<_>>();
    let before = figures(addr);
    assert!(before[1]["count"].as_u64().unwrap() >= 1800, "{:?}", before[1]);
    stop(c);

    // Into a fresh data_dir: it starts as it is, with the same figures for the period.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("collector.toml"), one_probe_config(token)).unwrap();
    let restored = db(fresh.path(), &["restore", dest.to_str().unwrap()]);
    assert_eq!(restored.code, 0, "{restored:?}");
    assert!(!restored.stdout.contains("warning"), "{restored:?}");
    let (c, addr) = start_or_refused(fresh.path(), &[]).expect("a restored backup starts");
    assert_eq!(figures(addr), before);
    stop(c);
    let check = db(fresh.path(), &["check"]);
    assert_eq!(check.code, 0, "{check:?}");

    // Over the newer data_dir it came from: the results acknowledged since show as missing.
    let over = db(original.path(), &["restore", dest.to_str().unwrap()]);
    assert_eq!(over.code, 0, "{over:?}");
    assert!(over.stdout.contains("acknowledged results after this backup"), "{over:?}");
    assert!(over.stdout.contains("db.replaced-"), "the replaced database is kept: {over:?}");
    let log = start_or_refused(original.path(), &[]).expect_err("an older backup over newer data is refused");
    assert!(log.contains("acknowledged results missing") && log.contains("5000-5009"), "{log}");
    let (c, _) = start_or_refused(original.path(), &["--accept-loss"]).unwrap();
    stop(c);

    // A damaged backup changes nothing.
    let mut bytes = std::fs::read(&dest).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    let damaged = backups.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes).unwrap();
    let refused = db(fresh.path(), &["restore", damaged.to_str().unwrap()]);
    assert!(refused.code == 1 && refused.stderr.contains("damaged"), "{refused:?}");
    let (c, addr) = start_or_refused(fresh.path(), &[]).unwrap();
    assert_eq!(figures(addr), before);
    stop(c);
}

/// Waits until sled's lock on `db` is free again (a dropped handle lets go of it from a
/// background thread), testing it as sled takes it.
fn wait_unlocked(db: &Path) {
    use fs2::FileExt;
    wait_for("sled to release the database", Duration::from_secs(30), || {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(db.join("db")).unwrap();
        file.try_lock_exclusive().ok().map(|()| FileExt::unlock(&file).unwrap())
    });
}

#[test]
fn db_check_exits_1_naming_a_tampered_derived_record_and_db_rebuild_puts_it_right() {
    let token = "probity_e2e-tamper-1";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("collector.toml"), one_probe_config(token)).unwrap();
    let start = jiff::Timestamp::now().as_millisecond() - 5 * 3_600_000;
    let (c, addr) = start_or_refused(dir.path(), &[]).unwrap();
    let client = blocking_client(None);
    for b in 0..4u64 {
        assert_eq!(post_results(&client, addr, token, &results_body(b * 300 + 1, 300, start)), Some(200));
    }
    stop(c);
    assert_eq!(db(dir.path(), &["check"]).code, 0);
    let db_dir = dir.path().join("data/db");
    // Two tamperings of one hour's minutes: another hour's record copied in whole (its
    // checksum, of the other key, no longer holds), and another hour's minutes sealed
    // afresh under this key (well-formed, and wrong). The seal is keys.rs's: the value,
    // then the CRC-32 of key and value, little-endian.
    let seal = |key: &[u8], value: &[u8]| {
        let mut h = crc32fast::Hasher::new();
        h.update(key);
        h.update(value);
        [value, &h.finalize().to_le_bytes()[..]].concat()
    };
    for (resealed, expected) in [
        (false, "damaged: checksum mismatch in tree hist_minutes"),
        (true, "differs: hist_minutes of probe web-tcp, agent edge-1, hour "),
    ] {
        {
            let sled = sled::Config::new().path(&db_dir).open().unwrap();
            let minutes = sled.open_tree("hist_minutes").unwrap();
            let mut hours = minutes.iter().map(Result::unwrap);
            let (first, _) = hours.next().unwrap();
            let (_, second) = hours.next().unwrap();
            let tampered = if resealed { seal(&first, &second[..second.len() - 4]) } else { second.to_vec() };
            minutes.insert(first, tampered).unwrap();
            sled.flush().unwrap();
        }
        wait_unlocked(&db_dir);
        let check = db(dir.path(), &["check"]);
        assert_eq!(check.code, 1, "{check:?}");
        assert!(check.stdout.contains(expected) && check.stdout.contains("FAILED"), "{expected}: {check:?}");
        let rebuild = db(dir.path(), &["rebuild"]);
        assert_eq!(rebuild.code, 0, "{rebuild:?}");
        assert!(rebuild.stdout.contains("1200 results"), "{rebuild:?}");
        let check = db(dir.path(), &["check"]);
        assert_eq!(check.code, 0, "{check:?}");
    }
    // With no collector running, db backup opens the database itself.
    let backups = tempfile::tempdir().unwrap();
    let dest = backups.path().join("offline.backup");
    let backup = db(dir.path(), &["backup", dest.to_str().unwrap()]);
    assert!(backup.code == 0 && backup.stdout.contains("1200 results"), "{backup:?}");
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("collector.toml"), one_probe_config(token)).unwrap();
    assert_eq!(db(fresh.path(), &["restore", dest.to_str().unwrap()]).code, 0);
    assert_eq!(db(fresh.path(), &["check"]).code, 0);
    // Rebuild refuses while a collector runs.
    let (c, _) = start_or_refused(dir.path(), &[]).unwrap();
    let refused = db(dir.path(), &["rebuild"]);
    assert!(refused.code == 2 && refused.stderr.contains("a collector is running"), "{refused:?}");
    stop(c);
}
