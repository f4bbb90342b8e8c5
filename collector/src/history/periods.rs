//! Period states and sealed revisions (SPEC §10). An agreement's period is `open` while it
//! runs, `settling` until `settle` after its end, then `closed`. A closed period is computed
//! once, with the catalogue version in force at its end, and stored as revision 1; every
//! later read returns the stored revision, so a change of terms never rewrites it.
//!
//! Only an agreement's own periods (a month agreement's `2026-11`, not `2026-W47` or a
//! `from`/`to` range) are sealed: those are the periods its figures are reported for. Any
//! other query is computed with the catalogue in force and says so (`revision` null).

use std::collections::BTreeMap;

use probity_config::time::rfc3339;
use probity_config::{Catalogue, PeriodKind};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::HistoryError;
use super::restatements;
use super::versions::{self, CatalogueVersion};
use crate::period::{self, Period, PeriodQuery};
use crate::report::{self, ReportError, ReportSource, ResolvedAgreement};
use crate::store::{Store, StoreError};
use crate::views::{self, View};

/// Where a period is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodState {
    Open,
    Settling,
    Closed,
}

impl PeriodState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodState::Open => "open",
            PeriodState::Settling => "settling",
            PeriodState::Closed => "closed",
        }
    }
}

/// The state of `period` at `now`, from its true end (`end_ms`, before clipping to now).
pub fn state_of(period: &Period, settle_ms: i64, now_ms: i64) -> PeriodState {
    if now_ms < period.end_ms {
        PeriodState::Open
    } else if now_ms < period.end_ms.saturating_add(settle_ms) {
        PeriodState::Settling
    } else {
        PeriodState::Closed
    }
}

/// One stored revision of a closed period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub number: u32,
    /// When this revision was stored (RFC 3339).
    pub sealed_at: String,
    pub catalogue_version: u32,
    pub reason: String,
    /// The token id that restated it; `collector` for the sealing at close.
    pub by: String,
    /// Per field that differs from the previous revision: before and after.
    pub changed: BTreeMap<String, Change>,
    /// The report exactly as it was computed (without `revision`/`restatement_pending`).
    pub report: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub before: Value,
    pub after: Value,
}

impl Revision {
    /// The `revision` object of a report (SPEC §10).
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "number": self.number,
            "sealed_at": self.sealed_at,
            "catalogue_version": self.catalogue_version,
            "reason": self.reason,
            "by": self.by,
        })
    }

    /// The listing's line: the summary with `at` and `changed`.
    pub fn listing(&self) -> Value {
        let mut v = self.summary();
        v["at"] = Value::String(self.sealed_at.clone());
        v["changed"] = serde_json::to_value(&self.changed).unwrap_or(Value::Null);
        v
    }
}

/// Who stored revision 1.
pub const SEALED_BY: &str = "collector";

/// Why a report could not be given.
#[derive(Debug, thiserror::Error)]
pub enum HistoryReadError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    History(#[from] HistoryError),
}

/// Turns a computed report into the JSON every reader sees (without history fields).
pub fn report_value(r: &report::AgreementReport) -> Result<Value, HistoryError> {
    serde_json::to_value(r.view()).map_err(|e| HistoryError::Decode { what: "report", reason: e.to_string() })
}

/// The agreement report a reader gets for `query`: a closed period of the agreement's own
/// kind from its latest stored revision (sealed now if it has none), anything else computed
/// with `catalogue`. Either way `period.state`, `revision` and `restatement_pending` are set.
pub fn agreement_report(
    records: &Store,
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    agreement_id: &str,
    query: PeriodQuery<'_>,
    now_ms: i64,
) -> Result<Value, HistoryReadError> {
    // Resolved once, with the catalogue in force; a closed period is then answered from
    // its revision, computed with the catalogue version it closed with.
    let inputs = ResolvedAgreement::resolve(catalogue, agreement_id, query, now_ms)?;
    let agreement = inputs.agreement;
    let period = &inputs.period;
    let settle_ms = i64::try_from(agreement.settle.as_millis()).unwrap_or(i64::MAX);
    let state = state_of(period, settle_ms, now_ms);
    if state == PeriodState::Closed && kind_of_label(&period.label) == Some(agreement.period) {
        // `serve` stores the catalogue in force at start; a state built without it (tests,
        // tools) gets it stored here, so there is always a version to seal with.
        if records.latest_catalogue_version().map_err(HistoryError::from)?.is_none() {
            versions::record(records, catalogue, versions::Source::File, now_ms)?;
        }
        let revision = latest_or_seal(records, source, agreement_id, &period.label, now_ms)?;
        let mark = restatements::mark_of(records, agreement_id, &period.label)?;
        let pending = mark.map_or(Value::Null, |m| m.pending(revision.number));
        return Ok(decorate(revision.report.clone(), PeriodState::Closed, Some(&revision), pending));
    }
    let report = report::agreement_report(source, &inputs)?;
    Ok(decorate(report_value(&report)?, state, None, Value::Null))
}

