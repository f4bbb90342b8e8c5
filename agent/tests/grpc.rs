//! The `grpc` probe against tonic's own health server (tonic-health), in the clear and
//! over TLS: the whole server, a SERVING and a NOT_SERVING service, one it has never
//! heard of, and a port that speaks no gRPC at all.

use probity_tests as support;

use std::net::SocketAddr;
use std::time::Duration;

use probity_agent::probe::{Outcome, run_spec};
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use serde_json::json;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;

async fn run(v: serde_json::Value) -> Outcome {
    let spec: ProbeSpec = serde_json::from_value(v).unwrap();
    run_spec(&spec, Duration::from_secs(5)).await
}

fn failed(o: &Outcome) -> (ErrorKind, String) {
    let f = o.result.as_ref().expect_err("the probe should fail");
    (f.kind, f.message.clone())
}

/// A tonic server with the health service only: `pay.Ledger` SERVING, `pay.Batch`
/// NOT_SERVING; TLS when `identity` is given (PEM certificate and key).
async fn health_server(identity: Option<(String, String)>) -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("pay.Ledger", ServingStatus::Serving).await;
    reporter.set_service_status("pay.Batch", ServingStatus::NotServing).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut builder = Server::builder();
    if let Some((cert, key)) = identity {
        builder = builder.tls_config(ServerTlsConfig::new().identity(Identity::from_pem(cert, key))).unwrap();
    }
    tokio::spawn(async move {
        let _reporter = reporter;
        builder.add_service(service).serve_with_incoming(TcpIncoming::from(listener)).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn serving_and_not_serving_services_in_the_clear() {
    let addr = health_server(None).await;
    let target = addr.to_string();
    let grpc = |service: &str| json!({"kind": "grpc", "target": target, "tls": false, "service": service});

    let whole = run(grpc("")).await;
    assert!(whole.is_up(), "{:?}", whole.result);
    assert_eq!(whole.details.answers, vec!["the server SERVING"]);
    let p = &whole.details.phases;
    assert!(p.connect_us <= p.first_byte_us && p.first_byte_us.is_some(), "{p:?}");

    let ledger = run(grpc("pay.Ledger")).await;
    assert!(ledger.is_up(), "{:?}", ledger.result);

    let (kind, message) = failed(&run(grpc("pay.Batch")).await);
    assert_eq!(kind, ErrorKind::Status);
    assert_eq!(message, format!("status: service \"pay.Batch\" is NOT_SERVING at {addr}"));

    let (kind, message) = failed(&run(grpc("pay.Nothing")).await);
    assert_eq!(kind, ErrorKind::Status);
    assert!(message.starts_with("status: grpc-status 5 (NOT_FOUND)"), "{message}");
}

#[tokio::test]
async fn over_tls_with_the_chain_checked() {
    let ca = support::ca();
    let pki = support::leaf(&ca, 90);
    let (cert_pem, key_pem) = (pem("CERTIFICATE", &pki.0), pem("PRIVATE KEY", &pki.1));
    let addr = health_server(Some((cert_pem, key_pem))).await;
    let target = format!("localhost:{}", addr.port());

    // Not yet trusted: a TLS failure, not a health answer.
    let (kind, message) = failed(&run(json!({"kind": "grpc", "target": target, "service": "pay.Ledger"})).await);
    assert_eq!(kind, ErrorKind::Tls);
    assert!(message.contains("unknown issuer"), "{message}");

    let unverified = run(json!({"kind": "grpc", "target": target, "service": "pay.Ledger", "tls_verify": false})).await;
    assert!(unverified.is_up(), "{:?}", unverified.result);

    probity_agent::probe::trust_extra_root(ca.der.clone());
    let ok = run(json!({"kind": "grpc", "target": target, "service": "pay.Ledger"})).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert!(ok.details.phases.tls_us.is_some() && ok.details.cert_not_after.is_some());
}

#[tokio::test]
async fn a_port_that_speaks_no_grpc_is_down() {
    let http = support::http_target().await;
    let target = http.trim_start_matches("http://").to_string();
    let down = run(json!({"kind": "grpc", "target": target, "tls": false})).await;
    let (kind, _) = failed(&down);
    assert_eq!(kind, ErrorKind::Connect);
    let closed = support::closed_port();
    let (kind, message) = failed(&run(json!({"kind": "grpc", "target": closed.to_string(), "tls": false})).await);
    assert_eq!(kind, ErrorKind::Connect);
    assert_eq!(message, format!("connect: connection refused ({closed})"));
}

/// DER as PEM, for tonic's `Identity`.
fn pem(label: &str, der: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in der.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    let lines: Vec<&str> = text.as_bytes().chunks(64).map(|l| std::str::from_utf8(l).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}
