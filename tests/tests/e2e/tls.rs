//! The collector serving HTTPS with a self-signed certificate: its embedded agent
//! trusts that certificate and delivers over TLS, and a client pinning it reads the API.

use std::time::Duration;

use probity_tests::{Collector, Reply, blocking_client, wait_for};

#[test]
fn an_https_collector_takes_results_from_its_embedded_agent_over_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    std::fs::write(dir.path().join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.path().join("key.pem"), &key_pem).unwrap();
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
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
  target = "{}"
  interval = "1s"
  timeout = "1s"
"#,
        target.local_addr().unwrap()
    );
    let config_path = probity_tests::write_file(dir.path(), "collector.toml", config.as_bytes());
    let c = Collector::start_at(&config_path);
    assert!(c.tls, "the listening line says tls=true: {}", c.log());
    let pinned = blocking_client(Some(cert_pem.as_bytes()));
    let state = wait_for("the service up through the embedded agent over TLS", Duration::from_secs(60), || {
        let reply = Reply::read(pinned.get(c.url("/api/v1/services")).send().ok()?);
        let body = reply.json();
        let state = body["services"][0]["state"].as_str()?.to_string();
        (state == "up").then_some(state)
    });
    assert_eq!(state, "up");
    // Plain HTTP on the TLS port gets no API answer.
    let plain = blocking_client(None).get(format!("http://{}/api/v1/services", c.addr)).send();
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    drop(target);
}
