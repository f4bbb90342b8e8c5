//! The availability arithmetic of SPEC §7: agent view runs, calendars and maintenance in,
//! exact figures out. Pure: no I/O, no clock. Every seconds figure the collector shows
//! (reports, compliance, evidence) comes from [`compute`] and [`daily_breakdown`].
//!
//! The pipeline, all in integer Unix milliseconds over half-open intervals `[start, end)`:
//!
//! 1. [`probe_timeline`]: per probe, sweep over the agents' view runs (already stale-aware,
//!    see [`crate::runs`]) and apply the quorum rule.
//! 2. [`service_timeline`]: combine the probes (down beats unknown beats up), turn down runs
//!    shorter than `min_outage` to up, and describe each remaining down run as an [`Outage`].
//! 3. [`compute`]: intersect with service hours minus maintenance over the period, apply the
//!    unknown policy and the target.
//!
//! **Context window.** Whether a down run is shorter than `min_outage`, and where an outage
//! truly starts and ends, depends on time outside the period. So the timeline is built over
//! a *context* window wider than the period ([`context_window`]): the period padded by
//! [`CONTEXT_PADDING_MS`] (or `min_outage` if longer) on each side, and never past `now`.
//! Stopping at `now` means an ongoing outage ends at `now` and a down run still younger than
//! `min_outage` is not (yet) an outage, which is what is known at `now`. A down run that
//! reaches the edge of the context is cut there; the padding makes that matter only for
//! outages longer than a week, whose `start` then reads as the context's start.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use probity_config::UnknownPolicy;
use probity_config::calendar::{Calendar, normalize, subtract};
use probity_config::wire::ErrorKind;
use serde::{Serialize, Serializer};

use crate::runs::ViewRun;

/// A half-open interval `[start, end)` of Unix milliseconds.
pub type Interval = (i64, i64);

/// How far around a period the timeline is built by default: long enough that any
/// realistic `min_outage` is judged on the whole down run, and that outages shorter than
/// this keep their true start and end.
pub const CONTEXT_PADDING_MS: i64 = 7 * 86_400_000;

/// Burn-rate windows, in agreed service time.
pub const BURN_WINDOW_SHORT_MS: i64 = 3_600_000;
pub const BURN_WINDOW_LONG_MS: i64 = 6 * 3_600_000;

/// One probe's input: the view runs of each agent assigned to it (agents without results
/// are listed with no runs; they only ever contribute unknown time).
#[derive(Clone, Debug)]
pub struct ProbeViews<'a> {
    pub probe: &'a str,
    pub quorum: usize,
    pub agents: Vec<(&'a str, Vec<ViewRun>)>,
}

/// One service's input: its probes and its `min_outage`.
#[derive(Clone, Debug)]
pub struct ServiceInput<'a> {
    pub probes: Vec<ProbeViews<'a>>,
    pub min_outage_ms: i64,
}

/// The state of a probe or a service at an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Up,
    Down,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Unknown => "unknown",
        }
    }
}

/// A stretch `[start, end)` of constant state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub state: State,
}

/// A maximal down run of a service that is at least `min_outage` long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Probes that were down at some instant of the outage, sorted.
    pub probes: Vec<String>,
    /// Agents whose down view of a probe overlaps a stretch where that probe was down
    /// within the outage, sorted, each once.
    pub agents: Vec<String>,
    /// Per error kind: how many agent down runs (maximal stretches of one agent seeing one
    /// probe down for one reason) overlap a stretch where their probe was down within the
    /// outage. Runs, not raw results: storage keeps runs, and a run is one "episode".
    pub reasons: BTreeMap<ErrorKind, u64>,
}

/// The service state over a context window: contiguous segments covering
/// `[from_ms, to_ms)`, adjacent segments in different states, `min_outage` applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceTimeline {
    pub from_ms: i64,
    pub to_ms: i64,
    pub segments: Vec<Segment>,
    pub outages: Vec<Outage>,
}

impl ServiceTimeline {
    /// The sorted, disjoint intervals in `state`.
    pub fn intervals(&self, state: State) -> Vec<Interval> {
        normalize(self.segments.iter().filter(|s| s.state == state).map(|s| (s.start, s.end)).collect())
    }

    /// The state at `t`; unknown outside the timeline.
    pub fn state_at(&self, t: i64) -> State {
        let i = self.segments.partition_point(|s| s.end <= t);
        match self.segments.get(i) {
            Some(s) if s.start <= t => s.state,
            _ => State::Unknown,
        }
    }

    /// The state now and since when, as `GET /api/v1/services` shows it: the last segment.
    pub fn current(&self) -> Option<Segment> {
        self.segments.last().copied()
    }
}

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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutageReport {
    #[serde(rename = "start", serialize_with = "serialize_instant")]
    pub start_ms: i64,
    #[serde(rename = "end", serialize_with = "serialize_instant")]
    pub end_ms: i64,
    pub duration_seconds: f64,
    pub counted_seconds: f64,
    #[serde(skip)]
    pub counted_ms: i64,
    pub probes: Vec<String>,
    pub agents: Vec<String>,
    pub reasons: BTreeMap<ErrorKind, u64>,
    /// Filled by agreement reports: the dependencies that were down during the counted part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributed_to: Option<Vec<Attribution>>,
}

/// Downtime of a service that overlaps downtime of one of its dependencies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribution {
    pub service: String,
    pub counted_seconds: f64,
    #[serde(skip)]
    pub counted_ms: i64,
}

/// Error-budget burn rates over the last hour and six hours of agreed service time ending
/// at the period's end: 1.0 spends the budget exactly evenly, above 1.0 faster.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct BurnRates {
    pub last_1h: Option<f64>,
    pub last_6h: Option<f64>,
}

