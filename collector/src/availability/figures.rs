//! The figures of SPEC §7 over a period: coverage (service hours, maintenance, base),
//! the seconds figures under an unknown policy, availability, error budget, burn rates and
//! the daily rows, all from a [`ServiceTimeline`].

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use probity_config::UnknownPolicy;
use probity_config::calendar::{Calendar, normalize, subtract};
use probity_config::time::local_midnight_ms;
use probity_config::wire::ErrorKind;

use super::intervals::{Interval, intersect, last_stretch_of, overlaps, total};
use super::timeline::{ServiceTimeline, State};

/// Burn-rate windows, in agreed service time.
pub const BURN_WINDOW_SHORT_MS: i64 = 3_600_000;
pub const BURN_WINDOW_LONG_MS: i64 = 6 * 3_600_000;

/// The windows `/metrics` exports burn rates over (`probity_agreement_burn_rate{window}`,
/// SPEC §14), by label: the SRE workbook's multi-window alerts pair a long window with a
/// short one (1h with 5m, 6h with 30m, 1d and 3d for tickets).
pub const BURN_WINDOWS: [(&str, i64); 6] = [
    ("5m", 5 * 60_000),
    ("30m", 30 * 60_000),
    ("1h", BURN_WINDOW_SHORT_MS),
    ("6h", BURN_WINDOW_LONG_MS),
    ("1d", 24 * 3_600_000),
    ("3d", 72 * 3_600_000),
];

/// What an agreement (or an availability query) measures against.
#[derive(Clone, Copy, Debug)]
pub struct FiguresSpec<'a> {
    pub calendar: &'a Calendar,
    /// Maintenance windows of the service, in any order, possibly overlapping.
    pub maintenance: &'a [Interval],
    pub unknown: UnknownPolicy,
    /// `None` for `GET …/availability` (figures without targets).
    pub target_percent: Option<f64>,
}

/// The sets of SPEC §7 over one period: service hours, the maintenance inside them, and
/// base = service hours minus maintenance. Latency counts the minutes whose start lies in
/// `base`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    pub service_hours: Vec<Interval>,
    pub maintenance: Vec<Interval>,
    pub base: Vec<Interval>,
}

/// The exact figures in milliseconds, before they are shown as seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FigureMillis {
    pub service_hours_ms: i64,
    pub maintenance_ms: i64,
    pub base_ms: i64,
    /// |base ∩ unknown|, whatever the policy.
    pub unknown_ms: i64,
    /// |base ∩ down|, plus `unknown_ms` under `unknown = "down"`.
    pub downtime_ms: i64,
    pub agreed_ms: i64,
}

/// One listed outage, as reports and evidence show it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutageReport {
    pub start_ms: i64,
    pub end_ms: i64,
    pub duration_seconds: f64,
    pub counted_seconds: f64,
    pub counted_ms: i64,
    pub probes: Vec<String>,
    pub agents: Vec<String>,
    pub reasons: BTreeMap<ErrorKind, u64>,
    /// Filled by agreement reports: the dependencies that were down during the counted part.
    pub attributed_to: Option<Vec<Attribution>>,
    /// Still running at the end of a running period (its `end` is then the period's `to`).
    pub ongoing: bool,
}

/// Downtime of a service that overlaps downtime of one of its dependencies.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    pub service: String,
    pub counted_seconds: f64,
    pub counted_ms: i64,
}

/// Error-budget burn rates over the last hour and six hours of agreed service time ending
/// at the period's end: 1.0 spends the budget exactly evenly, above 1.0 faster.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurnRates {
    pub last_1h: Option<f64>,
    pub last_6h: Option<f64>,
    /// Over each of [`BURN_WINDOWS`], in its order (the same arithmetic as the two above).
    pub windows: [Option<f64>; BURN_WINDOWS.len()],
}

