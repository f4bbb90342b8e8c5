//! The real binary failing to start: each cause is printed once, on stderr, without ANSI
//! colour when stderr is not a terminal, as JSON lines with `--log-format json`, and a
//! data_dir the collector may not write is told apart from a damaged database.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

fn collector() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_probity-collector"));
    c.env_remove("RUST_LOG").env_remove("NO_COLOR");
    c
}

fn config(dir: &Path, listen: &str, data_dir: &Path) -> std::path::PathBuf {
    let path = dir.join("collector.toml");
    let text = format!(
        "[server]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\n\n[embedded_agent]\nenabled = true\n\n\
         [[services]]\nid = \"s\"\n\n  [[services.probes]]\n  id = \"p\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n",
        data_dir.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// Stderr of a run that must fail with exit 1, checked for what every failure shares.
fn failed(output: Output) -> String {
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no ANSI escapes when stderr is a pipe: {stderr:?}");
    assert_eq!(stderr.lines().filter(|l| l.contains("ERROR")).count(), 1, "one error line: {stderr}");
    stderr
}

fn once(stderr: &str, text: &str) {
    assert_eq!(stderr.matches(text).count(), 1, "{text:?} exactly once in: {stderr}");
}

#[test]
fn a_missing_config_names_its_path_and_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let stderr = failed(collector().arg("--config").arg(&missing).output().unwrap());
    once(&stderr, &format!("cannot read {}", missing.display()));
    once(&stderr, "No such file or directory");

    let check = collector().arg("check-config").arg(&missing).output().unwrap();
    let stderr = String::from_utf8(check.stderr).unwrap();
    assert_eq!(check.status.code(), Some(1));
    once(&stderr, "cannot read");
    once(&stderr, "No such file or directory");
}

#[test]
fn json_logs_are_one_object_per_line_with_the_error_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let output = collector().args(["--log-format", "json", "--config"]).arg(&missing).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<serde_json::Value> =
        stderr.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "ERROR");
    let message = lines[0]["message"].as_str().unwrap();
    assert!(message.starts_with("cannot read ") && message.ends_with("(os error 2)"), "{message}");
    once(message, "No such file or directory");
}

#[test]
fn a_bad_log_filter_is_refused_before_anything_runs() {
    let output = collector().args(["--log-level", "=info=", "check-config", "/nonexistent"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8(output.stderr).unwrap().contains("--log-level"));
}

#[test]
fn a_port_in_use_is_named_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &addr.to_string(), &dir.path().join("data"));
    let stderr = failed(collector().arg("--config").arg(&path).output().unwrap());
    once(&stderr, &format!("cannot listen on {addr}"));
    once(&stderr, "Address already in use");
}

#[test]
fn a_data_dir_that_is_a_file_is_named_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let path = config(dir.path(), "127.0.0.1:0", &file);
    let stderr = failed(collector().arg("--config").arg(&path).output().unwrap());
    once(&stderr, &format!("cannot create data_dir {}", file.display()));
    once(&stderr, "File exists");
}

/// A data_dir the collector may not write is a permissions problem, never "corrupt": moving
/// the database aside would lose its history.
#[test]
fn a_data_dir_it_may_not_write_is_not_called_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let path = config(dir.path(), "127.0.0.1:0", &data);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    let mut command = collector();
    command.arg("--config").arg(&path);
    // root ignores modes (CI runs as root): then the collector runs as nobody.
    if std::fs::write(data.join("probe"), "").is_ok() {
        std::fs::remove_file(data.join("probe")).unwrap();
        command.uid(65534).gid(65534);
    }
    let stderr = failed(command.output().unwrap());
    // Whichever step meets the permission first (making data_dir private, or opening the
    // database) names data_dir once and its cause once.
    let named = [
        format!("cannot make data_dir {} private", data.display()),
        format!("cannot open the database at {}", data.join("db").display()),
    ];
    assert_eq!(named.iter().map(|n| stderr.matches(n.as_str()).count()).sum::<usize>(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("Permission denied").count() + stderr.matches("Operation not permitted").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("not corruption") && stderr.contains("do not move the database aside"), "{stderr}");
    assert!(!stderr.contains("mv "), "no advice to move it aside: {stderr}");
}
