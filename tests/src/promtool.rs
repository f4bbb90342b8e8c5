//! `promtool`, the Prometheus project's own checker, run on what probity ships: an
//! exposition (`check metrics`), alert rules and their unit tests (`.ci/run` runs `check
//! rules` and `test rules` too). A missing promtool fails the test with the install step:
//! the check is the point, so it is never skipped.

use std::io::Write;
use std::process::{Command, Stdio};

/// Fails unless `promtool check metrics` accepts `exposition` without a lint problem.
pub fn check_metrics(exposition: &str) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing(e));
    child.stdin.take().expect("piped").write_all(exposition.as_bytes()).expect("promtool reads its stdin");
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics refused the exposition:\n{said}\n---\n{exposition}"
    );
}

/// `promtool` with the given arguments, run in the workspace root; fails with its output
/// unless it succeeds.
pub fn run(args: &[&str]) -> String {
    let out = promtool().args(args).current_dir(crate::workspace_root()).output().unwrap_or_else(|e| missing(e));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {} failed:\n{said}", args.join(" "));
    said
}

fn promtool() -> Command {
    Command::new("promtool")
}

fn missing(e: std::io::Error) -> ! {
    panic!(
        "promtool is needed and could not be run ({e}): install it with `apt-get install -y prometheus` (Debian's package provides promtool; .ci/run installs it)"
    )
}
