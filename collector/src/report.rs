//! Reports of SPEC §8: storage's view runs and latency histograms, through
//! `availability`, into the JSON service owners and supplier managers read. Storage is
//! behind the small `ReportSource` trait so reports are tested against an in-memory source.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use probity_config::calendar::Calendar;
use probity_config::{Agreement, AgreementKind, Catalogue, Service, UnknownPolicy};

use crate::availability::{
    self, Attribution, FigureMillis, Figures, FiguresSpec, Interval, LatencyOutcome, ProbeViews, ServiceInput,
    ServiceTimeline, State, Verdict, VerdictSpec,
};
use crate::maintenance::Window;
use crate::period::{self, Period, PeriodError, PeriodQuery};
use crate::runs::ViewRun;

/// A storage failure while reading for a report (our fault: a 500).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// What reports need from storage.
pub trait ReportSource {
    /// The view runs of one (probe, agent) that overlap `[from_ms, to_ms)`, sorted.
    fn view_runs(&self, probe: &str, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<ViewRun>, SourceError>;
    /// Successful results' durations (µs) of a probe, all agents merged, over the minutes
    /// whose start lies in `minute_ranges` (see `availability::latency_minute_ranges`).
    fn latency(&self, probe: &str, minute_ranges: &[Interval]) -> Result<Histogram<u64>, SourceError>;
    /// The maintenance windows covering a service, cancelled ones included (SPEC §11:
    /// records, whether declared in the configuration file or through the API).
    fn maintenance(&self, service: &str) -> Result<Vec<Window>, SourceError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("unknown agreement \"{0}\"")]
    UnknownAgreement(String),
    #[error("unknown service \"{0}\"")]
    UnknownService(String),
    #[error("unknown calendar \"{0}\"; defined: {1}")]
    UnknownCalendar(String, String),
    #[error("{0}")]
    Period(#[from] PeriodError),
    #[error("{0}")]
    BadParameter(String),
    #[error("reading storage: {0}")]
    Source(SourceError),
}

/// The latency part of an agreement report.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyReport {
    pub percentile: f64,
    pub target_ms: f64,
    /// `None` when no successful result fell in agreed service time.
    pub achieved_ms: Option<f64>,
    pub samples: u64,
    pub met: Option<bool>,
}

/// `GET /api/v1/agreements/{id}/report` (and `summary.json` in evidence).
#[derive(Clone, Debug)]
pub struct AgreementReport {
    pub agreement: String,
    pub kind: AgreementKind,
    pub service: String,
    pub counterparty: String,
    pub calendar: String,
    pub unknown_policy: UnknownPolicy,
    pub period: Period,
    pub figures: Figures,
    pub latency: Option<LatencyReport>,
    /// `min_coverage` of the agreement.
    pub min_coverage_percent: f64,
    /// SPEC §7's verdict over availability, coverage and latency.
    pub verdict: Verdict,
    /// True for met, false for breached, JSON null for insufficient data.
    pub met: Option<bool>,
    /// Per dependency (direct or further down): the part of `downtime_seconds` during which
    /// that dependency was down too.
    pub attributed_downtime: Vec<Attribution>,
    /// The service's windows that meet the period's service hours, as they count for this
    /// agreement (SPEC §11).
    pub maintenance_windows: Vec<MaintenanceWindowReport>,
    /// The maintenance that counted for this agreement, as handed to the arithmetic (the
    /// daily rows of evidence are computed with it too).
    pub maintenance_counted: Vec<Interval>,
}

/// One maintenance window as an agreement report lists it (SPEC §11 `maintenance_windows`).
#[derive(Clone, Debug, PartialEq)]
pub struct MaintenanceWindowReport {
    pub id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The part of the window inside the period's service hours that counts as maintenance.
    pub counted_seconds: f64,
    pub reason: String,
    pub ticket: Option<String>,
    pub declared_at_ms: i64,
    pub declared_by: String,
    pub retroactive: bool,
    /// `None` when the agreement sets no `maintenance_notice`.
    pub notice_met: Option<bool>,
}

/// `GET /api/v1/services/{id}/availability`.
#[derive(Clone, Debug)]
pub struct ServiceAvailability {
    pub service: String,
    pub calendar: String,
    pub period: Period,
    pub figures: Figures,
}

/// `GET /api/v1/services/{id}/latency`.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencySummary {
    pub service: String,
    pub period: Period,
    pub count: u64,
    pub min_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub percentiles: BTreeMap<String, Option<f64>>,
}

/// One line of `GET /api/v1/compliance`.
#[derive(Clone, Debug)]
pub struct ComplianceLine {
    pub agreement: String,
    pub kind: AgreementKind,
    pub service: String,
    pub counterparty: String,
    pub period: Period,
    pub availability_percent: Option<f64>,
    pub target_percent: f64,
    pub downtime_seconds: f64,
    pub error_budget_seconds: Option<f64>,
    pub error_budget_remaining_seconds: Option<f64>,
    /// The burn rates of the report (the dashboard's overview shows them).
    pub burn_rate: Option<availability::BurnRates>,
    pub latency_met: Option<bool>,
    pub coverage_percent: Option<f64>,
    pub unknown_seconds: f64,
    pub verdict: Verdict,
    /// JSON null when there is not enough data for a verdict.
    pub met: Option<bool>,
    /// The exact figures behind `availability_percent` and `coverage_percent`, for their
    /// rounding in `views`.
    pub millis: FigureMillis,
}

#[derive(Clone, Debug)]
pub struct Compliance {
    pub agreements: Vec<ComplianceLine>,
    pub met: usize,
    pub breached: usize,
    pub insufficient_data: usize,
    /// `None` when there are no agreements.
    pub compliance_rate_percent: Option<f64>,
}

