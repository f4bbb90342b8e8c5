//! Test harness: real targets and a fake collector on 127.0.0.1:0 — HTTP(S) with set
//! delays and statuses, rcgen certificates (valid, expiring, expired), a TCP listener,
//! a UDP DNS responder built with hickory-proto, and a collector that can go 503.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use probity_config::wire::{AssignedProbe, Assignment, IngestRequest, IngestResponse, ProbeResult};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;

pub const TOKEN: &str = "probity_test_token";

type Body = Full<Bytes>;

fn respond(status: u16, body: &str) -> Response<Body> {
    Response::builder().status(status).body(Full::new(Bytes::from(body.to_string()))).unwrap()
}

/// The target's routes: `/ok`, `/status/NNN`, `/delay/MS`, `/redirect` (to `/ok`).
async fn target(req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Ok(match parts.as_slice() {
        ["ok"] => respond(200, "all ok"),
        ["status", code] => respond(code.parse().unwrap_or(500), "status as asked"),
        ["delay", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            respond(200, "late but ok")
        }
        ["redirect"] => {
            Response::builder().status(302).header("location", "/ok").body(Full::new(Bytes::new())).unwrap()
        }
        _ => respond(404, "no such page"),
    })
}

/// An HTTP target; returns its base URL (`http://127.0.0.1:PORT`).
pub async fn http_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service_fn(target))
                    .await;
            });
        }
    });
    format!("http://127.0.0.1:{}", addr.port())
}

/// A test CA: its certificate (DER) and the issuer to sign leaves with.
pub struct Ca {
    pub der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

pub fn ca() -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct names: tests in one process trust several CAs at once.
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("probity test CA {n} {}", std::process::id()));
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca { der: cert.der().to_vec(), issuer: rcgen::Issuer::new(params, key) }
}

/// A leaf certificate for `localhost` and 127.0.0.1 valid from 30 days ago for
/// `days_left` more days (negative: already expired).
pub fn leaf(ca: &Ca, days_left: i64) -> (Vec<u8>, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs((now - 60 * 86_400) as u64);
    params.not_after = epoch + Duration::from_secs((now + days_left * 86_400) as u64);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.der().to_vec(), key.serialize_der())
}

/// An HTTPS target serving `cert` (signed by `ca`); returns `https://127.0.0.1:PORT`.
pub async fn https_target(cert: (Vec<u8>, Vec<u8>)) -> String {
    let addr = tls_listener(cert, true).await;
    format!("https://127.0.0.1:{}", addr.port())
}

/// A TLS listener (HTTP behind it when `http`); returns its address.
pub async fn tls_listener(cert: (Vec<u8>, Vec<u8>), http: bool) -> SocketAddr {
    probity_agent::install_crypto_provider();
    let (cert, key) = cert;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert)],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                if http {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service_fn(target))
                        .await;
                }
            });
        }
    });
    addr
}

/// A TCP listener that accepts and holds connections.
pub async fn tcp_target() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    addr
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A DNS responder: `ok.test` A 192.0.2.1, `wrong.test` A 192.0.2.99, `empty.test`
/// no records (NOERROR), `fail.test` SERVFAIL, anything else NXDOMAIN; `silent.test`
/// gets no reply at all.
pub async fn dns_target() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = socket.recv_from(&mut buf).await.unwrap();
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let Some(q) = query.queries.first().cloned() else { continue };
            let name = q.name().to_string().to_lowercase();
            let id = query.metadata.id;
            let mut response = match name.as_str() {
                "silent.test." => continue,
                "ok.test." | "wrong.test." | "empty.test." => Message::response(id, OpCode::Query),
                "fail.test." => Message::error_msg(id, OpCode::Query, ResponseCode::ServFail),
                _ => Message::error_msg(id, OpCode::Query, ResponseCode::NXDomain),
            };
            response.metadata.message_type = MessageType::Response;
            response.metadata.recursion_available = true;
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.add_query(q.clone());
            if q.query_type() == RecordType::A {
                let ip = match name.as_str() {
                    "ok.test." => Some([192, 0, 2, 1]),
                    "wrong.test." => Some([192, 0, 2, 99]),
                    _ => None,
                };
                if let Some(ip) = ip {
                    response.add_answer(Record::from_rdata(
                        q.name().clone(),
                        60,
                        RData::A(A::from(std::net::Ipv4Addr::from(ip))),
                    ));
                }
            }
            let _ = socket.send_to(&response.to_vec().unwrap(), peer).await;
        }
    });
    addr
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
            *s.encodings.entry(encoding.clone()).or_default() += 1;
            if s.unavailable {
                s.failed_ingests += 1;
                respond(503, "{\"error\":\"down for a while\"}")
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
                let body = serde_json::to_string(&IngestResponse { accepted, duplicates, rejected: vec![] }).unwrap();
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
