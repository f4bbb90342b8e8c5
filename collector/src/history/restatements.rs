//! Restatement pending (SPEC §10): a closed period whose figures would change if it were
//! computed again. Cheap by construction: nothing recomputes closed periods on a read.
//!
//! 1. Whatever can change a closed period marks it: the ingest path (`note_results`, for
//!    results whose `at` lies in a closed period) and maintenance changes
//!    ([`mark_touched`], the seam the maintenance records call) write a mark per
//!    (agreement, period) in the store's `restatements` tree, *before* the change itself is
//!    stored, so a crash between the two leaves a mark too many (found unchanged), never one
//!    too few.
//! 2. A job ([`recompute_marked`]) recomputes each marked period with its sealed catalogue
//!    version and compares it with the latest revision over `RESTATED_FIELDS`: a period
//!    that differs keeps its mark with the new figures; one that does not loses its mark.
//! 3. A read of a closed period looks its mark up (one key) and shows it as
//!    `restatement_pending`; a restatement removes it.

use std::collections::{BTreeMap, BTreeSet};

use probity_config::time::rfc3339;
use probity_config::wire::ProbeResult;
use probity_config::{Catalogue, CollectorConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::HistoryError;
use super::periods::{self, HistoryReadError, PeriodState};
use crate::period;
use crate::report::{ReportError, ReportSource};
use crate::store::Store;

/// What touched a closed period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Results whose `at` lies in the period arrived after it closed.
    LateResults,
    /// A maintenance window overlapping the period was added, changed or cancelled.
    Maintenance,
}

/// The stored mark of one closed period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mark {
    /// When the first touch since the period was last found unchanged or restated happened.
    pub since_ms: i64,
    pub reasons: BTreeSet<Reason>,
    /// Bumped by every touch, so the job knows whether its computation is still current.
    pub touches: u64,
    /// What the latest recomputation found, if one ran since the mark was made.
    pub computed: Option<Computed>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Computed {
    /// The `touches` the computation saw.
    pub touches: u64,
    /// The revision it was compared with.
    pub revision: u32,
    /// Per field that differs from that revision: the recomputed value.
    pub figures: BTreeMap<String, Value>,
}

impl Mark {
    /// The report's `restatement_pending` for a period whose latest revision is `revision`,
    /// or null when nothing differs (or nothing was computed against that revision yet).
    pub fn pending(&self, revision: u32) -> Value {
        match &self.computed {
            Some(c) if c.revision == revision && !c.figures.is_empty() => serde_json::json!({
                "since": rfc3339(self.since_ms),
                "reasons": self.reasons,
                "figures": c.figures,
            }),
            _ => Value::Null,
        }
    }
}

/// Marks every closed period of every agreement that `[from_ms, to_ms)` of `service` can
/// change: the agreements on the service and on the services that depend on it (their
/// outages are attributed to it), each period of the agreement's kind that overlaps the
/// range and is closed at `now_ms`. Returns how many periods were marked.
///
/// This is the seam for maintenance records: call it with `Reason::Maintenance` and the
/// window's extent (before and after the change: both the old and the new extent touch the
/// periods they overlap) *before* the change is stored. Blocks on sled.
pub fn mark_touched(
    records: &Store,
    catalogue: &Catalogue,
    service: &str,
    from_ms: i64,
    to_ms: i64,
    reason: Reason,
    now_ms: i64,
) -> Result<usize, HistoryError> {
    let mut marked = 0;
    for (agreement, label) in closed_periods_touched(catalogue, service, from_ms, to_ms, now_ms) {
        mark(records, &agreement, &label, reason, now_ms)?;
        marked += 1;
    }
    Ok(marked)
}

