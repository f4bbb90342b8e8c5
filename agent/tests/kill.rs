//! The agent binary killed with SIGKILL mid-stream (once with an undelivered backlog,
//! once while delivering), then stopped with SIGTERM: every seq arrives, none is
//! reused for another result, and the seq continues across restarts. Also the
//! ad-hoc `probe` subcommand's output and exit codes.

use probity_tests as support;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::json;
use support::FakeCollector;

const BIN: &str = env!("CARGO_BIN_EXE_probity-agent");

fn spawn_agent(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn max_seq(c: &FakeCollector) -> u64 {
    c.with(|s| s.results.iter().map(|r| r.seq).max().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_nothing_that_was_spooled() {
    let tcp = support::tcp_target().await;
    let probes = (0..10)
        .map(|i| support::probe(&format!("p{i}"), 50, 40, json!({"kind": "tcp", "target": tcp.to_string()})))
        .collect();
    let collector = FakeCollector::start("lon-1", probes).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("agent.token");
    std::fs::write(&token, format!("{}\n", support::TOKEN)).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "id = \"lon-1\"\ncollector = \"{}\"\ntoken_file = \"{}\"\nspool_dir = \"{}\"\n",
            collector.url,
            token.display(),
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("agent.log");

    // 1: deliver for a while, then the collector goes away and a backlog builds; kill -9.
    let mut agent = spawn_agent(&config, &log);
    collector.wait_until("first deliveries", |s| s.results.len() >= 30).await;
    collector.with(|s| s.unavailable = true);
    let failed = collector.with(|s| s.failed_ingests);
    collector.wait_until("refused deliveries", |s| s.failed_ingests >= failed + 2).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
    let before_restart = max_seq(&collector);

    // 2: back up; kill -9 again while the backlog is being delivered.
    collector.with(|s| s.unavailable = false);
    let mut agent = spawn_agent(&config, &log);
    collector.wait_until("backlog delivery", |s| s.results.iter().any(|r| r.seq > before_restart)).await;
    agent.kill().unwrap();
    agent.wait().unwrap();
    let at_second_kill = max_seq(&collector);

    // 3: restart and stop cleanly with SIGTERM: shutdown flushes the spool.
    let mut agent = spawn_agent(&config, &log);
    collector.wait_until("more results", |s| s.results.iter().any(|r| r.seq > at_second_kill + 20)).await;
    // The shell's own `kill`: no procps needed.
    let status =
        Command::new("sh").args(["-c", "kill -TERM \"$1\"", "sh"]).arg(agent.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = agent.wait().unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "agent exited with {exit}; log:\n{log_text}");
    assert!(log_text.contains("SIGTERM received"), "{log_text}");

    let by_seq = collector.distinct_seqs();
    let seqs: Vec<u64> = by_seq.keys().copied().collect();
    assert_eq!(seqs[0], 1);
    for (i, s) in seqs.iter().enumerate() {
        assert_eq!(*s, i as u64 + 1, "seq {} missing (log:\n{log_text})", i + 1);
    }
    let spool = probity_agent::spool::Spool::open(&dir.path().join("spool"), 1 << 30).unwrap();
    assert_eq!(spool.stats().depth, 0, "undelivered results left after SIGTERM");
    assert_eq!(spool.next_seq(), *seqs.last().unwrap() + 1, "every produced seq was delivered");
}

#[test]
fn probe_subcommand_prints_phases_and_exits_by_outcome() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let open = runtime.block_on(support::tcp_target());
    let up = Command::new(BIN).args(["probe", &format!("tcp://{open}")]).output().unwrap();
    let text = String::from_utf8_lossy(&up.stdout);
    assert!(up.status.success(), "{text}");
    assert!(text.contains("result      up") && text.contains("connect ") && text.contains("total "), "{text}");

    let closed = support::closed_port();
    let down = Command::new(BIN).args(["probe", &format!("tcp://{closed}")]).output().unwrap();
    let text = String::from_utf8_lossy(&down.stdout);
    assert_eq!(down.status.code(), Some(1), "{text}");
    assert!(text.contains(&format!("down (connect): connect: connection refused ({closed})")), "{text}");

    let bad = Command::new(BIN).args(["probe", "gopher://x"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
