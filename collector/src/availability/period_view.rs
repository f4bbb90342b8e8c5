//! What a period looks like on a dashboard: the service's state runs over the period with
//! service hours and maintenance laid over them ([`state_runs`]: the timeline bar), and the
//! period cut into hours or local days, each with its part of base ([`step_buckets`]: the
//! latency chart's points). Pure, like the rest of `availability`: the edges are the exact
//! instants the figures are computed from, so the bar and the figures never disagree.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use probity_config::calendar::subtract;
use probity_config::wire::ErrorKind;

use super::figures::{Coverage, LocalDays};
use super::intervals::{Interval, intersect, total};
use super::timeline::{ServiceTimeline, State};
use crate::runs::ViewRun;

/// What an instant of a period is on the timeline bar. Outside service hours and
/// maintenance win over the service's state: that time is not agreed time, whatever the
/// probes saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunState {
    Up,
    Down,
    Unknown,
    Maintenance,
    OutsideHours,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Up => "up",
            RunState::Down => "down",
            RunState::Unknown => "unknown",
            RunState::Maintenance => "maintenance",
            RunState::OutsideHours => "outside_hours",
        }
    }
}

/// A maximal stretch `[start_ms, end_ms)` of one [`RunState`] within a period. A down run
/// carries its outage's reasons (kind: count of agent down runs, as `Outage::reasons`) and
/// the outage's true edges, which may lie outside the run (an outage cut by the end of
/// service hours is two runs of one outage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateRun {
    pub start_ms: i64,
    pub end_ms: i64,
    pub state: RunState,
    /// For a down run: the outage it belongs to, `(start_ms, end_ms)`.
    pub outage: Option<Interval>,
    /// For a down run: its outage's reasons; empty otherwise.
    pub reasons: BTreeMap<ErrorKind, u64>,
}

impl StateRun {
    pub fn length_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
}

/// The state runs of `[from, to)`, contiguous and covering it exactly, adjacent runs
/// different. `coverage` must be [`super::coverage`] over the same `[from, to)`; instants
/// the timeline does not cover are unknown, as in the figures.
pub fn state_runs(timeline: &ServiceTimeline, coverage: &Coverage, from: i64, to: i64) -> Vec<StateRun> {
    if from >= to {
        return Vec::new();
    }
    let states = service_pieces(timeline, from, to);
    let layers = hour_layers(coverage, from, to);
    let mut out: Vec<StateRun> = Vec::with_capacity(states.len() + layers.len());
    let (mut i, mut j, mut cursor) = (0, 0, from);
    while cursor < to && i < states.len() && j < layers.len() {
        let (s_end, state, outage) = states[i];
        let (l_end, layer) = layers[j];
        let end = s_end.min(l_end);
        let (state, outage) = match layer {
            Layer::Base => (state, outage),
            Layer::Maintenance => (RunState::Maintenance, None),
            Layer::OutsideHours => (RunState::OutsideHours, None),
        };
        match out.last_mut() {
            Some(last) if last.state == state && last.outage.map(|o| o.0) == outage.map(|o| o.0) => last.end_ms = end,
            _ => {
                let reasons = outage
                    .and_then(|(start, _)| timeline.outages.iter().find(|o| o.start_ms == start))
                    .map(|o| o.reasons.clone())
                    .unwrap_or_default();
                out.push(StateRun { start_ms: cursor, end_ms: end, state, outage, reasons });
            }
        }
        cursor = end;
        if s_end == end {
            i += 1;
        }
        if l_end == end {
            j += 1;
        }
    }
    out
}

/// The period cut at every hour from `from` ([`Step::Hour`]) or at every local midnight of
/// `tz` ([`Step::Day`]), the last bucket clipped to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Hour,
    Day,
}

/// One point of a series: a bucket of the period and the part of base inside it (latency
/// counts the minutes whose start lies in it, SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub start_ms: i64,
    pub end_ms: i64,
    pub base: Vec<Interval>,
}

