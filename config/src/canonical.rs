//! The catalogue as canonical JSON (SPEC §10 catalogue versions): written in the config
//! file's own vocabulary (the same keys, durations as `"30s"`, instants as RFC 3339), keys
//! sorted, no whitespace, so equal catalogues have equal bytes and one sha256. Agents' token
//! hashes are left out: they are credentials, not terms.
//!
//! A stored version is turned back into a `Catalogue` by writing it as a config file and
//! validating that, so a version means exactly what the same file would mean; nothing here
//! re-implements the rules.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::calendar::ALWAYS;
use crate::catalogue::{Catalogue, Probe};
use crate::diag::ConfigErrors;
use crate::units::format_duration;

/// The canonical JSON value of a catalogue.
pub fn to_value(c: &Catalogue) -> Value {
    let agents: Vec<Value> = c
        .agents
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("id".into(), json!(a.id.as_str()));
            if !a.labels.is_empty() {
                m.insert("labels".into(), json!(a.labels));
            }
            if a.embedded {
                m.insert("embedded".into(), json!(true));
            }
            Value::Object(m)
        })
        .collect();
    let calendars: Map<String, Value> = c
        .calendars
        .values()
        .filter(|cal| cal.id != ALWAYS)
        .map(|cal| {
            let holidays: Vec<String> = cal.holidays.iter().map(|d| d.to_string()).collect();
            (cal.id.clone(), json!({"timezone": cal.timezone_name, "hours": cal.hours_text, "holidays": holidays}))
        })
        .collect();
    let maintenance: Vec<Value> = c
        .maintenance
        .iter()
        .map(|m| {
            let services: Vec<&str> = m.services.iter().map(|s| s.as_str()).collect();
            json!({
                "id": m.id.as_str(),
                "services": services,
                "start": m.start.to_string(),
                "end": m.end.to_string(),
                "reason": m.reason,
            })
        })
        .collect();
    let services: Vec<Value> = c
        .services
        .iter()
        .map(|s| {
            let depends_on: Vec<&str> = s.depends_on.iter().map(|d| d.as_str()).collect();
            json!({
                "id": s.id.as_str(),
                "name": s.name,
                "owner": s.owner,
                "depends_on": depends_on,
                "min_outage": format_duration(s.min_outage),
                "probes": s.probes.iter().map(probe_value).collect::<Vec<_>>(),
            })
        })
        .collect();
    let agreements: Vec<Value> = c
        .agreements
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("id".into(), json!(a.id.as_str()));
            m.insert("kind".into(), json!(a.kind.as_str()));
            m.insert("service".into(), json!(a.service.as_str()));
            m.insert("counterparty".into(), json!(a.counterparty));
            m.insert("calendar".into(), json!(a.calendar));
            m.insert("period".into(), json!(a.period.as_str()));
            m.insert("availability".into(), json!(a.availability));
            if let Some(l) = &a.latency {
                m.insert("latency".into(), json!({"percentile": l.percentile, "max": format_duration(l.max)}));
            }
            m.insert("unknown".into(), json!(a.unknown.as_str()));
            m.insert("min_coverage".into(), json!(a.min_coverage));
            m.insert("settle".into(), json!(format_duration(a.settle)));
            if let Some(notice) = a.maintenance_notice {
                m.insert("maintenance_notice".into(), json!(format_duration(notice)));
            }
            Value::Object(m)
        })
        .collect();
    json!({
        "agents": agents,
        "calendars": calendars,
        "maintenance": maintenance,
        "services": services,
        "agreements": agreements,
    })
}

fn probe_value(p: &Probe) -> Value {
    // The spec serialises with the config's key names and its `kind` tag.
    let mut v = serde_json::to_value(&p.spec).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        let agents: Vec<&str> = p.agents.iter().map(|a| a.as_str()).collect();
        m.insert("id".into(), json!(p.id.as_str()));
        m.insert("interval".into(), json!(format_duration(p.interval)));
        m.insert("timeout".into(), json!(format_duration(p.timeout)));
        m.insert("agents".into(), json!(agents));
        m.insert("quorum".into(), json!(p.quorum));
    }
    v
}

