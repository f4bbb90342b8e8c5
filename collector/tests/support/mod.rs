//! Shared test helpers: a catalogue with many agents, results, compressed bodies, and a
//! collector process started on `127.0.0.1:0` whose address is read from its log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

use probity_config::wire::{ErrorKind, IngestRequest, ProbeResult, ResultError};

pub const AGENTS: usize = 50;

pub fn token(agent: &str) -> String {
    format!("probity_test-token-{agent}")
}

pub fn agent_name(i: usize) -> String {
    format!("a{i}")
}

/// A collector config: agents a0..a49, probe `web` (10s) on every agent, `db` (30s) on a1 only.
pub fn config_text(listen: &str, data_dir: &Path, extra: &str) -> String {
    let mut s =
        format!("[server]\nlisten = \"{listen}\"\ndata_dir = \"{}\"\nraw_retention = \"30d\"\n\n", data_dir.display());
    for i in 0..AGENTS {
        let a = agent_name(i);
        s += &format!(
            "[[agents]]\nid = \"{a}\"\ntoken_sha256 = \"{}\"\n\n",
            hex::encode(probity_config::token_sha256(&token(&a)))
        );
    }
    s += "[[services]]\nid = \"shop\"\nname = \"Shop\"\nowner = \"ops\"\n\n";
    s += "  [[services.probes]]\n  id = \"web\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n\n";
    s += "  [[services.probes]]\n  id = \"db\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"30s\"\n  timeout = \"5s\"\n  agents = [\"a1\"]\n\n";
    s += extra;
    s
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn result(seq: u64, probe: &str, at: i64, down: Option<ErrorKind>) -> ProbeResult {
    ProbeResult {
        seq,
        probe: probe.into(),
        at,
        duration_us: 1000 + seq % 5000,
        ok: down.is_none(),
        status: None,
        phases: None,
        error: down.map(|kind| ResultError { kind, message: "failed".into() }),
        cert_not_after: None,
    }
}

/// `n` results of `probe` from `first_seq`, 10 s apart, ending before now.
pub fn batch(agent: &str, probe: &str, first_seq: u64, n: u64) -> IngestRequest {
    let start = now_ms() - 3_600_000;
    IngestRequest {
        agent: agent.into(),
        instance: None,
        results: (0..n)
            .map(|i| {
                let seq = first_seq + i;
                let down = if seq.is_multiple_of(7) { Some(ErrorKind::Timeout) } else { None };
                result(seq, probe, start + (seq as i64 % 300) * 10_000, down)
            })
            .collect(),
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// A collector child process and the address it listens on.
pub struct Collector {
    pub child: Child,
    pub addr: String,
    pub stderr: BufReader<ChildStderr>,
    pub config: PathBuf,
}

impl Collector {
    /// Starts the binary and waits for its "listening" log line.
    pub fn start(config: &Path) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_probity-collector"))
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let line = read_until(&mut stderr, "listening");
        let addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        Collector { child, addr, stderr, config: config.to_path_buf() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn signal(&self, sig: &str) {
        let ok =
            Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap().success();
        assert!(ok, "kill -{sig}");
    }

    /// Reads log lines until one contains `needle`; panics if the process ends first.
    pub fn wait_for_log(&mut self, needle: &str) -> String {
        read_until(&mut self.stderr, needle)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_until(r: &mut impl BufRead, needle: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 {
            panic!("the collector's log ended before {needle:?}:\n{seen}");
        }
        if line.contains(needle) {
            return line;
        }
        seen += &line;
    }
}

pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}
