//! The JSON shapes of SPEC §8: what the read API answers and what `summary.json` in an
//! evidence bundle holds, mapped from the report and availability types (which carry no
//! serde by design, so the arithmetic never bends to a wire format). Field names are the
//! SPEC's; instants are RFC 3339 (`probity_config::time`).
//!
//! **Rounding, once, here.** Every number is rounded to what it means: seconds and
//! milliseconds figures to the millisecond or microsecond they were measured in (3
//! decimals), percentages and burn rates to 6 decimals. An availability, coverage or
//! compliance percentage is *truncated* from its exact integer fraction, so the printed figure never
//! claims more than was measured and never reads as meeting a target (given to 6 decimals
//! or fewer) that `met` says was missed.

use std::collections::BTreeMap;

use probity_config::time::rfc3339;
use probity_config::wire::ErrorKind;
use probity_config::{AgreementKind, UnknownPolicy};
use serde::Serialize;
use utoipa::ToSchema;

use crate::availability::{Attribution, BurnRates, FigureMillis, Figures, OutageReport};
use crate::availability::{StateRun, Step};
use crate::period::Period;
use crate::report::{
    AgreementReport, Compliance, ComplianceLine, LatencyPoint, LatencyReport, LatencySeries, LatencySummary,
    MaintenanceWindow, MaintenanceWindowReport, ServiceAvailability, ServiceStateTimeline,
};

/// A report and the JSON it is shown as: `serde_json::to_value(report.view())`.
pub trait View {
    type View<'a>: Serialize
    where
        Self: 'a;
    fn view(&self) -> Self::View<'_>;
}

impl View for AgreementReport {
    type View<'a> = AgreementReportView<'a>;
    fn view(&self) -> AgreementReportView<'_> {
        AgreementReportView::from(self)
    }
}

impl View for ServiceAvailability {
    type View<'a> = ServiceAvailabilityView<'a>;
    fn view(&self) -> ServiceAvailabilityView<'_> {
        ServiceAvailabilityView::from(self)
    }
}

impl View for LatencySummary {
    type View<'a> = LatencySummaryView<'a>;
    fn view(&self) -> LatencySummaryView<'_> {
        LatencySummaryView::from(self)
    }
}

impl View for Compliance {
    type View<'a> = ComplianceView<'a>;
    fn view(&self) -> ComplianceView<'_> {
        ComplianceView::from(self)
    }
}

impl View for ServiceStateTimeline {
    type View<'a> = TimelineView<'a>;
    fn view(&self) -> TimelineView<'_> {
        TimelineView {
            service: &self.service,
            calendar: &self.calendar,
            timezone: &self.timezone,
            period: PeriodView::from(&self.period),
            runs: self.runs.iter().map(StateRunView::from).collect(),
            outages: self.outages.iter().map(OutageView::from).collect(),
            maintenance: self.maintenance.iter().map(MaintenanceWindowView::from).collect(),
            agents: self
                .agents
                .iter()
                .map(|(probe, agent, c)| AgentCoverageView {
                    probe,
                    agent,
                    monitored_seconds: c.known_ms as f64 / 1000.0,
                    coverage_percent: (c.base_ms > 0).then(|| percent_floor(c.known_ms, c.base_ms)),
                })
                .collect(),
        }
    }
}

impl View for LatencySeries {
    type View<'a> = LatencySeriesView<'a>;
    fn view(&self) -> LatencySeriesView<'_> {
        LatencySeriesView {
            service: &self.service,
            calendar: &self.calendar,
            timezone: &self.timezone,
            period: PeriodView::from(&self.period),
            step: match self.step {
                Step::Hour => "hour",
                Step::Day => "day",
            },
            points: self.points.iter().map(LatencyPointView::from).collect(),
        }
    }
}

/// `GET /api/v1/services/{id}/timeline`: the period's state runs, contiguous from
/// `period.from` to `period.to`.
#[derive(Serialize, ToSchema)]
pub struct TimelineView<'a> {
    service: &'a str,
    calendar: &'a str,
    timezone: &'a str,
    period: PeriodView<'a>,
    runs: Vec<StateRunView<'a>>,
    outages: Vec<OutageView<'a>>,
    maintenance: Vec<MaintenanceWindowView<'a>>,
    /// Per (probe, agent): the part of base its view was known (null without base).
    agents: Vec<AgentCoverageView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct AgentCoverageView<'a> {
    probe: &'a str,
    agent: &'a str,
    monitored_seconds: f64,
    coverage_percent: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct StateRunView<'a> {
    start: String,
    end: String,
    #[schema(value_type = StateName)]
    state: &'static str,
    seconds: f64,
    /// Down runs only: the outage's reasons (kind: count) and its true edges.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<&'a BTreeMap<ErrorKind, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outage: Option<EdgesView>,
}

