//! A brute-force model of SPEC §7 that cuts the context at every minute of the UTC grid
//! and at every instant an input names (results and their staleness, maintenance, period
//! and context edges, all generated to the millisecond), then decides each piece by one
//! sample at its start: calendar hours and UTC offsets are whole minutes, and every other
//! change happens at a cut, so nothing changes inside a piece.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use probity_config::UnknownPolicy;
use probity_config::calendar::{Calendar, DayRange};
use probity_config::wire::ErrorKind;
use proptest::prelude::*;

use super::fixtures::{MINUTE, calendar};
use super::*;
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
    min_coverage: f64,
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
        let mut ranges: Vec<DayRange> =
            ranges.into_iter().map(|(s, len)| DayRange { start: s * 900, end: (s + len).min(96) * 900 }).collect();
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

/// Milliseconds off the minute grid: often none, so that equal instants and minute-aligned
/// edges stay common, otherwise anywhere within the minute.
fn jitter() -> impl Strategy<Value = i64> {
    prop_oneof![Just(0_i64), 1_i64..MINUTE]
}

/// Per agent: (minutes and milliseconds since the previous result, index into `KINDS`).
type AgentSteps = Vec<(i64, i64, usize)>;

/// (quorum, interval in minutes and milliseconds, steps per assigned agent).
fn probe_strategy() -> impl Strategy<Value = (usize, (i64, i64), Vec<AgentSteps>)> {
    (1_usize..=3, 1_usize..=3, (1_i64..=20, jitter())).prop_flat_map(|(agents, quorum, interval)| {
        let observations = prop::collection::vec((0_i64..=60, jitter(), 0_usize..KINDS.len()), 0..120);
        (Just(quorum), Just(interval), prop::collection::vec(observations, agents))
    })
}

prop_compose! {
    fn scenario()(
        zone in 0..ZONES.len(),
        weekly in weekly_strategy(),
        holiday in prop::option::of(0_i64..4),
        start in (0_i64..(24 * 60), jitter()),
        length in (1_i64..(60 * 60), jitter()),
        pad in (0_i64..300, jitter(), 0_i64..300, jitter()),
        maintenance in prop::collection::vec((0_i64..(70 * 60), jitter(), 1_i64..600, jitter()), 0..3),
        policy in 0_usize..3,
        target in prop::sample::select(vec![95.0, 99.0, 99.9, 100.0]),
        min_coverage in prop::sample::select(vec![0.5, 50.0, 90.0, 99.5, 100.0]),
        min_outage in prop_oneof![Just((0_i64, 0_i64)), (1_i64..90, jitter())],
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
        let from = anchor - 36 * 60 * MINUTE + start.0 * MINUTE + start.1;
        let to = from + length.0 * MINUTE + length.1;
        let context = (from - pad.0 * MINUTE - pad.1, to + pad.2 * MINUTE + pad.3);
        let maintenance = maintenance
            .into_iter()
            .map(|(start, start_ms, len, len_ms)| {
                let start = context.0 + start * MINUTE + start_ms;
                (start, start + len * MINUTE + len_ms)
            })
            .collect();
        let policy = [UnknownPolicy::Exclude, UnknownPolicy::Up, UnknownPolicy::Down][policy];
        let probes = probes
            .into_iter()
            .map(|(quorum, (interval_minutes, interval_ms), agents)| {
                let agents = agents
                    .into_iter()
                    .map(|steps| {
                        // Start a little before the context so views can be known at its start.
                        let mut at = context.0 - 30 * MINUTE;
                        steps
                            .into_iter()
                            .map(|(gap, gap_ms, kind)| {
                                at += gap * MINUTE + gap_ms;
                                Observation { at, down: KINDS[kind] }
                            })
                            .collect()
                    })
                    .collect();
                ModelProbe { quorum, interval_ms: interval_minutes * MINUTE + interval_ms, agents }
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
            min_coverage,
            min_outage_ms: min_outage.0 * MINUTE + min_outage.1,
            probes,
        }
    }
}

const PROBE_IDS: [&str; 2] = ["p0", "p1"];
const AGENT_IDS: [&str; 3] = ["a0", "a1", "a2"];

/// What the model knows about one piece of the context: `[t, t + len)`.
#[derive(Clone, Debug)]
struct Piece {
    t: i64,
    len: i64,
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

/// Every instant of the context where something may change: the UTC minute grid (calendar
/// hours, holidays and local days change only there) and each instant an input names.
fn cuts(s: &Scenario) -> Vec<i64> {
    let mut cuts = BTreeSet::from([s.context.0, s.context.1, s.from, s.to]);
    let mut minute = s.context.0.div_euclid(MINUTE) * MINUTE;
    while minute < s.context.1 {
        cuts.insert(minute);
        minute += MINUTE;
    }
    for &(start, end) in &s.maintenance {
        cuts.extend([start, end]);
    }
    for probe in &s.probes {
        for o in probe.agents.iter().flatten() {
            cuts.extend([o.at, o.at + 2 * probe.interval_ms]);
        }
    }
    cuts.into_iter().filter(|t| (s.context.0..=s.context.1).contains(t)).collect()
}

fn walk(s: &Scenario) -> Vec<Piece> {
    let mut pieces: Vec<Piece> = Vec::new();
    for piece in cuts(s).windows(2) {
        let (t, len) = (piece[0], piece[1] - piece[0]);
        let views: Vec<Vec<Option<Option<ErrorKind>>>> =
            s.probes.iter().map(|p| p.agents.iter().map(|obs| view_at(obs, p.interval_ms, t)).collect()).collect();
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
        pieces.push(Piece { t, len, service, probe_down, views });
    }
    // min_outage over maximal down runs of the context.
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i].service != State::Down {
            i += 1;
            continue;
        }
        let j = (i..pieces.len()).find(|&j| pieces[j].service != State::Down).unwrap_or(pieces.len());
        if pieces[i..j].iter().map(|m| m.len).sum::<i64>() < s.min_outage_ms {
            for m in &mut pieces[i..j] {
                m.service = State::Up;
            }
        }
        i = j;
    }
    pieces
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
    /// Base time whose service state was known, counted on its own.
    monitored_ms: i64,
}