/// A service's maintenance windows as they count under `notice_ms` (`None`: whole) over
/// `[from, to)`: the counted intervals for the arithmetic, and the windows a report lists
/// (those that meet the period's service hours and are not cancelled).
pub fn counted_maintenance(
    windows: &[Window],
    notice_ms: Option<i64>,
    calendar: &Calendar,
    from: i64,
    to: i64,
) -> (Vec<Interval>, Vec<MaintenanceWindowReport>) {
    let inputs: Vec<_> = windows.iter().map(Window::input).collect();
    let figures = availability::window_figures(&inputs, notice_ms, calendar, from, to);
    let counted = figures.iter().flat_map(|f| f.counted.iter().copied()).collect();
    let listed = windows
        .iter()
        .zip(&figures)
        .filter(|(w, f)| w.cancelled.is_none() && f.in_service_hours)
        .map(|(w, f)| MaintenanceWindowReport {
            id: w.id.clone(),
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            counted_seconds: f.counted_ms as f64 / 1000.0,
            reason: w.reason.clone(),
            ticket: w.ticket.clone(),
            declared_at_ms: w.declared_at_ms,
            declared_by: w.declared_by.clone(),
            retroactive: f.retroactive,
            notice_met: f.notice_met,
        })
        .collect();
    (counted, listed)
}

/// A service's maintenance as it counts without a notice rule (availability and latency
/// queries, which have no agreement).
fn whole_maintenance(
    source: &dyn ReportSource,
    service: &str,
    calendar: &Calendar,
    period: &Period,
) -> Result<Vec<Interval>, ReportError> {
    let windows = source.maintenance(service).map_err(ReportError::Source)?;
    Ok(counted_maintenance(&windows, None, calendar, period.from_ms, period.to_ms).0)
}

/// A service's state timeline over `[from, to)` from stored view runs.
pub fn service_timeline(
    source: &dyn ReportSource,
    service: &Service,
    from: i64,
    to: i64,
) -> Result<ServiceTimeline, ReportError> {
    let mut probes = Vec::with_capacity(service.probes.len());
    for p in &service.probes {
        let mut agents = Vec::with_capacity(p.agents.len());
        for a in &p.agents {
            let runs = source.view_runs(p.id.as_str(), a.as_str(), from, to).map_err(ReportError::Source)?;
            agents.push((a.as_str(), runs));
        }
        probes.push(ProbeViews { probe: p.id.as_str(), quorum: p.quorum, agents });
    }
    let input = ServiceInput { probes, min_outage_ms: service.min_outage.as_millis() as i64 };
    Ok(availability::service_timeline(&input, from, to))
}

/// A service's state now and since when (within the last week and `min_outage`).
pub fn current_state(source: &dyn ReportSource, service: &Service, now: i64) -> Result<(State, i64), ReportError> {
    let (from, _) = availability::context_window(now, now, service.min_outage.as_millis() as i64, now);
    let timeline = service_timeline(source, service, from, now)?;
    Ok(match timeline.current() {
        Some(seg) => (seg.state, seg.start),
        None => (State::Unknown, now),
    })
}

/// The latency histogram of a service's probes over the minutes whose start lies in `base`.
pub fn service_latency_histogram(
    source: &dyn ReportSource,
    service: &Service,
    base: &[Interval],
) -> Result<Histogram<u64>, ReportError> {
    let ranges = availability::latency_minute_ranges(base);
    let mut merged = new_histogram();
    for p in &service.probes {
        let h = source.latency(p.id.as_str(), &ranges).map_err(ReportError::Source)?;
        merged.add(&h).map_err(|e| ReportError::Source(Box::new(e)))?;
    }
    Ok(merged)
}

/// An empty histogram with the collector's settings: µs, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

/// Everything an agreement report (and its evidence) is computed from, looked up once per
/// request from one catalogue snapshot (ripgrep's `LowArgs` → `HiArgs`): nothing below
/// looks the agreement, its service, calendar or period up again.
#[derive(Clone, Debug)]
pub struct ResolvedAgreement<'c> {
    /// The catalogue version in force for the request (dependencies). Maintenance is not
    /// the catalogue's: its records are read through the `ReportSource`.
    pub catalogue: &'c Catalogue,
    pub agreement: &'c Agreement,
    pub service: &'c Service,
    pub calendar: &'c Calendar,
    /// The period the query resolved to, in the agreement calendar's zone.
    pub period: Period,
    /// The window the service timeline is built over (see `availability::context_window`).
    pub context: Interval,
}

impl<'c> ResolvedAgreement<'c> {
    /// Resolves `agreement_id` and the period `query` (default: the agreement's current period).
    pub fn resolve(
        catalogue: &'c Catalogue,
        agreement_id: &str,
        query: PeriodQuery<'_>,
        now: i64,
    ) -> Result<Self, ReportError> {
        let agreement =
            catalogue.agreement(agreement_id).ok_or_else(|| ReportError::UnknownAgreement(agreement_id.to_string()))?;
        Self::of(catalogue, agreement, query, now)
    }

    /// Resolves the period `query` for an agreement of `catalogue`.
    pub fn of(
        catalogue: &'c Catalogue,
        agreement: &'c Agreement,
        query: PeriodQuery<'_>,
        now: i64,
    ) -> Result<Self, ReportError> {
        let service = catalogue.service(agreement.service.as_str()).expect("validated reference");
        let calendar = catalogue.calendar(&agreement.calendar).expect("validated reference");
        let period = period::resolve(query, Some(agreement.period), &calendar.timezone, now)?;
        let context =
            availability::context_window(period.from_ms, period.to_ms, service.min_outage.as_millis() as i64, now);
        Ok(ResolvedAgreement { catalogue, agreement, service, calendar, period, context })
    }