/// The SPEC §7 / §8 figures of one service over one period.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    pub service_hours_seconds: f64,
    pub maintenance_seconds: f64,
    pub unknown_seconds: f64,
    pub downtime_seconds: f64,
    pub agreed_service_seconds: f64,
    /// `None` (JSON null) when there is no agreed service time.
    pub availability_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_budget_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_budget_remaining_seconds: Option<f64>,
    /// Availability target only; a report ANDs in its latency target with [`Figures::with_latency_met`].
    /// With no agreed service time nothing could breach the target, so it is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burn_rate: Option<BurnRates>,
    pub outages: Vec<OutageReport>,
    #[serde(skip)]
    pub millis: FigureMillis,
    /// Base of the period, kept for the latency figure.
    #[serde(skip)]
    pub base: Vec<Interval>,
}

impl Figures {
    /// Folds a latency verdict (`None`: no latency target) into `met`.
    pub fn with_latency_met(mut self, latency_met: Option<bool>) -> Figures {
        if let (Some(met), Some(latency)) = (self.met, latency_met) {
            self.met = Some(met && latency);
        }
        self
    }
}

/// One local day of the calendar's zone (23, 24 or 25 hours long), clipped to the period.
/// The rows of a period sum to its totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DailyRow {
    #[serde(serialize_with = "serialize_date")]
    pub date: Date,
    pub service_hours_seconds: f64,
    pub maintenance_seconds: f64,
    pub unknown_seconds: f64,
    pub downtime_seconds: f64,
    pub availability_percent: Option<f64>,
    #[serde(skip)]
    pub millis: FigureMillis,
}

/// The window the timeline of a period should be built over, and so the runs storage should
/// load: see the module docs.
pub fn context_window(period_from_ms: i64, period_to_ms: i64, min_outage_ms: i64, now_ms: i64) -> Interval {
    let padding = CONTEXT_PADDING_MS.max(min_outage_ms);
    (period_from_ms - padding, (period_to_ms + padding).min(now_ms).max(period_to_ms))
}

/// The state of one probe over `[from, to)`: contiguous segments, adjacent ones different.
pub fn probe_timeline(views: &ProbeViews<'_>, from: i64, to: i64) -> Vec<Segment> {
    // Each agent contributes +1 known (and +1 down) over each run; a sweep over the run
    // boundaries then knows |K| and |D| on every stretch between two boundaries.
    let mut events: Vec<(i64, i64, i64)> = Vec::new();
    for (_, runs) in &views.agents {
        for run in tidy_runs(runs) {
            let (start, end) = (run.start.max(from), run.end.min(to));
            if start < end {
                let down = i64::from(run.is_down());
                events.push((start, 1, down));
                events.push((end, -1, -down));
            }
        }
    }
    events.sort_unstable_by_key(|e| e.0);
    let mut segments = Vec::new();
    let (mut known, mut down) = (0_i64, 0_i64);
    let mut cursor = from;
    let mut i = 0;
    loop {
        let next = events.get(i).map_or(to, |e| e.0);
        if next > cursor {
            push_segment(&mut segments, cursor, next, probe_state(known, down, views.quorum));
            cursor = next;
        }
        if i >= events.len() {
            break;
        }
        while let Some(&(at, dk, dd)) = events.get(i).filter(|e| e.0 == next) {
            debug_assert_eq!(at, next);
            known += dk;
            down += dd;
            i += 1;
        }
    }
    segments
}

/// The state of a service over `[from, to)` (normally a [`context_window`]), with
/// `min_outage` applied and its outages described.
pub fn service_timeline(input: &ServiceInput<'_>, from: i64, to: i64) -> ServiceTimeline {
    let probe_timelines: Vec<Vec<Segment>> = input.probes.iter().map(|p| probe_timeline(p, from, to)).collect();
    let combined = combine_probes(&probe_timelines, from, to);
    let segments = drop_short_down_runs(combined, input.min_outage_ms);
    let tidy: Vec<Vec<(&str, Vec<ViewRun>)>> =
        input.probes.iter().map(|p| p.agents.iter().map(|(agent, runs)| (*agent, tidy_runs(runs))).collect()).collect();
    let outages = segments
        .iter()
        .filter(|s| s.state == State::Down)
        .map(|s| describe_outage(s.start, s.end, input, &probe_timelines, &tidy))
        .collect();
    ServiceTimeline { from_ms: from, to_ms: to, segments, outages }
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
    let states = StateIntervals::of(timeline);
    let tz = &spec.calendar.timezone;
    let mut rows = Vec::new();
    if from >= to {
        return rows;
    }
    let Ok(from_ts) = Timestamp::from_millisecond(from) else { return rows };
    let mut date = tz.to_datetime(from_ts).date();
    loop {
        let day_start = local_midnight_ms(tz, date).max(from);
        let Ok(next) = date.tomorrow() else { break };
        let day_end = local_midnight_ms(tz, next).min(to);
        if day_start < day_end {
            let coverage = coverage(spec.calendar, spec.maintenance, day_start, day_end);
            let (millis, _) = measure(&coverage, &states, spec.unknown);
            rows.push(DailyRow {
                date,
                service_hours_seconds: seconds(millis.service_hours_ms),
                maintenance_seconds: seconds(millis.maintenance_ms),
                unknown_seconds: seconds(millis.unknown_ms),
                downtime_seconds: seconds(millis.downtime_ms),
                availability_percent: availability_percent(&millis),
                millis,
            });
        }
        if day_end >= to {
            break;
        }
        date = next;
    }
    rows
}

/// The instant a local date starts in `tz` (after the gap if midnight does not exist).
pub fn local_midnight_ms(tz: &jiff::tz::TimeZone, date: Date) -> i64 {
    match date.to_zoned(tz.clone()).and_then(|z| z.start_of_day()) {
        Ok(z) => z.timestamp().as_millisecond(),
        Err(_) => i64::MAX,
    }
}