fn model(s: &Scenario) -> ModelFigures {
    let pieces = walk(s);
    let in_period = |t: i64| s.from <= t && t < s.to;
    let in_maintenance = |t: i64| s.maintenance.iter().any(|&(a, b)| a <= t && t < b);
    let in_base = |t: i64| in_period(t) && in_service_hours(&s.calendar, t) && !in_maintenance(t);
    let mut millis = FigureMillis::default();
    let mut daily: BTreeMap<Date, FigureMillis> = BTreeMap::new();
    // (length, counted down) per agreed base piece, in order, for the burn rates.
    let mut agreed_pieces: Vec<(i64, bool)> = Vec::new();
    for m in pieces.iter().filter(|m| in_period(m.t)) {
        let day = daily.entry(local_date(&s.calendar, m.t)).or_default();
        for f in [&mut millis, day] {
            if !in_service_hours(&s.calendar, m.t) {
                continue;
            }
            f.service_hours_ms += m.len;
            if in_maintenance(m.t) {
                f.maintenance_ms += m.len;
                continue;
            }
            f.base_ms += m.len;
            let unknown = m.service == State::Unknown;
            let down = m.service == State::Down;
            if unknown {
                f.unknown_ms += m.len;
            }
            let (agreed, counted_down) = match s.policy {
                UnknownPolicy::Exclude => (!unknown, down),
                UnknownPolicy::Up => (true, down),
                UnknownPolicy::Down => (true, down || unknown),
            };
            if agreed {
                f.agreed_ms += m.len;
            }
            if counted_down {
                f.downtime_ms += m.len;
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
                agreed_pieces.push((m.len, counted_down));
            }
        }
    }
    let burn_over = |window_ms: i64| -> Option<f64> {
        let allowed = (100.0 - s.target) / 100.0;
        // The last `window_ms` of agreed time, the earliest piece cut to fit.
        let (mut taken, mut down) = (0_i64, 0_i64);
        for &(len, counted_down) in agreed_pieces.iter().rev() {
            let part = len.min(window_ms - taken);
            taken += part;
            if counted_down {
                down += part;
            }
            if taken == window_ms {
                break;
            }
        }
        if allowed <= 0.0 || taken == 0 {
            return None;
        }
        Some((down as f64 / taken as f64) / allowed)
    };
    let burn = (burn_over(60 * MINUTE), burn_over(360 * MINUTE));

    // Outages: maximal down runs of the context that touch base time.
    let mut outages = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        if pieces[i].service != State::Down {
            i += 1;
            continue;
        }
        let j = (i..pieces.len()).find(|&j| pieces[j].service != State::Down).unwrap_or(pieces.len());
        let run = &pieces[i..j];
        let counted_ms = run.iter().filter(|m| in_base(m.t)).map(|m| m.len).sum::<i64>();
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
                    while k < pieces.len() {
                        let Some(Some(kind)) = pieces[k].views[p][a] else {
                            k += 1;
                            continue;
                        };
                        let end = (k..pieces.len())
                            .find(|&e| pieces[e].views[p][a] != Some(Some(kind)))
                            .unwrap_or(pieces.len());
                        let seen = pieces[k..end]
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
                end: run[run.len() - 1].t + run[run.len() - 1].len,
                counted_ms,
                probes,
                agents: agents.into_iter().collect(),
                reasons,
            });
        }
        i = j;
    }
    let monitored_ms = pieces.iter().filter(|m| in_base(m.t) && m.service != State::Unknown).map(|m| m.len).sum();
    ModelFigures { millis, daily, outages, burn, monitored_ms }
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
    fn engine_matches_a_piece_by_piece_model_of_spec_section_7_to_the_millisecond(s in scenario()) {
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

        // Coverage and the verdict, restated from the model's own pieces in SPEC §7's order.
        let monitored = expected.monitored_ms;
        let coverage = (m.base_ms > 0).then(|| 100.0 * monitored as f64 / m.base_ms as f64);
        prop_assert_eq!(coverage_percent(&figures.millis), coverage);
        let expected_verdict = if m.agreed_ms == 0 || (monitored as f64) * 100.0 < s.min_coverage * m.base_ms as f64 {
            Verdict::InsufficientData
        } else if availability.is_some_and(|a| a < s.target) {
            Verdict::Breached
        } else {
            Verdict::Met
        };
        let spec = VerdictSpec { target_percent: s.target, min_coverage_percent: s.min_coverage, latency: None };
        prop_assert_eq!(verdict(&figures.millis, figures.availability_percent, &spec), expected_verdict);
        // Whatever the policy, a period with nothing monitored has no verdict.
        if monitored == 0 {
            prop_assert_eq!(expected_verdict, Verdict::InsufficientData);
        }
    }
}