/// What a closed period's evidence bundle needs from history: the catalogue its figures
/// are computed with, the report readers are shown, and the files that record its history.
#[derive(Clone, Debug)]
pub struct ClosedEvidence {
    /// The catalogue of the latest revision's version, validated again.
    pub catalogue: Catalogue,
    /// The report as `GET …/report` answers it (the latest revision, with history fields).
    pub summary: Value,
    /// `revisions.json`.
    pub revisions: Value,
    /// `catalogue.json`: the version record with its catalogue.
    pub version: Value,
    pub revision: u32,
    pub catalogue_version: u32,
    pub catalogue_sha256: String,
}

impl ClosedEvidence {
    pub fn history(&self) -> crate::evidence::export::PeriodHistory<'_> {
        crate::evidence::export::PeriodHistory {
            summary: &self.summary,
            revisions: &self.revisions,
            catalogue: &self.version,
            revision: self.revision,
            catalogue_version: self.catalogue_version,
            catalogue_sha256: &self.catalogue_sha256,
        }
    }
}

/// The history of `query`'s period for its evidence bundle, if it is a closed period of the
/// agreement's own kind (sealed now if it has no revision yet); `None` otherwise.
pub fn closed_evidence(
    records: &Store,
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    agreement_id: &str,
    query: PeriodQuery<'_>,
    now_ms: i64,
) -> Result<Option<ClosedEvidence>, HistoryReadError> {
    let summary = agreement_report(records, source, catalogue, agreement_id, query, now_ms)?;
    if summary["revision"].is_null() {
        return Ok(None);
    }
    let label = summary["period"]["label"].as_str().unwrap_or_default().to_string();
    let all = revisions(records, agreement_id, &label)?;
    let latest = all.last().ok_or_else(|| HistoryError::Decode {
        what: "revision",
        reason: format!("{agreement_id} {label} has a revision in its report but none stored"),
    })?;
    let version = versions::get(records, latest.catalogue_version)?.ok_or_else(|| HistoryError::Decode {
        what: "catalogue version",
        reason: format!("version {} is missing", latest.catalogue_version),
    })?;
    let lines: Vec<Value> = all
        .iter()
        .map(|r| {
            let mut line = r.listing();
            line["report"] = r.report.clone();
            line
        })
        .collect();
    let revisions = serde_json::json!({ "agreement": agreement_id, "period": label, "revisions": lines });
    let mut record = version.summary();
    record["catalogue"] = version.catalogue.clone();
    Ok(Some(ClosedEvidence {
        catalogue: version.catalogue()?,
        summary,
        revisions,
        version: record,
        revision: latest.number,
        catalogue_version: version.version,
        catalogue_sha256: version.sha256.clone(),
    }))
}

