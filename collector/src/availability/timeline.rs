//! Timelines: per probe the quorum over its agents' view runs, per service the probes
//! combined, `min_outage` applied and each remaining down run described as an [`Outage`],
//! all over a context window wider than the period (see the module docs of `availability`).

use std::collections::{BTreeMap, BTreeSet};

use probity_config::calendar::normalize;
use probity_config::wire::ErrorKind;

use super::intervals::{Interval, overlaps};
use crate::runs::ViewRun;

/// How far around a period the timeline is built by default: long enough that any
/// realistic `min_outage` is judged on the whole down run, and that outages shorter than
/// this keep their true start and end.
pub const CONTEXT_PADDING_MS: i64 = 7 * 86_400_000;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::fixtures::*;
    use crate::runs::{Observation, runs_from_observations};

    fn states(segments: &[Segment]) -> Vec<(i64, i64, State)> {
        segments.iter().map(|s| ((s.start - t0()) / MINUTE, (s.end - t0()) / MINUTE, s.state)).collect()
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
}
