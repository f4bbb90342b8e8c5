//! Coverage and the verdict of SPEC §7: how much of the agreed time was monitored, and
//! whether the figures allow saying an agreement was met, breached, or neither. A figure
//! never claims more than was measured: a period with too little monitoring, or a latency
//! target without a single sample, is `insufficient_data`, never `met`.

use super::figures::FigureMillis;

/// The verdict on one agreement period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Met,
    Breached,
    InsufficientData,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Breached => "breached",
            Verdict::InsufficientData => "insufficient_data",
        }
    }

    /// SPEC §8's `met`: true for met, false for breached, none for insufficient data.
    pub fn met(self) -> Option<bool> {
        match self {
            Verdict::Met => Some(true),
            Verdict::Breached => Some(false),
            Verdict::InsufficientData => None,
        }
    }
}

/// What came of a latency target: the samples in base and the percentile they reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencyOutcome {
    pub samples: u64,
    /// `None` when there are no samples.
    pub achieved_ms: Option<f64>,
    pub target_ms: f64,
}

/// The terms a verdict is judged against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerdictSpec {
    pub target_percent: f64,
    /// `min_coverage`: percent of base that must be monitored, above 0 (validated), so
    /// nothing monitored is never enough.
    pub min_coverage_percent: f64,
    /// `None` when the agreement has no latency target.
    pub latency: Option<LatencyOutcome>,
}

/// 100 × (|base| − unknown) / |base|: the part of agreed time actually monitored, whatever
/// the unknown policy. `None` when base is empty.
pub fn coverage_percent(m: &FigureMillis) -> Option<f64> {
    (m.base_ms > 0).then(|| 100.0 * (m.base_ms - m.unknown_ms) as f64 / m.base_ms as f64)
}