    /// The agreement's notice for maintenance, in ms (`None`: windows count whole).
    pub fn maintenance_notice_ms(&self) -> Option<i64> {
        self.agreement.maintenance_notice.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// What the agreement's figures are measured against, with the maintenance that counts
    /// for it (`AgreementReport::maintenance_counted`).
    pub fn figures_spec<'s>(&'s self, maintenance: &'s [Interval]) -> FiguresSpec<'s> {
        FiguresSpec {
            calendar: self.calendar,
            maintenance,
            unknown: self.agreement.unknown,
            target_percent: Some(self.agreement.availability),
        }
    }
}

/// The agreement report over a resolved agreement and period.
pub fn agreement_report(
    source: &dyn ReportSource,
    inputs: &ResolvedAgreement<'_>,
) -> Result<AgreementReport, ReportError> {
    agreement_report_with_timeline(source, inputs).map(|(report, _)| report)
}

/// The agreement report and the service timeline it was computed from (evidence needs both).
pub fn agreement_report_with_timeline(
    source: &dyn ReportSource,
    inputs: &ResolvedAgreement<'_>,
) -> Result<(AgreementReport, ServiceTimeline), ReportError> {
    let ResolvedAgreement { catalogue, agreement, service, calendar, ref period, context: (cf, ct), .. } = *inputs;
    let timeline = service_timeline(source, service, cf, ct)?;
    let windows = source.maintenance(service.id.as_str()).map_err(ReportError::Source)?;
    let (maintenance_counted, maintenance_windows) =
        counted_maintenance(&windows, inputs.maintenance_notice_ms(), calendar, period.from_ms, period.to_ms);
    let spec = inputs.figures_spec(&maintenance_counted);
    let mut figures = availability::compute(&timeline, &spec, period.from_ms, period.to_ms);

    let latency = match &agreement.latency {
        None => None,
        Some(target) => {
            let h = service_latency_histogram(source, service, &figures.base)?;
            let samples = h.len();
            let achieved_ms = (samples > 0).then(|| h.value_at_quantile(target.percentile / 100.0) as f64 / 1000.0);
            let target_ms = target.max.as_micros() as f64 / 1000.0;
            Some(LatencyReport {
                percentile: target.percentile,
                target_ms,
                achieved_ms,
                samples,
                met: achieved_ms.map(|a| a <= target_ms),
            })
        }
    };
    let verdict = availability::verdict(
        &figures.millis,
        figures.availability_percent,
        &VerdictSpec {
            target_percent: agreement.availability,
            min_coverage_percent: agreement.min_coverage,
            latency: latency.as_ref().map(|l| LatencyOutcome {
                samples: l.samples,
                achieved_ms: l.achieved_ms,
                target_ms: l.target_ms,
            }),
        },
    );

    // Supplier attribution: each outage's counted part against each dependency's downtime.
    let mut dependencies = Vec::new();
    for dep in catalogue.dependencies_transitive(service.id.as_str()) {
        dependencies.push((dep.id.as_str(), service_timeline(source, dep, cf, ct)?));
    }
    let attributed_downtime = availability::attribute_downtime(&mut figures, &dependencies);

    let report = AgreementReport {
        agreement: agreement.id.to_string(),
        kind: agreement.kind,
        service: service.id.to_string(),
        counterparty: agreement.counterparty.clone(),
        calendar: calendar.id.clone(),
        unknown_policy: agreement.unknown,
        period: period.clone(),
        figures,
        latency,
        min_coverage_percent: agreement.min_coverage,
        verdict,
        met: verdict.met(),
        attributed_downtime,
        maintenance_windows,
        maintenance_counted,
    };
    Ok((report, timeline))
}

fn calendar<'c>(catalogue: &'c Catalogue, name: Option<&str>) -> Result<&'c Calendar, ReportError> {
    let name = name.unwrap_or(probity_config::calendar::ALWAYS);
    catalogue.calendar(name).ok_or_else(|| {
        let known: Vec<&str> = catalogue.calendars.keys().map(String::as_str).collect();
        ReportError::UnknownCalendar(name.to_string(), known.join(", "))
    })
}

/// The service, its calendar (default `24x7`) and the period (default: this month in the
/// calendar's zone) a service endpoint reads: what every one of them resolves first.
fn service_period<'c>(
    catalogue: &'c Catalogue,
    service_id: &str,
    calendar_name: Option<&str>,
    query: PeriodQuery<'_>,
    now: i64,
) -> Result<(&'c Service, &'c Calendar, Period), ReportError> {
    let service = catalogue.service(service_id).ok_or_else(|| ReportError::UnknownService(service_id.to_string()))?;
    let calendar = calendar(catalogue, calendar_name)?;
    let period = period::resolve(query, Some(probity_config::PeriodKind::Month), &calendar.timezone, now)?;
    Ok((service, calendar, period))
}

/// Service availability without targets (default calendar `24x7`, unknown time excluded).
pub fn service_availability(
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    service_id: &str,
    calendar_name: Option<&str>,
    query: PeriodQuery<'_>,
    now: i64,
) -> Result<ServiceAvailability, ReportError> {
    let (service, calendar, period) = service_period(catalogue, service_id, calendar_name, query, now)?;
    let (cf, ct) =
        availability::context_window(period.from_ms, period.to_ms, service.min_outage.as_millis() as i64, now);
    let timeline = service_timeline(source, service, cf, ct)?;
    let maintenance = whole_maintenance(source, service_id, calendar, &period)?;
    let spec =
        FiguresSpec { calendar, maintenance: &maintenance, unknown: UnknownPolicy::Exclude, target_percent: None };
    let figures = availability::compute(&timeline, &spec, period.from_ms, period.to_ms);
    Ok(ServiceAvailability { service: service_id.to_string(), calendar: calendar.id.clone(), period, figures })
}

/// Parses `percentiles=50,90,95,99` (default those four).
pub fn parse_percentiles(text: Option<&str>) -> Result<Vec<f64>, ReportError> {
    let Some(text) = text else { return Ok(vec![50.0, 90.0, 95.0, 99.0]) };
    text.split(',')
        .map(|p| {
            let p = p.trim();
            match p.parse::<f64>() {
                Ok(v) if v > 0.0 && v <= 100.0 => Ok(v),
                _ => Err(ReportError::BadParameter(format!(
                    "percentiles: \"{p}\" is not a percentile; give numbers in (0, 100] separated by commas, e.g. percentiles=50,95,99.9"
                ))),
            }
        })
        .collect()
}

