//! Maintenance as records with real processes (SPEC §11): an outage is measured, then a
//! window declared after it (retroactive) erases it for the SLA, flagged in the report and
//! in the evidence, while the UC with a 72 h notice rule keeps counting it; the windows
//! survive a reload and a SIGKILL restart (a file window keeps the `declared_at` of its
//! first load); cancelling the window brings the figures back; a window dropped from the
//! file is cancelled by `config`, with a trace; readers and strangers cannot write.

use std::io::Read;

use probity_tests::{Collector, Reply};
use reqwest::Method;
use serde_json::{Value, json};

const AGENT: &str = "probity_e2e-maintenance-a1";
const OPS: &str = "probity_e2e-maintenance-ops";
const READER: &str = "probity_e2e-maintenance-reader";

fn hash(t: &str) -> String {
    hex::encode(probity_config::token_sha256(t))
}

/// Service `shop`, an SLA without notice and a UC with a 72 h notice rule, an operator and a
/// reader token, and (when `planned` is set) a file window `planned` ten days ahead.
fn config(planned: Option<(&str, &str)>) -> String {
    let window = planned.map_or(String::new(), |(start, end)| {
        format!("[[maintenance]]\nid = \"planned\"\nservices = [\"shop\"]\nstart = \"{start}\"\nend = \"{end}\"\nreason = \"yearly failover test\"\n")
    });
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = "data"

[[api.tokens]]
id = "ops"
token_sha256 = "{ops}"
role = "operator"

[[api.tokens]]
id = "reader"
token_sha256 = "{reader}"
role = "reader"

[[agents]]
id = "a1"
token_sha256 = "{agent}"

{window}
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
availability = 99.0

[[agreements]]
id = "shop-uc"
kind = "uc"
service = "shop"
availability = 99.0
maintenance_notice = "72h"
"#,
        ops = hash(OPS),
        reader = hash(READER),
        agent = hash(AGENT),
    )
}

fn rfc3339(ms: i64) -> String {
    probity_config::time::rfc3339(ms)
}

fn get(c: &Collector, path: &str) -> Reply {
    c.send(Method::GET, path, Some(READER), None)
}

