//! `/metrics` of a real collector with real agents (SPEC §14): the families a Prometheus
//! alert needs, with their labels, accepted by `promtool check metrics`; a killed agent's
//! probe series vanish once its view is stale, never frozen; the shipped Grafana dashboard
//! and alert rules name only metrics the collector exposes.

use std::collections::BTreeSet;
use std::time::Duration;

use probity_tests::{Agent, Collector, HttpTarget, promtool, wait_for};

const WAIT: Duration = Duration::from_secs(90);

fn hex(bytes: [u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A catalogue of one HTTP probe run every second by `agents` (id, token), on service
/// `shop` under the SLA `shop-sla`.
fn config(target: &HttpTarget, agents: &[(&str, &str)]) -> String {
    let mut s = String::from("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n");
    for (id, token) in agents {
        s += &format!("[[agents]]\nid = \"{id}\"\ntoken_sha256 = \"{}\"\n\n", hex(probity_config::token_sha256(token)));
    }
    s += &format!(
        "[[services]]\nid = \"shop\"\nname = \"Shop\"\nowner = \"ops\"\n  [[services.probes]]\n  id = \"shop-http\"\n  kind = \"http\"\n  url = \"http://{}/health\"\n  interval = \"1s\"\n  timeout = \"1s\"\n\n",
        target.addr
    );
    s += "[[agreements]]\nid = \"shop-sla\"\nkind = \"sla\"\nservice = \"shop\"\ncounterparty = \"Retail\"\nperiod = \"month\"\navailability = 99.0\n";
    s
}

/// The value of the series `series` (name and labels exactly as exposed), if shown.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn the_section_14_families_carry_their_labels_and_pass_promtool_check_metrics() {
    let target = HttpTarget::start(200);
    let token = "probity_e2e-metrics-edge-1";
    let collector = Collector::start(&config(&target, &[("edge-1", token)]));
    let _agent = Agent::start("edge-1", token, &collector.url(""));
    let probe = "probe=\"shop-http\",agent=\"edge-1\",service=\"shop\"";
    let agreement = "agreement=\"shop-sla\",kind=\"sla\",service=\"shop\"";
    // The agreement figures come from the snapshot refreshed every 15 s: wait for one
    // computed after results arrived (availability is absent while it is null).
    let text = wait_for("the running period's availability", WAIT, || {
        let text = collector.get("/metrics").text();
        let known = value(&text, &format!("probity_agreement_availability_ratio{{{agreement}}}")).is_some()
            && value(&text, &format!("probity_probe_success{{{probe}}}")).is_some()
            && value(&text, "probity_agent_clock_offset_seconds{agent=\"edge-1\"}").is_some();
        known.then_some(text)
    });
    assert_eq!(value(&text, &format!("probity_probe_success{{{probe}}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("probity_probe_http_status_code{{{probe}}}")), Some(200.0), "{text}");
    for phase in ["connect", "first_byte", "total"] {
        let d = value(&text, &format!("probity_probe_duration_seconds{{{probe},phase=\"{phase}\"}}"));
        assert!(d.is_some_and(|d| d > 0.0 && d < 1.0), "phase {phase}: {d:?}\n{text}");
    }
    assert_eq!(value(&text, "probity_service_state{service=\"shop\",state=\"up\"}"), Some(1.0), "{text}");
    assert_eq!(value(&text, "probity_service_state{service=\"shop\",state=\"down\"}"), Some(0.0), "{text}");
    assert_eq!(value(&text, "probity_service_state{service=\"shop\",state=\"unknown\"}"), Some(0.0), "{text}");
    assert_eq!(value(&text, &format!("probity_agreement_availability_ratio{{{agreement}}}")), Some(1.0), "{text}");
    assert_eq!(value(&text, &format!("probity_agreement_target_ratio{{{agreement}}}")), Some(0.99), "{text}");
    assert_eq!(
        value(&text, &format!("probity_agreement_error_budget_remaining_ratio{{{agreement}}}")),
        Some(1.0),
        "nothing down, nothing spent: {text}"
    );
    // The month so far is mostly before the collector started: monitored, but barely.
    let coverage = value(&text, &format!("probity_agreement_coverage_ratio{{{agreement}}}")).unwrap();
    assert!(coverage > 0.0 && coverage < 1.0, "{coverage}\n{text}");
    for window in ["5m", "30m", "1h", "6h", "1d", "3d"] {
        let rate = value(&text, &format!("probity_agreement_burn_rate{{{agreement},window=\"{window}\"}}"));
        assert_eq!(rate, Some(0.0), "window {window}\n{text}");
    }
    let verdicts: Vec<f64> = ["met", "breached", "insufficient_data"]
        .iter()
        .map(|v| value(&text, &format!("probity_agreement_verdict{{{agreement},verdict=\"{v}\"}}")).unwrap())
        .collect();
    assert_eq!(verdicts, [0.0, 0.0, 1.0], "coverage below min_coverage: insufficient data\n{text}");
    let last_seen = value(&text, "probity_agent_last_seen_timestamp_seconds{agent=\"edge-1\"}").unwrap();
    assert!(last_seen > 1.7e9, "{text}");
    assert_eq!(value(&text, "probity_agent_lost_results_total{agent=\"edge-1\"}"), Some(0.0), "{text}");
    assert_eq!(value(&text, "probity_agent_resets_total{agent=\"edge-1\"}"), Some(0.0), "{text}");
    assert_eq!(value(&text, "probity_restatements_pending"), Some(0.0), "{text}");
    promtool::check_metrics(&text);
    shipped_queries_name_only_exposed_metrics(&text);
}

/// Every query of `dist/grafana/probity.json` (panel targets, template variables) and every
/// metric `dist/prometheus/probity-alerts.yml` names is a metric of `exposition`, so a
/// renamed metric cannot leave a dashboard or an alert silently empty.
fn shipped_queries_name_only_exposed_metrics(exposition: &str) {
    let exposed = exposed_names(exposition);
    let root = probity_tests::workspace_root();
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dist/grafana/probity.json")).unwrap())
            .expect("dist/grafana/probity.json is valid JSON");
    assert!(dashboard["panels"].as_array().is_some_and(|p| !p.is_empty()), "a dashboard without panels");
    let mut queries = Vec::new();
    collect_queries(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    for q in &queries {
        let named = metric_names(q);
        assert!(!named.is_empty(), "a dashboard query that reads no probity metric: {q}");
        for name in named {
            assert!(exposed.contains(&name), "the dashboard queries {name}, which /metrics does not expose: {q}");
        }
    }
    let rules = std::fs::read_to_string(root.join("dist/prometheus/probity-alerts.yml")).unwrap();
    let named = metric_names(&rules);
    assert!(named.len() >= 7, "{named:?}");
    for name in named {
        assert!(exposed.contains(&name), "an alert rule names {name}, which /metrics does not expose");
    }
}

/// Metric names from `# TYPE` lines, with a histogram's `_bucket`, `_sum` and `_count`.
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        let mut words = line.strip_prefix("# TYPE ").unwrap_or_default().split(' ');
        let (Some(name), Some(kind)) = (words.next(), words.next()) else { continue };
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name.to_string());
    }
    names
}

/// The strings under `expr`, and template variables' `definition`s, anywhere in `v`.
fn collect_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", serde_json::Value::String(q)) => out.push(q.clone()),
                    _ => collect_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_queries(i, out)),
        _ => {}
    }
}

