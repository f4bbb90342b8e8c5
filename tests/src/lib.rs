//! probity's one test harness, shared by every test that crosses a process or a socket
//! (the agent's and the collector's integration tests and the `e2e` binary here): real
//! collector and agent processes whose bound address is read from their log
//! (`process`), reqwest for every request (`client`), real local targets on
//! 127.0.0.1:0 (`targets`), an in-process fake collector for the agent (`fake_collector`),
//! the collector tests' catalogue and batches (`ingest`) and promtool's checks (`promtool`). No port is picked by
//! binding and releasing it: every listener is bound where it is used, and processes
//! listen on port 0 and say where.

pub mod client;
pub mod fake_collector;
pub mod ingest;
pub mod process;
pub mod promtool;
pub mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use client::{Reply, blocking_client, client};
pub use fake_collector::{CollectorState, FakeCollector, TOKEN, probe};
pub use process::{Agent, Collector, CommandRun, collector_command};
pub use targets::{
    Ca, ClosedPort, HttpTarget, ca, closed_port, dns_target, http_target, https_target, leaf, tcp_target, tls_listener,
};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// A built binary of the workspace (target/<profile>/NAME), found from the running test
/// binary (target/<profile>/deps/…); cargo builds a package's binaries before its
/// integration tests, and `cargo test --workspace` builds them all.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let path = exe.parent().and_then(Path::parent).expect("target/<profile>/deps").join(name);
    assert!(path.exists(), "{} is not built; run `cargo build --workspace` first", path.display());
    path
}

/// Writes `bytes` to a file in `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Re-checks `check` until it returns `Some`, for state another process exposes only by
/// being asked (a service's state through the API). `timeout` is a safety net against a
/// hung test, generous because CI machines are slow, never the assertion.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