/// The SPEC §7 / §8 figures of one service over one period.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub service_hours_seconds: f64,
    pub maintenance_seconds: f64,
    pub unknown_seconds: f64,
    pub downtime_seconds: f64,
    pub agreed_service_seconds: f64,
    /// `None` (JSON null) when there is no agreed service time.
    pub availability_percent: Option<f64>,
    pub target_percent: Option<f64>,
    pub error_budget_seconds: Option<f64>,
    pub error_budget_remaining_seconds: Option<f64>,
    /// 100 × monitored base / base (SPEC §7), whatever the unknown policy; `None` when base
    /// is empty.
    pub coverage_percent: Option<f64>,
    /// The availability target alone (availability >= target, true without agreed time).
    /// Not shown (`views`): an agreement report's `met` is its [`super::Verdict`]'s, which
    /// also weighs coverage and latency.
    pub met: Option<bool>,
    pub burn_rate: Option<BurnRates>,
    pub outages: Vec<OutageReport>,
    pub millis: FigureMillis,
    /// Base of the period, kept for the latency figure.
    pub base: Vec<Interval>,
}

/// One local day of the calendar's zone (23, 24 or 25 hours long), clipped to the period.
/// The rows of a period sum to its totals.
#[derive(Clone, Debug, PartialEq)]
pub struct DailyRow {
    pub date: Date,
    pub service_hours_seconds: f64,
    pub maintenance_seconds: f64,
    pub unknown_seconds: f64,
    pub downtime_seconds: f64,
    pub availability_percent: Option<f64>,
    pub millis: FigureMillis,
}

/// Service hours, maintenance and base over `[from, to)`.
pub fn coverage(calendar: &Calendar, maintenance: &[Interval], from: i64, to: i64) -> Coverage {
    let service_hours = calendar.service_intervals(from, to);
    let maintenance_all = normalize(maintenance.iter().copied().filter(|(a, b)| a < b).collect());
    let maintenance = intersect(&service_hours, &maintenance_all);
    let base = subtract(&service_hours, &maintenance);
    Coverage { service_hours, maintenance, base }
}

/// The figures of SPEC §7 over the period `[from, to)`. `timeline` should cover the
/// period (instants it does not cover count as unknown).
pub fn compute(timeline: &ServiceTimeline, spec: &FiguresSpec<'_>, from: i64, to: i64) -> Figures {
    let coverage = coverage(spec.calendar, spec.maintenance, from, to);
    let states = StateIntervals::of(timeline);
    let (millis, counted_down) = measure(&coverage, &states, spec.unknown);
    let availability_percent = availability_percent(&millis);

    let (mut target_percent, mut error_budget_seconds, mut error_budget_remaining_seconds) = (None, None, None);
    let (mut met, mut burn_rate) = (None, None);
    if let Some(target) = spec.target_percent {
        let budget_ms = error_budget_ms(millis.agreed_ms, target);
        target_percent = Some(target);
        error_budget_seconds = Some(budget_ms as f64 / 1000.0);
        error_budget_remaining_seconds = Some((budget_ms - millis.downtime_ms) as f64 / 1000.0);
        met = Some(availability_percent.is_none_or(|a| a >= target));
        let agreed = agreed_intervals(&coverage.base, &states.unknown, spec.unknown);
        burn_rate = Some(BurnRates {
            last_1h: burn_rate_over(&agreed, &counted_down, BURN_WINDOW_SHORT_MS, target),
            last_6h: burn_rate_over(&agreed, &counted_down, BURN_WINDOW_LONG_MS, target),
            windows: BURN_WINDOWS.map(|(_, window_ms)| burn_rate_over(&agreed, &counted_down, window_ms, target)),
        });
    }

    let outages = timeline
        .outages
        .iter()
        .filter_map(|o| {
            let counted_ms = total(&intersect(&coverage.base, &[(o.start_ms, o.end_ms)]));
            let overlaps_base = overlaps(&coverage.base, (o.start_ms, o.end_ms));
            overlaps_base.then(|| OutageReport {
                start_ms: o.start_ms,
                end_ms: o.end_ms,
                duration_seconds: (o.end_ms - o.start_ms) as f64 / 1000.0,
                counted_seconds: counted_ms as f64 / 1000.0,
                counted_ms,
                probes: o.probes.clone(),
                agents: o.agents.clone(),
                reasons: o.reasons.clone(),
                attributed_to: None,
                // The timeline stops at the period's end only when that end is now (a
                // running period), so a down run reaching it is still going on.
                ongoing: o.end_ms >= timeline.to_ms && timeline.to_ms == to,
            })
        })
        .collect();

    Figures {
        service_hours_seconds: seconds(millis.service_hours_ms),
        maintenance_seconds: seconds(millis.maintenance_ms),
        unknown_seconds: seconds(millis.unknown_ms),
        downtime_seconds: seconds(millis.downtime_ms),
        agreed_service_seconds: seconds(millis.agreed_ms),
        availability_percent,
        coverage_percent: super::verdict::coverage_percent(&millis),
        target_percent,
        error_budget_seconds,
        error_budget_remaining_seconds,
        met,
        burn_rate,
        outages,
        millis,
        base: coverage.base,
    }
}

