//! Completeness of the raw results behind the figures (SPEC §9's `completeness.csv`): per
//! (agent, probe), the results a period should hold at the probe's interval, those it
//! holds, and the longest stretch of the period without one. Evidence feeds the results'
//! instants in while it streams them; the counting is here, with every other figure.

use super::intervals::Interval;

/// A period's results of one (agent, probe), counted as they stream by, in time order.
#[derive(Clone, Debug)]
pub struct ResultTally {
    period: Interval,
    received: u64,
    last_at: Option<i64>,
    largest_gap_ms: i64,
}

/// What `completeness.csv` says of one (agent, probe).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Completeness {
    /// Whole intervals in the period: a result per interval is what was scheduled.
    pub expected: u64,
    pub received: u64,
    /// `expected − received`, never below zero (an agent may run a little faster).
    pub missing: u64,
    /// The longest stretch without a result: from the period's start to the first result,
    /// between two results, or from the last result (or the start, with none) to the end.
    pub largest_gap_ms: i64,
    pub largest_gap_seconds: f64,
}

impl ResultTally {
    /// A tally over the period `[from, to)`.
    pub fn new((from, to): Interval) -> Self {
        ResultTally { period: (from, to), received: 0, last_at: None, largest_gap_ms: 0 }
    }

    /// Counts one result at `at` (inside the period; a pair's results come in time order).
    pub fn record(&mut self, at: i64) {
        self.received += 1;
        let gap_from = self.last_at.unwrap_or(self.period.0);
        self.largest_gap_ms = self.largest_gap_ms.max(at - gap_from);
        self.last_at = Some(at);
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    /// The completeness of what was recorded, for a probe run every `interval_ms`.
    pub fn completeness(&self, interval_ms: i64) -> Completeness {
        let (from, to) = self.period;
        let expected = expected_results(self.period, interval_ms);
        let tail = to - self.last_at.unwrap_or(from);
        let largest_gap_ms = self.largest_gap_ms.max(tail);
        Completeness {
            expected,
            received: self.received,
            missing: expected.saturating_sub(self.received),
            largest_gap_ms,
            largest_gap_seconds: largest_gap_ms as f64 / 1000.0,
        }
    }
}

/// Results a probe run every `interval_ms` should have over `[from, to)`: whole intervals.
pub fn expected_results((from, to): Interval, interval_ms: i64) -> u64 {
    if interval_ms <= 0 { 0 } else { ((to - from).max(0) / interval_ms) as u64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::fixtures::{HOUR, MINUTE, at};

    #[test]
    fn a_result_every_interval_is_complete_and_its_largest_gap_is_the_tail() {
        let mut tally = ResultTally::new((at(0), at(60)));
        for m in 0..60 {
            tally.record(at(m));
        }
        let c = tally.completeness(MINUTE);
        assert_eq!((c.expected, c.received, c.missing), (60, 60, 0));
        // 00:59 to the end of the hour.
        assert_eq!((c.largest_gap_ms, c.largest_gap_seconds), (MINUTE, 60.0));
    }

    #[test]
    fn gaps_at_the_start_between_results_and_at_the_end_are_all_measured() {
        let cases: [(&[i64], i64); 4] = [
            (&[], HOUR),                             // nothing: the whole period
            (&[at(25), at(30)], 30 * MINUTE),        // the tail, 00:30-01:00
            (&[at(50)], 50 * MINUTE),                // the start, 00:00-00:50
            (&[at(1), at(45), at(50)], 44 * MINUTE), // between 00:01 and 00:45
        ];
        for (results, largest) in cases {
            let mut tally = ResultTally::new((at(0), at(60)));
            results.iter().for_each(|&t| tally.record(t));
            let c = tally.completeness(MINUTE);
            assert_eq!(c.largest_gap_ms, largest, "{results:?}");
            assert_eq!(c.missing, 60 - results.len() as u64, "{results:?}");
        }
    }

    #[test]
    fn expected_counts_whole_intervals_and_never_goes_negative() {
        assert_eq!(expected_results((at(0), at(60)), 7 * MINUTE), 8);
        assert_eq!(expected_results((at(60), at(0)), MINUTE), 0);
        assert_eq!(expected_results((at(0), at(60)), 0), 0);
        // An agent that ran a little fast is not "missing" a negative number.
        let mut tally = ResultTally::new((at(0), at(2)));
        (0..3).for_each(|i| tally.record(at(0) + i * 30_000));
        assert_eq!(tally.completeness(MINUTE).missing, 0);
    }
}
