//! Clocks (SPEC §15): an agent process whose wall clock is two hours slow (run under
//! `faketime`) reports its offset from the ingest answers' `received_at`, and the
//! collector shows it through `GET /api/v1/agents` and `/metrics`, and warns once.

use std::time::Duration;

use probity_tests::{Agent, Collector, wait_for};

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn an_agent_two_hours_slow_shows_its_offset_through_the_agents_api() {
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "probity_e2e-slow-1";
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

[[agents]]
id = "slow-1"
token_sha256 = "{hash}"
labels = {{ site = "lab" }}

[[agents]]
id = "never-seen"
token_sha256 = "{other}"

[[services]]
id = "db"
name = "Database"
  [[services.probes]]
  id = "db-tcp"
  kind = "tcp"
  target = "{target}"
  interval = "1s"
  timeout = "1s"
  agents = ["slow-1"]

[[agreements]]
id = "db-ola"
kind = "ola"
service = "db"
period = "month"
availability = 99.0
"#,
        hash = hex(probity_config::token_sha256(token)),
        other = hex(probity_config::token_sha256("probity_e2e-never")),
        target = target.local_addr().unwrap(),
    );
    let collector = Collector::start(&config);
    let mut agent = Agent::start_with_clock_shift("slow-1", token, &collector.url(""), "-2h");
    // The offset travels in the request after the first answer.
    let row = wait_for("the agent's clock offset", Duration::from_secs(60), || {
        let body = collector.get("/api/v1/agents").json();
        let row = body["agents"].as_array()?.iter().find(|a| a["id"] == "slow-1")?.clone();
        row["clock_offset_ms"].as_i64().map(|_| row)
    });
    let offset = row["clock_offset_ms"].as_i64().unwrap();
    assert!((offset - -7_200_000).abs() <= 1_000, "offset {offset} ms, expected -2h ± 1s\n{}", agent.log());
    assert_eq!(row["clock_ok"], false);
    assert_eq!(row["labels"]["site"], "lab");
    assert_eq!(row["probes"], serde_json::json!(["db-tcp"]));
    assert_eq!(row["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((row["lost_results"].as_u64(), row["resets"].as_u64()), (Some(0), Some(0)), "{row}");
    assert!(row["instance"].as_str().is_some_and(|i| !i.is_empty()), "the agent's instance: {row}");
    assert!(row["last_seen"].as_str().is_some_and(|s| s.ends_with('Z')), "{row}");
    let body = collector.get("/api/v1/agents").json();
    let never = body["agents"].as_array().unwrap().iter().find(|a| a["id"] == "never-seen").unwrap().clone();
    assert_eq!((never["last_seen"].is_null(), never["clock_offset_ms"].is_null()), (true, true), "{never}");
    assert!(never["clock_ok"].is_null(), "unknown, not ok: {never}");

    let metrics = collector.get("/metrics").text();
    let line = metrics.lines().find(|l| l.starts_with("probity_agent_clock_offset_seconds{agent=\"slow-1\"}")).unwrap();
    let seconds: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((seconds + 7200.0).abs() <= 1.0, "{line}");
    assert!(metrics.contains("probity_agent_last_seen_timestamp_seconds{agent=\"slow-1\"}"));
    // Evidence lists the same columns in agents.csv, for the agents that measure the service.
    let bundle = collector.get("/api/v1/agreements/db-ola/evidence");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bundle.body.clone())).unwrap();
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("agents.csv").unwrap(), &mut csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,labels,instance,last_seen,clock_offset_ms,clock_ok,version,lost_results,resets,probes");
    assert_eq!(lines.len(), 2, "never-seen measures nothing here: {csv}");
    let fields: Vec<&str> = lines[1].split(',').collect();
    assert_eq!((fields[0], fields[1], fields[5], fields[9]), ("slow-1", "site=lab", "false", "db-tcp"), "{csv}");
    let csv_offset: i64 = fields[4].parse().unwrap();
    assert!((csv_offset - -7_200_000).abs() <= 1_000, "{csv}");
    // Both sides warn, each once.
    let log = collector.log();
    assert_eq!(log.matches("agent clock is off").count(), 1, "{log}");
    agent.wait_for_log("this host's clock is more than 2s off");
}
