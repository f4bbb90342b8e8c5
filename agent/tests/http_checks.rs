//! The `http` probe's checks beyond status and body text, against real local servers:
//! `body_regex`, `expect_headers`, `fail_if_not_tls`, `ip_protocol`, HTTP/2 (over TLS
//! by ALPN and in the clear by prior knowledge), a private CA in `ca_file` and a client
//! certificate for a server that demands one.

use probity_tests as support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use probity_agent::probe::{Outcome, run_spec};
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::net::TcpListener;

async fn run(v: serde_json::Value) -> Outcome {
    let spec: ProbeSpec = serde_json::from_value(v).unwrap();
    run_spec(&spec, Duration::from_secs(5)).await
}

fn failed(o: &Outcome) -> (ErrorKind, String) {
    let f = o.result.as_ref().expect_err("the probe should fail");
    (f.kind, f.message.clone())
}

/// Answers every request with its HTTP version in the body and an `x-served-by` header.
async fn versioned(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!("{{\"status\": \"ok\", \"version\": \"{:?}\"}}", req.version());
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-served-by", "node-7")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

/// A private CA written as PEM, and leaf certificates it signs.
struct Pki {
    dir: tempfile::TempDir,
    ca_der: Vec<u8>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Distinct names: CAs with one name and different keys confuse chain building.
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("private CA {n} {}", std::process::id()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        Pki { dir, ca_der: cert.der().to_vec(), issuer: rcgen::Issuer::new(params, key) }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    /// A leaf for `localhost`/127.0.0.1, also written as `NAME.pem` and `NAME.key`.
    fn leaf(&self, name: &str, common_name: &str) -> (Vec<u8>, Vec<u8>) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(self.dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }
}

/// An HTTPS server offering `alpn`, serving HTTP/2 when ALPN chose h2, and demanding a
/// client certificate signed by `client_ca` when one is given.
async fn https_server(leaf: (Vec<u8>, Vec<u8>), alpn: &[&[u8]], client_ca: Option<Vec<u8>>) -> SocketAddr {
    probity_agent::install_crypto_provider();
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(der) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(der)).unwrap();
            builder
                .with_client_cert_verifier(rustls::server::WebPkiClientVerifier::builder(roots.into()).build().unwrap())
        }
    };
    let mut config =
        builder.with_single_cert(vec![CertificateDer::from(leaf.0)], PrivateKeyDer::Pkcs8(leaf.1.into())).unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service_fn(versioned))
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service_fn(versioned))
                        .await;
                }
            });
        }
    });
    addr
}

/// Plain-text HTTP/2 only (prior knowledge, "h2c").
async fn h2c_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service_fn(versioned))
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn body_regex_and_header_expectations() {
    let base = support::http_target().await;
    let url = format!("{base}/ok");
    let ok = run(
        json!({"kind": "http", "url": url, "body_regex": "^all o[k]$", "expect_headers": {"Content-Length": "^6$"}}),
    )
    .await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert!(ok.details.headers.iter().any(|(k, v)| k == "content-length" && v == "6"), "{:?}", ok.details.headers);

    let (kind, message) = failed(&run(json!({"kind": "http", "url": url, "body_regex": "^healthy"})).await);
    assert_eq!(kind, ErrorKind::Body);
    assert_eq!(message, "body: does not match /^healthy/ (first 6 bytes read)");

    let (kind, message) =
        failed(&run(json!({"kind": "http", "url": url, "expect_headers": {"content-length": "^7$"}})).await);
    assert_eq!(kind, ErrorKind::Status);
    assert_eq!(message, format!("status: header content-length \"6\" does not match /^7$/ ({url})"));

    let (kind, message) =
        failed(&run(json!({"kind": "http", "url": url, "expect_headers": {"x-request-id": "."}})).await);
    assert_eq!(kind, ErrorKind::Status);
    assert_eq!(message, format!("status: no x-request-id header, expected one matching /./ ({url})"));
}