/// The closed agreement periods `[from_ms, to_ms)` of `service` overlaps (see [`mark_touched`]).
pub fn closed_periods_touched(
    catalogue: &Catalogue,
    service: &str,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if from_ms >= to_ms {
        return out;
    }
    for a in &catalogue.agreements {
        let on_it = a.service.as_str() == service
            || catalogue.dependencies_transitive(a.service.as_str()).iter().any(|d| d.id.as_str() == service);
        let Some(calendar) = catalogue.calendar(&a.calendar).filter(|_| on_it) else { continue };
        let settle_ms = i64::try_from(a.settle.as_millis()).unwrap_or(i64::MAX);
        let mut p = period::current_period(a.period, &calendar.timezone, from_ms);
        // Only closed periods: each ends at least `settle` before now, so the walk is bounded
        // by the range and by now.
        while p.from_ms < to_ms && periods::state_of(&p, settle_ms, now_ms) == PeriodState::Closed {
            out.push((a.id.to_string(), p.label.clone()));
            if p.end_ms <= p.from_ms {
                break;
            }
            p = period::current_period(a.period, &calendar.timezone, p.end_ms);
        }
    }
    out
}

/// The ingest path's part: marks the closed periods that `results` of `agent` fall in.
/// Almost every batch is recent and costs one comparison per result; only results older than
/// the longest `settle` are judged (as ingest will judge them, so a result ingest refuses
/// marks nothing) and looked up. Call it before the batch is stored. Blocks on sled.
pub fn note_results(
    records: &Store,
    config: &CollectorConfig,
    agent: &str,
    results: &[ProbeResult],
    now_ms: i64,
) -> Result<usize, HistoryError> {
    let catalogue = &config.catalogue;
    // A result at or after this instant lies in no closed period of any agreement.
    let Some(recent) = catalogue
        .agreements
        .iter()
        .map(|a| now_ms.saturating_sub(i64::try_from(a.settle.as_millis()).unwrap_or(i64::MAX)))
        .max()
    else {
        return Ok(0);
    };
    let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in results.iter().filter(|r| r.at < recent) {
        if crate::ingest::check_result(config, agent, r, now_ms).is_err() {
            continue;
        }
        let Some((service, _)) = catalogue.probe(&r.probe) else { continue };
        let span = spans.entry(service.id.as_str()).or_insert((r.at, r.at));
        *span = (span.0.min(r.at), span.1.max(r.at));
    }
    let mut marked = 0;
    for (service, (first, last)) in spans {
        marked +=
            mark_touched(records, catalogue, service, first, last.saturating_add(1), Reason::LateResults, now_ms)?;
    }
    Ok(marked)
}

/// Recomputes every marked period whose mark changed since its last computation; returns
/// how many were recomputed. A period that differs from its latest revision keeps its mark
/// with the new figures; one that does not loses it.
pub fn recompute_marked(records: &Store, source: &dyn ReportSource, now_ms: i64) -> Result<usize, HistoryReadError> {
    let mut recomputed = 0;
    for (agreement, label, payload) in records.restatements().map_err(HistoryError::from)? {
        let mark = decode(&payload)?;
        if mark.computed.as_ref().is_some_and(|c| c.touches == mark.touches) {
            continue;
        }
        let next = match periods::recompute(records, source, &agreement, &label, now_ms) {
            Ok(r) if r.changed.is_empty() => None,
            Ok(r) => Some(Mark {
                computed: Some(Computed {
                    touches: mark.touches,
                    revision: r.latest.number,
                    figures: r.changed.into_iter().map(|(field, change)| (field, change.after)).collect(),
                }),
                ..mark
            }),
            // An agreement gone from every catalogue version has nothing left to restate.
            Err(HistoryReadError::Report(ReportError::UnknownAgreement(_))) => None,
            Err(e) => return Err(e),
        };
        // Lost to a newer touch: the next pass computes again.
        let next = next.as_ref().map(encode);
        records.swap_restatement(&agreement, &label, Some(&payload), next.as_deref()).map_err(HistoryError::from)?;
        recomputed += 1;
    }
    Ok(recomputed)
}

/// The mark of one agreement period, if it has one.
pub fn mark_of(records: &Store, agreement: &str, label: &str) -> Result<Option<Mark>, HistoryError> {
    records.restatement(agreement, label)?.map(|p| decode(&p)).transpose()
}

/// How many periods have a restatement pending (`probity_restatements_pending`): marks
/// whose latest computation found a difference.
pub fn pending_count(records: &Store) -> Result<usize, HistoryError> {
    let mut n = 0;
    for (_, _, payload) in records.restatements()? {
        if decode(&payload)?.computed.is_some_and(|c| !c.figures.is_empty()) {
            n += 1;
        }
    }
    Ok(n)
}

