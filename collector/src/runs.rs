//! Agent views as runs: the canonical definition of SPEC §7's agent view. A result at
//! `at` decides the view of its (probe, agent) from `at` until the next result or until
//! it goes stale at `at + 2·interval`, whichever comes first; elsewhere the view is unknown.
//! Storage keeps these runs per (probe, agent) so reports never rescan raw results.

use probity_config::wire::ErrorKind;

/// One stretch `[start, end)` (Unix ms) over which an agent's view of a probe is known.
/// Adjacent results with the same outcome and reason merge into one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewRun {
    pub start: i64,
    pub end: i64,
    /// `None`: up. `Some(kind)`: down for that reason.
    pub down: Option<ErrorKind>,
}

impl ViewRun {
    pub fn is_down(&self) -> bool {
        self.down.is_some()
    }
}

/// One result as the view needs it: start instant and outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    pub at: i64,
    pub down: Option<ErrorKind>,
}

/// Builds the view runs of one (probe, agent) from its results sorted by `at`
/// (equal `at`: the later one in the slice wins).
pub fn runs_from_observations(observations: &[Observation], interval_ms: i64) -> Vec<ViewRun> {
    let stale_after = 2 * interval_ms;
    let mut runs: Vec<ViewRun> = Vec::new();
    for (i, o) in observations.iter().enumerate() {
        let next_at = observations[i + 1..].iter().map(|n| n.at).find(|&at| at > o.at);
        if observations.get(i + 1).is_some_and(|n| n.at == o.at) {
            continue; // superseded by a result at the same instant
        }
        let end = match next_at {
            Some(n) => n.min(o.at + stale_after),
            None => o.at + stale_after,
        };
        match runs.last_mut() {
            Some(last) if last.end == o.at && last.down == o.down => last.end = end,
            _ => runs.push(ViewRun { start: o.at, end, down: o.down }),
        }
    }
    runs
}

/// The view at `now` from the newest result of a (probe, agent): `Some(outcome)` while that
/// result decides it, `None` (unknown) once it is stale or when it lies after `now`. The run
/// of [`runs_from_observations`], so `/metrics` and reports share one definition.
pub fn view_at(newest: Observation, interval_ms: i64, now: i64) -> Option<Option<ErrorKind>> {
    runs_from_observations(&[newest], interval_ms)
        .into_iter()
        .find(|run| run.start <= now && now < run.end)
        .map(|run| run.down)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(at: i64) -> Observation {
        Observation { at, down: None }
    }

    fn down(at: i64) -> Observation {
        Observation { at, down: Some(ErrorKind::Timeout) }
    }

    #[test]
    fn the_view_now_is_the_newest_result_until_two_intervals_have_passed() {
        assert_eq!(view_at(down(100), 10, 100), Some(Some(ErrorKind::Timeout)));
        assert_eq!(view_at(up(100), 10, 119), Some(None));
        assert_eq!(view_at(up(100), 10, 120), None, "stale at at + 2 intervals");
        assert_eq!(view_at(up(100), 10, 99), None, "a result after now decides nothing yet");
    }

    #[test]
    fn regular_results_merge_into_one_run_that_goes_stale_after_two_intervals() {
        let runs = runs_from_observations(&[up(0), up(10), up(20)], 10);
        assert_eq!(runs, vec![ViewRun { start: 0, end: 40, down: None }]);
    }

    #[test]
    fn a_missing_stretch_longer_than_two_intervals_is_unknown() {
        let runs = runs_from_observations(&[up(0), up(100)], 10);
        assert_eq!(runs, vec![ViewRun { start: 0, end: 20, down: None }, ViewRun { start: 100, end: 120, down: None }]);
    }

    #[test]
    fn a_change_of_outcome_starts_a_new_run_at_the_result() {
        let runs = runs_from_observations(&[up(0), down(10), down(20), up(30)], 10);
        assert_eq!(
            runs,
            vec![
                ViewRun { start: 0, end: 10, down: None },
                ViewRun { start: 10, end: 30, down: Some(ErrorKind::Timeout) },
                ViewRun { start: 30, end: 50, down: None },
            ]
        );
    }

    #[test]
    fn results_at_the_same_instant_keep_the_last() {
        let runs = runs_from_observations(&[up(0), down(0)], 10);
        assert_eq!(runs, vec![ViewRun { start: 0, end: 20, down: Some(ErrorKind::Timeout) }]);
    }
}
