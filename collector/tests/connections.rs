//! Connection limits on real sockets (SPEC §15): a slowloris client, a client that sends
//! nothing, an idle keep-alive connection, a stalled TLS handshake, an early 413 for a
//! huge `Content-Length`, and `max_connections`. Each test runs the real accept loop on
//! `127.0.0.1:0` with short timeouts; the clients are raw sockets because what they test
//! is what a well-behaved HTTP client never does.

use probity_tests::ingest as support;

use std::sync::Arc;
use std::time::Duration;

use probity_collector::connections::{ConnectionLimits, serve_connections};
use probity_collector::state::{AppState, StateSpec};
use probity_collector::store::{Store, StoreOptions};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Short deadlines so a test waits well under a second for each.
const SHORT: Duration = Duration::from_millis(400);
/// How long a test waits for something that must happen before giving up (never reached
/// when the collector behaves).
const PATIENCE: Duration = Duration::from_secs(20);

struct Server {
    _dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(limits: ConnectionLimits, tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("collector.toml");
    std::fs::write(&config_path, config_text("127.0.0.1:0", &dir.path().join("data"), "")).unwrap();
    let config = probity_config::load_collector_config(&config_path).unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db"), &StoreOptions { cache_capacity: 16 << 20 }).unwrap());
    let app = probity_collector::app(AppState::new(config, store, StateSpec::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve_connections(listener, app, tls, limits, async {
        let _ = stopped.await;
    }));
    Server { _dir: dir, addr, _stop: stop }
}

fn short_limits() -> ConnectionLimits {
    ConnectionLimits { header_read_timeout: SHORT, tls_handshake_timeout: SHORT, ..ConnectionLimits::default() }
}

/// Reads until the server closes the connection; what it sent before that.
async fn read_to_close(stream: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open for {PATIENCE:?}");
    out
}

/// Reads one response head (through the blank line).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(PATIENCE, async {
        while !out.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed mid-head: {out:?}");
            out.push(byte[0]);
        }
    })
    .await
    .expect("a response head");
    String::from_utf8(out).unwrap()
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_slowloris_client_is_disconnected_within_the_header_timeout() {
    let server = start(short_limits(), None).await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // One header byte every 50 ms: the headers never complete, the connection never idles.
    let trickle = tokio::spawn(async move {
        let mut sent = 0usize;
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\n".iter().chain(std::iter::repeat(&b'a')) {
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sent
    });
    let answer = read_to_close(&mut reader).await;
    let head = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || head.starts_with("HTTP/1.1 408"), "no response but a timeout: {head}");
    let sent = trickle.await.unwrap();
    // 400 ms at 20 bytes a second is ~8 bytes; far below what PATIENCE would let through.
    assert!(sent < 200, "the trickle went on for {sent} bytes");
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed() {
    let server = start(short_limits(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    let head = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || head.starts_with("HTTP/1.1 408"), "no response but a timeout: {head}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(short_limits(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "kept alive: {head}");
    // The body, then nothing more: the server closes the idle connection.
    let _ = read_to_close(&mut stream).await;
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_closed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(vec![cert], private).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let server = start(short_limits(), Some(acceptor)).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // Half a ClientHello record header, then silence.
    stream.write_all(&[0x16, 0x03]).await.unwrap();
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn a_content_length_of_10_pow_12_is_answered_413_at_once() {
    // Default (10 s) header timeout: the answer must come from the length, not a timer.
    let server = start(ConnectionLimits::default(), None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{{\"agent\"",
        token("a1")
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

#[tokio::test]
async fn connections_past_max_connections_wait_for_a_free_slot() {
    let server = start(ConnectionLimits { max_connections: 1, ..ConnectionLimits::default() }, None).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(HEALTHZ).await.unwrap();
    assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));
    // The second connection is in the backlog, not served, while the first is open.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(HEALTHZ).await.unwrap();
    let mut byte = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut byte)).await.is_err(),
        "served past max_connections"
    );
    drop(first);
    assert!(read_head(&mut second).await.starts_with("HTTP/1.1 200"));
}