/// `GET /api/v1/compliance` through the history layer: each agreement's line as
/// `report::compliance` computes it with `catalogue`, except that a closed period of the
/// agreement's own kind shows its sealed revision; the counts are taken after that.
pub fn compliance(
    records: &Store,
    source: &(dyn ReportSource + Sync),
    catalogue: &Catalogue,
    query: PeriodQuery<'_>,
    now_ms: i64,
) -> Result<Value, HistoryReadError> {
    let live = report::compliance(source, catalogue, query, now_ms)?;
    let mut out = serde_json::to_value(live.view())
        .map_err(|e| HistoryError::Decode { what: "compliance", reason: e.to_string() })?;
    let Some(lines) = out.get_mut("agreements").and_then(Value::as_array_mut) else { return Ok(out) };
    for (line, computed) in lines.iter_mut().zip(&live.agreements) {
        let Some(agreement) = catalogue.agreement(&computed.agreement) else { continue };
        let settle_ms = i64::try_from(agreement.settle.as_millis()).unwrap_or(i64::MAX);
        let state = state_of(&computed.period, settle_ms, now_ms);
        line["period"]["state"] = Value::String(state.as_str().into());
        line["revision"] = Value::Null;
        if state != PeriodState::Closed || kind_of_label(&computed.period.label) != Some(agreement.period) {
            continue;
        }
        if records.latest_catalogue_version().map_err(HistoryError::from)?.is_none() {
            versions::record(records, catalogue, versions::Source::File, now_ms)?;
        }
        let revision = latest_or_seal(records, source, &computed.agreement, &computed.period.label, now_ms)?;
        let sealed = &revision.report;
        for key in [
            "period",
            "availability_percent",
            "target_percent",
            "downtime_seconds",
            "error_budget_seconds",
            "error_budget_remaining_seconds",
            "burn_rate",
            "coverage_percent",
            "unknown_seconds",
            "verdict",
            "met",
        ] {
            line[key] = sealed.get(key).cloned().unwrap_or(Value::Null);
        }
        line["latency_met"] = sealed.get("latency").and_then(|l| l.get("met")).cloned().unwrap_or(Value::Null);
        line["revision"] = revision.summary();
    }
    let count = |v: &str| lines.iter().filter(|l| l["verdict"] == v).count();
    let (met, breached, insufficient) = (count("met"), count("breached"), count("insufficient_data"));
    let total = lines.len();
    out["met"] = met.into();
    out["breached"] = breached.into();
    out["insufficient_data"] = insufficient.into();
    out["compliance_rate_percent"] =
        if total == 0 { Value::Null } else { serde_json::json!(views::percent_floor(met as i64, total as i64)) };
    Ok(out)
}

/// The report fields a restatement compares and records (SPEC §10: seconds figures, the
/// verdict, the outages, and what follows from them).
pub const RESTATED_FIELDS: [&str; 13] = [
    "service_hours_seconds",
    "maintenance_seconds",
    "unknown_seconds",
    "downtime_seconds",
    "agreed_service_seconds",
    "availability_percent",
    "coverage_percent",
    "error_budget_remaining_seconds",
    "verdict",
    "met",
    "latency",
    "outages",
    "attributed_downtime",
];

/// Why a restatement was refused.
#[derive(Debug, thiserror::Error)]
pub enum RestateError {
    #[error("{agreement} {label} is not a closed period of the agreement; only closed periods are restated")]
    NotClosed { agreement: String, label: String },
    #[error("recomputing {label} with catalogue version {version} changes nothing; there is nothing to restate")]
    Unchanged { label: String, version: u32 },
    #[error(transparent)]
    Read(#[from] HistoryReadError),
}

/// What a restatement asks for, and who asks.
#[derive(Clone, Copy, Debug)]
pub struct Restatement<'a> {
    pub agreement: &'a str,
    pub label: &'a str,
    pub reason: &'a str,
    /// The manager token's id.
    pub by: &'a str,
}

/// `POST …/periods/{label}/restate`: recomputes a closed period with the catalogue version
/// it was sealed with and stores the result as the next revision, with `reason`, `by` and
/// the before/after of every field that changed. Nothing changed is refused.
pub fn restate(
    records: &Store,
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    request: &Restatement<'_>,
    now_ms: i64,
) -> Result<Revision, RestateError> {
    let Restatement { agreement: agreement_id, label, reason, by } = *request;
    let query = PeriodQuery { period: Some(label), from: None, to: None, max_period: None };
    let current = agreement_report(records, source, catalogue, agreement_id, query, now_ms)?;
    let label = current["period"]["label"].as_str().unwrap_or(label).to_string();
    if current["revision"].is_null() {
        return Err(RestateError::NotClosed { agreement: agreement_id.into(), label });
    }
    // Read before the recomputation: a touch that comes in while it runs keeps the mark.
    let seen = restatements::mark_of(records, agreement_id, &label).map_err(HistoryReadError::from)?;
    let Recomputation { latest, report: value, changed } = recompute(records, source, agreement_id, &label, now_ms)?;
    if changed.is_empty() {
        return Err(RestateError::Unchanged { label, version: latest.catalogue_version });
    }
    let revision = Revision {
        number: latest.number + 1,
        sealed_at: rfc3339(now_ms),
        catalogue_version: latest.catalogue_version,
        reason: reason.to_string(),
        by: by.to_string(),
        changed,
        report: value,
    };
    records
        .append_revision(agreement_id, &label, revision.number, &encode(&revision))
        .map_err(|e| HistoryReadError::from(HistoryError::from(e)))?;
    restatements::clear_after_restatement(records, agreement_id, &label, seen.as_ref())
        .map_err(HistoryReadError::from)?;
    Ok(revision)
}