/// The minutes whose start lies in `base` (SPEC §7's latency rule), as ranges of minute
/// starts: each `[a, b)` holds the minutes starting at `a, a + 60 s, …` before `b`, with
/// `a` and `b` on whole UTC minutes, so storage can scan its per-minute histograms by range.
pub fn latency_minute_ranges(base: &[Interval]) -> Vec<Interval> {
    const MINUTE_MS: i64 = 60_000;
    let ceil_minute =
        |t: i64| t.div_euclid(MINUTE_MS) * MINUTE_MS + if t.rem_euclid(MINUTE_MS) == 0 { 0 } else { MINUTE_MS };
    normalize(base.iter().map(|&(a, b)| (ceil_minute(a), ceil_minute(b))).filter(|(a, b)| a < b).collect())
}

/// Sorted, disjoint intersection of two sorted, disjoint interval lists.
pub fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (start, end) = (a[i].0.max(b[j].0), a[i].1.min(b[j].1));
        if start < end {
            out.push((start, end));
        }
        if a[i].1 < b[j].1 {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The total length of disjoint intervals.
pub fn total(intervals: &[Interval]) -> i64 {
    intervals.iter().map(|(a, b)| b - a).sum()
}

fn overlaps(sorted: &[Interval], (start, end): Interval) -> bool {
    let i = sorted.partition_point(|iv| iv.1 <= start);
    sorted.get(i).is_some_and(|iv| iv.0 < end)
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

/// The last `length_ms` of a sorted interval list, as intervals.
fn last_stretch_of(intervals: &[Interval], length_ms: i64) -> Vec<Interval> {
    let mut remaining = length_ms;
    let mut out = Vec::new();
    for &(start, end) in intervals.iter().rev() {
        if remaining <= 0 {
            break;
        }
        let take = (end - start).min(remaining);
        out.push((end - take, end));
        remaining -= take;
    }
    out.reverse();
    out
}

/// An agent's runs sorted, overlaps resolved in favour of the later run (as the later
/// result wins in the view), and adjacent runs with the same outcome merged, so that a run
/// split at a storage boundary still counts once in `reasons`.
fn tidy_runs(runs: &[ViewRun]) -> Vec<ViewRun> {
    let mut sorted: Vec<ViewRun> = runs.iter().copied().filter(|r| r.start < r.end).collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<ViewRun> = Vec::with_capacity(sorted.len());
    for run in sorted {
        if let Some(last) = out.last_mut() {
            last.end = last.end.min(run.start);
            if last.start >= last.end {
                out.pop();
            }
        }
        match out.last_mut() {
            Some(last) if last.end == run.start && last.down == run.down => last.end = run.end,
            _ => out.push(run),
        }
    }
    out
}

fn probe_state(known: i64, down: i64, quorum: usize) -> State {
    if known == 0 {
        State::Unknown
    } else if down >= (quorum as i64).min(known) {
        State::Down
    } else {
        State::Up
    }
}

fn push_segment(segments: &mut Vec<Segment>, start: i64, end: i64, state: State) {
    match segments.last_mut() {
        Some(last) if last.state == state && last.end == start => last.end = end,
        _ => segments.push(Segment { start, end, state }),
    }
}

/// Down if any probe is down, else unknown if any is unknown, else up. A service with no
/// probes is unknown throughout: nothing watches it, so nothing is known (SPEC's "else up"
/// would otherwise call it up by default).
fn combine_probes(probe_timelines: &[Vec<Segment>], from: i64, to: i64) -> Vec<Segment> {
    let mut segments = Vec::new();
    if from >= to {
        return segments;
    }
    if probe_timelines.is_empty() {
        return vec![Segment { start: from, end: to, state: State::Unknown }];
    }
    let boundaries: BTreeSet<i64> =
        probe_timelines.iter().flatten().map(|s| s.start).chain([from, to]).filter(|&t| t >= from && t <= to).collect();
    let boundaries: Vec<i64> = boundaries.into_iter().collect();
    let mut cursors = vec![0_usize; probe_timelines.len()];
    for pair in boundaries.windows(2) {
        let (start, end) = (pair[0], pair[1]);
        let mut state = State::Up;
        for (timeline, cursor) in probe_timelines.iter().zip(cursors.iter_mut()) {
            while timeline.get(*cursor).is_some_and(|s| s.end <= start) {
                *cursor += 1;
            }
            let probe = timeline.get(*cursor).filter(|s| s.start <= start).map_or(State::Unknown, |s| s.state);
            state = match (state, probe) {
                (State::Down, _) | (_, State::Down) => State::Down,
                (State::Unknown, _) | (_, State::Unknown) => State::Unknown,
                _ => State::Up,
            };
        }
        push_segment(&mut segments, start, end, state);
    }
    segments
}

/// SPEC §7: maximal down runs shorter than `min_outage` are turned to up.
fn drop_short_down_runs(segments: Vec<Segment>, min_outage_ms: i64) -> Vec<Segment> {
    let mut out = Vec::with_capacity(segments.len());
    for s in segments {
        let state = if s.state == State::Down && s.end - s.start < min_outage_ms { State::Up } else { s.state };
        push_segment(&mut out, s.start, s.end, state);
    }
    out
}

fn describe_outage(
    start: i64,
    end: i64,
    input: &ServiceInput<'_>,
    probe_timelines: &[Vec<Segment>],
    tidy: &[Vec<(&str, Vec<ViewRun>)>],
) -> Outage {
    let mut probes = BTreeSet::new();
    let mut agents = BTreeSet::new();
    let mut reasons: BTreeMap<ErrorKind, u64> = BTreeMap::new();
    for ((probe, timeline), agent_runs) in input.probes.iter().zip(probe_timelines).zip(tidy) {
        let first = timeline.partition_point(|s| s.end <= start);
        let probe_down: Vec<Interval> = timeline[first..]
            .iter()
            .take_while(|s| s.start < end)
            .filter(|s| s.state == State::Down)
            .map(|s| (s.start.max(start), s.end.min(end)))
            .collect();
        if probe_down.is_empty() {
            continue;
        }
        probes.insert(probe.probe.to_string());
        for (agent, runs) in agent_runs {
            let first = runs.partition_point(|r| r.end <= start);
            for run in runs[first..].iter().take_while(|r| r.start < end) {
                let Some(kind) = run.down else { continue };
                if overlaps(&probe_down, (run.start, run.end)) {
                    agents.insert(agent.to_string());
                    *reasons.entry(kind).or_default() += 1;
                }
            }
        }
    }
    Outage {
        start_ms: start,
        end_ms: end,
        probes: probes.into_iter().collect(),
        agents: agents.into_iter().collect(),
        reasons,
    }
}

fn serialize_instant<S: Serializer>(ms: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*ms))
}