#[derive(Serialize, ToSchema)]
struct EdgesView {
    start: String,
    end: String,
}

#[derive(Serialize, ToSchema)]
struct MaintenanceWindowView<'a> {
    id: &'a str,
    start: String,
    end: String,
    reason: &'a str,
}

/// `GET /api/v1/services/{id}/latency/series`.
#[derive(Serialize, ToSchema)]
pub struct LatencySeriesView<'a> {
    service: &'a str,
    calendar: &'a str,
    timezone: &'a str,
    period: PeriodView<'a>,
    #[schema(value_type = StepName)]
    step: &'static str,
    points: Vec<LatencyPointView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct LatencyPointView<'a> {
    start: String,
    end: String,
    count: u64,
    max_ms: Option<f64>,
    percentiles: BTreeMap<&'a str, Option<f64>>,
}

impl<'a> From<&'a StateRun> for StateRunView<'a> {
    fn from(r: &'a StateRun) -> Self {
        let down = r.outage.is_some();
        StateRunView {
            start: rfc3339(r.start_ms),
            end: rfc3339(r.end_ms),
            state: r.state.as_str(),
            seconds: thousandths(r.length_ms() as f64 / 1000.0),
            reasons: down.then_some(&r.reasons),
            outage: r.outage.map(|(start, end)| EdgesView { start: rfc3339(start), end: rfc3339(end) }),
        }
    }
}

impl<'a> From<&'a MaintenanceWindow> for MaintenanceWindowView<'a> {
    fn from(m: &'a MaintenanceWindow) -> Self {
        MaintenanceWindowView { id: &m.id, start: rfc3339(m.start_ms), end: rfc3339(m.end_ms), reason: &m.reason }
    }
}

impl<'a> From<&'a LatencyPoint> for LatencyPointView<'a> {
    fn from(p: &'a LatencyPoint) -> Self {
        LatencyPointView {
            start: rfc3339(p.start_ms),
            end: rfc3339(p.end_ms),
            count: p.count,
            max_ms: p.max_ms.map(thousandths),
            percentiles: p.percentiles.iter().map(|(k, v)| (k.as_str(), v.map(thousandths))).collect(),
        }
    }
}

/// The names a verdict is shown as (SPEC §7); the views hold them as `&'static str`, and
/// these enums give the OpenAPI document their closed set.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum VerdictName {
    Met,
    Breached,
    InsufficientData,
}

/// A service's or a state run's state (SPEC §7).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StateName {
    Up,
    Down,
    Unknown,
}

/// A latency series' step.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum StepName {
    Hour,
    Day,
}

/// `GET /api/v1/agreements/{id}/report` and `summary.json`.
#[derive(Serialize, ToSchema)]
pub struct AgreementReportView<'a> {
    agreement: &'a str,
    kind: AgreementKind,
    service: &'a str,
    counterparty: &'a str,
    calendar: &'a str,
    unknown_policy: UnknownPolicy,
    period: PeriodView<'a>,
    #[serde(flatten)]
    figures: FiguresView<'a>,
    latency: Option<LatencyReportView>,
    min_coverage_percent: f64,
    #[schema(value_type = VerdictName)]
    verdict: &'static str,
    /// True for met, false for breached, JSON null for insufficient data.
    met: Option<bool>,
    attributed_downtime: Vec<AttributionView<'a>>,
    maintenance_windows: Vec<MaintenanceWindowReportView<'a>>,
}

/// One of a report's `maintenance_windows` (SPEC §11), also a row of `maintenance.csv`.
#[derive(Serialize, ToSchema)]
pub struct MaintenanceWindowReportView<'a> {
    pub id: &'a str,
    pub start: String,
    pub end: String,
    pub counted_seconds: f64,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    pub declared_at: String,
    pub declared_by: &'a str,
    pub retroactive: bool,
    /// JSON null when the agreement sets no `maintenance_notice`.
    pub notice_met: Option<bool>,
}