/// A closed period computed again with the catalogue version of its latest revision.
#[derive(Clone, Debug)]
pub struct Recomputation {
    /// The latest revision (sealed first if the period had none).
    pub latest: Revision,
    /// The recomputed report.
    pub report: Value,
    /// Per field of `RESTATED_FIELDS` that differs from `latest`: before and after.
    pub changed: BTreeMap<String, Change>,
}

/// Recomputes the closed period `label` of an agreement with its latest revision's
/// catalogue version, from the data as it is now, and compares it with that revision.
pub fn recompute(
    records: &Store,
    source: &dyn ReportSource,
    agreement_id: &str,
    label: &str,
    now_ms: i64,
) -> Result<Recomputation, HistoryReadError> {
    let latest = latest_or_seal(records, source, agreement_id, label, now_ms)?;
    let version = versions::get(records, latest.catalogue_version)?.ok_or_else(|| HistoryError::Decode {
        what: "catalogue version",
        reason: format!("version {} is missing", latest.catalogue_version),
    })?;
    let sealed_catalogue = version.catalogue()?;
    let query = PeriodQuery { period: Some(label), from: None, to: None, max_period: None };
    let inputs = ResolvedAgreement::resolve(&sealed_catalogue, agreement_id, query, now_ms)?;
    let report = report::agreement_report(source, &inputs)?;
    let mut value = report_value(&report)?;
    value["period"]["state"] = Value::String(PeriodState::Closed.as_str().into());
    let changed: BTreeMap<String, Change> = RESTATED_FIELDS
        .iter()
        .filter_map(|&field| {
            let before = latest.report.get(field).cloned().unwrap_or(Value::Null);
            let after = value.get(field).cloned().unwrap_or(Value::Null);
            (before != after).then(|| (field.to_string(), Change { before, after }))
        })
        .collect();
    Ok(Recomputation { latest, report: value, changed })
}

/// Every revision of one agreement period, oldest first.
pub fn revisions(records: &Store, agreement: &str, label: &str) -> Result<Vec<Revision>, HistoryError> {
    records.revisions(agreement, label)?.iter().map(|p| decode(p)).collect()
}

/// The latest revision of a closed agreement period, sealing revision 1 first if there is
/// none. Two callers sealing at once are safe: the record is written once, the loser reads it.
pub fn latest_or_seal(
    records: &Store,
    source: &dyn ReportSource,
    agreement_id: &str,
    label: &str,
    now_ms: i64,
) -> Result<Revision, HistoryReadError> {
    if let Some(latest) = revisions(records, agreement_id, label)?.pop() {
        return Ok(latest);
    }
    let all = versions::list(records)?;
    let version = sealing_version(&all, agreement_id, label)?
        .ok_or_else(|| ReportError::UnknownAgreement(agreement_id.to_string()))?;
    let catalogue = version.catalogue()?;
    let query = PeriodQuery { period: Some(label), from: None, to: None, max_period: None };
    let report =
        report::agreement_report(source, &ResolvedAgreement::resolve(&catalogue, agreement_id, query, now_ms)?)?;
    let reason = if version.loaded_at_ms > report.period.to_ms {
        "period closed before catalogue versions were kept; sealed on first read with the oldest version"
    } else {
        "period closed"
    };
    let mut value = report_value(&report)?;
    value["period"]["state"] = Value::String(PeriodState::Closed.as_str().into());
    let revision = Revision {
        number: 1,
        sealed_at: rfc3339(now_ms),
        catalogue_version: version.version,
        reason: reason.into(),
        by: SEALED_BY.into(),
        changed: BTreeMap::new(),
        report: value,
    };
    match records.append_revision(agreement_id, label, 1, &encode(&revision)) {
        Ok(()) => Ok(revision),
        Err(StoreError::RecordExists { .. }) => {
            let latest = revisions(records, agreement_id, label)?.pop();
            Ok(latest.expect("a revision that exists can be read back"))
        }
        Err(e) => Err(HistoryError::from(e).into()),
    }
}