/// One row per local day of the calendar's zone that overlaps `[from, to)`, each clipped to
/// the period; the rows' milliseconds sum exactly to [`compute`]'s.
pub fn daily_breakdown(timeline: &ServiceTimeline, spec: &FiguresSpec<'_>, from: i64, to: i64) -> Vec<DailyRow> {
    daily_rows(timeline, spec, from, to).collect()
}

/// [`daily_breakdown`]'s rows one at a time, each day computed when it is asked for, so a
/// long period's rows are never held together (evidence writes them as they come).
pub fn daily_rows<'a>(timeline: &ServiceTimeline, spec: &FiguresSpec<'a>, from: i64, to: i64) -> DailyRows<'a> {
    DailyRows {
        states: StateIntervals::of(timeline),
        spec: *spec,
        days: LocalDays::new(&spec.calendar.timezone, from, to),
    }
}

/// How many rows [`daily_rows`] yields: the local days of the calendar's zone that overlap
/// `[from, to)`, counted without computing their figures.
pub fn daily_row_count(spec: &FiguresSpec<'_>, from: i64, to: i64) -> usize {
    LocalDays::new(&spec.calendar.timezone, from, to).count()
}

/// The iterator [`daily_rows`] returns.
pub struct DailyRows<'a> {
    states: StateIntervals,
    spec: FiguresSpec<'a>,
    days: LocalDays<'a>,
}

impl Iterator for DailyRows<'_> {
    type Item = DailyRow;

    fn next(&mut self) -> Option<DailyRow> {
        let (date, day_start, day_end) = self.days.next()?;
        let coverage = coverage(self.spec.calendar, self.spec.maintenance, day_start, day_end);
        let (millis, _) = measure(&coverage, &self.states.within(day_start, day_end), self.spec.unknown);
        Some(DailyRow {
            date,
            service_hours_seconds: seconds(millis.service_hours_ms),
            maintenance_seconds: seconds(millis.maintenance_ms),
            unknown_seconds: seconds(millis.unknown_ms),
            downtime_seconds: seconds(millis.downtime_ms),
            availability_percent: availability_percent(&millis),
            millis,
        })
    }
}

/// The local days of a zone that overlap `[from, to)`: each date with its stretch, clipped.
pub(super) struct LocalDays<'a> {
    tz: &'a jiff::tz::TimeZone,
    to: i64,
    from: i64,
    date: Option<Date>,
}

impl<'a> LocalDays<'a> {
    pub(super) fn new(tz: &'a jiff::tz::TimeZone, from: i64, to: i64) -> Self {
        let date = Timestamp::from_millisecond(from).ok().filter(|_| from < to).map(|t| tz.to_datetime(t).date());
        LocalDays { tz, from, to, date }
    }
}

impl Iterator for LocalDays<'_> {
    type Item = (Date, i64, i64);

    fn next(&mut self) -> Option<(Date, i64, i64)> {
        loop {
            let date = self.date.take()?;
            let day_start = local_midnight_ms(self.tz, date).max(self.from);
            let next = date.tomorrow().ok()?;
            let day_end = local_midnight_ms(self.tz, next).min(self.to);
            if day_end < self.to {
                self.date = Some(next);
            }
            if day_start < day_end {
                return Some((date, day_start, day_end));
            }
        }
    }
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Both operands are exact integers, so the one division rounds correctly, and rounding is
/// monotonic: comparing the result with a target parsed from decimal text never flips a
/// verdict (exactly 99.9 % meets 99.9).
fn availability_percent(millis: &FigureMillis) -> Option<f64> {
    (millis.agreed_ms > 0).then(|| (100 * (millis.agreed_ms - millis.downtime_ms)) as f64 / millis.agreed_ms as f64)
}