fn serialize_date<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(date)
}

/// An instant as RFC 3339 in UTC (`2026-11-10T22:00:00Z`, with fractions only when needed).
pub fn rfc3339(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::runs::{Observation, runs_from_observations};

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 3_600_000;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// Monday 2026-11-02 00:00 UTC: the origin of the hand-written cases.
    fn t0() -> i64 {
        ms("2026-11-02T00:00:00Z")
    }

    fn at(minutes: i64) -> i64 {
        t0() + minutes * MINUTE
    }

    fn up(from_min: i64, to_min: i64) -> ViewRun {
        ViewRun { start: at(from_min), end: at(to_min), down: None }
    }

    fn down(from_min: i64, to_min: i64, kind: ErrorKind) -> ViewRun {
        ViewRun { start: at(from_min), end: at(to_min), down: Some(kind) }
    }

    fn calendar(zone: &str, hours: &[&str], holidays: &[&str]) -> Calendar {
        Calendar::from_text("test", zone, hours, holidays).unwrap()
    }

    fn probe<'a>(id: &'a str, quorum: usize, agents: Vec<(&'a str, Vec<ViewRun>)>) -> ProbeViews<'a> {
        ProbeViews { probe: id, quorum, agents }
    }

    fn service(probes: Vec<ProbeViews<'_>>, min_outage_minutes: i64) -> ServiceInput<'_> {
        ServiceInput { probes, min_outage_ms: min_outage_minutes * MINUTE }
    }

    fn states(segments: &[Segment]) -> Vec<(i64, i64, State)> {
        segments.iter().map(|s| ((s.start - t0()) / MINUTE, (s.end - t0()) / MINUTE, s.state)).collect()
    }

    /// Figures over `[at(from), at(to))` on 24x7 without maintenance, the timeline built over
    /// exactly the period.
    fn figures_24x7(input: &ServiceInput<'_>, policy: UnknownPolicy, target: f64, from: i64, to: i64) -> Figures {
        let timeline = service_timeline(input, at(from), at(to));
        let calendar = Calendar::always();
        let spec = FiguresSpec { calendar: &calendar, maintenance: &[], unknown: policy, target_percent: Some(target) };
        compute(&timeline, &spec, at(from), at(to))
    }

    #[test]
    fn quorum_rule_down_needs_min_of_quorum_and_known_agents() {
        use ErrorKind::Timeout;
        let views = probe(
            "p",
            2,
            vec![
                ("a", vec![down(0, 30, Timeout)]),
                ("b", vec![up(0, 10), down(10, 20, Timeout), up(20, 30)]),
                ("c", vec![up(0, 5)]),
            ],
        );
        // 0-5: 1 of 3 down, quorum 2 → up. 5-10: 1 of 2 known down → up. 10-20: 2 down → down.
        // 20-30: a down, b up → up. 30-40: nobody known → unknown.
        assert_eq!(
            states(&probe_timeline(&views, at(0), at(40))),
            vec![(0, 10, State::Up), (10, 20, State::Down), (20, 30, State::Up), (30, 40, State::Unknown)]
        );
        // One known agent, down: min(quorum 2, |K| 1) = 1 → down.
        let lone = probe("p", 2, vec![("a", vec![down(0, 10, Timeout)]), ("b", vec![])]);
        assert_eq!(states(&probe_timeline(&lone, at(0), at(10))), vec![(0, 10, State::Down)]);
    }

    #[test]
    fn quorum_rule_no_known_agent_makes_the_probe_unknown() {
        let views = probe("p", 1, vec![("a", vec![]), ("b", vec![up(5, 6)])]);
        assert_eq!(
            states(&probe_timeline(&views, at(0), at(10))),
            vec![(0, 5, State::Unknown), (5, 6, State::Up), (6, 10, State::Unknown)]
        );
    }

    #[test]
    fn staleness_via_runs_a_silent_agent_becomes_unknown_after_two_intervals() {
        // Interval 1 minute: results at 0..=4, then silence; the view is known until 4 + 2.
        let observations: Vec<Observation> =
            (0..5).map(|m| Observation { at: at(m), down: Some(ErrorKind::Connect) }).collect();
        let runs = runs_from_observations(&observations, MINUTE);
        let input = service(vec![probe("p", 1, vec![("a", runs)])], 0);
        let timeline = service_timeline(&input, at(0), at(10));
        assert_eq!(states(&timeline.segments), vec![(0, 6, State::Down), (6, 10, State::Unknown)]);
    }

    #[test]
    fn service_state_is_down_if_any_probe_is_down_else_unknown_if_any_is_unknown() {
        use ErrorKind::Status;
        let input = service(
            vec![
                probe("p1", 1, vec![("a", vec![up(0, 10), down(10, 20, Status), up(20, 40)])]),
                probe("p2", 1, vec![("a", vec![up(0, 5), up(15, 30)])]),
            ],
            0,
        );
        let timeline = service_timeline(&input, at(0), at(40));
        assert_eq!(
            states(&timeline.segments),
            vec![
                (0, 5, State::Up),
                (5, 10, State::Unknown),
                (10, 20, State::Down),
                (20, 30, State::Up),
                (30, 40, State::Unknown)
            ]
        );
    }

    #[test]
    fn a_service_without_probes_is_unknown() {
        let timeline = service_timeline(&service(vec![], 0), at(0), at(10));
        assert_eq!(states(&timeline.segments), vec![(0, 10, State::Unknown)]);
    }

    #[test]
    fn min_outage_turns_shorter_down_runs_to_up_and_keeps_runs_that_reach_it() {
        use ErrorKind::Timeout;
        let input = service(
            vec![probe(
                "p",
                1,
                vec![("a", vec![up(0, 10), down(10, 14, Timeout), up(14, 20), down(20, 25, Timeout), up(25, 30)])],
            )],
            5,
        );
        let timeline = service_timeline(&input, at(0), at(30));
        // 4 minutes < 5: up. Exactly 5 minutes: not shorter, an outage.
        assert_eq!(states(&timeline.segments), vec![(0, 20, State::Up), (20, 25, State::Down), (25, 30, State::Up)]);
        assert_eq!(timeline.outages.len(), 1);
        assert_eq!((timeline.outages[0].start_ms, timeline.outages[0].end_ms), (at(20), at(25)));
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
        assert_eq!(f.burn_rate, Some(BurnRates { last_1h: None, last_6h: None }));
        let json = serde_json::to_value(&f).unwrap();
        assert!(json["availability_percent"].is_null());
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
        assert_eq!(f.clone().with_latency_met(Some(false)).met, Some(false));
        assert_eq!(f.with_latency_met(None).met, Some(true));
    }

    #[test]
    fn outage_lists_down_probes_agents_that_saw_it_and_reasons_per_agent_run() {
        use ErrorKind::{Connect, Status, Timeout};
        let input = service(
            vec![
                probe(
                    "web",
                    2,
                    vec![
                        // Two runs of one kind split at a storage boundary count once.
                        ("lon", vec![up(0, 10), down(10, 15, Timeout), down(15, 20, Timeout), up(20, 60)]),
                        ("fra", vec![up(0, 10), down(10, 14, Connect), down(14, 20, Timeout), up(20, 60)]),
                        // Never down while the probe was: not listed.
                        ("nyc", vec![up(0, 40), down(40, 41, Status), up(41, 60)]),
                    ],
                ),
                probe("dns", 1, vec![("lon", vec![up(0, 60)])]),
            ],
            0,
        );
        let timeline = service_timeline(&input, at(0), at(60));
        assert_eq!(timeline.outages.len(), 1);
        let o = &timeline.outages[0];
        assert_eq!((o.start_ms, o.end_ms), (at(10), at(20)));
        assert_eq!(o.probes, vec!["web".to_string()]);
        assert_eq!(o.agents, vec!["fra".to_string(), "lon".to_string()]);
        assert_eq!(o.reasons, BTreeMap::from([(Connect, 1), (Timeout, 2)]));
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
    fn json_uses_the_spec_field_names_and_rfc3339_instants() {
        let input = service(
            vec![probe("p", 1, vec![("a", vec![up(0, 10), down(10, 20, ErrorKind::CertExpiry), up(20, 60)])])],
            0,
        );
        let f = figures_24x7(&input, UnknownPolicy::Exclude, 99.5, 0, 60);
        let json = serde_json::to_value(&f).unwrap();
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
            "met",
            "outages",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        let outage = &json["outages"][0];
        assert_eq!(outage["start"], "2026-11-02T00:10:00Z");
        assert_eq!(outage["end"], "2026-11-02T00:20:00Z");
        assert_eq!(outage["duration_seconds"], 600.0);
        assert_eq!(outage["counted_seconds"], 600.0);
        assert_eq!(outage["probes"], serde_json::json!(["p"]));
        assert_eq!(outage["agents"], serde_json::json!(["a"]));
        assert_eq!(outage["reasons"], serde_json::json!({"cert_expiry": 1}));
        // Without a target the target fields are left out (GET …/availability).
        let calendar = Calendar::always();
        let spec = FiguresSpec {
            calendar: &calendar,
            maintenance: &[],
            unknown: UnknownPolicy::Exclude,
            target_percent: None,
        };
        let plain =
            serde_json::to_value(compute(&service_timeline(&input, at(0), at(60)), &spec, at(0), at(60))).unwrap();
        assert!(plain.get("met").is_none() && plain.get("error_budget_seconds").is_none());
    }

    #[test]
    fn context_window_stops_at_now_so_an_ongoing_outage_ends_now() {
        // The last result (down, interval 5 min) would stay known for 10 minutes past now.
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 50), down(50, 70, ErrorKind::Timeout)])])], 0);
        let now = at(60);
        let (ctx_from, ctx_to) = context_window(at(0), now, input.min_outage_ms, now);
        assert_eq!((ctx_from, ctx_to), (at(0) - CONTEXT_PADDING_MS, now));
        let timeline = service_timeline(&input, ctx_from, ctx_to);
        assert_eq!(timeline.outages.last().map(|o| (o.start_ms, o.end_ms)), Some((at(50), now)));
        assert_eq!(timeline.current(), Some(Segment { start: at(50), end: now, state: State::Down }));
        assert_eq!(timeline.state_at(at(55)), State::Down);
        assert_eq!(timeline.state_at(now), State::Unknown);
    }

    #[test]
    fn overlapping_runs_of_one_agent_resolve_in_favour_of_the_later_run() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(0, 20), down(10, 30, ErrorKind::Timeout)])])], 0);
        let timeline = service_timeline(&input, at(0), at(30));
        assert_eq!(states(&timeline.segments), vec![(0, 10, State::Up), (10, 30, State::Down)]);
    }

    #[test]
    fn latency_counts_the_minutes_whose_start_lies_in_base() {
        // Base 08:00:30-08:03:00 holds the minutes starting 08:01 and 08:02; 09:00-09:00:10
        // holds the one starting 09:00.
        let base = [
            (at(8 * 60) + 30_000, at(8 * 60 + 3)),
            (at(9 * 60), at(9 * 60) + 10_000),
            (at(10 * 60) + 1, at(10 * 60) + 2),
        ];
        assert_eq!(latency_minute_ranges(&base), vec![(at(8 * 60 + 1), at(8 * 60 + 3)), (at(9 * 60), at(9 * 60 + 1))]);
    }

    mod model {
        //! A brute-force model of SPEC §7 that walks every minute of the context: every
        //! generated instant lies on a one-minute grid (UTC offsets and calendar hours are
        //! whole minutes), so one sample per minute decides the whole minute exactly.

        use std::collections::BTreeMap;

        use jiff::Timestamp;
        use jiff::civil::Date;
        use probity_config::UnknownPolicy;
        use probity_config::calendar::{Calendar, DayRange};
        use probity_config::wire::ErrorKind;
        use proptest::prelude::*;

        use super::super::*;
        use super::{MINUTE, calendar};
        use crate::runs::{Observation, runs_from_observations};

        #[derive(Clone, Debug)]
        struct ModelProbe {
            quorum: usize,
            interval_ms: i64,
            agents: Vec<Vec<Observation>>,
        }

        #[derive(Clone, Debug)]
        struct Scenario {
            calendar: Calendar,
            from: i64,
            to: i64,
            context: Interval,
            maintenance: Vec<Interval>,
            policy: UnknownPolicy,
            target: f64,
            min_outage_ms: i64,
            probes: Vec<ModelProbe>,
        }

        const ZONES: [(&str, &str); 8] = [
            ("Europe/London", "2026-03-29T01:00:00Z"),
            ("Europe/London", "2026-10-25T01:00:00Z"),
            ("America/New_York", "2026-03-08T07:00:00Z"),
            ("America/New_York", "2026-11-01T06:00:00Z"),
            ("Australia/Lord_Howe", "2026-04-04T15:00:00Z"),
            ("Australia/Lord_Howe", "2026-10-03T15:30:00Z"),
            ("UTC", "2026-11-10T00:00:00Z"),
            ("24x7", "2026-11-10T00:00:00Z"),
        ];

        const KINDS: [Option<ErrorKind>; 5] =
            [None, None, Some(ErrorKind::Timeout), Some(ErrorKind::Connect), Some(ErrorKind::Status)];

        fn weekly_strategy() -> impl Strategy<Value = [Vec<DayRange>; 7]> {
            // Per weekday up to two ranges on a quarter-hour grid, merged into the calendar's
            // sorted, non-overlapping form.
            let day = prop::collection::vec((0_u32..96, 1_u32..96), 0..3).prop_map(|ranges| {
                let mut ranges: Vec<DayRange> = ranges
                    .into_iter()
                    .map(|(s, len)| DayRange { start: s * 900, end: (s + len).min(96) * 900 })
                    .collect();
                ranges.sort();
                let mut merged: Vec<DayRange> = Vec::new();
                for r in ranges {
                    match merged.last_mut() {
                        Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                        _ => merged.push(r),
                    }
                }
                merged
            });
            prop::array::uniform7(day)
        }

        /// Per agent: (minutes since the previous result, index into `KINDS`).
        type AgentSteps = Vec<(i64, usize)>;

        /// (quorum, interval in minutes, steps per assigned agent).
        fn probe_strategy() -> impl Strategy<Value = (usize, i64, Vec<AgentSteps>)> {
            (1_usize..=3, 1_usize..=3, 1_i64..=20).prop_flat_map(|(agents, quorum, interval)| {
                let observations = prop::collection::vec((0_i64..=60, 0_usize..KINDS.len()), 0..120);
                (Just(quorum), Just(interval), prop::collection::vec(observations, agents))
            })
        }

        prop_compose! {
            fn scenario()(
                zone in 0..ZONES.len(),
                weekly in weekly_strategy(),
                holiday in prop::option::of(0_i64..4),
                start_minutes in 0_i64..(24 * 60),
                length_minutes in 1_i64..(60 * 60),
                pad_minutes in (0_i64..300, 0_i64..300),
                maintenance in prop::collection::vec((0_i64..(70 * 60), 1_i64..600), 0..3),
                policy in 0_usize..3,
                target in prop::sample::select(vec![95.0, 99.0, 99.9, 100.0]),
                min_outage_minutes in prop_oneof![Just(0_i64), 1_i64..90],
                probes in prop::collection::vec(probe_strategy(), 1..=2),
            ) -> Scenario {
                let (zone, anchor) = ZONES[zone];
                let anchor = anchor.parse::<Timestamp>().unwrap().as_millisecond();
                let mut calendar = if zone == "24x7" { Calendar::always() } else { calendar(zone, &[], &[]) };
                if zone != "24x7" {
                    calendar.weekly = weekly;
                    if let Some(days) = holiday {
                        let first = calendar.timezone.to_datetime(Timestamp::from_millisecond(anchor).unwrap()).date();
                        calendar.holidays.insert(first.checked_add(jiff::Span::new().days(days - 1)).unwrap());
                    }
                }
                let from = anchor - 36 * 60 * MINUTE + start_minutes * MINUTE;
                let to = from + length_minutes * MINUTE;
                let context = (from - pad_minutes.0 * MINUTE, to + pad_minutes.1 * MINUTE);
                let maintenance = maintenance
                    .into_iter()
                    .map(|(start, len)| (context.0 + start * MINUTE, context.0 + (start + len) * MINUTE))
                    .collect();
                let policy = [UnknownPolicy::Exclude, UnknownPolicy::Up, UnknownPolicy::Down][policy];
                let probes = probes
                    .into_iter()
                    .map(|(quorum, interval, agents)| {
                        let agents = agents
                            .into_iter()
                            .map(|steps| {
                                // Start a little before the context so views can be known at its start.
                                let mut at = context.0 - 30 * MINUTE;
                                steps
                                    .into_iter()
                                    .map(|(gap, kind)| {
                                        at += gap * MINUTE;
                                        Observation { at, down: KINDS[kind] }
                                    })
                                    .collect()
                            })
                            .collect();
                        ModelProbe { quorum, interval_ms: interval * MINUTE, agents }
                    })
                    .collect();
                Scenario {
                    calendar,
                    from,
                    to,
                    context,
                    maintenance,
                    policy,
                    target,
                    min_outage_ms: min_outage_minutes * MINUTE,
                    probes,
                }
            }
        }

        const PROBE_IDS: [&str; 2] = ["p0", "p1"];
        const AGENT_IDS: [&str; 3] = ["a0", "a1", "a2"];

        /// What the model knows about one minute.
        #[derive(Clone, Debug)]
        struct Minute {
            t: i64,
            service: State,
            probe_down: Vec<bool>,
            /// Per probe, per agent: the view (None unknown, Some(None) up, Some(Some(kind)) down).
            views: Vec<Vec<Option<Option<ErrorKind>>>>,
        }

        fn view_at(observations: &[Observation], interval_ms: i64, t: i64) -> Option<Option<ErrorKind>> {
            // The latest result with at <= t (the later of equal ones), if not stale.
            let latest = observations.iter().rev().find(|o| o.at <= t)?;
            (t - latest.at < 2 * interval_ms).then_some(latest.down)
        }

        fn in_service_hours(calendar: &Calendar, t: i64) -> bool {
            let local = calendar.timezone.to_datetime(Timestamp::from_millisecond(t).unwrap());
            let date = local.date();
            let second = local.time().hour() as u32 * 3600 + local.time().minute() as u32 * 60;
            !calendar.holidays.contains(&date)
                && calendar.weekly[date.weekday().to_monday_zero_offset() as usize]
                    .iter()
                    .any(|r| r.start <= second && second < r.end)
        }

        fn local_date(calendar: &Calendar, t: i64) -> Date {
            calendar.timezone.to_datetime(Timestamp::from_millisecond(t).unwrap()).date()
        }

        fn walk(s: &Scenario) -> Vec<Minute> {
            let mut minutes: Vec<Minute> = Vec::new();
            let mut t = s.context.0;
            while t < s.context.1 {
                let views: Vec<Vec<Option<Option<ErrorKind>>>> = s
                    .probes
                    .iter()
                    .map(|p| p.agents.iter().map(|obs| view_at(obs, p.interval_ms, t)).collect())
                    .collect();
                let probe_states: Vec<State> = s
                    .probes
                    .iter()
                    .zip(&views)
                    .map(|(p, v)| {
                        let known = v.iter().filter(|v| v.is_some()).count();
                        let down = v.iter().filter(|v| matches!(v, Some(Some(_)))).count();
                        if known == 0 {
                            State::Unknown
                        } else if down >= p.quorum.min(known) {
                            State::Down
                        } else {
                            State::Up
                        }
                    })
                    .collect();
                let service = if probe_states.contains(&State::Down) {
                    State::Down
                } else if probe_states.contains(&State::Unknown) {
                    State::Unknown
                } else {
                    State::Up
                };
                let probe_down = probe_states.iter().map(|p| *p == State::Down).collect();
                minutes.push(Minute { t, service, probe_down, views });
                t += MINUTE;
            }
            // min_outage over maximal down runs of the context.
            let mut i = 0;
            while i < minutes.len() {
                if minutes[i].service != State::Down {
                    i += 1;
                    continue;
                }
                let j = (i..minutes.len()).find(|&j| minutes[j].service != State::Down).unwrap_or(minutes.len());
                if ((j - i) as i64) * MINUTE < s.min_outage_ms {
                    for m in &mut minutes[i..j] {
                        m.service = State::Up;
                    }
                }
                i = j;
            }
            minutes
        }

        #[derive(Debug, PartialEq)]
        struct ModelOutage {
            start: i64,
            end: i64,
            counted_ms: i64,
            probes: Vec<String>,
            agents: Vec<String>,
            reasons: BTreeMap<ErrorKind, u64>,
        }

        struct ModelFigures {
            millis: FigureMillis,
            daily: BTreeMap<Date, FigureMillis>,
            outages: Vec<ModelOutage>,
            burn: (Option<f64>, Option<f64>),
        }

        fn model(s: &Scenario) -> ModelFigures {
            let minutes = walk(s);
            let in_period = |t: i64| s.from <= t && t < s.to;
            let in_maintenance = |t: i64| s.maintenance.iter().any(|&(a, b)| a <= t && t < b);
            let in_base = |t: i64| in_period(t) && in_service_hours(&s.calendar, t) && !in_maintenance(t);
            let mut millis = FigureMillis::default();
            let mut daily: BTreeMap<Date, FigureMillis> = BTreeMap::new();
            // (agreed, counted down) per base minute, in order, for the burn rates.
            let mut agreed_minutes: Vec<bool> = Vec::new();
            for m in minutes.iter().filter(|m| in_period(m.t)) {
                let day = daily.entry(local_date(&s.calendar, m.t)).or_default();
                for f in [&mut millis, day] {
                    if !in_service_hours(&s.calendar, m.t) {
                        continue;
                    }
                    f.service_hours_ms += MINUTE;
                    if in_maintenance(m.t) {
                        f.maintenance_ms += MINUTE;
                        continue;
                    }
                    f.base_ms += MINUTE;
                    let unknown = m.service == State::Unknown;
                    let down = m.service == State::Down;
                    if unknown {
                        f.unknown_ms += MINUTE;
                    }
                    let (agreed, counted_down) = match s.policy {
                        UnknownPolicy::Exclude => (!unknown, down),
                        UnknownPolicy::Up => (true, down),
                        UnknownPolicy::Down => (true, down || unknown),
                    };
                    if agreed {
                        f.agreed_ms += MINUTE;
                    }
                    if counted_down {
                        f.downtime_ms += MINUTE;
                    }
                }
                if in_base(m.t) {
                    let unknown = m.service == State::Unknown;
                    let down = m.service == State::Down;
                    let (agreed, counted_down) = match s.policy {
                        UnknownPolicy::Exclude => (!unknown, down),
                        UnknownPolicy::Up => (true, down),
                        UnknownPolicy::Down => (true, down || unknown),
                    };
                    if agreed {
                        agreed_minutes.push(counted_down);
                    }
                }
            }
            let burn_over = |window_minutes: usize| -> Option<f64> {
                let allowed = (100.0 - s.target) / 100.0;
                let window: Vec<bool> = agreed_minutes.iter().rev().take(window_minutes).copied().collect();
                if allowed <= 0.0 || window.is_empty() {
                    return None;
                }
                let down = window.iter().filter(|d| **d).count() as i64 * MINUTE;
                Some((down as f64 / (window.len() as i64 * MINUTE) as f64) / allowed)
            };
            let burn = (burn_over(60), burn_over(360));

            // Outages: maximal down runs of the context that touch a base minute.
            let mut outages = Vec::new();
            let mut i = 0;
            while i < minutes.len() {
                if minutes[i].service != State::Down {
                    i += 1;
                    continue;
                }
                let j = (i..minutes.len()).find(|&j| minutes[j].service != State::Down).unwrap_or(minutes.len());
                let run = &minutes[i..j];
                let counted_ms = run.iter().filter(|m| in_base(m.t)).count() as i64 * MINUTE;
                if counted_ms > 0 {
                    let mut probes = Vec::new();
                    let mut agents = std::collections::BTreeSet::new();
                    let mut reasons: BTreeMap<ErrorKind, u64> = BTreeMap::new();
                    for (p, probe) in s.probes.iter().enumerate() {
                        if !run.iter().any(|m| m.probe_down[p]) {
                            continue;
                        }
                        probes.push(PROBE_IDS[p].to_string());
                        for (a, agent_id) in AGENT_IDS.iter().enumerate().take(probe.agents.len()) {
                            // The agent's maximal same-kind down stretches over the context.
                            let mut k = 0;
                            while k < minutes.len() {
                                let Some(Some(kind)) = minutes[k].views[p][a] else {
                                    k += 1;
                                    continue;
                                };
                                let end = (k..minutes.len())
                                    .find(|&e| minutes[e].views[p][a] != Some(Some(kind)))
                                    .unwrap_or(minutes.len());
                                let seen = minutes[k..end]
                                    .iter()
                                    .any(|m| m.t >= run[0].t && m.t <= run[run.len() - 1].t && m.probe_down[p]);
                                if seen {
                                    agents.insert(agent_id.to_string());
                                    *reasons.entry(kind).or_default() += 1;
                                }
                                k = end;
                            }
                        }
                    }
                    outages.push(ModelOutage {
                        start: run[0].t,
                        end: run[run.len() - 1].t + MINUTE,
                        counted_ms,
                        probes,
                        agents: agents.into_iter().collect(),
                        reasons,
                    });
                }
                i = j;
            }
            ModelFigures { millis, daily, outages, burn }
        }

        fn engine(s: &Scenario) -> (Figures, Vec<DailyRow>) {
            let probes = s
                .probes
                .iter()
                .enumerate()
                .map(|(p, probe)| ProbeViews {
                    probe: PROBE_IDS[p],
                    quorum: probe.quorum,
                    agents: probe
                        .agents
                        .iter()
                        .enumerate()
                        .map(|(a, obs)| (AGENT_IDS[a], runs_from_observations(obs, probe.interval_ms)))
                        .collect(),
                })
                .collect();
            let input = ServiceInput { probes, min_outage_ms: s.min_outage_ms };
            let timeline = service_timeline(&input, s.context.0, s.context.1);
            let spec = FiguresSpec {
                calendar: &s.calendar,
                maintenance: &s.maintenance,
                unknown: s.policy,
                target_percent: Some(s.target),
            };
            (compute(&timeline, &spec, s.from, s.to), daily_breakdown(&timeline, &spec, s.from, s.to))
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

            #[test]
            fn engine_matches_a_minute_by_minute_model_of_spec_section_7(s in scenario()) {
                let expected = model(&s);
                let (figures, daily) = engine(&s);
                prop_assert_eq!(figures.millis, expected.millis);
                let engine_daily: BTreeMap<Date, FigureMillis> = daily.iter().map(|r| (r.date, r.millis)).collect();
                prop_assert_eq!(engine_daily, expected.daily);
                let engine_outages: Vec<ModelOutage> = figures
                    .outages
                    .iter()
                    .map(|o| ModelOutage {
                        start: o.start_ms,
                        end: o.end_ms,
                        counted_ms: o.counted_ms,
                        probes: o.probes.clone(),
                        agents: o.agents.clone(),
                        reasons: o.reasons.clone(),
                    })
                    .collect();
                prop_assert_eq!(engine_outages, expected.outages);
                let burn = figures.burn_rate.unwrap();
                prop_assert_eq!((burn.last_1h, burn.last_6h), expected.burn);
                let m = expected.millis;
                let availability = (m.agreed_ms > 0)
                    .then(|| 100.0 * (m.agreed_ms - m.downtime_ms) as f64 / m.agreed_ms as f64);
                prop_assert_eq!(figures.availability_percent, availability);
                let remaining = figures.error_budget_remaining_seconds.unwrap();
                let budget = figures.error_budget_seconds.unwrap();
                prop_assert!((budget - m.agreed_ms as f64 / 1000.0 * (1.0 - s.target / 100.0)).abs() < 1e-3);
                prop_assert!((remaining - (budget - m.downtime_ms as f64 / 1000.0)).abs() < 1e-6);
                prop_assert_eq!(figures.met, Some(availability.is_none_or(|a| a >= s.target)));
            }
        }
    }
}
