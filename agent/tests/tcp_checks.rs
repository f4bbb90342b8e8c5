//! The `tcp` probe's dialogue against servers written here: a banner-and-echo server,
//! a mail server speaking SMTP, IMAP or POP3 up to STARTTLS and then TLS, and a server
//! with TLS from the first byte.

use probity_tests as support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use probity_agent::probe::{Outcome, run_spec};
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

async fn run(v: serde_json::Value, timeout_ms: u64) -> Outcome {
    let spec: ProbeSpec = serde_json::from_value(v).unwrap();
    run_spec(&spec, Duration::from_millis(timeout_ms)).await
}

fn failed(o: &Outcome) -> (ErrorKind, String) {
    let f = o.result.as_ref().expect_err("the probe should fail");
    (f.kind, f.message.clone())
}

/// Greets with `+READY`, answers `PING` with `+PONG`, anything else with `-ERR`.
async fn serve_lines<S: AsyncRead + AsyncWrite + Unpin>(stream: S) {
    let mut stream = BufReader::new(stream);
    let _ = stream.write_all(b"+READY probity test server\r\n").await;
    let mut line = String::new();
    while stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
        let reply: &[u8] = if line.trim() == "PING" { b"+PONG\r\n" } else { b"-ERR unknown\r\n" };
        let _ = stream.write_all(reply).await;
        line.clear();
    }
}

fn acceptor() -> (tokio_rustls::TlsAcceptor, Vec<u8>) {
    probity_agent::install_crypto_provider();
    let ca = support::ca();
    let (cert, key) = support::leaf(&ca, 90);
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![CertificateDer::from(cert)], PrivateKeyDer::Pkcs8(key.into()))
        .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.der)
}

async fn banner_server(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_lines(stream).await,
                    Some(a) => {
                        if let Ok(s) = a.accept(stream).await {
                            serve_lines(s).await;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A mail server for `protocol` that upgrades to TLS on its STARTTLS command, then
/// speaks the line protocol of `serve_lines`; `offer = false` leaves STARTTLS out.
async fn mail_server(protocol: &'static str, offer: bool, acceptor: tokio_rustls::TlsAcceptor) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let greeting: &[u8] = match protocol {
                    "smtp" => b"220 mail.test ESMTP ready\r\n",
                    "imap" => b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
                    _ => b"+OK POP3 ready\r\n",
                };
                let _ = stream.write_all(greeting).await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if !stream.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                        return;
                    }
                    let command = line.trim().to_ascii_uppercase();
                    let (reply, upgrade): (&[u8], bool) = match (protocol, command.as_str()) {
                        ("smtp", c) if c.starts_with("EHLO") && offer => {
                            (b"250-mail.test hello\r\n250-SIZE 1000000\r\n250 STARTTLS\r\n", false)
                        }
                        ("smtp", c) if c.starts_with("EHLO") => (b"250-mail.test hello\r\n250 SIZE 1000000\r\n", false),
                        ("smtp", "STARTTLS") => (b"220 go ahead\r\n", true),
                        ("imap", "P1 STARTTLS") => (b"p1 OK begin TLS now\r\n", true),
                        ("pop3", "STLS") => (b"+OK begin TLS\r\n", true),
                        _ => (b"500 what\r\n", false),
                    };
                    let _ = stream.write_all(reply).await;
                    if upgrade {
                        let Ok(tls) = acceptor.accept(stream.into_inner()).await else { return };
                        serve_lines(tls).await;
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn send_and_expect_on_a_plain_connection() {
    let addr = banner_server(None).await;
    let ok =
        run(json!({"kind": "tcp", "target": addr.to_string(), "send": "PING\r\n", "expect": "(?m)^\\+PONG"}), 5000)
            .await;
    assert!(ok.is_up(), "{:?}", ok.result);
    let p = &ok.details.phases;
    assert!(p.connect_us <= p.first_byte_us && p.first_byte_us.is_some(), "{p:?}");

    let banner = run(json!({"kind": "tcp", "target": addr.to_string(), "expect": "^\\+READY"}), 5000).await;
    assert!(banner.is_up(), "{:?}", banner.result);

    // The reply arrives but never matches: `answer`, with what came back.
    let wrong =
        run(json!({"kind": "tcp", "target": addr.to_string(), "send": "HELLO\r\n", "expect": "PONG"}), 500).await;
    let (kind, message) = failed(&wrong);
    assert_eq!(kind, ErrorKind::Answer);
    assert_eq!(
        message,
        format!(
            "answer: reply from {addr} does not match /PONG/; got \"+READY probity test server\\r\\n-ERR unknown\\r\\n\""
        )
    );
}

#[tokio::test]
async fn tls_from_the_first_byte_then_the_dialogue() {
    let (acceptor, ca) = acceptor();
    probity_agent::probe::trust_extra_root(ca);
    let addr = banner_server(Some(acceptor)).await;
    let ok = run(
        json!({"kind": "tcp", "target": addr.to_string(), "tls": true, "server_name": "localhost", "send": "PING\n", "expect": "PONG"}),
        5000,
    )
    .await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert!(ok.details.phases.tls_us.is_some() && ok.details.cert_not_after.is_some());

    // Without TLS, the same server's reply is the TLS alert for a plain-text hello: no match.
    let plain = run(json!({"kind": "tcp", "target": addr.to_string(), "send": "PING\n", "expect": "PONG"}), 1000).await;
    assert!(!plain.is_up());
}

#[tokio::test]
async fn starttls_for_smtp_imap_and_pop3() {
    let (acceptor, ca) = acceptor();
    probity_agent::probe::trust_extra_root(ca);
    for protocol in ["smtp", "imap", "pop3"] {
        let addr = mail_server(protocol, true, acceptor.clone()).await;
        let ok = run(
            json!({"kind": "tcp", "target": addr.to_string(), "starttls": protocol, "send": "PING\r\n", "expect": "^\\+READY[^\\n]*\\n\\+PONG"}),
            5000,
        )
        .await;
        assert!(ok.is_up(), "{protocol}: {:?}", ok.result);
        let p = &ok.details.phases;
        assert!(p.first_byte_us <= p.tls_us && p.tls_us.is_some(), "{protocol}: the greeting comes before TLS: {p:?}");
    }

    let silent = mail_server("smtp", false, acceptor.clone()).await;
    let (kind, message) =
        failed(&run(json!({"kind": "tcp", "target": silent.to_string(), "starttls": "smtp"}), 5000).await);
    assert_eq!(kind, ErrorKind::Tls);
    assert!(
        message.starts_with(&format!("tls: smtp server {silent} does not offer STARTTLS; got \"250-mail.test")),
        "{message}"
    );
}
