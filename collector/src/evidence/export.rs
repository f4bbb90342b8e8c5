//! The evidence bundle of an agreement for a resolved period: what goes in, in which
//! order. Each file is written by its own module straight into the zip (`daily_csv`,
//! `outages_csv`, `maintenance_csv`, `results_csv`, `completeness_csv`, `methodology_md`, `report_html`), so
//! no file is ever held whole in memory; `bundle` hashes, lists and signs them. Every
//! figure comes from `report` / `availability`; this module only lays them out.
//!
//! A closed period (SPEC §10) also carries its history, handed in by the history layer as
//! JSON: `summary.json` is then the latest revision as the report API shows it,
//! `revisions.json` every revision with its changes, `catalogue.json` the catalogue version
//! the figures used, and the manifest's `history` names the revision and that version's
//! sha256, so `evidence verify` can tie the three together.

use std::collections::BTreeMap;
use std::io::{self, Seek, Write};

use ed25519_dalek::SigningKey;
use probity_config::Agreement;
use probity_config::time::rfc3339;
use probity_config::wire::ErrorKind;
use serde_json::json;

use super::bundle::{BundleError, BundleWriter};
use super::results_csv::ResultsError;
use super::{
    agents_csv, completeness_csv, daily_csv, maintenance_csv, methodology_md, outages_csv, report_html, results_csv,
};
use crate::agents::AgentRow;
use crate::availability::{self, Completeness, ResultTally};
use crate::report::{self, ReportError, ReportSource, ResolvedAgreement, SourceError};
use crate::views::{PeriodView, View};

/// One raw result as `results.csv` lists it.
#[derive(Clone, Copy, Debug)]
pub struct RawResult<'a> {
    pub at: i64,
    pub agent: &'a str,
    pub probe: &'a str,
    pub ok: bool,
    pub duration_us: u64,
    pub error_kind: Option<ErrorKind>,
    pub status: Option<u16>,
}

