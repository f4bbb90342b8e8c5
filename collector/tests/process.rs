//! The real binary on a real socket: every acknowledged result survives SIGKILL, duplicates
//! are found across a restart, SIGTERM drains and exits 0, SIGHUP reloads, and a damaged
//! database is refused with its path and the recovery step.

use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::{IngestRequest, IngestResponse};
use probity_tests::ingest::*;
use probity_tests::{Collector, client};

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, config_text("127.0.0.1:0", &dir.path().join("data"), "")).unwrap();
    (dir, config)
}

#[tokio::test]
async fn every_acknowledged_result_survives_sigkill_and_is_a_duplicate_after_restart() {
    let (dir, config) = setup();
    let client = client();
    let batches: Vec<IngestRequest> = (0..10).map(|i| batch(&agent_name(i), "web", 1, 1000)).collect();
    {
        let c = Collector::start_at(&config);
        let answers = futures_join(&client, &c, &batches).await;
        assert!(answers.iter().all(|a| a.accepted == 1000));
        // SIGKILL right after the last 200: no chance to flush anything more.
        let mut c = c;
        c.child.kill().unwrap();
        c.child.wait().unwrap();
    }
    {
        let store = Store::open(&dir.path().join("data/db"), &StoreOptions::default()).unwrap();
        assert_eq!(store.raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 10_000);
        for i in 0..10 {
            let s = store.seq_summary(&agent_name(i)).unwrap().unwrap();
            assert_eq!((s.highest, s.received, s.lost), (1000, 1000, 0));
            assert!(!store.view_runs("web", &agent_name(i), i64::MIN, i64::MAX).unwrap().is_empty());
        }
    }
    let mut c = Collector::start_at(&config);
    let answers = futures_join(&client, &c, &batches).await;
    assert!(answers.iter().all(|a| a.accepted == 0 && a.duplicates == 1000), "dedup across restart");
    c.signal("TERM");
    c.wait_for_log("stopped");
    let status = c.child.wait().unwrap();
    assert!(status.success(), "SIGTERM exits 0: {status:?}");
}