/// The catalogue version a closed period is computed with: the one in force at its end,
/// or, for a period that ended before any version was kept, the oldest. An agreement that
/// did not exist yet at the period's end is judged by the first version that defines it.
fn sealing_version<'v>(
    all: &'v [CatalogueVersion],
    agreement_id: &str,
    label: &str,
) -> Result<Option<&'v CatalogueVersion>, HistoryError> {
    let defines = |v: &CatalogueVersion| -> bool {
        v.catalogue
            .get("agreements")
            .and_then(Value::as_array)
            .is_some_and(|list| list.iter().any(|a| a.get("id").and_then(Value::as_str) == Some(agreement_id)))
    };
    // The period's end depends on the calendar of each version; read it in the newest
    // version that defines the agreement, which is how the label was resolved.
    let Some(newest) = all.iter().rev().find(|v| defines(v)) else { return Ok(None) };
    let catalogue = newest.catalogue()?;
    let Some(agreement) = catalogue.agreement(agreement_id) else { return Ok(None) };
    let calendar = catalogue.calendar(&agreement.calendar).expect("validated reference");
    let end = period::parse_period(label, &calendar.timezone, i64::MAX)
        .map(|p| p.to_ms)
        .map_err(|e| HistoryError::Decode { what: "period label", reason: e.to_string() })?;
    let in_force = versions::in_force_at(all, end);
    Ok(match in_force {
        Some(v) if defines(v) => Some(v),
        Some(v) => all.iter().filter(|x| x.version > v.version).find(|x| defines(x)).or(Some(newest)),
        None => None,
    })
}

/// Adds the history fields to a report's JSON.
fn decorate(mut report: Value, state: PeriodState, revision: Option<&Revision>, pending: Value) -> Value {
    report["period"]["state"] = Value::String(state.as_str().into());
    report["revision"] = revision.map_or(Value::Null, Revision::summary);
    report["restatement_pending"] = pending;
    report
}

/// The period kind a label names (`2026-11` month, `2026-Q4` quarter, `2026-W47` week,
/// `2026` year); `None` for a `from/to` label.
pub fn kind_of_label(label: &str) -> Option<PeriodKind> {
    let b = label.as_bytes();
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    match b.len() {
        4 if digits(b) => Some(PeriodKind::Year),
        7 if digits(&b[..4]) && b[4] == b'-' && b[5] == b'Q' && digits(&b[6..]) => Some(PeriodKind::Quarter),
        7 if digits(&b[..4]) && b[4] == b'-' && digits(&b[5..]) => Some(PeriodKind::Month),
        8 if digits(&b[..4]) && b[4] == b'-' && b[5] == b'W' && digits(&b[6..]) => Some(PeriodKind::Week),
        _ => None,
    }
}

/// The agreement periods to seal at `now`: per agreement, the last two periods before the
/// current one that are closed (a settle longer than a period can leave one still settling).
pub fn due_for_sealing(catalogue: &Catalogue, now_ms: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for a in &catalogue.agreements {
        let Some(calendar) = catalogue.calendar(&a.calendar) else { continue };
        let settle_ms = i64::try_from(a.settle.as_millis()).unwrap_or(i64::MAX);
        let mut start = period::current_period(a.period, &calendar.timezone, now_ms).from_ms;
        for _ in 0..2 {
            let previous = period::current_period(a.period, &calendar.timezone, start - 1);
            let full = match period::parse_period(&previous.label, &calendar.timezone, now_ms) {
                Ok(p) => p,
                Err(_) => break,
            };
            if state_of(&full, settle_ms, now_ms) == PeriodState::Closed {
                out.push((a.id.to_string(), full.label.clone()));
            }
            start = full.from_ms;
        }
    }
    out
}

/// Seals every period `due_for_sealing` names that has no revision yet; returns how many.
pub fn seal_due(
    records: &Store,
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    now_ms: i64,
) -> Result<usize, HistoryReadError> {
    let mut unsealed = Vec::new();
    for (agreement, label) in due_for_sealing(catalogue, now_ms) {
        if records.revisions(&agreement, &label).map_err(HistoryError::from)?.is_empty() {
            unsealed.push((agreement, label));
        }
    }
    if !unsealed.is_empty() {
        tracing::info!(periods = unsealed.len(), "sealing closed periods");
    }
    for (agreement, label) in &unsealed {
        let revision = latest_or_seal(records, source, agreement, label, now_ms)?;
        // Logged once the revision is durable.
        tracing::info!(agreement, period = %label, revision = revision.number, "closed period sealed");
    }
    Ok(unsealed.len())
}

fn encode(r: &Revision) -> Vec<u8> {
    serde_json::to_vec(r).expect("a revision serialises")
}

