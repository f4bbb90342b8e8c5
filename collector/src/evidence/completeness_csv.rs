//! `completeness.csv`: per (agent, probe), the results expected over the period at the
//! probe's interval, those received, the shortfall, the agent's lost results (seq gaps)
//! and the largest stretch without a result. The counts are tallied while `results.csv`
//! streams.

use std::collections::BTreeMap;
use std::io::{self, Write};

use crate::period::Period;

pub(super) const HEADER: [&str; 7] =
    ["agent", "probe", "expected", "received", "missing", "lost_seq_agent", "largest_gap_seconds"];

/// Per (agent, probe) completeness, filled while results are streamed.
#[derive(Clone, Debug, Default)]
pub(super) struct Completeness {
    pub(super) received: u64,
    last_at: Option<i64>,
    largest_gap_ms: i64,
}

impl Completeness {
    /// Counts one result; results of a pair come in time order.
    pub(super) fn record(&mut self, at: i64, period: &Period) {
        self.received += 1;
        let gap_from = self.last_at.unwrap_or(period.from_ms);
        self.largest_gap_ms = self.largest_gap_ms.max(at - gap_from);
        self.last_at = Some(at);
    }
}

pub(super) fn expected_results(period: &Period, interval_ms: i64) -> u64 {
    if interval_ms <= 0 { 0 } else { ((period.to_ms - period.from_ms).max(0) / interval_ms) as u64 }
}

pub(super) fn write(
    out: &mut dyn Write,
    rows: &BTreeMap<(String, String), Completeness>,
    lost: &BTreeMap<String, Option<u64>>,
    intervals: &BTreeMap<String, i64>,
    period: &Period,
) -> io::Result<()> {
    let mut w = super::csv_writer(out);
    w.write_record(HEADER)?;
    for ((agent, probe), c) in rows {
        let expected = expected_results(period, intervals.get(probe).copied().unwrap_or(0));
        let tail = c.last_at.map_or(period.to_ms - period.from_ms, |last| period.to_ms - last);
        let largest_gap = c.largest_gap_ms.max(tail);
        w.write_record([
            agent.clone(),
            probe.clone(),
            expected.to_string(),
            c.received.to_string(),
            expected.saturating_sub(c.received).to_string(),
            lost.get(agent).copied().flatten().map(|n| n.to_string()).unwrap_or_default(),
            (largest_gap as f64 / 1000.0).to_string(),
        ])?;
    }
    w.flush()
}