/// The canonical bytes of a value: keys sorted (serde_json's map is ordered), no whitespace.
pub fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value always serialises")
}

/// sha256 of the canonical bytes, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a stored catalogue could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CanonicalError {
    #[error("catalogue json is not in the catalogue's shape: {0}")]
    Shape(String),
    #[error("catalogue json does not validate: {0}")]
    Invalid(ConfigErrors),
}

/// Reads a canonical catalogue back into a validated `Catalogue`.
pub fn from_value(v: &Value) -> Result<Catalogue, CanonicalError> {
    let shape = |what: &str| CanonicalError::Shape(what.to_string());
    let obj = v.as_object().ok_or_else(|| shape("not an object"))?;
    let mut doc = Map::new();
    let mut agents = Vec::new();
    for a in obj.get("agents").and_then(Value::as_array).ok_or_else(|| shape("agents is not a list"))? {
        let id = a.get("id").and_then(Value::as_str).ok_or_else(|| shape("an agent has no id"))?;
        if a.get("embedded").and_then(Value::as_bool) == Some(true) {
            doc.insert("embedded_agent".into(), json!({"enabled": true, "id": id}));
            continue;
        }
        // Reports need no credentials; each agent gets its own stand-in hash so the
        // duplicate-token rule holds.
        let mut m = Map::new();
        m.insert("id".into(), json!(id));
        m.insert("token_sha256".into(), json!(sha256_hex(format!("probity catalogue version agent {id}").as_bytes())));
        if let Some(labels) = a.get("labels") {
            m.insert("labels".into(), labels.clone());
        }
        agents.push(Value::Object(m));
    }
    doc.insert("agents".into(), Value::Array(agents));
    for key in ["calendars", "maintenance", "services", "agreements"] {
        if let Some(x) = obj.get(key) {
            doc.insert(key.into(), x.clone());
        }
    }
    let table: toml::Table =
        toml::Table::try_from(Value::Object(doc)).map_err(|e| CanonicalError::Shape(e.to_string()))?;
    let text = toml::to_string(&table).map_err(|e| CanonicalError::Shape(e.to_string()))?;
    crate::parse_collector_config("catalogue version", &text).map(|c| c.catalogue).map_err(CanonicalError::Invalid)
}

/// What changed between two catalogues, by kind and id (SPEC §10 `changes`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Changes {
    pub added: Vec<Change>,
    pub removed: Vec<Change>,
    pub changed: Vec<Change>,
}

/// One catalogue entry: `kind` is `agent`, `calendar`, `maintenance`, `service`, `probe` or
/// `agreement` (ids are unique only within their kind).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct Change {
    pub kind: String,
    pub id: String,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The entries added, removed and changed from `old` to `new` (canonical values). A
/// service whose probes changed is listed as changed, and so is each probe.
pub fn changes(old: Option<&Value>, new: &Value) -> Changes {
    let old_entries = old.map(entries).unwrap_or_default();
    let new_entries = entries(new);
    let mut out = Changes::default();
    for (key, value) in &new_entries {
        match old_entries.get(key) {
            None => out.added.push(key.clone()),
            Some(before) if before != value => out.changed.push(key.clone()),
            Some(_) => {}
        }
    }
    out.removed = old_entries.keys().filter(|k| !new_entries.contains_key(*k)).cloned().collect();
    out
}

