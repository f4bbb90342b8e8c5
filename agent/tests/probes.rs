//! Every probe kind against real local targets: statuses, delays, redirects, TLS
//! certificates (valid, expiring, expired, untrusted), refused ports and a DNS
//! responder that answers, refuses, answers wrongly or stays silent.

use probity_tests as support;

use std::time::Duration;

use probity_agent::probe::{Outcome, run_spec};
use probity_config::probe::ProbeSpec;
use probity_config::wire::ErrorKind;
use serde_json::json;

fn spec(v: serde_json::Value) -> ProbeSpec {
    serde_json::from_value(v).unwrap()
}

async fn run(v: serde_json::Value, timeout_ms: u64) -> Outcome {
    run_spec(&spec(v), Duration::from_millis(timeout_ms)).await
}

fn failed(o: &Outcome) -> (ErrorKind, String) {
    let f = o.result.as_ref().expect_err("the probe should fail");
    (f.kind, f.message.clone())
}

#[tokio::test]
async fn http_statuses_bodies_delays_and_redirects() {
    let base = support::http_target().await;

    let ok = run(json!({"kind": "http", "url": format!("{base}/ok"), "body_contains": "ok"}), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert_eq!(ok.details.status, Some(200));
    assert!(ok.details.phases.connect_us.is_some() && ok.details.phases.first_byte_us.is_some());
    assert_eq!(ok.details.phases.dns_us, None, "an IP literal needs no lookup");

    let down = run(json!({"kind": "http", "url": format!("{base}/status/503")}), 5000).await;
    let (kind, message) = failed(&down);
    assert_eq!(kind, ErrorKind::Status);
    assert!(message.starts_with("status: got 503 Service Unavailable, expected 200-399"), "{message}");
    assert_eq!(down.details.status, Some(503));

    let custom =
        run(json!({"kind": "http", "url": format!("{base}/status/404"), "expect_status": ["404"]}), 5000).await;
    assert!(custom.is_up(), "{:?}", custom.result);

    let body = run(json!({"kind": "http", "url": format!("{base}/ok"), "body_contains": "healthy"}), 5000).await;
    let (kind, message) = failed(&body);
    assert_eq!(kind, ErrorKind::Body);
    assert!(message.contains("does not contain \"healthy\""), "{message}");

    let slow = run(json!({"kind": "http", "url": format!("{base}/delay/3000")}), 300).await;
    let (kind, message) = failed(&slow);
    assert_eq!(kind, ErrorKind::Timeout);
    assert_eq!(message, "timeout: no response within 300ms");

    let followed =
        run(json!({"kind": "http", "url": format!("{base}/redirect"), "body_contains": "all ok"}), 5000).await;
    assert!(followed.is_up(), "{:?}", followed.result);
    assert_eq!(followed.details.status, Some(200));

    let not_followed = run(
        json!({"kind": "http", "url": format!("{base}/redirect"), "follow_redirects": false, "expect_status": ["200-299"]}),
        5000,
    )
    .await;
    assert_eq!(failed(&not_followed).0, ErrorKind::Status);
    assert_eq!(not_followed.details.status, Some(302));

    let refused = support::closed_port();
    let (kind, message) = failed(&run(json!({"kind": "http", "url": format!("http://{refused}/")}), 5000).await);
    assert_eq!(kind, ErrorKind::Connect);
    assert_eq!(message, format!("connect: connection refused ({refused})"));
}

#[tokio::test]
async fn http_names_are_resolved_and_timed() {
    let base = support::http_target().await.replace("127.0.0.1", "localhost");
    let ok = run(json!({"kind": "http", "url": format!("{base}/ok")}), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    let p = &ok.details.phases;
    let (dns, connect, first_byte) = (p.dns_us.unwrap(), p.connect_us.unwrap(), p.first_byte_us.unwrap());
    // Each phase counts from the probe's start (like curl -w), so they only grow.
    assert!(dns <= connect && connect <= first_byte, "{p:?}");
    assert!(first_byte <= ok.duration.as_micros() as u64, "{p:?} within {:?}", ok.duration);
}

#[tokio::test]
async fn https_checks_the_certificate_chain_and_expiry() {
    let ca = support::ca();
    probity_agent::probe::trust_extra_root(ca.der.clone());
    let good = support::https_target(support::leaf(&ca, 90)).await;
    let expired = support::https_target(support::leaf(&ca, -3)).await;

    let ok = run(json!({"kind": "http", "url": format!("{good}/delay/50")}), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    let p = &ok.details.phases;
    let (connect, tls, first_byte) = (p.connect_us.unwrap(), p.tls_us.unwrap(), p.first_byte_us.unwrap());
    assert!(connect <= tls && tls <= first_byte, "{p:?}");
    assert!(first_byte - tls >= 50_000, "the server's 50 ms come after the handshake: {p:?}");
    assert!(first_byte <= ok.duration.as_micros() as u64, "{p:?} within {:?}", ok.duration);
    let not_after = ok.details.cert_not_after.expect("https reports cert_not_after");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((not_after - now - 90 * 86_400).abs() < 86_400);

    let bad = run(json!({"kind": "http", "url": format!("{expired}/ok")}), 5000).await;
    let (kind, message) = failed(&bad);
    assert_eq!(kind, ErrorKind::CertExpiry);
    assert!(message.contains("expired 3 days ago"), "{message}");
    assert!(bad.details.cert_not_after.is_some());

    let unverified = run(json!({"kind": "http", "url": format!("{expired}/ok"), "tls_verify": false}), 5000).await;
    assert!(unverified.is_up(), "{:?}", unverified.result);
}

#[tokio::test]
async fn tls_probe_reports_expiry_and_untrusted_chains() {
    let ca = support::ca();
    probity_agent::probe::trust_extra_root(ca.der.clone());
    let good = support::tls_listener(support::leaf(&ca, 90), false).await;
    let soon = support::tls_listener(support::leaf(&ca, 5), false).await;
    let expired = support::tls_listener(support::leaf(&ca, -2), false).await;
    let stranger = support::ca();
    let untrusted = support::tls_listener(support::leaf(&stranger, 90), false).await;

    let ok = run(json!({"kind": "tls", "target": good.to_string(), "server_name": "localhost"}), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);

    let (kind, message) = failed(&run(json!({"kind": "tls", "target": soon.to_string()}), 5000).await);
    assert_eq!(kind, ErrorKind::CertExpiry);
    assert!(message.contains("expires in 4 days") || message.contains("expires in 5 days"), "{message}");
    assert!(message.contains("under min_days_valid 14"), "{message}");

    let relaxed = run(json!({"kind": "tls", "target": soon.to_string(), "min_days_valid": 1}), 5000).await;
    assert!(relaxed.is_up(), "{:?}", relaxed.result);

    let (kind, message) = failed(&run(json!({"kind": "tls", "target": expired.to_string()}), 5000).await);
    assert_eq!(kind, ErrorKind::CertExpiry);
    assert!(message.contains("expired 2 days ago"), "{message}");

    let (kind, message) = failed(&run(json!({"kind": "tls", "target": untrusted.to_string()}), 5000).await);
    assert_eq!(kind, ErrorKind::Tls);
    assert!(message.contains("unknown issuer"), "{message}");
}

/// Regression: an expired certificate was `cert_expiry` over `tls://` but `tls` over
/// `https://`, and `probity-agent probe` printed "(-3 days)" beside "expired 2 days ago".
#[tokio::test]
async fn an_expired_certificate_reads_alike_over_https_and_tls() {
    let ca = support::ca();
    probity_agent::probe::trust_extra_root(ca.der.clone());
    let cert = support::leaf(&ca, -3);
    let https = support::https_target(cert.clone()).await;
    let tls = support::tls_listener(cert, false).await;
    let over_https = run(json!({"kind": "http", "url": format!("{https}/ok")}), 5000).await;
    let over_tls = run(json!({"kind": "tls", "target": tls.to_string(), "server_name": "127.0.0.1"}), 5000).await;
    let (https_kind, https_message) = failed(&over_https);
    let (tls_kind, tls_message) = failed(&over_tls);
    assert_eq!((https_kind, tls_kind), (ErrorKind::CertExpiry, ErrorKind::CertExpiry));
    assert!(https_message.starts_with("cert_expiry: certificate of 127.0.0.1 expired 3 days ago (not after "));
    assert_eq!(https_message, tls_message);
    let printed = probity_agent::adhoc::render(&spec(json!({"kind": "tls", "target": tls.to_string()})), &over_tls);
    assert!(printed.contains("expired 3 days ago"), "{printed}");
    assert!(!printed.contains("-3 days") && !printed.contains("-4 days"), "{printed}");
}

#[tokio::test]
async fn tcp_connects_or_says_why_not() {
    let open = support::tcp_target().await;
    let ok = run(json!({"kind": "tcp", "target": open.to_string()}), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert!(ok.details.phases.connect_us.is_some());

    let closed = support::closed_port();
    let (kind, message) = failed(&run(json!({"kind": "tcp", "target": closed.to_string()}), 5000).await);
    assert_eq!(kind, ErrorKind::Connect);
    assert_eq!(message, format!("connect: connection refused ({closed})"));
}

#[tokio::test]
async fn dns_distinguishes_rcodes_answers_and_silence() {
    let server = support::dns_target().await.to_string();
    let dns = |name: &str, expect: Vec<&str>| json!({"kind": "dns", "name": name, "server": server, "expect": expect});

    let ok = run(dns("ok.test", vec!["192.0.2.1"]), 5000).await;
    assert!(ok.is_up(), "{:?}", ok.result);
    assert!(ok.details.phases.dns_us.is_some());

    let (kind, message) = failed(&run(dns("wrong.test", vec!["192.0.2.1"]), 5000).await);
    assert_eq!(kind, ErrorKind::Answer);
    assert_eq!(message, format!("answer: wrong.test A lacks 192.0.2.1; got [192.0.2.99] from {server}"));

    let (kind, message) = failed(&run(dns("missing.test", vec![]), 5000).await);
    assert_eq!(kind, ErrorKind::Dns);
    assert_eq!(message, format!("dns: NXDOMAIN for missing.test A from {server}"));

    let (kind, message) = failed(&run(dns("fail.test", vec![]), 5000).await);
    assert_eq!(kind, ErrorKind::Dns);
    assert!(message.starts_with("dns: SERVFAIL for fail.test A"), "{message}");

    let (kind, message) = failed(&run(dns("empty.test", vec![]), 5000).await);
    assert_eq!(kind, ErrorKind::Answer);
    assert!(message.starts_with("answer: no"), "{message}");

    let silent = run(dns("silent.test", vec![]), 400).await;
    let (kind, message) = failed(&silent);
    assert_eq!(kind, ErrorKind::Timeout);
    assert!(message.starts_with("timeout: no answer for silent.test A"), "{message}");
}

#[tokio::test]
async fn a_failed_result_carries_its_kind_on_the_wire() {
    let closed = support::closed_port();
    let outcome = run(json!({"kind": "tcp", "target": closed.to_string()}), 5000).await;
    let wire = serde_json::to_value(outcome.to_result("db", 7)).unwrap();
    assert_eq!(wire["seq"], 7);
    assert_eq!(wire["ok"], false);
    assert_eq!(wire["error"]["kind"], "connect");
    assert!(wire["at"].as_i64().unwrap() > 1_700_000_000_000);
}

/// Regression: a server that sends its whole answer with `Connection: close` and hangs up
/// at once finished the connection driver before the response was taken, and the probe
/// reported "connect: the server closed the connection before answering".
#[tokio::test]
async fn a_server_that_answers_and_closes_at_once_is_judged_on_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut status = [503u16, 200].into_iter().cycle();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { return };
            let code = status.next().unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let body = if code == 200 { "ok\n" } else { "failing\n" };
            let reply =
                format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            let _ = conn.write_all(reply.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    let url = format!("http://{addr}/health");
    let down = run(json!({"kind": "http", "url": url, "body_contains": "ok"}), 5000).await;
    let (kind, message) = failed(&down);
    assert_eq!(kind, ErrorKind::Status, "{message}");
    assert_eq!(down.details.status, Some(503));
    let up = run(json!({"kind": "http", "url": url, "body_contains": "ok"}), 5000).await;
    assert!(up.is_up(), "{:?}", up.result);
}

/// The agent's host being busy when the answer comes in (its only runtime thread blocked
/// from before the server answers until well after) does not make the target look slow:
/// first byte and duration are when the bytes reached the socket, not when the agent got
/// round to reading them. Judged against the events themselves, not a latency figure: the
/// answer cannot be stamped before the server waited 50 ms, nor after the server's write
/// returned; a read-time stamp would come after the busy spell, which starts before that
/// write and ends 400 ms after it.
#[tokio::test]
async fn a_busy_agent_host_does_not_inflate_the_measured_latency() {
    use std::io::{Read, Write};
    use tokio::time::Instant;
    assert!(probity_agent::probe::arm_receive_stamps() || !cfg!(target_os = "linux"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (asked_tx, asked_rx) = std::sync::mpsc::channel();
    let (wrote_tx, wrote_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        asked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        wrote_tx.send(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_secs(2));
    });
    let started = Instant::now();
    let probe = tokio::spawn(run(json!({"kind": "http", "url": format!("http://{addr}/")}), 5000));
    // The request reaching the server is awaited off this runtime's only thread, so the probe
    // can send it; then that thread blocks: nothing reads the socket until after the write.
    tokio::task::spawn_blocking(move || asked_rx.recv().unwrap()).await.unwrap();
    let wrote = wrote_rx.recv().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let ok = probe.await.unwrap();
    assert!(ok.is_up(), "{:?}", ok.result);
    let first_byte = Duration::from_micros(ok.details.phases.first_byte_us.unwrap());
    assert!(first_byte >= Duration::from_millis(50), "the server waited 50 ms before answering: {first_byte:?}");
    if cfg!(target_os = "linux") {
        // 1 ms covers turning the kernel's wall-clock stamp into a monotonic instant.
        let by_the_write = wrote - started + Duration::from_millis(1);
        assert!(first_byte <= by_the_write, "stamped after the server's write: {first_byte:?} > {by_the_write:?}");
        assert!(ok.duration <= by_the_write, "ended after the server's write: {:?} > {by_the_write:?}", ok.duration);
    }
}