/// `GET /api/v1/maintenance`.
#[derive(Serialize, ToSchema)]
pub struct MaintenanceListView<'a> {
    pub windows: Vec<MaintenanceRecordView<'a>>,
}

/// A maintenance record as `GET /api/v1/maintenance` and the writes answer it (SPEC §11).
#[derive(Serialize, ToSchema)]
pub struct MaintenanceRecordView<'a> {
    id: &'a str,
    services: &'a [String],
    start: String,
    end: String,
    reason: &'a str,
    ticket: Option<&'a str>,
    declared_at: String,
    declared_by: &'a str,
    retroactive: bool,
    cancelled: bool,
    cancelled_at: Option<String>,
    cancelled_by: Option<&'a str>,
    /// Every change, oldest first, as stored.
    history: &'a [crate::maintenance::Change],
}

impl<'a> From<&'a crate::maintenance::Window> for MaintenanceRecordView<'a> {
    fn from(w: &'a crate::maintenance::Window) -> Self {
        MaintenanceRecordView {
            id: &w.id,
            services: &w.services,
            start: rfc3339(w.start_ms),
            end: rfc3339(w.end_ms),
            reason: &w.reason,
            ticket: w.ticket.as_deref(),
            declared_at: rfc3339(w.declared_at_ms),
            declared_by: &w.declared_by,
            retroactive: w.retroactive(),
            cancelled: w.cancelled.is_some(),
            cancelled_at: w.cancelled.as_ref().map(|(at, _)| rfc3339(*at)),
            cancelled_by: w.cancelled.as_ref().map(|(_, by)| by.as_str()),
            history: &w.history,
        }
    }
}

impl<'a> From<&'a MaintenanceWindowReport> for MaintenanceWindowReportView<'a> {
    fn from(w: &'a MaintenanceWindowReport) -> Self {
        MaintenanceWindowReportView {
            id: &w.id,
            start: rfc3339(w.start_ms),
            end: rfc3339(w.end_ms),
            counted_seconds: thousandths(w.counted_seconds),
            reason: &w.reason,
            ticket: w.ticket.as_deref(),
            declared_at: rfc3339(w.declared_at_ms),
            declared_by: &w.declared_by,
            retroactive: w.retroactive,
            notice_met: w.notice_met,
        }
    }
}

/// `GET /api/v1/services/{id}/availability`.
#[derive(Serialize, ToSchema)]
pub struct ServiceAvailabilityView<'a> {
    service: &'a str,
    calendar: &'a str,
    period: PeriodView<'a>,
    #[serde(flatten)]
    figures: FiguresView<'a>,
}

/// `GET /api/v1/services/{id}/latency`.
#[derive(Serialize, ToSchema)]
pub struct LatencySummaryView<'a> {
    service: &'a str,
    period: PeriodView<'a>,
    count: u64,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    mean_ms: Option<f64>,
    percentiles: BTreeMap<&'a str, Option<f64>>,
}

/// `GET /api/v1/compliance`.
#[derive(Serialize, ToSchema)]
pub struct ComplianceView<'a> {
    agreements: Vec<ComplianceLineView<'a>>,
    met: usize,
    breached: usize,
    insufficient_data: usize,
    compliance_rate_percent: Option<f64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ComplianceLineView<'a> {
    agreement: &'a str,
    kind: AgreementKind,
    service: &'a str,
    counterparty: &'a str,
    period: PeriodView<'a>,
    availability_percent: Option<f64>,
    target_percent: f64,
    downtime_seconds: f64,
    error_budget_seconds: Option<f64>,
    error_budget_remaining_seconds: Option<f64>,
    burn_rate: Option<BurnRatesView>,
    latency_met: Option<bool>,
    coverage_percent: Option<f64>,
    unknown_seconds: f64,
    #[schema(value_type = VerdictName)]
    verdict: &'static str,
    /// JSON null when there is not enough data for a verdict.
    met: Option<bool>,
}

/// A period as every report and the bundle's manifest show it.
#[derive(Serialize, ToSchema)]
pub struct PeriodView<'a> {
    label: &'a str,
    from: String,
    to: String,
    complete: bool,
    /// `open`, `settling` or `closed` (SPEC §10): set by the history layer on every report
    /// and compliance line it answers; absent from what `views` alone writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<PeriodStateName>)]
    state: Option<&'static str>,
}

/// A period's state (SPEC §10).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PeriodStateName {
    Open,
    Settling,
    Closed,
}