/// Latency of a service's probes over a period (default calendar `24x7`).
pub fn service_latency(
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    service_id: &str,
    calendar_name: Option<&str>,
    query: PeriodQuery<'_>,
    percentiles: &[f64],
    now: i64,
) -> Result<LatencySummary, ReportError> {
    let (service, calendar, period) = service_period(catalogue, service_id, calendar_name, query, now)?;
    let maintenance = whole_maintenance(source, service_id, calendar, &period)?;
    let base = availability::coverage(calendar, &maintenance, period.from_ms, period.to_ms).base;
    let h = service_latency_histogram(source, service, &base)?;
    let ms = |us: u64| us as f64 / 1000.0;
    let count = h.len();
    let some = |v: f64| (count > 0).then_some(v);
    Ok(LatencySummary {
        service: service_id.to_string(),
        period,
        count,
        min_ms: some(ms(h.min())),
        max_ms: some(ms(h.max())),
        mean_ms: some(h.mean() / 1000.0),
        percentiles: percentiles
            .iter()
            .map(|p| (format!("p{}", trim_float(*p)), some(ms(h.value_at_quantile(p / 100.0)))))
            .collect(),
    })
}

/// `GET /api/v1/services/{id}/timeline`: the period as the dashboard's bar draws it.
#[derive(Clone, Debug)]
pub struct ServiceStateTimeline {
    pub service: String,
    pub calendar: String,
    /// The calendar's IANA zone, so a reader can show the edges in it.
    pub timezone: String,
    pub period: Period,
    pub runs: Vec<availability::StateRun>,
    /// The outages that overlap base, as in the availability figures.
    pub outages: Vec<availability::OutageReport>,
    /// The service's maintenance windows that overlap the period, whole.
    pub maintenance: Vec<MaintenanceWindow>,
    /// Per (probe, agent), in catalogue order: how much of base its view covered.
    pub agents: Vec<(String, String, availability::ViewCoverage)>,
}

/// A maintenance window (a record, not cancelled), as the timeline lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaintenanceWindow {
    pub id: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub reason: String,
}

/// The state runs of a service over a period in a calendar (default `24x7`): up, down (with
/// reasons), unknown, maintenance and outside service hours, from the same timeline and
/// coverage the availability figures use.
pub fn service_state_timeline(
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    service_id: &str,
    calendar_name: Option<&str>,
    query: PeriodQuery<'_>,
    now: i64,
) -> Result<ServiceStateTimeline, ReportError> {
    let (service, calendar, period) = service_period(catalogue, service_id, calendar_name, query, now)?;
    let (cf, ct) =
        availability::context_window(period.from_ms, period.to_ms, service.min_outage.as_millis() as i64, now);
    let timeline = service_timeline(source, service, cf, ct)?;
    let windows = source.maintenance(service_id).map_err(ReportError::Source)?;
    let maintenance = counted_maintenance(&windows, None, calendar, period.from_ms, period.to_ms).0;
    let coverage = availability::coverage(calendar, &maintenance, period.from_ms, period.to_ms);
    let runs = availability::state_runs(&timeline, &coverage, period.from_ms, period.to_ms);
    let spec =
        FiguresSpec { calendar, maintenance: &maintenance, unknown: UnknownPolicy::Exclude, target_percent: None };
    let outages = availability::compute(&timeline, &spec, period.from_ms, period.to_ms).outages;
    let (from, to) = (period.from_ms, period.to_ms);
    let mut agents = Vec::new();
    for p in &service.probes {
        for a in &p.agents {
            let runs = source.view_runs(p.id.as_str(), a.as_str(), from, to).map_err(ReportError::Source)?;
            agents.push((p.id.to_string(), a.to_string(), availability::view_coverage(&runs, &coverage.base)));
        }
    }
    let maintenance = windows
        .iter()
        .filter(|w| w.cancelled.is_none())
        .map(|w| MaintenanceWindow {
            id: w.id.clone(),
            start_ms: w.start_ms,
            end_ms: w.end_ms,
            reason: w.reason.clone(),
        })
        .filter(|m| m.start_ms < to && m.end_ms > from)
        .collect();
    Ok(ServiceStateTimeline {
        service: service_id.to_string(),
        calendar: calendar.id.clone(),
        timezone: calendar.timezone_name.clone(),
        period,
        runs,
        outages,
        maintenance,
        agents,
    })
}

/// A latency series longer than this is refused: ask for `step=day` or a shorter period.
pub const MAX_SERIES_POINTS: usize = 1_500;

/// `GET /api/v1/services/{id}/latency/series`: latency percentiles per hour or local day.
#[derive(Clone, Debug)]
pub struct LatencySeries {
    pub service: String,
    pub calendar: String,
    pub timezone: String,
    pub period: Period,
    pub step: availability::Step,
    pub points: Vec<LatencyPoint>,
}

/// One bucket of a latency series: successful results of the service's probes (all agents
/// merged) over the minutes whose start lies in the bucket's part of base.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyPoint {
    pub start_ms: i64,
    pub end_ms: i64,
    pub count: u64,
    pub max_ms: Option<f64>,
    pub percentiles: BTreeMap<String, Option<f64>>,
}

/// Parses `step=hour|day`; without it, hours for a period of up to 7 days, else days.
pub fn parse_step(text: Option<&str>) -> Result<Option<availability::Step>, ReportError> {
    match text {
        None => Ok(None),
        Some("hour") => Ok(Some(availability::Step::Hour)),
        Some("day") => Ok(Some(availability::Step::Day)),
        Some(other) => {
            Err(ReportError::BadParameter(format!("step: \"{other}\" is not a step; use step=hour or step=day")))
        }
    }
}