fn entries(v: &Value) -> BTreeMap<Change, Value> {
    let mut out = BTreeMap::new();
    let mut add = |kind: &str, id: &str, value: &Value| {
        out.insert(Change { kind: kind.into(), id: id.into() }, value.clone());
    };
    let id_of = |x: &Value| x.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    for (key, kind) in [("agents", "agent"), ("maintenance", "maintenance"), ("agreements", "agreement")] {
        for x in v.get(key).and_then(Value::as_array).into_iter().flatten() {
            add(kind, &id_of(x), x);
        }
    }
    for (name, x) in v.get("calendars").and_then(Value::as_object).into_iter().flatten() {
        add("calendar", name, x);
    }
    for s in v.get("services").and_then(Value::as_array).into_iter().flatten() {
        add("service", &id_of(s), s);
        for p in s.get("probes").and_then(Value::as_array).into_iter().flatten() {
            add("probe", &id_of(p), p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[embedded_agent]
enabled = true
id = "local"

[[agents]]
id = "lon-1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
labels = { site = "london" }

[calendars.uk-business]
timezone = "Europe/London"
hours = ["mon-fri 08:00-18:00", "sat 09:00-13:00"]
holidays = ["2026-12-25"]

[[maintenance]]
id = "chg-1"
services = ["web"]
start = "2026-11-10T22:00:00Z"
end = "2026-11-11T02:00:00Z"
reason = "upgrade"

[[services]]
id = "web"
name = "Web"
min_outage = "1m30s"
  [[services.probes]]
  id = "web-http"
  kind = "http"
  url = "https://127.0.0.1:8080/health"
  interval = "30s"
  timeout = "10s"
  expect_status = ["200-299", "304"]
  headers = { "x-probe" = "1" }
  [[services.probes]]
  id = "web-dns"
  kind = "dns"
  name = "example.com"
  record = "MX"
  server = "127.0.0.1:53"
  expect = ["mx.example.com"]
  agents = ["lon-1"]
  [[services.probes]]
  id = "web-tls"
  kind = "tls"
  target = "127.0.0.1:443"
  min_days_valid = 7

[[agreements]]
id = "web-sla"
kind = "sla"
service = "web"
counterparty = "Retail"
calendar = "uk-business"
period = "quarter"
availability = 99.95
latency = { percentile = 95, max = "300ms" }
unknown = "down"
min_coverage = 75.5
settle = "2h"
maintenance_notice = "72h"
"#;

    fn catalogue(text: &str) -> Catalogue {
        crate::parse_collector_config("t.toml", text).unwrap().catalogue
    }

    #[test]
    fn a_catalogue_reads_back_to_the_same_canonical_json() {
        let c = catalogue(CONFIG);
        let v = to_value(&c);
        let back = from_value(&v).unwrap();
        assert_eq!(to_bytes(&to_value(&back)), to_bytes(&v));
        let a = back.agreement("web-sla").unwrap();
        assert_eq!((a.min_coverage, a.settle.as_secs(), a.availability), (75.5, 7200, 99.95));
        assert_eq!(a.maintenance_notice, Some(std::time::Duration::from_secs(72 * 3600)));
        assert!(back.agent("local").unwrap().embedded);
    }

    #[test]
    fn canonical_json_has_no_token_hashes_and_sorted_keys() {
        let bytes = to_bytes(&to_value(&catalogue(CONFIG)));
        let text = String::from_utf8(bytes).unwrap();
        assert!(!text.contains("d55c1d98"), "{text}");
        assert!(!text.contains("token"), "{text}");
        assert!(text.starts_with(r#"{"agents":[{"id":"lon-1","labels":{"site":"london"}}"#), "{text}");
        // Defaults are written out, so a version does not depend on today's defaults.
        assert!(text.contains(r#""method":"GET""#) && text.contains(r#""min_coverage":75.5"#), "{text}");
    }

    #[test]
    fn changes_name_what_was_added_removed_and_changed() {
        let before = to_value(&catalogue(CONFIG));
        let edited = CONFIG
            .replace("availability = 99.95", "availability = 99.9")
            .replace("[[maintenance]]\nid = \"chg-1\"", "[[maintenance]]\nid = \"chg-2\"");
        let after = to_value(&catalogue(&edited));
        let c = changes(Some(&before), &after);
        let change = |kind: &str, id: &str| Change { kind: kind.into(), id: id.into() };
        assert_eq!(c.added, vec![change("maintenance", "chg-2")]);
        assert_eq!(c.removed, vec![change("maintenance", "chg-1")]);
        assert_eq!(c.changed, vec![change("agreement", "web-sla")]);
        assert!(changes(Some(&after), &after).is_empty());
        // The first version adds everything.
        assert_eq!(changes(None, &before).added.len(), 2 + 1 + 1 + 1 + 3 + 1);
    }
}