/// The SPEC §7 / §8 figures; the target fields only when there is a target.
#[derive(Serialize, ToSchema)]
struct FiguresView<'a> {
    service_hours_seconds: f64,
    maintenance_seconds: f64,
    unknown_seconds: f64,
    downtime_seconds: f64,
    agreed_service_seconds: f64,
    /// JSON null when there is no agreed service time.
    availability_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_budget_remaining_seconds: Option<f64>,
    /// JSON null when base is empty. (The figures' own `met` is not shown: an agreement
    /// report's is its verdict's.)
    coverage_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    burn_rate: Option<BurnRatesView>,
    outages: Vec<OutageView<'a>>,
}

#[derive(Serialize, ToSchema)]
struct OutageView<'a> {
    start: String,
    end: String,
    duration_seconds: f64,
    counted_seconds: f64,
    probes: &'a [String],
    agents: &'a [String],
    reasons: &'a BTreeMap<ErrorKind, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributed_to: Option<Vec<AttributionView<'a>>>,
    ongoing: bool,
}

#[derive(Serialize, ToSchema)]
struct AttributionView<'a> {
    service: &'a str,
    counted_seconds: f64,
}

#[derive(Serialize, ToSchema)]
struct BurnRatesView {
    last_1h: Option<f64>,
    last_6h: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct LatencyReportView {
    percentile: f64,
    target_ms: f64,
    achieved_ms: Option<f64>,
    samples: u64,
    met: Option<bool>,
}

impl<'a> From<&'a AgreementReport> for AgreementReportView<'a> {
    fn from(r: &'a AgreementReport) -> Self {
        AgreementReportView {
            agreement: &r.agreement,
            kind: r.kind,
            service: &r.service,
            counterparty: &r.counterparty,
            calendar: &r.calendar,
            unknown_policy: r.unknown_policy,
            period: PeriodView::from(&r.period),
            figures: FiguresView::from(&r.figures),
            latency: r.latency.as_ref().map(LatencyReportView::from),
            min_coverage_percent: millionths(r.min_coverage_percent),
            verdict: r.verdict.as_str(),
            met: r.met,
            attributed_downtime: r.attributed_downtime.iter().map(AttributionView::from).collect(),
            maintenance_windows: r.maintenance_windows.iter().map(MaintenanceWindowReportView::from).collect(),
        }
    }
}

impl<'a> From<&'a ServiceAvailability> for ServiceAvailabilityView<'a> {
    fn from(a: &'a ServiceAvailability) -> Self {
        ServiceAvailabilityView {
            service: &a.service,
            calendar: &a.calendar,
            period: PeriodView::from(&a.period),
            figures: FiguresView::from(&a.figures),
        }
    }
}

impl<'a> From<&'a LatencySummary> for LatencySummaryView<'a> {
    fn from(l: &'a LatencySummary) -> Self {
        LatencySummaryView {
            service: &l.service,
            period: PeriodView::from(&l.period),
            count: l.count,
            min_ms: l.min_ms.map(thousandths),
            max_ms: l.max_ms.map(thousandths),
            mean_ms: l.mean_ms.map(thousandths),
            percentiles: l.percentiles.iter().map(|(k, v)| (k.as_str(), v.map(thousandths))).collect(),
        }
    }
}

impl<'a> From<&'a Compliance> for ComplianceView<'a> {
    fn from(c: &'a Compliance) -> Self {
        let total = c.agreements.len() as i64;
        ComplianceView {
            agreements: c.agreements.iter().map(ComplianceLineView::from).collect(),
            met: c.met,
            breached: c.breached,
            insufficient_data: c.insufficient_data,
            compliance_rate_percent: (total > 0).then(|| percent_floor(c.met as i64, total)),
        }
    }
}

impl<'a> From<&'a ComplianceLine> for ComplianceLineView<'a> {
    fn from(l: &'a ComplianceLine) -> Self {
        ComplianceLineView {
            agreement: &l.agreement,
            kind: l.kind,
            service: &l.service,
            counterparty: &l.counterparty,
            period: PeriodView::from(&l.period),
            availability_percent: availability_percent(&l.millis),
            target_percent: millionths(l.target_percent),
            downtime_seconds: thousandths(l.downtime_seconds),
            error_budget_seconds: l.error_budget_seconds.map(thousandths),
            error_budget_remaining_seconds: l.error_budget_remaining_seconds.map(thousandths),
            burn_rate: l.burn_rate.as_ref().map(BurnRatesView::from),
            latency_met: l.latency_met,
            coverage_percent: coverage_percent(&l.millis),
            unknown_seconds: thousandths(l.unknown_seconds),
            verdict: l.verdict.as_str(),
            met: l.met,
        }
    }
}