/// What evidence needs from storage beyond what reports need.
pub trait EvidenceSource: ReportSource {
    /// Calls `f` for every stored raw result of `probe` with `at` in `[from_ms, to_ms)`,
    /// streaming (never collecting a period's results in memory).
    fn each_result(
        &self,
        probe: &str,
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(RawResult<'_>) -> io::Result<()>,
    ) -> Result<(), SourceError>;
    /// The agent's instances in the order first seen, each with the results it lost (gaps
    /// in its `seq`, over its whole history: a gap carries no time); empty for an agent
    /// never heard from.
    fn instances(&self, agent: &str) -> Result<Vec<InstanceLoss>, SourceError>;
}

/// One agent instance as `completeness.csv` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceLoss {
    /// `None`: the legacy instance (requests without `instance`).
    pub instance: Option<String>,
    pub lost: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{0}")]
    Report(#[from] ReportError),
    #[error("{0}")]
    Bundle(#[from] BundleError),
    #[error("reading storage: {0}")]
    Source(SourceError),
}

/// The history of a closed period, as the history layer hands it to the bundle.
#[derive(Clone, Copy, Debug)]
pub struct PeriodHistory<'a> {
    /// The report a reader is shown: the latest revision, with `revision` and
    /// `restatement_pending`.
    pub summary: &'a serde_json::Value,
    /// `revisions.json`: every revision, oldest first, with its changes.
    pub revisions: &'a serde_json::Value,
    /// `catalogue.json`: the catalogue version record the figures used (as
    /// `GET /api/v1/catalogue/versions/{n}` returns it).
    pub catalogue: &'a serde_json::Value,
    pub revision: u32,
    pub catalogue_version: u32,
    /// The sha256 of that version's canonical catalogue JSON.
    pub catalogue_sha256: &'a str,
}

/// The manifest's name for a closed period's history files.
pub const REVISIONS: &str = "revisions.json";
pub const CATALOGUE: &str = "catalogue.json";

/// Writes the bundle of `inputs`' agreement over its period into `out`; `agents` are the
/// collector's agent rows (`agents.csv` keeps those that measure the service). `history`:
/// the closed period's revisions and catalogue version (`inputs` then resolved with that
/// version's catalogue), `None` for a period that is not closed.
pub fn export<W: Write + Seek>(
    out: W,
    source: &dyn EvidenceSource,
    inputs: &ResolvedAgreement<'_>,
    history: Option<PeriodHistory<'_>>,
    agents: &[AgentRow],
    key: &SigningKey,
    now: i64,
) -> Result<W, EvidenceError> {
    let ResolvedAgreement { agreement, service, ref period, .. } = *inputs;
    let (report, timeline) = report::agreement_report_with_timeline(source, inputs)?;
    let spec = inputs.figures_spec(&report.maintenance_counted);
    // The daily rows are computed as they are written, once for daily.csv and once for
    // report.html's bars, so a long period's days are never all in memory.
    let daily = || availability::daily_rows(&timeline, &spec, period.from_ms, period.to_ms);

    let mut w = BundleWriter::new(out);
    w.add_file("summary.json", |o| {
        match history {
            Some(h) => serde_json::to_writer_pretty(&mut *o, h.summary),
            None => serde_json::to_writer_pretty(&mut *o, &report.view()),
        }
        .map_err(io::Error::other)?;
        o.write_all(b"\n")
    })?;
    if let Some(h) = history {
        for (name, value) in [(REVISIONS, h.revisions), (CATALOGUE, h.catalogue)] {
            w.add_file(name, |o| {
                serde_json::to_writer_pretty(&mut *o, value).map_err(io::Error::other)?;
                o.write_all(b"\n")
            })?;
        }
    }
    w.add_file("daily.csv", |o| daily_csv::write(o, daily()))?;
    w.add_file("outages.csv", |o| outages_csv::write(o, &report.figures.outages))?;
    w.add_file("maintenance.csv", |o| maintenance_csv::write(o, &report.maintenance_windows))?;

    // One pass over the raw results feeds both results.csv and completeness.csv.
    let window = (period.from_ms, period.to_ms);
    let mut tallies: BTreeMap<(String, String), ResultTally> = BTreeMap::new();
    for p in &service.probes {
        for a in &p.agents {
            tallies.insert((a.to_string(), p.id.to_string()), ResultTally::new(window));
        }
    }
    let mut source_error = None;
    w.add_file("results.csv", |o| {
        let probes = service.probes.iter().map(|p| p.id.as_str());
        let mut seen = |r: &RawResult<'_>| {
            let key = (r.agent.to_string(), r.probe.to_string());
            tallies.entry(key).or_insert_with(|| ResultTally::new(window)).record(r.at);
        };
        match results_csv::write(o, source, probes, period, &mut seen) {
            Ok(()) => Ok(()),
            Err(ResultsError::Io(e)) => Err(e),
            Err(ResultsError::Source(e)) => {
                source_error = Some(e);
                Err(io::Error::other("storage read failed"))
            }
        }
    })
    .map_err(|e| match source_error.take() {
        Some(s) => EvidenceError::Source(s),
        None => EvidenceError::from(e),
    })?;
    let interval_ms = |probe: &str| {
        service.probes.iter().find(|p| p.id.as_str() == probe).map_or(0, |p| p.interval.as_millis() as i64)
    };
    let completeness: BTreeMap<(String, String), Completeness> =
        tallies.iter().map(|(key, tally)| (key.clone(), tally.completeness(interval_ms(&key.1)))).collect();

    let mut instances = BTreeMap::new();
    for agent in service.probes.iter().flat_map(|p| p.agents.iter()) {
        if !instances.contains_key(agent.as_str()) {
            let seen = source.instances(agent.as_str()).map_err(EvidenceError::Source)?;
            instances.insert(agent.to_string(), seen);
        }
    }
    w.add_file("completeness.csv", |o| completeness_csv::write(o, &completeness, &instances))?;
    let measuring = |a: &&AgentRow| service.probes.iter().any(|p| p.agents.iter().any(|id| id.as_str() == a.id));
    w.add_file("agents.csv", |o| agents_csv::write(o, agents.iter().filter(measuring)))?;
    w.add_file("methodology.md", |o| methodology_md::write(o, inputs, &report))?;
    w.add_file("report.html", |o| {
        let days = availability::daily_row_count(&spec, period.from_ms, period.to_ms);
        report_html::write(o, inputs, &report, days, daily(), &completeness)
    })?;

    let history_header = history.map(|h| {
        json!({
            "state": "closed",
            "revision": h.revision,
            "catalogue_version": h.catalogue_version,
            "catalogue_sha256": h.catalogue_sha256,
        })
    });
    let header = json!({
        "agreement": terms(agreement),
        "period": PeriodView::from(&report.period),
        "history": history_header,
        "generated_at": rfc3339(now),
        "collector_version": env!("CARGO_PKG_VERSION"),
        "tzdb_version": probity_config::tzdb_version(),
    });
    let serde_json::Value::Object(header) = header else { unreachable!("json! object") };
    Ok(w.finish(header, key)?)
}