/// After a restatement stored revision `revision` from a computation that saw `seen` (the
/// mark as it was before that computation): the mark goes, unless a touch came in since,
/// which keeps it for the job to compare with the new revision.
pub fn clear_after_restatement(
    records: &Store,
    agreement: &str,
    label: &str,
    seen: Option<&Mark>,
) -> Result<(), HistoryError> {
    loop {
        let Some(payload) = records.restatement(agreement, label)? else { return Ok(()) };
        let current = decode(&payload)?;
        let next = match seen {
            Some(s) if s.touches == current.touches => None,
            _ => Some(encode(&Mark { computed: None, ..current })),
        };
        if records.swap_restatement(agreement, label, Some(&payload), next.as_deref())? {
            return Ok(());
        }
    }
}

/// Adds `reason` to the mark of one agreement period (made if absent).
fn mark(records: &Store, agreement: &str, label: &str, reason: Reason, now_ms: i64) -> Result<(), HistoryError> {
    loop {
        let old = records.restatement(agreement, label)?;
        let mut next = match &old {
            Some(payload) => decode(payload)?,
            None => Mark { since_ms: now_ms, reasons: BTreeSet::new(), touches: 0, computed: None },
        };
        next.reasons.insert(reason);
        next.touches += 1;
        if records.swap_restatement(agreement, label, old.as_deref(), Some(&encode(&next)))? {
            return Ok(());
        }
    }
}

fn encode(m: &Mark) -> Vec<u8> {
    serde_json::to_vec(m).expect("a mark serialises")
}