/// SPEC §7's rules, in its order.
pub fn verdict(m: &FigureMillis, availability_percent: Option<f64>, spec: &VerdictSpec) -> Verdict {
    // Coverage below the minimum, compared on the exact milliseconds: covered / base <
    // min / 100 without the rounding of a percentage.
    let monitored_ms = (m.base_ms - m.unknown_ms) as f64;
    let under_covered = monitored_ms * 100.0 < spec.min_coverage_percent * m.base_ms as f64;
    if m.agreed_ms == 0 || m.base_ms == 0 || under_covered {
        return Verdict::InsufficientData;
    }
    let availability_breached = availability_percent.is_some_and(|a| a < spec.target_percent);
    let latency_breached =
        spec.latency.is_some_and(|l| l.samples > 0 && l.achieved_ms.is_some_and(|a| a > l.target_ms));
    if availability_breached || latency_breached {
        return Verdict::Breached;
    }
    if spec.latency.is_some_and(|l| l.samples == 0) {
        return Verdict::InsufficientData;
    }
    Verdict::Met
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    /// Figures over a base of 100 hours with `unknown` and `down` hours, under `exclude`.
    fn exclude(unknown_h: i64, down_h: i64) -> (FigureMillis, Option<f64>) {
        let m = FigureMillis {
            service_hours_ms: 100 * HOUR,
            maintenance_ms: 0,
            base_ms: 100 * HOUR,
            unknown_ms: unknown_h * HOUR,
            downtime_ms: down_h * HOUR,
            agreed_ms: (100 - unknown_h) * HOUR,
        };
        let a = (m.agreed_ms > 0).then(|| 100.0 * (m.agreed_ms - m.downtime_ms) as f64 / m.agreed_ms as f64);
        (m, a)
    }

    fn spec(target: f64, min_coverage: f64, latency: Option<(u64, Option<f64>, f64)>) -> VerdictSpec {
        VerdictSpec {
            target_percent: target,
            min_coverage_percent: min_coverage,
            latency: latency.map(|(samples, achieved_ms, target_ms)| LatencyOutcome {
                samples,
                achieved_ms,
                target_ms,
            }),
        }
    }

    #[test]
    fn insufficient_data_when_there_is_no_agreed_time() {
        let (m, a) = exclude(100, 0);
        assert_eq!((m.agreed_ms, a), (0, None));
        assert_eq!(verdict(&m, a, &spec(99.0, 0.5, None)), Verdict::InsufficientData);
        // Nothing in base at all (a period before any service hours): no coverage figure either.
        let empty = FigureMillis::default();
        assert_eq!(coverage_percent(&empty), None);
        assert_eq!(verdict(&empty, None, &spec(99.0, 0.5, None)), Verdict::InsufficientData);
        // Under unknown = "up" nothing monitored still has agreed time, but no coverage.
        let up = FigureMillis { agreed_ms: 100 * HOUR, base_ms: 100 * HOUR, unknown_ms: 100 * HOUR, ..empty };
        assert_eq!(verdict(&up, Some(100.0), &spec(99.0, 0.5, None)), Verdict::InsufficientData);
    }

    #[test]
    fn insufficient_data_when_coverage_is_below_min_coverage() {
        // 11 h unknown of 100: 89 % coverage, no downtime; below 90 it is not "met".
        let (m, a) = exclude(11, 0);
        assert_eq!(coverage_percent(&m), Some(89.0));
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, None)), Verdict::InsufficientData);
        // Even a breach is not claimed on too little data.
        let (m, a) = exclude(11, 30);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, None)), Verdict::InsufficientData);
    }

    #[test]
    fn coverage_exactly_at_min_coverage_is_enough() {
        let (m, a) = exclude(10, 0);
        assert_eq!(coverage_percent(&m), Some(90.0));
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, None)), Verdict::Met);
        // One millisecond less monitored is below.
        let mut short = m;
        short.unknown_ms += 1;
        short.agreed_ms -= 1;
        assert_eq!(verdict(&short, a, &spec(99.0, 90.0, None)), Verdict::InsufficientData);
    }

    #[test]
    fn breached_when_availability_is_below_target() {
        let (m, a) = exclude(0, 2);
        assert_eq!(a, Some(98.0));
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, None)), Verdict::Breached);
        assert_eq!(verdict(&m, a, &spec(98.0, 90.0, None)), Verdict::Met);
    }

    #[test]
    fn breached_when_latency_with_samples_is_above_its_max() {
        let (m, a) = exclude(0, 0);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, Some((10, Some(301.0), 300.0)))), Verdict::Breached);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, Some((10, Some(300.0), 300.0)))), Verdict::Met);
    }

    #[test]
    fn breached_availability_wins_over_a_latency_target_without_samples() {
        // Rule order: a measured breach is a breach, even when latency has no samples.
        let (m, a) = exclude(0, 5);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, Some((0, None, 300.0)))), Verdict::Breached);
    }

    #[test]
    fn insufficient_data_when_a_latency_target_has_no_samples() {
        let (m, a) = exclude(0, 0);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, Some((0, None, 300.0)))), Verdict::InsufficientData);
    }

    #[test]
    fn met_otherwise_and_met_follows_the_verdict() {
        let (m, a) = exclude(5, 0);
        assert_eq!(verdict(&m, a, &spec(99.0, 90.0, Some((3, Some(12.0), 300.0)))), Verdict::Met);
        assert_eq!(Verdict::Met.met(), Some(true));
        assert_eq!(Verdict::Breached.met(), Some(false));
        assert_eq!(Verdict::InsufficientData.met(), None);
        assert_eq!(Verdict::InsufficientData.as_str(), "insufficient_data");
    }

    #[test]
    fn coverage_does_not_depend_on_the_unknown_policy() {
        // Under "up" and "down" agreed is the whole base, but coverage is still 90 %.
        let (mut m, _) = exclude(10, 0);
        m.agreed_ms = m.base_ms;
        assert_eq!(coverage_percent(&m), Some(90.0));
        assert_eq!(verdict(&m, Some(100.0), &spec(99.0, 95.0, None)), Verdict::InsufficientData);
    }
}
