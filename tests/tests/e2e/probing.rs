//! Real agents against a real collector and real local targets: probes run, results
//! arrive, the service state follows the target, and the embedded agent does the same
//! inside the collector process.

use std::net::TcpListener;
use std::time::Duration;

use probity_tests::{Agent, Collector, HttpTarget, wait_for};
use serde_json::Value;

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn service_state(c: &Collector, id: &str) -> Option<String> {
    let body = c.get("/api/v1/services").json();
    let list = body["services"].as_array()?.clone();
    list.iter().find(|s| s["id"] == id).and_then(|s| s["state"].as_str().map(str::to_string))
}

#[test]
fn two_agents_probe_local_targets_and_the_state_follows_the_target() {
    let web = HttpTarget::start(200);
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let tokens = [("edge-1", "probity_e2e-edge-1"), ("edge-2", "probity_e2e-edge-2")];
    let agents: String = tokens
        .iter()
        .map(|(id, t)| {
            format!("[[agents]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex(probity_config::token_sha256(t)))
        })
        .collect();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

{agents}
[[services]]
id = "web"
name = "Web"
  [[services.probes]]
  id = "web-http"
  kind = "http"
  url = "http://{web}/health"
  interval = "1s"
  timeout = "1s"
  quorum = 2
  body_contains = "ok"

  [[services.probes]]
  id = "web-tcp"
  kind = "tcp"
  target = "{tcp_addr}"
  interval = "1s"
  timeout = "1s"
"#,
        web = web.addr
    );
    let c = Collector::start(&config);
    let _a1 = Agent::start(tokens[0].0, tokens[0].1, &c.url(""));
    let _a2 = Agent::start(tokens[1].0, tokens[1].1, &c.url(""));

    wait_for("web up", Duration::from_secs(60), || (service_state(&c, "web").as_deref() == Some("up")).then_some(()));
    assert!(web.requests.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    web.set_status(503);
    wait_for("web down", Duration::from_secs(60), || {
        (service_state(&c, "web").as_deref() == Some("down")).then_some(())
    });

    let now = jiff::Timestamp::now();
    let from = now - jiff::SignedDuration::from_secs(600);
    let a: Value = c.get(&format!("/api/v1/services/web/availability?from={from}&to={now}")).json();
    assert!(a["downtime_seconds"].as_f64().unwrap() > 0.0, "{a}");
    let outages = a["outages"].as_array().unwrap();
    assert!(!outages.is_empty());
    assert!(outages[0]["reasons"].get("status").is_some(), "{a}");

    let metrics = c.get("/metrics").text();
    assert!(metrics.contains("probity_"), "{metrics}");
    drop(tcp);
}

#[test]
fn the_embedded_agent_probes_and_stores_real_results() {
    let web = HttpTarget::start(200);
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

[embedded_agent]
enabled = true
id = "local"

[[services]]
id = "collector"
  [[services.probes]]
  id = "collector-health"
  kind = "http"
  url = "http://{web}/healthz"
  interval = "1s"
  timeout = "1s"
"#,
        web = web.addr
    );
    let c = Collector::start(&config);
    wait_for("collector up via its embedded agent", Duration::from_secs(60), || {
        (service_state(&c, "collector").as_deref() == Some("up")).then_some(())
    });
}
