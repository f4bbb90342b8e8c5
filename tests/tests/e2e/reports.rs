//! Results ingested through the real API for three agents, then reports requested from
//! the real collector process and checked against figures worked out by hand.

use probity_config::time::rfc3339;
use probity_tests::Collector;
use serde_json::{Value, json};

const TOKENS: [(&str, &str); 3] = [("a1", "probity_e2e-a1"), ("a2", "probity_e2e-a2"), ("a3", "probity_e2e-a3")];

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Yesterday (UTC) at 00:00, in Unix ms: inside retention, never in the future.
fn yesterday_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    (now / 86_400_000 - 1) * 86_400_000
}

pub fn config(day: i64) -> String {
    let agents: String = TOKENS
        .iter()
        .map(|(id, token)| {
            format!("[[agents]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex(probity_config::token_sha256(token)))
        })
        .collect();
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

{agents}
[calendars.morning]
timezone = "UTC"
hours = ["mon-sun 10:00-10:40"]

[[maintenance]]
id = "chg-1"
services = ["shop"]
start = "{m_start}"
end = "{m_end}"
reason = "planned restart"

[[services]]
id = "shop"
name = "Shop"
owner = "web-team"

  [[services.probes]]
  id = "shop-http"
  kind = "http"
  url = "http://127.0.0.1:9/health"
  interval = "10s"
  timeout = "5s"
  quorum = 2

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
counterparty = "customers"
calendar = "morning"
availability = 99.0
latency = {{ percentile = 50, max = "30ms" }}
"#,
        m_start = rfc3339(day + 10 * 3_600_000 + 30 * 60_000),
        m_end = rfc3339(day + 10 * 3_600_000 + 35 * 60_000),
    )
}

/// 10:00-11:00 every 10 s; a1 and a2 see the probe down 10:10-10:20; nobody reports
/// 10:36:00-10:38:00 (so the views go stale at 10:36:10).
pub fn results_for(agent: &str, day: i64) -> Vec<Value> {
    let at0 = day + 10 * 3_600_000;
    let mut out = Vec::new();
    let mut seq = 1;
    for i in 0..360 {
        let at = at0 + i * 10_000;
        let minute = i / 6;
        if (36..38).contains(&minute) {
            continue;
        }
        let down = agent != "a3" && (10..20).contains(&minute);
        let duration_us = if agent == "a3" { 40_000 } else { 20_000 };
        let mut r = json!({"seq": seq, "probe": "shop-http", "at": at, "duration_us": duration_us, "ok": !down});
        if down {
            r["error"] = json!({"kind": "timeout", "message": "no answer within 5s"});
        } else {
            r["status"] = json!(200);
        }
        out.push(r);
        seq += 1;
    }
    out
}

pub fn ingest_all(c: &Collector, day: i64) {
    for (agent, token) in TOKENS {
        let results = results_for(agent, day);
        let n = results.len() as u64;
        let reply = c.post_json("/api/v1/ingest", token, &json!({"agent": agent, "results": results}));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let body = reply.json();
        assert_eq!(body["accepted"], n, "{body}");
        assert_eq!(body["duplicates"], 0);
    }
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-6)
}