async fn futures_join(client: &reqwest::Client, c: &Collector, batches: &[IngestRequest]) -> Vec<IngestResponse> {
    let mut tasks = Vec::new();
    for b in batches {
        let (client, url, b) = (client.clone(), c.url(""), b.clone());
        let c = CollectorRef { url };
        tasks.push(tokio::spawn(async move { c.post(&client, &b).await }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Just the address, so requests can run on spawned tasks.
struct CollectorRef {
    url: String,
}

impl CollectorRef {
    async fn post(&self, client: &reqwest::Client, req: &IngestRequest) -> IngestResponse {
        let resp = client
            .post(format!("{}/api/v1/ingest", self.url))
            .bearer_auth(token(&req.agent))
            .header("content-encoding", "zstd")
            .body(zstd(&serde_json::to_vec(req).unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }
}

#[tokio::test]
async fn sighup_applies_a_valid_catalogue_and_refuses_an_invalid_one() {
    let (dir, config) = setup();
    let client = client();
    let mut c = Collector::start_at(&config);
    let url = c.url("/api/v1/agent/assignment");
    let etag = || async {
        let r = client.get(&url).bearer_auth(token("a0")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.headers()["etag"].to_str().unwrap().to_string()
    };
    let before = etag().await;
    let extra = "[[services]]\nid = \"mail\"\nname = \"Mail\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"smtp\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:25\"\n  interval = \"1m\"\n  timeout = \"5s\"\n";
    std::fs::write(&config, config_text("127.0.0.1:0", &dir.path().join("data"), extra)).unwrap();
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");
    let after = etag().await;
    assert_ne!(before, after);
    std::fs::write(&config, "[server]\nbogus = 1\n").unwrap();
    c.signal("HUP");
    let line = c.wait_for_log("reload refused");
    assert!(line.contains("bogus"), "{line}");
    assert_eq!(etag().await, after);
}

#[test]
fn a_damaged_database_is_refused_with_its_path_and_the_recovery_step() {
    let (dir, config) = setup();
    {
        let store = Store::open(&dir.path().join("data/db"), &StoreOptions::default()).unwrap();
        store.flush().unwrap();
    }
    let log = dir.path().join("data/db/db");
    let len = std::fs::metadata(&log).unwrap().len() as usize;
    std::fs::write(&log, vec![0xA5u8; len.max(4096)]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_probity-collector"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let db = dir.path().join("data/db").display().to_string();
    assert!(stderr.contains(&format!("cannot open the database at {db}")), "{stderr}");
    assert!(stderr.contains("move it aside") && stderr.contains("agents re-send"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_probity-collector"))
        .args(["--config", "/nonexistent/probity.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/probity.toml"));
}

#[tokio::test]
async fn the_embedded_agent_probes_and_stores_through_the_ingest_path() {
    let dir = tempfile::tempdir().unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "[embedded_agent]\nenabled = true\nid = \"local\"\n\n[[services]]\nid = \"here\"\nname = \"Here\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"here-tcp\"\n  kind = \"tcp\"\n  target = \"{}\"\n  interval = \"1s\"\n  timeout = \"1s\"\n  agents = [\"local\"]\n",
        target.local_addr().unwrap()
    );
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, config_text("127.0.0.1:0", &dir.path().join("data"), &extra)).unwrap();
    let mut c = Collector::start_at(&config);
    // The probe connecting is the signal that the embedded agent runs; its results are
    // stored once the collector has answered their delivery, which the agent logs.
    let (_conn, _) = tokio::task::spawn_blocking(move || target.accept().unwrap()).await.unwrap();
    c.wait_for_log("delivered");
    let text = client().get(c.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("probity_probe_success{probe=\"here-tcp\",agent=\"local\",service=\"here\"} 1"), "{text}");
    c.signal("TERM");
    c.wait_for_log("stopped");
    assert!(c.child.wait().unwrap().success());
    let store = Store::open(&dir.path().join("data/db"), &StoreOptions::default()).unwrap();
    assert!(store.raw_results("here-tcp", i64::MIN, i64::MAX).unwrap().count() >= 1);
    assert_eq!(store.seq_summary("local").unwrap().unwrap().lost, 0);
}

#[tokio::test]
async fn https_serves_with_the_configured_certificate_and_the_embedded_agent_follows() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "[embedded_agent]\nenabled = true\nid = \"local\"\n\n[[services]]\nid = \"here\"\nname = \"Here\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"here-tcp\"\n  kind = \"tcp\"\n  target = \"{}\"\n  interval = \"1s\"\n  timeout = \"1s\"\n  agents = [\"local\"]\n",
        target.local_addr().unwrap()
    );
    let text = config_text("127.0.0.1:0", &dir.path().join("data"), &extra).replacen(
        "raw_retention = \"30d\"\n",
        &format!(
            "raw_retention = \"30d\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            data.join("tls-chain.pem").display(),
            data.join("tls-key.pem").display()
        ),
        1,
    );
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, text).unwrap();
    let mut c = Collector::start_at(&config);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(data.join("tls-ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let addr = c.addr;
    let https = |path: &str| format!("https://{addr}{path}");
    let health = client.get(https("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(client.get(format!("http://{addr}/healthz")).send().await.is_err(), "plain http is not served");
    let (_conn, _) = tokio::task::spawn_blocking(move || target.accept().unwrap()).await.unwrap();
    c.wait_for_log("delivered");
    let text = client.get(https("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("probity_probe_success{probe=\"here-tcp\",agent=\"local\",service=\"here\"} 1"), "{text}");
    c.signal("TERM");
    c.wait_for_log("stopped");
    assert!(c.child.wait().unwrap().success());
}