/// The agreement's terms as the manifest records them.
fn terms(a: &Agreement) -> serde_json::Value {
    json!({
        "id": a.id,
        "kind": a.kind,
        "service": a.service,
        "counterparty": a.counterparty,
        "calendar": a.calendar,
        "period": a.period,
        "availability_percent": a.availability,
        "latency": a.latency.as_ref().map(|l| json!({"percentile": l.percentile, "max_ms": l.max.as_micros() as f64 / 1000.0})),
        "unknown": a.unknown,
    })
}

impl EvidenceSource for crate::report::memory::MemorySource {
    fn each_result(
        &self,
        probe: &str,
        from_ms: i64,
        to_ms: i64,
        f: &mut dyn FnMut(RawResult<'_>) -> io::Result<()>,
    ) -> Result<(), SourceError> {
        for (agent, at, down, us) in self.results_of(probe) {
            if (from_ms..to_ms).contains(&at) {
                let r = RawResult {
                    at,
                    agent: &agent,
                    probe,
                    ok: down.is_none(),
                    duration_us: us,
                    error_kind: down,
                    status: None,
                };
                f(r)?;
            }
        }
        Ok(())
    }

    /// Every agent is one legacy instance that lost nothing.
    fn instances(&self, _agent: &str) -> Result<Vec<InstanceLoss>, SourceError> {
        Ok(vec![InstanceLoss { instance: None, lost: 0 }])
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};

    use probity_config::{Catalogue, parse_collector_config};

    use super::*;
    use crate::evidence::verify::verify_bundle;
    use crate::period::PeriodQuery;
    use crate::report::memory::MemorySource;

    const CONFIG: &str = r#"
[embedded_agent]
enabled = true
[calendars.london-all-day]
timezone = "Europe/London"
hours = ["mon-sun 00:00-24:00"]
[calendars.london-office]
timezone = "Europe/London"
hours = ["mon-fri 09:00-17:00"]
holidays = ["2026-10-30"]
[[maintenance]]
id = "chg-7"
services = ["psp"]
start = "2026-10-14T10:00:00Z"
end = "2026-10-14T11:00:00Z"
reason = "card network upgrade"
[[services]]
id = "psp"
name = "Payment processor, supplier"
  [[services.probes]]
  id = "psp-api"
  kind = "tcp"
  target = "127.0.0.1:443"
  interval = "1m"
  timeout = "10s"
[[agreements]]
id = "psp-uc"
kind = "uc"
service = "psp"
counterparty = "ACME, \"the supplier\""
calendar = "london-all-day"
availability = 99.5
latency = { percentile = 95, max = "250ms" }
[[agreements]]
id = "psp-office"
kind = "uc"
service = "psp"
calendar = "london-office"
availability = 99.9
"#;

    fn source(catalogue: &Catalogue) -> MemorySource {
        let mut src = MemorySource::new(catalogue);
        // October 2026, one result a minute; down 2026-10-13 12:00-13:30 UTC.
        let start = "2026-10-01T00:00:00+01:00".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let end = "2026-11-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let down_from = "2026-10-13T12:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let mut at = start;
        while at < end {
            let down = (down_from..down_from + 5_400_000).contains(&at);
            src.add(
                "psp-api",
                "local",
                at,
                down.then_some(ErrorKind::Connect),
                30_000 + (at / 60_000 % 7) as u64 * 1000,
            );
            at += 60_000;
        }
        src
    }

    fn entries(bytes: &[u8]) -> BTreeMap<String, String> {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut out = BTreeMap::new();
        for i in 0..zip.len() {
            let mut f = zip.by_index(i).unwrap();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            out.insert(f.name().unwrap().to_string(), text);
        }
        out
    }

    fn export_october(agreement: &str) -> (Vec<u8>, SigningKey) {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let key = SigningKey::from_bytes(&[3; 32]);
        let now = "2026-11-22T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let q = PeriodQuery { period: Some("2026-10"), from: None, to: None, max_period: None };
        let inputs = ResolvedAgreement::resolve(&c, agreement, q, now).unwrap();
        let out = export(Cursor::new(Vec::new()), &src, &inputs, None, &[], &key, now).unwrap();
        (out.into_inner(), key)
    }

    #[test]
    fn an_exported_bundle_holds_every_file_and_verifies() {
        let (bytes, key) = export_october("psp-uc");
        verify_bundle(Cursor::new(&bytes), Some(&key.verifying_key())).unwrap();
        let files = entries(&bytes);
        for name in crate::evidence::CONTENT_FILES {
            assert!(files.contains_key(name), "{name} missing");
        }
        let manifest: serde_json::Value = serde_json::from_str(&files["manifest.json"]).unwrap();
        assert_eq!(manifest["agreement"]["id"], "psp-uc");
        assert_eq!(manifest["tzdb_version"], probity_config::tzdb_version());
        assert_eq!(manifest["period"]["label"], "2026-10");
        assert!(files["report.html"].contains("BREACHED") || files["report.html"].contains("MET"));
        assert!(
            !files["report.html"].contains("http://") && !files["report.html"].contains("https://"),
            "no external assets"
        );
        assert!(files["methodology.md"].contains("Europe/London"));
    }

    #[test]
    fn summary_json_is_the_agreement_report() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        assert_eq!(summary["downtime_seconds"], 5400.0);
        assert_eq!(summary["agreement"], "psp-uc");
        assert_eq!(summary["outages"][0]["counted_seconds"], 5400.0);
    }