/// Rounded to the millisecond like every other figure, so that 99.9 % of 1000 s is a
/// budget of 1 s and not 0.99999999999994 s.
fn error_budget_ms(agreed_ms: i64, target_percent: f64) -> i64 {
    (agreed_ms as f64 * (100.0 - target_percent) / 100.0).round() as i64
}

/// The timeline split by state; instants it does not cover count as unknown.
struct StateIntervals {
    down: Vec<Interval>,
    unknown: Vec<Interval>,
}

impl StateIntervals {
    fn of(timeline: &ServiceTimeline) -> StateIntervals {
        let covered = vec![(timeline.from_ms, timeline.to_ms)];
        let mut unknown = timeline.intervals(State::Unknown);
        unknown.extend(subtract(&[(i64::MIN, i64::MAX)], &covered));
        StateIntervals { down: timeline.intervals(State::Down), unknown: normalize(unknown) }
    }

    /// The intervals that overlap `[from, to)` (whole, not clipped), so a day's figures
    /// look at that day's stretch of the timeline only.
    fn within(&self, from: i64, to: i64) -> StateIntervals {
        let overlapping = |list: &[Interval]| {
            let first = list.partition_point(|iv| iv.1 <= from);
            let end = list.partition_point(|iv| iv.0 < to).max(first);
            list[first..end].to_vec()
        };
        StateIntervals { down: overlapping(&self.down), unknown: overlapping(&self.unknown) }
    }
}

/// The ms figures over a coverage, and the intervals counted as downtime.
fn measure(coverage: &Coverage, states: &StateIntervals, policy: UnknownPolicy) -> (FigureMillis, Vec<Interval>) {
    let base_ms = total(&coverage.base);
    let base_down = intersect(&coverage.base, &states.down);
    let base_unknown = intersect(&coverage.base, &states.unknown);
    let (down_ms, unknown_ms) = (total(&base_down), total(&base_unknown));
    let (agreed_ms, downtime_ms, counted_down) = match policy {
        UnknownPolicy::Exclude => (base_ms - unknown_ms, down_ms, base_down),
        UnknownPolicy::Up => (base_ms, down_ms, base_down),
        UnknownPolicy::Down => {
            let mut both = base_down;
            both.extend(base_unknown);
            (base_ms, down_ms + unknown_ms, normalize(both))
        }
    };
    let millis = FigureMillis {
        service_hours_ms: total(&coverage.service_hours),
        maintenance_ms: total(&coverage.maintenance),
        base_ms,
        unknown_ms,
        downtime_ms,
        agreed_ms,
    };
    (millis, counted_down)
}

fn agreed_intervals(base: &[Interval], unknown: &[Interval], policy: UnknownPolicy) -> Vec<Interval> {
    match policy {
        UnknownPolicy::Exclude => subtract(base, unknown),
        UnknownPolicy::Up | UnknownPolicy::Down => base.to_vec(),
    }
}

