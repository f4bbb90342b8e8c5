//! The agent binary as an operator runs it: `check-config` reads what the config names,
//! `spool_dir` has no silent default, and a refused token is logged plainly, retried
//! soon, and never described as probing from a cache that does not exist.

use probity_tests as support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::FakeCollector;

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_probity-agent"));
    c.env_remove("RUST_LOG").env_remove("NO_COLOR");
    c
}

fn write_config(dir: &Path, collector: &str, lines: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(&path, format!("id = \"lon-1\"\ncollector = \"{collector}\"\n{lines}")).unwrap();
    path
}

fn check(path: &Path) -> (Output, String) {
    let out = agent().arg("check-config").arg(path).output().unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    (out, stderr)
}

#[test]
fn check_config_reads_the_token_file_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("agent.token");
    let spool = dir.path().join("spool");
    let lines = format!("token_file = \"{}\"\nspool_dir = \"{}\"\n", token.display(), spool.display());
    let path = write_config(dir.path(), "http://127.0.0.1:9", &lines);

    let (out, stderr) = check(&path);
    assert_eq!(out.status.code(), Some(1), "a missing token_file fails: {stderr}");
    assert_eq!(stderr.matches(&format!("token file {}", token.display())).count(), 1, "{stderr}");
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");

    std::fs::write(&token, "\n").unwrap();
    let (out, stderr) = check(&path);
    assert_eq!(out.status.code(), Some(1), "an empty token_file fails: {stderr}");
    assert!(stderr.contains("is empty"), "{stderr}");

    std::fs::write(&token, "probity_0123\n").unwrap();
    let (out, stderr) = check(&path);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("ok: agent lon-1"));
    assert!(!spool.exists(), "check-config creates nothing");
}

#[test]
fn spool_dir_has_no_silent_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "http://127.0.0.1:9", "token = \"probity_0123\"\n");
    let (out, stderr) = check(&path);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("spool_dir: is required but missing") && stderr.contains("/var/lib/probity-agent"),
        "{stderr}"
    );
    let run = agent().arg("--config").arg(&path).output().unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8(run.stderr).unwrap().contains("spool_dir: is required"));
}

/// A wrong token with no cached assignment: the log says so (not "probing from the cached
/// assignment"), and the next try is seconds away, not minutes.
#[tokio::test]
async fn a_refused_token_without_a_cache_is_logged_plainly_and_retried_soon() {
    let collector = FakeCollector::start("lon-1", vec![]).await;
    collector.with(|s| s.refuse_token = true);
    let dir = tempfile::tempdir().unwrap();
    let lines = format!("token = \"probity_wrong\"\nspool_dir = \"{}\"\n", dir.path().join("spool").display());
    let path = write_config(dir.path(), &collector.url, &lines);
    let mut child = agent().arg("--config").arg(&path).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains("assignment refused") => return line,
                Ok(line) => seen.push(line),
                Err(e) => panic!("no refusal logged ({e}); saw: {seen:#?}"),
            }
        }
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!line.contains('\u{1b}'), "no ANSI escapes into a pipe: {line:?}");
    assert!(line.contains("refused the agent's token (401 Unauthorized)"), "{line}");
    assert!(line.contains("no cached assignment") && !line.contains("probing from the cached"), "{line}");
    assert!(line.contains("retry_in=5s"), "the first retry is 5 s away: {line}");
}