#[test]
fn an_agreement_report_matches_figures_worked_out_by_hand() {
    let day = yesterday_ms();
    let c = Collector::start(&config(day));
    ingest_all(&c, day);

    // Re-sending a batch is acknowledged as duplicates, not counted twice.
    let again = c.post_json("/api/v1/ingest", TOKENS[0].1, &json!({"agent": "a1", "results": results_for("a1", day)}));
    assert_eq!(again.json()["duplicates"], 348);

    let (from, to) = (rfc3339(day + 10 * 3_600_000), rfc3339(day + 11 * 3_600_000));
    let r = c.get(&format!("/api/v1/agreements/shop-sla/report?from={from}&to={to}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = r.json();
    // Service hours 10:00-10:40 = 2400 s; maintenance 10:30-10:35 = 300 s; base 2100 s.
    assert!(close(&r["service_hours_seconds"], 2400.0), "{r}");
    assert!(close(&r["maintenance_seconds"], 300.0), "{r}");
    // Views stale from 10:36:10 until the next results at 10:38:00: 110 s unknown.
    assert!(close(&r["unknown_seconds"], 110.0), "{r}");
    // a1 and a2 down 10:10-10:20 reach the quorum of 2 (a3's up view does not outvote them).
    assert!(close(&r["downtime_seconds"], 600.0), "{r}");
    assert!(close(&r["agreed_service_seconds"], 1990.0), "{r}");
    assert!(close(&r["availability_percent"], 100.0 * 1390.0 / 1990.0), "{r}");
    assert!(close(&r["error_budget_seconds"], 19.9), "{r}");
    assert!(close(&r["error_budget_remaining_seconds"], -580.1), "{r}");
    assert_eq!(r["met"], false);
    assert_eq!(r["target_percent"], 99.0);
    assert_eq!(r["agreement"], "shop-sla");
    assert_eq!(r["kind"], "sla");
    assert_eq!(r["service"], "shop");
    assert_eq!(r["period"]["complete"], true);
    let outages = r["outages"].as_array().unwrap();
    assert_eq!(outages.len(), 1, "{r}");
    assert_eq!(outages[0]["start"], rfc3339(day + 10 * 3_600_000 + 10 * 60_000));
    assert_eq!(outages[0]["end"], rfc3339(day + 10 * 3_600_000 + 20 * 60_000));
    assert!(close(&outages[0]["counted_seconds"], 600.0));
    assert_eq!(outages[0]["agents"], json!(["a1", "a2"]));
    assert_eq!(outages[0]["reasons"], json!({"timeout": 2}));
    // Latency p50 over successful results in the minutes of base: 276 at 20 ms, 198 at 40 ms.
    assert_eq!(r["latency"]["samples"], 474, "{r}");
    let p50 = r["latency"]["achieved_ms"].as_f64().unwrap();
    assert!((20.0..20.03).contains(&p50), "{p50}");
    assert_eq!(r["latency"]["met"], true);

    // The same data without a calendar (24x7) and without targets.
    let a = c.get(&format!("/api/v1/services/shop/availability?from={from}&to={to}")).json();
    assert!(close(&a["service_hours_seconds"], 3600.0), "{a}");
    assert!(close(&a["downtime_seconds"], 600.0), "{a}");
    assert!(a.get("target_percent").is_none(), "{a}");

    let comp = c.get(&format!("/api/v1/compliance?from={from}&to={to}")).json();
    assert_eq!((comp["met"].as_u64(), comp["breached"].as_u64()), (Some(0), Some(1)), "{comp}");
    assert!(close(&comp["compliance_rate_percent"], 0.0));
}

#[test]
fn bad_read_requests_get_clear_errors() {
    let c = Collector::start(&config(yesterday_ms()));
    let r = c.get("/api/v1/agreements/nope/report?period=2026-11");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = c.get("/api/v1/agreements/shop-sla/report?period=2026-13");
    assert_eq!(r.status, 400);
    assert!(!r.json()["error"].as_str().unwrap().is_empty());
    let r = c.get("/api/v1/services/shop/latency?percentiles=abc");
    assert_eq!(r.status, 400);
    let r = c.get("/api/v1/services/shop/availability?calendar=nope");
    assert_eq!(r.status, 400);
    let r = c.get("/api/v1/compliance?colour=blue");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("colour"));
}

#[test]
fn read_tokens_guard_the_read_api_but_not_the_public_key() {
    let read_hash = hex(probity_config::token_sha256("probity_e2e-reader"));
    let text = config(yesterday_ms())
        .replace("[server]\n", &format!("[api]\nread_tokens_sha256 = [\"{read_hash}\"]\n\n[server]\n"));
    let c = Collector::start(&text);
    for path in ["/api/v1/services", "/api/v1/compliance", "/api/v1/gaps", "/api/v1/agreements/shop-sla/report"] {
        let r = c.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap().contains("read token"));
        let r = c.get_with(path, &[("Authorization", "Bearer probity_e2e-wrong")]);
        assert_eq!(r.status, 401, "{path}");
        let r = c.get_with(path, &[("Authorization", "Bearer probity_e2e-reader")]);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // An agent token is not a read token.
    let r = c.get_with("/api/v1/services", &[("Authorization", &format!("Bearer {}", TOKENS[0].1))]);
    assert_eq!(r.status, 401);
    assert_eq!(c.get("/api/v1/evidence/public-key").status, 200);
}

#[test]
fn latency_and_gaps_endpoints_answer_with_the_spec_fields() {
    let day = yesterday_ms();
    let c = Collector::start(&config(day));
    ingest_all(&c, day);
    let (from, to) = (rfc3339(day + 10 * 3_600_000), rfc3339(day + 11 * 3_600_000));
    let l = c.get(&format!("/api/v1/services/shop/latency?from={from}&to={to}&percentiles=50,99")).json();
    // Every successful result of the hour (no calendar: 24x7) minus a1/a2's 60 failures
    // each, outside the maintenance window 10:30-10:35 (5 minutes x 6 results x 3 agents).
    assert_eq!(l["count"], 3 * 348 - 120 - 90, "{l}");
    assert!((19.9..20.1).contains(&l["min_ms"].as_f64().unwrap()), "{l}");
    assert!((39.9..40.1).contains(&l["max_ms"].as_f64().unwrap()), "{l}");
    assert!(l["mean_ms"].as_f64().is_some());
    assert!(l["percentiles"]["p50"].as_f64().is_some() && l["percentiles"]["p99"].as_f64().is_some(), "{l}");
    let g = c.get("/api/v1/gaps").json();
    assert_eq!(g["gaps"], json!([]));
    let ev = c.get("/api/v1/agreements/nope/evidence?period=2026-11");
    assert_eq!(ev.status, 404);
    let ev = c.get("/api/v1/agreements/shop-sla/evidence?period=2026-Q5");
    assert_eq!(ev.status, 400);
}
