//! The collector and agent binaries as child processes, killed when dropped. Their
//! stderr (the log) is read line by line on a thread; a test waits for a line (the
//! collector's `listening` line gives its bound address, so configs listen on
//! 127.0.0.1:0) and can read the whole log for failure messages.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::client::{Reply, blocking_client};

/// How long a wait for a log line may take before the test gives up: a safety net
/// against a hung process, not a figure anything is judged by.
const LOG_WAIT: Duration = Duration::from_secs(60);

/// A child's log as read so far, and whether it has ended.
#[derive(Default)]
struct Log {
    state: Mutex<(Vec<String>, bool)>,
    grew: Condvar,
}

impl Log {
    fn follow(child: &mut Child) -> Arc<Log> {
        let log = Arc::new(Log::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                l.state.lock().unwrap().0.push(line);
                l.grew.notify_all();
            }
            l.state.lock().unwrap().1 = true;
            l.grew.notify_all();
        });
        log
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().0.join("\n")
    }

    /// The first line from `*cursor` on containing `needle`; moves the cursor past it.
    fn wait_for(&self, cursor: &mut usize, needle: &str, who: &str) -> String {
        let deadline = Instant::now() + LOG_WAIT;
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(i) = state.0[*cursor..].iter().position(|l| l.contains(needle)) {
                *cursor += i + 1;
                return state.0[*cursor - 1].clone();
            }
            *cursor = state.0.len();
            let text = state.0.join("\n");
            assert!(!state.1, "the {who}'s log ended before {needle:?}:\n{text}");
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {needle:?} in the {who}'s log after {LOG_WAIT:?}:\n{text}");
            state = self.grew.wait_timeout(state, left).unwrap().0;
        }
    }
}

fn spawn(program: &str, config: &Path, cwd: &Path) -> Child {
    spawn_command(Command::new(crate::bin(program)), config, cwd)
}