impl<'a> From<&'a Period> for PeriodView<'a> {
    fn from(p: &'a Period) -> Self {
        PeriodView {
            label: &p.label,
            from: rfc3339(p.from_ms),
            to: rfc3339(p.to_ms),
            complete: p.complete,
            state: None,
        }
    }
}

impl<'a> From<&'a Figures> for FiguresView<'a> {
    fn from(f: &'a Figures) -> Self {
        FiguresView {
            service_hours_seconds: thousandths(f.service_hours_seconds),
            maintenance_seconds: thousandths(f.maintenance_seconds),
            unknown_seconds: thousandths(f.unknown_seconds),
            downtime_seconds: thousandths(f.downtime_seconds),
            agreed_service_seconds: thousandths(f.agreed_service_seconds),
            availability_percent: availability_percent(&f.millis),
            target_percent: f.target_percent.map(millionths),
            error_budget_seconds: f.error_budget_seconds.map(thousandths),
            error_budget_remaining_seconds: f.error_budget_remaining_seconds.map(thousandths),
            coverage_percent: coverage_percent(&f.millis),
            burn_rate: f.burn_rate.as_ref().map(BurnRatesView::from),
            outages: f.outages.iter().map(OutageView::from).collect(),
        }
    }
}

impl<'a> From<&'a OutageReport> for OutageView<'a> {
    fn from(o: &'a OutageReport) -> Self {
        OutageView {
            start: rfc3339(o.start_ms),
            end: rfc3339(o.end_ms),
            duration_seconds: thousandths(o.duration_seconds),
            counted_seconds: thousandths(o.counted_seconds),
            probes: &o.probes,
            agents: &o.agents,
            reasons: &o.reasons,
            attributed_to: o.attributed_to.as_ref().map(|a| a.iter().map(AttributionView::from).collect()),
            ongoing: o.ongoing,
        }
    }
}

impl<'a> From<&'a Attribution> for AttributionView<'a> {
    fn from(a: &'a Attribution) -> Self {
        AttributionView { service: &a.service, counted_seconds: thousandths(a.counted_seconds) }
    }
}

impl From<&BurnRates> for BurnRatesView {
    fn from(b: &BurnRates) -> Self {
        BurnRatesView { last_1h: b.last_1h.map(millionths), last_6h: b.last_6h.map(millionths) }
    }
}

impl From<&LatencyReport> for LatencyReportView {
    fn from(l: &LatencyReport) -> Self {
        LatencyReportView {
            percentile: millionths(l.percentile),
            target_ms: thousandths(l.target_ms),
            achieved_ms: l.achieved_ms.map(thousandths),
            samples: l.samples,
            met: l.met,
        }
    }
}

