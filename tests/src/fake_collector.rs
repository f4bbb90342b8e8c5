//! A fake collector for the agent's in-process tests: assignment with ETag/304, ingest
//! (identity, gzip, zstd) recording every result, switchable 503s (with or without
//! `Retry-After`) and 401s, and a wait woken by every request it answers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use probity_config::wire::{AssignedProbe, Assignment, IngestRequest, IngestResponse, ProbeResult};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const TOKEN: &str = "probity_test_token";

type Body = Full<Bytes>;

fn respond(status: u16, body: &str) -> Response<Body> {
    Response::builder().status(status).body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

/// What the fake collector has seen and how it behaves.
#[derive(Default)]
pub struct CollectorState {
    pub assignment: Option<Assignment>,
    pub etag: u64,
    /// Every result received, duplicates included, in arrival order.
    pub results: Vec<ProbeResult>,
    /// Answer every ingest with 503.
    pub unavailable: bool,
    /// The `Retry-After` (seconds) of those 503s; none when `None`.
    pub retry_after: Option<u64>,
    /// When each ingest request arrived.
    pub ingest_times: Vec<tokio::time::Instant>,
    /// Answer everything with 401.
    pub refuse_token: bool,
    pub ingest_calls: u64,
    pub failed_ingests: u64,
    pub assignment_calls: u64,
    pub encodings: BTreeMap<String, u64>,
}

#[derive(Clone)]
pub struct FakeCollector {
    pub url: String,
    pub state: Arc<Mutex<CollectorState>>,
    changed: Arc<Notify>,
}

impl FakeCollector {
    pub async fn start(agent: &str, probes: Vec<AssignedProbe>) -> FakeCollector {
        let state = Arc::new(Mutex::new(CollectorState {
            assignment: Some(Assignment { agent: agent.to_string(), probes }),
            etag: 1,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (st, ch) = (state.clone(), changed.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (st, ch) = (st.clone(), ch.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, st.clone(), ch.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeCollector { url: format!("http://127.0.0.1:{}", addr.port()), state, changed }
    }

    pub fn set_probes(&self, probes: Vec<AssignedProbe>) {
        let mut s = self.state.lock().unwrap();
        let agent = s.assignment.as_ref().map(|a| a.agent.clone()).unwrap_or_default();
        s.assignment = Some(Assignment { agent, probes });
        s.etag += 1;
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut CollectorState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Waits (generously) until `cond` holds of the state; panics with `what` if it never does.
    pub async fn wait_until(&self, what: &str, cond: impl Fn(&CollectorState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if cond(&self.state.lock().unwrap()) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for: {what}");
            // Woken by every request the collector answers; the short limit only
            // re-checks conditions that change without a request.
            let _ = tokio::time::timeout(Duration::from_millis(250), notified).await;
        }
    }

    /// Distinct seqs received, each checked to carry one result only (a duplicate is an
    /// identical copy; a seq reused for another result fails the test).
    pub fn distinct_seqs(&self) -> BTreeMap<u64, ProbeResult> {
        let s = self.state.lock().unwrap();
        let mut by_seq: BTreeMap<u64, ProbeResult> = BTreeMap::new();
        for r in &s.results {
            if let Some(prev) = by_seq.get(&r.seq) {
                assert_eq!(prev, r, "seq {} reused for a different result", r.seq);
            } else {
                by_seq.insert(r.seq, r.clone());
            }
        }
        by_seq
    }
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<CollectorState>>,
    changed: Arc<Notify>,
) -> Result<Response<Body>, Infallible> {
    let authorized =
        req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"));
    let path = req.uri().path().to_string();
    let if_none_match = req.headers().get("if-none-match").and_then(|v| v.to_str().ok()).map(str::to_string);
    let encoding =
        req.headers().get("content-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let response = {
        let mut s = state.lock().unwrap();
        if !authorized || s.refuse_token {
            if path.ends_with("/ingest") {
                s.failed_ingests += 1;
            }
            respond(401, "{\"error\":\"unknown token\"}")
        } else if path == "/api/v1/agent/assignment" {
            s.assignment_calls += 1;
            let etag = format!("\"{}\"", s.etag);
            if if_none_match.as_deref() == Some(etag.as_str()) {
                Response::builder().status(304).body(Full::new(Bytes::new())).unwrap()
            } else {
                let body = serde_json::to_string(s.assignment.as_ref().unwrap()).unwrap();
                Response::builder().status(200).header("etag", etag).body(Full::new(Bytes::from(body))).unwrap()
            }
        } else if path == "/api/v1/ingest" {
            s.ingest_calls += 1;
            s.ingest_times.push(tokio::time::Instant::now());
            *s.encodings.entry(encoding.clone()).or_default() += 1;
            if s.unavailable {
                s.failed_ingests += 1;
                let mut response = respond(503, "{\"error\":\"down for a while\"}");
                if let Some(seconds) = s.retry_after {
                    response.headers_mut().insert("retry-after", seconds.into());
                }
                response
            } else {
                let raw = match encoding.as_str() {
                    "zstd" => zstd::decode_all(&body[..]).unwrap(),
                    "gzip" => {
                        let mut out = Vec::new();
                        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
                        out
                    }
                    _ => body.to_vec(),
                };
                let request: IngestRequest = serde_json::from_slice(&raw).unwrap();
                let seen: std::collections::HashSet<u64> = s.results.iter().map(|r| r.seq).collect();
                let duplicates = request.results.iter().filter(|r| seen.contains(&r.seq)).count() as u64;
                let accepted = request.results.len() as u64 - duplicates;
                s.results.extend(request.results);
                let body =
                    serde_json::to_string(&IngestResponse { accepted, duplicates, ..Default::default() }).unwrap();
                respond(200, &body)
            }
        } else {
            respond(404, "{\"error\":\"no such endpoint\"}")
        }
    };
    changed.notify_waiters();
    Ok(response)
}

/// An assigned probe from its JSON kind keys.
pub fn probe(id: &str, interval_ms: u64, timeout_ms: u64, kind_keys: serde_json::Value) -> AssignedProbe {
    let mut v = kind_keys;
    v["id"] = id.into();
    v["interval_ms"] = interval_ms.into();
    v["timeout_ms"] = timeout_ms.into();
    serde_json::from_value(v).unwrap()
}