fn spawn_command(mut command: Command, config: &Path, cwd: &Path) -> Child {
    command
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .env("RUST_LOG", "info,probity_agent::ship=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status().unwrap().success();
    assert!(ok, "kill -{sig} {}", child.id());
}

/// A collector process. Its config must listen on port 0 (or any free port): the address
/// is taken from the `listening` line of its log.
pub struct Collector {
    pub child: Child,
    pub addr: SocketAddr,
    pub tls: bool,
    pub config_path: PathBuf,
    log: Arc<Log>,
    cursor: usize,
    dir: Option<tempfile::TempDir>,
    /// Made on first use only: a blocking client must not be made or dropped in a runtime.
    http: OnceLock<reqwest::blocking::Client>,
}

impl Collector {
    /// Starts `probity-collector` with `config` in a fresh temporary directory (its working
    /// directory, so `data_dir = "data"` lands there); returns once it listens.
    pub fn start(config: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let config_path = crate::write_file(dir.path(), "collector.toml", config.as_bytes());
        let mut c = Collector::start_at(&config_path);
        c.dir = Some(dir);
        c
    }

    /// Starts `probity-collector --config CONFIG` in CONFIG's directory; returns once it
    /// listens. The caller keeps the directory (to restart on the same data, say).
    pub fn start_at(config_path: &Path) -> Collector {
        let cwd = config_path.parent().expect("a config file's directory");
        let mut child = spawn("probity-collector", config_path, cwd);
        let log = Log::follow(&mut child);
        let mut cursor = 0;
        let line = log.wait_for(&mut cursor, "listening", "collector");
        let addr = line
            .split("addr=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no addr= in {line:?}"));
        let tls = line.contains("tls=true");
        Collector {
            child,
            addr,
            tls,
            config_path: config_path.to_path_buf(),
            log,
            cursor,
            dir: None,
            http: OnceLock::new(),
        }
    }

    /// The directory it runs in.
    pub fn dir(&self) -> &Path {
        self.config_path.parent().expect("a config file's directory")
    }

    /// `http(s)://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", if self.tls { "https" } else { "http" }, self.addr)
    }

    fn http(&self) -> &reqwest::blocking::Client {
        self.http.get_or_init(|| blocking_client(None))
    }

    /// A blocking GET (plain threads only; tokio tests use `client()` with `url`).
    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.http().get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().unwrap_or_else(|e| panic!("GET {path}: {e}")))
    }

    pub fn post_json(&self, path: &str, token: &str, body: &serde_json::Value) -> Reply {
        let resp = self
            .http()
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        Reply::read(resp)
    }

    /// Any method with a bearer token and an optional JSON body (PATCH, DELETE, …).
    pub fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Reply {
        let mut req = self.http().request(method.clone(), self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Reply::read(req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}")))
    }

    /// Sends `kill -SIG` (TERM, HUP, …).
    pub fn signal(&self, sig: &str) {
        signal(&self.child, sig);
    }

    /// Waits for the next log line containing `needle` (after the last one waited for);
    /// panics with the log if the process ends first.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.log.wait_for(&mut self.cursor, needle, "collector")
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits up to `timeout` for the process to end on its own (after a signal, say); its
    /// status, or `None` while it still runs. `timeout` is the bound under test or a safety
    /// net, never a figure to judge by.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a run of a command line printed, and how it ended.
#[derive(Debug)]
pub struct CommandRun {
    /// The exit code (-1: killed by a signal).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `probity-collector ARGS --config CONFIG` in CONFIG's directory (so a relative
/// `data_dir` means what it means to a collector started there) and waits for it.
pub fn collector_command(config_path: &Path, args: &[&str]) -> CommandRun {
    let cwd = config_path.parent().expect("a config file's directory");
    let out = Command::new(crate::bin("probity-collector"))
        .args(args)
        .arg("--config")
        .arg(config_path)
        .current_dir(cwd)
        .output()
        .unwrap();
    CommandRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// An agent process with a config of its own in a temporary directory.
pub struct Agent {
    pub child: Child,
    pub dir: tempfile::TempDir,
    log: Arc<Log>,
    cursor: usize,
}

impl Agent {
    /// Starts `probity-agent` as `id` with `token`, delivering to `collector` (a base URL).
    pub fn start(id: &str, token: &str, collector: &str) -> Agent {
        Agent::start_with(id, token, collector, Command::new(crate::bin("probity-agent")))
    }

    /// Starts the agent under `faketime` with its wall clock shifted by `shift`
    /// (libfaketime's relative format: `"-2h"`, `"+10m"`); its monotonic clock is left alone.
    pub fn start_with_clock_shift(id: &str, token: &str, collector: &str, shift: &str) -> Agent {
        let found = Command::new("faketime").args(["-f", "+0", "true"]).status().is_ok_and(|s| s.success());
        assert!(found, "this test needs faketime: apt-get install -y faketime (.ci/run installs it)");
        // libfaketime preloaded into the agent itself rather than through the `faketime`
        // wrapper, which forks: killing the wrapper would leave the agent running. The
        // loader expands `$LIB` to the multiarch library directory.
        let mut command = Command::new(crate::bin("probity-agent"));
        command
            .env("LD_PRELOAD", "/usr/$LIB/faketime/libfaketime.so.1")
            .env("FAKETIME", shift)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        Agent::start_with(id, token, collector, command)
    }

    /// Starts `command --config CONFIG` (a wrapper such as `ip netns exec NS` with
    /// `probity-agent`'s path from [`crate::bin`] as its arguments) with a config the caller
    /// wrote in `dir`, which the agent keeps and runs in.
    pub fn start_command(command: Command, config: &Path, dir: tempfile::TempDir) -> Agent {
        let mut child = spawn_command(command, config, dir.path());
        let log = Log::follow(&mut child);
        Agent { child, dir, log, cursor: 0 }
    }

    fn start_with(id: &str, token: &str, collector: &str, command: Command) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "id = \"{id}\"\ncollector = \"{collector}\"\ntoken = \"{token}\"\nspool_dir = \"{}\"\n",
            dir.path().join("spool").display()
        );
        let path = crate::write_file(dir.path(), "agent.toml", config.as_bytes());
        let mut child = spawn_command(command, &path, dir.path());
        let log = Log::follow(&mut child);
        Agent { child, dir, log, cursor: 0 }
    }

    /// Waits for the next log line containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        self.log.wait_for(&mut self.cursor, needle, "agent")
    }

    pub fn log(&self) -> String {
        self.log.text()
    }

    /// SIGTERM (the agent delivers what it can), then waits for it to end (a minute at
    /// most, a safety net); panics with its log if it does not.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        let status = wait_exit(&mut self.child, LOG_WAIT);
        status.unwrap_or_else(|| panic!("the agent did not stop after SIGTERM:\n{}", self.log()))
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