/// Burn rate over the last `window_ms` of agreed time (or all of it, if less): the share of
/// that time counted as down, relative to the share the budget allows. `None` without
/// agreed time, or with a 100 % target (no budget to burn).
fn burn_rate_over(agreed: &[Interval], counted_down: &[Interval], window_ms: i64, target: f64) -> Option<f64> {
    let allowed_share = (100.0 - target) / 100.0;
    if allowed_share <= 0.0 {
        return None;
    }
    let window = last_stretch_of(agreed, window_ms);
    let window_total = total(&window);
    if window_total == 0 {
        return None;
    }
    let down_ms = total(&intersect(&window, counted_down));
    Some((down_ms as f64 / window_total as f64) / allowed_share)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::fixtures::*;
    use crate::availability::timeline::{ServiceInput, context_window, service_timeline};
    use crate::runs::ViewRun;

    /// Figures over `[at(from), at(to))` on 24x7 without maintenance, the timeline built over
    /// exactly the period.
    fn figures_24x7(input: &ServiceInput<'_>, policy: UnknownPolicy, target: f64, from: i64, to: i64) -> Figures {
        let timeline = service_timeline(input, at(from), at(to));
        let calendar = Calendar::always();
        let spec = FiguresSpec { calendar: &calendar, maintenance: &[], unknown: policy, target_percent: Some(target) };
        compute(&timeline, &spec, at(from), at(to))
    }
    #[test]
    fn an_outage_running_at_the_end_of_a_running_period_is_ongoing() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 50), down(50, 90, ErrorKind::Timeout)])])], 0);
        // Running period: now is minute 60, the context stops there.
        let (from, to) = context_window(at(0), at(60), 0, at(60));
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.0),
        };
        let running = compute(&service_timeline(&input, from, to), &spec, at(0), at(60));
        assert_eq!(running.outages.len(), 1);
        assert!(running.outages[0].ongoing && running.outages[0].end_ms == at(60));
        // The same period seen later, once it ended: the outage ended after it, not ongoing.
        let (from, to) = context_window(at(0), at(60), 0, at(200));
        let ended = compute(&service_timeline(&input, from, to), &spec, at(0), at(60));
        assert!(!ended.outages[0].ongoing && ended.outages[0].end_ms == at(90));
    }

    #[test]
    fn min_outage_judges_a_down_run_whole_across_the_period_boundary() {
        // The run is 10 minutes, only 3 of them inside the period: still an outage.
        let input = service(vec![probe("p", 1, vec![("a", vec![down(-7, 3, ErrorKind::Dns), up(3, 60)])])], 5);
        let (ctx_from, ctx_to) = context_window(at(0), at(60), input.min_outage_ms, at(60));
        let timeline = service_timeline(&input, ctx_from, ctx_to);
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: None,
        };
        let figures = compute(&timeline, &spec, at(0), at(60));
        assert_eq!(figures.millis.downtime_ms, 3 * MINUTE);
        assert_eq!(figures.outages.len(), 1);
        assert_eq!((figures.outages[0].start_ms, figures.outages[0].end_ms), (at(-7), at(3)));
        assert_eq!(figures.outages[0].duration_seconds, 600.0);
        assert_eq!(figures.outages[0].counted_seconds, 180.0);
    }

    #[test]
    fn unknown_exclude_removes_unknown_time_from_agreed_service_time() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 30), down(30, 40, ErrorKind::Timeout)])])], 0);
        let f = figures_24x7(&input, UnknownPolicy::Exclude, 99.0, 0, 60);
        assert_eq!((f.unknown_seconds, f.downtime_seconds, f.agreed_service_seconds), (1200.0, 600.0, 2400.0));
        assert_eq!(f.availability_percent, Some(75.0));
    }

    #[test]
    fn unknown_up_counts_unmonitored_time_as_available() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 30), down(30, 40, ErrorKind::Timeout)])])], 0);
        let f = figures_24x7(&input, UnknownPolicy::Up, 99.0, 0, 60);
        assert_eq!((f.unknown_seconds, f.downtime_seconds, f.agreed_service_seconds), (1200.0, 600.0, 3600.0));
        let expected = 100.0 * 3000.0 / 3600.0;
        assert_eq!(f.availability_percent, Some(expected));
    }

    #[test]
    fn unknown_down_adds_unmonitored_time_to_downtime_but_lists_no_outage_for_it() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 30), down(30, 40, ErrorKind::Timeout)])])], 0);
        let f = figures_24x7(&input, UnknownPolicy::Down, 99.0, 0, 60);
        assert_eq!((f.unknown_seconds, f.downtime_seconds, f.agreed_service_seconds), (1200.0, 1800.0, 3600.0));
        assert_eq!(f.availability_percent, Some(50.0));
        assert_eq!(f.outages.len(), 1);
        assert_eq!(f.outages[0].counted_seconds, 600.0);
    }

    #[test]
    fn maintenance_is_excluded_from_base_and_counted_only_inside_service_hours() {
        // London business hours, Monday 2026-11-02 (GMT): 08:00-18:00 UTC.
        let calendar = calendar("Europe/London", &["mon-fri 08:00-18:00"], &[]);
        let input = service(vec![probe("p", 1, vec![("a", vec![down(0, 24 * 60, ErrorKind::Connect)])])], 0);
        let timeline = service_timeline(&input, at(0), at(24 * 60));
        // Maintenance 17:00-20:00: one hour of it in service hours.
        let maintenance = [(at(17 * 60), at(20 * 60))];
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &maintenance,
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.9),
        };
        let f = compute(&timeline, &spec, at(0), at(24 * 60));
        assert_eq!(f.service_hours_seconds, 36_000.0);
        assert_eq!(f.maintenance_seconds, 3_600.0);
        assert_eq!(f.downtime_seconds, 32_400.0);
        assert_eq!(f.agreed_service_seconds, 32_400.0);
        assert_eq!(f.base, vec![(at(8 * 60), at(17 * 60))]);
        assert_eq!(f.availability_percent, Some(0.0));
        assert_eq!(f.met, Some(false));
    }

    #[test]
    fn outages_keep_their_true_start_and_end_and_count_only_the_part_in_base() {
        let calendar = calendar("UTC", &["mon-fri 08:00-18:00"], &[]);
        let input = service(
            vec![probe(
                "p",
                1,
                vec![("a", vec![up(0, 7 * 60), down(7 * 60, 9 * 60, ErrorKind::Timeout), up(9 * 60, 24 * 60)])],
            )],
            0,
        );
        let timeline = service_timeline(&input, at(0), at(24 * 60));
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: None,
        };
        let f = compute(&timeline, &spec, at(0), at(24 * 60));
        assert_eq!(f.outages.len(), 1);
        let o = &f.outages[0];
        assert_eq!(
            (o.start_ms, o.end_ms, o.duration_seconds, o.counted_seconds),
            (at(7 * 60), at(9 * 60), 7200.0, 3600.0)
        );
    }

    #[test]
    fn outages_wholly_outside_service_hours_or_inside_maintenance_are_not_listed() {
        use ErrorKind::Timeout;
        let calendar = calendar("UTC", &["mon-fri 08:00-18:00"], &[]);
        let input = service(
            vec![probe(
                "p",
                1,
                vec![(
                    "a",
                    vec![
                        down(0, 60, Timeout), // night: outside service hours
                        up(60, 10 * 60),
                        down(10 * 60, 11 * 60, Timeout), // inside maintenance
                        up(11 * 60, 24 * 60),
                    ],
                )],
            )],
            0,
        );
        let timeline = service_timeline(&input, at(0), at(24 * 60));
        assert_eq!(timeline.outages.len(), 2);
        let maintenance = [(at(9 * 60), at(12 * 60))];
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &maintenance,
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.0),
        };
        let f = compute(&timeline, &spec, at(0), at(24 * 60));
        assert!(f.outages.is_empty(), "{:?}", f.outages);
        assert_eq!(f.downtime_seconds, 0.0);
        assert_eq!(f.availability_percent, Some(100.0));
    }

    #[test]
    fn availability_is_null_when_there_is_no_agreed_time() {
        // All unknown under "exclude": no agreed time, nothing can breach the target.
        let input = service(vec![probe("p", 1, vec![("a", vec![])])], 0);
        let f = figures_24x7(&input, UnknownPolicy::Exclude, 99.9, 0, 60);
        assert_eq!(f.agreed_service_seconds, 0.0);
        assert_eq!(f.availability_percent, None);
        assert_eq!(f.met, Some(true));
        assert_eq!(f.error_budget_seconds, Some(0.0));
        assert_eq!(f.burn_rate, Some(BurnRates { last_1h: None, last_6h: None, windows: [None; BURN_WINDOWS.len()] }));
    }

    #[test]
    fn error_budget_goes_negative_once_spent() {
        // 1000 s agreed at 99.9 %: 1 s of budget; 3 s down.
        let input = service(
            vec![probe("p", 1, vec![("a", vec![ViewRun { start: t0(), end: t0() + 1_000_000, down: None }])])],
            0,
        );
        let mut input = input;
        input.probes[0].agents[0].1 = vec![
            ViewRun { start: t0(), end: t0() + 3_000, down: Some(ErrorKind::Timeout) },
            ViewRun { start: t0() + 3_000, end: t0() + 1_000_000, down: None },
        ];
        let timeline = service_timeline(&input, t0(), t0() + 1_000_000);
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.9),
        };
        let f = compute(&timeline, &spec, t0(), t0() + 1_000_000);
        assert_eq!(f.error_budget_seconds, Some(1.0));
        assert_eq!(f.error_budget_remaining_seconds, Some(-2.0));
        assert_eq!(f.met, Some(false));
    }

    #[test]
    fn met_holds_at_exactly_the_target() {
        let mut runs = vec![ViewRun { start: t0(), end: t0() + 1_000, down: Some(ErrorKind::Timeout) }];
        runs.push(ViewRun { start: t0() + 1_000, end: t0() + 1_000_000, down: None });
        let input = service(vec![probe("p", 1, vec![("a", runs)])], 0);
        let timeline = service_timeline(&input, t0(), t0() + 1_000_000);
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.9),
        };
        let f = compute(&timeline, &spec, t0(), t0() + 1_000_000);
        assert_eq!(f.availability_percent, Some(99.9));
        assert_eq!(f.error_budget_remaining_seconds, Some(0.0));
        assert_eq!(f.met, Some(true));
    }

    #[test]
    fn burn_rate_compares_the_last_agreed_hours_with_an_even_spend() {
        // Business hours 08:00-18:00 UTC; the period ends at 20:00, so the last agreed hour is
        // 17:00-18:00, in which 6 minutes are down: 10 % of the time against a 1 % allowance.
        let calendar = calendar("UTC", &["mon-fri 08:00-18:00"], &[]);
        let input = service(
            vec![probe(
                "p",
                1,
                vec![(
                    "a",
                    vec![up(0, 17 * 60), down(17 * 60, 17 * 60 + 6, ErrorKind::Timeout), up(17 * 60 + 6, 24 * 60)],
                )],
            )],
            0,
        );
        let timeline = service_timeline(&input, at(0), at(20 * 60));
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.0),
        };
        let f = compute(&timeline, &spec, at(0), at(20 * 60));
        let burn = f.burn_rate.unwrap();
        assert_eq!(burn.last_1h, Some((6.0 / 60.0) / 0.01));
        assert_eq!(burn.last_6h, Some((6.0 / 360.0) / 0.01));
        let target_100 = FiguresSpec { target_percent: Some(100.0), ..spec };
        assert_eq!(compute(&timeline, &target_100, at(0), at(20 * 60)).burn_rate.unwrap().last_1h, None);
    }

    #[test]
    fn burn_rates_over_every_exported_window_are_the_down_share_of_that_window_over_the_allowance() {
        // 24x7, four days (5,760 minutes), target 99 % (1 % allowed). Down 60 minutes on the
        // second day (minutes 1440-1500) and 2 minutes near the end (5757-5759). Worked by
        // hand: the last 5m hold 2 down minutes (40 % of the window: 40x an even spend), the
        // last 30m, 1h, 6h and 1d the same 2 minutes, the last 3d (from minute 1440) both
        // outages, 62 minutes.
        let day = 24 * 60;
        let input = service(
            vec![probe(
                "p",
                1,
                vec![(
                    "a",
                    vec![
                        up(0, day),
                        down(day, day + 60, ErrorKind::Timeout),
                        up(day + 60, 4 * day - 3),
                        down(4 * day - 3, 4 * day - 1, ErrorKind::Status),
                        up(4 * day - 1, 4 * day),
                    ],
                )],
            )],
            0,
        );
        let f = figures_24x7(&input, UnknownPolicy::Exclude, 99.0, 0, 4 * day);
        let burn = f.burn_rate.unwrap();
        let by_hand = [
            (2.0 / 5.0) / 0.01,
            (2.0 / 30.0) / 0.01,
            (2.0 / 60.0) / 0.01,
            (2.0 / 360.0) / 0.01,
            (2.0 / 1440.0) / 0.01,
            (62.0 / 4320.0) / 0.01,
        ];
        let labels: Vec<&str> = BURN_WINDOWS.iter().map(|(label, _)| *label).collect();
        assert_eq!(labels, ["5m", "30m", "1h", "6h", "1d", "3d"]);
        assert_eq!(burn.windows, by_hand.map(Some));
        assert_eq!((burn.last_1h, burn.last_6h), (burn.windows[2], burn.windows[3]));
        // A window longer than the period's agreed time so far is all of it: over the second
        // day alone, the 3d window is that day's 1,440 minutes with 60 down.
        let second_day = figures_24x7(&input, UnknownPolicy::Exclude, 99.0, day, 2 * day);
        let short = second_day.burn_rate.unwrap().windows[5];
        assert_eq!(short, Some((60.0 / 1440.0) / 0.01));
    }

    #[test]
    fn daily_rows_follow_local_days_of_25_hours_and_sum_to_the_totals() {
        // London clocks go back on Sunday 2026-10-25: that local day is 25 hours long.
        let calendar = calendar("Europe/London", &["mon-sun 00:00-24:00"], &[]);
        let (from, to) = (ms("2026-10-23T23:00:00Z"), ms("2026-10-27T00:00:00Z"));
        let input = service(
            vec![probe(
                "p",
                1,
                vec![("a", vec![ViewRun { start: from, end: to - HOUR, down: Some(ErrorKind::Timeout) }])],
            )],
            0,
        );
        let timeline = service_timeline(&input, from, to);
        let spec =
            FiguresSpec { calendar: &calendar, maintenance: &[], unknown: UnknownPolicy::Down, target_percent: None };
        let rows = daily_breakdown(&timeline, &spec, from, to);
        let dates: Vec<String> = rows.iter().map(|r| r.date.to_string()).collect();
        assert_eq!(dates, vec!["2026-10-24", "2026-10-25", "2026-10-26"]);
        let hours: Vec<f64> = rows.iter().map(|r| r.service_hours_seconds / 3600.0).collect();
        assert_eq!(hours, vec![24.0, 25.0, 24.0]);
        assert_eq!(rows[2].unknown_seconds, 3600.0);
        let totals = compute(&timeline, &spec, from, to);
        let sum = |f: fn(&FigureMillis) -> i64| rows.iter().map(|r| f(&r.millis)).sum::<i64>();
        assert_eq!(sum(|m| m.service_hours_ms), totals.millis.service_hours_ms);
        assert_eq!(sum(|m| m.downtime_ms), totals.millis.downtime_ms);
        assert_eq!(sum(|m| m.unknown_ms), totals.millis.unknown_ms);
    }

    #[test]
    fn daily_rows_include_a_23_hour_day_when_clocks_go_forward() {
        let calendar = calendar("America/New_York", &["mon-sun 00:00-24:00"], &[]);
        let (from, to) = (ms("2026-03-08T05:00:00Z"), ms("2026-03-09T04:00:00Z"));
        let timeline = service_timeline(&service(vec![], 0), from, to);
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: None,
        };
        let rows = daily_breakdown(&timeline, &spec, from, to);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].date.to_string(), "2026-03-08");
        assert_eq!(rows[0].service_hours_seconds, 23.0 * 3600.0);
    }

    #[test]
    fn daily_rows_come_one_at_a_time_and_are_counted_without_computing_them() {
        // Mid-day to mid-day over a year in London: 366 local dates, the first and last clipped.
        let calendar = calendar("Europe/London", &["mon-fri 09:00-17:00"], &[]);
        let (from, to) = (ms("2026-01-01T12:00:00Z"), ms("2027-01-01T12:00:00Z"));
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 60), down(60, 120, ErrorKind::Timeout)])])], 0);
        let timeline = service_timeline(&input, from, to);
        let spec =
            FiguresSpec { calendar: &calendar, maintenance: &[], unknown: UnknownPolicy::Down, target_percent: None };
        let rows: Vec<DailyRow> = daily_rows(&timeline, &spec, from, to).collect();
        assert_eq!(daily_row_count(&spec, from, to), 366);
        assert_eq!(rows, daily_breakdown(&timeline, &spec, from, to));
        assert_eq!(
            (rows.len(), rows[0].date.to_string(), rows[365].date.to_string()),
            (366, "2026-01-01".into(), "2027-01-01".into())
        );
        let total = compute(&timeline, &spec, from, to).millis;
        let summed: i64 = rows.iter().map(|r| r.millis.downtime_ms).sum();
        assert_eq!(summed, total.downtime_ms);
        assert_eq!(daily_row_count(&spec, to, from), 0);
        assert_eq!(daily_rows(&timeline, &spec, to, to).count(), 0);
    }
}