fn decode(payload: &[u8]) -> Result<Revision, HistoryError> {
    serde_json::from_slice(payload).map_err(|e| HistoryError::Decode { what: "revision", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use probity_config::wire::ErrorKind;

    use super::*;
    use crate::report::memory::MemorySource;
    use crate::store::StoreOptions;

    const CONFIG: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
[[services]]
id = "web"
  [[services.probes]]
  id = "web-tcp"
  kind = "tcp"
  target = "127.0.0.1:80"
  interval = "1m"
  timeout = "5s"
[[agreements]]
id = "web-sla"
kind = "sla"
service = "web"
period = "week"
availability = 99.0
settle = "1h"
"#;

    const HOUR: i64 = 3_600_000;
    /// Monday 2026-11-02T00:00:00Z: the start of ISO week 2026-W45.
    const W45: i64 = 1_793_577_600_000;
    const WEEK: i64 = 7 * 24 * HOUR;

    fn catalogue(text: &str) -> Catalogue {
        probity_config::parse_collector_config("t.toml", text).unwrap().catalogue
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        (dir, store)
    }

    /// One result a minute over W45 and W46; down for 3 hours in W45.
    fn source(c: &Catalogue) -> MemorySource {
        let mut src = MemorySource::new(c);
        for i in 0..(2 * WEEK / 60_000) {
            let at = W45 + i * 60_000;
            let down = (W45 + 24 * HOUR..W45 + 27 * HOUR).contains(&at);
            src.add("web-tcp", "a1", at, down.then_some(ErrorKind::Timeout), 1_000);
        }
        src
    }

    fn week(label: &str) -> PeriodQuery<'_> {
        PeriodQuery { period: Some(label), from: None, to: None, max_period: None }
    }

    #[test]
    fn a_period_is_open_then_settling_then_closed() {
        let c = catalogue(CONFIG);
        let tz = &c.calendar("24x7").unwrap().timezone;
        let at = |now| state_of(&period::parse_period("2026-W45", tz, now).unwrap(), HOUR, now);
        assert_eq!(at(W45 + WEEK - 1), PeriodState::Open);
        assert_eq!(at(W45 + WEEK), PeriodState::Settling);
        assert_eq!(at(W45 + WEEK + HOUR - 1), PeriodState::Settling);
        assert_eq!(at(W45 + WEEK + HOUR), PeriodState::Closed);
    }

    #[test]
    fn labels_name_their_period_kind() {
        assert_eq!(kind_of_label("2026"), Some(PeriodKind::Year));
        assert_eq!(kind_of_label("2026-Q4"), Some(PeriodKind::Quarter));
        assert_eq!(kind_of_label("2026-11"), Some(PeriodKind::Month));
        assert_eq!(kind_of_label("2026-W07"), Some(PeriodKind::Week));
        assert_eq!(kind_of_label("2026-11-01T00:00:00Z/2026-11-02T00:00:00Z"), None);
    }

    #[test]
    fn a_closed_period_keeps_its_sealed_terms_and_figures_after_the_target_changes() {
        let (_dir, records) = store();
        let v1 = catalogue(CONFIG);
        let src = source(&v1);
        versions::record(&records, &v1, versions::Source::File, W45 - HOUR).unwrap();
        let now = W45 + WEEK + 2 * HOUR;
        let sealed = agreement_report(&records, &src, &v1, "web-sla", week("2026-W45"), now).unwrap();
        assert_eq!(sealed["period"]["state"], "closed");
        assert_eq!(sealed["revision"]["number"], 1);
        assert_eq!(sealed["revision"]["catalogue_version"], 1);
        assert_eq!(sealed["revision"]["by"], "collector");
        assert_eq!(sealed["revision"]["reason"], "period closed");
        assert_eq!(sealed["restatement_pending"], Value::Null);
        assert_eq!(
            (sealed["target_percent"].as_f64(), sealed["downtime_seconds"].as_f64()),
            (Some(99.0), Some(10_800.0))
        );

        // The target is raised and the catalogue reloaded during W46.
        let v2 = catalogue(&CONFIG.replace("availability = 99.0", "availability = 99.9"));
        versions::record(&records, &v2, versions::Source::File, now + HOUR).unwrap();
        let later = now + 2 * HOUR;
        let again = agreement_report(&records, &src, &v2, "web-sla", week("2026-W45"), later).unwrap();
        assert_eq!(again["target_percent"], 99.0, "a closed period keeps the terms it closed with");
        assert_eq!(again["revision"], sealed["revision"]);
        assert_eq!(again["downtime_seconds"], sealed["downtime_seconds"]);
        // The running week uses the new terms.
        let open = agreement_report(&records, &src, &v2, "web-sla", week("2026-W46"), later).unwrap();
        assert_eq!((open["target_percent"].as_f64(), open["period"]["state"].as_str()), (Some(99.9), Some("open")));
        assert_eq!(open["revision"], Value::Null);
        assert_eq!(revisions(&records, "web-sla", "2026-W45").unwrap().len(), 1);
    }

    #[test]
    fn late_results_never_rewrite_a_sealed_revision() {
        let (_dir, records) = store();
        let c = catalogue(CONFIG);
        let mut src = source(&c);
        let now = W45 + WEEK + 2 * HOUR;
        let sealed = agreement_report(&records, &src, &c, "web-sla", week("2026-W45"), now).unwrap();
        for i in 0..60 {
            src.add("web-tcp", "a1", W45 + 48 * HOUR + i * 60_000, Some(ErrorKind::Connect), 0);
        }
        let again = agreement_report(&records, &src, &c, "web-sla", week("2026-W45"), now + HOUR).unwrap();
        assert_eq!(again, sealed);
    }

    #[test]
    fn restating_after_late_results_stores_revision_2_with_before_and_after() {
        let (_dir, records) = store();
        let c = catalogue(CONFIG);
        let mut src = source(&c);
        versions::record(&records, &c, versions::Source::File, W45 - HOUR).unwrap();
        let now = W45 + WEEK + 2 * HOUR;
        let sealed = agreement_report(&records, &src, &c, "web-sla", week("2026-W45"), now).unwrap();
        // Nothing new: nothing to restate.
        let same = restate(
            &records,
            &src,
            &c,
            &Restatement { agreement: "web-sla", label: "2026-W45", reason: "check", by: "boss" },
            now,
        );
        assert!(matches!(same, Err(RestateError::Unchanged { .. })), "{same:?}");
        // An hour of late down results; the target has meanwhile been raised.
        for i in 0..60 {
            src.add("web-tcp", "a1", W45 + 48 * HOUR + i * 60_000 + 30_000, Some(ErrorKind::Connect), 0);
        }
        let v2 = catalogue(&CONFIG.replace("availability = 99.0", "availability = 99.9"));
        versions::record(&records, &v2, versions::Source::File, now).unwrap();
        let r2 = restate(
            &records,
            &src,
            &v2,
            &Restatement { agreement: "web-sla", label: "2026-W45", reason: "late results from a1", by: "boss" },
            now + HOUR,
        )
        .unwrap();
        assert_eq!((r2.number, r2.catalogue_version, r2.by.as_str()), (2, 1, "boss"));
        assert_eq!(r2.changed["downtime_seconds"].before, sealed["downtime_seconds"]);
        assert!(r2.changed["downtime_seconds"].after.as_f64().unwrap() > 10_800.0);
        assert!(!r2.changed.contains_key("service_hours_seconds"));
        // Reads now return revision 2, still with the sealed terms.
        let read = agreement_report(&records, &src, &v2, "web-sla", week("2026-W45"), now + 2 * HOUR).unwrap();
        assert_eq!((read["revision"]["number"].as_u64(), read["target_percent"].as_f64()), (Some(2), Some(99.0)));
        assert_eq!(revisions(&records, "web-sla", "2026-W45").unwrap().len(), 2);
        // An open period is not restated.
        let open = restate(
            &records,
            &src,
            &v2,
            &Restatement { agreement: "web-sla", label: "2026-W47", reason: "x", by: "boss" },
            now,
        );
        assert!(matches!(open, Err(RestateError::NotClosed { .. })), "{open:?}");
    }

    #[test]
    fn a_closed_periods_evidence_holds_every_revision_and_its_catalogue_version_and_verifies() {
        use std::io::{Cursor, Read};
        let (_dir, records) = store();
        let v1 = catalogue(CONFIG);
        let mut src = source(&v1);
        versions::record(&records, &v1, versions::Source::File, W45 - HOUR).unwrap();
        let now = W45 + WEEK + 2 * HOUR;
        agreement_report(&records, &src, &v1, "web-sla", week("2026-W45"), now).unwrap();
        for i in 0..60 {
            src.add("web-tcp", "a1", W45 + 48 * HOUR + i * 60_000 + 30_000, Some(ErrorKind::Connect), 0);
        }
        // Terms change after the week closed; the bundle keeps the sealed ones.
        let v2 = catalogue(&CONFIG.replace("availability = 99.0", "availability = 99.9"));
        versions::record(&records, &v2, versions::Source::File, now).unwrap();
        let request = Restatement { agreement: "web-sla", label: "2026-W45", reason: "late results", by: "boss" };
        restate(&records, &src, &v2, &request, now + HOUR).unwrap();

        let later = now + 2 * HOUR;
        let closed = closed_evidence(&records, &src, &v2, "web-sla", week("2026-W45"), later).unwrap().unwrap();
        assert_eq!((closed.revision, closed.catalogue_version), (2, 1));
        let inputs = ResolvedAgreement::resolve(&closed.catalogue, "web-sla", week("2026-W45"), later).unwrap();
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let history = Some(closed.history());
        let bytes = crate::evidence::export::export(Cursor::new(Vec::new()), &src, &inputs, history, &[], &key, later)
            .unwrap()
            .into_inner();
        let report = crate::evidence::verify::verify_bundle(Cursor::new(&bytes), Some(&key.verifying_key())).unwrap();
        assert!(report.checks.iter().any(|c| c.starts_with("catalogue.json: catalogue version 1")), "{report:?}");

        let mut zip = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        let mut json = |name: &str| -> Value {
            let mut text = String::new();
            zip.by_name(name).unwrap().read_to_string(&mut text).unwrap();
            serde_json::from_str(&text).unwrap()
        };
        let revisions = json("revisions.json");
        let list = revisions["revisions"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!((list[0]["number"].as_u64(), list[1]["number"].as_u64()), (Some(1), Some(2)));
        assert!(list[1]["changed"]["downtime_seconds"]["before"].is_number(), "{}", list[1]);
        let version = json("catalogue.json");
        assert_eq!(
            (version["version"].as_u64(), &version["sha256"]),
            (Some(1), &Value::String(closed.catalogue_sha256))
        );
        let summary = json("summary.json");
        assert_eq!((summary["revision"]["number"].as_u64(), summary["target_percent"].as_f64()), (Some(2), Some(99.0)));
        let manifest = json("manifest.json");
        let listed: Vec<&str> =
            manifest["files"].as_array().unwrap().iter().filter_map(|f| f["name"].as_str()).collect();
        for name in ["revisions.json", "catalogue.json", "public-key.txt"] {
            assert!(listed.contains(&name), "{name} not in the manifest: {listed:?}");
        }
        assert_eq!(manifest["history"]["revision"], 2);
        // An open period's bundle has no history.
        assert!(closed_evidence(&records, &src, &v2, "web-sla", week("2026-W46"), later).unwrap().is_none());
    }

    #[test]
    fn a_period_that_closed_before_versions_were_kept_is_sealed_with_the_oldest_version() {
        let (_dir, records) = store();
        let c = catalogue(CONFIG);
        let src = source(&c);
        // The first version is stored long after W45 ended.
        let now = W45 + 3 * WEEK;
        versions::record(&records, &c, versions::Source::File, now - HOUR).unwrap();
        let r = agreement_report(&records, &src, &c, "web-sla", week("2026-W45"), now).unwrap();
        assert_eq!(r["revision"]["catalogue_version"], 1);
        assert!(r["revision"]["reason"].as_str().unwrap().contains("before catalogue versions were kept"), "{r}");
    }

    #[test]
    fn a_settling_period_is_computed_with_the_catalogue_in_force_and_not_sealed() {
        let (_dir, records) = store();
        let c = catalogue(CONFIG);
        let src = source(&c);
        let r = agreement_report(&records, &src, &c, "web-sla", week("2026-W45"), W45 + WEEK + HOUR / 2).unwrap();
        assert_eq!((r["period"]["state"].as_str(), r["period"]["complete"].as_bool()), (Some("settling"), Some(true)));
        assert_eq!(r["revision"], Value::Null);
        assert!(revisions(&records, "web-sla", "2026-W45").unwrap().is_empty());
    }

    #[test]
    fn due_periods_are_sealed_once() {
        let (_dir, records) = store();
        let c = catalogue(CONFIG);
        let src = source(&c);
        versions::record(&records, &c, versions::Source::File, W45).unwrap();
        let now = W45 + 2 * WEEK + 2 * HOUR;
        assert_eq!(
            due_for_sealing(&c, now),
            vec![("web-sla".to_string(), "2026-W46".to_string()), ("web-sla".to_string(), "2026-W45".to_string())]
        );
        assert_eq!(seal_due(&records, &src, &c, now).unwrap(), 2);
        assert_eq!(seal_due(&records, &src, &c, now).unwrap(), 0);
        // An hour into W47 (settle 1h): W46 is still settling.
        assert_eq!(
            due_for_sealing(&c, W45 + 2 * WEEK + HOUR / 2),
            vec![("web-sla".to_string(), "2026-W45".to_string())]
        );
    }
}
