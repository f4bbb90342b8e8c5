//! Sorted, disjoint lists of half-open intervals `[start, end)` of Unix milliseconds: the
//! set arithmetic every figure is built from (normalising and subtracting live with the
//! calendar in `probity_config::calendar`).

use probity_config::calendar::normalize;

/// A half-open interval `[start, end)` of Unix milliseconds.
pub type Interval = (i64, i64);

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

/// Where `t` lies in `period` as a share of its length, clamped to `[0, 1]`: how a
/// report draws an instant on the period's timeline.
pub fn share_of((from, to): Interval, t: i64) -> f64 {
    ((t - from) as f64 / (to - from).max(1) as f64).clamp(0.0, 1.0)
}

pub(super) fn overlaps(sorted: &[Interval], (start, end): Interval) -> bool {
    let i = sorted.partition_point(|iv| iv.1 <= start);
    sorted.get(i).is_some_and(|iv| iv.0 < end)
}

/// The last `length_ms` of a sorted interval list, as intervals.
pub(super) fn last_stretch_of(intervals: &[Interval], length_ms: i64) -> Vec<Interval> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::availability::fixtures::at;

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

    #[test]
    fn an_instant_is_placed_on_a_period_as_a_share_clamped_to_it() {
        let period = (at(0), at(60));
        assert_eq!([at(0), at(15), at(60)].map(|t| share_of(period, t)), [0.0, 0.25, 1.0]);
        assert_eq!([at(-5), at(90)].map(|t| share_of(period, t)), [0.0, 1.0]);
        assert_eq!(share_of((at(0), at(0)), at(0)), 0.0, "an empty period divides by nothing");
    }
}