/// The report of `agreement` over the hour from `t0`.
fn report(c: &Collector, agreement: &str, t0: i64) -> Value {
    let r =
        get(c, &format!("/api/v1/agreements/{agreement}/report?from={}&to={}", rfc3339(t0), rfc3339(t0 + 3_600_000)));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn unzip(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_to_string(&mut text).unwrap();
    text
}

#[test]
fn a_retroactive_window_erases_an_outage_for_the_sla_only_says_so_survives_restart_and_cancelling_brings_it_back() {
    let now = probity_tests::ingest::now_ms();
    // An hour of results, three hours ago, down for ten minutes from 00:10.
    let t0 = (now / 60_000 - 180) * 60_000;
    let planned = (rfc3339(now + 10 * 86_400_000), rfc3339(now + 10 * 86_400_000 + 3_600_000));
    let mut c = Collector::start(&config(Some((&planned.0, &planned.1))));
    let results: Vec<Value> = (0..360_i64)
        .map(|i| {
            let down = (60..120).contains(&i);
            let mut r = json!({"seq": i as u64 + 1, "probe": "shop-http", "at": t0 + i * 10_000, "duration_us": 20_000, "ok": !down});
            if down {
                r["error"] = json!({"kind": "timeout", "message": "no answer"});
            } else {
                r["status"] = json!(200);
            }
            r
        })
        .collect();
    let reply = c.post_json("/api/v1/ingest", AGENT, &json!({"agent": "a1", "results": results}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let before = report(&c, "shop-sla", t0);
    assert_eq!((before["downtime_seconds"].as_f64(), before["verdict"].as_str()), (Some(600.0), Some("breached")));
    assert_eq!(before["maintenance_windows"], json!([]));

    // The file's window is a record, declared by config when first loaded.
    let file_window = get(&c, "/api/v1/maintenance/planned").json();
    assert_eq!(file_window["declared_by"], "config", "{file_window}");
    let first_loaded = file_window["declared_at"].clone();

    // Nobody but an operator (or manager) writes.
    let window = json!({"id": "chg-late", "services": ["shop"], "start": rfc3339(t0 + 300_000),
        "end": rfc3339(t0 + 1_500_000), "reason": "emergency database repair", "ticket": "INC-77"});
    assert_eq!(c.send(Method::POST, "/api/v1/maintenance", None, Some(&window)).status, 401);
    let refused = c.send(Method::POST, "/api/v1/maintenance", Some(READER), Some(&window));
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.json()["error"].as_str().unwrap().contains("needs operator"), "{}", refused.text());
    let bad = c.send(
        Method::POST,
        "/api/v1/maintenance",
        Some(OPS),
        Some(&json!({"services": ["shop"], "start": rfc3339(t0), "end": rfc3339(t0), "reason": "x"})),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("is not after start"), "{}", bad.text());

    // Declared now, after the outage: retroactive.
    let declared = c.send(Method::POST, "/api/v1/maintenance", Some(OPS), Some(&window));
    assert_eq!(declared.status, 201, "{}", declared.text());
    let declared = declared.json();
    assert_eq!((declared["declared_by"].as_str(), declared["retroactive"].as_bool()), (Some("ops"), Some(true)));
    assert_eq!(c.send(Method::POST, "/api/v1/maintenance", Some(OPS), Some(&window)).status, 409);

    // The SLA (no notice) counts it whole: the outage is gone, and the report says why.
    let sla = report(&c, "shop-sla", t0);
    assert_eq!((sla["downtime_seconds"].as_f64(), sla["maintenance_seconds"].as_f64()), (Some(0.0), Some(1200.0)));
    assert_eq!((sla["outages"].as_array().map(Vec::len), sla["verdict"].as_str()), (Some(0), Some("met")));
    let listed = &sla["maintenance_windows"][0];
    assert_eq!(listed["id"], "chg-late");
    assert_eq!((listed["retroactive"].as_bool(), listed["counted_seconds"].as_f64()), (Some(true), Some(1200.0)));
    assert_eq!((listed["declared_by"].as_str(), &listed["notice_met"]), (Some("ops"), &Value::Null));
    assert_eq!(listed["declared_at"], declared["declared_at"]);
    // The UC (72 h notice) refuses it: nothing counts, the outage stays.
    let uc = report(&c, "shop-uc", t0);
    assert_eq!((uc["downtime_seconds"].as_f64(), uc["maintenance_seconds"].as_f64()), (Some(600.0), Some(0.0)));
    assert_eq!(uc["verdict"], "breached");
    let listed = &uc["maintenance_windows"][0];
    assert_eq!((listed["notice_met"].as_bool(), listed["counted_seconds"].as_f64()), (Some(false), Some(0.0)));

    // The SLA's evidence says so too, and verifies offline.
    let period = format!("from={}&to={}", rfc3339(t0), rfc3339(t0 + 3_600_000));
    let bundle = get(&c, &format!("/api/v1/agreements/shop-sla/evidence?{period}"));
    assert_eq!(bundle.status, 200, "{}", bundle.text());
    let csv = unzip(&bundle.body, "maintenance.csv");
    let row = csv.lines().find(|l| l.starts_with("chg-late,")).unwrap_or_else(|| panic!("{csv}"));
    assert!(row.ends_with(",ops,true,") && row.contains(",1200,emergency database repair,INC-77,"), "{row}");
    let methodology = unzip(&bundle.body, "methodology.md");
    assert!(methodology.contains("**Warning: 1 retroactive window (`chg-late`)"), "{methodology}");
    assert!(methodology.contains("sets no `maintenance_notice`"), "{methodology}");
    assert!(unzip(&bundle.body, "report.html").contains("Retroactive maintenance:"));
    let uc_bundle = get(&c, &format!("/api/v1/agreements/shop-uc/evidence?{period}"));
    assert!(unzip(&uc_bundle.body, "methodology.md").contains("`maintenance_notice` = 3d"), "the notice rule is named");
    let key = c.get("/api/v1/evidence/public-key").text().trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = probity_tests::write_file(dir.path(), "bundle.zip", &bundle.body);
    let out = std::process::Command::new(probity_tests::bin("probity-collector"))
        .args(["evidence", "verify"])
        .arg(&file)
        .args(["--public-key", &key])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));

    // A reload and a SIGKILL restart keep both windows as they were.
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");
    assert_eq!(get(&c, "/api/v1/maintenance/chg-late").json(), declared);
    let config_path = c.dir().join("collector.toml");
    c.kill();
    let mut c = Collector::start_at(&config_path);
    assert_eq!(get(&c, "/api/v1/maintenance/chg-late").json(), declared);
    let file_window = get(&c, "/api/v1/maintenance/planned").json();
    assert_eq!(file_window["declared_at"], first_loaded, "declared when first loaded, not at the restart");
    assert_eq!(file_window["history"].as_array().map(Vec::len), Some(1), "{file_window}");
    assert_eq!(report(&c, "shop-sla", t0)["downtime_seconds"], 0.0);

    // Cancelled: kept, says who, and the figures are back.
    let cancelled = c.send(Method::DELETE, "/api/v1/maintenance/chg-late", Some(OPS), None);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["cancelled_by"], "ops");
    let after = report(&c, "shop-sla", t0);
    assert_eq!((after["downtime_seconds"].as_f64(), after["verdict"].as_str()), (Some(600.0), Some("breached")));
    assert_eq!(after["outages"], before["outages"]);
    assert_eq!(after["maintenance_windows"], json!([]));
    let listing = get(&c, "/api/v1/maintenance?include_cancelled=true").json();
    assert_eq!(listing["windows"].as_array().map(Vec::len), Some(2), "{listing}");
    assert_eq!(get(&c, "/api/v1/maintenance").json()["windows"].as_array().map(Vec::len), Some(1));

    // The file drops its window: cancelled by config, with the note, and kept.
    std::fs::write(&config_path, config(None)).unwrap();
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");
    let dropped = get(&c, "/api/v1/maintenance/planned").json();
    assert_eq!((dropped["cancelled"].as_bool(), dropped["cancelled_by"].as_str()), (Some(true), Some("config")));
    assert_eq!(dropped["history"][1]["note"], "removed from the configuration file", "{dropped}");
    let refused = c.send(Method::PATCH, "/api/v1/maintenance/planned", Some(OPS), Some(&json!({"end": planned.0})));
    assert_eq!(refused.status, 409, "{}", refused.text());
}

