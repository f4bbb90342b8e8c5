//! Storage you can trust (SPEC §15) with real processes: agent instances across a deleted
//! spool.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use probity_tests::{Collector, bin, wait_for};

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
"#,
        hex(probity_config::token_sha256(token)),
        target.local_addr().unwrap()
    );
    let c = Collector::start(&config);
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
    drop(target);
}
