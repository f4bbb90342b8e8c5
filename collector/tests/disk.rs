//! Writes suspended (SPEC §15 "Disk") through the router, with write errors injected by
//! the store's `Faults` (the process test on a real tmpfs is `e2e::disk`): ingest 503 with
//! `Retry-After` and the reason, `/readyz` 503 with the same reason, reads served, and
//! ingest resumed by the disk watch once a probe write succeeds, with nothing counted twice.

use probity_tests::ingest as support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use probity_collector::state::{AppState, StateSpec};
use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::IngestResponse;
use support::*;
use tower::ServiceExt;

struct Harness {
    dir: tempfile::TempDir,
    state: AppState,
    app: Router,
}

fn harness(server_extra: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    let text =
        config_text("127.0.0.1:0", dir.path(), "").replacen("[server]\n", &format!("[server]\n{server_extra}"), 1);
    std::fs::write(&config_path, text).unwrap();
    let config = probity_config::load_collector_config(&config_path).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions { cache_capacity: 16 << 20 }).unwrap());
    let spec =
        StateSpec { config_path: Some(config_path), ledger: Some(dir.path().join("ledger")), ..Default::default() };
    let state = AppState::new(config, store, spec);
    let app = probity_collector::app(state.clone());
    Harness { dir, state, app }
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, String::from_utf8(body).unwrap())
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn post_batch(agent: &str, first_seq: u64, n: u64) -> Request<Body> {
    Request::post("/api/v1/ingest")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", token(agent)))
        .body(Body::from(serde_json::to_vec(&batch(agent, "web", first_seq, n)).unwrap()))
        .unwrap()
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap()["error"].as_str().unwrap().to_string()
}

/// The 503's `Retry-After`, in seconds.
fn retry_after(headers: &axum::http::HeaderMap) -> u64 {
    headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_write_error_suspends_ingest_with_503_keeps_reads_and_resumes_after_a_probe_write() {
    let h = harness("");
    let (status, _, body) = send(&h.app, post_batch("a0", 1, 10)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The disk fails every write from now on (ENOSPC, EIO: sled's error, as the store sees it).
    h.state.store().faults().fail_writes_from(1);
    let (status, headers, body) = send(&h.app, post_batch("a0", 11, 10)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(retry_after(&headers) >= 1);
    let reason = error_of(&body);
    assert!(reason.contains("the database cannot write") && reason.contains("injected write failure"), "{reason}");
    // Every later batch is refused before it touches the store, with the same reason.
    let (status, headers, body) = send(&h.app, post_batch("a1", 1, 5)).await;
    assert_eq!((status, error_of(&body)), (StatusCode::SERVICE_UNAVAILABLE, reason.clone()));
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, headers, body) = send(&h.app, get("/readyz")).await;
    assert_eq!((status, error_of(&body)), (StatusCode::SERVICE_UNAVAILABLE, reason.clone()));
    assert!(headers.contains_key(header::RETRY_AFTER));
    // Reads go on.
    let (status, _, body) = send(&h.app, get("/api/v1/services")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = send(&h.app, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\nprobity_storage_writable 0\n"), "{body}");

    // While the probe write fails, writes stay suspended.
    probity_collector::disk::look(&h.state).await;
    assert!(!h.state.writes().is_writable());
    // The disk is back: the next look's probe write succeeds and ingest resumes.
    h.state.store().faults().disarm();
    probity_collector::disk::look(&h.state).await;
    assert!(h.state.writes().is_writable(), "{:?}", h.state.writes().check());
    let (status, _, _) = send(&h.app, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);

    // The refused batches are sent again: each result stored once, the first batch's
    // results are duplicates.
    let mut accepted = 0;
    let mut duplicates = 0;
    for (agent, first, n) in [("a0", 1, 20), ("a1", 1, 5)] {
        let (status, _, body) = send(&h.app, post_batch(agent, first, n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let answer: IngestResponse = serde_json::from_str(&body).unwrap();
        accepted += answer.accepted;
        duplicates += answer.duplicates;
    }
    assert_eq!((accepted, duplicates), (15, 10));
    assert_eq!(h.state.store().seq_summary("a0").unwrap().unwrap().highest, 20);
    assert_eq!(h.state.store().seq_summary("a0").unwrap().unwrap().lost, 0);
    let (_, _, body) = send(&h.app, get("/metrics")).await;
    assert!(body.contains("\nprobity_storage_writable 1\n"), "{body}");
    drop(h.dir);
}

#[tokio::test]
async fn below_min_free_disk_ingest_is_refused_with_the_watermark_and_the_free_space() {
    // No filesystem has this much free, so the first look suspends writes.
    let h = harness("min_free_disk = \"1024TiB\"\n");
    probity_collector::disk::look(&h.state).await;
    let (status, headers, body) = send(&h.app, post_batch("a0", 1, 3)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(retry_after(&headers), probity_collector::disk::RETRY_AFTER.as_secs());
    let reason = error_of(&body);
    assert!(reason.contains("is below [server] min_free_disk (1024TiB)"), "{reason}");
    assert!(reason.contains(&h.dir.path().display().to_string()), "names data_dir: {reason}");
    let (status, _, body) = send(&h.app, get("/readyz")).await;
    assert_eq!((status, error_of(&body)), (StatusCode::SERVICE_UNAVAILABLE, reason));
    // Nothing was stored.
    assert!(h.state.store().seq_summary("a0").unwrap().is_none());
}