/// The latency percentiles of a service's probes per step of a period (default calendar
/// `24x7`), from the HDR histograms (µs, 3 significant digits) through `ReportSource`.
#[allow(clippy::too_many_arguments)]
pub fn latency_series(
    source: &dyn ReportSource,
    catalogue: &Catalogue,
    service_id: &str,
    calendar_name: Option<&str>,
    query: PeriodQuery<'_>,
    step: Option<availability::Step>,
    percentiles: &[f64],
    now: i64,
) -> Result<LatencySeries, ReportError> {
    let (service, calendar, period) = service_period(catalogue, service_id, calendar_name, query, now)?;
    let (from, to) = (period.from_ms, period.to_ms);
    let step =
        step.unwrap_or(if availability::step_count(&calendar.timezone, availability::Step::Day, from, to) <= 7 {
            availability::Step::Hour
        } else {
            availability::Step::Day
        });
    let count = availability::step_count(&calendar.timezone, step, from, to);
    if count > MAX_SERIES_POINTS {
        return Err(ReportError::BadParameter(format!(
            "the period {} has {count} steps of a{}, more than {MAX_SERIES_POINTS}; ask for step=day or a shorter period",
            period.label,
            if step == availability::Step::Hour { "n hour" } else { " day" }
        )));
    }
    let maintenance = whole_maintenance(source, service_id, calendar, &period)?;
    let base = availability::coverage(calendar, &maintenance, from, to).base;
    let ms = |us: u64| us as f64 / 1000.0;
    let mut points = Vec::with_capacity(count);
    for bucket in availability::step_buckets(&base, &calendar.timezone, step, from, to) {
        let h = if bucket.base.is_empty() {
            new_histogram()
        } else {
            service_latency_histogram(source, service, &bucket.base)?
        };
        let n = h.len();
        let some = |v: f64| (n > 0).then_some(v);
        points.push(LatencyPoint {
            start_ms: bucket.start_ms,
            end_ms: bucket.end_ms,
            count: n,
            max_ms: some(ms(h.max())),
            percentiles: percentiles
                .iter()
                .map(|p| (format!("p{}", trim_float(*p)), some(ms(h.value_at_quantile(p / 100.0)))))
                .collect(),
        });
    }
    Ok(LatencySeries {
        service: service_id.to_string(),
        calendar: calendar.id.clone(),
        timezone: calendar.timezone_name.clone(),
        period,
        step,
        points,
    })
}