#[tokio::test]
async fn fail_if_not_tls_and_ip_protocol() {
    let base = support::http_target().await;
    let (kind, message) =
        failed(&run(json!({"kind": "http", "url": format!("{base}/ok"), "fail_if_not_tls": true})).await);
    assert_eq!(kind, ErrorKind::Tls);
    assert!(message.starts_with("tls: the final response came over plain HTTP"), "{message}");

    let v4 =
        run(json!({"kind": "http", "url": base.replace("127.0.0.1", "localhost") + "/ok", "ip_protocol": "ip4"})).await;
    assert!(v4.is_up(), "{:?}", v4.result);
    let (kind, message) =
        failed(&run(json!({"kind": "http", "url": format!("{base}/ok"), "ip_protocol": "ip6"})).await);
    assert_eq!(kind, ErrorKind::Internal);
    assert_eq!(message, "internal: 127.0.0.1 is not an IPv6 address (ip_protocol = \"ip6\")");
}

#[tokio::test]
async fn http2_over_tls_by_alpn_and_in_the_clear_by_prior_knowledge() {
    let pki = Pki::new();
    probity_agent::probe::trust_extra_root(pki.ca_der.clone());
    let both = https_server(pki.leaf("both", "both"), &[b"h2", b"http/1.1"], None).await;
    let only_1 = https_server(pki.leaf("one", "one"), &[b"http/1.1"], None).await;
    let h2c = h2c_server().await;

    let any =
        run(json!({"kind": "http", "url": format!("https://localhost:{}/", both.port()), "body_regex": "HTTP/2"}))
            .await;
    assert!(any.is_up(), "{:?}", any.result);
    assert_eq!(any.details.http_version, Some("HTTP/2"));
    let p = &any.details.phases;
    assert!(p.connect_us <= p.tls_us && p.tls_us <= p.first_byte_us, "{p:?}");

    let pinned =
        run(json!({"kind": "http", "url": format!("https://localhost:{}/", both.port()), "http_version": "1.1"})).await;
    assert!(pinned.is_up(), "{:?}", pinned.result);
    assert_eq!(pinned.details.http_version, Some("HTTP/1.1"));

    let url = format!("https://localhost:{}/", only_1.port());
    let refused = run(json!({"kind": "http", "url": url, "http_version": "2"})).await;
    let (kind, message) = failed(&refused);
    assert_eq!(kind, ErrorKind::Tls, "{message}");
    assert_eq!(message, "tls: handshake with localhost failed: the server speaks none of the protocols offered (h2)");

    let clear =
        run(json!({"kind": "http", "url": format!("http://{h2c}/"), "http_version": "2", "body_regex": "HTTP/2"}))
            .await;
    assert!(clear.is_up(), "{:?}", clear.result);
    assert_eq!(clear.details.http_version, Some("HTTP/2"));
}

#[tokio::test]
async fn a_private_ca_in_ca_file_and_a_client_certificate() {
    let pki = Pki::new();
    // This CA is trusted by nothing but the probes that name its file.
    let server = https_server(pki.leaf("server", "server"), &[b"http/1.1"], Some(pki.ca_der.clone())).await;
    pki.leaf("client", "probity client");
    let url = format!("https://localhost:{}/", server.port());

    let (kind, message) = failed(&run(json!({"kind": "http", "url": url})).await);
    assert_eq!(kind, ErrorKind::Tls);
    assert!(message.contains("unknown issuer"), "{message}");

    // Trusted, but the server wants a client certificate: it ends the handshake.
    let anonymous = run(json!({"kind": "http", "url": url, "ca_file": pki.path("ca.pem")})).await;
    assert!(!anonymous.is_up());
    assert!(anonymous.details.cert_not_after.is_some(), "the server's certificate was seen and verified");

    let mutual = run(json!({
        "kind": "http", "url": url, "ca_file": pki.path("ca.pem"),
        "client_cert": pki.path("client.pem"), "client_key": pki.path("client.key")
    }))
    .await;
    assert!(mutual.is_up(), "{:?}", mutual.result);

    let (kind, message) = failed(&run(json!({"kind": "http", "url": url, "ca_file": pki.path("missing.pem")})).await);
    assert_eq!(kind, ErrorKind::Internal);
    assert!(message.starts_with(&format!("internal: cannot read ca_file {}", pki.path("missing.pem"))), "{message}");
}
