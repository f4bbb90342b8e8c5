//! Real local targets on 127.0.0.1:0 for probes to hit: HTTP(S) with set delays and
//! statuses, rcgen certificates (valid, expiring, expired), a TCP listener, a UDP DNS
//! responder built with hickory-proto, a refused port, and `HttpTarget` (its own thread
//! and runtime, status switchable while it runs) for tests on plain threads.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType, rdata::A};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UdpSocket};

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
    crate::client::install_crypto_provider();
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

/// A port nothing listens on, held for as long as the value lives: a socket bound to it
/// that never listens, so connecting is refused and nothing else can take the port.
pub struct ClosedPort {
    pub addr: SocketAddr,
    _socket: tokio::net::TcpSocket,
}

impl std::fmt::Display for ClosedPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ClosedPort { addr: socket.local_addr().unwrap(), _socket: socket }
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

/// An HTTP target answering every path with the status it is set to (`ok` below 400,
/// `failing` from 400), counting requests; it runs on its own thread and runtime so
/// tests on plain threads can use it. Stops when dropped.
pub struct HttpTarget {
    pub addr: SocketAddr,
    pub status: Arc<AtomicU16>,
    pub requests: Arc<AtomicU64>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl HttpTarget {
    pub fn start(status: u16) -> HttpTarget {
        HttpTarget::start_on(status, "127.0.0.1:0")
    }

    /// Listens on `bind` (an address such as `10.213.1.1:0`, for a target reached from a
    /// network namespace) instead of 127.0.0.1.
    pub fn start_on(status: u16, bind: &str) -> HttpTarget {
        let listener = std::net::TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(AtomicU16::new(status));
        let requests = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (s, r) = (status.clone(), requests.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let (s, r) = (s.clone(), r.clone());
                        tokio::spawn(async move {
                            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                                r.fetch_add(1, Ordering::SeqCst);
                                let code = s.load(Ordering::SeqCst);
                                let body = if code < 400 { "ok\n" } else { "failing\n" };
                                async move { Ok::<_, Infallible>(respond(code, body)) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        HttpTarget { addr, status, requests, _stop: stop }
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}