fn trim_float(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Every agreement's report over `query` (read in each agreement's calendar zone; its
/// current period when no period is given), in catalogue order.
pub fn agreement_reports(
    source: &(dyn ReportSource + Sync),
    catalogue: &Catalogue,
    query: PeriodQuery<'_>,
    now: i64,
) -> Vec<Result<AgreementReport, ReportError>> {
    // Agreements on the same service often share a period and calendar (an SLA and an OLA
    // on one service): the memo reads each timeline and histogram once. The agreements are
    // independent, so they are spread over the cores.
    let memo = MemoSource::new(source);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(catalogue.agreements.len().max(1));
    let chunk = catalogue.agreements.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = catalogue
            .agreements
            .chunks(chunk)
            .map(|agreements| {
                let memo = &memo;
                scope.spawn(move || {
                    agreements
                        .iter()
                        .map(|a| {
                            let inputs = ResolvedAgreement::of(catalogue, a, query, now)?;
                            agreement_report(memo, &inputs)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a report thread panicked")).collect()
    })
}

/// Every agreement's summary over `period` (read in each agreement's calendar zone), or
/// over each agreement's current period when no period is given.
pub fn compliance(
    source: &(dyn ReportSource + Sync),
    catalogue: &Catalogue,
    query: PeriodQuery<'_>,
    now: i64,
) -> Result<Compliance, ReportError> {
    let reports = agreement_reports(source, catalogue, query, now);
    let mut lines = Vec::with_capacity(catalogue.agreements.len());
    for (agreement, report) in catalogue.agreements.iter().zip(reports) {
        let report = report?;
        lines.push(ComplianceLine {
            coverage_percent: report.figures.coverage_percent,
            unknown_seconds: report.figures.unknown_seconds,
            verdict: report.verdict,
            agreement: report.agreement,
            kind: report.kind,
            service: report.service,
            counterparty: report.counterparty,
            period: report.period,
            availability_percent: report.figures.availability_percent,
            target_percent: agreement.availability,
            downtime_seconds: report.figures.downtime_seconds,
            error_budget_seconds: report.figures.error_budget_seconds,
            error_budget_remaining_seconds: report.figures.error_budget_remaining_seconds,
            burn_rate: report.figures.burn_rate,
            latency_met: report.latency.as_ref().and_then(|l| l.met),
            met: report.met,
            millis: report.figures.millis,
        });
    }
    Ok(Compliance::of(lines))
}

impl Compliance {
    /// Counts the verdicts: `compliance_rate_percent` = 100 × met / (met + breached +
    /// insufficient_data), so an agreement without enough data never counts as compliant.
    pub fn of(lines: Vec<ComplianceLine>) -> Compliance {
        let count = |v: Verdict| lines.iter().filter(|l| l.verdict == v).count();
        let (met, breached, insufficient_data) =
            (count(Verdict::Met), count(Verdict::Breached), count(Verdict::InsufficientData));
        let compliance_rate_percent = (!lines.is_empty()).then(|| 100.0 * met as f64 / lines.len() as f64);
        Compliance { agreements: lines, met, breached, insufficient_data, compliance_rate_percent }
    }
}

/// A `ReportSource` that remembers what it read, for one batch of reports over the same
/// data (compliance). Safe to share between threads.
struct MemoSource<'a> {
    inner: &'a (dyn ReportSource + Sync),
    runs: Memo<(String, String, i64, i64), Vec<ViewRun>>,
    latency: Memo<(String, Vec<Interval>), Histogram<u64>>,
    maintenance: Memo<String, Vec<Window>>,
}

type Memo<K, V> = std::sync::Mutex<std::collections::HashMap<K, V>>;

impl<'a> MemoSource<'a> {
    fn new(inner: &'a (dyn ReportSource + Sync)) -> Self {
        MemoSource { inner, runs: Default::default(), latency: Default::default(), maintenance: Default::default() }
    }
}

impl ReportSource for MemoSource<'_> {
    fn view_runs(&self, probe: &str, agent: &str, from_ms: i64, to_ms: i64) -> Result<Vec<ViewRun>, SourceError> {
        let key = (probe.to_string(), agent.to_string(), from_ms, to_ms);
        if let Some(hit) = self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let runs = self.inner.view_runs(probe, agent, from_ms, to_ms)?;
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).insert(key, runs.clone());
        Ok(runs)
    }

    fn latency(&self, probe: &str, minute_ranges: &[Interval]) -> Result<Histogram<u64>, SourceError> {
        let key = (probe.to_string(), minute_ranges.to_vec());
        if let Some(hit) = self.latency.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(hit.clone());
        }
        let h = self.inner.latency(probe, minute_ranges)?;
        self.latency.lock().unwrap_or_else(|e| e.into_inner()).insert(key, h.clone());
        Ok(h)
    }
    fn maintenance(&self, service: &str) -> Result<Vec<Window>, SourceError> {
        if let Some(hit) = self.maintenance.lock().unwrap_or_else(|e| e.into_inner()).get(service) {
            return Ok(hit.clone());
        }
        let windows = self.inner.maintenance(service)?;
        self.maintenance.lock().unwrap_or_else(|e| e.into_inner()).insert(service.to_string(), windows.clone());
        Ok(windows)
    }
}

/// An in-memory `ReportSource` built from raw results: the reference implementation the
/// store is tested against, and the source for tests that need no database.
pub mod memory {
    use std::collections::HashMap;

    use probity_config::wire::ErrorKind;

    use super::*;
    use crate::runs::{Observation, runs_from_observations};

    /// One stored result: at, down reason, duration in µs.
    type Row = (i64, Option<ErrorKind>, u64);

    #[derive(Default)]
    pub struct MemorySource {
        /// (probe, agent) → results in insertion order.
        results: HashMap<(String, String), Vec<Row>>,
        intervals: HashMap<String, i64>,
        windows: Vec<Window>,
    }

    impl MemorySource {
        /// A source holding the catalogue's file windows as records declared long before
        /// they began (the Unix epoch), so none is retroactive; `declare` adds others.
        pub fn new(catalogue: &Catalogue) -> Self {
            let intervals =
                catalogue.probes().map(|(_, p)| (p.id.to_string(), p.interval.as_millis() as i64)).collect();
            let windows = catalogue.maintenance.iter().map(|m| crate::maintenance::config_window(m, 0)).collect();
            MemorySource { results: HashMap::new(), intervals, windows }
        }

        /// Adds a maintenance record (replacing one with the same id).
        pub fn declare(&mut self, window: Window) {
            self.windows.retain(|w| w.id != window.id);
            self.windows.push(window);
        }

        pub fn add(&mut self, probe: &str, agent: &str, at: i64, down: Option<ErrorKind>, duration_us: u64) {
            self.results.entry((probe.to_string(), agent.to_string())).or_default().push((at, down, duration_us));
        }

        /// Every result of a probe as `(agent, at, down, duration_us)`, ordered by agent then time.
        pub fn results_of(&self, probe: &str) -> Vec<(String, i64, Option<ErrorKind>, u64)> {
            let mut out: Vec<_> = self
                .results
                .iter()
                .filter(|((p, _), _)| p == probe)
                .flat_map(|((_, a), rows)| rows.iter().map(move |&(at, down, us)| (a.clone(), at, down, us)))
                .collect();
            out.sort_by(|x, y| (&x.0, x.1).cmp(&(&y.0, y.1)));
            out
        }
    }

    impl ReportSource for MemorySource {
        fn view_runs(&self, probe: &str, agent: &str, from: i64, to: i64) -> Result<Vec<ViewRun>, SourceError> {
            let Some(rows) = self.results.get(&(probe.to_string(), agent.to_string())) else { return Ok(Vec::new()) };
            let mut obs: Vec<Observation> = rows.iter().map(|&(at, down, _)| Observation { at, down }).collect();
            obs.sort_by_key(|o| o.at);
            let interval = self.intervals.get(probe).copied().ok_or("unknown probe")?;
            Ok(runs_from_observations(&obs, interval).into_iter().filter(|r| r.end > from && r.start < to).collect())
        }

        fn latency(&self, probe: &str, ranges: &[Interval]) -> Result<Histogram<u64>, SourceError> {
            let mut h = new_histogram();
            for ((p, _), rows) in &self.results {
                if p != probe {
                    continue;
                }
                for &(at, down, us) in rows {
                    let minute = at.div_euclid(60_000) * 60_000;
                    if down.is_none() && ranges.iter().any(|&(a, b)| a <= minute && minute < b) {
                        h.record(us.max(1))?;
                    }
                }
            }
            Ok(h)
        }

        fn maintenance(&self, service: &str) -> Result<Vec<Window>, SourceError> {
            Ok(self.windows.iter().filter(|w| w.covers(service)).cloned().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use probity_config::parse_collector_config;
    use probity_config::wire::ErrorKind;

    use super::memory::MemorySource;
    use super::*;
    use crate::views::View;

    const CONFIG: &str = r#"
[[agents]]
id = "a1"
token_sha256 = "d55c1d98850de54a173aab14ae3856a62d5be7ba310987affead2b3eba90366a"
[[agents]]
id = "a2"
token_sha256 = "45a1dd6c277080bb4235a224bae6f90bf22ffeacc5dfa2dc963dc4024d40f117"
[[agents]]
id = "a3"
token_sha256 = "3cddf4bf21b77fda884ff521b65dbe98a5d516c330a26d8c346a6efefa214065"

[[services]]
id = "shop"
depends_on = ["psp"]
  [[services.probes]]
  id = "shop-http"
  kind = "tcp"
  target = "127.0.0.1:80"
  interval = "10s"
  timeout = "5s"
  quorum = 2

[[services]]
id = "psp"
  [[services.probes]]
  id = "psp-http"
  kind = "tcp"
  target = "127.0.0.1:81"
  interval = "10s"
  timeout = "5s"
  agents = ["a1"]

[[agreements]]
id = "shop-sla"
kind = "sla"
service = "shop"
availability = 99.0
latency = { percentile = 50, max = "30ms" }

[[agreements]]
id = "psp-uc"
kind = "uc"
service = "psp"
availability = 99.5
"#;

    const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    fn source(catalogue: &Catalogue) -> MemorySource {
        let mut src = MemorySource::new(catalogue);
        // One hour of results every 10 s from three agents; a1 and a2 see shop down from
        // 00:10 to 00:20 (a quorum of 2), a3 never does. psp is down 00:15-00:25.
        for i in 0..360 {
            let at = T0 + i * 10_000;
            let shop_down = (T0 + 600_000..T0 + 1_200_000).contains(&at);
            let psp_down = (T0 + 900_000..T0 + 1_500_000).contains(&at);
            for agent in ["a1", "a2"] {
                src.add("shop-http", agent, at, shop_down.then_some(ErrorKind::Timeout), 20_000);
            }
            src.add("shop-http", "a3", at, None, 40_000);
            src.add("psp-http", "a1", at, psp_down.then_some(ErrorKind::Connect), 10_000);
        }
        src
    }

    fn query(from: &str, to: &str) -> (String, String) {
        (from.to_string(), to.to_string())
    }

    #[test]
    fn an_agreement_report_has_exact_figures_latency_and_supplier_attribution() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let (f, t) = query("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
        let q = PeriodQuery { period: None, from: Some(&f), to: Some(&t), max_period: None };
        let inputs = ResolvedAgreement::resolve(&c, "shop-sla", q, T0 + 2 * HOUR).unwrap();
        let r = agreement_report(&src, &inputs).unwrap();
        assert_eq!(r.figures.downtime_seconds, 600.0);
        assert_eq!(r.figures.agreed_service_seconds, 3600.0);
        assert_eq!(r.figures.outages.len(), 1);
        // psp was down for the second half of shop's outage: 00:15-00:20.
        let attributed = r.figures.outages[0].attributed_to.as_ref().unwrap();
        assert_eq!(attributed.len(), 1);
        assert_eq!((attributed[0].service.as_str(), attributed[0].counted_seconds), ("psp", 300.0));
        assert_eq!(r.attributed_downtime[0].counted_seconds, 300.0);
        // Latency p50 over successful results: a3's 40 ms dominate only during the outage.
        let latency = r.latency.as_ref().unwrap();
        assert_eq!(latency.samples, 360 + 2 * 300);
        // HDR with 3 significant digits reports the top of the 20 ms bucket.
        let achieved = latency.achieved_ms.unwrap();
        assert!((20.0..=20.02).contains(&achieved), "{achieved}");
        assert_eq!(latency.met, Some(true));
        let json = serde_json::to_value(r.view()).unwrap();
        assert_eq!(json["outages"][0]["attributed_to"][0]["service"], "psp");
        assert_eq!(json["attributed_downtime"][0]["counted_seconds"], 300.0);
    }

    #[test]
    fn compliance_counts_met_and_breached_agreements() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let (f, t) = query("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
        let q = PeriodQuery { period: None, from: Some(&f), to: Some(&t), max_period: None };
        let comp = compliance(&src, &c, q, T0 + 2 * HOUR).unwrap();
        // shop: 600 s down of 3600 (83.3%) < 99; psp: 600 s down too.
        assert_eq!((comp.met, comp.breached, comp.insufficient_data), (0, 2, 0));
        assert_eq!(comp.compliance_rate_percent, Some(0.0));
        assert!(comp.agreements.iter().all(|l| l.met == Some(false) && l.coverage_percent == Some(100.0)));
    }

    /// The agreement report of `agreement` over `[from, to)` at `now`.
    fn report_over(
        src: &MemorySource,
        c: &Catalogue,
        agreement: &str,
        from: &str,
        to: &str,
        now: i64,
    ) -> AgreementReport {
        let q = PeriodQuery { period: None, from: Some(from), to: Some(to), max_period: None };
        agreement_report(src, &ResolvedAgreement::resolve(c, agreement, q, now).unwrap()).unwrap()
    }

    #[test]
    fn a_month_before_any_data_is_insufficient_data_not_met() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        // December 2025: the collector had no results yet.
        let q = PeriodQuery { period: Some("2025-12"), from: None, to: None, max_period: None };
        let r = agreement_report(&src, &ResolvedAgreement::resolve(&c, "psp-uc", q, T0 + 2 * HOUR).unwrap()).unwrap();
        assert_eq!(r.figures.unknown_seconds, 31.0 * 86_400.0);
        assert_eq!((r.figures.coverage_percent, r.figures.availability_percent), (Some(0.0), None));
        assert_eq!((r.verdict, r.met), (Verdict::InsufficientData, None));
        let json = serde_json::to_value(r.view()).unwrap();
        assert_eq!((json["verdict"].as_str(), json["met"].is_null()), (Some("insufficient_data"), true));
        assert_eq!(json["min_coverage_percent"], 90.0);
        // And compliance over that month counts it as neither met nor breached.
        let comp = compliance(&src, &c, q, T0 + 2 * HOUR).unwrap();
        assert_eq!((comp.met, comp.breached, comp.insufficient_data), (0, 0, 2));
        assert_eq!(comp.compliance_rate_percent, Some(0.0));
    }

    #[test]
    fn a_week_with_ten_percent_coverage_is_insufficient_data_under_every_unknown_policy() {
        // 16.8 hours of clean results in a week: 10 % coverage (the last result's view lasts
        // two intervals, so results stop 20 s before the monitored stretch ends).
        for policy in ["exclude", "up", "down"] {
            let text = CONFIG.replace("availability = 99.5", &format!("availability = 99.5\nunknown = \"{policy}\""));
            let c = parse_collector_config("t.toml", &text).unwrap().catalogue;
            let mut src = MemorySource::new(&c);
            for i in 0..6047 {
                src.add("psp-http", "a1", T0 + i * 10_000, None, 10_000);
            }
            let r = report_over(&src, &c, "psp-uc", "2026-01-01T00:00:00Z", "2026-01-08T00:00:00Z", T0 + 200 * HOUR);
            assert_eq!(r.figures.unknown_seconds, 0.9 * 7.0 * 86_400.0, "{policy}");
            assert_eq!(r.figures.coverage_percent, Some(10.0), "{policy}");
            assert_eq!((r.verdict, r.met), (Verdict::InsufficientData, None), "{policy}");
            // The availability figure still follows the policy: 100 % under exclude and up,
            // ~10 % under down; none of them is a verdict.
            let a = r.figures.availability_percent.unwrap();
            assert!(if policy == "down" { a < 11.0 } else { a == 100.0 }, "{policy}: {a}");
        }
    }

    #[test]
    fn latency_met_is_null_and_the_verdict_insufficient_without_samples() {
        // shop's only successful results are outside the window asked for: no latency samples.
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let mut src = MemorySource::new(&c);
        for i in 0..360 {
            for agent in ["a1", "a2", "a3"] {
                src.add("shop-http", agent, T0 + i * 10_000, Some(ErrorKind::Status), 1_000);
            }
        }
        // Every result failed: down all hour, so the measured breach wins (rule order).
        let r = report_over(&src, &c, "shop-sla", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z", T0 + 2 * HOUR);
        let latency = r.latency.as_ref().unwrap();
        assert_eq!((latency.samples, latency.met), (0, None));
        assert_eq!(r.verdict, Verdict::Breached);
    }

    #[test]
    fn an_outage_still_running_in_a_running_period_is_ongoing() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        // Now is 00:17, inside psp's outage (00:15-00:25).
        let now = T0 + 17 * 60_000;
        let q = PeriodQuery { period: None, from: None, to: None, max_period: None };
        let r = agreement_report(&src, &ResolvedAgreement::resolve(&c, "psp-uc", q, now).unwrap()).unwrap();
        let last = r.figures.outages.last().unwrap();
        assert!(last.ongoing && last.end_ms == now, "{:?}", r.figures.outages);
        let json = serde_json::to_value(r.view()).unwrap();
        assert_eq!(json["outages"][0]["ongoing"], true);
    }

    #[test]
    fn the_current_state_and_since_come_from_the_latest_segment() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let shop = c.service("shop").unwrap();
        let (state, since) = current_state(&src, shop, T0 + 1_800_000).unwrap();
        assert_eq!((state, since), (State::Up, T0 + 1_200_000));
        // Long after the last result everything is unknown, since results went stale.
        let (state, since) = current_state(&src, shop, T0 + 3 * HOUR).unwrap();
        assert_eq!((state, since), (State::Unknown, T0 + HOUR - 10_000 + 20_000));
    }

    #[test]
    fn service_latency_reports_requested_percentiles() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let (f, t) = query("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
        let q = PeriodQuery { period: None, from: Some(&f), to: Some(&t), max_period: None };
        let pcts = parse_percentiles(Some("50,99.9")).unwrap();
        let l = service_latency(&src, &c, "shop", None, q, &pcts, T0 + 2 * HOUR).unwrap();
        assert_eq!(l.count, 960);
        assert_eq!(l.percentiles.keys().cloned().collect::<Vec<_>>(), vec!["p50", "p99.9"]);
        assert!((l.max_ms.unwrap() - 40.0).abs() < 0.1);
        assert!(parse_percentiles(Some("0")).is_err());
        assert!(parse_percentiles(Some("abc")).unwrap_err().to_string().contains("e.g. percentiles=50,95,99.9"));
    }

    #[test]
    fn a_late_window_counts_for_an_sla_without_notice_but_not_for_a_uc_with_one() {
        let text = CONFIG.replace(
            "[[agreements]]\nid = \"psp-uc\"",
            "[[agreements]]\nid = \"psp-sla\"\nkind = \"sla\"\nservice = \"psp\"\navailability = 99.5\n\n[[agreements]]\nid = \"psp-uc\"\nmaintenance_notice = \"72h\"",
        );
        let c = parse_collector_config("t.toml", &text).unwrap().catalogue;
        let mut src = source(&c);
        // psp is down 00:15-00:25; a window 00:10-00:30 is declared at 00:20, retroactively.
        let change = crate::maintenance::Change {
            change: 1,
            action: crate::maintenance::Action::Declared,
            at: probity_config::time::rfc3339(T0 + 20 * 60_000),
            by: "ops".into(),
            note: None,
            services: vec!["psp".into()],
            start: probity_config::time::rfc3339(T0 + 10 * 60_000),
            end: probity_config::time::rfc3339(T0 + 30 * 60_000),
            reason: "card network".into(),
            ticket: Some("CHG-9".into()),
        };
        src.declare(Window::from_changes("late", vec![change]).unwrap());
        let (f, t) = ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z");
        let sla = report_over(&src, &c, "psp-sla", f, t, T0 + 2 * HOUR);
        assert_eq!((sla.figures.downtime_seconds, sla.figures.maintenance_seconds), (0.0, 1200.0));
        let w = &sla.maintenance_windows[0];
        assert_eq!((w.counted_seconds, w.retroactive, w.notice_met), (1200.0, true, None));
        let uc = report_over(&src, &c, "psp-uc", f, t, T0 + 2 * HOUR);
        assert_eq!((uc.figures.downtime_seconds, uc.figures.maintenance_seconds), (600.0, 0.0));
        let w = &uc.maintenance_windows[0];
        assert_eq!((w.counted_seconds, w.retroactive, w.notice_met), (0.0, true, Some(false)));
        let json = serde_json::to_value(uc.view()).unwrap();
        assert_eq!(json["maintenance_windows"][0]["declared_at"], "2026-01-01T00:20:00Z");
        assert_eq!(json["maintenance_windows"][0]["notice_met"], false);
        assert_eq!(json["maintenance_windows"][0]["ticket"], "CHG-9");
    }

    #[test]
    fn unknown_ids_and_calendars_are_named() {
        let c = parse_collector_config("t.toml", CONFIG).unwrap().catalogue;
        let src = source(&c);
        let q = PeriodQuery { period: Some("2026-01"), from: None, to: None, max_period: None };
        assert!(matches!(ResolvedAgreement::resolve(&c, "nope", q, T0), Err(ReportError::UnknownAgreement(_))));
        let err = service_availability(&src, &c, "shop", Some("office"), q, T0).unwrap_err();
        assert_eq!(err.to_string(), "unknown calendar \"office\"; defined: 24x7");
    }
}