/// How many buckets [`step_buckets`] yields, counted without building them, so a series
/// too long to draw is refused before any work.
pub fn step_count(tz: &TimeZone, step: Step, from: i64, to: i64) -> usize {
    match step {
        Step::Hour => usize::try_from(((to - from).max(0) + HOUR_MS - 1) / HOUR_MS).unwrap_or(usize::MAX),
        Step::Day => LocalDays::new(tz, from, to).count(),
    }
}

/// The buckets of `[from, to)` with `base` (sorted, disjoint) cut to each.
pub fn step_buckets(base: &[Interval], tz: &TimeZone, step: Step, from: i64, to: i64) -> Vec<Bucket> {
    let edges: Vec<Interval> = match step {
        Step::Hour => {
            let mut edges = Vec::new();
            let mut start = from;
            while start < to {
                let end = (start + HOUR_MS).min(to);
                edges.push((start, end));
                start = end;
            }
            edges
        }
        Step::Day => LocalDays::new(tz, from, to).map(|(_, start, end)| (start, end)).collect(),
    };
    edges
        .into_iter()
        .map(|(start, end)| Bucket { start_ms: start, end_ms: end, base: intersect(base, &[(start, end)]) })
        .collect()
}

/// How much of base one agent's view of one probe covered: the per-agent coverage a
/// dashboard shows beside the service's (which needs the quorum of every probe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewCoverage {
    /// |base ∩ the agent's view is known|.
    pub known_ms: i64,
    pub base_ms: i64,
}

/// [`ViewCoverage`] of an agent's view runs (any order, possibly overlapping) over `base`.
pub fn view_coverage(runs: &[ViewRun], base: &[Interval]) -> ViewCoverage {
    let known =
        probity_config::calendar::normalize(runs.iter().map(|r| (r.start, r.end)).filter(|(a, b)| a < b).collect());
    ViewCoverage { known_ms: total(&intersect(&known, base)), base_ms: total(base) }
}

const HOUR_MS: i64 = 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Base,
    Maintenance,
    OutsideHours,
}

/// The service's state over `[from, to)` as `(end, state, outage)`, contiguous from `from`.
fn service_pieces(timeline: &ServiceTimeline, from: i64, to: i64) -> Vec<(i64, RunState, Option<Interval>)> {
    let mut out = Vec::new();
    let mut cursor = from;
    let first = timeline.segments.partition_point(|s| s.end <= from);
    for s in timeline.segments[first..].iter().take_while(|s| s.start < to) {
        if s.start > cursor {
            out.push((s.start, RunState::Unknown, None));
        }
        let end = s.end.min(to);
        let (state, outage) = match s.state {
            State::Up => (RunState::Up, None),
            State::Unknown => (RunState::Unknown, None),
            // Down segments are the outages, one each, with the same edges.
            State::Down => (RunState::Down, Some((s.start, s.end))),
        };
        out.push((end, state, outage));
        cursor = end;
    }
    if cursor < to {
        out.push((to, RunState::Unknown, None));
    }
    out
}

