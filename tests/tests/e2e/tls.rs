//! The collector serving HTTPS with a self-signed certificate: its embedded agent
//! trusts that certificate and delivers over TLS, and a client pinning it reads the API.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use probity_tests::{bin, free_port, https_get, wait_for};

#[test]
fn an_https_collector_takes_results_from_its_embedded_agent_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_pem).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = format!(
        r#"[server]
listen = "{addr}"
data_dir = "data"
tls_cert = "cert.pem"
tls_key = "key.pem"

[embedded_agent]
enabled = true

[[services]]
id = "collector"
  [[services.probes]]
  id = "collector-port"
  kind = "tcp"
  target = "{addr}"
  interval = "1s"
  timeout = "1s"
"#
    );
    std::fs::write(dir.path().join("collector.toml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("collector.log")).unwrap();
    let mut child = Command::new(bin("probity-collector"))
        .args(["--config", "collector.toml"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let state = wait_for("the service up through the embedded agent over TLS", Duration::from_secs(60), || {
        let reply = https_get(addr, "127.0.0.1", "/api/v1/services", cert_pem.as_bytes())?;
        let body = reply.json();
        let state = body["services"][0]["state"].as_str()?.to_string();
        (state == "up").then_some(state)
    });
    assert_eq!(state, "up");
    // Plain HTTP on the TLS port gets no API answer.
    let plain = probity_tests::http("GET", addr, "/api/v1/services", &[], b"");
    assert!(plain.is_none_or(|r| r.status != 200));
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(dir.path().join("collector.log")).unwrap();
    assert!(log.contains("tls=true"), "{log}");
}