/// A seconds or milliseconds figure to 3 decimals (the millisecond, or the microsecond).
fn thousandths(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// A percentage or a ratio to 6 decimals.
fn millionths(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// The availability of SPEC §7 from the exact milliseconds, truncated to 6 decimals.
fn availability_percent(m: &FigureMillis) -> Option<f64> {
    (m.agreed_ms > 0).then(|| percent_floor(m.agreed_ms - m.downtime_ms, m.agreed_ms))
}

/// SPEC §7's coverage from the exact milliseconds, truncated to 6 decimals.
fn coverage_percent(m: &FigureMillis) -> Option<f64> {
    (m.base_ms > 0).then(|| percent_floor(m.base_ms - m.unknown_ms, m.base_ms))
}

/// `100 · part / whole`, truncated to 6 decimals in exact integer arithmetic, so that
/// e.g. 99.89999997 % reads 99.899999 and not 99.9. `whole > 0`, `0 <= part <= whole`.
pub fn percent_floor(part: i64, whole: i64) -> f64 {
    let millionths = (100_000_000_i128 * i128::from(part)).div_euclid(i128::from(whole));
    millionths as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use probity_config::calendar::Calendar;
    use probity_config::parse_collector_config;

    use super::*;
    use crate::availability::{self, FiguresSpec, ProbeViews, ServiceInput};
    use crate::period::PeriodQuery;
    use crate::report::{self, memory::MemorySource};
    use crate::runs::ViewRun;

    /// Fails on any number in `json` with more decimals than its key means: 3 for
    /// `…_seconds` and `…_ms`, 6 for everything else that is not an integer.
    pub(crate) fn assert_rounded(json: &serde_json::Value) {
        fn walk(key: &str, v: &serde_json::Value, path: &str) {
            match v {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        walk(k, v, &format!("{path}.{k}"));
                    }
                }
                serde_json::Value::Array(items) => {
                    for (i, v) in items.iter().enumerate() {
                        walk(key, v, &format!("{path}[{i}]"));
                    }
                }
                serde_json::Value::Number(n) => {
                    let text = n.to_string();
                    assert!(!text.contains(['e', 'E']), "{path} = {text} is in exponent form");
                    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
                    let allowed = if key.ends_with("_seconds") || key.ends_with("_ms") { 3 } else { 6 };
                    assert!(
                        decimals <= allowed,
                        "{path} = {text} has {decimals} decimals, at most {allowed} mean anything"
                    );
                }
                _ => {}
            }
        }
        walk("", json, "$");
    }

    const CONFIG: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"

[[services]]
id = "shop"
  [[services.probes]]
  id = "shop-http"
  kind = "tcp"
  target = "127.0.0.1:80"
  interval = "10s"
  timeout = "5s"

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
availability = 99.9
latency = { percentile = 99.9, max = "30ms" }

[[agreements]]
id = "shop-ola"
kind = "ola"
service = "shop"
availability = 10.0
"#;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn regression_json_numbers_are_rounded_to_what_they_mean_on_every_report() {
        // An hour with 7 of 360 results down, at odd milliseconds, durations spread over
        // 1 µs..50 ms: the exact availability and the mean latency have a dozen digits, and
        // none of them may reach the JSON (it read `65.03589611686475` before).
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let mut src = MemorySource::new(&c);
        for i in 0..360 {
            let down = (i % 53 == 0).then_some(ErrorKind::Timeout);
            src.add("shop-http", "a1", T0 + i * 10_000 + i % 7, down, 1 + (i as u64 * 7919) % 50_000);
        }
        let (from, to) = ("2026-01-01T00:00:00Z".to_string(), "2026-01-01T00:59:59.999Z".to_string());
        let q = PeriodQuery { period: None, from: Some(&from), to: Some(&to), max_period: None };
        let now = T0 + 7_200_000;

        let inputs = report::ResolvedAgreement::resolve(&c, "shop-sla", q, now).unwrap();
        let r = report::agreement_report(&src, &inputs).unwrap();
        let exact = r.figures.availability_percent.unwrap();
        assert!(format!("{exact}").len() > 12, "the case must have an unrounded figure: {exact}");
        let json = serde_json::to_value(AgreementReportView::from(&r)).unwrap();
        assert_rounded(&json);
        let shown = json["availability_percent"].as_f64().unwrap();
        assert!(shown <= exact && exact - shown < 1e-6, "{shown} is {exact} truncated");
        assert!(json["burn_rate"]["last_1h"].is_number(), "{json}");

        let a = report::service_availability(&src, &c, "shop", None, q, now).unwrap();
        assert_rounded(&serde_json::to_value(ServiceAvailabilityView::from(&a)).unwrap());
        let percentiles = report::parse_percentiles(Some("50,99.9")).unwrap();
        let l = report::service_latency(&src, &c, "shop", None, q, &percentiles, now).unwrap();
        assert!(format!("{}", l.mean_ms.unwrap()).len() > 10, "{:?}", l.mean_ms);
        assert_rounded(&serde_json::to_value(LatencySummaryView::from(&l)).unwrap());
        let comp = report::compliance(&src, &c, q, now).unwrap();
        let json = serde_json::to_value(ComplianceView::from(&comp)).unwrap();
        assert_rounded(&json);
        assert_eq!(json["compliance_rate_percent"], 50.0);
    }

    #[test]
    fn a_truncated_availability_never_reads_as_meeting_a_missed_target() {
        // 99.9 % of agreed time less one millisecond: missed, and shown below 99.9.
        let agreed = 1_000_000_000;
        let m = FigureMillis { agreed_ms: agreed, downtime_ms: agreed / 1000 + 1, ..FigureMillis::default() };
        let shown = availability_percent(&m).unwrap();
        assert_eq!(shown, 99.899999);
        assert_eq!(percent_floor(999, 1000), 99.9);
        assert_eq!(percent_floor(2, 3), 66.666666);
        assert_eq!(percent_floor(1, 1), 100.0);
        assert_eq!(availability_percent(&FigureMillis::default()), None);
    }

    #[test]
    fn json_uses_the_spec_field_names_and_rfc3339_instants() {
        let t0 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
        let minute = 60_000;
        let runs = vec![
            ViewRun { start: t0, end: t0 + 10 * minute, down: None },
            ViewRun { start: t0 + 10 * minute, end: t0 + 20 * minute, down: Some(ErrorKind::CertExpiry) },
            ViewRun { start: t0 + 20 * minute, end: t0 + 60 * minute, down: None },
        ];
        let input = ServiceInput {
            probes: vec![ProbeViews { probe: "p", quorum: 1, agents: vec![("a", runs)] }],
            min_outage_ms: 0,
        };
        let timeline = availability::service_timeline(&input, t0, t0 + 60 * minute);
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.5),
        };
        let f = availability::compute(&timeline, &spec, t0, t0 + 60 * minute);
        let json = serde_json::to_value(FiguresView::from(&f)).unwrap();
        for key in [
            "service_hours_seconds",
            "maintenance_seconds",
            "unknown_seconds",
            "downtime_seconds",
            "agreed_service_seconds",
            "availability_percent",
            "target_percent",
            "error_budget_seconds",
            "error_budget_remaining_seconds",
            "coverage_percent",
            "burn_rate",
            "outages",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        // An agreement report's `met` is its verdict's, not the availability target's alone.
        assert!(json.get("met").is_none(), "{json}");
        assert_eq!(json["coverage_percent"], 100.0);
        let outage = &json["outages"][0];
        assert_eq!(outage["start"], "2026-11-02T00:10:00Z");
        assert_eq!(outage["end"], "2026-11-02T00:20:00Z");
        assert_eq!(outage["duration_seconds"], 600.0);
        assert_eq!(outage["counted_seconds"], 600.0);
        assert_eq!(outage["probes"], serde_json::json!(["p"]));
        assert_eq!(outage["agents"], serde_json::json!(["a"]));
        assert_eq!(outage["reasons"], serde_json::json!({"cert_expiry": 1}));
        assert!(outage.get("attributed_to").is_none(), "{outage}");
        assert_eq!(outage["ongoing"], false);
        // Without a target the target fields are left out (GET …/availability).
        let plain =
            availability::compute(&timeline, &FiguresSpec { target_percent: None, ..spec }, t0, t0 + 60 * minute);
        let plain = serde_json::to_value(FiguresView::from(&plain)).unwrap();
        assert!(plain.get("met").is_none() && plain.get("error_budget_seconds").is_none(), "{plain}");
        assert!(plain.get("burn_rate").is_none() && plain.get("target_percent").is_none(), "{plain}");
    }

    #[test]
    fn availability_is_null_when_there_is_no_agreed_time() {
        let f = Figures {
            service_hours_seconds: 60.0,
            maintenance_seconds: 0.0,
            unknown_seconds: 60.0,
            downtime_seconds: 0.0,
            agreed_service_seconds: 0.0,
            availability_percent: None,
            target_percent: None,
            error_budget_seconds: None,
            error_budget_remaining_seconds: None,
            met: None,
            coverage_percent: Some(0.0),
            burn_rate: None,
            outages: Vec::new(),
            millis: FigureMillis {
                service_hours_ms: 60_000,
                base_ms: 60_000,
                unknown_ms: 60_000,
                ..Default::default()
            },
            base: Vec::new(),
        };
        let json = serde_json::to_value(FiguresView::from(&f)).unwrap();
        assert!(json["availability_percent"].is_null(), "{json}");
    }

    #[test]
    fn a_period_shows_its_label_and_rfc3339_bounds() {
        let p = Period {
            label: "2026-11".into(),
            from_ms: 1_793_577_600_000,
            to_ms: 1_793_577_600_250,
            complete: false,
            end_ms: 1_796_083_200_000,
        };
        let json = serde_json::to_value(PeriodView::from(&p)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"label": "2026-11", "from": "2026-11-02T00:00:00Z", "to": "2026-11-02T00:00:00.25Z", "complete": false})
        );
    }
}