/// Every `probity_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("probity_") {
        let starts_a_word = !rest[..i].ends_with(is_ident);
        let end = rest[i..].find(|c: char| !is_ident(c)).map_or(rest.len(), |e| i + e);
        if starts_a_word {
            names.insert(rest[i..end].to_string());
        }
        rest = &rest[end..];
    }
    names
}

#[test]
fn a_killed_agents_probe_series_vanish_after_two_intervals() {
    let target = HttpTarget::start(200);
    let (stays, killed) = ("probity_e2e-metrics-stays", "probity_e2e-metrics-killed");
    let collector = Collector::start(&config(&target, &[("stays", stays), ("killed", killed)]));
    let _stays = Agent::start("stays", stays, &collector.url(""));
    let mut victim = Agent::start("killed", killed, &collector.url(""));
    let series =
        |agent: &str| format!("probity_probe_success{{probe=\"shop-http\",agent=\"{agent}\",service=\"shop\"}}");
    wait_for("both agents' views", WAIT, || {
        let text = collector.get("/metrics").text();
        (value(&text, &series("stays")) == Some(1.0) && value(&text, &series("killed")) == Some(1.0)).then_some(())
    });
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    // No result from it after SIGKILL: its view goes unknown 2 s (2 × interval) after its
    // last result, and every series of that view with it.
    let text = wait_for("the killed agent's series to vanish", WAIT, || {
        let text = collector.get("/metrics").text();
        value(&text, &series("killed")).is_none().then_some(text)
    });
    let killed_labels = "probe=\"shop-http\",agent=\"killed\",service=\"shop\"";
    assert!(!text.contains(&format!("probity_probe_duration_seconds{{{killed_labels}")), "{text}");
    assert!(!text.contains(&format!("probity_probe_http_status_code{{{killed_labels}")), "{text}");
    assert!(
        value(&text, &format!("probity_probe_last_result_timestamp_seconds{{{killed_labels}}}")).is_some(),
        "when it last reported stays visible: {text}"
    );
    assert_eq!(value(&text, &series("stays")), Some(1.0), "the other agent's view is untouched: {text}");
    promtool::check_metrics(&text);
}
