//! The period lifecycle with real processes (SPEC §10): results for last week are ingested,
//! the week closes, the target is raised and the collector reloaded: the closed week keeps
//! the terms and figures it was sealed with, the running week uses the new ones; the sealed
//! revision survives late results, a reload and a restart.

use jiff::ToSpan;
use probity_tests::Collector;
use serde_json::{Value, json};

const TOKEN: &str = "probity_e2e-history-a1";

fn config(target: f64, settle: &str) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

[[agents]]
id = "a1"
token_sha256 = "{hash}"

[[services]]
id = "shop"
  [[services.probes]]
  id = "shop-http"
  kind = "http"
  url = "http://127.0.0.1:9/health"
  interval = "10s"
  timeout = "5s"

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
period = "week"
availability = {target:?}
settle = "{settle}"
"#,
        hash = hex::encode(probity_config::token_sha256(TOKEN)),
    )
}

/// Last ISO week: its label and its Monday 00:00 UTC in Unix ms.
fn last_week() -> (String, i64) {
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = today.checked_sub(7.days()).unwrap();
    let week = day.iso_week_date();
    let monday = day.checked_sub(i64::from(week.weekday().to_monday_zero_offset()).days()).unwrap();
    let ms = monday.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond();
    (format!("{:04}-W{:02}", week.year(), week.week()), ms)
}

/// One hour from Monday 10:00 every 10 s, down 10:10-10:20 (`first_seq` on), or the
/// same hour again from `offset_ms`, all down.
fn results(monday: i64, first_seq: u64, offset_ms: i64, all_down: bool) -> Vec<Value> {
    (0..360_i64)
        .map(|i| {
            let at = monday + 10 * 3_600_000 + offset_ms + i * 10_000;
            let down = all_down || (60..120).contains(&i);
            let mut r = json!({"seq": first_seq + i as u64, "probe": "shop-http", "at": at, "duration_us": 20_000, "ok": !down});
            if down {
                r["error"] = json!({"kind": "timeout", "message": "no answer"});
            } else {
                r["status"] = json!(200);
            }
            r
        })
        .collect()
}

/// The report of a period, or of the current one for an empty label.
fn report(c: &Collector, label: &str) -> Value {
    let query = if label.is_empty() { String::new() } else { format!("?period={label}") };
    let r = c.get(&format!("/api/v1/agreements/shop-sla/report{query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn a_closed_week_keeps_its_sealed_terms_through_a_target_change_late_results_and_a_restart() {
    let (label, monday) = last_week();
    // A long settle first, so nothing is sealed before the week's results are in.
    let mut c = Collector::start(&config(99.0, "400d"));
    let ingest = |c: &Collector, results: Vec<Value>| {
        let reply = c.post_json("/api/v1/ingest", TOKEN, &json!({"agent": "a1", "results": results}));
        assert_eq!(reply.status, 200, "{}", reply.text());
    };
    ingest(&c, results(monday, 1, 0, false));
    let settling = report(&c, &label);
    assert_eq!(settling["period"]["state"], "settling", "{settling}");
    assert_eq!(settling["revision"], Value::Null);

    // The week closes (settle 1s) and the target is raised in the same reload.
    std::fs::write(c.dir().join("collector.toml"), config(99.9, "1s")).unwrap();
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");
    let closed = report(&c, &label);
    assert_eq!(closed["period"]["state"], "closed", "{closed}");
    assert_eq!(closed["revision"]["number"], 1, "{closed}");
    assert_eq!(closed["revision"]["catalogue_version"], 1, "sealed with the terms in force at the week's end");
    assert_eq!(closed["target_percent"], 99.0);
    assert_eq!(closed["downtime_seconds"], 600.0);
    assert_eq!(closed["verdict"], "insufficient_data", "one hour of a week is far below min_coverage: {closed}");
    assert_eq!(closed["met"], Value::Null);
    let running = report(&c, "");
    assert_eq!((running["period"]["state"].as_str(), running["target_percent"].as_f64()), (Some("open"), Some(99.9)));

    let versions = c.get("/api/v1/catalogue/versions").json();
    let list = versions["versions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{versions}");
    assert_eq!(list[1]["changes"]["changed"], json!([{"kind": "agreement", "id": "shop-sla"}]));

    // Late results for the closed week are stored but do not rewrite it.
    ingest(&c, results(monday, 1_000, 3_600_000, true));
    assert_eq!(report(&c, &label), closed);

    // Nor does a restart on the same data.
    let config_path = c.dir().join("collector.toml");
    c.kill();
    let c2 = Collector::start_at(&config_path);
    assert_eq!(report(&c2, &label), closed);
    let revisions = c2.get(&format!("/api/v1/agreements/shop-sla/periods/{label}/revisions")).json();
    assert_eq!(revisions["revisions"].as_array().map(Vec::len), Some(1), "{revisions}");
    assert_eq!(revisions["revisions"][0]["sealed_at"], closed["revision"]["sealed_at"]);
}