/// Runs `probity-collector maintenance ARGS…`: exit code, stdout, stderr.
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(probity_tests::bin("probity-collector"))
        .arg("maintenance")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_pipeline_declares_ends_and_cancels_a_window_with_the_cli() {
    let c = Collector::start(&config(None));
    let dir = tempfile::tempdir().unwrap();
    let ops = probity_tests::write_file(dir.path(), "ops.token", format!("{OPS}\n").as_bytes());
    let reader = probity_tests::write_file(dir.path(), "reader.token", READER.as_bytes());
    let url = c.url("");
    let (ops, reader) = (ops.to_str().unwrap(), reader.to_str().unwrap());
    let target = |token: &str| vec!["--url".to_string(), url.clone(), "--token-file".to_string(), token.to_string()];
    let run = |args: &[&str], token: &str| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(target(token));
        cli(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let add = [
        "add",
        "--service",
        "shop",
        "--start",
        "+1h",
        "--end",
        "+3h",
        "--reason",
        "deploy 4.2",
        "--ticket",
        "CHG-9",
        "--id",
        "deploy-42",
    ];

    // A reader's token is refused by the collector (exit 1, its message); a bad instant is
    // refused before anything is sent (exit 2).
    let (code, _, err) = run(&add, reader);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("answered 403") && err.contains("needs operator"), "{err}");
    let (code, _, err) = run(&["add", "--service", "shop", "--start", "soon", "--end", "+1h", "--reason", "x"], ops);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("\"soon\" is not an RFC 3339 instant"), "{err}");

    let (code, out, err) = run(&add, ops);
    assert_eq!(code, 0, "{err}");
    let declared: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((declared["id"].as_str(), declared["declared_by"].as_str()), (Some("deploy-42"), Some("ops")));
    assert_eq!((declared["ticket"].as_str(), declared["retroactive"].as_bool()), (Some("CHG-9"), Some(false)));
    let (code, _, err) = run(&add, ops);
    assert_eq!(code, 1);
    assert!(err.contains("answered 409") && err.contains("already exists"), "{err}");

    let (code, out, err) = run(&["list", "--service", "shop", "--from", "now"], reader);
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["windows"][0]["id"], "deploy-42", "{listed}");

    let (code, out, err) = run(&["end", "deploy-42", "--end", "+2h"], ops);
    assert_eq!(code, 0, "{err}");
    let ended: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(ended["history"][1]["action"], "end_changed", "{ended}");
    let (code, out, err) = run(&["cancel", "deploy-42"], ops);
    assert_eq!(code, 0, "{err}");
    let cancelled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((cancelled["cancelled"].as_bool(), cancelled["cancelled_by"].as_str()), (Some(true), Some("ops")));
    assert_eq!(get(&c, "/api/v1/maintenance/deploy-42").json(), cancelled);
}