fn decode(payload: &[u8]) -> Result<Mark, HistoryError> {
    serde_json::from_slice(payload)
        .map_err(|e| HistoryError::Decode { what: "restatement mark", reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use probity_config::wire::{ErrorKind, ResultError};

    use super::*;
    use crate::history::periods::{Restatement, agreement_report, restate};
    use crate::history::versions;
    use crate::period::PeriodQuery;
    use crate::report::memory::MemorySource;
    use crate::store::StoreOptions;

    const CONFIG: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
[[services]]
id = "psp"
  [[services.probes]]
  id = "psp-tcp"
  kind = "tcp"
  target = "127.0.0.1:81"
  interval = "1m"
  timeout = "5s"
[[services]]
id = "web"
depends_on = ["psp"]
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
[[agreements]]
id = "psp-uc"
kind = "uc"
service = "psp"
period = "month"
availability = 99.0
settle = "1h"
"#;

    const HOUR: i64 = 3_600_000;
    /// Monday 2026-11-02T00:00:00Z: the start of ISO week 2026-W45.
    const W45: i64 = 1_793_577_600_000;
    const WEEK: i64 = 7 * 24 * HOUR;
    /// Two hours into W46: W45 is closed (settle 1h).
    const NOW: i64 = W45 + WEEK + 2 * HOUR;

    struct Fixture {
        _dir: tempfile::TempDir,
        records: Store,
        config: CollectorConfig,
        src: MemorySource,
    }

    /// One result a minute for both probes over W45 and the start of W46; web down 3 hours in W45.
    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let records = Store::open(dir.path(), &StoreOptions::default()).unwrap();
        let config = probity_config::parse_collector_config("t.toml", CONFIG).unwrap();
        let mut src = MemorySource::new(&config.catalogue);
        for i in 0..((WEEK + 2 * HOUR) / 60_000) {
            let at = W45 + i * 60_000;
            let down = (W45 + 24 * HOUR..W45 + 27 * HOUR).contains(&at);
            src.add("web-tcp", "a1", at, down.then_some(ErrorKind::Timeout), 1_000);
            src.add("psp-tcp", "a1", at, None, 1_000);
        }
        versions::record(&records, &config.catalogue, versions::Source::File, W45 - HOUR).unwrap();
        Fixture { _dir: dir, records, config, src }
    }

    fn week(label: &str) -> PeriodQuery<'_> {
        PeriodQuery { period: Some(label), from: None, to: None, max_period: None }
    }

    fn late_down(probe: &str, seq: u64, at: i64) -> ProbeResult {
        ProbeResult {
            seq,
            probe: probe.into(),
            at,
            duration_us: 0,
            ok: false,
            status: None,
            phases: None,
            error: Some(ResultError { kind: ErrorKind::Connect, message: "refused".into() }),
            cert_not_after: None,
        }
    }

    /// Late down results for an hour of W45 (Wednesday 00:00-01:00), half a minute after
    /// each up result: stored in `src`, and noted as ingest notes them.
    fn ingest_late_hour(f: &mut Fixture, probe: &str, now: i64) -> usize {
        let results: Vec<ProbeResult> =
            (0..60).map(|i| late_down(probe, 10_000 + i as u64, W45 + 48 * HOUR + i * 60_000 + 30_000)).collect();
        let marked = note_results(&f.records, &f.config, "a1", &results, now).unwrap();
        for r in &results {
            f.src.add(probe, "a1", r.at, Some(ErrorKind::Connect), 0);
        }
        marked
    }

    fn report(f: &Fixture, agreement: &str, label: &str, now: i64) -> Value {
        agreement_report(&f.records, &f.src, &f.config.catalogue, agreement, week(label), now).unwrap()
    }

    #[test]
    fn late_results_for_a_closed_week_show_as_restatement_pending_with_exactly_the_changed_fields() {
        let mut f = fixture();
        let sealed = report(&f, "web-sla", "2026-W45", NOW);
        assert_eq!(sealed["restatement_pending"], Value::Null);
        assert_eq!(ingest_late_hour(&mut f, "web-tcp", NOW + 60_000), 1, "web-sla 2026-W45 only");
        // Marked, not yet recomputed: a read shows nothing it has not computed.
        assert_eq!(report(&f, "web-sla", "2026-W45", NOW + 60_000)["restatement_pending"], Value::Null);
        assert_eq!(recompute_marked(&f.records, &f.src, NOW + 2 * 60_000).unwrap(), 1);
        assert_eq!(recompute_marked(&f.records, &f.src, NOW + 3 * 60_000).unwrap(), 0, "computed once per touch");
        let read = report(&f, "web-sla", "2026-W45", NOW + 4 * 60_000);
        let pending = &read["restatement_pending"];
        assert_eq!(pending["since"], rfc3339(NOW + 60_000), "{pending}");
        assert_eq!(pending["reasons"], serde_json::json!(["late_results"]));
        let fields: Vec<&str> = pending["figures"].as_object().unwrap().keys().map(String::as_str).collect();
        // Already breached before (3 hours down in a week): the verdict stays, so it is not listed.
        assert_eq!(fields, ["availability_percent", "downtime_seconds", "error_budget_remaining_seconds", "outages"]);
        // Each late down result holds the view for the 30 s until the next up result.
        assert_eq!(pending["figures"]["downtime_seconds"], 10_800.0 + 60.0 * 30.0);
        // Everything else is still the sealed revision.
        assert_eq!(read["downtime_seconds"], sealed["downtime_seconds"]);
        assert_eq!(read["revision"], sealed["revision"]);
        assert_eq!(pending_count(&f.records).unwrap(), 1);

        let request = Restatement { agreement: "web-sla", label: "2026-W45", reason: "late results", by: "boss" };
        let r2 = restate(&f.records, &f.src, &f.config.catalogue, &request, NOW + 5 * 60_000).unwrap();
        assert_eq!(r2.number, 2);
        let after: BTreeMap<String, Value> = r2.changed.into_iter().map(|(k, c)| (k, c.after)).collect();
        assert_eq!(serde_json::to_value(&after).unwrap(), pending["figures"], "restated what was pending");
        let read = report(&f, "web-sla", "2026-W45", NOW + 6 * 60_000);
        assert_eq!((read["revision"]["number"].as_u64(), &read["restatement_pending"]), (Some(2), &Value::Null));
        assert_eq!(mark_of(&f.records, "web-sla", "2026-W45").unwrap(), None, "restating cleared the mark");
        assert_eq!(pending_count(&f.records).unwrap(), 0);
    }

    #[test]
    fn results_for_open_or_settling_periods_mark_nothing() {
        let mut f = fixture();
        // Half an hour after W45 ended it is still settling (settle 1h).
        assert_eq!(ingest_late_hour(&mut f, "web-tcp", W45 + WEEK + HOUR / 2), 0);
        let recent: Vec<ProbeResult> = (0..10).map(|i| late_down("web-tcp", i, NOW - i as i64 * 60_000)).collect();
        assert_eq!(note_results(&f.records, &f.config, "a1", &recent, NOW).unwrap(), 0);
        // A result ingest would refuse (an unknown probe, one not assigned) marks nothing either.
        let refused = [late_down("nope", 1, W45 + HOUR), late_down("web-tcp", 2, NOW + 3_600_000)];
        assert_eq!(note_results(&f.records, &f.config, "a1", &refused, NOW).unwrap(), 0);
        assert!(f.records.restatements().unwrap().is_empty());
    }

    #[test]
    fn a_touch_that_changes_nothing_leaves_no_mark_and_no_pending_restatement() {
        let mut f = fixture();
        report(&f, "web-sla", "2026-W45", NOW);
        // Up results between the existing ones change no figure.
        let results: Vec<ProbeResult> = (0..30)
            .map(|i| ProbeResult {
                ok: true,
                error: None,
                ..late_down("web-tcp", 500 + i, W45 + 60 * HOUR + i as i64 * 60_000 + 1)
            })
            .collect();
        assert_eq!(note_results(&f.records, &f.config, "a1", &results, NOW).unwrap(), 1);
        for r in &results {
            f.src.add("web-tcp", "a1", r.at, None, 0);
        }
        assert_eq!(recompute_marked(&f.records, &f.src, NOW + 60_000).unwrap(), 1);
        assert!(f.records.restatements().unwrap().is_empty(), "found unchanged, the mark goes");
        assert_eq!(report(&f, "web-sla", "2026-W45", NOW + 2 * 60_000)["restatement_pending"], Value::Null);
        let _ = &mut f;
    }

    #[test]
    fn a_maintenance_change_on_a_dependency_marks_the_dependent_agreements_closed_periods() {
        let f = fixture();
        let c = &f.config.catalogue;
        // A window over the last day of W45 and the first hour of W46, on psp.
        let (from, to) = (W45 + 6 * 24 * HOUR, W45 + WEEK + HOUR);
        let touched = closed_periods_touched(c, "psp", from, to, NOW);
        // web depends on psp: its closed week W45 (W46 is open); psp's own November is open.
        assert_eq!(touched, vec![("web-sla".to_string(), "2026-W45".to_string())]);
        // Months later, every closed period the range overlaps.
        let later = W45 + 10 * WEEK;
        let touched = closed_periods_touched(c, "psp", from, to, later);
        assert_eq!(
            touched,
            [("web-sla", "2026-W45"), ("web-sla", "2026-W46"), ("psp-uc", "2026-11")]
                .map(|(a, l)| (a.to_string(), l.to_string()))
                .to_vec()
        );
        assert_eq!(mark_touched(&f.records, c, "web", from, to, Reason::Maintenance, NOW).unwrap(), 1);
        assert_eq!(mark_touched(&f.records, c, "web", from, to, Reason::Maintenance, NOW + 1).unwrap(), 1);
        let mark = mark_of(&f.records, "web-sla", "2026-W45").unwrap().unwrap();
        assert_eq!((mark.since_ms, mark.touches), (NOW, 2), "since the first touch");
        assert_eq!(mark.reasons, BTreeSet::from([Reason::Maintenance]));
    }

    #[test]
    fn a_touch_during_a_restatement_keeps_its_mark_for_the_next_computation() {
        let mut f = fixture();
        report(&f, "web-sla", "2026-W45", NOW);
        ingest_late_hour(&mut f, "web-tcp", NOW);
        recompute_marked(&f.records, &f.src, NOW).unwrap();
        let seen = mark_of(&f.records, "web-sla", "2026-W45").unwrap();
        // A maintenance change arrives between the restatement's read and its write.
        mark_touched(&f.records, &f.config.catalogue, "web", W45, W45 + HOUR, Reason::Maintenance, NOW + 1).unwrap();
        clear_after_restatement(&f.records, "web-sla", "2026-W45", seen.as_ref()).unwrap();
        let kept = mark_of(&f.records, "web-sla", "2026-W45").unwrap().unwrap();
        assert_eq!((kept.touches, kept.computed.is_none()), (2, true), "{kept:?}");
        assert_eq!(kept.reasons, BTreeSet::from([Reason::LateResults, Reason::Maintenance]));
    }
}