    #[test]
    fn daily_rows_sum_to_the_report_and_the_clocks_back_day_has_25_hours() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        let mut sums = [0.0_f64; 4];
        let mut rows = 0;
        for line in files["daily.csv"].lines().skip(1) {
            let cols: Vec<&str> = line.split(',').collect();
            for (i, s) in sums.iter_mut().enumerate() {
                *s += cols[i + 1].parse::<f64>().unwrap();
            }
            if cols[0] == "2026-10-25" {
                assert_eq!(cols[1], "90000", "clocks go back in London on 2026-10-25");
            }
            rows += 1;
        }
        assert_eq!(rows, 31);
        for (i, key) in
            ["service_hours_seconds", "maintenance_seconds", "unknown_seconds", "downtime_seconds"].iter().enumerate()
        {
            assert!((sums[i] - summary[key].as_f64().unwrap()).abs() < 1e-6, "{key}: {} vs {}", sums[i], summary[key]);
        }
    }

    #[test]
    fn results_csv_lists_every_result_in_the_period_and_completeness_counts_them() {
        let (bytes, _) = export_october("psp-uc");
        let files = entries(&bytes);
        let results: Vec<&str> = files["results.csv"].lines().collect();
        assert_eq!(results[0], "at,agent,probe,ok,duration_us,error_kind,status");
        // 31 days + the extra hour of the clocks-back day, one result a minute.
        assert_eq!(results.len() - 1, 31 * 1440 + 60);
        assert!(results.iter().any(|l| l.contains(",false,") && l.ends_with(",connect,")));
        let completeness: Vec<&str> = files["completeness.csv"].lines().collect();
        let n = 31 * 1440 + 60;
        assert_eq!(completeness[1], format!("probe,local,,psp-api,{n},{n},0,60,,"));
        assert_eq!(completeness[2], format!("agent,local,,,{n},{n},0,,0,0"));
        assert_eq!(completeness[3], "instance,local,legacy,,,,,,0,");
    }

    #[test]
    fn maintenance_and_holidays_shape_the_office_hours_agreement() {
        let (bytes, _) = export_october("psp-office");
        let files = entries(&bytes);
        let summary: serde_json::Value = serde_json::from_str(&files["summary.json"]).unwrap();
        // 22 weekdays in October 2026 minus the 30th (a holiday), 8 hours each.
        assert_eq!(summary["service_hours_seconds"], 21.0 * 8.0 * 3600.0);
        assert_eq!(summary["maintenance_seconds"], 3600.0);
        // The outage 12:00-13:30 UTC is 13:00-14:30 local, inside office hours.
        assert_eq!(summary["downtime_seconds"], 5400.0);
        assert!(files["methodology.md"].contains("card network upgrade"));
        assert!(files["methodology.md"].contains("2026-10-30"));
        assert!(files["methodology.md"].contains("sets no `maintenance_notice`"));
        let csv: Vec<&str> = files["maintenance.csv"].lines().collect();
        assert_eq!(csv[0], "id,start,end,counted_seconds,reason,ticket,declared_at,declared_by,retroactive,notice_met");
        assert_eq!(
            csv[1],
            "chg-7,2026-10-14T10:00:00Z,2026-10-14T11:00:00Z,3600,card network upgrade,,1970-01-01T00:00:00Z,config,false,"
        );
        assert_eq!(summary["maintenance_windows"][0]["id"], "chg-7");
        assert!(files["report.html"].contains("<h2>Maintenance</h2>") && !files["report.html"].contains("Retroactive"));
        let manifest: serde_json::Value = serde_json::from_str(&files["manifest.json"]).unwrap();
        assert!(manifest.to_string().contains("maintenance.csv"), "listed in the manifest");
    }
}