/// A window declared over a closed (sealed) week marks it: the sealed revision stays, and
/// the report shows `restatement_pending` with reason `maintenance` and the figures the
/// window would give; cancelling it again leaves nothing to restate.
#[test]
fn a_window_over_a_closed_period_makes_a_restatement_pending_and_never_rewrites_the_sealed_revision() {
    use jiff::ToSpan;
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let day = today.checked_sub(7.days()).unwrap();
    let week = day.iso_week_date();
    let monday = day.checked_sub(i64::from(week.weekday().to_monday_zero_offset()).days()).unwrap();
    let monday = monday.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_millisecond();
    let label = format!("{:04}-W{:02}", week.year(), week.week());
    // A long settle first, so the week is sealed only once its results are in.
    let weekly = |settle: &str| {
        config(None).replace(
            "availability = 99.0\n\n[[agreements]]",
            &format!("availability = 99.0\nperiod = \"week\"\nsettle = \"{settle}\"\n\n[[agreements]]"),
        )
    };
    let mut c = Collector::start(&weekly("400d"));
    // Monday 10:00-11:00 every 10 s, down 10:10-10:20.
    let t0 = monday + 10 * 3_600_000;
    let results: Vec<Value> = (0..360_i64)
        .map(|i| {
            let down = (60..120).contains(&i);
            let mut r = json!({"seq": i as u64 + 1, "probe": "shop-http", "at": t0 + i * 10_000, "duration_us": 20_000, "ok": !down});
            if down {
                r["error"] = json!({"kind": "timeout", "message": "no answer"});
            } else {
                r["status"] = json!(200);
            }
            r
        })
        .collect();
    assert_eq!(c.post_json("/api/v1/ingest", AGENT, &json!({"agent": "a1", "results": results})).status, 200);
    std::fs::write(c.dir().join("collector.toml"), weekly("1s")).unwrap();
    c.signal("HUP");
    c.wait_for_log("configuration reloaded");
    let read = |c: &Collector| {
        let r = get(c, &format!("/api/v1/agreements/shop-sla/report?period={label}"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let sealed = read(&c);
    assert_eq!(
        (sealed["revision"]["number"].as_u64(), sealed["downtime_seconds"].as_f64()),
        (Some(1), Some(600.0)),
        "{sealed}"
    );

    let window = json!({"id": "after-the-fact", "services": ["shop"], "start": rfc3339(t0), "end": rfc3339(t0 + 3_600_000), "reason": "forgot to declare it"});
    let declared = c.send(Method::POST, "/api/v1/maintenance", Some(OPS), Some(&window));
    assert_eq!(declared.status, 201, "{}", declared.text());
    let pending = probity_tests::wait_for("restatement_pending", std::time::Duration::from_secs(60), || {
        Some(read(&c)["restatement_pending"].clone()).filter(|p| !p.is_null())
    });
    assert_eq!(pending["reasons"], json!(["maintenance"]), "{pending}");
    assert_eq!(pending["figures"]["downtime_seconds"], 0.0, "{pending}");
    assert_eq!(pending["figures"]["maintenance_seconds"], 3600.0, "{pending}");
    let now = read(&c);
    assert_eq!(
        (now["revision"]["number"].as_u64(), now["downtime_seconds"].as_f64()),
        (Some(1), Some(600.0)),
        "sealed figures stay"
    );
    assert_eq!(now["maintenance_windows"], sealed["maintenance_windows"], "the sealed revision is as it was sealed");
}
