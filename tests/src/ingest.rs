//! The collector tests' catalogue and traffic: agents a0..a49 with their tokens, probes
//! `web` (every agent) and `db` (a1 only), result batches, and gzip/zstd bodies.

use std::io::Write;
use std::path::Path;

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
        ..Default::default()
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
