//! Router tests through `oneshot` (no socket): health, assignment with ETag/304, ingest
//! auth (401/403), bodies (400/413/415, gzip, zstd, zip bombs), every reject reason,
//! duplicates, 50 concurrent agents, out-of-order replay, reload, metrics.

use probity_tests::ingest as support;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use probity_collector::runs::{Observation, runs_from_observations};
use probity_collector::state::{AppState, Limits, StateSpec};
use probity_collector::store::{Store, StoreOptions};
use probity_config::wire::{ErrorKind, IngestRequest, IngestResponse};
use support::*;
use tower::ServiceExt;

struct Harness {
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    state: AppState,
    app: Router,
}

fn harness_with(limits: Limits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config_text("127.0.0.1:0", &dir.path().join("data"), "")).unwrap();
    let config = probity_config::load_collector_config(&config_path).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions { cache_capacity: 16 << 20 }).unwrap());
    let state = AppState::new(
        config,
        store,
        StateSpec {
            config_path: Some(config_path.clone()),
            limits,
            embedded_token: None,
            signing_key: None,
            ledger: None,
        },
    );
    let app = probity_collector::app(state.clone());
    Harness { _dir: dir, config_path, state, app }
}

fn harness() -> Harness {
    harness_with(Limits::default())
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn ingest_req(agent_token: Option<&str>, encoding: Option<&str>, body: Vec<u8>) -> Request<Body> {
    let mut b = Request::post("/api/v1/ingest").header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = agent_token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(e) = encoding {
        b = b.header(header::CONTENT_ENCODING, e);
    }
    b.body(Body::from(body)).unwrap()
}

async fn ingest(app: &Router, req: &IngestRequest) -> IngestResponse {
    let (status, _, body) =
        send(app, ingest_req(Some(&token(&req.agent)), None, serde_json::to_vec(req).unwrap())).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

fn error_of(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body).unwrap()["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let h = harness();
    for path in ["/healthz", "/readyz"] {
        let (status, _, _) = send(&h.app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn assignment_has_a_stable_etag_and_answers_304() {
    let h = harness();
    let get = |etag: Option<&str>, query: &str| {
        let mut b = Request::get(format!("/api/v1/agent/assignment{query}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", token("a1")));
        if let Some(e) = etag {
            b = b.header(header::IF_NONE_MATCH, e);
        }
        b.body(Body::empty()).unwrap()
    };
    let (status, headers, body) = send(&h.app, get(None, "")).await;
    assert_eq!(status, StatusCode::OK);
    let assignment: probity_config::wire::Assignment = serde_json::from_slice(&body).unwrap();
    assert_eq!(assignment.agent, "a1");
    assert_eq!(assignment.probes.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), ["web", "db"]);
    let etag = headers[header::ETAG].to_str().unwrap().to_string();
    let (_, again, _) = send(&h.app, get(None, "")).await;
    assert_eq!(again[header::ETAG], etag.as_str(), "stable");
    let (status, headers, body) = send(&h.app, get(Some(&etag), "")).await;
    assert_eq!((status, body.len()), (StatusCode::NOT_MODIFIED, 0));
    assert_eq!(headers[header::ETAG], etag.as_str());
    let (status, _, _) = send(&h.app, get(Some("\"other\""), "?agent=a1")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = send(&h.app, get(None, "?agent=a2")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a token for a1 cannot read a2's assignment");
    assert!(error_of(&body).contains("a1"));
}

#[tokio::test]
async fn tokens_are_required_and_bind_the_agent() {
    let h = harness();
    let body = serde_json::to_vec(&batch("a2", "web", 1, 3)).unwrap();
    let (status, _, b) = send(&h.app, ingest_req(None, None, body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{}", error_of(&b));
    let (status, _, _) = send(&h.app, ingest_req(Some("probity_wrong"), None, body.clone())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, b) = send(&h.app, ingest_req(Some(&token("a1")), None, body.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a1's token cannot write as a2");
    assert_eq!(error_of(&b), "this token belongs to agent 'a1', not 'a2'");
    let (status, _, _) = send(&h.app, Request::get("/api/v1/agent/assignment").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 0);
}

#[tokio::test]
async fn malformed_oversized_and_unknown_encodings_are_refused() {
    let h = harness_with(Limits { max_body: 64 * 1024, max_decoded: 256 * 1024 });
    let t = token("a1");
    let (status, _, b) =
        send(&h.app, ingest_req(Some(&t), None, b"{\"agent\": \"a1\", \"results\": [{]}".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&b).starts_with("the body is not a valid ingest request"), "{}", error_of(&b));
    let (status, _, _) = send(&h.app, ingest_req(Some(&t), Some("gzip"), b"not gzip at all".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&h.app, ingest_req(Some(&t), None, vec![b' '; 65 * 1024])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = send(&h.app, ingest_req(Some(&t), Some("br"), b"{}".to_vec())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Zip bombs: 1 GB of zeros compresses to ~1 MB (gzip) / ~30 kB (zstd); both are cut off
    // at the decompressed limit.
    let zeros = vec![0u8; 64 << 20];
    let zs = zstd(&zeros);
    assert!(zs.len() < 64 * 1024);
    let (status, _, b) = send(&h.app, ingest_req(Some(&t), Some("zstd"), zs)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(&b).contains("decompressed"));
    let gz = gzip(&vec![0u8; 16 << 20]);
    assert!(gz.len() < 64 * 1024);
    let (status, _, _) = send(&h.app, ingest_req(Some(&t), Some("gzip"), gz)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn compressed_batches_are_stored_and_duplicates_acknowledged() {
    let h = harness();
    let req = batch("a1", "web", 1, 200);
    let json = serde_json::to_vec(&req).unwrap();
    for (encoding, body) in [(Some("zstd"), zstd(&json)), (Some("gzip"), gzip(&json)), (None, json.clone())] {
        let (status, _, b) = send(&h.app, ingest_req(Some(&token("a1")), encoding, body)).await;
        assert_eq!(status, StatusCode::OK);
        let resp: IngestResponse = serde_json::from_slice(&b).unwrap();
        let expected = if encoding == Some("zstd") { (200, 0) } else { (0, 200) };
        assert_eq!((resp.accepted, resp.duplicates), expected, "{encoding:?}");
    }
    assert_eq!(h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 200);
    assert_eq!(h.state.store().seq_summary("a1").unwrap().unwrap().highest, 200);
}

#[tokio::test]
async fn seqs_are_per_agent_instance_and_a_new_instance_is_a_counted_reset() {
    let h = harness();
    // An old agent (no instance), then two spools of the same agent, each from seq 1.
    let legacy = batch("a1", "web", 1, 50);
    assert_eq!(ingest(&h.app, &legacy).await.accepted, 50);
    let mut first = batch("a1", "web", 1, 30);
    first.instance = Some("aaaa1111".into());
    for r in &mut first.results {
        r.at += 1;
    }
    let resp = ingest(&h.app, &first).await;
    assert_eq!((resp.accepted, resp.duplicates), (30, 0), "no result is taken for another instance's duplicate");
    assert_eq!(ingest(&h.app, &first).await.duplicates, 30, "within an instance, a repeat is a duplicate");
    let mut second = batch("a1", "web", 1, 20);
    second.instance = Some("bbbb2222".into());
    for r in &mut second.results {
        r.at += 2;
    }
    assert_eq!(ingest(&h.app, &second).await.accepted, 20);
    let store = h.state.store();
    assert_eq!(store.raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 100);
    let agent = store.agent_instances("a1").unwrap().unwrap();
    assert_eq!(agent.resets(), 2);
    assert_eq!(agent.current(), Some("bbbb2222"));
    assert_eq!(agent.summary().received, 100);
    assert_eq!(agent.lost(), 0);
    let (_, _, body) = send(&h.app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("probity_agent_resets_total{agent=\"a1\"} 2"), "{text}");
    assert!(text.contains("probity_agent_lost_results_total{agent=\"a1\"} 0"), "{text}");
    // A bad instance id is a 400 that says what is wrong.
    let mut bad = batch("a1", "web", 100, 1);
    bad.instance = Some("no spaces".into());
    let (status, _, body) = send(&h.app, ingest_req(Some(&token("a1")), None, serde_json::to_vec(&bad).unwrap())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).contains("instance \"no spaces\""), "{}", error_of(&body));
}

#[tokio::test]
async fn every_reject_reason_is_named_and_nothing_rejected_is_stored() {
    let h = harness();
    let now = now_ms();
    let mut bad_ok = result(5, "web", now - 1000, None);
    bad_ok.error = Some(probity_config::wire::ResultError { kind: ErrorKind::Dns, message: "x".into() });
    let mut no_error = result(6, "web", now - 1000, None);
    no_error.ok = false;
    let mut too_long = result(7, "web", now - 1000, None);
    too_long.duration_us = 200_000_000_000;
    let req = IngestRequest {
        agent: "a2".into(),
        instance: None,
        results: vec![
            result(1, "nope", now - 1000, None),
            result(2, "db", now - 1000, None),
            result(3, "web", now + 6 * 60_000, None),
            result(4, "web", now - 31 * 86_400_000, None),
            bad_ok,
            no_error,
            too_long,
            result(8, "web", now - 1000, None),
        ],
        ..Default::default()
    };
    let resp = ingest(&h.app, &req).await;
    assert_eq!((resp.accepted, resp.duplicates), (1, 0));
    let reasons: Vec<(u64, String)> = resp.rejected.into_iter().map(|r| (r.seq, r.reason)).collect();
    assert_eq!(reasons[0], (1, "unknown probe 'nope'".to_string()));
    assert_eq!(reasons[1], (2, "probe 'db' is not assigned to agent 'a2'".to_string()));
    assert!(reasons[2].1.contains("more than 5 minutes in the future"), "{:?}", reasons[2]);
    assert_eq!(reasons[3].1, format!("at {} is older than raw_retention (30d)", now - 31 * 86_400_000));
    assert_eq!(reasons[4].1, "ok is true but an error is given");
    assert_eq!(reasons[5].1, "ok is false but error.kind is missing");
    assert_eq!(reasons[6].1, "duration_us 200000000000 is longer than a day");
    assert_eq!(h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 1);
    assert_eq!(h.state.store().seq_summary("a2").unwrap().unwrap().lost, 0, "rejected seqs are not lost");
    let (_, _, metrics) = send(&h.app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        "probity_results_rejected_total{reason=\"unknown_probe\"} 1",
        "probity_results_rejected_total{reason=\"not_assigned\"} 1",
        "probity_results_rejected_total{reason=\"in_future\"} 1",
        "probity_results_rejected_total{reason=\"too_old\"} 1",
        "probity_results_rejected_total{reason=\"invalid\"} 3",
        "probity_results_ingested_total 1",
        "probity_probe_success{probe=\"web\",agent=\"a2\",service=\"shop\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn fifty_agents_ingest_at_once() {
    let h = harness();
    let mut tasks = Vec::new();
    for i in 0..AGENTS {
        let app = h.app.clone();
        tasks.push(tokio::spawn(async move {
            let req = batch(&agent_name(i), "web", 1, 100);
            let mut total = 0;
            for chunk in req.results.chunks(25) {
                let part = IngestRequest { agent: req.agent.clone(), results: chunk.to_vec(), ..Default::default() };
                total += ingest(&app, &part).await.accepted;
            }
            total
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 100);
    }
    assert_eq!(h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 100 * AGENTS);
    assert_eq!(h.state.metrics().results_ingested(), 100 * AGENTS as u64);
    let (_, _, metrics) = send(&h.app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("probity_agent_lost_results{agent=\"a49\"} 0"));
    assert!(metrics.contains("probity_storage_bytes "));
    assert!(metrics.contains(&format!("probity_ingest_duration_seconds_count {}", 4 * AGENTS)));
}

#[tokio::test]
async fn an_out_of_order_replay_lands_in_place_and_corrects_the_timeline() {
    let h = harness();
    let start = now_ms() - 86_400_000;
    // A day of results every 10 s, one in nine down; the agent sends the second half,
    // then replays the first half from its spool in reverse batches, with a gap of seqs.
    let all: Vec<_> = (1..=8640u64)
        .map(|seq| {
            let down = if seq % 9 == 0 { Some(ErrorKind::Connect) } else { None };
            result(seq, "web", start + seq as i64 * 10_000, down)
        })
        .collect();
    let (first, second) = all.split_at(4320);
    for chunk in second.chunks(1000) {
        ingest(&h.app, &IngestRequest { agent: "a3".into(), results: chunk.to_vec(), ..Default::default() }).await;
    }
    for chunk in first.chunks(500).rev() {
        let kept: Vec<_> = chunk.iter().filter(|r| r.seq != 100).cloned().collect();
        ingest(&h.app, &IngestRequest { agent: "a3".into(), results: kept, ..Default::default() }).await;
    }
    let observations: Vec<Observation> = all
        .iter()
        .filter(|r| r.seq != 100)
        .map(|r| Observation { at: r.at, down: r.error.as_ref().map(|e| e.kind) })
        .collect();
    let expected = runs_from_observations(&observations, 10_000);
    assert_eq!(h.state.store().view_runs("web", "a3", i64::MIN, i64::MAX).unwrap(), expected);
    let s = h.state.store().seq_summary("a3").unwrap().unwrap();
    assert_eq!((s.highest, s.lost, s.largest_gap), (8640, 1, 1));
    let ats: Vec<i64> =
        h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().map(|r| r.unwrap().at).collect();
    assert_eq!(ats.len(), 8639);
    assert!(ats.windows(2).all(|w| w[0] < w[1]), "streamed in time order");
}

#[tokio::test]
async fn reload_applies_a_valid_file_and_keeps_the_running_one_on_an_invalid_file() {
    let h = harness();
    let etag = |app: Router| async move {
        let req =
            Request::get("/api/v1/agent/assignment").header(header::AUTHORIZATION, format!("Bearer {}", token("a1")));
        let (status, headers, _) = send(&app, req.body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        headers[header::ETAG].to_str().unwrap().to_string()
    };
    let before = etag(h.app.clone()).await;
    let data = h.config_path.parent().unwrap().join("data");
    let extra = "[[services]]\nid = \"mail\"\nname = \"Mail\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"smtp\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:25\"\n  interval = \"1m\"\n  timeout = \"5s\"\n";
    std::fs::write(&h.config_path, config_text("127.0.0.1:0", &data, extra)).unwrap();
    probity_collector::reload::reload(&h.state).await.unwrap();
    let after = etag(h.app.clone()).await;
    assert_ne!(before, after, "a new probe changes the ETag");
    assert!(h.state.config().catalogue.probe("smtp").is_some());
    std::fs::write(&h.config_path, "[server]\nlisten = 7\n").unwrap();
    let err = probity_collector::reload::reload(&h.state).await.unwrap_err().to_string();
    assert!(err.contains("collector.toml"), "{err}");
    assert_eq!(etag(h.app.clone()).await, after, "the running catalogue stays");
    let (_, _, metrics) = send(&h.app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("probity_config_reloads_total 1")
            && metrics.contains("probity_config_reload_failures_total 1")
    );
}

#[tokio::test]
async fn invalid_fields_are_rejected_with_their_reason_and_not_stored() {
    let h = harness();
    let now = now_ms();
    let ok = |seq| result(seq, "web", now - 1000, None);
    let with = |seq, f: &dyn Fn(&mut probity_config::wire::ProbeResult)| {
        let mut r = ok(seq);
        f(&mut r);
        r
    };
    let phases = |dns, connect| probity_config::wire::Phases {
        dns_us: Some(dns),
        connect_us: Some(connect),
        tls_us: None,
        first_byte_us: None,
    };
    let req = IngestRequest {
        agent: "a2".into(),
        instance: None,
        results: vec![
            ok(1),
            with(2, &|r| r.status = Some(0)),
            with(3, &|r| r.status = Some(65535)),
            with(4, &|r| r.phases = Some(phases(500, 100))),
            with(5, &|r| r.phases = Some(phases(100, r.duration_us + 1))),
            with(6, &|r| r.cert_not_after = Some(-5)),
            with(7, &|r| r.cert_not_after = Some(now / 1000 + 200 * 365 * 86_400)),
            with(8, &|r| r.probe = "p".repeat(100_000)),
            ok(9),
        ],
        ..Default::default()
    };
    let resp = ingest(&h.app, &req).await;
    assert_eq!(resp.accepted, 2);
    let reasons: Vec<(u64, String)> = resp.rejected.into_iter().map(|r| (r.seq, r.reason)).collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert_eq!(reasons[0], (2, "status 0 is not an HTTP status (100-599)".into()));
    assert_eq!(reasons[1], (3, "status 65535 is not an HTTP status (100-599)".into()));
    assert!(reasons[2].1.starts_with("phases out of order: connect_us 100 ends before dns_us 500"), "{reasons:?}");
    assert!(reasons[3].1.starts_with("phases.connect_us "), "{reasons:?}");
    assert_eq!(reasons[4].1, "cert_not_after -5 is before 1970");
    assert!(reasons[5].1.contains("is more than 100 years from now"), "{reasons:?}");
    assert_eq!(reasons[6].1, format!("unknown probe '{}…'", "p".repeat(63)), "the id is echoed cut to 64 characters");
    assert_eq!(h.state.store().raw_results("web", i64::MIN, i64::MAX).unwrap().count(), 2);
}

#[tokio::test]
async fn a_bogus_seq_does_not_poison_lost_results() {
    // Regression: `{"seq": 18446744073709551615}` was taken as the agent's highest seq and
    // /metrics and every completeness.csv row showed 18 quintillion lost results for ever.
    let h = harness();
    let now = now_ms();
    let mut results: Vec<_> = (1..=5).map(|seq| result(seq, "web", now - 60_000 + seq as i64, None)).collect();
    results.push(result(u64::MAX, "web", now - 1000, None));
    results.push(result(1 << 53, "web", now - 900, None));
    results.push(result(1_000_000_006, "web", now - 800, None));
    let resp = ingest(&h.app, &IngestRequest { agent: "a4".into(), results, ..Default::default() }).await;
    assert_eq!(resp.accepted, 5);
    let rejected: Vec<u64> = resp.rejected.iter().map(|r| r.seq).collect();
    assert_eq!(rejected, [u64::MAX, 1 << 53, 1_000_000_006]);
    assert!(resp.rejected[0].reason.contains("above 2^53"), "{:?}", resp.rejected);
    assert!(resp.rejected[2].reason.contains("more than 1000000000 past"), "{:?}", resp.rejected);
    // The next honest batch goes on from 6 and nothing is lost.
    let resp = ingest(
        &h.app,
        &IngestRequest { agent: "a4".into(), results: vec![result(6, "web", now - 500, None)], ..Default::default() },
    )
    .await;
    assert_eq!(resp.accepted, 1);
    let s = h.state.store().seq_summary("a4").unwrap().unwrap();
    assert_eq!((s.highest, s.received, s.lost), (6, 6, 0));
    let (_, _, metrics) = send(&h.app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("probity_agent_lost_results{agent=\"a4\"} 0"), "{metrics}");
}

#[tokio::test]
async fn a_forbidden_agent_name_is_echoed_cut_to_64_characters() {
    let h = harness();
    let req = IngestRequest { agent: "z".repeat(100_000), results: Vec::new(), ..Default::default() };
    let (status, _, body) = send(&h.app, ingest_req(Some(&token("a1")), None, serde_json::to_vec(&req).unwrap())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&body), format!("this token belongs to agent 'a1', not '{}…'", "z".repeat(63)));
}

async fn get_json(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut req = Request::get(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let (status, _, body) = send(app, req.body(Body::empty()).unwrap()).await;
    (status, serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_catalogue_put_in_force_is_a_stored_version_listed_without_token_hashes() {
    let h = harness();
    probity_collector::history::record_catalogue(&h.state, probity_collector::history::versions::Source::File)
        .await
        .unwrap();
    let data = h.config_path.parent().unwrap().join("data");
    let extra = "[[services]]\nid = \"mail\"\nname = \"Mail\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"smtp\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:25\"\n  interval = \"1m\"\n  timeout = \"5s\"\n";
    std::fs::write(&h.config_path, config_text("127.0.0.1:0", &data, extra)).unwrap();
    probity_collector::reload::reload(&h.state).await.unwrap();
    // Reloading the same file again is not a new version.
    probity_collector::reload::reload(&h.state).await.unwrap();
    let (status, list) = get_json(&h.app, "/api/v1/catalogue/versions", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let versions = list["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{list}");
    assert_eq!(versions[1]["version"], 2);
    assert_eq!(versions[1]["source"], "file");
    assert_eq!(
        versions[1]["changes"]["added"],
        serde_json::json!([{"kind": "probe", "id": "smtp"}, {"kind": "service", "id": "mail"}])
    );
    let (status, v2) = get_json(&h.app, "/api/v1/catalogue/versions/2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v2["catalogue"]["services"][1]["id"], "mail");
    let text = v2.to_string();
    assert!(!text.contains("token_sha256") && !text.contains(&hex::encode(probity_config::token_sha256(&token("a1")))));
    assert_eq!(get_json(&h.app, "/api/v1/catalogue/versions/3", None).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get_json(&h.app, "/api/v1/catalogue/versions/x", None).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_tokens_with_roles_guard_the_read_api_once_any_is_configured() {
    let h = harness();
    let data = h.config_path.parent().unwrap().join("data");
    let hash = |t: &str| hex::encode(probity_config::token_sha256(t));
    let api = format!(
        "[api]\nread_tokens_sha256 = [\"{}\"]\n\n[[api.tokens]]\nid = \"ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\n\n[[api.tokens]]\nid = \"boss\"\ntoken_sha256 = \"{}\"\nrole = \"manager\"\nservices = [\"shop\"]\n\n",
        hash("probity_legacy-reader"),
        hash("probity_ops"),
        hash("probity_boss")
    );
    std::fs::write(&h.config_path, api + &config_text("127.0.0.1:0", &data, "")).unwrap();
    probity_collector::reload::reload(&h.state).await.unwrap();
    let boss = h.state.config().api.tokens[1].clone();
    assert_eq!((boss.role, boss.services.len()), (probity_config::Role::Manager, 1));
    for path in ["/api/v1/services", "/api/v1/catalogue/versions", "/api/v1/compliance"] {
        assert_eq!(get_json(&h.app, path, None).await.0, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(get_json(&h.app, path, Some("probity_nope")).await.0, StatusCode::UNAUTHORIZED, "{path}");
        for t in ["probity_legacy-reader", "probity_ops", "probity_boss"] {
            assert_eq!(get_json(&h.app, path, Some(t)).await.0, StatusCode::OK, "{path} with {t}");
        }
    }
    // An agent's token is not an API token.
    assert_eq!(get_json(&h.app, "/api/v1/services", Some(&token("a1"))).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get_json(&h.app, "/api/v1/evidence/public-key", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_period_longer_than_max_period_is_a_400_naming_the_limit_on_every_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    let extra = "[api]\nmax_period = \"30d\"\n\n[[agreements]]\nid = \"shop-sla\"\nkind = \"sla\"\nservice = \"shop\"\nperiod = \"month\"\navailability = 99.9\n";
    std::fs::write(&config_path, config_text("127.0.0.1:0", &dir.path().join("data"), extra)).unwrap();
    let config = probity_config::load_collector_config(&config_path).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions { cache_capacity: 16 << 20 }).unwrap());
    let app = probity_collector::app(AppState::new(config, store, StateSpec::default()));
    let long = "from=0001-01-01T00:00:00Z&to=2026-11-01T00:00:00Z";
    for path in [
        "/api/v1/services/shop/availability",
        "/api/v1/services/shop/latency",
        "/api/v1/services/shop/timeline",
        "/api/v1/services/shop/latency/series",
        "/api/v1/agreements/shop-sla/report",
        "/api/v1/agreements/shop-sla/evidence",
        "/api/v1/compliance",
    ] {
        let (status, _, body) = send(&app, Request::get(format!("{path}?{long}")).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        let e = error_of(&body);
        assert!(e.contains("longer than [api] max_period (30d)"), "{path}: {e}");
        let (status, _, _) =
            send(&app, Request::get(format!("{path}?period=2026-09")).body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{path}: 30 days pass");
    }
    let (status, _, body) =
        send(&app, Request::get("/api/v1/agreements/shop-sla/report?period=2026").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&body).starts_with("the period 2026 is 365d long"), "{}", error_of(&body));
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_json_errors() {
    let h = harness();
    let (status, headers, body) =
        send(&h.app, Request::get("/api/v1/no-such-thing").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert!(error_of(&body).contains("/api/v1/no-such-thing"), "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = send(&h.app, Request::delete("/api/v1/services").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error_of(&body).contains("DELETE"), "{}", String::from_utf8_lossy(&body));
}

/// Right after the first start nothing is known, and nothing was monitored before it: a
/// service is unknown since then, not since the start of the week looked back over.
#[tokio::test]
async fn a_new_collectors_services_are_unknown_since_it_started() {
    let h = harness();
    let started = now_ms();
    probity_collector::history::record_catalogue(&h.state, probity_collector::history::versions::Source::File)
        .await
        .unwrap();
    let (status, _, body) = send(&h.app, Request::get("/api/v1/services").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let services: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let shop = &services["services"][0];
    assert_eq!(shop["state"], "unknown");
    let since = shop["since"].as_str().unwrap();
    let since_ms = since.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    assert!(since_ms >= started - 1000 && since_ms <= now_ms(), "since {since} is before the collector started");
}

#[tokio::test]
async fn restating_needs_a_manager_token_and_a_reason() {
    let h = harness();
    let data = h.config_path.parent().unwrap().join("data");
    let hash = |t: &str| hex::encode(probity_config::token_sha256(t));
    let api = format!(
        "[[api.tokens]]\nid = \"ops\"\ntoken_sha256 = \"{}\"\nrole = \"operator\"\n\n[[api.tokens]]\nid = \"boss\"\ntoken_sha256 = \"{}\"\nrole = \"manager\"\n\n",
        hash("probity_ops"),
        hash("probity_boss")
    );
    let agreement = "[[agreements]]\nid = \"shop-sla\"\nkind = \"sla\"\nservice = \"shop\"\navailability = 99.0\n";
    std::fs::write(&h.config_path, api + &config_text("127.0.0.1:0", &data, agreement)).unwrap();
    probity_collector::reload::reload(&h.state).await.unwrap();
    let post = |token: Option<&'static str>, body: &'static str| {
        let app = h.app.clone();
        async move {
            let mut req = Request::post("/api/v1/agreements/shop-sla/periods/2999-01/restate");
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            let (status, _, body) = send(&app, req.body(Body::from(body)).unwrap()).await;
            (status, error_of(&body))
        }
    };
    assert_eq!(post(None, r#"{"reason": "x"}"#).await.0, StatusCode::UNAUTHORIZED);
    let (status, message) = post(Some("probity_ops"), r#"{"reason": "x"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(message.contains("role operator; this needs manager"), "{message}");
    assert_eq!(post(Some("probity_boss"), r#"{"why": "x"}"#).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(post(Some("probity_boss"), r#"{"reason": " "}"#).await.0, StatusCode::BAD_REQUEST);
    // A period that has not even started is not closed.
    let (status, message) = post(Some("probity_boss"), r#"{"reason": "late results"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert!(message.contains("not a closed period"), "{message}");
}

#[tokio::test]
async fn the_timeline_and_latency_series_agree_with_the_availability_and_latency_figures() {
    let h = harness();
    // Two whole UTC hours two days ago: a1 reports web and db every 10 s, web is down
    // (connection refused) from 00:30 to 00:40.
    let t = (now_ms() / 3_600_000 - 48) * 3_600_000;
    let results: Vec<_> = (0..720u64)
        .flat_map(|i| {
            let at = t + i as i64 * 10_000;
            let down = (180..240).contains(&i).then_some(ErrorKind::Connect);
            [result(2 * i + 1, "web", at, down), result(2 * i + 2, "db", at, None)]
        })
        .collect();
    let response = ingest(&h.app, &IngestRequest { agent: "a1".into(), results, ..Default::default() }).await;
    assert_eq!(response.accepted, 1440);
    let rfc = probity_config::time::rfc3339;
    let range = format!("from={}&to={}", rfc(t - 3_600_000), rfc(t + 3 * 3_600_000));

    let (status, timeline) = get_json(&h.app, &format!("/api/v1/services/shop/timeline?{range}"), None).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!((timeline["calendar"].as_str(), timeline["timezone"].as_str()), (Some("24x7"), Some("UTC")));
    let runs: Vec<(String, String, String)> = timeline["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["start"].as_str().unwrap().into(),
                r["end"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    // The last results' views last two intervals: 20 s for web, and db's 30 s interval
    // keeps it known 60 s past its last result, but web decides the service.
    let stale = t + 7_190_000 + 20_000;
    let expect = |a: i64, b: i64, state: &str| (rfc(a), rfc(b), state.to_string());
    assert_eq!(
        runs,
        vec![
            expect(t - 3_600_000, t, "unknown"),
            expect(t, t + 1_800_000, "up"),
            expect(t + 1_800_000, t + 2_400_000, "down"),
            expect(t + 2_400_000, stale, "up"),
            expect(stale, t + 3 * 3_600_000, "unknown"),
        ]
    );
    let down = &timeline["runs"][2];
    // One agent saw one down run: reasons count runs (episodes), not results.
    assert_eq!(down["reasons"], serde_json::json!({"connect": 1}));
    assert_eq!(down["seconds"], 600.0);
    assert!(timeline["runs"][1].get("reasons").is_none(), "only down runs carry reasons");
    // a1's view of web was known 00:00 to 02:00:10 of the 4 hours; a0 never reported.
    let agents = timeline["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 51, "web on 50 agents, db on a1");
    let of = |probe: &str, agent: &str| agents.iter().find(|a| a["probe"] == probe && a["agent"] == agent).unwrap();
    assert_eq!(of("web", "a1")["monitored_seconds"], 7210.0);
    assert_eq!(of("web", "a1")["coverage_percent"], 50.069444);
    assert_eq!(of("web", "a0")["coverage_percent"], 0.0);
    let (_, availability) = get_json(&h.app, &format!("/api/v1/services/shop/availability?{range}"), None).await;
    assert_eq!(availability["downtime_seconds"], down["seconds"]);
    assert_eq!(timeline["outages"], availability["outages"]);

    let (status, series) =
        get_json(&h.app, &format!("/api/v1/services/shop/latency/series?{range}&step=hour&percentiles=50,99"), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{series}");
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 4);
    assert_eq!(points.iter().map(|p| p["count"].as_u64().unwrap()).collect::<Vec<_>>(), vec![0, 660, 720, 0]);
    assert!(points[0]["percentiles"]["p50"].is_null() && points[1]["percentiles"]["p99"].is_number());
    let (_, latency) = get_json(&h.app, &format!("/api/v1/services/shop/latency?{range}"), None).await;
    assert_eq!(latency["count"], 1380);
    let (status, body) =
        get_json(&h.app, &format!("/api/v1/services/shop/latency/series?{range}&step=week"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("use step=hour or step=day"), "{body}");
    let (status, _) = get_json(&h.app, "/api/v1/services/nope/timeline", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_damaged_record_is_a_500_naming_it_never_a_figure() {
    let h = harness();
    ingest(&h.app, &batch("a1", "web", 1, 200)).await;
    let (status, _) = get_json(&h.app, "/api/v1/services", None).await;
    assert_eq!(status, StatusCode::OK);
    // One byte of every stored view run flipped, as a failing disk would.
    let runs = h.state.store().db().open_tree("runs").unwrap();
    for kv in runs.iter() {
        let (k, v) = kv.unwrap();
        let mut damaged = v.to_vec();
        damaged[0] ^= 0x04;
        runs.insert(k, damaged).unwrap();
    }
    let (status, body) = get_json(&h.app, "/api/v1/services", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("damaged record in tree runs") && error.contains("probe web"), "{error}");
    assert!(error.contains("agent a1"), "{error}");
}

/// SPEC §11/§12: maintenance writes need an operator or manager token whose scope covers
/// the services named; every bad input is a 400 saying what to fix; ids are unique (409);
/// a cancelled window is kept with who cancelled it; a scoped reader sees only its windows.
#[tokio::test]
async fn maintenance_writes_need_an_operator_in_scope_and_bad_input_is_named() {
    let h = harness();
    let data = h.config_path.parent().unwrap().join("data");
    let hash = |t: &str| hex::encode(probity_config::token_sha256(t));
    let tokens = [
        ("reader", "reader", ""),
        ("ops", "operator", ""),
        ("boss", "manager", ""),
        ("shop-ops", "operator", "services = [\"shop\"]\n"),
        ("psp-reader", "reader", "agreements = [\"psp-uc\"]\n"),
    ];
    let mut api = String::new();
    for (id, role, scope) in tokens {
        api += &format!(
            "[[api.tokens]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\nrole = \"{role}\"\n{scope}\n",
            hash(&format!("probity_{id}"))
        );
    }
    let psp = "[[services]]\nid = \"psp\"\n  [[services.probes]]\n  id = \"psp-tcp\"\n  kind = \"tcp\"\n  target = \"127.0.0.1:9\"\n  interval = \"10s\"\n  timeout = \"5s\"\n\n[[agreements]]\nid = \"psp-uc\"\nkind = \"uc\"\nservice = \"psp\"\navailability = 99.5\n";
    std::fs::write(&h.config_path, api + &config_text("127.0.0.1:0", &data, psp)).unwrap();
    probity_collector::reload::reload(&h.state).await.unwrap();

    let call = |method: &'static str, path: String, token: Option<&'static str>, body: String| {
        let app = h.app.clone();
        async move {
            let mut req = Request::builder().method(method).uri(path);
            if let Some(t) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer probity_{t}"));
            }
            let (status, headers, body) = send(&app, req.body(Body::from(body)).unwrap()).await;
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            (status, headers, json)
        }
    };
    let window = |id: &str, service: &str, start: &str, end: &str| {
        format!(
            r#"{{"id": "{id}", "services": ["{service}"], "start": "{start}", "end": "{end}", "reason": "database upgrade", "ticket": "CHG-1"}}"#
        )
    };
    let good = window("chg-1", "shop", "2026-11-10T22:00:00Z", "2026-11-11T02:00:00Z");
    let post = |token, body: &str| call("POST", "/api/v1/maintenance".into(), token, body.to_string());

    // Who may write.
    let (status, _, body) = post(None, &good).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, body) = post(Some("reader"), &good).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("role reader; this needs operator"), "{body}");
    let (status, _, body) =
        post(Some("shop-ops"), &window("chg-9", "psp", "2026-11-10T22:00:00Z", "2026-11-11T02:00:00Z")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("is not scoped to service \"psp\""), "{body}");

    // Bad input, each with what to fix.
    for (body, expected) in [
        (window("chg-2", "shop", "2026-11-11T02:00:00Z", "2026-11-11T02:00:00Z"), "is not after start"),
        (window("chg-2", "nope", "2026-11-10T22:00:00Z", "2026-11-11T02:00:00Z"), "unknown service \"nope\""),
        (window("chg-2", "shop", "tonight", "2026-11-11T02:00:00Z"), "start: \"tonight\" is not an RFC 3339 instant"),
        (window("Chg 2", "shop", "2026-11-10T22:00:00Z", "2026-11-11T02:00:00Z"), "id "),
        (
            r#"{"services": ["shop"], "start": "2026-11-10T22:00:00Z", "end": "2026-11-11T02:00:00Z"}"#.into(),
            "missing field `reason`",
        ),
        (
            r#"{"services": ["shop"], "start": "a", "end": "b", "reason": "x", "when": 1}"#.into(),
            "unknown field `when`",
        ),
        ("not json".into(), "the body must be"),
    ] {
        let (status, _, out) = post(Some("ops"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {out}");
        assert!(out["error"].as_str().unwrap().contains(expected), "{body}: {out}");
    }

    // Declared by the token's id; retroactive as the clock says; the id is taken once.
    let (status, headers, w) = post(Some("shop-ops"), &good).await;
    assert_eq!(status, StatusCode::CREATED, "{w}");
    assert_eq!(headers[header::LOCATION], "/api/v1/maintenance/chg-1");
    assert_eq!(
        (w["id"].as_str(), w["declared_by"].as_str(), w["retroactive"].as_bool()),
        (Some("chg-1"), Some("shop-ops"), Some(true))
    );
    assert_eq!((w["ticket"].as_str(), w["history"].as_array().unwrap().len()), (Some("CHG-1"), 1));
    let (status, _, out) = post(Some("boss"), &good).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(out["error"].as_str().unwrap().contains("already exists"), "{out}");
    let future = |h: i64| probity_config::time::rfc3339(now_ms() + h * 3_600_000);
    let (status, _, made) = post(
        Some("ops"),
        &format!(
            r#"{{"services": ["psp"], "start": "{}", "end": "{}", "reason": "card network"}}"#,
            future(1),
            future(3)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let made_id = made["id"].as_str().unwrap().to_string();
    assert!(made_id.starts_with("mw-") && made["retroactive"] == false, "{made}");

    // New ends: extending the ended chg-1 is refused; the running one can be extended.
    let patch =
        |id: &str, token, body: &str| call("PATCH", format!("/api/v1/maintenance/{id}"), token, body.to_string());
    let (status, _, out) = patch("chg-1", Some("ops"), r#"{"end": "2026-11-11T05:00:00Z"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(out["error"].as_str().unwrap().contains("cannot be extended"), "{out}");
    let (status, _, out) = patch("chg-1", Some("ops"), r#"{"end": "2026-11-10T21:00:00Z"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    let (status, _, out) = patch(&made_id, Some("shop-ops"), &format!(r#"{{"end": "{}"}}"#, future(4))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "shop-ops cannot touch a psp window: {out}");
    let (status, _, out) = patch(&made_id, Some("ops"), &format!(r#"{{"end": "{}"}}"#, future(4))).await;
    assert_eq!((status, out["history"][1]["action"].as_str()), (StatusCode::OK, Some("end_changed")), "{out}");
    let (status, _, _) = patch("chg-404", Some("ops"), r#"{"end": "2026-11-11T05:00:00Z"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Cancelling keeps the window, says who; a second cancel is refused.
    let delete = |id: &str, token| call("DELETE", format!("/api/v1/maintenance/{id}"), token, String::new());
    assert_eq!(delete("chg-1", Some("reader")).await.0, StatusCode::FORBIDDEN);
    let (status, _, out) = delete("chg-1", Some("boss")).await;
    assert_eq!(
        (status, out["cancelled_by"].as_str(), out["cancelled"].as_bool()),
        (StatusCode::OK, Some("boss"), Some(true)),
        "{out}"
    );
    assert_eq!(delete("chg-1", Some("boss")).await.0, StatusCode::CONFLICT);

    // Listing: cancelled ones only when asked; filters; a scoped reader sees its service only.
    let list = |query: &str, token| call("GET", format!("/api/v1/maintenance{query}"), token, String::new());
    let ids = |v: &serde_json::Value| {
        v["windows"].as_array().unwrap().iter().map(|w| w["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&list("", Some("reader")).await.2), vec![made_id.clone()]);
    assert_eq!(
        ids(&list("?include_cancelled=true", Some("reader")).await.2),
        vec!["chg-1".to_string(), made_id.clone()]
    );
    assert_eq!(ids(&list("?include_cancelled=true&service=shop", Some("reader")).await.2), vec!["chg-1".to_string()]);
    assert_eq!(
        ids(&list("?include_cancelled=true&to=2026-11-11T00:00:00Z", Some("reader")).await.2),
        vec!["chg-1".to_string()]
    );
    assert_eq!(ids(&list("?include_cancelled=true", Some("psp-reader")).await.2), vec![made_id.clone()]);
    assert_eq!(
        call("GET", "/api/v1/maintenance/chg-1".into(), Some("psp-reader"), String::new()).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, _, one) = call("GET", "/api/v1/maintenance/chg-1".into(), Some("reader"), String::new()).await;
    assert_eq!((status, one["history"].as_array().unwrap().len()), (StatusCode::OK, 2));
    for (query, expected) in [
        ("?from=soon", "from: \"soon\""),
        ("?include_cancelled=yes", "not true or false"),
        ("?colour=red", "unknown parameter \"colour\""),
    ] {
        let (status, _, out) = list(query, Some("reader")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(out["error"].as_str().unwrap().contains(expected), "{query}: {out}");
    }
    assert_eq!(list("", None).await.0, StatusCode::UNAUTHORIZED);
}