/// `[from, to)` as `(end, layer)`, contiguous from `from`: base, maintenance (inside service
/// hours) and the time outside service hours.
fn hour_layers(coverage: &Coverage, from: i64, to: i64) -> Vec<(i64, Layer)> {
    let outside = subtract(&[(from, to)], &coverage.service_hours);
    let mut parts: Vec<(i64, i64, Layer)> = Vec::new();
    parts.extend(coverage.base.iter().map(|&(a, b)| (a, b, Layer::Base)));
    parts.extend(coverage.maintenance.iter().map(|&(a, b)| (a, b, Layer::Maintenance)));
    parts.extend(outside.iter().map(|&(a, b)| (a, b, Layer::OutsideHours)));
    parts.retain(|&(a, b, _)| a < b && b > from && a < to);
    parts.sort_unstable_by_key(|p| p.0);
    parts.into_iter().map(|(_, b, layer)| (b.min(to), layer)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::figures::coverage;
    use crate::availability::fixtures::*;
    use crate::availability::timeline::service_timeline;
    use probity_config::calendar::Calendar;

    /// Runs as (from minute, to minute, state) from t0.
    fn shape(runs: &[StateRun]) -> Vec<(i64, i64, &'static str)> {
        runs.iter().map(|r| ((r.start_ms - t0()) / MINUTE, (r.end_ms - t0()) / MINUTE, r.state.as_str())).collect()
    }

    #[test]
    fn service_hours_and_maintenance_are_laid_over_the_service_state() {
        use ErrorKind::{Connect, Timeout};
        // 08:00-08:30 in service hours (mon 08:10-08:25), maintenance 08:20-08:22; the probe
        // is up, down 08:05-08:15 (two agents, two reasons), unknown after 08:28.
        let input = service(
            vec![probe(
                "p",
                1,
                vec![
                    ("a", vec![up(480, 485), down(485, 495, Timeout), up(495, 508)]),
                    ("b", vec![up(480, 485), down(485, 495, Connect), up(495, 508)]),
                ],
            )],
            0,
        );
        let timeline = service_timeline(&input, at(470), at(520));
        let cal = calendar("UTC", &["mon 08:10-08:25"], &[]);
        let (from, to) = (at(480), at(510));
        let cov = coverage(&cal, &[(at(500), at(502))], from, to);
        let runs = state_runs(&timeline, &cov, from, to);
        assert_eq!(
            shape(&runs),
            vec![
                (480, 490, "outside_hours"),
                (490, 495, "down"),
                (495, 500, "up"),
                (500, 502, "maintenance"),
                (502, 505, "up"),
                (505, 510, "outside_hours"),
            ]
        );
        // The down run inside hours keeps its outage's true edges and reasons.
        assert_eq!(runs[1].outage, Some((at(485), at(495))));
        assert_eq!(runs[1].reasons, BTreeMap::from([(Connect, 1), (Timeout, 1)]));
        assert!(runs.iter().filter(|r| r.state != RunState::Down).all(|r| r.outage.is_none() && r.reasons.is_empty()));
    }

    #[test]
    fn the_runs_cover_the_period_exactly_and_time_the_timeline_lacks_is_unknown() {
        let input = service(vec![probe("p", 1, vec![("a", vec![up(10, 20)])])], 0);
        // A timeline built over less than the period (as a period older than the data).
        let timeline = service_timeline(&input, at(5), at(25));
        let cal = Calendar::always();
        let (from, to) = (at(0), at(30));
        let runs = state_runs(&timeline, &coverage(&cal, &[], from, to), from, to);
        assert_eq!(shape(&runs), vec![(0, 10, "unknown"), (10, 20, "up"), (20, 30, "unknown")]);
        assert!(runs.windows(2).all(|w| w[0].end_ms == w[1].start_ms && w[0].state != w[1].state));
        assert!(state_runs(&timeline, &coverage(&cal, &[], to, to), to, to).is_empty());
    }

    #[test]
    fn an_outage_cut_by_the_end_of_service_hours_is_two_runs_of_one_outage() {
        use ErrorKind::Dns;
        let input = service(vec![probe("p", 1, vec![("a", vec![down(0, 30, Dns)])])], 0);
        let timeline = service_timeline(&input, at(0), at(30));
        let cal = calendar("UTC", &["mon 00:00-00:10", "mon 00:20-00:30"], &[]);
        let (from, to) = (at(0), at(30));
        let runs = state_runs(&timeline, &coverage(&cal, &[], from, to), from, to);
        assert_eq!(shape(&runs), vec![(0, 10, "down"), (10, 20, "outside_hours"), (20, 30, "down")]);
        assert_eq!(runs[0].outage, runs[2].outage);
    }

    #[test]
    fn the_runs_add_up_to_the_figures_of_the_same_period() {
        use crate::availability::figures::{FiguresSpec, compute};
        use probity_config::UnknownPolicy;
        // Two days of London business hours over the autumn clock change, maintenance across
        // an outage, an outage running past the end of hours, a silent stretch.
        let day = ms("2026-10-23T00:00:00Z");
        let minute = |m: i64| day + m * MINUTE;
        let run =
            |a: i64, b: i64, down: Option<ErrorKind>| crate::runs::ViewRun { start: minute(a), end: minute(b), down };
        let input = service(
            vec![probe(
                "p",
                1,
                vec![(
                    "a",
                    vec![
                        run(0, 500, None),
                        run(500, 560, Some(ErrorKind::Timeout)),
                        run(560, 1000, None),
                        run(1000, 1100, Some(ErrorKind::Status)),
                        run(1100, 1300, None),
                        run(1500, 4000, None),
                    ],
                )],
            )],
            0,
        );
        let cal = calendar("Europe/London", &["mon-fri 08:00-18:00", "sat-sun 10:00-12:00"], &[]);
        let maintenance = [(minute(530), minute(620))];
        let (from, to) = (day, minute(4 * 1440));
        let timeline = service_timeline(&input, minute(-100), minute(4 * 1440));
        let runs = state_runs(&timeline, &coverage(&cal, &maintenance, from, to), from, to);
        let spec = FiguresSpec {
            calendar: &cal,
            maintenance: &maintenance,
            unknown: UnknownPolicy::Exclude,
            target_percent: Some(99.0),
        };
        let m = compute(&timeline, &spec, from, to).millis;
        let sum = |state: RunState| runs.iter().filter(|r| r.state == state).map(StateRun::length_ms).sum::<i64>();
        assert_eq!(sum(RunState::Down), m.downtime_ms);
        assert_eq!(sum(RunState::Unknown), m.unknown_ms);
        assert_eq!(sum(RunState::Maintenance), m.maintenance_ms);
        assert_eq!(sum(RunState::Up), m.base_ms - m.unknown_ms - m.downtime_ms);
        assert_eq!(sum(RunState::OutsideHours), (to - from) - m.service_hours_ms);
        assert!(m.downtime_ms > 0 && m.unknown_ms > 0 && m.maintenance_ms > 0, "{m:?}");
    }

    #[test]
    fn an_agents_coverage_is_the_part_of_base_its_view_was_known() {
        let runs = [up(0, 10), down(5, 20, ErrorKind::Timeout), up(40, 50)];
        let base = [(at(0), at(15)), (at(30), at(60))];
        assert_eq!(view_coverage(&runs, &base), ViewCoverage { known_ms: 25 * MINUTE, base_ms: 45 * MINUTE });
        assert_eq!(view_coverage(&[], &base).known_ms, 0);
    }

    #[test]
    fn hour_buckets_cut_base_at_every_hour_and_day_buckets_at_local_midnight() {
        let base = vec![(at(30), at(150))];
        let utc = TimeZone::UTC;
        let hours = step_buckets(&base, &utc, Step::Hour, at(0), at(150));
        assert_eq!(step_count(&utc, Step::Hour, at(0), at(150)), 3);
        assert_eq!(
            hours.iter().map(|b| (b.start_ms, b.end_ms, b.base.clone())).collect::<Vec<_>>(),
            vec![
                (at(0), at(60), vec![(at(30), at(60))]),
                (at(60), at(120), vec![(at(60), at(120))]),
                (at(120), at(150), vec![(at(120), at(150))]),
            ]
        );
        // London on the day clocks go back (2026-10-25): a 25-hour local day.
        let london = calendar("Europe/London", &["mon-sun 00:00-24:00"], &[]).timezone;
        let (from, to) = (ms("2026-10-24T23:00:00Z"), ms("2026-10-27T00:00:00Z"));
        let days = step_buckets(&[(from, to)], &london, Step::Day, from, to);
        assert_eq!(step_count(&london, Step::Day, from, to), 2);
        assert_eq!(
            days.iter().map(|b| (b.start_ms, b.end_ms)).collect::<Vec<_>>(),
            vec![(from, ms("2026-10-26T00:00:00Z")), (ms("2026-10-26T00:00:00Z"), to),]
        );
        assert_eq!(days[0].end_ms - days[0].start_ms, 25 * HOUR);
    }
}
